package recorder

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/mcptap/mcptap"
)

// SalvageResult says what Salvage copied and what it could not.
type SalvageResult struct {
	Sessions  int      // sessions copied, whole or in part
	Exchanges int      // exchanges copied
	Partial   []string // sessions copied in part: "ID: N exchanges, then <why>"
	Lost      []string // sessions (or the rest of the list) not copied at all, and why
}

// salvagePage bounds what one read transaction of Salvage reads, so damage
// loses at most the page it sits in, not the session.
const salvagePage = 64

// Salvage copies every session and exchange of src that can still be read
// into dst, a new file: for a database that commands report damaged
// (ErrDamaged). It reads in small transactions and keeps everything read
// before a damaged page; what it could not read is listed in the result.
func Salvage(src, dst *Store) (SalvageResult, error) {
	var res SalvageResult
	var ids []string
	err := src.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		})
	})
	if err != nil {
		res.Lost = append(res.Lost, fmt.Sprintf("the session list after %d sessions: %v", len(ids), err))
	}
	for _, id := range ids {
		sess, err := src.Session(id)
		if err != nil {
			res.Lost = append(res.Lost, fmt.Sprintf("%s: %v", id, err))
			continue
		}
		var exs []mcptap.Exchange
		after := ""
		var cut error
		for {
			next, err := src.ExchangePage(id, after, salvagePage, func(ex mcptap.Exchange) error {
				exs = append(exs, ex)
				after = ex.ID
				return nil
			})
			if err != nil {
				cut = err
				break
			}
			if next == "" {
				break
			}
			after = next
		}
		sess.Exchanges = len(exs)
		if err := dst.Import(sess, exs); err != nil {
			return res, fmt.Errorf("salvage into %s: %w", dst.Path(), err)
		}
		res.Sessions++
		res.Exchanges += len(exs)
		if cut != nil {
			res.Partial = append(res.Partial, fmt.Sprintf("%s: %d exchanges, then: %v", id, len(exs), cut))
		}
	}
	return res, nil
}
