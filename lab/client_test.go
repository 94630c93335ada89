package lab

import (
	"strings"
	"testing"
)

func TestResourceMetadataParam(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`Bearer resource_metadata="http://h/.well-known/oauth-protected-resource/mcp", scope="a"`, "http://h/.well-known/oauth-protected-resource/mcp"},
		{`Bearer error="invalid_token", resource_metadata="http://h/x"`, "http://h/x"},
		{`Bearer resource_metadata=http://h/x, scope=a`, "http://h/x"},
		{`Bearer resource_metadata="unterminated`, ""},
		{`Bearer realm="x"`, ""},
		{``, ""},
	} {
		if got := resourceMetadataParam(tc.in); got != tc.want {
			t.Errorf("resourceMetadataParam(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzResourceMetadataParam: a challenge from any server must never panic the
// client, and what comes out is a substring of what went in.
func FuzzResourceMetadataParam(f *testing.F) {
	f.Add(`Bearer resource_metadata="http://h/x", scope="a"`)
	f.Add(`Bearer resource_metadata=`)
	f.Add(`resource_metadata="`)
	f.Fuzz(func(t *testing.T, h string) {
		if got := resourceMetadataParam(h); !strings.Contains(h, got) {
			t.Errorf("%q is not part of %q", got, h)
		}
	})
}
