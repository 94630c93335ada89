package tui

import (
	"net/http"
	"strings"

	"github.com/mcptap/mcptap"
	"github.com/mcptap/mcptap/redact"
)

// secrets hides, on every screen, the values that grant access (codes,
// tokens, verifiers, client secrets, assertions, cookies, Authorization), as
// reports do: a keyed hash that keeps length and alphabet, the same for the
// same value, so hops still visibly correlate (‹redacted:len=43:b64url:3f9a1c›).
// A screenshot of the TUI pasted into an issue leaks nothing. s shows them
// (and hides them again) for the moment a raw value is needed; c copies an
// exchange as curl with its secrets either way.
//
// The redactor learns what is shown: the exchange an exchange screen opens
// (bodies included) and the heads of its flow's hops, so memory grows with
// what the user looks at, not with the traffic. Targets in the lists are
// hidden by parameter name, which needs no learning.
type secrets struct {
	r       *redact.Redactor
	learned map[string]bool // exchange ID (+"/full" once its bodies were learned)
	reveal  bool
	gen     int // counts what the redactor learned: a hidden copy made before is stale
}

func newSecrets(key []byte) secrets {
	return secrets{r: redact.New(key), learned: map[string]bool{}}
}

// learnExchange teaches the redactor what ex carries, once per exchange (and
// once more when its bodies arrive).
func (s *shared) learnExchange(ex mcptap.Exchange) {
	key := ex.ID
	if len(ex.ReqBody) > 0 || len(ex.RespBody) > 0 {
		key += "/full"
	}
	if s.secrets.learned[key] {
		return
	}
	s.secrets.learned[key] = true
	s.secrets.r.Learn(ex)
	s.secrets.gen++
}

// learnFlow learns the hops of the flow ex belongs to, as far as the model
// holds them (heads when a loader keeps bodies in the store).
func (s *shared) learnFlow(f mcptap.Flow) {
	for _, h := range f.Hops {
		if ex, ok := s.exchange(h.Exchange); ok {
			s.learnExchange(ex)
		}
	}
}

// shown is ex as the screens show it: its secrets hidden unless revealed.
func (s *shared) shown(ex mcptap.Exchange) mcptap.Exchange {
	if s.secrets.reveal {
		return ex
	}
	s.learnExchange(ex)
	return s.secrets.r.Exchange(ex)
}

// hideText hides the learned secrets in s.
func (s *shared) hideText(v string) string {
	if s.secrets.reveal || v == "" {
		return v
	}
	return s.secrets.r.Text(v)
}

// hideTarget hides a request target's (or a whole URL's) secret parameters
// by name, and any learned secret elsewhere in it.
func (s *shared) hideTarget(t string) string {
	if s.secrets.reveal {
		return t
	}
	return s.secrets.r.Text(s.secrets.r.Target(t))
}

// hideEvidence hides the compared values of evidence about a secret field
// ("form.code_verifier", "query.code", "header.Authorization") and any
// learned secret in the rest.
func (s *shared) hideEvidence(ev mcptap.Evidence) mcptap.Evidence {
	if s.secrets.reveal {
		return ev
	}
	name := ev.Field
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	switch http.CanonicalHeaderKey(name) {
	case "Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie":
		name = "token"
	}
	if redact.IsSecretName(name) {
		for _, v := range []*string{&ev.Want, &ev.Got} {
			if *v != "" {
				*v = s.secrets.r.Secret(*v)
			}
		}
	}
	ev.Want, ev.Got, ev.Note = s.hideText(ev.Want), s.hideText(ev.Got), s.hideText(ev.Note)
	return ev
}
