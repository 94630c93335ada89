// A real HAR producer for mcptap's tests: Playwright's recordHar in Debian's
// Chromium. It opens an authorization URL, signs in and consents on
// oidc-provider's development pages, waits for the redirect to the client's
// callback page, and closes the context, which writes the HAR file.
//
// Environment: URL (the authorization URL), CALLBACK (the callback URL
// prefix to wait for), HAR (the file to write), CONTENT ("embed" or "omit":
// Playwright leaves bodies out with "omit"), CHROMIUM (default
// /usr/bin/chromium).
import { chromium } from 'playwright-core';

const { URL: start, CALLBACK, HAR, CONTENT = 'embed', CHROMIUM = '/usr/bin/chromium' } = process.env;
if (!start || !CALLBACK || !HAR) {
  console.error('need URL, CALLBACK and HAR');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext({ recordHar: { path: HAR, content: CONTENT } });
  const page = await context.newPage();
  await page.goto(start);
  for (let step = 0; step < 4 && !page.url().startsWith(CALLBACK); step++) {
    if (await page.locator('input[name="login"]').count()) {
      await page.fill('input[name="login"]', 'alice');
      await page.fill('input[name="password"]', 'any');
    }
    await Promise.all([
      page.waitForNavigation(),
      page.click('button[type="submit"]'),
    ]);
  }
  if (!page.url().startsWith(CALLBACK)) {
    throw new Error('never reached the callback; at ' + page.url());
  }
  await context.close();
  console.log(JSON.stringify({ har: HAR, callback: page.url() }));
} finally {
  await browser.close();
}
