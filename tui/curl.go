package tui

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"unicode/utf8"

	tea "charm.land/bubbletea/v2"
	"github.com/mcptap/mcptap"
)

// curlMsg carries a curl command built after the exchange's bodies were loaded.
type curlMsg struct {
	cmd string
	err error
}

// curlSkip are headers curl sets itself or that describe one connection.
var curlSkip = map[string]bool{"Content-Length": true, "Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Transfer-Encoding": true, "Te": true, "Upgrade": true, "Host": true}

// curlCommand is ex as a curl command that sends the same request: method,
// URL, headers (not those curl sets itself or that belong to one connection)
// and body, each single-quoted for a POSIX shell. It is copied, not run, and
// carries the recorded secrets as they were: the user's own traffic.
func curlCommand(ex mcptap.Exchange) string {
	var b strings.Builder
	b.WriteString("curl")
	if ex.Method != http.MethodGet || len(ex.ReqBody) > 0 {
		b.WriteString(" -X " + shq(ex.Method))
	}
	b.WriteString(" " + shq(ex.URL()))
	names := make([]string, 0, len(ex.ReqHeader))
	for k := range ex.ReqHeader {
		names = append(names, k)
	}
	sort.Strings(names)
	compressed := false
	for _, k := range names {
		if curlSkip[http.CanonicalHeaderKey(k)] {
			continue
		}
		if http.CanonicalHeaderKey(k) == "Accept-Encoding" {
			compressed = true // curl asks for what it can decode and decodes it
			continue
		}
		for _, v := range ex.ReqHeader[k] {
			b.WriteString(" \\\n  -H " + shq(k+": "+v))
		}
	}
	if compressed {
		b.WriteString(" \\\n  --compressed")
	}
	switch {
	case len(ex.ReqBody) == 0 && ex.ReqSize > 0:
		fmt.Fprintf(&b, "\n# the request body (%d bytes) was not recorded", ex.ReqSize)
	case len(ex.ReqBody) == 0:
	case !utf8.Valid(ex.ReqBody) || strings.ContainsRune(string(ex.ReqBody), 0):
		fmt.Fprintf(&b, "\n# the request body (%d bytes) is binary: not included", len(ex.ReqBody))
	default:
		b.WriteString(" \\\n  --data-binary " + shq(string(ex.ReqBody)))
		if ex.ReqTruncated {
			fmt.Fprintf(&b, "\n# the body above is the first %d of %d bytes: the rest was not recorded", len(ex.ReqBody), ex.ReqSize)
		}
	}
	return b.String()
}

// shq single-quotes s for a POSIX shell.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// copyCurl copies the selected exchange as a curl command, loading its
// bodies first when the model keeps only heads.
func (m *Model) copyCurl() tea.Cmd {
	sel := m.top().selection()
	id := sel.subject
	if id == "" {
		id = sel.exchange
	}
	ex, ok := m.exchange(id)
	if !ok {
		m.msg = "no exchange selected: c copies an exchange as curl"
		return nil
	}
	if es, isEx := m.top().(*exchangeScreen); isEx && es.full != nil {
		return m.copyText(curlCommand(*es.full), "curl command")
	}
	if m.opts.Load != nil && ex.Complete {
		load := m.opts.Load
		return func() tea.Msg {
			full, err := load(id)
			if err != nil {
				return curlMsg{err: err}
			}
			return curlMsg{cmd: curlCommand(full)}
		}
	}
	return m.copyText(curlCommand(ex), "curl command")
}
