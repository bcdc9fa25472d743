// The agent's plugins: each with its commands and their arguments, a form
// per command that runs it (RunPlugin) and its output as it streams.
// Sent: ListPlugins, RunPlugin. Pushed: Plugins, PluginOutput, PluginDone,
// ConsentDecided (followed through the SessionContext).

import { h, clear, field, button, statusLine, showStatus, showStatusText, errorText, timeEl } from './dom.js';
import { t } from './i18n.js';
import { displaySafe, parseArgName, pluginArgs, fileSafe } from './util.js';
import { decisionText, decidedByText } from './consent.js';

/** Time to wait for the agent's plugin list (as the CLI). */
export const LIST_TIMEOUT_MS = 30_000;

/** Appends one line of a plugin call's output to `pre`. */
export function outputLine(pre, kind, text, label) {
  const line = h('span', { class: ['out-line', `out-${kind}`], dataset: { stream: kind } });
  if (label) line.appendChild(h('span', { class: 'out-label', text: `[${label}] ` }));
  line.appendChild(document.createTextNode(displaySafe(text)));
  line.appendChild(document.createTextNode('\n'));
  pre.hidden = false;
  const nearBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
  pre.appendChild(line);
  if (nearBottom) pre.scrollTop = pre.scrollHeight;
}

/** An output area for a plugin call: hidden until something is written to it. */
export function outputArea(props = {}) {
  return h('pre', { class: 'output', role: 'log', 'aria-live': 'polite', tabIndex: 0, hidden: true, ...props });
}

/** A "Clear output" button for `pre`. */
export function clearOutputButton(pre) {
  return button('plugins.clearOutput', () => {
    clear(pre);
    pre.hidden = true;
  }, { class: 'link small' });
}

/**
 * Runs a call through `ctx` and shows it in `pre`; `onEnd(ok, text)` after.
 * Returns the call id, or null when it could not be sent (shown in `pre`).
 */
export function runInto(ctx, pre, plugin, command, args, { onEnd, onOutput } = {}) {
  outputLine(pre, 'meta', t('plugins.started', { plugin, command, args: args.join(' ') }));
  try {
    return ctx.runPlugin(plugin, command, args, {
      onOutput: (stream, text) => {
        onOutput?.(stream, text);
        outputLine(pre, stream === 'output' ? 'output' : 'other', text, stream === 'output' ? null : stream);
      },
      onConsent: (m) => outputLine(pre, 'consent', t('plugins.consentLine', { action: displaySafe(m.action), decision: decisionText(m.decision), by: decidedByText(m.decided_by) })),
      onCredential: (m) => outputLine(pre, 'meta', t('plugins.passwordAsked', { user: displaySafe(m.user) })),
      onDone: (ok, text) => {
        if (ok) outputLine(pre, 'done', text ? t('plugins.doneWith', { text }) : t('plugins.done'));
        else outputLine(pre, 'failed', t('plugins.failed', { text }));
        onEnd?.(ok, text);
      },
    });
  } catch (e) {
    outputLine(pre, 'failed', errorText(e));
    onEnd?.(false, errorText(e));
    return null;
  }
}

