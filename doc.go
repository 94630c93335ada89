// Package mcptap holds the domain of the mcptap recorder: the values that every
// stage shares (Exchange, Session, Flow, Finding) and the Broker that carries
// exchanges from the proxy to its consumers.
//
// Caveats: this package must not import bbolt, Bubble Tea or goproxy (a test
// enforces it). Exchanges are passed by value; a consumer that keeps one must not
// mutate the shared header maps or body slices.
package mcptap
