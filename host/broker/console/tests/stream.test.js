import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeCredit,
  encodeInputFrame,
  encodeFrame,
  decodeStreamData,
  encodeSessionData,
  decodeSessionData,
  StreamDataError,
  TAG_CREDIT,
  TAG_INPUT,
} from '../src/stream.js';
import { bytes, be32, be64 } from './helpers.js';

test('credit frame: tag 2, u32 BE stream, u64 BE bytes', () => {
  assert.deepEqual(encodeCredit(7, 4 << 20), bytes(TAG_CREDIT, be32(7), be64(4 << 20)));
  assert.deepEqual(encodeCredit(0xffffffff, 2 ** 40), bytes(2, [0xff, 0xff, 0xff, 0xff], be64(2 ** 40)));
});

test('input frame: tag 3, u32 BE stream, body', () => {
  assert.deepEqual(encodeInputFrame(1, Uint8Array.of(0x13)), bytes(TAG_INPUT, be32(1), [0x13]));
  assert.deepEqual(encodeInputFrame(258, new Uint8Array(0)), bytes(3, [0, 0, 1, 2]));
});

test('decoding mirrors StreamData::decode, errors included', () => {
  const f = decodeStreamData(bytes(1, be32(7), [1, 2, 3]));
  assert.equal(f.tag, 'frame');
  assert.equal(f.stream, 7);
  assert.deepEqual([...f.body], [1, 2, 3]);
  assert.deepEqual(decodeStreamData(bytes(2, be32(1), be64(2 ** 40))), { tag: 'credit', stream: 1, bytes: 2 ** 40 });
  const i = decodeStreamData(bytes(3, [0xff, 0xff, 0xff, 0xff]));
  assert.equal(i.tag, 'input');
  assert.equal(i.stream, 0xffffffff);
  assert.equal(i.body.length, 0);
  assert.throws(() => decodeStreamData(Uint8Array.of(1, 0, 0)), (e) => e instanceof StreamDataError && /3 bytes is shorter than its 5-byte header/.test(e.message));
  assert.throws(() => decodeStreamData(Uint8Array.of(9, 0, 0, 0, 0)), /unknown stream frame tag 0x09/);
  assert.throws(() => decodeStreamData(Uint8Array.of(2, 0, 0, 0, 0, 1)), /carries 8 bytes, not 1/);
  assert.deepEqual(decodeStreamData(encodeFrame(5, Uint8Array.of(9))).body, Uint8Array.of(9));
});

test('session data on the WebSocket: n, session ID, payload', () => {
  const msg = encodeSessionData('abc123', Uint8Array.of(1, 0, 0, 0, 7, 42));
  assert.deepEqual(msg, bytes(6, [...'abc123'].map((c) => c.charCodeAt(0)), [1, 0, 0, 0, 7, 42]));
  const d = decodeSessionData(msg.buffer);
  assert.equal(d.sessionId, 'abc123');
  assert.deepEqual([...d.payload], [1, 0, 0, 0, 7, 42]);
  assert.throws(() => encodeSessionData('', new Uint8Array(0)), StreamDataError);
  assert.throws(() => encodeSessionData('x'.repeat(256), new Uint8Array(0)), StreamDataError);
  assert.throws(() => encodeSessionData('a b', new Uint8Array(0)), /printable ASCII/);
  assert.throws(() => decodeSessionData(Uint8Array.of(5, 65)), StreamDataError);
  assert.throws(() => decodeSessionData(new Uint8Array(0)), StreamDataError);
});
