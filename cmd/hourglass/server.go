package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hourglass-scheduler/hourglass/cluster"
	"github.com/hourglass-scheduler/hourglass/fsm"
	"github.com/hourglass-scheduler/hourglass/httpapi"
	"github.com/hourglass-scheduler/hourglass/metrics/labels"
	"github.com/hourglass-scheduler/hourglass/scheduler"
	"github.com/hourglass-scheduler/hourglass/schedules"
	"github.com/hourglass-scheduler/hourglass/service"
	"github.com/hourglass-scheduler/hourglass/webhook"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// serverGCPercent is the server's GOGC when the environment sets none.
const serverGCPercent = 200

type serverFlags struct {
	nodeID, dataDir, httpAddr, raftAddr, raftAdvertise  string
	gossipAddr, gossipAdvertise, httpAdvertise          string
	join, targetAllow, targetDeny                       listFlag
	targetProxy, signingKeysFile                        string
	tlsCert, tlsKey, tlsClientCA                        string
	clusterCA, clusterCert, clusterKey                  string
	gossipKeys                                          listFlag
	bootstrapExpect, groups, replicas                   int
	deadAfter                                           time.Duration
	leaveOnStop, pprof                                  bool
	authToken, tokensFile, logLevel, logFormat          string
	maxPayload, maxBatch, workers, catchUpRate          int
	maxConcurrent, maxListBytes, maxQueues              int
	metricsMaxQueues                                    int
	targetConcurrency, queueConcurrency, errorBodyBytes int
	horizon, fireLead, retention                        time.Duration
	snapshotThreshold, trailingLogs, snapshotBytes      uint64
	snapshotInterval                                    time.Duration
	heartbeatTimeout, electionTimeout, leaseTimeout     time.Duration
}

// listFlag collects a repeatable flag; each value may also be a
// comma-separated list (as an environment variable would give it).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}

