package recorder

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/mcptap/mcptap"
)

var (
	// ErrInUse means another process holds the database file.
	ErrInUse = errors.New("database in use")
	// ErrNotFound means no session or exchange has the given ID.
	ErrNotFound = errors.New("not found")
	// ErrNoSessions means the database holds no session yet.
	ErrNoSessions = errors.New("no sessions recorded yet")
	// ErrDamaged means the file is not a sound database: truncated, or with
	// pages overwritten. What is readable can be copied out (Salvage).
	ErrDamaged = errors.New("damaged database")
	// ErrNewerFormat means a record was written by a newer mcptap than this one.
	ErrNewerFormat = errors.New("written by a newer mcptap")
)

var (
	bucketSessions  = []byte("sessions")
	bucketExchanges = []byte("exchanges")
	bucketMeta      = []byte("meta")
	bucketBody      = []byte("body")
	keyCount        = []byte("count")
	// keyPrunedTo holds the exchange ID below which a session's exchanges
	// were pruned while it was recorded (--retain, --max-db-size), and
	// keyPruned how many: the writer drops a late copy of a pruned exchange
	// instead of bringing it back.
	keyPrunedTo = []byte("pruned-to")
	keyPruned   = []byte("pruned")
)

const flagComplete = 1

// DefaultHome is where mcptap keeps its data: $MCPTAP_HOME, else
// $XDG_DATA_HOME/mcptap, else ~/.local/share/mcptap (macOS: ~/Library/Application
// Support/mcptap; Windows: %LocalAppData%\mcptap).
func DefaultHome() (string, error) {
	if h := os.Getenv("MCPTAP_HOME"); h != "" {
		return h, nil
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "mcptap"), nil
	}
	if runtime.GOOS == "windows" {
		if d := os.Getenv("LocalAppData"); d != "" {
			return filepath.Join(d, "mcptap"), nil
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the data directory (set MCPTAP_HOME): %w", err)
	}
	if runtime.GOOS == "darwin" {
		return filepath.Join(home, "Library", "Application Support", "mcptap"), nil
	}
	return filepath.Join(home, ".local", "share", "mcptap"), nil
}

// DefaultDBPath is DefaultHome()/mcptap.db.
func DefaultDBPath() (string, error) {
	h, err := DefaultHome()
	if err != nil {
		return "", err
	}
	return filepath.Join(h, "mcptap.db"), nil
}

// Options tune Open and the writer. The zero value means the defaults.
type Options struct {
	Timeout   time.Duration // how long to wait for another process's lock; default 1s
	BatchSize int           // exchanges per write transaction; default 64
	BatchWait time.Duration // longest wait before a partial batch commits; default 50ms
	ReadOnly  bool          // shared lock; the file must exist
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Timeout <= 0 {
		r.Timeout = time.Second
	}
	if r.BatchSize <= 0 {
		r.BatchSize = 64
	}
	if r.BatchWait <= 0 {
		r.BatchWait = 50 * time.Millisecond
	}
	return r
}

// Store is an open database of sessions and exchanges. Its methods are safe
// for concurrent use; bbolt serialises writers.
type Store struct {
	db        *bolt.DB
	path      string
	opts      Options
	recovered int
}

