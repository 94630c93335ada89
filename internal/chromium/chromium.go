package chromium

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Options describe a throwaway Chromium/Chrome profile that uses the
// browser proxy.
type Options struct {
	ProxyAddr  string // the browser proxy, "127.0.0.1:8781"
	SPKI       string // CA.SPKIHash(): trusted for this profile only; empty trusts nothing extra
	ProfileDir string // a fresh, empty directory; Chromium honours the SPKI flag only with --user-data-dir
	URL        string // page to open; empty opens none
	NoSandbox  bool   // needed only when running as root (containers, CI)
	// Extension, when set, is an unpacked extension to load: the one
	// WriteAuthExtension writes, which answers the browser proxy's 407.
	Extension string
}

// Args are the command-line flags that make Chromium or Chrome send
// everything, loopback included, through the browser proxy and accept
// certificates chained to mcptap's CA in this profile only. Nothing changes
// in the system's or the user's own browser trust. Background traffic (sync,
// component updates, field trials) is turned off so the recording holds
// what the user did.
func Args(o Options) []string {
	args := []string{
		"--user-data-dir=" + o.ProfileDir,
		"--proxy-server=http://" + o.ProxyAddr,
		// Chromium bypasses the proxy for loopback by default; a local
		// authorization server or MCP server must be recorded too.
		"--proxy-bypass-list=<-loopback>",
		// QUIC would go around an HTTP proxy.
		"--disable-quic",
		"--no-first-run",
		"--no-default-browser-check",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--disable-features=OptimizationHints,MediaRouter,Translate",
	}
	if o.SPKI != "" {
		args = append(args, "--ignore-certificate-errors-spki-list="+o.SPKI)
	}
	if o.NoSandbox {
		args = append(args, "--no-sandbox")
	}
	if o.Extension != "" {
		args = append(args, "--load-extension="+o.Extension, "--disable-extensions-except="+o.Extension,
			// branded Chrome 137+ ignores --load-extension unless this is off
			"--disable-features=DisableLoadExtensionCommandLineSwitch")
	}
	if o.URL != "" {
		args = append(args, o.URL)
	}
	return args
}

// names are the executables Find looks for on PATH, in order.
var names = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "google-chrome-beta", "microsoft-edge"}

// paths are well-known install locations outside PATH.
var paths = []string{
	"/Applications/Chromium.app/Contents/MacOS/Chromium",
	"/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
	"/snap/bin/chromium",
}

// Find returns the path of a Chromium-family browser: $MCPTAP_BROWSER
// if set, else the first of chromium, chromium-browser, google-chrome,
// google-chrome-stable, chrome (…) on PATH, else a well-known install path.
func Find() (string, error) {
	if b := os.Getenv("MCPTAP_BROWSER"); b != "" {
		p, err := exec.LookPath(b)
		if err != nil {
			return "", fmt.Errorf("MCPTAP_BROWSER=%s: %w", b, err)
		}
		return p, nil
	}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("no Chromium or Chrome found on PATH (looked for %s); install Chromium (Debian/Ubuntu: apt install chromium) or set MCPTAP_BROWSER to the browser's path",
		strings.Join(names[:5], ", "))
}

// CheckProxy makes sure an mcptap browser proxy is listening at addr and
// signs with the CA certificate (DER) that the profile is about to trust.
func CheckProxy(addr, proxyAuth string, caDER []byte, caPath string) error {
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/ca.pem", nil)
	if err != nil {
		return err
	}
	if proxyAuth != "" {
		req.Header.Set("Proxy-Authorization", proxyAuth)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("no browser proxy at %s (%v); start one first, e.g.: mcptap proxy --upstream http://localhost:3000 --browser-proxy %s", addr, err, addr)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusProxyAuthRequired {
		return fmt.Errorf("the browser proxy at %s refused this run's credentials: was it restarted, or started with another MCPTAP_HOME?", addr)
	}
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s does not look like mcptap's browser proxy (GET /ca.pem: %s); is another program using that port?", addr, resp.Status)
	}
	blk, _ := pem.Decode(body)
	if blk == nil || !bytes.Equal(blk.Bytes, caDER) {
		return fmt.Errorf("the browser proxy at %s signs with a different CA than %s (was it started with another MCPTAP_HOME?)", addr, caPath)
	}
	return nil
}

// Browser is a started browser process.
type Browser struct {
	Path  string
	cmd   *exec.Cmd
	tail  *tailBuffer
	start time.Time
}

// Start starts the browser at path with args. Its output is kept (the last
// 4 KiB) to explain a failed start.
func Start(path string, args []string) (*Browser, error) {
	b := &Browser{Path: path, tail: &tailBuffer{max: 4096}}
	b.cmd = exec.Command(path, args...)
	b.cmd.Stdout, b.cmd.Stderr = b.tail, b.tail
	b.start = time.Now()
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	return b, nil
}

// Signal forwards a signal to the browser.
func (b *Browser) Signal(s os.Signal) { _ = b.cmd.Process.Signal(s) }

// Wait waits for the browser to exit. A browser that ran for more than ten
// seconds and was then closed or interrupted is not a failure; one that
// exited with an error sooner is, with the tail of its output.
func (b *Browser) Wait() error {
	err := b.cmd.Wait()
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && time.Since(b.start) > 10*time.Second {
		return nil
	}
	return fmt.Errorf("%s exited: %w\n%s", b.Path, err, strings.TrimSpace(b.tail.String()))
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

// WriteAuthExtension writes into dir an unpacked extension that answers the
// browser proxy's 407 with user and password (and nothing else: it gives no
// credentials to sites), then opens start (if any). Chromium cannot take
// proxy credentials from its command line; its extension API is the
// supported way. The extension's listener is registered when its service
// worker starts, which can be after the first page's first request, so the
// page to open is not given on the command line (the browser would show the
// proxy's 407 instead) but opened by the extension once it can answer. The
// directory lives in the throwaway profile and goes with it.
func WriteAuthExtension(dir, user, password, start string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	manifest := `{"manifest_version": 3, "name": "mcptap browser proxy credentials", "version": "1.0",
 "permissions": ["webRequest", "webRequestAuthProvider", "storage", "tabs"], "host_permissions": ["<all_urls>"],
 "background": {"service_worker": "background.js"}}
`
	consts, err := json.Marshal(map[string]any{"creds": map[string]string{"username": user, "password": password}, "start": start})
	if err != nil {
		return err
	}
	js := "const cfg = " + string(consts) + ";\n" +
		"chrome.webRequest.onAuthRequired.addListener(\n" +
		"  (details) => details.isProxy ? { authCredentials: cfg.creds } : {},\n" +
		"  { urls: ['<all_urls>'] }, ['blocking']);\n" +
		"// open the start page once, when the listener above is in place (the\n" +
		"// service worker may be restarted later: the session flag keeps it once)\n" +
		"chrome.storage.session.get('opened').then(async (s) => {\n" +
		"  if (s.opened || !cfg.start) return;\n" +
		"  await chrome.storage.session.set({ opened: true });\n" +
		"  const tabs = await chrome.tabs.query({});\n" +
		"  if (tabs.length > 0) chrome.tabs.update(tabs[0].id, { url: cfg.start });\n" +
		"  else chrome.tabs.create({ url: cfg.start });\n" +
		"});\n"
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(manifest), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "background.js"), []byte(js), 0o600)
}
