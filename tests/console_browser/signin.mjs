// Sign in with an API key: a wrong key is refused with a message, the right one opens the
// overview with the key's id, scope and tenants in the top bar.
import { scenario, env, check, signIn, screenshot, WAIT_MS } from './lib.mjs';

await scenario('signin', async ({ page, base }) => {
  const key = env('CAIRN_API_KEY');
  await page.goto(base + '/');
  await page.locator('#signin-api-key').fill(key + 'x');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#signin-error').filter({ hasText: /./ }).waitFor({ timeout: WAIT_MS });
  check(await page.locator('#shell').isHidden(), 'a wrong key opened the console');

  await signIn(page, base, { apiKey: key });
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
  await page.locator('.card').first().waitFor();
  const keyId = await page.locator('#session-info code').textContent();
  check(keyId === env('CAIRN_KEY_ID'), `the top bar shows key ${keyId}, not ${env('CAIRN_KEY_ID')}`);
  check(await page.locator('#session-info').getByText('admin').isVisible(), 'the scope is not shown');
  check(await page.getByRole('link', { name: 'Operations' }).isVisible(), 'an admin of * has no Operations link');
  // The credential does not stay in the page.
  check((await page.locator('#signin-api-key').inputValue()) === '', 'the API key stayed in the form');
  await screenshot(page);
});
