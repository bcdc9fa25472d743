// DOM helpers. Everything shown is set with textContent or as a property:
// no string is ever parsed as HTML, there is no style attribute and no
// inline handler anywhere, so text from the broker, the customer or the
// operator is escaped by construction, and the page keeps to a strict CSP.
//
// Translated text is tracked: an element built with `t: 'some.key'` (or an
// attribute with `tattrs`) remembers its key and arguments, and `relabel()`
// translates it again after the language changed.

import { t, formatDate, formatRelative } from './i18n.js';

let nextId = 1;

/** A unique element id with `prefix`. */
export function uid(prefix = 'll') {
  return `${prefix}-${nextId++}`;
}

const BLOCKED_ATTRS = /^(on|style$|srcdoc$|formaction$)/i;
const URL_ATTRS = new Set(['href', 'src', 'action', 'xlink:href']);

/** `url` if it is safe to navigate to (same origin, https, mailto, blob), else '#'. */
export function safeUrl(url) {
  const s = String(url ?? '');
  try {
    const u = new URL(s, globalThis.location?.href ?? 'https://invalid/');
    if (['https:', 'http:', 'mailto:', 'blob:'].includes(u.protocol)) return s;
  } catch {
    // fall through
  }
  return '#';
}

/** Sets an attribute, refusing event handlers and styles; URLs are checked. */
export function setAttr(el, name, value) {
  if (BLOCKED_ATTRS.test(name)) throw new Error(`attribute ${name} is not allowed`);
  if (value === null || value === undefined || value === false) {
    el.removeAttribute(name);
    return;
  }
  const v = value === true ? '' : String(value);
  el.setAttribute(name, URL_ATTRS.has(name) ? safeUrl(v) : v);
}

/**
 * A translated argument: `{name: tref('state.waiting')}` in the arguments
 * of a tracked text is translated when the text is, and again by relabel().
 */
export function tref(key, args) {
  return args ? { $t: key, $a: args } : { $t: key };
}

/** Arguments with every tref() translated. */
export function resolveArgs(args) {
  if (!args) return args;
  const out = {};
  for (const [k, v] of Object.entries(args)) {
    out[k] = v && typeof v === 'object' && typeof v.$t === 'string' ? t(v.$t, resolveArgs(v.$a)) : v;
  }
  return out;
}

/** Sets `el`'s text to the translation of `key` and remembers it for relabel(). */
export function setT(el, key, args) {
  el.dataset.i18n = key;
  if (args) el.dataset.i18nArgs = JSON.stringify(args);
  else delete el.dataset.i18nArgs;
  el.textContent = t(key, resolveArgs(args));
  return el;
}

/** Sets attribute `name` to the translation of `key` and remembers it. */
export function setAttrT(el, name, key, args) {
  const map = el.dataset.i18nAttrs ? JSON.parse(el.dataset.i18nAttrs) : {};
  map[name] = args ? [key, args] : [key];
  el.dataset.i18nAttrs = JSON.stringify(map);
  setAttr(el, name, t(key, resolveArgs(args)));
  return el;
}

