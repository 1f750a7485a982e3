package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gossipmesh/api"
	"gossipmesh/gossip"
	"gossipmesh/membership"
	"gossipmesh/netns"
	"gossipmesh/node"
)

// Cluster is a mesh of node processes that this process launched and
// supervises. Its methods are safe for concurrent use: a dashboard may kill
// and restart nodes while a CLI command publishes.
type Cluster struct {
	cfg      Config
	topo     Topology
	adv      []string // each node's adversary modes, "" for honest (adversaries.go)
	hc       *http.Client
	logDir   string
	tempLogs bool // logDir is ours to remove

	mu      sync.Mutex
	procs   []*proc
	clients []*api.Client
	started bool
	stopped bool

	// The tracked state file (TrackState). stateMu is taken before mu,
	// never after.
	stateMu      sync.Mutex
	statePath    string
	statePID     int
	stateStarted time.Time
	stateErr     error // the last write's

	// net holds the nodes' namespaces when Config.Netns is set.
	net *netns.Net
}

// proc is one node slot: its listeners and log outlive the process, so a
// restarted node keeps its addresses and its peers reconnect to it.
type proc struct {
	index      int
	gossipLn   *os.File // inherited by the child as fd 3
	httpLn     *os.File // inherited by the child as fd 4
	gossipAddr string
	httpURL    string
	logPath    string
	log        *logFile // the child's stdout and stderr, capped

	// Guarded by Cluster.mu.
	cmd     *exec.Cmd
	pid     int
	start   uint64        // /proc start time of pid
	exe     string        // /proc executable of pid
	hold    *holder       // answers on the listeners while no process runs
	done    chan struct{} // closed once the current process is reaped
	reaped  bool          // the current process has been reaped
	exitErr error
	starts  int
}

// running reports whether the slot's process runs. Cluster.mu is held.
func (p *proc) running() bool { return p.done != nil && !p.reaped }

// NodeInfo describes one node slot.
type NodeInfo struct {
	Member
	// PIDStart is the process's /proc start time, which tells it apart
	// from a later process that reuses the PID.
	PIDStart uint64
	// Chosen lists the nodes this node dials.
	Chosen []int
	// Running is false after Kill, Stop or a crash, until Restart.
	Running bool
	// Starts counts the processes started in this slot.
	Starts int
	// ExitErr describes how the last process ended, if it did.
	ExitErr string
	// Exe is the process's executable as /proc shows it.
	Exe string
	// LogPath is the file that receives the node's stdout and stderr; it
	// is rotated to LogPath.1 at Config.LogMaxBytes.
	LogPath string
	// Adversary is the mode the node was launched with (mesh node
	// --adversary), "" for honest. PUT /adversary may have changed it
	// since: the node's GET /adversary says what is in force.
	Adversary string
}

