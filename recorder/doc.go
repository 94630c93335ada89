// Package recorder stores sessions and exchanges in a bbolt file and reads and
// writes HAR 1.2, so that live captures, imports and replays share one format.
//
// # Layout of the bbolt file
//
//	sessions/                     session ID -> session JSON (carries "v", the format version)
//	exchanges/<session ID>/       one nested bucket per session, holding:
//	    count                     8-byte big-endian number of exchanges stored
//	    meta/                     exchange ID -> metadata record (everything but the bodies)
//	    body/                     exchange ID -> body record (request and response bodies)
//
// Exchange IDs come from mcptap.NewID and sort by time, so a cursor walks a
// session in the order the exchanges started. Bodies live in their own bucket
// so that listing sessions or exchange metadata never pages in body bytes.
//
// Records: a metadata record is a uvarint format version, one flags byte (bit 0:
// the exchange is complete) and the JSON of the Exchange without its bodies. A
// body record is a uvarint format version, the uvarint length of the request
// body, the request body and then the response body, raw. JSON keeps metadata
// readable with the bbolt CLI and costs a few microseconds per exchange, far
// below the fsync that each batch pays; bodies are kept raw because JSON would
// base64 them (a third larger and slower). The flags byte lets an upsert see
// whether the stored copy is complete without decoding it. A record written by
// a newer format version than this build knows is refused with ErrNewerFormat
// rather than misread.
//
// # HAR
//
// ReadHAR and WriteHAR use hand-rolled HAR 1.2 types. Import keeps each
// request target and Location header byte for byte (no URL parsing or
// re-encoding), turns base64 content back into bytes, and refuses a file it
// cannot read completely with a *HARError; entry numbers in its messages are
// zero-based indexes into log.entries. Export adds two things HAR 1.2 lacks:
// an "_mcptap" member per entry (ID, mode, listener, raw target, true sizes,
// truncation, timestamps) so that an export reads back into the same
// exchanges, and postData.encoding "base64" for request bodies that are not
// UTF-8. Other tools ignore both.
//
// # Caveats
//
// bbolt allows one read-write opener per file (an exclusive flock), and a
// read-only opener takes a shared lock that also keeps writers out. So while
// `mcptap proxy` records, no other process can open the same file; Open fails
// after Options.Timeout with an error wrapping ErrInUse that names the file.
// Views of a live recording must run in the recording process.
//
// The writer (Store.Record) commits in batches with fsync on: a crash loses
// at most the last batch. Callbacks passed to Store.Exchanges run inside a
// read transaction; they must not write to the store and should be quick.
package recorder
