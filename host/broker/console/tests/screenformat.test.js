// The screen format, checked against byte sequences written out from the
// layouts documented in sdk/screen-format/src/lib.rs, and the Rust codec's
// own test cases (codec.rs: round trips, cut frames, named fields).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMessage, encodeMessage, encodeInputs, encodeInput, decodeInputs, ScreenDecodeError, CONTENT_TYPE, STREAM_NAME } from '../src/screenformat.js';
import { bytes, le16, le32, le64, utf8 } from './helpers.js';

const layoutBytes = bytes(
  1, le32(1920), le32(1080), 2,
  le32(0), le32(0), le32(1920), le32(1080), 1, 4, utf8('DP-1'),
  le32(-1280), le32(100), le32(1280), le32(1024), 0, 5, utf8('HDMI1'),
);

test('constants match the Rust crate', () => {
  assert.equal(CONTENT_TYPE, 'application/vnd.lifeline.screen.v1');
  assert.equal(STREAM_NAME, 'screen');
});

test('Layout (tag 1)', () => {
  assert.deepEqual(decodeMessage(layoutBytes), {
    type: 'layout',
    width: 1920,
    height: 1080,
    monitors: [
      { name: 'DP-1', x: 0, y: 0, width: 1920, height: 1080, primary: true },
      { name: 'HDMI1', x: -1280, y: 100, width: 1280, height: 1024, primary: false },
    ],
  });
});

test('Update (tag 2): solid, PNG and JPEG tiles', () => {
  const png = [0x89, 0x50, 0x4e, 0x47, 9, 9];
  const jpeg = [0xff, 0xd8, 8];
  const z = [0x78, 0x01, 0, 0, 0xff, 0xff];
  const b = bytes(
    2, le32(7), le64(123456), le16(4),
    le16(0), le16(64), le16(64), le16(64), 0, [1, 2, 3],
    le16(64), le16(64), le16(10), le16(64), 1, le32(png.length), png,
    le16(128), le16(0), le16(64), le16(5), 2, le32(jpeg.length), jpeg,
    le16(192), le16(0), le16(3), le16(7), 3, le32(z.length), z,
  );
  const m = decodeMessage(b);
  assert.equal(m.type, 'update');
  assert.equal(m.seq, 7);
  assert.equal(m.capturedUs, 123456);
  assert.equal(m.tiles.length, 4);
  assert.deepEqual({ ...m.tiles[3], data: [...m.tiles[3].data] }, { x: 192, y: 0, width: 3, height: 7, encoding: 'zlib', data: z });
  assert.deepEqual(encodeMessage(m), b);
  assert.deepEqual(m.tiles[0], { x: 0, y: 64, width: 64, height: 64, encoding: 'solid', rgb: [1, 2, 3] });
  assert.deepEqual({ ...m.tiles[1], data: [...m.tiles[1].data] }, { x: 64, y: 64, width: 10, height: 64, encoding: 'png', data: png });
  assert.deepEqual({ ...m.tiles[2], data: [...m.tiles[2].data] }, { x: 128, y: 0, width: 64, height: 5, encoding: 'jpeg', data: jpeg });
});

test('Cursor (tag 3) with and without a shape; Sync (4); Status (5)', () => {
  const withShape = decodeMessage(bytes(3, le32(-3), le32(40), 1, le16(16), le16(16), le16(1), le16(2), le32(3), [1, 2, 3]));
  assert.equal(withShape.x, -3);
  assert.equal(withShape.y, 40);
  assert.deepEqual({ ...withShape.shape, png: [...withShape.shape.png] }, { width: 16, height: 16, hotX: 1, hotY: 2, png: [1, 2, 3] });
  assert.deepEqual(decodeMessage(bytes(3, le32(1), le32(2), 0)), { type: 'cursor', x: 1, y: 2, shape: null });
  assert.deepEqual(decodeMessage(bytes(4, le32(42))), { type: 'sync', token: 42 });
  const text = 'il controllo non è stato consentito';
  assert.deepEqual(decodeMessage(bytes(5, 1, le16(utf8(text).length), utf8(text))), { type: 'status', level: 'warning', text });
});

test('encodeMessage writes the documented bytes (round trip)', () => {
  assert.deepEqual(encodeMessage(decodeMessage(layoutBytes)), layoutBytes);
  for (const msg of [
    { type: 'sync', token: 9 },
    { type: 'status', level: 'error', text: 'x' },
    { type: 'cursor', x: 5, y: -6, shape: null },
    { type: 'update', seq: 1, capturedUs: 2, tiles: [{ x: 0, y: 0, width: 1, height: 1, encoding: 'solid', rgb: [9, 8, 7] }] },
  ]) {
    assert.deepEqual(decodeMessage(encodeMessage(msg)), msg);
  }
});

