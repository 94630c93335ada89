// Opens an mcptap HTML report from disk in Debian's Chromium, offline, the
// way a user opens an email attachment, and says what is on the page: per
// flow the lanes, the arrows and the broken mark; then clicks an arrow and
// says whether its exchange panel opened; lists every request the page made;
// saves a full-page screenshot at 1280 px.
//
// Environment: HTML (the report file), SHOT (the PNG to write), CLICK (the
// flow whose first arrow with an exchange to click), CHROMIUM (default
// /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { pathToFileURL } from 'node:url';

const { HTML, SHOT, CLICK, CHROMIUM = '/usr/bin/chromium' } = process.env;
if (!HTML || !SHOT || !CLICK) {
  console.error('need HTML, SHOT and CLICK');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext({ offline: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  const url = pathToFileURL(HTML).href;
  await page.goto(url);

  const flows = await page.$$eval('section.flow', (secs) => secs.map((s) => ({
    id: s.id.replace(/^flow-/, ''),
    lanes: [...s.querySelectorAll('svg.seq g.lane text:not(.host)')].map((t) => t.textContent),
    arrows: s.querySelectorAll('svg.seq g.arrow').length,
    broken: s.querySelectorAll('svg.seq g.arrow.broken').length,
    brokenText: [...s.querySelectorAll('svg.seq text.brokemark')].map((t) => t.textContent),
  })));

  // Click the flow's broken arrow if it has one with an exchange, else its first arrow.
  const sec = `section#flow-${CLICK}`;
  let target = page.locator(`${sec} svg.seq g.arrow.broken a`).first();
  if (await target.count() === 0) target = page.locator(`${sec} svg.seq g.arrow a`).first();
  const exchange = await target.evaluate((a) => a.closest('g.arrow').getAttribute('data-exchange'));
  const hiddenBefore = await page.$eval(`[id="ex-${exchange}"]`, (e) => getComputedStyle(e).display === 'none');
  await target.click();
  await page.waitForFunction((id) => location.hash === '#ex-' + id, exchange);
  const panel = await page.$eval(`[id="ex-${exchange}"]`, (e) => ({
    visible: getComputedStyle(e).display !== 'none' && e.getBoundingClientRect().height > 0,
    text: e.innerText.slice(0, 400),
  }));

  // The filter (the page's one script): choosing a fault hides the other flows.
  const faults = await page.$$eval('#f-fault option', (os) => os.map((o) => o.value).filter(Boolean));
  let filter = null;
  if (faults.length > 0) {
    await page.selectOption('#f-fault', faults[0]);
    filter = await page.$$eval('section.flow', (secs, f) => secs.map((s) => ({
      fault: s.getAttribute('data-fault'), hidden: s.classList.contains('hidden') })), faults[0]);
    await page.selectOption('#f-fault', '');
  }

  await page.evaluate(() => { location.hash = ''; window.scrollTo(0, 0); });
  await page.screenshot({ path: SHOT, fullPage: true });
  console.log(JSON.stringify({ flows, clicked: exchange, hiddenBefore, panel, requests, errors, filter, filterValue: faults[0] || null }));
} finally {
  await browser.close();
}
