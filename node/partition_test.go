package node_test

import (
	"context"
	"testing"
	"time"

	"gossipmesh/wire"
)

// TestPartitionAndHeal splits a mesh in two by cutting every link between
// the halves: a message published on one side reaches all of that side and
// none of the other. After the links heal, the nodes that chose to dial
// across redial on their own, and later messages reach everyone.
func TestPartitionAndHeal(t *testing.T) {
	t.Parallel()
	// Two chains of 6 (each internally connected), joined by three
	// cross links dialed from either side.
	const half = 6
	dials := make([][]int, 2*half)
	for i := 1; i < half; i++ {
		dials[i] = []int{i - 1}
		dials[half+i] = []int{half + i - 1}
	}
	dials[0] = []int{half}                   // 0 dials 6
	dials[half+2] = append(dials[half+2], 3) // 8 dials 3
	dials[5] = append(dials[5], 2*half-1)    // 5 dials 11
	m := startMesh(t, dials, nil)
	m.waitLinked()

	for a := range half {
		for b := half; b < 2*half; b++ {
			m.nw.Cut(host(a), host(b))
		}
	}
	eventually(t, "the cross links to drop", func() bool {
		for i, n := range m.nodes {
			for _, p := range n.Peers() {
				id, _ := wire.ParseNodeID(p.ID)
				if (i < half) != (m.index[id] < half) {
					return false
				}
			}
		}
		return true
	})

	rc, err := m.nodes[1].Publish(context.Background(), []byte("during the partition"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range half {
		if _, ok := m.nodes[i].Receipt(context.Background(), rc.ID, settle); !ok {
			t.Fatalf("node %d, on the publisher's side, never got the message", i)
		}
	}
	// Every node on the publisher's side has it and there is no path
	// across, so the far side cannot get it; give stray copies a moment
	// anyway, to catch a cut that leaks.
	for i := half; i < 2*half; i++ {
		if _, ok := m.nodes[i].Receipt(context.Background(), rc.ID, 50*time.Millisecond); ok {
			t.Errorf("node %d, across the partition, got the message", i)
		}
	}

	m.nw.HealAll()
	m.waitLinked()
	rc2, err := m.nodes[2*half-2].Publish(context.Background(), []byte("after the heal"))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range m.nodes {
		if _, ok := n.Receipt(context.Background(), rc2.ID, settle); !ok {
			t.Fatalf("node %d never got the message published after the heal", i)
		}
	}
}

// TestIsolatedNodeRejoins isolates one node, which loses every link, and
// then lets it back: its dialers and its neighbours' reconnect.
func TestIsolatedNodeRejoins(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{nil, {0}, {0, 1}, {2}}, nil)
	m.waitLinked()
	m.nw.Isolate(host(2))
	eventually(t, "node 2 to lose its links", func() bool { return len(m.nodes[2].Peers()) == 0 })
	rc, err := m.nodes[0].Publish(context.Background(), []byte("while 2 is away"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.nodes[1].Receipt(context.Background(), rc.ID, settle); !ok {
		t.Fatal("node 1 never got the message")
	}
	if _, ok := m.nodes[3].Receipt(context.Background(), rc.ID, 50*time.Millisecond); ok {
		t.Error("node 3, behind the isolated node 2, got the message")
	}
	m.nw.Rejoin(host(2))
	m.waitLinked()
	rc, err = m.nodes[0].Publish(context.Background(), []byte("2 is back"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.nodes[3].Receipt(context.Background(), rc.ID, settle); !ok {
		t.Fatal("node 3 never got the message after node 2 rejoined")
	}
}
