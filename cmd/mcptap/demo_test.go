package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcptap/mcptap/lab"

	"github.com/mcptap/mcptap/recorder"
)

func runDemoCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append([]string{"demo"}, args...))
	err := root.Execute()
	return out.String(), errb.String(), err
}

// TestDemoAllScenarios runs `mcptap demo --no-tui` end to end (lab, live
// capture in a temporary database, analysis, report) and requires every
// scenario to produce its expected verdict, which is also the exit code.
func TestDemoAllScenarios(t *testing.T) {
	out, stderr, err := runDemoCmd(t, "--no-tui", "--format", "json")
	if err != nil {
		t.Fatalf("demo: %v\nstderr:\n%s\nstdout:\n%s", err, stderr, out)
	}
	if !strings.Contains(stderr, "temporary database") {
		t.Errorf("stderr does not say the database is temporary:\n%s", stderr)
	}
	var rep struct {
		Session struct {
			Source    string `json:"source"`
			Exchanges int    `json:"exchanges"`
		} `json:"session"`
		Flows     []json.RawMessage `json:"flows"`
		Scenarios []struct {
			Scenario string `json:"scenario"`
			Pass     bool   `json:"pass"`
			Why      string `json:"why"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if rep.Session.Source != "demo" || rep.Session.Exchanges == 0 || len(rep.Flows) == 0 {
		t.Errorf("session %+v with %d flows", rep.Session, len(rep.Flows))
	}
	if len(rep.Scenarios) < 20 {
		t.Errorf("%d scenarios, want every scenario", len(rep.Scenarios))
	}
	for _, s := range rep.Scenarios {
		if !s.Pass {
			t.Errorf("%s: %s", s.Scenario, s.Why)
		}
	}
}

func TestDemoKeepsSessionWithDB(t *testing.T) {
	db := filepath.Join(t.TempDir(), "kept.db")
	out, stderr, err := runDemoCmd(t, "--no-tui", "--scenario", "state-dropped", "--db", db)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "state.not-echoed") || !strings.Contains(out, "1 of 1 scenarios produced their expected verdict") {
		t.Errorf("report lacks the verdict:\n%s", out)
	}
	store, err := recorder.Open(db, &recorder.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sess, err := store.Latest()
	if err != nil || sess.Source != "demo" || sess.Exchanges == 0 || sess.Ended.IsZero() {
		t.Errorf("stored session %+v, err %v", sess, err)
	}
}

func TestDemoUsage(t *testing.T) {
	_, _, err := runDemoCmd(t, "--no-tui", "--scenario", "no-such-scenario")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Errorf("unknown scenario: err %v, want exit 2", err)
	}
	out, _, err := runDemoCmd(t, "--list")
	if err != nil || !strings.Contains(out, "state-dropped") || !strings.Contains(out, "state.not-echoed") {
		t.Errorf("--list: %v\n%s", err, out)
	}
	// Grouped by phase, in the dance's order, every scenario once.
	last := -1
	for _, phase := range lab.Phases {
		at := strings.Index(out, "\n"+strings.ToUpper(phase))
		if at >= 0 && at < last {
			t.Errorf("phase %s listed out of order", phase)
		}
		if at >= 0 {
			last = at
		}
	}
	for _, sc := range lab.Scenarios() {
		if strings.Count(out, "  "+sc.Name+" ") != 1 {
			t.Errorf("scenario %s not listed once", sc.Name)
		}
	}
}
