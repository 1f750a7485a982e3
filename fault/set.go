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