// Open opens (creating if needed, unless read-only) the database at path. The
// directory is created 0700 and the file 0600. If another process holds the
// file, Open gives up after opts.Timeout with an error wrapping ErrInUse that
// names the file and says what to do.
func Open(path string, opts *Options) (*Store, error) {
	o := opts.withDefaults()
	recovered := 0
	if o.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		if len(journalSegments(path)) > 0 {
			// A recording was killed: put its journal back first, which
			// takes the write lock for a moment (a file this user cannot
			// write is read as it is).
			rw := o
			rw.ReadOnly = false
			s, err := Open(path, &rw)
			switch {
			case err == nil:
				recovered = s.recovered
				if err := s.Close(); err != nil {
					return nil, err
				}
			case errors.Is(err, ErrInUse):
				return nil, err
			}
			// Otherwise (not writable, damaged) the file is read as it
			// is: a salvage must still get what is readable.
		}
	} else if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create the directory of %s: %w", path, err)
	}
	bo := &bolt.Options{
		Timeout:  o.Timeout,
		ReadOnly: o.ReadOnly,
		// etcd's choice: the freelist is rebuilt by a scan at open instead of
		// being written on every commit, which matters for many small batches.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
		// New files only (bbolt keeps a file's page size): four times
		// fewer nodes to split, write and sync per exchange than 4 KiB
		// pages, which measured a third less recorder CPU.
		PageSize: 16 << 10,
	}
	if !o.ReadOnly && runtime.GOOS != "windows" && strconv.IntSize == 64 {
		// Address space only (the file still grows as data arrives; on
		// Windows it would not, hence the exception): without it bbolt
		// remaps at every doubling of the file, copying every node the
		// commit holds out of the old mapping and waiting for readers.
		bo.InitialMmapSize = 1 << 30
	}
	db, err := openGuarded(path, bo)
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("%w: another mcptap is recording into or reading %s; stop it or pass --db to use another file", ErrInUse, path)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{db: db, path: path, opts: o, recovered: recovered}
	if !o.ReadOnly {
		err := s.update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketSessions, bucketExchanges} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("initialise %s: %w", path, err)
		}
		if s.recovered, err = s.recoverJournal(); err != nil {
			db.Close()
			return nil, err
		}
	}
	return s, nil
}

// Recovered is how many exchanges Open put back from the journal of a
// recording that was killed before it could commit them.
func (s *Store) Recovered() int { return s.recovered }

// openGuarded is bolt.Open that turns a panic or a memory fault on a damaged
// file (bbolt reads the pages it maps, and a scrambled page can make it
// index past them) into an error wrapping ErrDamaged.
func openGuarded(path string, bo *bolt.Options) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, damaged(path, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, bo)
	if err != nil && !errors.Is(err, bolterrors.ErrTimeout) && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) {
		err = fmt.Errorf("%w: %s is not a readable mcptap database (%w): its header pages are damaged, so nothing can be read or salvaged from it; move it aside and record into a new file (or pass --db)", ErrDamaged, path, err)
	}
	return db, err
}

// damaged is the error for a damage found at run time, with what to do.
func damaged(path string, cause any) error {
	return fmt.Errorf("%w: %s cannot be read (%v); copy what is readable into a new file with: mcptap sessions --db %s --salvage NEW.db", ErrDamaged, path, cause, path)
}

// view and update are db.View and db.Update that report damage as an error
// wrapping ErrDamaged instead of crashing the process: bbolt panics on pages
// it cannot make sense of, and a read past a truncated mapping is a memory
// fault, which SetPanicOnFault makes a panic. bbolt rolls the transaction
// back on the way out.
func (s *Store) view(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = damaged(s.path, r)
		}
	}()
	return s.db.View(fn)
}

func (s *Store) update(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = damaged(s.path, r)
		}
	}()
	return s.db.Update(fn)
}

// Path is the file the store was opened from.
func (s *Store) Path() string { return s.path }

// Close closes the database. Writers from Record must have finished (Wait).
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close %s: %w", s.path, err)
	}
	return nil
}

// CreateSession stores a new session. Its ID must be set and unused.
func (s *Store) CreateSession(sess mcptap.Session) error {
	return s.update(func(tx *bolt.Tx) error { return createSession(tx, sess) })
}

func createSession(tx *bolt.Tx, sess mcptap.Session) error {
	if sess.ID == "" {
		return errors.New("create session: empty ID")
	}
	b := tx.Bucket(bucketSessions)
	if b.Get([]byte(sess.ID)) != nil {
		return fmt.Errorf("create session %s: already exists", sess.ID)
	}
	if err := putSession(b, sess); err != nil {
		return err
	}
	_, err := sessionBucket(tx, sess.ID)
	return err
}

// sessionVersion is the format of stored session records (JSON with "v"),
// and exchangeVersion the version of the Exchange value inside every
// exchange metadata record, so that later releases can migrate old
// recordings. They belong to the codec, not to the domain values.
const (
	sessionVersion  = 1
	exchangeVersion = 1
)

// sessionRecord is a stored session: the version, then the session's fields.
type sessionRecord struct {
	V int `json:"v"`
	mcptap.Session
}

