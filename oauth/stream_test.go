package oauth

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
)

// TestStreamIsBatch: a stream analysis fed while a HAR file is read gives
// Batch's flows and findings, byte for byte in JSON, for every fixture; fed
// out of time order, or starting over (a second log.entries), it falls back
// to Batch and still agrees.
func TestStreamIsBatch(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.har"))
	if len(files) < 20 {
		t.Fatalf("%d fixtures in testdata", len(files))
	}
	opts := Options{TokenTimeout: DefaultTokenTimeout}
	same := func(t *testing.T, name string, a, b *Tracker) {
		t.Helper()
		ja, _ := json.Marshal([]any{a.Flows(), a.Findings()})
		jb, _ := json.Marshal([]any{b.Flows(), b.Findings()})
		if string(ja) != string(jb) {
			t.Errorf("%s: the stream's analysis differs from Batch's:\nstream %.600s\nbatch  %.600s", name, ja, jb)
		}
	}
	streamed := 0
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		st := NewStream(opts)
		exs, err := har.ReadFunc(f, st.Feed)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		got := st.Finish(exs)
		if !st.off {
			streamed++
		}
		same(t, filepath.Base(path), got, Batch(exs, opts))

		if len(exs) < 2 {
			continue
		}
		// Reversed: out of order at the second exchange.
		rev := make([]mcptap.Exchange, len(exs))
		for i := range exs {
			rev[len(exs)-1-i] = exs[i]
		}
		st = NewStream(opts)
		for i, ex := range rev {
			st.Feed(i, ex)
		}
		got = st.Finish(rev)
		if !st.off && InOrder(rev)[0].ID != rev[0].ID {
			t.Errorf("%s: a reversed recording was streamed", path)
		}
		same(t, filepath.Base(path)+" reversed", got, Batch(rev, opts))

		// The reader started over: indexes 0, 1, 0, 1, ….
		st = NewStream(opts)
		st.Feed(0, exs[0])
		st.Feed(1, exs[1])
		st.Feed(0, exs[0])
		got = st.Finish(exs[:1])
		if !st.off {
			t.Errorf("%s: a reader that started over was streamed", path)
		}
		same(t, filepath.Base(path)+" restarted", got, Batch(exs[:1], opts))
	}
	if streamed == 0 {
		t.Error("no fixture was analysed by the stream itself (all fell back)")
	}
}
