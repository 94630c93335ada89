package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mcptap "github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/internal/freeport"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/recorder"
)

var npmOnce sync.Once
var npmErr error

// interopDir returns lab/interop with its node_modules installed (npm ci from
// the committed lockfile when missing). Without node or npm the test skips
// locally and fails under CI=true.
func interopDir(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required for the interop test under CI: %v", tool, err)
			}
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	dir, err := filepath.Abs("interop")
	if err != nil {
		t.Fatal(err)
	}
	npmOnce.Do(func() {
		installed := true
		for _, pkg := range []string{"@modelcontextprotocol/sdk", "oidc-provider", "oauth2-mock-server", "mcp-remote", "playwright-core"} {
			if _, err := os.Stat(filepath.Join(dir, "node_modules", filepath.FromSlash(pkg), "package.json")); err != nil {
				installed = false
			}
		}
		if installed {
			return
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			npmErr = err
			t.Logf("npm ci:\n%s", out)
		}
	})
	if npmErr != nil {
		t.Fatalf("npm ci in %s: %v", dir, npmErr)
	}
	return dir
}

func freePort(t *testing.T) int { return freeport.Port(t) }

type tsResult struct {
	OK    bool     `json:"ok"`
	Steps []string `json:"steps"`
	Tools []string `json:"tools"`
	Text  string   `json:"text"`
	Error string   `json:"error"`
}

// buildMcptap builds the real mcptap command into dir.
func buildMcptap(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "mcptap")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/mcptap").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/mcptap: %v\n%s", err, out)
	}
	return bin
}

// startMcptapProxy runs `mcptap proxy --no-tui` with --upstream for the first
// upstream and one --route per further one, on free loopback ports, and
// returns the listen addresses it reports (in upstream order) and a stop
// function that interrupts it and waits for its clean exit.
func startMcptapProxy(t *testing.T, bin, db string, upstreams ...string) ([]string, func()) {
	t.Helper()
	args := []string{"proxy", "--no-tui", "--db", db, "--token-timeout", demoTokenTimeout.String(),
		"--upstream", upstreams[0], "--listen", "127.0.0.1:" + strconv.Itoa(freePort(t))}
	for _, u := range upstreams[1:] {
		// The CLI refuses the same listen address twice, so no ":0" here.
		args = append(args, "--route", "127.0.0.1:"+strconv.Itoa(freePort(t))+"="+u)
	}
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = &logWriter{t: t, prefix: "mcptap proxy: "}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrs := make(chan []string, 1)
	go func() {
		var got []string
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			t.Log("mcptap proxy: " + line)
			if rest, ok := strings.CutPrefix(line, "mcptap: listening on http://"); ok {
				a, _, _ := strings.Cut(rest, " ")
				got = append(got, a)
				if len(got) == len(upstreams) {
					addrs <- got
				}
			}
		}
		close(addrs)
	}()
	var got []string
	select {
	case got = <-addrs:
	case <-time.After(30 * time.Second):
	}
	if len(got) != len(upstreams) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("mcptap proxy did not report %d listeners", len(upstreams))
	}
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("mcptap proxy exit: %v", err)
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("mcptap proxy did not stop within 20s of SIGINT")
		}
	}
	return got, stop
}

