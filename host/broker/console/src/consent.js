// Consent: the questions this console asked the customer and every
// decision as it arrives (the customer's, the agent's policy's, or a
// timeout), with the audit-log hash the agent recorded.
// Sent: session ConsentRequest. Pushed: ConsentAnswer, ConsentDecided.

import { h, field, timeEl, liveLog, statusLine, showStatus, showStatusText, errorText, clear, setT, tref } from './dom.js';
import { t } from './i18n.js';
import { displaySafe, MAX_TEXT_CHARS } from './util.js';

const DECISION_KEYS = {
  allow_once: 'consent.decision.allow_once',
  allow_session: 'consent.decision.allow_session',
  deny: 'consent.decision.deny',
};
const BY_KEYS = { customer: 'consent.by.customer', policy: 'consent.by.policy', timeout: 'consent.by.timeout' };

export function decisionText(decision) {
  return t(DECISION_KEYS[decision] || 'consent.decision.unknown', { decision });
}

export function decidedByText(by) {
  return BY_KEYS[by] ? t(BY_KEYS[by]) : displaySafe(by);
}

/** The decision as a translated argument (tref) for tracked texts. */
export function decisionRef(decision) {
  return tref(DECISION_KEYS[decision] || 'consent.decision.unknown', { decision });
}

/** Who decided as a translated argument (tref), or the raw text. */
export function decidedByRef(by) {
  return BY_KEYS[by] ? tref(BY_KEYS[by]) : displaySafe(by);
}

export function createConsentPanel(ctx) {
  const log = liveLog({ label: 'consent.logLabel', testid: 'consent-log', className: 'consent-log' });
  const asked = new Map();

  function entry(kind, ...children) {
    return h('li', { class: ['log-entry', `consent-${kind}`] }, timeEl(new Date().toISOString(), 'time', { class: 'log-time' }), ' ', ...children);
  }

  function outcome(decision, by, hash) {
    const allowed = decision !== 'deny';
    return h(
      'span',
      { class: ['consent-outcome', allowed ? 'allowed' : 'denied'], dataset: { decision } },
      h('strong', { t: DECISION_KEYS[decision] || 'consent.decision.unknown', targs: { decision } }),
      ' ',
      h('span', { t: 'consent.decidedBy', targs: { by: decidedByRef(by) } }),
      hash ? h('small', { class: 'mono muted audit', tattrs: { title: 'consent.auditHash' }, text: ` ${hash.slice(0, 16)}…` }) : null,
    );
  }

  // ---- asking ----
  const plugin = h('input', { type: 'text', required: true, maxLength: 128, testid: 'consent-plugin', attrs: { list: 'consent-plugins' }, autocomplete: 'off' });
  const pluginList = h('datalist', { id: 'consent-plugins' });
  const action = h('input', { type: 'text', required: true, maxLength: 64, testid: 'consent-action', attrs: { list: 'consent-actions' }, autocomplete: 'off' });
  const actionList = h('datalist', { id: 'consent-actions' });
  const detail = h('textarea', { rows: 2, maxLength: MAX_TEXT_CHARS, testid: 'consent-detail' });
  const status = statusLine({ testid: 'consent-status' });

  function fillLists() {
    clear(pluginList);
    clear(actionList);
    const list = ctx.plugins || [];
    for (const p of list) pluginList.appendChild(h('option', { value: p.id }));
    const chosen = list.find((p) => p.id === plugin.value.trim());
    const caps = chosen ? chosen.capabilities : [...new Set(list.flatMap((p) => p.capabilities))];
    for (const c of caps) actionList.appendChild(h('option', { value: c }));
  }
  plugin.addEventListener('input', fillLists);

  const form = h(
    'form',
    {
      class: 'consent-form',
      testid: 'consent-form',
      on: {
        submit: (ev) => {
          ev.preventDefault();
          const p = plugin.value.trim();
          const a = action.value.trim();
          const d = detail.value.trim();
          if (!p || !a || !d) {
            showStatus(status, 'error', 'consent.missing');
            return;
          }
          const requestId = ctx.newId();
          try {
            ctx.send({ kind: 'consent_request', request_id: requestId, operator: '', plugin: p, action: a, detail: d });
          } catch (e) {
            showStatusText(status, 'error', errorText(e));
            return;
          }
          const pending = h('span', { class: 'consent-outcome pending', t: 'consent.waiting' });
          const li = entry(
            'asked',
            h('span', { t: 'consent.asked', targs: { plugin: p, action: a, detail: d } }),
            ' ',
            pending,
          );
          li.dataset.requestId = String(requestId);
          asked.set(requestId, pending);
          log.add(li);
          detail.value = '';
          showStatus(status, 'ok', 'consent.sent');
        },
      },
    },
    field({ label: 'consent.plugin', input: plugin }),
    pluginList,
    field({ label: 'consent.action', input: action, hint: 'consent.actionHint' }),
    actionList,
    field({ label: 'consent.detail', input: detail }),
    h('button', { type: 'submit', class: 'secondary', t: 'consent.ask', testid: 'consent-ask' }),
    status,
  );

  const offs = [
    ctx.on('consent_answer', (msg) => {
      const pending = asked.get(msg.request_id);
      if (pending) {
        asked.delete(msg.request_id);
        const done = outcome(msg.decision, msg.decided_by, msg.audit_hash);
        pending.replaceWith(done);
        // "Waiting for the customer" no longer holds once nothing waits.
        if (asked.size === 0 && status.dataset.i18n === 'consent.sent') showStatus(status, 'info', null);
        return;
      }
      log.add(entry('answer', h('span', { t: 'consent.answerFor', targs: { id: msg.request_id } }), ' ', outcome(msg.decision, msg.decided_by, msg.audit_hash)));
    }),
    ctx.on('consent_decided', (msg) => {
      log.add(
        entry(
          'decided',
          h('span', { t: 'consent.decidedFor', targs: { plugin: displaySafe(msg.plugin), action: displaySafe(msg.action) } }),
          ' ',
          outcome(msg.decision, msg.decided_by, msg.audit_hash),
        ),
      );
    }),
    ctx.on('plugins-known', fillLists),
    ctx.on('end', () => {
      for (const pending of asked.values()) setT(pending, 'consent.unanswered');
      asked.clear();
    }),
  ];

  const details = h('details', { class: 'ask-consent' }, h('summary', { t: 'consent.askTitle', testid: 'consent-ask-toggle' }), h('p', { class: 'hint', t: 'consent.askIntro' }), form);

  const el = h('section', { class: 'panel consent-panel', 'aria-labelledby': 'consent-title', testid: 'consent-panel' }, h('h2', { id: 'consent-title', t: 'consent.title' }), log.el, details);
  return { el, dispose: () => offs.forEach((off) => off()) };
}
