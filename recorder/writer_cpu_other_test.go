//go:build !unix

package recorder

import "time"

// processCPU is unknown here: the benchmarks leave out their CPU metric.
func processCPU() time.Duration { return -1 }
