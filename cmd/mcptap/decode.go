package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcptap/mcptap/oauth"
	"github.com/mcptap/mcptap/report"
)

func newDecodeCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "decode VALUE",
		Short: "Show what is inside a state, JWT, base64 or percent-encoded value",
		Long: `Decode a value layer by layer: percent-encoding (once and twice), known state
prefixes (oauth_s_, openai_platform_oauth_relay__), base64 and base64url with or
without padding, JSON (recursing into string members) and JWTs (header, claims
and expiry, without verifying the signature). A URL is split into its query
parameters, each decoded. VALUE "-" reads the value from standard input.`,
		Example: `  mcptap decode eyJjc3JmIjoiZDA2Mzg3Y2YiLCJzIjoib2F1dGhfc182OWRhNmQzMyJ9
  mcptap decode 'https://chatgpt.com/connector/oauth/abc?code=x&state=eyJ...'
  pbpaste | mcptap decode -`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := args[0]
			if v == "-" {
				b, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return usageErr(fmt.Errorf("read standard input: %w", err))
				}
				v = strings.TrimSpace(string(b))
			}
			if v == "" {
				return usageErr(fmt.Errorf("nothing to decode"))
			}
			parts := splitParams(v)
			out := cmd.OutOrStdout()
			if asJSON {
				res := map[string]any{}
				for _, p := range parts {
					res[p.name] = oauth.Decode(p.value)
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				return enc.Encode(res)
			}
			// What is decoded is whatever someone put in the value: control
			// characters are shown as escapes, never sent to the terminal.
			var buf bytes.Buffer
			for i, p := range parts {
				if i > 0 {
					fmt.Fprintln(&buf)
				}
				if p.name != "value" {
					fmt.Fprintf(&buf, "%s:\n", p.name)
				}
				writeLayers(&buf, p.value, time.Now())
			}
			_, err := io.WriteString(out, report.Printable(buf.String()))
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the layers as JSON")
	return cmd
}

type param struct{ name, value string }

// splitParams turns a URL or a query string into its parameters; anything
// else is one value.
func splitParams(v string) []param {
	_, rawQ, hasQ := strings.Cut(v, "?")
	if !hasQ && (strings.Contains(v, "://") || !strings.Contains(v, "=") || !strings.Contains(v, "&")) {
		return []param{{"value", v}}
	}
	if !hasQ {
		rawQ = v
	}
	var out []param
	for _, p := range oauth.ParseQuery(rawQ) {
		out = append(out, param{p.Key, p.RawValue})
	}
	if len(out) == 0 {
		return []param{{"value", v}}
	}
	return out
}

func writeLayers(w io.Writer, v string, now time.Time) {
	layers := oauth.Decode(v)
	defer func() {
		if len(layers) == 1 {
			fmt.Fprintln(w, "  (no encoding recognised: an opaque value)")
		}
	}()
	for _, l := range layers {
		indent := strings.Repeat("  ", l.Depth)
		label := l.Kind
		if l.Path != "" {
			label = l.Path + " " + l.Kind
		}
		switch {
		case l.JSON != nil:
			b, _ := json.MarshalIndent(l.JSON, indent+"  ", "  ")
			fmt.Fprintf(w, "%s%s:\n%s  %s\n", indent, label, indent, b)
		default:
			fmt.Fprintf(w, "%s%s: %s\n", indent, label, l.Text)
		}
		if l.Note != "" {
			fmt.Fprintf(w, "%s  (%s)\n", indent, l.Note)
		}
		if l.Kind == "jwt" {
			if e := oauth.DecodeJWT(l.Text).Expiry(now); e != "" {
				fmt.Fprintf(w, "%s  %s\n", indent, e)
			}
		}
	}
}
