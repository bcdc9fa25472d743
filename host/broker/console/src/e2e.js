// End-to-end encryption between this page and the customer's agent
// (docs/security.md, "End-to-end encryption"; docs/console-protocol.md).
//
// The handshake and the sealing run in WebAssembly: host/e2e-wasm, the
// operator endpoint of lifeline_protocol::e2e (the code the CLI's operator
// client runs), served as assets/wasm/lifeline-e2e.wasm and fetched with
// the integrity the page pins (<meta name="lifeline-integrity">). Keys live
// in the module's memory only; the randomness comes from this browser.
//
// Per attached session, one channel: the page sends e2e_hello, the agent's
// e2e_reply makes it ready (the page sends the confirm first, then every
// content message sealed), every sealed message for this page's endpoint is
// opened, content that arrives in the clear is refused, and data frames
// (the screen) are sealed and opened too. A new channel starts when the
// agent comes back (after a restart: the state leaves rebooting or
// reconnecting) or closes the channel (e2e_closed).

import { pinnedIntegrity } from './integrity.js';

/** Where the module is, under assets/. */
export const WASM_PATH = 'wasm/lifeline-e2e.wasm';
/** First byte of a sealed data frame (lifeline_protocol::stream::TAG_SEALED). */
export const TAG_SEALED = 0xe5;
/** Bytes before the sealed bytes of a data frame: the tag and the endpoint (u64 BE). */
export const DATA_HEADER_BYTES = 9;
/** The envelope's kinds; those of another endpoint are not this page's. */
export const ENVELOPE_KINDS = Object.freeze(['e2e_hello', 'e2e_reply', 'sealed', 'e2e_closed']);
/**
 * Largest endpoint number this page picks: the JSON numbers stay exact in
 * JavaScript (the agent accepts any u64).
 */
export const MAX_ENDPOINT = Number.MAX_SAFE_INTEGER;
/** Most messages and data frames held while a channel is being set up. */
export const MAX_QUEUED = 256;
/** Wait before a closed channel starts again (a relay closing it in a loop costs one hello a second). */
export const RESTART_DELAY_MS = 1000;
/** Session states in which the customer's agent is away (its channels went with it). */
const AWAY = new Set(['rebooting', 'reconnecting']);

const STATUS_OK = 0;
const STATUS_NONE = -2;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** Why the module or a channel refused something. */
export class E2eError extends Error {
  constructor(message) {
    super(message);
    this.name = 'E2eError';
  }
}

/**
 * Fetches the module with the integrity the page pins (the browser refuses
 * other bytes) and instantiates it. In a page without the pin (not served
 * by a Lifeline broker) it refuses to run.
 */
export async function loadE2e({
  url = new URL(`../${WASM_PATH}`, import.meta.url),
  integrity = pinnedIntegrity(WASM_PATH),
  fetchImpl = (...a) => globalThis.fetch(...a),
} = {}) {
  if (!integrity) throw new E2eError(`the page pins no integrity for ${WASM_PATH}`);
  let res;
  try {
    res = await fetchImpl(url, { integrity, credentials: 'same-origin' });
  } catch (e) {
    // A mismatch with the pinned integrity is a network error too.
    throw new E2eError(`cannot load ${WASM_PATH}: ${e?.message || e}`);
  }
  if (!res.ok) throw new E2eError(`cannot load ${WASM_PATH}: HTTP ${res.status}`);
  return E2eModule.instantiate(await res.arrayBuffer());
}

/** The module's exports (host/e2e-wasm/src/abi.rs) as JavaScript calls. */
export class E2eModule {
  static async instantiate(bytes) {
    const { instance } = await WebAssembly.instantiate(bytes, {});
    return new E2eModule(instance.exports);
  }

  constructor(exports) {
    this.x = exports;
  }

  /** Calls `f(ptr, len)` with `bytes` in the module's memory (zeroed and freed after). */
  withInput(bytes, f) {
    const n = bytes.length;
    const p = this.x.e2e_alloc(n) >>> 0;
    new Uint8Array(this.x.memory.buffer, p, n).set(bytes);
    try {
      return f(p, n);
    } finally {
      this.x.e2e_free(p, n);
    }
  }

