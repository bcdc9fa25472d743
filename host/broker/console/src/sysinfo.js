// System information: one panel per category of the sysinfo plugin (as
// `lifeline operator sysinfo`): "Refresh all" runs `sysinfo show all
// [FILTER]`, each panel's Refresh runs `sysinfo show CATEGORY [FILTER]`.
// The plugin sends one output per category, starting "== Title ==".
// "Save all" writes every category to a .txt file; Print prints only the
// panels (the print stylesheet hides the rest).
// Sent: RunPlugin sysinfo show. Pushed: PluginOutput, PluginDone.

import { h, clear, button, statusLine, showStatus, showStatusText, errorText, timeEl, downloadText, field, setT } from './dom.js';
import { t, formatDate } from './i18n.js';
import { displaySafe, splitSysinfo, fileSafe } from './util.js';
import { decisionText, decidedByText } from './consent.js';

export const PLUGIN = 'sysinfo';

/** The plugin's categories, in its order, with the titles it prints. */
export const CATEGORIES = Object.freeze([
  { id: 'os', title: 'Operating system', label: 'sysinfo.cat.os' },
  { id: 'cpu', title: 'Hardware and CPU', label: 'sysinfo.cat.cpu' },
  { id: 'memory', title: 'Memory', label: 'sysinfo.cat.memory' },
  { id: 'disks', title: 'Disks and file systems', label: 'sysinfo.cat.disks' },
  { id: 'network', title: 'Network interfaces', label: 'sysinfo.cat.network' },
  { id: 'processes', title: 'Running processes', label: 'sysinfo.cat.processes' },
  { id: 'users', title: 'Logged-in users', label: 'sysinfo.cat.users' },
  { id: 'software', title: 'Installed software', label: 'sysinfo.cat.software' },
]);

/** The category a panel title names, or null. */
export function categoryOfTitle(title) {
  return CATEGORIES.find((c) => c.title === title)?.id ?? null;
}

/** The text "Save all" writes. */
export function savedText(sessionId, savedAt, panels) {
  const header = t('sysinfo.saveHeader', { session: sessionId, at: savedAt });
  const body = panels.map((p) => `== ${p.title} ==\n${p.text}\n`).join('\n');
  return `${header}\n\n${body}`;
}

