// What every browser scenario shares: the environment the Rust side
// prepared (tests/e2e/console_browser.rs), the browser (Debian's Chromium
// through playwright-core), screenshots of each step, the agent as a
// process whose terminal the scenario reads and types into, and the steps
// every scenario takes (log in, invite, join, connect).
//
// Every wait is bounded: Playwright's default timeout, and WAIT_MS for the
// agent's lines and exit. Every process started here is killed when the
// scenario ends, however it ends.

import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, createWriteStream } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

/** Bound on one wait (a line, an element, a download). */
export const WAIT_MS = 30_000;

const HERE = dirname(fileURLToPath(import.meta.url));
const CONSOLE_DIR = join(HERE, '../../../host/broker/console');

function need(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: these scenarios are run by the Rust test tests/e2e/console_browser.rs (cargo test -p lifeline --test e2e console_browser)`);
  }
  return v;
}

/** What the Rust side prepared. */
export const env = {
  get bin() { return need('LIFELINE_BIN'); },
  get chromium() { return process.env.LIFELINE_CHROMIUM || '/usr/bin/chromium'; },
  get url() { return need('LIFELINE_CONSOLE_URL'); },
  get operator() { return need('LIFELINE_OPERATOR'); },
  get operatorName() { return need('LIFELINE_OPERATOR_NAME'); },
  get password() { return need('LIFELINE_PASSWORD'); },
  get agentConfig() { return need('LIFELINE_AGENT_CONFIG'); },
  get workDir() { return need('LIFELINE_WORK_DIR'); },
  get screenshots() { return need('LIFELINE_SCREENSHOTS'); },
  get runAsUser() { return need('LIFELINE_RUNAS_USER'); },
  get runAsPassword() { return need('LIFELINE_RUNAS_PASSWORD'); },
  get runAsUid() { return need('LIFELINE_RUNAS_UID'); },
  /** The coloured window on the shared display: {x, y, w, h, rgb: [r, g, b]}. */
  get screenMark() {
    const [x, y, w, h, hex] = need('LIFELINE_SCREEN_MARK').split(',');
    const n = parseInt(hex, 16);
    return { x: +x, y: +y, w: +w, h: +h, rgb: [(n >> 16) & 255, (n >> 8) & 255, n & 255] };
  },
};

/** The console's own translations, to compare what the page shows. */
export function locale(code) {
  return JSON.parse(readFileSync(join(CONSOLE_DIR, 'locales', `${code}.json`), 'utf8'));
}

/** A translation by dotted key, with {{placeholders}} filled from `args`. */
export function tr(messages, key, args = {}) {
  let v = messages;
  for (const part of key.split('.')) v = v?.[part];
  if (typeof v !== 'string') throw new Error(`no translation ${key}`);
  return v.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, k) => String(args[k] ?? ''));
}

export const en = locale('en');
export const it_ = locale('it');

// ---------------------------------------------------------------- processes

const children = new Set();
function killAll() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      // gone
    }
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll();
    process.exit(1);
  });
}

let agentCount = 0;

/**
 * `lifeline agent ARGS…` as the customer runs it: its terminal's lines are
 * read (waitLine) and lines typed into it (type). Killed at exit.
 */
export class Agent {
  constructor(args, label) {
    agentCount += 1;
    this.label = label;
    this.lines = [];
    this.cursor = 0;
    this.waiters = new Set();
    this.exit = null;
    const logPath = join(env.workDir, `agent-${agentCount}-${label}.log`);
    this.log = createWriteStream(logPath);
    this.logPath = logPath;
    const childEnv = { ...process.env, RUST_LOG: 'warn' };
    delete childEnv.LIFELINE_CONFIG;
    this.child = spawn(env.bin, ['agent', ...args], { cwd: env.workDir, env: childEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(this.child);
    let partial = '';
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk) => {
      this.log.write(chunk);
      partial += chunk;
      const parts = partial.split('\n');
      partial = parts.pop();
      for (const l of parts) this.lines.push(l);
      this.wake();
    });
    this.child.stderr.on('data', (chunk) => this.log.write(chunk));
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        if (partial) this.lines.push(partial);
        partial = '';
        this.exit = { code, signal };
        children.delete(this.child);
        this.wake();
        resolve(this.exit);
      });
    });
    // A closed terminal (the agent gone) is not an error of the scenario's.
    this.child.stdin.on('error', () => {});
  }

  /** `lifeline agent join --config AGENT_CONFIG CODE`. */
  static join(code) {
    return new Agent(['join', '--config', env.agentConfig, code], 'join');
  }

  /** `lifeline agent service --config AGENT_CONFIG`: as the service manager starts it after a restart. */
  static service() {
    return new Agent(['service', '--config', env.agentConfig], 'service');
  }

  wake() {
    for (const w of [...this.waiters]) w();
  }

  /**
   * Waits for the next line (from the cursor on) that contains `needle` (a
   * string or RegExp); the lines up to it are consumed. Returns the line.
   */
  async waitLine(needle, timeout = WAIT_MS) {
    const matches = (l) => (typeof needle === 'string' ? l.includes(needle) : needle.test(l));
    const deadline = Date.now() + timeout;
    for (;;) {
      while (this.cursor < this.lines.length) {
        const l = this.lines[this.cursor++];
        if (matches(l)) return l;
      }
      if (this.exit) throw new Error(`the agent (${this.label}) exited (${JSON.stringify(this.exit)}) without printing ${needle}; it printed:\n${this.lines.join('\n')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the agent (${this.label}) never printed ${needle} within ${timeout} ms; it printed:\n${this.lines.join('\n')}`);
      await new Promise((resolve) => {
        const w = () => {
          this.waiters.delete(w);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(w, left);
        this.waiters.add(w);
      });
    }
  }

  /** Types a line at the customer's terminal. */
  type(line) {
    this.child.stdin.write(`${line}\n`);
  }

  /** Answers the next consent question at the terminal with `answer` (/allow, /allow-session, /deny). */
  async answerConsent(answer = '/allow') {
    await this.waitLine('*** Consent needed');
    const line = await this.waitLine('Type /allow');
    this.type(answer);
    return line;
  }

  /** The exit ({code, signal}), bounded. */
  async waitExit(timeout = WAIT_MS) {
    let timer;
    const limit = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the agent (${this.label}) did not exit within ${timeout} ms; it printed:\n${this.lines.join('\n')}`)), timeout);
    });
    try {
      return await Promise.race([this.exited, limit]);
    } finally {
      clearTimeout(timer);
    }
  }

  kill() {
    if (!this.exit) this.child.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------- browser

/** Chromium options: headless, no network of its own, a fresh profile (Playwright's, under TMPDIR). */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: env.chromium,
    headless: true,
    timeout: WAIT_MS,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * A browser context (its own cookies and storage) trusting the broker's
 * self-signed certificate, in `locale`. Collects the pages' errors.
 */
export async function newContext(browser, { locale: lang = 'en-GB' } = {}) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    locale: lang,
    timezoneId: 'Europe/Rome',
    viewport: { width: 1280, height: 860 },
    acceptDownloads: true,
  });
  context.setDefaultTimeout(WAIT_MS);
  context.problems = [];
  context.on('page', (page) => watchPage(context, page));
  return context;
}

