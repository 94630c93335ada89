package resend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/live"
	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/proxy"
	"github.com/mcptap/mcptap/recorder"
	"github.com/mcptap/mcptap/redact"
)

// Defaults for Options.
const (
	DefaultTimeout    = 30 * time.Second
	DefaultStreamWait = time.Second
	maxLearnBody      = 8 << 20
)

// ErrSelect wraps the errors of choosing which recorded requests to re-send
// (none went to an upstream, or the named one is not in the recording).
var ErrSelect = errors.New("cannot choose the requests to re-send")

// ErrRedacted is returned for a recording whose requests carry redaction
// placeholders: re-sending them would check nothing.
var ErrRedacted = errors.New("the recording is redacted")

// Options configures one re-send.
type Options struct {
	// Store receives the new session. Required.
	Store *recorder.Store
	// Upstream is where the requests go (through a new capture). Required.
	Upstream *url.URL
	// Original is the recorded session (its ID and Name name the new one).
	Original mcptap.Session
	// From picks which recorded requests are re-sent: the upstream
	// ("http://127.0.0.1:3000") of a proxy session's route, or an origin of a
	// HAR file. Empty: see Select.
	From string
	// Timeout bounds each request; 0 means DefaultTimeout.
	Timeout time.Duration
	// StreamWait is how long the response of a GET event stream (a stream the
	// server keeps open) is read before it is closed; 0 means DefaultStreamWait.
	StreamWait time.Duration
	// TokenTimeout is the analysis' token timeout (0: the analysis' default).
	TokenTimeout time.Duration
	Log          *slog.Logger
}

// Result is what a re-send did and what it changed.
type Result struct {
	Session  mcptap.Session // the new session
	From     string         // the recorded upstream or origin whose requests were re-sent
	Sent     int
	Skipped  []string // why a selected request was not sent
	Failed   int      // requests that got no response (from the proxy or, through it, from the upstream)
	FirstErr string   // the first such failure
	Pairs    []Pair   // recorded value → fresh value, in the order learned
	Recorded int      // exchanges in the recording
	// Old are the findings of the recorded requests that were re-sent (and
	// their responses), New those of the new session.
	Old, New []mcptap.Finding
	Diff     Diff
	// NotChecked are rules the whole recording raised that its re-sent part
	// does not: they come from traffic that was not re-sent (the client's
	// callback, another route), so the re-send says nothing about them.
	NotChecked []RuleChange
}

// RuleChange is one rule in a Diff: how many findings it raised before and
// after, and its worst severity and its fault.
type RuleChange struct {
	Rule     mcptap.RuleID   `json:"rule"`
	Severity mcptap.Severity `json:"severity"`
	Fault    mcptap.Fault    `json:"fault"`
	Before   int             `json:"before"`
	After    int             `json:"after"`
}

// Diff compares the rules of two analyses.
type Diff struct {
	Fixed  []RuleChange `json:"fixed"`  // raised before, not any more
	New    []RuleChange `json:"new"`    // raised only now
	Stayed []RuleChange `json:"stayed"` // raised in both
}

// compareFindings sorts the rules of the old and the new findings into fixed, new
// and stayed, each ordered by severity (worst first), then rule.
func compareFindings(old, fresh []mcptap.Finding) Diff {
	type agg struct {
		rc RuleChange
	}
	m := map[mcptap.RuleID]*agg{}
	add := func(fs []mcptap.Finding, after bool) {
		for _, f := range fs {
			a := m[f.Rule]
			if a == nil {
				a = &agg{rc: RuleChange{Rule: f.Rule, Severity: f.Severity, Fault: f.Fault}}
				m[f.Rule] = a
			}
			if f.Severity.Rank() > a.rc.Severity.Rank() {
				a.rc.Severity, a.rc.Fault = f.Severity, f.Fault
			}
			if after {
				a.rc.After++
			} else {
				a.rc.Before++
			}
		}
	}
	add(old, false)
	add(fresh, true)
	var d Diff
	for _, a := range m {
		switch {
		case a.rc.After == 0:
			d.Fixed = append(d.Fixed, a.rc)
		case a.rc.Before == 0:
			d.New = append(d.New, a.rc)
		default:
			d.Stayed = append(d.Stayed, a.rc)
		}
	}
	for _, l := range [][]RuleChange{d.Fixed, d.New, d.Stayed} {
		sort.Slice(l, func(i, j int) bool {
			if ri, rj := l[i].Severity.Rank(), l[j].Severity.Rank(); ri != rj {
				return ri > rj
			}
			return l[i].Rule < l[j].Rule
		})
	}
	return d
}

// HasError reports whether any of the findings is an error.
func HasError(fs []mcptap.Finding) bool {
	for _, f := range fs {
		if f.Severity == mcptap.SevError {
			return true
		}
	}
	return false
}

