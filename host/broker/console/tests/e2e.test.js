// The page's end-to-end glue (src/e2e.js, src/api.js) with the real module
// (wasm/lifeline-e2e.wasm, built by scripts/build-console-wasm) against a
// recorded session with the agent's real end (tests/e2e-transcript.json,
// written and checked by host/e2e-wasm/src/transcript.rs): the page must
// send exactly the recorded bytes and open the agent's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Api } from '../src/api.js';
import { E2eChannels, E2eModule, loadE2e, randomEndpoint, MAX_ENDPOINT, MAX_QUEUED, RESTART_DELAY_MS, WASM_PATH } from '../src/e2e.js';
import { pinnedIntegrity } from '../src/integrity.js';
import { encodeSessionData } from '../src/stream.js';

const wasmFile = fileURLToPath(new URL(`../${WASM_PATH}`, import.meta.url));
const T = JSON.parse(readFileSync(new URL('./e2e-transcript.json', import.meta.url), 'utf8'));
const SID = T.session_id;

async function module() {
  assert.ok(existsSync(wasmFile), `${wasmFile} is missing: run scripts/build-console-wasm`);
  return E2eModule.instantiate(readFileSync(wasmFile));
}

/** The 8 random bytes from which randomEndpoint() makes `endpoint`. */
function endpointBytes(endpoint) {
  const hi = Math.floor(endpoint / 2 ** 32);
  const lo = endpoint % 2 ** 32;
  return Uint8Array.of(hi >> 16, (hi >> 8) & 255, hi & 255, lo >>> 24, (lo >>> 16) & 255, (lo >>> 8) & 255, lo & 255, 0);
}

/** Random bytes as the transcript had them: the endpoint, then the page's seed, then zeros. */
function recordedRandom() {
  const queue = [endpointBytes(T.endpoint), Uint8Array.from(T.page_seed)];
  return (n) => {
    const next = queue.shift() ?? new Uint8Array(n);
    assert.equal(next.length, n);
    return next;
  };
}

class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    FakeSocket.all.push(this);
  }
  send(m) {
    this.sent.push(m);
  }
  close() {}
  open() {
    this.onopen?.();
  }
  message(data) {
    this.onmessage?.({ data });
  }
}

function json(status, body) {
  return { status, ok: true, statusText: '', headers: { get: () => 'application/json' }, json: async () => body };
}

async function connected(e2e) {
  FakeSocket.all = [];
  const api = new Api({
    base: 'https://broker.example/console/',
    fetchImpl: async () => json(200, { csrf: 'c', profile: { username: 'alice' } }),
    WebSocketImpl: FakeSocket,
    random: () => 0,
    e2e,
    randomBytes: recordedRandom(),
  });
  await api.me();
  const ready = api.connect();
  const ws = FakeSocket.all[0];
  ws.open();
  await ready;
  return { api, ws };
}

const lastText = (ws) => JSON.parse(ws.sent.filter((m) => typeof m === 'string').at(-1));
const tick = () => new Promise((r) => setImmediate(r));
const push = (ws, msg) => ws.message(JSON.stringify({ type: 'session', session_id: SID, msg }));

test('randomEndpoint stays exact in JSON and never 0', () => {
  assert.equal(randomEndpoint(() => new Uint8Array(8).fill(255)), MAX_ENDPOINT);
  assert.equal(randomEndpoint(() => new Uint8Array(8)), 1);
  assert.equal(randomEndpoint(() => endpointBytes(T.endpoint)), T.endpoint);
  for (let i = 0; i < 100; i++) assert.ok(Number.isSafeInteger(randomEndpoint()));
});

test('the page pins the module and the translations; loading refuses without a pin', async () => {
  const doc = { querySelector: () => ({ getAttribute: () => 'locales/en.json sha256-E wasm/lifeline-e2e.wasm sha256-W' }) };
  assert.equal(pinnedIntegrity(WASM_PATH, doc), 'sha256-W');
  assert.equal(pinnedIntegrity('locales/en.json', doc), 'sha256-E');
  assert.equal(pinnedIntegrity('app.js', doc), undefined);
  assert.equal(pinnedIntegrity(WASM_PATH, undefined), undefined);
  await assert.rejects(loadE2e({ integrity: undefined }), /pins no integrity/);
  const seen = [];
  const m = await loadE2e({
    url: 'https://broker.example/console/assets/wasm/lifeline-e2e.wasm',
    integrity: 'sha256-W',
    fetchImpl: async (url, init) => {
      seen.push(init.integrity);
      return { ok: true, arrayBuffer: async () => readFileSync(wasmFile) };
    },
  });
  assert.deepEqual(seen, ['sha256-W'], 'fetch is asked to check the pinned integrity');
  assert.ok(m instanceof E2eModule);
});

