// Screen viewer: the customer's screen, shared by the screen plugin, and
// remote control.
//
// ScreenView (exported; no DOM of its own, so tests drive it with fake
// canvases) runs `screen share MONITOR QUALITY`, follows the stream named
// "screen" of content type application/vnd.lifeline.screen.v1, grants
// credit as frames are consumed (stream credit frames), decodes the
// messages (Layout → canvas size; Update → tiles: solid fill, PNG/JPEG
// through createImageBitmap, zlib tiles through the stream's one
// DecompressionStream (screenzlib.js) and putImageData; Cursor → the
// pointer on an overlay canvas; Status → a line; Sync), counts the frame rate, and sends input (keys as
// X keysyms, pointer moves scaled to the screen, buttons 1/2/3, wheel 4/5)
// as stream input frames. createScreenPanel builds the panel around it.
//
// Sent: RunPlugin screen share|stop, session data (credit, input).
// Pushed: StreamOpened, StreamClosed, PluginOutput, PluginDone,
// ConsentDecided, session data (stream frames).

import { decodeStreamData, encodeCredit, encodeInputFrame, MAX_STREAM_FRAME_BYTES } from './stream.js';
import { decodeMessage, encodeInputs, CONTENT_TYPE, STREAM_NAME } from './screenformat.js';
import { ZlibTiles } from './screenzlib.js';
import { keysymForEvent, pointerButton, wheelButton, scalePoint } from './keysym.js';
import { h, setT, button, field, liveLog, timeEl, clear, errorText } from './dom.js';
import { t, formatBytes, formatNumber } from './i18n.js';
import { displaySafe } from './util.js';
import { decisionText, decidedByText } from './consent.js';

export const PLUGIN = 'screen';
/** Credit granted to the screen stream: four of the largest frames (as the CLI). */
export const WINDOW_BYTES = 4 * MAX_STREAM_FRAME_BYTES;
/** Credit is granted back once this much is owed, or when nothing waits. */
export const REPAY_BYTES = 256 * 1024;
/** Largest picture the viewer takes (as the operator library). */
export const MAX_PICTURE_PIXELS = 2 ** 26;
/** Time the stream may take to open once `share` answered. */
export const OPEN_TIMEOUT_MS = 10_000;
/** Time `stop` waits for the stream's end. */
export const STOP_TIMEOUT_MS = 30_000;
/** Time `sync` waits for the plugin's answer. */
export const SYNC_TIMEOUT_MS = 30_000;
/** Pixels of wheel movement that make one wheel click. */
export const WHEEL_PIXELS_PER_CLICK = 50;

const MIME = { png: 'image/png', jpeg: 'image/jpeg' };

/** Decodes image bytes with the browser's decoder. */
export function defaultDecodeImage(bytes, type) {
  return createImageBitmap(new Blob([bytes], { type }));
}

/**
 * A screen share being viewed. Events (addEventListener):
 * - 'state'   {state}: idle, requesting, sharing, stopping, stopped, failed
 * - 'status'  {level: info|warning|error, text?|key?, args?}
 * - 'layout'  {width, height, monitors}
 * - 'frame'   {type, frames}: after a message was applied
 * - 'control' {on}
 * - 'closed'  {frames, bytes, dropped, reason}
 */
export class ScreenView extends EventTarget {
  /**
   * @param {object} o
   * @param {object} o.link  {send(SessionMessage), sendData(Uint8Array), newId()}
   *   — a SessionContext fits
   * @param {object} o.canvas   the picture (width, height, getContext('2d'))
   * @param {object} [o.overlay] the pointer layer, same size
   * @param {Function} [o.decodeImage] (bytes, mime) → Promise<bitmap>
   * @param {Function} [o.now] milliseconds
   * @param {Function} [o.makeZlib] () → a ZlibTiles, one per stream
   */
  constructor({ link, canvas, overlay = null, decodeImage = defaultDecodeImage, makeZlib = () => new ZlibTiles(), now = () => performance.now(), setTimer = (f, ms) => setTimeout(f, ms), clearTimer = (id) => clearTimeout(id) }) {
    super();
    this.link = link;
    this.canvas = canvas;
    this.overlay = overlay;
    this.decodeImage = decodeImage;
    this.makeZlib = makeZlib;
    // The stream's zlib stream: one per stream (a layout keeps it).
    this.zlib = null;
    this.now = now;
    this.setTimer = setTimer;
    this.clearTimer = clearTimer;
    this.ctx2d = canvas.getContext('2d');
    this.overlay2d = overlay ? overlay.getContext('2d') : null;
    this.resetCounters();
    this.state = 'idle';
    this.stream = null;
    this.shareCall = null;
    this.stopCall = null;
    this.shareAnswered = false;
    this.controlling = false;
    this.settings = { monitor: 'all', quality: 'auto', maxFps: 0 };
    this.width = 0;
    this.height = 0;
    this.monitors = [];
    this.cursor = { x: 0, y: 0, image: null, hotX: 0, hotY: 0 };
    this.pressedKeys = new Map();
    this.pressedButtons = new Set();
    this.pendingMove = null;
    this.moveTimer = null;
    this.wheelAcc = 0;
    this.syncs = new Map();
    this.nextToken = 1;
    this.openTimer = null;
    this.stopTimer = null;
  }

