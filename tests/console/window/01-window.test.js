// The customer's window in a real browser: the agent joins with
// `--ui window --no-browser`, Chromium opens the launcher file, and the
// operator (the real command line) chats, asks, runs a plugin that needs
// consent, shares the screen; the customer answers each dialog with each
// button, lets one expire, stops the share and ends the session. Along the
// way the window server's defences are tried: a foreign Host, a WebSocket
// without the cookie or from a foreign Origin, the launch token twice.

import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import { scenario, env, byTestId, attrIs, until } from '../lib/harness.js';
import { operator, newInvitation, joinWithWindow, launcherSecrets, request, upgrade, report } from './lib.js';

scenario('the customer window', 'window', (step, s) => {
  step('the agent joins with a window; Chromium opens the launcher', async (st) => {
    const inv = await newInvitation('T-WINDOW');
    s.sid = inv.sessionId;
    const { agent, launcher } = await joinWithWindow(inv.connectionId);
    st.agents.push(agent);
    s.agent = agent;
    s.launcher = launcher;
    Object.assign(s, launcherSecrets(launcher));
    const ready = await operator(['wait', s.sid, '--timeout', '30']);
    assert.equal(ready.code, 0, ready.out);
    // Before the browser: the page's socket needs the cookie the launcher brings.
    const noCookie = await upgrade(s.port, { Origin: `http://127.0.0.1:${s.port}` });
    assert.equal(noCookie.status, 403, 'a WebSocket without the cookie is refused');
    await st.page.goto(pathToFileURL(launcher).href);
    await st.page.waitForURL(`http://127.0.0.1:${s.port}/`);
    await byTestId(st.page, 'helper-name').filter({ hasText: env.operatorName }).waitFor();
    await byTestId(st.page, 'helper-meta').filter({ hasText: 'Support Engineer · Process broker' }).waitFor();
  });

  step('the window server refuses a foreign Host, a used token and a foreign Origin', async ({ context }) => {
    const rebinding = await request(s.port, { headers: { Host: `evil.example:${s.port}` } });
    assert.equal(rebinding.status, 403, 'DNS rebinding: a foreign Host header');
    const own = await request(s.port, { headers: { Host: `127.0.0.1:${s.port}` } });
    assert.equal(own.status, 200);
    assert.match(own.headers['content-security-policy'], /default-src 'none'; script-src 'self'/);
    const again = await request(s.port, {
      method: 'POST',
      path: '/open',
      headers: { Host: `127.0.0.1:${s.port}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: `token=${s.token}`,
    });
    assert.equal(again.status, 403, 'the launch token works once');
    assert.ok(!again.headers['set-cookie'], 'and gives no cookie the second time');
    const [cookie] = (await context.cookies(`http://127.0.0.1:${s.port}/`)).filter((c) => c.name === 'lifeline_window');
    assert.ok(cookie, 'the launcher gave the browser the window cookie');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    const header = `lifeline_window=${cookie.value}`;
    const foreign = await upgrade(s.port, { Cookie: header, Origin: 'http://evil.example' });
    assert.equal(foreign.status, 403, 'a WebSocket from a foreign Origin is refused');
    const mine = await upgrade(s.port, { Cookie: header, Origin: `http://127.0.0.1:${s.port}` });
    assert.equal(mine.status, 101, 'the page\'s own origin with the cookie is accepted');
  }, { screenshot: false });

  step('chat both ways', async ({ page }) => {
    const sent = await operator(['chat', s.sid, 'Hello Mario, I am looking at it']);
    assert.equal(sent.code, 0, sent.out);
    await byTestId(page, 'chat-log').locator('li[data-from="operator"]', { hasText: 'Hello Mario, I am looking at it' }).waitFor();
    await byTestId(page, 'chat-input').fill('Thank you, the printer is offline');
    await byTestId(page, 'chat-send').click();
    await byTestId(page, 'chat-log').locator('li[data-from="customer"]', { hasText: 'the printer is offline' }).waitFor();
    await until(async () => (await report(s.sid)).includes('Thank you, the printer is offline'), 'the operator has the customer\'s line');
    return page;
  });

  step('a question answered "Allow once"', async ({ page }) => {
    const asked = operator(['ask', s.sid, '--plugin', 'sysinfo', '--action', 'system.info', '--detail', 'May I look at your printer settings?']);
    const dialog = byTestId(page, 'consent-dialog');
    await dialog.waitFor();
    await byTestId(page, 'consent-detail').filter({ hasText: 'May I look at your printer settings?' }).waitFor();
    assert.equal(await byTestId(page, 'consent-allow-session').isHidden(), true, 'a question cannot be allowed for the session');
    const shot = await page.screenshot({ path: `${env.screenshots}/window-consent-question.png` });
    assert.ok(shot);
    await byTestId(page, 'consent-allow-once').click();
    const r = await asked;
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /allow once \(customer\)/);
    await dialog.waitFor({ state: 'hidden' });
  });

  step('a plugin\'s capability answered "Allow for this session"', async ({ page }) => {
    const run = operator(['sysinfo', s.sid, '--category', 'os']);
    await byTestId(page, 'consent-dialog').waitFor();
    await byTestId(page, 'consent-what').filter({ hasText: 'system.info' }).waitFor();
    const box = byTestId(page, 'consent-dialog');
    assert.equal(await box.getAttribute('data-kind'), 'capability');
    for (const b of ['consent-allow-once', 'consent-allow-session', 'consent-deny']) {
      assert.equal(await byTestId(page, b).isVisible(), true, `${b} is offered`);
    }
    const left = Number(await byTestId(page, 'consent-countdown').getAttribute('data-seconds'));
    assert.ok(left > 0, `a countdown is shown (${left} s)`);
    await page.screenshot({ path: `${env.screenshots}/window-consent-capability.png` });
    await byTestId(page, 'consent-allow-session').click();
    const r = await run;
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /allow for this session \(customer\)/);
  });

  step('a question answered "Deny"', async ({ page }) => {
    const asked = operator(['ask', s.sid, '--plugin', 'sysinfo', '--action', 'system.info', '--detail', 'May I restart the spooler?']);
    await byTestId(page, 'consent-detail').filter({ hasText: 'restart the spooler' }).waitFor();
    await byTestId(page, 'consent-deny').click();
    const r = await asked;
    assert.equal(r.code, 3, r.out);
    assert.match(r.out, /deny \(customer\)/);
  });

  step('the countdown runs out: denied by the agent', async ({ page }) => {
    const asked = operator(['ask', s.sid, '--plugin', 'sysinfo', '--action', 'system.info', '--detail', 'Nobody answers this one']);
    await byTestId(page, 'consent-detail').filter({ hasText: 'Nobody answers this one' }).waitFor();
    const first = Number(await byTestId(page, 'consent-countdown').getAttribute('data-seconds'));
    await until(async () => Number(await byTestId(page, 'consent-countdown').getAttribute('data-seconds')) < first, 'the countdown moves');
    const r = await asked;
    assert.equal(r.code, 3, r.out);
    assert.match(r.out, /deny/);
    await byTestId(page, 'consent-dialog').waitFor({ state: 'hidden' });
    await byTestId(page, 'chat-log').locator('li[data-resolution="expired"]').waitFor();
    return page;
  });

  step('a typed answer wins over the window: the dialog closes', async ({ page }) => {
    const asked = operator(['ask', s.sid, '--plugin', 'sysinfo', '--action', 'system.info', '--detail', 'Answered at the terminal']);
    await byTestId(page, 'consent-detail').filter({ hasText: 'Answered at the terminal' }).waitFor();
    s.agent.type('/allow');
    const r = await asked;
    assert.equal(r.code, 0, r.out);
    await byTestId(page, 'consent-dialog').waitFor({ state: 'hidden' });
  }, { screenshot: false });

  step('screen sharing: the indicator names the operator; Stop ends the stream', async ({ page }) => {
    const shared = operator(['screen', s.sid, '--record', `${env.workDir}/screen.rec`, '--seconds', '120']);
    const bar = byTestId(page, 'sharing');
    await bar.filter({ hasText: env.operatorName }).waitFor();
    await page.screenshot({ path: `${env.screenshots}/window-sharing.png` });
    await byTestId(page, 'sharing-stop').click();
    const r = await shared;
    assert.ok(r.code !== null, r.out);
    await bar.waitFor({ state: 'hidden' });
    await s.agent.waitLine('You stopped screen sharing');
    return page;
  });

  step('Italian, with the language switch', async ({ page }) => {
    await byTestId(page, 'language').selectOption('it');
    await byTestId(page, 'end-session').filter({ hasText: 'Termina sessione' }).waitFor();
    await byTestId(page, 'sharing-stop').filter({ hasText: 'Interrompi condivisione' }).count();
    assert.equal(await page.locator('html').getAttribute('lang'), 'it');
    await page.screenshot({ path: `${env.screenshots}/window-italian.png` });
    await byTestId(page, 'language').selectOption('en');
    await byTestId(page, 'end-session').filter({ hasText: 'End session' }).waitFor();
  }, { screenshot: false });

  step('End session, confirmed: the operator sees the customer ended it', async ({ page }) => {
    await byTestId(page, 'end-session').click();
    await byTestId(page, 'end-confirm').waitFor();
    await byTestId(page, 'end-confirm-yes').click();
    await attrIs(byTestId(page, 'ended'), 'data-by', 'customer');
    const exit = await s.agent.waitExit();
    assert.equal(exit.code, 0, JSON.stringify(exit));
    assert.match(await report(s.sid), /ended by the customer/);
    return page;
  });
});
