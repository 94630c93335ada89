package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mcptap/mcptap/internal/syncbuf"

	bolt "go.etcd.io/bbolt"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/recorder"
)

// buildMcptap builds the real binary into a temp dir.
func buildMcptap(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mcptap")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proxyChild is a running `mcptap proxy --no-tui`.
type proxyChild struct {
	cmd    *exec.Cmd
	addr   string
	stdout *syncbuf.Buffer
	stderr *syncbuf.Buffer
	exited chan struct{}
	err    error
}

var listeningRE = regexp.MustCompile(`listening on http://(\S+) ->`)

// startProxyChild runs the binary against upstream and waits for its listen address.
func startProxyChild(t *testing.T, bin, db, upstream string, extra ...string) *proxyChild {
	t.Helper()
	return startProxyChildLimited(t, 0, bin, db, upstream, extra...)
}

// startProxyChildLimited is startProxyChild under a file size limit of
// fsizeKiB (0: none), set with the shell's ulimit: writes that would grow a
// file past it fail with EFBIG, as on a full disk.
// startProxyChildStdout is startProxyChild with stdout going to out.
func startProxyChildStdout(t *testing.T, out *os.File, bin, db, upstream string) *proxyChild {
	t.Helper()
	return startProxyChildWith(t, 0, out, bin, db, upstream)
}

func startProxyChildLimited(t *testing.T, fsizeKiB int, bin, db, upstream string, extra ...string) *proxyChild {
	t.Helper()
	return startProxyChildWith(t, fsizeKiB, nil, bin, db, upstream, extra...)
}

func startProxyChildWith(t *testing.T, fsizeKiB int, stdout *os.File, bin, db, upstream string, extra ...string) *proxyChild {
	t.Helper()
	args := append([]string{"proxy", "--no-tui", "--db", db, "--listen", "127.0.0.1:0", "--upstream", upstream}, extra...)
	cmd := exec.Command(bin, args...)
	if fsizeKiB > 0 {
		cmd = exec.Command("sh", append([]string{"-c", fmt.Sprintf(`ulimit -f %d && exec "$0" "$@"`, fsizeKiB*2), bin}, args...)...)
	}
	cmd.Env = append(os.Environ(), "MCPTAP_HOME="+t.TempDir())
	c := &proxyChild{cmd: cmd, stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, exited: make(chan struct{})}
	cmd.Stdout = c.stdout
	if stdout != nil {
		cmd.Stdout = stdout
	}
	pr, pw := io.Pipe()
	cmd.Stderr = io.MultiWriter(c.stderr, pw)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = cmd.Wait()
		pw.Close()
		close(c.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			cmd.Process.Kill()
			<-c.exited
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case c.addr = <-found:
	case <-c.exited:
		t.Fatalf("mcptap exited early: %v\n%s", c.err, c.stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("mcptap did not report its address:\n%s", c.stderr.String())
	}
	return c
}

func (c *proxyChild) wait(t *testing.T) {
	t.Helper()
	select {
	case <-c.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("mcptap did not exit:\n%s", c.stderr.String())
	}
}

// echoUpstream answers every request with a JSON-RPC result naming its n;
// /slow answers after 700 ms and, first, signals slowStarted if given.
func echoUpstream(t *testing.T, slowStarted ...chan<- struct{}) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			for _, c := range slowStarted {
				select {
				case c <- struct{}{}:
				default:
				}
			}
			time.Sleep(700 * time.Millisecond)
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":1,"result":{"n":%q,"len":%d}}`, r.URL.Query().Get("n"), len(b))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// checkDB runs bbolt's consistency check on the file.
func checkDB(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("open %s after the run: %v", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		var errs []error
		for e := range tx.Check() {
			errs = append(errs, e)
		}
		return errors.Join(errs...)
	})
	if err != nil {
		t.Fatalf("tx.Check: %v", err)
	}
}

// latestSession opens db read-only and returns it, for the caller to close,
// with its latest session.
func latestSession(t *testing.T, db string) (*recorder.Store, mcptap.Session) {
	t.Helper()
	store, err := recorder.Open(db, &recorder.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := store.Latest()
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	return store, sess
}

// storedTargets returns the single session in db and its exchanges by target.
func storedTargets(t *testing.T, path string) (mcptap.Session, map[string]mcptap.Exchange) {
	t.Helper()
	s, err := recorder.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sessions, err := s.Sessions()
	if err != nil || len(sessions) != 1 {
		t.Fatalf("sessions %v, %v; want exactly one", sessions, err)
	}
	got := map[string]mcptap.Exchange{}
	if err := s.Exchanges(sessions[0].ID, func(ex mcptap.Exchange) error {
		got[ex.Target] = ex
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return sessions[0], got
}

// loadCounted sends POSTs with unique targets from conc goroutines, each
// pausing pace between requests, until stop is closed, and returns a function
// that waits for them and lists the targets whose responses the client read
// completely, in the order they completed; each completion is also counted
// into completed (when not nil), for a test to wait on.
func loadCounted(addr string, conc int, pace time.Duration, stop <-chan struct{}, completed *atomic.Int64) func() []string {
	client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: conc}, Timeout: 5 * time.Second}
	var mu sync.Mutex
	var done []string
	var n atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(pace):
				}
				target := fmt.Sprintf("/mcp?n=%d", n.Add(1))
				resp, err := client.Post("http://"+addr+target, "application/json", strings.NewReader(`{"method":"tools/call"}`))
				if err != nil {
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode == 200 && strings.HasSuffix(string(body), "}}") {
					mu.Lock()
					done = append(done, target)
					mu.Unlock()
					if completed != nil {
						completed.Add(1)
					}
				}
			}
		}()
	}
	return func() []string {
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return done
	}
}