  resetCounters() {
    this.queue = [];
    this.pumping = false;
    this.idleWaiters = [];
    this.owed = 0;
    this.frames = 0;
    this.bytes = 0;
    this.updates = 0;
    this.updateTimes = [];
    this.errors = 0;
  }

  emit(type, detail) {
    const ev = new Event(type);
    ev.detail = detail;
    this.dispatchEvent(ev);
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit('state', { state });
  }

  status(level, key, args) {
    this.emit('status', { level, key, args });
  }

  statusText(level, text) {
    this.emit('status', { level, text });
  }

  /** Updates per second over the last second. */
  get fps() {
    const cutoff = this.now() - 1000;
    while (this.updateTimes.length && this.updateTimes[0] < cutoff) this.updateTimes.shift();
    return this.updateTimes.length;
  }

  get sharing() {
    return this.state === 'sharing';
  }

  // ---- starting and stopping ----

  /** Runs `screen share MONITOR QUALITY`; the customer is asked first. */
  share({ monitor = this.settings.monitor, quality = this.settings.quality } = {}) {
    if (this.state === 'requesting' || this.state === 'sharing' || this.state === 'stopping') return null;
    this.settings.monitor = monitor;
    this.settings.quality = quality;
    this.stream = null;
    this.shareAnswered = false;
    this.resetCounters();
    const callId = this.link.newId();
    this.link.send({ kind: 'run_plugin', call_id: callId, plugin: PLUGIN, command: 'share', args: [String(monitor), String(quality)] });
    this.shareCall = callId;
    this.setState('requesting');
    this.status('info', 'screen.status.asking');
    return callId;
  }

  /** Runs `screen stop`; frames still arriving are dropped (their credit returned). */
  stop() {
    if (this.state !== 'sharing' && this.state !== 'requesting') return null;
    this.setControl(false);
    this.dropQueued();
    const callId = this.link.newId();
    this.stopCall = callId;
    this.setState('stopping');
    this.status('info', 'screen.status.stopping');
    try {
      this.link.send({ kind: 'run_plugin', call_id: callId, plugin: PLUGIN, command: 'stop', args: [] });
    } catch (e) {
      this.finish({ reason: String(e.message || e) });
      throw e;
    }
    this.clearTimer(this.stopTimer);
    this.stopTimer = this.setTimer(() => {
      if (this.state === 'stopping') this.finish({ reason: 'timeout' });
    }, STOP_TIMEOUT_MS);
    return callId;
  }

  /** Forgets the share without asking the plugin (the session ended or the link was lost). */
  reset(reason = '') {
    this.setControl(false);
    this.queue = [];
    this.finish({ reason });
  }

  finish(end) {
    this.clearTimer(this.openTimer);
    this.clearTimer(this.stopTimer);
    this.clearTimer(this.moveTimer);
    this.pendingMove = null;
    this.setControl(false);
    this.stream = null;
    this.zlib?.close();
    this.zlib = null;
    this.shareCall = null;
    this.stopCall = null;
    for (const s of this.syncs.values()) s.reject(new Error('the screen stream closed'));
    this.syncs.clear();
    if (this.state !== 'idle' && this.state !== 'failed') this.setState('stopped');
    this.emit('closed', { frames: this.frames, bytes: this.bytes, dropped: 0, reason: '', ...end });
  }

  dropQueued() {
    for (const body of this.queue) this.owed += body.length;
    this.queue = [];
    this.repay(true);
  }

  // ---- what the session brings ----

