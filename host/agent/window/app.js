// The customer's window: the agent's own page on loopback. It shows who
// is helping and the session state, the security code of each operator's
// end-to-end channel (beside their name), the chat both ways, consent requests
// (src/consent.js), the screen-sharing indicator with Stop, a run-as
// suspension, plugins' announcements (license offers) and the end of the
// session, and sends the customer's commands back (src/connection.js).
//
// Every text from the operator or the agent is set with textContent (the
// console's DOM helpers, lib/dom.js): nothing is parsed as HTML, and the
// page keeps to a strict CSP (no inline script or style).

import { h, setT, relabel } from './lib/dom.js';
import { initI18n, loadResources, setLanguage, language, LANGUAGES, t } from './lib/i18n.js';
import { connect } from './src/connection.js';
import { ConsentDialog } from './src/consent.js';

const $ = (id) => document.getElementById(id);

/** What the page knows, rebuilt from the events of each connection.
 * `codes`: operator name → the security code of their latest channel. */
const view = { helper: null, ended: false, codes: new Map() };

let link = null;
let consent = null;

function send(command) {
  if (!link?.send(command)) showRefused(t('window.connection.closed'));
}

function showRefused(text) {
  const el = $('refused');
  el.textContent = text;
  el.hidden = false;
}

function setState(state) {
  const el = $('state');
  el.dataset.state = state;
  setT(el, `window.state.${state}`);
}

function renderHelper() {
  const box = $('helper');
  box.replaceChildren();
  const hp = view.helper;
  if (!hp) {
    box.append(h('span', { t: 'window.noHelper' }));
    return;
  }
  const code = view.codes.get(hp.name);
  box.append(
    h('span', { class: 'name', testid: 'helper-name', text: hp.name }),
    h('span', {
      class: 'meta',
      testid: 'helper-meta',
      t: hp.title ? 'window.helperMeta' : 'window.helperOrg',
      targs: { title: hp.title, organisation: hp.organisation },
    }),
    code ? h('span', { class: 'code', testid: 'helper-code', t: 'window.security.code', targs: { code } }) : null,
  );
  box.setAttribute('aria-label', t('window.helper', { name: hp.name }));
}

/** Each operator's security code, to compare with what they read out. */
function renderCodes() {
  const list = $('codes');
  list.replaceChildren();
  for (const [operator, code] of view.codes) {
    list.append(
      h('li', { dataset: { operator, code } },
        h('span', { t: 'window.security.line', targs: { operator, code } })),
    );
  }
}

function chatLine(from, who, text, extra = {}) {
  const log = $('chat-log');
  log.append(
    h('li', { dataset: { from }, ...extra },
      who ? h('span', { class: 'who', text: who }) : null,
      h('span', { class: 'text', text })),
  );
  log.scrollTop = log.scrollHeight;
}

const handlers = {
  welcome(ev) {
    view.helper = ev.helper;
    renderHelper();
    const back = $('back');
    if (ev.rejoined) {
      setT(back, 'window.back', { name: ev.helper.name });
      back.hidden = false;
    } else {
      back.hidden = true;
      chatLine('system', null, t('window.welcome', { name: ev.helper.name, ticket: ev.ticket }));
    }
    setState(ev.operator_present ? 'connected' : 'waiting');
  },
  state(ev) {
    setState(ev.state);
  },
  secured(ev) {
    view.codes.set(ev.operator, ev.code);
    renderHelper();
    renderCodes();
  },
  chat(ev) {
    if (ev.from === 'customer') chatLine('customer', t('window.you'), ev.text);
    else chatLine(ev.from, ev.name, ev.text);
  },
  line(ev) {
    chatLine('system', null, stripStar(ev.text.trim()));
  },
  consent(ev) {
    consent.add(ev);
  },
  consent_resolved(ev) {
    consent.resolved(ev.id);
    const key = ev.resolution === 'expired' ? 'window.consent.expired' : 'window.consent.answered';
    chatLine('system', null, t(key, { decision: t(`window.decision.${ev.decision}`) }), {
      dataset: { from: 'system', consent: String(ev.id), resolution: ev.resolution, decision: ev.decision },
    });
  },
  sharing(ev) {
    const box = $('sharing');
    if (ev.active) {
      setT($('sharing-text'), 'window.sharing', { operator: ev.operator });
      box.dataset.plugin = ev.plugin;
      box.hidden = false;
      $('sharing-stop').disabled = false;
    } else {
      box.hidden = true;
    }
    if (ev.by_customer || !ev.active) chatLine('system', null, stripStar(eventText(ev)));
  },
  suspension(ev) {
    const el = $('suspension');
    if (ev.active) {
      setT(el, 'window.suspended', { operator: ev.operator, user: ev.user });
      el.hidden = false;
    } else {
      el.hidden = true;
      chatLine('system', null, t('window.restored', { user: ev.user }));
    }
  },
  notice(ev) {
    $('notices').append(
      h('li', { dataset: { plugin: ev.plugin } },
        h('span', { class: 'plugin', text: ev.plugin }),
        h('span', { class: 'text', text: ev.text })),
    );
  },
  ended(ev) {
    view.ended = true;
    // Lifeline closes the window's server shortly: no reconnection.
    link?.stop();
    setState('ended');
    consent.reset();
    $('sharing').hidden = true;
    $('suspension').hidden = true;
    const el = $('ended');
    el.dataset.by = ev.by;
    if (ev.by === 'customer') setT(el, 'window.endedByYou');
    else setT(el, 'window.endedBy', { by: t(`window.party.${ev.by}`), reason: ev.reason });
    el.hidden = false;
    for (const id of ['chat-input', 'chat-send', 'end-session']) $(id).disabled = true;
  },
  refused(ev) {
    showRefused(ev.message);
  },
};