function appendChildren(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) appendChildren(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/**
 * Builds an element. `props`:
 * - `class` (string or array), `id`, `testid` (data-testid)
 * - `t` + `targs`: translated text; `text`: plain text
 * - `attrs`: {name: value} attributes; `tattrs`: {name: key} translated ones
 * - `dataset`: data-* values; `on`: {event: handler}
 * - any other key is set as a property (type, value, disabled, hidden, …)
 * Children: strings (as text), nodes, arrays; null/false are skipped.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  const p = props || {};
  for (const [k, v] of Object.entries(p)) {
    if (v === undefined || v === null) continue;
    switch (k) {
      case 'class':
        el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : String(v);
        break;
      case 'testid':
        el.dataset.testid = v;
        break;
      case 't':
        setT(el, v, p.targs);
        break;
      case 'targs':
        break;
      case 'text':
        el.textContent = String(v);
        break;
      case 'attrs':
        for (const [n, val] of Object.entries(v)) setAttr(el, n, val);
        break;
      case 'tattrs':
        for (const [n, key] of Object.entries(v)) {
          if (Array.isArray(key)) setAttrT(el, n, key[0], key[1]);
          else setAttrT(el, n, key, p.targs);
        }
        break;
      case 'dataset':
        for (const [n, val] of Object.entries(v)) el.dataset[n] = String(val);
        break;
      case 'on':
        for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
        break;
      case 'style':
      case 'innerHTML':
      case 'outerHTML':
        throw new Error(`${k} is not allowed`);
      case 'href':
      case 'src':
        el[k] = safeUrl(v);
        break;
      default:
        if (k.startsWith('aria-') || k === 'role' || k === 'for') setAttr(el, k, v);
        else el[k] = v;
    }
  }
  appendChildren(el, children);
  return el;
}

/** Removes every child of `el`. */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Replaces the children of `el`. */
export function replaceChildren(el, ...children) {
  clear(el);
  appendChildren(el, children);
  return el;
}

/** A <time> showing `value` in the chosen language; relabel() reformats it. */
export function timeEl(value, style = 'datetime', props = {}) {
  const el = h('time', props);
  if (value) el.dateTime = String(value);
  el.dataset.i18nDate = style;
  el.textContent = value ? formatDate(value, style) : '—';
  return el;
}

/** A <time> for an instant, with the relative time after it ("in 2 hours"). */
export function timeWithRelative(value, props = {}) {
  const el = timeEl(value, 'datetime', props);
  el.dataset.i18nDate = 'relative';
  el.textContent = `${formatDate(value)} (${formatRelative(value)})`;
  return el;
}

/** Translates every tracked text, attribute and date under `root` again. */
export function relabel(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    const args = el.dataset.i18nArgs ? JSON.parse(el.dataset.i18nArgs) : undefined;
    el.textContent = t(el.dataset.i18n, resolveArgs(args));
  }
  for (const el of root.querySelectorAll('[data-i18n-attrs]')) {
    const map = JSON.parse(el.dataset.i18nAttrs);
    for (const [name, [key, args]] of Object.entries(map)) setAttr(el, name, t(key, resolveArgs(args)));
  }
  for (const el of root.querySelectorAll('time[data-i18n-date]')) {
    if (!el.dateTime) continue;
    const style = el.dataset.i18nDate;
    el.textContent =
      style === 'relative'
        ? `${formatDate(el.dateTime)} (${formatRelative(el.dateTime)})`
        : formatDate(el.dateTime, style);
  }
}

