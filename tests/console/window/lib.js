// What the customer-window scenarios share beyond ../lib/harness.js: the
// operator's command line (a real `lifeline operator …` process per
// action), the agent started with `--ui window --no-browser`, the
// launcher file, and raw HTTP requests for the security checks.
//
// Run by tests/e2e/customer_window.rs (it prepares the broker, the
// configurations, the Xvfb and the plugins).

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { Agent, WAIT_MS, env } from '../lib/harness.js';

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these through cargo test -p lifeline --test e2e customer_window`);
  return v;
}

export const opConfig = () => need('LIFELINE_OPERATOR_CONFIG');

/**
 * `lifeline operator ARGS… --config OPERATOR_CONFIG`, resolved with
 * {code, out} (stdout and stderr together) when it exits, bounded.
 */
export function operator(args, { timeout = WAIT_MS * 4, stdin } = {}) {
  return new Promise((resolve, reject) => {
    const [cmd, ...rest] = args;
    const child = spawn(env.bin, ['operator', cmd, '--config', opConfig(), ...rest], {
      cwd: env.workDir,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    if (stdin) child.stdin.write(stdin);
    child.stdin.end();
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`operator ${args.join(' ')} did not finish within ${timeout} ms:\n${out}`));
    }, timeout);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out });
    });
    child.on('error', reject);
    operator.children.add(child);
  });
}
operator.children = new Set();
process.on('exit', () => {
  for (const c of operator.children) {
    try {
      c.kill('SIGKILL');
    } catch {
      // gone
    }
  }
});

/** Logs the operator in, creates an invitation; {sessionId, connectionId}. */
export async function newInvitation(ticket) {
  const login = await operator(['login', '--password-stdin'], { stdin: `${env.password}\n` });
  if (login.code !== 0) throw new Error(`login failed:\n${login.out}`);
  const inv = await operator(['invite', '--ticket', ticket, '--name', 'Mario Rossi', '--json']);
  if (inv.code !== 0) throw new Error(`invite failed:\n${inv.out}`);
  const j = JSON.parse(inv.out);
  return { sessionId: j.session_id, connectionId: j.connection_id ?? j.code };
}

/** `lifeline agent join --ui window --no-browser` and its launcher file. */
export async function joinWithWindow(code) {
  const agent = new Agent(['join', '--ui', 'window', '--no-browser', '--config', env.agentConfig, code], 'window');
  const line = await agent.waitLine('The Lifeline window: open ');
  return { agent, launcher: launcherPath(line) };
}

/** "The Lifeline window: open PATH in a browser." → PATH. */
export function launcherPath(line) {
  const m = /The Lifeline window: open (.+) in a browser\./.exec(line);
  if (!m) throw new Error(`no launcher path in ${line}`);
  return m[1];
}

/** The launcher file's port and token (read before the browser uses it). */
export function launcherSecrets(path) {
  const text = readFileSync(path, 'utf8');
  const port = Number(/http:\/\/127\.0\.0\.1:(\d+)\/open/.exec(text)[1]);
  const token = /name="token" value="([0-9a-f]+)"/.exec(text)[1];
  return { port, token };
}

/** A raw HTTP request to 127.0.0.1:port; {status, headers, body}. */
export function request(port, { method = 'GET', path = '/', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let data = '';
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    // A WebSocket upgrade that is accepted answers 101: no response event.
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode, headers: res.headers, body: '' });
    });
    req.on('error', reject);
    req.setTimeout(WAIT_MS, () => req.destroy(new Error('request timed out')));
    if (body) req.write(body);
    req.end();
  });
}

/** A WebSocket handshake to /ws with `extra` headers (cookie, origin). */
export function upgrade(port, extra) {
  return request(port, {
    path: '/ws',
    headers: {
      Host: `127.0.0.1:${port}`,
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      ...extra,
    },
  });
}

/** The operator's report of a session (JSON text). */
export async function report(sessionId) {
  const r = await operator(['report', sessionId, '--format', 'json']);
  if (r.code !== 0) throw new Error(`report failed:\n${r.out}`);
  return r.out;
}
