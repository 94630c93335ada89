// Package tui is the terminal user interface of mcptap: a Bubble Tea view over
// the Flows, Findings and Exchanges that the OAuth analysis produced.
//
// It holds no business logic: flows, verdicts and findings come from an
// Analysis (the oauth.Tracker in production); this package only arranges,
// filters and renders them. It is the only package that imports Bubble Tea.
//
// Caveats: live exchanges reach the model in batches (every 75 ms), never one
// redraw per exchange; only the visible rows of a list are rendered, so a
// session of 100,000 exchanges stays responsive, but filtering walks every row
// once when the filter changes. Nothing may write to stdout or stderr while a
// program runs: callers must point their loggers elsewhere.
package tui
