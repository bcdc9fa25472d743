// The console's connection to the broker (docs/console-protocol.md):
// - HTTP under /console/api: login, me, logout (CSRF token), e-mailing an
//   invitation, report downloads;
// - one WebSocket (/console/ws) carrying the operator protocol's JSON
//   messages (requests with ids, replies matched to them as promises,
//   pushed session messages and errors) and binary session data.
// The socket reconnects by itself with exponential backoff; requests in
// flight when it drops fail with kind "lost" and attachments are gone, so
// listeners of "reconnected" attach again.
//
// Session content goes end to end (src/e2e.js): attaching starts the
// session's channel and waits until it is ready; every session message
// sent is sealed, every sealed one received opened, content in the clear
// refused, and so are data frames.

import { encodeSessionData, decodeSessionData } from './stream.js';
import { E2eChannels } from './e2e.js';

/** Time a request waits for its reply (as the CLI's REQUEST_TIMEOUT). */
export const REQUEST_TIMEOUT_MS = 30_000;
/** Backoff between reconnection attempts. */
export const RECONNECT_MIN_MS = 500;
export const RECONNECT_MAX_MS = 30_000;
/** Most pages one paged listing may take. */
export const MAX_REPLY_PAGES = 100_000;
/** WebSocket close code the broker uses for a refused CSRF token / origin. */
export const CLOSE_POLICY = 1008;
/** Time attaching waits for the session's end-to-end channel to be ready. */
export const E2E_READY_TIMEOUT_MS = 30_000;

/**
 * A failure of the console's connection or of a request:
 * - `kind`: 'http' (status), 'broker' (a reply's error: `code`),
 *   'offline' (no socket), 'timeout', 'lost' (socket dropped while
 *   waiting), 'unexpected' (a reply of the wrong kind), 'e2e' (the
 *   end-to-end encryption refused, or its channel is not there);
 * - `status`: the HTTP status; `code`: the broker's ErrorCode
 *   (bad_credentials, rate_limited, wrong_state, …);
 * - `retryAfterSecs`: with HTTP 429.
 */
export class ApiError extends Error {
  constructor(message, { kind, status, code, retryAfterSecs } = {}) {
    super(message || kind || 'error');
    this.name = 'ApiError';
    this.kind = kind;
    this.status = status;
    this.code = code;
    this.retryAfterSecs = retryAfterSecs;
  }
}

/**
 * The client. Events (`on(type, fn)` returns the unsubscribe):
 * - 'status'  {state: 'connecting'|'open'|'reconnecting'|'closed', delayMs?}
 * - 'session' {sessionId, msg}       a pushed SessionMessage (opened, or the broker's own)
 * - 'data'    {sessionId, payload}   binary session data (Uint8Array, opened)
 * - 'e2e'     {sessionId, state, sas?, reason?, again?}  the session's
 *             end-to-end channel: 'securing', 'ready' (sas: the security
 *             code; again: a new one), 'refused' (reason), 'closed'
 * - 'error'   {code, message}        a pushed Message::Error
 * - 'reconnected'                    the socket is back after a drop
 * - 'expired'                        the login is over (401): log in again
 */
export class Api {
  constructor({
    base = new URL('../../', import.meta.url),
    fetchImpl = (...a) => globalThis.fetch(...a),
    WebSocketImpl = globalThis.WebSocket,
    random = Math.random,
    e2e = null,
    randomBytes,
    readyTimeoutMs = E2E_READY_TIMEOUT_MS,
  } = {}) {
    this.base = new URL(base);
    this.fetch = fetchImpl;
    this.WebSocket = WebSocketImpl;
    this.random = random;
    this.csrf = null;
    this.profile = null;
    this.ws = null;
    this.state = 'closed';
    this.pending = new Map();
    this.nextRequestId = 1;
    // Call and request ids inside sessions start at a random point so that
    // another operator client in the same session does not use the same ones.
    this.nextCall = Math.floor(random() * 0x1_0000_0000) * 0x1_0000 + 1;
    this.listeners = new Map();
    this.wanted = false;
    this.attempt = 0;
    this.retryTimer = null;
    this.everOpened = false;
    this.openWaiters = [];
    this.readyTimeoutMs = readyTimeoutMs;
    // The end-to-end channels (an E2eModule from loadE2e); without one no
    // session content is sent or taken.
    this.secure = e2e
      ? new E2eChannels(
          e2e,
          {
            sendSession: (sessionId, msg) => this.sendText({ type: 'session', session_id: sessionId, msg }),
            sendData: (sessionId, payload) => this.sendRaw(encodeSessionData(sessionId, payload)),
            deliver: (sessionId, msg) => this.emit('session', { sessionId, msg }),
            deliverData: (sessionId, payload) => this.emit('data', { sessionId, payload }),
            event: (detail) => this.emit('e2e', detail),
          },
          randomBytes ? { randomBytes } : {},
        )
      : null;
  }

