package node

import (
	"context"
	"fmt"
	"time"

	"gossipmesh/api"
)

// maxLoadCount bounds one load request, so that a typo cannot make a node
// publish (and remember the ids of) billions of messages.
const maxLoadCount = 10_000_000

// loadChunk bounds how many messages one trip through the loop publishes,
// so a backlog does not hold the loop away from incoming frames.
const loadChunk = 64

// Load implements api.Backend: it publishes req.Count messages of req.Size
// bytes, message i at start + i/req.Rate. Publishing from inside the node
// keeps an HTTP client's own CPU use out of a benchmark on a small machine.
// When the process falls behind (a late timer, a busy core), it publishes
// the overdue messages together and so keeps the average rate.
func (n *Node) Load(ctx context.Context, req api.LoadRequest) (api.LoadResult, error) {
	switch {
	case req.Count < 0 || req.Count > maxLoadCount:
		return api.LoadResult{}, fmt.Errorf("load: count must be 0..%d, got %d", maxLoadCount, req.Count)
	case req.Size < 0 || req.Size > n.cfg.Gossip.MaxBody:
		return api.LoadResult{}, fmt.Errorf("load: size must be 0..%d (the max body), got %d", n.cfg.Gossip.MaxBody, req.Size)
	case req.Rate < 0 || req.Rate != req.Rate:
		return api.LoadResult{}, fmt.Errorf("load: rate must not be negative, got %v", req.Rate)
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
	for res.Published < req.Count {
		due := req.Count
		if req.Rate > 0 {
			due = min(req.Count, int(time.Since(start).Seconds()*req.Rate)+1)
		}
		if due > res.Published {
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
			if err != nil {
				res.End = time.Now()
				return res, fmt.Errorf("load: after %d messages: %w", res.Published, err)
			}
			continue
		}
		next := start.Add(time.Duration(float64(res.Published) / req.Rate * float64(time.Second)))
		d := time.Until(next)
		if d <= 0 {
			continue
		}
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			res.End = time.Now()
			return res, fmt.Errorf("load: after %d messages: %w", res.Published, ctx.Err())
		}
	}
	res.End = time.Now()
	if el := res.End.Sub(start).Seconds(); el > 0 {
		res.AchievedRate = float64(res.Published) / el
	}
	return res, nil
}