  /** One SessionMessage of the session; true when it was the view's. */
  handleSessionMessage(msg) {
    switch (msg.kind) {
      case 'stream_opened':
        if (this.state !== 'requesting' || msg.plugin !== PLUGIN || msg.name !== STREAM_NAME || this.stream !== null) return false;
        if (msg.content_type !== CONTENT_TYPE) {
          this.status('error', 'screen.status.contentType', { found: msg.content_type });
          this.setState('failed');
          return true;
        }
        this.stream = msg.stream;
        this.zlib?.close();
        this.zlib = null;
        this.clearTimer(this.openTimer);
        this.setState('sharing');
        this.grant(WINDOW_BYTES);
        this.status('info', 'screen.status.sharing');
        return true;
      case 'stream_closed':
        if (this.stream === null || msg.stream !== this.stream) return false;
        this.queue = [];
        this.finish({ frames: msg.frames, bytes: msg.bytes, dropped: msg.dropped, reason: msg.reason });
        this.status('info', 'screen.status.closed', { reason: msg.reason, frames: msg.frames, dropped: msg.dropped });
        return true;
      case 'plugin_output':
        if (msg.call_id !== this.shareCall && msg.call_id !== this.stopCall) return false;
        this.statusText('info', msg.text);
        return true;
      case 'plugin_done':
        if (msg.call_id === this.shareCall) {
          this.shareAnswered = true;
          if (!msg.ok) {
            this.status('error', 'screen.status.shareFailed', { text: msg.text });
            this.setState('failed');
            this.shareCall = null;
            return true;
          }
          if (msg.text) this.statusText('info', msg.text);
          if (this.stream === null) {
            this.clearTimer(this.openTimer);
            this.openTimer = this.setTimer(() => {
              if (this.stream === null && this.state === 'requesting') {
                this.status('warning', 'screen.status.noStream', { secs: OPEN_TIMEOUT_MS / 1000 });
                this.setState('failed');
              }
            }, OPEN_TIMEOUT_MS);
          }
          return true;
        }
        if (msg.call_id === this.stopCall) {
          this.stopCall = null;
          if (!msg.ok) this.status('error', 'screen.status.stopFailed', { text: msg.text });
          if (this.stream === null) this.finish({ reason: msg.text });
          return true;
        }
        return false;
      case 'consent_decided':
        if (msg.plugin !== PLUGIN) return false;
        this.status(msg.decision === 'deny' ? 'warning' : 'info', 'screen.status.consent', { action: msg.action, decision: msg.decision, by: msg.decided_by });
        return true;
      case 'end':
        if (this.state !== 'idle') this.reset(msg.reason);
        return false;
      default:
        return false;
    }
  }

  /** Session data of the session (a stream frame); true when it was the view's. */
  handleData(payload) {
    let d;
    try {
      d = decodeStreamData(payload);
    } catch {
      return false;
    }
    if (d.tag !== 'frame' || this.stream === null || d.stream !== this.stream) return false;
    if (this.state !== 'sharing') {
      // Stopping: dropped, but granted back so the plugin sees the stop.
      this.owed += d.body.length;
      this.repay(true);
      return true;
    }
    this.queue.push(d.body);
    this.pump();
    return true;
  }