// keyOf is the upstream (proxy sessions) or origin (HAR, replays) an
// exchange's request went to; "" for exchanges that cannot be re-sent
// (forward-proxy traffic, whose target is the browser's).
func keyOf(ex *mcptap.Exchange) string {
	switch ex.Mode {
	case mcptap.ModeReverse, mcptap.ModeReplay, "":
		if ex.Upstream != "" {
			return normOrigin(ex.Upstream)
		}
		return ""
	case mcptap.ModeHAR:
		u, err := url.Parse(ex.URL())
		if err != nil || u.Host == "" {
			return ""
		}
		return normOrigin(u.Scheme + "://" + u.Host)
	}
	return ""
}

func normOrigin(s string) string {
	u, err := url.Parse(strings.TrimRight(s, "/"))
	if err != nil || u.Host == "" {
		return strings.TrimRight(s, "/")
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}

// selectRequests picks the recorded requests to re-send: those that went to from
// (normalised to scheme://host). With from empty it is, in this order, the
// recorded upstream equal to the new upstream; the upstream or origin that
// served the MCP requests (as the analysis classifies them); the only one.
func selectRequests(exs []mcptap.Exchange, from, upstream string) ([]mcptap.Exchange, string, error) {
	counts := map[string]int{}
	for i := range exs {
		if k := keyOf(&exs[i]); k != "" {
			counts[k]++
		}
	}
	if len(counts) == 0 {
		return nil, "", errors.New("the recording has no request that went to an upstream (only reverse-proxy and HAR requests can be re-sent)")
	}
	key := ""
	switch {
	case from != "":
		key = normOrigin(from)
		if counts[key] == 0 {
			return nil, "", fmt.Errorf("no recorded request went to %s (recorded: %s)", key, strings.Join(sortedKeys(counts), ", "))
		}
	case counts[normOrigin(upstream)] > 0:
		key = normOrigin(upstream)
	default:
		key = mcpKey(exs)
		if key == "" {
			if len(counts) > 1 {
				return nil, "", fmt.Errorf("the recording went to several upstreams and none served MCP requests; name one (recorded: %s)", strings.Join(sortedKeys(counts), ", "))
			}
			key = sortedKeys(counts)[0]
		}
	}
	var out []mcptap.Exchange
	for i := range exs {
		if keyOf(&exs[i]) == key {
			out = append(out, exs[i])
		}
	}
	return out, key, nil
}

// mcpKey is the upstream that most of the MCP hops went to.
func mcpKey(exs []mcptap.Exchange) string {
	tr := oauth.Batch(exs, oauth.Options{})
	votes := map[string]int{}
	for i := range exs {
		kind, ok := tr.Hop(exs[i].ID)
		if !ok || (kind != mcptap.HopMCP && kind != mcptap.HopMCPUnauthenticated && kind != mcptap.HopDiscoveryResource) {
			continue
		}
		if k := keyOf(&exs[i]); k != "" {
			votes[k]++
		}
	}
	best, n := "", 0
	for _, k := range sortedKeys(votes) {
		if votes[k] > n {
			best, n = k, votes[k]
		}
	}
	return best
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// hopHeaders are not end to end (RFC 9110 §7.6.1) or are recomputed by the
// sender from the body.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Proxy-Authenticate",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Host", "Expect"}

// outHeader is the header to send: the recorded one after substitution,
// without hop-by-hop and length headers (nor HTTP/2 pseudo-headers a HAR may hold).
func outHeader(h http.Header) http.Header {
	out := h.Clone()
	if out == nil {
		out = http.Header{}
	}
	for _, c := range out.Values("Connection") {
		for _, name := range strings.Split(c, ",") {
			out.Del(strings.TrimSpace(name))
		}
	}
	for _, k := range hopHeaders {
		out.Del(k)
	}
	for k := range out {
		if strings.HasPrefix(k, ":") {
			delete(out, k)
		}
	}
	return out
}

// Run re-sends the selected requests of exs to opts.Upstream through a new
// live capture, analyses the old and the new session and compares them. It
// returns an error only when nothing could be re-sent (no selectable request,
// the capture could not start); a request that fails is counted in Failed and
// shows in the new session.
func Run(ctx context.Context, exs []mcptap.Exchange, opts Options) (*Result, error) {
	if opts.Store == nil || opts.Upstream == nil {
		return nil, errors.New("resend: Store and Upstream are required")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.StreamWait <= 0 {
		opts.StreamWait = DefaultStreamWait
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	up := opts.Upstream.Scheme + "://" + opts.Upstream.Host
	reqs, from, err := selectRequests(exs, opts.From, up)
	if err != nil {
		return nil, fmt.Errorf("resend: %w: %w", ErrSelect, err)
	}
	for _, ex := range reqs {
		if redact.ExchangeRedacted(ex) {
			return nil, fmt.Errorf("resend: %w: %s %s carries redaction placeholders instead of the values it sent; re-send the stored session or an export made with --no-redact", ErrRedacted, ex.Method, strings.SplitN(ex.Target, "?", 2)[0])
		}
	}
	origName := opts.Original.ID
	if origName == "" {
		origName = opts.Original.Name
	}
	sess := mcptap.Session{
		ID:     mcptap.NewID(time.Now()),
		Source: mcptap.SourceReplay,
		Name:   fmt.Sprintf("re-send of %s (%s) to %s", origName, from, opts.Upstream),
		Settings: map[string]string{
			"resend_of":   origName,
			"resend_from": from,
		},
	}
	capture, err := live.Start(live.Config{
		Store:   opts.Store,
		Session: sess,
		Proxy:   proxy.Config{Routes: []proxy.Route{{Listen: "127.0.0.1:0", Upstream: opts.Upstream}}},
		Log:     log,
	})
	if err != nil {
		return nil, fmt.Errorf("resend: start capture: %w", err)
	}
	res := &Result{Session: capture.Session(), From: from}
	base := "http://" + capture.Addrs()[0]

	tr := &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 4}
	hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var sub substitution
	seedFresh(&sub, reqs)
	// What is printed or logged about a request (a skip, a failure) names
	// it without its secrets: targets carry codes and tokens, and Go's
	// errors quote the whole URL.
	red := redact.New(nil)
	for _, ex := range reqs {
		red.Learn(ex)
	}
	shown := func(target string) string { return red.Text(red.Target(target)) }
	for i := range reqs {
		if ctx.Err() != nil {
			res.Skipped = append(res.Skipped, fmt.Sprintf("%d requests not sent: %v", len(reqs)-i, ctx.Err()))
			break
		}
		ex := &reqs[i]
		if strings.HasPrefix(ex.Target, "//") {
			// Go's client would write it as an absolute-form URL with another meaning.
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s %s: a target starting with // cannot be sent as recorded", ex.Method, shown(ex.Target)))
			continue
		}
		if ex.ReqTruncated {
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s %s: the recorded body was truncated", ex.Method, shown(ex.Target)))
			continue
		}
		fresh, err := send(ctx, hc, base, ex, &sub, opts)
		res.Sent++
		if err != nil {
			res.Failed++
			msg := red.Text(urlRE.ReplaceAllStringFunc(err.Error(), red.Target))
			if res.FirstErr == "" {
				res.FirstErr = msg
			}
			log.Warn("re-send failed", "method", ex.Method, "target", shown(ex.Target), "err", msg)
			continue
		}
		learnResponse(&sub, sentResponse{Header: ex.RespHeader, Body: ex.RespBody}, fresh)
	}
	tr.CloseIdleConnections()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := capture.Stop(sctx); err != nil {
		return res, fmt.Errorf("resend: stop capture: %w", err)
	}
	if stored, err := opts.Store.Session(sess.ID); err == nil {
		res.Session = stored
	}
	var newExs []mcptap.Exchange
	if err := opts.Store.Exchanges(sess.ID, func(ex mcptap.Exchange) error { newExs = append(newExs, ex); return nil }); err != nil {
		return res, fmt.Errorf("resend: read session %s: %w", sess.ID, err)
	}
	// A request that failed between us and the proxy may or may not have
	// been recorded: count the larger of the two failure counts.
	unanswered := 0
	for _, ex := range newExs {
		if ex.Status == 0 {
			unanswered++ // the proxy got no response from the upstream
			if res.FirstErr == "" {
				res.FirstErr = ex.Err
			}
		}
	}
	res.Failed = max(res.Failed, unanswered)
	aopts := oauth.Options{TokenTimeout: opts.TokenTimeout}
	_, all := oauth.Analyze(exs, aopts)
	_, res.Old = oauth.Analyze(reqs, aopts)
	_, res.New = oauth.Analyze(newExs, aopts)
	res.Diff = compareFindings(res.Old, res.New)
	res.NotChecked = compareFindings(all, res.Old).Fixed
	res.Recorded = len(exs)
	res.Pairs = sub.Pairs()
	return res, nil
}

// urlRE finds the URLs Go's errors quote, so that their secret query
// parameters can be redacted by name.
var urlRE = regexp.MustCompile(`https?://[^\s"']+`)

// send re-sends one recorded request and reads its response.
func send(ctx context.Context, hc *http.Client, base string, ex *mcptap.Exchange, sub *substitution, opts Options) (sentResponse, error) {
	target := ex.Target
	if target == "" || target[0] != '/' {
		// A HAR request: its URL's path and query.
		u, err := url.Parse(ex.URL())
		if err != nil {
			return sentResponse{}, fmt.Errorf("target %q: %w", ex.Target, err)
		}
		target = u.RequestURI()
	}
	target = sub.Target(target)
	h := outHeader(sub.Header(ex.ReqHeader))
	body := sub.Body(ex.ReqHeader.Get("Content-Type"), ex.ReqBody)

	rctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	var rb io.Reader
	if len(body) > 0 {
		rb = bytes.NewReader(body)
	}
	method := ex.Method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(rctx, method, base+"/", rb)
	if err != nil {
		return sentResponse{}, fmt.Errorf("%s %s: %w", method, target, err)
	}
	// The raw target goes out byte for byte: Opaque keeps Go from
	// re-encoding the path and query.
	req.URL.Opaque = target
	req.URL.RawQuery = ""
	req.Host = ex.Host
	if req.Host == "" {
		req.Host = req.URL.Host
	}
	for k, vs := range h {
		req.Header[textproto.CanonicalMIMEHeaderKey(k)] = append([]string(nil), vs...)
	}
	if _, ok := req.Header["User-Agent"]; !ok {
		req.Header["User-Agent"] = nil // no Go default where the client sent none
	}
	resp, err := hc.Do(req)
	if err != nil {
		return sentResponse{}, fmt.Errorf("%s %s: %w", method, target, err)
	}
	defer resp.Body.Close()
	var r io.Reader = io.LimitReader(resp.Body, maxLearnBody)
	if method == http.MethodGet && strings.Contains(strings.ToLower(resp.Header.Get("Content-Type")), "event-stream") {
		// A stream the server keeps open: take what comes in StreamWait.
		timer := time.AfterFunc(opts.StreamWait, cancel)
		defer timer.Stop()
	}
	// A body cut short (the stream closed, the server failed) still
	// teaches what its head and its first bytes carry.
	b, _ := io.ReadAll(r)
	return sentResponse{Header: resp.Header, Body: b}, nil
}

// Write prints the outcome: the new session, what was sent, and the rules
// that were fixed, appeared and stayed.
// Unreachable reports whether no re-sent request got a response.
func (r *Result) Unreachable() bool { return r.Sent > 0 && r.Failed == r.Sent }

func (r *Result) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "re-sent %d of %d recorded requests (those to %s) to %s as session %s\n", r.Sent, r.Recorded, r.From, upstreamOf(r.Session), r.Session.ID)
	if r.Unreachable() {
		fmt.Fprintf(&b, "the upstream %s did not answer any request (%s): nothing was checked\n", upstreamOf(r.Session), r.FirstErr)
		_, err := io.WriteString(w, b.String())
		return err
	}
	if r.Failed > 0 {
		fmt.Fprintf(&b, "  %d requests got no response from the upstream (first: %s): the comparison below is incomplete\n", r.Failed, r.FirstErr)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "  skipped: %s\n", s)
	}
	whats := map[string]int{}
	var order []string
	for _, p := range r.Pairs {
		if whats[p.What] == 0 {
			order = append(order, p.What)
		}
		whats[p.What]++
	}
	if len(order) > 0 {
		parts := make([]string, len(order))
		for i, w := range order {
			parts[i] = w
			if whats[w] > 1 {
				parts[i] = fmt.Sprintf("%s×%d", w, whats[w])
			}
		}
		fmt.Fprintf(&b, "  fresh values carried: %s\n", strings.Join(parts, ", "))
	}
	section := func(title, glyph string, l []RuleChange) {
		fmt.Fprintf(&b, "%s (%d)\n", title, len(l))
		for _, c := range l {
			fmt.Fprintf(&b, "  %s %-8s %s [%s] before %d, after %d\n", glyph, c.Severity, c.Rule, c.Fault, c.Before, c.After)
		}
	}
	section("fixed", "-", r.Diff.Fixed)
	section("new", "+", r.Diff.New)
	section("stayed", "=", r.Diff.Stayed)
	if len(r.NotChecked) > 0 {
		fmt.Fprintf(&b, "not re-checked (%d): raised by recorded traffic that was not re-sent\n", len(r.NotChecked))
		for _, c := range r.NotChecked {
			fmt.Fprintf(&b, "  ? %-8s %s [%s]\n", c.Severity, c.Rule, c.Fault)
		}
	}
	if HasError(r.New) {
		if len(r.Diff.Fixed) > 0 {
			fmt.Fprintf(&b, "note: with errors in the new session, a rule can also be gone because the new flow broke before the hop that raised it\n")
		}
		fmt.Fprintf(&b, "the new session still has errors: mcptap report %s\n", r.Session.ID)
	} else {
		fmt.Fprintf(&b, "the new session has no error finding\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func upstreamOf(s mcptap.Session) string {
	r := s.Settings["routes"]
	if i := strings.IndexByte(r, '='); i >= 0 {
		return r[i+1:]
	}
	return r
}
