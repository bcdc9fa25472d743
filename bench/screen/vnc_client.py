#!/usr/bin/env python3
"""VNC side of the Lifeline screen-sharing benchmark.

A real VNC client (vncdotool's RFB protocol and decoders, on Twisted) that
connects to a VNC server (x11vnc in the benchmark) and measures it the way a
viewer uses it.  Two subcommands, each printing exactly one JSON line on stdout:

  updates  --host H --port P --seconds S [--encodings LIST]
      Requests a full update, then incremental updates back to back (the next
      request as soon as an update has been applied) for S seconds.
      {"updates", "rects", "bytes_received", "seconds", "encodings", ...}

  latency  --host H --port P --count N --x X --y Y --w W --h H [--encodings LIST]
      N times: click (press+release) at X,Y and time until an applied update
      changes the pixels of the area X,Y,W,H.  5 s per sample at most.
      {"p50_ms", "p90_ms", "max_ms", "samples", "timeouts", ...}

See README.md beside this file.  Exit code 0 on success, 2 on a connection or
protocol error (the JSON line then has an "error" field).
"""
from __future__ import annotations

import argparse
import json
import random
import struct
import sys
import time
from typing import Any

try:
    from PIL import Image
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred, inlineCallbacks
    from vncdotool.client import VNCDoToolClient, VNCDoToolFactory
    from vncdotool.const import Encoding
except ImportError as e:  # pragma: no cover - environment problem
    print(json.dumps({"error": f"missing dependency ({e}); "
                      "pip install -r bench/screen/requirements.txt"}))
    sys.exit(2)

# Names accepted by --encodings -> RFB encoding numbers.  Only what vncdotool
# can decode (rfb.RFBClient.SUPPORTED_ENCODINGS); vncdotool has no Tight,
# Zlib, ZlibHex, TRLE, XCursor or CursorPos decoder.
ENCODING_NAMES: dict[str, int] = {
    "zrle": Encoding.ZRLE,
    "hextile": Encoding.HEXTILE,
    "rre": Encoding.RRE,
    "corre": Encoding.CORRE,
    "raw": Encoding.RAW,
    "copyrect": Encoding.COPY_RECTANGLE,
    "cursor": Encoding.PSEUDO_CURSOR,          # RichCursor: shape sent apart, not drawn into the fb
    "desktopsize": Encoding.PSEUDO_DESKTOP_SIZE,
    "lastrect": Encoding.PSEUDO_LAST_RECT,
}
NAME_OF = {int(v): k for k, v in ENCODING_NAMES.items()}

# Order matters: the server picks the first pixel encoding it supports.  This is
# the best vncdotool can decode, in the order a viewer (TigerVNC, vncviewer)
# lists them, with CopyRect and the usual pseudo-encodings.
DEFAULT_ENCODINGS = "zrle,hextile,rre,corre,raw,copyrect,cursor,desktopsize,lastrect"

TIMEOUT_S = 5.0


def parse_encodings(text: str) -> tuple[list[int], list[str]]:
    """'zrle,raw,compress:6' -> ([16, 0, -250], ['zrle', 'raw', 'compress:6'])."""
    nums, names = [], []
    for tok in (t.strip().lower() for t in text.replace(" ", ",").split(",")):
        if not tok:
            continue
        if tok.startswith(("compress:", "quality:")):
            # Pseudo-encodings: CompressLevel -256+N, QualityLevel -32+N (N 0..9).
            kind, _, n = tok.partition(":")
            level = int(n)
            if not 0 <= level <= 9:
                raise SystemExit(f"--encodings: {tok}: level must be 0..9")
            nums.append((-256 if kind == "compress" else -32) + level)
            names.append(tok)
            continue
        if tok not in ENCODING_NAMES:
            raise SystemExit(
                f"--encodings: {tok!r} is not decodable by vncdotool; choose from "
                + ", ".join(ENCODING_NAMES) + ", compress:N, quality:N")
        nums.append(int(ENCODING_NAMES[tok]))
        names.append(tok)
    if not any(n >= 0 for n in nums):
        nums.append(int(Encoding.RAW))  # RFB: Raw is always allowed
        names.append("raw")
    return nums, names


