// Upload a large file with the file input: the progress bar moves, the object appears
// with its size, and the detail pane gives its content hash (checked in Python).
import { scenario, env, check, emit, signIn, openBucket, objectButton, objectRow, screenshot, waitFor, checkLabels } from './lib.mjs';
import { basename } from 'node:path';
import { statSync } from 'node:fs';

await scenario('upload', async ({ page, base }) => {
  const tenant = env('CAIRN_TENANT');
  const bucket = env('CAIRN_BUCKET');
  const file = env('CAIRN_FILE');
  const name = basename(file);
  const size = statSync(file).size;
  await signIn(page, base, { apiKey: env('CAIRN_API_KEY') });
  await openBucket(page, base, tenant, bucket);
  // Every value the bar takes (setting progress.value sets its attribute), as it happens.
  await page.evaluate(() => {
    window.progressValues = [];
    new MutationObserver((records) => {
      for (const r of records) if (r.target.tagName === 'PROGRESS') window.progressValues.push(Number(r.target.value));
    }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['value'] });
  });
  await page.getByLabel('Upload files').setInputFiles(file);
  const bar = page.getByRole('progressbar', { name });
  await bar.waitFor();
  let shotTaken = false;
  await waitFor(async () => {
    const now = await bar.evaluate((b) => b.value);
    if (!shotTaken && now > 0 && now < size) {
      shotTaken = true;
      await page.screenshot({ path: env('CAIRN_SCREENSHOT').replace(/\.png$/, '-progress.png') });
    }
    const text = await page.locator('.upload-item', { hasText: name }).locator('.upload-text').textContent();
    if (/failed/.test(text)) throw new Error('the upload failed: ' + text);
    return /uploaded/.test(text);
  }, 'the upload to finish', 90000, 50);
  const values = await page.evaluate(() => window.progressValues);
  const between = [...new Set(values)].filter((v) => v > 0 && v < size);
  check(between.length >= 5, `the progress bar did not move (values: ${values.slice(0, 20).join(', ')})`);
  check(values[values.length - 1] === size, `the bar ends at ${values[values.length - 1]}, not ${size}`);
  const row = objectRow(page, name);
  await row.waitFor();
  const sizeTitle = await row.locator('td.num span').getAttribute('title');
  check(sizeTitle === size.toLocaleString() + ' bytes', `the listed size is ${sizeTitle}, not ${size} bytes`);
  await objectButton(page, name).click();
  const hash = await page.locator('.detail .content-hash').textContent({ timeout: 15000 });
  const chunks = await page.locator('.detail table').last().locator('tbody tr').count();
  check(chunks > 1, `a ${size}-byte object shows ${chunks} chunks`);
  await checkLabels(page);
  await screenshot(page);
  emit({ content_hash: hash, size, progress_values: between.length });
});
