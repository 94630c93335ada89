package lab

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"

	mcptap "github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/proxy"
)

// owners maps each world's public host:port to the world's index.
func (p *Plan) owners() map[string]int {
	owner := map[string]int{}
	for i, w := range p.Worlds {
		for _, h := range w.PublicHosts() {
			owner[h] = i
		}
	}
	return owner
}

// worldOfExchange is the world whose listener an exchange arrived on (or,
// through the browser proxy, whose host it went to).
func worldOfExchange(owner map[string]int, ex mcptap.Exchange) (int, bool) {
	if i, ok := owner[ex.Listener]; ok {
		return i, true
	}
	i, ok := owner[ex.Host]
	return i, ok
}

// ScenarioOf names the scenario an exchange belongs to ("" if none): what
// the demo's live view labels flows with. Call it once the plan is bound.
func (p *Plan) ScenarioOf(ex mcptap.Exchange) string {
	p.ownerOnce.Do(func() { p.owner = p.owners() })
	if i, ok := worldOfExchange(p.owner, ex); ok {
		return p.Worlds[i].Scenario.Name
	}
	return ""
}

// Plan is a set of scenario worlds fronted by one mcptap proxy: each proxied
// lab listener gets its own route, so every hop is recorded and attributable
// to its scenario by the listener it arrived on.
type Plan struct {
	Worlds []*World
	// FixedPorts lets a route take its listener's preferred address (the VS
	// Code callback's 127.0.0.1:33418) when it is free. Off by default, so
	// that concurrent test processes never race for one port.
	FixedPorts bool
	refs       []routeRef

	ownerOnce sync.Once
	owner     map[string]int
}

type routeRef struct {
	world    int
	listener Listener
}

// NewPlan builds (and starts) one world per scenario.
func NewPlan(scs []Scenario) (*Plan, error) {
	p := &Plan{}
	for _, sc := range scs {
		w, err := NewWorld(sc)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
		}
		p.Worlds = append(p.Worlds, w)
		for _, l := range w.Listeners() {
			if l.Proxied {
				p.refs = append(p.refs, routeRef{world: len(p.Worlds) - 1, listener: l})
			}
		}
	}
	return p, nil
}

// Routes are the proxy routes, one per proxied lab listener. A route whose
// preferred listen address is busy gets any free loopback port instead.
func (p *Plan) Routes() []proxy.Route {
	taken := map[string]bool{}
	out := make([]proxy.Route, 0, len(p.refs))
	for _, r := range p.refs {
		listen := "127.0.0.1:0"
		if p.FixedPorts && r.listener.Listen != "" && !taken[r.listener.Listen] && portFree(r.listener.Listen) {
			listen = r.listener.Listen
			taken[listen] = true
		}
		out = append(out, proxy.Route{Listen: listen, Upstream: &url.URL{Scheme: "http", Host: r.listener.Addr}})
	}
	return out
}

// Bind tells each world the public origin of its proxied listeners: addrs are
// the proxy's actual listen addresses, in the order of Routes.
func (p *Plan) Bind(addrs []string) error {
	if len(addrs) != len(p.refs) {
		return fmt.Errorf("lab: %d proxy addresses for %d routes", len(addrs), len(p.refs))
	}
	for i, r := range p.refs {
		p.Worlds[r.world].SetPublic(r.listener.Name, "http://"+addrs[i])
	}
	return nil
}

// Run runs the scenarios one after the other. each, when not nil, is called
// before (res == nil) and after every scenario.
func (p *Plan) Run(ctx context.Context, each func(w *World, res *Result, err error)) ([]*Result, error) {
	var out []*Result
	var errs []error
	for _, w := range p.Worlds {
		if each != nil {
			each(w, nil, nil)
		}
		res, err := w.Run(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("scenario %s: %w", w.Scenario.Name, err))
		}
		if each != nil {
			each(w, res, err)
		}
		out = append(out, res)
	}
	return out, errors.Join(errs...)
}

// Close stops every world.
func (p *Plan) Close() {
	for _, w := range p.Worlds {
		_ = w.Close()
	}
}

// Outcome is a scenario's expected and produced verdict.
type Outcome struct {
	Scenario string         `json:"scenario"`
	Expect   Expect         `json:"expect"`
	Got      mcptap.Verdict `json:"got"`
	Flow     string         `json:"flow,omitempty"`
	Client   string         `json:"client,omitempty"`
	Flows    int            `json:"flows"`
	Pass     bool           `json:"pass"`
	Why      string         `json:"why,omitempty"`
}

