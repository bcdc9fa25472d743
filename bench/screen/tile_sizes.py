#!/usr/bin/env python3
"""What the screen plugin's PNG tiles would weigh encoded otherwise.

    LIFELINE_BENCH_SCREEN_TILES=/tmp/tiles cargo bench -p lifeline --bench lifeline-bench -- screen
    python3 bench/screen/tile_sizes.py /tmp/tiles

The benchmark writes every PNG tile the operator received in its lossless
desktop run (30 fps) as NNNNNN-TTTT.png (update, tile).  This decodes them and
encodes the same pixels, losslessly, in other ways:

  * PNG RGB8 with zlib levels 1 and 6, one tile at a time (what the plugin
    does, with another deflate);
  * PNG with a palette when a tile has at most 256 colours (1, 2, 4 or 8 bits
    per pixel), zlib level 6, one tile at a time;
  * ZRLE-like: tiles of at most 16 colours as palette + packed indices (rows
    padded to a byte, as RFC 6143 7.7.6), others RGB, all through ONE zlib
    stream (level 6) flushed after each update: what x11vnc's ZRLE does.

Prints one JSON line: bytes per variant, tiles by number of colours, and the
CPU seconds each variant took here (CPython + zlib + Pillow: relative only).
"""
from __future__ import annotations

import io
import json
import os
import sys
import time
import zlib
from collections import Counter

from PIL import Image


def bits_for(n: int) -> int:
    return 1 if n <= 2 else 2 if n <= 4 else 4 if n <= 16 else 8


def palettised(im: Image.Image, colours: list) -> Image.Image | None:
    """The tile as a P image with exactly its colours, or None."""
    p = im.convert("P", palette=Image.Palette.ADAPTIVE, colors=len(colours))
    if p.convert("RGB").tobytes() != im.tobytes():
        return None
    return p


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    d = sys.argv[1]
    names = sorted(n for n in os.listdir(d) if n.endswith(".png"))
    if not names:
        print(f"no tiles in {d}", file=sys.stderr)
        return 2
    sizes = Counter()
    cpu = Counter()
    colours = Counter()
    stream = zlib.compressobj(6)
    last_update = None
    for name in names:
        update = name.split("-")[0]
        sent = open(os.path.join(d, name), "rb").read()
        sizes["sent"] += len(sent)
        im = Image.open(io.BytesIO(sent)).convert("RGB")
        found = im.getcolors(256)
        n = len(found) if found else 257
        colours["<=2" if n <= 2 else "<=4" if n <= 4 else "<=16" if n <= 16
                else "<=256" if n <= 256 else ">256"] += 1

        for level in (1, 6):
            t = time.process_time()
            out = io.BytesIO()
            im.save(out, "PNG", compress_level=level)
            sizes[f"png_rgb_zlib{level}"] += len(out.getvalue())
            cpu[f"png_rgb_zlib{level}"] += time.process_time() - t

        t = time.process_time()
        p = palettised(im, found) if found else None
        out = io.BytesIO()
        if p is not None:
            p.save(out, "PNG", compress_level=6, bits=bits_for(n))
        else:
            im.save(out, "PNG", compress_level=6)
        sizes["png_palette_zlib6"] += len(out.getvalue())
        cpu["png_palette_zlib6"] += time.process_time() - t

        t = time.process_time()
        if last_update is not None and update != last_update:
            sizes["zrle_like_stream"] += len(stream.flush(zlib.Z_SYNC_FLUSH))
        last_update = update
        p16 = palettised(im, found) if found and n <= 16 else None
        if p16 is not None:
            pal = bytes(p16.getpalette()[: 3 * n])
            data = pal + p16.tobytes("raw", f"P;{bits_for(n)}")
        else:
            data = im.tobytes()
        sizes["zrle_like_stream"] += len(stream.compress(data))
        cpu["zrle_like_stream"] += time.process_time() - t
    sizes["zrle_like_stream"] += len(stream.flush(zlib.Z_SYNC_FLUSH))
    tiles = len(names)
    print(json.dumps({
        "tiles": tiles,
        "updates": len({n.split("-")[0] for n in names}),
        "colours_per_tile": dict(colours),
        "bytes": dict(sizes),
        "bytes_per_tile": {k: round(v / tiles) for k, v in sizes.items()},
        "ratio_to_sent": {k: round(v / sizes["sent"], 3) for k, v in sizes.items()},
        "cpu_seconds_here": {k: round(v, 2) for k, v in cpu.items()},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
