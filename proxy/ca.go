package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// File names of the browser proxy's CA inside the mcptap home directory.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// caValidity is how long a freshly created root stays valid. Long enough that
// a user who trusted it once is not asked again soon, short enough to end.
const caValidity = 5 * 365 * 24 * time.Hour

// CA is mcptap's per-install root certificate authority. It signs the leaf
// certificates the forward proxy presents to a browser for HTTPS sites.
//
// The private key never leaves the mcptap home directory and is created 0600;
// goproxy's built-in CA (whose key is public) is never used.
type CA struct {
	Cert     *x509.Certificate
	TLS      tls.Certificate // certificate chain and key, Leaf set, for goproxy.TLSConfigFromCA
	CertPEM  []byte
	CertPath string
	KeyPath  string
	Created  bool // true when LoadOrCreateCA generated it in this call
}

// ErrNoCA is returned by LoadCA when the CA has not been created yet.
var ErrNoCA = errors.New("no CA yet")

// LoadOrCreateCA loads the CA from dir (ca.pem and ca-key.pem), creating dir
// (0700) and a new ECDSA P-256 root (key file 0600) when there is none.
// Two processes creating it at the same time end up with the same CA.
func LoadOrCreateCA(dir string) (*CA, error) {
	ca, err := LoadCA(dir)
	if err == nil || !errors.Is(err, ErrNoCA) {
		return ca, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create CA directory %s: %w", dir, err)
	}
	created, err := createCA(dir, time.Now())
	if err != nil {
		return nil, err
	}
	ca, err = LoadCA(dir)
	if err != nil {
		return nil, err
	}
	ca.Created = created
	return ca, nil
}

// LoadCA loads an existing CA from dir. It returns an error wrapping ErrNoCA
// when neither file exists, and a descriptive error when only one does, the
// key is readable by other users, the pair does not match, or the
// certificate is not a usable CA.
func LoadCA(dir string) (*CA, error) {
	certPath := filepath.Join(dir, CACertFile)
	keyPath := filepath.Join(dir, CAKeyFile)

	// The certificate is read before the key: createCA links the key first,
	// so a certificate that exists has its key, and a reader that raced a
	// creator sees either neither file, the key alone (and waits), or both.
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := readKeyFile(keyPath)
	if errors.Is(keyErr, fs.ErrNotExist) && errors.Is(certErr, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", certPath, ErrNoCA)
	}
	if keyErr == nil && errors.Is(certErr, fs.ErrNotExist) {
		// Another process may be between writing the key and the
		// certificate (createCA links the key first). Give it a moment.
		for range 20 {
			time.Sleep(50 * time.Millisecond)
			if certPEM, certErr = os.ReadFile(certPath); certErr == nil {
				break
			}
		}
	}
	if keyErr != nil {
		if errors.Is(keyErr, fs.ErrNotExist) {
			return nil, fmt.Errorf("CA certificate %s exists but its key %s is missing; remove %s to create a new CA", certPath, keyPath, certPath)
		}
		return nil, keyErr
	}
	if certErr != nil {
		if errors.Is(certErr, fs.ErrNotExist) {
			return nil, fmt.Errorf("CA key %s exists but its certificate %s is missing; remove %s to create a new CA", keyPath, certPath, keyPath)
		}
		return nil, fmt.Errorf("read CA certificate: %w", certErr)
	}

	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA %s and %s: %w", certPath, keyPath, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate %s: %w", certPath, err)
	}
	if !leaf.IsCA || leaf.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s is not a CA certificate (IsCA=%v); remove %s and %s to create a new CA", certPath, leaf.IsCA, certPath, keyPath)
	}
	if now := time.Now(); now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("CA certificate %s expired on %s; remove %s and %s to create a new one (browsers that trusted the old one must trust the new one)",
			certPath, leaf.NotAfter.Format(time.DateOnly), certPath, keyPath)
	}
	pair.Leaf = leaf
	return &CA{Cert: leaf, TLS: pair, CertPEM: certPEM, CertPath: certPath, KeyPath: keyPath}, nil
}

