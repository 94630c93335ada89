// Package pace estimates the time a long read or analysis has left, for the
// CLI's progress line and the TUI's status line alike.
package pace

import "time"

// Left is the time left for total units at the pace of the first done
// units, which took elapsed, rounded to the second and at least a second.
// ok is false while there is no pace to go by yet (under half a second, or
// under 2% done) and when nothing is left.
func Left(done, total int64, elapsed time.Duration) (left time.Duration, ok bool) {
	if total <= 0 || done <= 0 || done >= total || elapsed < time.Second/2 || done*50 < total {
		return 0, false
	}
	left = time.Duration(float64(elapsed) * float64(total-done) / float64(done)).Round(time.Second)
	return max(left, time.Second), true
}
