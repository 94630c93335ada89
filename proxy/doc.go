// Package proxy is mcptap's capture side: a transparent reverse proxy for the
// tunnel, the forward/MITM proxy for a browser, and the one recording
// http.RoundTripper (Transport) that both modes share.
//
// Caveats:
//
//   - Transparency is byte for byte for the request line (raw path and query,
//     however oddly encoded), header values, duplicate headers and bodies.
//     Header *names* reach the upstream in Go's canonical case (x-foo becomes
//     X-Foo): net/http canonicalises them on read and HTTP field names are
//     case-insensitive (RFC 9110 §5.1). Body framing (chunk sizes) may differ;
//     the bytes do not.
//   - Hop-by-hop headers (Connection, Keep-Alive, TE, Transfer-Encoding,
//     Upgrade except for upgrades, Proxy-*) are not forwarded, as HTTP requires.
//   - Recording never delays traffic: bodies are teed as they stream, up to
//     BodyCap bytes each, and exchanges are handed to a non-blocking Publish.
//     One exception, for speed rather than recording: a request body of
//     known length up to 64 KiB (without Expect: 100-continue) is read whole
//     before the request is sent on, so that its head and body leave in one
//     write; the upstream sees such a request once all of it has arrived.
//   - Every response body write is flushed to the client at once, whatever
//     its framing; the response head travels with the first body bytes.
//   - A request target whose path starts with "//" is forwarded through
//     url.URL's Path/RawPath, which escapes characters outside RFC 3986
//     ("{", "|", …); every other target is forwarded byte for byte.
//   - 101 Switching Protocols (WebSocket) is recorded as one exchange with its
//     handshake; the upgraded byte stream passes through unrecorded.
//   - Listeners bind loopback unless Config.AllowRemote is set.
package proxy
