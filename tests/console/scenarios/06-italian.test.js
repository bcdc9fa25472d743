// Italian: a browser whose language is Italian (a context with locale
// it-IT) gets the console in Italian from the login page on — the texts
// are the Italian locale file's — and the language menu switches to
// English and back while a session is open.

import assert from 'node:assert/strict';
import { scenario, env, en, it_, tr, byTestId, attrIs, login, inviteJoinConnect, endSession } from '../lib/harness.js';

const text = async (locator) => (await locator.textContent()).trim();

scenario('the console in Italian', '06', (step, s) => {
  step('the login page in Italian', async ({ page }) => {
    await page.goto(env.url);
    await byTestId(page, 'login-form').waitFor();
    assert.equal(await page.evaluate(() => navigator.language), 'it-IT');
    assert.equal(await page.locator('html').getAttribute('lang'), 'it');
    assert.equal(await text(page.locator('#login-title')), tr(it_, 'login.title'));
    assert.notEqual(tr(it_, 'login.title'), tr(en, 'login.title'));
    assert.equal(await text(byTestId(page, 'login-submit')), tr(it_, 'login.submit'));
    assert.equal(await byTestId(page, 'login-language').inputValue(), 'it');
  });

  step('the session list in Italian', async ({ page }) => {
    await login(page);
    assert.equal(await text(byTestId(page, 'nav-sessions')), tr(it_, 'nav.sessions'));
    assert.equal(await text(byTestId(page, 'nav-invite')), tr(it_, 'nav.invite'));
    assert.equal(await text(page.locator('h1').first()), tr(it_, 'sessions.title'));
    assert.equal(await text(byTestId(page, 'connection-status')), tr(it_, 'connection.open'));
    assert.ok((await page.title()).startsWith(tr(it_, 'sessions.title')));
  });

  step('an invitation and a session in Italian', async (st) => {
    const { page } = st;
    s.session = await inviteJoinConnect(st, { ticket: 'T-BROWSER-IT', customer: 'Giulia Bianchi' });
    assert.equal(await text(byTestId(page, 'session-state')), tr(it_, 'state.connected'));
    for (const [id, key] of [['tab-plugins', 'session.tab.plugins'], ['tab-sysinfo', 'session.tab.sysinfo'], ['tab-scripts', 'session.tab.scripts'], ['tab-reboot', 'session.tab.reboot'], ['tab-screen', 'session.tab.screen'], ['tab-report', 'session.tab.report']]) {
      assert.equal(await text(byTestId(page, id)), tr(it_, key), id);
    }
    assert.equal(await text(byTestId(page, 'session-end')), tr(it_, 'session.end'));
    await byTestId(page, 'chat-input').fill('Buongiorno, come posso aiutarla?');
    await byTestId(page, 'chat-input').press('Enter');
    await s.session.agent.waitLine('Buongiorno, come posso aiutarla?');
    s.session.agent.type('La stampante non funziona');
    const entry = byTestId(page, 'chat-log').locator('li[data-from="customer"]', { hasText: 'La stampante non funziona' });
    await entry.waitFor();
    assert.equal(await text(entry.locator('.chat-who')), tr(it_, 'chat.from.customer'));
    // Dates in Italian.
    const created = await text(byTestId(page, 'session-created'));
    assert.match(created, /\b(gen|feb|mar|apr|mag|giu|lug|ago|set|ott|nov|dic)\b/i, created);
  });

  step('switched to English and back with the language menu', async ({ page }) => {
    await byTestId(page, 'user-menu').click();
    await byTestId(page, 'menu-lang-en').click();
    await attrIs(page.locator('html'), 'lang', 'en');
    assert.equal(await text(byTestId(page, 'tab-sysinfo')), tr(en, 'session.tab.sysinfo'));
    assert.equal(await text(byTestId(page, 'session-state')), tr(en, 'state.connected'));
    assert.equal(await text(byTestId(page, 'chat-log').locator('li[data-from="customer"] .chat-who')), tr(en, 'chat.from.customer'));
    await byTestId(page, 'user-menu').click();
    await byTestId(page, 'menu-lang-it').click();
    await attrIs(page.locator('html'), 'lang', 'it');
    assert.equal(await text(byTestId(page, 'tab-sysinfo')), tr(it_, 'session.tab.sysinfo'));
    // Remembered: a reload stays Italian.
    await page.reload();
    await byTestId(page, 'session-state').waitFor();
    await attrIs(byTestId(page, 'session-state'), 'data-state', 'connected');
    assert.equal(await text(byTestId(page, 'session-state')), tr(it_, 'state.connected'));
  });

  step('session ended, in Italian', async ({ page }) => {
    await byTestId(page, 'session-end').click();
    await byTestId(page, 'session-end-dialog').waitFor();
    assert.equal(await byTestId(page, 'session-end-reason').inputValue(), tr(it_, 'session.endConfirm.defaultReason'));
    await page.keyboard.press('Escape');
    await byTestId(page, 'session-end-dialog').waitFor({ state: 'detached' });
    await endSession(page, s.session.agent, 'stampante sistemata');
    assert.equal(await text(byTestId(page, 'session-state')), tr(it_, 'state.ended'));
  });
}, { locale: 'it-IT' });
