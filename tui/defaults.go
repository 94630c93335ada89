package tui

import (
	"time"

	"github.com/mcptap/mcptap/oauth"
)

func defaultDecode(v string) []oauth.Layer { return oauth.Decode(v) }

// defaultAnalysis is a fresh tracker. With a loader (forget) the model keeps
// rows only, and so the tracker forgets what can no longer matter: a flow's
// MCP calls past the first few are counted, not kept (Options.Forget).
func defaultAnalysis(timeout time.Duration, forget bool) Analysis {
	return oauth.NewTracker(oauth.Options{TokenTimeout: timeout, Forget: forget})
}