func runServer(ctx context.Context, args []string, stderr io.Writer) error {
	var f serverFlags
	fs := flag.NewFlagSet("hourglass server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.nodeID, "node-id", "node-1", "this node's unique id in the cluster")
	fs.StringVar(&f.dataDir, "data-dir", "hourglass-data", "directory for the raft log, snapshots and task state")
	fs.StringVar(&f.httpAddr, "http-addr", "127.0.0.1:7070", "address for the HTTP API (\":7070\" listens on every interface)")
	fs.StringVar(&f.raftAddr, "raft-addr", "127.0.0.1:7071", "address for raft traffic between nodes")
	fs.StringVar(&f.raftAdvertise, "raft-advertise", "", "raft address other nodes dial, if not --raft-addr")
	fs.StringVar(&f.gossipAddr, "gossip-addr", "127.0.0.1:7072", "address for gossip (UDP and TCP) between nodes")
	fs.StringVar(&f.gossipAdvertise, "gossip-advertise", "", "gossip address other nodes reach, if not --gossip-addr")
	fs.StringVar(&f.httpAdvertise, "http-advertise", "", "HTTP address other nodes forward requests to (default: the --http-addr listener)")
	fs.Var(&f.join, "join", "gossip address (host:port) of a member to join; repeatable, or comma-separated")
	fs.IntVar(&f.bootstrapExpect, "bootstrap-expect", 0, "form a new cluster once this many nodes see each other (the same value on each)")
	fs.IntVar(&f.groups, "groups", 0, fmt.Sprintf("raft groups a new cluster spreads its tasks over (1 to %d; 0: one per --bootstrap-expect node, one for a single node); a node that joins takes the cluster's, and a data directory keeps the count it was made with", cluster.MaxGroups))
	fs.IntVar(&f.replicas, "replicas", cluster.DefaultReplicas, "voting replicas of each group, each on its own node (1 to 5; fewer while the cluster has fewer nodes); give every node the same")
	fs.DurationVar(&f.deadAfter, "dead-after", cluster.DefaultDeadAfter, "how long a node may be unreachable before the replicas it holds are moved to other nodes")
	fs.BoolVar(&f.leaveOnStop, "leave-on-stop", false, "on stop, leave the cluster for good (default: a stopped node stays a member and is expected back)")
	fs.StringVar(&f.authToken, "auth-token", "", "accept this bearer token with every scope (admin); see also --tokens-file")
	fs.StringVar(&f.tokensFile, "tokens-file", "", "file of API tokens with their scopes, one \"NAME SCOPES SHA256\" per line (hourglass token create makes them)")
	fs.Var(&f.targetAllow, "target-allow", "webhook targets may only be at these addresses (CIDRs, loopback or private; repeatable or comma-separated); default: any not refused")
	fs.Var(&f.targetDeny, "target-deny", "webhook targets may not be at these addresses (CIDRs like 10.0.0.0/8, loopback, private; loopback covers IPv4 and IPv6); link-local and the cluster's own listeners are always refused")
	fs.StringVar(&f.signingKeysFile, "signing-keys-file", "", "sign every webhook with each key in this file (one whsec_ key a line; hourglass signing-key create makes one)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve the HTTP API over TLS with this certificate (PEM; hourglass tls cert makes one)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "the --tls-cert certificate's key (PEM)")
	fs.StringVar(&f.tlsClientCA, "tls-client-ca", "", "require API clients to present a certificate signed by this CA (PEM)")
	fs.StringVar(&f.clusterCA, "cluster-ca", "", "mutual TLS for raft: the cluster's CA certificate (PEM; hourglass tls ca makes one); members accept only peers it signed")
	fs.StringVar(&f.clusterCert, "cluster-cert", "", "mutual TLS for raft: this node's certificate, signed by --cluster-ca")
	fs.StringVar(&f.clusterKey, "cluster-key", "", "mutual TLS for raft: the --cluster-cert certificate's key")
	fs.Var(&f.gossipKeys, "gossip-key", "encrypt gossip with this key (base64, 16, 24 or 32 bytes; hourglass gossip-key create makes one); repeatable for rotation: the first encrypts, any decrypts")
	fs.StringVar(&f.targetProxy, "target-proxy", "", "send webhooks through this HTTP proxy (the environment's proxy settings are never used)")
	fs.IntVar(&f.maxPayload, "max-payload", 1<<20, "largest task payload in bytes")
	fs.IntVar(&f.maxListBytes, "max-list-bytes", 4<<20, "a page of a task list ends early once its tasks add up to this many bytes (payloads included)")
	fs.IntVar(&f.maxQueues, "max-queues", 10_000, "most queues the cluster holds; a task or setting that would make one more is refused (409)")
	fs.IntVar(&f.metricsMaxQueues, "metrics-max-queues", 100, "queues with series of their own in /metrics; the tasks of the others are summed under queue=\"(other)\"")
	fs.IntVar(&f.maxBatch, "max-batch", 1000, "most tasks in one batch create")
	fs.IntVar(&f.maxConcurrent, "max-concurrent-requests", 1024, "most API requests in progress at once (workers' waiting leases count; health checks and metrics do not); more are answered 429 with Retry-After")
	fs.IntVar(&f.workers, "workers", 256, "concurrent webhook deliveries (of the cluster: each group's leader sends its share)")
	fs.IntVar(&f.queueConcurrency, "queue-concurrency", 0, "most concurrent webhook deliveries of one queue, so that one queue's slow targets leave the others their workers (0: half of --workers; each group's leader enforces its share)")
	fs.IntVar(&f.errorBodyBytes, "error-body-bytes", 0, fmt.Sprintf("keep up to this many bytes of a failed delivery's response body in the task's last_error (0: only the status line; at most %d)", webhook.MaxErrorBodyBytes))
	fs.IntVar(&f.targetConcurrency, "target-concurrency", 64, "most concurrent webhook deliveries to one target host, so a slow one cannot take every worker (each group's leader enforces its share)")
	fs.IntVar(&f.catchUpRate, "catch-up-rate", 5000, "overdue tasks fired per second after downtime or failover (each group's leader fires its share)")
	fs.DurationVar(&f.horizon, "horizon", time.Minute, "how far ahead tasks are loaded into memory")
	fs.DurationVar(&f.fireLead, "fire-lead", 20*time.Millisecond, "how early a task's firing is committed, ahead of its send (up to 20ms more, so that tasks due together share one commit)")
	fs.DurationVar(&f.retention, "retention", 7*24*time.Hour, "how long finished tasks are kept")
	fs.Uint64Var(&f.snapshotThreshold, "raft-snapshot-threshold", 8192, "raft log entries between snapshots")
	fs.Uint64Var(&f.snapshotBytes, "raft-snapshot-bytes", cluster.DefaultSnapshotBytes, "raft log bytes between snapshots (bounds what a restart re-reads)")
	fs.DurationVar(&f.snapshotInterval, "raft-snapshot-interval", 2*time.Minute, "how often raft checks whether to snapshot")
	fs.Uint64Var(&f.trailingLogs, "raft-trailing-logs", 10240, "raft log entries kept behind a snapshot for followers that lag")
	fs.BoolVar(&f.pprof, "pprof", false, "serve Go's profiler (net/http/pprof) at /debug/pprof/ on the HTTP listener, without auth: only on a private listener")
	fs.DurationVar(&f.heartbeatTimeout, "raft-heartbeat-timeout", cluster.DefaultHeartbeatTimeout, "a follower that hears nothing from the leader this long calls an election (fast failover: 200ms)")
	fs.DurationVar(&f.electionTimeout, "raft-election-timeout", cluster.DefaultElectionTimeout, "how long a candidate waits for votes before trying again (fast failover: 200ms)")
	fs.DurationVar(&f.leaseTimeout, "raft-lease-timeout", cluster.DefaultLeaderLeaseTimeout, "a leader that cannot reach a quorum this long steps down; at most --raft-heartbeat-timeout (fast failover: 100ms)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%w: server takes no arguments, got %q", errUsage, rest)
	}
	if err := f.checkRaftTiming(); err != nil {
		return err
	}
	if f.groups < 0 || f.groups > cluster.MaxGroups {
		return fmt.Errorf("%w: --groups %d: want 1 to %d (or 0 for the default)", errUsage, f.groups, cluster.MaxGroups)
	}
	if f.replicas < 1 || f.replicas > 5 {
		return fmt.Errorf("%w: --replicas %d: want 1 to 5", errUsage, f.replicas)
	}
	if f.deadAfter < time.Second {
		return fmt.Errorf("%w: --dead-after %v: want at least 1s", errUsage, f.deadAfter)
	}
	if f.errorBodyBytes < 0 || f.errorBodyBytes > webhook.MaxErrorBodyBytes {
		return fmt.Errorf("%w: --error-body-bytes %d: want 0 to %d", errUsage, f.errorBodyBytes, webhook.MaxErrorBodyBytes)
	}
	logger, err := newLogger(stderr, f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	// Collect garbage half as often as Go's default unless GOGC says
	// otherwise: measured, creates over HTTP run ~17% (single) to ~27%
	// (batches) faster, for a heap up to 3x the live data instead of 2x.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(serverGCPercent)
	}
	return serve(ctx, f, logger)
}

// checkRaftTiming rejects raft timings raft itself would refuse, naming
// the flag.
func (f *serverFlags) checkRaftTiming() error {
	for _, d := range []struct {
		name  string
		value time.Duration
	}{{"--raft-heartbeat-timeout", f.heartbeatTimeout}, {"--raft-election-timeout", f.electionTimeout}, {"--raft-lease-timeout", f.leaseTimeout}} {
		if d.value < 5*time.Millisecond {
			return fmt.Errorf("%w: %s %v: want at least 5ms", errUsage, d.name, d.value)
		}
	}
	if f.leaseTimeout > f.heartbeatTimeout {
		return fmt.Errorf("%w: --raft-lease-timeout %v is longer than --raft-heartbeat-timeout %v: a leader must step down before its followers elect another",
			errUsage, f.leaseTimeout, f.heartbeatTimeout)
	}
	return nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q: want text or json", errUsage, format)
}

// serve wires a node together and runs it until ctx ends:
// raft node → scheduler (leader duties) → HTTP API.
func serve(ctx context.Context, f serverFlags, logger *slog.Logger) error {
	dataDir, err := filepath.Abs(f.dataDir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	// The HTTP listener first: a port in use fails before anything else.
	ln, err := net.Listen("tcp", f.httpAddr)
	if err != nil {
		return fmt.Errorf("listen for HTTP on %s: %w", f.httpAddr, err)
	}
	defer ln.Close()

	httpAdvertise, err := advertisedHTTP(f, ln.Addr().(*net.TCPAddr))
	if err != nil {
		return err
	}

	secure, err := loadServerTLS(f)
	if err != nil {
		return err
	}
	if f.clustered() && (secure.member == nil || len(secure.gossipKeys) == 0) {
		logger.Warn("cluster traffic is not authenticated: anyone who reaches the raft and gossip ports can join or disrupt the cluster; set --cluster-ca, --cluster-cert, --cluster-key and --gossip-key",
			"raft_tls", secure.member != nil, "gossip_encrypted", len(secure.gossipKeys) > 0)
	}
	metrics := prometheus.NewRegistry()
	// One bound on the queue label for every metric, so that the same
	// queues have series of their own everywhere.
	queueLabels := labels.New(f.metricsMaxQueues)
	signingKeys, err := readSigningKeys(f.signingKeysFile)
	if err != nil {
		return err
	}
	var node *cluster.Node // the policy asks it for the cluster's listeners
	policy, proxy, err := targetPolicy(f, func() *cluster.Node { return node }, ln.Addr())
	if err != nil {
		return err
	}
	checkState, err := childStateChecker()
	if err != nil {
		return err
	}
	// 1. The raft node and its state machine; gossip finds the others.
	node, err = cluster.Open(cluster.Config{
		CheckState: checkState,
		NodeID:     f.nodeID, Version: buildVersion(), DataDir: dataDir,
		RaftAddr: f.raftAddr, RaftAdvertise: f.raftAdvertise,
		GossipAddr: f.gossipAddr, GossipAdvertise: f.gossipAdvertise,
		HTTPAdvertise: httpAdvertise, Join: f.join, BootstrapExpect: f.bootstrapExpect, LeaveOnStop: f.leaveOnStop, Groups: f.groups,
		Replicas: f.replicas, DeadAfter: f.deadAfter,
		SnapshotThreshold: f.snapshotThreshold, SnapshotInterval: f.snapshotInterval, TrailingLogs: f.trailingLogs,
		SnapshotBytes:    f.snapshotBytes,
		HeartbeatTimeout: f.heartbeatTimeout, ElectionTimeout: f.electionTimeout, LeaderLeaseTimeout: f.leaseTimeout,
		Logger: logger, Metrics: metrics,
		TLS: secure.member, GossipKeys: secure.gossipKeys,
	})
	if err != nil {
		return err
	}
	defer func() {
		if err := node.Close(); err != nil {
			logger.Error("close node", "err", err)
		}
	}()

	metrics.MustRegister(
		// The live heap after the last GC, next to the memstats.
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newNodeCollector(node, dataDir, queueLabels))

	// 2. The HTTP API; each group's replica is added to it as it opens.
	tokens, err := loadTokens(f)
	if err != nil {
		return err
	}
	switch {
	case tokens.Len() == 0 && f.tlsClientCA != "":
		logger.Warn("no API tokens: any client with a certificate of --tls-client-ca can use all of the API; --tokens-file gives clients scopes")
	case tokens.Len() == 0:
		logger.Warn("authentication is off: no --auth-token or --tokens-file, so anyone who reaches the HTTP API can use all of it; keep it on a private listener")
	}
	api := httpapi.New(httpapi.Config{
		Node: node, Health: node,
		Registry: metrics,
		Metrics:  promhttp.HandlerFor(metrics, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError)}),
		Limits: httpapi.Limits{MaxPayload: f.maxPayload, MaxBatch: f.maxBatch, MaxConcurrent: f.maxConcurrent, MaxListBytes: f.maxListBytes,
			MaxQueues: f.maxQueues},
		QueueLabels: queueLabels,
		Tokens:      tokens, Logger: logger,
		ForwardTLS: secure.forward, RequireClientCert: f.tlsClientCA != "",
		TempDir: dataDir, CheckState: checkState,
	})

	// 3. Each group: every write enters through its service; its
	// scheduler hears of due-index changes and does the leader's duties
	// while this node leads the group.
	// The delivery limits are the cluster's: each group's leader takes
	// its share of them (scheduler.Config.Share).
	node.Start(func(g *cluster.Group) cluster.LeaderFunc {
		writes := service.New(g, g.FSM(), service.Config{Retention: f.retention})
		sched := scheduler.New(g.FSM(), writes, scheduler.Config{
			Horizon: f.horizon, FireLead: f.fireLead, CatchUpRate: f.catchUpRate,
			Workers: f.workers, TargetConcurrency: f.targetConcurrency, QueueConcurrency: f.queueConcurrency,
			Share:  groupCount(node),
			Logger: logger.With("group", uint32(g.ID())), Leadership: g, StaleAfter: f.leaseTimeout,
			Metrics: g.Metrics(),
			Targets: policy, Proxy: proxy, SigningKeys: signingKeys, ErrorBodyBytes: f.errorBodyBytes, QueueLabels: queueLabels,
		})
		occurrences := schedules.New(g.FSM(), writes, schedules.Config{
			Logger: logger.With("group", uint32(g.ID())), Metrics: g.Metrics(),
		})
		g.FSM().SetNotifier(fsm.Notifiers{sched, occurrences})
		api.SetBackend(g.ID(), &httpapi.Backend{Service: writes, Store: g.FSM(), Group: g, Backups: g, Workers: sched})
		return cluster.LeaderFuncs(sched.Run, occurrences.Run)
	}, func(g *cluster.Group) {
		// The placement moved the replica away: requests for the group go
		// to its leader from now on.
		api.RemoveBackend(g.ID())
	})

	var handler http.Handler = api
	if f.pprof {
		handler = withProfiler(api)
	}
	srv := httpapi.NewServer(f.httpAddr, handler)
	srv.ErrorLog = log.New(httpErrorLog{logger}, "", 0)
	serveErr := make(chan error, 1)
	scheme := "http"
	if secure.api != nil {
		scheme = "https"
		srv.TLSConfig = secure.api
		go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { serveErr <- srv.Serve(ln) }()
	}
	st := node.Status()
	logger.Info("hourglass listening", "node_id", f.nodeID, "url", scheme+"://"+ln.Addr().String(), "http_addr", ln.Addr().String(),
		"raft_addr", st.RaftAddr, "gossip_addr", st.GossipAddr, "data_dir", dataDir, "groups", len(st.Groups), "tokens", tokens.Len())
	// "ready" is what /readyz says: a leader is known and this node has
	// caught up. Until then the API answers, but writes wait or get 503.
	go func() {
		if node.WaitReady(ctx) == nil {
			leads := 0
			for _, g := range node.Groups() {
				if g.IsLeader() {
					leads++
				}
			}
			logger.Info("hourglass ready", "node_id", f.nodeID, "groups", len(node.Groups()), "leading", leads)
		}
	}()

	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("http shutdown", "err", err)
	}
	return nil
}

