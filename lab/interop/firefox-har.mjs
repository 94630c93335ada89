// A real HAR producer for mcptap's tests: Firefox's own HAR writer, the code
// behind the Network Monitor's "Save All As HAR" and "Copy All As HAR"
// (HarExporter over the panel's displayed requests).
//
// Debian's Firefox ESR is started headless with Marionette, its own remote
// protocol. In the browser's chrome the script opens the toolbox on the
// Network Monitor for the tab, with "Persist Logs" on (as a user capturing
// an OAuth dance across pages must); in the page it opens URL, signs in and
// consents on oidc-provider's development pages when they show, and waits
// until the title starts with DONE. Then it asks the Network Monitor's
// HarExporter for the file.
//
// Environment: URL (the page to open), DONE (the title prefix that ends the
// run), FINAL (the URL of the page's last request: the export waits until
// the Network Monitor shows it answered 2xx), HAR (the file to write),
// FIREFOX (default /usr/bin/firefox-esr).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch, signIn } from './producer.mjs';

const { URL: start, DONE, FINAL, HAR, FIREFOX = '/usr/bin/firefox-esr' } = process.env;
if (!start || !DONE || !FINAL || !HAR) {
  console.error('need URL, DONE, FINAL and HAR');
  process.exit(2);
}

// A fresh profile: Marionette on a port of its choosing (written to
// MarionetteActivePort), persistent network logs, and none of the
// browser's own traffic to the outside (this machine's network is closed).
const profile = mkdtempSync(join(tmpdir(), 'firefox-har-'));
const prefs = {
  'marionette.port': 0,
  'devtools.netmonitor.persistlog': true,
  'devtools.netmonitor.har.includeResponseBodies': true,
  'browser.shell.checkDefaultBrowser': false,
  'browser.startup.homepage_override.mstone': 'ignore',
  'browser.aboutwelcome.enabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'toolkit.telemetry.reportingpolicy.firstRun': false,
  'app.update.disabledForTesting': true,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'browser.safebrowsing.malware.enabled': false,
  'browser.safebrowsing.phishing.enabled': false,
  'browser.safebrowsing.downloads.enabled': false,
  'extensions.update.enabled': false,
  'extensions.getAddons.cache.enabled': false,
  'services.settings.server': 'http://127.0.0.1:9/',
  'network.dns.disablePrefetch': true,
  'network.prefetch-next': false,
};
writeFileSync(join(profile, 'user.js'),
  Object.entries(prefs).map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});\n`).join(''));

const { proc: browser, waitFor, exited, log } = launch('firefox', FIREFOX,
  ['-headless', '-marionette', '-remote-allow-system-access', '-no-remote', '-profile', profile, 'about:blank'],
  { env: { ...process.env, MOZ_HEADLESS: '1' } });

// marionette speaks Marionette's protocol: "length:json" packets, commands
// [0, id, name, params], answers [1, id, error, result].
async function marionette(port) {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  let buf = Buffer.alloc(0);
  const packets = [];
  let wake = null;
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const colon = buf.indexOf(':');
      if (colon < 0) break;
      const n = Number(buf.subarray(0, colon).toString());
      if (buf.length < colon + 1 + n) break;
      packets.push(JSON.parse(buf.subarray(colon + 1, colon + 1 + n).toString()));
      buf = buf.subarray(colon + 1 + n);
    }
    if (wake) { wake(); wake = null; }
  });
  const next = async () => {
    while (!packets.length) await new Promise((resolve) => { wake = resolve; });
    return packets.shift();
  };
  await next(); // the greeting
  let id = 0;
  const send = async (name, params = {}) => {
    const msg = JSON.stringify([0, ++id, name, params]);
    sock.write(`${Buffer.byteLength(msg)}:${msg}`);
    for (;;) {
      const [, rid, error, result] = await next();
      if (rid !== id) continue;
      if (error) throw new Error(`${name}: ${error.error}: ${error.message}`);
      return result;
    }
  };
  return { send, close: () => sock.end() };
}

let code = 1;
let m;
try {
  const port = await waitFor('MarionetteActivePort', () => readFileSync(join(profile, 'MarionetteActivePort'), 'utf8').trim() || undefined);
  m = await marionette(Number(port));
  await m.send('WebDriver:NewSession', { capabilities: { alwaysMatch: { pageLoadStrategy: 'normal' } } });
  const chrome = async (script) => {
    await m.send('Marionette:SetContext', { value: 'chrome' });
    try {
      // The script's promise is awaited (WebDriver's Execute Script).
      return (await m.send('WebDriver:ExecuteScript', { script: `return (async () => { ${script} })();`, args: [] })).value;
    } finally {
      await m.send('Marionette:SetContext', { value: 'content' });
    }
  };
  const devtools = `
    const { require } = ChromeUtils.importESModule("resource://devtools/shared/loader/Loader.sys.mjs");
    const { gDevTools } = require("devtools/client/framework/devtools");
    const tab = window.gBrowser.selectedTab;`;
  // The toolbox on the Network Monitor, before the first request.
  await chrome(`${devtools}
    await gDevTools.showToolboxForTab(tab, { toolId: "netmonitor" });
    return true;`);

  await m.send('WebDriver:Navigate', { url: start });
  const title = await signIn(waitFor,
    async (expr) => (await m.send('WebDriver:ExecuteScript', { script: `return ${expr};`, args: [] })).value, DONE);

  // A user saves once the panel has caught up: it shows the page's last
  // request answered, and its list (each request's status and timing) then
  // stays the same over three looks in a row. Firefox still loses the
  // status of a fetch that finished as its page navigated away: that stays
  // as it is.
  let last = '';
  let same = 0;
  await waitFor('the Network Monitor to catch up', async () => {
    const snap = JSON.parse(await chrome(`${devtools}
      const toolbox = gDevTools.getToolboxForTab(tab);
      const api = await toolbox.getNetMonitorAPI();
      const { getDisplayedRequests } = require("devtools/client/netmonitor/src/selectors/index");
      return JSON.stringify(getDisplayedRequests(api.store.getState()).map((r) => [r.id, r.url, r.status, r.totalTime]));`));
    const key = JSON.stringify(snap);
    same = key === last ? same + 1 : 0;
    last = key;
    const answered = snap.some(([, url, status]) => url === FINAL && Number(status) >= 200 && Number(status) < 300);
    return answered && same >= 3 ? true : undefined;
  });

  // What "Save All As HAR" writes: HarExporter over the displayed requests
  // (RequestListContextMenu), with the panel's connector.
  const har = await chrome(`${devtools}
    const toolbox = gDevTools.getToolboxForTab(tab);
    const api = await toolbox.getNetMonitorAPI();
    const { getDisplayedRequests } = require("devtools/client/netmonitor/src/selectors/index");
    const { HarExporter } = require("devtools/client/netmonitor/src/har/har-exporter");
    return HarExporter.fetchHarData({ connector: api.connector, items: getDisplayedRequests(api.store.getState()) });`);
  if (typeof har !== 'string' || !har) {
    throw new Error('the Network Monitor exported nothing');
  }
  writeFileSync(HAR, har, { mode: 0o600 });
  console.log(JSON.stringify({ har: HAR, title }));
  code = 0;
} catch (e) {
  console.error(e, log());
} finally {
  try {
    await m.send('Marionette:Quit', { flags: ['eForceQuit'] });
  } catch {
    browser.kill('SIGKILL');
  }
  m?.close();
  await exited();
  rmSync(profile, { recursive: true, force: true, maxRetries: 10 });
}
process.exit(code);