/** Says `text` through the page's polite live region. */
export function announce(text) {
  const region = document.getElementById('announcer');
  if (!region) return;
  region.textContent = '';
  // A fresh text node after a tick is announced again even if unchanged.
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

/** A button with translated text. */
export function button(key, onClick, props = {}) {
  return h('button', { type: 'button', t: key, ...props, on: { click: onClick, ...(props.on || {}) } });
}

/**
 * A labelled form field: `{label: key, input: element, hint: key?,
 * hintArgs?, testid?}`. The label is tied to the input by id; a hint is
 * tied by aria-describedby.
 */
export function field({ label, labelArgs, input, hint, hintArgs, className }) {
  if (!input.id) input.id = uid('f');
  const parts = [h('label', { for: input.id, t: label, targs: labelArgs })];
  if (hint) {
    const hintEl = h('small', { id: uid('hint'), class: 'hint', t: hint, targs: hintArgs });
    const described = [input.getAttribute('aria-describedby'), hintEl.id].filter(Boolean).join(' ');
    input.setAttribute('aria-describedby', described);
    parts.push(input, hintEl);
  } else {
    parts.push(input);
  }
  return h('div', { class: ['field', className] }, parts);
}

/** A checkbox with its label after it. */
export function checkbox({ label, checked = false, testid, onChange }) {
  const input = h('input', { type: 'checkbox', checked, testid, id: uid('c'), on: onChange ? { change: onChange } : {} });
  return { input, el: h('div', { class: 'field field-check' }, input, h('label', { for: input.id, t: label })) };
}

/** A status line (role=status, polite) for a form's outcome. */
export function statusLine(props = {}) {
  return h('p', { class: 'status-line', role: 'status', 'aria-live': 'polite', ...props });
}

/** Shows `key` (or an error) on a status line; `kind` is ok, error or info. */
export function showStatus(el, kind, key, args) {
  el.classList.remove('ok', 'error', 'info');
  if (!key) {
    el.textContent = '';
    delete el.dataset.i18n;
    return;
  }
  el.classList.add(kind);
  setT(el, key, args);
}

/** Shows plain text (a broker's message) on a status line. */
export function showStatusText(el, kind, text) {
  el.classList.remove('ok', 'error', 'info');
  delete el.dataset.i18n;
  el.classList.add(kind);
  el.textContent = text;
}

const ERROR_KEYS = {
  version_mismatch: 'errors.code.version_mismatch',
  bad_handshake: 'errors.code.bad_handshake',
  bad_message: 'errors.code.bad_message',
  bad_credentials: 'errors.code.bad_credentials',
  not_logged_in: 'errors.code.not_logged_in',
  invalid_invitation: 'errors.code.invalid_invitation',
  rate_limited: 'errors.code.rate_limited',
  no_such_session: 'errors.code.no_such_session',
  wrong_state: 'errors.code.wrong_state',
  invalid: 'errors.code.invalid',
  internal: 'errors.code.internal',
};

const KIND_KEYS = {
  offline: 'errors.offline',
  timeout: 'errors.timeout',
  lost: 'errors.lost',
  http: 'errors.http',
  unexpected: 'errors.unexpected',
  inactive: 'errors.inactive',
  rebooting: 'errors.rebooting',
  notAttached: 'errors.notAttached',
};

/** A person's sentence for an ApiError (or any error), in the chosen language. */
export function errorText(err) {
  if (!err) return '';
  const detail = err.message ? String(err.message) : '';
  if (err.code && ERROR_KEYS[err.code]) {
    return detail ? t('errors.withDetail', { what: t(ERROR_KEYS[err.code]), detail }) : t(ERROR_KEYS[err.code]);
  }
  if (err.kind === 'e2e') return t('errors.e2e', { detail });
  if (err.kind && KIND_KEYS[err.kind]) {
    return t(KIND_KEYS[err.kind], { status: err.status ?? '' });
  }
  return detail || t('errors.unexpected');
}

/** Offers `text` as a file download (a Blob URL, revoked afterwards). */
export function downloadText(filename, text, type = 'text/plain;charset=utf-8') {
  const blob = new Blob([text], { type });
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: filename, class: 'visually-hidden' });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Copies `text` to the clipboard; true when it worked. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/** A "Copy" button for the value `getText()` returns, with feedback. */
export function copyButton(getText, { testid, label = 'common.copy', labelArgs } = {}) {
  const feedback = h('span', { class: 'copy-feedback', role: 'status', 'aria-live': 'polite' });
  const btn = h('button', {
    type: 'button',
    class: 'secondary small',
    t: label,
    targs: labelArgs,
    testid,
    on: {
      click: async () => {
        const ok = await copyText(getText());
        showStatus(feedback, ok ? 'ok' : 'error', ok ? 'common.copied' : 'common.copyFailed');
        setTimeout(() => showStatus(feedback, 'info', null), 3000);
      },
    },
  });
  return h('span', { class: 'copy' }, btn, feedback);
}

/**
 * Opens a native modal <dialog>: focus moves into it (its first autofocus
 * element or first field) and back to what had it when it closes.
 * Resolves with the dialog's returnValue.
 */
export function openModal(dialog) {
  const previous = document.activeElement;
  if (!dialog.isConnected) document.body.appendChild(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener(
      'close',
      () => {
        resolve(dialog.returnValue);
        dialog.remove();
        if (previous && previous.isConnected && typeof previous.focus === 'function') previous.focus();
      },
      { once: true },
    );
    dialog.returnValue = '';
    dialog.showModal();
    const first = dialog.querySelector('[autofocus], input, select, textarea, button');
    if (first) first.focus();
  });
}