// Evaluate attributes flows and findings to scenarios by the listener their
// exchanges arrived on, and compares each scenario's worst verdict with what
// it expects. A healthy scenario also fails on any warning or error finding.
func (p *Plan) Evaluate(exs []mcptap.Exchange, flows []mcptap.Flow, findings []mcptap.Finding) []Outcome {
	owner := p.owners()
	exWorld := map[string]int{}
	for _, ex := range exs {
		if i, ok := worldOfExchange(owner, ex); ok {
			exWorld[ex.ID] = i
		}
	}
	worldOf := func(ids []string) (int, bool) {
		votes := map[int]int{}
		for _, id := range ids {
			if i, ok := exWorld[id]; ok {
				votes[i]++
			}
		}
		best, n := -1, 0
		for i, v := range votes {
			if v > n || (v == n && i < best) {
				best, n = i, v
			}
		}
		return best, best >= 0
	}
	perWorld := make([][]mcptap.Flow, len(p.Worlds))
	flowWorld := map[string]int{}
	for _, f := range flows {
		var ids []string
		for _, h := range f.Hops {
			ids = append(ids, h.Exchange)
		}
		if i, ok := worldOf(ids); ok {
			perWorld[i] = append(perWorld[i], f)
			flowWorld[f.ID] = i
		}
	}
	badFindings := make([][]string, len(p.Worlds))
	warnings := make([][]mcptap.Finding, len(p.Worlds))
	infos := make([][]mcptap.Finding, len(p.Worlds))
	for _, fd := range findings {
		i, ok := flowWorld[fd.Flow]
		if !ok {
			i, ok = worldOf(fd.Exchanges)
		}
		if fd.Severity.Rank() < mcptap.SevWarning.Rank() {
			if ok && fd.Severity == mcptap.SevInfo {
				infos[i] = append(infos[i], fd)
			}
			continue
		}
		if ok {
			badFindings[i] = append(badFindings[i], string(fd.Rule)+"/"+string(fd.Fault))
			if fd.Severity == mcptap.SevWarning {
				warnings[i] = append(warnings[i], fd)
			}
		}
	}
	var out []Outcome
	for i, w := range p.Worlds {
		o := Outcome{Scenario: w.Scenario.Name, Expect: w.Scenario.Expect, Flows: len(perWorld[i])}
		fs := perWorld[i]
		sort.SliceStable(fs, func(a, b int) bool {
			ra, rb := fs[a].Verdict.Severity.Rank(), fs[b].Verdict.Severity.Rank()
			if fs[a].Verdict.Rule == "ok" {
				ra = 0
			}
			if fs[b].Verdict.Rule == "ok" {
				rb = 0
			}
			if ra != rb {
				return ra > rb
			}
			return fs[a].Started.Before(fs[b].Started)
		})
		if len(fs) == 0 {
			o.Got = mcptap.Verdict{Rule: "no-flow"}
			o.Why = "the analysis built no flow from this scenario's exchanges"
		} else {
			o.Got, o.Flow, o.Client = fs[0].Verdict, fs[0].ID, fs[0].Client
			if o.Got.Rule == "ok" && len(warnings[i]) > 0 {
				// A verdict names errors only; with none, the scenario's
				// root cause is its earliest warning.
				sort.SliceStable(warnings[i], func(a, b int) bool { return warnings[i][a].At.Before(warnings[i][b].At) })
				wf := warnings[i][0]
				o.Got = mcptap.Verdict{Rule: wf.Rule, Severity: wf.Severity, Fault: wf.Fault}
				if wf.Flow != "" {
					o.Flow = wf.Flow
				}
			}
			if o.Got.Rule == "ok" && len(warnings[i]) == 0 && expectsInfo(w.Scenario.Expect) {
				// A scenario built to show an info finding (a fact worth
				// knowing, not a fault): its earliest info is what it produced.
				for _, fd := range infos[i] {
					if slices.Contains(w.Scenario.Expect.Rules, fd.Rule) {
						o.Got = mcptap.Verdict{Rule: fd.Rule, Severity: fd.Severity, Fault: fd.Fault}
						break
					}
				}
			}
		}
		e := w.Scenario.Expect
		switch {
		case len(fs) == 0:
		case !slices.Contains(e.Rules, o.Got.Rule):
			o.Why = fmt.Sprintf("verdict %s, want %s", o.Got.Rule, e.RulesText(" or "))
		case !containsFault(e.Faults, o.Got.Fault):
			o.Why = fmt.Sprintf("fault %s, want %s", o.Got.Fault, joinFaults(e.Faults))
		case e.Healthy() && len(badFindings[i]) > 0:
			o.Why = "healthy scenario has findings: " + strings.Join(badFindings[i], ", ")
		case e.Transform != "" && !namesTransform(findings, o.Flow, o.Got.Rule, e.Transform):
			o.Why = fmt.Sprintf("the %s finding does not name the %s transformation", o.Got.Rule, e.Transform)
		default:
			o.Pass = true
		}
		out = append(out, o)
	}
	return out
}

// namesTransform reports whether the flow's finding for rule says which
// transformation damaged the state.
func namesTransform(findings []mcptap.Finding, flow string, rule mcptap.RuleID, transform string) bool {
	for _, fd := range findings {
		if fd.Flow != flow || fd.Rule != rule {
			continue
		}
		text := fd.Title + " " + fd.Detail
		for _, ev := range fd.Evidence {
			text += " " + ev.Note
		}
		if strings.Contains(text, transform) {
			return true
		}
	}
	return false
}

func containsFault(list []mcptap.Fault, f mcptap.Fault) bool {
	for _, x := range list {
		if x == f {
			return true
		}
	}
	return false
}

func joinFaults(list []mcptap.Fault) string {
	s := make([]string, len(list))
	for i, f := range list {
		s[i] = string(f)
	}
	return strings.Join(s, " or ")
}

// ProxyConfig is the proxy configuration for the plan's routes.
func (p *Plan) ProxyConfig() proxy.Config {
	return proxy.Config{Routes: p.Routes()}
}

// expectsInfo: the scenario expects one of the catalogue's info rules.
func expectsInfo(e Expect) bool {
	if e.Healthy() {
		return false
	}
	for _, r := range oauth.Catalogue() {
		if r.Severity == mcptap.SevInfo && slices.Contains(e.Rules, r.ID) {
			return true
		}
	}
	return false
}
