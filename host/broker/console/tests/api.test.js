// The HTTP and WebSocket client against a fake fetch and a fake WebSocket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Api, ApiError, CLOSE_POLICY } from '../src/api.js';
import { encodeSessionData } from '../src/stream.js';
import { E2eModule } from '../src/e2e.js';
import { readFileSync } from 'node:fs';

function response(status, body, headers = {}) {
  return {
    status,
    ok: status >= 200 && status < 300,
    statusText: String(status),
    headers: { get: (n) => ({ 'content-type': body === undefined ? '' : 'application/json', ...headers })[n.toLowerCase()] ?? null },
    json: async () => body,
  };
}

class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.closed = false;
    FakeSocket.all.push(this);
  }
  send(m) {
    this.sent.push(m);
  }
  close() {
    this.closed = true;
  }
  open() {
    this.onopen?.();
  }
  message(data) {
    this.onmessage?.({ data });
  }
  drop(code = 1006) {
    this.onclose?.({ code });
  }
}

function setup(routes, e2e = null) {
  FakeSocket.all = [];
  const calls = [];
  const api = new Api({
    base: 'https://broker.example:8443/console/',
    fetchImpl: async (url, init) => {
      calls.push({ url: String(url), init });
      const r = routes[`${init.method} ${new URL(url).pathname}`];
      if (!r) return response(404, { error: 'not found' });
      return typeof r === 'function' ? r(init) : r;
    },
    WebSocketImpl: FakeSocket,
    random: () => 0,
    e2e,
  });
  return { api, calls };
}

const profile = { username: 'alice', name: 'Alice', email: 'a@example.com', title: 'Support' };

test('login: profile and CSRF token; 401 and 429 become ApiErrors', async () => {
  let { api, calls } = setup({ 'POST /console/api/login': response(200, { csrf: 'tok', profile }) });
  assert.deepEqual(await api.login('alice', 'pw'), profile);
  assert.equal(api.csrf, 'tok');
  assert.equal(calls[0].url, 'https://broker.example:8443/console/api/login');
  assert.deepEqual(JSON.parse(calls[0].init.body), { username: 'alice', password: 'pw' });
  assert.equal(calls[0].init.credentials, 'same-origin');

  ({ api } = setup({ 'POST /console/api/login': response(401, { error: 'bad credentials' }) }));
  await assert.rejects(api.login('alice', 'x'), (e) => e instanceof ApiError && e.kind === 'http' && e.status === 401);

  ({ api } = setup({ 'POST /console/api/login': response(429, { error: 'slow down', retry_after_secs: 42 }) }));
  await assert.rejects(api.login('alice', 'x'), (e) => e.status === 429 && e.retryAfterSecs === 42);
});

test('me, logout and e-mail carry the CSRF header where they change state', async () => {
  const { api, calls } = setup({
    'GET /console/api/me': response(200, { csrf: 'c1', profile }),
    'POST /console/api/invitations/s1/email': response(409, { error: 'no SMTP server' }),
    'POST /console/api/logout': response(204),
  });
  assert.deepEqual(await api.me(), profile);
  await assert.rejects(api.emailInvitation('s1', 'bob@example.com'), (e) => e.status === 409);
  assert.equal(calls[1].init.headers['X-CSRF-Token'], 'c1');
  assert.deepEqual(JSON.parse(calls[1].init.body), { to: 'bob@example.com' });
  await api.logout();
  assert.equal(calls[2].init.headers['X-CSRF-Token'], 'c1');
  assert.equal(api.csrf, null);
  assert.equal(api.reportUrl('s 1', 'json'), 'https://broker.example:8443/console/api/sessions/s%201/report?format=json');
});

test('me without a login is null', async () => {
  const { api } = setup({ 'GET /console/api/me': response(401, { error: 'no' }) });
  assert.equal(await api.me(), null);
});