// New validates cfg and draws the topology; Start launches it.
func New(cfg Config) (*Cluster, error) {
	cfg, err := cfg.withBinary()
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	topo := NewTopology(cfg.Nodes, cfg.Peers, cfg.Seed)
	adv, err := placeAdversaries(cfg.Adversaries, topo.IDs, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return &Cluster{cfg: cfg, topo: topo, adv: adv, hc: NewHTTPClient()}, nil
}

// Config returns the configuration, defaults filled in.
func (c *Cluster) Config() Config { return c.cfg }

// Topology returns the topology the launcher chose.
func (c *Cluster) Topology() Topology { return c.topo }

// LogDir is the directory holding the nodes' logs.
func (c *Cluster) LogDir() string { return c.logDir }

// Start binds every node's listeners, starts the processes and waits until
// the mesh is up (see WaitReady). On failure it stops whatever
// it started; the error names the node or link that failed and quotes the
// end of a crashed node's log.
func (c *Cluster) Start(ctx context.Context) (err error) {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("cluster: already started")
	}
	c.started = true
	c.mu.Unlock()
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()

	if c.cfg.LogDir != "" {
		if err := os.MkdirAll(c.cfg.LogDir, 0o755); err != nil {
			return fmt.Errorf("cluster: log directory: %w", err)
		}
		c.logDir = c.cfg.LogDir
	} else {
		dir, err := os.MkdirTemp("", "gossipmesh-logs-")
		if err != nil {
			return fmt.Errorf("cluster: log directory: %w", err)
		}
		c.logDir, c.tempLogs = dir, true
	}

	if err := c.writeKeys(); err != nil {
		return err
	}
	if err := c.makeNetns(ctx); err != nil {
		return err
	}
	procs := make([]*proc, c.cfg.Nodes)
	clients := make([]*api.Client, c.cfg.Nodes)
	for i := range procs {
		p, err := c.bind(i)
		c.mu.Lock()
		if p != nil {
			c.procs = append(c.procs, p)
		}
		c.mu.Unlock()
		if err != nil {
			return err
		}
		procs[i] = p
		clients[i] = api.NewClient(p.httpURL, c.hc)
	}
	c.mu.Lock()
	c.clients = clients
	for _, p := range procs {
		if err := c.spawnLocked(p); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	return c.WaitReady(ctx)
}

// keysDir is the directory, beside the nodes' logs, that holds their key
// files.
const keysDir = "keys"

// KeyPath is the file holding node i's key (Topology.Keys[i]), which the
// launcher writes at Start and passes to the node as --key: a restarted
// node proves the same id.
func (c *Cluster) KeyPath(i int) string {
	return filepath.Join(c.logDir, keysDir, fmt.Sprintf("node-%d.key", i))
}

// writeKeys saves every node's key under the log directory, in a
// directory only the owner can enter (0700) and files only the owner can
// read (0600).
func (c *Cluster) writeKeys() error {
	dir := filepath.Join(c.logDir, keysDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cluster: key directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("cluster: key directory: %w", err)
	}
	for i, k := range c.topo.Keys {
		if err := k.Save(c.KeyPath(i)); err != nil {
			return fmt.Errorf("cluster: node %d: %w", i, err)
		}
	}
	return nil
}

// bind opens node i's gossip listener on an ephemeral port and its HTTP
// listener on the gossip port plus HTTPPortOffset if that is free, else on
// any free port.
func (c *Cluster) bind(i int) (*proc, error) {
	gl, err := c.listen(i, 0)
	if err != nil {
		return nil, fmt.Errorf("cluster: node %d gossip listener: %w", i, err)
	}
	gport := gl.Addr().(*net.TCPAddr).Port
	var hl net.Listener
	if off := c.cfg.HTTPPortOffset; off >= 0 && gport+off <= 65535 {
		hl, _ = c.listen(i, gport+off)
	}
	if hl == nil {
		if hl, err = c.listen(i, 0); err != nil {
			gl.Close()
			return nil, fmt.Errorf("cluster: node %d HTTP listener: %w", i, err)
		}
	}
	// File duplicates the socket; the launcher keeps the duplicate open for
	// the slot's life so that a restarted node gets the same addresses.
	gf, gerr := gl.(*net.TCPListener).File()
	hf, herr := hl.(*net.TCPListener).File()
	gl.Close()
	hl.Close()
	if err := errors.Join(gerr, herr); err != nil {
		if gf != nil {
			gf.Close()
		}
		if hf != nil {
			hf.Close()
		}
		return nil, fmt.Errorf("cluster: node %d listener file: %w", i, err)
	}
	logPath := filepath.Join(c.logDir, fmt.Sprintf("node-%d.log", i))
	log, err := openLogFile(logPath, c.cfg.LogMaxBytes)
	if err != nil {
		gf.Close()
		hf.Close()
		return nil, fmt.Errorf("cluster: node %d: %w", i, err)
	}
	return &proc{
		index:      i,
		gossipLn:   gf,
		httpLn:     hf,
		gossipAddr: gl.Addr().String(),
		httpURL:    "http://" + hl.Addr().String(),
		logPath:    logPath,
		log:        log,
	}, nil
}

// nodeArgs is node i's command line. Its candidates are exactly the peers
// the launcher chose for it, so `--peers` of them "at random" is all of
// them (see Topology).
func (c *Cluster) nodeArgs(i int) []string {
	args := []string{"node",
		"--listen-fd", "3",
		"--http-fd", "4",
		"--key", c.KeyPath(i),
		"--seed", strconv.FormatUint(c.topo.Seeds[i], 10),
		"--strategy", string(c.cfg.Strategy),
		"--fanout", strconv.Itoa(c.cfg.Fanout),
		"--anti-entropy", gossip.FormatAntiEntropy(c.cfg.AntiEntropy),
		"--signing", string(c.cfg.Signing),
		"--log-format", c.cfg.LogFormat,
	}
	if len(c.cfg.Validators) > 0 {
		args = append(args, "--validate", strings.Join(c.cfg.Validators, ","))
	}
	chosen := c.topo.Chosen[i]
	if t, ok := c.eclipseTarget(i); ok && !slices.Contains(chosen, t) {
		chosen = append(slices.Clone(chosen), t)
	}
	if len(chosen) > 0 {
		addrs := make([]string, len(chosen))
		for k, j := range chosen {
			addrs[k] = c.procs[j].gossipAddr
		}
		args = append(args, "--candidates", strings.Join(addrs, ","), "--peers", strconv.Itoa(len(chosen)))
	}
	// Every node of a local mesh is on 127.0.0.1, and `up` allows up to
	// nodes-1 peers each: raise the node's link caps when its topology needs
	// more than the defaults, with room for one standby per inbound peer
	// (a restarted peer that reconnects before its old link is gone).
	inbound := 0
	for _, cs := range c.topo.Chosen {
		if slices.Contains(cs, i) {
			inbound++
		}
	}
	def := node.DefaultConfig()
	if need := len(c.topo.Chosen[i]) + 2*inbound; need > def.MaxPeers {
		args = append(args, "--max-peers", strconv.Itoa(need))
	}
	if need := 2 * inbound; need > def.MaxInboundPerIP {
		args = append(args, "--max-inbound-per-ip", strconv.Itoa(need))
	}
	if c.cfg.Membership {
		args = append(args, "--membership")
		if c.net != nil {
			// Peer exchange takes only loopback unless told: the nodes
			// listen in the namespaces' subnet.
			args = append(args, "--px-nets", c.net.Subnet().String())
		}
		if deg := len(c.topo.Chosen[i]) + inbound; deg > membership.DefaultConfig().ActiveHigh {
			args = append(args, "--active-high", strconv.Itoa(deg))
		}
	}
	if c.cfg.LogLevel != "" {
		args = append(args, "--log-level", c.cfg.LogLevel)
	}
	if c.cfg.MaxBody > 0 {
		args = append(args, "--max-body", strconv.Itoa(c.cfg.MaxBody))
	}
	if c.cfg.Receipts > 0 {
		args = append(args, "--receipts", strconv.Itoa(c.cfg.Receipts))
	}
	if m := c.advOf(i); m != "" {
		args = append(args, "--adversary", m)
	}
	return append(args, c.cfg.ExtraArgs...)
}

// spawnLocked starts a process in slot p. c.mu is held.
func (c *Cluster) spawnLocked(p *proc) error {
	// The launcher stops answering on the slot's listeners first, so that
	// the child alone accepts on them.
	if p.hold != nil {
		p.hold.release()
		p.hold = nil
	}
	cmd := c.command(p.index)
	cmd.ExtraFiles = []*os.File{p.gossipLn, p.httpLn}
	// The child writes into a pipe that a goroutine of exec copies into
	// the capped log (one pipe for both, since they are the same writer);
	// Wait returns once the copy has drained, so a crashed node's last
	// lines are in the file before checkExited quotes them.
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.Env = os.Environ()
	if c.cfg.GOMAXPROCS > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(c.cfg.GOMAXPROCS))
	}
	if c.cfg.CalmSysmon {
		cmd.Env = append(cmd.Env, "GODEBUG="+calmSysmon(os.Getenv("GODEBUG")))
	}
	cmd.SysProcAttr = sysProcAttr()
	// Start from a fresh goroutine, which is never locked to its OS thread:
	// Pdeathsig is tied to the forking thread (see sysProcAttr).
	started := make(chan error, 1)
	go func() { started <- cmd.Start() }()
	if err := <-started; err != nil {
		if p.done != nil && !c.stopped {
			p.hold, _ = holdSlot(p) // a slot left empty answers again
		}
		return fmt.Errorf("cluster: starting node %d: %w", p.index, err)
	}
	done := make(chan struct{})
	p.cmd, p.pid, p.done, p.exitErr, p.reaped = cmd, cmd.Process.Pid, done, nil, false
	p.start, _, _ = ProcStart(p.pid)
	// Start returns once the child has exec'd, so this is the node binary
	// (or ip, about to exec it: see nodeExe).
	p.exe = c.nodeExe(p.pid)
	p.starts++
	go c.reap(p, cmd, done)
	return nil
}

