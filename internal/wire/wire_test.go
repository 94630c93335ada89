package wire

import "testing"

// The copy-buffer pool hands back what it was given, without allocating.
func TestCopyBufferPoolReuses(t *testing.T) {
	pool := CopyBuffers()
	if allocs := testing.AllocsPerRun(100, func() { pool.Put(pool.Get()) }); allocs != 0 {
		t.Errorf("%v allocations per Get/Put, want 0", allocs)
	}
	if got := len(pool.Get()); got != 32<<10 {
		t.Errorf("buffer of %d bytes, want 32 KiB", got)
	}
}
