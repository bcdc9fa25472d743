// The web console's benchmark, browser side: a real Chromium (Debian's,
// headless, the flags of lib/harness.js) driven by playwright-core.
//
// Not run by hand: the Rust benchmark (`cargo bench -p lifeline --bench
// lifeline-bench -- console`, host/cli/benches/bench/console.rs) starts the
// broker, runs this script and drives it one command at a time: a JSON
// object per line on stdin, one JSON answer per line on stdout
// (`{"id": N, "ok": true, ...}` or `{"id": N, "ok": false, "error": ...}`).
// Progress and the pages' errors go to stderr.
//
// Every time measured in a page is read in that page, with
// `performance.timeOrigin + performance.now()` (epoch milliseconds,
// Chromium's resolution 0.1 ms); `clock` lets the Rust side map that clock
// onto its own. Every wait is bounded (WAIT_MS); the browser is closed when
// stdin ends, on SIGTERM (playwright's own handler) and on an error.
//
// Commands:
//   {cmd: "start"}                          launch the browser
//   {cmd: "get", url}                       a bare HTTPS GET on a new TLS connection: ms
//   {cmd: "login", url}                     fresh context, open the page, then timed in the page:
//                                           login submitted → sessions rows in the DOM (+ next frame)
//   {cmd: "open_main", url}                 log in the console kept open for the joins
//   {cmd: "clock"}                          the main page's clock now (epoch ms)
//   {cmd: "list", sid}                      press Refresh; wait for the row of `sid`
//   {cmd: "arm", sid}                       watch for `sid`'s push and its row turning "waiting"
//   {cmd: "collect", sid}                   the watch's timestamps (page clock)
//   {cmd: "tabs", url, n}                   n more contexts, each logged in with its socket open
//   {cmd: "close_tabs"}                     closes them
//   {cmd: "quit"}

import https from 'node:https';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