test('a recorded session: hello, confirm, chat both ways, the code, data both ways', async () => {
  const { api, ws } = await connected(await module());
  const events = [];
  api.on('session', (m) => events.push(['session', m.msg]));
  api.on('data', (m) => events.push(['data', [...m.payload]]));
  api.on('e2e', (e) => events.push(['e2e', e.state, e.sas ?? e.reason ?? null]));

  // Attaching: the broker's answer, then the hello goes out.
  const attached = api.attach(SID);
  await tick();
  const req = lastText(ws);
  assert.deepEqual(req.body, { op: 'attach', session_id: SID });
  ws.message(JSON.stringify({ type: 'reply', id: req.id, body: { result: 'attached', session: { session_id: SID, state: 'connected' } } }));
  await tick();
  assert.deepEqual(lastText(ws), { type: 'session', session_id: SID, msg: T.hello }, 'the recorded hello');

  // Content before the channel is ready waits; content in the clear is refused.
  const before = ws.sent.length;
  api.sendSession(SID, T.page_chat);
  assert.equal(ws.sent.length, before, 'held until the channel is ready');
  push(ws, { kind: 'chat', from: 'customer', text: 'injected by the relay' });
  assert.equal(events.filter((e) => e[0] === 'session').length, 0);
  assert.match(events.at(-1)[2], /unencrypted/);

  // The agent's answer: the confirm first, then the held chat, sealed.
  push(ws, T.reply);
  await attached;
  const out = ws.sent.slice(before).map((m) => JSON.parse(m));
  assert.deepEqual(out, [
    { type: 'session', session_id: SID, msg: T.confirm },
    { type: 'session', session_id: SID, msg: T.page_chat_sealed },
  ]);
  assert.ok(!ws.sent.join('').includes('Hello from the console'), 'no chat text on the socket');
  assert.equal(api.securityCode(SID), T.sas);
  assert.deepEqual(events.find((e) => e[1] === 'ready'), ['e2e', 'ready', T.sas]);

  // The agent's chat opens; another endpoint's message is not ours.
  push(ws, T.other_sealed);
  push(ws, T.agent_chat_sealed);
  assert.deepEqual(events.filter((e) => e[0] === 'session'), [['session', T.agent_chat]]);

  // The broker's own messages pass in the clear.
  push(ws, { kind: 'state', state: 'connected', detail: 'x' });
  assert.deepEqual(events.at(-1), ['session', { kind: 'state', state: 'connected', detail: 'x' }]);

  // Data: the agent's frame opens, an unsealed one is refused, the input is sealed.
  ws.message(encodeSessionData(SID, Uint8Array.from(T.agent_frame_sealed)).buffer);
  assert.deepEqual(events.at(-1), ['data', T.agent_frame]);
  ws.message(encodeSessionData(SID, Uint8Array.from(T.agent_frame)).buffer);
  assert.equal(events.at(-1)[1], 'refused');
  api.sendData(SID, Uint8Array.from(T.page_input));
  assert.deepEqual([...ws.sent.at(-1)], [...encodeSessionData(SID, Uint8Array.from(T.page_input_sealed))]);

  // A forged message closes the channel; it says so.
  const forged = { ...T.agent_chat_sealed, data: T.agent_chat_sealed.data.replace(/^A/, 'B') };
  push(ws, forged);
  assert.equal(events.at(-1)[1], 'refused');
  api.disconnect();
  assert.deepEqual(events.at(-1), ['e2e', 'closed', null]);
  assert.throws(() => api.sendSession(SID, T.page_chat), (e) => e.kind === 'e2e');
});

test('a new channel when the agent is back, after a closed one, and limits', async () => {
  const mod = await module();
  const sent = [];
  const events = [];
  const timers = [];
  const chans = new E2eChannels(
    mod,
    {
      sendSession: (sid, msg) => sent.push(msg),
      sendData: () => {},
      deliver: () => {},
      deliverData: () => {},
      event: (e) => events.push(e.state),
    },
    { randomBytes: recordedRandom(), setTimer: (f, ms) => timers.push([f, ms]), clearTimer: () => {} },
  );
  const ready = chans.start(SID, 'connected');
  assert.deepEqual(sent.at(-1), T.hello);
  chans.incoming(SID, T.reply);
  await ready;
  assert.equal(chans.get(SID).sas, T.sas);

  // The customer's computer restarts and comes back: a new hello from the same endpoint.
  chans.incoming(SID, { kind: 'state', state: 'rebooting', detail: '' });
  assert.equal(chans.get(SID).ready, false);
  chans.send(SID, T.page_chat);
  const n = sent.length;
  chans.incoming(SID, { kind: 'state', state: 'connected', detail: '' });
  assert.equal(sent.length, n + 1);
  assert.equal(sent.at(-1).kind, 'e2e_hello');
  assert.equal(sent.at(-1).endpoint, T.endpoint);
  assert.notDeepEqual(sent.at(-1), T.hello, 'a fresh handshake');

  // The agent closes the channel: refused, and a new hello after RESTART_DELAY_MS.
  chans.incoming(SID, { kind: 'e2e_closed', endpoint: T.endpoint, reason: 'test' });
  assert.equal(events.at(-1), 'refused');
  assert.equal(timers.length, 1);
  assert.equal(timers[0][1], RESTART_DELAY_MS);
  timers[0][0]();
  assert.equal(sent.at(-1).kind, 'e2e_hello');

  // Held messages are bounded.
  for (let i = 1; i < MAX_QUEUED; i++) chans.send(SID, T.page_chat);
  assert.throws(() => chans.send(SID, T.page_chat), /already wait/);

  // The end closes it.
  chans.incoming(SID, { kind: 'end', by: 'customer', reason: 'bye' });
  assert.equal(chans.get(SID), undefined);
  assert.equal(events.at(-1), 'closed');
  assert.throws(() => chans.send(SID, T.page_chat), /no end-to-end channel/);
});
