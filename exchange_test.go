package mcptap

import (
	"go/build"
	"sort"
	"strings"
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

// The domain and the analysis stay free of storage, UI and proxy libraries
// (ARCHITECTURE.md: one package per dependency).
func TestLayering(t *testing.T) {
	forbidden := []string{"go.etcd.io/bbolt", "charm.land/", "github.com/charmbracelet/", "github.com/elazarl/goproxy"}
	for _, dir := range []string{".", "oauth"} {
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("import %s: %v", dir, err)
		}
		for _, imp := range append(pkg.Imports, pkg.TestImports...) {
			for _, f := range forbidden {
				if strings.HasPrefix(imp, f) {
					t.Errorf("package %s imports %s", dir, imp)
				}
			}
		}
	}
}