func putSession(b *bolt.Bucket, sess mcptap.Session) error {
	sess.Exchanges, sess.Pruned = 0, 0 // derived from the session bucket's keys on read
	v, err := json.Marshal(sessionRecord{V: sessionVersion, Session: sess})
	if err != nil {
		return fmt.Errorf("encode session %s: %w", sess.ID, err)
	}
	return b.Put([]byte(sess.ID), v)
}

// EndSession records when a session ended and how many exchanges the recorder
// could not keep up with.
func (s *Store) EndSession(id string, ended time.Time, dropped uint64) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		sess, err := getSession(tx, id)
		if err != nil {
			return err
		}
		sess.Ended = ended
		sess.Dropped = dropped
		return putSession(b, sess)
	})
}

// Import stores a new session and its exchanges in one transaction, so an
// interrupted import leaves nothing behind.
func (s *Store) Import(sess mcptap.Session, exs []mcptap.Exchange) error {
	return s.update(func(tx *bolt.Tx) error {
		if err := createSession(tx, sess); err != nil {
			return err
		}
		return putExchanges(tx, sess.ID, exs)
	})
}

func getSession(tx *bolt.Tx, id string) (mcptap.Session, error) {
	b := tx.Bucket(bucketSessions)
	if b == nil {
		return mcptap.Session{}, fmt.Errorf("session %s: %w", id, ErrNotFound)
	}
	v := b.Get([]byte(id))
	if v == nil {
		return mcptap.Session{}, fmt.Errorf("session %s: %w", id, ErrNotFound)
	}
	return decodeSession(tx, id, v)
}

func decodeSession(tx *bolt.Tx, id string, v []byte) (mcptap.Session, error) {
	var rec sessionRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return rec.Session, fmt.Errorf("session %s: decode: %w", id, err)
	}
	sess := rec.Session
	if rec.V > sessionVersion {
		return sess, fmt.Errorf("session %s: %w (format %d; this mcptap reads up to %d, upgrade it)", id, ErrNewerFormat, rec.V, sessionVersion)
	}
	if sb := existingSessionBucket(tx, id); sb != nil {
		sess.Exchanges, sess.Pruned = int(counter(sb, keyCount)), counter(sb, keyPruned)
	}
	return sess, nil
}

// counter reads an 8-byte big-endian count kept in a session's bucket.
func counter(sb *bolt.Bucket, key []byte) uint64 {
	if v := sb.Get(key); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Session returns one session; its Exchanges field holds the stored count.
func (s *Store) Session(id string) (mcptap.Session, error) {
	var sess mcptap.Session
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		sess, err = getSession(tx, id)
		return err
	})
	return sess, err
}

// Sessions returns every session, oldest first (in the order of their IDs,
// which is the order they were created in).
func (s *Store) Sessions() ([]mcptap.Session, error) {
	var out []mcptap.Session
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		if b == nil {
			return damaged(s.path, "it has no session list") // Open creates one in every file it writes
		}
		err := b.ForEach(func(k, v []byte) error {
			sess, err := decodeSession(tx, string(k), v)
			if err != nil {
				return err
			}
			out = append(out, sess)
			return nil
		})
		if err == nil && len(out) == 0 {
			if cerr := checkTx(tx); cerr != nil {
				return damaged(s.path, cerr)
			}
		}
		return err
	})
	return out, err
}

// Latest returns the most recently created session, or an error wrapping
// ErrNoSessions.
func (s *Store) Latest() (mcptap.Session, error) {
	var sess mcptap.Session
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		if b == nil {
			return damaged(s.path, "it has no session list") // Open creates one in every file it writes
		}
		k, v := b.Cursor().Last()
		if k == nil {
			if err := checkTx(tx); err != nil {
				return damaged(s.path, err) // damage that reads as an empty list
			}
			return fmt.Errorf("%s: %w", s.path, ErrNoSessions)
		}
		var err error
		sess, err = decodeSession(tx, string(k), v)
		return err
	})
	return sess, err
}

