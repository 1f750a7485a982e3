package maelstrom

import (
	"fmt"
	"slices"
)

// Overlay names how a node picks its gossip peers.
type Overlay string

// The overlays a node can build.
const (
	// OverlayTree ignores Maelstrom's suggested topology and links the
	// nodes, in the order init's node_ids lists them, into a heap-shaped
	// tree: node i's children are B·i+1 … B·i+B, for a branching factor B.
	// Every node computes the same tree from the same list, so no message
	// is needed to agree on it. On a tree, flood sends each message across
	// every link exactly once: N−1 messages per broadcast, no duplicates.
	OverlayTree Overlay = "tree"
	// OverlaySuggested uses the topology message's neighbours as given
	// (Maelstrom suggests a grid by default). Until topology arrives the
	// node has no peers.
	OverlaySuggested Overlay = "suggested"
)

// Overlays lists the valid overlays, for flags and errors.
func Overlays() []Overlay { return []Overlay{OverlayTree, OverlaySuggested} }

// TreeNeighbors returns the neighbours of self in the heap-shaped tree of
// nodes with the given branching factor: its parent (if any) first, then
// its children.
func TreeNeighbors(nodes []string, self string, branching int) ([]string, error) {
	if branching < 1 {
		return nil, fmt.Errorf("maelstrom: branching must be at least 1, got %d", branching)
	}
	i := slices.Index(nodes, self)
	if i < 0 {
		return nil, fmt.Errorf("maelstrom: node %q is not in node_ids", self)
	}
	var out []string
	if i > 0 {
		out = append(out, nodes[(i-1)/branching])
	}
	for c := branching*i + 1; c <= branching*i+branching && c < len(nodes); c++ {
		out = append(out, nodes[c])
	}
	return out, nil
}
