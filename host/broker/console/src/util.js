// Small pure helpers shared by the panels. No DOM, no network.

/** Largest script file the library takes (host/broker/src/library.rs). */
export const MAX_SCRIPT_FILE_BYTES = 1 << 20;
/** Longest chat message, consent detail or end reason (operator_side.rs). */
export const MAX_TEXT_CHARS = 8 * 1024;
/** Longest ticket number. */
export const MAX_TICKET_CHARS = 64;
/** Longest end-user name, operator name, title or e-mail address. */
export const MAX_NAME_CHARS = 128;
/** Longest script name, file name and description (library.rs). */
export const MAX_SCRIPT_NAME_CHARS = 64;
export const MAX_FILE_NAME_CHARS = 100;
export const MAX_DESCRIPTION_CHARS = 2000;
/** Most scripts in one run, and the longest timeout of one script. */
export const MAX_BATCH_SCRIPTS = 50;
export const MAX_SCRIPT_TIMEOUT_SECS = 3600;

/**
 * `text` without what could disguise it: control characters (C0 but tab
 * and line feed, DEL, C1) and the Unicode bidirectional overrides and
 * isolates — as `lifeline_protocol::terminal_safe`. Text from the customer's
 * side (chat, host names, plugin and script output) goes through this before
 * it is shown (always as textContent).
 */
export function displaySafe(text) {
  return String(text ?? '').replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u200e\u200f]/g, '');
}

/** Percent-encodes everything but RFC 3986 unreserved characters (UTF-8). */
export function pct(s) {
  const bytes = new TextEncoder().encode(String(s));
  let out = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-._~]/.test(c)) out += c;
    else out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** A `mailto:` URL without a recipient, as `lifeline_operator::mailto` builds it. */
export function mailtoUrl(subject, body, to = '') {
  return `mailto:${to ? pct(to) : ''}?subject=${pct(subject)}&body=${pct(body)}`;
}

/** Base64 of bytes (chunked, so large files do not overflow the stack). */
export function bytesToBase64(bytes) {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let bin = '';
  const CHUNK = 0x8000;
  for (let i = 0; i < b.length; i += CHUNK) {
    bin += String.fromCharCode.apply(null, b.subarray(i, i + CHUNK));
  }
  return btoa(bin);
}

/** Why a file name is not a plain library file name, or null when it is. */
export function fileNameProblem(name) {
  if (!name) return 'empty';
  if (name.length > MAX_FILE_NAME_CHARS) return 'long';
  if (name.startsWith('.') || !/^[A-Za-z0-9._-]+$/.test(name)) return 'chars';
  return null;
}

/** Splits a plugin argument name: `{name, optional}` (a trailing `?` marks optional). */
export function parseArgName(arg) {
  const s = String(arg);
  return s.endsWith('?') ? { name: s.slice(0, -1), optional: true } : { name: s, optional: false };
}

/**
 * Arguments for a plugin call from form values: trailing empty optional
 * arguments are left out (the plugin then uses its default); an empty one
 * before a given one is kept as "".
 */
export function pluginArgs(specs, values) {
  const args = specs.map((_, i) => String(values[i] ?? ''));
  while (args.length > 0 && args[args.length - 1] === '' && parseArgName(specs[args.length - 1]).optional) {
    args.pop();
  }
  return args;
}

/**
 * The system-information plugin's output split into panels: each
 * `== Title ==` line starts one. Returns `[{title, text}]`.
 */
export function splitSysinfo(text) {
  const panels = [];
  let cur = null;
  for (const line of String(text).split('\n')) {
    const m = /^== (.+) ==$/.exec(line);
    if (m) {
      cur = { title: m[1], lines: [] };
      panels.push(cur);
    } else if (cur) {
      cur.lines.push(line);
    } else if (line !== '') {
      cur = { title: '', lines: [line] };
      panels.push(cur);
    }
  }
  return panels.map((p) => {
    while (p.lines.length && p.lines[p.lines.length - 1] === '') p.lines.pop();
    return { title: p.title, text: p.lines.join('\n') };
  });
}

/** Moves item `i` of `list` by `delta` places (a new array; clamped). */
export function moveItem(list, i, delta) {
  const j = i + delta;
  if (i < 0 || i >= list.length || j < 0 || j >= list.length) return list.slice();
  const out = list.slice();
  const [item] = out.splice(i, 1);
  out.splice(j, 0, item);
  return out;
}

/** Calls `fn` once `ms` have passed without another call. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** A safe file name part from free text. */
export function fileSafe(s) {
  return String(s).replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'x';
}
