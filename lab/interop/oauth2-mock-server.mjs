// A second real third-party authorization server for mcptap's tests:
// oauth2-mock-server (axa-group), an OpenID provider for automated tests. It
// has no registration endpoint (clients are pre-registered: any client_id is
// accepted), publishes only /.well-known/openid-configuration, authorizes at
// once without a login page, and signs RS256 JWTs with keys it generates.
//
// Environment: PORT (listen on 127.0.0.1), ISSUER (the URL clients use,
// mcptap's route in front of this server), RESOURCE (the audience of the
// access tokens: the MCP URL).
import { OAuth2Server } from 'oauth2-mock-server';

const { PORT, ISSUER, RESOURCE } = process.env;
if (!PORT || !ISSUER || !RESOURCE) {
  console.error('need PORT, ISSUER and RESOURCE');
  process.exit(2);
}
const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
server.issuer.url = ISSUER;
server.service.on('beforeTokenSigning', (token) => {
  token.payload.aud = RESOURCE;
});
await server.start(Number(PORT), '127.0.0.1');
console.log(JSON.stringify({ listening: `http://127.0.0.1:${PORT}`, issuer: ISSUER }));
process.on('SIGTERM', async () => { await server.stop(); process.exit(0); });