// reap waits for one process and records how it ended.
func (c *Cluster) reap(p *proc, cmd *exec.Cmd, done chan struct{}) {
	err := cmd.Wait()
	c.mu.Lock()
	current := p.cmd == cmd
	if current {
		p.exitErr, p.reaped = err, true
	}
	stopping := c.stopped
	if current && !stopping && p.hold == nil {
		// Without this, the listeners that the launcher keeps for a
		// restart accept connections that nothing ever answers.
		p.hold, _ = holdSlot(p)
	}
	c.mu.Unlock()
	// The state file says so before anyone waiting on done (Kill) goes on.
	if current && !stopping {
		_ = c.writeTrackedState()
	}
	close(done)
	if c.cfg.OnExit != nil {
		if stopping && isSignal(err, syscall.SIGTERM) {
			err = nil // the exit we asked for
		}
		c.cfg.OnExit(p.index, cmd.Process.Pid, err)
	}
}

// isSignal reports whether err is an exit caused by sig.
func isSignal(err error, sig syscall.Signal) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// WaitReady waits until every running node answers /healthz, every chosen
// link between running nodes is reported by both of its ends (with
// Membership, which owns the links: every node holds its low degree bound
// or its chosen degree, whichever is smaller), and the running nodes' peer
// graph is connected. It polls every 20 ms and fails fast if a node
// process exits; on timeout it says what the last whole poll found
// missing.
func (c *Cluster) WaitReady(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var why string
	for {
		if err := c.checkExited(); err != nil {
			return err
		}
		ok, w := c.ready(ctx)
		if ok {
			return nil
		}
		if ctx.Err() == nil {
			// A poll the deadline cut short says only that the time
			// is up: keep the reason the last whole poll gave.
			why = w
		} else if why == "" {
			why = w
		}
		select {
		case <-ctx.Done():
			if err := c.checkExited(); err != nil {
				return err
			}
			return fmt.Errorf("cluster: mesh not up: %s: %w", why, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// checkExited fails if a node that should be running has exited, quoting
// its log.
func (c *Cluster) checkExited() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if p.done != nil && !p.running() && p.exitErr != nil {
			return fmt.Errorf("cluster: node %d (pid %d) exited: %v%s", p.index, p.pid, p.exitErr, logTail(p.logPath, 2048))
		}
	}
	return nil
}

// ready checks the mesh once; when it is not ready, why says what is
// missing.
func (c *Cluster) ready(ctx context.Context) (ok bool, why string) {
	m := c.Mesh()
	running := c.runningSet()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	o := m.Observe(ctx)
	for i, err := range o.Errs {
		if running[i] && err != nil {
			return false, fmt.Sprintf("node %d not answering: %v", i, err)
		}
	}
	if c.cfg.Membership {
		// The membership owns the links: a node it saw as late (a loaded
		// machine) may have swapped a chosen link for another. Up means
		// every node holds its low degree bound, or its chosen degree if
		// that is smaller, and the graph below is connected.
		tg := c.topo.Graph()
		for i := range running {
			need := min(membership.DefaultConfig().ActiveLow, len(tg.Neighbours(i)))
			if running[i] && len(o.Peers[i]) < need {
				return false, fmt.Sprintf("node %d holds %d links, below %d", i, len(o.Peers[i]), need)
			}
		}
	} else {
		for _, l := range c.topo.Links() {
			if running[l[0]] && running[l[1]] && !o.Reports(l[0], l[1]) {
				return false, fmt.Sprintf("link %d–%d not up on both ends", l[0], l[1])
			}
		}
	}
	var links [][2]int
	var keep []int
	for i := range running {
		if running[i] {
			keep = append(keep, i)
		}
	}
	for _, l := range o.Graph.Links() {
		if running[l[0]] && running[l[1]] {
			links = append(links, l)
		}
	}
	// Renumber the running nodes 0..k-1 to test their connectivity.
	pos := make(map[int]int, len(keep))
	for k, i := range keep {
		pos[i] = k
	}
	for k := range links {
		links[k] = [2]int{pos[links[k][0]], pos[links[k][1]]}
	}
	if !NewGraph(len(keep), links).Connected() {
		return false, "peer graph not connected"
	}
	return true, ""
}

func (c *Cluster) runningSet() []bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := make([]bool, len(c.procs))
	for i, p := range c.procs {
		r[i] = p.running()
	}
	return r
}

// logTail returns the last n bytes of a log file, formatted to append to
// an error, or "" if there is nothing to show.
func logTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return ""
	}
	off := max(st.Size()-n, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if err != nil {
		return ""
	}
	return "\n--- end of " + path + " ---\n" + strings.TrimRight(string(b), "\n")
}

