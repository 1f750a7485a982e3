package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gossipmesh/adversary"
	"gossipmesh/api"
	"gossipmesh/gossip"
	"gossipmesh/identity"
	"gossipmesh/membership"
	"gossipmesh/node"
	"gossipmesh/transport/tcp"
)

// httpPortOffset is the lesson's convention: a node's HTTP port is its
// gossip port plus 1000.
const httpPortOffset = 1000

// logBufferSize bounds the log lines waiting for stderr: some 20,000
// receipt lines, a few seconds of a busy node's output.
const logBufferSize = 4 << 20

// runNode runs one peer: gossip over TCP and the HTTP API, until Ctrl-C or
// SIGTERM.
func runNode(ctx context.Context, args []string, _, stderr io.Writer) error {
	def := node.DefaultConfig()
	fs := newFlagSet("node", "node [flags]", stderr)
	listen := fs.String("listen", def.Listen, "gossip listen `address`")
	httpAddr := fs.String("http", "", "HTTP listen `address` (default: the gossip host, at the gossip port + 1000)")
	listenFD := fs.Int("listen-fd", -1, "serve gossip on the inherited, already-listening socket at file descriptor `N` (3 is the first of exec.Cmd.ExtraFiles) instead of --listen")
	httpFD := fs.Int("http-fd", -1, "serve HTTP on the inherited, already-listening socket at file descriptor `N` instead of --http")
	idHex := fs.String("id", "", "no longer accepted: a node's id derives from its key (see --key)")
	keyFile := fs.String("key", "", "the node's ed25519 key `file` (PKCS #8 PEM, as `mesh up` writes them); its id derives from the key (default: the key in --data-dir, made there on first start)")
	dataDir := fs.String("data-dir", "", "`directory` where a node without --key keeps its key, as node.key (made 0700 if missing; default .mesh/node-HOST-PORT beside the working directory, from the gossip address bound)")
	candidates := fs.String("candidates", "", "comma-separated gossip `addresses` this node may dial")
	peers := fs.Int("peers", def.Peers, "how many candidates to dial, chosen at random")
	seed := fs.Uint64("seed", 0, "seed for the peer choice and the router's randomness (default random)")
	strategy := fs.String("strategy", string(def.Gossip.Strategy), fmt.Sprintf("router: one of %v", gossip.Strategies()))
	antiEntropy := def.Gossip.AntiEntropy
	fs.Var(antiEntropyValue{&antiEntropy}, "anti-entropy", gossip.AntiEntropyUsage)
	fanout := fs.Int("fanout", def.Gossip.Fanout, "peers per message for --strategy fanout")
	signing := fs.String("signing", string(def.Gossip.Signing), signingUsage)
	validate := fs.String("validate", "", validateUsage())
	originRate := fs.Float64("origin-rate", def.Gossip.OriginRate, originRateUsage)
	maxBody := fs.Int("max-body", def.Gossip.MaxBody, "largest message body in `bytes`; the frame limit is this plus the header")
	receipts := fs.Int("receipts", def.Receipts, "receipts to keep, newest first")
	maxPeers := fs.Int("max-peers", def.MaxPeers, "most links, live and standby; inbound ones get what --peers leaves")
	maxPerIP := fs.Int("max-inbound-per-ip", def.MaxInboundPerIP, "most inbound links from one source IP")
	scoring := fs.Bool("scoring", true, "score every peer (time connected, first deliveries, delivery deficit, invalid messages, IP colocation, broken promises) and, below the thresholds, take its eager link, its gossip, its frames and then its link away: banned for 10 minutes (GET /peers/banned); --scoring=false turns it off")
	frameRate := fs.Int("peer-frame-rate", def.PeerFrameRate, "most frames a second one link may send this node (a second's worth of burst); the excess is dropped, counted and held against the peer's score; 0 no limit")
	byteRate := fs.Int64("peer-byte-rate", def.PeerByteRate, "most `bytes` a second one link may send this node, as --peer-frame-rate; 0 no limit")
	memoryBudget := fs.Int64("memory-budget", def.MemoryBudget, "the node's memory budget in `bytes`: inbox, send queues and receipt bodies get shares of it, and the Go runtime's soft memory limit is set to 7/8 of it unless GOMEMLIMIT is set")
	md := membership.DefaultConfig()
	member := fs.Bool("membership", false, "run the membership: heartbeats and suspicion on idle links, active/passive views with degree bounds, peer exchange, replacing lost peers from the passive view")
	activeLow := fs.Int("active-low", md.ActiveLow, "with --membership: dial from the passive view below this many links")
	activeHigh := fs.Int("active-high", md.ActiveHigh, "with --membership: drop links above this many")
	passiveSize := fs.Int("passive-size", md.PassiveSize, "with --membership: most (id, address) pairs kept in the passive view")
	probeInterval := fs.Duration("probe-interval", md.ProbeInterval, "with --membership: PING a link silent this long")
	probeTimeout := fs.Duration("probe-timeout", md.ProbeTimeout, "with --membership: suspect a peer silent this long after a PING")
	suspicionMult := fs.Int("suspicion-mult", md.SuspicionMult, "with --membership: evict a suspect silent for this many probe intervals")
	pxInterval := fs.Duration("px-interval", md.ExchangeInterval, "with --membership: mean time between peer exchanges")
	pxNets := fs.String("px-nets", "", "with --membership: comma-separated CIDR `prefixes`, besides loopback, that peer-exchange addresses may be in")
	advModes := fs.String("adversary", "", "make the node misbehave, to watch the defences: comma-separated `modes` (blackhole, tamper, forge, replay, spam=RATE, spam-invalid=RATE, delay=D, censor=ID, liar, eclipse=TARGET); PUT /adversary changes them at run time (default honest)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the node's whole run to `FILE` (go tool pprof), to find where a node spends its time under load; a %p in FILE becomes the process id, so that the nodes of one mesh can share the flag")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	usageErr := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "mesh node: "+format+"\n", a...)
		return errUsage
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected arguments: %q", fs.Args())
	}
	// A malformed address is a usage error before anything is bound.
	if err := checkListenAddr(*listen); err != nil && *listenFD < 0 {
		return usageErr("--listen: %v", err)
	}
	if err := checkListenAddr(*httpAddr); err != nil && *httpFD < 0 && *httpAddr != "" {
		return usageErr("--http: %v", err)
	}

	cfg := def
	var err error
	cfg.Listen = *listen
	cfg.Peers = *peers
	cfg.Receipts = *receipts
	cfg.MaxPeers, cfg.MaxInboundPerIP = *maxPeers, *maxPerIP
	cfg.MemoryBudget = *memoryBudget
	cfg.PeerFrameRate, cfg.PeerByteRate = *frameRate, *byteRate
	if !*scoring {
		cfg.Scoring = nil
	}
	cfg.Gossip.Fanout = *fanout
	cfg.Gossip.AntiEntropy = antiEntropy
	cfg.Gossip.MaxBody = *maxBody
	cfg.Gossip.OriginRate = *originRate
	if cfg.Gossip.Signing, err = gossip.ParseSigning(*signing); err != nil {
		return usageErr("--signing: %v", err)
	}
	if cfg.Gossip.Validators, err = gossip.ParseValidators(*validate); err != nil {
		return usageErr("--validate: %v", err)
	}
	if *seed != 0 {
		cfg.Seed = *seed
	}
	if *idHex != "" {
		return usageErr("--id is gone: a node's id derives from its public key, so that a peer cannot claim an id it does not hold; give the key with --key FILE, or let the node keep one in --data-dir")
	}
	if *keyFile != "" {
		if cfg.Key, err = identity.Load(*keyFile); err != nil {
			return usageErr("--key: %v", err)
		}
	}
	if *member {
		md.ActiveLow, md.ActiveHigh, md.PassiveSize = *activeLow, *activeHigh, *passiveSize
		md.ProbeInterval, md.ProbeTimeout, md.SuspicionMult = *probeInterval, *probeTimeout, *suspicionMult
		md.ExchangeInterval = *pxInterval
		nets, err := membership.ParseNets(*pxNets)
		if err != nil {
			return usageErr("--px-nets: %v", err)
		}
		md.AllowedNets = nets
		cfg.Membership = &md
	}
	advm, err := adversary.Parse(*advModes)
	if err != nil {
		return usageErr("--adversary: %v", err)
	}
	cfg.Adversary = advm
	st, err := gossip.ParseStrategy(*strategy)
	if err != nil {
		return usageErr("--strategy: %v", err)
	}
	cfg.Gossip.Strategy = st
	for _, c := range strings.Split(*candidates, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(c); err != nil {
			return usageErr("--candidates: %q is not host:port", c)
		}
		cfg.Candidates = append(cfg.Candidates, c)
	}
	// Log lines go out through a bounded buffer: a slow or stuck stderr
	// costs dropped (and counted) lines, never a stalled node.
	logOut := node.NewLogWriter(stderr, logBufferSize)
	defer logOut.Close()
	logger, err := newLogger(logOut, *logFormat, *logLevel)
	if err != nil {
		return usageErr("%v", err)
	}
	cfg.Logger = logger
	if err := cfg.Validate(); err != nil {
		return usageErr("%v", err)
	}

	// Bind (or adopt) both listeners before the node starts, so that the
	// default HTTP address can follow the gossip port actually bound.
	if *listenFD >= 0 {
		if cfg.Listener, err = tcp.FileListener(*listenFD); err != nil {
			return usageErr("--listen-fd: %v", err)
		}
	} else if cfg.Listener, err = cfg.Transport.Listen(cfg.Listen); err != nil {
		return err
	}
	var httpLn net.Listener
	switch {
	case *httpFD >= 0:
		if httpLn, err = tcp.FileListener(*httpFD); err != nil {
			cfg.Listener.Close()
			return usageErr("--http-fd: %v", err)
		}
	default:
		addr := *httpAddr
		if addr == "" {
			addr, err = defaultHTTPAddr(cfg.Listener.Addr().String())
		}
		if err == nil {
			httpLn, err = cfg.Transport.Listen(addr)
		}
		if err != nil {
			cfg.Listener.Close()
			return fmt.Errorf("http: %w", err)
		}
	}
	cfg.HTTPAddr = httpLn.Addr().String()
	if cfg.Key == nil {
		cfg.DataDir = *dataDir
		if cfg.DataDir == "" {
			cfg.DataDir = defaultDataDir(cfg.Listener.Addr().String())
		}
	}
	n, err := node.New(cfg)
	if err != nil {
		httpLn.Close()
		cfg.Listener.Close()
		return err
	}
	node.SetProcessMemoryLimit(cfg.MemoryBudget) // one node per process: the limit is process-wide
	keyPath, how := *keyFile, "loaded"
	if keyPath == "" {
		keyPath = n.KeyPath()
		if n.KeyCreated() {
			how = "created"
		}
	}
	logger.Info("identity", "node", n.ID().String(), "key", keyPath, "key_file", how)
	if *cpuProfile != "" {
		stop, err := startCPUProfile(strings.ReplaceAll(*cpuProfile, "%p", strconv.Itoa(os.Getpid())))
		if err != nil {
			return err
		}
		defer stop()
	}
	return serveNode(ctx, n, httpLn, logger)
}

