// Shared by the scenario scripts: launches Debian's chromium through playwright-core,
// signs in, bounds every wait, and turns any failure into a non-zero exit with a clear
// message (and a screenshot of the failing screen beside the scenario's own).
//
// Environment: CAIRN_CONSOLE_URL (http://127.0.0.1:<port>), CAIRN_SCREENSHOT (a .png path),
// and what each scenario needs (credentials, keys, file paths).
import { chromium } from 'playwright-core';

const SCRIPT_LIMIT_MS = Number(process.env.CAIRN_SCRIPT_LIMIT_MS || 120000);
export const WAIT_MS = 15000;

export function env(name) {
  const value = process.env[name];
  if (value === undefined || value === '') fail(`environment variable ${name} is not set`);
  return value;
}

export function fail(message) {
  throw new Error(message);
}

export function check(condition, message) {
  if (!condition) fail(message);
}

// Prints the scenario's findings as one JSON line for the Python side.
export function emit(result) {
  process.stdout.write('RESULT ' + JSON.stringify(result) + '\n');
}

// Runs `body({ page, context, browser, base })` in a fresh browser; exits 0 or 1.
export async function scenario(name, body) {
  const base = env('CAIRN_CONSOLE_URL').replace(/\/$/, '');
  const shot = env('CAIRN_SCREENSHOT');
  const watchdog = setTimeout(() => {
    console.error(`${name}: FAILED: gave up after ${SCRIPT_LIMIT_MS} ms`);
    process.exit(1);
  }, SCRIPT_LIMIT_MS);
  const browser = await chromium.launch({
    executablePath: process.env.CAIRN_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: 30000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
      '--no-first-run',
      // Belt and braces: no name resolves, so nothing but 127.0.0.1 can be reached.
      '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1', '--no-proxy-server'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.setDefaultNavigationTimeout(WAIT_MS);
  const problems = [];
  // No scenario ever opens a JavaScript dialog (the console uses <dialog> elements): one
  // that opens is injected script running.
  page.on('dialog', async (dialog) => {
    problems.push(`a JavaScript ${dialog.type()} dialog opened: ${JSON.stringify(dialog.message())}`);
    await dialog.dismiss().catch(() => {});
  });
  page.on('pageerror', (err) => problems.push('uncaught error in the page: ' + err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy|Refused to/.test(msg.text())) {
      problems.push('CSP violation: ' + msg.text());
    }
  });
  page.on('request', (req) => {
    const url = new URL(req.url());
    if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) return; // blob:, data:
    if (url.hostname !== '127.0.0.1') problems.push('a request left 127.0.0.1: ' + req.url());
  });
  let code = 0;
  try {
    await body({ page, context, browser, base });
    if (problems.length) fail(problems.join('\n'));
    console.error(`${name}: ok`);
  } catch (err) {
    code = 1;
    console.error(`${name}: FAILED: ${err && err.stack ? err.stack : err}`);
    if (problems.length) console.error(problems.join('\n'));
    await page.screenshot({ path: shot.replace(/\.png$/, '') + '-failed.png', fullPage: true }).catch(() => {});
  } finally {
    clearTimeout(watchdog);
    await browser.close().catch(() => {});
  }
  process.exit(code);
}

export async function screenshot(page) {
  await page.screenshot({ path: env('CAIRN_SCREENSHOT'), fullPage: true });
}

// Signs in through the form. creds: { apiKey } or { accessKey, secretKey }.
export async function signIn(page, base, creds) {
  await page.goto(base + '/');
  await page.locator('#signin').waitFor({ state: 'visible' });
  if (creds.apiKey) {
    await page.getByLabel('API key', { exact: true }).first().check();
    await page.locator('#signin-api-key').fill(creds.apiKey);
  } else {
    await page.getByLabel('S3 key pair').check();
    await page.getByLabel('Access key').fill(creds.accessKey);
    await page.getByLabel('Secret key').fill(creds.secretKey);
  }
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#shell').waitFor({ state: 'visible' });
  await page.locator('#session-info code').waitFor();
}

// The visible alert's text, or '' when none shows within `ms`.
export async function alertText(page, ms = WAIT_MS) {
  const alert = page.locator('#alert');
  try {
    await alert.waitFor({ state: 'visible', timeout: ms });
  } catch (_) {
    return '';
  }
  return (await alert.locator('.alert-message').textContent()) || '';
}

// Opens the objects view of a bucket (directly by address) and waits for its list.
export async function openBucket(page, base, tenant, bucket, prefix = '') {
  let hash = '#/buckets/' + encodeURIComponent(tenant) + '/' + encodeURIComponent(bucket);
  if (prefix) hash += '/' + prefix.split('/').map(encodeURIComponent).join('/');
  await page.goto(base + '/' + hash);
  await page.locator('.summary').filter({ hasText: 'shown' }).or(page.getByText('This bucket is empty.'))
    .or(page.getByText('No keys start with this prefix.')).first().waitFor();
}

// The object row's name button in the list, and its whole row.
export function objectButton(page, name) {
  return page.locator('#view table').locator(nameButton(page, name));
}

export function objectRow(page, name) {
  return page.locator('#view table tbody tr').filter({ has: nameButton(page, name) });
}

function nameButton(page, name) {
  return page.locator('button.key').filter({ hasText: new RegExp('^' + escapeRe(name) + '$') });
}

export function escapeRe(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export async function waitFor(predicate, what, ms = WAIT_MS, interval = 100) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) fail(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

// Every visible control in the page has an accessible name (a label, aria-label or text).
export async function checkLabels(page) {
  const unnamed = await page.evaluate(() => {
    const out = [];
    for (const node of document.querySelectorAll('button, input, select, textarea, progress, a[href]')) {
      if (node.closest('[hidden]') || node.getClientRects().length === 0) continue;
      const named = (node.labels && node.labels.length) || node.getAttribute('aria-label') ||
        node.getAttribute('aria-labelledby') || (node.tagName !== 'INPUT' && node.textContent.trim());
      if (!named) out.push(node.outerHTML.slice(0, 120));
    }
    return out;
  });
  check(unnamed.length === 0, 'controls without a label:\n' + unnamed.join('\n'));
}
