// The script library (mine and the published ones): a table sortable by
// any column, create with file upload (1 MB per file, checked before
// upload), edit, delete and publish one's own; categories come from the
// broker. In a session: an ordered run — pick scripts, move them up and
// down, run them, and follow each script's output live.
// Requests: script_list, script_categories, script_create, script_update,
// script_delete, script_publish, run_scripts.
// Pushed: ScriptOutput, ScriptDone, BatchDone, ConsentDecided.

import { h, clear, field, checkbox, button, statusLine, showStatus, showStatusText, errorText, timeEl, openModal, confirmDialog, announce, uid, setT, tref } from './dom.js';
import { t, language, formatBytes, formatDuration } from './i18n.js';
import {
  bytesToBase64,
  displaySafe,
  fileNameProblem,
  moveItem,
  MAX_SCRIPT_FILE_BYTES,
  MAX_SCRIPT_NAME_CHARS,
  MAX_DESCRIPTION_CHARS,
  MAX_BATCH_SCRIPTS,
  MAX_SCRIPT_TIMEOUT_SECS,
} from './util.js';
import { decisionRef, decidedByRef } from './consent.js';

/** Columns of the library table; every one sorts. */
export const COLUMNS = Object.freeze([
  { key: 'name', label: 'scripts.col.name' },
  { key: 'category', label: 'scripts.col.category' },
  { key: 'description', label: 'scripts.col.description' },
  { key: 'owner', label: 'scripts.col.owner' },
  { key: 'published', label: 'scripts.col.published' },
  { key: 'exec_bytes', label: 'scripts.col.size' },
  { key: 'updated_at', label: 'scripts.col.updated' },
]);

/** Sorts scripts by `key` (stable; names break ties). */
export function sortScripts(scripts, key, descending, lang = 'en') {
  const coll = new Intl.Collator(lang, { numeric: true, sensitivity: 'base' });
  const cmp = (a, b) => {
    const x = a[key];
    const y = b[key];
    let c;
    if (typeof x === 'number' || typeof x === 'boolean') c = Number(x) - Number(y);
    else c = coll.compare(String(x ?? ''), String(y ?? ''));
    if (descending) c = -c;
    // Ties: by name, always A to Z.
    if (c === 0 && key !== 'name') c = coll.compare(a.name, b.name);
    return c;
  };
  return scripts.slice().sort(cmp);
}

/** Why a chosen file cannot be uploaded (a message key and args), or null. */
export function fileProblem(file, what) {
  if (!file) return null;
  if (file.size > MAX_SCRIPT_FILE_BYTES) return ['scripts.form.tooLarge', { what, name: file.name, size: formatBytes(file.size) }];
  if (what === 'exec' && file.size === 0) return ['scripts.form.emptyFile', { name: file.name }];
  const p = fileNameProblem(file.name);
  if (p) return ['scripts.form.badName', { name: file.name }];
  return null;
}

async function upload(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (bytes.length > MAX_SCRIPT_FILE_BYTES) throw new Error(t('scripts.form.tooLarge', { name: file.name, size: formatBytes(bytes.length) }));
  return { name: file.name, data_b64: bytesToBase64(bytes) };
}

/**
 * The script form in a modal dialog: create (no `script`) or edit. Resolves
 * with the saved ScriptInfo, or null when cancelled.
 */