  /** Resolves once every received frame has been applied (for tests). */
  idle() {
    if (!this.pumping && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async pump() {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length) {
        const body = this.queue.shift();
        this.frames += 1;
        this.bytes += body.length;
        const n = this.frames;
        try {
          const msg = decodeMessage(body);
          await this.apply(msg, n);
          this.emit('frame', { type: msg.type, frames: n });
        } catch (e) {
          this.errors += 1;
          this.status('error', 'screen.status.badFrame', { frame: n, error: String(e.message || e) });
        }
        this.owed += body.length;
        if (this.queue.length === 0 || this.owed >= REPAY_BYTES) this.repay();
      }
    } finally {
      this.pumping = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  grant(bytes) {
    if (this.stream === null || bytes <= 0) return;
    try {
      this.link.sendData(encodeCredit(this.stream, bytes));
    } catch {
      // The connection is gone; the share is reset when it comes back.
    }
  }

  repay(force = false) {
    if (this.owed > 0 && (force || this.state === 'sharing')) {
      const owed = this.owed;
      this.owed = 0;
      this.grant(owed);
    }
  }

  async apply(msg, n) {
    switch (msg.type) {
      case 'layout':
        return this.applyLayout(msg);
      case 'update':
        return this.applyUpdate(msg, n);
      case 'cursor':
        return this.applyCursor(msg);
      case 'sync': {
        const s = this.syncs.get(msg.token);
        if (s) {
          this.syncs.delete(msg.token);
          s.resolve();
        }
        return undefined;
      }
      case 'status':
        this.statusText(msg.level, msg.text);
        return undefined;
      default:
        return undefined;
    }
  }

  applyLayout(msg) {
    const pixels = msg.width * msg.height;
    if (msg.width === 0 || msg.height === 0 || pixels > MAX_PICTURE_PIXELS) {
      throw new Error(`the screen layout of ${msg.width}×${msg.height} pixels cannot be shown`);
    }
    this.width = msg.width;
    this.height = msg.height;
    this.monitors = msg.monitors;
    this.canvas.width = msg.width;
    this.canvas.height = msg.height;
    this.ctx2d.fillStyle = '#000';
    this.ctx2d.fillRect(0, 0, msg.width, msg.height);
    if (this.overlay) {
      this.overlay.width = msg.width;
      this.overlay.height = msg.height;
      this.drawCursor();
    }
    this.emit('layout', { width: msg.width, height: msg.height, monitors: msg.monitors });
  }

  async applyUpdate(msg) {
    if (!this.width) throw new Error('an update came before the screen layout');
    const tiles = msg.tiles;
    for (const [i, t] of tiles.entries()) {
      if (t.x + t.width > this.width || t.y + t.height > this.height) {
        throw new Error(`tile ${i} (${t.x},${t.y} ${t.width}×${t.height}) is outside the ${this.width}×${this.height} picture`);
      }
    }
    // Decode every image at once (the zlib tiles together, in order), then
    // draw in order: later tiles win.
    const zlib = this.inflateTiles(tiles.filter((t) => t.encoding === 'zlib'));
    let z = 0;
    const images = await Promise.all(
      tiles.map((t) => {
        if (t.encoding === 'solid') return null;
        if (t.encoding === 'zlib') {
          const k = z++;
          return zlib.then((r) => r[k]);
        }
        return this.decodeImage(t.data, MIME[t.encoding]).catch((e) => ({ failed: e }));
      }),
    );
    const c = this.ctx2d;
    let bad = 0;
    let firstBad = '';
    tiles.forEach((t, i) => {
      if (t.encoding === 'solid') {
        c.fillStyle = `rgb(${t.rgb[0]}, ${t.rgb[1]}, ${t.rgb[2]})`;
        c.fillRect(t.x, t.y, t.width, t.height);
        return;
      }
      const img = images[i];
      if (!img || img.failed) {
        bad += 1;
        firstBad ||= `tile ${i} (${t.x},${t.y} ${t.width}×${t.height}, ${t.encoding}): ${img?.failed?.message || img?.failed}`;
        return;
      }
      if (img.imageData) {
        c.putImageData(img.imageData, t.x, t.y);
        return;
      }
      c.drawImage(img, 0, 0, t.width, t.height, t.x, t.y, t.width, t.height);
      img.close?.();
    });
    this.updates += 1;
    this.updateTimes.push(this.now());
    if (bad) throw new Error(`${bad} tile image(s) of update ${msg.seq} could not be decoded, first ${firstBad}`);
  }

  /** An update's zlib tiles → per tile {imageData} or {failed}: the next part of the stream's zlib stream. */
  async inflateTiles(tiles) {
    if (!tiles.length) return [];
    if (!this.zlib) this.zlib = this.makeZlib();
    const imgs = tiles.map((t) => this.ctx2d.createImageData(t.width, t.height));
    const r = await this.zlib.update(tiles.map((t, i) => ({ data: t.data, width: t.width, height: t.height, out: imgs[i].data })));
    return r.map((x, i) => (x.failed ? x : { imageData: imgs[i] }));
  }

  async applyCursor(msg) {
    this.cursor.x = msg.x;
    this.cursor.y = msg.y;
    if (msg.shape) {
      let img = null;
      try {
        img = await this.decodeImage(msg.shape.png, 'image/png');
      } catch {
        img = null;
      }
      this.cursor.image?.close?.();
      this.cursor.image = img;
      this.cursor.hotX = msg.shape.hotX;
      this.cursor.hotY = msg.shape.hotY;
    }
    this.drawCursor();
  }

  drawCursor() {
    const o = this.overlay2d;
    if (!o || !this.overlay) return;
    o.clearRect(0, 0, this.overlay.width, this.overlay.height);
    if (this.cursor.image) o.drawImage(this.cursor.image, this.cursor.x - this.cursor.hotX, this.cursor.y - this.cursor.hotY);
  }

  // ---- input ----

  /** Sends inputs in one stream frame; false when not sharing. */
  sendInputs(inputs) {
    if (!inputs.length || this.state !== 'sharing' || this.stream === null) return false;
    try {
      this.link.sendData(encodeInputFrame(this.stream, encodeInputs(inputs)));
      return true;
    } catch (e) {
      this.status('error', 'screen.status.inputFailed', { error: String(e.message || e) });
      return false;
    }
  }

  /** Asks the plugin to send the whole picture again. */
  refresh() {
    return this.sendInputs([{ type: 'refresh' }]);
  }

  /** Changes quality, monitor and frame-rate cap while sharing. */
  applySettings({ quality = this.settings.quality, monitor = this.settings.monitor, maxFps = this.settings.maxFps } = {}) {
    this.settings = { quality, monitor, maxFps };
    const m = monitor === 'all' ? 'all' : Number(monitor);
    return this.sendInputs([{ type: 'settings', quality, monitor: m, maxFps: Number(maxFps) || 0 }]);
  }

  /** Sends a sync marker; resolves when the picture shows at least what the screen did then. */
  sync() {
    const token = this.nextToken;
    this.nextToken = (this.nextToken % 0xffffffff) + 1;
    return new Promise((resolve, reject) => {
      if (!this.sendInputs([{ type: 'sync', token }])) {
        reject(new Error('not sharing'));
        return;
      }
      const timer = this.setTimer(() => {
        if (this.syncs.delete(token)) reject(new Error('no answer to the sync'));
      }, SYNC_TIMEOUT_MS);
      this.syncs.set(token, {
        resolve: () => {
          this.clearTimer(timer);
          resolve();
        },
        reject: (e) => {
          this.clearTimer(timer);
          reject(e);
        },
      });
    });
  }

  /** Control on (asks for it: the customer decides) or off (nothing more is sent). */
  setControl(on) {
    if (on) {
      if (this.state !== 'sharing') return false;
      if (!this.controlling) {
        this.sendInputs([{ type: 'request_control' }]);
        this.controlling = true;
        this.status('info', 'screen.status.controlAsked');
        this.emit('control', { on: true });
      }
      return true;
    }
    if (this.controlling) {
      this.releaseAll();
      this.controlling = false;
      this.emit('control', { on: false });
    }
    return false;
  }

  /** A key went down or up; true when it was sent (the page should not act on it). */
  key(ev, pressed) {
    if (!this.controlling) return false;
    const id = ev.code || ev.key;
    let keysym;
    if (pressed) {
      keysym = keysymForEvent(ev);
      if (keysym === null) return false;
      this.pressedKeys.set(id, keysym);
    } else {
      keysym = this.pressedKeys.get(id) ?? keysymForEvent(ev);
      this.pressedKeys.delete(id);
      if (keysym === null || keysym === undefined) return false;
    }
    this.flushMove();
    return this.sendInputs([{ type: 'key', keysym, pressed }]);
  }

  /** The pointer moved over the displayed canvas (coalesced, ~60 per second). */
  pointerMove(clientX, clientY, rect) {
    if (!this.controlling) return false;
    const p = scalePoint(clientX, clientY, rect, this.width, this.height);
    if (!p) return false;
    this.pendingMove = p;
    if (this.moveTimer === null) {
      this.moveTimer = this.setTimer(() => {
        this.moveTimer = null;
        this.flushMove();
      }, 16);
    }
    return true;
  }

  flushMove() {
    if (this.moveTimer !== null) {
      this.clearTimer(this.moveTimer);
      this.moveTimer = null;
    }
    const p = this.pendingMove;
    this.pendingMove = null;
    if (p) this.sendInputs([{ type: 'pointer_move', x: p.x, y: p.y }]);
  }

  /** A mouse button (DOM numbering) went down or up at a point. */
  pointerButton(domButton, pressed, clientX, clientY, rect) {
    if (!this.controlling) return false;
    const b = pointerButton(domButton);
    if (b === null) return false;
    this.pendingMove = null;
    const inputs = [];
    const p = rect ? scalePoint(clientX, clientY, rect, this.width, this.height) : null;
    if (p) inputs.push({ type: 'pointer_move', x: p.x, y: p.y });
    inputs.push({ type: 'button', button: b, pressed });
    if (pressed) this.pressedButtons.add(b);
    else this.pressedButtons.delete(b);
    return this.sendInputs(inputs);
  }

  /** A wheel turn: clicks of button 4 (up) or 5 (down), pressed and released. */
  wheel(deltaY, deltaMode = 0, clientX, clientY, rect) {
    if (!this.controlling) return false;
    const units = deltaMode === 0 ? deltaY / WHEEL_PIXELS_PER_CLICK : deltaMode === 1 ? deltaY / 3 : deltaY;
    this.wheelAcc += units;
    let clicks = Math.trunc(this.wheelAcc);
    if (clicks === 0 && Math.abs(deltaY) > 0 && Math.abs(this.wheelAcc) >= 0.999) clicks = Math.sign(this.wheelAcc);
    this.wheelAcc -= clicks;
    clicks = Math.max(-10, Math.min(10, clicks));
    if (clicks === 0) return true;
    const b = wheelButton(clicks);
    const inputs = [];
    const p = rect ? scalePoint(clientX, clientY, rect, this.width, this.height) : null;
    if (p) inputs.push({ type: 'pointer_move', x: p.x, y: p.y });
    for (let i = 0; i < Math.abs(clicks); i++) {
      inputs.push({ type: 'button', button: b, pressed: true }, { type: 'button', button: b, pressed: false });
    }
    this.pendingMove = null;
    return this.sendInputs(inputs);
  }

  /** Releases every key and button held down (focus left, control off). */
  releaseAll() {
    const inputs = [];
    for (const keysym of this.pressedKeys.values()) inputs.push({ type: 'key', keysym, pressed: false });
    for (const b of this.pressedButtons) inputs.push({ type: 'button', button: b, pressed: false });
    this.pressedKeys.clear();
    this.pressedButtons.clear();
    this.wheelAcc = 0;
    if (inputs.length) this.sendInputs(inputs);
  }

  dispose() {
    this.clearTimer(this.openTimer);
    this.clearTimer(this.stopTimer);
    this.clearTimer(this.moveTimer);
    this.cursor.image?.close?.();
  }
}

// ---------------------------------------------------------------------------
// The panel around the view (DOM).

/** The key combination that gives the keyboard back to the console while in control. */
export function isReleaseCombo(ev) {
  return ev.ctrlKey && ev.shiftKey && ev.key === 'F12';
}

const STATE_KEYS = {
  idle: 'screen.state.idle',
  requesting: 'screen.state.requesting',
  sharing: 'screen.state.sharing',
  stopping: 'screen.state.stopping',
  stopped: 'screen.state.stopped',
  failed: 'screen.state.failed',
};

const LEVEL_KEYS = { info: 'screen.level.info', warning: 'screen.level.warning', error: 'screen.level.error' };

/** The screen panel of a session page; `view` is its ScreenView. */
export function createScreenPanel(ctx) {

  const canvas = h('canvas', { class: 'screen-canvas', testid: 'screen-canvas', width: 640, height: 360, tattrs: { 'aria-label': 'screen.canvasLabel' }, role: 'img' });
  const overlay = h('canvas', { class: 'screen-overlay', testid: 'screen-cursor', width: 640, height: 360, 'aria-hidden': 'true' });
  const helpId = 'screen-help';
  const stage = h('div', { class: 'screen-stage', testid: 'screen-stage', tabIndex: -1, 'aria-describedby': helpId, tattrs: { 'aria-label': 'screen.stageLabel' } }, canvas, overlay);
  const view = new ScreenView({ link: ctx, canvas, overlay });

  const monitor = h('select', { testid: 'screen-monitor' });
  const quality = h('select', { testid: 'screen-quality' }, h('option', { value: 'auto', t: 'screen.quality.auto' }), h('option', { value: 'lossless', t: 'screen.quality.lossless' }));
  const maxFps = h('select', { testid: 'screen-max-fps' }, h('option', { value: '0', t: 'screen.fps.keep' }), ...[5, 10, 15, 20, 30].map((n) => h('option', { value: String(n), t: 'screen.fps.n', targs: { n } })));
  const shareBtn = button('screen.share', () => share(), { class: 'primary', testid: 'screen-share' });
  const stopBtn = button('screen.stop', () => stop(), { class: 'danger', testid: 'screen-stop', disabled: true });
  const controlBtn = h('button', { type: 'button', class: 'toggle', 'aria-pressed': 'false', t: 'screen.control', testid: 'screen-control', disabled: true, on: { click: () => toggleControl() } });
  const refreshBtn = button('screen.refresh', () => view.refresh(), { class: 'secondary', testid: 'screen-refresh', disabled: true });
  const fitBtn = h('button', { type: 'button', class: 'toggle', 'aria-pressed': 'true', t: 'screen.fit', testid: 'screen-fit', on: { click: () => toggleFit() } });
  const fullBtn = button('screen.fullscreen', () => stage.requestFullscreen?.().catch(() => {}), { class: 'secondary', testid: 'screen-fullscreen', disabled: true });
  const stateEl = h('span', { class: 'screen-state badge', testid: 'screen-state', t: STATE_KEYS.idle });
  const fpsEl = h('span', { class: 'screen-fps mono', testid: 'screen-fps', 'aria-live': 'off' });
  const sizeEl = h('span', { class: 'screen-size mono muted', testid: 'screen-size' });
  const statusEl = h('p', { class: 'status-line', role: 'status', 'aria-live': 'polite', testid: 'screen-status' });
  const log = liveLog({ label: 'screen.logLabel', testid: 'screen-log', className: 'screen-log', max: 200 });
  let knownMonitors = [];
  let lastBytes = 0;
  let lastTick = performance.now();

  function fillMonitors() {
    const was = monitor.value || 'all';
    clear(monitor);
    monitor.appendChild(h('option', { value: 'all', t: 'screen.monitor.all' }));
    knownMonitors.forEach((m, i) =>
      monitor.appendChild(h('option', { value: String(i), t: m.primary ? 'screen.monitor.primary' : 'screen.monitor.one', targs: { index: i, name: displaySafe(m.name), width: m.width, height: m.height } })),
    );
    monitor.value = [...monitor.options].some((o) => o.value === was) ? was : 'all';
  }
  fillMonitors();

  function share() {
    try {
      view.share({ monitor: monitor.value, quality: quality.value });
      if (maxFps.value !== '0') view.settings.maxFps = Number(maxFps.value);
    } catch (e) {
      showStatus('error', errorText(e));
    }
  }

  function stop() {
    try {
      view.stop();
    } catch (e) {
      showStatus('error', errorText(e));
    }
  }

  function showStatus(level, text) {
    statusEl.className = `status-line ${level === 'error' ? 'error' : level === 'warning' ? 'warning' : 'info'}`;
    statusEl.textContent = text;
    log.add(h('li', { class: ['log-entry', `level-${level}`] }, timeEl(new Date().toISOString(), 'time', { class: 'log-time' }), ' ', h('span', { class: 'level', t: LEVEL_KEYS[level] || LEVEL_KEYS.info }), ' ', h('span', { text })));
  }

  function toggleControl() {
    const on = controlBtn.getAttribute('aria-pressed') !== 'true';
    if (on) {
      if (view.setControl(true)) stage.focus();
    } else {
      view.setControl(false);
    }
  }

  function toggleFit() {
    const on = fitBtn.getAttribute('aria-pressed') !== 'true';
    fitBtn.setAttribute('aria-pressed', on ? 'true' : 'false');
    stage.classList.toggle('actual-size', !on);
  }

  view.addEventListener('state', (ev) => {
    const s = ev.detail.state;
    setT(stateEl, STATE_KEYS[s]);
    stateEl.dataset.state = s;
    const active = s === 'sharing';
    shareBtn.disabled = s === 'requesting' || s === 'sharing' || s === 'stopping';
    stopBtn.disabled = !(s === 'sharing' || s === 'requesting');
    controlBtn.disabled = !active;
    refreshBtn.disabled = !active;
    fullBtn.disabled = !active;
    stage.classList.toggle('live', active);
    if (!active) fpsEl.textContent = '';
  });
  view.addEventListener('status', (ev) => {
    const d = ev.detail;
    let text;
    if (d.key) {
      const args = { ...(d.args || {}) };
      if (d.key === 'screen.status.consent') {
        args.decision = decisionText(args.decision);
        args.by = decidedByText(args.by);
      }
      // Arguments come from the agent (reasons, plugin texts): made safe with the rest.
      text = displaySafe(t(d.key, args));
    } else {
      text = displaySafe(d.text);
    }
    showStatus(d.level, text);
  });
  view.addEventListener('layout', (ev) => {
    const { width, height, monitors } = ev.detail;
    sizeEl.textContent = `${width}×${height}`;
    if (monitors.length > 1 || knownMonitors.length === 0 || monitor.value === 'all') {
      knownMonitors = monitors;
      fillMonitors();
    }
  });
  view.addEventListener('control', (ev) => {
    controlBtn.setAttribute('aria-pressed', ev.detail.on ? 'true' : 'false');
    stage.classList.toggle('controlling', ev.detail.on);
    stage.tabIndex = ev.detail.on ? 0 : -1;
    stage.setAttribute('role', ev.detail.on ? 'application' : 'group');
  });

  const tick = setInterval(() => {
    if (!view.sharing) return;
    const now = performance.now();
    const rate = ((view.bytes - lastBytes) * 1000) / Math.max(1, now - lastTick);
    lastBytes = view.bytes;
    lastTick = now;
    fpsEl.textContent = t('screen.rate', { fps: formatNumber(view.fps), rate: formatBytes(rate), frames: formatNumber(view.frames) });
  }, 500);

  // Settings take effect at once while sharing.
  for (const sel of [monitor, quality, maxFps]) {
    sel.addEventListener('change', () => {
      if (view.sharing) view.applySettings({ monitor: monitor.value, quality: quality.value, maxFps: Number(maxFps.value) });
    });
  }

  // ---- input from the stage ----
  stage.addEventListener('keydown', (ev) => {
    if (!view.controlling) return;
    if (isReleaseCombo(ev)) {
      ev.preventDefault();
      view.releaseAll();
      controlBtn.focus();
      return;
    }
    if (view.key(ev, true)) ev.preventDefault();
  });
  stage.addEventListener('keyup', (ev) => {
    if (view.controlling && view.key(ev, false)) ev.preventDefault();
  });
  stage.addEventListener('blur', () => view.releaseAll());
  stage.addEventListener('pointermove', (ev) => {
    if (view.controlling) view.pointerMove(ev.clientX, ev.clientY, canvas.getBoundingClientRect());
  });
  stage.addEventListener('pointerdown', (ev) => {
    if (!view.controlling) return;
    stage.focus();
    stage.setPointerCapture?.(ev.pointerId);
    if (view.pointerButton(ev.button, true, ev.clientX, ev.clientY, canvas.getBoundingClientRect())) ev.preventDefault();
  });
  stage.addEventListener('pointerup', (ev) => {
    if (!view.controlling) return;
    if (view.pointerButton(ev.button, false, ev.clientX, ev.clientY, canvas.getBoundingClientRect())) ev.preventDefault();
  });
  stage.addEventListener(
    'wheel',
    (ev) => {
      if (!view.controlling) return;
      ev.preventDefault();
      view.wheel(ev.deltaY, ev.deltaMode, ev.clientX, ev.clientY, canvas.getBoundingClientRect());
    },
    { passive: false },
  );
  stage.addEventListener('contextmenu', (ev) => {
    if (view.controlling) ev.preventDefault();
  });

  // ---- the session's traffic ----
  let lost = false;
  const offs = [
    ctx.on('data', (payload) => view.handleData(payload)),
    ...['stream_opened', 'stream_closed', 'plugin_output', 'plugin_done', 'consent_decided', 'end'].map((k) => ctx.on(k, (msg) => view.handleSessionMessage(msg))),
    ctx.on('reconnected', () => {
      lost = view.state === 'sharing' || view.state === 'requesting';
    }),
    ctx.on('attached', () => {
      if (!lost) return;
      lost = false;
      // The old connection's stream cannot be followed any more: stop it,
      // so that sharing can start again.
      view.reset('connection lost');
      try {
        ctx.send({ kind: 'run_plugin', call_id: ctx.newId(), plugin: PLUGIN, command: 'stop', args: [] });
      } catch {
        // nothing to stop then
      }
      showStatus('warning', t('screen.status.lost'));
    }),
  ];

  const el = h(
    'section',
    { class: 'panel screen-panel', 'aria-labelledby': 'screen-title', testid: 'screen-panel' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'screen-title', t: 'screen.title' }), stateEl, sizeEl, fpsEl),
    h('p', { class: 'hint', t: 'screen.intro' }),
    h(
      'div',
      { class: 'toolbar' },
      shareBtn,
      stopBtn,
      field({ label: 'screen.monitor.label', input: monitor }),
      field({ label: 'screen.quality.label', input: quality }),
      field({ label: 'screen.fps.label', input: maxFps }),
    ),
    h('div', { class: 'toolbar' }, controlBtn, refreshBtn, fitBtn, fullBtn),
    statusEl,
    stage,
    h('p', { id: helpId, class: 'hint', t: 'screen.help' }),
    h('details', {}, h('summary', { t: 'screen.logTitle' }), log.el),
  );

  return {
    el,
    view,
    dispose() {
      clearInterval(tick);
      offs.forEach((off) => off());
      if (view.state === 'sharing' || view.state === 'requesting') {
        try {
          view.stop();
        } catch {
          // leaving anyway
        }
      }
      view.dispose();
    },
  };
}