// Nodes describes every node slot, in index order.
func (c *Cluster) Nodes() []NodeInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]NodeInfo, len(c.procs))
	for i, p := range c.procs {
		ni := NodeInfo{
			Member: Member{
				Index:      i,
				ID:         c.topo.IDs[i].String(),
				PID:        p.pid,
				GossipAddr: p.gossipAddr,
				HTTPURL:    p.httpURL,
			},
			PIDStart:  p.start,
			Chosen:    slices.Clone(c.topo.Chosen[i]),
			Running:   p.running(),
			Starts:    p.starts,
			Exe:       p.exe,
			LogPath:   p.logPath,
			Adversary: c.advOf(i),
		}
		if p.exitErr != nil {
			ni.ExitErr = p.exitErr.Error()
		}
		out[i] = ni
	}
	return out
}

// Mesh returns a view of the cluster through its nodes' APIs, with the
// current PIDs.
func (c *Cluster) Mesh() *Mesh {
	nodes := c.Nodes()
	members := make([]Member, len(nodes))
	for i, n := range nodes {
		members[i] = n.Member
	}
	m, err := NewMesh(members, c.hc)
	if err != nil {
		panic(err) // ids are unique and indices ordered by construction
	}
	return m
}

// Client returns node i's API client.
func (c *Cluster) Client(i int) *api.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clients[i]
}

