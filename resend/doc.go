// Package resend re-sends the client requests of a recorded session to an
// upstream as a new capture session, so that a fix on the server side can be
// checked against exactly the traffic that failed, without the client (a
// hosted connector, an IDE) having to go through the setup again.
//
// The recorded requests are sent in recorded order, each only after the
// previous one's response, to a fresh live capture whose single route
// forwards to the upstream; the Host header and every other end-to-end header
// stay as recorded. Values that are only good once are carried through the
// new flow: the authorization's state and PKCE verifier (and challenge) are
// replaced by fresh ones, and every value a new response hands out (client_id
// and client_secret of a registration, the code in an authorization redirect,
// access and refresh tokens, Mcp-Session-Id, cookies, a consent page's hidden
// form fields) replaces the recorded one in the requests that follow, by
// exact-byte replacement of the old value (raw, percent-encoded or
// JSON-escaped) in the target, the headers and the body.
//
// Which requests: for a proxy session, the reverse-mode exchanges of one
// route (by the upstream they were forwarded to); for a HAR file, the requests
// to one origin (scheme://host). Options.From names it; otherwise it is the
// recorded upstream equal to the new one, else the one that served the MCP
// requests and resource metadata (as the analysis classifies them), else the
// only one. A HAR written by mcptap's own export keeps its routes.
//
// Caveats: only requests that reached the chosen upstream are re-sent: the
// client's callback, its own backend, a separate authorization server and an
// inner identity provider behind an OAuth proxy are not, so a flow that needs
// a value only those hand out (the inner provider's code) cannot be carried
// through. The comparison is between the recorded and the new analysis of the
// re-sent requests only: rules that the rest of the recording raised are
// listed apart as not re-checked.
//
// A value is learned only when the old and the new response carry it in the
// same place; a flow whose new responses take another path than the recorded
// ones (an error where there was a redirect) goes on with recorded values and
// its later requests fail, which the new session's findings show. A redacted
// recording (mcptap export's default) carries placeholders instead of secrets;
// they go out as they are unless a fresh value replaces them, so re-send an
// unredacted one. Requests whose recorded body was truncated, and targets
// starting with "//", are skipped. A GET event stream is read for
// Options.StreamWait and then closed. The client is not re-run: its requests
// are replayed as recorded, so a fix that needs the client to behave
// differently (a client-side fault) cannot be checked this way.
package resend
