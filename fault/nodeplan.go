package fault

import "gossipmesh/wire"

// NodePlan is the part of a whole-mesh plan p (the simulator's, a test
// network's) that node self applies to its own links, as the node runtime
// takes it (Plan.ValidateFor): the plan's Rule, and as cut every node of
// ids that p cuts self off from, by its cut list, its sides or a cut link
// either way. It is how a driver that runs real node runtimes (the
// in-memory network, mesh chaos) turns one plan into each node's. A node
// that p cuts off entirely is cut from every other node of ids. Links'
// rules other than cuts, and Paused, have no per-node form and are left
// out: a paused node is stopped by its driver.
func (p *Plan) NodePlan(self wire.NodeID, ids []wire.NodeID) Plan {
	if p == nil {
		return Plan{}
	}
	q := Plan{Rule: p.Rule}
	for _, id := range ids {
		if id == self || id == 0 {
			continue
		}
		if p.IsCut(self, id) || p.IsCut(id, self) {
			if q.Cut == nil {
				q.Cut = make(map[wire.NodeID]bool)
			}
			q.Cut[id] = true
		}
	}
	return q
}
