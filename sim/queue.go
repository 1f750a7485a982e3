package sim

import "math/bits"

// event is one thing that happens at a virtual time: a frame (a copy of a
// message, or a control frame) arriving at node to from node from, a tick
// of node to, or a publish. ref says which (see refMsg) and where its
// frame is. It is 24 bytes and holds no pointer, so millions of them cost
// the garbage collector nothing to scan.
type event struct {
	at   int64  // virtual time, nanoseconds
	seq  uint32 // push order, breaks ties in at (serial-number compare)
	to   uint32 // node index
	from uint32 // node index of the sender
	ref  uint32 // kind and slot: refMsg, refCtl, refTick or refPublish
}

// before orders events by (at, seq). seq is compared as a serial number
// (RFC 1982) so that it may wrap: events of equal time are pushed within a
// few billion of each other.
func (a *event) before(b *event) bool {
	return a.at < b.at || a.at == b.at && int32(a.seq-b.seq) < 0
}

// heap is a 4-ary min-heap of events in one slice, ordered by (at, seq):
// no interfaces, no per-event allocation, hand-written sifts, and half the
// depth of a binary heap.
type heap struct {
	ev []event
}

func (h *heap) len() int { return len(h.ev) }

func (h *heap) top() *event { return &h.ev[0] }

func (h *heap) push(e event) {
	h.ev = append(h.ev, e)
	ev := h.ev
	i := len(ev) - 1
	for i > 0 {
		p := (i - 1) >> 2
		if !e.before(&ev[p]) {
			break
		}
		ev[i] = ev[p]
		i = p
	}
	ev[i] = e
}

// pop removes and returns the earliest event. The heap must not be empty.
func (h *heap) pop() event {
	ev := h.ev
	top := ev[0]
	n := len(ev) - 1
	last := ev[n]
	h.ev = ev[:n]
	if n == 0 {
		return top
	}
	ev = ev[:n]
	i := 0
	for {
		c := i<<2 + 1
		if c >= n {
			break
		}
		m := c
		end := min(c+4, n)
		for j := c + 1; j < end; j++ {
			if ev[j].before(&ev[m]) {
				m = j
			}
		}
		if !ev[m].before(&last) {
			break
		}
		ev[i] = ev[m]
		i = m
	}
	ev[i] = last
	return top
}

// chunkSize is the number of events in one chunk of a bucket: small
// enough that a thousand sparse buckets stay in cache, big enough that a
// dense one is a short list.
const chunkSize = 128

// chunk is a piece of a bucket's event list. next comes first so that the
// garbage collector scans one word of it, not 3 KiB.
type chunk struct {
	next *chunk
	n    int
	ev   [chunkSize]event
}

// bucket is a list of chunks; n counts the events in the tail chunk, kept
// here so that a push touches the ring and one line of the tail.
type bucket struct {
	head, tail *chunk
	n          int
}

// queue hands out events in (at, seq) order. It is a calendar queue, which
// a plain heap cannot match on this hardware: past the 1 MiB L2 cache a
// load costs ~200 ns here, and a heap of millions of events pays several
// of them on every pop, where a calendar queue reads memory in order.
//
//   - The ring holds the near future in buckets of width 2^shift ns, as
//     unsorted lists of fixed-size chunks (recycled, so its memory follows
//     the events in flight and never the run's total).
//   - The bucket being consumed is copied to cur and sorted by (at, seq);
//     events pushed into its time window meanwhile go to the small heap
//     side, and the two are merged as they are popped.
//   - Events beyond the ring's horizon wait in the heap far.
//
// Order is exactly (at, seq), the same as one big min-heap's.
type queue struct {
	shift  uint
	ring   []bucket
	mask   int64
	base   int64 // bucket number of cur; virtual time starts at 0
	inRing int
	cur    []event
	count  []int // scratch for the counting sort
	pos    int
	side   heap
	far    heap
	free   *chunk
}

// newQueue returns a queue tuned for events that are usually up to
// horizon ns in the future and come about every gap ns.
func newQueue(horizon, gap int64) *queue {
	if gap < 1 {
		gap = 1
	}
	shift := uint(bits.Len64(uint64(gap)))
	if shift > 0 {
		shift--
	}
	nb := int64(horizon>>shift) + 2
	size := int64(1) << bits.Len64(uint64(nb))
	size = min(max(size, 64), 1<<16)
	return &queue{shift: shift, ring: make([]bucket, size), mask: size - 1}
}

func (q *queue) len() int { return q.inRing + len(q.cur) - q.pos + q.side.len() + q.far.len() }

func (q *queue) push(e event) {
	b := e.at >> q.shift
	switch {
	case b <= q.base:
		q.side.push(e)
	case b-q.base < int64(len(q.ring)):
		q.add(&q.ring[b&q.mask], e)
	default:
		q.far.push(e)
	}
}

