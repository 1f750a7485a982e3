// Package netns builds a private network of Linux network namespaces for
// running mesh nodes over real network stacks: one namespace per node, each
// with its own address, joined by veth pairs to bridges in a hub namespace
// of their own. The nodes are grouped into segments (contiguous blocks of
// indices, one bridge each); each segment's bridge is joined to a core
// bridge by a trunk veth pair, so that taking a segment's trunk down cuts
// the segment off from every other one for real: frames are lost on the
// wire, TCP connections stall rather than close, and nothing in the node
// knows why. The launcher in the root namespace keeps a leg into every
// segment, so it reaches every node's HTTP API during such a partition.
//
// Addresses come from 198.18.0.0/15, the range RFC 2544 reserves for
// benchmarking networks: a Net claims one /24 of it (198.18.0.0/24 to
// 198.19.255.0/24) that no interface of the root namespace uses and no
// other Net holds. Node i is .10+i, the root namespace's leg into segment s
// is .1+s. The root namespace gets only /32 host routes, one per node of
// this Net, so nothing but this Net's own namespaces is ever addressed.
//
// Everything a Net creates is named after its /24 (namespaces
// gmesh-<k>-hub and gmesh-<k>-<i>, root links gmesh<k>s<s>), so that
// parallel runs never clash, and Close removes every object carrying this
// Net's names, even ones a failed New left half made. It needs root (or
// CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2's ip; Usable says
// whether this machine can.
package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxNodes bounds Config.Nodes: node i is .10+i of one /24.
const MaxNodes = 240

// MaxSegments bounds Config.Segments: the root namespace's legs are .1 to
// .8, below the first node's .10.
const MaxSegments = 8

// Config describes a Net. Start from DefaultConfig.
type Config struct {
	// Nodes is how many node namespaces to make, 1 to MaxNodes. Default 10.
	Nodes int
	// Segments is how many bridges the nodes are spread over, in
	// contiguous blocks of indices (with 2 and 10 nodes: 0-4 and 5-9), 1
	// to MaxSegments and at most Nodes. Taking a segment's trunk down
	// (SetSegment) partitions it from the rest. Default 2: halves.
	Segments int
	// IP is the iproute2 binary. Default: "ip" looked up in PATH, then
	// /usr/sbin/ip and /sbin/ip (root's PATH has them; others' may not).
	IP string
	// CommandTimeout bounds each ip command. Default 10 s.
	CommandTimeout time.Duration
}

// DefaultConfig returns the defaults documented on each Config field.
func DefaultConfig() Config {
	return Config{Nodes: 10, Segments: 2, CommandTimeout: 10 * time.Second}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Nodes < 1 || c.Nodes > MaxNodes:
		return fmt.Errorf("netns: nodes must be 1 to %d, got %d", MaxNodes, c.Nodes)
	case c.Segments < 1 || c.Segments > MaxSegments:
		return fmt.Errorf("netns: segments must be 1 to %d, got %d", MaxSegments, c.Segments)
	case c.Segments > c.Nodes:
		return fmt.Errorf("netns: segments must be at most nodes = %d, got %d", c.Nodes, c.Segments)
	case c.CommandTimeout <= 0:
		return fmt.Errorf("netns: command timeout must be positive, got %v", c.CommandTimeout)
	}
	return nil
}

