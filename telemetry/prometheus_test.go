package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/internal/freeport"
	"github.com/mcptap/mcptap/oauth/oauthtest"
)

func fixture(t *testing.T, name string) []mcptap.Exchange {
	t.Helper()
	for _, fx := range oauthtest.Fixtures {
		if fx.Name == name {
			return fx.Exchanges()
		}
	}
	t.Fatalf("no fixture %s", name)
	return nil
}

// scrapeBound bounds the wait for Prometheus's first scrapes (it scrapes
// every second here).
var scrapeBound = 2 * time.Minute

func freeAddr(t *testing.T) string { return freeport.Addr(t) }

// A real Prometheus server (Debian's, installed by .ci/run) scrapes the
// metrics of a recorded flow (seed 000: the code was issued and no token call
// came): the funnel per client, findings by rule, flows by verdict. The
// scraped text carries no code, token or state.
func TestPrometheusScrapesFlows(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the prometheus server (Debian package prometheus) is required under CI")
		}
		t.Skip("prometheus not installed")
	}
	b := mcptap.NewBroker()
	sub := b.Subscribe("metrics", 4096)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e, err := Start(ctx, sub, Options{TokenTimeout: time.Minute, Metrics: true, Dropped: func() uint64 { return 7 }, Broker: b})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := e.Metrics.Serve(ctx, "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	exs := fixture(t, "seed000-server") // ChatGPT: code issued, no token call
	for _, ex := range exs {
		b.Publish(ex)
	}
	b.Close()
	<-e.Done()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: mcptap\n    static_configs:\n      - targets: [%q]\n", addr)), 0o600)
	web := freeAddr(t)
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+web)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	query := func(q string) []map[string]any {
		resp, err := http.Get("http://" + web + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Result []map[string]any `json:"result"`
			} `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&r) != nil {
			return nil
		}
		return r.Data.Result
	}
	// Prometheus scrapes every second: wait (bounded) for the first scrape.
	deadline := time.Now().Add(scrapeBound)
	for len(query(`mcptap_oauth_findings_total{rule="token.never-called"}`)) == 0 {
		if time.Now().After(deadline) {
			targets := ""
			if resp, err := http.Get("http://" + web + "/api/v1/targets"); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				targets = string(b)
			}
			raw := ""
			if resp, err := http.Get("http://" + web + "/api/v1/query?query=mcptap_oauth_findings_total"); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				raw = string(b)
			}
			t.Fatalf("Prometheus never had the findings; targets: %s\nquery: %s\n%s", targets, raw, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	for q, want := range map[string]string{
		`mcptap_oauth_findings_total{rule="token.never-called",severity="error",fault="client"}`: "1",
		`mcptap_oauth_funnel_flows{client="chatgpt",stage="authorize"}`:                          "1",
		`mcptap_oauth_funnel_flows{client="chatgpt",stage="token"}`:                              "",
		`mcptap_oauth_flows{client="chatgpt",verdict="token.never-called",fault="client"}`:       "1",
		`mcptap_exchanges_dropped_total`:                                                         "7",
		`mcptap_oauth_registrations{client="chatgpt"}`:                                           "1",
		`mcptap_broker_queue_depth{consumer="metrics"}`:                                          "0",
		`sum(mcptap_exchanges_total)`:                                                            fmt.Sprint(len(exs)),
	} {
		res := query(q)
		got := ""
		if len(res) > 0 {
			got = fmt.Sprint(res[0]["value"].([]any)[1])
		}
		if got != want {
			t.Errorf("%s = %q, want %q", q, got, want)
		}
	}

	// The README's Grafana queries evaluate on this Prometheus, and its
	// per-verdict query finds this flow's verdict.
	qs := readmeQueries(t)
	if len(qs) < 8 {
		t.Fatalf("README: %d PromQL queries in the production section, want the table's 8 or more", len(qs))
	}
	for _, q := range qs {
		resp, err := http.Get("http://" + web + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Status string `json:"status"`
			Error  string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if r.Status != "success" {
			t.Errorf("README query %s: %s %s", q, r.Status, r.Error)
		}
		if strings.Contains(q, `rule="token.never-called"`) && len(query(q)) == 0 {
			t.Errorf("README query %s finds nothing for a token.never-called flow", q)
		}
	}

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, ex := range exs {
		if _, q, ok := strings.Cut(ex.Target, "?"); ok {
			for _, kv := range strings.Split(q, "&") {
				if k, v, _ := strings.Cut(kv, "="); (k == "state" || k == "code") && len(v) > 3 && strings.Contains(string(text), v) {
					t.Errorf("the metrics carry the %s %q", k, v)
				}
			}
		}
	}
}

// readmeQueries returns the PromQL of the README's production section: every
// code span in the second column of its query table.
func readmeQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "## Run it in front of production")
	if !ok {
		t.Fatal("README: no production section")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	var qs []string
	for _, line := range strings.Split(sec, "\n") {
		cols := strings.Split(line, " | ")
		if len(cols) != 2 || !strings.HasPrefix(line, "| ") || !strings.Contains(cols[1], "mcptap_") {
			continue
		}
		parts := strings.Split(cols[1], "`")
		for i := 1; i < len(parts); i += 2 {
			if strings.Contains(parts[i], "mcptap_") {
				qs = append(qs, parts[i])
			}
		}
	}
	return qs
}

// TestMetricsCarryNoSecret: the planted secrets (every place and encoding
// the reports are searched for) reach no metric, label or help text of
// what Prometheus scrapes.
func TestMetricsCarryNoSecret(t *testing.T) {
	b := mcptap.NewBroker()
	sub := b.Subscribe("metrics", 4096)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e, err := Start(ctx, sub, Options{TokenTimeout: time.Minute, Metrics: true, Broker: b})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := e.Metrics.Serve(ctx, "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range oauthtest.PlantedExchanges() {
		b.Publish(ex)
	}
	b.Close()
	<-e.Done()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `mcptap_oauth_findings_total{`) {
		t.Fatalf("the scrape holds no finding counts:\n%.2000s", body)
	}
	for _, secret := range oauthtest.PlantedSecrets {
		for enc, form := range oauthtest.SecretForms(secret) {
			if strings.Contains(string(body), form) {
				t.Errorf("the metrics carry the secret %q (%s)", secret, enc)
			}
		}
	}
}
