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
// Caveats: only requests that reached the chosen upstream are re-sent (for a
// proxy session, the reverse-mode exchanges of one route; for a HAR file, the
// requests to one origin): the client's callback, its own backend and a
// separate authorization server are not. A value is learned only when the old
// and the new response carry it in the same place; a flow whose new responses
// take another path than the recorded ones (an error where there was a
// redirect) goes on with recorded values and its later requests fail, which the
// new session's findings show. Requests whose recorded body was truncated are
// skipped. A GET event stream is read for Options.StreamWait and then closed.
package resend
