// Package oauth rebuilds OAuth authorization attempts from recorded HTTP
// exchanges, hop by hop, and judges them with the rules of spec/FINDINGS.md.
//
// Caveats: the package is pure. It does no I/O, keeps no clock of its own and
// starts no goroutines: time comes from exchange timestamps and from Tick, so
// a replay gives the same findings as the live run. A Tracker is not safe for
// concurrent use; callers serialise Observe, Tick and the readers. What the
// readers return is the caller's to keep and change, except the elements of
// Flow.Hops, which are shared read-only with the tracker's kept flow values
// (the tracker never writes them again, so other goroutines may read them).
// Values such as state, code and redirect_uri are compared raw first and
// decoded second.
//
// A flow's verdict is its earliest error in hop order, ties broken by the
// order of Rules (causes before symptoms). Two refinements keep the verdict on
// the root cause: an error the chain got past (an authorization server that
// accepted a request without PKCE) yields to any other error, and a symptom
// whose finding names an earlier cause (a code never redeemed because the
// state was stale) yields to that cause even when the cause is a warning.
//
// Body rules wait for the complete copy of an exchange (Complete, a HAR
// import, a transport error, or Finish). Rules that judged a flow or an
// exchange on complete data do not run again at Finish.
package oauth
