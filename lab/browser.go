package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// browser is a scripted user agent: it follows redirects one hop at a time
// (so each hop is its own exchange, as in a real browser), submits the lab's
// consent form, and runs the callback page's completion call.
type browser struct {
	hc *http.Client
}

type page struct {
	url    string
	status int
	body   string
	csp    string // the page's Content-Security-Policy
	// blocked says why the browser stopped instead of loading url (a
	// form-action that excludes a redirect target); status is then 0.
	blocked string
}

var (
	reForm   = regexp.MustCompile(`(?s)<form method="post" action="([^"]*)" class="` + consentFormMarker + `">(.*?)</form>`)
	reHidden = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
	reMeta   = regexp.MustCompile(`<meta name="lab-callback-complete" content="([^"]*)">`)
)

func (p *page) isConsent() bool { return reForm.MatchString(p.body) }

func (p *page) completionPath() string {
	if m := reMeta.FindStringSubmatch(p.body); m != nil {
		return html.UnescapeString(m[1])
	}
	return ""
}

func (b *browser) open(ctx context.Context, u string) (*page, error) {
	return b.do(ctx, http.MethodGet, u, "", nil)
}

// do sends one request and follows redirects (as GETs) until a page answers.
func (b *browser) do(ctx context.Context, method, u, ctype string, body []byte) (*page, error) {
	return b.follow(ctx, method, u, ctype, body, nil)
}

// follow is do that, for a form submission, checks every redirect target
// against the submitting page's form-action (allowed nil: no check), as
// Chromium and Safari do (CSP3; Firefox checks only the form's action).
func (b *browser) follow(ctx context.Context, method, u, ctype string, body []byte, allowed func(*url.URL) bool) (*page, error) {
	for hop := 0; hop < 12; hop++ {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, rd)
		if err != nil {
			return nil, fmt.Errorf("browser: %w", err)
		}
		req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := b.hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("browser: %s %s: %w", method, u, err)
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode/100 == 3 && resp.Header.Get("Location") != "" {
			next, err := req.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return nil, fmt.Errorf("browser: bad Location %q: %w", resp.Header.Get("Location"), err)
			}
			if allowed != nil && !allowed(next) {
				return &page{url: next.String(), blocked: "Refused to send form data to " + u + " because it violates the Content-Security-Policy directive form-action"}, nil
			}
			u, method, ctype, body = next.String(), http.MethodGet, "", nil
			continue
		}
		return &page{url: u, status: resp.StatusCode, body: string(data), csp: resp.Header.Get("Content-Security-Policy")}, nil
	}
	return nil, fmt.Errorf("browser: too many redirects from %s", u)
}

// approve submits the consent form with decision=approve.
func (b *browser) approve(ctx context.Context, p *page) (*page, error) {
	m := reForm.FindStringSubmatch(p.body)
	if m == nil {
		return nil, fmt.Errorf("browser: no consent form on %s", p.url)
	}
	form := url.Values{"decision": {"approve"}}
	for _, h := range reHidden.FindAllStringSubmatch(m[2], -1) {
		form.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	base, err := url.Parse(p.url)
	if err != nil {
		return nil, err
	}
	action, err := base.Parse(html.UnescapeString(m[1]))
	if err != nil {
		return nil, err
	}
	var allowed func(*url.URL) bool
	if sources, ok := cspFormAction(p.csp); ok {
		allowed = func(to *url.URL) bool { return sourcesAllow(sources, base, to) }
	}
	return b.follow(ctx, http.MethodPost, action.String(), "application/x-www-form-urlencoded", []byte(form.Encode()), allowed)
}

// cspFormAction is the source list of a policy's form-action directive.
func cspFormAction(csp string) ([]string, bool) {
	for _, dir := range strings.Split(csp, ";") {
		if f := strings.Fields(dir); len(f) > 0 && strings.EqualFold(f[0], "form-action") {
			return f[1:], true
		}
	}
	return nil, false
}

// sourcesAllow matches the CSP sources the lab uses: 'self', 'none', *,
// a scheme (https:) and an origin.
func sourcesAllow(sources []string, page, to *url.URL) bool {
	for _, s := range sources {
		switch s = strings.ToLower(s); {
		case s == "*":
			return true
		case s == "'self'":
			if to.Scheme == page.Scheme && to.Host == page.Host {
				return true
			}
		case strings.HasSuffix(s, ":") && !strings.Contains(s, "/"):
			if strings.TrimSuffix(s, ":") == to.Scheme {
				return true
			}
		case s == to.Scheme+"://"+strings.ToLower(to.Host):
			return true
		}
	}
	return false
}

func (b *browser) postJSON(ctx context.Context, u string, v any) (int, string, error) {
	body, _ := json.Marshal(v)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.hc.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("browser: POST %s: %w", u, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(data), nil
}

// get is an XHR GET (no redirects followed).
func (b *browser) get(ctx context.Context, u string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := b.hc.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("browser: GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(data), nil
}

// linkOAuth is the ChatGPT web app asking its backend to start a link.
func (b *browser) linkOAuth(ctx context.Context, cbBase string) (string, error) {
	st, body, err := b.postJSON(ctx, cbBase+"/backend-api/aip/connectors/links/oauth", map[string]string{})
	if err != nil {
		return "", err
	}
	var r struct {
		RedirectURL string `json:"redirect_url"`
	}
	if st != http.StatusOK || json.Unmarshal([]byte(body), &r) != nil || r.RedirectURL == "" {
		return "", fmt.Errorf("links/oauth answered %d: %s", st, strings.TrimSpace(body))
	}
	return r.RedirectURL, nil
}