/** Bound on one wait (an element, a page, a login). */
const WAIT_MS = 30_000;
/** Bound on one join's row (the console may wait for a debounced list refresh). */
const ROW_WAIT_MS = 10_000;

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: this script is run by the Rust benchmark (cargo bench -p lifeline --bench lifeline-bench -- console)`);
  return v;
}

const env = {
  chromium: process.env.LIFELINE_CHROMIUM || '/usr/bin/chromium',
  user: need('LIFELINE_OPERATOR'),
  password: need('LIFELINE_PASSWORD'),
};

const log = (...a) => process.stderr.write(`[console-bench] ${a.join(' ')}\n`);

// Installed in every page before its own scripts: timestamps of the
// console's WebSocket (created, open, each text message the watch is
// interested in), read by the commands below. An init script is not
// subject to the page's CSP.
function instrument() {
  const now = () => performance.timeOrigin + performance.now();
  const B = { events: [], watch: null };
  window.__bench = B;
  const Native = window.WebSocket;
  class Timed extends Native {
    constructor(...args) {
      super(...args);
      B.events.push({ what: 'ws-new', t: now() });
      this.addEventListener('open', () => B.events.push({ what: 'ws-open', t: now() }));
      // Registered before the console's own onmessage: runs first, in the
      // same task, so this is when the page starts handling the message.
      this.addEventListener('message', (ev) => {
        if (typeof ev.data !== 'string') return;
        const t = now();
        if (ev.data.includes('"result":"sessions"') && !B.events.some((e) => e.what === 'list-reply')) {
          B.events.push({ what: 'list-reply', t });
        }
        const w = B.watch;
        if (w && w.wsAt === null && ev.data.includes(`"${w.sid}"`) && ev.data.includes('"waiting"')) {
          w.wsAt = t;
          w.rowAtMsg = !!document.querySelector(`[data-testid="session-row-${w.sid}"]`);
        }
      });
    }
  }
  window.WebSocket = Timed;
}

let browser = null;
const tabs = [];
let main = null;

async function newContext() {
  const context = await browser.newContext({
    // The browser-wide flag above accepts the certificate (see there).
    ignoreHTTPSErrors: false,
    locale: 'en-GB',
    timezoneId: 'Europe/Rome',
    viewport: { width: 1280, height: 860 },
  });
  context.setDefaultTimeout(WAIT_MS);
  await context.addInitScript(instrument);
  context.on('page', (page) => {
    page.on('pageerror', (e) => log(`page error: ${e.message}`));
  });
  return context;
}

const byTestId = (page, id) => page.locator(`[data-testid="${id}"]`);

/** A fresh context and page showing the login form; the page load's ms. */
async function openLoginPage(url) {
  const context = await newContext();
  const page = await context.newPage();
  const t0 = performance.now();
  await page.goto(url, { timeout: WAIT_MS });
  await byTestId(page, 'login-submit').waitFor({ timeout: WAIT_MS });
  const loadMs = performance.now() - t0;
  await byTestId(page, 'login-username').fill(env.user);
  await byTestId(page, 'login-password').fill(env.password);
  return { context, page, loadMs };
}

/**
 * In the page: submits the login form and waits until the sessions table
 * has rows in the DOM (a MutationObserver), then for the next animation
 * frame. Times from just before the click, with the page's clock; also the
 * phases (login POST answered, socket open, list reply) from the same clock.
 */
async function timedLogin(page) {
  return page.evaluate((limit) => {
    const now = () => performance.now();
    const submit = document.querySelector('[data-testid="login-submit"]');
    return new Promise((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        reject(new Error(`no session rows within ${limit} ms of the login`));
      }, limit);
      const seen = () => {
        const tbody = document.querySelector('[data-testid="sessions-rows"]');
        return tbody && tbody.rows.length > 0 ? tbody : null;
      };
      const mo = new MutationObserver(() => {
        if (done) return;
        const tbody = seen();
        if (!tbody) return;
        done = true;
        const t1 = now();
        mo.disconnect();
        clearTimeout(timer);
        requestAnimationFrame(() => {
          const t2 = now();
          const origin = performance.timeOrigin;
          const at = (what) => {
            const e = window.__bench.events.find((x) => x.what === what && x.t - origin >= t0);
            return e ? e.t - origin - t0 : null;
          };
          const post = performance.getEntriesByType('resource').find((r) => r.name.endsWith('/console/api/login'));
          resolve({
            ms: t1 - t0,
            frameMs: t2 - t0,
            rows: tbody.rows.length,
            postMs: post ? post.responseEnd - t0 : null,
            wsNewMs: at('ws-new'),
            wsOpenMs: at('ws-open'),
            listReplyMs: at('list-reply'),
          });
        });
      });
      mo.observe(document.body, { childList: true, subtree: true });
      const t0 = now();
      submit.click();
    });
  }, WAIT_MS);
}

/** Waits for the socket to be open (the header's status). */
async function socketOpen(page) {
  await page.waitForFunction(() => document.querySelector('[data-testid="connection-status"]')?.dataset.state === 'open', null, { timeout: WAIT_MS });
}

/** A bare HTTPS GET of `url` on a new TLS connection (no keep-alive): ms to the last byte. */
function bareGet(url) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = https.get(url, { agent: false, rejectUnauthorized: false, timeout: WAIT_MS }, (res) => {
      let bytes = 0;
      res.on('data', (c) => {
        bytes += c.length;
      });
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
        else resolve({ ms: performance.now() - t0, bytes });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${WAIT_MS} ms`)));
    req.on('error', reject);
  });
}

