// The screen stream's wire format (sdk/screen-format, content type
// application/vnd.lifeline.screen.v1), in JavaScript: decoding what the
// screen plugin sends, encoding what the operator sends back. Integers are
// little-endian. Pure functions: no DOM, no network. Decoding never throws
// anything but ScreenDecodeError, which names the message, the field and
// the byte offset exactly as the Rust codec does.

export const CONTENT_TYPE = 'application/vnd.lifeline.screen.v1';
export const STREAM_NAME = 'screen';
export const TILE = 64;
export const MAX_MONITORS = 16;
export const MAX_TILES_PER_UPDATE = 4096;
export const MAX_STATUS_BYTES = 1024;
/** Longest clipboard text either way (`MAX_CLIPBOARD_BYTES`). */
export const MAX_CLIPBOARD_BYTES = 256 * 1024;

const LAYOUT = 1;
const UPDATE = 2;
const CURSOR = 3;
const SYNC = 4;
const STATUS = 5;
const CLIPBOARD = 6;

export const INPUT_TAGS = Object.freeze({
  pointer_move: 0x10,
  button: 0x11,
  key: 0x12,
  refresh: 0x13,
  sync: 0x14,
  settings: 0x15,
  request_control: 0x16,
  clipboard: 0x17,
  request_clipboard: 0x18,
});

export const LEVELS = Object.freeze(['info', 'warning', 'error']);
export const QUALITIES = Object.freeze(['auto', 'lossless']);
/** Wire value of "the whole display" in a Settings input. */
export const MONITOR_ALL = 255;

