// A real HAR producer for mcptap's tests: Chromium's own DevTools HAR writer,
// the code behind the Network panel's "Export HAR" (Chrome 130+ offers it
// sanitized, without Authorization, Cookie and Set-Cookie, and "with
// sensitive data").
//
// Debian's Chromium is started headless with DevTools open for its tab
// (--auto-open-devtools-for-tabs). The script turns on the Network panel's
// "Preserve log" in that DevTools window, as a user capturing an OAuth dance
// must, opens URL in the tab, signs in and consents on oidc-provider's
// development pages when they show, and waits until the page's title starts
// with DONE. Then it asks the DevTools window's HAR writer
// (models/har: Writer.harStringForRequests over the NetworkLog, the
// function the export calls) for both files.
//
// Everything goes over the Chrome DevTools Protocol with Node's own
// WebSocket (node --experimental-websocket on Node 20).
//
// Environment: URL (the page to open), DONE (the title prefix that ends the
// run), FINAL (the URL of the page's last request: the export waits until
// DevTools has it finished with a 2xx), HAR (the file to write), SANITIZED
// (the sanitized file to write), CHROMIUM (default /usr/bin/chromium).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch, signIn } from './producer.mjs';

const { URL: start, DONE, FINAL, HAR, SANITIZED, CHROMIUM = '/usr/bin/chromium' } = process.env;
if (!start || !DONE || !FINAL || !HAR || !SANITIZED) {
  console.error('need URL, DONE, FINAL, HAR and SANITIZED');
  process.exit(2);
}

const profile = mkdtempSync(join(tmpdir(), 'devtools-har-'));
const { proc: browser, waitFor, exited } = launch('chromium', CHROMIUM, [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  `--user-data-dir=${profile}`, '--remote-debugging-port=0', '--auto-open-devtools-for-tabs', 'about:blank',
]);

// cdp connects to one target's WebSocket and returns its evaluate.
async function cdp(wsURL) {
  const ws = new WebSocket(wsURL);
  let next = 0;
  const pending = new Map();
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    const p = pending.get(m.id);
    if (p) {
      pending.delete(m.id);
      m.error ? p.reject(new Error(JSON.stringify(m.error))) : p.resolve(m.result);
    }
  };
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  const send = (method, params) => new Promise((resolve, reject) => {
    const id = ++next;
    pending.set(id, { resolve, reject });
    ws.send(JSON.stringify({ id, method, params }));
  });
  return {
    send,
    async evaluate(expression) {
      const r = await send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
      if (r.exceptionDetails) throw new Error(r.exceptionDetails.exception?.description ?? r.exceptionDetails.text);
      return r.result.value;
    },
    close: () => ws.close(),
  };
}

let code = 1;
let port;
try {
  port = await waitFor('DevToolsActivePort', () => readFileSync(join(profile, 'DevToolsActivePort'), 'utf8').split('\n')[0] || undefined);
  const targets = () => fetch(`http://127.0.0.1:${port}/json/list`).then((r) => r.json());
  const [tab, devtools] = await waitFor('the tab and its DevTools window', async () => {
    const ts = await targets();
    const page = ts.find((t) => t.type === 'page' && t.url === 'about:blank');
    const dt = ts.find((t) => t.type === 'page' && t.url.startsWith('devtools://devtools/'));
    return page && dt ? [page, dt] : undefined;
  });
  const front = await cdp(devtools.webSocketDebuggerUrl);
  // The DevTools front end is up once its network log knows the tab.
  await waitFor('the DevTools front end', () => front.evaluate(`(async () => {
    const Logs = await import('./models/logs/logs.js');
    const SDK = await import('./core/sdk/sdk.js');
    return SDK.TargetManager.TargetManager.instance().targets().length > 0 && Logs.NetworkLog.NetworkLog.instance() ? true : undefined;
  })()`));
  await front.evaluate(`(async () => {
    const Common = await import('./core/common/common.js');
    Common.Settings.Settings.instance().moduleSetting('network-log.preserve-log').set(true);
  })()`);

  const page = await cdp(tab.webSocketDebuggerUrl);
  await page.send('Page.enable', {});
  await page.send('Page.navigate', { url: start });
  // Sign in and consent as a user would.
  const title = await signIn(waitFor, (expr) => page.evaluate(expr), DONE);
  // DevTools hears of a request's end after the page does.
  await waitFor(`DevTools to have ${FINAL} finished`, () => front.evaluate(`(async () => {
    const Logs = await import('./models/logs/logs.js');
    return Logs.NetworkLog.NetworkLog.instance().requests()
      .some((r) => r.url() === ${JSON.stringify(FINAL)} && r.finished && r.statusCode >= 200 && r.statusCode < 300) || undefined;
  })()`));

  const writer = (sanitize) => front.evaluate(`(async () => {
    const HAR = await import('./models/har/har.js');
    const Logs = await import('./models/logs/logs.js');
    const Common = await import('./core/common/common.js');
    // What the Network panel's export takes (NetworkLogView.harRequests):
    // finished HTTP requests, nothing filtered out by the panel.
    const requests = Logs.NetworkLog.NetworkLog.instance().requests()
      .filter((r) => r.parsedURL.isValid && /^(https?|wss?)$/.test(r.scheme) && r.finished);
    const progress = new Common.Progress.CompositeProgress(new Common.Progress.Progress());
    return HAR.Writer.Writer.harStringForRequests(requests, { sanitize: ${sanitize} }, progress);
  })()`);
  writeFileSync(HAR, await writer(false), { mode: 0o600 });
  writeFileSync(SANITIZED, await writer(true), { mode: 0o600 });
  console.log(JSON.stringify({ har: HAR, sanitized: SANITIZED, title }));
  front.close();
  page.close();
  code = 0;
} catch (e) {
  console.error(e);
} finally {
  // Close the browser as a user does (every process ends), then remove
  // its profile; a browser that does not close is killed.
  try {
    const { webSocketDebuggerUrl } = await (await fetch(`http://127.0.0.1:${port}/json/version`)).json();
    const b = await cdp(webSocketDebuggerUrl);
    await b.send('Browser.close', {}).catch(() => {});
  } catch {
    browser.kill('SIGKILL');
  }
  await exited();
  rmSync(profile, { recursive: true, force: true, maxRetries: 10 });
}
process.exit(code);
