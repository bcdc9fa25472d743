// Run-as: log in as another user on the customer's computer (plugin
// "run-as"). After the customer consents, the agent asks for that user's
// password with a CredentialRequest: a password dialog opens, and the
// answer goes back as a CredentialReply (declining sends none). Log out,
// status and "who am I" are the plugin's other commands.
// Sent: RunPlugin run-as login|logout|status|whoami, CredentialReply.
// Pushed: PluginOutput, PluginDone, CredentialRequest, Access.

import { h, field, button, statusLine, showStatus, uid, openModal, setT } from './dom.js';
import { displaySafe } from './util.js';
import { runInto, outputArea, clearOutputButton } from './plugins.js';

export const PLUGIN = 'run-as';

/**
 * Asks for the password of `user` in a modal dialog. Resolves with the
 * password, or null when declined. The field is cleared on close.
 */
export async function passwordDialog({ user, prompt }) {
  const titleId = uid('dlg');
  const pw = h('input', { type: 'password', autocomplete: 'off', testid: 'runas-password', autofocus: true });
  let value = null;
  const form = h(
    'form',
    {
      class: 'password-form',
      on: {
        submit: (ev) => {
          ev.preventDefault();
          value = pw.value;
          pw.value = '';
          dialog.close(value ? 'ok' : 'decline');
        },
      },
    },
    h('h2', { id: titleId, t: 'runas.dialog.title', targs: { user } }),
    h('p', { t: 'runas.dialog.body', targs: { user } }),
    prompt ? h('p', { class: 'muted', text: prompt, testid: 'runas-password-prompt' }) : null,
    field({ label: 'runas.dialog.password', labelArgs: { user }, input: pw, hint: 'runas.dialog.hint' }),
    h(
      'div',
      { class: 'actions' },
      h('button', {
        type: 'button',
        class: 'secondary',
        t: 'runas.dialog.decline',
        testid: 'runas-password-decline',
        on: {
          click: () => {
            pw.value = '';
            value = null;
            dialog.close('decline');
          },
        },
      }),
      h('button', { type: 'submit', class: 'primary', t: 'runas.dialog.send', testid: 'runas-password-send' }),
    ),
  );
  const dialog = h('dialog', { class: 'modal', 'aria-labelledby': titleId, testid: 'runas-password-dialog' }, form);
  dialog.addEventListener('cancel', () => {
    pw.value = '';
    value = null;
  });
  const answer = await openModal(dialog);
  const out = answer === 'ok' ? value : null;
  value = null;
  return out;
}

export function createRunAsPanel(ctx) {
  const user = h('input', { type: 'text', required: true, maxLength: 256, autocomplete: 'off', autocapitalize: 'none', spellcheck: false, testid: 'runas-user' });
  const out = outputArea({ testid: 'runas-output' });
  const formStatus = statusLine({ testid: 'runas-form-status' });
  const current = h('p', { class: 'runas-state', role: 'status', 'aria-live': 'polite', testid: 'runas-status', t: 'runas.state.none' });
  current.dataset.suspended = 'false';
  const login = h('button', { type: 'submit', class: 'primary', t: 'runas.login', testid: 'runas-login' });
  const logout = button('runas.logout', () => run('logout', []), { class: 'secondary', testid: 'runas-logout' });
  const status = button('runas.status', () => run('status', []), { class: 'secondary', testid: 'runas-status-button' });
  const whoami = button('runas.whoami', () => run('whoami', []), { class: 'secondary', testid: 'runas-whoami' });

  function run(command, args, onEnd) {
    return runInto(ctx, out, PLUGIN, command, args, { onEnd });
  }

  const form = h(
    'form',
    {
      class: 'inline-form',
      testid: 'runas-form',
      on: {
        submit: (ev) => {
          ev.preventDefault();
          const u = user.value.trim();
          if (!u) {
            showStatus(formStatus, 'error', 'runas.userMissing');
            user.focus();
            return;
          }
          showStatus(formStatus, 'info', 'runas.asking', { user: u });
          login.disabled = true;
          const id = run('login', [u], (ok) => {
            login.disabled = false;
            showStatus(formStatus, ok ? 'ok' : 'error', ok ? 'runas.loginDone' : 'runas.loginFailed', { user: u });
          });
          if (id === null) login.disabled = false;
        },
      },
    },
    field({ label: 'runas.user', input: user, hint: 'runas.userHint' }),
    login,
  );

  const offs = [
    ctx.on('access', (msg) => {
      current.dataset.suspended = msg.suspended ? 'true' : 'false';
      current.classList.toggle('active', msg.suspended);
      if (msg.suspended) setT(current, 'runas.state.as', { user: displaySafe(msg.user), detail: displaySafe(msg.detail) });
      else setT(current, 'runas.state.restored', { user: displaySafe(msg.user), detail: displaySafe(msg.detail) });
    }),
    ctx.on('attached', (s) => {
      if (s.state === 'suspended') setT(current, 'runas.state.suspendedUnknown');
    }),
    ctx.on('end', () => {
      current.dataset.suspended = 'false';
      current.classList.remove('active');
      setT(current, 'runas.state.ended');
    }),
  ];

  const el = h(
    'section',
    { class: 'panel runas-panel', 'aria-labelledby': 'runas-title', testid: 'runas-panel' },
    h('h2', { id: 'runas-title', t: 'runas.title' }),
    h('p', { class: 'hint', t: 'runas.intro' }),
    current,
    form,
    formStatus,
    h('div', { class: 'toolbar' }, logout, status, whoami, clearOutputButton(out)),
    out,
  );
  return { el, dispose: () => offs.forEach((off) => off()) };
}
