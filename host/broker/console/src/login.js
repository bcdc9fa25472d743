// The login form: username and password, POST /console/api/login. A wrong
// password and a rate limit (with the wait, counted down) are shown.

import { h, field, statusLine, showStatus, errorText, showStatusText } from './dom.js';

export function createLoginView({ api, message, onLoggedIn }) {
  const username = h('input', {
    type: 'text',
    name: 'username',
    autocomplete: 'username',
    required: true,
    maxLength: 128,
    autocapitalize: 'none',
    spellcheck: false,
    testid: 'login-username',
  });
  const password = h('input', {
    type: 'password',
    name: 'password',
    autocomplete: 'current-password',
    required: true,
    testid: 'login-password',
  });
  const submit = h('button', { type: 'submit', class: 'primary', t: 'login.submit', testid: 'login-submit' });
  const status = statusLine({ testid: 'login-error' });
  let countdown = null;

  function stopCountdown() {
    clearInterval(countdown);
    countdown = null;
    submit.disabled = false;
  }

  function rateLimited(secs) {
    let left = Math.max(1, Math.ceil(secs));
    submit.disabled = true;
    showStatus(status, 'error', 'login.rateLimited', { count: left });
    clearInterval(countdown);
    countdown = setInterval(() => {
      left -= 1;
      if (left <= 0) {
        stopCountdown();
        showStatus(status, 'info', 'login.tryAgain');
      } else {
        showStatus(status, 'error', 'login.rateLimited', { count: left });
      }
    }, 1000);
  }

  const form = h(
    'form',
    {
      class: 'login-form',
      testid: 'login-form',
      noValidate: false,
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          if (submit.disabled) return;
          showStatus(status, 'info', 'login.checking');
          submit.disabled = true;
          try {
            await api.login(username.value.trim(), password.value);
            password.value = '';
            stopCountdown();
            onLoggedIn();
          } catch (e) {
            submit.disabled = false;
            password.value = '';
            if (e.kind === 'http' && e.status === 401) {
              showStatus(status, 'error', 'login.wrong');
              password.focus();
            } else if (e.kind === 'http' && e.status === 429) {
              if (e.retryAfterSecs) rateLimited(e.retryAfterSecs);
              else showStatus(status, 'error', 'login.rateLimitedNoWait');
            } else if (e.kind === 'offline') {
              showStatus(status, 'error', 'errors.offline');
            } else {
              showStatusText(status, 'error', errorText(e));
            }
          }
        },
      },
    },
    field({ label: 'login.username', input: username }),
    field({ label: 'login.password', input: password }),
    h('div', { class: 'actions' }, submit),
    status,
  );

  const card = h(
    'section',
    { class: 'card login-card', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title', t: 'login.title' }),
    h('p', { class: 'lead', t: 'login.intro' }),
    message ? h('p', { class: 'notice', role: 'status', t: message }) : null,
    form,
  );

  return {
    el: h('div', { class: 'login-page' }, card),
    focus: () => username.focus(),
    dispose: () => clearInterval(countdown),
  };
}
