// What the browser-driving HAR producers (devtools-har.mjs,
// firefox-har.mjs) share: starting the browser and waiting on it, and the
// user's part of the dance on oidc-provider's development pages.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

// launch starts a browser; waitFor(what, f) polls f until it returns
// something other than undefined, and fails as soon as the browser exits.
// Every wait ends with the run's own deadline, set by the test that starts
// the producer.
export function launch(name, bin, args, options = {}) {
  const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], ...options });
  let log = '';
  proc.stderr.on('data', (d) => { log = (log + d).slice(-4000); });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  async function waitFor(what, f) {
    for (;;) {
      if (proc.exitCode !== null) {
        throw new Error(`${name} exited (${proc.exitCode}) waiting for ${what}: ${log}`);
      }
      try {
        const v = await f();
        if (v !== undefined) return v;
      } catch { /* not there yet */ }
      await sleep(100);
    }
  }
  return { proc, waitFor, exited: () => (proc.exitCode !== null ? Promise.resolve() : exited), log: () => log };
}

// signIn plays the user until the page's title starts with done: on each
// page that shows a submit button, once, it fills the login form when there
// is one and presses the button. evaluate(expression) evaluates a
// JavaScript expression in the page and returns its value. It returns the
// title.
export async function signIn(waitFor, evaluate, done) {
  let pressed = '';
  return waitFor(`a title starting with ${done}`, async () => {
    const s = await evaluate(`({ t: document.title, href: location.href, ready: document.readyState === 'complete',
      submit: !!document.querySelector('button[type="submit"]') })`);
    if (s.t.startsWith(done)) return s.t;
    if (s.ready && s.submit && pressed !== s.href) {
      pressed = s.href;
      await evaluate(`(() => {
        const login = document.querySelector('input[name="login"]');
        if (login) {
          login.value = 'alice';
          document.querySelector('input[name="password"]').value = 'any';
        }
        setTimeout(() => document.querySelector('button[type="submit"]').click(), 0);
        return true;
      })()`);
    }
    return undefined;
  });
}
