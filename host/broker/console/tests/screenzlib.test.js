// The zlib tiles of the screen stream (encoding 3): one zlib stream per
// screen stream, a sync flush after each tile, inflated tile by tile with
// DecompressionStream('deflate'), against bytes from Node's zlib.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { ZlibTiles, contentToRgba, bitsPerIndex } from '../src/screenzlib.js';

/** Node's zlib as the plugin's encoder: one deflate stream; `flush` false
 * leaves the content in the stream (for an update's later sync flush). */
function encoder() {
  const d = zlib.createDeflate({ level: 3 });
  const out = [];
  d.on('data', (c) => out.push(c));
  return (content, flush = true) =>
    new Promise((resolve) => {
      d.write(content);
      d.flush(flush ? zlib.constants.Z_SYNC_FLUSH : zlib.constants.Z_NO_FLUSH, () => {
        const b = Buffer.concat(out.splice(0));
        resolve(new Uint8Array(b));
      });
    });
}

/** `w`×`h` RGB of `colours` colours. */
function picture(w, h, colours) {
  const rgb = new Uint8Array(w * h * 3);
  for (let p = 0; p < w * h; p++) {
    const i = (p + Math.floor(p / w)) % colours;
    rgb.set([(i * 37) & 255, (i * 91 + 5) & 255, Math.floor(i / 5) & 255], 3 * p);
  }
  return rgb;
}

/** The tile's content as the plugin makes it (palette in order of first appearance). */
function content(rgb, w) {
  const pal = new Map();
  const idx = [];
  for (let p = 0; p < rgb.length; p += 3) {
    const k = (rgb[p] << 16) | (rgb[p + 1] << 8) | rgb[p + 2];
    if (!pal.has(k)) pal.set(k, pal.size);
    idx.push(pal.get(k));
  }
  if (pal.size > 255) return Uint8Array.from([0, ...rgb]);
  const n = pal.size;
  const bits = bitsPerIndex(n);
  const rowBytes = Math.ceil((w * bits) / 8);
  const h = idx.length / w;
  const c = new Uint8Array(1 + 3 * n + rowBytes * h);
  c[0] = n;
  for (const [k, i] of pal) c.set([k >> 16, (k >> 8) & 255, k & 255], 1 + 3 * i);
  const base = 1 + 3 * n;
  idx.forEach((i, p) => {
    const x = p % w;
    const y = Math.floor(p / w);
    c[base + y * rowBytes + ((x * bits) >> 3)] |= i << (8 - bits - ((x * bits) & 7));
  });
  return c;
}

function rgba(rgb) {
  const out = new Uint8ClampedArray((rgb.length / 3) * 4);
  for (let p = 0, o = 0; p < rgb.length; p += 3, o += 4) out.set([rgb[p], rgb[p + 1], rgb[p + 2], 255], o);
  return out;
}

const CASES = [
  [64, 64, 1],
  [64, 64, 2],
  [3, 7, 2],
  [13, 5, 4],
  [9, 11, 16],
  [64, 64, 17],
  [64, 64, 255],
  [64, 64, 256],
  [17, 3, 5000],
  [1, 1, 1],
];

test('every palette size and odd tile sizes inflate in order from one stream', async () => {
  const enc = encoder();
  const tiles = new ZlibTiles();
  for (let round = 0; round < 2; round++) {
    for (const [w, h, colours] of CASES) {
      const rgb = picture(w, h, colours);
      const z = await enc(content(rgb, w));
      assert.deepEqual([...z.slice(-4)], [0, 0, 255, 255], 'sync flush');
      const got = await tiles.tile(z, w, h);
      assert.deepEqual(got, rgba(rgb), `${w}×${h}, ${colours} colours`);
    }
  }
  tiles.close();
});

test('tiles asked for at once are served in order', async () => {
  const enc = encoder();
  const zs = [];
  for (const [w, h, colours] of CASES) zs.push(await enc(content(picture(w, h, colours), w)));
  const tiles = new ZlibTiles();
  const got = await Promise.all(CASES.map(([w, h], i) => tiles.tile(zs[i], w, h)));
  CASES.forEach(([w, h, colours], i) => assert.deepEqual(got[i], rgba(picture(w, h, colours))));
  tiles.close();
});

test("an update flushed once after its last tile: contents come out with later tiles' bytes", async () => {
  const enc = encoder();
  const tiles = new ZlibTiles();
  for (let round = 0; round < 2; round++) {
    const parts = [];
    for (const [i, [w, h, colours]] of CASES.entries()) {
      parts.push({ data: await enc(content(picture(w, h, colours), w), i === CASES.length - 1), width: w, height: h });
    }
    const got = await tiles.update(parts);
    CASES.forEach(([w, h, colours], i) => assert.deepEqual(got[i], rgba(picture(w, h, colours)), `${w}×${h}, ${colours}`));
  }
  // The next update, one tile.
  const z = await enc(content(picture(5, 5, 3), 5));
  assert.deepEqual(await tiles.tile(z, 5, 5), rgba(picture(5, 5, 3)));
  tiles.close();
});

test('a tile that does not inflate breaks the stream for the tiles after it', async () => {
  const enc = encoder();
  const tiles = new ZlibTiles({ timeoutMs: 200 });
  const ok = await enc(content(picture(4, 4, 2), 4));
  await tiles.tile(ok, 4, 4);
  // A tile declared larger than its bytes: nothing more comes out.
  const short = await enc(content(picture(4, 4, 2), 4));
  await assert.rejects(tiles.tile(short, 4, 5), /end before its tiles' content/);
  await assert.rejects(tiles.tile(ok, 4, 4), /broke at an earlier tile/);
  const bad = new ZlibTiles();
  await assert.rejects(bad.tile(Uint8Array.from([0xff, 0xff, 0xff, 0xff]), 1, 1));
});

test('content is checked: size and palette indices', () => {
  assert.throws(() => contentToRgba(Uint8Array.from([0, 1, 2]), 1, 1), /inflates to 3 bytes, not 4/);
  // Index 3 of a palette of 3 (2 bits a pixel).
  assert.throws(() => contentToRgba(Uint8Array.from([3, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0b11000000]), 1, 1), /colour 3 of a palette of 3/);
  assert.deepEqual([...contentToRgba(Uint8Array.from([2, 9, 9, 9, 7, 7, 7, 0b01100000]), 3, 1)], [9, 9, 9, 255, 7, 7, 7, 255, 7, 7, 7, 255]);
  assert.deepEqual([1, 2, 3, 4, 5, 16, 17, 255].map(bitsPerIndex), [1, 1, 2, 2, 4, 4, 8, 8]);
});
