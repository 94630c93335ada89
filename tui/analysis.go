package tui

import (
	"time"

	"github.com/mcptap/mcptap"
)

// Analysis is what the TUI needs from the OAuth analysis. *oauth.Tracker
// satisfies it; tests may pass fixed flows and findings.
type Analysis interface {
	Observe(ex mcptap.Exchange) []mcptap.Finding
	Tick(now time.Time) []mcptap.Finding
	Finish() []mcptap.Finding
	Flows() []mcptap.Flow
	Findings() []mcptap.Finding
	Hop(exchangeID string) (mcptap.HopKind, bool)
}
