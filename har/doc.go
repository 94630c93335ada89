// Package har reads and writes HAR 1.2: the one codec behind import, export,
// report, replay and the test fixtures.
//
// Read uses hand-rolled HAR 1.2 types (see dependencies.md 4.1). It keeps each
// request target and Location header byte for byte (no URL parsing or
// re-encoding), turns base64 content back into bytes, and refuses a file it
// cannot read completely with an *Error; entry numbers in its messages are
// zero-based indexes into log.entries. Write adds two things HAR 1.2 lacks:
// an "_mcptap" member per entry (ID, mode, listener, raw target, true sizes,
// truncation, timestamps) so that an export reads back into the same
// exchanges, and postData.encoding "base64" for request bodies that are not
// UTF-8. Other tools ignore both.
//
// Caveats: numbers that producers disagree on (strings, null) are read
// leniently; unknown members, including browser extensions such as Chrome's
// _initiator, are ignored. Write redacts only when given a Redactor.
package har