class Stats:
    def __init__(self) -> None:
        self.t_connect = time.perf_counter()
        self.t_server_init: float | None = None
        self.t_first_update: float | None = None
        self.t_end: float | None = None
        self.cpu0 = time.process_time()
        self.bytes = 0
        self.updates = 0
        self.rects = 0            # pixel rectangles (encoding >= 0)
        self.pseudo_rects = 0     # cursor shape, desktop size (not LastRect marker)
        self.by_encoding: dict[str, int] = {}
        self.counting = True
        # ms since the connect started at which each update was applied
        # ("update_ms" in the output, so a caller can count a time window).
        self.update_ms: list[float] = []
        # pixels of the pixel rectangles (encoding >= 0) of each update
        # ("update_px"), and of the update being received.
        self.update_px: list[int] = []
        self.pending_px = 0

    def enc_seen(self, enc: int) -> None:
        if enc == Encoding.PSEUDO_LAST_RECT:
            return
        if enc >= 0:
            self.rects += 1
        else:
            self.pseudo_rects += 1
        name = NAME_OF.get(enc) or str(Encoding.lookup(enc)).split(".")[-1].rstrip(">").lower()
        self.by_encoding[name] = self.by_encoding.get(name, 0) + 1

    def common(self) -> dict[str, Any]:
        end = self.t_end or time.perf_counter()
        pixel = {k: v for k, v in self.by_encoding.items()
                 if ENCODING_NAMES.get(k, 0) >= 0 and k in ENCODING_NAMES}
        used = sorted(pixel, key=lambda k: -pixel[k])
        ms = lambda t: None if t is None else round((t - self.t_connect) * 1000, 2)
        return {
            "encodings": used,                       # pixel encodings the server actually sent, most used first
            "rects_by_encoding": dict(sorted(self.by_encoding.items(), key=lambda kv: -kv[1])),
            "bytes_received": self.bytes,            # every byte read from the socket, connect..end
            "seconds": round(end - self.t_connect, 4),
            "connect_ms": ms(self.t_server_init),    # TCP connect + RFB handshake until ServerInit
            "first_update_ms": ms(self.t_first_update),  # first (full) update applied
            "client_cpu_seconds": round(time.process_time() - self.cpu0, 3),
        }


