package proxy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLoadOrCreateCA_CreatesOnceThenLoads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home", "mcptap") // parent dirs do not exist yet

	if _, err := LoadCA(dir); !errors.Is(err, ErrNoCA) {
		t.Fatalf("LoadCA on empty dir: err = %v, want ErrNoCA", err)
	}
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Created {
		t.Error("first call: Created = false")
	}

	// Root properties the browser and goproxy rely on.
	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("basic constraints: IsCA=%v valid=%v maxPathLen=%d zero=%v", c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 || c.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		t.Errorf("key usage = %b", c.KeyUsage)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key = %T, want ECDSA P-256", c.PublicKey)
	}
	host, _ := os.Hostname()
	today := time.Now().UTC().Format(time.DateOnly)
	if !strings.Contains(c.Subject.CommonName, "mcptap") || !strings.Contains(c.Subject.CommonName, host) || !strings.Contains(c.Subject.CommonName, today) {
		t.Errorf("CN %q lacks tool, host %q or date %s", c.Subject.CommonName, host, today)
	}
	if life := c.NotAfter.Sub(c.NotBefore); life < 365*24*time.Hour || life > 10*366*24*time.Hour {
		t.Errorf("validity %v outside 1..10 years", life)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if ca.TLS.Leaf == nil || len(ca.TLS.Certificate) != 1 || ca.TLS.PrivateKey == nil {
		t.Errorf("tls pair incomplete: leaf=%v chain=%d key=%T", ca.TLS.Leaf != nil, len(ca.TLS.Certificate), ca.TLS.PrivateKey)
	}

	// Permissions: dir 0700, key 0600 (the cert is public, but 0600 is fine too).
	if runtime.GOOS != "windows" {
		for path, want := range map[string]os.FileMode{dir: 0o700, ca.KeyPath: 0o600} {
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.Mode().Perm(); got != want {
				t.Errorf("%s mode = %04o, want %04o", path, got, want)
			}
		}
	}
	if ca.CertPath != filepath.Join(dir, "ca.pem") || ca.KeyPath != filepath.Join(dir, "ca-key.pem") {
		t.Errorf("paths = %s, %s", ca.CertPath, ca.KeyPath)
	}
	// No temporary files left behind.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("dir holds %v, want just ca.pem and ca-key.pem", names)
	}

	// Second call loads the same CA.
	again, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.Created {
		t.Error("second call: Created = true")
	}
	if !bytes.Equal(again.Cert.Raw, ca.Cert.Raw) {
		t.Error("second call returned a different certificate")
	}
}

func TestCA_SPKIHash(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(ca.Cert.RawSubjectPublicKeyInfo)
	want := base64.StdEncoding.EncodeToString(sum[:])
	if got := ca.SPKIHash(); got != want || len(got) != 44 {
		t.Errorf("SPKIHash = %q, want %q", got, want)
	}
	if fp := ca.Fingerprint(); len(fp) != 32*3-1 {
		t.Errorf("Fingerprint = %q", fp)
	}
}

func TestLoadOrCreateCA_DistinctInstalls(t *testing.T) {
	a, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if a.SPKIHash() == b.SPKIHash() || a.Cert.Subject.CommonName == b.Cert.Subject.CommonName {
		t.Errorf("two installs share key or CN: %q", a.Cert.Subject.CommonName)
	}
}

// Several processes (here goroutines) starting at once must agree on one CA.
func TestLoadOrCreateCA_Concurrent(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	var wg sync.WaitGroup
	got := make([]*CA, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { got[i], errs[i] = LoadOrCreateCA(dir) })
	}
	wg.Wait()
	created := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if got[i].Created {
			created++
		}
		if !bytes.Equal(got[i].Cert.Raw, got[0].Cert.Raw) {
			t.Errorf("call %d got a different CA", i)
		}
	}
	if created != 1 {
		t.Errorf("%d calls report creating the CA, want 1", created)
	}
}

func TestLoadCA_Refuses(t *testing.T) {
	t.Run("key readable by others", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("no unix permissions on windows")
		}
		dir := t.TempDir()
		ca, err := LoadOrCreateCA(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(ca.KeyPath, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = LoadOrCreateCA(dir)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("err = %v, want a chmod hint", err)
		}
	})
	t.Run("certificate without key", func(t *testing.T) {
		dir := t.TempDir()
		ca, err := LoadOrCreateCA(dir)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(ca.KeyPath)
		_, err = LoadOrCreateCA(dir)
		if err == nil || !strings.Contains(err.Error(), "missing") {
			t.Errorf("err = %v, want 'key missing'", err)
		}
	})
	t.Run("mismatched pair", func(t *testing.T) {
		a, b := t.TempDir(), t.TempDir()
		caA, err := LoadOrCreateCA(a)
		if err != nil {
			t.Fatal(err)
		}
		caB, err := LoadOrCreateCA(b)
		if err != nil {
			t.Fatal(err)
		}
		key, _ := os.ReadFile(caB.KeyPath)
		if err := os.WriteFile(caA.KeyPath, key, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadCA(a); err == nil {
			t.Error("loaded a CA whose key belongs to another certificate")
		}
	})
}
