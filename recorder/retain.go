package recorder

import (
	"bytes"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mcptap/mcptap"
)

// Prune deletes the sessions, with their exchanges, that ended before
// cutoff (a session that never ended counts from its start), except keep:
// the session being recorded. It returns the sessions it deleted. bbolt
// reuses the freed pages for what is recorded next, so a database pruned
// regularly stops growing; the file itself does not shrink.
func (s *Store) Prune(cutoff time.Time, keep string) ([]mcptap.Session, error) {
	var gone []mcptap.Session
	err := s.update(func(tx *bolt.Tx) error {
		sb := tx.Bucket(bucketSessions)
		if sb == nil {
			return nil
		}
		var ids []string
		err := sb.ForEach(func(k, v []byte) error {
			id := string(k)
			if id == keep {
				return nil
			}
			sess, err := decodeSession(tx, id, v)
			if err != nil {
				return err
			}
			last := sess.Ended
			if last.IsZero() {
				last = sess.Started
			}
			if last.Before(cutoff) {
				ids = append(ids, id)
				gone = append(gone, sess)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := deleteSessionTx(tx, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return gone, nil
}

// Used is how many bytes of the file hold data: its size less the free pages
// bbolt will reuse.
func (s *Store) Used() (int64, error) {
	var size int64
	if err := s.view(func(tx *bolt.Tx) error { size = tx.Size(); return nil }); err != nil {
		return 0, err
	}
	return size - int64(s.db.Stats().FreeAlloc), nil
}

// pruneChunk is how many exchanges one pruning transaction deletes at most:
// the recorder waits for the write lock meanwhile, so a long-running session
// is cut in short transactions.
const pruneChunk = 4096

// PruneExchanges deletes the exchanges of a session, the live one included,
// that started before cutoff, and returns how many. It is what --retain does
// to a session recorded for longer than the retention: the session stays,
// its earliest exchanges go (Session.Pruned counts them).
func (s *Store) PruneExchanges(session string, cutoff time.Time) (int, error) {
	bound := []byte(mcptap.IDFloor(cutoff))
	total := 0
	for {
		n, err := s.pruneOldest(session, bound, pruneChunk)
		total += n
		if err != nil || n < pruneChunk {
			return total, err
		}
	}
}

// pruneOldest deletes up to limit of the session's oldest exchanges whose ID
// sorts below bound (any, when bound is nil) in one transaction, and raises
// the session's keyPrunedTo past them so that the writer does not bring a
// late copy back.
func (s *Store) pruneOldest(session string, bound []byte, limit int) (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		sb := existingSessionBucket(tx, session)
		if sb == nil {
			return nil
		}
		meta, body := sb.Bucket(bucketMeta), sb.Bucket(bucketBody)
		if meta == nil || body == nil {
			return nil
		}
		var keys [][]byte
		c := meta.Cursor()
		for k, _ := c.First(); k != nil && len(keys) < limit && (bound == nil || bytes.Compare(k, bound) < 0); k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			if err := meta.Delete(k); err != nil {
				return err
			}
			if err := body.Delete(k); err != nil {
				return err
			}
		}
		n = len(keys)
		if n == 0 {
			return nil
		}
		to := append(keys[n-1], 0) // just past the last pruned ID
		if old := sb.Get(keyPrunedTo); bytes.Compare(old, to) > 0 {
			to = old
		}
		if err := sb.Put(keyPrunedTo, to); err != nil {
			return err
		}
		for _, kv := range []struct {
			key   []byte
			delta int64
		}{{keyPruned, int64(n)}, {keyCount, -int64(n)}} {
			v := int64(counter(sb, kv.key)) + kv.delta
			if err := sb.Put(kv.key, binary.BigEndian.AppendUint64(nil, uint64(max(v, 0)))); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// PruneToSize deletes the oldest sessions (by start), except keep, until the
// data takes at most limit bytes (Used), and returns them. When only keep is
// left and the data is still over, it deletes keep's oldest exchanges in
// steps until it fits (returned as pruned): a session recorded for weeks is
// cut from its start, never stopped.
func (s *Store) PruneToSize(limit int64, keep string) (gone []mcptap.Session, pruned int, err error) {
	for {
		used, err := s.Used()
		if err != nil || used <= limit {
			return gone, pruned, err
		}
		ss, err := s.Sessions()
		if err != nil {
			return gone, pruned, err
		}
		var oldest, live *mcptap.Session
		for i := range ss {
			switch {
			case ss[i].ID == keep:
				live = &ss[i]
			case oldest == nil || ss[i].Started.Before(oldest.Started):
				oldest = &ss[i]
			}
		}
		if oldest == nil {
			if live == nil || live.Exchanges <= 1 {
				return gone, pruned, nil // the newest exchange stays, even over the limit
			}
			// As many of the oldest as the excess takes at the session's
			// average size per exchange (a tenth more), never the newest:
			// a fixed step would wipe a session of big bodies under a small
			// limit. Re-measured after each step.
			per := max(used/int64(live.Exchanges), 1)
			n := int((used-limit)/per) + 1
			n = min(n+n/10, live.Exchanges-1, pruneChunk)
			n, err := s.pruneOldest(keep, nil, n)
			pruned += n
			if err != nil || n == 0 {
				return gone, pruned, err
			}
			continue
		}
		if err := s.deleteSession(oldest.ID); err != nil {
			return gone, pruned, err
		}
		gone = append(gone, *oldest)
	}
}

// deleteSession removes a session and its exchanges in one transaction.
func (s *Store) deleteSession(id string) error {
	return s.update(func(tx *bolt.Tx) error { return deleteSessionTx(tx, id) })
}

func deleteSessionTx(tx *bolt.Tx, id string) error {
	if eb := tx.Bucket(bucketExchanges); eb != nil && eb.Bucket([]byte(id)) != nil {
		if err := eb.DeleteBucket([]byte(id)); err != nil {
			return err
		}
	}
	if sb := tx.Bucket(bucketSessions); sb != nil {
		return sb.Delete([]byte(id))
	}
	return nil
}
