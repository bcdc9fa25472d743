// The session context's routing of plugin calls (output, result, consent,
// the password request of a run-as login) and the panels' pure helpers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SessionContext } from '../src/session.js';
import { nextPhase } from '../src/reboot.js';
import { sortScripts, fileProblem } from '../src/scripts.js';
import { groupDigits, isNoMailServer, invitationMail } from '../src/invite.js';
import { categoryOfTitle, CATEGORIES, savedText } from '../src/sysinfo.js';
import { initI18n } from '../src/i18n.js';
import { ApiError } from '../src/api.js';
import { mailtoUrl } from '../src/util.js';

const en = JSON.parse(readFileSync(new URL('../locales/en.json', import.meta.url)));
const it = JSON.parse(readFileSync(new URL('../locales/it.json', import.meta.url)));
await initI18n({ en, it }, { lng: 'en' });

function context() {
  const sent = [];
  let id = 1000;
  const api = { sendSession: (sid, msg) => sent.push([sid, msg]), newCallId: () => ++id, sendData() {} };
  const ctx = new SessionContext(api, 's1', { username: 'alice' });
  ctx.attached = true;
  ctx.state = 'connected';
  const activity = [];
  ctx.activity = (key, args) => activity.push([key, args]);
  return { ctx, sent, activity };
}

test('a plugin call gets its output, consent decisions and result; others do not', async () => {
  const { ctx, sent } = context();
  const seen = [];
  const callId = ctx.runPlugin('sysinfo', 'show', ['cpu'], {
    onOutput: (stream, text) => seen.push(['out', stream, text]),
    onConsent: (m) => seen.push(['consent', m.decision]),
    onDone: (ok, text) => seen.push(['done', ok, text]),
  });
  assert.deepEqual(sent, [['s1', { kind: 'run_plugin', call_id: callId, plugin: 'sysinfo', command: 'show', args: ['cpu'] }]]);
  await ctx.dispatch({ kind: 'plugin_output', call_id: callId + 1, plugin: 'sysinfo', stream: 'output', text: 'not mine' });
  await ctx.dispatch({ kind: 'consent_decided', plugin: 'sysinfo', action: 'system.info', decision: 'allow_once', decided_by: 'customer', audit_hash: 'x' });
  await ctx.dispatch({ kind: 'plugin_output', call_id: callId, plugin: 'sysinfo', stream: 'output', text: '== Hardware and CPU ==' });
  await ctx.dispatch({ kind: 'plugin_done', call_id: callId, plugin: 'sysinfo', ok: true, text: '1 category shown' });
  await ctx.dispatch({ kind: 'plugin_output', call_id: callId, plugin: 'sysinfo', stream: 'output', text: 'after the end' });
  assert.deepEqual(seen, [
    ['consent', 'allow_once'],
    ['out', 'output', '== Hardware and CPU =='],
    ['done', true, '1 category shown'],
  ]);
});

test('the password is asked only for a login this page started, once, and answered with a credential reply', async () => {
  const { ctx, sent, activity } = context();
  const asked = [];
  ctx.askPassword = async (user, prompt) => {
    asked.push([user, prompt]);
    return 'S3cret';
  };
  const callId = ctx.runPlugin('run-as', 'login', ['administrator']);
  sent.length = 0;
  // Somebody else's call: nothing asked, nothing sent.
  await ctx.dispatch({ kind: 'credential_request', call_id: callId + 7, request_id: 1, user: 'root', prompt: 'Password' });
  assert.deepEqual(asked, []);
  assert.deepEqual(sent, []);
  assert.equal(activity[0][0], 'session.credentialIgnored');
  await ctx.dispatch({ kind: 'credential_request', call_id: callId, request_id: 2, user: 'administrator', prompt: 'Password for administrator' });
  assert.deepEqual(asked, [['administrator', 'Password for administrator']]);
  assert.deepEqual(sent, [['s1', { kind: 'credential_reply', request_id: 2, secret: 'S3cret' }]]);
  // A second request for the same call is not answered.
  await ctx.dispatch({ kind: 'credential_request', call_id: callId, request_id: 3, user: 'administrator', prompt: 'again' });
  assert.equal(sent.length, 1);
});

test('declining sends a credential reply without a secret', async () => {
  const { ctx, sent } = context();
  ctx.askPassword = async () => null;
  const callId = ctx.runPlugin('run-as', 'login', ['bob']);
  await ctx.dispatch({ kind: 'credential_request', call_id: callId, request_id: 9, user: 'bob', prompt: '' });
  assert.deepEqual(sent.at(-1), ['s1', { kind: 'credential_reply', request_id: 9, secret: null }]);
});

