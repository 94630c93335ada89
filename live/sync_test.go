package live

import (
	"runtime"
	"testing"
)

// TestReserveSyncP: the proxy runs with one P more than the default, for the
// recorder's fsync, unless the user set GOMAXPROCS; restore undoes it.
func TestReserveSyncP(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	restore := ReserveSyncP("")
	if got := runtime.GOMAXPROCS(0); got != before+1 {
		t.Errorf("GOMAXPROCS %d while recording, want %d", got, before+1)
	}
	restore()
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Errorf("GOMAXPROCS %d after restore, want %d", got, before)
	}
	ReserveSyncP("4")()
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Errorf("with GOMAXPROCS set by the user: %d, want %d untouched", got, before)
	}
}
