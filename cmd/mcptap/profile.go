package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/mcptap/mcptap/internal/safefile"
)

// profileEnv names a file to write a CPU profile of the whole command to
// (for `go tool pprof`); bench/proxybench sets it on the binary it measures.
// memProfileEnv names a file for a heap profile written when the command
// ends: its alloc_space and alloc_objects sample views show what the run
// allocated, its inuse views what was still live at the end.
const (
	profileEnv    = "MCPTAP_CPUPROFILE"
	memProfileEnv = "MCPTAP_MEMPROFILE"
)

// startProfile starts the profiles profileEnv and memProfileEnv ask for and
// returns the function that ends them; without the variables it does nothing.
func startProfile() (stop func(), err error) {
	cpuPath, memPath := os.Getenv(profileEnv), os.Getenv(memProfileEnv)
	stopCPU := func() {}
	if cpuPath != "" {
		f, err := safefile.Create(cpuPath)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", profileEnv, err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Abort()
			return nil, fmt.Errorf("%s: %w", profileEnv, err)
		}
		stopCPU = func() {
			pprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "mcptap: %s: %v\n", profileEnv, err)
			}
		}
	}
	if memPath == "" {
		return stopCPU, nil
	}
	// Fail now, not after the run, if the file cannot be written.
	f, err := safefile.Create(memPath)
	if err != nil {
		stopCPU()
		return nil, fmt.Errorf("%s: %w", memProfileEnv, err)
	}
	return func() {
		stopCPU()
		runtime.GC() // the inuse views then show what the end of the run kept
		err := pprof.Lookup("heap").WriteTo(f, 0)
		if err != nil {
			f.Abort()
		} else {
			err = f.Close()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "mcptap: %s: %v\n", memProfileEnv, err)
		}
	}, nil
}