/**
 * Asks for confirmation in a modal dialog. With `input` ({label, value,
 * testid, maxLength}), also asks for a text. Resolves `{value}` when
 * confirmed, null when cancelled.
 */
export async function confirmDialog({ title, titleArgs, body, bodyArgs, confirm, danger = false, input, testid }) {
  const titleId = uid('dlg');
  let field_ = null;
  if (input) {
    field_ = h('input', {
      type: 'text',
      value: input.value ?? '',
      maxLength: input.maxLength ?? 1000,
      testid: input.testid,
    });
  }
  const form = h(
    'form',
    { method: 'dialog' },
    h('h2', { id: titleId, t: title, targs: titleArgs }),
    body ? h('p', { t: body, targs: bodyArgs }) : null,
    field_ ? field({ label: input.label, input: field_ }) : null,
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'submit', value: 'cancel', class: 'secondary', t: 'common.cancel', formNoValidate: true }),
      h('button', { type: 'submit', value: 'ok', class: danger ? 'danger' : 'primary', t: confirm, testid: testid ? `${testid}-confirm` : undefined }),
    ),
  );
  const dialog = h('dialog', { class: 'modal', 'aria-labelledby': titleId, testid }, form);
  if (field_) field_.autofocus = true;
  const answer = await openModal(dialog);
  return answer === 'ok' ? { value: field_ ? field_.value : '' } : null;
}

/**
 * An accessible tab set: `tabs` = [{id, label (key), panel (element),
 * testid}]. Arrow keys, Home and End move between tabs (automatic
 * activation). Returns {el, select(id), onChange(fn)}.
 */
export function tabSet(tabs, { label, initial } = {}) {
  const listeners = new Set();
  const tablist = h('div', { role: 'tablist', class: 'tabs', tattrs: label ? { 'aria-label': label } : undefined });
  const panels = h('div', { class: 'tab-panels' });
  const buttons = [];
  for (const tab of tabs) {
    const tabId = uid('tab');
    const panelId = uid('tabpanel');
    const b = h('button', {
      type: 'button',
      role: 'tab',
      id: tabId,
      'aria-controls': panelId,
      'aria-selected': 'false',
      tabIndex: -1,
      t: tab.label,
      testid: tab.testid,
      on: { click: () => select(tab.id, true) },
    });
    b.dataset.tab = tab.id;
    buttons.push(b);
    tablist.appendChild(b);
    const panel = h('div', { role: 'tabpanel', id: panelId, 'aria-labelledby': tabId, class: 'tab-panel', hidden: true, tabIndex: 0 }, tab.panel);
    panel.dataset.tab = tab.id;
    panels.appendChild(panel);
  }
  tablist.addEventListener('keydown', (ev) => {
    const i = buttons.indexOf(document.activeElement);
    if (i < 0) return;
    let j = null;
    if (ev.key === 'ArrowRight' || ev.key === 'ArrowDown') j = (i + 1) % buttons.length;
    else if (ev.key === 'ArrowLeft' || ev.key === 'ArrowUp') j = (i - 1 + buttons.length) % buttons.length;
    else if (ev.key === 'Home') j = 0;
    else if (ev.key === 'End') j = buttons.length - 1;
    if (j === null) return;
    ev.preventDefault();
    select(buttons[j].dataset.tab, true);
  });
  function select(id, focus = false) {
    for (const b of buttons) {
      const on = b.dataset.tab === id;
      b.setAttribute('aria-selected', on ? 'true' : 'false');
      b.tabIndex = on ? 0 : -1;
      if (on && focus) b.focus();
    }
    for (const p of panels.children) p.hidden = p.dataset.tab !== id;
    for (const fn of listeners) fn(id);
  }
  select(initial ?? tabs[0]?.id);
  return {
    el: h('div', { class: 'tabset' }, tablist, panels),
    select,
    onChange: (fn) => listeners.add(fn),
  };
}

