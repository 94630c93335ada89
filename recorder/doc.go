// Package recorder stores sessions and exchanges in a bbolt file: the one
// package that links bbolt. HAR reading and writing live in package har,
// redaction in package redact.
//
// # Layout of the bbolt file
//
//	sessions/                     session ID -> session JSON (carries "v", the format version)
//	exchanges/<session ID>/       one nested bucket per session, holding:
//	    count                     8-byte big-endian number of exchanges stored
//	    pruned                    8-byte big-endian number of exchanges pruned while recording
//	    pruned-to                 exchange ID bound: those below it were pruned (a late copy is dropped)
//	    meta/                     exchange ID -> metadata record (everything but the bodies)
//	    body/                     exchange ID -> body record (request and response bodies)
//
// Exchange IDs come from mcptap.NewID and sort by time, so a cursor walks a
// session in the order the exchanges started. Bodies live in their own bucket
// so that listing sessions or exchange metadata never pages in body bytes.
//
// Records: every exchange record starts with a uvarint record format
// version. A metadata record (format 2, written now) is the version, one flags
// byte (bit 0: the exchange is complete; bits 1 and 2: request and response
// truncated) and a compact binary encoding of the Exchange without its bodies:
// length-prefixed strings, varints, time.Time's binary form (instant and zone
// offset) and the headers as counted name/values lists; appendMeta in store.go
// documents the exact layout. Format 1 metadata records (the flags byte
// followed by JSON), written by earlier builds, are still read. The binary form
// replaced JSON because the recorder shares the proxy's two cores:
// encoding/json walks the Exchange by reflection and sorts every header map,
// which made it the largest encoding cost per exchange, while the binary
// record is written in one pass into a reused buffer. Readability with the
// bbolt CLI was the price. A body record is a uvarint version (1), the uvarint
// length of the request body, the request body and then the response body,
// raw (JSON would base64 them). The flags byte lets an upsert see whether the
// stored copy is complete without decoding it. A record written in a format
// newer than this build knows is refused with ErrNewerFormat rather than
// misread (a build that reads only format 1 refuses format 2 records so).
//
// New files use 16 KiB bbolt pages (existing files keep theirs): a quarter of
// the nodes to split, write and sync per exchange compared with 4 KiB pages.
//
// # Caveats
//
// bbolt allows one read-write opener per file (an exclusive flock), and a
// read-only opener takes a shared lock that also keeps writers out. So while
// `mcptap proxy` records, no other process can open the same file; Open fails
// after Options.Timeout with an error wrapping ErrInUse that names the file.
// Views of a live recording must run in the recording process.
//
// The writer (Store.Record) uses group commit with fsync on. It starts a
// transaction once Options.BatchSize distinct exchanges (default 64) have
// arrived or Options.BatchWait (default 50ms) has passed since the first of
// them, and that transaction also takes every publication already waiting in
// the channel (what queued during the previous commit's fsync), up to
// MaxGroup (1024) exchanges or until MaxGroupBytes (16 MiB) of bodies. Under
// heavy traffic a group that reaches BatchSize within 50ms of the previous
// transaction's start keeps collecting until those 50ms have passed (never
// past BatchWait), sleeping meanwhile instead of being woken for every
// publication, so the writer commits at most about 20 times a second
// instead of once per 64 exchanges; below 64 exchanges per 50ms (1,280/s)
// this never happens.
//
// # What a crash loses
//
// Every publication is also appended to a journal beside the database
// (FILE.journal.000001 and on, 0600) as soon as the writer's first goroutine
// takes it from the channel, before it waits for its group: one plain
// write for whatever was waiting, without fsync (journal.go). The kernel
// keeps what was written when the process dies, so after a kill -9 (or a
// panic, or an OOM kill) the next open of the file, read-only included,
// puts back what the journal holds and the database lacks, and says how
// many (the CLI prints it). What a kill -9 loses is what the journal had
// not yet written: the publications taken for the write in progress (at
// most 128, one journal write) and those queued in the channel behind them,
// which stays short because a journal write is a memory copy (the channel
// fills only when the journal's queue to the committer, 4*MaxGroup, is
// full). The crash tests measured 0 to 50 lost at 16 saturating
// connections, where the group commit alone lost 83 to 475, and, with a
// publisher that keeps a 1,024-publication channel full, never more than
// that channel.
// Segments are deleted once every record in them is committed, and the one
// being written is emptied when all it holds is committed; a clean stop
// deletes the journal.
//
// A power loss or kernel crash is another matter: the journal is not
// synced, so it loses what the group commit would have: the group being
// collected or committed, and the publications still queued behind it.
// While the writer keeps up with the traffic, that is one group (BatchSize
// exchanges, or 50ms's worth of traffic when that is more, or BatchWait's
// worth when that is less; plus what queued during the previous commit)
// and what arrives during the commit in progress. When the traffic outruns
// it, it is at most MaxGroup exchanges in the transaction, the journal's
// queue (4*MaxGroup) and the channel's buffer (live.DefaultRecorderBuffer
// publications); beyond that, the broker drops and counts. An exchange
// whose head copy was committed but whose complete copy was not survives
// as incomplete.
//
// Callbacks passed to Store.Exchanges run inside a read transaction; they
// must not write to the store and should be quick.
package recorder
