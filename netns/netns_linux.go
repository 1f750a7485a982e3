//go:build linux

package netns

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Listen opens a TCP listener on addr ("HOST:PORT") inside node i's
// namespace. A socket belongs for good to the namespace it was made in, so
// the launcher can bind a node's listeners from the root namespace and
// hand them to the node process, as it does on loopback.
func (n *Net) Listen(i int, addr string) (*net.TCPListener, error) {
	var ln net.Listener
	err := n.in(i, func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netns: node %d: listen on %s: %w", i, addr, err)
	}
	return ln.(*net.TCPListener), nil
}

// Dial connects to addr over TCP from inside node i's namespace, as the
// node's own dials do: tests use it to see which nodes reach which.
func (n *Net) Dial(i int, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := n.in(i, func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, timeout)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netns: node %d: dial %s: %w", i, addr, err)
	}
	return c, nil
}

// in runs f on an OS thread switched into node i's namespace, and switches
// the thread back before any other goroutine may run on it. f must make
// its sockets itself, not in other goroutines.
func (n *Net) in(i int, f func() error) error {
	if i < 0 || i >= n.cfg.Nodes {
		return fmt.Errorf("no node %d", i)
	}
	done := make(chan error, 1)
	go func() {
		// The goroutine stays locked if the thread cannot switch back:
		// Go then ends the thread with the goroutine, rather than letting
		// other goroutines run in the node's namespace.
		runtime.LockOSThread()
		err, restored := runIn("/run/netns/"+n.Namespace(i), f)
		if restored {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// runIn switches the calling (locked) thread into the namespace at path,
// runs f and switches back; restored says whether the thread is back in
// its own namespace.
func runIn(path string, f func() error) (err error, restored bool) {
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return err, true
	}
	defer self.Close()
	target, err := os.Open(path)
	if err != nil {
		return err, true
	}
	defer target.Close()
	if err := setns(target); err != nil {
		return err, true
	}
	err = f()
	if rerr := setns(self); rerr != nil {
		return fmt.Errorf("switching back: %w", rerr), false
	}
	return err, true
}

func setns(f *os.File) error {
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns: %w", err)
	}
	return nil
}
