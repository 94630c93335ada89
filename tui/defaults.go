package tui

import (
	"time"

	"github.com/mcptap/mcptap/oauth"
)

func defaultDecode(v string) []oauth.Layer { return oauth.Decode(v) }

func defaultAnalysis(timeout time.Duration) Analysis {
	return oauth.NewTracker(oauth.Options{TokenTimeout: timeout})
}
