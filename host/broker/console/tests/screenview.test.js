// ScreenView driven like the page drives it: session messages and stream
// frames in, RunPlugin messages, credit and input frames out, drawing on
// fake canvases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { ScreenView, WINDOW_BYTES, OPEN_TIMEOUT_MS } from '../src/screen.js';
import { decodeStreamData, encodeFrame } from '../src/stream.js';
import { decodeInputs, encodeMessage, CONTENT_TYPE } from '../src/screenformat.js';
import { bytes, be32, le16, le32, le64 } from './helpers.js';

function fakeCanvas() {
  const calls = [];
  const ctx = {
    fillStyle: '',
    fillRect: (...a) => calls.push(['fillRect', ctx.fillStyle, ...a]),
    drawImage: (img, ...a) => calls.push(['drawImage', img.id, ...a]),
    clearRect: (...a) => calls.push(['clearRect', ...a]),
    createImageData: (w, h) => ({ width: w, height: h, data: new Uint8ClampedArray(w * h * 4) }),
    putImageData: (img, ...a) => calls.push(['putImageData', [...img.data], ...a]),
  };
  return { width: 300, height: 150, calls, getContext: () => ctx };
}

function setup() {
  const sent = [];
  const data = [];
  let id = 100;
  const timers = [];
  const link = {
    send: (m) => sent.push(m),
    sendData: (p) => data.push(decodeStreamData(p)),
    newId: () => ++id,
  };
  const canvas = fakeCanvas();
  const overlay = fakeCanvas();
  let clock = 0;
  const decoded = [];
  const view = new ScreenView({
    link,
    canvas,
    overlay,
    decodeImage: async (b, type) => {
      decoded.push([type, [...b]]);
      if (b[0] === 0xee) throw new Error('bad image');
      return { id: `${type}:${b[0]}`, width: 64, height: 64, close() {} };
    },
    now: () => clock,
    setTimer: (f, ms) => {
      timers.push({ f, ms });
      return timers.length;
    },
    clearTimer: () => {},
  });
  const events = [];
  for (const type of ['state', 'status', 'layout', 'control', 'closed']) view.addEventListener(type, (e) => events.push([type, e.detail]));
  return { view, sent, data, canvas, overlay, events, decoded, timers, tick: (ms) => (clock += ms) };
}

const layout = encodeMessage({ type: 'layout', width: 1920, height: 1080, monitors: [{ name: 'DP-1', x: 0, y: 0, width: 1920, height: 1080, primary: true }] });

function start(s) {
  const callId = s.view.share({ monitor: 'all', quality: 'lossless' });
  s.view.handleSessionMessage({ kind: 'stream_opened', stream: 3, plugin: 'screen', name: 'screen', content_type: CONTENT_TYPE, latest_wins: true });
  s.view.handleSessionMessage({ kind: 'plugin_done', call_id: callId, plugin: 'screen', ok: true, text: 'sharing all monitors' });
  return callId;
}

test('share runs screen share and subscribes with credit when the stream opens', () => {
  const s = setup();
  const callId = s.view.share({ monitor: 'all', quality: 'auto' });
  assert.deepEqual(s.sent, [{ kind: 'run_plugin', call_id: callId, plugin: 'screen', command: 'share', args: ['all', 'auto'] }]);
  assert.equal(s.view.state, 'requesting');
  // Another plugin's stream is not ours.
  assert.equal(s.view.handleSessionMessage({ kind: 'stream_opened', stream: 2, plugin: 'other', name: 'screen', content_type: CONTENT_TYPE }), false);
  assert.equal(s.view.handleSessionMessage({ kind: 'stream_opened', stream: 3, plugin: 'screen', name: 'screen', content_type: CONTENT_TYPE }), true);
  assert.equal(s.view.state, 'sharing');
  assert.deepEqual(s.data, [{ tag: 'credit', stream: 3, bytes: WINDOW_BYTES }]);
  assert.equal(WINDOW_BYTES, 4 << 20);
});