function stripStar(s) {
  return String(s ?? '').replace(/^\* /, '');
}

/** A sharing event's words for the chat log. */
function eventText(ev) {
  if (ev.by_customer) return t('window.stopSharing') + ' ✓';
  return t('window.sharing', { operator: ev.operator }).replace(/\.$/, '') + ' — ' + t('window.state.ended');
}

/** A new connection: everything is sent again, so start from nothing. */
function reset() {
  view.helper = null;
  view.ended = false;
  view.codes.clear();
  $('codes').replaceChildren();
  $('chat-log').replaceChildren();
  $('notices').replaceChildren();
  for (const id of ['back', 'sharing', 'suspension', 'ended', 'refused']) $(id).hidden = true;
  for (const id of ['chat-input', 'chat-send', 'end-session']) $(id).disabled = false;
  consent.reset();
  renderHelper();
}

function setConnection(state) {
  const el = $('connection');
  el.dataset.state = state;
  setT(el, `window.connection.${state}`);
}

function wire() {
  consent = new ConsentDialog((id, answer) => send({ type: 'consent', id, answer }));
  $('chat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('chat-input');
    const text = input.value.trim();
    if (!text) return;
    $('refused').hidden = true;
    send({ type: 'chat', text });
    input.value = '';
  });
  $('sharing-stop').addEventListener('click', () => {
    $('sharing-stop').disabled = true;
    send({ type: 'stop_sharing' });
  });
  const confirm = $('end-confirm');
  $('end-session').addEventListener('click', () => confirm.showModal());
  $('end-confirm-no').addEventListener('click', () => {
    confirm.close();
    $('end-session').focus();
  });
  $('end-confirm-yes').addEventListener('click', () => {
    confirm.close();
    send({ type: 'end' });
  });
  const select = $('language');
  for (const l of LANGUAGES) select.append(h('option', { value: l.code, text: l.name }));
  select.value = language();
  select.addEventListener('change', async () => {
    await setLanguage(select.value);
    relabel();
    renderHelper();
    renderCodes();
    consent.current && consent.render();
  });
}

function labelStatic() {
  setT($('lang-label'), 'window.language');
  setT($('chat-label'), 'window.chatLabel');
  setT($('chat-send'), 'window.send');
  setT($('sharing-stop'), 'window.stopSharing');
  setT($('end-session'), 'window.endSession');
  setT($('end-confirm-title'), 'window.endConfirm');
  setT($('end-confirm-yes'), 'window.endYes');
  setT($('end-confirm-no'), 'window.endNo');
}

async function main() {
  await initI18n(await loadResources());
  labelStatic();
  wire();
  setState('connecting');
  setConnection('connecting');
  renderHelper();
  link = connect({
    onOpen() {
      reset();
      setConnection('open');
    },
    onEvent(ev) {
      handlers[ev.type]?.(ev);
    },
    onClose(refused) {
      if (view.ended) return;
      setConnection(refused ? 'refused' : 'closed');
    },
  });
  document.body.dataset.ready = 'true';
}

main().catch((e) => showRefused(String(e?.message ?? e)));
