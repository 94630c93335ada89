package report_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"path/filepath"
	"sort"
	"testing"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
	"github.com/mcptap/mcptap/oauth/oauthtest"
	"github.com/mcptap/mcptap/recorder"
	"github.com/mcptap/mcptap/report"
)

// verdictSet is what must agree across sources: each flow's ID, verdict and
// hop count, and the rules found.
func verdictSet(r report.Report) []string {
	var out []string
	for _, f := range r.Flows {
		out = append(out, fmt.Sprintf("%s %s/%s hops=%d", f.ID, f.Verdict.Rule, f.Verdict.Fault, len(f.Hops)))
	}
	for _, fd := range r.Findings {
		out = append(out, fmt.Sprintf("finding %s %s %s", fd.ID, fd.Rule, fd.Severity))
	}
	sort.Strings(out)
	return out
}

// Issue 12, one analysis path: the fixtures analysed from the exchanges as
// recorded, from a HAR file whose entries are in any order, and from an
// import into the bbolt store read back give the same flows, verdicts and
// findings (the live form is checked against the batch form in oauth's
// TestLiveEqualsBatch).
func TestSourcesGiveTheSameVerdicts(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	store, err := recorder.Open(filepath.Join(t.TempDir(), "m.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for n, fx := range oauthtest.Fixtures {
		exs := fx.Exchanges()
		sess := mcptap.Session{ID: fmt.Sprintf("s%03d", n), Source: mcptap.SourceImport}
		want := verdictSet(report.Build(sess, exs, report.Options{}))

		// A HAR file, entries shuffled, read as another producer's (no
		// _mcptap member).
		var buf bytes.Buffer
		if err := har.Write(&buf, sess, exs, nil); err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		entries := doc["log"].(map[string]any)["entries"].([]any)
		rng.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
		shuffled, _ := json.Marshal(doc)
		fromFile, err := har.Read(bytes.NewReader(shuffled))
		if err != nil {
			t.Fatal(err)
		}
		if got := verdictSet(report.Build(sess, fromFile, report.Options{})); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: HAR file in shuffled order\n got %v\nwant %v", fx.Name, got, want)
		}

		// Imported into the store in shuffled order, then read back.
		imported := append([]mcptap.Exchange(nil), exs...)
		rng.Shuffle(len(imported), func(i, j int) { imported[i], imported[j] = imported[j], imported[i] })
		if err := store.Import(sess, imported); err != nil {
			t.Fatal(err)
		}
		var back []mcptap.Exchange
		if err := store.Exchanges(sess.ID, func(ex mcptap.Exchange) error { back = append(back, ex); return nil }); err != nil {
			t.Fatal(err)
		}
		if got := verdictSet(report.Build(sess, back, report.Options{})); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: import + report\n got %v\nwant %v", fx.Name, got, want)
		}
	}
}
