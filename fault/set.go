package fault

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseSet reads a set of node indices out of n nodes as the CLI writes
// them: "all", one index ("3"), a range ("0-4", both ends included) or a
// comma-separated list of those ("0-2,5,7"). It returns the indices in
// ascending order, each once. Errors quote the part that is wrong and say
// what is allowed.
func ParseSet(s string, n int) ([]int, error) {
	if n < 1 {
		return nil, fmt.Errorf("node set %q: the mesh has no nodes", s)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("empty node set: want \"all\", an index, a range such as 0-4, or a list such as 5,7,9")
	}
	in := make([]bool, n)
	if s == "all" {
		for i := range in {
			in[i] = true
		}
	} else {
		for _, part := range strings.Split(s, ",") {
			lo, hi, err := parseRange(strings.TrimSpace(part), n)
			if err != nil {
				return nil, fmt.Errorf("node set %q: %w", s, err)
			}
			for i := lo; i <= hi; i++ {
				in[i] = true
			}
		}
	}
	var out []int
	for i, ok := range in {
		if ok {
			out = append(out, i)
		}
	}
	return out, nil
}

// parseRange reads "I" or "I-J" with 0 <= I <= J < n.
func parseRange(part string, n int) (lo, hi int, err error) {
	if part == "" {
		return 0, 0, fmt.Errorf("empty item: want an index or a range such as 0-4")
	}
	a, b, isRange := strings.Cut(part, "-")
	if lo, err = parseIndex(a, n); err != nil {
		return 0, 0, err
	}
	if !isRange {
		return lo, lo, nil
	}
	if hi, err = parseIndex(b, n); err != nil {
		return 0, 0, err
	}
	if hi < lo {
		return 0, 0, fmt.Errorf("range %q runs backwards: write %d-%d", part, hi, lo)
	}
	return lo, hi, nil
}

func parseIndex(s string, n int) (int, error) {
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("%q is not a node index: want a whole number from 0 to %d", s, n-1)
	}
	if i >= n {
		return 0, fmt.Errorf("node %d does not exist: the mesh has nodes 0 to %d", i, n-1)
	}
	return i, nil
}

// ParseSides reads the sides of a partition of n nodes: "halves" (indices
// below n/2, and the rest), or node sets as ParseSet reads them joined by
// "/", such as "0-4/5-9" or "0-2/3-5/6-9". A node listed on no side is cut
// from nobody; no node may be on two sides, and there must be at least
// two sides, none empty.
func ParseSides(s string, n int) ([][]int, error) {
	s = strings.TrimSpace(s)
	if s == "halves" {
		if n < 2 {
			return nil, fmt.Errorf("sides %q: halves need at least 2 nodes, the mesh has %d", s, n)
		}
		lo, hi := make([]int, n/2), make([]int, n-n/2)
		for i := range lo {
			lo[i] = i
		}
		for i := range hi {
			hi[i] = n/2 + i
		}
		return [][]int{lo, hi}, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 {
		return nil, fmt.Errorf("sides %q: want \"halves\" or two or more node sets joined by /, such as 0-4/5-9", s)
	}
	side := make(map[int]int, n)
	out := make([][]int, 0, len(parts))
	for k, part := range parts {
		set, err := ParseSet(part, n)
		if err != nil {
			return nil, fmt.Errorf("sides %q, side %d: %w", s, k, err)
		}
		for _, i := range set {
			if j, dup := side[i]; dup {
				return nil, fmt.Errorf("sides %q: node %d is on side %d and side %d", s, i, j, k)
			}
			side[i] = k
		}
		out = append(out, set)
	}
	return out, nil
}
