// Upload a folder with the folder picker: every file goes up under the folder on screen
// with its path inside the picked folder (bytes checked in Python).
import { scenario, env, signIn, openBucket, objectButton, screenshot, waitFor } from './lib.mjs';

await scenario('folder', async ({ page, base }) => {
  const tenant = env('CAIRN_TENANT');
  const bucket = env('CAIRN_BUCKET');
  const dir = env('CAIRN_DIR');
  const count = Number(env('CAIRN_FILES'));
  await signIn(page, base, { apiKey: env('CAIRN_API_KEY') });
  await openBucket(page, base, tenant, bucket);
  await page.getByLabel('Upload a folder').setInputFiles(dir);
  await waitFor(async () => {
    const texts = await page.locator('.upload-item .upload-text').allTextContents();
    const failed = texts.find((t) => /failed/.test(t));
    if (failed) throw new Error('an upload failed: ' + failed);
    return texts.length === count && texts.every((t) => /uploaded/.test(t));
  }, `the ${count} files of the folder to upload`, 30000);
  await page.getByRole('link', { name: 'tree/', exact: true }).click();
  await objectButton(page, 'a.txt').waitFor();
  await screenshot(page);
});
