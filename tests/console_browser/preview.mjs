// Preview a text object (shown as text in a <pre>) and a PNG (shown as an image that
// loads); an HTML object previews as its source text, never as a page.
import { scenario, env, check, signIn, openBucket, objectButton, screenshot, waitFor } from './lib.mjs';

await scenario('preview', async ({ page, base }) => {
  const tenant = env('CAIRN_TENANT');
  const bucket = env('CAIRN_BUCKET');
  const text = env('CAIRN_TEXT');
  await signIn(page, base, { apiKey: env('CAIRN_API_KEY') });
  await openBucket(page, base, tenant, bucket, 'preview/');

  await objectButton(page, 'hello.txt').click();
  await page.locator('.detail').getByRole('button', { name: 'Preview', exact: true }).click();
  const pre = page.locator('.detail pre.preview-text');
  await pre.waitFor();
  const shown = await pre.textContent();
  check(shown === text, `the text preview shows ${JSON.stringify(shown)}, not ${JSON.stringify(text)}`);
  await screenshot(page);

  await objectButton(page, 'page.html').click();
  await page.locator('.detail').getByRole('button', { name: 'Preview', exact: true }).click();
  const html = await page.locator('.detail pre.preview-text').textContent();
  check(html.includes('<script>'), 'the HTML object does not preview as its source text: ' + html);

  // Delete from the detail pane: confirmed, the row goes, the object is gone.
  await page.locator('.detail').getByRole('button', { name: 'Delete', exact: true }).click();
  await page.getByRole('dialog', { name: 'Delete 1 object?' }).getByRole('button', { name: 'Delete' }).click();
  await objectButton(page, 'page.html').waitFor({ state: 'detached' });
  check(await page.locator('.detail').count() === 0, 'the pane of a deleted object stayed open');
  const gone = await page.evaluate(([t, b]) => fetch('/api/object?tenant=' + t + '&bucket=' + b + '&key=preview%2Fpage.html')
    .then((r) => r.status), [tenant, bucket]);
  check(gone === 404, 'the deleted object answers ' + gone);

  await objectButton(page, 'dot.png').click();
  await page.locator('.detail').getByRole('button', { name: 'Preview', exact: true }).click();
  const img = page.getByRole('img', { name: 'Preview of preview/dot.png' });
  await img.waitFor();
  const size = await waitFor(() => img.evaluate((i) => (i.complete && i.naturalWidth ? [i.naturalWidth, i.naturalHeight] : null)),
    'the image to load');
  check(size[0] === Number(env('CAIRN_PNG_WIDTH')), `the image is ${size[0]} px wide`);
  await page.screenshot({ path: env('CAIRN_SCREENSHOT').replace(/\.png$/, '-image.png'), fullPage: true });
});
