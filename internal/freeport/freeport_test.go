package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestPortIsFreeAndOutsideTheEphemeralRange: each port is below Linux's
// ephemeral range, free to listen on, and never handed out twice.
func TestPortIsFreeAndOutsideTheEphemeralRange(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		p := Port(t)
		if p < lo || p >= hi || p >= 32768 || seen[p] {
			t.Fatalf("port %d: outside [%d, %d) or handed out twice", p, lo, hi)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		ln.Close()
	}
}