test('frames are decoded, drawn and their credit granted back', async () => {
  const s = setup();
  start(s);
  s.data.length = 0;
  // Layout: canvas sized and black.
  assert.ok(s.view.handleData(encodeFrame(3, layout)));
  await s.view.idle();
  assert.equal(s.canvas.width, 1920);
  assert.equal(s.canvas.height, 1080);
  assert.equal(s.overlay.width, 1920);
  assert.deepEqual(s.canvas.calls[0], ['fillRect', '#000', 0, 0, 1920, 1080]);
  assert.deepEqual(s.data, [{ tag: 'credit', stream: 3, bytes: layout.length }]);
  // Update: a solid tile, then a PNG and a JPEG drawn at their positions.
  const update = bytes(
    2, le32(1), le64(5), le16(3),
    le16(0), le16(0), le16(64), le16(64), 0, [10, 20, 30],
    le16(64), le16(0), le16(64), le16(64), 1, le32(2), [0x89, 1],
    le16(128), le16(64), le16(32), le16(16), 2, le32(2), [0xff, 2],
  );
  s.canvas.calls.length = 0;
  s.data.length = 0;
  s.view.handleData(bytes(1, be32(3), [...update]));
  await s.view.idle();
  assert.deepEqual(s.canvas.calls, [
    ['fillRect', 'rgb(10, 20, 30)', 0, 0, 64, 64],
    ['drawImage', 'image/png:137', 0, 0, 64, 64, 64, 0, 64, 64],
    ['drawImage', 'image/jpeg:255', 0, 0, 32, 16, 128, 64, 32, 16],
  ]);
  assert.deepEqual(s.decoded.map((d) => d[0]), ['image/png', 'image/jpeg']);
  assert.deepEqual(s.data, [{ tag: 'credit', stream: 3, bytes: update.length }]);
  assert.equal(s.view.frames, 2);
  assert.equal(s.view.bytes, layout.length + update.length);
  assert.equal(s.view.fps, 1);
  s.tick(1500);
  assert.equal(s.view.fps, 0);
  // Another stream's frames and other tags are not ours.
  assert.equal(s.view.handleData(encodeFrame(4, layout)), false);
  assert.equal(s.view.handleData(Uint8Array.of(2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1)), false);
});

test('zlib tiles follow one zlib stream across updates and layouts, and a new stream starts a new one', async () => {
  const s = setup();
  start(s);
  const d = zlib.createDeflate();
  const out = [];
  d.on('data', (c) => out.push(c));
  const deflate = (content) =>
    new Promise((resolve) => {
      d.write(Buffer.from(content));
      d.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve(new Uint8Array(Buffer.concat(out.splice(0)))));
    });
  const zTile = (x, data) => ({ x, y: 0, width: 2, height: 1, encoding: 'zlib', data });
  // A 2-colour palette (1 bit a pixel), then RGB rows.
  const a = await deflate([2, 1, 2, 3, 4, 5, 6, 0b01000000]);
  const b = await deflate([0, 7, 8, 9, 10, 11, 12]);
  s.view.handleData(encodeFrame(3, layout));
  s.view.handleData(encodeFrame(3, encodeMessage({ type: 'update', seq: 1, capturedUs: 0, tiles: [zTile(0, a), zTile(2, b)] })));
  await s.view.idle();
  assert.deepEqual(s.canvas.calls.slice(-2), [
    ['putImageData', [1, 2, 3, 255, 4, 5, 6, 255], 0, 0],
    ['putImageData', [7, 8, 9, 255, 10, 11, 12, 255], 2, 0],
  ]);
  // A layout keeps the zlib stream: the same content again is a back-reference.
  const again = await deflate([2, 1, 2, 3, 4, 5, 6, 0b01000000]);
  s.view.handleData(encodeFrame(3, layout));
  s.view.handleData(encodeFrame(3, encodeMessage({ type: 'update', seq: 2, capturedUs: 0, tiles: [zTile(4, again)] })));
  await s.view.idle();
  assert.deepEqual(s.canvas.calls.slice(-1), [['putImageData', [1, 2, 3, 255, 4, 5, 6, 255], 4, 0]]);
  assert.equal(s.events.filter((e) => e[0] === 'status' && e[1].key === 'screen.status.badFrame').length, 0);
  // Bytes that do not inflate name the tile.
  s.view.handleData(encodeFrame(3, encodeMessage({ type: 'update', seq: 3, capturedUs: 0, tiles: [zTile(0, Uint8Array.of(0xff, 0xff, 0xff))] })));
  await s.view.idle();
  assert.match(s.events.filter((e) => e[0] === 'status').pop()[1].args.error, /first tile 0 \(0,0 2×1, zlib\)/);
  // A new share: a new stream, a new zlib stream from its header.
  s.view.handleSessionMessage({ kind: 'stream_closed', stream: 3, frames: 0, bytes: 0, dropped: 0, reason: 'closed' });
  start(s);
  const fresh = new Uint8Array(zlib.deflateSync(Buffer.from([0, 1, 1, 1, 2, 2, 2]), { finishFlush: zlib.constants.Z_SYNC_FLUSH }));
  s.view.handleData(encodeFrame(3, layout));
  s.view.handleData(encodeFrame(3, encodeMessage({ type: 'update', seq: 1, capturedUs: 0, tiles: [zTile(0, fresh)] })));
  await s.view.idle();
  assert.deepEqual(s.canvas.calls.slice(-1), [['putImageData', [1, 1, 1, 255, 2, 2, 2, 255], 0, 0]]);
});

