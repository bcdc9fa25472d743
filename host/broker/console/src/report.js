// A session's report: every event in a table (all pages of the `report`
// request), and downloads of the whole report as text or JSON through
// GET /console/api/sessions/{id}/report?format=txt|json.
// Requests: report.

import { h, clear, button, statusLine, showStatus, showStatusText, errorText, timeEl, setT } from './dom.js';
import { displaySafe } from './util.js';
import { stateBadge, partyEl } from './sessions.js';

export function createReportPanel({ api, sessionId, auto = true, headingLevel = 'h2' }) {
  const status = statusLine({ testid: 'report-status' });
  const summary = h('dl', { class: 'meta', testid: 'report-summary' });
  const tbody = h('tbody', { testid: 'report-rows' });
  const table = h(
    'table',
    { class: 'data report-table', testid: 'report-table', hidden: true },
    h('caption', { class: 'visually-hidden', t: 'report.caption' }),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col', class: 'num', t: 'report.col.seq' }),
        h('th', { scope: 'col', t: 'report.col.at' }),
        h('th', { scope: 'col', t: 'report.col.kind' }),
        h('th', { scope: 'col', t: 'report.col.actor' }),
        h('th', { scope: 'col', t: 'report.col.text' }),
      ),
    ),
    tbody,
  );
  const refreshBtn = button('report.load', () => load(true), { class: 'secondary', testid: 'report-refresh' });
  let loaded = false;
  let loading = false;

  async function load(force = false) {
    if (loading || (loaded && !force)) return;
    loading = true;
    refreshBtn.disabled = true;
    showStatus(status, 'info', 'report.loading');
    try {
      const { session, events } = await api.report(sessionId);
      clear(summary);
      const row = (key, value) => h('div', {}, h('dt', { t: key }), h('dd', {}, value));
      summary.append(
        row('session.meta.ticket', displaySafe(session.ticket)),
        row('session.meta.customer', displaySafe(session.end_user)),
        row('session.meta.host', displaySafe(session.customer_host || '—')),
        row('session.meta.operator', displaySafe(session.operator)),
        row('sessions.col.state', stateBadge(session.state)),
        row('session.meta.created', timeEl(session.created_at)),
        row('report.ended', session.ended_at ? timeEl(session.ended_at) : '—'),
      );
      clear(tbody);
      for (const e of events) {
        tbody.appendChild(
          h(
            'tr',
            { dataset: { seq: e.seq, kind: e.kind } },
            h('td', { class: 'num', text: String(e.seq) }),
            h('td', {}, timeEl(e.at, 'datetime')),
            h('td', {}, h('code', { text: displaySafe(e.kind) })),
            partyEl(e.actor, 'td'),
            h('td', { class: 'wrap', text: displaySafe(e.text) }),
          ),
        );
      }
      table.hidden = false;
      loaded = true;
      showStatus(status, 'info', 'report.loaded', { count: events.length });
    } catch (e) {
      showStatusText(status, 'error', errorText(e));
    } finally {
      loading = false;
      refreshBtn.disabled = false;
      setT(refreshBtn, loaded ? 'report.refresh' : 'report.load');
    }
  }

  const downloads = h(
    'p',
    { class: 'downloads' },
    h('a', { class: 'button secondary', href: api.reportUrl(sessionId, 'txt'), download: `lifeline-report-${sessionId}.txt`, t: 'report.downloadTxt', testid: 'report-download-txt' }),
    ' ',
    h('a', { class: 'button secondary', href: api.reportUrl(sessionId, 'json'), download: `lifeline-report-${sessionId}.json`, t: 'report.downloadJson', testid: 'report-download-json' }),
  );

  const el = h(
    'section',
    { class: 'panel report-panel', 'aria-labelledby': `report-title-${sessionId}`, testid: 'report-panel' },
    h('div', { class: 'panel-head' }, h(headingLevel, { id: `report-title-${sessionId}`, t: 'report.title' }), refreshBtn),
    downloads,
    status,
    summary,
    h('div', { class: 'table-wrap' }, table),
  );
  if (auto) load();
  return { el, load: () => load(false) };
}

/** The report as a page of its own (#/report/ID), for any session in the list. */
export function createReportView(app, sessionId) {
  const panel = createReportPanel({ api: app.api, sessionId, auto: true });
  const el = h(
    'section',
    { class: 'view report-view', 'aria-labelledby': 'report-view-title' },
    h('div', { class: 'view-head' }, h('h1', { id: 'report-view-title', t: 'report.viewTitle', targs: { id: sessionId } }), h('a', { class: 'button secondary', href: '#/sessions', t: 'session.backToList' })),
    panel.el,
  );
  return { el, titleKey: 'report.viewTitle', titleArgs: { id: sessionId } };
}
