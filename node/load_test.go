package node_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"gossipmesh/api"
)

// TestLoadRefusesRatesThatOverflow: the rates that overflowed the schedule
// (and then spun a core for ever) and every other out-of-range number are
// refused at once, naming the field, with nothing published.
func TestLoadRefusesRatesThatOverflow(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{nil}, nil)
	for _, tc := range []struct {
		req   api.LoadRequest
		field string
	}{
		{api.LoadRequest{Count: 1000, Rate: 1e308}, "rate"},
		{api.LoadRequest{Count: 1000, Rate: 1e-300}, "rate"},
		{api.LoadRequest{Count: 1000, Rate: math.Inf(1)}, "rate"},
		{api.LoadRequest{Count: 1000, Rate: math.NaN()}, "rate"},
		{api.LoadRequest{Count: 1000, Rate: -1}, "rate"},
		{api.LoadRequest{Count: -1}, "count"},
		{api.LoadRequest{Count: math.MaxInt}, "count"},
		{api.LoadRequest{Count: 1, Size: -1}, "size"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := m.nodes[0].Load(ctx, tc.req)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("Load(%+v): %v, want an error naming %q", tc.req, err, tc.field)
			}
		case <-time.After(settle):
			cancel()
			t.Fatalf("Load(%+v) still running after %v", tc.req, settle)
		}
		cancel()
	}
	if n := len(m.nodes[0].Recent(10)); n != 0 {
		t.Errorf("refused loads published %d messages", n)
	}
}

// TestLoadStopsWithItsContext: a load whose client goes away returns with
// what it had published, and the node publishes nothing more.
func TestLoadStopsWithItsContext(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{nil}, nil)
	n := m.nodes[0]
	for _, rate := range []float64{0, 2000, api.MinLoadRate} {
		published := func() float64 { return counter(t, n, "gossipmesh_messages_published_total") }
		before := published()
		ctx, cancel := context.WithCancel(context.Background())
		type result struct {
			res api.LoadResult
			err error
		}
		done := make(chan result, 1)
		go func() {
			res, err := n.Load(ctx, api.LoadRequest{Count: api.MaxLoadCount, Rate: rate})
			done <- result{res, err}
		}()
		eventually(t, "the load to start", func() bool { return published() > before })
		cancel()
		var r result
		select {
		case r = <-done:
		case <-time.After(settle):
			t.Fatalf("rate %v: Load still running %v after its context ended", rate, settle)
		}
		if !errors.Is(r.err, context.Canceled) || r.res.Published == 0 || r.res.Published >= api.MaxLoadCount || len(r.res.IDs) != r.res.Published {
			t.Errorf("rate %v: %d published (%d ids), %v; want some, and context.Canceled", rate, r.res.Published, len(r.res.IDs), r.err)
		}
		after := published()
		if after-before != float64(r.res.Published) {
			t.Errorf("rate %v: the node counts %v published, the load %d", rate, after-before, r.res.Published)
		}
		time.Sleep(100 * time.Millisecond)
		if again := published(); again != after {
			t.Errorf("rate %v: the node went on publishing after the load returned: %v, then %v", rate, after, again)
		}
	}
}

// TestStuckSubscriberIsCutOff: a subscriber that stops reading loses
// events at first (counted), and once its buffer has stayed full for a
// second its channel is closed, so it costs the node nothing more.
func TestStuckSubscriberIsCutOff(t *testing.T) {
	t.Parallel()
	m := startMesh(t, [][]int{nil}, nil)
	n := m.nodes[0]
	ch, cancel := n.Subscribe(2)
	defer cancel()
	load := func(count int) {
		t.Helper()
		if _, err := n.Load(context.Background(), api.LoadRequest{Count: count}); err != nil {
			t.Fatal(err)
		}
	}
	load(5) // fills the buffer: 3 events dropped, still subscribed
	if got := counter(t, n, "gossipmesh_events_dropped_total"); got != 3 {
		t.Fatalf("events dropped: %v, want 3", got)
	}
	time.Sleep(1100 * time.Millisecond) // the buffer stays full
	load(1)                             // full for over a second: cut off
	got := 0
	closed := make(chan struct{})
	go func() {
		for range ch {
			got++
		}
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(settle):
		t.Fatal("a subscriber whose buffer stayed full is still subscribed")
	}
	if got != 2 {
		t.Errorf("%d events read after the cut, want the 2 buffered", got)
	}
	// The node goes on, and counts no more drops for a subscriber it cut.
	load(10)
	if got := counter(t, n, "gossipmesh_events_dropped_total"); got != 4 {
		t.Errorf("events dropped: %v, want 4 (3, then the one that cut it off)", got)
	}
}