// TestProxyBinary runs the lifecycle tests against one build of the real binary.
func TestProxyBinary(t *testing.T) {
	bin := buildMcptap(t)
	t.Run("crash", func(t *testing.T) { testProxyCrashKeepsAllButLastBatch(t, bin) })
	t.Run("sigint", func(t *testing.T) { testProxySIGINTFlushesAndEnds(t, bin) })
	t.Run("refusals", func(t *testing.T) { testProxyRefusals(t, bin) })
	t.Run("cpuprofile", func(t *testing.T) { testCPUProfileEnv(t, bin) })
	t.Run("read-while-recording", func(t *testing.T) { testReadWhileRecording(t, bin) })
	t.Run("full-disk", func(t *testing.T) { testProxyFullDisk(t, bin) })
	t.Run("damaged", func(t *testing.T) { testDamagedDatabase(t, bin) })
	t.Run("blocked-stdout", func(t *testing.T) { testProxyStopsWithBlockedStdout(t, bin) })
	t.Run("metrics", func(t *testing.T) { testProxyMetrics(t, bin) })
	t.Run("retain", func(t *testing.T) { testProxyRetain(t, bin) })
	t.Run("max-db-size-live", func(t *testing.T) { testProxyLiveSessionStopsGrowing(t, bin) })
	t.Run("otlp", func(t *testing.T) { testProxyOTLP(t, bin) })
}

// testCPUProfileEnv: MCPTAP_CPUPROFILE makes any command write a CPU profile
// (gzip-compressed pprof, mode 0600); a path that cannot be created is a
// usage error that names the variable.
func testCPUProfileEnv(t *testing.T, bin string) {
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	cmd := exec.Command(bin, "sessions", "--db", filepath.Join(t.TempDir(), "none.db"))
	cmd.Env = append(os.Environ(), profileEnv+"="+prof)
	_ = cmd.Run() // the database does not exist; the profile is written all the same
	b, err := os.ReadFile(prof)
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("profile %s: %d bytes, %v; want a gzip-compressed pprof profile", prof, len(b), err)
	}
	if fi, _ := os.Stat(prof); fi.Mode().Perm() != 0o600 {
		t.Errorf("profile mode %v, want 0600", fi.Mode().Perm())
	}
	// MCPTAP_MEMPROFILE: a heap profile, written when the command ends.
	mem := filepath.Join(t.TempDir(), "mem.prof")
	cmd = exec.Command(bin, "sessions", "--db", filepath.Join(t.TempDir(), "none.db"))
	cmd.Env = append(os.Environ(), memProfileEnv+"="+mem)
	_ = cmd.Run()
	b, err = os.ReadFile(mem)
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("heap profile %s: %d bytes, %v; want a gzip-compressed pprof profile", mem, len(b), err)
	}
	if fi, _ := os.Stat(mem); fi.Mode().Perm() != 0o600 {
		t.Errorf("heap profile mode %v, want 0600", fi.Mode().Perm())
	}
	cmd = exec.Command(bin, "--help")
	cmd.Env = append(os.Environ(), profileEnv+"="+filepath.Join(t.TempDir(), "no", "such", "dir", "cpu.prof"))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), profileEnv) {
		t.Errorf("unwritable profile path: %v, %q; want exit 2 naming %s", err, out, profileEnv)
	}
}

