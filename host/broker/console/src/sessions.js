// The session list: mine, or everyone's ("Show all sessions"), newest
// first, updated live from the session messages the broker pushes (a
// customer joined, a state changed, a session ended) and on demand.
// Requests: list_sessions (every page). Pushed: session State / End.

import { h, clear, setT, tref, timeEl, statusLine, showStatus, showStatusText, errorText, checkbox, button } from './dom.js';
import { displaySafe } from './util.js';
import { t } from './i18n.js';

export const STATE_KEYS = Object.freeze({
  invited: 'state.invited',
  waiting: 'state.waiting',
  connected: 'state.connected',
  suspended: 'state.suspended',
  rebooting: 'state.rebooting',
  reconnecting: 'state.reconnecting',
  ended: 'state.ended',
});

const PARTY_KEYS = Object.freeze({ operator: 'party.operator', customer: 'party.customer', broker: 'party.broker' });

/** A side of a session (operator, customer, broker) in words. */
export function partyText(p) {
  return PARTY_KEYS[p] ? t(PARTY_KEYS[p]) : String(p);
}

/** A side of a session as a translated argument (tref), or the raw text. */
export function partyRef(p) {
  return PARTY_KEYS[p] ? tref(PARTY_KEYS[p]) : String(p);
}

/** A side of a session as an element that follows the language. */
export function partyEl(p, tag = 'span') {
  return PARTY_KEYS[p] ? h(tag, { t: PARTY_KEYS[p] }) : h(tag, { text: String(p) });
}

/** A state as a translated argument (tref). */
export function stateRef(state) {
  return tref(STATE_KEYS[state] || 'state.unknown', { state });
}

/** States in which an operator can connect (attach). */
export const CONNECTABLE = new Set(['waiting', 'connected', 'suspended']);

const SHOW_ALL_KEY = 'lifeline.console.sessions.all';
/** How often the list is fetched again while shown (pushes update it in between). */
export const POLL_MS = 30_000;

/** A badge naming a session state ("ready" for waiting). */
export function stateBadge(state, props = {}) {
  const el = h('span', { class: ['badge', `state-${state}`], ...props });
  setStateBadge(el, state);
  return el;
}

export function setStateBadge(el, state) {
  for (const c of [...el.classList]) if (c.startsWith('state-')) el.classList.remove(c);
  el.classList.add(`state-${state}`);
  el.dataset.state = state;
  setT(el, STATE_KEYS[state] || 'state.unknown', { state });
}

function loadShowAll() {
  try {
    return localStorage.getItem(SHOW_ALL_KEY) === '1';
  } catch {
    return false;
  }
}

function saveShowAll(v) {
  try {
    localStorage.setItem(SHOW_ALL_KEY, v ? '1' : '0');
  } catch {
    // not remembered
  }
}