export async function scriptDialog(api, categories, script) {
  const editing = Boolean(script);
  const titleId = uid('dlg');
  const name = h('input', { type: 'text', required: !editing, maxLength: MAX_SCRIPT_NAME_CHARS, value: script?.name ?? '', readOnly: editing, autocomplete: 'off', testid: 'script-form-name' });
  const listId = uid('cats');
  const category = h('input', { type: 'text', maxLength: 64, value: script?.category ?? '', autocomplete: 'off', attrs: { list: listId }, testid: 'script-form-category' });
  const catList = h('datalist', { id: listId }, categories.map((c) => h('option', { value: c })));
  const description = h('textarea', { rows: 3, maxLength: MAX_DESCRIPTION_CHARS, value: script?.description ?? '', testid: 'script-form-description' });
  const exec = h('input', { type: 'file', required: !editing, testid: 'script-form-exec' });
  const input = h('input', { type: 'file', testid: 'script-form-input' });
  const removeInput = checkbox({ label: 'scripts.form.removeInput', testid: 'script-form-remove-input' });
  const status = statusLine({ testid: 'script-form-status' });
  const save = h('button', { type: 'submit', class: 'primary', t: editing ? 'scripts.form.saveChanges' : 'scripts.form.create', testid: 'script-form-save' });

  function check(el, what) {
    const f = el.files?.[0];
    const p = fileProblem(f, what);
    el.setCustomValidity(p ? t(p[0], p[1]) : '');
    if (p) showStatus(status, 'error', p[0], p[1]);
    else showStatus(status, 'info', null);
    return !p;
  }
  exec.addEventListener('change', () => check(exec, 'exec'));
  input.addEventListener('change', () => check(input, 'input'));

  let saved = null;
  const form = h(
    'form',
    {
      class: 'script-form',
      testid: 'script-form',
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          if (!check(exec, 'exec') || !check(input, 'input')) return;
          if (!editing && !name.value.trim()) {
            showStatus(status, 'error', 'scripts.form.nameMissing');
            name.focus();
            return;
          }
          if (!editing && !exec.files?.[0]) {
            showStatus(status, 'error', 'scripts.form.execMissing');
            exec.focus();
            return;
          }
          save.disabled = true;
          showStatus(status, 'info', 'scripts.form.uploading');
          try {
            const execFile = exec.files?.[0] ? await upload(exec.files[0]) : null;
            const inputFile = input.files?.[0] ? await upload(input.files[0]) : null;
            let reply;
            if (editing) {
              reply = await api.expect(
                {
                  op: 'script_update',
                  name: script.name,
                  category: category.value.trim(),
                  description: description.value.trim(),
                  exec: execFile,
                  input: inputFile,
                  remove_input: removeInput.input.checked && !inputFile,
                },
                'script',
              );
            } else {
              reply = await api.expect(
                {
                  op: 'script_create',
                  name: name.value.trim(),
                  category: category.value.trim(),
                  description: description.value.trim(),
                  exec: execFile,
                  input: inputFile,
                },
                'script',
              );
            }
            const { result: _r, ...info } = reply;
            saved = info;
            dialog.close('ok');
          } catch (e) {
            showStatusText(status, 'error', errorText(e));
          } finally {
            save.disabled = false;
          }
        },
      },
    },
    h('h2', { id: titleId, t: editing ? 'scripts.form.editTitle' : 'scripts.form.createTitle', targs: { name: script?.name ?? '' } }),
    field({ label: 'scripts.form.name', input: name, hint: editing ? 'scripts.form.nameFixed' : 'scripts.form.nameHint' }),
    field({ label: 'scripts.form.category', input: category, hint: 'scripts.form.categoryHint' }),
    catList,
    field({ label: 'scripts.form.description', input: description }),
    field({
      label: editing ? 'scripts.form.execReplace' : 'scripts.form.exec',
      input: exec,
      hint: editing ? 'scripts.form.execCurrent' : 'scripts.form.fileHint',
      hintArgs: { name: script?.exec_name ?? '', size: script ? formatBytes(script.exec_bytes) : '' },
    }),
    field({ label: 'scripts.form.input', input, hint: 'scripts.form.fileHint' }),
    editing && script.input_name ? removeInput.el : null,
    status,
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', t: 'common.cancel', on: { click: () => dialog.close('cancel') } }),
      save,
    ),
  );
  const dialog = h('dialog', { class: 'modal wide', 'aria-labelledby': titleId, testid: 'script-dialog' }, form);
  await openModal(dialog);
  return saved;
}

/**
 * The library table. `ctx`: {api, profile}; `onPick(script)` adds a script
 * to a run (only in a session); `isPicked(name)`.
 */
