package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
	"github.com/mcptap/mcptap/oauth/oauthtest"
)

// Secrets planted in every spelling a recording holds (issue 16) must not
// survive in anything mcptap exports or prints: every report format, the
// HAR export and the line view. Each secret is searched in every encoding
// it could take there: raw, percent-encoded, JSON-escaped (with "\/"), and
// base64 of the raw value.
func TestNoSecretSurvivesAnyOutput(t *testing.T) {
	tempHome(t)
	exs := oauthtest.PlantedExchanges()
	t0 := exs[0].Start
	harPath := filepath.Join(t.TempDir(), "secrets.har")
	f, err := os.Create(harPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := har.Write(f, mcptap.Session{ID: "planted", Source: mcptap.SourceImport, Name: "secrets.har", Started: t0}, exs, nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, errs, code := runCmd(t, "import", harPath); code != 0 {
		t.Fatalf("import: %d %s", code, errs)
	}

	outputs := map[string]string{}
	for _, format := range []string{"text", "markdown", "json", "html", "junit", "sarif"} {
		out, errs, code := runCmd(t, "report", harPath, "--format", format, "--fail-on", "never")
		if code != 0 {
			t.Fatalf("report --format %s: exit %d: %s", format, code, errs)
		}
		outputs["report "+format] = out + errs
	}
	exported := filepath.Join(t.TempDir(), "out.har")
	if _, errs, code := runCmd(t, "export", "--har", exported); code != 0 {
		t.Fatalf("export: %s", errs)
	}
	b, _ := os.ReadFile(exported)
	outputs["export"] = string(b)
	out, errs, _ := runCmd(t, "replay", "--no-tui")
	outputs["line view"] = out + errs

	for _, s := range oauthtest.PlantedSecrets {
		for where, text := range outputs {
			for enc, form := range oauthtest.SecretForms(s) {
				if strings.Contains(text, form) {
					t.Errorf("%s shows the secret %q (%s)", where, s, enc)
				}
			}
		}
	}
	for where, text := range outputs {
		if where != "line view" && where != "report sarif" && !strings.Contains(text, oauthtest.PlantedState) {
			t.Errorf("%s hides the state, which must stay readable", where)
		}
	}
}