// checkTx looks for damage where a result looks wrong (no sessions at all),
// since a damaged tree can read as an empty one: exchanges stored under
// sessions that the list does not have, or what bbolt's consistency check
// finds (it walks every page, hence only here).
func checkTx(tx *bolt.Tx) error {
	if ex := tx.Bucket(bucketExchanges); ex != nil {
		if k, _ := ex.Cursor().First(); k != nil {
			return fmt.Errorf("the session list is empty but exchanges of session %q are stored", k)
		}
	}
	for err := range tx.Check() {
		return err
	}
	return nil
}

// FindSession returns the session whose ID is prefix or the only one that
// starts with prefix.
func (s *Store) FindSession(prefix string) (mcptap.Session, error) {
	if prefix == "" {
		return mcptap.Session{}, errors.New("find session: empty ID")
	}
	var sess mcptap.Session
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		if b == nil {
			return fmt.Errorf("session %s: %w", prefix, ErrNotFound)
		}
		c := b.Cursor()
		p := []byte(prefix)
		var matches []string
		var firstV []byte
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if bytes.Equal(k, p) { // an exact ID always wins
				matches, firstV = []string{string(k)}, v
				break
			}
			if len(matches) == 0 {
				firstV = v
			}
			matches = append(matches, string(k))
		}
		switch len(matches) {
		case 0:
			return fmt.Errorf("session %s: %w", prefix, ErrNotFound)
		case 1:
			var err error
			sess, err = decodeSession(tx, matches[0], firstV)
			return err
		}
		if len(matches) > 5 {
			matches = append(matches[:5], "…")
		}
		return fmt.Errorf("session %s is ambiguous: it starts %s; give more characters", prefix, strings.Join(matches, ", "))
	})
	return sess, err
}

// sessionBucket returns (creating) the nested bucket of a session's exchanges.
func sessionBucket(tx *bolt.Tx, id string) (*bolt.Bucket, error) {
	if id == "" {
		return nil, errors.New("exchange without a session")
	}
	sb, err := tx.Bucket(bucketExchanges).CreateBucketIfNotExists([]byte(id))
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", id, err)
	}
	for _, n := range [][]byte{bucketMeta, bucketBody} {
		if _, err := sb.CreateBucketIfNotExists(n); err != nil {
			return nil, fmt.Errorf("session %s: %w", id, err)
		}
	}
	return sb, nil
}

func existingSessionBucket(tx *bolt.Tx, id string) *bolt.Bucket {
	eb := tx.Bucket(bucketExchanges)
	if eb == nil {
		return nil
	}
	return eb.Bucket([]byte(id))
}

// PutExchanges stores exchanges of a session in one transaction, upserting by
// ID (an incomplete copy never replaces a complete one).
func (s *Store) PutExchanges(session string, exs []mcptap.Exchange) error {
	return s.update(func(tx *bolt.Tx) error { return putExchanges(tx, session, exs) })
}

func putExchanges(tx *bolt.Tx, session string, exs []mcptap.Exchange) error {
	var w batchWriter
	w.reset(tx)
	for i := range exs {
		ex := exs[i]
		ex.Session = session
		if err := w.put(&ex); err != nil {
			return err
		}
	}
	return w.finish()
}

// batchWriter writes exchanges into one transaction, caching the buckets of
// the sessions it touches and bumping each session's count once at the end.
// The Writer keeps one across transactions so that its maps and its arena
// are reused.
type batchWriter struct {
	tx   *bolt.Tx
	cur  string
	meta *bolt.Bucket
	body *bolt.Bucket
	sb   *bolt.Bucket
	// prunedTo is the current session's keyPrunedTo: exchanges below it
	// were pruned and are not written again.
	prunedTo []byte
	added    map[string]uint64
	sbs      map[string]*bolt.Bucket
	arena    arena
	// scratch holds the metadata record being encoded.
	scratch []byte
}

// reset readies w for a new transaction. bbolt references keys and values
// passed to Put until its transaction ends, so the arena is only recycled
// here, after the previous transaction has committed or rolled back.
func (w *batchWriter) reset(tx *bolt.Tx) {
	w.tx, w.cur, w.meta, w.body, w.sb, w.prunedTo = tx, "", nil, nil, nil, nil
	if w.added == nil {
		w.added = map[string]uint64{}
		w.sbs = map[string]*bolt.Bucket{}
	}
	clear(w.added)
	clear(w.sbs)
	w.arena.reset()
}

