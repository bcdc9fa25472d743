// Translations (i18next, vendored in vendor/i18next) and locale-aware
// formatting (Intl) for the chosen language. The browser's languages choose
// at first (navigator.languages: Italian → it, else en); the language menu
// switches and the choice is remembered in localStorage.
//
// Nothing here touches the DOM or the network at import time, so the pure
// parts are testable under node.

import i18next from '../vendor/i18next/i18next.js';
import { pinnedIntegrity } from './integrity.js';

export const LANGUAGES = Object.freeze([
  { code: 'en', name: 'English' },
  { code: 'it', name: 'Italiano' },
]);
export const DEFAULT_LANGUAGE = 'en';
export const STORAGE_KEY = 'lifeline.console.language';

const instance = i18next.createInstance();
const listeners = new Set();

/** The language to use: a remembered choice, else the browser's first Italian/other. */
export function pickLanguage(stored, browserLanguages) {
  const known = LANGUAGES.map((l) => l.code);
  if (stored && known.includes(stored)) return stored;
  const first = (browserLanguages || []).find((l) => typeof l === 'string' && l !== '');
  if (first && first.toLowerCase().split('-')[0] === 'it') return 'it';
  return DEFAULT_LANGUAGE;
}

function storage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

function rememberedLanguage() {
  try {
    return storage()?.getItem(STORAGE_KEY) ?? null;
  } catch {
    return null;
  }
}

/** Fetches the locale files next to this module (../locales/CODE.json), with the integrity the page pins. */
export async function loadResources(fetchImpl = globalThis.fetch) {
  const out = {};
  for (const { code } of LANGUAGES) {
    const url = new URL(`../locales/${code}.json`, import.meta.url);
    // The page pins the translations' bytes too (a changed text could
    // mislead the operator as well as a changed script).
    const integrity = pinnedIntegrity(`locales/${code}.json`);
    const res = await fetchImpl(url, integrity ? { credentials: 'same-origin', integrity } : { credentials: 'same-origin' });
    if (!res.ok) throw new Error(`cannot load ${url.pathname}: HTTP ${res.status}`);
    out[code] = await res.json();
  }
  return out;
}

/**
 * Initialises i18next with `resources` ({en: {...}, it: {...}}) in the
 * language `pickLanguage` chooses (or `lng`).
 */
export async function initI18n(resources, { lng } = {}) {
  const languages = globalThis.navigator?.languages ?? [globalThis.navigator?.language].filter(Boolean);
  const chosen = lng ?? pickLanguage(rememberedLanguage(), languages);
  const res = {};
  for (const [code, translation] of Object.entries(resources)) res[code] = { translation };
  await instance.init({
    lng: chosen,
    fallbackLng: DEFAULT_LANGUAGE,
    supportedLngs: LANGUAGES.map((l) => l.code),
    resources: res,
    // Text goes into the page as textContent only, never as HTML.
    interpolation: { escapeValue: false },
    returnNull: false,
  });
  applyDocumentLanguage();
  return chosen;
}

function applyDocumentLanguage() {
  const doc = globalThis.document;
  if (doc?.documentElement) doc.documentElement.lang = language();
}

/** The translation of `key` with `args` interpolated ({{name}}). */
export function t(key, args) {
  return instance.t(key, args);
}

/** Whether `key` exists in the current language or the fallback. */
export function has(key) {
  return instance.exists(key);
}

/** The current language code. */
export function language() {
  return instance.resolvedLanguage || instance.language || DEFAULT_LANGUAGE;
}

/** Switches language, remembers it, and tells the listeners. */
export async function setLanguage(code) {
  if (!LANGUAGES.some((l) => l.code === code)) return;
  try {
    storage()?.setItem(STORAGE_KEY, code);
  } catch {
    // Private mode: the choice lasts for this page only.
  }
  await instance.changeLanguage(code);
  applyDocumentLanguage();
  for (const fn of [...listeners]) fn(code);
}

/** Calls `fn(code)` after every language change; returns the unsubscribe. */
export function onLanguageChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function toDate(value) {
  if (value instanceof Date) return value;
  if (typeof value === 'number') return new Date(value);
  const d = new Date(String(value ?? ''));
  return Number.isNaN(d.getTime()) ? null : d;
}

const STYLES = {
  datetime: { dateStyle: 'medium', timeStyle: 'short' },
  datetimeLong: { dateStyle: 'full', timeStyle: 'long' },
  date: { dateStyle: 'medium' },
  time: { timeStyle: 'medium' },
  timeShort: { timeStyle: 'short' },
};

/** A date/time for people, in the chosen language (style: datetime, date, time, …). */
/** Formatters by language and style: building one costs milliseconds, and
 * a session list formats a date per row. */
const dateFormats = new Map();

export function formatDate(value, style = 'datetime') {
  const d = toDate(value);
  if (!d) return String(value ?? '');
  const key = `${language()}|${style}`;
  let f = dateFormats.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(language(), STYLES[style] || STYLES.datetime);
    dateFormats.set(key, f);
  }
  return f.format(d);
}

/** "in 3 hours", "5 minutes ago" — relative to `now`. */
export function formatRelative(value, now = Date.now()) {
  const d = toDate(value);
  if (!d) return '';
  const secs = Math.round((d.getTime() - now) / 1000);
  const abs = Math.abs(secs);
  const rtf = new Intl.RelativeTimeFormat(language(), { numeric: 'auto' });
  if (abs < 60) return rtf.format(secs, 'second');
  if (abs < 3600) return rtf.format(Math.round(secs / 60), 'minute');
  if (abs < 86400) return rtf.format(Math.round(secs / 3600), 'hour');
  return rtf.format(Math.round(secs / 86400), 'day');
}

/** A number with the language's grouping. */
export function formatNumber(n, opts) {
  return new Intl.NumberFormat(language(), opts).format(n);
}

/** Bytes as B, kB, MB, GB (decimal units). */
export function formatBytes(n) {
  const units = ['byte', 'kilobyte', 'megabyte', 'gigabyte'];
  let v = Number(n) || 0;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return new Intl.NumberFormat(language(), {
    style: 'unit',
    unit: units[i],
    // Short "kB", "MB"; but bytes in full words ("105 bytes", not "105 byte").
    unitDisplay: i === 0 ? 'long' : 'short',
    maximumFractionDigits: i === 0 ? 0 : 1,
  }).format(v);
}

/** A duration in milliseconds, e.g. "1.2 s" or "350 ms". */
export function formatDuration(ms) {
  const v = Number(ms) || 0;
  if (v < 1000) {
    return new Intl.NumberFormat(language(), { style: 'unit', unit: 'millisecond', unitDisplay: 'short' }).format(v);
  }
  return new Intl.NumberFormat(language(), {
    style: 'unit',
    unit: 'second',
    unitDisplay: 'short',
    maximumFractionDigits: 1,
  }).format(v / 1000);
}