  /** A copy of the last call's output. */
  output() {
    const p = this.x.e2e_output_ptr() >>> 0;
    const n = this.x.e2e_output_len() >>> 0;
    return new Uint8Array(this.x.memory.buffer, p, n).slice();
  }

  outputText() {
    return fromUtf8.decode(this.output());
  }

  /** Checks a status: the output, or an E2eError with the module's words. */
  result(status) {
    if (status === STATUS_OK) return this.output();
    if (status === STATUS_NONE) return null;
    throw new E2eError(this.outputText());
  }

  /** A channel for `sessionId` as `endpoint`, keyed by 32 random bytes: `{handle, hello}`. */
  start(sessionId, endpoint, seed) {
    if (seed.length !== 32) throw new E2eError(`the seed is ${seed.length} bytes where 32 belong`);
    return this.withInput(utf8.encode(String(sessionId)), (sp, sn) =>
      this.withInput(seed, (seedp) => {
        const handle = this.x.e2e_start(sp, sn, BigInt(endpoint), seedp);
        if (handle <= 0) throw new E2eError(this.outputText());
        return { handle, hello: JSON.parse(this.outputText()) };
      }),
    );
  }

  close(handle) {
    this.x.e2e_close(handle);
  }

  /** One session message from the broker: `{result: 'deliver'|'ready'|'ignore'|'refused', …}`. */
  incoming(handle, msg) {
    const json = utf8.encode(JSON.stringify(msg));
    return this.withInput(json, (p, n) => JSON.parse(fromUtf8.decode(this.result(this.x.e2e_incoming(handle, p, n)))));
  }

  /** A content message sealed for the agent: the `sealed` session message. */
  seal(handle, msg) {
    const json = utf8.encode(JSON.stringify(msg));
    return this.withInput(json, (p, n) => JSON.parse(fromUtf8.decode(this.result(this.x.e2e_seal(handle, p, n)))));
  }

  /** A data frame's payload sealed for the agent. */
  sealData(handle, payload) {
    return this.withInput(payload, (p, n) => this.result(this.x.e2e_seal_data(handle, p, n)));
  }

  /** A data frame's payload from the agent opened; null when another endpoint's. */
  openData(handle, payload) {
    return this.withInput(payload, (p, n) => this.result(this.x.e2e_open_data(handle, p, n)));
  }

  /** The channel's security code ("123 456"), or null before it is ready. */
  sas(handle) {
    const out = this.result(this.x.e2e_sas(handle));
    return out ? fromUtf8.decode(out) : null;
  }
}

