// A session's page: connects (attach) to the session, shows its state, and
// hosts the panels — chat, consent and activity beside tabs for plugins,
// system information, scripts, run-as, reboot, the screen and the report.
//
// The SessionContext is what the panels share: the session's pushed
// messages by kind, plugin calls followed by call_id (output, result,
// consent decisions, the password request of a run-as login), and sending.
// Requests: attach, detach, end_session, list_sessions (while the customer's
// computer restarts). Sent: session messages through the panels, sealed end
// to end by the socket layer (src/e2e.js); the channel's security code is
// shown at the top, to compare with the customer's.

import { h, clear, setT, timeEl, button, confirmDialog, errorText, tabSet, liveLog, announce } from './dom.js';
import { t } from './i18n.js';
import { ApiError } from './api.js';
import { displaySafe, MAX_TEXT_CHARS } from './util.js';
import { stateBadge, setStateBadge, stateRef, partyRef } from './sessions.js';
import { createChatPanel } from './chat.js';
import { createConsentPanel } from './consent.js';
import { createPluginsPanel } from './plugins.js';
import { createSysinfoPanel } from './sysinfo.js';
import { createScriptsPanel } from './scripts.js';
import { createRunAsPanel, passwordDialog } from './runas.js';
import { createRebootPanel } from './reboot.js';
import { createReportPanel } from './report.js';
import { createScreenPanel } from './screen.js';

/** How often the page looks whether a restarting computer is back (ms). */
export const REJOIN_POLL_MS = 5000;

/**
 * What the panels of one session share. Events (`on(name, fn)`): every
 * SessionMessage kind of this session (chat, state, plugin_output, …), and
 * 'data' (binary session data: Uint8Array payload), 'attached'
 * (SessionSummary), 'broker-error' ({code, message}), 'reconnected'.
 */
export class SessionContext {
  constructor(api, sessionId, profile) {
    this.api = api;
    this.sessionId = sessionId;
    this.profile = profile;
    this.summary = null;
    this.state = null;
    this.attached = false;
    this.ended = false;
    this.plugins = null;
    this.handlers = new Map();
    this.calls = new Map();
    this.askPassword = async () => null;
    this.activity = () => {};
  }

  on(name, fn) {
    if (!this.handlers.has(name)) this.handlers.set(name, new Set());
    this.handlers.get(name).add(fn);
    return () => this.handlers.get(name)?.delete(fn);
  }

  emit(name, detail) {
    for (const fn of [...(this.handlers.get(name) || [])]) {
      try {
        fn(detail);
      } catch (e) {
        console.error(`console: a ${name} handler failed`, e);
      }
    }
  }

  newId() {
    return this.api.newCallId();
  }

  /** Whether messages can be sent now (attached, not ended, not restarting). */
  get active() {
    return this.attached && !this.ended && this.state !== 'rebooting';
  }

  /** Sends a SessionMessage; throws ApiError when the session cannot take it now. */
  send(msg) {
    if (this.ended) throw new ApiError('', { kind: 'inactive' });
    if (this.state === 'rebooting') throw new ApiError('', { kind: 'rebooting' });
    if (!this.attached) throw new ApiError('', { kind: 'notAttached' });
    this.api.sendSession(this.sessionId, msg);
  }

  /** Sends session data (a stream frame). */
  sendData(payload) {
    if (!this.attached || this.ended) throw new ApiError('', { kind: 'inactive' });
    this.api.sendData(this.sessionId, payload);
  }

  request(body) {
    return this.api.request(body);
  }

  expect(body, result) {
    return this.api.expect(body, result);
  }

  /**
   * Runs a plugin command and follows it: `onOutput(stream, text)`,
   * `onDone(ok, text)`, `onConsent(ConsentDecided)`. A password request
   * of this call is answered through `askPassword` (once). Returns the call
   * id; throws when it could not be sent.
   */
  runPlugin(plugin, command, args, handlers = {}) {
    const callId = this.newId();
    const call = { callId, plugin, command, args, credentialAsked: false, ...handlers };
    this.calls.set(callId, call);
    try {
      this.send({ kind: 'run_plugin', call_id: callId, plugin, command, args });
    } catch (e) {
      this.calls.delete(callId);
      throw e;
    }
    return callId;
  }

