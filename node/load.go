package node

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"gossipmesh/api"
)

// loadChunk bounds how many messages one trip through the loop publishes,
// so a backlog does not hold the loop away from incoming frames.
const loadChunk = 64

// Load implements api.Backend: it publishes req.Count messages of req.Size
// bytes, message i at start + i/req.Rate. Publishing from inside the node
// keeps an HTTP client's own CPU use out of a benchmark on a small machine.
// When the process falls behind (a late timer, a busy core), it publishes
// the overdue messages together and so keeps the average rate. It stops as
// soon as ctx ends (the HTTP client went away), between any two chunks and
// while it waits, and answers what it had published by then. It keeps to
// the node's own per-origin rate budget (origin.go), waiting for it rather
// than failing, so a rate above the budget shows as a lower achieved rate.
func (n *Node) Load(ctx context.Context, req api.LoadRequest) (api.LoadResult, error) {
	if err := req.Validate(n.cfg.Gossip.MaxBody); err != nil {
		return api.LoadResult{}, fmt.Errorf("load: %w", err)
	}
	// Every message shares one body: ids differ by sequence number, and
	// messages are never modified, so this costs nothing per message.
	body := make([]byte, req.Size)
	for i := range body {
		body[i] = "gossipmesh load "[i%16]
	}
	bodies := make([][]byte, loadChunk)
	for i := range bodies {
		bodies[i] = body
	}

	res := api.LoadResult{IDs: make([]string, 0, req.Count)}
	start := time.Now()
	res.Start = start
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	stopped := func(err error) (api.LoadResult, error) {
		res.End = time.Now()
		return res, fmt.Errorf("load: after %d messages: %w", res.Published, err)
	}
	for res.Published < req.Count {
		if err := ctx.Err(); err != nil {
			return stopped(err)
		}
		due := req.Count
		if req.Rate > 0 {
			due = dueBy(time.Since(start), req.Rate, req.Count)
			if due <= res.Published {
				// Message Published is not due yet: wait for it. Rounding
				// can put its time in the past although dueBy said no;
				// then it is due now.
				if d := time.Until(start.Add(offset(res.Published, req.Rate))); d > 0 {
					if timer == nil {
						timer = time.NewTimer(d)
					} else {
						timer.Reset(d)
					}
					select {
					case <-timer.C:
					case <-ctx.Done():
						return stopped(ctx.Err())
					}
					continue
				}
				due = res.Published + 1
			}
		}
		k := min(due-res.Published, loadChunk)
		r, err := n.publishBodies(ctx, bodies[:k])
		if err == nil {
			err = r.err
		}
		if r != nil {
			for _, id := range r.ids {
				res.IDs = append(res.IDs, id.String())
			}
			res.Published += len(r.ids)
		}
		var over *rateLimitedError
		if errors.As(err, &over) {
			// Over the node's own rate budget: wait for its next token
			// rather than emit what the peers would ignore. The achieved
			// rate shows the cap.
			if timer == nil {
				timer = time.NewTimer(over.wait)
			} else {
				timer.Reset(over.wait)
			}
			select {
			case <-timer.C:
			case <-ctx.Done():
				return stopped(ctx.Err())
			}
			continue
		}
		if err != nil {
			return stopped(err)
		}
	}
	res.End = time.Now()
	if el := res.End.Sub(start).Seconds(); el > 0 {
		res.AchievedRate = float64(res.Published) / el
	}
	return res, nil
}

// dueBy is how many of count messages at rate per second are due after
// elapsed: message i is due at i/rate, so message 0 at once. It is
// computed in floating point and clamped before any conversion to int, so
// no rate overflows it.
func dueBy(elapsed time.Duration, rate float64, count int) int {
	f := elapsed.Seconds()*rate + 1
	if !(f < float64(count)) { // also +Inf and NaN
		return count
	}
	return int(f)
}

// offset is when message i is due, after the start, clamped to a
// representable duration.
func offset(i int, rate float64) time.Duration {
	ns := float64(i) / rate * float64(time.Second)
	if !(ns < float64(math.MaxInt64)) {
		return math.MaxInt64
	}
	return time.Duration(ns)
}
