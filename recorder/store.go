package recorder

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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
	// ErrNewerFormat means a record was written by a newer mcptap than this one.
	ErrNewerFormat = errors.New("written by a newer mcptap")
)

var (
	bucketSessions  = []byte("sessions")
	bucketExchanges = []byte("exchanges")
	bucketMeta      = []byte("meta")
	bucketBody      = []byte("body")
	keyCount        = []byte("count")
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
	db   *bolt.DB
	path string
	opts Options
}

// Open opens (creating if needed, unless read-only) the database at path. The
// directory is created 0700 and the file 0600. If another process holds the
// file, Open gives up after opts.Timeout with an error wrapping ErrInUse that
// names the file and says what to do.
func Open(path string, opts *Options) (*Store, error) {
	o := opts.withDefaults()
	if o.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
	} else if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create the directory of %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:  o.Timeout,
		ReadOnly: o.ReadOnly,
		// etcd's choice: the freelist is rebuilt by a scan at open instead of
		// being written on every commit, which matters for many small batches.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("%w: another mcptap is recording into or reading %s; stop it or pass --db to use another file", ErrInUse, path)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{db: db, path: path, opts: o}
	if !o.ReadOnly {
		err := db.Update(func(tx *bolt.Tx) error {
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
	}
	return s, nil
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
	return s.db.Update(func(tx *bolt.Tx) error { return createSession(tx, sess) })
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

func putSession(b *bolt.Bucket, sess mcptap.Session) error {
	sess.Version = mcptap.FormatVersion
	sess.Exchanges = 0 // derived from the count key on read
	v, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("encode session %s: %w", sess.ID, err)
	}
	return b.Put([]byte(sess.ID), v)
}

// EndSession records when a session ended and how many exchanges the recorder
// could not keep up with.
func (s *Store) EndSession(id string, ended time.Time, dropped uint64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
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
	return s.db.Update(func(tx *bolt.Tx) error {
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
	var sess mcptap.Session
	if err := json.Unmarshal(v, &sess); err != nil {
		return sess, fmt.Errorf("session %s: decode: %w", id, err)
	}
	if sess.Version > mcptap.FormatVersion {
		return sess, fmt.Errorf("session %s: %w (format %d; this mcptap reads up to %d, upgrade it)", id, ErrNewerFormat, sess.Version, mcptap.FormatVersion)
	}
	sess.Exchanges = int(exchangeCount(tx, id))
	return sess, nil
}

func exchangeCount(tx *bolt.Tx, id string) uint64 {
	sb := existingSessionBucket(tx, id)
	if sb == nil {
		return 0
	}
	if v := sb.Get(keyCount); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Session returns one session; its Exchanges field holds the stored count.
func (s *Store) Session(id string) (mcptap.Session, error) {
	var sess mcptap.Session
	err := s.db.View(func(tx *bolt.Tx) error {
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
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			sess, err := decodeSession(tx, string(k), v)
			if err != nil {
				return err
			}
			out = append(out, sess)
			return nil
		})
	})
	return out, err
}

// Latest returns the most recently created session, or an error wrapping
// ErrNoSessions.
func (s *Store) Latest() (mcptap.Session, error) {
	var sess mcptap.Session
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		if b == nil {
			return fmt.Errorf("%s: %w", s.path, ErrNoSessions)
		}
		k, v := b.Cursor().Last()
		if k == nil {
			return fmt.Errorf("%s: %w", s.path, ErrNoSessions)
		}
		var err error
		sess, err = decodeSession(tx, string(k), v)
		return err
	})
	return sess, err
}

