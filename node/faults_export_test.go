package node

// HeldFrames is how many frames the fault layer holds back, for tests.
func (n *Node) HeldFrames() int { return int(n.faults.heldNow.Load()) }