  /** Forgets a call (its later output is ignored). */
  forget(callId) {
    this.calls.delete(callId);
  }

  setPlugins(list) {
    this.plugins = list;
    this.emit('plugins-known', list);
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    if (state === 'ended') this.ended = true;
    this.emit('state-change', state);
  }

  /** One pushed message of this session. */
  async dispatch(msg) {
    switch (msg.kind) {
      case 'plugin_output': {
        this.calls.get(msg.call_id)?.onOutput?.(msg.stream, msg.text);
        break;
      }
      case 'plugin_done': {
        const call = this.calls.get(msg.call_id);
        if (call) {
          this.calls.delete(msg.call_id);
          call.onDone?.(msg.ok, msg.text);
        }
        break;
      }
      case 'consent_decided': {
        for (const call of this.calls.values()) if (call.plugin === msg.plugin) call.onConsent?.(msg);
        break;
      }
      case 'credential_request':
        await this.credentialRequest(msg);
        break;
      case 'state':
        this.setState(msg.state);
        break;
      case 'end':
        this.setState('ended');
        for (const call of this.calls.values()) call.onDone?.(false, t('session.endedShort'));
        this.calls.clear();
        break;
      default:
        break;
    }
    this.emit(msg.kind, msg);
  }

  async credentialRequest(msg) {
    const call = this.calls.get(msg.call_id);
    if (!call || call.credentialAsked) {
      // Not a login this page started and waits for: a password typed now
      // would go to whoever asked. Another console of the same operator may
      // be waiting for it, so nothing is sent from here.
      this.activity('session.credentialIgnored', { user: displaySafe(msg.user), call: msg.call_id }, 'warning');
      return;
    }
    call.credentialAsked = true;
    call.onCredential?.(msg);
    let secret = null;
    try {
      secret = await this.askPassword(msg.user, msg.prompt, call);
    } catch {
      secret = null;
    }
    try {
      this.send({ kind: 'credential_reply', request_id: msg.request_id, secret: secret ? secret : null });
    } catch (e) {
      this.activity('session.credentialNotSent', { reason: errorText(e) }, 'error');
    }
    secret = null;
  }
}

const ACTIVITY_KINDS = {
  state: 'session.activity.state',
  plugin_notice: 'session.activity.notice',
  stream_opened: 'session.activity.streamOpened',
  stream_closed: 'session.activity.streamClosed',
  access_on: 'session.activity.accessSuspended',
  access_off: 'session.activity.accessRestored',
  end: 'session.activity.end',
  error: 'session.activity.error',
};