// runInterop puts the TypeScript SDK's server and client behind the real
// `mcptap proxy` binary (--upstream for the server's port, one --route for
// the client's loopback callback) and returns what the client said and what
// mcptap recorded.
func runInterop(t *testing.T, bin string, advertiseInternal bool) (tsResult, []mcptap.Exchange, []string) {
	dir := interopDir(t)
	serverPort, cbPort := freePort(t), freePort(t)
	db := filepath.Join(t.TempDir(), "interop.db")
	addrs, stopProxy := startMcptapProxy(t, bin, db, "http://127.0.0.1:"+strconv.Itoa(serverPort), "http://127.0.0.1:"+strconv.Itoa(cbPort))
	stopped := false
	defer func() {
		if !stopped {
			stopProxy()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), labBound)
	defer cancel()

	srvArgs := []string{"peer.mjs", "server", "--port", strconv.Itoa(serverPort), "--public", "http://" + addrs[0]}
	if advertiseInternal {
		srvArgs = append(srvArgs, "--advertise-internal")
	}
	srv := exec.CommandContext(ctx, "node", srvArgs...)
	srv.Dir = dir
	srv.Stderr = &logWriter{t: t, prefix: "ts server: "}
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("start node server: %v", err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "READY" {
				ready <- true
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("node server exited before READY")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("node server not ready within 30s")
	}

	cl := exec.CommandContext(ctx, "node", "peer.mjs", "client", "--mcp", "http://"+addrs[0]+"/mcp",
		"--callback-port", strconv.Itoa(cbPort), "--callback-public", "http://"+addrs[1])
	cl.Dir = dir
	cl.Stderr = &logWriter{t: t, prefix: "ts client: "}
	data, err := cl.Output()
	if err != nil {
		t.Fatalf("node client: %v\n%s", err, data)
	}
	var res tsResult
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("node client printed %q: %v", data, err)
	}
	stopProxy()
	stopped = true
	store, err := recorder.Open(db, &recorder.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sess, err := store.Latest()
	if err != nil {
		t.Fatal(err)
	}
	if sess.Ended.IsZero() {
		t.Errorf("session %s was not ended cleanly", sess.ID)
	}
	var exs []mcptap.Exchange
	if err := store.Exchanges(sess.ID, func(ex mcptap.Exchange) error { exs = append(exs, ex); return nil }); err != nil {
		t.Fatal(err)
	}
	return res, exs, addrs
}

type logWriter struct {
	t      *testing.T
	prefix string
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.t.Log(w.prefix + strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestInteropTypeScriptSDK runs a peer this project did not write: the MCP
// TypeScript SDK's server (Streamable HTTP transport, mcpAuthRouter with its
// demo provider, requireBearerAuth) and its OAuth client, through the real
// `mcptap proxy` binary with one route per port.
func TestInteropTypeScriptSDK(t *testing.T) {
	interopDir(t) // node, npm and node_modules first: fail or skip before building
	bin := buildMcptap(t, t.TempDir())
	t.Run("complete", func(t *testing.T) {
		res, exs, _ := runInterop(t, bin, false)
		if !res.OK || res.Text != "hello through mcptap" {
			t.Fatalf("TS client did not complete: %+v", res)
		}
		tr := oauth.NewTracker(oauth.Options{TokenTimeout: demoTokenTimeout})
		for _, ex := range exs {
			tr.Observe(ex)
		}
		tr.Finish()
		flows, findings := tr.Flows(), tr.Findings()
		var kinds []string
		for _, ex := range exs {
			k, ok := tr.Hop(ex.ID)
			switch {
			case !ok:
				t.Errorf("exchange %s %s (%d) is not classified", ex.Method, ex.Target, ex.Status)
			case (ex.Method == "GET" || ex.Method == "DELETE") && path(ex) == "/mcp" && k != mcptap.HopMCP:
				// The SDK client's optional standalone SSE stream (GET, which a
				// stateless server refuses with 405) and session end (DELETE).
				t.Errorf("%s %s (%d) on the MCP endpoint is classified %s, want mcp", ex.Method, ex.Target, ex.Status, k)
			}
			kinds = append(kinds, string(k))
		}
		t.Logf("hops: %s", strings.Join(kinds, " "))
		for _, want := range []mcptap.HopKind{mcptap.HopMCPUnauthenticated, mcptap.HopDiscoveryResource, mcptap.HopDiscoveryAuth,
			mcptap.HopRegister, mcptap.HopAuthorize, mcptap.HopCallback, mcptap.HopToken, mcptap.HopMCP} {
			if !strings.Contains(" "+strings.Join(kinds, " ")+" ", " "+string(want)+" ") {
				t.Errorf("no %s hop recorded", want)
			}
		}
		if len(flows) != 1 {
			t.Fatalf("%d flows, want 1: %+v", len(flows), flows)
		}
		f := flows[0]
		if f.Verdict.Rule != "ok" || f.Status != mcptap.FlowComplete {
			t.Errorf("verdict %+v status %s, want ok/complete", f.Verdict, f.Status)
		}
		for _, fd := range findings {
			if fd.Severity.Rank() >= mcptap.SevWarning.Rank() {
				t.Errorf("finding %s/%s: %s", fd.Rule, fd.Severity, fd.Detail)
			}
		}
		// The TS client sends Node's fetch user agent and a loopback
		// http://127.0.0.1:PORT/oauth/callback redirect URI: the shape mcp-remote
		// (itself built on this SDK) uses, so that is the right identification.
		if f.Client != "mcp-remote" {
			t.Errorf("client identified as %q, want mcp-remote", f.Client)
		}
	})
	t.Run("internal-origin", func(t *testing.T) {
		res, exs, _ := runInterop(t, bin, true)
		if res.OK {
			t.Errorf("TS client connected although the metadata names another origin: %+v", res)
		}
		t.Logf("TS client: %+v", res)
		_, findings := oauth.Analyze(exs, oauth.Options{TokenTimeout: demoTokenTimeout})
		var got []string
		hit := false
		for _, fd := range findings {
			got = append(got, string(fd.Rule)+"/"+string(fd.Fault))
			if (fd.Rule == "discovery.resource-mismatch" || fd.Rule == "discovery.internal-origin") && fd.Fault == mcptap.FaultServer {
				hit = true
			}
		}
		if !hit {
			t.Errorf("findings %v, want discovery.resource-mismatch or discovery.internal-origin blaming the server", got)
		}
	})
}
