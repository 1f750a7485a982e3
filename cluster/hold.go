package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"gossipmesh/api"
)

// holder answers on a node slot's listeners while no process runs in the
// slot. The launcher keeps every slot's listening sockets open so that a
// restarted node gets its addresses back; without a holder, the kernel
// would go on accepting connections to a dead node that nothing answers,
// and every client and peer would hang until its own timeout. With it, a
// gossip connection is closed at once (the dialer sees EOF and backs off)
// and every HTTP request gets 503 {"error": "node N exited"}.
//
// The holder accepts on duplicates of the slot's sockets; release closes
// them and waits until nothing of the holder runs, so that a node started
// after release is the only process accepting.
type holder struct {
	gossip net.Listener
	srv    *http.Server
	wg     sync.WaitGroup
}

// holdSlot starts a holder on p's listeners.
func holdSlot(p *proc) (*holder, error) {
	gl, err := net.FileListener(p.gossipLn)
	if err != nil {
		return nil, fmt.Errorf("cluster: node %d: holding the gossip listener: %w", p.index, err)
	}
	hl, err := net.FileListener(p.httpLn)
	if err != nil {
		gl.Close()
		return nil, fmt.Errorf("cluster: node %d: holding the HTTP listener: %w", p.index, err)
	}
	body, _ := json.Marshal(api.Error{Error: fmt.Sprintf("node %d exited", p.index)})
	body = append(body, '\n')
	h := &holder{gossip: gl}
	h.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       5 * time.Second,
		WriteTimeout:      5 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	// One answer per connection: nothing stays pooled against a holder that
	// a restart will replace.
	h.srv.SetKeepAlivesEnabled(false)
	h.wg.Go(func() { _ = h.srv.Serve(hl) })
	h.wg.Go(func() {
		for {
			conn, err := gl.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				// Out of descriptors, say: try again shortly rather than
				// spin.
				time.Sleep(10 * time.Millisecond)
				continue
			}
			conn.Close()
		}
	})
	return h, nil
}

// release stops the holder: its duplicate listeners are closed (the slot's
// own sockets stay open), its HTTP connections too, and it waits for its
// goroutines to end.
func (h *holder) release() {
	h.gossip.Close()
	_ = h.srv.Close()
	h.wg.Wait()
}
