package mcptap

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"strings"

	"github.com/andybalholm/brotli"
)

// maxDecoded bounds what DecodeContent inflates, so a small hostile body
// cannot become gigabytes in the analysis.
const maxDecoded = 16 << 20

// DecodeContent undoes the Content-Encoding of h (gzip, x-gzip, deflate, br,
// or a list of them, applied right to left) on body, as it crossed the wire.
// ok is false, and body is returned as is, when there is no encoding, an
// encoding it does not know, or data that does not decode; a body cut short
// (recorded up to the cap) decodes as far as it goes. Recorded bytes are
// never changed: callers keep the raw body and analyse the decoded one.
func DecodeContent(h http.Header, body []byte) (decoded []byte, ok bool) {
	ce := strings.TrimSpace(h.Get("Content-Encoding"))
	if ce == "" || len(body) == 0 {
		return body, false
	}
	codings := strings.Split(ce, ",")
	out := body
	for i := len(codings) - 1; i >= 0; i-- {
		var r io.Reader
		var err error
		switch strings.ToLower(strings.TrimSpace(codings[i])) {
		case "identity", "":
			continue
		case "gzip", "x-gzip":
			r, err = gzip.NewReader(bytes.NewReader(out))
		case "deflate":
			// RFC 9110 deflate is zlib; some servers send raw deflate.
			if r, err = zlib.NewReader(bytes.NewReader(out)); err != nil {
				r, err = flate.NewReader(bytes.NewReader(out)), nil
			}
		case "br":
			r = brotli.NewReader(bytes.NewReader(out))
		default:
			return body, false
		}
		if err != nil {
			return body, false
		}
		dec, rerr := io.ReadAll(io.LimitReader(r, maxDecoded))
		if rerr != nil && len(dec) == 0 {
			return body, false
		}
		out = dec
	}
	return out, true
}