function cryptoRandomBytes(n) {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

/** A random endpoint number in [1, MAX_ENDPOINT]. */
export function randomEndpoint(randomBytes = cryptoRandomBytes) {
  const b = randomBytes(8);
  const hi = ((b[0] << 16) | (b[1] << 8) | b[2]) & 0x1fffff;
  const lo = ((b[3] << 24) | (b[4] << 16) | (b[5] << 8) | b[6]) >>> 0;
  return Math.max(1, Math.min(MAX_ENDPOINT, hi * 2 ** 32 + lo));
}

/**
 * The page's channels, one per attached session. `transport`:
 * - `sendSession(sessionId, msg)`: puts a session message on the socket
 *   (the hello, the confirm, sealed messages: never content in the clear);
 * - `sendData(sessionId, payload)`: a data frame on the socket;
 * - `deliver(sessionId, msg)`, `deliverData(sessionId, payload)`: hands
 *   what was opened (or the broker's own, in the clear) to the page;
 * - `event(detail)`: `{sessionId, state: 'securing'|'ready'|'refused'|'closed', sas?, reason?, again?}`.
 */
export class E2eChannels {
  constructor(module, transport, { randomBytes = cryptoRandomBytes, setTimer = (f, ms) => setTimeout(f, ms), clearTimer = (t) => clearTimeout(t) } = {}) {
    this.module = module;
    this.transport = transport;
    this.randomBytes = randomBytes;
    this.setTimer = setTimer;
    this.clearTimer = clearTimer;
    this.channels = new Map();
    // One endpoint per session for the page's lifetime: a new hello from it
    // replaces the agent's old channel instead of adding one.
    this.endpoints = new Map();
  }

  /** The channel of `sessionId`: `{endpoint, ready, sas}`, or undefined. */
  get(sessionId) {
    const ch = this.channels.get(sessionId);
    return ch && { endpoint: ch.endpoint, ready: ch.ready, sas: ch.sas };
  }

  /**
   * Starts the channel of an attached session (replacing one there was),
   * whose state is `state`: resolves when it is ready (and at once when the
   * agent is away: it starts when the agent is back). Sends the hello.
   */
  start(sessionId, state) {
    let ch = this.channels.get(sessionId);
    if (ch) {
      this.dropHandle(ch);
    } else {
      let endpoint = this.endpoints.get(sessionId);
      if (!endpoint) {
        endpoint = randomEndpoint(this.randomBytes);
        this.endpoints.set(sessionId, endpoint);
      }
      ch = { sessionId, endpoint, handle: 0, ready: false, sas: null, queue: [], waiters: [], lastState: null, restartTimer: null, dataRefused: false, codes: 0 };
      this.channels.set(sessionId, ch);
    }
    ch.lastState = state ?? null;
    const ready = new Promise((resolve, reject) => ch.waiters.push({ resolve, reject }));
    // Nobody may wait for it (the agent is away): no unhandled rejection.
    ready.catch(() => {});
    this.begin(ch);
    if (AWAY.has(state)) return Promise.resolve();
    return ready;
  }

  /** A fresh handshake on `ch`: sends the hello. */
  begin(ch) {
    this.clearTimer(ch.restartTimer);
    ch.restartTimer = null;
    this.dropHandle(ch);
    const { handle, hello } = this.module.start(ch.sessionId, ch.endpoint, this.randomBytes(32));
    ch.handle = handle;
    ch.dataRefused = false;
    this.transport.event({ sessionId: ch.sessionId, state: 'securing' });
    this.transport.sendSession(ch.sessionId, hello);
  }

  dropHandle(ch) {
    if (ch.handle) this.module.close(ch.handle);
    ch.handle = 0;
    ch.ready = false;
    ch.sas = null;
  }

  /** Forgets the channel of `sessionId` (detached, or the session ended); queued messages are dropped. */
  close(sessionId, reason = 'closed') {
    const ch = this.channels.get(sessionId);
    if (!ch) return;
    this.clearTimer(ch.restartTimer);
    this.dropHandle(ch);
    this.channels.delete(sessionId);
    for (const w of ch.waiters) w.reject(new E2eError(reason));
    ch.waiters = [];
    ch.queue = [];
    this.transport.event({ sessionId, state: 'closed' });
  }

  /** Forgets every channel (the socket is gone; the page attaches again). */
  closeAll(reason) {
    for (const id of [...this.channels.keys()]) this.close(id, reason);
  }

  /** One session message from the broker for `sessionId`. */
  incoming(sessionId, msg) {
    const ch = this.channels.get(sessionId);
    const kind = msg?.kind;
    // The envelope of another endpoint (another console tab, a CLI
    // client) is not ours; this page never receives a hello.
    if (ENVELOPE_KINDS.includes(kind) && (kind === 'e2e_hello' || !ch || msg.endpoint !== ch.endpoint)) return;
    const r = this.module.incoming(ch ? ch.handle : 0, msg);
    switch (r.result) {
      case 'deliver':
        this.transport.deliver(sessionId, r.msg);
        if (ch) this.follow(ch, r.msg);
        break;
      case 'ready':
        this.ready(ch, r.confirm, r.sas);
        break;
      case 'refused':
        this.transport.event({ sessionId, state: 'refused', reason: r.reason });
        if (ch && r.closed) this.restartLater(ch);
        break;
      default:
        break;
    }
  }

  ready(ch, confirm, sas) {
    // The confirm goes first: the agent opens nothing before it.
    this.transport.sendSession(ch.sessionId, confirm);
    ch.ready = true;
    ch.sas = sas;
    ch.codes += 1;
    this.transport.event({ sessionId: ch.sessionId, state: 'ready', sas, again: ch.codes > 1 });
    const queue = ch.queue;
    ch.queue = [];
    for (const item of queue) {
      try {
        if (item.msg) this.sendNow(ch, item.msg);
        else this.sendDataNow(ch, item.payload);
      } catch (e) {
        this.transport.event({ sessionId: ch.sessionId, state: 'refused', reason: String(e.message || e) });
      }
    }
    const waiters = ch.waiters;
    ch.waiters = [];
    for (const w of waiters) w.resolve();
  }

  /** The session's lifecycle as the broker tells it: a new channel when the agent is back. */
  follow(ch, msg) {
    if (msg.kind === 'end' || (msg.kind === 'state' && msg.state === 'ended')) {
      this.close(ch.sessionId, 'the session ended');
      return;
    }
    if (msg.kind !== 'state') return;
    const wasAway = AWAY.has(ch.lastState);
    ch.lastState = msg.state;
    if (AWAY.has(msg.state)) {
      // The agent's channels went with it: hold content until a new one.
      ch.ready = false;
    } else if (wasAway) {
      this.begin(ch);
    }
  }

  restartLater(ch) {
    ch.ready = false;
    if (ch.restartTimer) return;
    ch.restartTimer = this.setTimer(() => {
      ch.restartTimer = null;
      if (this.channels.get(ch.sessionId) !== ch) return;
      try {
        this.begin(ch);
      } catch (e) {
        this.transport.event({ sessionId: ch.sessionId, state: 'refused', reason: String(e.message || e) });
      }
    }, RESTART_DELAY_MS);
  }

  /** One data frame's payload from the broker for `sessionId`. */
  incomingData(sessionId, payload) {
    const ch = this.channels.get(sessionId);
    if (!ch) return;
    if (payload.length < DATA_HEADER_BYTES || payload[0] !== TAG_SEALED) {
      this.refuseData(ch, 'a data frame arrived unencrypted; it was dropped');
      return;
    }
    const endpoint = new DataView(payload.buffer, payload.byteOffset + 1, 8).getBigUint64(0, false);
    if (endpoint !== BigInt(ch.endpoint) || !ch.ready) return;
    try {
      const frame = this.module.openData(ch.handle, payload);
      if (frame) this.transport.deliverData(sessionId, frame);
    } catch (e) {
      this.refuseData(ch, String(e.message || e));
    }
  }

  /** Says once per channel that data frames are refused (a screen sends many). */
  refuseData(ch, reason) {
    if (ch.dataRefused) return;
    ch.dataRefused = true;
    this.transport.event({ sessionId: ch.sessionId, state: 'refused', reason });
  }

  /** Sends a content message sealed (held until the channel is ready). */
  send(sessionId, msg) {
    const ch = this.need(sessionId);
    if (!ch.ready) return this.hold(ch, { msg });
    this.sendNow(ch, msg);
  }

  /** Sends a data frame's payload sealed (held until the channel is ready). */
  sendData(sessionId, payload) {
    const ch = this.need(sessionId);
    if (!ch.ready) return this.hold(ch, { payload: Uint8Array.from(payload) });
    this.sendDataNow(ch, payload);
  }

  need(sessionId) {
    const ch = this.channels.get(sessionId);
    if (!ch) throw new E2eError('there is no end-to-end channel with this session: connect to it first');
    return ch;
  }

  hold(ch, item) {
    if (ch.queue.length >= MAX_QUEUED) {
      throw new E2eError(`${MAX_QUEUED} messages already wait for the end-to-end channel`);
    }
    ch.queue.push(item);
  }

  sendNow(ch, msg) {
    this.transport.sendSession(ch.sessionId, this.module.seal(ch.handle, msg));
  }

  sendDataNow(ch, payload) {
    this.transport.sendData(ch.sessionId, this.module.sealData(ch.handle, payload));
  }
}