export function createLibrary({ api, profile, onPick, isPicked }) {
  let scripts = [];
  let categories = [];
  let sortKey = 'name';
  let descending = false;
  const status = statusLine({ testid: 'scripts-status' });
  const catFilter = h('select', { testid: 'scripts-category-filter' });
  const search = h('input', { type: 'search', autocomplete: 'off', testid: 'scripts-search' });
  const tbody = h('tbody', { testid: 'scripts-rows' });
  const headers = new Map();
  const headRow = h('tr');
  for (const c of COLUMNS) {
    const b = h('button', { type: 'button', class: 'sort', testid: `scripts-sort-${c.key}`, on: { click: () => sortBy(c.key) } }, h('span', { t: c.label }), h('span', { class: 'sort-mark', 'aria-hidden': 'true' }));
    const th = h('th', { scope: 'col', 'aria-sort': 'none' }, b);
    headers.set(c.key, { th, b });
    headRow.appendChild(th);
  }
  headRow.appendChild(h('th', { scope: 'col', t: 'scripts.col.actions' }));
  const table = h('table', { class: 'data scripts-table', testid: 'scripts-table' }, h('caption', { class: 'visually-hidden', t: 'scripts.caption' }), h('thead', {}, headRow), tbody);
  const empty = h('p', { class: 'empty', t: 'scripts.empty', hidden: true, testid: 'scripts-empty' });

  function sortBy(key) {
    if (sortKey === key) descending = !descending;
    else {
      sortKey = key;
      descending = false;
    }
    render();
    headers.get(key).b.focus();
  }

  function own(s) {
    return profile && s.owner === profile.username;
  }

  function rowFor(s) {
    const actions = h('td', { class: 'actions-cell' });
    if (onPick) {
      actions.appendChild(
        h('button', {
          type: 'button',
          class: 'secondary small',
          t: 'scripts.addToRun',
          tattrs: { 'aria-label': ['scripts.addToRunLabel', { name: s.name }] },
          disabled: isPicked?.(s.name),
          testid: `script-add-${s.name}`,
          on: { click: () => onPick(s) },
        }),
      );
    }
    if (own(s)) {
      actions.append(
        h('button', { type: 'button', class: 'secondary small', t: 'scripts.edit', tattrs: { 'aria-label': ['scripts.editLabel', { name: s.name }] }, testid: `script-edit-${s.name}`, on: { click: () => edit(s) } }),
        h('button', {
          type: 'button',
          class: 'secondary small',
          t: s.published ? 'scripts.unpublish' : 'scripts.publish',
          tattrs: { 'aria-label': [s.published ? 'scripts.unpublishLabel' : 'scripts.publishLabel', { name: s.name }] },
          testid: `script-publish-${s.name}`,
          on: { click: () => publish(s, !s.published) },
        }),
        h('button', { type: 'button', class: 'danger small', t: 'scripts.delete', tattrs: { 'aria-label': ['scripts.deleteLabel', { name: s.name }] }, testid: `script-delete-${s.name}`, on: { click: () => remove(s) } }),
      );
    }
    return h(
      'tr',
      { testid: `script-row-${s.name}`, dataset: { name: s.name } },
      h('td', {}, h('strong', { text: displaySafe(s.name) }), h('br'), h('small', { class: 'muted mono', text: displaySafe(s.exec_name) + (s.input_name ? ` + ${displaySafe(s.input_name)}` : '') })),
      h('td', { text: displaySafe(s.category) }),
      h('td', { class: 'wrap', text: displaySafe(s.description) }),
      h('td', { text: displaySafe(s.owner) }),
      h('td', {}, h('span', { class: ['badge', s.published ? 'published' : 'private'], t: s.published ? 'scripts.yes' : 'scripts.no' })),
      h('td', { class: 'num', text: formatBytes(s.exec_bytes) }),
      h('td', {}, timeEl(s.updated_at)),
      actions,
    );
  }

  function visible() {
    const cat = catFilter.value;
    const q = search.value.trim().toLowerCase();
    return scripts.filter((s) => (!cat || s.category === cat) && (!q || `${s.name} ${s.description} ${s.category} ${s.owner}`.toLowerCase().includes(q)));
  }

  function render() {
    for (const [key, { th, b }] of headers) {
      const on = key === sortKey;
      th.setAttribute('aria-sort', on ? (descending ? 'descending' : 'ascending') : 'none');
      b.querySelector('.sort-mark').textContent = on ? (descending ? '▼' : '▲') : '';
    }
    clear(tbody);
    const list = sortScripts(visible(), sortKey, descending, language());
    for (const s of list) tbody.appendChild(rowFor(s));
    empty.hidden = list.length > 0;
  }

  function renderCategories() {
    const was = catFilter.value;
    clear(catFilter);
    catFilter.appendChild(h('option', { value: '', t: 'scripts.allCategories' }));
    for (const c of categories) catFilter.appendChild(h('option', { value: c, text: displaySafe(c) }));
    catFilter.value = categories.includes(was) ? was : '';
  }

  async function refresh() {
    showStatus(status, 'info', 'scripts.loading');
    try {
      const [list, cats] = await Promise.all([
        api.expect({ op: 'script_list', sort: 'name', descending: false }, 'scripts'),
        api.expect({ op: 'script_categories' }, 'categories'),
      ]);
      scripts = list.scripts;
      categories = cats.categories;
      renderCategories();
      render();
      showStatus(status, 'info', 'scripts.loaded', { count: scripts.length });
    } catch (e) {
      showStatusText(status, 'error', errorText(e));
    }
  }

  async function create() {
    const s = await scriptDialog(api, categories, null);
    if (s) {
      announce(t('scripts.created', { name: s.name }));
      showStatus(status, 'ok', 'scripts.created', { name: s.name });
      await refresh();
    }
  }

  async function edit(s) {
    const saved = await scriptDialog(api, categories, s);
    if (saved) {
      showStatus(status, 'ok', 'scripts.saved', { name: s.name });
      await refresh();
    }
  }

  async function publish(s, published) {
    try {
      await api.request({ op: 'script_publish', name: s.name, published });
      showStatus(status, 'ok', published ? 'scripts.publishedNow' : 'scripts.unpublishedNow', { name: s.name });
      await refresh();
      headers.get(sortKey).b.focus();
    } catch (e) {
      showStatusText(status, 'error', errorText(e));
    }
  }

  async function remove(s) {
    const ok = await confirmDialog({ title: 'scripts.deleteConfirm.title', titleArgs: { name: s.name }, body: 'scripts.deleteConfirm.body', confirm: 'scripts.delete', danger: true, testid: 'script-delete-dialog' });
    if (!ok) return;
    try {
      await api.request({ op: 'script_delete', name: s.name });
      showStatus(status, 'ok', 'scripts.deleted', { name: s.name });
      await refresh();
    } catch (e) {
      showStatusText(status, 'error', errorText(e));
    }
  }

  catFilter.addEventListener('change', render);
  search.addEventListener('input', render);

  const el = h(
    'div',
    { class: 'library' },
    h(
      'div',
      { class: 'toolbar' },
      button('scripts.new', () => create(), { class: 'primary', testid: 'scripts-new' }),
      button('common.refresh', () => refresh(), { class: 'secondary', testid: 'scripts-refresh' }),
      field({ label: 'scripts.filterCategory', input: catFilter }),
      field({ label: 'scripts.search', input: search }),
    ),
    status,
    h('div', { class: 'table-wrap' }, table),
    empty,
  );
  refresh();
  return { el, refresh, render, get scripts() { return scripts; } };
}

