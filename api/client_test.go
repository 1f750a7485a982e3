package api

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// TestClientCallsHaveADeadline: a node whose port accepts connections and
// never answers (the kernel completes the handshake of a listener nobody
// serves) must not hang a call made without a deadline.
func TestClientCallsHaveADeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // never accepted from: nothing answers
	c := NewClient("http://"+ln.Addr().String(), nil).SetTimeout(100 * time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := c.Health(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("health of a silent node: %v, want a deadline error", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("health of a silent node with no deadline in ctx hung for a minute")
	}
	// A deadline in ctx rules alone: the client adds none of its own.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Peers(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("peers with a cancelled ctx: %v", err)
	}
}

func TestLoadDurationIsBounded(t *testing.T) {
	for _, tc := range []struct {
		req  LoadRequest
		want time.Duration
	}{
		{LoadRequest{Rate: 100, Count: 500}, 5 * time.Second},
		{LoadRequest{Rate: 0, Count: 2000}, 2 * time.Second},
		{LoadRequest{Rate: 1e308, Count: 1000}, time.Second},
		{LoadRequest{Rate: 1e-300, Count: 1}, maxLoadWait},
		{LoadRequest{Rate: 10, Count: -5}, 0},
	} {
		if got := loadDuration(tc.req); got != tc.want {
			t.Errorf("loadDuration(%+v) = %v, want %v", tc.req, got, tc.want)
		}
	}
}
