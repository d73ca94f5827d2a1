// Cairn web console: the page's whole script (the JSON API it calls is docs/console.md).
//
// Rules this file keeps, because the server's Content-Security-Policy and the data demand it:
// - Every value from the server reaches the page as text (textContent, text nodes or
//   setAttribute of a harmless attribute); nothing is ever parsed as HTML, so an object
//   key like `<img src=x onerror=alert(1)>` shows literally.
// - No inline styles: the one computed style (a bar's width) goes through element.style.
// - The CSRF token lives in a variable only; the session cookie is HttpOnly.
(function () {
  'use strict';

  const PAGE_SIZE = 200; // objects per listing call: a bucket may hold millions
  const DELETE_BATCH = 1000; // the most keys DELETE /api/objects takes at once
  const DELETE_BATCH_BYTES = 48 * 1024; // a console call's body is at most 64 KiB

  // Splits keys into batches the server takes: at most DELETE_BATCH keys, and a JSON body
  // well under the server's limit (keys may be up to 1,024 bytes, escaped longer).
  function deleteBatches(keys) {
    const batches = [];
    let batch = [];
    let bytes = 0;
    for (const key of keys) {
      const size = JSON.stringify(key).length + 1;
      if (batch.length && (batch.length >= DELETE_BATCH || bytes + size > DELETE_BATCH_BYTES)) {
        batches.push(batch);
        batch = [];
        bytes = 0;
      }
      batch.push(key);
      bytes += size;
    }
    if (batch.length) batches.push(batch);
    return batches;
  }
  const STATUS_CLEAR_MS = 6000;

  // In memory only: a reload asks GET /api/session for the token again.
  const state = {
    session: null, // the session JSON
    csrf: null,
    lastTenant: null, // the tenant last browsed, to reopen the buckets view on it
    view: null, // AbortController of the view on screen: navigating cancels its calls
  };

  const els = {};

  // ---------------------------------------------------------------------------------------
  // DOM helpers

  // Builds an element. Strings among the children become text nodes, never markup.
  // Attribute names only ever come from this file; `on<event>` adds a listener.
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [name, value] of Object.entries(props)) {
        if (value === null || value === undefined || value === false) continue;
        if (name === 'class') node.className = value;
        else if (name === 'text') node.textContent = value;
        else if (name.startsWith('on')) node.addEventListener(name.slice(2).toLowerCase(), guarded(value));
        else node.setAttribute(name, value === true ? '' : String(value));
      }
    }
    return append(node, children);
  }

  // An event handler whose failure (an async one's rejection) is shown, not lost.
  function guarded(handler) {
    return (event) => {
      try {
        const result = handler(event);
        if (result && typeof result.catch === 'function') result.catch(report);
      } catch (err) {
        report(err);
      }
    };
  }

  function append(parent, children) {
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      if (Array.isArray(child)) append(parent, child);
      else if (child instanceof Node) parent.appendChild(child);
      else parent.appendChild(document.createTextNode(String(child)));
    }
    return parent;
  }

  let uid = 0;
  function nextId(base) {
    uid += 1;
    return base + '-' + uid;
  }

  // A label and its control, tied by id.
  function field(labelText, control, hint) {
    if (!control.id) control.id = nextId('f');
    const parts = [el('label', { for: control.id }, labelText), control];
    if (hint) {
      const hintId = nextId('hint');
      control.setAttribute('aria-describedby', hintId);
      parts.push(el('small', { id: hintId, class: 'hint' }, hint));
    }
    return el('div', { class: 'field' }, parts);
  }

  function pageHeader(title, ...extra) {
    // tabindex -1: focus moves here after navigation, so screen readers hear the new view.
    return el('div', { class: 'page-header' },
      el('h1', { tabindex: '-1' }, title), el('div', { class: 'page-actions' }, extra));
  }

  function section(title, ...children) {
    const headingId = nextId('h');
    return el('section', { class: 'panel', 'aria-labelledby': headingId },
      el('h2', { id: headingId, tabindex: '-1' }, title), children);
  }

  function note(text) {
    return el('p', { class: 'note' }, text);
  }

  function badge(text, kind) {
    return el('span', { class: 'badge badge-' + (kind || 'plain') }, text);
  }

  function button(label, onClick, kind, extra) {
    return el('button', Object.assign({ type: 'button', class: kind || 'secondary', onClick }, extra), label);
  }

  // A table with <th scope="col"> headers. columns: [{ label, num, srOnly }]. Returns the
  // wrapper and a row builder so that pages can append rows as they arrive.
  function makeTable(caption, columns) {
    const head = el('tr', null, columns.map((c) =>
      el('th', { scope: 'col', class: c.num ? 'num' : null },
        c.srOnly ? el('span', { class: 'sr-only' }, c.label) : c.header || c.label)));
    const body = el('tbody');
    const table = el('table', null, el('caption', { class: 'sr-only' }, caption), el('thead', null, head), body);
    function row(cells) {
      return el('tr', null, cells.map((cell, i) =>
        el(i === 0 && columns[0].rowHeader ? 'th' : 'td',
          { class: columns[i] && columns[i].num ? 'num' : null, scope: i === 0 && columns[0].rowHeader ? 'row' : null },
          cell)));
    }
    return { wrap: el('div', { class: 'table-wrap' }, table), table, body, row };
  }

  function simpleTable(caption, columns, rows) {
    const t = makeTable(caption, columns);
    for (const cells of rows) t.body.appendChild(t.row(cells));
    return t.wrap;
  }

  // Shows "Loading…" in `container` (marked busy) until the returned function is called.
  function loading(container, text) {
    const node = el('p', { class: 'loading' }, text || 'Loading…');
    container.appendChild(node);
    container.setAttribute('aria-busy', 'true');
    return () => {
      node.remove();
      container.removeAttribute('aria-busy');
    };
  }

  // Disables a button while `work` runs and shows `busyText` on it.
  async function busy(btn, busyText, work) {
    const label = btn.textContent;
    btn.disabled = true;
    btn.textContent = busyText;
    try {
      return await work();
    } finally {
      btn.disabled = false;
      btn.textContent = label;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Formatting

  const BYTE_UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

  function fmtBytes(value) {
    const n = Number(value);
    if (value === null || value === undefined || !Number.isFinite(n)) return '—';
    if (n < 1024) return n + ' B';
    let x = n / 1024;
    let i = 0;
    while (x >= 1024 && i < BYTE_UNITS.length - 1) {
      x /= 1024;
      i += 1;
    }
    return (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0)) + ' ' + BYTE_UNITS[i];
  }

  // Bytes as a readable size, with the exact count as a tooltip.
  function bytesCell(value) {
    return el('span', { title: Number.isFinite(Number(value)) ? Number(value).toLocaleString() + ' bytes' : null },
      fmtBytes(value));
  }

  function fmtCount(value) {
    if (value === null || value === undefined || !Number.isFinite(Number(value))) return '—';
    return Number(value).toLocaleString();
  }

  function fmtRatio(ratio, logical, physical) {
    // No physical figure yet (still being counted): no ratio either.
    if ((ratio === null || ratio === undefined) && (physical === null || physical === undefined)) return '—';
    let r = ratio === null || ratio === undefined ? NaN : Number(ratio);
    if (!Number.isFinite(r)) r = Number(physical) > 0 ? Number(logical) / Number(physical) : 1;
    return r.toFixed(2) + '×';
  }

  const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

  function timeCell(value) {
    if (!value) return '—';
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    return el('time', { datetime: value, title: value }, dateFormat.format(date));
  }

  function tenantsText(tenants) {
    if (!Array.isArray(tenants) || tenants.length === 0) return 'none';
    return tenants.includes('*') ? 'all tenants' : tenants.join(', ');
  }

  // ---------------------------------------------------------------------------------------
  // Links. Each path segment is encoded on its own so that any tenant, bucket or key
  // (with `/`, `#`, `%` or spaces in it) round-trips through the address bar.

  const enc = encodeURIComponent;

  function bucketsHash(tenant) {
    return tenant ? '#/buckets/' + enc(tenant) : '#/buckets';
  }

  function objectsHash(tenant, bucket, prefix) {
    let hash = '#/buckets/' + enc(tenant) + '/' + enc(bucket);
    if (prefix) hash += '/' + prefix.split('/').map(enc).join('/');
    return hash;
  }

  function query(params) {
    return Object.entries(params)
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => enc(k) + '=' + enc(v))
      .join('&');
  }

  function parseRoute() {
    const raw = location.hash.replace(/^#\/?/, '');
    let parts;
    try {
      parts = raw.split('/').map(decodeURIComponent);
    } catch (_) {
      return { name: 'notfound' };
    }
    switch (parts[0]) {
      case '':
        return { name: 'redirect', to: '#/overview' };
      case 'overview':
        return { name: 'overview' };
      case 'keys':
        return { name: 'keys' };
      case 'operations':
        return { name: 'operations' };
      case 'buckets':
        if (parts.length < 3 || parts[2] === '') return { name: 'buckets', tenant: parts[1] || null };
        // Everything after the bucket is the prefix, slashes included.
        return { name: 'objects', tenant: parts[1], bucket: parts[2], prefix: parts.slice(3).join('/') };
      default:
        return { name: 'notfound' };
    }
  }

  // ---------------------------------------------------------------------------------------
  // The API

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.name = 'ApiError';
      this.status = status;
      this.code = code;
    }
  }

  // One call. Resolves with the parsed JSON (null for 204); rejects with an ApiError that
  // carries the server's error.message. A 401 on any call but sign-in ends the session.
  async function api(method, path, body, options) {
    const opts = options || {};
    const headers = { Accept: 'application/json' };
    if (method !== 'GET') {
      headers['Content-Type'] = 'application/json';
      headers['X-CSRF-Token'] = state.csrf || '';
    }
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store', signal: opts.signal };
    if (body !== undefined) init.body = JSON.stringify(body);
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      if (err && err.name === 'AbortError') throw err;
      throw new ApiError(0, 'Network', 'The console server could not be reached. Check the connection and try again.');
    }
    const text = await response.text();
    // A view left while its answer was on the way must not go on drawing with it.
    if (opts.signal && opts.signal.aborted) throw new DOMException('The view was left', 'AbortError');
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (_) {
        data = null;
      }
    }
    if (response.ok) return data;
    const info = data && data.error && typeof data.error === 'object' ? data.error : {};
    const message = typeof info.message === 'string' && info.message
      ? info.message
      : ('The server answered ' + response.status + ' ' + response.statusText).trim();
    const error = new ApiError(response.status, info.code || 'HTTP' + response.status, message);
    if (response.status === 401 && !opts.own401) sessionEnded(message);
    throw error;
  }

  // Shows a failed call's message, except for what needs none: a view left (aborted) or a
  // lost session (the sign-in form is already on screen).
  function report(err) {
    if (!err || err.name === 'AbortError') return;
    if (err instanceof ApiError && err.status === 401) return;
    showAlert(err.message || String(err));
  }

  function canWrite() {
    return state.session && (state.session.scope === 'write' || state.session.scope === 'admin');
  }

  function isAdmin() {
    return state.session && state.session.scope === 'admin';
  }

  function seesAllTenants() {
    return state.session && Array.isArray(state.session.tenants) && state.session.tenants.includes('*');
  }

  // GC and fsck are the store's, not a tenant's: an admin key of every tenant only.
  function runsOperations() {
    return isAdmin() && seesAllTenants();
  }

  // ---------------------------------------------------------------------------------------
  // Messages: a polite status line and an alert region for errors

  let statusTimer = 0;
  function setStatus(text) {
    clearTimeout(statusTimer);
    els.status.textContent = text;
    els.status.classList.toggle('visible', Boolean(text));
    if (text) statusTimer = setTimeout(() => setStatus(''), STATUS_CLEAR_MS);
  }

  function showAlert(message, details) {
    // append() skips the absent list; replaceChildren would print "null".
    els.alert.replaceChildren();
    append(els.alert, [
      el('p', { class: 'alert-message' }, message),
      details && details.length ? el('ul', null, details.map((d) => el('li', null, d))) : null,
      button('Dismiss', hideAlert, 'link', { 'aria-label': 'Dismiss the error' }),
    ]);
    els.alert.hidden = false;
    els.alert.scrollIntoView({ block: 'nearest' });
  }

  function hideAlert() {
    els.alert.hidden = true;
    els.alert.replaceChildren();
  }

  // ---------------------------------------------------------------------------------------
  // Dialogs. <dialog> traps focus and closes on Escape; without it, the browser's own.

  function openDialog(dialog) {
    if (typeof dialog.showModal === 'function') dialog.showModal();
    else dialog.setAttribute('open', '');
  }

  function closeDialog(dialog, value) {
    if (typeof dialog.close === 'function') dialog.close(value);
    else {
      dialog.removeAttribute('open');
      dialog.dispatchEvent(new Event('close'));
    }
  }

  // Resolves true when the user confirms. Focus starts on Cancel: the safe choice.
  function confirmAction(title, text, confirmLabel) {
    const dialog = els.confirmDialog;
    if (typeof dialog.showModal !== 'function') return Promise.resolve(window.confirm(title + '\n\n' + text));
    els.confirmTitle.textContent = title;
    els.confirmText.textContent = text;
    els.confirmOk.textContent = confirmLabel;
    dialog.returnValue = '';
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true });
      openDialog(dialog);
      els.confirmCancel.focus();
    });
  }

  // The secret of a new key, shown once. It leaves the page when the dialog closes.
  function showSecret(kind, created) {
    const s3 = kind === 's3';
    els.secretTitle.textContent = s3 ? 'S3 key pair created' : 'API key created';
    els.secretIdLabel.textContent = s3 ? 'Access key' : 'Key id';
    els.secretId.textContent = created.id;
    els.secretValueLabel.textContent = s3 ? 'Secret key' : 'API key (the whole key is the secret)';
    els.secretValue.value = created.secret;
    els.secretCopyStatus.textContent = '';
    openDialog(els.secretDialog);
    els.secretValue.focus();
    els.secretValue.select();
  }

  async function copySecret() {
    const text = els.secretValue.value;
    try {
      // Only in a secure context (https or localhost); otherwise the fallback below.
      if (!navigator.clipboard || !window.isSecureContext) throw new Error('no clipboard');
      await navigator.clipboard.writeText(text);
      els.secretCopyStatus.textContent = 'Copied to the clipboard.';
    } catch (_) {
      els.secretValue.focus();
      els.secretValue.select();
      els.secretCopyStatus.textContent = 'The browser does not allow copying here: the secret is selected, press Ctrl+C (⌘C) to copy it.';
    }
  }

  // ---------------------------------------------------------------------------------------
  // Session

  function showSignIn(message) {
    if (state.view) state.view.abort();
    state.view = null;
    els.boot.hidden = true;
    els.shell.hidden = true;
    els.signin.hidden = false;
    els.signinError.textContent = message || '';
    hideAlert();
    const first = els.signinForm.querySelector('fieldset:not([disabled]) input');
    if (first) first.focus();
  }

  function sessionEnded(message) {
    state.session = null;
    state.csrf = null;
    // A secret dialog may be open when the session ends: close it (which clears it).
    if (els.secretDialog.open) closeDialog(els.secretDialog);
    if (els.confirmDialog.open) closeDialog(els.confirmDialog);
    // The next session may be another key's: it sees none of this one's uploads.
    uploads.queue.length = 0;
    if (uploads.list) uploads.list.replaceChildren();
    showSignIn(message ? 'You were signed out: ' + message : '');
  }

  function signedIn(session) {
    state.session = session;
    state.csrf = session.csrf_token;
    const info = els.sessionInfo;
    info.replaceChildren(
      el('span', { class: 'session-key' }, 'Key ', el('code', null, session.key_id)),
      badge(session.scope, 'scope'),
      el('span', { class: 'session-tenants', title: 'Tenants this key may use' }, tenantsText(session.tenants)));
    if (session.expires_at) info.setAttribute('title', 'Session ends at the latest ' + session.expires_at);
    els.navKeys.hidden = !isAdmin();
    els.navOps.hidden = !runsOperations();
    els.boot.hidden = true;
    els.signin.hidden = true;
    els.shell.hidden = false;
    route(false);
  }

  function updateSignInMode() {
    const s3 = els.signinForm.elements.mode.value === 's3';
    // A disabled fieldset's inputs are neither validated nor submitted.
    els.signinS3.hidden = !s3;
    els.signinS3.disabled = !s3;
    els.signinApi.hidden = s3;
    els.signinApi.disabled = s3;
  }

  async function onSignIn(event) {
    event.preventDefault();
    const form = els.signinForm;
    const s3 = form.elements.mode.value === 's3';
    const body = s3
      ? { access_key: form.elements.access_key.value.trim(), secret_key: form.elements.secret_key.value }
      : { api_key: form.elements.api_key.value.trim() };
    els.signinError.textContent = '';
    try {
      const session = await busy(els.signinSubmit, 'Signing in…',
        () => api('POST', '/api/session', body, { own401: true }));
      form.reset(); // the credential does not stay in the page
      updateSignInMode();
      signedIn(session);
    } catch (err) {
      els.signinError.textContent = err.message || String(err);
    }
  }

  async function signOut() {
    try {
      await busy(els.signout, 'Signing out…', () => api('DELETE', '/api/session', undefined, { own401: true }));
    } catch (err) {
      // A session already gone (401) is signed out too; anything else is worth saying.
      if (!(err instanceof ApiError && err.status === 401)) {
        showAlert('Signing out failed: ' + err.message);
        return;
      }
    }
    sessionEnded('');
    setStatus('Signed out.');
  }

  // ---------------------------------------------------------------------------------------
  // Routing

  const VIEWS = {
    overview: { title: 'Overview', nav: 'overview', render: renderOverview },
    buckets: { title: 'Buckets', nav: 'buckets', render: renderBuckets },
    objects: { title: 'Objects', nav: 'buckets', render: renderObjects },
    keys: { title: 'Keys', nav: 'keys', render: renderKeys },
    operations: { title: 'Operations', nav: 'operations', render: renderOperations },
    notfound: { title: 'Not found', nav: null, render: renderNotFound },
  };

  function route(moveFocus) {
    if (!state.session) return;
    const r = parseRoute();
    r.hash = location.hash;
    if (r.name === 'redirect') {
      location.replace(r.to); // fires hashchange, which routes again
      return;
    }
    if (state.view) state.view.abort();
    state.view = new AbortController();
    const view = VIEWS[r.name];
    hideAlert();
    for (const link of els.nav.querySelectorAll('a[data-route]')) {
      if (link.dataset.route === view.nav) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    document.title = view.title + ' · Cairn console';
    els.view.replaceChildren();
    els.view.removeAttribute('aria-busy');
    const done = view.render(els.view, r, state.view.signal);
    // Every view puts its <h1> first, synchronously: focus it for keyboard and AT users.
    if (moveFocus) {
      const heading = els.view.querySelector('h1');
      if (heading) heading.focus();
    }
    Promise.resolve(done).catch(report);
  }

  function renderNotFound(view) {
    view.append(pageHeader('Not found'),
      note('There is no such page in the console.'),
      el('p', null, el('a', { href: '#/overview' }, 'Go to the overview')));
  }

  // ---------------------------------------------------------------------------------------
  // Overview

  function card(label, value, hint) {
    return el('div', { class: 'card' },
      el('p', { class: 'card-label' }, label),
      el('p', { class: 'card-value' }, value),
      hint ? el('p', { class: 'card-hint' }, hint) : null);
  }

  // A used-space bar. Its width is set through the CSSOM, which the CSP allows (a style
  // attribute in markup would be refused).
  function spaceBar(free, total) {
    const t = Number(total);
    const f = Number(free);
    const used = t > 0 ? Math.min(1, Math.max(0, (t - f) / t)) : 0;
    const percent = Math.round(used * 100);
    const fill = el('span', { class: 'bar-fill' + (used > 0.9 ? ' bar-danger' : used > 0.75 ? ' bar-warn' : '') });
    fill.style.width = (used * 100).toFixed(1) + '%';
    return el('div', { class: 'bar-cell' },
      el('span', { class: 'bar', role: 'img', 'aria-label': percent + '% used' }, fill),
      el('span', { class: 'bar-text' }, fmtBytes(free) + ' free of ' + fmtBytes(total) + ' (' + percent + '% used)'));
  }

  // Requests per minute as bars (errors drawn over them), with the totals as text for
  // those who would rather read: built node by node, no markup from data.
  function rateChart(points) {
    if (points.length === 0) return note('No minute sampled yet.');
    const svgNs = 'http://www.w3.org/2000/svg';
    const width = 600, height = 120, gap = 1;
    const top = Math.max(1, ...points.map((p) => p.requests || 0));
    // An hour of minute slots, the latest at the right, whatever has been sampled so far.
    const slots = Math.max(60, points.length);
    const barWidth = Math.max(2, Math.floor(width / slots) - gap);
    let requests = 0, clientErrors = 0, serverErrors = 0;
    const svg = document.createElementNS(svgNs, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    svg.setAttribute('class', 'rate-chart');
    svg.setAttribute('role', 'img');
    const bar = (x, value, cls) => {
      const h = Math.round((value / top) * (height - 4));
      const rect = document.createElementNS(svgNs, 'rect');
      rect.setAttribute('x', String(x));
      rect.setAttribute('y', String(height - h));
      rect.setAttribute('width', String(barWidth));
      rect.setAttribute('height', String(h));
      rect.setAttribute('class', cls);
      return rect;
    };
    points.forEach((p, i) => {
      const x = (slots - points.length + i) * (barWidth + gap);
      const errors = (p.client_errors || 0) + (p.server_errors || 0);
      requests += p.requests || 0;
      clientErrors += p.client_errors || 0;
      serverErrors += p.server_errors || 0;
      const g = document.createElementNS(svgNs, 'g');
      const title = document.createElementNS(svgNs, 'title');
      title.textContent = (p.to || '') + ': ' + (p.requests || 0) + ' requests, ' + errors + ' errors';
      g.append(title, bar(x, p.requests || 0, 'rate-ok'), bar(x, errors, 'rate-error'));
      svg.append(g);
    });
    const summary = fmtCount(requests) + ' requests in the last ' +
      (points.length === 1 ? 'minute' : points.length + ' minutes') + '; ' +
      fmtCount(clientErrors) + ' answered 4xx, ' + fmtCount(serverErrors) + ' answered 5xx';
    svg.setAttribute('aria-label', 'Requests per minute: ' + summary);
    return el('div', { class: 'rate' }, svg, el('p', { class: 'hint' }, summary + ' (errors in red).'));
  }

  async function renderOverview(view, r, signal) {
    view.append(pageHeader('Overview', button('Refresh', () => route(false))));
    const done = loading(view);
    const data = await api('GET', '/api/overview', undefined, { signal });
    done();

    // chunks is null for a key of some tenants only: the store-wide figures are not its.
    const storeWide = data.chunks !== null && data.chunks !== undefined;
    view.append(el('section', { class: 'cards', 'aria-label': 'Totals' },
      card('Objects', fmtCount(data.objects)),
      card('Logical size', fmtBytes(data.logical_bytes), 'as written by clients'),
      card('Physical size', fmtBytes(data.physical_bytes), storeWide && data.inline_bytes
        ? 'stored, after deduplication; ' + fmtBytes(data.inline_bytes) + ' of it small objects in the metadata'
        : 'stored, after deduplication'),
      card('Dedup ratio', fmtRatio(data.dedup_ratio, data.logical_bytes, data.physical_bytes), 'logical ÷ physical'),
      card('Chunks', storeWide ? fmtCount(data.chunks) : '—'),
      card('Awaiting GC', storeWide ? fmtCount(data.unreferenced_chunks) : '—', 'unreferenced chunks')));
    if (!storeWide) {
      view.append(note('These figures cover this key\'s tenants. Chunks, storage roots, metadata health and the volume are shown to keys of every tenant.'));
    }

    const tenants = Array.isArray(data.tenants) ? data.tenants : [];
    view.append(section('Tenants', tenants.length === 0
      ? note('No tenants yet.')
      : simpleTable('Usage per tenant', [
        { label: 'Tenant', rowHeader: true }, { label: 'Objects', num: true },
        { label: 'Logical', num: true }, { label: 'Physical', num: true }, { label: 'Dedup', num: true },
      ], tenants.map((t) => [
        el('a', { href: bucketsHash(t.tenant) }, t.tenant),
        fmtCount(t.objects), bytesCell(t.logical_bytes),
        // Physical bytes are recounted in the background: say when, or that it is running.
        t.physical_bytes === null || t.physical_bytes === undefined
          ? el('span', { title: 'being counted; reload in a moment' }, 'counting…')
          : el('span', { title: 'counted ' + (t.physical_as_of || '') }, fmtBytes(t.physical_bytes)),
        fmtRatio(null, t.logical_bytes, t.physical_bytes),
      ]))));

    if (!storeWide) return;

    const roots = Array.isArray(data.storage_roots) ? data.storage_roots : [];
    view.append(section('Storage roots', roots.length === 0
      ? note('No storage roots reported.')
      : simpleTable('Storage roots', [
        { label: 'Class', rowHeader: true }, { label: 'Space' }, { label: 'Total', num: true },
        { label: 'Logical', num: true }, { label: 'Physical', num: true }, { label: 'Chunks', num: true },
        { label: 'Writable' },
      ], roots.map((root) => [
        root.class, spaceBar(root.free_bytes, root.total_bytes), bytesCell(root.total_bytes),
        bytesCell(root.logical_bytes || 0), bytesCell(root.physical_bytes || 0), fmtCount(root.chunks || 0),
        root.writable ? badge('writable', 'ok') : badge('not writable', 'bad'),
      ]))));

    const rates = await api('GET', '/api/rates', undefined, { signal }).catch(() => null);
    if (rates && Array.isArray(rates.points)) view.append(section('Requests, last hour', rateChart(rates.points)));

    const meta = data.metadata || {};
    view.append(section('Metadata',
      el('dl', { class: 'facts' },
        el('dt', null, 'Engine'), el('dd', null, meta.engine || '—'),
        el('dt', null, 'Health'), el('dd', null, meta.healthy ? badge('healthy', 'ok') : badge('unhealthy', 'bad')))));

    if (data.volume) {
      const mounts = Array.isArray(data.volume.mounts) ? data.volume.mounts : [];
      view.append(section('Filesystem volume',
        el('dl', { class: 'facts' }, el('dt', null, 'Name'), el('dd', null, el('code', null, data.volume.name))),
        mounts.length === 0
          ? note('No client has this volume mounted.')
          : simpleTable('Mounts of the volume', [
            { label: 'Host', rowHeader: true }, { label: 'Mount point' }, { label: 'Version' },
            { label: 'Last heartbeat' }, { label: 'State' },
          ], mounts.map((m) => [
            m.host, el('code', null, m.mount_point), m.version, timeCell(m.last_heartbeat),
            m.alive ? badge('alive', 'ok') : badge('expired', 'bad'),
          ]))));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Buckets

  async function renderBuckets(view, r, signal) {
    view.append(pageHeader('Buckets'));
    const done = loading(view);
    const data = await api('GET', '/api/tenants', undefined, { signal });
    done();
    const tenants = Array.isArray(data.tenants) ? data.tenants.slice() : [];

    let tenant = r.tenant || (tenants.includes(state.lastTenant) ? state.lastTenant : tenants[0]) || null;
    if (tenant && !tenants.includes(tenant)) tenants.unshift(tenant); // opened by name
    // Names the tenant in the address (no hashchange), unless the address moved on while the
    // list loaded: its own hashchange is still to come and must find the address it set.
    if (tenant && !r.tenant && location.hash === r.hash) history.replaceState(null, '', bucketsHash(tenant));
    state.lastTenant = tenant;

    // Tenant picker: a select of the known tenants, and for a key of every tenant a field
    // to open any other (a tenant with no bucket and no key is listed nowhere).
    const select = el('select', { name: 'tenant', onChange: () => { location.hash = bucketsHash(select.value); } },
      tenants.map((t) => el('option', { value: t, selected: t === tenant }, t)));
    const picker = el('div', { class: 'toolbar' }, tenants.length ? field('Tenant', select) : null);
    if (seesAllTenants()) {
      const other = el('input', { type: 'text', name: 'other', required: true, spellcheck: 'false', autocomplete: 'off' });
      picker.append(el('form', { class: 'inline-form', onSubmit: (e) => {
        e.preventDefault();
        const name = other.value.trim();
        if (name) location.hash = bucketsHash(name);
      } }, field('Other tenant', other), el('button', { type: 'submit', class: 'secondary' }, 'Open')));
    }
    view.append(picker);
    if (!tenant) {
      view.append(note('This key sees no tenant yet.'));
      return;
    }

    if (canWrite()) view.append(createBucketForm(tenant, () => loadList()));

    const listSection = section('Buckets of ' + tenant);
    view.append(listSection);
    const listBody = el('div');
    listSection.append(listBody);

    async function loadList() {
      listBody.replaceChildren();
      const stop = loading(listBody);
      let result;
      try {
        result = await api('GET', '/api/buckets?' + query({ tenant }), undefined, { signal });
      } finally {
        stop();
      }
      const buckets = Array.isArray(result.buckets) ? result.buckets : [];
      if (buckets.length === 0) {
        listBody.append(note('No buckets in this tenant yet.'));
        return;
      }
      const columns = [
        { label: 'Name', rowHeader: true }, { label: 'Created' }, { label: 'Objects', num: true }, { label: 'Size', num: true },
      ];
      if (canWrite()) columns.push({ label: 'Actions', srOnly: true });
      const t = makeTable('Buckets of tenant ' + tenant, columns);
      for (const b of buckets) {
        const cells = [
          el('a', { href: objectsHash(tenant, b.name, '') }, b.name),
          timeCell(b.created_at), fmtCount(b.objects), bytesCell(b.logical_bytes),
        ];
        if (canWrite()) {
          const deleteBtn = button('Delete', () => deleteBucket(b.name, deleteBtn), 'danger small',
            { 'aria-label': 'Delete bucket ' + b.name });
          cells.push(deleteBtn);
        }
        t.body.appendChild(t.row(cells));
      }
      listBody.append(t.wrap);
    }

    async function deleteBucket(name, btn) {
      const ok = await confirmAction('Delete bucket ' + name + '?',
        'Only an empty bucket can be deleted. This cannot be undone.', 'Delete bucket');
      if (!ok) return;
      hideAlert();
      try {
        await busy(btn, 'Deleting…', () => api('DELETE', '/api/buckets?' + query({ tenant, name }), undefined, { signal }));
      } catch (err) {
        report(err); // e.g. 409 "the bucket … is not empty"
        return;
      }
      setStatus('Bucket ' + name + ' deleted.');
      await loadList();
      listSection.querySelector('h2').focus(); // its row is gone: keep focus on the list
    }

    await loadList();
  }

  function createBucketForm(tenant, onCreated) {
    const input = el('input', {
      type: 'text', name: 'name', required: true, minlength: '3', maxlength: '63', spellcheck: 'false',
      autocomplete: 'off', pattern: '[a-z0-9][a-z0-9.\\-]*[a-z0-9]',
    });
    const submit = el('button', { type: 'submit', class: 'primary' }, 'Create bucket');
    const form = el('form', { class: 'inline-form', onSubmit: async (e) => {
      e.preventDefault();
      const name = input.value.trim();
      hideAlert();
      try {
        await busy(submit, 'Creating…', () => api('POST', '/api/buckets', { tenant, name }));
      } catch (err) {
        report(err);
        return;
      }
      form.reset();
      setStatus('Bucket ' + name + ' created.');
      await onCreated();
    } }, field('New bucket name', input, '3–63 characters: a–z, 0–9, "." and "-"'), submit);
    return section('Create a bucket', form);
  }

  // ---------------------------------------------------------------------------------------
  // Object browser: one folder level at a time (delimiter "/"), a page at a time.

  function breadcrumb(tenant, bucket, prefix) {
    // The "folder" is the prefix up to its last "/"; what follows is a filter on names.
    const folder = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    const filter = prefix.slice(folder.length);
    const items = [
      { label: 'Buckets', href: bucketsHash(tenant) },
      { label: bucket, href: objectsHash(tenant, bucket, '') },
    ];
    let path = '';
    if (folder) {
      for (const segment of folder.slice(0, -1).split('/')) {
        path += segment + '/';
        items.push({ label: segment === '' ? '(empty)' : segment, href: objectsHash(tenant, bucket, path) });
      }
    }
    if (filter) items.push({ label: filter + '…', href: null });
    const list = el('ol', null, items.map((item, i) => {
      const last = i === items.length - 1;
      return el('li', null, item.href && !last
        ? el('a', { href: item.href }, item.label)
        : el('span', { 'aria-current': 'page' }, item.label));
    }));
    return el('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' }, list);
  }

  async function renderObjects(view, r, signal) {
    const { tenant, bucket, prefix } = r;
    const folder = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    const writable = canWrite();
    state.lastTenant = tenant;
    document.title = bucket + ' · Cairn console';

    view.append(pageHeader(bucket, el('span', { class: 'muted' }, 'tenant ' + tenant)),
      breadcrumb(tenant, bucket, prefix));

    // The prefix box holds the whole prefix: "photos/2024" lists what starts with it.
    const prefixInput = el('input', { type: 'search', name: 'prefix', value: prefix, spellcheck: 'false', autocomplete: 'off' });
    const searchForm = el('form', { class: 'inline-form', role: 'search', onSubmit: (e) => {
      e.preventDefault();
      const target = objectsHash(tenant, bucket, prefixInput.value);
      // The same prefix again changes no hash: list it afresh all the same.
      if (target === location.hash) route(false);
      else location.hash = target;
    } }, field('Prefix', prefixInput, 'Lists the keys that start with it.'),
    el('button', { type: 'submit', class: 'secondary' }, 'Search'));
    const toolbar = el('div', { class: 'toolbar' }, searchForm);
    view.append(toolbar);
    // Uploads go into the folder on screen; they keep going if the view changes.
    if (writable) view.append(uploadPanel(tenant, bucket, folder));
    const detailArea = el('div', { class: 'detail-area' });
    view.append(detailArea);

    const selected = new Set(); // keys of the checked objects
    const rows = new Map(); // key -> { tr, box }
    const seenPrefixes = new Set();
    let cursor = null;

    const deleteBtn = writable ? button('Delete selected', () => deleteSelected(), 'danger', { disabled: true }) : null;
    const selectAll = writable
      ? el('input', { type: 'checkbox', 'aria-label': 'Select every object listed', onChange: () => {
        for (const [key, row] of rows) {
          row.box.checked = selectAll.checked;
          if (selectAll.checked) selected.add(key);
          else selected.delete(key);
        }
        updateSelection();
      } })
      : null;
    if (deleteBtn) toolbar.append(el('div', { class: 'toolbar-end' }, deleteBtn));

    const columns = [
      { label: 'Name' }, { label: 'Size', num: true }, { label: 'Last modified' }, { label: 'Storage class' },
    ];
    if (writable) columns.unshift({ label: 'Select', header: selectAll });
    const t = makeTable('Folders and objects under ' + (prefix || 'the bucket root'), columns);
    // Folders first, objects after, even as later pages bring more of both.
    const folderBody = t.body;
    const objectBody = el('tbody');
    t.table.appendChild(objectBody);

    const summary = el('p', { class: 'muted summary' });
    const moreBtn = button('Load more', () => loadPage().catch(report), 'secondary', { hidden: true });
    const listArea = el('div', { class: 'panel flush' }, t.wrap);
    view.append(listArea, el('div', { class: 'list-footer' }, summary, moreBtn));

    function updateSelection() {
      if (!writable) return;
      deleteBtn.disabled = selected.size === 0;
      deleteBtn.textContent = selected.size ? 'Delete selected (' + selected.size + ')' : 'Delete selected';
      selectAll.checked = rows.size > 0 && selected.size === rows.size;
      selectAll.indeterminate = selected.size > 0 && selected.size < rows.size;
    }

    function updateSummary() {
      const parts = [];
      if (seenPrefixes.size) parts.push(seenPrefixes.size.toLocaleString() + (seenPrefixes.size === 1 ? ' folder' : ' folders'));
      parts.push(rows.size.toLocaleString() + (rows.size === 1 ? ' object' : ' objects'));
      summary.textContent = (parts.join(', ') + ' shown') + (cursor ? '; more to load.' : '.');
    }

    function folderRow(p) {
      const cells = [
        el('a', { href: objectsHash(tenant, bucket, p), class: 'folder', title: p }, p.slice(folder.length)),
        '—', '—', '—',
      ];
      if (writable) cells.unshift('');
      return t.row(cells);
    }

    function objectRow(o) {
      const name = o.key.slice(folder.length) || o.key;
      const cells = [
        el('button', { type: 'button', class: 'link key', title: o.key,
          onClick: (e) => openDetail(o.key, e.currentTarget) }, name),
        bytesCell(o.size_bytes), timeCell(o.created_at), badge(o.storage_class || '—', 'class'),
      ];
      let box = null;
      if (writable) {
        box = el('input', { type: 'checkbox', 'aria-label': 'Select ' + o.key, onChange: () => {
          if (box.checked) selected.add(o.key);
          else selected.delete(o.key);
          updateSelection();
        } });
        cells.unshift(box);
      }
      const tr = t.row(cells);
      rows.set(o.key, { tr, box });
      return tr;
    }

    // The object detail pane, above the list. Closing it gives focus back to the row.
    async function openDetail(key, opener) {
      await objectDetail(detailArea, { tenant, bucket, key, signal, writable,
        onClose: () => {
          detailArea.replaceChildren();
          if (opener && opener.isConnected) opener.focus();
        },
        onDeleted: () => {
          const row = rows.get(key);
          if (row) row.tr.remove();
          rows.delete(key);
          selected.delete(key);
          updateSelection();
          updateSummary();
        } });
    }

    // A finished upload shows in the list at once when it lands in this folder (or below).
    function onUploaded(t2, b2, o) {
      if (signal.aborted || t2 !== tenant || b2 !== bucket || !o.key.startsWith(folder)) return;
      if (!listArea.contains(t.wrap)) listArea.replaceChildren(t.wrap);
      const rest = o.key.slice(folder.length);
      const slash = rest.indexOf('/');
      if (slash >= 0) {
        const p = folder + rest.slice(0, slash + 1);
        if (!seenPrefixes.has(p)) {
          seenPrefixes.add(p);
          folderBody.appendChild(folderRow(p));
        }
      } else {
        const old = rows.get(o.key);
        selected.delete(o.key); // a new object under that key: not the one checked
        const tr = objectRow(o);
        if (old) old.tr.replaceWith(tr);
        else objectBody.appendChild(tr);
      }
      updateSelection();
      updateSummary();
    }
    uploads.listeners.add(onUploaded);
    signal.addEventListener('abort', () => uploads.listeners.delete(onUploaded));

    async function loadPage() {
      const stop = loading(listArea, cursor ? 'Loading more…' : 'Loading…');
      moreBtn.disabled = true;
      let data;
      try {
        data = await api('GET', '/api/objects?' + query({
          tenant, bucket, prefix, delimiter: '/', limit: String(PAGE_SIZE), cursor,
        }), undefined, { signal });
      } finally {
        stop();
        moreBtn.disabled = false;
      }
      for (const p of data.prefixes || []) {
        // A folder can come back on the next page too: list it once.
        if (seenPrefixes.has(p)) continue;
        seenPrefixes.add(p);
        folderBody.appendChild(folderRow(p));
      }
      for (const o of data.objects || []) {
        if (!rows.has(o.key)) objectBody.appendChild(objectRow(o));
      }
      // A cursor that does not move on would ask for the same page forever.
      const next = data.next_cursor;
      cursor = next && next !== cursor ? next : null;
      moreBtn.hidden = !cursor;
      if (!cursor && seenPrefixes.size === 0 && rows.size === 0) {
        listArea.replaceChildren(note(prefix ? 'No keys start with this prefix.' : 'This bucket is empty.'));
      }
      updateSelection();
      updateSummary();
    }

    async function deleteSelected() {
      const keys = Array.from(selected);
      if (keys.length === 0) return;
      const ok = await confirmAction(
        keys.length === 1 ? 'Delete 1 object?' : 'Delete ' + keys.length.toLocaleString() + ' objects?',
        (keys.length === 1 ? keys[0] : 'The selected objects') +
        ' will be deleted now; their space is reclaimed by garbage collection later. This cannot be undone.',
        'Delete');
      if (!ok) return;
      hideAlert();
      const failures = [];
      let deleted = 0;
      await busy(deleteBtn, 'Deleting…', async () => {
        for (const batch of deleteBatches(keys)) {
          const result = await api('DELETE', '/api/objects',
            { tenant, bucket, keys: batch }, { signal });
          for (const key of result.deleted || []) {
            const row = rows.get(key);
            if (row) row.tr.remove();
            rows.delete(key);
            selected.delete(key);
            deleted += 1;
          }
          for (const e of result.errors || []) failures.push(e.key + ': ' + e.message);
        }
      }).catch(report);
      updateSelection();
      updateSummary();
      // The button is disabled once nothing is selected: keep focus somewhere useful.
      if (deleteBtn.disabled) view.querySelector('h1').focus();
      if (deleted) setStatus(deleted === 1 ? '1 object deleted.' : deleted.toLocaleString() + ' objects deleted.');
      if (failures.length) {
        showAlert(failures.length === 1 ? '1 object could not be deleted:' : failures.length + ' objects could not be deleted:', failures);
      }
    }

    await loadPage();
  }

  // ---------------------------------------------------------------------------------------
  // Uploads (docs/console.md "Bodies"): one PUT up to SINGLE_PUT_MAX, else a multipart
  // upload of PART_BYTES parts, PARTS_IN_FLIGHT at a time. A part that fails is retried
  // with backoff; a file whose part still fails can be resumed: the page asks the server
  // which parts arrived and sends only the others.

  const MiB = 1024 * 1024;
  const SINGLE_PUT_MAX = 16 * MiB;
  const PART_BYTES = 8 * MiB;
  const PARTS_IN_FLIGHT = 2;
  const PART_RETRIES = 3;
  const RETRY_BASE_MS = 500;

  // One list of uploads for the whole page: it outlives the view that started them.
  const uploads = {
    list: null, // the <ul>, made on first use
    queue: [],
    running: false,
    listeners: new Set(), // (tenant, bucket, object JSON) => void, from the objects view
  };

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  // A request with upload progress (fetch has none). Resolves with the parsed JSON;
  // rejects with an ApiError (status 0: the network).
  function xhrSend(method, path, body, options) {
    const opts = options || {};
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, path);
      xhr.setRequestHeader('Accept', 'application/json');
      xhr.setRequestHeader('X-CSRF-Token', state.csrf || '');
      xhr.setRequestHeader('Content-Type', opts.contentType || 'application/octet-stream');
      if (opts.onProgress) xhr.upload.onprogress = (e) => opts.onProgress(e.loaded);
      // An upload's requests in flight, so that Cancel can stop them.
      if (opts.inFlight) {
        opts.inFlight.add(xhr);
        xhr.onloadend = () => opts.inFlight.delete(xhr);
      }
      xhr.onerror = () => reject(new ApiError(0, 'Network', 'The upload was cut off (network error).'));
      xhr.onabort = () => reject(new ApiError(0, 'Aborted', 'The upload was stopped.'));
      xhr.onload = () => {
        let data = null;
        try {
          data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
        } catch (_) {
          data = null;
        }
        if (xhr.status >= 200 && xhr.status < 300) {
          resolve(data);
          return;
        }
        const info = data && data.error && typeof data.error === 'object' ? data.error : {};
        const message = typeof info.message === 'string' && info.message
          ? info.message : 'The server answered ' + xhr.status;
        if (xhr.status === 401) sessionEnded(message);
        reject(new ApiError(xhr.status, info.code || 'HTTP' + xhr.status, message));
      };
      xhr.send(body);
    });
  }

  // Worth trying again: the network, a timeout, a busy or failing server. A refusal
  // (403, 404, 413...) would only be refused again.
  function retryable(err) {
    return err instanceof ApiError && (err.status === 0 || err.status === 408 || err.status === 429 || err.status >= 500) &&
      err.code !== 'Aborted';
  }

  function uploadPanel(tenant, bucket, folder) {
    if (!uploads.list) uploads.list = el('ul', { class: 'upload-list', 'aria-label': 'Uploads' });
    const where = folder ? bucket + '/' + folder : bucket;
    const fileInput = el('input', { type: 'file', multiple: true, class: 'file-input', onChange: () => {
      enqueueFiles(tenant, bucket, Array.from(fileInput.files).map((f) => ({ file: f, path: f.name })));
      fileInput.value = '';
    } });
    const folderInput = el('input', { type: 'file', multiple: true, webkitdirectory: true, class: 'file-input', onChange: () => {
      enqueueFiles(tenant, bucket, Array.from(folderInput.files).map((f) => ({ file: f, path: f.webkitRelativePath || f.name })));
      folderInput.value = '';
    } });
    const hint = el('p', { class: 'muted drop-hint' }, 'Or drop files and folders here. They go into ', el('code', null, where), '.');
    const zone = el('div', { class: 'dropzone' },
      el('div', { class: 'toolbar upload-inputs' }, field('Upload files', fileInput), field('Upload a folder', folderInput)), hint);
    zone.addEventListener('dragover', (e) => {
      e.preventDefault();
      e.dataTransfer.dropEffect = 'copy';
      zone.classList.add('dragging');
    });
    zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
    zone.addEventListener('drop', guarded(async (e) => {
      e.preventDefault();
      zone.classList.remove('dragging');
      const files = await droppedFiles(e.dataTransfer);
      enqueueFiles(tenant, bucket, files);
    }));
    // Keys: the folder on screen plus the file's path (a folder's files keep their tree).
    function enqueueFiles(t, b, items) {
      for (const item of items) startUpload(t, b, folder + item.path, item.file);
    }
    return section('Upload', zone, uploads.list);
  }

  // The files of a drop, folders walked (webkitGetAsEntry): [{ file, path }].
  async function droppedFiles(transfer) {
    const entries = [];
    for (const item of Array.from(transfer.items || [])) {
      const entry = item.kind === 'file' && item.webkitGetAsEntry ? item.webkitGetAsEntry() : null;
      if (entry) entries.push(entry);
    }
    if (entries.length === 0) return Array.from(transfer.files || []).map((file) => ({ file, path: file.name }));
    const out = [];
    async function walk(entry, path) {
      if (entry.isFile) {
        const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
        out.push({ file, path: path + entry.name });
      } else if (entry.isDirectory) {
        const reader = entry.createReader();
        // readEntries gives a batch at a time: read until it gives none.
        for (;;) {
          const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
          if (batch.length === 0) break;
          for (const child of batch) await walk(child, path + entry.name + '/');
        }
      }
    }
    for (const entry of entries) await walk(entry, '');
    return out;
  }

  function startUpload(tenant, bucket, key, file) {
    const bar = el('progress', { max: String(Math.max(file.size, 1)), value: '0' });
    bar.id = nextId('progress');
    const label = el('label', { for: bar.id, class: 'upload-name' }, key);
    const text = el('span', { class: 'upload-text' }, 'Waiting…');
    const actions = el('span', { class: 'upload-actions' });
    const item = el('li', { class: 'upload-item' }, label, bar, text, actions);
    uploads.list.prepend(item);
    const job = {
      tenant, bucket, key, file, bar, text, actions, item,
      uploadId: null, etags: new Map(), loaded: new Map(), // part -> bytes sent so far
      state: 'waiting', inFlight: new Set(),
    };
    job.actions.replaceChildren(cancelButton(job));
    uploads.queue.push(job);
    runUploads();
  }

  function cancelButton(job) {
    return button('Cancel', () => cancelUpload(job), 'secondary small', { 'aria-label': 'Cancel the upload of ' + job.key });
  }

  // Stops the upload: a waiting one leaves the queue, a running one's requests are cut off
  // (a body that breaks off stores nothing), and the parts already stored are dropped on the
  // server. A cancel that crosses the last byte's answer may leave the object stored.
  async function cancelUpload(job) {
    if (job.state === 'done' || job.state === 'cancelled') return;
    const wasRunning = job.state === 'running';
    job.state = 'cancelled';
    const queued = uploads.queue.indexOf(job);
    if (queued >= 0) uploads.queue.splice(queued, 1);
    for (const xhr of Array.from(job.inFlight)) xhr.abort();
    job.item.classList.remove('failed');
    job.item.classList.add('cancelled');
    job.actions.replaceChildren();
    job.text.textContent = 'cancelled';
    setStatus('Cancelled the upload of ' + job.key + '.');
    // A running multipart upload drops its parts itself once its requests have stopped.
    if (!wasRunning) await dropParts(job);
  }

  async function dropParts(job) {
    if (!job.uploadId) return;
    const uploadId = job.uploadId;
    job.uploadId = null;
    try {
      await api('DELETE', '/api/uploads?' + query({ tenant: job.tenant, bucket: job.bucket, key: job.key, upload_id: uploadId }));
    } catch (err) {
      // Not fatal: GC reaps a stalled upload; say so rather than hide it.
      if (!(err instanceof ApiError && err.status === 404)) {
        job.text.textContent = 'cancelled — its parts stay until GC reaps them (' + (err.message || String(err)) + ')';
      }
    }
  }

  // Files go up one after the other (their parts two at a time).
  async function runUploads() {
    if (uploads.running) return;
    uploads.running = true;
    try {
      while (uploads.queue.length) await runUpload(uploads.queue.shift());
    } finally {
      uploads.running = false;
    }
  }

  function showProgress(job, sent) {
    if (job.state === 'cancelled') return; // a request that ends after the cancel
    const size = job.file.size;
    job.bar.value = Math.min(sent, size);
    const percent = size ? Math.floor((Math.min(sent, size) / size) * 100) : 100;
    job.text.textContent = fmtBytes(Math.min(sent, size)) + ' of ' + fmtBytes(size) + ' (' + percent + '%)';
  }

  async function runUpload(job) {
    job.state = 'running';
    job.actions.replaceChildren(cancelButton(job));
    job.item.classList.remove('failed');
    showProgress(job, 0);
    const target = query({ tenant: job.tenant, bucket: job.bucket, key: job.key });
    const contentType = job.file.type || 'application/octet-stream';
    let object;
    try {
      if (job.file.size <= SINGLE_PUT_MAX) {
        object = await xhrSend('PUT', '/api/upload?' + target, job.file,
          { contentType, onProgress: (n) => showProgress(job, n), inFlight: job.inFlight });
      } else {
        object = await multipart(job, contentType);
      }
    } catch (err) {
      if (job.state === 'cancelled') {
        await dropParts(job);
        return;
      }
      job.state = 'failed';
      job.item.classList.add('failed');
      job.text.textContent = 'failed — ' + (err.message || String(err));
      if (!(err instanceof ApiError && err.status === 401)) {
        job.actions.replaceChildren(button('Resume', () => {
          if (job.state !== 'failed') return; // a second click
          job.state = 'waiting';
          job.actions.replaceChildren(cancelButton(job));
          job.text.textContent = 'Waiting…';
          uploads.queue.push(job);
          runUploads();
        }, 'secondary small', { 'aria-label': 'Resume the upload of ' + job.key }), cancelButton(job));
      }
      return;
    }
    if (job.state === 'cancelled') return; // cancelled as the last byte was answered
    job.state = 'done';
    job.actions.replaceChildren();
    job.bar.value = job.bar.max;
    job.text.textContent = fmtBytes(job.file.size) + ' — uploaded';
    setStatus('Uploaded ' + job.key + '.');
    for (const listener of uploads.listeners) listener(job.tenant, job.bucket, object);
  }

  async function multipart(job, contentType) {
    const { tenant, bucket, key, file } = job;
    let got = null;
    if (job.uploadId) {
      // A resume: keep what arrived whole, send the rest. An upload the server no longer
      // knows (aborted, reaped by GC) starts again.
      try {
        got = await api('GET', '/api/uploads/parts?' + query({ tenant, bucket, key, upload_id: job.uploadId }));
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 404)) throw err;
        job.uploadId = null;
      }
    }
    job.etags.clear();
    job.loaded.clear();
    if (!job.uploadId) {
      const made = await api('POST', '/api/uploads', { tenant, bucket, key, content_type: contentType });
      job.uploadId = made.upload_id;
    } else {
      for (const p of got.parts || []) {
        if (Number(p.size_bytes) === partSize(file.size, p.part)) {
          job.etags.set(p.part, p.etag);
          job.loaded.set(p.part, Number(p.size_bytes));
        }
      }
    }
    const count = Math.max(1, Math.ceil(file.size / PART_BYTES));
    const todo = [];
    for (let n = 1; n <= count; n += 1) if (!job.etags.has(n)) todo.push(n);
    const sentSoFar = () => Array.from(job.loaded.values()).reduce((a, b) => a + b, 0);
    showProgress(job, sentSoFar());
    let failure = null;
    async function worker() {
      while (todo.length && !failure && job.state !== 'cancelled') {
        const n = todo.shift();
        try {
          job.etags.set(n, await sendPart(job, n, () => showProgress(job, sentSoFar())));
        } catch (err) {
          failure = failure || err;
        }
      }
    }
    const workers = [];
    for (let i = 0; i < PARTS_IN_FLIGHT; i += 1) workers.push(worker());
    await Promise.all(workers);
    if (failure) throw failure;
    if (job.state === 'cancelled') throw new ApiError(0, 'Aborted', 'The upload was stopped.');
    const parts = Array.from(job.etags.entries()).sort((a, b) => a[0] - b[0]).map(([part, etag]) => ({ part, etag }));
    return api('POST', '/api/uploads/complete', { tenant, bucket, key, upload_id: job.uploadId, parts });
  }

  function partSize(total, n) {
    return Math.max(0, Math.min(PART_BYTES, total - (n - 1) * PART_BYTES));
  }

  async function sendPart(job, n, progressed) {
    const start = (n - 1) * PART_BYTES;
    const blob = job.file.slice(start, start + PART_BYTES);
    const path = '/api/uploads/part?' + query({
      tenant: job.tenant, bucket: job.bucket, key: job.key, upload_id: job.uploadId, part: String(n),
    });
    for (let attempt = 0; ; attempt += 1) {
      if (job.state === 'cancelled') throw new ApiError(0, 'Aborted', 'The upload was stopped.');
      job.loaded.set(n, 0);
      try {
        const answer = await xhrSend('PUT', path, blob, { inFlight: job.inFlight, onProgress: (sent) => {
          job.loaded.set(n, sent);
          progressed();
        } });
        job.loaded.set(n, blob.size);
        progressed();
        return answer.etag;
      } catch (err) {
        job.loaded.set(n, 0);
        progressed();
        if (attempt >= PART_RETRIES || !retryable(err)) throw err;
        await sleep(RETRY_BASE_MS * 2 ** attempt);
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // Object detail: GET /api/object, with download, preview, share link and delete.

  const PREVIEW_BYTES = 64 * 1024;
  const PREVIEW_IMAGES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];
  const TEXT_TYPES = /^(text\/|application\/(json|xml|javascript|x-yaml|yaml|toml|x-sh|sql|csv|x-ndjson)\b)|\+(json|xml)\b/;
  const SHARE_EXPIRIES = [['3600', '1 hour'], ['86400', '1 day'], ['604800', '7 days']];

  function baseType(contentType) {
    return String(contentType || '').split(';')[0].trim().toLowerCase();
  }

  function previewKind(o) {
    const type = baseType(o.content_type);
    if (PREVIEW_IMAGES.includes(type)) return 'image';
    if (TEXT_TYPES.test(type)) return 'text';
    // Unknown bytes: only a small object is worth a look.
    if ((type === '' || type === 'application/octet-stream') && Number(o.size_bytes) <= PREVIEW_BYTES) return 'text';
    return null;
  }

  function pairsTable(caption, object) {
    const entries = Object.entries(object || {});
    if (entries.length === 0) return note('None.');
    return simpleTable(caption, [{ label: 'Name', rowHeader: true }, { label: 'Value' }],
      entries.map(([k, v]) => [el('span', { class: 'key' }, k), el('span', { class: 'key' }, String(v))]));
  }

  async function objectDetail(area, ctx) {
    const { tenant, bucket, key, signal } = ctx;
    area.replaceChildren();
    const stop = loading(area, 'Loading ' + key + '…');
    let o;
    try {
      o = await api('GET', '/api/object?' + query({ tenant, bucket, key }), undefined, { signal });
    } finally {
      stop();
    }
    const where = query({ tenant, bucket, key });
    const closeBtn = button('Close', ctx.onClose, 'secondary small', { 'aria-label': 'Close the details of ' + key });
    const download = el('a', { class: 'button-link', href: '/api/download?' + where, download: key.split('/').pop() || 'object' }, 'Download');
    const previewArea = el('div', { class: 'preview-area' });
    const shareArea = el('div', { class: 'share-area' });
    const kind = previewKind(o);
    const previewBtn = kind ? button('Preview', () => showPreview(), 'secondary') : null;
    const expiry = el('select', { name: 'expiry' }, SHARE_EXPIRIES.map(([v, t]) => el('option', { value: v }, t)));
    const shareBtn = button('Create share link', () => share(), 'secondary');
    const deleteBtn = ctx.writable ? button('Delete', () => remove(), 'danger') : null;

    const facts = el('dl', { class: 'facts' },
      el('dt', null, 'Key'), el('dd', null, el('span', { class: 'key' }, o.key)),
      el('dt', null, 'Size'), el('dd', null, bytesCell(o.size_bytes), ' (' + fmtCount(o.size_bytes) + ' bytes)'),
      el('dt', null, 'Content hash'), el('dd', null, el('code', { class: 'content-hash' }, o.content_hash || '—')),
      el('dt', null, 'ETag'), el('dd', null, el('code', null, o.etag || '—')),
      el('dt', null, 'Storage class'), el('dd', null, badge(o.storage_class || '—', 'class')),
      el('dt', null, 'Content type'), el('dd', null, el('code', null, o.content_type || '—')),
      el('dt', null, 'Created'), el('dd', null, timeCell(o.created_at)));

    const chunks = Array.isArray(o.chunks) ? o.chunks : [];
    const chunkTable = chunks.length === 0
      ? note(Number(o.size_bytes) > 0 ? 'No chunks: a small object\'s bytes are kept inline with its metadata.' : 'No chunks: the object is empty.') : simpleTable('Chunks of ' + key, [
      { label: 'Digest', rowHeader: true }, { label: 'Size', num: true }, { label: 'References', num: true }, { label: 'Shared' },
    ], chunks.map((c) => [
      el('code', { class: 'digest' }, c.digest), bytesCell(c.size_bytes), fmtCount(c.references),
      c.shared ? badge('shared', 'ok') : badge('only here', 'plain'),
    ]));

    const headingId = nextId('h');
    const pane = el('section', { class: 'panel detail', 'aria-labelledby': headingId },
      el('div', { class: 'detail-head' }, el('h2', { id: headingId, tabindex: '-1', class: 'key' }, o.key), closeBtn),
      facts,
      el('div', { class: 'detail-actions' }, download, previewBtn, deleteBtn),
      previewArea,
      el('form', { class: 'inline-form share-form', onSubmit: (e) => {
        e.preventDefault();
        return share();
      } }, field('Share link expires after', expiry), shareBtn),
      shareArea,
      el('h3', null, 'Metadata'), pairsTable('Metadata of ' + key, o.metadata),
      el('h3', null, 'Tags'), pairsTable('Tags of ' + key, o.tags),
      el('h3', null, 'Chunks'), chunkTable);
    area.replaceChildren(pane);
    pane.querySelector('h2').focus();

    async function showPreview() {
      previewArea.replaceChildren();
      if (kind === 'image') {
        previewArea.append(el('img', { class: 'preview-image', alt: 'Preview of ' + key,
          src: '/api/download?' + query({ tenant, bucket, key, disposition: 'inline' }) }));
        return;
      }
      const stopLoading = loading(previewArea, 'Loading the preview…');
      let response;
      try {
        response = await fetch('/api/download?' + query({ tenant, bucket, key, disposition: 'inline' }),
          { credentials: 'same-origin', cache: 'no-store', signal, headers: { Range: 'bytes=0-' + (PREVIEW_BYTES - 1) } });
      } finally {
        stopLoading();
      }
      if (!response.ok) {
        previewArea.append(note('No preview: the server answered ' + response.status + '.'));
        return;
      }
      const bytes = await response.arrayBuffer();
      const textOf = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
      const cut = Number(o.size_bytes) > bytes.byteLength;
      previewArea.append(el('pre', { class: 'preview-text', tabindex: '0', 'aria-label': 'Preview of ' + key }, textOf),
        cut ? note('The first ' + fmtBytes(bytes.byteLength) + ' are shown.') : null);
    }

    async function share() {
      shareArea.replaceChildren();
      let made;
      try {
        made = await busy(shareBtn, 'Creating…', () => api('POST', '/api/share',
          { tenant, bucket, key, expires_seconds: Number(expiry.value) }, { signal }));
      } catch (err) {
        if (err && err.name === 'AbortError') return;
        if (err instanceof ApiError && err.status === 401) return;
        shareArea.append(el('p', { class: 'form-error', role: 'alert' }, err.message || String(err)));
        return;
      }
      const urlBox = el('input', { type: 'text', class: 'mono share-url', readonly: true, spellcheck: 'false' });
      urlBox.value = made.url;
      const copyStatus = el('p', { class: 'muted', role: 'status' });
      const copyBtn = button('Copy', async () => {
        try {
          if (!navigator.clipboard || !window.isSecureContext) throw new Error('no clipboard');
          await navigator.clipboard.writeText(made.url);
          copyStatus.textContent = 'Copied to the clipboard.';
        } catch (_) {
          urlBox.focus();
          urlBox.select();
          copyStatus.textContent = 'The link is selected: press Ctrl+C (⌘C) to copy it.';
        }
      }, 'primary', { 'aria-label': 'Copy the share link' });
      urlBox.id = nextId('share');
      const hintId = nextId('hint');
      urlBox.setAttribute('aria-describedby', hintId);
      shareArea.append(el('label', { for: urlBox.id }, 'Share link'),
        el('div', { class: 'copy-row' }, urlBox, copyBtn),
        el('small', { id: hintId, class: 'hint' }, 'Anyone with this link can download the object until ' + made.expires_at + '.'),
        copyStatus);
      urlBox.focus();
      urlBox.select();
    }

    async function remove() {
      const ok = await confirmAction('Delete 1 object?', key +
        ' will be deleted now; its space is reclaimed by garbage collection later. This cannot be undone.', 'Delete');
      if (!ok) return;
      hideAlert();
      const result = await busy(deleteBtn, 'Deleting…', () => api('DELETE', '/api/objects', { tenant, bucket, keys: [key] }, { signal }));
      const errors = (result && result.errors) || [];
      if (errors.length) {
        showAlert('The object could not be deleted:', errors.map((e) => e.key + ': ' + e.message));
        return;
      }
      setStatus('Deleted ' + key + '.');
      ctx.onDeleted();
      ctx.onClose();
    }
  }

  // ---------------------------------------------------------------------------------------
  // Operations: GC and fsck jobs (admin of every tenant)

  const JOB_POLL_MS = 1000;

  function fmtElapsed(ms) {
    const s = Math.max(0, Number(ms) || 0) / 1000;
    if (s < 60) return s.toFixed(1) + ' s';
    const m = Math.floor(s / 60);
    return m + ' min ' + Math.round(s - m * 60) + ' s';
  }

  // Where a running job is: its phase, and a bar when the phase knows its total.
  function jobProgress(p) {
    if (!p || typeof p.phase !== 'string') return '—';
    const done = Number(p.done) || 0;
    const total = Number(p.total) || 0;
    const text = p.phase + (total > 0 ? ': ' + fmtCount(done) + ' of ' + fmtCount(total)
      : done > 0 ? ': ' + fmtCount(done) : '');
    if (total <= 0) return el('span', { class: 'job-progress' }, text);
    const bar = el('progress', { max: String(total), value: String(Math.min(done, total)), 'aria-label': p.phase });
    return el('span', { class: 'job-progress' }, text, ' ', bar);
  }

  function jobResult(job) {
    if (job.state === 'failed') return el('span', { class: 'error-text' }, job.error || 'failed');
    if (job.state === 'running') return jobProgress(job.progress);
    if (!job.result) return '—';
    return el('ul', { class: 'counts' }, Object.entries(job.result).map(([k, v]) =>
      el('li', null, k.replace(/_/g, ' ') + ': ', el('strong', null, typeof v === 'number' ? fmtCount(v) : String(v)))));
  }

  async function renderOperations(view, r, signal) {
    view.append(pageHeader('Operations'));
    if (!runsOperations()) {
      view.append(note('Operations need an admin key of every tenant (*).'));
      return;
    }
    const gcBtn = button('Run GC', () => startJob('gc', gcBtn), 'primary');
    const fsckBtn = button('Run fsck (check only)', () => startJob('fsck', fsckBtn), 'secondary');
    view.append(section('Run',
      note('GC deletes unreferenced chunks and expired uploads. fsck checks every chunk and object and repairs nothing.'),
      el('div', { class: 'detail-actions' }, gcBtn, fsckBtn)));
    const listSection = section('Jobs');
    const listBody = el('div', { 'aria-live': 'polite' });
    listSection.append(listBody);
    view.append(listSection);
    let timer = 0;
    const running = new Set(); // ids of jobs seen running, to say when they end
    signal.addEventListener('abort', () => clearTimeout(timer));

    async function startJob(kind, btn) {
      hideAlert();
      try {
        await busy(btn, 'Starting…', () => api('POST', '/api/jobs', { kind }, { signal }));
      } catch (err) {
        report(err); // 409: one of that kind runs already
        return;
      }
      setStatus((kind === 'gc' ? 'GC' : 'fsck') + ' started.');
      await loadJobs();
    }

    async function loadJobs() {
      clearTimeout(timer);
      const data = await api('GET', '/api/jobs', undefined, { signal });
      const jobs = Array.isArray(data.jobs) ? data.jobs : [];
      if (jobs.length === 0) {
        listBody.replaceChildren(note('No jobs since the server started.'));
      } else {
        const t = makeTable('GC and fsck jobs, newest first', [
          { label: 'Job', rowHeader: true }, { label: 'State' }, { label: 'Started' }, { label: 'Elapsed', num: true }, { label: 'Result' },
        ]);
        for (const job of jobs) {
          const stateBadge = job.state === 'done' ? badge('done', 'ok') : job.state === 'failed' ? badge('failed', 'bad') : badge('running', 'scope');
          t.body.appendChild(t.row([
            el('span', null, job.kind === 'gc' ? 'GC' : 'fsck', ' ', el('code', { class: 'muted' }, job.id)),
            stateBadge, timeCell(job.started_at), fmtElapsed(job.elapsed_ms), jobResult(job),
          ]));
          if (job.state === 'running') running.add(job.id);
          else if (running.delete(job.id)) setStatus((job.kind === 'gc' ? 'GC' : 'fsck') + ' ' + job.state + '.');
        }
        listBody.replaceChildren(t.wrap);
      }
      if (!signal.aborted && jobs.some((j) => j.state === 'running')) {
        timer = setTimeout(() => loadJobs().catch(report), JOB_POLL_MS);
      }
    }

    await loadJobs();
  }

  // ---------------------------------------------------------------------------------------
  // Keys (admin scope)

  async function renderKeys(view, r, signal) {
    view.append(pageHeader('Keys'));
    if (!isAdmin()) {
      view.append(note('Managing keys needs a key of scope admin.'));
      return;
    }
    view.append(createKeyForm(() => loadKeys()));
    const listSection = section('Keys');
    const listBody = el('div');
    listSection.append(listBody);
    view.append(listSection);

    async function loadKeys() {
      listBody.replaceChildren();
      const stop = loading(listBody);
      let data;
      try {
        data = await api('GET', '/api/keys', undefined, { signal });
      } finally {
        stop();
      }
      const keys = Array.isArray(data.keys) ? data.keys : [];
      if (keys.length === 0) {
        listBody.append(note('No keys.'));
        return;
      }
      const t = makeTable('API keys and S3 keys', [
        { label: 'Id', rowHeader: true }, { label: 'Kind' }, { label: 'Scope' }, { label: 'Tenants' },
        { label: 'Description' }, { label: 'Created' }, { label: 'Revoked' }, { label: 'Actions', srOnly: true },
      ]);
      for (const k of keys) {
        const own = state.session && k.id === state.session.key_id;
        const revokeBtn = k.revoked ? null
          : button('Revoke', () => revokeKey(k, revokeBtn), 'danger small', { 'aria-label': 'Revoke key ' + k.id });
        t.body.appendChild(t.row([
          el('span', null, el('code', null, k.id), own ? ' ' : null, own ? badge('this session', 'plain') : null),
          k.kind === 's3' ? 'S3' : 'API', badge(k.scope, 'scope'), tenantsText(k.tenants),
          k.description || '—', timeCell(k.created_at),
          k.revoked ? badge('revoked', 'bad') : badge('live', 'ok'),
          revokeBtn || '',
        ]));
      }
      listBody.append(t.wrap);
    }

    async function revokeKey(key, btn) {
      const own = state.session && key.id === state.session.key_id;
      const ok = await confirmAction('Revoke key ' + key.id + '?',
        'Clients using this key are refused from now on, and console sessions opened with it end.' +
        (own ? ' This is the key of your own session: you will be signed out.' : '') +
        ' A revoked key cannot be restored.', 'Revoke');
      if (!ok) return;
      hideAlert();
      try {
        await busy(btn, 'Revoking…', () => api('DELETE', '/api/keys/' + enc(key.id), undefined, { signal }));
      } catch (err) {
        report(err);
        return;
      }
      setStatus('Key ' + key.id + ' revoked.');
      await loadKeys();
      listSection.querySelector('h2').focus();
    }

    await loadKeys();
  }

  function createKeyForm(onCreated) {
    const kind = el('select', { name: 'kind' },
      el('option', { value: 'api' }, 'API key'), el('option', { value: 's3' }, 'S3 key pair'));
    const tenants = el('input', { type: 'text', name: 'tenants', required: true, spellcheck: 'false', autocomplete: 'off' });
    if (state.session && Array.isArray(state.session.tenants) && !seesAllTenants()) {
      tenants.value = state.session.tenants.join(', ');
    }
    const scope = el('select', { name: 'scope' }, ['read', 'write', 'admin'].map((s) => el('option', { value: s }, s)));
    const description = el('input', { type: 'text', name: 'description', maxlength: '200', autocomplete: 'off' });
    const submit = el('button', { type: 'submit', class: 'primary' }, 'Create key');
    const form = el('form', { class: 'grid-form', onSubmit: async (e) => {
      e.preventDefault();
      const list = tenants.value.split(',').map((s) => s.trim()).filter(Boolean);
      if (list.length === 0) {
        showAlert('Name at least one tenant, or * for every tenant.');
        tenants.focus();
        return;
      }
      const chosenKind = kind.value;
      hideAlert();
      let created;
      try {
        created = await busy(submit, 'Creating…', () => api('POST', '/api/keys',
          { kind: chosenKind, tenants: list, scope: scope.value, description: description.value.trim() }));
      } catch (err) {
        report(err);
        return;
      }
      description.value = '';
      showSecret(chosenKind, created);
      await onCreated();
    } },
    field('Kind', kind),
    field('Tenants', tenants, 'Comma-separated, or * for every tenant.'),
    field('Scope', scope),
    field('Description', description),
    el('div', { class: 'form-actions' }, submit));
    return section('Create a key', form);
  }

  // ---------------------------------------------------------------------------------------
  // Start

  function bind() {
    const ids = {
      boot: 'boot', signin: 'signin', signinForm: 'signin-form', signinApi: 'signin-api', signinS3: 'signin-s3',
      signinError: 'signin-error', signinSubmit: 'signin-submit', shell: 'shell', sessionInfo: 'session-info',
      signout: 'signout', navKeys: 'nav-keys', navOps: 'nav-ops', main: 'main', alert: 'alert', view: 'view',
      status: 'status', skip: 'skip-link', confirmDialog: 'confirm-dialog', confirmTitle: 'confirm-title',
      confirmText: 'confirm-text', confirmOk: 'confirm-ok', confirmCancel: 'confirm-cancel',
      secretDialog: 'secret-dialog', secretTitle: 'secret-title', secretIdLabel: 'secret-id-label',
      secretId: 'secret-id', secretValueLabel: 'secret-value-label', secretValue: 'secret-value',
      secretCopy: 'secret-copy', secretCopyStatus: 'secret-copy-status', secretDone: 'secret-done',
    };
    for (const [name, id] of Object.entries(ids)) els[name] = document.getElementById(id);
    els.nav = document.querySelector('.sidenav');

    els.signinForm.addEventListener('submit', onSignIn);
    for (const radio of els.signinForm.elements.mode) radio.addEventListener('change', updateSignInMode);
    els.signout.addEventListener('click', signOut);
    // The skip link's "#main" is not a route: focus the content instead of navigating.
    els.skip.addEventListener('click', (e) => {
      e.preventDefault();
      els.main.focus();
    });

    els.confirmOk.addEventListener('click', () => closeDialog(els.confirmDialog, 'confirm'));
    els.confirmCancel.addEventListener('click', () => closeDialog(els.confirmDialog, 'cancel'));

    els.secretCopy.addEventListener('click', copySecret);
    els.secretDone.addEventListener('click', () => closeDialog(els.secretDialog));
    // However the dialog closes (button, Escape), the secret leaves the page.
    els.secretDialog.addEventListener('close', () => {
      els.secretValue.value = '';
      els.secretId.textContent = '';
      els.secretCopyStatus.textContent = '';
    });

    window.addEventListener('hashchange', () => route(true));
  }

  async function start() {
    bind();
    updateSignInMode();
    try {
      const session = await api('GET', '/api/session', undefined, { own401: true });
      signedIn(session);
    } catch (err) {
      showSignIn(err instanceof ApiError && err.status === 401 ? '' : err.message);
    }
  }

  start();
})();
