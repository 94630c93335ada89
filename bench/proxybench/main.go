// Command proxybench measures what recording costs: it drives one loopback
// upstream directly, through a bare httputil.ReverseProxy with a tuned
// transport, and through mcptap recording every exchange into a real bbolt
// file, and prints throughput, p50/p99 latency, CPU per request and the
// mcptap/bare ratios. Run on demand:
//
//	go run ./bench/proxybench -conns 32 -duration 2s -rounds 8
//	go run ./bench/proxybench -paths all   # with the in-process breakdown
//
// By default it compares, in processes of their own ("bare-p", "mcptap-p"),
// the bare proxy (this program re-executed) with the real `mcptap proxy
// --no-tui` binary, built from ./cmd/mcptap, with its line view, live
// analysis and recorder: the headline figure. -paths all adds three paths
// in this one process ("bare", "norec", "mcptap"): the bare proxy, mcptap's
// proxy publishing to a consumer that discards ("norec"), and mcptap's proxy
// recording through package live (no line view, no analysis), which splits
// the cost between the proxy and the recorder (that recorder then writes to
// the same disk as the binary's, during the whole run). "bare1w-p" (not in
// the default set) is the bare proxy reading a short request body whole
// before sending it, as mcptap does, so that head and body leave in one
// write: it shows what recording costs apart from what that saves. The load
// generator and the upstream always run in this process, so every figure
// compares paths on the same machine, not absolute capacity.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/internal/wire"
	"github.com/mcptap/mcptap/live"
	"github.com/mcptap/mcptap/proxy"
	"github.com/mcptap/mcptap/recorder"
)

type result struct {
	name     string
	requests int
	errors   int
	elapsed  time.Duration
	p50, p99 time.Duration
	cpu      time.Duration // CPU time (user+system) of this process, and of the proxy's if it has its own
	pcpu     time.Duration // the proxy process's own CPU time, for a proxy in a process of its own
	lats     []time.Duration
}

// pool merges the rounds of one path: total requests over total time, and
// percentiles over every latency of every round. On a machine shared with
// other work this is steadier than any single round.
func pool(rs []result) result {
	var p result
	for _, r := range rs {
		p.name = r.name
		p.requests += r.requests
		p.errors += r.errors
		p.elapsed += r.elapsed
		p.cpu += r.cpu
		p.pcpu += r.pcpu
		p.lats = append(p.lats, r.lats...)
	}
	slices.Sort(p.lats)
	if len(p.lats) > 0 {
		p.p50 = p.lats[len(p.lats)*50/100]
		p.p99 = p.lats[len(p.lats)*99/100]
	}
	return p
}

