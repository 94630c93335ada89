package oauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"sort"
	"strings"
	"unicode/utf8"
)

// Layer is one step of decoding a value. Layers are listed outside in: the raw
// value first, then what each decoding revealed. Path says which part of the
// value a layer belongs to (".s" is the member s of a JSON object).
type Layer struct {
	Depth int    `json:"depth"`
	Path  string `json:"path,omitempty"`
	Kind  string `json:"kind"` // raw, percent-decoded, percent-decoded-twice, prefix, base64url, base64url-padded, base64-unpadded, base64, json, jwt, jwe, uuid, hex
	Text  string `json:"text"`
	JSON  any    `json:"json,omitempty"`
	Note  string `json:"note,omitempty"`
}

// Known state prefixes (reference §1.3).
const (
	prefixChatGPTState  = "oauth_s_"
	prefixPlatformRelay = "openai_platform_oauth_relay__"
)

const (
	maxDecodeDepth  = 6
	maxDecodeLayers = 64
)

// Decode lists every decoding layer of a state, token or encoded value:
// percent-decoding once and twice, known prefixes, base64 in both alphabets
// with and without padding, JSON (recursing into string members) and JWTs.
// The first layer is always the raw value.
func Decode(value string) []Layer {
	d := decoder{}
	d.add(Layer{Kind: "raw", Text: value})
	d.walk(value, "", 0)
	return d.layers
}

// decodeState returns the first JSON object found inside a state value, or nil.
func decodeState(value string) map[string]any {
	for _, l := range Decode(value) {
		if m, ok := l.JSON.(map[string]any); ok {
			return m
		}
	}
	return nil
}

type decoder struct{ layers []Layer }

func (d *decoder) add(l Layer) bool {
	if len(d.layers) >= maxDecodeLayers {
		return false
	}
	d.layers = append(d.layers, l)
	return true
}

func (d *decoder) walk(v, path string, depth int) {
	if depth >= maxDecodeDepth || v == "" || len(d.layers) >= maxDecodeLayers {
		return
	}
	if u := unescape(v, false); u != v {
		d.add(Layer{Depth: depth + 1, Path: path, Kind: "percent-decoded", Text: u})
		if u2 := unescape(u, false); u2 != u {
			d.add(Layer{Depth: depth + 2, Path: path, Kind: "percent-decoded-twice", Text: u2,
				Note: "the value was percent-encoded twice"})
			u = u2
			depth++
		}
		d.walk(u, path, depth+1)
		return
	}
	switch {
	case strings.HasPrefix(v, prefixChatGPTState):
		d.add(Layer{Depth: depth + 1, Path: path, Kind: "prefix", Text: v,
			Note: "ChatGPT connector OAuth state id (oauth_s_ + hex)"})
		return
	case strings.HasPrefix(v, prefixPlatformRelay):
		rest := v[len(prefixPlatformRelay):]
		d.add(Layer{Depth: depth + 1, Path: path, Kind: "prefix", Text: rest,
			Note: "ChatGPT platform app editor relay state (" + prefixPlatformRelay + " + base64 JSON)"})
		d.walk(rest, path, depth+1)
		return
	}
	if isUUID(v) {
		d.add(Layer{Depth: depth + 1, Path: path, Kind: "uuid", Text: v, Note: "UUID (ChatGPT plugins used these as state)"})
		return
	}
	if t := strings.TrimSpace(v); len(t) > 1 && (t[0] == '{' || t[0] == '[') {
		if j, ok := parseJSON([]byte(t)); ok {
			d.add(Layer{Depth: depth + 1, Path: path, Kind: "json", Text: t, JSON: j})
			d.members(j, path, depth+1)
			return
		}
	}
	if strings.Count(v, ".") == 2 || strings.Count(v, ".") == 4 {
		if tok := DecodeJWT(v); tok.Kind != "opaque" {
			kind := tok.Kind
			j := map[string]any{"header": tok.Header}
			if tok.Kind == "jwt" {
				j["claims"] = tok.Claims
			}
			d.add(Layer{Depth: depth + 1, Path: path, Kind: kind, Text: v, JSON: j, Note: tok.Err})
			return
		}
	}
	if kind, text, ok := decodeBase64(v); ok {
		d.add(Layer{Depth: depth + 1, Path: path, Kind: kind, Text: text})
		d.walk(text, path, depth+1)
		return
	}
	if isHex(v) && len(v) >= 16 {
		d.add(Layer{Depth: depth + 1, Path: path, Kind: "hex", Text: v, Note: "random hex, nothing inside"})
	}
}

func (d *decoder) members(j any, path string, depth int) {
	switch v := j.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if s, ok := v[k].(string); ok {
				d.walk(s, path+"."+k, depth)
			} else {
				d.members(v[k], path+"."+k, depth)
			}
		}
	case []any:
		for i, e := range v {
			p := path + "[" + itoa(i) + "]"
			if s, ok := e.(string); ok {
				d.walk(s, p, depth)
			} else {
				d.members(e, p, depth)
			}
		}
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}

func parseJSON(b []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, false
	}
	return v, true
}

// decodeBase64 tries base64url and standard base64, unpadded and padded, and
// accepts the first decoding that yields readable text. Random-looking
// decodings of ordinary words are rejected by the text test.
func decodeBase64(v string) (kind, text string, ok bool) {
	if len(v) < 8 {
		return "", "", false
	}
	encs := []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding}
	for _, e := range encs {
		b, err := e.Strict().DecodeString(v)
		if err != nil {
			b, err = e.DecodeString(v)
		}
		if err == nil && readable(b) {
			return base64Kind(v), string(b), true
		}
	}
	return "", "", false
}

// base64Kind names the encoding by what the value shows: URL-only or
// standard-only characters, and padding. Values using neither alphabet's
// special characters are valid in both; they are named by padding alone.
func base64Kind(v string) string {
	url, std, pad := strings.ContainsAny(v, "-_"), strings.ContainsAny(v, "+/"), strings.HasSuffix(v, "=")
	switch {
	case url && pad:
		return "base64url-padded"
	case url:
		return "base64url"
	case std && !pad:
		return "base64-unpadded"
	}
	return "base64"
}

func readable(b []byte) bool {
	if len(b) == 0 || !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r < 0x20 && r != '\n' && r != '\r' && r != '\t' || r == 0x7f || r == utf8.RuneError {
			return false
		}
	}
	return true
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !ishex(s[i]) {
				return false
			}
		}
	}
	return true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !ishex(s[i]) {
			return false
		}
	}
	return s != ""
}