// groupCount is how many groups the node's cluster has.
func groupCount(node *cluster.Node) int { return node.Table().Groups() }

// loadTokens reads --tokens-file and adds --auth-token (as an admin
// token).
func loadTokens(f serverFlags) (*httpapi.Tokens, error) {
	var tokens httpapi.Tokens
	if f.tokensFile != "" {
		file, err := os.Open(f.tokensFile)
		if err != nil {
			return nil, fmt.Errorf("--tokens-file: %w", err)
		}
		defer file.Close()
		if err := tokens.ReadTokens(file); err != nil {
			return nil, fmt.Errorf("--tokens-file %s: %w", f.tokensFile, err)
		}
	}
	if f.authToken != "" {
		if err := tokens.Add("auth-token", f.authToken, httpapi.ScopeAdmin); err != nil {
			return nil, fmt.Errorf("--auth-token: %w", err)
		}
	}
	return &tokens, nil
}

// clustered reports whether the flags start or join a cluster of more
// than one node.
func (f *serverFlags) clustered() bool { return f.bootstrapExpect > 1 || len(f.join) > 0 }

// advertisedHTTP is the HTTP address other nodes forward requests to:
// --http-advertise, or the listener's own address when that names a host.
func advertisedHTTP(f serverFlags, listener *net.TCPAddr) (string, error) {
	if f.httpAdvertise != "" {
		return f.httpAdvertise, nil
	}
	if !listener.IP.IsUnspecified() {
		return listener.String(), nil
	}
	for _, other := range []string{f.raftAdvertise, f.gossipAdvertise} {
		if host, _, err := net.SplitHostPort(other); err == nil && host != "" {
			return net.JoinHostPort(host, fmt.Sprint(listener.Port)), nil
		}
	}
	if f.clustered() {
		return "", fmt.Errorf("%w: --http-addr %s listens on every interface: set --http-advertise to the address other nodes should use", errUsage, f.httpAddr)
	}
	return listener.String(), nil // a single node forwards to nobody
}

// httpErrorLog takes the HTTP server's own error lines (panics, accept
// errors, failed TLS handshakes) into the log: handshake failures at debug
// (a load balancer's TCP check makes one every few seconds), the rest as
// warnings.
type httpErrorLog struct{ log *slog.Logger }

func (l httpErrorLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	if strings.Contains(msg, "TLS handshake error") {
		level = slog.LevelDebug
	}
	l.log.Log(context.Background(), level, msg, "component", "http")
	return len(p), nil
}

// withProfiler serves Go's profiler under /debug/pprof/ next to the API
// (--pprof). Profiles are not behind the auth token: enable it only where
// the HTTP listener is private.
func withProfiler(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", api)
	return mux
}