// cpuPerReq is the whole process's CPU time per request: load generator and
// upstream cost the same on every path, so differences are the proxy's work.
// It is steadier than throughput on a machine shared with other work.
func (r result) cpuPerReq() time.Duration {
	if r.requests == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.requests)
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (r result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

func main() {
	if up := os.Getenv(bareChildEnv); up != "" {
		serveBareChild(up)
		return
	}
	conns := flag.Int("conns", 32, "concurrent client connections")
	duration := flag.Duration("duration", 2*time.Second, "measured time per path per round")
	warmup := flag.Duration("warmup", 500*time.Millisecond, "unmeasured time before each measurement")
	rounds := flag.Int("rounds", 8, "rounds; each runs every path once, in a rotating order, and the summary pools all rounds")
	reqSize := flag.Int("req", 200, "request body bytes (a JSON-RPC POST)")
	respSize := flag.Int("resp", 1024, "response body bytes")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the first round of -profile-path to this file")
	traceFile := flag.String("trace", "", "write an execution trace of the first round of -profile-path to this file")
	dbDir := flag.String("dir", "", "directory for the bbolt files (default: the system temp dir; /dev/shm takes the disk out)")
	batch := flag.Int("batch", 64, "recorder batch size of the in-process path (mcptap proxy uses the recorder's default, 64)")
	profPath := flag.String("profile-path", "mcptap", "in-process path profiled by -cpuprofile: direct, bare, norec or mcptap")
	mcptapBin := flag.String("mcptap", "", "mcptap binary for the process path (default: build ./cmd/mcptap)")
	only := flag.String("paths", "direct,bare-p,mcptap-p", "comma-separated paths to measure, or all: direct, bare-p, bare1w-p, mcptap-p, mcptap-exp-p (the binary with --metrics and --otlp on; processes of their own), bare, norec, mcptap (in this process)")
	flag.Parse()
	want := func(name string) bool { return *only == "all" || slices.Contains(strings.Split(*only, ","), name) }
	procs := want("bare-p") || want("mcptap-p")

	upURL := startUpstream(*respSize)
	bareAddr := startBare(upURL)

	dir, err := os.MkdirTemp(*dbDir, "proxybench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	dbPath := filepath.Join(dir, "bench.db")
	store, err := recorder.Open(dbPath, &recorder.Options{BatchSize: *batch})
	if err != nil {
		log.Fatal(err)
	}
	capture, err := live.Start(live.Config{
		Store:   store,
		Session: mcptap.Session{ID: mcptap.NewID(time.Now()), Source: mcptap.SourceProxy, Name: upURL.String()},
		Proxy:   proxy.Config{Routes: []proxy.Route{{Listen: "127.0.0.1:0", Upstream: upURL}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	mcptapAddr := capture.Addrs()[0]

	// The same proxy publishing to a broker whose only consumer discards:
	// separates the proxy's own cost from the recorder's.
	nbroker := mcptap.NewBroker()
	nsub := nbroker.Subscribe("discard", live.DefaultRecorderBuffer)
	go func() {
		for range nsub.C {
		}
	}()
	norec, err := proxy.Start(proxy.Config{Routes: []proxy.Route{{Listen: "127.0.0.1:0", Upstream: upURL}}, Publish: nbroker.Publish, Session: "norec"})
	if err != nil {
		log.Fatal(err)
	}

	paths := []benchPath{{name: "direct", addr: upURL.Host}, {name: "bare", addr: bareAddr}, {name: "norec", addr: norec.Addrs()[0]}, {name: "mcptap", addr: mcptapAddr}}
	var bareProc, mcptapProc, bare1wProc *child
	procDB := filepath.Join(dir, "proc.db")
	if procs {
		bin := *mcptapBin
		if bin == "" {
			if bin, err = buildMcptap(dir); err != nil {
				log.Fatal(err)
			}
		}
		if bareProc, err = startBareChild(upURL, false); err != nil {
			log.Fatal(err)
		}
		if mcptapProc, err = startMcptapChild(bin, upURL, procDB); err != nil {
			bareProc.stop()
			log.Fatal(err)
		}
		paths = append(paths, benchPath{name: "bare-p", addr: bareProc.addr, proc: bareProc}, benchPath{name: "mcptap-p", addr: mcptapProc.addr, proc: mcptapProc})
	}
	var expProc *child
	if want("mcptap-exp-p") {
		bin := *mcptapBin
		if bin == "" {
			if bin, err = buildMcptap(dir); err != nil {
				log.Fatal(err)
			}
		}
		// Both exporters on: a Prometheus endpoint (scraped every second
		// below, as a server would) and OTLP to a collector that takes
		// everything, on loopback.
		collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusOK)
		}))
		defer collector.Close()
		metricsAddr := freeLoopbackAddr()
		if expProc, err = startMcptapChild(bin, upURL, filepath.Join(dir, "exp.db"), "--metrics", metricsAddr, "--otlp", collector.URL); err != nil {
			log.Fatal(err)
		}
		go func() {
			for range time.Tick(time.Second) {
				if resp, err := http.Get("http://" + metricsAddr + "/metrics"); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
		paths = append(paths, benchPath{name: "mcptap-exp-p", addr: expProc.addr, proc: expProc})
	}
	if want("bare1w-p") {
		if bare1wProc, err = startBareChild(upURL, true); err != nil {
			log.Fatal(err)
		}
		paths = append(paths, benchPath{name: "bare1w-p", addr: bare1wProc.addr, proc: bare1wProc})
	}

	paths = slices.DeleteFunc(paths, func(p benchPath) bool { return !want(p.name) })
	if len(paths) == 0 {
		log.Fatalf("-paths %q names none of the paths", *only)
	}
	fmt.Printf("proxybench: %d connections, %v per path per round, %d rounds, POST %d B -> %d B, in-process recorder batch %d, GOMAXPROCS=%d, %d CPUs, %s/%s\n",
		*conns, *duration, *rounds, *reqSize, *respSize, *batch, runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	body := jsonRPCCall(*reqSize)
	var prof *os.File
	if *cpuprofile != "" {
		prof, err = os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
	}
	all := map[string][]result{}
	for r := range *rounds {
		for i := range paths {
			p := paths[(i+r)%len(paths)] // rotate, so no path always runs first or last
			drive(p.addr, *conns, *warmup, body)
			if p.name == *profPath && prof != nil && r == 0 {
				pprof.StartCPUProfile(prof)
			}
			var tf *os.File
			if p.name == *profPath && *traceFile != "" && r == 0 {
				if tf, err = os.Create(*traceFile); err != nil {
					log.Fatal(err)
				}
				trace.Start(tf)
			}
			var pcpu0 time.Duration
			if p.proc != nil {
				pcpu0 = p.proc.cpu()
			}
			res := drive(p.addr, *conns, *duration, body)
			if p.proc != nil {
				if c := p.proc.cpu(); c >= 0 && pcpu0 >= 0 {
					res.pcpu = c - pcpu0
					res.cpu += res.pcpu
				}
			}
			if p.name == *profPath && prof != nil && r == 0 {
				pprof.StopCPUProfile()
			}
			if tf != nil {
				trace.Stop()
				tf.Close()
			}
			res.name = p.name
			all[p.name] = append(all[p.name], res)
			fmt.Printf("  round %d %-8s %8.0f req/s  p50 %-9v p99 %-9v cpu/req %-8v errors %d\n",
				r+1, p.name, res.rps(), res.p50.Round(time.Microsecond), res.p99.Round(time.Microsecond), res.cpuPerReq().Round(time.Microsecond/10), res.errors)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := capture.Stop(ctx); err != nil {
		log.Fatal(err)
	}
	sess, err := store.Session(capture.Session().ID)
	if err != nil {
		log.Fatal(err)
	}
	fi, _ := os.Stat(dbPath)
	store.Close()
	var procSess mcptap.Session
	var mcptapRSS, bareRSS string
	if procs {
		mcptapRSS, bareRSS = mcptapProc.memory(), bareProc.memory()
		if err := mcptapProc.stop(); err != nil {
			log.Printf("mcptap proxy: %v", err)
		}
		if err := bareProc.stop(); err != nil {
			log.Printf("bare proxy: %v", err)
		}
		procSess = onlySession(procDB)
	}
	if bare1wProc != nil {
		if err := bare1wProc.stop(); err != nil {
			log.Printf("bare proxy (one write): %v", err)
		}
	}
	if expProc != nil {
		if err := expProc.stop(); err != nil {
			log.Printf("mcptap proxy with exporters: %v", err)
		}
	}

	med := map[string]result{}
	for name, rs := range all {
		med[name] = pool(rs)
	}
	fmt.Println()
	fmt.Printf("all rounds pooled (cpu/req: whole machine's share of this benchmark's processes; proxy cpu/req: the proxy process alone):\n%-9s %10s %10s %10s %10s %15s %8s\n", "path", "req/s", "p50", "p99", "cpu/req", "proxy cpu/req", "errors")
	for _, p := range paths {
		r := med[p.name]
		pc := "-"
		if p.proc != nil {
			pc = (r.pcpu / time.Duration(max(1, r.requests))).Round(time.Microsecond / 10).String()
		}
		fmt.Printf("%-9s %10.0f %10v %10v %10v %15s %8d\n", p.name, r.rps(), r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.cpuPerReq().Round(time.Microsecond/10), pc, r.errors)
	}
	fmt.Println()
	ratios := func(label string, m, b result, target bool) {
		if m.requests == 0 || b.requests == 0 {
			return // a path left out by -paths
		}
		t1, t2 := "", ""
		if target {
			t1, t2 = " (target >= 0.85x)", " (target <= 1.3x)"
		}
		fmt.Printf("%s: throughput %.2fx%s, p50 %.2fx, p99 %.2fx%s, cpu/req %.2fx\n",
			label, m.rps()/b.rps(), t1, float64(m.p50)/float64(b.p50), float64(m.p99)/float64(b.p99), t2, float64(m.cpuPerReq())/float64(b.cpuPerReq()))
	}
	if procs {
		bp, mp := med["bare-p"], med["mcptap-p"]
		ratios("mcptap proxy binary / bare proxy process", mp, bp, true)
		if bp.pcpu > 0 && mp.requests > 0 {
			fmt.Printf("  proxy process CPU per request: mcptap %.2fx bare\n", (float64(mp.pcpu)/float64(mp.requests))/(float64(bp.pcpu)/float64(bp.requests)))
		}
	}
	ratios("mcptap proxy binary / bare proxy sending short bodies in one write, as mcptap does", med["mcptap-p"], med["bare1w-p"], false)
	ratios("mcptap with --metrics and --otlp on / the same binary with them off", med["mcptap-exp-p"], med["mcptap-p"], false)
	ratios("in-process mcptap (recorder only) / bare", med["mcptap"], med["bare"], !procs)
	ratios("in-process norec (proxy without the recorder) / bare", med["norec"], med["bare"], false)
	if len(all["mcptap"]) > 0 {
		fmt.Printf("recorded in-process: %d exchanges in %d KiB of bbolt, %d dropped\n", sess.Exchanges, fi.Size()>>10, sess.Dropped)
	}
	if len(all["mcptap-p"]) > 0 {
		fmt.Printf("recorded by the mcptap binary: %d exchanges, %d dropped\nmemory: mcptap %s; bare proxy %s\n", procSess.Exchanges, procSess.Dropped, mcptapRSS, bareRSS)
	}
}

type benchPath struct {
	name, addr string
	proc       *child // nil for a path served in this process
}

// onlySession reads the one session of the database at path.
func onlySession(path string) mcptap.Session {
	st, err := recorder.Open(path, &recorder.Options{ReadOnly: true})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	ss, err := st.Sessions()
	if err != nil || len(ss) != 1 {
		log.Fatalf("%s: want one session, got %d (%v)", path, len(ss), err)
	}
	return ss[0]
}

// jsonRPCCall is an MCP tools/call request of about n bytes, what an MCP
// client posts most.
func jsonRPCCall(n int) string {
	const head, tail = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search","arguments":{"q":"`, `"}}}`
	return head + strings.Repeat("q", max(0, n-len(head)-len(tail))) + tail
}

// startUpstream serves a fixed JSON response of n bytes to any request.
func startUpstream(n int) *url.URL {
	payload := []byte(`{"jsonrpc":"2.0","id":1,"result":{"pad":"` + strings.Repeat("y", max(0, n-43)) + `"}}`)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
		w.Write(payload)
	}))
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}
}

// startBare serves bareHandler in this process.
func startBare(up *url.URL) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, bareHandler(up, false))
	return ln.Addr().String()
}

// bareHandler is a plain ReverseProxy with the same tuned upstream transport
// and copy-buffer pool mcptap uses, and nothing else: the baseline that
// recording and transparency are measured against. With oneWrite its
// transport also reads a short request body whole first, as mcptap's does
// (wire.ReadShortBody), so that net/http sends it with the request head in
// one write: the "bare1w-p" path, which separates what recording costs from
// what that saves.
func bareHandler(up *url.URL, oneWrite bool) http.Handler {
	var tr http.RoundTripper = proxy.DefaultUpstreamTransport(0)
	if oneWrite {
		tr = oneWriteTransport{tr}
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			pr.Out.Host = pr.In.Host
		},
		Transport:  tr,
		BufferPool: wire.CopyBuffers(),
	}
}

