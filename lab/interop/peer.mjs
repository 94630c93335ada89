// A real peer for mcptap's interop test, built only from the MCP TypeScript SDK:
//
//   node peer.mjs server --port P --public http://127.0.0.1:Q [--advertise-internal]
//     Streamable HTTP server transport + mcpAuthRouter (the SDK's demo in-memory
//     provider) + requireBearerAuth, listening on 127.0.0.1:P and naming the
//     public origin (mcptap's listener) in its metadata. With --advertise-internal
//     the metadata documents name its own origin instead, as a server behind a
//     tunnel configured with BASE_URL=http://localhost:… does; its 401 challenge
//     still names the public metadata URL.
//     Prints "READY" on stdout once listening.
//
//   node peer.mjs client --mcp URL --callback-port C --callback-public http://127.0.0.1:R
//     The SDK's OAuth client (auth() via StreamableHTTPClientTransport with an
//     OAuthClientProvider): discovery, DCR, PKCE, then a scripted browser that
//     follows the authorize redirect to the loopback callback (served here on C,
//     reached through mcptap at R), finishAuth, and initialize / tools/list /
//     tools/call. Prints one JSON line with what happened.
import express from 'express';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { mcpAuthRouter, getOAuthProtectedResourceMetadataUrl } from '@modelcontextprotocol/sdk/server/auth/router.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { DemoInMemoryAuthProvider } from '@modelcontextprotocol/sdk/examples/server/demoInMemoryOAuthProvider.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

function args(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) out[a.slice(2)] = true;
    else { out[a.slice(2)] = next; i++; }
  }
  return out;
}

function buildMcpServer() {
  const server = new McpServer({ name: 'mcptap-interop-ts-server', version: '1.0.0' });
  server.registerTool('echo', { description: 'Echo the text back.', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }));
  return server;
}

async function runServer(o) {
  const port = Number(o.port);
  const own = `http://127.0.0.1:${port}`;
  const pub = String(o.public).replace(/\/$/, '');
  const advertised = o['advertise-internal'] ? own : pub;
  const mcpUrl = new URL(advertised + '/mcp');
  const provider = new DemoInMemoryAuthProvider();
  const app = express();
  app.use(mcpAuthRouter({ provider, issuerUrl: new URL(advertised), resourceServerUrl: mcpUrl, scopesSupported: ['mcp:tools'], resourceName: 'mcptap interop' }));
  const bearer = requireBearerAuth({ verifier: provider, resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(new URL(pub + '/mcp')) });
  app.post('/mcp', bearer, express.json(), async (req, res) => {
    // Stateless: one server and transport per request.
    const server = buildMcpServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => { transport.close(); server.close(); });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  app.all('/mcp', bearer, (req, res) => res.status(405).set('Allow', 'POST').json({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null }));
  const srv = app.listen(port, '127.0.0.1', () => process.stdout.write('READY\n'));
  const stop = () => srv.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

class Provider {
  constructor(redirectUrl) { this._redirect = redirectUrl; }
  get redirectUrl() { return this._redirect; }
  get clientMetadata() {
    return {
      client_name: 'mcptap interop (MCP TypeScript SDK client)',
      redirect_uris: [this._redirect],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() { return randomBytes(24).toString('base64url'); }
  clientInformation() { return this._client; }
  saveClientInformation(info) { this._client = info; }
  tokens() { return this._tokens; }
  saveTokens(t) { this._tokens = t; }
  redirectToAuthorization(url) { this.authUrl = url; }
  saveCodeVerifier(v) { this._verifier = v; }
  codeVerifier() { return this._verifier; }
}

async function runClient(o) {
  const result = { steps: [] };
  const cbPort = Number(o['callback-port']);
  const redirect = String(o['callback-public']).replace(/\/$/, '') + '/oauth/callback';
  let gotCode;
  const codeSeen = new Promise((resolve) => { gotCode = resolve; });
  const cb = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname !== '/oauth/callback') { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': 'text/html' }).end('<p>Authorization complete. You can close this window.</p>');
    gotCode({ code: u.searchParams.get('code'), state: u.searchParams.get('state') });
  });
  await new Promise((r) => cb.listen(cbPort, '127.0.0.1', r));
  const provider = new Provider(redirect);
  const url = new URL(o.mcp);
  try {
    const first = new Client({ name: 'mcptap-interop-ts-client', version: '1.0.0' });
    try {
      await first.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
      result.steps.push('connected without authorization (unexpected)');
    } catch (e) {
      if (!(e instanceof UnauthorizedError)) throw e;
      result.steps.push('401 → auth() ran discovery, registration and built the authorize URL');
    }
    if (!provider.authUrl) throw new Error('the SDK never asked to open an authorization URL');
    // The scripted browser: authorize (auto-approved by the demo provider) → 302 → callback.
    const a = await fetch(provider.authUrl, { redirect: 'manual' });
    const loc = a.headers.get('location');
    result.steps.push(`authorize answered ${a.status}`);
    if (!loc) throw new Error(`authorize answered ${a.status} without Location`);
    const c = await fetch(new URL(loc, provider.authUrl));
    result.steps.push(`callback answered ${c.status}`);
    const { code } = await codeSeen;
    const transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
    await transport.finishAuth(code);
    result.steps.push('token exchanged');
    const client = new Client({ name: 'mcptap-interop-ts-client', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
    const tools = await client.listTools();
    result.tools = tools.tools.map((t) => t.name);
    const call = await client.callTool({ name: 'echo', arguments: { text: 'hello through mcptap' } });
    result.text = call.content.map((x) => x.text).join('');
    await client.close();
    result.ok = true;
  } catch (e) {
    result.ok = false;
    result.error = String(e && e.message ? e.message : e);
  } finally {
    cb.close();
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

const [mode, ...rest] = process.argv.slice(2);
const o = args(rest);
if (mode === 'server') await runServer(o);
else if (mode === 'client') await runClient(o);
else { process.stderr.write('usage: node peer.mjs server|client …\n'); process.exit(2); }
