package recorder

import (
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

// PruneToSize deletes the oldest sessions (by start), except keep, until the
// data takes at most max bytes (Used), and returns them. When only keep is
// left it stops, over the limit if need be: the live session is never cut.
func (s *Store) PruneToSize(max int64, keep string) ([]mcptap.Session, error) {
	var gone []mcptap.Session
	for {
		used, err := s.Used()
		if err != nil || used <= max {
			return gone, err
		}
		ss, err := s.Sessions()
		if err != nil {
			return gone, err
		}
		var oldest *mcptap.Session
		for i := range ss {
			if ss[i].ID != keep && (oldest == nil || ss[i].Started.Before(oldest.Started)) {
				oldest = &ss[i]
			}
		}
		if oldest == nil {
			return gone, nil
		}
		if err := s.deleteSession(oldest.ID); err != nil {
			return gone, err
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
