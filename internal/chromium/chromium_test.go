package chromium

import (
	"strings"
	"testing"
)

func TestBrowserArgs(t *testing.T) {
	args := Args(Options{ProxyAddr: "127.0.0.1:8781", SPKI: "abc=", ProfileDir: "/tmp/p", URL: "https://x.example/"})
	joined := strings.Join(args, " ")
	for _, want := range []string{
		"--user-data-dir=/tmp/p", "--proxy-server=http://127.0.0.1:8781", "--proxy-bypass-list=<-loopback>",
		"--ignore-certificate-errors-spki-list=abc=", "--no-first-run",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("args lack %q: %v", want, args)
		}
	}
	if args[len(args)-1] != "https://x.example/" {
		t.Errorf("URL not last: %v", args)
	}
	if strings.Contains(joined, "--no-sandbox") || strings.Contains(joined, "--ignore-certificate-errors ") {
		t.Errorf("unsafe flag without asking: %v", args)
	}
}
