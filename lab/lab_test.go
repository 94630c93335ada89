package lab

import (
	"context"
	"strings"
	"testing"
)

func runWorld(t *testing.T, sc Scenario) *Result {
	t.Helper()
	w, err := NewWorld(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), labBound)
	defer cancel()
	res, err := w.Run(ctx)
	if err != nil {
		t.Fatalf("run %s: %v", sc.Name, err)
	}
	t.Logf("%s:\n  %s", sc.Name, strings.Join(res.Steps, "\n  "))
	return res
}

func TestHealthyWorlds(t *testing.T) {
	for _, sc := range Scenarios() {
		if !sc.Expect.Healthy() {
			continue
		}
		t.Run(sc.Name, func(t *testing.T) {
			res := runWorld(t, sc)
			if res.Stopped != "" {
				t.Fatalf("healthy client stopped: %s", res.Stopped)
			}
			if res.CallText != "counted to 3" || res.Progress != 3 {
				t.Errorf("tools/call count = %q with %d progress notifications, want \"counted to 3\" and 3", res.CallText, res.Progress)
			}
			if len(res.Tools) != 4 {
				t.Errorf("tools = %v, want 4", res.Tools)
			}
			if sc.Profile == ProfileChatGPT && !res.Refreshed {
				t.Error("ChatGPT profile did not refresh its token")
			}
		})
	}
}