type oneWriteTransport struct{ base http.RoundTripper }

func (o oneWriteTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r, _, _, err := wire.ReadShortBody(r)
	if err != nil {
		return nil, err
	}
	return o.base.RoundTrip(r)
}

// drive runs conns client goroutines, each on its own keep-alive connection,
// for d and returns throughput and latency percentiles.
func drive(addr string, conns int, d time.Duration, body string) result {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	target := "http://" + addr + "/mcp?bench=1"
	cpu0 := processCPU()
	var stop atomic.Bool
	var wg sync.WaitGroup
	lats := make([][]time.Duration, conns)
	errs := make([]int, conns)
	start := time.Now()
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := make([]time.Duration, 0, 1<<16)
			for !stop.Load() {
				t0 := time.Now()
				resp, err := client.Post(target, "application/json", strings.NewReader(body))
				if err != nil {
					errs[i]++
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					errs[i]++
					continue
				}
				l = append(l, time.Since(t0))
			}
			lats[i] = l
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	var nerr int
	for i := range conns {
		all = append(all, lats[i]...)
		nerr += errs[i]
	}
	slices.Sort(all)
	res := result{requests: len(all), errors: nerr, elapsed: elapsed, cpu: processCPU() - cpu0, lats: all}
	if len(all) > 0 {
		res.p50 = all[len(all)*50/100]
		res.p99 = all[len(all)*99/100]
	}
	return res
}

// freeLoopbackAddr is a loopback address nothing listens on now.
func freeLoopbackAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