test('every cut frame is refused with a named field', () => {
  for (const frame of [layoutBytes, encodeMessage({ type: 'status', level: 'info', text: 'hello' }), bytes(3, le32(1), le32(2), 1, le16(1), le16(1), le16(0), le16(0), le32(2), [7, 7])]) {
    for (let cut = 0; cut < frame.length; cut++) {
      assert.throws(() => decodeMessage(frame.subarray(0, cut)), (e) => e instanceof ScreenDecodeError && e.message.startsWith('screen stream '));
    }
  }
});

test('bad bytes name the field (as codec.rs bad_bytes_name_the_field)', () => {
  assert.throws(() => decodeMessage(Uint8Array.of(9)), (e) => e instanceof ScreenDecodeError && e.field === 'tag' && e.offset === 0);
  const trailing = bytes(4, le32(1), [0]);
  assert.throws(() => decodeMessage(trailing), (e) => e.field === 'end' && e.offset === 5);
  assert.throws(() => decodeInputs(Uint8Array.of(0x11, 1, 7)), (e) => e.field === 'input 0 pressed' && e.offset === 2);
  const hugePng = bytes(2, le32(1), le64(0), le16(1), [0, 0, 0, 0, 8, 0, 8, 0, 1, 255, 255, 255, 255]);
  assert.throws(() => decodeMessage(hugePng), (e) => e.field === 'tile 0 image' && e.problem === 'the frame ends early');
  assert.throws(() => decodeMessage(bytes(2, le32(1), le64(0), le16(1), le16(0), le16(0), le16(0), le16(1), 0, [1, 2, 3])), (e) => e.field === 'tile 0 size' && e.problem === 'is empty');
  assert.throws(() => decodeMessage(bytes(2, le32(1), le64(0), le16(1), le16(0), le16(0), le16(1), le16(1), 4)), (e) => e.field === 'tile 0 encoding' && e.offset === 23);
  assert.throws(() => decodeMessage(bytes(2, le32(1), le64(0), le16(1), le16(0), le16(0), le16(1), le16(1), 3, le32(3), [1])), (e) => e.field === 'tile 0 image' && e.problem === 'the frame ends early');
  assert.throws(() => decodeMessage(bytes(1, le32(1), le32(1), 17)), (e) => e.field === 'monitor count' && e.offset === 9);
  assert.throws(() => decodeMessage(bytes(2, le32(1), le64(0), le16(4097))), (e) => e.field === 'tile count' && e.offset === 13);
  assert.throws(() => decodeMessage(bytes(5, 3, le16(0))), (e) => e.field === 'level' && e.offset === 1);
  assert.throws(() => decodeMessage(bytes(5, 0, le16(1025))), (e) => e.field === 'text length');
  assert.throws(() => decodeMessage(bytes(5, 0, le16(2), [0xc3, 0x28])), (e) => e.field === 'text' && e.problem === 'is not UTF-8' && e.offset === 4);
  assert.throws(() => decodeMessage(bytes(3, le32(0), le32(0), 2)), (e) => e.field === 'has_shape' && e.problem === 'is neither 0 nor 1');
  assert.throws(() => decodeMessage(bytes(1, le32(1), le32(1), 1, le32(0), le32(0), le32(1), le32(1), 1, 2, [0xff, 0xfe])), (e) => e.field === 'monitor 0 name');
});

test('inputs are encoded as encode_input (0x10–0x16), several per frame', () => {
  const inputs = [
    { type: 'pointer_move', x: 10, y: 20 },
    { type: 'button', button: 1, pressed: true },
    { type: 'key', keysym: 0xff0d, pressed: false },
    { type: 'refresh' },
    { type: 'sync', token: 9 },
    { type: 'settings', quality: 'lossless', monitor: 1, maxFps: 30 },
    { type: 'request_control' },
  ];
  const expected = bytes(
    0x10, le32(10), le32(20),
    0x11, 1, 1,
    0x12, le32(0xff0d), 0,
    0x13,
    0x14, le32(9),
    0x15, 1, 1, 30,
    0x16,
  );
  assert.deepEqual(encodeInputs(inputs), expected);
  assert.deepEqual(decodeInputs(expected), inputs);
  assert.deepEqual(encodeInput({ type: 'settings', quality: 'auto', monitor: 'all', maxFps: 0 }), Uint8Array.of(0x15, 0, 255, 0));
  assert.deepEqual(encodeInput({ type: 'key', keysym: 0x010020ac, pressed: true }), bytes(0x12, le32(0x010020ac), 1));
  assert.deepEqual(encodeInput({ type: 'button', button: 5, pressed: false }), Uint8Array.of(0x11, 5, 0));
  assert.throws(() => encodeInput({ type: 'settings', quality: 'best' }), RangeError);
  assert.throws(() => encodeInput({ type: 'pointer_move', x: -1, y: 0 }), RangeError);
  assert.throws(() => encodeInput({ type: 'nope' }), TypeError);
  assert.throws(() => decodeInputs(Uint8Array.of(0x20)), (e) => e.field === 'input 0 tag');
  assert.throws(() => decodeInputs(Uint8Array.of(0x15, 2, 0, 0)), (e) => e.field === 'input 0 quality');
});
