package har

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
)

// chromeHAR builds a Chrome-shaped HAR of n entries by repeating the entries
// of testdata/chrome-sanitized.har with fresh times and states.
func chromeHAR(tb testing.TB, n int) []byte {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "chrome-sanitized.har"))
	if err != nil {
		tb.Fatal(err)
	}
	var doc struct {
		Log struct {
			Entries []map[string]any `json:"entries"`
		} `json:"log"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	buf.WriteString(`{"log":{"version":"1.2","creator":{"name":"WebInspector","version":"537.36"},"pages":[],"entries":[`)
	t0 := time.Date(2026, 11, 24, 16, 30, 0, 0, time.UTC)
	for i := range n {
		e := doc.Log.Entries[i%len(doc.Log.Entries)]
		e["startedDateTime"] = t0.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano)
		req := e["request"].(map[string]any)
		req["url"] = fmt.Sprintf("https://auth.example.test/authorize?response_type=code&state=st%08d&x=%%zz", i)
		b, err := json.MarshalIndent(e, "    ", "  ")
		if err != nil {
			tb.Fatal(err)
		}
		if i > 0 {
			buf.WriteString(",\n    ")
		}
		buf.Write(b)
	}
	buf.WriteString("]}}\n")
	return buf.Bytes()
}

// BenchmarkReadHAR reads a 10,000-entry Chrome-shaped HAR; compare with
// BenchmarkUnmarshalHAR, the cost of merely parsing the same JSON.
func BenchmarkReadHAR(b *testing.B) {
	data := chromeHAR(b, 10000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		exs, err := Read(bytes.NewReader(data))
		if err != nil || len(exs) != 10000 {
			b.Fatal(err, len(exs))
		}
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "entries/s")
}

func BenchmarkUnmarshalHAR(b *testing.B) {
	data := chromeHAR(b, 10000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteHAR(b *testing.B) {
	exs, err := Read(bytes.NewReader(chromeHAR(b, 10000)))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var buf bytes.Buffer
		if err := Write(&buf, mcptapSession(), exs, nil); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(buf.Len()))
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "entries/s")
}

func mcptapSession() mcptap.Session { return mcptap.Session{ID: "bench", Source: mcptap.SourceProxy} }
