// An object named like markup shows as text, in the list, the detail pane and the
// delete confirmation; no script runs (a JavaScript dialog fails the scenario, lib.mjs).
import { scenario, check, env, signIn, openBucket, objectButton, screenshot } from './lib.mjs';

await scenario('xss', async ({ page, base }) => {
  const name = env('CAIRN_KEY');
  await signIn(page, base, { apiKey: env('CAIRN_API_KEY') });
  await openBucket(page, base, env('CAIRN_TENANT'), env('CAIRN_BUCKET'));
  const row = objectButton(page, name);
  await row.waitFor();
  await row.click();
  await page.locator('.detail h2', { hasText: name }).waitFor();
  check(await page.locator('#view img').count() === 0, 'an <img> element was made from the object name');
  await page.getByRole('checkbox', { name: 'Select ' + name }).check();
  await page.getByRole('button', { name: 'Delete selected (1)' }).click();
  await page.locator('#confirm-text', { hasText: name }).waitFor();
  check(await page.locator('#confirm-dialog img').count() === 0, 'the confirmation holds an <img>');
  await screenshot(page);
  await page.getByRole('button', { name: 'Cancel' }).click();
  await page.waitForTimeout(500); // an onerror handler would have fired by now
});
