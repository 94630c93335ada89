package live

import (
	"fmt"
	"strings"
	"testing"
)

// Logs written while the live view runs must not reach the terminal until
// it ends (they would garble the screen), and then must not be lost.
func TestLogsHeldWhileLiveViewRuns(t *testing.T) {
	var out strings.Builder
	var h HeldWriter
	h.SetOutput(&out)
	fmt.Fprintln(&h, "before")
	h.Hold()
	fmt.Fprintln(&h, "during")
	if out.String() != "before\n" {
		t.Fatalf("written while held: %q", out.String())
	}
	h.Write(make([]byte, maxHeld)) // does not fit: counted, not kept
	h.Release()
	fmt.Fprintln(&h, "after")
	want := "before\nduring\nmcptap: 1 more log lines were dropped while the live view ran\nafter\n"
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}
