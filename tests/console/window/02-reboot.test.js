// The window after a restart: the operator restarts the customer's
// computer (the power backend stops the agent as a restart would), the
// agent service rejoins the session and offers the customer channel on
// its unix socket, `lifeline agent window --no-browser` (what the
// autostart entry runs at the desktop login) connects to it, and the page
// says "You are back in the session with NAME" and answers a consent
// request.

import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import { scenario, env, byTestId, attrIs, Agent } from '../lib/harness.js';
import { operator, newInvitation, joinWithWindow, launcherPath } from './lib.js';

scenario('the customer window after a restart', 'window-reboot', (step, s) => {
  step('a session with a window', async (st) => {
    const inv = await newInvitation('T-WINDOW-REBOOT');
    s.sid = inv.sessionId;
    const { agent, launcher } = await joinWithWindow(inv.connectionId);
    st.agents.push(agent);
    s.agent = agent;
    const ready = await operator(['wait', s.sid, '--timeout', '30']);
    assert.equal(ready.code, 0, ready.out);
    // This window dies with the agent: its own context, whose failed
    // reconnections are expected.
    s.before = await (await st.browser.newContext()).newPage();
    await s.before.goto(pathToFileURL(launcher).href);
    await byTestId(s.before, 'helper-name').filter({ hasText: env.operatorName }).waitFor();
    return s.before;
  });

  step('the customer allows the restart in the window', async () => {
    s.reboot = operator(['reboot', s.sid, '--reason', 'apply updates']);
    await byTestId(s.before, 'consent-dialog').waitFor();
    await s.before.screenshot({ path: `${env.screenshots}/window-reboot-consent.png` });
    await byTestId(s.before, 'consent-allow-once').click();
    const exit = await s.agent.waitExit();
    assert.equal(exit.signal, 'SIGKILL', `stopped by the power backend: ${JSON.stringify(exit)}`);
    await s.before.context().close();
  }, { screenshot: false });

  step('the service rejoins; the window comes back: "You are back in the session"', async (st) => {
    const service = Agent.service();
    st.agents.push(service);
    s.service = service;
    await service.waitLine(`You are back in the session with ${env.operatorName}`);
    const win = new Agent(['window', '--config', env.agentConfig, '--no-browser'], 'window-after-restart');
    st.agents.push(win);
    s.window = win;
    const launcher = launcherPath(await win.waitLine('The Lifeline window: open '));
    await st.page.goto(pathToFileURL(launcher).href);
    const back = byTestId(st.page, 'back-banner');
    await back.filter({ hasText: `You are back in the session with ${env.operatorName}` }).waitFor();
    await byTestId(st.page, 'helper-name').filter({ hasText: env.operatorName }).waitFor();
    return st.page;
  });

  step('a consent request reaches the window again and is answered there', async ({ page }) => {
    const asked = operator(['ask', s.sid, '--plugin', 'sysinfo', '--action', 'system.info', '--detail', 'Did the updates install?']);
    await byTestId(page, 'consent-detail').filter({ hasText: 'Did the updates install?' }).waitFor();
    await page.screenshot({ path: `${env.screenshots}/window-reboot-back-consent.png` });
    await byTestId(page, 'consent-allow-once').click();
    const r = await asked;
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /allow once \(customer\)/);
    await byTestId(page, 'consent-dialog').waitFor({ state: 'hidden' });
    return page;
  });

  step('chat and the end from the window', async ({ page }) => {
    const sent = await operator(['chat', s.sid, 'welcome back']);
    assert.equal(sent.code, 0, sent.out);
    await byTestId(page, 'chat-log').locator('li[data-from="operator"]', { hasText: 'welcome back' }).waitFor();
    await byTestId(page, 'end-session').click();
    await byTestId(page, 'end-confirm-yes').click();
    await attrIs(byTestId(page, 'ended'), 'data-by', 'customer');
    await s.service.waitLine(`Session ${s.sid} is over`);
    const exit = await s.window.waitExit();
    assert.equal(exit.code, 0, `agent window: ${JSON.stringify(exit)}\n${s.window.lines.join('\n')}`);
    await s.reboot.catch(() => {});
    return page;
  });
});
