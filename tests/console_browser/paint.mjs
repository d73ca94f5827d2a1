// A measurement, not a test (bench/console_paint runs it): how soon the console paints on
// loopback in Debian's chromium. Each round uses a fresh browser context (empty cache):
//  - signin_fcp_ms: first contentful paint of the sign-in page;
//  - overview_ms: from navigating to "/" with a live session until the overview's
//    figures are on screen (the page's script loaded, the session and /api/overview
//    answered, the cards drawn);
//  - baseline_fcp_ms: first contentful paint of a one-line static page from another
//    loopback server (CAIRN_BASELINE_URL), the browser's own floor on this machine.
// Environment: CAIRN_CONSOLE_URL, CAIRN_API_KEY, CAIRN_SCREENSHOT, CAIRN_PAINT_ROUNDS,
// CAIRN_BASELINE_URL.
import { scenario, env, emit, signIn, screenshot } from './lib.mjs';

await scenario('paint', async ({ browser, base }) => {
  const rounds = Math.min(20, Math.max(1, Number(process.env.CAIRN_PAINT_ROUNDS || 5)));
  const signinFcp = [];
  const overview = [];
  const baseline = [];
  const fcp = (page) => page.evaluate(() => {
    const entry = performance.getEntriesByName('first-contentful-paint')[0];
    return entry ? Math.round(entry.startTime) : null;
  });
  for (let i = 0; i < rounds; i += 1) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(env('CAIRN_BASELINE_URL'));
    await page.locator('p').waitFor();
    baseline.push(await fcp(page));
    await page.goto(base + '/');
    await page.locator('#signin').waitFor({ state: 'visible' });
    signinFcp.push(await fcp(page));
    await signIn(page, base, { apiKey: env('CAIRN_API_KEY') });
    const started = Date.now();
    await page.goto(base + '/');
    await page.locator('.card').first().waitFor();
    overview.push(Date.now() - started);
    if (i === rounds - 1) await screenshot(page);
    await context.close();
  }
  emit({ baseline_fcp_ms: baseline, signin_fcp_ms: signinFcp, overview_ms: overview });
});
