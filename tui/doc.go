// Package tui is the terminal user interface of mcptap: a Bubble Tea view over
// the Flows, Findings and Exchanges that the OAuth analysis produced.
//
// It holds no business logic: flows, verdicts and findings come from an
// Analysis (the oauth.Tracker in production); this package only arranges,
// filters and renders them. It is the only package that imports Bubble Tea.
//
// Caveats: in a live program the analysis runs in the goroutine that drains
// the subscription, and the model receives one snapshot per batch (every
// 75 ms), never one redraw per exchange. Re-reading the flows costs time in
// proportion to the session, so it happens only for batches that can change
// them (OAuth hops, findings, MCP calls while a flow is in progress) and at
// most every 2 s otherwise; the UI never waits for it. Only the visible rows
// of a list are rendered; filtering walks every row once when the filter
// changes. Nothing may write to stdout or stderr while a program runs:
// callers must hold their logs until it returns.
package tui