// testProxyCrashKeepsAllButLastBatch: a child mcptap recording under
// saturating load is killed with SIGKILL; the database opens, passes
// tx.Check, and the next command that opens it puts back what the journal
// holds: every exchange the client saw complete is there but for the few
// published in the last moment (crashLossBound), where the group commit alone
// lost a whole group and what queued behind it (hundreds at this load).
func testProxyCrashKeepsAllButLastBatch(t *testing.T, bin string) {
	up := echoUpstream(t)
	db := filepath.Join(t.TempDir(), "crash.db")
	child := startProxyChild(t, bin, db, up.URL)

	// As fast as 16 connections go: the writer's groups are as large as
	// they get. The kill comes once 3000 requests have completed, however
	// long a loaded machine takes to get there.
	const conc = 16
	stop := make(chan struct{})
	var completedN atomic.Int64
	finish := loadCounted(child.addr, conc, 0, stop, &completedN)
	waitUntil(t, 2*time.Minute, "3000 completed requests", func() bool { return completedN.Load() >= 3000 })
	if err := child.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.wait(t)
	close(stop)
	completed := finish()

	checkDB(t, db)
	if segs, _ := filepath.Glob(db + ".journal.*"); len(segs) == 0 {
		t.Errorf("no journal beside %s after the kill", db)
	}
	out, err := exec.Command(bin, "sessions", "--db", db).CombinedOutput()
	if err != nil {
		t.Errorf("sessions after the kill: %v\n%s", err, out)
	}
	if segs, _ := filepath.Glob(db + ".journal.*"); len(segs) != 0 {
		t.Errorf("journal %v still there after it was put back", segs)
	}
	sess, stored := storedTargets(t, db)
	if !sess.Ended.IsZero() {
		t.Errorf("a killed session has an end time %v", sess.Ended)
	}
	var missing []string
	for i, target := range completed {
		if _, ok := stored[target]; !ok {
			missing = append(missing, target)
			// Only the tail may be missing: a hole further back would mean a
			// committed group or a journal write lost exchanges.
			if i < len(completed)-2*crashLossBound {
				t.Errorf("%s (completion %d of %d) is missing: not part of the last moment", target, i+1, len(completed))
			}
		}
	}
	t.Logf("client completed %d, database holds %d, missing %d", len(completed), len(stored), len(missing))
	if len(missing) > crashLossBound {
		t.Errorf("%d completed exchanges missing after SIGKILL, want at most %d: %v", len(missing), crashLossBound, missing[:min(10, len(missing))])
	}
	if fi, err := os.Stat(db); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("database mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

// crashLossBound is what a kill -9 may lose under the crash test's load:
// what the journal writer had taken but not written (at most 128) and what
// was published since it last took (recorder/doc.go). Without the journal
// this load lost 83 to 475.
const crashLossBound = 128

// testProxySIGINTFlushesAndEnds: SIGINT lets an in-flight request finish,
// stores every exchange complete, ends the session with no drops, prints one
// line per exchange and a summary, and exits 0.
func testProxySIGINTFlushesAndEnds(t *testing.T, bin string) {
	slowStarted := make(chan struct{}, 1)
	up := echoUpstream(t, slowStarted)
	db := filepath.Join(t.TempDir(), "clean.db")
	child := startProxyChild(t, bin, db, up.URL)

	stop := make(chan struct{})
	var completedN atomic.Int64
	finish := loadCounted(child.addr, 4, 0, stop, &completedN)
	waitUntil(t, time.Minute, "50 completed requests", func() bool { return completedN.Load() >= 50 })
	close(stop)
	completed := finish()

	slow := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + child.addr + "/slow?n=slow")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != 200 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		slow <- err
	}()
	select { // the slow request is in flight: the upstream has it
	case <-slowStarted:
	case <-time.After(time.Minute):
		t.Fatal("the slow request never reached the upstream")
	}
	if err := child.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	child.wait(t)
	if child.err != nil {
		t.Fatalf("exit: %v\n%s", child.err, child.stderr.String())
	}
	if err := <-slow; err != nil {
		t.Errorf("in-flight request during SIGINT: %v", err)
	}
	want := len(completed) + 1

	checkDB(t, db)
	sess, stored := storedTargets(t, db)
	if sess.Ended.IsZero() || sess.Dropped != 0 || sess.Exchanges != want || len(stored) != want {
		t.Errorf("session ended %v dropped %d exchanges %d (stored %d), want ended, 0, %d", sess.Ended, sess.Dropped, sess.Exchanges, len(stored), want)
	}
	for _, target := range append(completed, "/slow?n=slow") {
		if ex, ok := stored[target]; !ok || !ex.Complete || ex.Status != 200 {
			t.Errorf("%s: stored %v complete %v status %d", target, ok, ex.Complete, ex.Status)
		}
	}
	lines := strings.Count(child.stdout.String(), "\n")
	if lines != want || !strings.Contains(child.stdout.String(), " POST /mcp?n=") {
		t.Errorf("stdout has %d lines, want one per exchange (%d):\n%.500s", lines, want, child.stdout.String())
	}
	summary := fmt.Sprintf("session %s: %d exchanges, 0 dropped", sess.ID, want)
	if !strings.Contains(child.stderr.String(), summary) {
		t.Errorf("stderr lacks %q:\n%s", summary, child.stderr.String())
	}
}

