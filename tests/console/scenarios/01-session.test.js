// A support session from the browser: log in (a wrong password first),
// invite, the customer joins with the connection ID and the session list
// in another tab shows it without a reload, connect, chat both ways, a
// consent question the agent's policy answers, system information shown
// and saved, the session ended and its report downloaded (text and JSON).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { scenario, env, en, tr, byTestId, attrIs, until, login, invite, Agent, endSession } from '../lib/harness.js';

const TICKET = 'T-BROWSER-1';
const CUSTOMER = 'Mario Rossi';

/** Saves the download `click` starts under the work folder; its text. */
async function download(page, click, name) {
  const [dl] = await Promise.all([page.waitForEvent('download'), click()]);
  const path = join(env.workDir, name);
  await dl.saveAs(path);
  return { text: readFileSync(path, 'utf8'), suggested: dl.suggestedFilename() };
}

scenario('a support session in the browser', '01', (step, s) => {
  step('login page, wrong password', async ({ page }) => {
    await page.goto(env.url);
    await byTestId(page, 'login-username').fill(env.operator);
    await byTestId(page, 'login-password').fill('not the password');
    await byTestId(page, 'login-submit').click();
    await page.locator('[data-testid="login-error"]', { hasText: tr(en, 'login.wrong') }).waitFor();
  });

  step('logged in', async ({ page }) => {
    await login(page);
    assert.equal(await page.locator('h1').first().textContent(), tr(en, 'sessions.title'));
    await page.locator('[data-testid="user-menu"]', { hasText: env.operatorName }).waitFor();
  });

  step('the session list open in another tab', async ({ context }) => {
    s.list = await context.newPage();
    await s.list.goto(`${env.url}#/sessions`);
    await attrIs(byTestId(s.list, 'sessions-status'), 'data-i18n', 'sessions.updated');
    // Marks this document: a reload would lose it.
    await s.list.evaluate(() => {
      window.lifelineTestMark = 'same document';
    });
    return s.list;
  });

  step('invitation created', async ({ page }) => {
    s.inv = await invite(page, { ticket: TICKET, customer: CUSTOMER });
    const link = await byTestId(page, 'invite-link').getAttribute('data-value');
    assert.match(link, /^https:\/\//);
    await page.locator('[data-testid="invite-joined"]', { hasText: tr(en, 'invite.waitingForCustomer') }).waitFor();
  });

  step('the customer joins: the session appears in the list without a reload', async () => {
    // Not there yet: the list was loaded before the invitation (and polls every 30 s).
    assert.equal(await byTestId(s.list, `session-row-${s.inv.sessionId}`).count(), 0);
    s.agent = Agent.join(s.inv.connectionId);
    s.agents.push(s.agent);
    const banner = await s.agent.waitLine('will help you');
    assert.ok(banner.includes(env.operatorName) && banner.includes(TICKET), banner);
    // The broker's push brings it, well before the list's poll.
    const row = byTestId(s.list, `session-row-${s.inv.sessionId}`);
    await attrIs(row, 'data-state', 'waiting', 10_000);
    await byTestId(s.list, `session-connect-${s.inv.sessionId}`).waitFor({ timeout: 1000 });
    assert.equal(await s.list.evaluate(() => window.lifelineTestMark), 'same document');
    assert.equal(await byTestId(s.list, `session-state-${s.inv.sessionId}`).textContent(), tr(en, 'state.waiting'));
    assert.ok((await row.textContent()).includes(TICKET));
    return s.list;
  });

  step('the invitation page says so too', async ({ page }) => {
    await page.locator('[data-testid="invite-joined"]', { hasText: tr(en, 'invite.customerJoined', { customer: CUSTOMER }) }).waitFor();
    await s.list.close();
  });

  step('connected', async ({ page }) => {
    await byTestId(page, 'invite-connect').click();
    await attrIs(byTestId(page, 'session-state'), 'data-state', 'connected');
    await s.agent.waitLine('is connected');
    assert.equal((await byTestId(page, 'session-ticket').textContent()).trim(), TICKET);
    assert.equal((await byTestId(page, 'session-customer').textContent()).trim(), CUSTOMER);
    assert.equal(await byTestId(page, 'session-end').isDisabled(), false);
  });

  step('chat both ways', async ({ page }) => {
    const input = byTestId(page, 'chat-input');
    await input.fill('Hello from the browser');
    await input.press('Enter');
    await s.agent.waitLine(`[${env.operatorName}] Hello from the browser`);
    s.agent.type('Thanks, the printer is offline');
    const log = byTestId(page, 'chat-log');
    await log.locator('li[data-from="customer"]', { hasText: 'Thanks, the printer is offline' }).waitFor();
    await log.locator('li[data-from="you"]', { hasText: 'Hello from the browser' }).waitFor();
    assert.equal(await input.inputValue(), '');
    return byTestId(page, 'chat-panel');
  });

  step('a consent question answered by the agent policy', async ({ page }) => {
    await byTestId(page, 'consent-ask-toggle').click();
    await byTestId(page, 'consent-plugin').fill('sysinfo');
    await byTestId(page, 'consent-action').fill('system.info');
    await byTestId(page, 'consent-detail').fill('May I read the system information of this computer?');
    await byTestId(page, 'consent-ask').click();
    const outcome = byTestId(page, 'consent-log').locator('.consent-outcome[data-decision="allow_once"]').first();
    await outcome.waitFor();
    const text = await outcome.textContent();
    assert.ok(text.includes(tr(en, 'consent.decision.allow_once')), text);
    assert.ok(text.includes(tr(en, 'consent.decidedBy', { by: tr(en, 'consent.by.policy') })), text);
    // Answered: the form no longer says it waits for the customer.
    await until(async () => (await byTestId(page, 'consent-status').getAttribute('data-i18n')) !== 'consent.sent', 'the consent form\'s status cleared');
    // Nobody asked the customer.
    assert.ok(!s.agent.lines.slice(s.agent.cursor).some((l) => l.includes('Consent needed')), s.agent.lines.join('\n'));
    return byTestId(page, 'consent-panel');
  });

  step('system information shown', async ({ page }) => {
    await byTestId(page, 'tab-sysinfo').click();
    await byTestId(page, 'sysinfo-refresh').click();
    await page.locator('[data-testid="sysinfo-status"].ok').waitFor();
    for (const id of ['os', 'cpu', 'memory', 'disks', 'network', 'processes']) {
      const text = await byTestId(page, `sysinfo-text-${id}`).textContent();
      assert.ok(text.trim().length > 0 && !text.includes(tr(en, 'sysinfo.notLoaded')), `${id}: ${text}`);
    }
    assert.match(await byTestId(page, 'sysinfo-text-os').textContent(), /Linux/i);
    // The run was consented by the policy, and the console shows it.
    await byTestId(page, 'consent-log').locator('.consent-decided, li', { hasText: 'system.info' }).first().waitFor();
  });

  step('system information saved', async ({ page }) => {
    const { text, suggested } = await download(page, () => byTestId(page, 'sysinfo-save').click(), 'sysinfo.txt');
    assert.match(suggested, /^lifeline-sysinfo-.*\.txt$/);
    assert.ok(text.includes(s.inv.sessionId), text.slice(0, 200));
    for (const title of ['Operating system', 'Memory', 'Disks and file systems']) assert.ok(text.includes(`== ${title} ==`), title);
  });

  step('session ended', async ({ page }) => {
    await endSession(page, s.agent, 'printer fixed');
    await page.locator('[data-testid="session-banner"]', { hasText: tr(en, 'session.endedBanner') }).waitFor();
    assert.equal(await byTestId(page, 'chat-input').isDisabled(), true);
  });

  step('the report shown and downloaded as text and JSON', async ({ page }) => {
    await byTestId(page, 'tab-report').click();
    const rows = byTestId(page, 'report-rows');
    await rows.locator('tr[data-kind="end"]').waitFor();
    for (const kind of ['invitation', 'join', 'connect', 'chat', 'consent_request', 'consent']) {
      assert.ok((await rows.locator(`tr[data-kind="${kind}"]`).count()) > 0, kind);
    }
    const txt = await download(page, () => byTestId(page, 'report-download-txt').click(), 'report.txt');
    assert.equal(txt.suggested, `lifeline-report-${s.inv.sessionId}.txt`);
    for (const needle of [TICKET, CUSTOMER, 'Hello from the browser', 'Thanks, the printer is offline', 'printer fixed']) {
      assert.ok(txt.text.includes(needle), `${needle} in\n${txt.text}`);
    }
    const json = await download(page, () => byTestId(page, 'report-download-json').click(), 'report.json');
    const report = JSON.parse(json.text);
    assert.equal(report.session.session_id, s.inv.sessionId);
    assert.equal(report.session.state, 'ended');
    const kinds = report.events.map((e) => e.kind);
    assert.equal(kinds[0], 'invitation');
    assert.equal(kinds.at(-1), 'end');
    for (const k of ['join', 'connect', 'chat', 'consent_request', 'consent']) assert.ok(kinds.includes(k), `${k} in ${kinds}`);
    const texts = report.events.map((e) => e.text);
    assert.ok(texts.includes('Thanks, the printer is offline'), texts.join('\n'));
  });
});
