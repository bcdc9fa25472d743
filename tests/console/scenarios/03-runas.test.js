// Run-as: the operator logs in as a real local account on the customer's
// computer (checked by PAM). The customer consents at the terminal, the
// console asks for the password in a dialog; a wrong one is refused, the
// right one suspends the customer's input; commands run as that user;
// logging out gives the customer's access back.

import assert from 'node:assert/strict';
import { scenario, env, en, tr, byTestId, attrIs, login, inviteJoinConnect, endSession } from '../lib/harness.js';

const WRONG = 'not-the-right-password-42';

scenario('run-as login through PAM with the password dialog', '03', (step, s) => {
  step('a session', async (st) => {
    await login(st.page);
    s.session = await inviteJoinConnect(st, { ticket: 'T-BROWSER-RUNAS' });
    await byTestId(st.page, 'tab-runas').click();
    assert.equal(await byTestId(st.page, 'runas-status').getAttribute('data-suspended'), 'false');
  });

  step('the customer consents, the password dialog opens', async ({ page }) => {
    await byTestId(page, 'runas-user').fill(env.runAsUser);
    await byTestId(page, 'runas-login').click();
    const q = await s.session.agent.answerConsent('/allow-session');
    assert.ok(q.includes('/allow-session'), q);
    const dialog = byTestId(page, 'runas-password-dialog');
    await dialog.waitFor();
    assert.ok((await dialog.textContent()).includes(tr(en, 'runas.dialog.title', { user: env.runAsUser })));
    return dialog;
  });

  step('a wrong password is refused', async ({ page }) => {
    await byTestId(page, 'runas-password').fill(WRONG);
    await byTestId(page, 'runas-password-send').click();
    await byTestId(page, 'runas-password-dialog').waitFor({ state: 'detached' });
    const out = byTestId(page, 'runas-output');
    await out.locator('.out-failed', { hasText: `was not accepted (1 of 3 attempts)` }).waitFor();
    await page.locator('[data-testid="runas-form-status"].error').waitFor();
    assert.equal(await byTestId(page, 'runas-status').getAttribute('data-suspended'), 'false');
    return out;
  });

  step('the right password: logged in, the customer suspended', async ({ page }) => {
    await byTestId(page, 'runas-login').click();
    // The customer's "allow for this session" covers it: no question.
    await byTestId(page, 'runas-password').fill(env.runAsPassword);
    await byTestId(page, 'runas-password-send').click();
    await attrIs(byTestId(page, 'runas-status'), 'data-suspended', 'true');
    await page.locator('[data-testid="runas-form-status"].ok').waitFor();
    await s.session.agent.waitLine(`is now working on this computer as user ${env.runAsUser}`);
    assert.equal(await byTestId(page, 'session-state').getAttribute('data-state'), 'suspended');
    // The customer's typing is held meanwhile.
    s.session.agent.type('can you still hear me?');
    await s.session.agent.waitLine('Held: your input is paused');
  });

  step('commands run as that user', async ({ page }) => {
    await byTestId(page, 'runas-whoami').click();
    const out = byTestId(page, 'runas-output');
    await out.locator('.out-output', { hasText: `uid=${env.runAsUid}(${env.runAsUser})` }).waitFor();
    return out;
  });

  step('logged out: the customer has access again', async ({ page }) => {
    await byTestId(page, 'runas-logout').click();
    await attrIs(byTestId(page, 'runas-status'), 'data-suspended', 'false');
    await s.session.agent.waitLine('Your access is restored');
    // The held line arrives now.
    await byTestId(page, 'chat-log').locator('li[data-from="customer"]', { hasText: 'can you still hear me?' }).waitFor();
    await attrIs(byTestId(page, 'session-state'), 'data-state', 'connected');
    // Never in the page: the password.
    assert.ok(!(await page.content()).includes(env.runAsPassword));
  });

  step('session ended', async ({ page }) => {
    await endSession(page, s.session.agent, 'run-as done');
  });
});
