//! Keysym → keycode lookup in an X keyboard mapping (the table
//! `GetKeyboardMapping` returns), the way X clients read it: level 1 is
//! plain, level 2 with Shift; a keycode listing one letter means its lower
//! case plain and its upper case with Shift.

/// X's "no symbol".
pub const NO_SYMBOL: u32 = 0;
/// `Shift_L`, pressed around a keysym only reachable with Shift.
pub const XK_SHIFT_L: u32 = 0xffe1;
/// `Shift_R`.
pub const XK_SHIFT_R: u32 = 0xffe2;

/// Which level of its keycode a keysym is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// No modifier.
    Plain,
    /// With Shift.
    Shifted,
}

/// Where a keysym is on the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPosition {
    pub keycode: u8,
    pub level: Level,
}

/// A keyboard mapping: `per_keycode` keysyms for each keycode from
/// `min_keycode` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    min_keycode: u8,
    per_keycode: u8,
    syms: Vec<u32>,
}

impl Keymap {
    pub fn new(min_keycode: u8, per_keycode: u8, syms: Vec<u32>) -> Keymap {
        Keymap {
            min_keycode,
            per_keycode: per_keycode.max(1),
            syms,
        }
    }

    /// Keysyms per keycode in this table.
    pub fn per_keycode(&self) -> u8 {
        self.per_keycode
    }

    /// Every keycode of the table with its keysyms.
    fn rows(&self) -> impl Iterator<Item = (u8, &[u32])> {
        self.syms
            .chunks(usize::from(self.per_keycode))
            .enumerate()
            .filter_map(|(i, row)| {
                let code = usize::from(self.min_keycode) + i;
                u8::try_from(code).ok().map(|c| (c, row))
            })
    }

    /// The plain and the shifted keysym of a keycode's first group.
    fn levels(row: &[u32]) -> (u32, u32) {
        let plain = row.first().copied().unwrap_or(NO_SYMBOL);
        let shifted = row.get(1).copied().unwrap_or(NO_SYMBOL);
        if shifted != NO_SYMBOL {
            return (plain, shifted);
        }
        match case_pair(plain) {
            Some((lower, upper)) => (lower, upper),
            None => (plain, plain),
        }
    }

    /// Where `keysym` is: plain on any keycode first, else shifted.
    pub fn find(&self, keysym: u32) -> Option<KeyPosition> {
        if keysym == NO_SYMBOL {
            return None;
        }
        let mut shifted = None;
        for (keycode, row) in self.rows() {
            let (plain, upper) = Keymap::levels(row);
            if plain == keysym {
                return Some(KeyPosition {
                    keycode,
                    level: Level::Plain,
                });
            }
            if upper == keysym && shifted.is_none() {
                shifted = Some(KeyPosition {
                    keycode,
                    level: Level::Shifted,
                });
            }
        }
        shifted
    }

    /// Whether Shift changes what `keycode` types.
    pub fn shift_matters(&self, keycode: u8) -> bool {
        self.row(keycode)
            .map(Keymap::levels)
            .is_some_and(|(plain, upper)| plain != upper)
    }

    /// Whether `keycode` is a Shift key.
    pub fn is_shift(&self, keycode: u8) -> bool {
        self.row(keycode)
            .and_then(|r| r.first())
            .is_some_and(|s| matches!(*s, XK_SHIFT_L | XK_SHIFT_R))
    }

    fn row(&self, keycode: u8) -> Option<&[u32]> {
        let i = usize::from(keycode.checked_sub(self.min_keycode)?);
        let n = usize::from(self.per_keycode);
        self.syms.get(i * n..(i + 1) * n)
    }

    /// Keycodes that type nothing (free for a temporary keysym).
    pub fn unused(&self) -> Vec<u8> {
        self.rows()
            .filter(|(_, row)| row.iter().all(|s| *s == NO_SYMBOL))
            .map(|(c, _)| c)
            .collect()
    }

    /// Sets the keysyms of `keycode` (as `ChangeKeyboardMapping` did).
    pub fn set(&mut self, keycode: u8, keysym: u32) {
        let n = usize::from(self.per_keycode);
        if let Some(i) = keycode.checked_sub(self.min_keycode).map(usize::from)
            && let Some(row) = self.syms.get_mut(i * n..(i + 1) * n)
        {
            row.fill(NO_SYMBOL);
            if keysym != NO_SYMBOL {
                row.iter_mut().take(2).for_each(|s| *s = keysym);
            }
        }
    }