/** The library as a page of its own (#/scripts). */
export function createLibraryView(app) {
  const lib = createLibrary({ api: app.api, profile: app.profile });
  const el = h(
    'section',
    { class: 'view scripts-view', 'aria-labelledby': 'scripts-title' },
    h('div', { class: 'view-head' }, h('h1', { id: 'scripts-title', t: 'scripts.title' })),
    h('p', { class: 'lead', t: 'scripts.intro' }),
    lib.el,
  );
  return { el, titleKey: 'scripts.title' };
}

/** The library and an ordered run, in a session. */
export function createScriptsPanel(ctx) {
  let order = [];
  const runList = h('ol', { class: 'run-list', testid: 'run-list', tattrs: { 'aria-label': 'scripts.run.listLabel' } });
  const runEmpty = h('p', { class: 'muted', t: 'scripts.run.empty', testid: 'run-empty' });
  const stopOnFailure = checkbox({ label: 'scripts.run.stopOnFailure', checked: true, testid: 'run-stop-on-failure' });
  const timeout = h('input', { type: 'number', min: 1, max: MAX_SCRIPT_TIMEOUT_SECS, step: 1, placeholder: '300', testid: 'run-timeout', inputMode: 'numeric' });
  const runBtn = h('button', { type: 'button', class: 'primary', t: 'scripts.run.run', testid: 'scripts-run', disabled: true });
  const status = statusLine({ testid: 'run-status' });
  const outputs = h('div', { class: 'run-outputs', testid: 'run-output' });
  const batches = new Map();
  const early = [];

  const lib = createLibrary({
    api: ctx.api,
    profile: ctx.profile,
    onPick: (s) => {
      if (order.includes(s.name)) return;
      if (order.length >= MAX_BATCH_SCRIPTS) {
        showStatus(status, 'error', 'scripts.run.tooMany', { max: MAX_BATCH_SCRIPTS });
        return;
      }
      order.push(s.name);
      renderRun();
      lib.render();
      announce(t('scripts.run.added', { name: s.name, position: order.length }));
    },
    isPicked: (name) => order.includes(name),
  });

  function renderRun(focus) {
    clear(runList);
    order.forEach((name, i) => {
      const up = h('button', { type: 'button', class: 'secondary small', t: 'scripts.run.up', tattrs: { 'aria-label': ['scripts.run.upLabel', { name }] }, disabled: i === 0, testid: `run-up-${name}`, on: { click: () => move(i, -1, 'up') } });
      const down = h('button', { type: 'button', class: 'secondary small', t: 'scripts.run.down', tattrs: { 'aria-label': ['scripts.run.downLabel', { name }] }, disabled: i === order.length - 1, testid: `run-down-${name}`, on: { click: () => move(i, 1, 'down') } });
      const rm = h('button', { type: 'button', class: 'link small', t: 'scripts.run.remove', tattrs: { 'aria-label': ['scripts.run.removeLabel', { name }] }, testid: `run-remove-${name}`, on: { click: () => removeAt(i) } });
      const li = h('li', { testid: `run-item-${name}`, dataset: { name } }, h('span', { class: 'run-name', text: displaySafe(name) }), h('span', { class: 'run-buttons' }, up, down, rm));
      runList.appendChild(li);
      if (focus && focus.name === name) {
        const target = focus.which === 'up' ? (up.disabled ? down : up) : down.disabled ? up : down;
        target.focus();
      }
    });
    runEmpty.hidden = order.length > 0;
    runBtn.disabled = order.length === 0;
  }

  function move(i, delta, which) {
    const name = order[i];
    order = moveItem(order, i, delta);
    renderRun({ name, which });
    announce(t('scripts.run.moved', { name, position: order.indexOf(name) + 1, count: order.length }));
  }

  function removeAt(i) {
    const [name] = order.splice(i, 1);
    renderRun();
    lib.render();
    announce(t('scripts.run.removed', { name }));
    const next = runList.querySelectorAll('li')[Math.min(i, order.length - 1)];
    (next?.querySelector('button:not([disabled])') ?? runBtn).focus();
  }

  function scriptBox(batch, name, index) {
    const pre = h('pre', { class: 'output', role: 'log', 'aria-live': 'polite', tabIndex: 0, testid: `run-output-${name}` });
    const st = h('span', { class: 'run-state pending', t: 'scripts.run.waiting', testid: `run-state-${name}` });
    const box = h('details', { open: true, class: 'run-script', dataset: { name } }, h('summary', {}, h('span', { text: `${index + 1}. ${displaySafe(name)}` }), ' ', st), pre);
    batch.scripts.set(name, { pre, st, box });
    return box;
  }

  function startBatch(batchId, names) {
    const summary = h('p', { class: 'run-summary', role: 'status', 'aria-live': 'polite', testid: 'run-summary', t: 'scripts.run.asked' });
    const batch = { id: batchId, scripts: new Map(), summary };
    const section = h('section', { class: 'run-batch', testid: `run-batch-${batchId}`, dataset: { batchId } }, h('h4', { t: 'scripts.run.batchTitle', targs: { id: batchId, count: names.length } }), timeEl(new Date().toISOString(), 'datetime'), summary);
    names.forEach((n, i) => section.appendChild(scriptBox(batch, n, i)));
    outputs.prepend(section);
    batches.set(batchId, batch);
    const mine = early.filter((m) => m.batch_id === batchId);
    const rest = early.filter((m) => m.batch_id !== batchId);
    early.length = 0;
    early.push(...rest);
    mine.forEach(handle);
  }

  function handle(msg) {
    const batch = batches.get(msg.batch_id);
    if (!batch) {
      if (early.length < 1000) early.push(msg);
      return;
    }
    if (msg.kind === 'batch_done') {
      batch.summary.classList.add(msg.ok ? 'ok' : 'error');
      setT(batch.summary, msg.ok ? 'scripts.run.batchOk' : 'scripts.run.batchFailed', { summary: displaySafe(msg.summary) });
      for (const s of batch.scripts.values()) {
        if (s.st.classList.contains('pending')) {
          s.st.className = 'run-state skipped';
          setT(s.st, 'scripts.run.notRun');
        }
      }
      announce(batch.summary.textContent);
      return;
    }
    const s = batch.scripts.get(msg.script);
    if (!s) return;
    if (msg.kind === 'script_output') {
      if (s.st.classList.contains('pending')) {
        s.st.className = 'run-state running';
        setT(s.st, 'scripts.run.running');
      }
      const line = h('span', { class: ['out-line', msg.stream === 'stderr' ? 'out-stderr' : 'out-output'] }, displaySafe(msg.line), '\n');
      const nearBottom = s.pre.scrollHeight - s.pre.scrollTop - s.pre.clientHeight < 40;
      s.pre.appendChild(line);
      if (nearBottom) s.pre.scrollTop = s.pre.scrollHeight;
    } else if (msg.kind === 'script_done') {
      const ok = !msg.error && !msg.timed_out && msg.exit_code === 0;
      let how;
      if (msg.error) how = tref('scripts.run.outcome.failed', { error: displaySafe(msg.error) });
      else if (msg.timed_out) how = tref('scripts.run.outcome.timedOut');
      else if (msg.exit_code !== null && msg.exit_code !== undefined) how = tref('scripts.run.outcome.exit', { code: msg.exit_code });
      else how = tref('scripts.run.outcome.signal');
      s.st.className = `run-state ${ok ? 'ok' : 'failed'}`;
      setT(s.st, 'scripts.run.doneIn', { how, duration: formatDuration(msg.duration_ms) });
      s.st.dataset.exitCode = String(msg.exit_code ?? '');
    }
  }

  runBtn.addEventListener('click', async () => {
    if (!order.length) return;
    let timeoutSecs = null;
    if (timeout.value) {
      const v = Number(timeout.value);
      if (!Number.isInteger(v) || v < 1 || v > MAX_SCRIPT_TIMEOUT_SECS) {
        showStatus(status, 'error', 'scripts.run.badTimeout', { max: MAX_SCRIPT_TIMEOUT_SECS });
        timeout.focus();
        return;
      }
      timeoutSecs = v;
    }
    const names = order.slice();
    runBtn.disabled = true;
    showStatus(status, 'info', 'scripts.run.sending');
    try {
      const r = await ctx.expect({ op: 'run_scripts', session_id: ctx.sessionId, names, stop_on_failure: stopOnFailure.input.checked, timeout_secs: timeoutSecs }, 'script_batch');
      startBatch(r.batch_id, names);
      showStatus(status, 'ok', 'scripts.run.sent', { id: r.batch_id });
    } catch (e) {
      showStatusText(status, 'error', errorText(e));
    } finally {
      runBtn.disabled = order.length === 0;
    }
  });

  const offs = [
    ctx.on('script_output', handle),
    ctx.on('script_done', handle),
    ctx.on('batch_done', handle),
    ctx.on('consent_decided', (m) => {
      if (m.plugin !== 'scripts' && m.action !== 'script.run') return;
      for (const b of batches.values()) {
        if (b.summary.dataset.i18n === 'scripts.run.asked') {
          setT(b.summary, 'scripts.run.consent', { decision: decisionRef(m.decision), by: decidedByRef(m.decided_by) });
        }
      }
    }),
  ];

  renderRun();
  const el = h(
    'section',
    { class: 'panel scripts-panel', 'aria-labelledby': 'scripts-panel-title', testid: 'scripts-panel' },
    h('h2', { id: 'scripts-panel-title', t: 'scripts.title' }),
    lib.el,
    h(
      'section',
      { class: 'run', 'aria-labelledby': 'run-title' },
      h('h3', { id: 'run-title', t: 'scripts.run.title' }),
      h('p', { class: 'hint', t: 'scripts.run.intro' }),
      runEmpty,
      runList,
      h('div', { class: 'toolbar' }, stopOnFailure.el, field({ label: 'scripts.run.timeout', input: timeout, hint: 'scripts.run.timeoutHint', hintArgs: { max: MAX_SCRIPT_TIMEOUT_SECS } }), runBtn),
      status,
      outputs,
    ),
  );
  return { el, dispose: () => offs.forEach((off) => off()) };
}
