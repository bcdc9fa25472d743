// Every module parses (node --check), and no source uses what the strict
// CSP forbids or what would let text become markup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
const sources = ['app.js', ...readdirSync(join(root, 'src')).filter((f) => f.endsWith('.js')).map((f) => `src/${f}`)];

test('every module passes node --check', () => {
  for (const f of [...sources, 'vendor/i18next/i18next.js']) {
    execFileSync(process.execPath, ['--check', join(root, f)], { stdio: 'pipe' });
  }
});

test('no markup from strings, no eval, no inline styles', () => {
  const forbidden = [
    /\.innerHTML\s*=/,
    /\.outerHTML\s*=/,
    /insertAdjacentHTML/,
    /document\.write/,
    /\beval\s*\(/,
    /new Function\s*\(/,
    /setAttribute\(\s*['"]style['"]/,
    /setAttribute\(\s*['"]on[a-z]+['"]/,
    /\.style\.cssText/,
    /javascript:/,
    /https?:\/\/(?!invalid\/)/, // nothing fetched from outside the broker
  ];
  for (const f of sources) {
    const text = readFileSync(join(root, f), 'utf8');
    for (const re of forbidden) assert.ok(!re.test(text), `${f} matches ${re}`);
  }
});

test('index.html has no inline script, style or handler and loads relative assets', () => {
  const html = readFileSync(join(root, 'index.html'), 'utf8');
  assert.ok(!/<script(?![^>]*\bsrc=)[^>]*>/i.test(html), 'inline <script>');
  assert.ok(!/<style/i.test(html), '<style> element');
  assert.ok(!/\sstyle=/i.test(html), 'style attribute');
  assert.ok(!/\son[a-z]+=/i.test(html), 'inline event handler');
  assert.match(html, /<script type="module" src="assets\/app\.js"><\/script>/);
  assert.match(html, /href="assets\/style\.css"/);
  // Where the broker puts the module preloads and fetch hashes (SRI).
  assert.match(html, /<!-- lifeline:integrity -->\n\s*<script type="module" src="assets\/app\.js">/);
  assert.ok(!/(src|href)="(\/|https?:)/i.test(html), 'absolute or external URL');
});

test('the vendored i18next is the pinned version with its licence', () => {
  const version = readFileSync(join(root, 'vendor/i18next/VERSION'), 'utf8');
  const script = readFileSync(join(root, 'vendor/update.sh'), 'utf8');
  const pinned = /^VERSION=(\S+)$/m.exec(script)[1];
  assert.ok(version.startsWith(`i18next ${pinned}\n`), version);
  assert.match(readFileSync(join(root, 'vendor/i18next/LICENSE'), 'utf8'), /MIT License/);
  assert.match(readFileSync(join(root, 'vendor/i18next/i18next.js'), 'utf8'), /export \{[^}]*createInstance/);
});
