package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcptap/mcptap/proxy"
)

type browserFlags struct {
	url         string
	proxyAddr   string
	browser     string
	keepProfile bool
}

func newBrowserCmd() *cobra.Command {
	var f browserFlags
	cmd := &cobra.Command{
		Use:   "browser [--url URL] [--proxy ADDR]",
		Short: "Start Chromium/Chrome through the browser proxy, trusting mcptap's CA in a throwaway profile",
		Long: `browser starts Chromium or Chrome with a fresh, temporary profile that sends all
its traffic (loopback included) through the running browser proxy and accepts
certificates from mcptap's CA in that profile only. Nothing changes in your
system's trust store or your usual browser profile; the profile is deleted when
the browser closes.

Start the browser proxy first, as part of a recording:
  mcptap proxy --upstream http://localhost:3000 --browser-proxy 127.0.0.1:8781

The browser is the first of chromium, chromium-browser, google-chrome,
google-chrome-stable, chrome on PATH, or --browser, or $MCPTAP_BROWSER.`,
		Example: `  mcptap browser --url https://chatgpt.com/
  mcptap browser --proxy 127.0.0.1:9999 --browser /usr/bin/google-chrome`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBrowser(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.url, "url", "", "page to open (https:// is assumed when no scheme is given)")
	fl.StringVar(&f.proxyAddr, "proxy", proxy.DefaultForwardListen, "address of the running browser proxy (mcptap proxy --browser-proxy)")
	fl.StringVar(&f.browser, "browser", "", "browser executable (default: search PATH; or $MCPTAP_BROWSER)")
	fl.BoolVar(&f.keepProfile, "keep-profile", false, "keep the temporary profile directory when the browser exits")
	return cmd
}

func runBrowser(cmd *cobra.Command, f browserFlags) error {
	host, _, err := net.SplitHostPort(f.proxyAddr)
	if err != nil {
		return usageErr(fmt.Errorf("--proxy %q: %w", f.proxyAddr, err))
	}
	if !proxy.IsLoopback(host) {
		return usageErr(fmt.Errorf("--proxy %q: the browser proxy only listens on loopback (e.g. 127.0.0.1:8781)", f.proxyAddr))
	}
	target := f.url
	if target != "" && !strings.Contains(target, "://") && !hasAnyPrefix(target, "about:", "chrome:", "data:") {
		target = "https://" + target
	}

	ca, err := loadCA()
	if err != nil {
		return err
	}
	if err := checkBrowserProxy(f.proxyAddr, ca); err != nil {
		return &exitError{code: 1, err: err}
	}

	bin := f.browser
	if bin == "" {
		if bin, err = proxy.FindBrowser(); err != nil {
			return &exitError{code: 1, err: err}
		}
	} else if bin, err = exec.LookPath(bin); err != nil {
		return usageErr(fmt.Errorf("--browser: %w", err))
	}

	profile, err := os.MkdirTemp("", "mcptap-browser-")
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("create a temporary browser profile: %w", err)}
	}
	if !f.keepProfile {
		defer os.RemoveAll(profile)
	}
	stderr := cmd.ErrOrStderr()
	asRoot := os.Geteuid() == 0
	args := proxy.BrowserArgs(proxy.BrowserOptions{
		ProxyAddr:  f.proxyAddr,
		SPKI:       ca.SPKIHash(),
		ProfileDir: profile,
		URL:        target,
		NoSandbox:  asRoot, // Chromium refuses to start as root with its sandbox on
	})

	// Chromium is chatty on stderr; keep the tail to explain a failed start.
	tail := &tailBuffer{max: 4096}
	c := exec.Command(bin, args...)
	c.Stdout, c.Stderr = tail, tail
	// Ctrl-C reaches the browser too (same process group); stay alive until
	// it has exited so the profile is removed.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	start := time.Now()
	if err := c.Start(); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("start %s: %w", bin, err)}
	}
	fmt.Fprintf(stderr, "mcptap: started %s through the browser proxy at %s\n", bin, f.proxyAddr)
	fmt.Fprintf(stderr, "mcptap: temporary profile %s trusts mcptap's CA (SPKI %s) and nothing else changes\n", profile, ca.SPKIHash())
	if asRoot {
		fmt.Fprintln(stderr, "mcptap: running as root, so the browser runs with --no-sandbox")
	}
	fmt.Fprintln(stderr, "mcptap: close the browser window to finish")

	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	var werr error
	for waiting := true; waiting; {
		select {
		case werr = <-done:
			waiting = false
		case s := <-sigs:
			_ = c.Process.Signal(s)
		}
	}
	if werr != nil {
		var ee *exec.ExitError
		if errors.As(werr, &ee) && time.Since(start) > 10*time.Second {
			// A browser that ran for a while and was then closed or
			// interrupted is not mcptap's failure.
			return nil
		}
		return &exitError{code: 1, err: fmt.Errorf("%s exited: %w\n%s", bin, werr, strings.TrimSpace(tail.String()))}
	}
	if f.keepProfile {
		fmt.Fprintf(stderr, "mcptap: kept the profile at %s\n", profile)
	}
	return nil
}

// checkBrowserProxy makes sure a browser proxy is listening at addr and signs
// with the CA the profile is about to trust.
func checkBrowserProxy(addr string, ca *proxy.CA) error {
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/ca.pem", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("no browser proxy at %s (%v); start one first, e.g.: mcptap proxy --upstream http://localhost:3000 --browser-proxy %s", addr, err, addr)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s does not look like mcptap's browser proxy (GET /ca.pem: %s); is another program using that port?", addr, resp.Status)
	}
	blk, _ := pem.Decode(body)
	if blk == nil || !bytes.Equal(blk.Bytes, ca.Cert.Raw) {
		return fmt.Errorf("the browser proxy at %s signs with a different CA than %s (was it started with another MCPTAP_HOME?)", addr, ca.CertPath)
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// browserProxyCA checks a --browser-proxy address (loopback only) and loads
// the CA it will sign with; "" means no browser proxy and no CA.
func browserProxyCA(listen string) (*proxy.CA, error) {
	if listen == "" {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, usageErr(fmt.Errorf("--browser-proxy %q: want host:port, e.g. 127.0.0.1:8781", listen))
	}
	if host != "" && !proxy.IsLoopback(host) {
		return nil, usageErr(fmt.Errorf("--browser-proxy %q: the browser proxy serves this machine only; use a loopback address such as 127.0.0.1:8781", listen))
	}
	return loadCA()
}