/**
 * A menu button: `items` = [{label (key), onSelect, testid, checked?
 * (function → bool, a radio item), group?}]. Enter/Space/ArrowDown open it;
 * arrows, Home, End move; Escape closes and returns focus; Tab closes.
 */
export function menuButton({ buttonContent, buttonTestid, items, label, className }) {
  const menuId = uid('menu');
  const btn = h('button', {
    type: 'button',
    class: ['menu-button', className],
    'aria-haspopup': 'menu',
    'aria-expanded': 'false',
    'aria-controls': menuId,
    testid: buttonTestid,
  });
  appendChildren(btn, [buttonContent]);
  const menu = h('ul', { role: 'menu', id: menuId, class: 'menu', hidden: true, tattrs: label ? { 'aria-label': label } : undefined });
  const entries = [];
  for (const item of items) {
    if (item.separator) {
      menu.appendChild(h('li', { role: 'separator' }));
      continue;
    }
    if (item.heading) {
      menu.appendChild(h('li', { role: 'presentation', class: 'menu-heading', t: item.heading, testid: item.testid }));
      continue;
    }
    const li = h('li', {
      role: item.checked ? 'menuitemradio' : 'menuitem',
      tabIndex: -1,
      testid: item.testid,
      t: item.label,
      lang: item.lang,
    });
    if (item.text) li.textContent = item.text;
    li.addEventListener('click', () => activate(item));
    li.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        activate(item);
      }
    });
    entries.push({ li, item });
    menu.appendChild(li);
  }
  function refreshChecks() {
    for (const { li, item } of entries) if (item.checked) li.setAttribute('aria-checked', item.checked() ? 'true' : 'false');
  }
  function open(focusLast = false) {
    refreshChecks();
    menu.hidden = false;
    btn.setAttribute('aria-expanded', 'true');
    const target = focusLast ? entries[entries.length - 1] : entries[0];
    target?.li.focus();
    document.addEventListener('pointerdown', outside, true);
  }
  function close(returnFocus = true) {
    if (menu.hidden) return;
    menu.hidden = true;
    btn.setAttribute('aria-expanded', 'false');
    document.removeEventListener('pointerdown', outside, true);
    if (returnFocus) btn.focus();
  }
  function outside(ev) {
    if (!menu.contains(ev.target) && !btn.contains(ev.target)) close(false);
  }
  function activate(item) {
    close(true);
    item.onSelect();
  }
  btn.addEventListener('click', () => (menu.hidden ? open() : close()));
  btn.addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowDown') {
      ev.preventDefault();
      open();
    } else if (ev.key === 'ArrowUp') {
      ev.preventDefault();
      open(true);
    }
  });
  menu.addEventListener('keydown', (ev) => {
    const lis = entries.map((e) => e.li);
    const i = lis.indexOf(document.activeElement);
    if (ev.key === 'Escape') {
      ev.preventDefault();
      close();
    } else if (ev.key === 'Tab') {
      close(false);
    } else if (ev.key === 'ArrowDown') {
      ev.preventDefault();
      lis[(i + 1) % lis.length].focus();
    } else if (ev.key === 'ArrowUp') {
      ev.preventDefault();
      lis[(i - 1 + lis.length) % lis.length].focus();
    } else if (ev.key === 'Home') {
      ev.preventDefault();
      lis[0].focus();
    } else if (ev.key === 'End') {
      ev.preventDefault();
      lis[lis.length - 1].focus();
    }
  });
  return { el: h('div', { class: 'menu-wrap' }, btn, menu), button: btn, close };
}

/** A log list (role=log, polite live region) that keeps at most `max` entries. */
export function liveLog({ label, testid, max = 2000, className }) {
  const el = h('ol', { class: ['log', className], role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', tattrs: label ? { 'aria-label': label } : undefined, testid, tabIndex: 0 });
  return {
    el,
    add(entry) {
      const nearBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
      el.appendChild(entry);
      while (el.childElementCount > max) el.removeChild(el.firstElementChild);
      if (nearBottom) el.scrollTop = el.scrollHeight;
      return entry;
    },
    clear() {
      clear(el);
    },
  };
}