test('a bad frame is reported and its credit still granted back', async () => {
  const s = setup();
  start(s);
  s.data.length = 0;
  s.view.handleData(encodeFrame(3, Uint8Array.of(9)));
  await s.view.idle();
  const status = s.events.filter((e) => e[0] === 'status').map((e) => e[1]).pop();
  assert.equal(status.key, 'screen.status.badFrame');
  assert.match(status.args.error, /is not a screen message/);
  assert.deepEqual(s.data, [{ tag: 'credit', stream: 3, bytes: 1 }]);
  // An update before the layout, and a tile outside the picture.
  s.view.handleData(encodeFrame(3, encodeMessage({ type: 'update', seq: 1, capturedUs: 0, tiles: [{ x: 0, y: 0, width: 1, height: 1, encoding: 'solid', rgb: [0, 0, 0] }] })));
  await s.view.idle();
  assert.match(s.events.filter((e) => e[0] === 'status').pop()[1].args.error, /before the screen layout/);
  s.view.handleData(encodeFrame(3, layout));
  s.view.handleData(encodeFrame(3, encodeMessage({ type: 'update', seq: 2, capturedUs: 0, tiles: [{ x: 1900, y: 0, width: 64, height: 64, encoding: 'solid', rgb: [0, 0, 0] }] })));
  await s.view.idle();
  assert.match(s.events.filter((e) => e[0] === 'status').pop()[1].args.error, /outside the 1920×1080 picture/);
  s.view.handleData(encodeFrame(3, encodeMessage({ type: 'update', seq: 3, capturedUs: 0, tiles: [{ x: 0, y: 0, width: 64, height: 64, encoding: 'png', data: Uint8Array.of(0xee) }] })));
  await s.view.idle();
  assert.match(s.events.filter((e) => e[0] === 'status').pop()[1].args.error, /could not be decoded/);
});

test('the cursor is drawn on the overlay at its hot spot; status lines and sync', async () => {
  const s = setup();
  start(s);
  s.view.handleData(encodeFrame(3, layout));
  s.view.handleData(encodeFrame(3, bytes(3, le32(100), le32(50), 1, le16(16), le16(16), le16(2), le16(3), le32(1), [7])));
  s.view.handleData(encodeFrame(3, encodeMessage({ type: 'status', level: 'warning', text: 'control was not allowed' })));
  await s.view.idle();
  assert.deepEqual(s.overlay.calls.slice(-2), [
    ['clearRect', 0, 0, 1920, 1080],
    ['drawImage', 'image/png:7', 98, 47],
  ]);
  s.view.handleData(encodeFrame(3, bytes(3, le32(10), le32(10), 0)));
  await s.view.idle();
  assert.deepEqual(s.overlay.calls.slice(-1), [['drawImage', 'image/png:7', 8, 7]]);
  assert.ok(s.events.some((e) => e[0] === 'status' && e[1].level === 'warning' && e[1].text === 'control was not allowed'));
  s.data.length = 0;
  const synced = s.view.sync();
  const input = s.data.pop();
  assert.equal(input.tag, 'input');
  const [{ token }] = decodeInputs(input.body);
  s.view.handleData(encodeFrame(3, encodeMessage({ type: 'sync', token })));
  await synced;
});

