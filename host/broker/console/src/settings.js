// Settings: the operator's profile (name, e-mail, title — what customers
// see) and a password change with the current password.
// Requests: profile, update_profile, change_password.

import { h, field, statusLine, showStatus, showStatusText, errorText } from './dom.js';
import { MAX_NAME_CHARS } from './util.js';

export function createSettingsView(app) {
  const { api } = app;
  const p = app.profile || { username: '', name: '', email: '', title: '' };

  // ---- profile ----
  const username = h('input', { type: 'text', value: p.username, readOnly: true, testid: 'settings-username' });
  const name = h('input', { type: 'text', value: p.name, maxLength: MAX_NAME_CHARS, autocomplete: 'name', required: true, testid: 'settings-name' });
  const email = h('input', { type: 'email', value: p.email, maxLength: MAX_NAME_CHARS, autocomplete: 'email', testid: 'settings-email' });
  const title = h('input', { type: 'text', value: p.title, maxLength: MAX_NAME_CHARS, autocomplete: 'organization-title', testid: 'settings-title' });
  const profileStatus = statusLine({ testid: 'settings-profile-status' });
  const saveProfile = h('button', { type: 'submit', class: 'primary', t: 'settings.profile.save', testid: 'settings-profile-save' });

  function fill(profile) {
    username.value = profile.username;
    name.value = profile.name;
    email.value = profile.email;
    title.value = profile.title;
  }

  const profileForm = h(
    'form',
    {
      class: 'card form-grid',
      testid: 'settings-profile-form',
      'aria-labelledby': 'settings-profile-title',
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          if (!name.value.trim()) {
            showStatus(profileStatus, 'error', 'settings.profile.nameMissing');
            name.focus();
            return;
          }
          if (email.value && !email.checkValidity()) {
            showStatus(profileStatus, 'error', 'settings.profile.badEmail');
            email.focus();
            return;
          }
          saveProfile.disabled = true;
          showStatus(profileStatus, 'info', 'settings.saving');
          try {
            const r = await api.expect({ op: 'update_profile', name: name.value.trim(), email: email.value.trim(), title: title.value.trim() }, 'profile');
            const { result: _r, ...profile } = r;
            app.setProfile(profile);
            fill(profile);
            showStatus(profileStatus, 'ok', 'settings.profile.saved');
          } catch (e) {
            showStatusText(profileStatus, 'error', errorText(e));
          } finally {
            saveProfile.disabled = false;
          }
        },
      },
    },
    h('h2', { id: 'settings-profile-title', t: 'settings.profile.title' }),
    h('p', { class: 'hint', t: 'settings.profile.intro' }),
    field({ label: 'settings.profile.username', input: username }),
    field({ label: 'settings.profile.name', input: name }),
    field({ label: 'settings.profile.email', input: email }),
    field({ label: 'settings.profile.jobTitle', input: title }),
    h('div', { class: 'actions' }, saveProfile),
    profileStatus,
  );

  // ---- password ----
  const current = h('input', { type: 'password', autocomplete: 'current-password', required: true, testid: 'settings-password-current' });
  const next = h('input', { type: 'password', autocomplete: 'new-password', required: true, testid: 'settings-password-new' });
  const again = h('input', { type: 'password', autocomplete: 'new-password', required: true, testid: 'settings-password-again' });
  const pwStatus = statusLine({ testid: 'settings-password-status' });
  const change = h('button', { type: 'submit', class: 'primary', t: 'settings.password.change', testid: 'settings-password-save' });
  const passwordForm = h(
    'form',
    {
      class: 'card form-grid',
      testid: 'settings-password-form',
      'aria-labelledby': 'settings-password-title',
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          if (!current.value || !next.value) {
            showStatus(pwStatus, 'error', 'settings.password.missing');
            return;
          }
          if (next.value !== again.value) {
            showStatus(pwStatus, 'error', 'settings.password.mismatch');
            again.focus();
            return;
          }
          change.disabled = true;
          showStatus(pwStatus, 'info', 'settings.saving');
          try {
            await api.request({ op: 'change_password', old: current.value, new: next.value });
            showStatus(pwStatus, 'ok', 'settings.password.changed');
          } catch (e) {
            if (e.code === 'bad_credentials') {
              showStatus(pwStatus, 'error', 'settings.password.wrongCurrent');
              current.focus();
            } else {
              showStatusText(pwStatus, 'error', errorText(e));
            }
          } finally {
            // Empties the fields and forgets that they were touched.
            passwordForm.reset();
            change.disabled = false;
          }
        },
      },
    },
    h('h2', { id: 'settings-password-title', t: 'settings.password.title' }),
    field({ label: 'settings.password.current', input: current }),
    field({ label: 'settings.password.new', input: next, hint: 'settings.password.hint' }),
    field({ label: 'settings.password.again', input: again }),
    h('div', { class: 'actions' }, change),
    pwStatus,
  );

  // Fresh from the broker (another console may have changed it).
  api
    .expect({ op: 'profile' }, 'profile')
    .then((r) => {
      const { result: _r, ...profile } = r;
      app.setProfile(profile);
      fill(profile);
    })
    .catch(() => {});

  const el = h(
    'section',
    { class: 'view settings-view', 'aria-labelledby': 'settings-title' },
    h('div', { class: 'view-head' }, h('h1', { id: 'settings-title', t: 'settings.title' })),
    h('div', { class: 'two-col' }, profileForm, passwordForm),
  );
  return { el, titleKey: 'settings.title' };
}
