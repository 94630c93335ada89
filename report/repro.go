package report

import (
	"path/filepath"
	"regexp"
	"strings"
)

// Reproduce is the commands that show this analysis again and check a fix:
// the report itself, the viewer, and the re-send of the recorded client
// requests to the server (`replay --send`). A session recorded by the proxy
// names its upstream; for other sources the upstream is a placeholder.
func (r Report) Reproduce() []string {
	arg := r.Session.ID
	// a HAR file analysed without importing it: its ID is its base name
	if n := r.Session.Name; arg == "" || (strings.HasSuffix(strings.ToLower(n), ".har") && filepath.Base(n) == arg) {
		arg = n
	}
	if arg == "" {
		return nil
	}
	arg = shellQuote(arg)
	up := "URL_OF_YOUR_SERVER"
	if u := firstUpstream(r.settings["routes"]); u != "" {
		up = shellQuote(u)
	}
	return []string{
		"mcptap report " + arg + " --format html > mcptap-report.html",
		"mcptap replay " + arg,
		"mcptap replay " + arg + " --send --upstream " + up,
	}
}

// firstUpstream is the upstream of the first LISTEN=URL route of a session.
func firstUpstream(routes string) string {
	f := strings.Fields(routes)
	if len(f) == 0 {
		return ""
	}
	if _, u, ok := strings.Cut(f[0], "="); ok {
		return u
	}
	return f[0]
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:@%+=,-]+$`)

// shellQuote quotes s for a POSIX shell unless it needs none.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