// testProxyRefusals: usage errors exit 2 with a message saying what to do; a
// database held by another mcptap is refused within about a second.
func testProxyRefusals(t *testing.T, bin string) {
	up := echoUpstream(t)
	db := filepath.Join(t.TempDir(), "busy.db")
	run := func(args ...string) (int, string, time.Duration) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "MCPTAP_HOME="+t.TempDir())
		start := time.Now()
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out), time.Since(start)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"proxy", "--no-tui"}, "--upstream is required"},
		{[]string{"proxy", "--no-tui", "--upstream", "localhost:3000"}, "not an http(s) URL"},
		{[]string{"proxy", "--no-tui", "--upstream", up.URL, "--listen", "0.0.0.0:8780"}, "--allow-remote"},
		{[]string{"proxy", "--no-tui", "--upstream", up.URL, "--route", "nonsense"}, "LISTEN=URL"},
		{[]string{"proxy", "--no-tui", "--upstream", up.URL, "--body-cap", "lots"}, "--body-cap"},
		{[]string{"proxy", "--no-tui", "--upstream", up.URL, "--host-header", "both"}, "client or upstream"},
		{[]string{"proxy", "--no-tui", "--upstream", up.URL, "--max-conns", "-1"}, "must not be negative"},
		{[]string{"proxy", "--no-tui", "--upstream", up.URL, "--metrics", "0.0.0.0:9464"}, "not loopback"},
		{[]string{"proxy", "--no-tui", "--upstream", up.URL, "--retain", "a week"}, "--retain"},
		{[]string{"proxy", "--no-tui", "--upstream", up.URL, "--max-db-size", "lots"}, "--max-db-size"},
	} {
		code, out, _ := run(tc.args...)
		if code != 2 || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, output %q; want 2 and %q", tc.args, code, out, tc.want)
		}
	}

	holder := startProxyChild(t, bin, db, up.URL)
	code, out, took := run("proxy", "--no-tui", "--db", db, "--listen", "127.0.0.1:0", "--upstream", up.URL)
	if code != 3 || !strings.Contains(out, db) || !strings.Contains(out, "in use") {
		t.Errorf("second mcptap on a busy database: exit %d, %q", code, out)
	}
	if took > hangLimit {
		t.Errorf("refusal took %v: the second mcptap waited instead of refusing", took)
	}
	holder.cmd.Process.Signal(syscall.SIGTERM)
	holder.wait(t)
	if holder.err != nil {
		t.Errorf("SIGTERM exit: %v", holder.err)
	}
}