test('control: RequestControl, then keys and pointer as input frames', async () => {
  const s = setup();
  start(s);
  s.view.handleData(encodeFrame(3, layout));
  await s.view.idle();
  s.data.length = 0;
  assert.equal(s.view.key({ key: 'a', code: 'KeyA' }, true), false, 'nothing is sent before control');
  assert.equal(s.view.setControl(true), true);
  const inputs = () => s.data.filter((d) => d.tag === 'input').map((d) => decodeInputs(d.body));
  assert.deepEqual(inputs(), [[{ type: 'request_control' }]]);
  s.data.length = 0;
  assert.ok(s.view.key({ key: 'Shift', code: 'ShiftLeft' }, true));
  assert.ok(s.view.key({ key: 'A', code: 'KeyA' }, true));
  s.view.key({ key: 'Shift', code: 'ShiftLeft' }, false);
  // Released after Shift: the same keysym as pressed, not 'a'.
  s.view.key({ key: 'a', code: 'KeyA' }, false);
  s.view.key({ key: 'Enter', code: 'Enter' }, true);
  s.view.key({ key: '€', code: 'KeyE' }, true);
  assert.deepEqual(inputs(), [
    [{ type: 'key', keysym: 0xffe1, pressed: true }],
    [{ type: 'key', keysym: 0x41, pressed: true }],
    [{ type: 'key', keysym: 0xffe1, pressed: false }],
    [{ type: 'key', keysym: 0x41, pressed: false }],
    [{ type: 'key', keysym: 0xff0d, pressed: true }],
    [{ type: 'key', keysym: 0x010020ac, pressed: true }],
  ]);
  s.data.length = 0;
  // Displayed at half size: coordinates double.
  const rect = { left: 10, top: 20, width: 960, height: 540 };
  s.view.pointerMove(110, 70, rect);
  s.view.pointerMove(210, 120, rect);
  s.timers.pop().f();
  s.view.pointerButton(0, true, 210, 120, rect);
  s.view.pointerButton(0, false, 210, 120, rect);
  s.view.pointerButton(2, true, 10, 20, rect);
  s.view.wheel(-100, 0, 10, 20, rect);
  assert.deepEqual(inputs(), [
    [{ type: 'pointer_move', x: 400, y: 200 }],
    [{ type: 'pointer_move', x: 400, y: 200 }, { type: 'button', button: 1, pressed: true }],
    [{ type: 'pointer_move', x: 400, y: 200 }, { type: 'button', button: 1, pressed: false }],
    [{ type: 'pointer_move', x: 0, y: 0 }, { type: 'button', button: 3, pressed: true }],
    [
      { type: 'pointer_move', x: 0, y: 0 },
      { type: 'button', button: 4, pressed: true },
      { type: 'button', button: 4, pressed: false },
      { type: 'button', button: 4, pressed: true },
      { type: 'button', button: 4, pressed: false },
    ],
  ]);
  s.data.length = 0;
  // Control off releases what is held: Enter, €, the right button.
  s.view.setControl(false);
  assert.deepEqual(inputs(), [[
    { type: 'key', keysym: 0xff0d, pressed: false },
    { type: 'key', keysym: 0x010020ac, pressed: false },
    { type: 'button', button: 3, pressed: false },
  ]]);
  s.data.length = 0;
  s.view.applySettings({ quality: 'auto', monitor: '1', maxFps: 15 });
  s.view.refresh();
  assert.deepEqual(inputs(), [[{ type: 'settings', quality: 'auto', monitor: 1, maxFps: 15 }], [{ type: 'refresh' }]]);
});

test('stop runs screen stop, returns the credit of dropped frames and ends at StreamClosed', async () => {
  const s = setup();
  start(s);
  s.sent.length = 0;
  s.data.length = 0;
  const stopId = s.view.stop();
  assert.deepEqual(s.sent, [{ kind: 'run_plugin', call_id: stopId, plugin: 'screen', command: 'stop', args: [] }]);
  assert.equal(s.view.state, 'stopping');
  // A frame arriving while stopping is dropped and its credit returned at once.
  assert.ok(s.view.handleData(encodeFrame(3, layout)));
  assert.deepEqual(s.data, [{ tag: 'credit', stream: 3, bytes: layout.length }]);
  assert.equal(s.canvas.width, 300);
  s.view.handleSessionMessage({ kind: 'plugin_done', call_id: stopId, plugin: 'screen', ok: true, text: 'stopped' });
  s.view.handleSessionMessage({ kind: 'stream_closed', stream: 3, plugin: 'screen', name: 'screen', frames: 10, bytes: 1000, dropped: 1, reason: 'stopped by the operator' });
  assert.equal(s.view.state, 'stopped');
  assert.deepEqual(s.events.find((e) => e[0] === 'closed')[1], { frames: 10, bytes: 1000, dropped: 1, reason: 'stopped by the operator' });
  // Sharing can start again.
  assert.ok(s.view.share());
});

test('failures: refused share, wrong content type, no stream in time, session end', () => {
  let s = setup();
  let id = s.view.share();
  s.view.handleSessionMessage({ kind: 'plugin_done', call_id: id, plugin: 'screen', ok: false, text: 'the customer did not allow screen.capture' });
  assert.equal(s.view.state, 'failed');
  assert.equal(s.events.filter((e) => e[0] === 'status').pop()[1].key, 'screen.status.shareFailed');

  s = setup();
  s.view.share();
  s.view.handleSessionMessage({ kind: 'stream_opened', stream: 1, plugin: 'screen', name: 'screen', content_type: 'video/x-other' });
  assert.equal(s.view.state, 'failed');
  assert.equal(s.data.length, 0, 'no credit for a stream it cannot read');

  s = setup();
  id = s.view.share();
  s.view.handleSessionMessage({ kind: 'plugin_done', call_id: id, plugin: 'screen', ok: true, text: 'already sharing' });
  const timer = s.timers.find((x) => x.ms === OPEN_TIMEOUT_MS);
  timer.f();
  assert.equal(s.view.state, 'failed');
  assert.equal(s.events.filter((e) => e[0] === 'status').pop()[1].key, 'screen.status.noStream');

  s = setup();
  start(s);
  s.view.setControl(true);
  s.view.handleSessionMessage({ kind: 'end', by: 'customer', reason: 'bye' });
  assert.equal(s.view.state, 'stopped');
  assert.equal(s.view.controlling, false);
  assert.equal(s.view.sendInputs([{ type: 'refresh' }]), false);
});