export function createSysinfoPanel(ctx) {
  const panels = new Map();
  const status = statusLine({ testid: 'sysinfo-status' });
  const filter = h('input', { type: 'search', maxLength: 200, autocomplete: 'off', testid: 'sysinfo-filter' });
  const container = h('div', { class: 'sysinfo-panels print-area', testid: 'sysinfo-panels' });
  const printHeader = h('p', { class: 'print-only', testid: 'sysinfo-print-header' });
  container.appendChild(printHeader);
  let running = 0;

  function makePanel(id, title, labelKey) {
    const pre = h('pre', { class: 'output sysinfo-text', tabIndex: 0, testid: `sysinfo-text-${id}` });
    const updated = h('span', { class: 'muted small', testid: `sysinfo-updated-${id}` });
    const heading = labelKey ? h('h3', { t: labelKey, id: `sysinfo-h-${id}` }) : h('h3', { text: displaySafe(title), id: `sysinfo-h-${id}` });
    const refresh = button('sysinfo.refreshOne', () => runShow(id), {
      class: 'secondary small no-print',
      tattrs: { 'aria-label': labelKey ? ['sysinfo.refreshOneLabel', { category: t(labelKey) }] : 'sysinfo.refreshOne' },
      testid: `sysinfo-refresh-${id}`,
      hidden: !labelKey,
    });
    const el = h(
      'section',
      { class: 'sysinfo-panel', testid: `sysinfo-panel-${id}`, 'aria-labelledby': `sysinfo-h-${id}`, dataset: { category: id } },
      h('div', { class: 'panel-head' }, heading, updated, refresh),
      pre,
    );
    const panel = { id, title, el, pre, updated, text: null };
    setEmpty(panel);
    return panel;
  }

  function setEmpty(panel) {
    clear(panel.pre);
    panel.pre.appendChild(h('span', { class: 'muted', t: 'sysinfo.notLoaded' }));
  }

  for (const c of CATEGORIES) {
    const p = makePanel(c.id, c.title, c.label);
    panels.set(c.id, p);
    container.appendChild(p.el);
  }

  function show(title, text) {
    let id = categoryOfTitle(title);
    if (!id) {
      id = `other-${fileSafe(title).toLowerCase()}`;
      if (!panels.has(id)) {
        const p = makePanel(id, title, null);
        panels.set(id, p);
        container.appendChild(p.el);
      }
    }
    const p = panels.get(id);
    p.text = text;
    p.title = title;
    clear(p.pre);
    p.pre.textContent = text ? displaySafe(text) : '';
    if (!text) p.pre.appendChild(h('span', { class: 'muted', t: 'sysinfo.emptyPanel' }));
    clear(p.updated);
    p.updated.append(h('span', { t: 'sysinfo.updated' }), ' ', timeEl(new Date().toISOString(), 'time'));
    p.updated.dataset.at = new Date().toISOString();
  }

  /** Runs `sysinfo show WHICH [FILTER]`; resolves with ok. */
  function runShow(which) {
    return new Promise((resolve) => {
      const args = [which];
      const f = filter.value.trim();
      if (f) args.push(f);
      running += 1;
      setBusy();
      showStatus(status, 'info', which === 'all' ? 'sysinfo.loadingAll' : 'sysinfo.loadingOne', { category: which });
      try {
        ctx.runPlugin(PLUGIN, 'show', args, {
          onOutput: (stream, text) => {
            if (stream !== 'output') return;
            for (const part of splitSysinfo(text)) show(part.title, part.text);
          },
          onConsent: (m) => showStatusText(status, m.decision === 'deny' ? 'error' : 'info', t('sysinfo.consent', { decision: decisionText(m.decision), by: decidedByText(m.decided_by) })),
          onDone: (ok, text) => {
            running -= 1;
            setBusy();
            if (ok) showStatusText(status, 'ok', t('sysinfo.done', { text: displaySafe(text) }));
            else showStatusText(status, 'error', t('sysinfo.failed', { text: displaySafe(text) }));
            resolve(ok);
          },
        });
      } catch (e) {
        running -= 1;
        setBusy();
        showStatusText(status, 'error', errorText(e));
        resolve(false);
      }
    });
  }

  const refreshAll = button('sysinfo.refreshAll', () => runShow('all'), { class: 'primary', testid: 'sysinfo-refresh' });
  const saveAll = button('sysinfo.saveAll', () => save(), { class: 'secondary', testid: 'sysinfo-save' });
  const print = button('sysinfo.print', () => doPrint(), { class: 'secondary', testid: 'sysinfo-print' });

  function setBusy() {
    refreshAll.disabled = running > 0;
    container.setAttribute('aria-busy', running > 0 ? 'true' : 'false');
  }

  function loadedPanels() {
    return [...panels.values()].filter((p) => p.text !== null).map((p) => ({ title: p.title, text: p.text }));
  }

  async function save() {
    // Like `--save`: every category. Fetch them all first unless every
    // category is already shown.
    const missing = CATEGORIES.some((c) => panels.get(c.id).text === null);
    if (missing) {
      saveAll.disabled = true;
      const ok = await runShow('all');
      saveAll.disabled = false;
      if (!ok) return;
    }
    const at = new Date().toISOString();
    const text = savedText(ctx.sessionId, at, loadedPanels());
    downloadText(`lifeline-sysinfo-${fileSafe(ctx.sessionId)}-${at.slice(0, 19).replace(/[:T]/g, '-')}.txt`, text);
    showStatus(status, 'ok', 'sysinfo.saved');
  }

  function doPrint() {
    setT(printHeader, 'sysinfo.printHeader', {
      ticket: ctx.summary?.ticket ?? '',
      customer: ctx.summary?.end_user ?? '',
      host: ctx.summary?.customer_host ?? '',
      at: formatDate(new Date(), 'datetime'),
    });
    document.body.classList.add('printing-panels');
    const done = () => {
      document.body.classList.remove('printing-panels');
      window.removeEventListener('afterprint', done);
    };
    window.addEventListener('afterprint', done);
    window.print();
    // Some browsers return from print() only when printing is over.
    setTimeout(done, 1000);
  }

  const el = h(
    'section',
    { class: 'panel sysinfo-panel-set', 'aria-labelledby': 'sysinfo-title', testid: 'sysinfo' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'sysinfo-title', t: 'sysinfo.title' })),
    h('p', { class: 'hint', t: 'sysinfo.intro' }),
    h('div', { class: 'toolbar no-print' }, field({ label: 'sysinfo.filter', input: filter, hint: 'sysinfo.filterHint' }), refreshAll, saveAll, print),
    status,
    container,
  );
  return { el, dispose() {} };
}
