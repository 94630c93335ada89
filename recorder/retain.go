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
			if eb := tx.Bucket(bucketExchanges); eb != nil && eb.Bucket([]byte(id)) != nil {
				if err := eb.DeleteBucket([]byte(id)); err != nil {
					return err
				}
			}
			if err := sb.Delete([]byte(id)); err != nil {
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
