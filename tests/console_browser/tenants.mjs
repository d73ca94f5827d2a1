// A key of tenant A (read scope) never sees tenant B: not in the tenant list, not its
// buckets, and B's listing asked by address is refused. A read session has no upload or
// delete controls and no Keys or Operations links.
import { scenario, check, env, signIn, screenshot, alertText } from './lib.mjs';

await scenario('tenants', async ({ page, base }) => {
  const a = env('CAIRN_TENANT_A');
  const b = env('CAIRN_TENANT_B');
  const bBucket = env('CAIRN_BUCKET_B');
  await signIn(page, base, { apiKey: env('CAIRN_API_KEY') });
  check(await page.getByRole('link', { name: 'Keys', exact: true }).isHidden(), 'a read key sees the Keys link');
  check(await page.getByRole('link', { name: 'Operations' }).isHidden(), 'a read key sees the Operations link');
  await page.getByRole('link', { name: 'Buckets', exact: true }).click();
  await page.getByRole('link', { name: env('CAIRN_BUCKET_A'), exact: true }).waitFor();
  const options = await page.getByLabel('Tenant', { exact: true }).locator('option').allTextContents();
  check(options.length === 1 && options[0] === a, 'the tenant list is ' + JSON.stringify(options));
  check(!(await page.content()).includes(bBucket), 'tenant B\'s bucket shows');
  check(await page.getByRole('button', { name: 'Create bucket' }).count() === 0, 'a read key can create buckets');
  await screenshot(page);

  await page.goto(base + '/#/buckets/' + encodeURIComponent(b));
  const message = await alertText(page);
  check(message !== '', 'opening tenant B by address showed no refusal');
  check(!(await page.locator('#view').textContent()).includes(bBucket), 'tenant B\'s bucket shows by address');
  await page.goto(base + '/#/buckets/' + encodeURIComponent(b) + '/' + encodeURIComponent(bBucket));
  check(await alertText(page) !== '', 'listing tenant B\'s bucket by address showed no refusal');
  const status = await page.evaluate(([t, n]) => fetch('/api/objects?tenant=' + encodeURIComponent(t) + '&bucket=' +
    encodeURIComponent(n)).then((r) => r.status), [b, bBucket]);
  check(status === 403, 'listing tenant B answered ' + status);
  await page.screenshot({ path: env('CAIRN_SCREENSHOT').replace(/\.png$/, '-refused.png'), fullPage: true });
});
