// End-to-end encryption in the browser (docs/security.md, "Web console"):
// the page pins every script, style, module and fetched file with
// Subresource Integrity, and a sub-resource changed on the way is refused;
// the security code the page shows is the one the customer's agent shows;
// chat goes both ways with no chat text on the console's WebSocket.

import assert from 'node:assert/strict';
import { scenario, env, en, tr, byTestId, attrIs, until, login, inviteJoinConnect, endSession } from '../lib/harness.js';

const OPERATOR_LINE = 'Ciao, sono il tecnico: leggo il codice';
const CUSTOMER_LINE = 'Il mio codice coincide';

scenario('end-to-end encryption and the page integrity', '08', (step, s) => {
  step('every script, style, module and fetched file of the page is pinned', async ({ page }) => {
    // The socket's frames, both ways, to look for the chat text later.
    s.frames = [];
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => s.frames.push(String(f.payload)));
      ws.on('framereceived', (f) => s.frames.push(String(f.payload)));
    });
    await login(page);
    const pinned = await page.evaluate(() => ({
      scripts: [...document.querySelectorAll('script[src]')].map((e) => [e.getAttribute('src'), e.integrity]),
      styles: [...document.querySelectorAll('link[rel="stylesheet"]')].map((e) => [e.getAttribute('href'), e.integrity]),
      modules: [...document.querySelectorAll('link[rel="modulepreload"]')].map((e) => [e.getAttribute('href'), e.integrity]),
      fetched: document.querySelector('meta[name="lifeline-integrity"]')?.content ?? '',
      loaded: performance.getEntriesByType('resource').map((r) => new URL(r.name).pathname),
    }));
    assert.ok(pinned.scripts.length >= 1 && pinned.styles.length >= 1, JSON.stringify(pinned));
    for (const [url, integrity] of [...pinned.scripts, ...pinned.styles, ...pinned.modules]) {
      assert.match(integrity, /^sha256-[A-Za-z0-9+/]{43}=$/, `${url} carries no integrity`);
    }
    // Every JavaScript module the page loaded was pinned before it ran.
    const pinnedJs = new Set([...pinned.scripts, ...pinned.modules].map(([u]) => `/console/${u}`));
    const loadedJs = pinned.loaded.filter((p) => p.endsWith('.js'));
    assert.ok(loadedJs.length > 10, loadedJs.join(' '));
    for (const p of loadedJs) assert.ok(pinnedJs.has(p), `${p} was loaded without a pinned integrity`);
    assert.match(pinned.fetched, /wasm\/lifeline-e2e\.wasm sha256-\S{44}/);
    assert.match(pinned.fetched, /locales\/en\.json sha256-\S{44}/);
  });

  step('a module or the end-to-end module changed on the way is refused', async ({ context }) => {
    // What a relay, a cache or a partial compromise that changes a file
    // but not the page would serve: the page's pins refuse it.
    const tampered = await context.newPage();
    await tampered.route('**/console/assets/src/chat.js', async (route) => {
      const r = await route.fetch();
      await route.fulfill({ response: r, body: `${await r.text()}\nconsole.log('changed');\n` });
    });
    const errors = [];
    tampered.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await tampered.goto(env.url);
    await until(() => errors.some((e) => /integrity/i.test(e)), 'an integrity error for the changed module');
    assert.equal(await tampered.evaluate(() => Boolean(window.lifelineConsole)), false, 'the console did not start');
    await tampered.close();

    const wasm = await context.newPage();
    await wasm.route('**/console/assets/wasm/lifeline-e2e.wasm', async (route) => {
      const r = await route.fetch();
      const body = Buffer.concat([await r.body(), Buffer.from([0])]);
      await route.fulfill({ response: r, body });
    });
    await wasm.goto(env.url);
    await wasm.locator('.error-card', { hasText: tr(en, 'app.unavailable') }).waitFor();
    const said = await wasm.locator('.error-card').textContent();
    assert.ok(said.includes(tr(en, 'e2e.unavailable', { reason: '' }).split('(')[0].trim()), said);
    await wasm.close();
    // These pages' errors are this step's own doing.
    context.problems = context.problems.filter((p) => !/integrity|lifeline-e2e\.wasm|Failed to fetch/i.test(p));
  });

  step('connected: the page shows the security code the customer sees', async (state) => {
    const { page } = state;
    const joined = await inviteJoinConnect(state, { ticket: 'T-E2E-1' });
    s.agent = joined.agent;
    const line = await s.agent.waitLine(/Security code with .*: \d{3} \d{3}/);
    const agentCode = /(\d{3} \d{3})/.exec(line)[1];
    await attrIs(byTestId(page, 'session-e2e'), 'data-state', 'ready');
    const shown = (await byTestId(page, 'session-sas-code').textContent()).trim();
    assert.equal(shown, agentCode, `the page shows ${shown}, the customer's screen ${agentCode}`);
    const sentence = (await byTestId(page, 'session-sas').textContent()).replace(/\s+/g, ' ').trim();
    assert.equal(sentence, `${tr(en, 'e2e.codeLabel')} ${agentCode} ${tr(en, 'e2e.codeAdvice')}`);
    await page.locator('[data-testid="activity-log"]', { hasText: tr(en, 'e2e.activity.ready', { code: agentCode }) }).waitFor();
    return byTestId(page, 'session-e2e');
  });

  step('chat both ways, and no chat text on the WebSocket', async ({ page }) => {
    await byTestId(page, 'chat-input').fill(OPERATOR_LINE);
    await byTestId(page, 'chat-send').click();
    await s.agent.waitLine(OPERATOR_LINE);
    s.agent.type(CUSTOMER_LINE);
    await page.locator('[data-testid="chat-log"]', { hasText: CUSTOMER_LINE }).waitFor();
    assert.ok(s.frames.length > 4, `${s.frames.length} frames seen`);
    const clear = s.frames.filter((f) => f.includes(OPERATOR_LINE) || f.includes(CUSTOMER_LINE));
    assert.deepEqual(clear, [], 'chat text in the clear on the socket');
    assert.ok(s.frames.some((f) => f.includes('"sealed"')), 'sealed messages on the socket');
  });

  step('session ended', async ({ page }) => {
    await endSession(page, s.agent, 'e2e checked');
    await attrIs(byTestId(page, 'session-e2e'), 'data-state', 'closed');
  });
});
