package gossip

import "gossipmesh/wire"

// Seen reports whether the core holds id in its seen-cache at now: a copy
// of it would be a duplicate. The runtime asks it to tell whether a
// relayed copy is the first to arrive.
func (c *Core) Seen(now int64, id wire.MsgID) bool { return c.seen.contains(now, id) }
