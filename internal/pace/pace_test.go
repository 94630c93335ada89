package pace

import (
	"testing"
	"time"
)

func TestLeft(t *testing.T) {
	for _, c := range []struct {
		done, total int64
		elapsed     time.Duration
		want        time.Duration
		ok          bool
	}{
		{50, 100, 10 * time.Second, 10 * time.Second, true},
		{25, 100, 3 * time.Second, 9 * time.Second, true},
		{99, 100, time.Second, time.Second, true}, // under a second: a second
		{1, 100, time.Minute, 0, false},           // under 2%: no pace yet
		{50, 100, time.Second / 4, 0, false},      // under half a second
		{100, 100, time.Minute, 0, false},         // nothing left
		{0, 100, time.Minute, 0, false},
		{10, 0, time.Minute, 0, false}, // total unknown
	} {
		got, ok := Left(c.done, c.total, c.elapsed)
		if got != c.want || ok != c.ok {
			t.Errorf("Left(%d, %d, %v) = %v, %v; want %v, %v", c.done, c.total, c.elapsed, got, ok, c.want, c.ok)
		}
	}
}