export class ScreenDecodeError extends Error {
  constructor(what, field, offset, problem) {
    super(`screen stream ${what} message, ${field} at byte ${offset}: ${problem}`);
    this.name = 'ScreenDecodeError';
    this.what = what;
    this.field = field;
    this.offset = offset;
    this.problem = problem;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A cursor over one frame that names what it was reading when short. */
class Reader {
  constructor(bytes, what) {
    this.buf = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
    this.what = what;
  }
  err(field, problem) {
    return new ScreenDecodeError(this.what, field, this.pos, problem);
  }
  need(n, field) {
    if (this.buf.length - this.pos < n) throw this.err(field, 'the frame ends early');
  }
  bytes(n, field) {
    this.need(n, field);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  u8(field) {
    this.need(1, field);
    return this.buf[this.pos++];
  }
  u16(field) {
    this.need(2, field);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(field) {
    this.need(4, field);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i32(field) {
    this.need(4, field);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(field) {
    this.need(8, field);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  bool(field) {
    const v = this.u8(field);
    if (v === 0) return false;
    if (v === 1) return true;
    this.pos -= 1;
    throw this.err(field, 'is neither 0 nor 1');
  }
  text(len, field) {
    const start = this.pos;
    const b = this.bytes(len, field);
    try {
      return utf8.decode(b);
    } catch {
      this.pos = start;
      throw this.err(field, 'is not UTF-8');
    }
  }
  done() {
    if (this.pos !== this.buf.length) throw this.err('end', 'bytes follow the message');
  }
}

function asBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError('expected bytes (Uint8Array or ArrayBuffer)');
}

/**
 * Decodes one frame from the plugin into one of:
 * - `{type: 'layout', width, height, monitors: [{name, x, y, width, height, primary}]}`
 * - `{type: 'update', seq, capturedUs, tiles: [{x, y, width, height, encoding:
 *   'solid', rgb: [r, g, b]} | {…, encoding: 'png'|'jpeg'|'zlib', data: Uint8Array}]}`
 * - `{type: 'cursor', x, y, shape: null | {width, height, hotX, hotY, png}}`
 * - `{type: 'sync', token}`
 * - `{type: 'status', level: 'info'|'warning'|'error', text}`
 * Image bytes are views into `frame`.
 */
export function decodeMessage(frame) {
  const r = new Reader(asBytes(frame), 'screen');
  const tag = r.u8('tag');
  let msg;
  switch (tag) {
    case LAYOUT: {
      r.what = 'layout';
      const width = r.u32('width');
      const height = r.u32('height');
      const n = r.u8('monitor count');
      if (n > MAX_MONITORS) {
        r.pos -= 1;
        throw r.err('monitor count', 'is more than MAX_MONITORS (16)');
      }
      const monitors = [];
      for (let i = 0; i < n; i++) {
        const at = (s) => `monitor ${i} ${s}`;
        const x = r.i32(at('x'));
        const y = r.i32(at('y'));
        const w = r.u32(at('width'));
        const h = r.u32(at('height'));
        const primary = r.bool(at('primary'));
        const len = r.u8(at('name length'));
        const name = r.text(len, at('name'));
        monitors.push({ name, x, y, width: w, height: h, primary });
      }
      msg = { type: 'layout', width, height, monitors };
      break;
    }
    case UPDATE: {
      r.what = 'update';
      const seq = r.u32('seq');
      const capturedUs = r.u64('captured_us');
      const n = r.u16('tile count');
      if (n > MAX_TILES_PER_UPDATE) {
        r.pos -= 2;
        throw r.err('tile count', 'is more than MAX_TILES_PER_UPDATE (4096)');
      }
      const tiles = [];
      for (let i = 0; i < n; i++) tiles.push(decodeTile(r, i));
      msg = { type: 'update', seq, capturedUs, tiles };
      break;
    }
    case CURSOR: {
      r.what = 'cursor';
      const x = r.i32('x');
      const y = r.i32('y');
      let shape = null;
      if (r.bool('has_shape')) {
        const width = r.u16('shape width');
        const height = r.u16('shape height');
        const hotX = r.u16('hot_x');
        const hotY = r.u16('hot_y');
        const len = r.u32('png length');
        const png = r.bytes(len, 'png');
        shape = { width, height, hotX, hotY, png };
      }
      msg = { type: 'cursor', x, y, shape };
      break;
    }
    case SYNC:
      r.what = 'sync';
      msg = { type: 'sync', token: r.u32('token') };
      break;
    case STATUS: {
      r.what = 'status';
      const lv = r.u8('level');
      if (lv > 2) {
        r.pos -= 1;
        throw r.err('level', 'is not 0, 1 or 2');
      }
      const len = r.u16('text length');
      if (len > MAX_STATUS_BYTES) {
        r.pos -= 2;
        throw r.err('text length', 'is more than MAX_STATUS_BYTES (1024)');
      }
      msg = { type: 'status', level: LEVELS[lv], text: r.text(len, 'text') };
      break;
    }
    case CLIPBOARD: {
      r.what = 'clipboard';
      const len = r.u32('text length');
      if (len > MAX_CLIPBOARD_BYTES) {
        r.pos -= 4;
        throw r.err('text length', 'is more than MAX_CLIPBOARD_BYTES (262144)');
      }
      msg = { type: 'clipboard', text: r.text(len, 'text') };
      break;
    }
    default:
      r.pos = 0;
      throw r.err('tag', 'is not a screen message (1 to 6)');
  }
  r.done();
  return msg;
}

/** Tile encodings by wire number; 'zlib' tiles are the stream's zlib
 * stream (see screenzlib.js), decoded in order. */
const ENCODINGS = ['solid', 'png', 'jpeg', 'zlib'];

function decodeTile(r, i) {
  const at = (s) => `tile ${i} ${s}`;
  const x = r.u16(at('x'));
  const y = r.u16(at('y'));
  const width = r.u16(at('width'));
  const height = r.u16(at('height'));
  if (width === 0 || height === 0) throw r.err(at('size'), 'is empty');
  const enc = r.u8(at('encoding'));
  if (enc === 0) {
    const c = r.bytes(3, at('colour'));
    return { x, y, width, height, encoding: 'solid', rgb: [c[0], c[1], c[2]] };
  }
  if (enc >= 1 && enc <= 3) {
    const len = r.u32(at('image length'));
    const data = r.bytes(len, at('image'));
    return { x, y, width, height, encoding: ENCODINGS[enc], data };
  }
  r.pos -= 1;
  throw r.err(at('encoding'), 'is not 0 (solid), 1 (PNG), 2 (JPEG) or 3 (zlib)');
}

/** A growable little-endian byte writer. */
class Writer {
  constructor() {
    this.buf = new Uint8Array(64);
    this.len = 0;
  }
  reserve(n) {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }
  u8(v) {
    this.reserve(1);
    this.buf[this.len++] = v & 0xff;
  }
  u16(v) {
    this.reserve(2);
    new DataView(this.buf.buffer).setUint16(this.len, v, true);
    this.len += 2;
  }
  u32(v) {
    this.reserve(4);
    new DataView(this.buf.buffer).setUint32(this.len, v >>> 0, true);
    this.len += 4;
  }
  i32(v) {
    this.reserve(4);
    new DataView(this.buf.buffer).setInt32(this.len, v | 0, true);
    this.len += 4;
  }
  u64(v) {
    this.reserve(8);
    new DataView(this.buf.buffer).setBigUint64(this.len, BigInt(v), true);
    this.len += 8;
  }
  bytes(b) {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  result() {
    return this.buf.slice(0, this.len);
  }
}

function u32Of(v, what) {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${what} ${v} is not a u32`);
  return v;
}

function u8Of(v, what) {
  if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`${what} ${v} is not a u8`);
  return v;
}

function writeInput(w, input) {
  switch (input.type) {
    case 'pointer_move':
      w.u8(INPUT_TAGS.pointer_move);
      w.u32(u32Of(input.x, 'x'));
      w.u32(u32Of(input.y, 'y'));
      break;
    case 'button':
      w.u8(INPUT_TAGS.button);
      w.u8(u8Of(input.button, 'button'));
      w.u8(input.pressed ? 1 : 0);
      break;
    case 'key':
      w.u8(INPUT_TAGS.key);
      w.u32(u32Of(input.keysym, 'keysym'));
      w.u8(input.pressed ? 1 : 0);
      break;
    case 'refresh':
      w.u8(INPUT_TAGS.refresh);
      break;
    case 'sync':
      w.u8(INPUT_TAGS.sync);
      w.u32(u32Of(input.token, 'token'));
      break;
    case 'settings': {
      const q = QUALITIES.indexOf(input.quality ?? 'auto');
      if (q < 0) throw new RangeError(`quality ${input.quality} is not auto or lossless`);
      const m = input.monitor === 'all' || input.monitor == null ? MONITOR_ALL : u8Of(input.monitor, 'monitor');
      if (m === MONITOR_ALL && input.monitor !== 'all' && input.monitor != null) {
        throw new RangeError('monitor 255 means all; give "all"');
      }
      w.u8(INPUT_TAGS.settings);
      w.u8(q);
      w.u8(m);
      w.u8(u8Of(input.maxFps ?? 0, 'max_fps'));
      break;
    }
    case 'request_control':
      w.u8(INPUT_TAGS.request_control);
      break;
    default:
      throw new TypeError(`unknown screen input ${input && input.type}`);
  }
}

/**
 * Encodes inputs into one stream frame body (concatenated), as
 * `encode_input` does:
 * `{type: 'pointer_move', x, y}`, `{type: 'button', button, pressed}`,
 * `{type: 'key', keysym, pressed}`, `{type: 'refresh'}`,
 * `{type: 'sync', token}`, `{type: 'settings', quality: 'auto'|'lossless',
 * monitor: 'all'|index, maxFps}` (0 keeps the rate), `{type: 'request_control'}`.
 */
export function encodeInputs(inputs) {
  const w = new Writer();
  for (const i of inputs) writeInput(w, i);
  return w.result();
}

/** Encodes one input. */
export function encodeInput(input) {
  return encodeInputs([input]);
}

/** Decodes a frame of inputs (what the plugin does; for tests). */
export function decodeInputs(frame) {
  const r = new Reader(asBytes(frame), 'input');
  const out = [];
  while (r.pos < r.buf.length) {
    const i = out.length;
    const at = (s) => `input ${i} ${s}`;
    const tag = r.u8(at('tag'));
    switch (tag) {
      case INPUT_TAGS.pointer_move:
        out.push({ type: 'pointer_move', x: r.u32(at('x')), y: r.u32(at('y')) });
        break;
      case INPUT_TAGS.button:
        out.push({ type: 'button', button: r.u8(at('button')), pressed: r.bool(at('pressed')) });
        break;
      case INPUT_TAGS.key:
        out.push({ type: 'key', keysym: r.u32(at('keysym')), pressed: r.bool(at('pressed')) });
        break;
      case INPUT_TAGS.refresh:
        out.push({ type: 'refresh' });
        break;
      case INPUT_TAGS.sync:
        out.push({ type: 'sync', token: r.u32(at('token')) });
        break;
      case INPUT_TAGS.settings: {
        const q = r.u8(at('quality'));
        if (q > 1) {
          r.pos -= 1;
          throw r.err(at('quality'), 'is not 0 (auto) or 1 (lossless)');
        }
        const m = r.u8(at('monitor'));
        const maxFps = r.u8(at('max_fps'));
        out.push({ type: 'settings', quality: QUALITIES[q], monitor: m === MONITOR_ALL ? 'all' : m, maxFps });
        break;
      }
      case INPUT_TAGS.request_control:
        out.push({ type: 'request_control' });
        break;
      default:
        r.pos -= 1;
        throw r.err(at('tag'), 'is not a screen input (0x10 to 0x16)');
    }
  }
  return out;
}

/**
 * Encodes a message as the plugin does (`encode_message`); for tests and
 * for replaying recordings.
 */
export function encodeMessage(msg) {
  const w = new Writer();
  const enc = new TextEncoder();
  switch (msg.type) {
    case 'layout': {
      w.u8(LAYOUT);
      w.u32(msg.width);
      w.u32(msg.height);
      const mons = msg.monitors.slice(0, MAX_MONITORS);
      w.u8(mons.length);
      for (const m of mons) {
        w.i32(m.x);
        w.i32(m.y);
        w.u32(m.width);
        w.u32(m.height);
        w.u8(m.primary ? 1 : 0);
        const name = truncateUtf8(enc.encode(m.name), 255);
        w.u8(name.length);
        w.bytes(name);
      }
      break;
    }
    case 'update': {
      w.u8(UPDATE);
      w.u32(msg.seq);
      w.u64(msg.capturedUs);
      const tiles = msg.tiles.slice(0, MAX_TILES_PER_UPDATE);
      w.u16(tiles.length);
      for (const t of tiles) {
        w.u16(t.x);
        w.u16(t.y);
        w.u16(t.width);
        w.u16(t.height);
        if (t.encoding === 'solid') {
          w.u8(0);
          w.bytes(Uint8Array.from(t.rgb));
        } else {
          w.u8(ENCODINGS.indexOf(t.encoding));
          w.u32(t.data.length);
          w.bytes(t.data);
        }
      }
      break;
    }
    case 'cursor':
      w.u8(CURSOR);
      w.i32(msg.x);
      w.i32(msg.y);
      if (!msg.shape) {
        w.u8(0);
      } else {
        w.u8(1);
        w.u16(msg.shape.width);
        w.u16(msg.shape.height);
        w.u16(msg.shape.hotX);
        w.u16(msg.shape.hotY);
        w.u32(msg.shape.png.length);
        w.bytes(msg.shape.png);
      }
      break;
    case 'sync':
      w.u8(SYNC);
      w.u32(msg.token);
      break;
    case 'status': {
      w.u8(STATUS);
      w.u8(LEVELS.indexOf(msg.level));
      const text = truncateUtf8(enc.encode(msg.text), MAX_STATUS_BYTES);
      w.u16(text.length);
      w.bytes(text);
      break;
    }
    default:
      throw new TypeError(`unknown screen message ${msg && msg.type}`);
  }
  return w.result();
}

/** The longest prefix of UTF-8 `b` of at most `max` bytes ending on a character. */
function truncateUtf8(b, max) {
  if (b.length <= max) return b;
  let end = max;
  while (end > 0 && (b[end] & 0xc0) === 0x80) end--;
  return b.subarray(0, end);
}
