// Package freeport hands out a loopback TCP port for a server that must
// know its address before it starts (an issuer URL, a config file, a peer
// started as a separate process), or for an address that must refuse (the
// lab's client that is gone).
//
// A port from listen("127.0.0.1:0") comes from the kernel's ephemeral range
// (32768–60999 on Linux), which is also where every outgoing connection
// takes its local port: between the test's close and the server's listen,
// any connect() on the machine can take it ("address already in use"
// under a loaded parallel test run). These ports come from below that
// range, where only listeners go, are picked at random per process (test
// binaries of several packages run at once) and are checked free.
package freeport

import (
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
)

const lo, hi = 20000, 32000 // below the ephemeral ranges of Linux and macOS (49152–65535)

var (
	mu   sync.Mutex
	used = map[int]bool{}
)

// TB is what Port needs of a *testing.T (the package is linked into the
// binary through the lab, which must not pull in package testing).
type TB interface {
	Helper()
	Fatal(args ...any)
}

// Port returns a loopback TCP port nothing listened on a moment ago and
// that no outgoing connection will take.
func Port(t TB) int {
	t.Helper()
	p, err := Find()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Find is Port outside a test: the lab's address of a client that is gone.
func Find() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	for range 1000 {
		p := lo + rand.IntN(hi-lo)
		if used[p] {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		ln.Close()
		used[p] = true
		return p, nil
	}
	return 0, errors.New("freeport: no free port between 20000 and 32000")
}

// Addr is Port as 127.0.0.1:PORT.
func Addr(t TB) string { return "127.0.0.1:" + strconv.Itoa(Port(t)) }
