// Package chromium finds and starts a Chromium-family browser with a
// throwaway profile that sends everything through mcptap's browser proxy and
// trusts mcptap's CA in that profile only.
//
// Caveats: the SPKI trust flag works only with --user-data-dir, so every
// launch needs a fresh profile directory; as root Chromium needs --no-sandbox.
// Nothing here changes the system's or the user's own browser trust.
package chromium