export function createPluginsPanel(ctx) {
  const list = h('div', { class: 'plugin-list', testid: 'plugins-list' });
  const status = statusLine({ testid: 'plugins-status' });
  const refreshBtn = button('plugins.refresh', () => load(), { class: 'secondary', testid: 'plugins-refresh' });
  let waiting = null;
  let waitTimer = null;

  function load() {
    const requestId = ctx.newId();
    try {
      ctx.send({ kind: 'list_plugins', request_id: requestId });
    } catch (e) {
      showStatusText(status, 'error', errorText(e));
      return;
    }
    waiting = requestId;
    refreshBtn.disabled = true;
    showStatus(status, 'info', 'plugins.loading');
    clearTimeout(waitTimer);
    waitTimer = setTimeout(() => {
      if (waiting !== requestId) return;
      waiting = null;
      refreshBtn.disabled = false;
      showStatus(status, 'error', 'plugins.timeout');
    }, LIST_TIMEOUT_MS);
  }

  function commandForm(p, c) {
    const specs = c.args || [];
    const inputs = specs.map((a) => {
      const { name, optional } = parseArgName(a);
      return {
        name,
        optional,
        input: h('input', { type: 'text', required: !optional, autocomplete: 'off', testid: `plugin-arg-${p.id}-${c.name}-${fileSafe(name)}` }),
      };
    });
    const out = outputArea({ testid: `plugin-output-${p.id}-${c.name}`, tattrs: { 'aria-label': ['plugins.outputLabel', { plugin: p.id, command: c.name }] } });
    const run = h('button', { type: 'submit', class: 'primary small', t: 'plugins.run', tattrs: { 'aria-label': ['plugins.runLabel', { plugin: p.id, command: c.name }] }, testid: `plugin-run-${p.id}-${c.name}` });
    const form = h(
      'form',
      {
        class: 'command-form',
        testid: `plugin-form-${p.id}-${c.name}`,
        on: {
          submit: (ev) => {
            ev.preventDefault();
            const missing = inputs.find((i) => !i.optional && !i.input.value.trim());
            if (missing) {
              missing.input.focus();
              outputLine(out, 'failed', t('plugins.argMissing', { arg: missing.name }));
              return;
            }
            const args = pluginArgs(specs, inputs.map((i) => i.input.value));
            run.disabled = true;
            runInto(ctx, out, p.id, c.name, args, { onEnd: () => (run.disabled = false) });
          },
        },
      },
      h('h4', {}, h('code', { text: displaySafe(c.name) }), ' ', h('span', { class: 'muted', text: displaySafe(c.description) })),
      inputs.length
        ? h(
            'div',
            { class: 'arg-grid' },
            inputs.map((i) =>
              field({ label: i.optional ? 'plugins.argOptional' : 'plugins.arg', labelArgs: { arg: i.name }, input: i.input }),
            ),
          )
        : h('p', { class: 'muted small', t: 'plugins.noArgs' }),
      h('div', { class: 'actions' }, run, clearOutputButton(out)),
      out,
    );
    return form;
  }

  function render(plugins) {
    clear(list);
    if (!plugins.length) {
      list.appendChild(h('p', { class: 'empty', t: 'plugins.none' }));
      return;
    }
    for (const p of plugins) {
      const caps = p.capabilities?.length
        ? h('p', { class: 'small' }, h('span', { t: 'plugins.capabilities' }), ' ', p.capabilities.map((c, i) => [i ? ', ' : '', h('code', { text: displaySafe(c) })]))
        : null;
      list.appendChild(
        h(
          'article',
          { class: 'plugin', testid: `plugin-${p.id}`, 'aria-labelledby': `plugin-h-${fileSafe(p.id)}` },
          h('h3', { id: `plugin-h-${fileSafe(p.id)}` }, h('span', { text: displaySafe(p.id) }), ' ', h('small', { class: 'muted', t: 'plugins.version', targs: { version: displaySafe(p.version), runtime: displaySafe(p.runtime) } })),
          h('p', { text: displaySafe(p.description) }),
          caps,
          (p.commands || []).length ? p.commands.map((c) => commandForm(p, c)) : h('p', { class: 'muted', t: 'plugins.noCommands' }),
        ),
      );
    }
  }

  const offs = [
    ctx.on('plugins', (msg) => {
      if (msg.request_id !== waiting) {
        // Another client's answer: still the agent's list; use it.
        if (waiting !== null) return;
      }
      waiting = null;
      clearTimeout(waitTimer);
      refreshBtn.disabled = false;
      ctx.setPlugins(msg.plugins);
      render(msg.plugins);
      clear(status);
      status.append(h('span', { t: 'plugins.loaded', targs: { count: msg.plugins.length } }), ' ', timeEl(new Date().toISOString(), 'time'));
    }),
    ctx.on('attached', () => {
      if (!ctx.plugins) load();
    }),
    ctx.on('plugin_notice', () => {
      // A plugin was reloaded (or failed to): the list may have changed.
      if (ctx.active) load();
    }),
  ];

  const el = h(
    'section',
    { class: 'panel plugins-panel', 'aria-labelledby': 'plugins-title', testid: 'plugins-panel' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'plugins-title', t: 'plugins.title' }), refreshBtn),
    h('p', { class: 'hint', t: 'plugins.intro' }),
    status,
    list,
  );
  return {
    el,
    dispose() {
      clearTimeout(waitTimer);
      offs.forEach((off) => off());
    },
  };
}
