package main

import (
	"runtime/debug"
	"strings"
)

// version is the module version and VCS revision the binary was built from,
// as the Go toolchain stamped them: "v1.2.3", or "(devel) rev abc123def456
// 2026-12-04T19:00:00Z (modified)" for a build from a work tree.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (built without module information)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "(modified)"
			}
		}
	}
	parts := []string{v}
	if rev != "" {
		parts = append(parts, "rev "+rev[:min(len(rev), 12)])
	}
	if at != "" {
		parts = append(parts, at)
	}
	if dirty != "" {
		parts = append(parts, dirty)
	}
	return strings.Join(append(parts, bi.GoVersion), " ")
}
