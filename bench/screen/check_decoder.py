#!/usr/bin/env python3
"""Check vnc_client.py's decoding against the server: pixel-exact vs Raw.

Maps a static test-pattern window (gradients, noise, 2/3/12/20-colour areas)
on the X display, then asks the VNC server for one odd-sized region of it
(non-incremental, so ZRLE has edge tiles 37 px wide and 3 px high, where
packed-palette rows need byte padding) once per encoding, and compares each
decoded region with the Raw one.  Prints one JSON line; exit 0 if all match.

    python3 bench/screen/check_decoder.py --display :97 --port 5997
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import vnc_client as vc  # noqa: E402
from twisted.internet import reactor  # noqa: E402
from Xlib import X, display  # noqa: E402

PAT_X, PAT_Y, PAT_W, PAT_H = 1100, 560, 640, 400
REGION = (PAT_X + 13, PAT_Y + 3, 613, 387)  # inside the pattern; 613 = 9*64+37, 387 = 6*64+3


def pattern_bytes() -> bytes:
    rnd = random.Random(1)
    buf = bytearray()
    for y in range(PAT_H):
        band = y // 50
        for x in range(PAT_W):
            if band == 0:
                p = (x * 255 // PAT_W, y * 5, 128)
            elif band == 1:
                p = (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
            elif band == 2:
                p = (255, 255, 255) if (x // 3 + y) % 2 else (0, 0, 80)
            elif band == 3:
                p = ((255, 0, 0), (0, 255, 0), (0, 0, 255))[(x // 5 + y // 7) % 3]
            elif band == 4:
                i = (x // 2 + y) % 12
                p = (i * 20, 255 - i * 20, i * 7)
            elif band == 5:
                i = (x // 17) % 20
                p = (i * 9, 200, 255 - i * 9)
            elif band == 6:
                p = (x * 255 // PAT_W, 0, 0) if x < 300 else (10, 20, 30)
            else:
                p = (rnd.randrange(2) * 255, 100, 50)
            buf += bytes((p[2], p[1], p[0], 0))  # BGRX, 24-bit TrueColor visual
    return bytes(buf)


def show_pattern(disp_name: str):
    d = display.Display(disp_name)
    s = d.screen()
    win = s.root.create_window(PAT_X, PAT_Y, PAT_W, PAT_H, 0, s.root_depth,
                               background_pixel=0, override_redirect=True)
    win.map()
    gc = win.create_gc()
    data = pattern_bytes()
    row = PAT_W * 4
    for y0 in range(0, PAT_H, 50):
        win.put_image(gc, 0, y0, PAT_W, 50, X.ZPixmap, 24, 0, data[y0 * row:(y0 + 50) * row])
    d.sync()
    return d


class OneRegion(vc.BenchFactory):
    def __init__(self, nums, decoder):
        super().__init__(nums)
        self.zrle_decoder = decoder
        self.n = 0
        self.pixels = None

    def ready(self, c):
        super().ready(c)
        c.viewing = False

    def updated(self, c):
        self.n += 1
        if self.n == 1:
            c.framebufferUpdateRequest(*REGION, incremental=False)
        else:
            x, y, w, h = REGION
            self.pixels = c.screen.crop((x, y, x + w, y + h))
            self.finish({})


def grab(port: int, enc: str, decoder: str):
    nums, _ = vc.parse_encodings(enc + ",cursor")
    f = OneRegion(nums, decoder)
    f.stats = vc.Stats()
    reactor.callLater(20, f.fail, "timeout")
    reactor.connectTCP("127.0.0.1", port, f)
    reactor.run()  # stopped by finish()/fail(); restarted below via a fresh process
    return f


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--display", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.case:  # child: one connection, one encoding; prints the region as hex
        enc, dec = a.case.split(":")
        f = grab(a.port, enc, dec)
        print(json.dumps({"error": f.error,
                          "pixels": None if f.pixels is None else f.pixels.tobytes().hex()}))
        return 0
    import subprocess
    keep = show_pattern(a.display)  # noqa: F841 - window lives while we run
    results, ref = {}, None
    for case in ("raw:fixed", "zrle:fixed", "hextile:fixed", "zrle:vncdotool"):
        out = subprocess.run([sys.executable, __file__, "--display", a.display, "--port", str(a.port),
                              "--case", case], capture_output=True, text=True, timeout=60)
        try:
            r = json.loads(out.stdout.strip().splitlines()[-1])
        except Exception:
            r = {"error": (out.stderr or out.stdout)[-300:], "pixels": None}
        if case == "raw:fixed":
            ref = r["pixels"]
        if r["pixels"] is None:
            results[case] = "error: " + str(r["error"])
        else:
            results[case] = "identical" if r["pixels"] == ref else "DIFFERENT"
    ok = all(results[c] == "identical" for c in ("raw:fixed", "zrle:fixed", "hextile:fixed"))
    print(json.dumps({"region": REGION, "results": results, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
