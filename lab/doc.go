// Package lab is a complete local OAuth world for the demo and the end-to-end
// tests: an MCP server (the official go-sdk, Streamable HTTP) protected by an
// OAuth authorization server, an optional inner identity provider behind that
// server acting as an OAuth proxy, and a connector-like client (ChatGPT-,
// Claude- and VS Code-like profiles), each with switchable faults that
// reproduce the failure modes mcptap diagnoses.
//
// Caveats: everything binds loopback only and is meant for tests and the demo,
// not for protecting anything. Access tokens are HS256 JWTs signed with a
// per-world random key. Public URLs (what metadata documents name) are set
// after the listeners are bound, so that they can name mcptap's listeners
// instead of the lab's own addresses; a world used before SetPublic names its
// own addresses.
package lab