// serveNode runs the node and its HTTP server until ctx ends, then shuts
// both down: HTTP first, so no request sees a stopped node. The server
// keeps to api.DefaultServerLimits (timeouts, a connection cap) and the
// handler to api.DefaultHandlerLimits (a cap on event streams).
func serveNode(ctx context.Context, n *node.Node, httpLn net.Listener, log *slog.Logger) error {
	return serveNodeWith(ctx, n, httpLn, log, api.DefaultServerLimits(), api.DefaultHandlerLimits())
}

// serveNodeWith is serveNode with other limits (tests use small ones).
func serveNodeWith(ctx context.Context, n *node.Node, httpLn net.Listener, log *slog.Logger, lim api.ServerLimits, hlim api.HandlerLimits) error {
	if err := lim.Validate(); err != nil {
		httpLn.Close()
		return err
	}
	limited := api.LimitListener(httpLn, lim.MaxConns)
	reg := n.Registry()
	if err := reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "gossipmesh_http_connections_refused_total",
		Help: "HTTP connections closed on accept because the connection cap was reached.",
	}, func() float64 { return float64(limited.Refused()) })); err != nil {
		httpLn.Close()
		return fmt.Errorf("http metrics: %w", err)
	}
	if err := reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "gossipmesh_http_connections_evicted_total",
		Help: "Idle HTTP connections closed to make room for a new one at the connection cap.",
	}, func() float64 { return float64(limited.Evicted()) })); err != nil {
		httpLn.Close()
		return fmt.Errorf("http metrics: %w", err)
	}
	srv := api.NewServer(api.NewHandlerWith(n, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), hlim), lim, log)
	limited.Track(srv)
	httpLn = limited
	nodeCtx, stopNode := context.WithCancel(context.Background())
	defer stopNode()
	nodeErr := make(chan error, 1)
	go func() { nodeErr <- n.Run(nodeCtx) }()
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(httpLn) }()
	log.Info("serving", "node", n.ID().String(), "gossip", n.Addr(), "http", "http://"+httpLn.Addr().String())

	var err error
	select {
	case <-ctx.Done():
	case err = <-httpErr:
		err = fmt.Errorf("http: %w", err)
	case err = <-nodeErr:
		srv.Close()
		return err
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdownCtx); serr != nil && err == nil && !errors.Is(serr, context.DeadlineExceeded) {
		err = fmt.Errorf("http shutdown: %w", serr)
	}
	stopNode()
	if nerr := <-nodeErr; nerr != nil && err == nil {
		err = nerr
	}
	return err
}