// FindIP returns the path of iproute2's ip, or an error saying it is
// missing.
func FindIP() (string, error) {
	if p, err := exec.LookPath("ip"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/ip", "/sbin/ip"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", errors.New("netns: iproute2's ip is not installed (apt-get install iproute2)")
}

// Net is a set of namespaces that New made and Close removes. Its methods
// are safe for concurrent use.
type Net struct {
	cfg    Config
	k      int        // which /24 of 198.18.0.0/15
	base   netip.Addr // 198.18.0.0 + 256k
	closed sync.Once
	err    error // Close's
}

// subnets is how many /24s 198.18.0.0/15 holds.
const subnets = 512

// New makes the namespaces, links and addresses that cfg describes, and
// waits until every node's link is up. On failure it removes whatever it
// made. Close removes it all.
func New(ctx context.Context, cfg Config) (*Net, error) {
	if cfg.IP == "" {
		ip, err := FindIP()
		if err != nil {
			return nil, err
		}
		cfg.IP = ip
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("netns: making network namespaces needs root, running as uid %d", os.Geteuid())
	}
	n := &Net{cfg: cfg}
	if err := n.claim(ctx); err != nil {
		return nil, err
	}
	if err := n.build(ctx); err != nil {
		return nil, errors.Join(err, n.Close())
	}
	return n, nil
}

// claim picks a free /24 and takes it by creating the hub namespace, which
// fails if another Net (or a leftover of one) holds the name.
func (n *Net) claim(ctx context.Context) error {
	used := map[int]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				if k, ok := subnetOf(p.Addr()); ok {
					used[k] = true
				}
			}
		}
	}
	start := rand.IntN(subnets)
	var last error
	for d := range subnets {
		k := (start + d) % subnets
		if used[k] {
			continue
		}
		n.k = k
		n.base = netip.AddrFrom4([4]byte{198, byte(18 + k/256), byte(k % 256), 0})
		if _, err := os.Stat("/run/netns/" + n.Hub()); err == nil {
			continue
		}
		if last = n.ip(ctx, "netns", "add", n.Hub()); last == nil {
			return nil
		}
		if !strings.Contains(last.Error(), "exist") {
			return last
		}
	}
	return fmt.Errorf("netns: no free /24 in 198.18.0.0/15: %v", last)
}

// subnetOf says which /24 of the range a holds.
func subnetOf(a netip.Addr) (int, bool) {
	if !a.Is4() {
		return 0, false
	}
	b := a.As4()
	if b[0] != 198 || (b[1] != 18 && b[1] != 19) {
		return 0, false
	}
	return int(b[1]-18)*256 + int(b[2]), true
}

func (n *Net) build(ctx context.Context) error {
	h := n.Hub()
	steps := [][]string{
		{"-n", h, "link", "set", "lo", "up"},
		{"-n", h, "link", "add", "brc", "type", "bridge"},
		{"-n", h, "link", "set", "brc", "up"},
	}
	for s := range n.cfg.Segments {
		br, trunk, core, leg, root := "br"+strconv.Itoa(s), n.Trunk(s), "c"+strconv.Itoa(s), "u"+strconv.Itoa(s), n.RootLink(s)
		steps = append(steps,
			[]string{"-n", h, "link", "add", br, "type", "bridge"},
			[]string{"-n", h, "link", "set", br, "up"},
			// The trunk joins the segment's bridge to the core bridge.
			[]string{"-n", h, "link", "add", trunk, "type", "veth", "peer", "name", core},
			[]string{"-n", h, "link", "set", trunk, "master", br},
			[]string{"-n", h, "link", "set", core, "master", "brc"},
			[]string{"-n", h, "link", "set", trunk, "up"},
			[]string{"-n", h, "link", "set", core, "up"},
			// The root namespace's leg into the segment.
			[]string{"link", "add", root, "type", "veth", "peer", "name", leg, "netns", h},
			[]string{"-n", h, "link", "set", leg, "master", br},
			[]string{"-n", h, "link", "set", leg, "up"},
			[]string{"addr", "add", n.rootAddr(s).String() + "/32", "dev", root},
		)
	}
	for i := range n.cfg.Nodes {
		ns, v, s := n.Namespace(i), "v"+strconv.Itoa(i), n.Segment(i)
		steps = append(steps,
			[]string{"netns", "add", ns},
			[]string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"-n", h, "link", "add", v, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"-n", h, "link", "set", v, "master", "br" + strconv.Itoa(s)},
			[]string{"-n", h, "link", "set", v, "up"},
			[]string{"-n", ns, "addr", "add", n.Addr(i).String() + "/24", "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"},
		)
	}
	for _, st := range steps {
		if err := n.ip(ctx, st...); err != nil {
			return err
		}
	}
	for s := range n.cfg.Segments {
		// The legs share one Ethernet while the mesh is whole: each must
		// answer ARP for its own address only, or a node could learn the
		// MAC of a leg in another segment and lose the launcher when that
		// segment is cut off.
		if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+n.RootLink(s)+"/arp_ignore", []byte("1"), 0); err != nil {
			return fmt.Errorf("netns: %s arp_ignore: %w", n.RootLink(s), err)
		}
		if err := n.ip(ctx, "link", "set", n.RootLink(s), "up"); err != nil {
			return err
		}
	}
	if err := n.waitUp(ctx); err != nil {
		return err
	}
	for i := range n.cfg.Nodes {
		s := n.Segment(i)
		if err := n.ip(ctx, "route", "add", n.Addr(i).String()+"/32", "dev", n.RootLink(s), "src", n.rootAddr(s).String()); err != nil {
			return err
		}
	}
	return nil
}

