package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/live"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/proxy"
	"github.com/mcptap/mcptap/recorder"
	"github.com/mcptap/mcptap/telemetry"
)

// proxyFlags are the options of `mcptap proxy`.
type proxyFlags struct {
	upstream       string
	listen         string
	routes         []string
	bodyCap        string
	hostHeader     string
	respHdrTimeout time.Duration
	bodyTimeout    time.Duration
	maxConns       int
	metrics        string
	retain         string
	pruneEvery     time.Duration
	maxDBSize      string
	otlp           string
	tokenTimeout   time.Duration
	drain          time.Duration
	noTUI          bool
	allowRemote    bool
	browserProxy   string
}

// viewDrain is how long a stop waits for the view to finish its output.
const viewDrain = 3 * time.Second

func newProxyCmd() *cobra.Command {
	var f proxyFlags
	cmd := &cobra.Command{
		Use:   "proxy --upstream URL [--listen ADDR] [--route LISTEN=URL]...",
		Short: "Record everything between your tunnel and your MCP server",
		Long: `proxy runs a transparent reverse proxy in front of your MCP server and records
every exchange into a new session. Point your tunnel (ngrok, cloudflared) at the
listen address instead of the server: the server receives exactly what the
tunnel sent (raw path and query, headers, Host, X-Forwarded-*), and the client
exactly what the server answered.

On a terminal it shows the live view; otherwise (or with --no-tui) it prints one
line per exchange and one per finding. Ctrl-C stops accepting, lets in-flight
exchanges finish (up to --drain), flushes the recording and prints a summary.`,
		Example: `  # MCP server on :3000, tunnel pointed at :8780
  mcptap proxy --upstream http://localhost:3000
  ngrok http 8780            # or: cloudflared tunnel --url http://localhost:8780

  # also record a separate local authorization server on :9000 through :8781
  mcptap proxy --upstream http://localhost:3000 --route 127.0.0.1:8781=http://localhost:9000

  # a server that rejects a public Host header (DNS-rebinding protection)
  mcptap proxy --upstream http://localhost:3000 --host-header upstream --no-tui

  # also record what a browser does (consent page, redirects): then run mcptap browser
  mcptap proxy --upstream http://localhost:3000 --browser-proxy 127.0.0.1:8781`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runProxy(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.upstream, "upstream", "", "URL of your MCP server (http or https), e.g. http://localhost:3000")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8780", "address the tunnel connects to")
	fl.StringArrayVar(&f.routes, "route", nil, "another reverse listener in the same session, LISTEN=URL (repeatable)")
	fl.StringVar(&f.bodyCap, "body-cap", "1MiB", "bytes recorded per body (larger bodies stream whole, recorded truncated); e.g. 65536, 256KiB, 4MiB")
	fl.StringVar(&f.hostHeader, "host-header", "client", "Host sent upstream: client (as the tunnel sent it) or upstream (the upstream's own)")
	fl.DurationVar(&f.respHdrTimeout, "response-header-timeout", 2*time.Minute, "longest wait for the upstream's response head (0: none); streams have no limit")
	fl.DurationVar(&f.bodyTimeout, "body-timeout", proxy.DefaultBodyIdleTimeout, "cut a request whose body stops arriving for this long (408; 0: never)")
	fl.StringVar(&f.otlp, "otlp", "", "export one OpenTelemetry trace per OAuth flow over OTLP/HTTP to this URL, e.g. http://127.0.0.1:4318 (OTEL_EXPORTER_OTLP_HEADERS is honoured)")
	fl.StringVar(&f.maxDBSize, "max-db-size", "", "delete the oldest recorded sessions while the data takes more than this (e.g. 2GB), checked every minute; then the oldest exchanges of the session being recorded")
	fl.StringVar(&f.retain, "retain", "", "delete recorded sessions that ended longer ago than this (e.g. 7d, 36h), and the exchanges of the session being recorded that are older, at start and hourly")
	fl.DurationVar(&f.pruneEvery, "prune-every", 0, "how often --retain and --max-db-size look (default: hourly, every minute with --max-db-size)")
	_ = fl.MarkHidden("prune-every") // for tests: the defaults suit a server
	fl.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics of the OAuth flows at http://ADDR/metrics, e.g. 127.0.0.1:9464 (loopback unless --allow-remote)")
	fl.IntVar(&f.maxConns, "max-conns", proxy.DefaultMaxConns, "client connections served at once per listener; more wait (0: no limit)")
	fl.DurationVar(&f.tokenTimeout, "token-timeout", oauth.DefaultTokenTimeout, "how long after a code is issued the token call may take before token.never-called")
	fl.DurationVar(&f.drain, "drain", 5*time.Second, "on stop, how long in-flight exchanges may take to finish")
	fl.BoolVar(&f.noTUI, "no-tui", false, "print one line per exchange and finding instead of the live view")
	fl.StringVar(&f.browserProxy, "browser-proxy", "", "also run the browser (forward/MITM) proxy on this loopback address, e.g. 127.0.0.1:8781, recorded into the same session (see mcptap browser)")
	fl.BoolVar(&f.allowRemote, "allow-remote", false, "allow listen addresses that are not loopback (anyone who reaches them can use the proxy)")
	return cmd
}

func runProxy(cmd *cobra.Command, f proxyFlags) error {
	routes, err := parseRoutes(f)
	if err != nil {
		return usageErr(err)
	}
	bodyCap, err := parseSize(f.bodyCap)
	if err != nil {
		return usageErr(fmt.Errorf("--body-cap: %w", err))
	}
	if f.hostHeader != "client" && f.hostHeader != "upstream" {
		return usageErr(fmt.Errorf("--host-header %q: want client or upstream", f.hostHeader))
	}
	if f.metrics != "" {
		host, _, err := net.SplitHostPort(f.metrics)
		if err != nil {
			return usageErr(fmt.Errorf("--metrics %q: want host:port, e.g. 127.0.0.1:9464", f.metrics))
		}
		if !f.allowRemote && !proxy.IsLoopback(host) {
			return usageErr(fmt.Errorf("--metrics %q is not loopback; anyone who reaches it could read the metrics (pass --allow-remote to mean it)", f.metrics))
		}
	}
	retain, err := parseRetain(f.retain)
	if err != nil {
		return usageErr(fmt.Errorf("--retain %q: %w", f.retain, err))
	}
	var maxDB int64
	if f.maxDBSize != "" {
		if maxDB, err = parseBytes(f.maxDBSize, 1<<50); err != nil || maxDB < 1<<20 {
			return usageErr(fmt.Errorf("--max-db-size %q: want a size of at least 1MB, such as 500MB or 2GB", f.maxDBSize))
		}
	}
	if f.bodyTimeout < 0 || f.maxConns < 0 {
		return usageErr(fmt.Errorf("--body-timeout %v, --max-conns %d: must not be negative (0 turns them off)", f.bodyTimeout, f.maxConns))
	}
	browserCA, err := browserProxyCA(f.browserProxy)
	if err != nil {
		return err
	}
	var browserSecret string
	if browserCA != nil {
		browserSecret = proxy.NewSecret()
	}
	store, err := openStore(cmd)
	if err != nil {
		return err
	}
	defer store.Close()
	defer live.ReserveSyncP(os.Getenv("GOMAXPROCS"))()

	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	useTUI := tuiAvailable && !f.noTUI && isTerminal(stdout)

	// Signals are caught before anything listens, so even an early Ctrl-C
	// ends the session cleanly.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	broker := mcptap.NewBroker()
	// Consumers subscribe before the capture starts so they see every exchange.
	var viewSub *mcptap.Subscription
	if useTUI {
		viewSub = broker.Subscribe("tui", 4096)
	} else {
		viewSub = broker.Subscribe("lines", 4096)
	}
	// The exporters: with the line view, fed by its analysis (the proxy
	// analyses each exchange once); with the TUI, whose analysis runs in
	// its pump, one consumer of their own with one analysis for both.
	exportersOn := f.metrics != "" || f.otlp != ""
	var telemetrySub *mcptap.Subscription
	if exportersOn && useTUI {
		telemetrySub = broker.Subscribe("telemetry", 8192)
	}
	now := time.Now()
	sess := mcptap.Session{
		ID:      mcptap.NewID(now),
		Source:  mcptap.SourceProxy,
		Name:    routes[0].Upstream.String(),
		Started: now,
	}
	if bodyCap == 0 {
		bodyCap = -1 // the flag's 0 means "record no bodies"; proxy's 0 means the default
	}
	capture, err := live.Start(live.Config{
		Store:   store,
		Session: sess,
		Broker:  broker,
		Log:     slog.New(slog.NewTextHandler(tuiSafe(stderr), &slog.HandlerOptions{Level: slog.LevelWarn})),
		Proxy: proxy.Config{
			Routes:                routes,
			BodyCap:               bodyCap,
			HostHeader:            f.hostHeader,
			ResponseHeaderTimeout: f.respHdrTimeout,
			BodyIdleTimeout:       orNone(f.bodyTimeout),
			MaxConns:              orNone(f.maxConns),
			AllowRemote:           f.allowRemote,
		},
		BrowserListen: f.browserProxy,
		BrowserCA:     browserCA,
		BrowserSecret: browserSecret,
	})
	if err != nil {
		return runtimeErr(err) // a port in use or that cannot be bound
	}
	var exporters *telemetry.Exporters
	if exportersOn {
		tctx, stopTelemetry := context.WithCancel(context.Background())
		defer stopTelemetry()
		o := telemetry.Options{TokenTimeout: f.tokenTimeout,
			Metrics: f.metrics != "", Dropped: capture.Dropped, OTLP: f.otlp, Broker: broker}
		if telemetrySub != nil {
			exporters, err = telemetry.Start(tctx, telemetrySub, o)
		} else {
			exporters, err = telemetry.New(tctx, viewSub, o)
		}
		if err != nil {
			_ = capture.Stop(context.Background())
			return usageErr(fmt.Errorf("--otlp %q: %w", f.otlp, err))
		}
		if exporters.Metrics != nil {
			addr, err := exporters.Metrics.Serve(tctx, f.metrics, f.allowRemote)
			if err != nil {
				_ = capture.Stop(context.Background())
				return runtimeErr(err)
			}
			fmt.Fprintf(stderr, "mcptap: Prometheus metrics on http://%s/metrics\n", addr)
		}
		if exporters.Traces != nil {
			fmt.Fprintf(stderr, "mcptap: exporting a trace per OAuth flow to %s\n", f.otlp)
		}
	}
	if retain > 0 || maxDB > 0 {
		rctx, stopRetain := context.WithCancel(context.Background())
		defer stopRetain()
		period := time.Hour
		if maxDB > 0 {
			period = time.Minute
		}
		if f.pruneEvery > 0 {
			period = f.pruneEvery
		}
		go pruneEvery(rctx, store, sess.ID, retain, maxDB, period, stderr)
	}
	addrs := capture.Addrs()
	fmt.Fprintf(stderr, "mcptap: recording session %s into %s\n", sess.ID, store.Path())
	for i, a := range addrs {
		fmt.Fprintf(stderr, "mcptap: listening on http://%s -> %s\n", a, routes[i].Upstream)
	}
	if a := capture.BrowserAddr(); a != "" {
		home, err := recorder.DefaultHome()
		var secretPath string
		if err == nil {
			secretPath, err = proxy.WriteSecret(home, a, browserSecret)
		}
		if err != nil {
			_ = capture.Stop(context.Background())
			return runtimeErr(err)
		}
		defer os.Remove(secretPath)
		fmt.Fprintf(stderr, "mcptap: browser proxy on http://%s; start a browser through it with: mcptap browser --proxy %s\n", a, a)
		fmt.Fprintf(stderr, "mcptap: it serves only clients with this run's credentials (user %s, password in %s)\n", proxy.ProxyUser, secretPath)
	}

	var viewDone <-chan struct{}
	var viewErr error
	viewCtx, stopView := context.WithCancel(context.Background())
	defer stopView()
	if useTUI {
		done := make(chan struct{})
		viewDone = done
		go func() {
			defer close(done)
			viewErr = runTUI(viewCtx, capture, viewSub, f.tokenTimeout, nil)
		}()
	} else {
		var tap live.Tap
		if exporters != nil {
			tap = exporters
		}
		viewDone = live.LinesTap(stdout, viewSub, f.tokenTimeout, tap)
		fmt.Fprintln(stderr, "mcptap: press Ctrl-C to stop")
	}

	select {
	case <-sigs:
	case <-viewDone: // the TUI was quit; line mode only ends after Stop
	}
	stopView()
	fmt.Fprintf(stderr, "mcptap: stopping; letting in-flight exchanges finish (up to %v, Ctrl-C again to cut them)\n", f.drain)
	ctx, cancel := context.WithTimeout(context.Background(), f.drain)
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	stopErr := capture.Stop(ctx)
	cancel()
	// The recording is complete here. The view may still be writing: a
	// line view whose stdout nobody reads (a paused pager, a full pipe)
	// would hold the stop forever, so it gets a moment and is then left.
	select {
	case <-viewDone:
	case <-time.After(viewDrain):
		fmt.Fprintln(stderr, "mcptap: the line view's output is not being read (a paused pager or a full pipe?); stopping without it")
	}

	if exporters != nil && exporters.Traces != nil {
		select { // the last flows go out after the capture ends
		case <-exporters.Done():
		case <-time.After(10 * time.Second):
			fmt.Fprintln(stderr, "mcptap: the OTLP collector did not take the last traces in time")
		}
		if n := exporters.Traces.Failed(); n > 0 {
			fmt.Fprintf(stderr, "mcptap: %d span(s) could not be sent to %s\n", n, f.otlp)
		}
	}
	final, err := store.Session(sess.ID)
	if err != nil {
		return runtimeErr(fmt.Errorf("read back session %s: %w", sess.ID, err))
	}
	// The session record may not have taken the count (the disk that
	// failed the commits may fail that write too): the capture's own count
	// is the truth.
	dropped := max(final.Dropped, capture.Dropped())
	fmt.Fprintf(stderr, "mcptap: session %s: %d exchanges, %d dropped\n", final.ID, final.Exchanges, dropped)
	if dropped > 0 {
		fmt.Fprintln(stderr, "mcptap: the dropped exchanges are missing from the database (the recorder fell behind, or its writes failed: see above)")
	}
	fmt.Fprintf(stderr, "mcptap: see the verdicts with: mcptap report %s\n", final.ID)
	var lost error
	if dropped > 0 {
		lost = fmt.Errorf("%d exchange(s) of session %s were not recorded", dropped, final.ID)
	}
	if err := errors.Join(stopErr, lost); err != nil {
		return runtimeErr(err)
	}
	if viewErr != nil {
		return runtimeErr(viewErr)
	}
	return nil
}

// parseRoutes turns --upstream/--listen and every --route into proxy routes;
// the first route is --listen -> --upstream.
func parseRoutes(f proxyFlags) ([]proxy.Route, error) {
	if f.upstream == "" {
		return nil, errors.New("--upstream is required, e.g. --upstream http://localhost:3000")
	}
	up, err := parseUpstream(f.upstream)
	if err != nil {
		return nil, fmt.Errorf("--upstream: %w", err)
	}
	routes := []proxy.Route{{Listen: f.listen, Upstream: up}}
	for _, r := range f.routes {
		listen, raw, ok := strings.Cut(r, "=")
		if !ok || listen == "" || raw == "" {
			return nil, fmt.Errorf("--route %q: want LISTEN=URL, e.g. 127.0.0.1:8781=http://localhost:9000", r)
		}
		u, err := parseUpstream(raw)
		if err != nil {
			return nil, fmt.Errorf("--route %q: %w", r, err)
		}
		routes = append(routes, proxy.Route{Listen: listen, Upstream: u})
	}
	for i, r := range routes {
		host, _, err := net.SplitHostPort(r.Listen)
		if err != nil {
			return nil, fmt.Errorf("listen address %q: want host:port, e.g. 127.0.0.1:8780", r.Listen)
		}
		if host != "" && !f.allowRemote && !proxy.IsLoopback(host) {
			return nil, fmt.Errorf("listen address %q is not loopback: anyone who can reach it could use the proxy; pass --allow-remote if you mean it", r.Listen)
		}
		for _, o := range routes[:i] {
			if o.Listen == r.Listen {
				return nil, fmt.Errorf("listen address %q is used twice", r.Listen)
			}
		}
	}
	return routes, nil
}

func parseUpstream(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL with a host, e.g. http://localhost:3000", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q: an upstream has no query or fragment", raw)
	}
	return u, nil
}

