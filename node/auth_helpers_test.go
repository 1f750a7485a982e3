package node_test

import "gossipmesh/gossip"

// modelAuth is the strict-signing Auth of the in-memory meshes of tests
// whose subject is not signing: gossip.ModelAuth, which rejects what
// ed25519 rejects and carries the same 96 bytes, at about a microsecond a
// check. Under the race detector an ed25519 verification takes about
// 1.2 ms, and a mesh of a hundred nodes in one process verifying every
// message would stretch the timers these tests depend on (Plumtree's
// GRAFT timeout, membership's probes) past what they were set for.
// TestForgeriesThroughFrames and the end-to-end tests of cluster/ sign
// with ed25519 keys.
func modelAuth() gossip.Auth { return gossip.NewModelAuth(1) }
