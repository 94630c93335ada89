package recorder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/mcptap/mcptap"
)

// The journal is what makes a kill -9 lose almost nothing. The writer commits
// in groups, with fsync, every 50ms or so under load; until a group is
// committed its exchanges exist only in memory. So every publication is
// also appended, as soon as it arrives and before it waits for its group,
// to a journal file beside the database, with a plain write: no fsync, so
// it costs a memory copy, and what was written survives the death of the
// process (the kernel holds it), though not a power loss. Once a group is
// committed, the journal records it covered are no longer needed: the
// journal is cut into segments of journalSegmentMax bytes, a segment is
// deleted once every record in it is committed, and the segment being
// written is emptied when everything in it is. The next read-write Open of
// the database puts what a leftover journal holds back in (recoverJournal)
// and deletes it.
//
// A segment is a sequence of records, each a 4-byte big-endian payload
// length, the payload's 4-byte CRC-32C and the payload: the uvarint length
// of a metadata record, the metadata record and the body record (the
// formats stored in the database, so the journal needs no codec of its own).
// A record cut short by the kill, or one whose checksum fails, ends its
// segment.
const journalSegmentMax = 8 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// journalPrefix starts the names of the journal segments of the database at path.
func journalPrefix(path string) string { return path + ".journal." }

type journal struct {
	prefix  string
	next    int      // number of the next segment
	cur     *os.File // segment being written, nil before the first write
	curName string
	curLast uint64 // sequence number of the last record in cur
	curSize int64
	sealed  []segment // full segments, waiting for their records' commit
	buf     []byte    // records not yet written
	bufLast uint64
	scratch []byte
	off     bool // a write failed: the journal is given up for this run
}

type segment struct {
	name string
	last uint64
}

func newJournal(dbPath string) *journal {
	return &journal{prefix: journalPrefix(dbPath), next: 1}
}

