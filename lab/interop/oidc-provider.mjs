// A real third-party authorization server for mcptap's tests: node
// oidc-provider (panva) with dynamic client registration, PKCE, resource
// indicators (RFC 8707) issuing JWT access tokens for the MCP resource, and
// its built-in development login and consent pages.
//
// Environment: PORT (listen on 127.0.0.1), ISSUER (the URL clients use,
// usually mcptap's route in front of this server), RESOURCE (the MCP URL the
// tokens are for), JWKS (a private JWK set to sign with, from the test).
import Provider from 'oidc-provider';

const { PORT, ISSUER, RESOURCE, JWKS } = process.env;
if (!PORT || !ISSUER || !RESOURCE || !JWKS) {
  console.error('need PORT, ISSUER, RESOURCE and JWKS');
  process.exit(2);
}

const provider = new Provider(ISSUER, {
  jwks: JSON.parse(JWKS),
  scopes: ['openid', 'offline_access', 'mcp:tools'],
  clientDefaults: {
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  },
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) {
          throw new Error('unknown resource ' + resourceIndicator);
        }
        return { scope: 'mcp:tools', audience: RESOURCE, accessTokenFormat: 'jwt', accessTokenTTL: 3600 };
      },
    },
  },
});
provider.proxy = true;
provider.on('server_error', (ctx, err) => console.error('server_error', ctx.path, err));

const server = provider.listen(Number(PORT), '127.0.0.1', () => {
  console.log(JSON.stringify({ listening: `http://127.0.0.1:${PORT}`, issuer: ISSUER }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
