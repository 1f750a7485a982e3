package score

import (
	"gossipmesh/gossip"
	"gossipmesh/wire"
)

// refused scores a copy the inner protocol refused. One over its origin's
// rate budget (gossip.ErrOriginBudget) keeps whatever promise its sender
// made for it: the peer delivered what it announced, and that this node's
// budget for the origin is spent is not the peer's doing. If the origin
// sent it itself, it costs the origin a fraction of a behaviour penalty
// (Params.OverBudgetPerPenalty): that peer published past the budget every
// honest node runs, and its neighbours ban it as the penalty grows. A
// relay of the same origin's messages, which cannot know that this node's
// budget is spent, is never charged. Every other refusal (too old, too far
// ahead, a validator's ignore) is no one's fault.
func (g *Guard) refused(now int64, e *gossip.Event) {
	if e.Err != gossip.ErrOriginBudget || e.Msg == nil {
		return
	}
	g.kept(now, e.From, e.Msg.ID)
	if e.From == 0 || e.From != e.Msg.Origin {
		return
	}
	g.stats.OverBudget++
	g.book.Penalty(e.From, now, 1/float64(g.p.OverBudgetPerPenalty))
	g.pending = append(g.pending, e.From)
}

// PenalizeOverBudget adds to p's behaviour penalty (P7) for frames of its
// own messages that the driver dropped over its origin's rate budget
// before the protocol saw them (the node runtime counts them as they
// arrive), at the same weight as the protocol's own refusals of them.
// A ban it causes goes into out.
func (g *Guard) PenalizeOverBudget(now int64, p wire.NodeID, frames int, out *gossip.Output) {
	if frames <= 0 {
		return
	}
	g.stats.OverBudget += uint64(frames)
	g.book.Penalty(p, now, float64(frames)/float64(g.p.OverBudgetPerPenalty))
	g.pending = append(g.pending, p)
	g.settle(now, out)
}