func (w *batchWriter) put(ex *mcptap.Exchange) error {
	if ex.ID == "" {
		return fmt.Errorf("session %s: exchange without an ID", ex.Session)
	}
	if ex.Session != w.cur || w.sb == nil {
		sb, err := sessionBucket(w.tx, ex.Session)
		if err != nil {
			return err
		}
		w.cur, w.sb, w.prunedTo = ex.Session, sb, sb.Get(keyPrunedTo)
		w.meta, w.body = sb.Bucket(bucketMeta), sb.Bucket(bucketBody)
		// Appends with time-ordered keys: fuller pages, as etcd does. Not
		// persisted by bbolt, so set on every transaction.
		w.meta.FillPercent, w.body.FillPercent = 0.9, 0.9
		w.sbs[ex.Session] = sb
	}
	if w.prunedTo != nil && ex.ID < string(w.prunedTo) {
		return nil // a late copy of an exchange pruned meanwhile
	}
	key := append(w.arena.alloc(len(ex.ID)), ex.ID...)
	if old := w.meta.Get(key); old == nil {
		w.added[ex.Session]++
	} else if !ex.Complete && len(old) > 1 && recordComplete(old) {
		return nil // a late head copy must not undo the complete one
	}
	// Encoded once into scratch and copied: sizing the record exactly
	// beforehand would walk the header maps twice.
	w.scratch = appendMeta(w.scratch[:0], ex)
	meta := append(w.arena.alloc(len(w.scratch)), w.scratch...)
	if err := w.meta.Put(key, meta); err != nil {
		return fmt.Errorf("store exchange %s: %w", ex.ID, err)
	}
	if len(ex.ReqBody) == 0 && len(ex.RespBody) == 0 {
		if err := w.body.Delete(key); err != nil {
			return fmt.Errorf("store exchange %s: %w", ex.ID, err)
		}
		return nil
	}
	body := appendBody(w.arena.alloc(2*binary.MaxVarintLen64+len(ex.ReqBody)+len(ex.RespBody)), ex)
	if err := w.body.Put(key, body); err != nil {
		return fmt.Errorf("store body of %s: %w", ex.ID, err)
	}
	return nil
}

func (w *batchWriter) finish() error {
	for id, n := range w.added {
		if n == 0 {
			continue
		}
		sb := w.sbs[id]
		v := binary.BigEndian.AppendUint64(w.arena.alloc(8), counter(sb, keyCount)+n)
		if err := sb.Put(keyCount, v); err != nil {
			return fmt.Errorf("session %s: count: %w", id, err)
		}
	}
	return nil
}

// arena hands out byte slices for the keys and values of one transaction
// from a few large chunks instead of two allocations per exchange. A slice
// it returns has length 0 and exactly the capacity asked for, so appending
// up to that capacity never moves it.
type arena struct {
	chunks [][]byte // retained chunks, each arenaChunk long
	i      int      // chunk being filled
	off    int      // offset in chunks[i]
}

const (
	arenaChunk = 256 << 10
	// arenaKeep bounds the chunks kept between transactions; a burst of
	// large bodies gets chunks that the garbage collector takes back.
	arenaKeep = 16
)

func (a *arena) alloc(n int) []byte {
	if n > arenaChunk/4 {
		return make([]byte, 0, n) // a large body: its own allocation
	}
	for {
		if a.i < len(a.chunks) {
			if c := a.chunks[a.i]; a.off+n <= len(c) {
				b := c[a.off : a.off : a.off+n]
				a.off += n
				return b
			}
			a.i++
			a.off = 0
			continue
		}
		a.chunks = append(a.chunks, make([]byte, arenaChunk))
	}
}

// reset makes every chunk available again. Only call it once nothing
// handed out is referenced any more (the transaction has ended).
func (a *arena) reset() {
	if len(a.chunks) > arenaKeep {
		clear(a.chunks[arenaKeep:])
		a.chunks = a.chunks[:arenaKeep]
	}
	a.i, a.off = 0, 0
}

// recordComplete reports the complete flag of a stored metadata record (of
// either format: both start with the version and the flags byte).
func recordComplete(rec []byte) bool {
	_, n := binary.Uvarint(rec)
	return n > 0 && n < len(rec) && rec[n]&flagComplete != 0
}

