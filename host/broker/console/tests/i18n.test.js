// The translations: English and Italian have the same keys and the same
// placeholders, every key the code uses exists (plural keys as _one and
// _other), and every key in the files is used.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { pickLanguage, initI18n, t, setLanguage, language, formatDate, formatBytes } from '../src/i18n.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const en = JSON.parse(readFileSync(join(root, 'locales/en.json'), 'utf8'));
const it = JSON.parse(readFileSync(join(root, 'locales/it.json'), 'utf8'));

function flatten(obj, prefix = '', out = new Map()) {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object') flatten(v, key, out);
    else out.set(key, v);
  }
  return out;
}

const enKeys = flatten(en);
const itKeys = flatten(it);
const PLURAL = /_(zero|one|two|few|many|other)$/;

function placeholders(s) {
  return [...String(s).matchAll(/\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g)].map((m) => m[1]).sort();
}

/** Every i18n key literal in the code: a string whose first part is a locale namespace. */
function usedKeys() {
  const namespaces = new Set(Object.keys(en));
  const files = ['app.js', ...readdirSync(join(root, 'src')).filter((f) => f.endsWith('.js')).map((f) => `src/${f}`)];
  const used = new Map();
  for (const f of files) {
    const text = readFileSync(join(root, f), 'utf8');
    assert.ok(!/\bt\(\s*`/.test(text), `${f}: a translation key built at run time (template literal)`);
    for (const m of text.matchAll(/(['"`])([a-z][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)+)\1/g)) {
      if (namespaces.has(m[2].split('.')[0])) used.set(m[2], f);
    }
  }
  const html = readFileSync(join(root, 'index.html'), 'utf8');
  for (const m of html.matchAll(/data-i18n="([^"]+)"/g)) used.set(m[1], 'index.html');
  return used;
}

function present(keys, key) {
  return keys.has(key) || (keys.has(`${key}_one`) && keys.has(`${key}_other`));
}

test('English and Italian have the same keys', () => {
  const onlyEn = [...enKeys.keys()].filter((k) => !itKeys.has(k));
  const onlyIt = [...itKeys.keys()].filter((k) => !enKeys.has(k));
  assert.deepEqual(onlyEn, [], 'keys missing in it.json');
  assert.deepEqual(onlyIt, [], 'keys missing in en.json');
});

test('every translation is a non-empty string with the same placeholders', () => {
  for (const [k, v] of enKeys) {
    assert.equal(typeof v, 'string', k);
    assert.ok(v.length > 0, `en ${k} is empty`);
    assert.ok(itKeys.get(k).length > 0, `it ${k} is empty`);
    assert.deepEqual(placeholders(itKeys.get(k)), placeholders(v), `placeholders of ${k}`);
  }
});

test('every key used in the code exists in both languages', () => {
  const missing = [];
  for (const [key, file] of usedKeys()) {
    if (!present(enKeys, key)) missing.push(`en: ${key} (${file})`);
    if (!present(itKeys, key)) missing.push(`it: ${key} (${file})`);
  }
  assert.deepEqual(missing, []);
});

test('every key in the locale files is used', () => {
  const used = usedKeys();
  const unused = [...enKeys.keys()].map((k) => k.replace(PLURAL, '')).filter((k) => !used.has(k));
  assert.deepEqual([...new Set(unused)], []);
});

test('the browser language chooses, a remembered choice wins', () => {
  assert.equal(pickLanguage(null, ['it-IT', 'en-US']), 'it');
  assert.equal(pickLanguage(null, ['it']), 'it');
  assert.equal(pickLanguage(null, ['en-GB', 'it-IT']), 'en');
  assert.equal(pickLanguage(null, ['de-DE']), 'en');
  assert.equal(pickLanguage(null, []), 'en');
  assert.equal(pickLanguage('it', ['en-US']), 'it');
  assert.equal(pickLanguage('en', ['it-IT']), 'en');
  assert.equal(pickLanguage('fr', ['it-IT']), 'it');
});

test('i18next translates, interpolates without escaping, and plurals work in both languages', async () => {
  await initI18n({ en, it }, { lng: 'en' });
  assert.equal(t('header.hello', { name: 'A <b>&' }), 'Hello, A <b>&');
  assert.equal(t('login.rateLimited', { count: 1 }), 'Too many attempts. Try again in 1 second.');
  assert.equal(t('login.rateLimited', { count: 30 }), 'Too many attempts. Try again in 30 seconds.');
  await setLanguage('it');
  assert.equal(language(), 'it');
  assert.equal(t('login.rateLimited', { count: 30 }), 'Troppi tentativi. Riprova tra 30 secondi.');
  assert.equal(t('state.waiting'), 'Pronta');
  assert.match(formatDate('2026-03-01T10:00:00Z', 'date'), /2026/);
});

test('sizes: bytes in words, larger units short, in the chosen language', async () => {
  await initI18n({ en, it }, { lng: 'en' });
  assert.equal(formatBytes(105), '105 bytes');
  assert.equal(formatBytes(1), '1 byte');
  assert.equal(formatBytes(1500), '1.5 kB');
  await setLanguage('it');
  assert.equal(formatBytes(105), '105 byte');
  assert.equal(formatBytes(1500), '1,5 kB');
});
