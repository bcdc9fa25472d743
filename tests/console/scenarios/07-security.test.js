// What the browser itself enforces and sees: the login cookie's flags
// (HttpOnly, Secure, SameSite=Strict, Path=/console) as the browser stored
// them, the strict Content-Security-Policy blocking an inline script, the
// CSRF check (a state-changing request without the token, or with a
// forged one, answers 403 and changes nothing; a socket whose first
// message has a wrong token is closed), and logging out from the menu.

import assert from 'node:assert/strict';
import { scenario, env, en, tr, byTestId, login } from '../lib/harness.js';

const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** A fetch from the page (its origin, its cookie); the status. */
function post(page, path, headers = {}) {
  return page.evaluate(
    async ({ path, headers }) => {
      const r = await fetch(new URL(path, location.href), { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify({ to: 'someone@example.com' }), credentials: 'same-origin' });
      return r.status;
    },
    { path, headers },
  );
}

function get(page, path) {
  return page.evaluate(async (path) => (await fetch(new URL(path, location.href), { credentials: 'same-origin' })).status, path);
}

scenario('cookie flags, CSP and CSRF in the browser', '07', (step, s) => {
  step('the page comes with its security headers', async ({ page }) => {
    const resp = await page.goto(env.url);
    const h = resp.headers();
    assert.equal(h['content-security-policy'], CSP);
    assert.equal(h['x-content-type-options'], 'nosniff');
    assert.equal(h['referrer-policy'], 'no-referrer');
    await byTestId(page, 'login-form').waitFor();
  });

  step('the login cookie: HttpOnly, Secure, SameSite=Strict', async ({ page, context }) => {
    await login(page);
    const cookies = await context.cookies();
    const c = cookies.find((x) => x.name === 'll_console');
    assert.ok(c, `the login cookie among ${JSON.stringify(cookies.map((x) => x.name))}`);
    assert.equal(c.httpOnly, true);
    assert.equal(c.secure, true);
    assert.equal(c.sameSite, 'Strict');
    assert.equal(c.path, '/console');
    assert.ok(c.value.length >= 43, 'at least 256 random bits');
    s.cookie = c.value;
    // Out of the page's reach.
    assert.ok(!(await page.evaluate(() => document.cookie)).includes('ll_console'));
    assert.ok(!(await page.content()).includes(c.value));
  });

  step('the CSP blocks an inline script', async ({ page, context }) => {
    const blocked = await page.evaluate(
      () =>
        new Promise((resolve) => {
          document.addEventListener('securitypolicyviolation', (e) => resolve({ directive: e.effectiveDirective, ran: Boolean(window.inlineRan) }), { once: true });
          const el = document.createElement('script');
          el.textContent = 'window.inlineRan = true;';
          document.body.appendChild(el);
          setTimeout(() => resolve({ directive: null, ran: Boolean(window.inlineRan) }), 5000);
        }),
    );
    assert.deepEqual(blocked, { directive: 'script-src-elem', ran: false });
    // The violation Chromium logged is this step's own doing.
    await new Promise((r) => setTimeout(r, 200));
    context.problems = context.problems.filter((p) => !/inline script.*Content Security Policy|Content Security Policy.*inline/i.test(p));
  });

  step('state-changing requests without the CSRF token answer 403', async ({ page }) => {
    assert.equal(await post(page, 'api/logout'), 403);
    assert.equal(await post(page, 'api/logout', { 'X-CSRF-Token': 'forged' }), 403);
    assert.equal(await post(page, 'api/invitations/x/email'), 403);
    // Nothing happened: still logged in, and the console still works.
    assert.equal(await get(page, 'api/me'), 200);
    assert.equal(await byTestId(page, 'connection-status').getAttribute('data-state'), 'open');
    await byTestId(page, 'nav-invite').click();
    await byTestId(page, 'invite-form').waitFor();
  });

  step('a socket with a forged token is closed', async ({ page }) => {
    const closed = await page.evaluate(
      () =>
        new Promise((resolve) => {
          const u = new URL('ws', location.href);
          u.protocol = 'wss:';
          const ws = new WebSocket(u);
          ws.onopen = () => ws.send(JSON.stringify({ csrf: 'forged' }));
          ws.onclose = (e) => resolve(e.code);
          setTimeout(() => resolve('still open'), 10_000);
        }),
    );
    assert.equal(closed, 1008);
  });

  step('logged out from the menu: the cookie is gone', async ({ page, context }) => {
    await byTestId(page, 'user-menu').click();
    await byTestId(page, 'menu-logout').click();
    await page.locator('.login-page .notice', { hasText: tr(en, 'login.loggedOut') }).waitFor();
    assert.equal((await context.cookies()).some((c) => c.name === 'll_console' && c.value), false);
    assert.equal(await get(page, 'api/me'), 401);
    // The old cookie is dead on the broker too.
    await context.addCookies([{ name: 'll_console', value: s.cookie, url: new URL('/console/', env.url).href, secure: true, httpOnly: true, sameSite: 'Strict' }]);
    assert.equal(await get(page, 'api/me'), 401);
    await context.clearCookies();
  });
});