class BenchClient(VNCDoToolClient):
    """vncdotool's client, plus byte/rect counting, CopyRect and a viewer loop."""

    def dataReceived(self, data: bytes) -> None:
        st: Stats = self.factory.stats
        if st.counting:
            st.bytes += len(data)
        super().dataReceived(data)

    def vncConnectionMade(self) -> None:
        st: Stats = self.factory.stats
        st.t_server_init = time.perf_counter()
        self.setImageMode()  # keeps the server's pixel format when PIL can read it
        self.screen = Image.new("RGB", (self.width, self.height), "black")
        self.setEncodings(self.factory.encoding_numbers)
        self.viewing = True
        self.framebufferUpdateRequest(incremental=False)  # a viewer's first request
        self.factory.ready(self)

    def _handleRectangle(self, block: bytes) -> None:
        _x, _y, w, h, enc = struct.unpack("!HHHHi", block)
        self.factory.stats.enc_seen(enc)
        if enc >= 0:
            self.factory.stats.pending_px += w * h
        super()._handleRectangle(block)

    def copyRectangle(self, srcx: int, srcy: int, x: int, y: int, width: int, height: int) -> None:
        # vncdotool decodes CopyRect but leaves applying it to the application.
        if self.screen is not None and width and height:
            self.screen.paste(self.screen.crop((srcx, srcy, srcx + width, srcy + height)), (x, y))

    # --- ZRLE tile data.  vncdotool 1.4.2 (newest on PyPI) reads packed-palette
    # tiles as one bitstream without the per-row byte padding of RFC 6143
    # 7.7.6, which misdecodes and desyncs on tiles whose width is not a
    # multiple of 8/4/2, and it walks every pixel in Python (fixed upstream
    # after 1.4.2: vncdotool PRs #439, #466).  This is the same decoder done by
    # the RFC, one PIL call per tile; --zrle-decoder vncdotool restores theirs.
    _CPIXEL_MODE = {"BGRX": "BGR", "RGBX": "RGB", "BGR": "BGR", "RGB": "RGB"}

    def _handleDecodeZRLEdata(self, block: bytes, x: int, y: int, width: int, height: int) -> None:
        cmode = self._CPIXEL_MODE.get(self._image_mode)
        if self.factory.zrle_decoder != "fixed" or cmode is None:
            return super()._handleDecodeZRLEdata(block, x, y, width, height)
        data = self._zlib_stream.decompress(block)
        screen = self.screen
        pos = 0

        def palette(size: int) -> bytes:
            nonlocal pos
            pal = data[pos:pos + 3 * size]
            pos += 3 * size
            if cmode == "BGR":
                rgb = bytearray(pal)
                rgb[0::3], rgb[2::3] = pal[2::3], pal[0::3]
                return bytes(rgb)
            return pal

        def run_length() -> int:
            nonlocal pos
            run = 1
            while True:
                b = data[pos]
                pos += 1
                run += b
                if b != 255:
                    return run

        for ty in range(y, y + height, 64):
            th = min(64, y + height - ty)
            for tx in range(x, x + width, 64):
                tw = min(64, x + width - tx)
                n = tw * th
                sub = data[pos]
                pos += 1
                if sub == 0:  # raw CPIXELs
                    screen.paste(Image.frombytes("RGB", (tw, th), data[pos:pos + 3 * n], "raw", cmode), (tx, ty))
                    pos += 3 * n
                elif sub == 1:  # solid
                    screen.paste(Image.frombytes("RGB", (1, 1), data[pos:pos + 3], "raw", cmode).getpixel((0, 0)),
                                 (tx, ty, tx + tw, ty + th))
                    pos += 3
                elif sub <= 16:  # packed palette, rows padded to a byte
                    pal = palette(sub)
                    bits = 1 if sub == 2 else 2 if sub <= 4 else 4
                    size = (tw * bits + 7) // 8 * th
                    img = Image.frombytes("P", (tw, th), data[pos:pos + size], "raw", f"P;{bits}")
                    pos += size
                    img.putpalette(pal)
                    screen.paste(img.convert("RGB"), (tx, ty))
                elif sub == 128:  # plain RLE
                    out = bytearray()
                    while len(out) < 3 * n:
                        c = data[pos:pos + 3]
                        pos += 3
                        out += c * run_length()
                    if len(out) != 3 * n:
                        raise ValueError("ZRLE: RLE run past the end of a tile")
                    screen.paste(Image.frombytes("RGB", (tw, th), bytes(out), "raw", cmode), (tx, ty))
                elif sub >= 130:  # palette RLE
                    pal = palette(sub - 128)
                    idx = bytearray()
                    while len(idx) < n:
                        b = data[pos]
                        pos += 1
                        if b & 0x80:
                            idx += bytes((b & 0x7F,)) * run_length()
                        else:
                            idx.append(b)
                    if len(idx) != n:
                        raise ValueError("ZRLE: palette RLE run past the end of a tile")
                    img = Image.frombytes("P", (tw, th), bytes(idx))
                    img.putpalette(pal)
                    screen.paste(img.convert("RGB"), (tx, ty))
                else:
                    raise ValueError(f"ZRLE: invalid subencoding {sub}")
        if pos != len(data):
            raise ValueError(f"ZRLE: {len(data) - pos} bytes left after the tiles of a rectangle")
        self._doConnection()

    def commitUpdate(self, rectangles: Any = None) -> None:
        st: Stats = self.factory.stats
        if not st.counting:
            return
        st.updates += 1
        st.update_ms.append(round((time.perf_counter() - st.t_connect) * 1000, 2))
        st.update_px.append(st.pending_px)
        st.pending_px = 0
        if st.t_first_update is None:
            st.t_first_update = time.perf_counter()
        self.factory.updated(self)
        if self.viewing:
            self.framebufferUpdateRequest(incremental=True)

    def region(self, x: int, y: int, w: int, h: int) -> bytes:
        return self.screen.crop((x, y, x + w, y + h)).tobytes()