// parseSize reads a byte count with an optional unit: 65536, 64k, 64KiB, 1M, 1MiB.
func parseSize(s string) (int, error) {
	n, err := parseBytes(s, 1<<30)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size such as 65536, 256KiB or 1MiB (at most 1GiB)", s)
	}
	return int(n), nil
}

// parseBytes reads a size with an optional unit (K, KB, KiB, M…, G…, T…:
// powers of 1024), at most max.
func parseBytes(s string, max int64) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	lower := strings.ToLower(t)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40}, {"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"tb", 1 << 40},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"b", 1}} {
		if strings.HasSuffix(lower, u.suffix) {
			mult = u.mult
			t = strings.TrimSpace(t[:len(t)-len(u.suffix)])
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > max/mult {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return n * mult, nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// The live view (tuiAvailable, runTUI) is in tui.go.

// orNone maps a flag's 0 ("none") to the proxy's negative "no limit" (its 0
// means "the default").
func orNone[T int | time.Duration](v T) T {
	if v == 0 {
		return -1
	}
	return v
}

// parseRetain reads a retention: a Go duration, or whole days ("7d").
func parseRetain(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, errors.New("want a positive number of days (7d) or a duration (36h)")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return 0, errors.New("want a positive number of days (7d) or a duration (36h)")
	}
	return v, nil
}

// pruneEvery deletes, now and every period, the sessions older than retain
// and the live session's exchanges older than that, then the oldest sessions
// while the data is over maxDB and, once the live one is all that is left,
// its oldest exchanges (each when set), and says what it deleted.
func pruneEvery(ctx context.Context, store *recorder.Store, live string, retain time.Duration, maxDB int64, period time.Duration, log io.Writer) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if retain > 0 {
			cutoff := time.Now().Add(-retain)
			gone, err := store.Prune(cutoff, live)
			switch {
			case err != nil:
				fmt.Fprintf(log, "mcptap: pruning sessions older than %v: %v\n", retain, err)
			case len(gone) > 0:
				fmt.Fprintf(log, "mcptap: deleted %d session(s) older than %v (--retain)\n", len(gone), retain)
			}
			n, err := store.PruneExchanges(live, cutoff)
			switch {
			case err != nil:
				fmt.Fprintf(log, "mcptap: pruning this session's exchanges older than %v: %v\n", retain, err)
			case n > 0:
				fmt.Fprintf(log, "mcptap: deleted this session's %d exchange(s) older than %v (--retain)\n", n, retain)
			}
		}
		if maxDB > 0 {
			gone, n, err := store.PruneToSize(maxDB, live)
			switch {
			case err != nil:
				fmt.Fprintf(log, "mcptap: pruning to --max-db-size: %v\n", err)
			case len(gone) > 0 || n > 0:
				fmt.Fprintf(log, "mcptap: deleted the %d oldest session(s) and this session's %d oldest exchange(s) to stay under %d bytes (--max-db-size)\n", len(gone), n, maxDB)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