// add encodes one exchange, published with sequence number seq, into the
// buffer that the next write sends.
func (j *journal) add(ex *mcptap.Exchange, seq uint64) {
	if j.off {
		return
	}
	j.scratch = appendMeta(j.scratch[:0], ex)
	start := len(j.buf)
	j.buf = append(j.buf, make([]byte, 8)...)
	j.buf = binary.AppendUvarint(j.buf, uint64(len(j.scratch)))
	j.buf = append(j.buf, j.scratch...)
	j.buf = appendBody(j.buf, ex)
	payload := j.buf[start+8:]
	binary.BigEndian.PutUint32(j.buf[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(j.buf[start+4:], crc32.Checksum(payload, crcTable))
	j.bufLast = seq
}

// write sends the buffered records to the current segment in one write. It
// returns the error that turned the journal off, once.
func (j *journal) write() error {
	if j.off || len(j.buf) == 0 {
		return nil
	}
	err := j.writeBuf()
	if cap(j.buf) > 4<<20 {
		j.buf = nil // a burst of large bodies: give the memory back
	} else {
		j.buf = j.buf[:0]
	}
	if err != nil {
		j.off = true
		if j.cur != nil {
			j.cur.Close()
			j.cur = nil
		}
		return fmt.Errorf("journal %s: %w; a crash from now on loses what the last commit did not hold", j.curName, err)
	}
	return nil
}

func (j *journal) writeBuf() error {
	if j.cur == nil {
		name := j.prefix + fmt.Sprintf("%06d", j.next)
		j.next++
		_ = os.Remove(name) // a leftover recovery could not delete
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		j.cur, j.curName, j.curSize = f, name, 0
	}
	n, err := j.cur.Write(j.buf)
	j.curSize += int64(n)
	j.curLast = j.bufLast
	if err != nil {
		return err
	}
	if j.curSize >= journalSegmentMax {
		j.sealed = append(j.sealed, segment{j.curName, j.curLast})
		err = j.cur.Close()
		j.cur = nil
	}
	return err
}

// release deletes what the commits up to sequence number committed made
// unneeded: sealed segments, and the current segment's content.
func (j *journal) release(committed uint64) {
	k := 0
	for _, s := range j.sealed {
		if s.last <= committed {
			_ = os.Remove(s.name)
			continue
		}
		j.sealed[k] = s
		k++
	}
	j.sealed = j.sealed[:k]
	if j.cur != nil && j.curSize > 0 && j.curLast <= committed && !j.off {
		if err := j.cur.Truncate(0); err == nil {
			j.curSize = 0
		}
	}
}

// close deletes every segment: the writer has committed (or counted as
// lost) everything they hold.
func (j *journal) close() {
	if j.cur != nil {
		j.cur.Close()
		_ = os.Remove(j.curName)
		j.cur = nil
	}
	for _, s := range j.sealed {
		_ = os.Remove(s.name)
	}
	j.sealed = nil
}

// journalSegments lists the journal segments of the database at path in the
// order they were written.
func journalSegments(path string) []string {
	prefix := journalPrefix(path)
	names, _ := filepath.Glob(prefix + "*")
	segs := names[:0]
	for _, n := range names {
		if _, err := strconv.Atoi(strings.TrimPrefix(n, prefix)); err == nil {
			segs = append(segs, n)
		}
	}
	sort.Slice(segs, func(a, b int) bool {
		x, _ := strconv.Atoi(strings.TrimPrefix(segs[a], prefix))
		y, _ := strconv.Atoi(strings.TrimPrefix(segs[b], prefix))
		return x < y
	})
	return segs
}

// readJournal decodes one segment's records, stopping at the first that is
// cut short or fails its checksum (the tail a kill interrupted).
func readJournal(name string) ([]mcptap.Exchange, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var out []mcptap.Exchange
	for len(b) >= 8 {
		n := binary.BigEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-8) {
			break
		}
		payload := b[8 : 8+n]
		if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(b[4:]) {
			break
		}
		b = b[8+n:]
		ml, k := binary.Uvarint(payload)
		if k <= 0 || ml > uint64(len(payload)-k) {
			break
		}
		meta, body := payload[k:k+int(ml)], payload[k+int(ml):]
		ex, err := decodeExchange("(journal)", []byte(filepath.Base(name)), meta, body)
		if err != nil {
			return out, fmt.Errorf("journal %s: %w", name, err)
		}
		out = append(out, ex)
	}
	return out, nil
}

// recoverJournal puts back what the journal of a recording that did not
// stop (a kill, a crash) holds, upserting by ID as the writer does (an
// incomplete copy never replaces a complete one; a pruned exchange stays
// pruned), and deletes the journal. It returns how many distinct exchanges
// that were missing or incomplete it stored.
func (s *Store) recoverJournal() (int, error) {
	segs := journalSegments(s.path)
	if len(segs) == 0 {
		return 0, nil
	}
	var exs []mcptap.Exchange
	for _, name := range segs {
		got, err := readJournal(name)
		exs = append(exs, got...)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
	}
	recovered := 0
	if len(exs) > 0 {
		err := s.update(func(tx *bolt.Tx) error {
			sessions := tx.Bucket(bucketSessions)
			fresh := map[string]bool{}
			var w batchWriter
			w.reset(tx)
			for i := range exs {
				ex := &exs[i]
				if sessions.Get([]byte(ex.Session)) == nil {
					continue // its session was deleted meanwhile
				}
				if sb := existingSessionBucket(tx, ex.Session); sb != nil && !fresh[ex.ID] {
					if mb := sb.Bucket(bucketMeta); mb != nil {
						if old := mb.Get([]byte(ex.ID)); old != nil && (recordComplete(old) || !ex.Complete) {
							continue // the database has it already
						}
					}
				}
				if err := w.put(ex); err != nil {
					return err
				}
				fresh[ex.ID] = true
			}
			recovered = len(fresh)
			return w.finish()
		})
		if err != nil {
			return 0, fmt.Errorf("recover the journal of %s: %w", s.path, err)
		}
	}
	for _, name := range segs {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return recovered, fmt.Errorf("recovered %d exchanges from the journal of %s but cannot delete it: %w", recovered, s.path, err)
		}
	}
	return recovered, nil
}
