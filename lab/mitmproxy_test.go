package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"

	mcptap "github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
	"github.com/mcptap/mcptap/oauth"
)

// harDumpScript is mitmproxy's own HAR writer, shipped with Debian's
// mitmproxy package.
const harDumpScript = "/usr/share/doc/mitmproxy/examples/contrib/har_dump.py"

// startMitmdump runs mitmproxy as the client's HTTP proxy, writing what it
// sees with har_dump.py when it is stopped; stop returns the HAR's path.
func startMitmdump(t *testing.T) (proxyURL string, stop func() string) {
	t.Helper()
	bin, err := exec.LookPath("mitmdump")
	if err == nil {
		_, err = os.Stat(harDumpScript)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mitmproxy (mitmdump and %s) is required under CI: %v", harDumpScript, err)
		}
		t.Skipf("mitmproxy not installed: %v", err)
	}
	port := freePort(t)
	dir := t.TempDir()
	harPath := filepath.Join(dir, "mitmproxy.har")
	cmd := exec.Command(bin, "--listen-host", "127.0.0.1", "--listen-port", strconv.Itoa(port), "--set", "confdir="+dir,
		"-s", harDumpScript, "--set", "hardump="+harPath)
	startLogged(t, cmd, "mitmdump: ", "listening at")
	stopped := false
	stop = func() string {
		if !stopped {
			stopped = true
			_ = cmd.Process.Signal(syscall.SIGINT) // har_dump writes the file when mitmdump shuts down
			_ = cmd.Wait()
		}
		return harPath
	}
	t.Cleanup(func() { stop() })
	return fmt.Sprintf("http://127.0.0.1:%d", port), stop
}

// summary is what two captures of the same run must agree on.
func summary(flows []mcptap.Flow) []string {
	var out []string
	for _, f := range flows {
		out = append(out, fmt.Sprintf("%s %s/%s", f.Client, f.Verdict.Rule, f.Verdict.Fault))
	}
	sort.Strings(out)
	return out
}

// A real HAR producer on the client's side (issue 12): mitmproxy's
// har_dump.py records the MCP Go SDK client's whole connection (discovery,
// registration, the browser stand-in's sign-in and consent, token, MCP calls)
// as the client's HTTP proxy, while mcptap records the same run in front of
// the servers. The HAR file, read and analysed as a user's would be, gives
// the verdicts mcptap's own recording gives.
func TestHARFromMitmproxy(t *testing.T) {
	for _, c := range []struct {
		name string
		opts peerOptions
		want mcptap.RuleID
	}{
		{"healthy", peerOptions{}, mcptap.RuleOK},
		{"issuer slash the client goes past", peerOptions{issuerSlash: true}, mcptap.RuleOK},
		{"consent abandoned", peerOptions{stopAtConsent: true}, mcptap.RuleFlowIncomplete},
	} {
		t.Run(c.name, func(t *testing.T) {
			proxyURL, stop := startMitmdump(t)
			c.opts.proxy = proxyURL
			w := startPeerWorld(t, c.opts)
			ctx, cancel := context.WithTimeout(context.Background(), labBound)
			defer cancel()
			err := connectGoSDK(ctx, w, c.opts)
			t.Logf("client: %v", err)
			// mitmdump first: it holds the streams it forwarded open, and
			// stopping it writes the HAR.
			harPath := stop()
			recorded, _ := w.analyse(t)
			raw, rerr := os.ReadFile(harPath)
			if rerr != nil {
				t.Fatal(rerr)
			}
			keepCorpus(t, "mitmproxy.har", raw)
			exs, err := har.Read(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("read mitmproxy's HAR: %v", err)
			}
			fromHAR, findings := oauth.Analyze(exs, oauth.Options{})
			if got, want := summary(fromHAR), summary(recorded); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("mitmproxy's HAR gives %v, mcptap's recording %v", got, want)
				for _, fd := range findings {
					t.Logf("  HAR finding %s %s: %s", fd.Rule, fd.Severity, fd.Detail)
				}
			}
			worst := mcptap.RuleOK
			for _, f := range fromHAR {
				if f.Verdict.Rule != mcptap.RuleOK {
					worst = f.Verdict.Rule
				}
			}
			if worst != c.want {
				t.Errorf("verdict from mitmproxy's HAR %s, want %s: %v", worst, c.want, summary(fromHAR))
			}
		})
	}
}
