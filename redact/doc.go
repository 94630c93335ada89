// Package redact replaces secrets (tokens, codes, verifiers, client secrets,
// assertions, cookies, Authorization) with keyed hashes that keep length and
// character class, so equal values still match across hops of an export.
//
// Caveats: a Redactor learns secrets from the exchanges it is shown (Learn)
// and then replaces every occurrence of a learned value; show it every
// exchange of a recording before redacting any. A nil key draws a random one,
// so hashes cannot be compared across reports.
package redact
