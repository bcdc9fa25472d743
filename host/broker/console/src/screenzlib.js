// The receiving end of a screen stream's zlib stream: tiles of encoding 3
// ('zlib'), specified at `TileData::Zlib` in sdk/screen-format/src/lib.rs.
//
// One zlib stream (RFC 1950, never finished) runs for the whole screen
// stream, across layouts; the plugin ends each update's zlib bytes with a
// sync flush (not each tile's: a tile's content may come out only with a
// later tile's bytes of the same update). So one
// DecompressionStream('deflate') per screen stream is fed each update's
// zlib tiles' bytes in order and read until every one of their contents is
// complete: `u8 palette_size`, `palette_size × 3` bytes of RGB, then packed
// palette indices (1, 2, 4 or 8 bits, MSB first, rows on a byte boundary)
// or RGB rows. An update that fails leaves the stream broken: every later
// zlib tile of the stream fails too (the dictionary is lost).

/** Most colours of a tile's palette. */
const MAX_PALETTE = 255;
/** How long a tile's content may take to come out of the inflater. */
export const INFLATE_TIMEOUT_MS = 5000;

/** Bits of one palette index for `n` colours. */
export function bitsPerIndex(n) {
  if (n <= 2) return 1;
  if (n <= 4) return 2;
  if (n <= 16) return 4;
  return 8;
}

/**
 * A tile's inflated content → RGBA pixels (opaque), `width × height × 4`
 * bytes, into `out` (a Uint8ClampedArray, e.g. ImageData.data) or a new
 * array. Throws on a content of the wrong size or an index past the palette.
 */
export function contentToRgba(c, width, height, out = new Uint8ClampedArray(width * height * 4)) {
  if (c.length < 1) throw new Error('it inflates to nothing (no palette size)');
  const n = c[0];
  const rowBytes = n === 0 ? width * 3 : Math.ceil((width * bitsPerIndex(n)) / 8);
  const want = 1 + 3 * n + rowBytes * height;
  if (c.length !== want) {
    throw new Error(`it inflates to ${c.length} bytes, not ${want} (${height} rows of ${rowBytes}, a palette of ${n})`);
  }
  let o = 0;
  if (n === 0) {
    for (let i = 1; i < c.length; i += 3) {
      out[o] = c[i];
      out[o + 1] = c[i + 1];
      out[o + 2] = c[i + 2];
      out[o + 3] = 255;
      o += 4;
    }
    return out;
  }
  const bits = bitsPerIndex(n);
  const mask = (1 << bits) - 1;
  const pal = 1;
  let row = 1 + 3 * n;
  for (let y = 0; y < height; y++, row += rowBytes) {
    for (let x = 0; x < width; x++) {
      const bit = x * bits;
      const i = (c[row + (bit >> 3)] >> (8 - bits - (bit & 7))) & mask;
      if (i >= n) throw new Error(`pixel (${x},${y}) is colour ${i} of a palette of ${n}`);
      const p = pal + 3 * i;
      out[o] = c[p];
      out[o + 1] = c[p + 1];
      out[o + 2] = c[p + 2];
      out[o + 3] = 255;
      o += 4;
    }
  }
  return out;
}

/** Bytes of a tile's content with a palette of `n` (0: none). */
function contentLength(n, width, height) {
  const rowBytes = n === 0 ? width * 3 : Math.ceil((width * bitsPerIndex(n)) / 8);
  return 1 + 3 * n + rowBytes * height;
}

/** One screen stream's zlib stream. */
export class ZlibTiles {
  /**
   * @param {object} [o]
   * @param {Function} [o.makeStream] () → a DecompressionStream('deflate')
   * @param {number} [o.timeoutMs] how long a content may take to come out
   */
  constructor({ makeStream = () => new DecompressionStream('deflate'), timeoutMs = INFLATE_TIMEOUT_MS } = {}) {
    const ds = makeStream();
    this.writer = ds.writable.getWriter();
    this.reader = ds.readable.getReader();
    this.timeoutMs = timeoutMs;
    this.broken = null;
    // Updates are inflated strictly one after the other, in call order.
    this.chain = Promise.resolve();
  }

  /**
   * The zlib tiles of the next update, in order: `[{data, width, height,
   * out?}]` → an array, per tile, of its RGBA pixels (written into `out`
   * when given) or `{failed: Error}`. Calls are served in the order made.
   */
  update(tiles) {
    const run = () => this.inflateUpdate(tiles);
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => {});
    return p;
  }

  /** One tile alone (an update of one tile). */
  async tile(bytes, width, height, out) {
    const [r] = await this.update([{ data: bytes, width, height, out }]);
    if (r.failed) throw r.failed;
    return r;
  }

  async inflateUpdate(tiles) {
    const fail = (e) => tiles.map(() => ({ failed: e }));
    if (this.broken) return fail(new Error(`the stream's zlib stream broke at an earlier tile (${this.broken})`));
    if (!tiles.length) return [];
    let total = 0;
    for (const t of tiles) total += t.data.length;
    const all = new Uint8Array(total);
    let o = 0;
    for (const t of tiles) {
      all.set(t.data, o);
      o += t.data.length;
    }
    this.writer.write(all).catch(() => {});
    const results = [];
    let buf = new Uint8Array(0);
    try {
      for (const t of tiles) {
        while (buf.length < 1) buf = concat(buf, await this.readChunk());
        const want = contentLength(buf[0], t.width, t.height);
        while (buf.length < want) buf = concat(buf, await this.readChunk());
        const c = buf.subarray(0, want);
        buf = buf.subarray(want);
        try {
          results.push(contentToRgba(c, t.width, t.height, t.out));
        } catch (e) {
          results.push({ failed: e });
        }
      }
    } catch (e) {
      this.breakWith(e);
      while (results.length < tiles.length) results.push({ failed: e });
      return results;
    }
    if (buf.length) {
      const e = new Error(`the update's zlib bytes inflate to ${buf.length} bytes past its tiles`);
      this.breakWith(e);
      results[results.length - 1] = { failed: e };
    }
    return results;
  }

  breakWith(e) {
    this.broken = String(e.message || e);
    this.close();
  }

  /** The next chunk of inflated output, bounded in time. */
  async readChunk() {
    let timer;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the update's zlib bytes end before its tiles' content (nothing more after ${this.timeoutMs} ms)`)), this.timeoutMs);
    });
    try {
      const r = await Promise.race([this.reader.read(), late]);
      if (r.done) throw new Error('the zlib stream ended');
      return r.value;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Lets go of the inflater (the stream ended or broke). */
  close() {
    this.writer.abort().catch(() => {});
    this.reader.cancel().catch(() => {});
  }
}

function concat(a, b) {
  if (!a.length) return b;
  const c = new Uint8Array(a.length + b.length);
  c.set(a);
  c.set(b, a.length);
  return c;
}
