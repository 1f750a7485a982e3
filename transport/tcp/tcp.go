// Package tcp is the real-socket Transport: TCP with Nagle off, bounded dial
// times and keepalives, plus a way to adopt a listener that a launcher bound
// and passed down as an inherited file descriptor.
package tcp

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"
)

// DefaultDialTimeout bounds a dial when the caller's context has no earlier
// deadline: a dead host must not stall a reconnect loop for the kernel's
// minutes-long SYN retry budget.
const DefaultDialTimeout = 3 * time.Second

// Transport dials and listens on TCP. The zero value is ready to use.
type Transport struct {
	// DialTimeout bounds each dial; zero means DefaultDialTimeout.
	DialTimeout time.Duration
	// KeepAlive is the TCP keepalive period; zero means Go's default
	// (15 s), negative disables keepalives. Keepalives find peers whose
	// host vanished without a FIN.
	KeepAlive time.Duration
}

// Listen implements transport.Transport.
func (t Transport) Listen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: t.KeepAlive}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tcp listen %s: %w", addr, err)
	}
	return ln, nil
}

// Dial implements transport.Transport. The connection has TCP_NODELAY set:
// the runtime coalesces frames itself and flushes once per batch, so
// Nagle's algorithm would only add latency.
func (t Transport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	timeout := t.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	d := net.Dialer{Timeout: timeout, KeepAlive: t.KeepAlive}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tcp dial %s: %w", addr, err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.SetNoDelay(true); err != nil {
			c.Close()
			return nil, fmt.Errorf("tcp dial %s: set nodelay: %w", addr, err)
		}
	}
	return c, nil
}

// FileListener adopts an already-bound, listening socket inherited as file
// descriptor fd (exec.Cmd.ExtraFiles puts the first extra file at fd 3).
// A launcher that binds every port itself and hands them down cannot lose a
// race for a "free" port against the rest of the machine.
func FileListener(fd int) (net.Listener, error) {
	if fd < 3 {
		return nil, fmt.Errorf("listener fd %d: want an inherited descriptor (3 or more)", fd)
	}
	f := os.NewFile(uintptr(fd), fmt.Sprintf("listener-fd-%d", fd))
	if f == nil {
		return nil, fmt.Errorf("listener fd %d: not a valid descriptor", fd)
	}
	// net.FileListener dups the descriptor; close our copy either way.
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("listener fd %d: %w", fd, err)
	}
	return ln, nil
}
