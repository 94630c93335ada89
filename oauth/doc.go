// Package oauth rebuilds OAuth authorization attempts from recorded HTTP
// exchanges, hop by hop, and judges them with the rules of spec/FINDINGS.md.
//
// Caveats: the package is pure. It does no I/O, keeps no clock of its own and
// starts no goroutines: time comes from exchange timestamps and from Tick, so
// a replay gives the same findings as the live run. A Tracker is not safe for
// concurrent use; callers serialise Observe, Tick and the readers. Values such
// as state, code and redirect_uri are compared raw first and decoded second.
package oauth
