package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/live"
	"github.com/mcptap/mcptap/tui"
)

// tuiAvailable tells proxy that the live view is built in.
const tuiAvailable = true

// runTUI shows the live view over sub (the TUI's own subscription, made before
// the capture started) and returns when the user quits or ctx ends. The TUI
// runs its own oauth.Tracker with tokenTimeout.
func runTUI(ctx context.Context, c *live.Capture, sub *mcptap.Subscription, tokenTimeout time.Duration) error {
	viewLog.hold()
	defer viewLog.release()
	sess := c.Session()
	return tui.RunLive(ctx, tui.LiveOptions{
		Options: tui.Options{
			Session:      sess,
			Listen:       c.Addrs(),
			Upstream:     upstreams(sess),
			TokenTimeout: tokenTimeout,
			Dropped:      c.Dropped,
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

// viewLog holds what loggers write while the live view owns the terminal
// (a warning printed over the screen would garble it) and writes it out
// when the view ends.
var viewLog heldWriter

// tuiSafe returns a writer for logs to w that waits while a live view runs.
func tuiSafe(w io.Writer) io.Writer {
	viewLog.mu.Lock()
	defer viewLog.mu.Unlock()
	viewLog.w = w
	return &viewLog
}

type heldWriter struct {
	mu   sync.Mutex
	w    io.Writer
	held bool
	buf  bytes.Buffer
	lost int
}

// maxHeld bounds the memory a flood of warnings can take while held.
const maxHeld = 1 << 20

func (h *heldWriter) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.held {
		return h.w.Write(p)
	}
	if h.buf.Len()+len(p) > maxHeld {
		h.lost++
		return len(p), nil
	}
	return h.buf.Write(p)
}

func (h *heldWriter) hold() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held = true
}

// release writes what was held, and how many lines did not fit.
func (h *heldWriter) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held = false
	if h.w == nil {
		h.buf.Reset()
		return
	}
	_, _ = h.w.Write(h.buf.Bytes())
	h.buf.Reset()
	if h.lost > 0 {
		fmt.Fprintf(h.w, "mcptap: %d more log lines were dropped while the live view ran\n", h.lost)
		h.lost = 0
	}
}