test('the socket: CSRF first, requests matched to replies, pushed messages and binary data', async () => {
  // The real end-to-end module (tests/e2e.test.js follows a whole channel).
  const e2e = await E2eModule.instantiate(readFileSync(new URL('../wasm/lifeline-e2e.wasm', import.meta.url)));
  const { api } = setup({ 'GET /console/api/me': response(200, { csrf: 'c2', profile }) }, e2e);
  await api.me();
  const ready = api.connect();
  const ws = FakeSocket.all[0];
  assert.equal(ws.url, 'wss://broker.example:8443/console/ws');
  ws.open();
  await ready;
  assert.deepEqual(JSON.parse(ws.sent[0]), { csrf: 'c2' });

  const p1 = api.request({ op: 'script_categories' });
  const p2 = api.request({ op: 'attach', session_id: 's1' });
  await new Promise((r) => setImmediate(r));
  const r1 = JSON.parse(ws.sent[1]);
  const r2 = JSON.parse(ws.sent[2]);
  assert.deepEqual(r1, { type: 'request', id: r1.id, body: { op: 'script_categories' } });
  assert.notEqual(r1.id, r2.id);
  ws.message(JSON.stringify({ type: 'reply', id: r2.id, body: { result: 'error', code: 'wrong_state', message: 'not ready' } }));
  ws.message(JSON.stringify({ type: 'reply', id: r1.id, body: { result: 'categories', categories: ['Maintenance'] } }));
  assert.deepEqual(await p1, { result: 'categories', categories: ['Maintenance'] });
  await assert.rejects(p2, (e) => e.kind === 'broker' && e.code === 'wrong_state' && e.message === 'not ready');

  // Pushed: the broker's own session messages pass, content in the clear
  // is refused, data of a session without a channel here is dropped.
  const seen = [];
  api.on('session', (m) => seen.push(['session', m]));
  api.on('error', (m) => seen.push(['error', m]));
  api.on('data', (m) => seen.push(['data', m.sessionId, [...m.payload]]));
  api.on('e2e', (m) => seen.push(['e2e', m.sessionId, m.state]));
  ws.message(JSON.stringify({ type: 'session', session_id: 's1', msg: { kind: 'state', state: 'waiting', detail: 'ready' } }));
  ws.message(JSON.stringify({ type: 'session', session_id: 's1', msg: { kind: 'chat', from: 'customer', text: 'hi' } }));
  ws.message(JSON.stringify({ type: 'error', code: 'bad_message', message: 'nope' }));
  ws.message(encodeSessionData('s1', Uint8Array.of(1, 0, 0, 0, 3, 9)).buffer);
  assert.deepEqual(seen, [
    ['session', { sessionId: 's1', msg: { kind: 'state', state: 'waiting', detail: 'ready' } }],
    ['e2e', 's1', 'refused'],
    ['error', { code: 'bad_message', message: 'nope' }],
  ]);

  // Nothing goes out in the clear: without a channel (not attached) sending fails.
  const sent = ws.sent.length;
  assert.throws(() => api.sendSession('s1', { kind: 'chat', from: 'operator', text: 'hello' }), (e) => e.kind === 'e2e');
  assert.throws(() => api.sendData('s1', Uint8Array.of(2, 0, 0, 0, 3)), (e) => e.kind === 'e2e');
  assert.equal(ws.sent.length, sent);
  api.disconnect();
});

test('paged listings are fetched to the end', async () => {
  const { api } = setup({});
  api.state = 'open';
  const pages = {
    undefined: { result: 'sessions', sessions: [{ session_id: 'a' }], next: 'c1' },
    c1: { result: 'sessions', sessions: [{ session_id: 'b' }] },
  };
  api.ws = { send: (m) => {
    const r = JSON.parse(m);
    queueMicrotask(() => api.receive(JSON.stringify({ type: 'reply', id: r.id, body: pages[r.body.after] })));
  } };
  assert.deepEqual((await api.listSessions(true)).map((s) => s.session_id), ['a', 'b']);
});

test('a dropped socket fails pending requests, reconnects with backoff and says so', async () => {
  const { api } = setup({ 'GET /console/api/me': response(200, { csrf: 'c3', profile }) });
  await api.me();
  api.connect();
  FakeSocket.all[0].open();
  const pending = api.request({ op: 'profile' });
  await new Promise((r) => setImmediate(r));
  let reconnected = 0;
  api.on('reconnected', () => reconnected++);
  const states = [];
  api.on('status', (s) => states.push(s.state));
  FakeSocket.all[0].drop(1006);
  await assert.rejects(pending, (e) => e.kind === 'lost');
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(FakeSocket.all.length, 2, 'a second socket was opened');
  FakeSocket.all[1].open();
  assert.equal(reconnected, 1);
  assert.ok(states.includes('reconnecting') && states.at(-1) === 'open');
  assert.deepEqual(JSON.parse(FakeSocket.all[1].sent[0]), { csrf: 'c3' });
  assert.equal(api.backoffDelay(0), 250);
  assert.equal(api.backoffDelay(20), 15000);
  api.disconnect();
});

test('a refused token with the login gone ends in "expired"', async () => {
  let loggedIn = true;
  const { api } = setup({ 'GET /console/api/me': () => (loggedIn ? response(200, { csrf: 'c4', profile }) : response(401, {})) });
  await api.me();
  api.connect();
  FakeSocket.all[0].open();
  let expired = false;
  api.on('expired', () => (expired = true));
  loggedIn = false;
  FakeSocket.all[0].drop(CLOSE_POLICY);
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(expired);
  assert.equal(api.state, 'closed');
  assert.equal(FakeSocket.all.length, 1);
});

test('call ids start at a random point and increase', () => {
  const api = new Api({ base: 'https://x/console/', fetchImpl: async () => {}, WebSocketImpl: FakeSocket, random: () => 0.5 });
  const a = api.newCallId();
  assert.equal(a, 0x80000000 * 0x10000 + 1);
  assert.equal(api.newCallId(), a + 1);
  assert.ok(Number.isSafeInteger(a));
});
