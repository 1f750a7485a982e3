//go:build race

package node_test

// raceEnabled says the race detector is on: the nodes then run several
// times slower, which some tests must allow for.
const raceEnabled = true
