// Operations: run GC and see it finish (the table polls while it runs); run fsck (check
// only) and see it finish clean.
import { scenario, check, env, signIn, screenshot, checkLabels } from './lib.mjs';

await scenario('operations', async ({ page, base }) => {
  await signIn(page, base, { apiKey: env('CAIRN_API_KEY') });
  await page.getByRole('link', { name: 'Operations' }).click();
  await page.getByRole('heading', { name: 'Operations', level: 1 }).waitFor();
  await page.getByRole('button', { name: 'Run GC' }).click();
  const gcRow = page.locator('#view tbody tr', { hasText: 'GC' }).first();
  await gcRow.getByText('done', { exact: true }).waitFor({ timeout: 60000 });
  check(await gcRow.getByText(/deleted chunks/).isVisible(), 'the GC result counts are not shown');
  await page.getByRole('button', { name: 'Run fsck (check only)' }).click();
  const fsckRow = page.locator('#view tbody tr', { hasText: 'fsck' }).first();
  await fsckRow.getByText('done', { exact: true }).waitFor({ timeout: 60000 });
  check(await fsckRow.getByText(/chunks checked/).isVisible(), 'the fsck result counts are not shown');
  await checkLabels(page);
  await screenshot(page);
});
