// Reboot and rejoin: the operator restarts the customer's computer from
// the console, the customer consents, the power backend stops the agent
// (as a restart would), the console shows the computer away; the agent is
// started again as the service manager would (`lifeline agent service`),
// rejoins the same session by itself, and the console shows it back.

import assert from 'node:assert/strict';
import { scenario, env, en, tr, byTestId, attrIs, until, login, inviteJoinConnect, endSession, Agent } from '../lib/harness.js';

const CODE = /Security code with .*: (\d{3} \d{3})/;

scenario('a reboot and the rejoin', '05', (step, s) => {
  step('a session', async (st) => {
    await login(st.page);
    s.session = await inviteJoinConnect(st, { ticket: 'T-BROWSER-REBOOT' });
    await byTestId(st.page, 'tab-reboot').click();
    assert.equal(await byTestId(st.page, 'reboot-state').getAttribute('data-phase'), 'idle');
  });

  step('restart asked, with a confirmation', async ({ page }) => {
    await byTestId(page, 'reboot-reason').fill('apply updates');
    await byTestId(page, 'reboot-button').click();
    const dialog = byTestId(page, 'reboot-confirm');
    await dialog.waitFor();
    return dialog;
  });

  step('the customer consents; the computer restarts', async ({ page }) => {
    await byTestId(page, 'reboot-confirm-confirm').click();
    await attrIs(byTestId(page, 'reboot-state'), 'data-phase', 'asked');
    const { agent } = s.session;
    const told = await agent.waitLine('Lifeline reconnects to this session by itself');
    assert.ok(told.includes('(apply updates)'), told);
    await agent.answerConsent('/allow');
    const exit = await agent.waitExit();
    assert.equal(exit.signal, 'SIGKILL', `stopped by the power backend: ${JSON.stringify(exit)}`);
    await attrIs(byTestId(page, 'session-state'), 'data-state', 'rebooting');
    await page.locator('[data-testid="session-banner"]', { hasText: tr(en, 'session.rebootingBanner') }).waitFor();
    const phase = await byTestId(page, 'reboot-state').getAttribute('data-phase');
    assert.ok(['rebooting', 'waiting'].includes(phase), phase);
    // Nothing goes to a computer that is away.
    await byTestId(page, 'chat-input').fill('are you there?');
    await byTestId(page, 'chat-input').press('Enter');
    await page.locator('[data-testid="chat-status"].error').waitFor();
  });

  step('the agent service rejoins: the console shows it back', async ({ page }) => {
    const back = Agent.service();
    s.agents.push(back);
    s.back = back;
    const line = await back.waitLine(`You are back in the session with ${env.operatorName}`);
    assert.ok(line.includes('T-BROWSER-REBOOT'), line);
    await attrIs(byTestId(page, 'reboot-state'), 'data-phase', 'back');
    await attrIs(byTestId(page, 'session-state'), 'data-state', 'connected');
    assert.equal(await byTestId(page, 'session-banner').isHidden(), true);
    // The refusal of the line typed meanwhile is gone; the line is still there to send.
    await page.locator('[data-testid="chat-status"].error').waitFor({ state: 'detached' }).catch(() => {});
    assert.equal(await page.locator('[data-testid="chat-status"].error').count(), 0);
    assert.equal(await byTestId(page, 'chat-input').inputValue(), 'are you there?');
    const steps = await byTestId(page, 'reboot-steps').locator('li').evaluateAll((l) => l.map((x) => x.className));
    assert.equal(steps[0], 'step-asked');
    assert.equal(steps.at(-1), 'step-back');
    return byTestId(page, 'reboot-panel');
  });

  step('a new end-to-end channel: the new security code on both sides', async ({ page }) => {
    // The returning agent has no channels: the page starts a new one.
    const code = await until(() => s.back.lines.map((l) => CODE.exec(l)?.[1]).filter(Boolean).at(-1), "the returning agent's security code");
    await attrIs(byTestId(page, 'session-e2e'), 'data-state', 'ready');
    assert.equal((await byTestId(page, 'session-sas-code').textContent()).trim(), code);
    await page.locator('[data-testid="activity-log"]', { hasText: tr(en, 'e2e.activity.newCode', { code }) }).waitFor();
    return byTestId(page, 'session-e2e');
  });

  step('chat goes on', async ({ page }) => {
    await byTestId(page, 'chat-input').fill('welcome back');
    await byTestId(page, 'chat-input').press('Enter');
    await s.back.waitLine(`[${env.operatorName}] welcome back`);
    s.back.type('all updated');
    await byTestId(page, 'chat-log').locator('li[data-from="customer"]', { hasText: 'all updated' }).waitFor();
  });

  step('the report shows the reboot and the rejoin', async ({ page }) => {
    await byTestId(page, 'tab-report').click();
    const rows = byTestId(page, 'report-rows');
    await rows.locator('tr[data-kind="rejoin"]').waitFor();
    const kinds = await rows.locator('tr').evaluateAll((r) => r.map((x) => x.dataset.kind).filter((k) => k === 'reboot' || k === 'rejoin'));
    assert.deepEqual(kinds, ['reboot', 'reboot', 'reboot', 'rejoin']);
    await rows.locator('tr[data-kind="rejoin"]', { hasText: 'rejoined after the reboot' }).waitFor();
    return rows.locator('tr[data-kind="rejoin"]');
  });

  step('session ended', async ({ page }) => {
    await endSession(page, s.back, 'updated', { service: true });
  });
});
