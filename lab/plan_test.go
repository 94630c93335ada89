package lab

import (
	"testing"
	"time"

	mcptap "github.com/mcptap/mcptap"
)

// TestEvaluate checks the attribution and judgement of outcomes on made-up
// analysis results: two worlds, each fronted by its own listener.
func TestEvaluate(t *testing.T) {
	healthy, _ := Lookup("healthy-chatgpt")
	stale, _ := Lookup("state-stale")
	trunc, _ := Lookup("state-truncated")
	plan, err := NewPlan([]Scenario{healthy, stale, trunc})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	addrs := make([]string, len(plan.Routes()))
	for i := range addrs {
		addrs[i] = "127.0.0.1:" + string(rune('a'+i)) // distinct fake listener names
	}
	if err := plan.Bind(addrs); err != nil {
		t.Fatal(err)
	}
	host := func(world int) string { return hostOf(plan.Worlds[world].Public(ListenerMCP)) }
	t0 := time.Unix(1000, 0)
	exs := []mcptap.Exchange{{ID: "e0", Listener: host(0)}, {ID: "e1", Listener: host(1)}, {ID: "e2", Listener: host(2)}, {ID: "x", Listener: "elsewhere"}}
	okV := mcptap.Verdict{Rule: "ok", Severity: mcptap.SevInfo, Fault: mcptap.FaultNone}
	flows := []mcptap.Flow{
		{ID: "f0", Verdict: okV, Hops: []mcptap.Hop{{Exchange: "e0"}}, Started: t0},
		{ID: "f1", Verdict: okV, Hops: []mcptap.Hop{{Exchange: "e1"}}, Started: t0},
		{ID: "f2", Verdict: mcptap.Verdict{Rule: "state.altered", Severity: mcptap.SevError, Fault: mcptap.FaultAuthServer}, Hops: []mcptap.Hop{{Exchange: "e2"}}, Started: t0},
	}
	warn := mcptap.Finding{Rule: "state.stale", Severity: mcptap.SevWarning, Fault: mcptap.FaultClient, Flow: "f1", At: t0}
	altered := mcptap.Finding{Rule: "state.altered", Severity: mcptap.SevError, Fault: mcptap.FaultAuthServer, Flow: "f2", Title: "state came back altered (truncated)"}

	cases := []struct {
		name     string
		findings []mcptap.Finding
		want     []bool
	}{
		{"all as expected", []mcptap.Finding{warn, altered}, []bool{true, true, true}},
		{"warning on the healthy flow", []mcptap.Finding{warn, altered, {Rule: "authorize.resource-missing", Severity: mcptap.SevWarning, Flow: "f0"}}, []bool{false, true, true}},
		{"stale warning missing", []mcptap.Finding{altered}, []bool{true, false, true}},
		{"transformation not named", []mcptap.Finding{warn, {Rule: "state.altered", Severity: mcptap.SevError, Fault: mcptap.FaultAuthServer, Flow: "f2", Title: "state changed"}}, []bool{true, true, false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := plan.Evaluate(exs, flows, tc.findings)
			for i, o := range out {
				if o.Pass != tc.want[i] {
					t.Errorf("%s: pass=%v want %v (got %+v, why %q)", o.Scenario, o.Pass, tc.want[i], o.Got, o.Why)
				}
			}
		})
	}
	if out := plan.Evaluate(exs, nil, nil); out[0].Pass || out[0].Got.Rule != "no-flow" {
		t.Errorf("no flows: %+v", out[0])
	}
}
