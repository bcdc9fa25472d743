// Browser keyboard events → X keysyms, what the screen plugin's Key input
// carries (sdk/screen-format: `u32 keysym`). Pure: no DOM.
//
// - Named keys (Enter, arrows, F1–F12, modifiers, …) come from the table
//   below; modifiers and other keys with a left and a right variant are
//   told apart by `KeyboardEvent.code`.
// - A key that types one character: a printable Latin-1 character
//   (U+0020–U+007E, U+00A0–U+00FF) is its own keysym; any other
//   character is 0x01000000 + its code point (X's Unicode keysyms).
// - Dead keys, IME composition and unknown keys give `null` (nothing sent).

/** Keysyms by `KeyboardEvent.code`, for keys whose side matters. */
export const CODE_KEYSYMS = Object.freeze({
  ShiftLeft: 0xffe1,
  ShiftRight: 0xffe2,
  ControlLeft: 0xffe3,
  ControlRight: 0xffe4,
  AltLeft: 0xffe9,
  AltRight: 0xffea,
  MetaLeft: 0xffeb,
  MetaRight: 0xffec,
  OSLeft: 0xffeb,
  OSRight: 0xffec,
  NumpadEnter: 0xff8d,
});

/** Keysyms by `KeyboardEvent.key`, for named (non-character) keys. */
export const KEY_KEYSYMS = Object.freeze({
  Backspace: 0xff08,
  Tab: 0xff09,
  Enter: 0xff0d,
  Pause: 0xff13,
  ScrollLock: 0xff14,
  Escape: 0xff1b,
  Home: 0xff50,
  ArrowLeft: 0xff51,
  ArrowUp: 0xff52,
  ArrowRight: 0xff53,
  ArrowDown: 0xff54,
  PageUp: 0xff55,
  PageDown: 0xff56,
  End: 0xff57,
  PrintScreen: 0xff61,
  Insert: 0xff63,
  ContextMenu: 0xff67,
  NumLock: 0xff7f,
  F1: 0xffbe,
  F2: 0xffbf,
  F3: 0xffc0,
  F4: 0xffc1,
  F5: 0xffc2,
  F6: 0xffc3,
  F7: 0xffc4,
  F8: 0xffc5,
  F9: 0xffc6,
  F10: 0xffc7,
  F11: 0xffc8,
  F12: 0xffc9,
  Shift: 0xffe1,
  Control: 0xffe3,
  CapsLock: 0xffe5,
  Meta: 0xffeb,
  OS: 0xffeb,
  Alt: 0xffe9,
  AltGraph: 0xfe03,
  Delete: 0xffff,
});

/** The keysym of a character (one code point), or null for a control character. */
export function keysymForChar(ch) {
  const cp = ch.codePointAt(0);
  if (cp === undefined) return null;
  if ((cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xff)) return cp;
  if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return null;
  return 0x01000000 + cp;
}

/**
 * The keysym of a key given its `key` and `code` (KeyboardEvent fields),
 * or null when nothing should be sent.
 */
export function keysymFor(key, code) {
  if (code && key !== 'AltGraph' && Object.hasOwn(CODE_KEYSYMS, code)) return CODE_KEYSYMS[code];
  if (typeof key !== 'string' || key === '') return null;
  if (Object.hasOwn(KEY_KEYSYMS, key)) return KEY_KEYSYMS[key];
  // One code point (a surrogate pair counts as one).
  const chars = Array.from(key);
  if (chars.length === 1) return keysymForChar(chars[0]);
  return null;
}

/** The keysym of a KeyboardEvent, or null (dead key, composition, unknown). */
export function keysymForEvent(ev) {
  if (ev.isComposing) return null;
  return keysymFor(ev.key, ev.code);
}

/** Mouse `button` (0 main, 1 middle, 2 secondary) → the plugin's button 1/2/3. */
export function pointerButton(button) {
  switch (button) {
    case 0:
      return 1;
    case 1:
      return 2;
    case 2:
      return 3;
    default:
      return null;
  }
}

/** Wheel `deltaY` → the plugin's button 4 (up) or 5 (down), or null. */
export function wheelButton(deltaY) {
  if (deltaY < 0) return 4;
  if (deltaY > 0) return 5;
  return null;
}

/**
 * A point on the displayed canvas (client coordinates, its bounding
 * rectangle) in the shared screen's pixels, clamped to the screen.
 */
export function scalePoint(clientX, clientY, rect, width, height) {
  if (!(rect.width > 0) || !(rect.height > 0) || !(width > 0) || !(height > 0)) return null;
  const x = Math.floor(((clientX - rect.left) * width) / rect.width);
  const y = Math.floor(((clientY - rect.top) * height) / rect.height);
  return {
    x: Math.min(width - 1, Math.max(0, x)),
    y: Math.min(height - 1, Math.max(0, y)),
  };
}
