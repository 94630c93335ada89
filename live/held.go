package live

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// HeldWriter passes log output to its output, except while held: a live view owns
// the terminal then (a warning printed over the screen would garble it), so
// what is written is kept, up to 1 MiB, and written out by Release.
type HeldWriter struct {
	mu   sync.Mutex
	w    io.Writer
	held bool
	buf  bytes.Buffer
	lost int
}

// SetOutput sets where the writer writes.
func (h *HeldWriter) SetOutput(w io.Writer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.w = w
}

// maxHeld bounds the memory a flood of warnings can take while held.
const maxHeld = 1 << 20

// Write writes p to the output, or keeps it while held.
func (h *HeldWriter) Write(p []byte) (int, error) {
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

// Hold keeps what is written from now on until Release.
func (h *HeldWriter) Hold() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held = true
}

// Release writes what was held, and how many lines did not fit.
func (h *HeldWriter) Release() {
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
