package mcptap

import (
	"sort"
	"testing"
	"time"
)

var testTime = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func TestNewIDSortsInCreationOrder(t *testing.T) {
	var ids []string
	for i := 0; i < 1000; i++ {
		ids = append(ids, NewID(testTime.Add(time.Duration(i/10)*time.Microsecond)))
	}
	sorted := append([]string(nil), ids...)
	sort.Strings(sorted)
	for i := range ids {
		if ids[i] != sorted[i] {
			t.Fatalf("id %d (%s) out of order", i, ids[i])
		}
	}
}

func TestExchangeURL(t *testing.T) {
	cases := []struct {
		ex   Exchange
		want string
	}{
		{Exchange{Scheme: "https", Host: "x.ngrok.app", Target: "/mcp?a=%zz"}, "https://x.ngrok.app/mcp?a=%zz"},
		{Exchange{Host: "127.0.0.1:8780", Target: "/"}, "http://127.0.0.1:8780/"},
		{Exchange{Host: "ignored", Target: "https://as.example/authorize?state=x"}, "https://as.example/authorize?state=x"},
	}
	for _, c := range cases {
		if got := c.ex.URL(); got != c.want {
			t.Errorf("URL() = %q, want %q", got, c.want)
		}
	}
}