// readKeyFile reads the CA key and refuses one other users can read: a
// leaked CA key lets anyone intercept this user's HTTPS traffic.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat CA key %s: %w", path, err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("CA key %s is accessible by other users (mode %04o); run: chmod 600 %s", path, st.Mode().Perm(), path)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	return b, nil
}

// createCA writes a new root into dir. It reports false when another process
// created one first, in which case the caller loads that one.
//
// The key is written to a temporary file and hard-linked into place (link
// fails if the name exists, so exactly one creator wins); the certificate is
// renamed into place after, and LoadCA waits briefly for it.
func createCA(dir string, now time.Time) (bool, error) {
	certPEM, keyPEM, err := newRootPEM(now)
	if err != nil {
		return false, err
	}
	keyTmp, err := writeTemp(dir, ".ca-key-*.pem", keyPEM)
	if err != nil {
		return false, err
	}
	defer os.Remove(keyTmp)
	certTmp, err := writeTemp(dir, ".ca-*.pem", certPEM)
	if err != nil {
		return false, err
	}
	defer os.Remove(certTmp)

	keyPath := filepath.Join(dir, CAKeyFile)
	if err := os.Link(keyTmp, keyPath); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		// Filesystems without hard links: fall back to an exclusive create.
		f, ferr := os.OpenFile(keyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if ferr != nil {
			if errors.Is(ferr, fs.ErrExist) {
				return false, nil
			}
			return false, fmt.Errorf("write CA key %s: %w", keyPath, ferr)
		}
		_, werr := f.Write(keyPEM)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(keyPath)
			return false, fmt.Errorf("write CA key %s: %w", keyPath, werr)
		}
	}
	certPath := filepath.Join(dir, CACertFile)
	if err := os.Rename(certTmp, certPath); err != nil {
		os.Remove(keyPath)
		return false, fmt.Errorf("write CA certificate %s: %w", certPath, err)
	}
	return true, nil
}

func writeTemp(dir, pattern string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, pattern) // created 0600
	if err != nil {
		return "", fmt.Errorf("write CA: %w", err)
	}
	name := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	return name, nil
}

// newRootPEM makes a self-signed ECDSA P-256 root. The common name carries
// the tool, the host, the date and a random tag so that two installs (or a
// re-created CA) are told apart in a trust store's list.
func newRootPEM(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA serial: %w", err)
	}
	tag := make([]byte, 3)
	if _, err := rand.Read(tag); err != nil {
		return nil, nil, fmt.Errorf("generate CA tag: %w", err)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	who := host
	if u := currentUser(); u != "" {
		who = u + "@" + host
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         fmt.Sprintf("mcptap local CA %s %s %s", host, now.UTC().Format(time.DateOnly), hex.EncodeToString(tag)),
			Organization:       []string{"mcptap (local, per-install; not a public CA)"},
			OrganizationalUnit: []string{who},
		},
		NotBefore:             now.Add(-time.Hour), // tolerate a little clock skew
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode CA key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

func currentUser() string {
	for _, k := range []string{"USER", "USERNAME", "LOGNAME"} {
		if v := strings.TrimSpace(os.Getenv(k)); v != "" {
			return v
		}
	}
	return ""
}

// SPKIHash is the base64 (standard alphabet) SHA-256 of the CA's
// SubjectPublicKeyInfo: the value Chromium's
// --ignore-certificate-errors-spki-list accepts, so one throwaway browser
// profile trusts the CA without any change to the system trust store.
func (c *CA) SPKIHash() string {
	sum := sha256.Sum256(c.Cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// Fingerprint is the SHA-256 of the whole certificate, as trust-store UIs
// show it (colon-separated upper-case hex).
func (c *CA) Fingerprint() string {
	sum := sha256.Sum256(c.Cert.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// Pool returns a certificate pool holding only this CA, for Go clients
// (tests, replay) that should trust the MITM proxy.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Cert)
	return p
}
