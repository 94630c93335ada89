package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcptap/mcptap/proxy"
	"github.com/mcptap/mcptap/recorder"
)

// loadCA loads the browser proxy's CA from $MCPTAP_HOME, creating it on first use.
func loadCA() (*proxy.CA, error) {
	home, err := recorder.DefaultHome()
	if err != nil {
		return nil, usageErr(err)
	}
	ca, err := proxy.LoadOrCreateCA(home)
	if err != nil {
		return nil, runtimeErr(fmt.Errorf("browser proxy CA: %w", err))
	}
	return ca, nil
}

func newCACmd() *cobra.Command {
	var pemOnly bool
	cmd := &cobra.Command{
		Use:   "ca [--pem]",
		Short: "Show where the browser proxy's CA is and how to trust it",
		Long: `ca prints where mcptap's certificate authority lives and how to trust it.

The browser proxy (mcptap proxy --browser-proxy, mcptap browser) decrypts HTTPS
by presenting certificates signed by this CA. It is created on first use for
this installation only ($MCPTAP_HOME/ca.pem, key ca-key.pem, mode 0600); its
key never leaves this machine. The simplest way to use it is mcptap browser,
which trusts it in a throwaway Chromium profile and nowhere else.`,
		Example: `  mcptap ca
  mcptap ca --pem > mcptap-ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ca, err := loadCA()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if pemOnly {
				_, err := out.Write(ca.CertPEM)
				return err
			}
			state := "existing"
			if ca.Created {
				state = "created now"
			}
			fmt.Fprintf(out, "mcptap browser-proxy CA (%s)\n", state)
			fmt.Fprintf(out, "  certificate  %s\n", ca.CertPath)
			fmt.Fprintf(out, "  private key  %s (mode 0600; never share it)\n", ca.KeyPath)
			fmt.Fprintf(out, "  subject      %s\n", ca.Cert.Subject.CommonName)
			fmt.Fprintf(out, "  valid        %s to %s\n", ca.Cert.NotBefore.UTC().Format(time.DateOnly), ca.Cert.NotAfter.UTC().Format(time.DateOnly))
			fmt.Fprintf(out, "  SHA-256      %s\n", ca.Fingerprint())
			fmt.Fprintf(out, "  SPKI SHA-256 %s\n", ca.SPKIHash())
			fmt.Fprintf(out, `
No trust change needed: mcptap browser starts Chromium/Chrome with a fresh
profile that trusts this CA for that profile only:
  mcptap proxy --upstream http://localhost:3000 --browser-proxy %[2]s
  mcptap browser --url https://chatgpt.com/

Or use any Chromium yourself (the flag works only together with --user-data-dir):
  chromium --user-data-dir="$(mktemp -d)" --proxy-server=http://%[2]s \
    --proxy-bypass-list='<-loopback>' --ignore-certificate-errors-spki-list=%[3]s

To trust it more widely (every HTTPS site those programs visit through the
browser proxy can then be read by mcptap; remove it when you are done):
  Firefox        Settings > Privacy & Security > Certificates > View Certificates >
                 Authorities > Import %[1]s, tick "Trust this CA to identify websites";
                 then set its HTTP proxy to %[2]s, "Also use this proxy for HTTPS".
  Chrome/Linux   certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n mcptap -i %[1]s
                 (remove: certutil -d sql:$HOME/.pki/nssdb -D -n mcptap)
  macOS          security add-trusted-cert -r trustRoot -k ~/Library/Keychains/login.keychain-db %[1]s
  Debian/Ubuntu  sudo cp %[1]s /usr/local/share/ca-certificates/mcptap.crt && sudo update-ca-certificates
  Node.js        NODE_EXTRA_CA_CERTS=%[1]s
While the browser proxy runs it also serves the certificate at http://%[2]s/ca.pem.
`, ca.CertPath, proxy.DefaultForwardListen, ca.SPKIHash())
			return nil
		},
	}
	cmd.Flags().BoolVar(&pemOnly, "pem", false, "print only the CA certificate (PEM)")
	return cmd
}
