// Sign out: the sign-in form comes back, and the old session is gone on the server too
// (GET /api/session answers 401, also after a reload).
import { scenario, check, env, signIn, screenshot } from './lib.mjs';

await scenario('signout', async ({ page, base }) => {
  await signIn(page, base, { apiKey: env('CAIRN_API_KEY') });
  check(await page.evaluate(() => fetch('/api/session').then((r) => r.status)) === 200, 'no live session after sign-in');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('#signin').waitFor({ state: 'visible' });
  check(await page.evaluate(() => fetch('/api/session').then((r) => r.status)) === 401, '/api/session is not 401 after sign-out');
  await page.reload();
  await page.locator('#signin').waitFor({ state: 'visible' });
  check(await page.locator('#shell').isHidden(), 'a reload after sign-out opened the console');
  await screenshot(page);
});
