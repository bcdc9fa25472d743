import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pct, mailtoUrl, displaySafe, pluginArgs, parseArgName, splitSysinfo, moveItem, fileNameProblem, bytesToBase64 } from '../src/util.js';

test('mailto is encoded like lifeline_operator::mailto', () => {
  const m = mailtoUrl('Remote support for ticket T 1&2', 'Hello Mario,\nline 2 ~ è');
  assert.ok(m.startsWith('mailto:?subject=Remote%20support%20for%20ticket%20T%201%262&body='));
  assert.ok(!m.includes(' ') && !m.includes('\n'));
  assert.equal(pct('a-b._~Z9 è'), 'a-b._~Z9%20%C3%A8');
});

test('displaySafe removes control characters and bidi overrides, keeps tab and newline', () => {
  const hostile = 'ok\x1b]0;pwned\x07\x1b[2J\x1b[1;1Hfake prompt\r\u009b31m\u202Etxt.exe';
  const safe = displaySafe(hostile);
  assert.ok(!/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/.test(safe), safe);
  assert.equal(displaySafe('line 1\n\tline 2'), 'line 1\n\tline 2');
});

test('plugin arguments: trailing optional empties are left out', () => {
  assert.deepEqual(parseArgName('monitor?'), { name: 'monitor', optional: true });
  assert.deepEqual(parseArgName('user'), { name: 'user', optional: false });
  assert.deepEqual(pluginArgs(['category?', 'filter?'], ['', '']), []);
  assert.deepEqual(pluginArgs(['category?', 'filter?'], ['cpu', '']), ['cpu']);
  assert.deepEqual(pluginArgs(['category?', 'filter?'], ['', 'ssh']), ['', 'ssh']);
  assert.deepEqual(pluginArgs(['user'], ['']), ['']);
});

test('sysinfo output splits into titled panels', () => {
  const out = splitSysinfo('== Memory ==\ntotal 8 GiB\nused 2 GiB\n');
  assert.deepEqual(out, [{ title: 'Memory', text: 'total 8 GiB\nused 2 GiB' }]);
  assert.deepEqual(splitSysinfo('== A ==\n1\n== B ==\n2\n').map((p) => p.title), ['A', 'B']);
  assert.deepEqual(splitSysinfo(''), []);
});

test('moving run items', () => {
  assert.deepEqual(moveItem(['a', 'b', 'c'], 2, -1), ['a', 'c', 'b']);
  assert.deepEqual(moveItem(['a', 'b', 'c'], 0, 1), ['b', 'a', 'c']);
  assert.deepEqual(moveItem(['a', 'b', 'c'], 0, -1), ['a', 'b', 'c']);
  assert.deepEqual(moveItem(['a', 'b', 'c'], 2, 1), ['a', 'b', 'c']);
});

test('file names as the library takes them', () => {
  assert.equal(fileNameProblem('cleanup.sh'), null);
  assert.equal(fileNameProblem('.hidden'), 'chars');
  assert.equal(fileNameProblem('my file.sh'), 'chars');
  assert.equal(fileNameProblem('x'.repeat(101)), 'long');
  assert.equal(fileNameProblem(''), 'empty');
});

test('base64 of large buffers', () => {
  const b = new Uint8Array(200_000).map((_, i) => i & 0xff);
  assert.equal(bytesToBase64(b), Buffer.from(b).toString('base64'));
  assert.equal(bytesToBase64(new Uint8Array(0)), '');
});
