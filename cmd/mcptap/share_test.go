package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcptap/mcptap/har"
	"github.com/mcptap/mcptap/live"
)

// testReadWhileRecording: a second terminal reads the session a running
// `mcptap proxy` records (sessions, report, export, replay --no-tui), while
// the proxy goes on serving; once the proxy stops its read socket is gone.
func testReadWhileRecording(t *testing.T, bin string) {
	up := echoUpstream(t)
	db := filepath.Join(t.TempDir(), "live.db")
	child := startProxyChild(t, bin, db, up.URL)
	const n = 12
	for i := range n {
		resp, err := http.Get(fmt.Sprintf("http://%s/item?n=%d", child.addr, i))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	mcptapCmd := func(args ...string) (string, string, error) {
		cmd := exec.Command(bin, append([]string{"--db", db}, args...)...)
		cmd.Env = append(os.Environ(), "MCPTAP_HOME="+t.TempDir())
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		return string(out), stderr.String(), err
	}
	// The recorder commits in batches: wait until all n are stored.
	var sessions []struct {
		ID        string `json:"id"`
		Exchanges int    `json:"exchanges"`
		State     string `json:"state"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, errs, err := mcptapCmd("sessions", "--json")
		if err != nil {
			t.Fatalf("sessions while recording: %v\n%s", err, errs)
		}
		if err := json.Unmarshal([]byte(out), &sessions); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if len(sessions) == 1 && sessions[0].Exchanges == n {
			if sessions[0].State != "recording" {
				t.Errorf("the session being recorded shows as %q, want recording", sessions[0].State)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions never showed %d exchanges: %s", n, out)
		}
		time.Sleep(50 * time.Millisecond)
	}

	out, errs, err := mcptapCmd("report", "--format", "json")
	if err != nil {
		t.Fatalf("report while recording: %v\n%s", err, errs)
	}
	var rep struct {
		Session struct {
			ID        string `json:"id"`
			Exchanges int    `json:"exchanges"`
		} `json:"session"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Session.ID != sessions[0].ID || rep.Session.Exchanges != n {
		t.Errorf("report while recording: %v %+v", err, rep.Session)
	}

	harPath := filepath.Join(t.TempDir(), "live.har")
	if _, errs, err := mcptapCmd("export", sessions[0].ID[:8], "--har", harPath); err != nil {
		t.Fatalf("export while recording: %v\n%s", err, errs)
	}
	f, err := os.Open(harPath)
	if err != nil {
		t.Fatal(err)
	}
	exs, err := har.Read(f)
	f.Close()
	if err != nil || len(exs) != n {
		t.Errorf("exported HAR: %d exchanges, %v; want %d", len(exs), err, n)
	}

	out, errs, err = mcptapCmd("replay", "--no-tui")
	if err != nil || !strings.Contains(out, fmt.Sprintf("%s (proxy): %d exchanges", sessions[0].ID, n)) {
		t.Errorf("replay --no-tui while recording: %v\n%s\n%s", err, out, errs)
	}

	// The proxy never stopped: it still forwards and records.
	resp, err := http.Get("http://" + child.addr + "/item?n=after")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("proxy after the reads: %v", err)
	}
	resp.Body.Close()
	if fi, err := os.Stat(live.ReadSocket(db)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("read socket: %v %v, want mode 0600", fi, err)
	}
	if err := child.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	child.wait(t)
	if _, err := os.Stat(live.ReadSocket(db)); !os.IsNotExist(err) {
		t.Errorf("the read socket outlived the proxy: %v", err)
	}
	// Stopped: the file opens directly and holds the last request too.
	out, _, err = mcptapCmd("sessions", "--json")
	if err != nil || !strings.Contains(out, fmt.Sprintf(`"exchanges": %d`, n+1)) {
		t.Errorf("after the stop: %v %s", err, out)
	}
}
