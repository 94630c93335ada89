package recorder

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/har"
)

// BenchmarkImport stores 10,000 Chrome-shaped exchanges (the entries of
// har/testdata/chrome-sanitized.har repeated with fresh IDs and times) as one
// session in one transaction, which is what `mcptap import` does after har.Read.
func BenchmarkImport(b *testing.B) {
	f, err := os.Open(filepath.Join("..", "har", "testdata", "chrome-sanitized.har"))
	if err != nil {
		b.Fatal(err)
	}
	base, err := har.Read(f)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 11, 24, 16, 30, 0, 0, time.UTC)
	exs := make([]mcptap.Exchange, 10000)
	for i := range exs {
		ex := base[i%len(base)]
		ex.Start = t0.Add(time.Duration(i) * time.Millisecond)
		ex.ID = fmt.Sprintf("%016x%06x", uint64(ex.Start.UnixNano()), i)
		ex.Target = fmt.Sprintf("/authorize?response_type=code&state=st%08d&x=%%zz", i)
		exs[i] = ex
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		s, _ := openTest(b, nil)
		b.StartTimer()
		if err := s.Import(mcptap.Session{ID: fmt.Sprintf("s%d", i), Source: mcptap.SourceImport}, exs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "exchanges/s")
}
