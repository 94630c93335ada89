package mcptap_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/mcptap/mcptap"

// pkgInfo is one package of the module as `go list` sees it (tests excluded).
type pkgInfo struct {
	imports []string // direct imports
	deps    []string // everything it links, transitively
}

func listPackages(t *testing.T) map[string]pkgInfo {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \",\"}}|{{join .Deps \",\"}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]pkgInfo{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.SplitN(line, "|", 3)
		if len(parts) != 3 {
			t.Fatalf("go list line %q", line)
		}
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, ",")
		}
		pkgs[strings.TrimPrefix(strings.TrimPrefix(parts[0], module), "/")] = pkgInfo{split(parts[1]), split(parts[2])}
	}
	return pkgs
}

func hasPrefix(list []string, prefix string) string {
	for _, s := range list {
		if s == prefix || strings.HasPrefix(s, prefix+"/") {
			return s
		}
	}
	return ""
}

// TestLayering checks ARCHITECTURE.md's house over every package of the
// module: the domain imports nothing of the adapters, oauth is pure, each
// third-party adapter library is imported by its one package only, report
// and tui do not link bbolt, and nothing imports cmd.
func TestLayering(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages: %v", len(pkgs), pkgs)
	}
	// Each library and the one package allowed to import it directly.
	owner := map[string]string{
		"go.etcd.io/bbolt":                    "recorder",
		"charm.land/bubbletea/v2":             "tui",
		"charm.land/lipgloss/v2":              "tui",
		"charm.land/bubbles/v2":               "tui",
		"github.com/elazarl/goproxy":          "proxy",
		"go.opentelemetry.io/otel":            "telemetry",
		"github.com/prometheus/client_golang": "telemetry",
	}
	adapters := []string{"go.etcd.io/bbolt", "charm.land/", "github.com/charmbracelet/", "github.com/elazarl/goproxy", "go.opentelemetry.io/", "github.com/prometheus/"}
	for name, p := range pkgs {
		for lib, own := range owner {
			if imp := hasPrefix(p.imports, lib); imp != "" && name != own {
				t.Errorf("package %q imports %s; only %s may", name, imp, own)
			}
		}
		if imp := hasPrefix(p.imports, module+"/cmd"); imp != "" {
			t.Errorf("package %q imports %s", name, imp)
		}
	}
	// The domain and the analysis link no adapter library and, for oauth,
	// nothing of the module but the domain.
	for _, name := range []string{"", "oauth"} {
		p, ok := pkgs[name]
		if !ok {
			t.Fatalf("no package %q", name)
		}
		for _, d := range p.deps {
			for _, a := range adapters {
				if strings.HasPrefix(d, a) {
					t.Errorf("package %q links %s", name, d)
				}
			}
			if strings.HasPrefix(d, module+"/") && !(name == "oauth" && d == module) {
				t.Errorf("package %q links %s of the module", name, d)
			}
		}
	}
	// Readers of an analysis, and the codecs, link no storage.
	for _, name := range []string{"report", "tui", "har", "redact", "oauth"} {
		if d := hasPrefix(pkgs[name].deps, "go.etcd.io/bbolt"); d != "" {
			t.Errorf("package %q links %s (bbolt belongs to recorder)", name, d)
		}
	}
	for _, name := range []string{"report", "har", "redact", "recorder", "oauth"} {
		if d := hasPrefix(pkgs[name].deps, "charm.land"); d != "" {
			t.Errorf("package %q links %s (Bubble Tea belongs to tui)", name, d)
		}
	}
}
