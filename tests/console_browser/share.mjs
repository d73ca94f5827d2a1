// Share links: an API key's session is told (409) that it needs an S3 key pair; a session
// of an S3 key pair gets a presigned URL in a read-only box (fetched in Python).
import { scenario, env, check, emit, signIn, openBucket, objectButton, screenshot, checkLabels } from './lib.mjs';

await scenario('share', async ({ page, base }) => {
  const tenant = env('CAIRN_TENANT');
  const bucket = env('CAIRN_BUCKET');
  const key = env('CAIRN_KEY');
  const folder = key.slice(0, key.lastIndexOf('/') + 1);
  const name = key.slice(folder.length);

  await signIn(page, base, { apiKey: env('CAIRN_API_KEY') });
  await openBucket(page, base, tenant, bucket, folder);
  await objectButton(page, name).click();
  await page.locator('.detail').getByRole('button', { name: 'Create share link' }).click();
  const refusal = page.locator('.detail .share-area [role=alert]');
  await refusal.waitFor();
  const message = await refusal.textContent();
  check(/S3/.test(message), 'the 409 did not show the server\'s message: ' + message);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('#signin').waitFor({ state: 'visible' });

  await signIn(page, base, { accessKey: env('CAIRN_ACCESS_KEY'), secretKey: env('CAIRN_SECRET_KEY') });
  await openBucket(page, base, tenant, bucket, folder);
  check(await page.getByLabel('Upload files').count() === 0, 'a read-scope session has upload controls');
  await objectButton(page, name).click();
  await page.getByLabel('Share link expires after').selectOption({ label: '1 day' });
  await page.locator('.detail').getByRole('button', { name: 'Create share link' }).click();
  const box = page.getByLabel('Share link', { exact: true });
  await box.waitFor();
  check(await box.getAttribute('readonly') !== null, 'the share link box is not read-only');
  const url = await box.inputValue();
  check(url.startsWith('http://127.0.0.1:'), 'the share link is ' + url);
  check(/X-Amz-Expires=86400/.test(url), 'a 1-day link does not expire after 86400 s: ' + url);
  await page.getByRole('button', { name: 'Copy the share link' }).click();
  await page.locator('.detail .share-area [role=status]').filter({ hasText: /./ }).waitFor();
  await checkLabels(page);
  await screenshot(page);
  emit({ url });
});