export function createSessionsView(app) {
  const { api } = app;
  const rows = new Map();
  const status = statusLine({ testid: 'sessions-status' });
  const showAll = checkbox({
    label: 'sessions.showAll',
    checked: loadShowAll(),
    testid: 'sessions-show-all',
    onChange: () => {
      saveShowAll(showAll.input.checked);
      refresh();
    },
  });
  const refreshBtn = button('common.refresh', () => refresh(), { class: 'secondary', testid: 'sessions-refresh' });
  const tbody = h('tbody', { testid: 'sessions-rows' });
  const table = h(
    'table',
    { class: 'data sessions-table', testid: 'sessions-table' },
    h('caption', { class: 'visually-hidden', t: 'sessions.caption' }),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col', t: 'sessions.col.ticket' }),
        h('th', { scope: 'col', t: 'sessions.col.customer' }),
        h('th', { scope: 'col', t: 'sessions.col.state' }),
        h('th', { scope: 'col', t: 'sessions.col.created' }),
        h('th', { scope: 'col', t: 'sessions.col.operator' }),
        h('th', { scope: 'col', t: 'sessions.col.actions' }),
      ),
    ),
    tbody,
  );
  const empty = h('p', { class: 'empty', hidden: true, testid: 'sessions-empty' }, h('span', { t: 'sessions.empty' }), ' ', h('a', { href: '#/invite', t: 'sessions.emptyInvite' }));

  function actionsFor(s) {
    const cell = h('td', { class: 'actions-cell' });
    if (CONNECTABLE.has(s.state)) {
      cell.appendChild(
        h('button', {
          type: 'button',
          class: 'primary small',
          t: 'sessions.connect',
          tattrs: { 'aria-label': ['sessions.connectLabel', { ticket: s.ticket, customer: s.end_user }] },
          testid: `session-connect-${s.session_id}`,
          on: { click: () => app.navigate(`#/session/${s.session_id}`) },
        }),
      );
    }
    if (s.state === 'invited') {
      cell.appendChild(
        h('a', {
          class: 'button secondary small',
          href: `#/invite/${s.session_id}`,
          t: 'sessions.invitation',
          tattrs: { 'aria-label': ['sessions.invitationLabel', { ticket: s.ticket, customer: s.end_user }] },
          testid: `session-invitation-${s.session_id}`,
        }),
      );
    }
    cell.appendChild(
      h('a', {
        class: 'button secondary small',
        href: `#/report/${s.session_id}`,
        t: 'sessions.report',
        tattrs: { 'aria-label': ['sessions.reportLabel', { ticket: s.ticket }] },
        testid: `session-report-${s.session_id}`,
      }),
    );
    return cell;
  }

  function renderRow(s) {
    const tr = h('tr', { testid: `session-row-${s.session_id}`, dataset: { sessionId: s.session_id, state: s.state } });
    tr.appendChild(h('td', {}, h('span', { class: 'ticket', text: displaySafe(s.ticket) }), h('br'), h('small', { class: 'muted mono', text: s.session_id })));
    const customer = h('td', {}, h('span', { text: displaySafe(s.end_user) }));
    if (s.customer_host) customer.append(h('br'), h('small', { class: 'muted', text: displaySafe(s.customer_host) }));
    tr.appendChild(customer);
    tr.appendChild(h('td', {}, stateBadge(s.state, { testid: `session-state-${s.session_id}` })));
    tr.appendChild(h('td', {}, timeEl(s.created_at)));
    tr.appendChild(h('td', { text: displaySafe(s.operator) }));
    tr.appendChild(actionsFor(s));
    return tr;
  }

  function render(list) {
    clear(tbody);
    rows.clear();
    for (const s of list) {
      const tr = renderRow(s);
      rows.set(s.session_id, { summary: s, tr });
      tbody.appendChild(tr);
    }
    empty.hidden = list.length > 0;
    table.hidden = list.length === 0;
  }

  let loading = false;
  let again = false;
  async function refresh() {
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    refreshBtn.disabled = true;
    showStatus(status, 'info', 'sessions.loading');
    try {
      const list = await api.listSessions(showAll.input.checked);
      render(list);
      showStatus(status, 'info', 'sessions.updated', { count: list.length });
    } catch (e) {
      showStatusText(status, 'error', errorText(e));
    } finally {
      loading = false;
      refreshBtn.disabled = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }

  /** Applies a pushed state to a row in place. */
  function applyState(sessionId, state) {
    const row = rows.get(sessionId);
    if (!row) {
      // A session the list does not show yet (a customer just joined):
      // look at once; pushes during that look fold into one more look.
      refresh();
      return;
    }
    const s = { ...row.summary, state };
    const tr = renderRow(s);
    row.tr.replaceWith(tr);
    rows.set(sessionId, { summary: s, tr });
  }

  const offs = [
    api.on('session', ({ sessionId, msg }) => {
      if (msg.kind === 'state') applyState(sessionId, msg.state);
      else if (msg.kind === 'end') applyState(sessionId, 'ended');
    }),
    api.on('reconnected', () => refresh()),
  ];
  // Other operators' sessions, and changes of sessions this connection is
  // not attached to, are not pushed: look again now and then.
  const poll = setInterval(() => {
    if (!document.hidden) refresh();
  }, POLL_MS);

  const el = h(
    'section',
    { class: 'view sessions-view', 'aria-labelledby': 'sessions-title' },
    h(
      'div',
      { class: 'view-head' },
      h('h1', { id: 'sessions-title', t: 'sessions.title' }),
      h('a', { class: 'button primary', href: '#/invite', t: 'sessions.newInvitation', testid: 'sessions-new-invitation' }),
    ),
    h('div', { class: 'toolbar' }, showAll.el, refreshBtn),
    status,
    h('div', { class: 'table-wrap' }, table),
    empty,
  );
  refresh();

  return {
    el,
    titleKey: 'sessions.title',
    dispose() {
      for (const off of offs) off();
      clearInterval(poll);
    },
  };
}