// FindSession returns the session whose ID is prefix or the only one that
// starts with prefix.
func (s *Store) FindSession(prefix string) (mcptap.Session, error) {
	if prefix == "" {
		return mcptap.Session{}, errors.New("find session: empty ID")
	}
	var sess mcptap.Session
	err := s.db.View(func(tx *bolt.Tx) error {
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
	return s.db.Update(func(tx *bolt.Tx) error { return putExchanges(tx, session, exs) })
}

func putExchanges(tx *bolt.Tx, session string, exs []mcptap.Exchange) error {
	w := batchWriter{tx: tx}
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
type batchWriter struct {
	tx    *bolt.Tx
	cur   string
	meta  *bolt.Bucket
	body  *bolt.Bucket
	sb    *bolt.Bucket
	added map[string]uint64
	sbs   map[string]*bolt.Bucket
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
		w.cur, w.sb = ex.Session, sb
		w.meta, w.body = sb.Bucket(bucketMeta), sb.Bucket(bucketBody)
		// Appends with time-ordered keys: fuller pages, as etcd does. Not
		// persisted by bbolt, so set on every transaction.
		w.meta.FillPercent, w.body.FillPercent = 0.9, 0.9
		if w.sbs == nil {
			w.sbs = map[string]*bolt.Bucket{}
			w.added = map[string]uint64{}
		}
		w.sbs[ex.Session] = sb
	}
	key := []byte(ex.ID)
	if old := w.meta.Get(key); old == nil {
		w.added[ex.Session]++
	} else if !ex.Complete && len(old) > 1 && recordComplete(old) {
		return nil // a late head copy must not undo the complete one
	}
	meta, err := encodeMeta(ex)
	if err != nil {
		return err
	}
	if err := w.meta.Put(key, meta); err != nil {
		return fmt.Errorf("store exchange %s: %w", ex.ID, err)
	}
	if len(ex.ReqBody) == 0 && len(ex.RespBody) == 0 {
		if err := w.body.Delete(key); err != nil {
			return fmt.Errorf("store exchange %s: %w", ex.ID, err)
		}
		return nil
	}
	if err := w.body.Put(key, encodeBody(ex)); err != nil {
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
		var c uint64
		if v := sb.Get(keyCount); len(v) == 8 {
			c = binary.BigEndian.Uint64(v)
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], c+n)
		if err := sb.Put(keyCount, v[:]); err != nil {
			return fmt.Errorf("session %s: count: %w", id, err)
		}
	}
	return nil
}

// recordComplete reports the complete flag of a stored metadata record.
func recordComplete(rec []byte) bool {
	_, n := binary.Uvarint(rec)
	return n > 0 && n < len(rec) && rec[n]&flagComplete != 0
}

// encodeMeta returns the metadata record of ex in a fresh slice: bbolt keeps
// a reference to a value until the transaction commits, so values are never
// reused within a batch.
func encodeMeta(ex *mcptap.Exchange) ([]byte, error) {
	m := *ex
	m.Version = mcptap.FormatVersion
	m.ReqBody, m.RespBody = nil, nil
	j, err := json.Marshal(&m)
	if err != nil {
		return nil, fmt.Errorf("encode exchange %s: %w", ex.ID, err)
	}
	out := make([]byte, 0, binary.MaxVarintLen64+1+len(j))
	out = binary.AppendUvarint(out, mcptap.FormatVersion)
	var flags byte
	if ex.Complete {
		flags |= flagComplete
	}
	out = append(out, flags)
	return append(out, j...), nil
}

func encodeBody(ex *mcptap.Exchange) []byte {
	out := make([]byte, 0, 2*binary.MaxVarintLen64+len(ex.ReqBody)+len(ex.RespBody))
	out = binary.AppendUvarint(out, mcptap.FormatVersion)
	out = binary.AppendUvarint(out, uint64(len(ex.ReqBody)))
	out = append(out, ex.ReqBody...)
	return append(out, ex.RespBody...)
}

func checkVersion(what string, v uint64) error {
	if v > mcptap.FormatVersion {
		return fmt.Errorf("%s: %w (format %d; this mcptap reads up to %d, upgrade it)", what, ErrNewerFormat, v, mcptap.FormatVersion)
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
	if err := checkVersion(what, v); err != nil {
		return ex, err
	}
	if err := json.Unmarshal(meta[n+1:], &ex); err != nil {
		return ex, fmt.Errorf("%s: decode: %w", what, err)
	}
	if body != nil {
		v, n := binary.Uvarint(body)
		if n <= 0 {
			return ex, fmt.Errorf("%s: corrupt body record", what)
		}
		if err := checkVersion(what+" body", v); err != nil {
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

// Exchanges calls fn for each exchange of a session in ID order, bodies
// included. fn runs inside a read transaction: it must not write to the store.
// An error from fn stops the walk and is returned.
func (s *Store) Exchanges(session string, fn func(mcptap.Exchange) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
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
		var bc *bolt.Cursor
		var bk, bv []byte
		if body != nil {
			bc = body.Cursor()
			bk, bv = bc.First()
		}
		for k, v := mc.First(); k != nil; k, v = mc.Next() {
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
		}
		return nil
	})
}

// Exchange returns one exchange of a session, bodies included.
func (s *Store) Exchange(session, id string) (mcptap.Exchange, error) {
	var ex mcptap.Exchange
	err := s.db.View(func(tx *bolt.Tx) error {
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
