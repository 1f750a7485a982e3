package cluster

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"gossipmesh/netns"
)

// Netns returns the network namespaces the nodes run in, or nil when
// Config.Netns is off or the cluster has not started. Tests and the CLI
// take its trunks down to partition the mesh for real.
func (c *Cluster) Netns() *netns.Net {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.net
}

// makeNetns makes the nodes' namespaces when Config.Netns is set. Stop
// removes them, and Start calls Stop when it fails.
func (c *Cluster) makeNetns(ctx context.Context) error {
	if !c.cfg.Netns {
		return nil
	}
	cfg := netns.DefaultConfig()
	cfg.Nodes, cfg.Segments = c.cfg.Nodes, c.cfg.NetnsSegments
	n, err := netns.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	c.mu.Lock()
	c.net = n
	c.mu.Unlock()
	return nil
}

// closeNetns removes the nodes' namespaces, once every node is gone.
func (c *Cluster) closeNetns() error {
	c.mu.Lock()
	n := c.net
	c.mu.Unlock()
	if n == nil {
		return nil
	}
	if err := n.Close(); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}

// listen opens a listener for node i on port (0: any): on Config.Host,
// or on the node's own address inside its namespace.
func (c *Cluster) listen(i, port int) (net.Listener, error) {
	if c.net == nil {
		return net.Listen("tcp", net.JoinHostPort(c.cfg.Host, strconv.Itoa(port)))
	}
	ln, err := c.net.Listen(i, net.JoinHostPort(c.net.Addr(i).String(), strconv.Itoa(port)))
	if err != nil {
		return nil, err // not a typed nil in an interface
	}
	return ln, nil
}

// command is node i's process: `Binary node ...`, or in its namespace
// `ip netns exec NS Binary node ...`, which execs the node in place (same
// PID). The node inherits its listeners either way.
func (c *Cluster) command(i int) *exec.Cmd {
	if c.net == nil {
		return exec.Command(c.cfg.Binary, c.nodeArgs(i)...)
	}
	return c.net.Command(i, c.cfg.Binary, c.nodeArgs(i)...)
}

// nodeExe is the executable that proves process pid is a node of this
// mesh (see Identify). A node started through `ip netns exec` may still be
// ip when Start returns, so the executable is the resolved Binary, which
// /proc/PID/exe names once ip has exec'd.
func (c *Cluster) nodeExe(pid int) string {
	if c.net == nil {
		exe, _ := ProcExe(pid)
		return exe
	}
	exe, err := filepath.Abs(c.cfg.Binary)
	if err != nil {
		return ""
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return exe
}

// NetnsNote tells a user of `mesh up --netns` where the nodes run and how
// to cut the mesh in halves for real, or returns "" without namespaces.
func (c *Cluster) NetnsNote() string {
	n := c.Netns()
	if n == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "network namespaces: node i runs in %s, on %s; bridges and trunks in %s\n",
		strings.Replace(n.Namespace(0), "-0", "-<i>", 1), n.Subnet(), n.Hub())
	fmt.Fprintf(&b, "run a command beside node 0:  %s netns exec %s <command>\n", n.IP(), n.Namespace(0))
	for s := 1; s < n.Segments(); s++ {
		first, last := -1, -1
		for i := range n.Nodes() {
			if n.Segment(i) == s {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		fmt.Fprintf(&b, "cut nodes %d-%d off from the rest:  %s -n %s link set %s down   (heal: ... up)\n",
			first, last, n.IP(), n.Hub(), n.Trunk(s))
	}
	return b.String()
}
