//! The pointer (XFixes `GetCursorImage`): its position always, its image
//! only when the cursor changed (XFixes' cursor serial).

use lifeline_runtime::wit;
use x11rb::protocol::xfixes::GetCursorImageReply;

/// Largest pointer image passed on (X cursors are at most a few hundred
/// pixels; a bigger one is reported without its image).
///
/// Threat: a program setting a huge cursor would make every change copy
/// (and send) megabytes.
pub const MAX_CURSOR_SIDE: u16 = 512;

/// Remembers the last cursor image passed on.
#[derive(Debug, Default)]
pub struct CursorTracker {
    last_serial: Option<u32>,
}

impl CursorTracker {
    /// The pointer from `reply`, with the image when its serial differs
    /// from the previous call's (the first call: always).
    pub fn state(&mut self, reply: &GetCursorImageReply) -> wit::CursorState {
        let changed = self.last_serial != Some(reply.cursor_serial);
        self.last_serial = Some(reply.cursor_serial);
        let fits = reply.width <= MAX_CURSOR_SIDE && reply.height <= MAX_CURSOR_SIDE;
        let image = (changed && fits).then(|| wit::CursorImage {
            width: u32::from(reply.width),
            height: u32::from(reply.height),
            hot_x: u32::from(reply.xhot),
            hot_y: u32::from(reply.yhot),
            rgba: argb_to_rgba(&reply.cursor_image),
        });
        wit::CursorState {
            x: i32::from(reply.x),
            y: i32::from(reply.y),
            image,
        }
    }
}

/// XFixes cursor pixels (32-bit ARGB, premultiplied alpha) as RGBA bytes,
/// not premultiplied.
pub fn argb_to_rgba(pixels: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pixels.len() * 4);
    for &p in pixels {
        let [a, r, g, b] = p.to_be_bytes();
        out.extend_from_slice(&[
            unpremultiply(r, a),
            unpremultiply(g, a),
            unpremultiply(b, a),
            a,
        ]);
    }
    out
}

/// A premultiplied colour channel back to its straight value (rounded).
fn unpremultiply(c: u8, a: u8) -> u8 {
    if a == 0 {
        return 0;
    }
    let v = (u32::from(c) * 255 + u32::from(a) / 2) / u32::from(a);
    u8::try_from(v.min(255)).unwrap_or(255)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn premultiplied_argb_becomes_straight_rgba() {
        let px = [
            0xff10_2030, // opaque
            0x8080_4000, // half transparent red-ish: 0x80/0x80 → 255
            0x0000_0000, // transparent
            0x4020_1000, // quarter: 0x20*255/0x40 = 127.5 → 128
            0x10ff_ffff, // invalid (colour above alpha): clamped
        ];
        assert_eq!(
            argb_to_rgba(&px),
            vec![
                0x10, 0x20, 0x30, 0xff, //
                0xff, 0x80, 0x00, 0x80, //
                0, 0, 0, 0, //
                0x80, 0x40, 0x00, 0x40, //
                0xff, 0xff, 0xff, 0x10,
            ]
        );
    }

    #[test]
    fn the_image_comes_only_when_the_cursor_changed() {
        let reply = |serial, x| GetCursorImageReply {
            sequence: 0,
            length: 0,
            x,
            y: 7,
            width: 1,
            height: 1,
            xhot: 0,
            yhot: 0,
            cursor_serial: serial,
            cursor_image: vec![0xff00_0000],
        };
        let mut t = CursorTracker::default();
        let first = t.state(&reply(3, 5));
        assert_eq!((first.x, first.y), (5, 7));
        assert_eq!(first.image.map(|i| i.rgba), Some(vec![0, 0, 0, 255]));
        assert!(t.state(&reply(3, 6)).image.is_none(), "same cursor");
        assert!(t.state(&reply(4, 6)).image.is_some(), "a new cursor");
    }
}