function watchPage(context, page) {
  page.on('pageerror', (e) => context.problems.push(`uncaught: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text();
    // A refused request (401 before login, the 403s the CSRF check wants)
    // is logged by Chromium as a failed resource load: not the page's fault.
    if (/^Failed to load resource: the server responded with a status of 40[13]/.test(text)) return;
    context.problems.push(`console: ${text}`);
  });
}

/** Screenshots of a scenario's steps: SCREENSHOTS/NN-MM-step.png. */
export class Shots {
  constructor(scenario) {
    this.prefix = scenario;
    this.n = 0;
    mkdirSync(env.screenshots, { recursive: true });
  }

  async take(page, step) {
    this.n += 1;
    const slug = step.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
    const path = join(env.screenshots, `${this.prefix}-${String(this.n).padStart(2, '0')}-${slug}.png`);
    await page.screenshot({ path, fullPage: false, timeout: WAIT_MS });
    return path;
  }
}

/**
 * A scenario: steps that run in order, each followed by a screenshot (of
 * `state.page`, or of the page or element the step returns); after a
 * failed step the rest are skipped. The browser and every agent in
 * `state.agents` are closed at the end, and the last step checks that
 * the pages logged no error.
 */
export function scenario(name, prefix, body, { locale: lang } = {}) {
  describe(name, () => {
    const state = { agents: [] };
    const shots = new Shots(prefix);
    let failed = false;
    before(async () => {
      state.browser = await launchBrowser();
      state.context = await newContext(state.browser, { locale: lang });
      state.page = await state.context.newPage();
    });
    after(async () => {
      for (const a of state.agents) a.kill();
      await state.browser?.close().catch(() => {});
    });
    const step = (title, fn, { screenshot = true } = {}) => {
      it(title, async (t) => {
        if (failed) {
          t.skip('an earlier step failed');
          return;
        }
        let shown;
        try {
          shown = await fn(state);
        } catch (e) {
          failed = true;
          if (state.page) await shots.take(state.page, `${title} FAILED`).catch(() => {});
          for (const a of state.agents) e.message += `\n-- agent (${a.label}) printed:\n${a.lines.join('\n')}`;
          throw e;
        }
        // A step that returns a page is shown by that page's screenshot; one
        // that returns an element, by its page scrolled to it.
        let page = state.page;
        if (typeof shown?.scrollIntoViewIfNeeded === 'function') {
          await shown.scrollIntoViewIfNeeded();
          page = shown.page();
        } else if (typeof shown?.screenshot === 'function') {
          page = shown;
        }
        if (page && screenshot) await shots.take(page, title);
      });
    };
    body(step, state);
    step(
      'no errors in the page',
      ({ context }) => {
        assert.deepEqual(context.problems, [], 'uncaught exceptions or console errors (CSP violations, failed modules)');
      },
      { screenshot: false },
    );
  });
}

/** The element with `data-testid` = id. */
export function byTestId(page, id) {
  return page.locator(`[data-testid="${id}"]`);
}

/** Waits until `fn()` returns a truthy value (polled), bounded. */
export async function until(fn, what, timeout = WAIT_MS) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the element's attribute has `value`. */
export async function attrIs(locator, name, value, timeout = WAIT_MS) {
  await locator.waitFor({ state: 'attached', timeout });
  return until(async () => (await locator.getAttribute(name)) === value, `${name}=${value}`, timeout).catch(async (e) => {
    e.message += ` (it is ${JSON.stringify(await locator.getAttribute(name).catch(() => null))})`;
    throw e;
  });
}

// ---------------------------------------------------------------- the steps every scenario takes

/** Opens the console and logs in as the operator; waits for the socket. */
export async function login(page, { user = env.operator, password = env.password } = {}) {
  await page.goto(env.url);
  await byTestId(page, 'login-username').fill(user);
  await byTestId(page, 'login-password').fill(password);
  await byTestId(page, 'login-submit').click();
  await byTestId(page, 'nav-sessions').waitFor();
  await attrIs(byTestId(page, 'connection-status'), 'data-state', 'open');
}

/** Creates an invitation on #/invite; its connection ID and session ID. */
export async function invite(page, { ticket, customer }) {
  await byTestId(page, 'nav-invite').click();
  await byTestId(page, 'invite-ticket').fill(ticket);
  await byTestId(page, 'invite-end-user').fill(customer);
  await byTestId(page, 'invite-submit').click();
  await byTestId(page, 'invite-result').waitFor();
  const connectionId = await byTestId(page, 'invite-connection-id').getAttribute('data-value');
  const sessionId = (await byTestId(page, 'invite-session-id').textContent()).trim();
  assert.match(connectionId, /^\d{6}$/);
  return { connectionId, sessionId };
}

/**
 * Invites, starts the agent with the connection ID the page shows, waits
 * for the page to tell that the customer joined, and connects.
 */
export async function inviteJoinConnect(state, { ticket, customer = 'Mario Rossi' }) {
  const { page } = state;
  const inv = await invite(page, { ticket, customer });
  const agent = Agent.join(inv.connectionId);
  state.agents.push(agent);
  await agent.waitLine('will help you');
  await byTestId(page, 'invite-connect').click();
  await attrIs(byTestId(page, 'session-state'), 'data-state', 'connected');
  await agent.waitLine('is connected');
  return { ...inv, agent };
}

/**
 * Ends the session from its page (with the confirmation dialog) and waits
 * for the agent to leave. `service`: the agent runs as a service (after a
 * reboot), which keeps running its long-lived plugins after the session:
 * it is stopped as the service manager stops it (SIGTERM).
 */
export async function endSession(page, agent, reason, { service = false } = {}) {
  await byTestId(page, 'session-end').click();
  const dialog = byTestId(page, 'session-end-dialog');
  await dialog.waitFor();
  await byTestId(page, 'session-end-reason').fill(reason);
  await byTestId(page, 'session-end-dialog-confirm').click();
  await attrIs(byTestId(page, 'session-state'), 'data-state', 'ended');
  await agent.waitLine(`ended by the operator: ${reason}`);
  if (service) {
    await agent.waitLine('is over');
    await agent.waitLine('Running plugins in the background');
    agent.child.kill('SIGTERM');
    const exit = await agent.waitExit();
    assert.ok(exit.code === 0 || exit.signal === 'SIGTERM', `the agent service's exit: ${JSON.stringify(exit)}`);
    return;
  }
  const exit = await agent.waitExit();
  assert.equal(exit.code, 0, `the agent's exit: ${JSON.stringify(exit)}`);
}