func appendBody(out []byte, ex *mcptap.Exchange) []byte {
	out = binary.AppendUvarint(out, bodyVersion)
	out = binary.AppendUvarint(out, uint64(len(ex.ReqBody)))
	out = append(out, ex.ReqBody...)
	return append(out, ex.RespBody...)
}

func checkVersion(what string, v, known uint64) error {
	if v > known {
		return fmt.Errorf("%s: %w (record format %d; this mcptap reads up to %d, upgrade it)", what, ErrNewerFormat, v, known)
	}
	return nil
}

func decodeExchange(session string, id, meta, body []byte) (mcptap.Exchange, error) {
	var ex mcptap.Exchange
	what := "session " + session + " exchange " + string(id)
	v, n := binary.Uvarint(meta)
	if n <= 0 || n >= len(meta) {
		return ex, fmt.Errorf("%s: corrupt metadata record", what)
	}
	switch v {
	case metaJSON:
		var rec struct {
			V int `json:"v"`
			mcptap.Exchange
		}
		if err := json.Unmarshal(meta[n+1:], &rec); err != nil {
			return ex, fmt.Errorf("%s: decode: %w", what, err)
		}
		ex = rec.Exchange
		if err := checkVersion(what, uint64(rec.V), exchangeVersion); err != nil {
			return ex, err
		}
	case metaBinary:
		if err := decodeMetaBinary(meta[n:], &ex); err != nil {
			return ex, fmt.Errorf("%s: decode: %w", what, err)
		}
	default:
		if v > metaBinary {
			return ex, fmt.Errorf("%s: %w (record format %d; this mcptap reads up to %d, upgrade it)", what, ErrNewerFormat, v, metaBinary)
		}
		return ex, fmt.Errorf("%s: unknown record format %d", what, v)
	}
	if body != nil {
		v, n := binary.Uvarint(body)
		if n <= 0 {
			return ex, fmt.Errorf("%s: corrupt body record", what)
		}
		if err := checkVersion(what+" body", v, bodyVersion); err != nil {
			return ex, err
		}
		rest := body[n:]
		ql, m := binary.Uvarint(rest)
		if m <= 0 || ql > uint64(len(rest)-m) {
			return ex, fmt.Errorf("%s: corrupt body record", what)
		}
		rest = rest[m:]
		// Values from bbolt live only as long as the transaction: copy.
		if ql > 0 {
			ex.ReqBody = bytes.Clone(rest[:ql])
		}
		if len(rest) > int(ql) {
			ex.RespBody = bytes.Clone(rest[ql:])
		}
	}
	return ex, nil
}

// Reader is what the commands that only read need of a database: the Store
// itself, or a running mcptap's read API when it holds the file.
type Reader interface {
	Path() string
	Close() error
	Session(id string) (mcptap.Session, error)
	Sessions() ([]mcptap.Session, error)
	Latest() (mcptap.Session, error)
	FindSession(prefix string) (mcptap.Session, error)
	Exchanges(session string, fn func(mcptap.Exchange) error) error
	Exchange(session, id string) (mcptap.Exchange, error)
}

var _ Reader = (*Store)(nil)

// Exchanges calls fn for each exchange of a session in ID order, bodies
// included. fn runs inside a read transaction: it must not write to the store.
// An error from fn stops the walk and is returned.
func (s *Store) Exchanges(session string, fn func(mcptap.Exchange) error) error {
	_, err := s.ExchangePage(session, "", 0, fn)
	return err
}

