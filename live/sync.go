package live

import "runtime"

// ReserveSyncP gives the recording process one scheduler P more than it has
// CPUs, unless the user set GOMAXPROCS (env). The recorder's fdatasync, a
// millisecond or more, keeps its P for the whole call: sysmon, which hands
// such a P to other goroutines, backs off to 10ms ticks when it has had
// nothing to retake (golang/go#18236), so on a 2-core machine each fsync
// halves the CPU the proxy can use until it returns; the spare P lets the
// proxy run meanwhile, at the price of some spinning by idle Ps
// (bench/NOTES.md has the measurements). It returns the function that
// restores the previous setting. (Setting GOMAXPROCS
// stops the runtime from following later changes of a container's CPU
// limit, which a recording session does not need.)
func ReserveSyncP(env string) (restore func()) {
	if env != "" {
		return func() {}
	}
	prev := runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(prev + 1)
	return func() { runtime.GOMAXPROCS(prev) }
}
