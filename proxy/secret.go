package proxy

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// NewSecret is a fresh per-run secret for the browser proxy (32 random bytes).
func NewSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("proxy: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// SecretFile is where a run's browser proxy at addr keeps its secret for
// `mcptap browser`: in the data directory (0700), one file per address.
func SecretFile(dir, addr string) string {
	return filepath.Join(dir, "browser-proxy-"+strings.NewReplacer(":", "_", "[", "", "]", "").Replace(addr)+".secret")
}

// WriteSecret writes the secret of the browser proxy at addr, mode 0600.
func WriteSecret(dir, addr, secret string) (string, error) {
	p := SecretFile(dir, addr)
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("browser proxy credentials: %w", err)
	}
	if err := os.Chmod(p, 0o600); err != nil { // an older file kept its mode
		return "", fmt.Errorf("browser proxy credentials: %w", err)
	}
	return p, nil
}

// ReadSecret reads the secret of the browser proxy at addr.
func ReadSecret(dir, addr string) (string, error) {
	p := SecretFile(dir, addr)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no credentials for a browser proxy at %s in %s: start one with mcptap proxy --browser-proxy %s (with the same MCPTAP_HOME): %w", addr, dir, addr, err)
	}
	if err != nil {
		return "", fmt.Errorf("browser proxy credentials: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
