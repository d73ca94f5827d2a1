// A change without the X-CSRF-Token header, from the page's own context (so with its
// cookie), is refused with 403 and changes nothing; the same call with the token works.
import { scenario, check, env, signIn, screenshot } from './lib.mjs';

await scenario('csrf', async ({ page, base }) => {
  const tenant = env('CAIRN_TENANT');
  await signIn(page, base, { apiKey: env('CAIRN_API_KEY') });
  const forged = await page.evaluate(([t]) => fetch('/api/buckets', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ tenant: t, name: 'forged-bucket' }),
  }).then((r) => r.status), [tenant]);
  check(forged === 403, 'a change without the CSRF token answered ' + forged);
  const wrong = await page.evaluate(([t]) => fetch('/api/buckets', {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': '00'.repeat(32) },
    body: JSON.stringify({ tenant: t, name: 'forged-bucket' }),
  }).then((r) => r.status), [tenant]);
  check(wrong === 403, 'a change with a wrong CSRF token answered ' + wrong);
  const listed = await page.evaluate(([t]) => fetch('/api/buckets?tenant=' + encodeURIComponent(t))
    .then((r) => r.json()), [tenant]);
  check(!JSON.stringify(listed).includes('forged-bucket'), 'the forged call made a bucket');
  // The page's own way (the token from the session) works.
  const token = await page.evaluate(() => fetch('/api/session').then((r) => r.json()).then((s) => s.csrf_token));
  const real = await page.evaluate(([t, csrf]) => fetch('/api/buckets', {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
    body: JSON.stringify({ tenant: t, name: 'real-bucket' }),
  }).then((r) => r.status), [tenant, token]);
  check(real === 201, 'the call with the token answered ' + real);
  await page.goto(base + '/#/buckets/' + encodeURIComponent(tenant));
  await page.getByRole('link', { name: 'real-bucket', exact: true }).waitFor();
  check(await page.getByRole('link', { name: 'forged-bucket' }).count() === 0, 'the forged bucket is listed');
  await screenshot(page);
});
