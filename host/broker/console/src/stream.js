// Session data on the console's WebSocket (docs/console-protocol.md, §
// WebSocket 3) and the plugin stream frames inside it
// (host/protocol/src/stream.rs). Pure functions: no DOM, no network.
//
// WebSocket binary message:  u8 n | n bytes session ID (ASCII) | payload
// Stream frame (payload):    u8 tag | u32 BE stream | body
//   tag 1 frame  (agent → operator): one frame of the plugin's stream
//   tag 2 credit (operator → agent): body is a u64 BE count of bytes
//   tag 3 input  (operator → agent): a frame for the plugin

export const TAG_FRAME = 1;
export const TAG_CREDIT = 2;
export const TAG_INPUT = 3;
/** Bytes before a stream frame's body. */
export const HEADER_BYTES = 5;
/** Largest body of one stream frame: 1 MiB. */
export const MAX_STREAM_FRAME_BYTES = 1 << 20;
/** Credit an operator client grants by default. */
export const DEFAULT_WINDOW_BYTES = 1 << 20;
/** Most credit an agent holds for one stream. */
export const MAX_WINDOW_BYTES = 8 << 20;
/** Longest session ID the one-byte length can name. */
export const MAX_SESSION_ID_BYTES = 255;

/** Why bytes are not a stream frame or a session data message. */
export class StreamDataError extends Error {
  constructor(message) {
    super(message);
    this.name = 'StreamDataError';
  }
}

function asBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError('expected bytes (Uint8Array or ArrayBuffer)');
}

function header(tag, stream, bodyLength) {
  if (!Number.isInteger(stream) || stream < 0 || stream > 0xffffffff) {
    throw new RangeError(`stream id ${stream} is not a u32`);
  }
  const out = new Uint8Array(HEADER_BYTES + bodyLength);
  out[0] = tag;
  new DataView(out.buffer).setUint32(1, stream, false);
  return out;
}

/** A credit grant: stream `stream` may send `bytes` more. */
export function encodeCredit(stream, bytes) {
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new RangeError(`credit ${bytes} is not a non-negative integer`);
  }
  const out = header(TAG_CREDIT, stream, 8);
  new DataView(out.buffer).setBigUint64(HEADER_BYTES, BigInt(bytes), false);
  return out;
}

/** An input frame towards the plugin of stream `stream`. */
export function encodeInputFrame(stream, body) {
  const b = asBytes(body);
  if (b.length > MAX_STREAM_FRAME_BYTES) {
    throw new StreamDataError(
      `stream frame body of ${b.length} bytes exceeds ${MAX_STREAM_FRAME_BYTES}`,
    );
  }
  const out = header(TAG_INPUT, stream, b.length);
  out.set(b, HEADER_BYTES);
  return out;
}

/** A frame of a plugin's stream (as an agent sends it; for tests). */
export function encodeFrame(stream, body) {
  const b = asBytes(body);
  const out = header(TAG_FRAME, stream, b.length);
  out.set(b, HEADER_BYTES);
  return out;
}

/**
 * Decodes a stream frame: `{tag: 'frame'|'input', stream, body}` or
 * `{tag: 'credit', stream, bytes}`. `body` is a view into `payload`.
 * Throws StreamDataError like `StreamData::decode`.
 */
export function decodeStreamData(payload) {
  const p = asBytes(payload);
  if (p.length < HEADER_BYTES) {
    throw new StreamDataError(
      `stream frame of ${p.length} bytes is shorter than its ${HEADER_BYTES}-byte header`,
    );
  }
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const tag = p[0];
  const stream = view.getUint32(1, false);
  const body = p.subarray(HEADER_BYTES);
  if (body.length > MAX_STREAM_FRAME_BYTES) {
    throw new StreamDataError(
      `stream frame body of ${body.length} bytes exceeds ${MAX_STREAM_FRAME_BYTES}`,
    );
  }
  switch (tag) {
    case TAG_FRAME:
      return { tag: 'frame', stream, body };
    case TAG_INPUT:
      return { tag: 'input', stream, body };
    case TAG_CREDIT: {
      if (body.length !== 8) {
        throw new StreamDataError(`a credit frame carries 8 bytes, not ${body.length}`);
      }
      const bytes = view.getBigUint64(HEADER_BYTES, false);
      return { tag: 'credit', stream, bytes: Number(bytes) };
    }
    default:
      throw new StreamDataError(`unknown stream frame tag 0x${tag.toString(16).padStart(2, '0')}`);
  }
}

const ascii = new TextEncoder();
const asciiDecoder = new TextDecoder('ascii');

/** The WebSocket binary message carrying `payload` for session `sessionId`. */
export function encodeSessionData(sessionId, payload) {
  const id = ascii.encode(String(sessionId));
  if (id.length === 0 || id.length > MAX_SESSION_ID_BYTES) {
    throw new StreamDataError(`session ID of ${id.length} bytes cannot be framed`);
  }
  for (const b of id) {
    if (b < 0x21 || b > 0x7e) throw new StreamDataError('session ID is not printable ASCII');
  }
  const p = asBytes(payload);
  const out = new Uint8Array(1 + id.length + p.length);
  out[0] = id.length;
  out.set(id, 1);
  out.set(p, 1 + id.length);
  return out;
}

/** Splits a WebSocket binary message: `{sessionId, payload}` (a view). */
export function decodeSessionData(message) {
  const m = asBytes(message);
  if (m.length < 1) throw new StreamDataError('empty session data message');
  const n = m[0];
  if (n === 0 || m.length < 1 + n) {
    throw new StreamDataError(`session data message of ${m.length} bytes is shorter than its ${n}-byte session ID`);
  }
  return { sessionId: asciiDecoder.decode(m.subarray(1, 1 + n)), payload: m.subarray(1 + n) };
}