// TestProxyHelpHasExample: --help shows a runnable example.
func TestProxyHelpHasExample(t *testing.T) {
	var out strings.Builder
	root := newRootCmd()
	root.SetOut(&out)
	root.SetArgs([]string{"proxy", "--help"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "mcptap proxy --upstream http://localhost:3000") {
		t.Errorf("help has no example:\n%s", out.String())
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"65536", 65536, true}, {"1MiB", 1 << 20, true}, {"256KiB", 256 << 10, true}, {"64k", 64 << 10, true},
		{"0", 0, true}, {"2M", 2 << 20, true}, {"-1", 0, false}, {"lots", 0, false}, {"2GiB", 0, false},
	} {
		got, err := parseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v", tc.in, got, err)
		}
	}
}

// hangLimit tells a hang from a slow machine: operations that take about a
// second (the database lock's timeout) are checked against it, so that a
// loaded machine never fails them, while one that blocks for good does.
const hangLimit = 30 * time.Second

// waitUntil polls cond until it holds, failing the test after limit.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testProxyFullDisk: when the database cannot grow (a file size limit stands
// in for a full disk), the lost exchanges are said while it happens, counted
// as dropped, and the stop exits 3 saying how many were lost: never the
// silent "0 dropped" and exit 0 of a full 5 MiB filesystem.
func testProxyFullDisk(t *testing.T, bin string) {
	up := echoUpstream(t)
	db := filepath.Join(t.TempDir(), "full.db")
	// The file exists, as after earlier recordings; from now on it may grow
	// by little more than one session record.
	imp := exec.Command(bin, "--db", db, "import", harFixture("firefox.har"))
	imp.Env = append(os.Environ(), "MCPTAP_HOME="+t.TempDir())
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	fi, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	child := startProxyChildLimited(t, int(fi.Size()>>10)+48, bin, db, up.URL)
	// bbolt grows its file 16 MiB at a time: 48 bodies of 512 KiB need the next step
	body := strings.Repeat("x", 512<<10)
	answered := 0
	for i := range 48 {
		resp, err := http.Post(fmt.Sprintf("http://%s/mcp?n=%d", child.addr, i), "application/json", strings.NewReader(`{"pad":"`+body+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			answered++
		}
	}
	if answered != 48 {
		t.Fatalf("the proxy answered %d of 48: a failing recorder must never fail traffic", answered)
	}
	waitUntil(t, time.Minute, "the live warning about lost exchanges", func() bool {
		return strings.Contains(child.stderr.String(), "recording failed: exchanges lost")
	})
	if err := child.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	child.wait(t)
	var ee *exec.ExitError
	if !errors.As(child.err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("exit %v, want 3\n%s", child.err, child.stderr.String())
	}
	m := regexp.MustCompile(`(\d+) exchange\(s\) of session \w+ were not recorded`).FindStringSubmatch(child.stderr.String())
	if m == nil || m[1] == "0" {
		t.Fatalf("the stop does not say how many were lost:\n%s", child.stderr.String())
	}
	if !strings.Contains(child.stderr.String(), "file too large") {
		t.Errorf("the stop does not say why:\n%s", child.stderr.String())
	}
	t.Logf("lost %s of 48", m[1])
}

// testProxyStopsWithBlockedStdout: the line view's stdout is a pipe nobody
// reads (a paused pager); SIGINT and SIGTERM still stop the proxy, with the
// recording complete.
func testProxyStopsWithBlockedStdout(t *testing.T, bin string) {
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		up := echoUpstream(t)
		db := filepath.Join(t.TempDir(), "blocked.db")
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close() // never read until the end
		child := startProxyChildStdout(t, pw, bin, db, up.URL)
		pw.Close()
		// Enough lines to fill the pipe (64 KiB) many times over.
		for i := range 1500 {
			resp, err := http.Get(fmt.Sprintf("http://%s/item-with-a-longish-path-to-fill-the-pipe-sooner?n=%d", child.addr, i))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err := child.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		select {
		case <-child.exited:
		case <-time.After(hangLimit):
			t.Fatalf("%v: the proxy did not stop with its stdout blocked:\n%s", sig, child.stderr.String())
		}
		if child.err != nil || !strings.Contains(child.stderr.String(), "1500 exchanges") {
			t.Errorf("%v: exit %v, want 0 with all 1500 exchanges recorded:\n%s", sig, child.err, child.stderr.String())
		}
	}
}

// testProxyMetrics: --metrics serves the Prometheus endpoint of the running
// proxy; what went through it is counted.
func testProxyMetrics(t *testing.T, bin string) {
	up := echoUpstream(t)
	db := filepath.Join(t.TempDir(), "m.db")
	child := startProxyChild(t, bin, db, up.URL, "--metrics", "127.0.0.1:0")
	var metricsURL string
	waitUntil(t, time.Minute, "the metrics address", func() bool {
		m := regexp.MustCompile(`Prometheus metrics on (http://\S+/metrics)`).FindStringSubmatch(child.stderr.String())
		if m != nil {
			metricsURL = m[1]
		}
		return m != nil
	})
	for i := range 3 {
		resp, err := http.Get(fmt.Sprintf("http://%s/mcp?n=%d", child.addr, i))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	waitUntil(t, time.Minute, "3 exchanges in the metrics", func() bool {
		resp, err := http.Get(metricsURL)
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(b), `mcptap_exchanges_total{mode="reverse"} 3`)
	})
	child.cmd.Process.Signal(os.Interrupt)
	child.wait(t)
}

// testProxyRetain: with --retain 7d the proxy deletes the sessions that
// ended more than 7 days ago and keeps the rest and its own.
func testProxyRetain(t *testing.T, bin string) {
	up := echoUpstream(t)
	db := filepath.Join(t.TempDir(), "r.db")
	s, err := recorder.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, c := range []struct {
		id  string
		age time.Duration
	}{{"old-session", 10 * 24 * time.Hour}, {"recent-session", 24 * time.Hour}} {
		if err := s.Import(mcptap.Session{ID: c.id, Source: mcptap.SourceImport, Started: now.Add(-c.age), Ended: now.Add(-c.age)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	child := startProxyChild(t, bin, db, up.URL, "--retain", "7d")
	waitUntil(t, time.Minute, "the pruning", func() bool {
		return strings.Contains(child.stderr.String(), "deleted 1 session(s) older than 168h0m0s")
	})
	child.cmd.Process.Signal(os.Interrupt)
	child.wait(t)
	store, err := recorder.Open(db, &recorder.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	list, _ := store.Sessions()
	var ids []string
	for _, ss := range list {
		ids = append(ids, ss.ID)
	}
	if len(ids) != 2 || !slices.Contains(ids, "recent-session") || slices.Contains(ids, "old-session") {
		t.Errorf("sessions after --retain 7d: %v, want recent-session and the proxy's own", ids)
	}

	// --max-db-size: three sessions of 600 KiB against a 1 MiB limit: the
	// two oldest go.
	db2 := filepath.Join(t.TempDir(), "size.db")
	s2, err := recorder.Open(db2, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), 600<<10)
	for i, id := range []string{"big-1", "big-2", "big-3"} {
		at := now.Add(time.Duration(i-3) * time.Hour)
		if err := s2.Import(mcptap.Session{ID: id, Source: mcptap.SourceImport, Started: at, Ended: at},
			[]mcptap.Exchange{{ID: id + "-x", Session: id, Start: at, Method: "POST", Target: "/", ReqBody: body, ReqSize: int64(len(body)), Status: 200, Complete: true}}); err != nil {
			t.Fatal(err)
		}
	}
	s2.Close()
	child = startProxyChild(t, bin, db2, up.URL, "--max-db-size", "1MB")
	waitUntil(t, time.Minute, "the size pruning", func() bool {
		return strings.Contains(child.stderr.String(), "deleted the 2 oldest session(s)")
	})
	child.cmd.Process.Signal(os.Interrupt)
	child.wait(t)
	store2, err := recorder.Open(db2, &recorder.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store2.Close()
	list, _ = store2.Sessions()
	ids = ids[:0]
	for _, ss := range list {
		ids = append(ids, ss.ID)
	}
	if len(ids) != 2 || !slices.Contains(ids, "big-3") {
		t.Errorf("sessions after --max-db-size 1MB: %v, want big-3 and the proxy's own", ids)
	}
}

// testProxyLiveSessionStopsGrowing: one session recording steady traffic
// under --max-db-size 1MB: the file stops growing (the session's oldest
// exchanges go, bbolt reuses their pages), the newest stay, and the session
// accounts for every exchange as kept or pruned.
func testProxyLiveSessionStopsGrowing(t *testing.T, bin string) {
	up := echoUpstream(t)
	db := filepath.Join(t.TempDir(), "live.db")
	child := startProxyChild(t, bin, db, up.URL, "--max-db-size", "1MB", "--prune-every", "50ms")
	body := bytes.Repeat([]byte("z"), 32<<10)
	const rounds, perRound = 12, 128 // 4 MiB of request bodies a round: 48 MiB in all
	pruneLines := regexp.MustCompile(`this session's (\d+) oldest exchange`)
	var sizes []int64
	var last string
	for r := range rounds {
		// Every round alone is over the limit: a pruning comes during it
		// or after it (wait for one, so that the pruning keeps pace).
		seen := len(pruneLines.FindAllString(child.stderr.String(), -1))
		for i := range perRound {
			resp, err := http.Post("http://"+child.addr+fmt.Sprintf("/r%d/%d", r, i), "application/octet-stream", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			last = fmt.Sprintf("/r%d/%d", r, i)
		}
		waitUntil(t, time.Minute, "a pruning in round "+fmt.Sprint(r), func() bool {
			return len(pruneLines.FindAllString(child.stderr.String(), -1)) > seen
		})
		fi, err := os.Stat(db)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, fi.Size())
	}
	child.cmd.Process.Signal(os.Interrupt)
	child.wait(t)
	if fi, err := os.Stat(db); err == nil {
		sizes = append(sizes, fi.Size()) // everything committed
	}
	t.Logf("file size after each round and at the stop: %v", sizes)
	// 48 MiB went through; the file settles within the first rounds. bbolt
	// grows by whole steps (16 MiB at first) and fragments a little: the
	// last half of the run may add at most a quarter to the size after the
	// first half, and the file stays under half of what went through.
	half := sizes[rounds/2-1]
	if end := sizes[len(sizes)-1]; end > half+half/4 || end > 24<<20 {
		t.Errorf("the file kept growing under --max-db-size 1MB: %v", sizes)
	}
	store, sess := latestSession(t, db)
	defer store.Close()
	if sess.Pruned == 0 || sess.Exchanges == 0 || sess.Exchanges+int(sess.Pruned) != rounds*perRound {
		t.Errorf("session says %d exchanges kept, %d pruned; want %d in all", sess.Exchanges, sess.Pruned, rounds*perRound)
	}
	var newest string
	if err := store.Exchanges(sess.ID, func(ex mcptap.Exchange) error { newest = ex.Target; return nil }); err != nil {
		t.Errorf("reading the pruned session: %v", err)
	}
	if newest != last {
		t.Errorf("newest stored exchange %q, want %q", newest, last)
	}
	out, err := exec.Command(bin, "sessions", "--db", db).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("%d (%d earlier pruned)", sess.Exchanges, sess.Pruned)) {
		t.Errorf("mcptap sessions does not say what was pruned (%v):\n%s", err, out)
	}
}

// testProxyOTLP: --otlp sends the recorded flows to the collector, at the
// latest when the proxy stops (a flow still in progress goes out then).
func testProxyOTLP(t *testing.T, bin string) {
	got := make(chan string, 16)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, len(b))
	}))
	defer collector.Close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://chatgpt.com/connector_platform_oauth_redirect?code=AC_otlp&state="+r.URL.Query().Get("state"), http.StatusFound)
	}))
	defer up.Close()
	child := startProxyChild(t, bin, filepath.Join(t.TempDir(), "o.db"), up.URL, "--otlp", collector.URL)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get("http://" + child.addr + "/oauth/authorize?response_type=code&client_id=c&redirect_uri=https%3A%2F%2Fchatgpt.com%2Fconnector_platform_oauth_redirect&state=otlp-state-1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	child.cmd.Process.Signal(os.Interrupt)
	child.wait(t)
	select {
	case s := <-got:
		if !strings.HasPrefix(s, "POST /v1/traces ") || strings.HasSuffix(s, " 0") {
			t.Errorf("the collector got %q, want a POST of spans to /v1/traces", s)
		}
	case <-time.After(hangLimit):
		t.Fatalf("no trace reached the collector:\n%s", child.stderr.String())
	}
	if strings.Contains(child.stderr.String(), "could not be sent") {
		t.Errorf("spans were reported lost:\n%s", child.stderr.String())
	}
}