test('nothing is sent in an ended or restarting session; the end finishes running calls', async () => {
  const { ctx } = context();
  const done = [];
  ctx.runPlugin('reboot', 'reboot', [], { onDone: (ok) => done.push(ok) });
  await ctx.dispatch({ kind: 'state', state: 'rebooting', detail: 'restarting' });
  assert.throws(() => ctx.send({ kind: 'chat', from: 'operator', text: 'x' }), (e) => e instanceof ApiError && e.kind === 'rebooting');
  await ctx.dispatch({ kind: 'end', by: 'customer', reason: 'bye' });
  assert.deepEqual(done, [false]);
  assert.throws(() => ctx.send({ kind: 'chat', from: 'operator', text: 'x' }), (e) => e.kind === 'inactive');
  assert.equal(ctx.active, false);
});

test('reboot phases follow the session state through the rejoin', () => {
  let p = 'asked';
  const seen = [];
  for (const state of ['connected', 'rebooting', 'rebooting', 'connected']) {
    p = nextPhase(p, state);
    seen.push(p);
  }
  assert.deepEqual(seen, ['asked', 'rebooting', 'waiting', 'back']);
  assert.equal(nextPhase('waiting', 'ended'), 'ended');
  assert.equal(nextPhase('idle', 'suspended'), 'idle');
});

test('scripts sort by any column, names breaking ties', () => {
  const list = [
    { name: 'b', owner: 'x', published: true, exec_bytes: 10, updated_at: '2026-01-02T00:00:00Z' },
    { name: 'a', owner: 'x', published: false, exec_bytes: 900, updated_at: '2026-01-03T00:00:00Z' },
    { name: 'c', owner: 'w', published: true, exec_bytes: 9, updated_at: '2026-01-01T00:00:00Z' },
  ];
  const names = (l) => l.map((s) => s.name).join('');
  assert.equal(names(sortScripts(list, 'name', false)), 'abc');
  assert.equal(names(sortScripts(list, 'owner', false)), 'cab');
  assert.equal(names(sortScripts(list, 'owner', true)), 'abc');
  assert.equal(names(sortScripts(list, 'exec_bytes', false)), 'cba');
  assert.equal(names(sortScripts(list, 'published', true)), 'bca');
  assert.equal(names(sortScripts(list, 'updated_at', true)), 'abc');
});

test('files over 1 MB are refused before upload', () => {
  assert.equal(fileProblem({ name: 'ok.sh', size: 1 << 20 }, 'exec'), null);
  assert.equal(fileProblem({ name: 'big.sh', size: (1 << 20) + 1 }, 'exec')[0], 'scripts.form.tooLarge');
  assert.equal(fileProblem({ name: 'empty.sh', size: 0 }, 'exec')[0], 'scripts.form.emptyFile');
  assert.equal(fileProblem({ name: 'empty.txt', size: 0 }, 'input'), null);
  assert.equal(fileProblem({ name: 'my script.sh', size: 5 }, 'exec')[0], 'scripts.form.badName');
});

test('invitation helpers', () => {
  assert.equal(groupDigits('482913'), '482 913');
  assert.equal(groupDigits('abc'), 'abc');
  assert.ok(isNoMailServer(new ApiError('this broker has no mail server configured ([smtp] in broker.toml)', { kind: 'http', status: 409 })));
  assert.ok(!isNoMailServer(new ApiError('the session is not in a state that allows this', { kind: 'http', status: 409 })));
  const inv = { session_id: 's', ticket: 'T 1&2', end_user: 'Mario', connection_id: '123456', link: 'https://x/j/abc', short_link: 'https://x/s/abc', expires_at: '2026-03-01T10:00:00Z' };
  const { subject, body } = invitationMail(inv, { name: 'Alice', title: 'Support' });
  assert.equal(subject, 'Remote support for ticket T 1&2');
  assert.ok(body.includes('https://x/s/abc') && body.includes('lifeline agent join https://x/j/abc') && body.includes('123456') && body.endsWith('Alice\nSupport'));
  assert.ok(mailtoUrl(subject, body).startsWith('mailto:?subject=Remote%20support%20for%20ticket%20T%201%262&body=Hello%20Mario%2C%0A'));
});

test('system information panels and the saved file', () => {
  assert.equal(categoryOfTitle('Disks and file systems'), 'disks');
  assert.equal(categoryOfTitle('Something new'), null);
  assert.equal(CATEGORIES.length, 8);
  const text = savedText('s1', '2026-03-01T10:00:00Z', [{ title: 'Memory', text: 'total 8 GiB' }]);
  assert.equal(text, 'Lifeline system information — session s1, saved 2026-03-01T10:00:00Z\n\n== Memory ==\ntotal 8 GiB\n');
});