export function createSessionView(app, sessionId) {
  const { api } = app;
  const ctx = new SessionContext(api, sessionId, app.profile);
  const offs = [];
  let rejoinTimer = null;
  let disposed = false;
  let waitingForJoin = false;

  // ---- header ----
  const title = h('h1', { id: 'session-title', t: 'session.titleLoading' });
  const badge = stateBadge('invited', { testid: 'session-state' });
  badge.hidden = true;
  const stateDetail = h('span', { class: 'state-detail muted', testid: 'session-state-detail' });
  const stateRegion = h('div', { class: 'session-state', role: 'status', 'aria-live': 'polite' }, h('span', { class: 'visually-hidden', t: 'session.stateLabel' }), badge, ' ', stateDetail);
  const meta = h('dl', { class: 'meta' });
  const banner = h('div', { class: 'banner', role: 'alert', hidden: true, testid: 'session-banner' });

  // ---- end-to-end: the security code ----
  const sasCode = h('strong', { class: 'sas-code', testid: 'session-sas-code' });
  const sasLine = h('p', { class: 'sas-line', testid: 'session-sas', hidden: true }, h('span', { t: 'e2e.codeLabel' }), ' ', sasCode, ' ', h('span', { t: 'e2e.codeAdvice' }));
  const securing = h('p', { class: 'sas-line muted', t: 'e2e.securing', testid: 'session-securing', hidden: true });
  const sasBox = h('div', { class: 'sas-box', role: 'status', 'aria-live': 'polite', testid: 'session-e2e', dataset: { state: 'none' } }, securing, sasLine);
  function showE2e({ state, sas, reason, again }) {
    if (state === 'refused') {
      ctx.activity('e2e.activity.refused', { reason: displaySafe(reason) }, 'warning');
      return;
    }
    sasBox.dataset.state = state;
    securing.hidden = state !== 'securing';
    sasLine.hidden = state !== 'ready';
    if (state === 'ready') {
      sasCode.textContent = sas;
      ctx.activity(again ? 'e2e.activity.newCode' : 'e2e.activity.ready', { code: sas }, again ? 'warning' : 'info');
    }
  }
  const endBtn = button('session.end', () => endSession(), { class: 'danger', testid: 'session-end', disabled: true });
  const backBtn = button('session.back', () => app.navigate('#/sessions'), { class: 'secondary', testid: 'session-back' });

  // ---- activity ----
  const activityLog = liveLog({ label: 'session.activity.title', testid: 'activity-log', className: 'activity-log' });
  ctx.activity = (key, args, level = 'info') => {
    const li = h('li', { class: ['log-entry', `level-${level}`] }, timeEl(new Date().toISOString(), 'time', { class: 'log-time' }), ' ', h('span', { t: key, targs: args }));
    activityLog.add(li);
  };
  ctx.askPassword = (user, prompt) => passwordDialog({ user: displaySafe(user), prompt: displaySafe(prompt) });

  // ---- panels ----
  const chat = createChatPanel(ctx);
  const consent = createConsentPanel(ctx);
  const plugins = createPluginsPanel(ctx);
  const sysinfo = createSysinfoPanel(ctx);
  const scripts = createScriptsPanel(ctx);
  const runas = createRunAsPanel(ctx);
  const reboot = createRebootPanel(ctx);
  const screen = createScreenPanel(ctx);
  const report = createReportPanel({ api, sessionId, auto: false });
  const panels = [chat, consent, plugins, sysinfo, scripts, runas, reboot, screen, report];

  const tabs = tabSet(
    [
      { id: 'plugins', label: 'session.tab.plugins', panel: plugins.el, testid: 'tab-plugins' },
      { id: 'sysinfo', label: 'session.tab.sysinfo', panel: sysinfo.el, testid: 'tab-sysinfo' },
      { id: 'scripts', label: 'session.tab.scripts', panel: scripts.el, testid: 'tab-scripts' },
      { id: 'runas', label: 'session.tab.runas', panel: runas.el, testid: 'tab-runas' },
      { id: 'reboot', label: 'session.tab.reboot', panel: reboot.el, testid: 'tab-reboot' },
      { id: 'screen', label: 'session.tab.screen', panel: screen.el, testid: 'tab-screen' },
      { id: 'report', label: 'session.tab.report', panel: report.el, testid: 'tab-report' },
    ],
    { label: 'session.tab.label' },
  );
  tabs.onChange((id) => {
    if (id === 'report') report.load();
  });

  function renderMeta(s) {
    clear(meta);
    const row = (key, value, testid) => h('div', {}, h('dt', { t: key }), h('dd', { testid }, value));
    meta.append(
      row('session.meta.customer', displaySafe(s.end_user), 'session-customer'),
      row('session.meta.host', displaySafe(s.customer_host || '—'), 'session-host'),
      row('session.meta.ticket', displaySafe(s.ticket), 'session-ticket'),
      row('session.meta.operator', displaySafe(s.operator), 'session-operator'),
      row('session.meta.created', timeEl(s.created_at), 'session-created'),
      row('session.meta.id', h('span', { class: 'mono', text: s.session_id }), 'session-id'),
    );
  }

  function showState(state, detail) {
    badge.hidden = false;
    setStateBadge(badge, state);
    stateDetail.textContent = detail ? displaySafe(detail) : '';
    endBtn.disabled = state === 'ended' || !ctx.attached;
    if (state === 'ended') {
      banner.hidden = false;
      setT(banner, 'session.endedBanner');
    } else if (state === 'rebooting') {
      banner.hidden = false;
      setT(banner, 'session.rebootingBanner');
    } else if (ctx.attached) {
      banner.hidden = true;
    }
  }

  async function attach() {
    try {
      const s = await api.attach(sessionId);
      if (disposed) return;
      ctx.summary = s;
      ctx.attached = true;
      setT(title, 'session.title', { ticket: displaySafe(s.ticket), customer: displaySafe(s.end_user) });
      app.updateTitle('session.title', { ticket: s.ticket, customer: s.end_user });
      renderMeta(s);
      ctx.state = null;
      ctx.setState(s.state);
      showState(s.state, '');
      ctx.activity('session.attached', { customer: displaySafe(s.end_user) });
      ctx.emit('attached', s);
      announce(t('session.attachedAnnounce', { customer: s.end_user }));
    } catch (e) {
      if (disposed) return;
      ctx.attached = false;
      await notAttached(e);
    }
  }

  /** Attach failed: show why; while the computer restarts, look again. */
  async function notAttached(err) {
    let summary = null;
    try {
      const list = await api.listSessions(true);
      summary = list.find((s) => s.session_id === sessionId) || null;
    } catch {
      summary = null;
    }
    if (summary) {
      ctx.summary = summary;
      setT(title, 'session.title', { ticket: displaySafe(summary.ticket), customer: displaySafe(summary.end_user) });
      renderMeta(summary);
      ctx.setState(summary.state);
      showState(summary.state, '');
    }
    banner.hidden = false;
    if (summary?.state === 'invited') {
      // Not joined yet: connect as soon as the customer joins (pushed).
      setT(banner, 'session.waitingForJoin', { customer: displaySafe(summary.end_user) });
      waitingForJoin = true;
      return;
    }
    if (summary?.state === 'rebooting') {
      setT(banner, 'session.rebootingBanner');
      clearTimeout(rejoinTimer);
      rejoinTimer = setTimeout(() => pollRejoin(), REJOIN_POLL_MS);
      return;
    }
    clear(banner);
    banner.append(
      h('span', { t: 'session.cannotAttach', targs: { reason: errorText(err) } }),
      ' ',
      h('a', { href: '#/sessions', t: 'session.backToList' }),
    );
    if (summary && summary.state !== 'ended') {
      banner.append(' ', button('session.retryAttach', () => attach(), { class: 'secondary small', testid: 'session-retry-attach' }));
    }
  }

  async function pollRejoin() {
    if (disposed) return;
    try {
      const list = await api.listSessions(true);
      const s = list.find((x) => x.session_id === sessionId);
      if (s && s.state !== 'rebooting') {
        if (s.state === 'ended') {
          ctx.setState('ended');
          showState('ended', '');
          return;
        }
        await attach();
        return;
      }
    } catch {
      // try again
    }
    rejoinTimer = setTimeout(() => pollRejoin(), REJOIN_POLL_MS);
  }

  async function endSession() {
    const answer = await confirmDialog({
      title: 'session.endConfirm.title',
      body: 'session.endConfirm.body',
      confirm: 'session.endConfirm.confirm',
      danger: true,
      input: { label: 'session.endConfirm.reason', value: t('session.endConfirm.defaultReason'), maxLength: MAX_TEXT_CHARS, testid: 'session-end-reason' },
      testid: 'session-end-dialog',
    });
    if (!answer) return;
    endBtn.disabled = true;
    try {
      await api.endSession(sessionId, answer.value.trim());
      ctx.setState('ended');
      showState('ended', '');
      ctx.activity('session.endedByYou', {});
    } catch (e) {
      endBtn.disabled = false;
      ctx.activity('session.activity.error', { message: errorText(e) }, 'error');
    }
  }

  // ---- pushed traffic ----
  offs.push(
    api.on('session', ({ sessionId: id, msg }) => {
      if (id !== sessionId) return;
      if (waitingForJoin && msg.kind === 'state' && msg.state === 'waiting') {
        waitingForJoin = false;
        attach();
        return;
      }
      ctx.dispatch(msg);
      switch (msg.kind) {
        case 'state':
          showState(msg.state, msg.detail);
          ctx.activity(ACTIVITY_KINDS.state, { state: stateRef(msg.state), detail: displaySafe(msg.detail) });
          break;
        case 'end':
          showState('ended', msg.reason);
          ctx.activity(ACTIVITY_KINDS.end, { by: partyRef(msg.by), reason: displaySafe(msg.reason) }, 'warning');
          announce(t('session.endedAnnounce', { reason: msg.reason }));
          break;
        case 'plugin_notice':
          ctx.activity(ACTIVITY_KINDS.plugin_notice, { text: displaySafe(msg.text) });
          break;
        case 'stream_opened':
          ctx.activity(ACTIVITY_KINDS.stream_opened, { plugin: displaySafe(msg.plugin), name: displaySafe(msg.name), stream: msg.stream });
          break;
        case 'stream_closed':
          ctx.activity(ACTIVITY_KINDS.stream_closed, { plugin: displaySafe(msg.plugin), name: displaySafe(msg.name), frames: msg.frames, bytes: msg.bytes, reason: displaySafe(msg.reason) });
          break;
        case 'access':
          ctx.activity(msg.suspended ? ACTIVITY_KINDS.access_on : ACTIVITY_KINDS.access_off, { user: displaySafe(msg.user), detail: displaySafe(msg.detail) }, 'warning');
          break;
        default:
          break;
      }
    }),
    api.on('data', ({ sessionId: id, payload }) => {
      if (id === sessionId) ctx.emit('data', payload);
    }),
    api.on('e2e', (detail) => {
      if (detail.sessionId === sessionId && !disposed) showE2e(detail);
    }),
    api.on('error', (e) => {
      ctx.activity(ACTIVITY_KINDS.error, { message: displaySafe(e.message) }, 'error');
      ctx.emit('broker-error', e);
    }),
    api.on('status', ({ state }) => {
      if (state !== 'open' && ctx.attached) {
        ctx.attached = false;
        ctx.activity('session.connectionLost', {}, 'warning');
      }
    }),
    api.on('reconnected', async () => {
      if (ctx.ended || disposed) return;
      ctx.emit('reconnected');
      await attach();
    }),
  );

  ctx.on('state-change', (state) => {
    if (state === 'ended') endBtn.disabled = true;
  });

  const side = h('aside', { class: 'session-side', tattrs: { 'aria-label': 'session.sideLabel' } }, chat.el, consent.el, h('section', { class: 'panel', 'aria-labelledby': 'activity-title' }, h('h2', { id: 'activity-title', t: 'session.activity.title' }), activityLog.el));

  const el = h(
    'section',
    { class: 'view session-view', 'aria-labelledby': 'session-title', testid: 'session-view', dataset: { sessionId } },
    h('div', { class: 'view-head' }, h('div', {}, title, stateRegion), h('div', { class: 'actions' }, backBtn, endBtn)),
    sasBox,
    banner,
    meta,
    h('div', { class: 'session-layout' }, h('div', { class: 'session-main' }, tabs.el), side),
  );

  attach();

  return {
    el,
    titleKey: 'session.titleLoading',
    dispose() {
      disposed = true;
      clearTimeout(rejoinTimer);
      for (const off of offs) off();
      for (const p of panels) {
        try {
          p.dispose?.();
        } catch (e) {
          console.error('console: disposing a panel failed', e);
        }
      }
      if (ctx.attached && !ctx.ended) api.detach(sessionId).catch(() => {});
      ctx.attached = false;
    },
  };
}