const handlers = {
  async start() {
    browser = await chromium.launch({
      executablePath: env.chromium,
      headless: true,
      timeout: WAIT_MS,
      // As tests/console/lib/harness.js, plus --ignore-certificate-errors:
      // the broker's self-signed certificate is accepted by the browser's
      // network stack itself. Playwright's per-context ignoreHTTPSErrors
      // (what the browser tests use) answers each new TLS connection's
      // certificate error through the driver instead, which made every
      // WebSocket open take 15–55 ms instead of 4–5 ms here: a cost of the
      // test set-up, not of the console (an operator's browser trusts the
      // broker's certificate).
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--ignore-certificate-errors'],
    });
    return { version: browser.version() };
  },

  async get({ url }) {
    return bareGet(url);
  },

  async login({ url }) {
    const { context, page, loadMs } = await openLoginPage(url);
    try {
      const r = await timedLogin(page);
      return { ...r, loadMs };
    } finally {
      await context.close().catch(() => {});
    }
  },

  async open_main({ url }) {
    const { context, page } = await openLoginPage(url);
    const r = await timedLogin(page);
    await socketOpen(page);
    main = { context, page };
    return r;
  },

  async clock() {
    return { t: await main.page.evaluate(() => performance.timeOrigin + performance.now()) };
  },

  async list({ sid }) {
    const { page } = main;
    await byTestId(page, 'sessions-refresh').click();
    await page.waitForFunction((s) => document.querySelector(`[data-testid="session-row-${s}"]`), sid, { timeout: WAIT_MS });
    return {};
  },

  async arm({ sid }) {
    return main.page.evaluate((s) => {
      const now = () => performance.timeOrigin + performance.now();
      const sel = `[data-testid="session-row-${s}"]`;
      const w = { sid: s, listed: !!document.querySelector(sel), wsAt: null, rowAtMsg: null, rowAt: null, frameAt: null, rowsInList: 0 };
      window.__bench.watch = w;
      const tbody = document.querySelector('[data-testid="sessions-rows"]');
      const mo = new MutationObserver((records) => {
        for (const r of records) {
          for (const n of r.addedNodes) {
            if (n.nodeType !== 1 || n.getAttribute('data-testid') !== `session-row-${s}` || n.dataset.state !== 'waiting') continue;
            w.rowAt = now();
            w.rowsInList = tbody.rows.length;
            mo.disconnect();
            requestAnimationFrame(() => {
              w.frameAt = now();
            });
            return;
          }
        }
      });
      mo.observe(tbody, { childList: true, subtree: true });
      return { listed: w.listed, rows: tbody.rows.length };
    }, sid);
  },

  async collect({ sid }) {
    const { page } = main;
    try {
      await page.waitForFunction((s) => window.__bench.watch?.sid === s && window.__bench.watch.frameAt !== null, sid, { timeout: ROW_WAIT_MS, polling: 20 });
    } catch (e) {
      const w = await page.evaluate(() => window.__bench.watch);
      throw new Error(`the row of ${sid} did not turn "waiting" within ${ROW_WAIT_MS} ms (watch: ${JSON.stringify(w)}): ${e.message}`);
    }
    return page.evaluate(() => window.__bench.watch);
  },

  async tabs({ url, n }) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const { context, page } = await openLoginPage(url);
      tabs.push(context);
      await byTestId(page, 'login-submit').click();
      await byTestId(page, 'sessions-table').waitFor({ state: 'attached', timeout: WAIT_MS });
      await socketOpen(page);
      // The first list is in: the page is what an operator leaves open.
      await page.waitForFunction(() => window.__bench.events.some((e) => e.what === 'list-reply'), null, { timeout: WAIT_MS });
    }
    return { open: tabs.length, secs: (performance.now() - t0) / 1000 };
  },

  async close_tabs() {
    const n = tabs.length;
    for (const c of tabs.splice(0)) await c.close().catch(() => {});
    return { closed: n };
  },

  async quit() {
    await shutdown();
    return {};
  },
};

let closing = null;
function shutdown() {
  closing ??= (async () => {
    for (const c of tabs.splice(0)) await c.close().catch(() => {});
    await main?.context.close().catch(() => {});
    await browser?.close().catch(() => {});
    browser = null;
  })();
  return closing;
}

function answer(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

const rl = readline.createInterface({ input: process.stdin, terminal: false });
for await (const line of rl) {
  if (!line.trim()) continue;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    answer({ id: null, ok: false, error: `not JSON: ${e.message}` });
    continue;
  }
  const fn = handlers[cmd.cmd];
  if (!fn) {
    answer({ id: cmd.id, ok: false, error: `no command ${cmd.cmd}` });
    continue;
  }
  try {
    const r = await fn(cmd);
    answer({ id: cmd.id, ok: true, ...r });
  } catch (e) {
    log(`${cmd.cmd} failed: ${e.stack || e}`);
    answer({ id: cmd.id, ok: false, error: String(e.message || e) });
  }
  if (cmd.cmd === 'quit') break;
}
// stdin ended (the benchmark is over or gone): close the browser.
await shutdown();
process.exit(0);
