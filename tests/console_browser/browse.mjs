// Browse into a folder prefix: the bucket root lists the folder, the folder lists its
// objects, the breadcrumb leads back.
import { scenario, env, check, signIn, openBucket, objectButton, screenshot } from './lib.mjs';

await scenario('browse', async ({ page, base }) => {
  const tenant = env('CAIRN_TENANT');
  const bucket = env('CAIRN_BUCKET');
  await signIn(page, base, { apiKey: env('CAIRN_API_KEY') });
  await page.getByRole('link', { name: 'Buckets', exact: true }).click();
  await page.goto(base + '/#/buckets/' + encodeURIComponent(tenant));
  await page.getByRole('link', { name: bucket, exact: true }).click();
  await page.getByRole('link', { name: 'docs/', exact: true }).click();
  await objectButton(page, 'readme.txt').waitFor();
  await objectButton(page, 'notes.md').waitFor();
  check(await objectButton(page, 'root.txt').count() === 0, 'the folder lists an object of the root');
  await page.getByRole('link', { name: 'deep/', exact: true }).waitFor();
  const crumb = await page.locator('nav.breadcrumb').textContent();
  check(crumb.includes(bucket) && crumb.includes('docs'), 'the breadcrumb does not show the folder: ' + crumb);
  // Files dropped on the upload area go into the folder on screen.
  await page.locator('.dropzone').evaluate((zone) => {
    const transfer = new DataTransfer();
    transfer.items.add(new File(['dropped one'], 'dropped-1.txt', { type: 'text/plain' }));
    transfer.items.add(new File(['dropped two'], 'dropped-2.txt', { type: 'text/plain' }));
    zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
  });
  await page.locator('.upload-item', { hasText: 'docs/dropped-2.txt' }).getByText('uploaded').waitFor();
  await objectButton(page, 'dropped-1.txt').waitFor();
  await objectButton(page, 'dropped-2.txt').waitFor();
  // The keyboard alone opens an object's details, and closing them gives focus back.
  await objectButton(page, 'readme.txt').focus();
  await page.keyboard.press('Enter');
  const heading = page.locator('.detail h2', { hasText: 'docs/readme.txt' });
  await heading.waitFor();
  check(await heading.evaluate((node) => node === document.activeElement), 'the detail pane did not take focus');
  await page.keyboard.press('Tab'); // to its Close button
  check(await page.evaluate(() => document.activeElement.textContent) === 'Close', 'Tab from the pane heading is not Close');
  await page.keyboard.press('Enter');
  await heading.waitFor({ state: 'detached' });
  check(await objectButton(page, 'readme.txt').evaluate((node) => node === document.activeElement),
    'closing the pane did not give focus back to the object');
  await screenshot(page);
  await page.locator('nav.breadcrumb').getByRole('link', { name: bucket }).click();
  await objectButton(page, 'root.txt').waitFor();
  // The prefix search box filters by any prefix.
  await openBucket(page, base, tenant, bucket, 'docs/re');
  await objectButton(page, 'readme.txt').waitFor();
  check(await objectButton(page, 'notes.md').count() === 0, 'the prefix docs/re lists notes.md');
});
