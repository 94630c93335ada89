package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	mcptap "github.com/mcptap/mcptap"
)

// stdioClient speaks JSON-RPC over a child's stdin and stdout, one message
// per line, as an MCP host (Claude Desktop, an IDE) does with mcp-remote.
type stdioClient struct {
	in    io.WriteCloser
	lines chan string
}

func (c *stdioClient) call(t *testing.T, id int, method string, params any) map[string]any {
	t.Helper()
	msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	if _, err := c.in.Write(append(msg, '\n')); err != nil {
		t.Fatalf("write %s: %v", method, err)
	}
	for line := range c.lines {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if v, ok := m["id"].(float64); ok && int(v) == id {
			return m
		}
	}
	t.Fatalf("mcp-remote closed its stdout before answering %s", method)
	return nil
}

func (c *stdioClient) notify(method string) {
	msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method})
	_, _ = c.in.Write(append(msg, '\n'))
}

// The second real client (issue 12): mcp-remote 0.15.1 (from npm, lockfile
// committed) run over stdio as an MCP host runs it, in front of the lab's
// MCP server and oidc-provider behind mcptap. Its browser is Debian's
// Chromium driven by Playwright (BROWSER points at har-producer.mjs), which
// signs in and consents on oidc-provider's real pages and lands on
// mcp-remote's own loopback callback. The healthy run connects and calls a
// tool; mcptap's recording of the server side must read ok with no warning.
func TestPeersMCPRemoteWithOIDCProvider(t *testing.T) {
	for _, c := range []peerCase{
		{name: "healthy", connect: true, verdict: mcptap.RuleOK, fault: mcptap.FaultNone},
		// mcp-remote (its TypeScript SDK) probes the well-known locations
		// and connects: a warning, not the verdict.
		{name: "401 without a challenge", opts: peerOptions{noChallenge: true}, connect: true,
			verdict: mcptap.RuleOK, fault: mcptap.FaultNone, has: []mcptap.RuleID{mcptap.RuleDiscoveryNoChallenge}},
		// The 401 names the server's own address: mcp-remote fetches the
		// metadata there, past mcptap, and gives up; all mcptap sees is
		// the challenge, and that is the verdict.
		{name: "BASE_URL left at the internal address", opts: peerOptions{internalPRM: true},
			verdict: mcptap.RuleDiscoveryChallengeInternal, fault: mcptap.FaultServer},
	} {
		t.Run(c.name, func(t *testing.T) {
			runMCPRemote(t, c.opts, c.connect, c.verdict, c.fault, c.has)
		})
	}
}

func runMCPRemote(t *testing.T, o peerOptions, connect bool, verdict mcptap.RuleID, fault mcptap.Fault, has []mcptap.RuleID) {
	bin := chromiumPath(t)
	dir := interopDir(t)
	w := startPeerWorld(t, o)

	tmp := t.TempDir()
	shim := filepath.Join(tmp, "browser")
	script := fmt.Sprintf("#!/bin/sh\nURL=\"$1\" exec node %q\n", filepath.Join(dir, "har-producer.mjs"))
	if err := os.WriteFile(shim, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	browserHAR := filepath.Join(tmp, "browser.har")
	ctx, cancel := context.WithTimeout(context.Background(), labBound)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "node_modules", "mcp-remote", "dist", "proxy.js"), w.mcpURL, "--allow-http")
	cmd.Dir = tmp
	cmd.Env = append(cmd.Environ(), "MCP_REMOTE_CONFIG_DIR="+filepath.Join(tmp, "mcp-auth"), "BROWSER="+shim,
		"CALLBACK=http://localhost:", "HAR="+browserHAR, "CHROMIUM="+bin, "NODE_NO_WARNINGS=1", "DISPLAY=", "WAYLAND_DISPLAY=")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &logWriter{t: t, prefix: "mcp-remote: "}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	defer stop()
	c := &stdioClient{in: stdin, lines: make(chan string, 64)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()

	if connect {
		init := c.call(t, 1, "initialize", map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{},
			"clientInfo": map[string]any{"name": "mcptap-host", "version": "1.0.0"}})
		if _, ok := init["result"]; !ok {
			t.Fatalf("initialize through mcp-remote: %v", init)
		}
		c.notify("notifications/initialized")
		res := c.call(t, 2, "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "through mcp-remote"}})
		if r, ok := res["result"].(map[string]any); !ok || r["isError"] == true || !strings.Contains(fmt.Sprint(r["content"]), "through mcp-remote") {
			t.Fatalf("tools/call through mcp-remote: %v", res)
		}
	} else {
		// mcp-remote gives up on its own: it exits, closing its stdout.
		for range c.lines {
		}
	}

	// The host quits: mcp-remote's open SSE stream ends with it, so the
	// capture can stop without waiting for it.
	stop()
	flows, findings := w.analyse(t)
	checkPeerVerdict(t, flows, findings, verdict, fault, has)
	for _, f := range flows {
		authorized := false
		for _, h := range f.Hops {
			authorized = authorized || h.Kind == mcptap.HopAuthorize
		}
		if authorized && f.Client != "mcp-remote" {
			t.Errorf("flow %s attributed to %q, want mcp-remote", f.ID, f.Client)
		}
	}
}
