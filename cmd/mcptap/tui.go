package main

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/live"
	"github.com/mcptap/mcptap/tui"
)

// tuiAvailable tells proxy that the live view is built in.
const tuiAvailable = true

// runTUI shows the live view over sub (the TUI's own subscription, made before
// the capture started) and returns when the user quits or ctx ends. The TUI
// runs its own oauth.Tracker with tokenTimeout; label, if set, names the
// flows (the demo's scenarios).
func runTUI(ctx context.Context, c *live.Capture, sub *mcptap.Subscription, tokenTimeout time.Duration, label func(mcptap.Exchange) string) error {
	viewLog.Hold()
	defer viewLog.Release()
	sess := c.Session()
	return tui.RunLive(ctx, tui.LiveOptions{
		Options: tui.Options{
			Session:      sess,
			Listen:       c.Addrs(),
			Upstream:     upstreams(sess),
			TokenTimeout: tokenTimeout,
			Dropped:      c.Dropped,
			Label:        label,
			// The view keeps rows; headers and bodies are read from the
			// recording when an exchange is opened.
			Load: c.Load,
		},
		Sub: sub,
	})
}

// upstreams reads the upstream URLs from the session's "routes" setting
// ("LISTEN=URL LISTEN=URL").
func upstreams(sess mcptap.Session) []string {
	var ups []string
	for _, r := range strings.Fields(sess.Settings["routes"]) {
		if _, u, ok := strings.Cut(r, "="); ok && u != "" {
			ups = append(ups, u)
		}
	}
	return ups
}

// viewLog holds what loggers write while the live view owns the terminal.
var viewLog live.HeldWriter

// tuiSafe returns a writer for logs to w that waits while a live view runs.
func tuiSafe(w io.Writer) io.Writer {
	viewLog.SetOutput(w)
	return &viewLog
}