func (q *queue) add(bk *bucket, e event) {
	// Small enough to inline: the event's fields are stored straight into
	// the chunk instead of through a copy on the stack.
	if bk.tail == nil || bk.n == chunkSize {
		q.newTail(bk)
	}
	bk.tail.ev[bk.n] = e
	bk.n++
	q.inRing++
}

// newTail appends an empty chunk to bk.
func (q *queue) newTail(bk *bucket) {
	if q.free == nil {
		q.refill()
	}
	c := q.free
	q.free = c.next
	c.next = nil
	if bk.tail == nil {
		bk.head = c
	} else {
		bk.tail.n = chunkSize
		bk.tail.next = c
	}
	bk.tail, bk.n = c, 0
}

// chunksPerSlab is how many chunks are allocated at once: 3 MiB, so that
// they can sit on huge pages.
const chunksPerSlab = 1024

// refill puts a new slab of chunks on the free list. Chunks are never
// given back: the queue's memory is its peak of events in flight.
func (q *queue) refill() {
	slab := hugeSlice[chunk](chunksPerSlab, chunksPerSlab)
	for i := range slab {
		slab[i].next = q.free
		q.free = &slab[i]
	}
}

// pop removes and returns the earliest event. The queue must not be empty.
func (q *queue) pop() event {
	for {
		if q.pos < len(q.cur) {
			if q.side.len() > 0 && q.side.top().before(&q.cur[q.pos]) {
				return q.side.pop()
			}
			q.pos++
			return q.cur[q.pos-1]
		}
		if q.side.len() > 0 {
			return q.side.pop()
		}
		q.advance()
	}
}

// peek returns the node of the event d places after the next one in cur,
// if it is known, so that the caller can touch its memory early.
func (q *queue) peek(d int) (uint32, bool) {
	if i := q.pos + d; i < len(q.cur) {
		return q.cur[i].to, true
	}
	return 0, false
}

// advance moves to the next non-empty bucket and sorts it into cur.
func (q *queue) advance() {
	q.cur, q.pos = q.cur[:0], 0
	if q.inRing == 0 {
		if q.far.len() == 0 {
			panic("sim: pop from an empty queue")
		}
		q.base = q.far.top().at>>q.shift - 1
	}
	for {
		q.base++
		// Pull in far events that the ring now covers. They come out in
		// (at, seq) order and before any event pushed straight into their
		// bucket (which was beyond the ring until now), so each bucket's
		// chunks hold its events in seq order.
		for q.far.len() > 0 && q.far.top().at>>q.shift-q.base < int64(len(q.ring)) {
			e := q.far.pop()
			q.add(&q.ring[(e.at>>q.shift)&q.mask], e)
		}
		bk := &q.ring[q.base&q.mask]
		if bk.head != nil {
			q.sortBucket(bk)
			return
		}
	}
}

// sortBucket moves bk's events into cur sorted by (at, seq), and recycles
// its chunks. The chunks hold the events in seq order, so a stable sort by
// at is enough: one counting-sort pass on the high bits of the offset
// within the bucket, with about one slot per event, then an insertion sort
// that only has to fix order within a slot, where there is rarely more
// than one event.
func (q *queue) sortBucket(bk *bucket) {
	bk.tail.n = bk.n
	n := 0
	for c := bk.head; c != nil; c = c.next {
		n += c.n
	}
	if cap(q.cur) < n {
		q.cur = make([]event, 0, n+n/4)
	}
	cur := q.cur[:n]
	lo := q.base << q.shift
	b := uint(bits.Len(uint(n)))
	b = min(max(b, 1), q.shift, 16)
	sh := q.shift - b
	if cap(q.count) < 1<<b+1 {
		q.count = make([]int, 1<<16+1)
	}
	count := q.count[:1<<b+1]
	clear(count)
	for c := bk.head; c != nil; c = c.next {
		for i := range c.ev[:c.n] {
			count[(c.ev[i].at-lo)>>sh+1]++
		}
	}
	for i := 1; i < len(count); i++ {
		count[i] += count[i-1]
	}
	for c := bk.head; c != nil; {
		for i := range c.ev[:c.n] {
			d := (c.ev[i].at - lo) >> sh
			cur[count[d]] = c.ev[i]
			count[d]++
		}
		q.inRing -= c.n
		next := c.next
		c.next = q.free
		q.free = c
		c = next
	}
	*bk = bucket{}
	for i := 1; i < n; i++ {
		if cur[i-1].at <= cur[i].at {
			continue
		}
		e := cur[i]
		j := i
		for ; j > 0 && cur[j-1].at > e.at; j-- {
			cur[j] = cur[j-1]
		}
		cur[j] = e
	}
	q.cur = cur
}
