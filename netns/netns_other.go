//go:build !linux

package netns

import (
	"errors"
	"net"
	"time"
)

var errLinux = errors.New("netns: network namespaces need Linux")

// Listen needs Linux network namespaces.
func (n *Net) Listen(i int, addr string) (*net.TCPListener, error) { return nil, errLinux }

// Dial needs Linux network namespaces.
func (n *Net) Dial(i int, addr string, timeout time.Duration) (net.Conn, error) {
	return nil, errLinux
}