// defaultDataDir is where a node bound at gossipAddr keeps its key when
// given neither --key nor --data-dir: .mesh/node-HOST-PORT under the
// working directory, beside `mesh up`'s .mesh/cluster.json. A node on a
// fixed port finds its key again at its next start; one on port 0 gets a
// new directory, and a new identity, each time.
func defaultDataDir(gossipAddr string) string {
	host, port, err := net.SplitHostPort(gossipAddr)
	if err != nil {
		host, port = gossipAddr, ""
	}
	name := strings.NewReplacer(":", "_", "/", "_", "%", "_").Replace("node-" + host + "-" + port)
	return filepath.Join(".mesh", name)
}

// defaultHTTPAddr is the gossip host at the gossip port + 1000.
func defaultHTTPAddr(gossipAddr string) (string, error) {
	host, portStr, err := net.SplitHostPort(gossipAddr)
	if err != nil {
		return "", fmt.Errorf("http address from %q: %w", gossipAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port+httpPortOffset > 65535 {
		return "", fmt.Errorf("http address from %q: gossip port + %d is not a port; set --http", gossipAddr, httpPortOffset)
	}
	return net.JoinHostPort(host, strconv.Itoa(port+httpPortOffset)), nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: want debug, info, warn or error; got %q", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: want text or json; got %q", format)
}
