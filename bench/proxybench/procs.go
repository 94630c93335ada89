package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// bareChildEnv makes this program serve the bare reverse proxy in a process
// of its own (to the upstream the variable names) and print its address.
const bareChildEnv = "PROXYBENCH_BARE_UPSTREAM"

// bareOneWriteEnv set to 1 makes that child the "bare1w-p" proxy.
const bareOneWriteEnv = "PROXYBENCH_BARE_ONE_WRITE"

// bareProfileEnv names a file for a CPU profile of the bare proxy process
// (MCPTAP_CPUPROFILE does the same for the mcptap binary).
const bareProfileEnv = "PROXYBENCH_BARE_CPUPROFILE"

// serveBareChild is the child side of the "bare-p" path.
func serveBareChild(upstream string) {
	up, err := url.Parse(upstream)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	signal.Ignore(os.Interrupt) // the parent stops us by closing stdin, after profiles are written
	stopProfile := func() {}
	if path := os.Getenv(bareProfileEnv); path != "" {
		f, err := os.Create(path)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
	}
	fmt.Fprintf(os.Stderr, "listening on http://%s\n", ln.Addr())
	go func() {
		// The parent closes our stdin when it is done with us.
		_, _ = io.Copy(io.Discard, os.Stdin)
		stopProfile()
		os.Exit(0)
	}()
	log.Fatal(http.Serve(ln, bareHandler(up, os.Getenv(bareOneWriteEnv) == "1")))
}

// child is a proxy running in its own process: the bare proxy (this program
// re-executed) or the real `mcptap proxy` binary.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *io.PipeWriter // closed once the child is gone, ending the reader
	addr   string
}

var listeningRE = regexp.MustCompile(`listening on http://(127\.0\.0\.1:\d+)`)

// startChild starts cmd and waits until it prints "listening on http://ADDR"
// on stderr. Its stdout (mcptap's line view) goes to the null device, as
// when a user redirects it to a file, so that reading it costs the
// benchmark nothing; later stderr output is discarded.
func startChild(cmd *exec.Cmd) (*child, error) {
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = nil, pw
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	found := make(chan string, 1)
	var head strings.Builder
	go func() {
		br := bufio.NewReader(pr)
		for {
			line, err := br.ReadString('\n')
			if head.Len() < 4096 {
				head.WriteString(line)
			}
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				found <- m[1]
				break
			}
			if err != nil {
				return
			}
		}
		_, _ = io.Copy(io.Discard, br)
	}()
	select {
	case addr := <-found:
		return &child{cmd: cmd, stdin: stdin, stderr: pw, addr: addr}, nil
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s printed no listening address within 15s:\n%s", cmd.Path, head.String())
	}
}

// stop ends the child: SIGINT (mcptap drains and closes its session), then
// closing stdin (the bare child exits on that), and a kill after 10s.
func (c *child) stop() error {
	_ = c.cmd.Process.Signal(os.Interrupt)
	_ = c.stdin.Close()
	done := make(chan error, 1)
	go func() {
		err := c.cmd.Wait()
		c.stderr.Close()
		done <- err
	}()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) && !ee.Exited() {
			return nil // killed by our signal
		}
		return err
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		return fmt.Errorf("%s did not stop within 10s of SIGINT", c.cmd.Path)
	}
}

// cpu is the child's user+system CPU time so far, read from /proc (Linux);
// -1 where that cannot be read.
func (c *child) cpu() time.Duration {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(c.cmd.Process.Pid), "stat"))
	if err != nil {
		return -1
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state); utime is field 14, stime 15
	if len(f) < 13 {
		return -1
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	const clkTck = 100 // USER_HZ: 100 on every Linux architecture Go supports
	return time.Duration(ut+st) * time.Second / clkTck
}

// memory is the child's peak resident memory (VmHWM) and what is resident
// now as its own (anonymous: heap, stacks) and as mapped files (bbolt's
// mmap, which the kernel can reclaim), from /proc (Linux); "" elsewhere.
func (c *child) memory() string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(c.cmd.Process.Pid), "status"))
	if err != nil {
		return ""
	}
	v := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, val, ok := strings.Cut(line, ":"); ok {
			v[k] = strings.TrimSpace(val)
		}
	}
	return fmt.Sprintf("peak %s, now %s anonymous + %s mapped files", v["VmHWM"], v["RssAnon"], v["RssFile"])
}

// buildMcptap builds ./cmd/mcptap into dir, so the benchmark runs the very
// binary a user runs.
func buildMcptap(dir string) (string, error) {
	bin := filepath.Join(dir, "mcptap")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/mcptap/mcptap/cmd/mcptap")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build mcptap (run the benchmark inside the module, or pass -mcptap): %w", err)
	}
	return bin, nil
}

// startMcptapChild runs `mcptap proxy --no-tui` recording into dbPath.
func startMcptapChild(bin string, up *url.URL, dbPath string, extra ...string) (*child, error) {
	cmd := exec.Command(bin, append([]string{"proxy", "--upstream", up.String(), "--listen", "127.0.0.1:0", "--db", dbPath, "--no-tui"}, extra...)...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a Ctrl-C on the benchmark is ours to pass on
	return startChild(cmd)
}

// startBareChild re-executes this program as the bare proxy, sending short
// bodies with their head if oneWrite.
func startBareChild(up *url.URL, oneWrite bool) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), bareChildEnv+"="+up.String())
	if oneWrite {
		cmd.Env = append(cmd.Env, bareOneWriteEnv+"=1")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return startChild(cmd)
}