// waitUp waits until every link the Net made is up. A veth's carrier
// comes on asynchronously (the kernel's link watcher runs it, up to a
// second later), and until then the link drops what it is given: a dial
// right after New, or right after a trunk comes back, would be lost.
func (n *Net) waitUp(ctx context.Context) error {
	var hub []string
	for s := range n.cfg.Segments {
		hub = append(hub, n.Trunk(s), "c"+strconv.Itoa(s), "u"+strconv.Itoa(s))
	}
	for i := range n.cfg.Nodes {
		hub = append(hub, n.NodeLink(i))
	}
	if err := n.waitLinks(ctx, n.Hub(), hub); err != nil {
		return err
	}
	var root []string
	for s := range n.cfg.Segments {
		root = append(root, n.RootLink(s))
	}
	if err := n.waitLinks(ctx, "", root); err != nil {
		return err
	}
	for i := range n.cfg.Nodes {
		if err := n.waitLinks(ctx, n.Namespace(i), []string{"eth0"}); err != nil {
			return err
		}
	}
	return nil
}

// waitLinks waits until every named link of namespace ns ("": the root
// namespace) reports operational state UP, for at most CommandTimeout.
func (n *Net) waitLinks(ctx context.Context, ns string, names []string) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.CommandTimeout)
	defer cancel()
	args := []string{"-o", "link", "show"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	for {
		out, err := exec.CommandContext(ctx, n.cfg.IP, args...).Output()
		if err != nil {
			return fmt.Errorf("netns: ip %s: %w", strings.Join(args, " "), err)
		}
		up := map[string]bool{}
		for line := range strings.SplitSeq(string(out), "\n") {
			// "7: v0@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu ... state UP ..."
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			k := slices.Index(f, "state")
			up[name] = k >= 0 && k+1 < len(f) && f[k+1] == "UP"
		}
		var down []string
		for _, name := range names {
			if !up[name] {
				down = append(down, name)
			}
		}
		if len(down) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("netns: links %v of namespace %q not up: %w", down, ns, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ip runs one iproute2 command.
func (n *Net) ip(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.CommandTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, n.cfg.IP, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("netns: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// Nodes is how many node namespaces the Net has.
func (n *Net) Nodes() int { return n.cfg.Nodes }

// Segments is how many segments the Net has.
func (n *Net) Segments() int { return n.cfg.Segments }

// IP is the path of the ip binary the Net runs.
func (n *Net) IP() string { return n.cfg.IP }

// Subnet is the /24 the Net holds.
func (n *Net) Subnet() netip.Prefix { return netip.PrefixFrom(n.base, 24) }

// Hub is the name of the namespace that holds the bridges and trunks.
func (n *Net) Hub() string { return fmt.Sprintf("gmesh-%d-hub", n.k) }

// Namespace is node i's namespace name, for `ip netns exec`.
func (n *Net) Namespace(i int) string { return fmt.Sprintf("gmesh-%d-%d", n.k, i) }

// Addr is node i's address, on eth0 of its namespace.
func (n *Net) Addr(i int) netip.Addr { return n.host(10 + i) }

// Segment is the segment that node i belongs to: nodes are spread over
// the segments in contiguous blocks, the first ones one larger when the
// division is not even.
func (n *Net) Segment(i int) int {
	// Block s holds indices [s*N/S, (s+1)*N/S).
	for s := n.cfg.Segments - 1; s >= 0; s-- {
		if i >= s*n.cfg.Nodes/n.cfg.Segments {
			return s
		}
	}
	return 0
}

// Trunk is the name, in the hub namespace, of the veth that joins segment
// s's bridge to the core bridge.
func (n *Net) Trunk(s int) string { return "t" + strconv.Itoa(s) }

// NodeLink is the name, in the hub namespace, of the bridge end of node
// i's veth pair (its other end is eth0 in the node's namespace).
func (n *Net) NodeLink(i int) string { return "v" + strconv.Itoa(i) }

func (n *Net) host(h int) netip.Addr {
	b := n.base.As4()
	b[3] = byte(h)
	return netip.AddrFrom4(b)
}

func (n *Net) rootAddr(s int) netip.Addr { return n.host(1 + s) }

// RootLink is the name, in the root namespace, of the launcher's leg into
// segment s.
func (n *Net) RootLink(s int) string { return fmt.Sprintf("gmesh%ds%d", n.k, s) }

// SetSegment takes segment s's trunk down (up false), which cuts the
// segment off from every other segment while its own nodes, and the
// launcher, still reach each other; or brings it back up, and then waits
// until the trunk carries frames again. Cutting every
// segment but one, or all of them, is a partition into that many parts.
func (n *Net) SetSegment(ctx context.Context, s int, up bool) error {
	if s < 0 || s >= n.cfg.Segments {
		return fmt.Errorf("netns: no segment %d", s)
	}
	if err := n.ip(ctx, "-n", n.Hub(), "link", "set", n.Trunk(s), upDown(up)); err != nil || !up {
		return err
	}
	return n.waitLinks(ctx, n.Hub(), []string{n.Trunk(s), "c" + strconv.Itoa(s)})
}

// SetNode takes node i's link down (up false), which cuts the node off
// from everyone, the launcher included; or brings it back up, and then
// waits until the link carries frames again.
func (n *Net) SetNode(ctx context.Context, i int, up bool) error {
	if i < 0 || i >= n.cfg.Nodes {
		return fmt.Errorf("netns: no node %d", i)
	}
	if err := n.ip(ctx, "-n", n.Hub(), "link", "set", n.NodeLink(i), upDown(up)); err != nil || !up {
		return err
	}
	return n.waitLinks(ctx, n.Hub(), []string{n.NodeLink(i)})
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// Command returns a command that runs name with args inside node i's
// namespace, through `ip netns exec`, which execs it in place: the PID is
// the program's.
func (n *Net) Command(i int, name string, args ...string) *exec.Cmd {
	return exec.Command(n.cfg.IP, append([]string{"netns", "exec", n.Namespace(i), name}, args...)...)
}

// Close removes every namespace named after this Net's /24, which takes
// with it every bridge, trunk and veth it made (the root legs are the
// peers of hub links) and the root routes through them; then it removes
// any root leg left. It is safe to call more than once and returns the
// first call's error.
func (n *Net) Close() error {
	n.closed.Do(func() {
		ctx := context.Background()
		var errs []error
		prefix := fmt.Sprintf("gmesh-%d-", n.k)
		entries, err := os.ReadDir("/run/netns")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("netns: listing namespaces: %w", err))
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), prefix) {
				if err := n.ip(ctx, "netns", "delete", e.Name()); err != nil {
					errs = append(errs, err)
				}
			}
		}
		for s := range MaxSegments {
			if _, err := net.InterfaceByName(n.RootLink(s)); err == nil {
				if err := n.ip(ctx, "link", "delete", n.RootLink(s)); err != nil && !strings.Contains(err.Error(), "Cannot find") {
					errs = append(errs, err)
				}
			}
		}
		n.err = errors.Join(errs...)
	})
	return n.err
}

// Usable says why this process cannot make a Net, or nil if it can: it
// must run as root on Linux with iproute2 installed, and the kernel must
// let it make a namespace (a container without CAP_SYS_ADMIN does not).
// It makes and removes one scratch namespace to find out.
func Usable(ctx context.Context) error {
	if runtime.GOOS != "linux" {
		return errors.New("netns: network namespaces need Linux")
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("netns: making network namespaces needs root, running as uid %d", os.Geteuid())
	}
	ip, err := FindIP()
	if err != nil {
		return err
	}
	n := &Net{cfg: Config{IP: ip, CommandTimeout: DefaultConfig().CommandTimeout}}
	name := fmt.Sprintf("gmesh-probe-%d-%d", os.Getpid(), rand.IntN(1<<30))
	if err := n.ip(ctx, "netns", "add", name); err != nil {
		return err
	}
	return n.ip(ctx, "netns", "delete", name)
}