    /// The row `set` writes for `keysym`, as sent to the server.
    pub fn row_for(&self, keysym: u32) -> Vec<u32> {
        let mut row = vec![NO_SYMBOL; usize::from(self.per_keycode)];
        if keysym != NO_SYMBOL {
            row.iter_mut().take(2).for_each(|s| *s = keysym);
        }
        row
    }
}

/// The lower and upper case keysyms of a Latin letter keysym.
fn case_pair(keysym: u32) -> Option<(u32, u32)> {
    match keysym {
        0x41..=0x5a => Some((keysym + 0x20, keysym)),
        0x61..=0x7a => Some((keysym, keysym - 0x20)),
        // Latin-1 letters À..Þ / à..þ, less × and ÷.
        0xc0..=0xde if keysym != 0xd7 => Some((keysym + 0x20, keysym)),
        0xe0..=0xfe if keysym != 0xf7 => Some((keysym, keysym - 0x20)),
        _ => None,
    }
}

/// A keysym's name for error messages: the character, or its number.
pub fn describe(keysym: u32) -> String {
    // Latin-1 keysyms are their characters; Unicode keysyms 0x01000000+.
    let ch = match keysym {
        0x20..=0x7e | 0xa0..=0xff => char::from_u32(keysym),
        0x0100_0000..=0x0110_ffff => char::from_u32(keysym - 0x0100_0000),
        _ => None,
    };
    match ch {
        Some(c) => format!("keysym 0x{keysym:x} ({c:?})"),
        None => format!("keysym 0x{keysym:x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keycodes 10..: a/A, 1/!, Shift_L, a letter listed once (B), an
    /// empty keycode, Return.
    fn table() -> Keymap {
        Keymap::new(
            10,
            3,
            vec![
                0x61, 0x41, 0, // 10: a A
                0x31, 0x21, 0, // 11: 1 !
                XK_SHIFT_L, 0, 0, // 12
                0x42, 0, 0, // 13: B alone → b / B
                0, 0, 0, // 14: unused
                0xff0d, 0, 0, // 15: Return
            ],
        )
    }

    #[test]
    fn plain_and_shifted_keysyms() {
        let k = table();
        let at = |keycode, level| Some(KeyPosition { keycode, level });
        assert_eq!(k.find(0x61), at(10, Level::Plain));
        assert_eq!(k.find(0x41), at(10, Level::Shifted));
        assert_eq!(k.find(0x21), at(11, Level::Shifted));
        assert_eq!(k.find(0x62), at(13, Level::Plain));
        assert_eq!(k.find(0x42), at(13, Level::Shifted));
        assert_eq!(k.find(0xff0d), at(15, Level::Plain));
        assert_eq!(k.find(XK_SHIFT_L), at(12, Level::Plain));
        assert_eq!(k.find(0x20ac), None);
        assert_eq!(k.find(NO_SYMBOL), None);
        assert!(k.shift_matters(10) && !k.shift_matters(15));
        assert!(k.is_shift(12) && !k.is_shift(10));
    }

    #[test]
    fn unused_keycodes_take_a_temporary_keysym() {
        let mut k = table();
        assert_eq!(k.unused(), vec![14]);
        k.set(14, 0x20ac);
        assert_eq!(
            k.find(0x20ac),
            Some(KeyPosition {
                keycode: 14,
                level: Level::Plain
            })
        );
        assert_eq!(k.row_for(0x20ac), vec![0x20ac, 0x20ac, 0]);
        assert!(k.unused().is_empty());
        k.set(14, NO_SYMBOL);
        assert_eq!(k.unused(), vec![14]);
        assert_eq!(k.find(0x20ac), None);
    }

    #[test]
    fn keysyms_are_described_by_their_character() {
        assert_eq!(describe(0x61), "keysym 0x61 ('a')");
        assert_eq!(describe(0x10020ac), "keysym 0x10020ac ('€')");
        assert_eq!(describe(0xff0d), "keysym 0xff0d");
    }
}
