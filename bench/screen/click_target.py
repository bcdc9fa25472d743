#!/usr/bin/env python3
"""Stand-in click target for the VNC latency test.

Maps one borderless X window at X,Y (W x H) and fills it with the next colour
of a fixed cycle on every ButtonPress, so each click changes every pixel of the
area.  Prints "ready" on stdout once the window is mapped and painted.

    python3 bench/screen/click_target.py --display :97 --x 100 --y 100 --w 200 --h 200
"""
import argparse
import sys

from Xlib import X, display

COLOURS = [(0xE0, 0x20, 0x20), (0x20, 0xC0, 0x20), (0x20, 0x40, 0xE0), (0xF0, 0xD0, 0x10)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--display", default=None, help="X display, e.g. :97 (default $DISPLAY)")
    for name, default in (("x", 100), ("y", 100), ("w", 200), ("h", 200)):
        ap.add_argument(f"--{name}", type=int, default=default)
    a = ap.parse_args()

    d = display.Display(a.display)
    screen = d.screen()
    cmap = screen.default_colormap
    pixels = [cmap.alloc_color(r * 257, g * 257, b * 257).pixel for r, g, b in COLOURS]
    win = screen.root.create_window(
        a.x, a.y, a.w, a.h, 0, screen.root_depth,
        background_pixel=pixels[0],
        override_redirect=True,  # no window manager needed; position is exact
        event_mask=X.ButtonPressMask | X.ExposureMask,
    )
    win.map()
    win.clear_area()
    d.sync()
    print("ready", flush=True)
    n = 0
    while True:
        ev = d.next_event()
        if ev.type == X.ButtonPress:
            n += 1
            win.change_attributes(background_pixel=pixels[n % len(pixels)])
            win.clear_area()
            d.flush()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
