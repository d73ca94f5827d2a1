// Cancel a multipart upload while a part is on its way: the page stops its requests, drops
// the parts stored on the server (DELETE /api/uploads) and says so; nothing is stored
// (checked in Python).
import { scenario, env, check, emit, signIn, openBucket, screenshot } from './lib.mjs';
import { basename } from 'node:path';

await scenario('cancel', async ({ page, base }) => {
  const tenant = env('CAIRN_TENANT');
  const bucket = env('CAIRN_BUCKET');
  const file = env('CAIRN_FILE');
  const name = basename(file);
  await signIn(page, base, { apiKey: env('CAIRN_API_KEY') });
  await openBucket(page, base, tenant, bucket);
  // Part 2 never gets through: it is held until the page gives up on it.
  const held = [];
  const isPart2 = (url) => url.pathname === '/api/uploads/part' && url.searchParams.get('part') === '2';
  await page.route(isPart2, (route) => { held.push(route); });
  const dropped = page.waitForResponse((r) => r.request().method() === 'DELETE' &&
    new URL(r.url()).pathname === '/api/uploads', { timeout: 30000 });
  await page.getByLabel('Upload files').setInputFiles(file);
  const item = page.locator('.upload-item', { hasText: name });
  const cancel = item.getByRole('button', { name: 'Cancel the upload of ' + name });
  await cancel.waitFor();
  // Wait until part 2 is out (and held), then cancel.
  for (let i = 0; i < 300 && held.length === 0; i += 1) await page.waitForTimeout(100);
  check(held.length > 0, 'part 2 was never sent');
  await cancel.click();
  const answer = await dropped;
  check(answer.status() === 204, 'dropping the parts answered ' + answer.status());
  await item.locator('.upload-text', { hasText: 'cancelled' }).waitFor();
  check(await item.getByRole('button').count() === 0, 'a cancelled upload still offers a button');
  await screenshot(page);
  for (const route of held) await route.abort('connectionreset').catch(() => {});
  emit({ upload_id: new URL(answer.url()).searchParams.get('upload_id') });
});
