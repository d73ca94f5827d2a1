// Create a bucket through the form; it is listed, and a second one of the same name is
// refused with the server's message.
import { scenario, env, check, signIn, screenshot, alertText } from './lib.mjs';

await scenario('buckets', async ({ page, base }) => {
  const tenant = env('CAIRN_TENANT');
  const bucket = env('CAIRN_BUCKET');
  await signIn(page, base, { apiKey: env('CAIRN_API_KEY') });
  await page.getByRole('link', { name: 'Buckets', exact: true }).click();
  await page.getByLabel('Other tenant').fill(tenant);
  await page.getByRole('button', { name: 'Open' }).click();
  await page.getByText('No buckets in this tenant yet.').waitFor();
  await page.getByLabel('New bucket name').fill(bucket);
  await page.getByRole('button', { name: 'Create bucket' }).click();
  const link = page.getByRole('link', { name: bucket, exact: true });
  await link.waitFor();
  await page.getByLabel('New bucket name').fill(bucket);
  await page.getByRole('button', { name: 'Create bucket' }).click();
  const message = await alertText(page);
  check(message !== '', 'creating the same bucket twice showed no error');
  await screenshot(page);
  await link.click();
  await page.getByText('This bucket is empty.').waitFor();
});