class BenchFactory(VNCDoToolFactory):
    protocol = BenchClient
    shared = True        # do not kick other viewers off the server
    password = None

    def __init__(self, encoding_numbers: list[int]) -> None:
        super().__init__()
        self.encoding_numbers = encoding_numbers
        self.zrle_decoder = "fixed"
        # With RichCursor negotiated the server sends the cursor shape apart;
        # like a viewer's local cursor it is not part of the framebuffer we compare.
        self.nocursor = int(Encoding.PSEUDO_CURSOR) in encoding_numbers
        self.stats = Stats()
        self.client: BenchClient | None = None
        self.error: str | None = None
        self.result: dict[str, Any] | None = None

    # hooks for the modes
    def ready(self, client: BenchClient) -> None:
        self.client = client

    def updated(self, client: BenchClient) -> None:
        pass

    def fail(self, msg: str) -> None:
        if self.error is None and self.result is None:
            self.error = msg
            self.stats.t_end = time.perf_counter()
            if reactor.running:
                reactor.stop()

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        self.fail(f"connection failed: {getattr(reason, 'value', reason)}")

    def clientConnectionLost(self, connector: Any, reason: Any) -> None:
        self.fail(f"connection lost: {getattr(reason, 'value', reason)}")

    def finish(self, result: dict[str, Any]) -> None:
        if self.error is not None or self.result is not None:
            return
        st = self.stats
        st.counting = False
        st.t_end = time.perf_counter()
        self.result = result
        if self.client is not None:
            self.client.viewing = False
            self.client.transport.loseConnection()
        reactor.callLater(0, reactor.stop)


class UpdatesFactory(BenchFactory):
    def __init__(self, encoding_numbers: list[int], seconds: float) -> None:
        super().__init__(encoding_numbers)
        reactor.callLater(seconds, self.done)

    def done(self) -> None:
        if self.client is None:
            self.fail("no ServerInit before the end of the run")
            return
        self.finish({})


class LatencyFactory(BenchFactory):
    def __init__(self, encoding_numbers: list[int], a: argparse.Namespace) -> None:
        super().__init__(encoding_numbers)
        self.a = a
        self.samples: list[float] = []
        self.timeouts = 0
        self.pending: tuple[bytes, float, Deferred] | None = None
        self.first_update = Deferred()

    def ready(self, client: BenchClient) -> None:
        super().ready(client)
        self.run()

    def updated(self, client: BenchClient) -> None:
        if not self.first_update.called:
            self.first_update.callback(None)
        if self.pending is not None:
            base, t0, d = self.pending
            a = self.a
            if client.region(a.x, a.y, a.w, a.h) != base:
                self.pending = None
                d.callback((time.perf_counter() - t0) * 1000.0)

    @staticmethod
    def sleep(seconds: float) -> Deferred:
        d = Deferred()
        reactor.callLater(seconds, d.callback, None)
        return d

    @inlineCallbacks
    def run(self):
        a, c = self.a, self.client
        yield self.first_update
        c.pointerEvent(a.click_x, a.click_y, 0)  # bring the pointer there first
        for _ in range(a.count):
            # let the previous change and any motion settle; the jitter puts the
            # click at a random phase of whatever period the server polls at
            yield self.sleep(a.gap + random.uniform(0.0, a.jitter))
            if self.error is not None:
                return
            base = c.region(a.x, a.y, a.w, a.h)
            d = Deferred()
            timer = reactor.callLater(TIMEOUT_S, lambda d=d: d.called or d.callback(None))
            t0 = time.perf_counter()
            self.pending = (base, t0, d)
            c.pointerEvent(a.click_x, a.click_y, 1)  # button 1 down
            c.pointerEvent(a.click_x, a.click_y, 0)  # up
            ms = yield d
            if timer.active():
                timer.cancel()
            self.pending = None
            if ms is None:
                self.timeouts += 1
            else:
                self.samples.append(round(ms, 3))
        s = sorted(self.samples)
        self.finish({
            "p50_ms": pct(s, 50), "p90_ms": pct(s, 90), "max_ms": s[-1] if s else None,
            "mean_ms": round(sum(s) / len(s), 3) if s else None,
            "samples": self.samples, "count": a.count, "timeouts": self.timeouts,
            "timeout_s": TIMEOUT_S,
            "area": [a.x, a.y, a.w, a.h], "click": [a.click_x, a.click_y],
        })