// ExchangePage is Exchanges from the exchange after ID after ("" from the
// first) for at most limit exchanges (0: all), in one read transaction. next
// is the ID to continue after, "" when the session has no more. A reader that
// pages keeps each transaction short, so a long read never holds up a writer
// that must grow the file.
func (s *Store) ExchangePage(session, after string, limit int, fn func(mcptap.Exchange) error) (next string, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketSessions) == nil || tx.Bucket(bucketSessions).Get([]byte(session)) == nil {
			return fmt.Errorf("session %s: %w", session, ErrNotFound)
		}
		sb := existingSessionBucket(tx, session)
		if sb == nil {
			return nil
		}
		meta, body := sb.Bucket(bucketMeta), sb.Bucket(bucketBody)
		if meta == nil {
			return nil
		}
		mc := meta.Cursor()
		k, v := mc.First()
		if after != "" {
			k, v = mc.Seek([]byte(after))
			if k != nil && string(k) == after {
				k, v = mc.Next()
			}
		}
		var bc *bolt.Cursor
		var bk, bv []byte
		if body != nil && k != nil {
			bc = body.Cursor()
			bk, bv = bc.Seek(k)
		}
		for n := 0; k != nil; k, v = mc.Next() {
			if limit > 0 && n == limit {
				next = after
				return nil
			}
			// Both buckets share keys and order: walk them side by side
			// instead of a Get (a tree descent) per exchange.
			for bk != nil && bytes.Compare(bk, k) < 0 {
				bk, bv = bc.Next()
			}
			var b []byte
			if bk != nil && bytes.Equal(bk, k) {
				b = bv
			}
			ex, err := decodeExchange(session, k, v, b)
			if err != nil {
				return err
			}
			if err := fn(ex); err != nil {
				return err
			}
			after = ex.ID
			n++
		}
		return nil
	})
	return next, err
}

// Exchange returns one exchange of a session, bodies included.
func (s *Store) Exchange(session, id string) (mcptap.Exchange, error) {
	var ex mcptap.Exchange
	err := s.view(func(tx *bolt.Tx) error {
		sb := existingSessionBucket(tx, session)
		if sb == nil {
			return fmt.Errorf("session %s: %w", session, ErrNotFound)
		}
		m := sb.Bucket(bucketMeta).Get([]byte(id))
		if m == nil {
			return fmt.Errorf("session %s exchange %s: %w", session, id, ErrNotFound)
		}
		var err error
		ex, err = decodeExchange(session, []byte(id), m, sb.Bucket(bucketBody).Get([]byte(id)))
		return err
	})
	return ex, err
}

// Record format versions: the uvarint that starts every exchange record.
// Version 1 metadata is JSON; version 2 is the compact binary layout of
// appendMeta. Both are read; only version 2 is written. A build that knows
// only version 1 refuses a version 2 record with ErrNewerFormat.
const (
	metaJSON    = 1
	metaBinary  = 2
	bodyVersion = 1
)

const (
	flagReqTruncated  = 1 << 1
	flagRespTruncated = 1 << 2
)

// appendMeta appends the version 2 metadata record of ex: everything but the
// bodies. Layout: uvarint 2; flags (complete, request truncated, response
// truncated); uvarint exchangeVersion; the strings ID, Session, Listener,
// Mode, Upstream, Method, Scheme, Host, Target, Proto, RemoteAddr, RespProto,
// Err (each uvarint length and bytes); uvarint Seq; varints ReqSize,
// RespSize, Status; the times Start, ResponseAt, End (each a length byte, 0
// for the zero time, and time.Time's binary form, which keeps the zone
// offset); the request and then response header (uvarint number of names,
// 0 for none; per name the name, the uvarint number of values and the
// values as strings).
func appendMeta(out []byte, ex *mcptap.Exchange) []byte {
	out = binary.AppendUvarint(out, metaBinary)
	var flags byte
	if ex.Complete {
		flags |= flagComplete
	}
	if ex.ReqTruncated {
		flags |= flagReqTruncated
	}
	if ex.RespTruncated {
		flags |= flagRespTruncated
	}
	out = append(out, flags)
	out = binary.AppendUvarint(out, exchangeVersion)
	for _, s := range [...]string{ex.ID, ex.Session, ex.Listener, string(ex.Mode), ex.Upstream,
		ex.Method, ex.Scheme, ex.Host, ex.Target, ex.Proto, ex.RemoteAddr, ex.RespProto, ex.Err} {
		out = appendString(out, s)
	}
	out = binary.AppendUvarint(out, ex.Seq)
	out = binary.AppendVarint(out, ex.ReqSize)
	out = binary.AppendVarint(out, ex.RespSize)
	out = binary.AppendVarint(out, int64(ex.Status))
	for _, t := range [...]time.Time{ex.Start, ex.ResponseAt, ex.End} {
		out = appendTime(out, t)
	}
	out = appendHeader(out, ex.ReqHeader)
	return appendHeader(out, ex.RespHeader)
}