// Kill sends SIGKILL to node i and waits until it is reaped. Killing a node
// that is not running is not an error.
func (c *Cluster) Kill(i int) error {
	c.mu.Lock()
	if i < 0 || i >= len(c.procs) {
		c.mu.Unlock()
		return fmt.Errorf("cluster: no node %d", i)
	}
	p := c.procs[i]
	if !p.running() {
		c.mu.Unlock()
		return nil
	}
	cmd, done := p.cmd, p.done
	c.mu.Unlock()
	// Process.Signal targets this very process (a pidfd on Linux), never a
	// later process that reuses the PID.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("cluster: killing node %d: %w", i, err)
	}
	<-done
	return nil
}

// Restart kills node i if it is running, starts a new process in its slot
// (same id, addresses and chosen peers) and waits until the mesh is ready
// again, within StartTimeout.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	if err := c.respawn(i); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	return c.WaitReady(ctx)
}

// respawn kills node i if it is running, starts a new process in its slot
// and records it in the state file, without waiting for it: Restart and
// restartSlot wait for different things.
func (c *Cluster) respawn(i int) error {
	if err := c.Kill(i); err != nil {
		return err
	}
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return errors.New("cluster: stopped")
	}
	err := c.spawnLocked(c.procs[i])
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := c.writeTrackedState(); err != nil {
		return fmt.Errorf("cluster: node %d restarted: %w", i, err)
	}
	return nil
}

// Stop sends SIGTERM to every running node, SIGKILL to those still running
// after StopTimeout, reaps them all, and closes the listeners. It is safe
// to call more than once.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	type victim struct {
		cmd  *exec.Cmd
		done chan struct{}
	}
	var vs []victim
	var holds []*holder
	for _, p := range c.procs {
		if p.running() {
			vs = append(vs, victim{p.cmd, p.done})
		}
		if p.hold != nil {
			holds, p.hold = append(holds, p.hold), nil
		}
	}
	procs := c.procs
	c.mu.Unlock()
	for _, h := range holds {
		h.release()
	}
	stateErr := c.untrackState()

	for _, v := range vs {
		_ = v.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.NewTimer(c.cfg.StopTimeout)
	defer deadline.Stop()
	var killed []int
	expired := false
	for _, v := range vs {
		if !expired {
			select {
			case <-v.done:
				continue
			case <-deadline.C:
				expired = true
			}
		}
		select {
		case <-v.done:
			continue
		default:
		}
		_ = v.cmd.Process.Signal(syscall.SIGKILL)
		killed = append(killed, v.cmd.Process.Pid)
		<-v.done
	}
	errs := []error{stateErr}
	for _, p := range procs {
		errs = append(errs, p.gossipLn.Close(), p.httpLn.Close(), p.log.Close())
	}
	if c.tempLogs {
		errs = append(errs, os.RemoveAll(c.logDir))
	}
	errs = append(errs, c.closeNetns())
	if len(killed) > 0 {
		errs = append(errs, fmt.Errorf("cluster: pids %v ignored SIGTERM for %v and were killed", killed, c.cfg.StopTimeout))
	}
	return errors.Join(errs...)
}

// calmSysmonSetting is the GODEBUG setting behind Config.CalmSysmon: a
// scheduler trace every 2^31−1 ms (24.8 days), which keeps sysmon out of
// its deep sleep and so out of the 20 µs polling that follows it.
const calmSysmonSetting = "schedtrace=2147483647"

// calmSysmon adds calmSysmonSetting to a GODEBUG value, unless the value
// sets schedtrace itself: the user's choice wins.
func calmSysmon(godebug string) string {
	for _, kv := range strings.Split(godebug, ",") {
		if strings.HasPrefix(strings.TrimSpace(kv), "schedtrace=") {
			return godebug
		}
	}
	if godebug == "" {
		return calmSysmonSetting
	}
	return godebug + "," + calmSysmonSetting
}
