package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// --version prints the module version, and the VCS revision the binary was
// built from when the toolchain stamped one (a build in a git checkout).
func TestVersion(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "mcptap")
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	line := strings.TrimSpace(string(out))
	if !strings.HasPrefix(line, "mcptap (devel) ") && !strings.HasPrefix(line, "mcptap v") {
		t.Fatalf("--version printed %q, want the module version", line)
	}
	rev, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Logf("not a git checkout (%v): no revision to expect", err)
		return
	}
	if want := "rev " + strings.TrimSpace(string(rev))[:12]; !strings.Contains(line, want) {
		t.Errorf("--version printed %q, want %q", line, want)
	}
}