func appendString(out []byte, s string) []byte {
	out = binary.AppendUvarint(out, uint64(len(s)))
	return append(out, s...)
}

func appendTime(out []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(out, 0)
	}
	at := len(out)
	b, err := t.AppendBinary(append(out, 0))
	if err != nil { // a zone offset time cannot encode: keep the instant
		b, _ = t.UTC().AppendBinary(append(out[:at], 0))
	}
	b[at] = byte(len(b) - at - 1)
	return b
}

func appendHeader(out []byte, h http.Header) []byte {
	out = binary.AppendUvarint(out, uint64(len(h)))
	for k, vs := range h {
		out = appendString(out, k)
		out = binary.AppendUvarint(out, uint64(len(vs)))
		for _, v := range vs {
			out = appendString(out, v)
		}
	}
	return out
}

var errCorrupt = errors.New("corrupt metadata record")

// metaReader decodes a version 2 record. Strings are slices of one copy of
// the record, so decoding costs one allocation for all of them.
type metaReader struct {
	s   string
	err error
}

func (r *metaReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	var v uint64
	for i := 0; i < len(r.s) && i < binary.MaxVarintLen64; i++ {
		b := r.s[i]
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				break
			}
			r.s = r.s[i+1:]
			return v | uint64(b)<<(7*i)
		}
		v |= uint64(b&0x7f) << (7 * i)
	}
	r.err = errCorrupt
	return 0
}

func (r *metaReader) varint() int64 {
	u := r.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (r *metaReader) str() string {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.s)) {
		r.err = errCorrupt
		return ""
	}
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

func (r *metaReader) time() time.Time {
	raw := r.str()
	var t time.Time
	if r.err == nil && raw != "" {
		if err := t.UnmarshalBinary([]byte(raw)); err != nil {
			r.err = fmt.Errorf("%w: %v", errCorrupt, err)
		}
	}
	return t
}

func (r *metaReader) header() http.Header {
	n := r.uvarint()
	if r.err != nil || n == 0 {
		return nil
	}
	if n > uint64(len(r.s)) { // each name takes at least one byte
		r.err = errCorrupt
		return nil
	}
	h := make(http.Header, n)
	vals := make([]string, 0, n)
	for range n {
		k := r.str()
		m := r.uvarint()
		if r.err != nil || m > uint64(len(r.s)) {
			r.err = errCorrupt
			return nil
		}
		at := len(vals)
		for range m {
			vals = append(vals, r.str())
		}
		h[k] = vals[at:len(vals):len(vals)]
	}
	return h
}

// decodeMetaBinary decodes a version 2 record from its flags byte on.
func decodeMetaBinary(rec []byte, ex *mcptap.Exchange) error {
	if len(rec) == 0 {
		return errCorrupt
	}
	flags := rec[0]
	ex.Complete = flags&flagComplete != 0
	ex.ReqTruncated = flags&flagReqTruncated != 0
	ex.RespTruncated = flags&flagRespTruncated != 0
	r := metaReader{s: string(rec[1:])}
	if v := r.uvarint(); v > exchangeVersion && r.err == nil {
		return fmt.Errorf("%w (exchange version %d; this mcptap reads up to %d, upgrade it)", ErrNewerFormat, v, exchangeVersion)
	}
	for _, p := range [...]*string{&ex.ID, &ex.Session, &ex.Listener, (*string)(&ex.Mode), &ex.Upstream,
		&ex.Method, &ex.Scheme, &ex.Host, &ex.Target, &ex.Proto, &ex.RemoteAddr, &ex.RespProto, &ex.Err} {
		*p = r.str()
	}
	ex.Seq = r.uvarint()
	ex.ReqSize = r.varint()
	ex.RespSize = r.varint()
	ex.Status = int(r.varint())
	for _, p := range [...]*time.Time{&ex.Start, &ex.ResponseAt, &ex.End} {
		*p = r.time()
	}
	ex.ReqHeader = r.header()
	ex.RespHeader = r.header()
	if r.err == nil && r.s != "" {
		r.err = fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(r.s))
	}
	return r.err
}