def _version(dist: str) -> str:
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:
        return "unknown"


def pct(sorted_vals: list[float], p: float) -> float | None:
    """Percentile with linear interpolation between closest ranks."""
    if not sorted_vals:
        return None
    k = (len(sorted_vals) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return round(sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo), 3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="VNC client for the screen-sharing benchmark")
    sub = ap.add_subparsers(dest="mode", required=True)
    for name in ("updates", "latency"):
        p = sub.add_parser(name)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--encodings", default=DEFAULT_ENCODINGS,
                       help=f"comma list, preferred first (default {DEFAULT_ENCODINGS}); "
                            "also compress:N / quality:N pseudo-encodings")
        p.add_argument("--connect-timeout", type=float, default=10.0)
        p.add_argument("--zrle-decoder", choices=("fixed", "vncdotool"), default="fixed",
                       help="ZRLE tile decoder: 'fixed' (default, RFC-correct row padding, "
                            "one PIL call per tile) or 'vncdotool' (1.4.2's own, per pixel)")
        p.add_argument("--screenshot", metavar="PNG", default=None,
                       help="save the client's framebuffer at the end (to check decoding)")
        if name == "updates":
            p.add_argument("--seconds", type=float, required=True)
        else:
            p.add_argument("--count", type=int, required=True)
            for k in ("x", "y", "w", "h"):
                p.add_argument(f"--{k}", type=int, required=True)
            p.add_argument("--click-x", type=int, default=None,
                           help="where to click (default: centre of the area)")
            p.add_argument("--click-y", type=int, default=None)
            p.add_argument("--gap", type=float, default=0.5,
                           help="seconds to wait before each click (default 0.5)")
            p.add_argument("--jitter", type=float, default=0.0,
                           help="plus a random 0..JITTER seconds (default 0)")
    a = ap.parse_args(argv)
    nums, names = parse_encodings(a.encodings)

    if a.mode == "updates":
        f: BenchFactory = UpdatesFactory(nums, a.seconds)
    else:
        if a.count < 1 or a.w < 1 or a.h < 1:
            ap.error("--count, --w and --h must be >= 1")
        a.click_x = a.x + a.w // 2 if a.click_x is None else a.click_x
        a.click_y = a.y + a.h // 2 if a.click_y is None else a.click_y
        f = LatencyFactory(nums, a)
    # A run that cannot finish (server hung) still ends: S or count*(gap+5s) + margin.
    budget = (a.seconds if a.mode == "updates" else a.count * (a.gap + TIMEOUT_S)) \
        + a.connect_timeout + 10.0
    reactor.callLater(budget, f.fail, f"overall time budget of {budget:.0f}s exceeded")

    f.zrle_decoder = a.zrle_decoder
    f.stats = Stats()
    reactor.connectTCP(a.host, a.port, f, timeout=a.connect_timeout)
    reactor.run()

    st = f.stats
    if a.screenshot and f.client is not None and f.client.screen is not None:
        f.client.screen.save(a.screenshot)
    if a.mode == "updates":
        out: dict[str, Any] = {"updates": st.updates, "rects": st.rects,
                               "update_ms": st.update_ms, "update_px": st.update_px}
    else:
        out = dict(f.result or {})
    out.update(st.common())
    out["offered_encodings"] = names
    out["zrle_decoder"] = a.zrle_decoder
    out["client"] = f"vncdotool {_version('vncdotool')}"
    out["server_pixel_format"] = (str(f.client.pixel_format) if f.client else None)
    if f.error is not None:
        out["error"] = f.error
    print(json.dumps(out), flush=True)
    return 2 if f.error is not None else 0


if __name__ == "__main__":
    sys.exit(main())
