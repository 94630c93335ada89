// Package report turns a recorded session into what a person reads: a verdict
// per OAuth flow, the hop chain with its timing, and the findings with their
// evidence and fixes, as text, Markdown or JSON (the shape of spec/CLI.md).
//
// Caveats: redaction is on by default; every string that reaches the output
// passes through the recorder's Redactor after it has learned every exchange,
// so a secret that appears unlabelled somewhere is still hidden, and equal
// values keep equal hashes within one report. Without a fixed Key the hashes
// differ between runs.
package report