  // ---- events ----

  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type)?.delete(fn);
  }

  emit(type, detail) {
    for (const fn of [...(this.listeners.get(type) || [])]) {
      try {
        fn(detail);
      } catch (e) {
        console.error(`console: a ${type} listener failed`, e);
      }
    }
  }

  /** A fresh id for a session message (RunPlugin call_id, ListPlugins and consent request_id). */
  newCallId() {
    return this.nextCall++;
  }

  // ---- HTTP ----

  url(path) {
    return new URL(path, this.base);
  }

  async http(method, path, body, { csrf = false } = {}) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (csrf && this.csrf) headers['X-CSRF-Token'] = this.csrf;
    let res;
    try {
      res = await this.fetch(this.url(path), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(String(e?.message || e), { kind: 'offline' });
    }
    let data = null;
    const type = res.headers.get('Content-Type') || '';
    if (res.status !== 204 && type.includes('json')) {
      try {
        data = await res.json();
      } catch {
        data = null;
      }
    }
    if (!res.ok) {
      const retry = data?.retry_after_secs ?? Number(res.headers.get('Retry-After') || '') ?? undefined;
      throw new ApiError(data?.error || res.statusText || `HTTP ${res.status}`, {
        kind: 'http',
        status: res.status,
        retryAfterSecs: Number.isFinite(retry) && retry > 0 ? retry : undefined,
      });
    }
    return data;
  }

  /** Logs in: the profile; throws ApiError status 401 (wrong password) or 429 (retryAfterSecs). */
  async login(username, password) {
    const data = await this.http('POST', 'api/login', { username, password });
    this.csrf = data.csrf;
    this.profile = data.profile;
    return data.profile;
  }

  /** The logged-in profile (and a fresh CSRF token), or null without a login. */
  async me() {
    try {
      const data = await this.http('GET', 'api/me');
      this.csrf = data.csrf;
      this.profile = data.profile;
      return data.profile;
    } catch (e) {
      if (e.kind === 'http' && e.status === 401) {
        this.csrf = null;
        this.profile = null;
        return null;
      }
      throw e;
    }
  }

  /** Ends the login (the broker ends the operator login behind it). */
  async logout() {
    this.disconnect();
    try {
      await this.http('POST', 'api/logout', undefined, { csrf: true });
    } finally {
      this.csrf = null;
      this.profile = null;
    }
  }

  /** Sends an invitation by the broker's mail server; ApiError 409 when it has none. */
  async emailInvitation(sessionId, to) {
    await this.http('POST', `api/invitations/${encodeURIComponent(sessionId)}/email`, { to }, { csrf: true });
  }

  /** The URL of a session's report as a download (format 'txt' or 'json'). */
  reportUrl(sessionId, format) {
    const u = this.url(`api/sessions/${encodeURIComponent(sessionId)}/report`);
    u.searchParams.set('format', format);
    return u.href;
  }

  // ---- WebSocket ----

  wsUrl() {
    const u = this.url('ws');
    u.protocol = u.protocol === 'http:' ? 'ws:' : 'wss:';
    return u.href;
  }

  /** Opens the socket and keeps it open (reconnecting) until disconnect(). */
  connect() {
    this.wanted = true;
    if (!this.ws) this.open();
    return this.ready();
  }

  /** Closes the socket for good; pending requests fail. */
  disconnect() {
    this.wanted = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(1000);
      } catch {
        // already closed
      }
    }
    this.failPending('lost');
    this.secure?.closeAll('the connection to the broker was closed');
    this.setState('closed');
  }

  get connected() {
    return this.state === 'open';
  }

  /** Resolves when the socket is open (rejects after `timeoutMs`). */
  ready(timeoutMs = REQUEST_TIMEOUT_MS) {
    if (this.state === 'open') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.openWaiters = this.openWaiters.filter((w) => w.resolve !== resolve);
        reject(new ApiError('the console is not connected to the broker', { kind: 'offline' }));
      }, timeoutMs);
      this.openWaiters.push({
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  setState(state, extra = {}) {
    this.state = state;
    this.emit('status', { state, ...extra });
    if (state === 'open') {
      const waiters = this.openWaiters;
      this.openWaiters = [];
      for (const w of waiters) w.resolve();
    }
  }

  open() {
    if (!this.WebSocket) throw new ApiError('this browser has no WebSocket', { kind: 'offline' });
    this.setState(this.everOpened ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new this.WebSocket(this.wsUrl());
    } catch {
      this.scheduleReconnect();
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      // First message: the cookie session's CSRF token.
      ws.send(JSON.stringify({ csrf: this.csrf }));
      opened = true;
      this.attempt = 0;
      const again = this.everOpened;
      this.everOpened = true;
      this.setState('open');
      if (again) this.emit('reconnected');
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.receive(ev.data);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.failPending('lost');
      // Attachments are gone with the socket; the page attaches again.
      this.secure?.closeAll('the connection to the broker was lost');
      if (!this.wanted) {
        this.setState('closed');
        return;
      }
      this.afterClose(ev.code, opened);
    };
    ws.onerror = () => {
      // onclose follows and decides.
    };
  }

  async afterClose(code, opened) {
    // A refused token, an expired login or a broker restart: ask who we
    // are first; without a login there is nothing to reconnect to.
    if (code === CLOSE_POLICY || !opened || this.attempt > 0) {
      try {
        const p = await this.me();
        if (!p) {
          this.wanted = false;
          this.setState('closed');
          this.emit('expired');
          return;
        }
      } catch {
        // Network trouble: keep trying with backoff.
      }
    }
    if (this.wanted) this.scheduleReconnect();
  }

  /** The delay before reconnection attempt `attempt` (0-based), with jitter. */
  backoffDelay(attempt) {
    const base = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** Math.min(attempt, 16));
    return Math.round(base * (0.5 + this.random() * 0.5));
  }

  scheduleReconnect() {
    const delayMs = this.backoffDelay(this.attempt);
    this.attempt += 1;
    this.setState('reconnecting', { delayMs });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.wanted && !this.ws) this.open();
    }, delayMs);
  }

  /** Reconnects at once (a "Retry now" button). */
  retryNow() {
    if (!this.wanted || this.ws) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.open();
  }

  failPending(kind) {
    const pending = this.pending;
    this.pending = new Map();
    for (const p of pending.values()) {
      clearTimeout(p.timer);
      p.reject(new ApiError('the connection to the broker was lost', { kind }));
    }
  }

  receive(data) {
    if (typeof data !== 'string') {
      let msg;
      try {
        msg = decodeSessionData(new Uint8Array(data));
      } catch (e) {
        this.emit('error', { code: 'bad_message', message: String(e.message) });
        return;
      }
      this.secure?.incomingData(msg.sessionId, msg.payload);
      return;
    }
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      this.emit('error', { code: 'bad_message', message: 'the broker sent a message that is not JSON' });
      return;
    }
    switch (m?.type) {
      case 'reply': {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        clearTimeout(p.timer);
        if (m.body?.result === 'error') {
          p.reject(new ApiError(m.body.message, { kind: 'broker', code: m.body.code }));
        } else {
          p.resolve(m.body);
        }
        break;
      }
      case 'session':
        this.sessionIncoming(m.session_id, m.msg);
        break;
      case 'error':
        this.emit('error', { code: m.code, message: m.message });
        break;
      default:
        // Ping, pong and anything newer: nothing to do.
        break;
    }
  }

  /** A pushed session message, through the session's end-to-end channel. */
  sessionIncoming(sessionId, msg) {
    if (!this.secure) return;
    try {
      this.secure.incoming(sessionId, msg);
    } catch (e) {
      this.emit('e2e', { sessionId, state: 'refused', reason: String(e?.message || e) });
    }
  }

  sendText(obj) {
    this.sendRaw(JSON.stringify(obj));
  }

  sendRaw(message) {
    if (!this.ws || this.state !== 'open') {
      throw new ApiError('the console is not connected to the broker', { kind: 'offline' });
    }
    this.ws.send(message);
  }

  /**
   * Sends a Request (`{op: ..., ...}`) and resolves with its reply body
   * (`{result: ..., ...}`); a reply `error` rejects with kind 'broker'.
   */
  async request(body, { timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
    await this.ready(timeoutMs);
    const id = this.nextRequestId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ApiError(`no reply from the broker within ${Math.round(timeoutMs / 1000)} s`, { kind: 'timeout' }));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      try {
        this.sendText({ type: 'request', id, body });
      } catch (e) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(e);
      }
    });
  }

  /** `request`, checking the reply's `result`. */
  async expect(body, result) {
    const reply = await this.request(body);
    if (reply.result !== result) {
      throw new ApiError(`unexpected reply from the broker: ${reply.result}`, { kind: 'unexpected' });
    }
    return reply;
  }

  /**
   * Sends a SessionMessage (`{kind: ..., ...}`) in attached session
   * `sessionId`, sealed end to end (held while its channel is being set up).
   */
  sendSession(sessionId, msg) {
    this.sealed(() => this.secure.send(sessionId, msg));
  }

  /** Sends session data (a stream frame) to the agent of `sessionId`, sealed. */
  sendData(sessionId, payload) {
    this.sealed(() => this.secure.sendData(sessionId, payload));
  }

  /** Runs `f` on the channels; their refusals become ApiErrors of kind 'e2e'. */
  sealed(f) {
    if (!this.secure) throw new ApiError('the end-to-end encryption module is not loaded', { kind: 'e2e' });
    try {
      return f();
    } catch (e) {
      if (e instanceof ApiError) throw e;
      throw new ApiError(String(e?.message || e), { kind: 'e2e' });
    }
  }

  /** The security code of `sessionId`'s channel, once ready ("123 456"), else null. */
  securityCode(sessionId) {
    return this.secure?.get(sessionId)?.sas ?? null;
  }

  // ---- convenience: paged listings and common requests ----

  /** The whole session list (every page), newest first. */
  async listSessions(all) {
    const out = [];
    let after;
    for (let i = 0; i < MAX_REPLY_PAGES; i++) {
      const body = { op: 'list_sessions', all: Boolean(all) };
      if (after !== undefined) body.after = after;
      const r = await this.expect(body, 'sessions');
      out.push(...r.sessions);
      if (r.next === undefined || r.next === null) return out;
      if (r.next === after) throw new ApiError(`the session list repeats page ${r.next}`, { kind: 'unexpected' });
      after = r.next;
    }
    throw new ApiError('the session list did not end', { kind: 'unexpected' });
  }

  /** A session's whole report: `{session, events}`. */
  async report(sessionId) {
    const events = [];
    let afterSeq = 0;
    for (let i = 0; i < MAX_REPLY_PAGES; i++) {
      const r = await this.expect({ op: 'report', session_id: sessionId, after_seq: afterSeq }, 'report');
      events.push(...r.events);
      if (r.next === undefined || r.next === null) return { session: r.session, events };
      if (r.next <= afterSeq) throw new ApiError(`the report's next page (${r.next}) does not advance`, { kind: 'unexpected' });
      afterSeq = r.next;
    }
    throw new ApiError('the report did not end', { kind: 'unexpected' });
  }

  /**
   * Connects to a ready session and sets up its end-to-end channel: its
   * SessionSummary once the channel is ready (at once while the customer's
   * computer is away; the channel starts when it is back).
   */
  async attach(sessionId) {
    const r = await this.expect({ op: 'attach', session_id: sessionId }, 'attached');
    const ready = this.sealed(() => this.secure.start(sessionId, r.session?.state));
    let timer;
    const late = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new ApiError(`the customer's computer did not answer the end-to-end handshake within ${Math.round(this.readyTimeoutMs / 1000)} s`, { kind: 'e2e' })),
        this.readyTimeoutMs,
      );
    });
    try {
      await Promise.race([ready, late]);
    } catch (e) {
      if (e instanceof ApiError) throw e;
      throw new ApiError(String(e?.message || e), { kind: 'e2e' });
    } finally {
      clearTimeout(timer);
    }
    return r.session;
  }

  async detach(sessionId) {
    this.secure?.close(sessionId, 'detached');
    await this.request({ op: 'detach', session_id: sessionId });
  }

  async endSession(sessionId, reason) {
    await this.request({ op: 'end_session', session_id: sessionId, reason });
  }
}
