// A multipart upload whose third part keeps failing (the network drops it): the page
// retries, then shows "failed — Resume"; once the network is back, Resume sends only the
// missing parts and completes.
import { scenario, env, check, emit, signIn, openBucket, objectButton, screenshot, waitFor } from './lib.mjs';
import { basename } from 'node:path';
import { statSync } from 'node:fs';

await scenario('resume', async ({ page, base }) => {
  const tenant = env('CAIRN_TENANT');
  const bucket = env('CAIRN_BUCKET');
  const file = env('CAIRN_FILE');
  const name = basename(file);
  const size = statSync(file).size;
  await signIn(page, base, { apiKey: env('CAIRN_API_KEY') });
  await openBucket(page, base, tenant, bucket);
  const sent = []; // part numbers as they went out
  page.on('request', (req) => {
    const url = new URL(req.url());
    if (url.pathname === '/api/uploads/part') sent.push(Number(url.searchParams.get('part')));
  });
  let dropped = 0;
  const isPart3 = (url) => url.pathname === '/api/uploads/part' && url.searchParams.get('part') === '3';
  await page.route(isPart3, (route) => {
    dropped += 1;
    return route.abort('connectionreset');
  });
  await page.getByLabel('Upload files').setInputFiles(file);
  const item = page.locator('.upload-item', { hasText: name });
  await item.locator('.upload-text', { hasText: 'failed' }).waitFor({ timeout: 30000 });
  check(dropped === 4, `part 3 was tried ${dropped} times, not 1 + 3 retries`);
  await screenshot(page);
  await page.unroute(isPart3);
  const before = sent.length;
  await item.getByRole('button', { name: 'Resume the upload of ' + name }).click();
  await waitFor(async () => {
    const text = await item.locator('.upload-text').textContent();
    if (/failed/.test(text)) throw new Error('the resumed upload failed: ' + text);
    return /uploaded/.test(text);
  }, 'the resumed upload to finish', 30000);
  const resent = sent.slice(before);
  check(resent.length === 1 && resent[0] === 3, `Resume sent parts ${resent.join(', ')}, not only part 3`);
  await objectButton(page, name).click();
  const hash = await page.locator('.detail .content-hash').textContent();
  emit({ content_hash: hash, size });
});
