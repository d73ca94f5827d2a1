// Create an API key: its secret is shown once (and leaves the page when the dialog
// closes), it works for signing in; revoke it: it is marked revoked and refused.
import { scenario, env, check, signIn, screenshot } from './lib.mjs';

await scenario('keys', async ({ page, base }) => {
  const tenant = env('CAIRN_TENANT');
  await signIn(page, base, { apiKey: env('CAIRN_API_KEY') });
  await page.getByRole('link', { name: 'Keys', exact: true }).click();
  await page.getByRole('heading', { name: 'Keys', level: 1 }).waitFor();
  await page.getByLabel('Kind').selectOption('api');
  await page.getByLabel('Tenants').fill(tenant);
  await page.getByLabel('Scope').selectOption('read');
  await page.getByLabel('Description').fill('browser test key');
  await page.getByRole('button', { name: 'Create key' }).click();
  const dialog = page.getByRole('dialog', { name: 'API key created' });
  await dialog.waitFor();
  const secret = await page.locator('#secret-value').inputValue();
  const id = await page.locator('#secret-id').textContent();
  check(/^cairn_[0-9a-f]{16}_/.test(secret), 'the secret shown is not an API key');
  check(secret.includes(id), 'the key id is not the secret\'s');
  await screenshot(page);
  await dialog.getByRole('button', { name: 'Done, I have stored it' }).click();
  await dialog.waitFor({ state: 'hidden' });
  // The dialog's close event, which clears the secret, is a task queued after the click.
  const cleared = await page
    .waitForFunction(() => document.querySelector('#secret-value').value === '', null, { timeout: 5000 })
    .then(() => true, () => false);
  check(cleared, 'the secret stayed in the page');

  const signInWith = (apiKey) => fetch(base + '/api/session', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ api_key: apiKey }),
  }).then((r) => r.status);
  check(await signInWith(secret) === 200, 'the new key does not sign in');

  const row = page.locator('#view tr', { hasText: id });
  await row.waitFor();
  check(await row.getByText('browser test key').isVisible(), 'the description is not listed');
  await row.getByRole('button', { name: 'Revoke key ' + id }).click();
  await page.getByRole('dialog', { name: 'Revoke key ' + id + '?' }).getByRole('button', { name: 'Revoke' }).click();
  await row.getByText('revoked', { exact: true }).waitFor();
  check(await signInWith(secret) === 401, 'a revoked key still signs in');
  await page.screenshot({ path: env('CAIRN_SCREENSHOT').replace(/\.png$/, '-revoked.png'), fullPage: true });
});
