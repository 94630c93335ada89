package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mcptap/mcptap/internal/chromium"
	"github.com/mcptap/mcptap/proxy"
	"github.com/mcptap/mcptap/recorder"
)

type browserFlags struct {
	url         string
	proxyAddr   string
	browser     string
	keepProfile bool
}

func newBrowserCmd() *cobra.Command {
	var f browserFlags
	cmd := &cobra.Command{
		Use:   "browser [--url URL] [--proxy ADDR]",
		Short: "Start Chromium/Chrome through the browser proxy, trusting mcptap's CA in a throwaway profile",
		Long: `browser starts Chromium or Chrome with a fresh, temporary profile that sends all
its traffic (loopback included) through the running browser proxy and accepts
certificates from mcptap's CA in that profile only. Nothing changes in your
system's trust store or your usual browser profile; the profile is deleted when
the browser closes.

Start the browser proxy first, as part of a recording:
  mcptap proxy --upstream http://localhost:3000 --browser-proxy 127.0.0.1:8781

The browser is the first of chromium, chromium-browser, google-chrome,
google-chrome-stable, chrome on PATH, or --browser, or $MCPTAP_BROWSER.`,
		Example: `  mcptap browser --url https://chatgpt.com/
  mcptap browser --proxy 127.0.0.1:9999 --browser /usr/bin/google-chrome`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBrowser(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.url, "url", "", "page to open (https:// is assumed when no scheme is given)")
	fl.StringVar(&f.proxyAddr, "proxy", proxy.DefaultForwardListen, "address of the running browser proxy (mcptap proxy --browser-proxy)")
	fl.StringVar(&f.browser, "browser", "", "browser executable (default: search PATH; or $MCPTAP_BROWSER)")
	fl.BoolVar(&f.keepProfile, "keep-profile", false, "keep the temporary profile directory when the browser exits")
	return cmd
}

func runBrowser(cmd *cobra.Command, f browserFlags) error {
	host, _, err := net.SplitHostPort(f.proxyAddr)
	if err != nil {
		return usageErr(fmt.Errorf("--proxy %q: %w", f.proxyAddr, err))
	}
	if !proxy.IsLoopback(host) {
		return usageErr(fmt.Errorf("--proxy %q: the browser proxy only listens on loopback (e.g. 127.0.0.1:8781)", f.proxyAddr))
	}
	target := f.url
	if target != "" && !strings.Contains(target, "://") && !hasAnyPrefix(target, "about:", "chrome:", "data:") {
		target = "https://" + target
	}

	ca, err := loadCA()
	if err != nil {
		return err
	}
	home, err := recorder.DefaultHome()
	if err != nil {
		return usageErr(err)
	}
	secret, err := proxy.ReadSecret(home, f.proxyAddr)
	if err != nil {
		if cerr := chromium.CheckProxy(f.proxyAddr, "", ca.Cert.Raw, ca.CertPath); cerr != nil && strings.Contains(cerr.Error(), "no browser proxy at") {
			return runtimeErr(cerr) // nothing listens there: say how to start one
		}
		return runtimeErr(err)
	}
	if err := chromium.CheckProxy(f.proxyAddr, proxy.ProxyAuthorization(secret), ca.Cert.Raw, ca.CertPath); err != nil {
		return runtimeErr(err)
	}

	bin := f.browser
	if bin == "" {
		if bin, err = chromium.Find(); err != nil {
			return runtimeErr(err)
		}
	} else if bin, err = exec.LookPath(bin); err != nil {
		return usageErr(fmt.Errorf("--browser: %w", err))
	}

	profile, err := os.MkdirTemp("", "mcptap-browser-")
	if err != nil {
		return runtimeErr(fmt.Errorf("create a temporary browser profile: %w", err))
	}
	if !f.keepProfile {
		defer os.RemoveAll(profile)
	}
	stderr := cmd.ErrOrStderr()
	asRoot := os.Geteuid() == 0
	ext := filepath.Join(profile, "mcptap-proxy-credentials")
	// The extension opens the page once it can answer the proxy's 407.
	if err := chromium.WriteAuthExtension(ext, proxy.ProxyUser, secret, target); err != nil {
		return runtimeErr(fmt.Errorf("browser proxy credentials: %w", err))
	}
	args := chromium.Args(chromium.Options{
		ProxyAddr:  f.proxyAddr,
		SPKI:       ca.SPKIHash(),
		ProfileDir: profile,
		URL:        "about:blank",
		NoSandbox:  asRoot, // Chromium refuses to start as root with its sandbox on
		Extension:  ext,
	})

	// Ctrl-C reaches the browser too (same process group); stay alive until
	// it has exited so the profile is removed.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	br, err := chromium.Start(bin, args)
	if err != nil {
		return runtimeErr(err)
	}
	fmt.Fprintf(stderr, "mcptap: started %s through the browser proxy at %s\n", bin, f.proxyAddr)
	fmt.Fprintf(stderr, "mcptap: temporary profile %s trusts mcptap's CA (SPKI %s) and nothing else changes\n", profile, ca.SPKIHash())
	if asRoot {
		fmt.Fprintln(stderr, "mcptap: running as root, so the browser runs with --no-sandbox")
	}
	fmt.Fprintln(stderr, "mcptap: close the browser window to finish")

	done := make(chan error, 1)
	go func() { done <- br.Wait() }()
	var werr error
	for waiting := true; waiting; {
		select {
		case werr = <-done:
			waiting = false
		case s := <-sigs:
			br.Signal(s)
		}
	}
	if werr != nil {
		return runtimeErr(werr)
	}
	if f.keepProfile {
		fmt.Fprintf(stderr, "mcptap: kept the profile at %s\n", profile)
	}
	return nil
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// browserProxyCA checks a --browser-proxy address (loopback only) and loads
// the CA it will sign with; "" means no browser proxy and no CA.
func browserProxyCA(listen string) (*proxy.CA, error) {
	if listen == "" {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, usageErr(fmt.Errorf("--browser-proxy %q: want host:port, e.g. 127.0.0.1:8781", listen))
	}
	if host != "" && !proxy.IsLoopback(host) {
		return nil, usageErr(fmt.Errorf("--browser-proxy %q: the browser proxy serves this machine only; use a loopback address such as 127.0.0.1:8781", listen))
	}
	return loadCA()
}
