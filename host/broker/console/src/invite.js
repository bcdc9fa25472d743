// A new invitation: ticket number and the customer's name → the
// personalised link, the short link, the 6-digit connection ID and the
// expiry, each with a Copy button; an e-mail through the operator's own
// mail program (mailto:, as `lifeline_operator::mailto`) or through the
// broker's mail server (POST /console/api/invitations/{id}/email).
// Requests: create_invitation. Pushed: session State (the customer joined).

import { h, field, statusLine, showStatus, showStatusText, errorText, copyButton, timeWithRelative, button, clear } from './dom.js';
import { t, formatDate } from './i18n.js';
import { mailtoUrl, MAX_TICKET_CHARS, MAX_NAME_CHARS, displaySafe } from './util.js';

const TTL_CHOICES = [
  { value: '', label: 'invite.ttl.default' },
  { value: '900', label: 'invite.ttl.m15' },
  { value: '3600', label: 'invite.ttl.h1' },
  { value: '14400', label: 'invite.ttl.h4' },
  { value: '86400', label: 'invite.ttl.d1' },
  { value: '604800', label: 'invite.ttl.d7' },
];

/** The invitation e-mail's subject and body in the chosen language. */
export function invitationMail(inv, operator) {
  const subject = t('invite.mail.subject', { ticket: inv.ticket });
  const body = t('invite.mail.body', {
    customer: inv.end_user,
    ticket: inv.ticket,
    shortLink: inv.short_link,
    link: inv.link,
    connectionId: inv.connection_id,
    expires: formatDate(inv.expires_at, 'datetimeLong'),
    operatorName: operator?.name ?? '',
    operatorTitle: operator?.title ?? '',
  });
  return { subject, body };
}

/** The connection ID as two groups of three digits, for reading aloud. */
export function groupDigits(id) {
  const s = String(id);
  return /^\d{6}$/.test(s) ? `${s.slice(0, 3)} ${s.slice(3)}` : s;
}

/** Whether a 409 from the e-mail endpoint means "no mail server" (else a session state). */
export function isNoMailServer(err) {
  return err?.kind === 'http' && err.status === 409 && /smtp|mail server/i.test(String(err.message));
}

function showMailError(el, e) {
  if (isNoMailServer(e)) showStatus(el, 'error', 'invite.email.noServer');
  else if (e.kind === 'http' && e.status === 403) showStatus(el, 'error', 'errors.csrf');
  else if (e.kind === 'http' && e.status === 429) showStatus(el, 'error', 'invite.email.rateLimited', { count: Math.ceil((e.retryAfterSecs || 60) / 60) });
  else if (e.kind === 'http' && e.status === 404) showStatus(el, 'error', 'invite.email.notOpen');
  else if (e.kind === 'http' && e.status === 502) showStatusText(el, 'error', t('invite.email.serverFailed', { detail: displaySafe(e.message) }));
  else showStatusText(el, 'error', errorText(e));
}

/**
 * New invitation (#/invite), or an open invitation shown again
 * (#/invite/ID, request `invitation`).
 */
export function createInviteView(app, sessionId) {
  const { api } = app;
  const ticket = h('input', { type: 'text', required: true, maxLength: MAX_TICKET_CHARS, autocomplete: 'off', testid: 'invite-ticket' });
  const endUser = h('input', { type: 'text', required: true, maxLength: MAX_NAME_CHARS, autocomplete: 'off', testid: 'invite-end-user' });
  const ttl = h('select', { testid: 'invite-ttl' });
  for (const c of TTL_CHOICES) ttl.appendChild(h('option', { value: c.value, t: c.label }));
  const submit = h('button', { type: 'submit', class: 'primary', t: 'invite.create', testid: 'invite-submit' });
  const status = statusLine({ testid: 'invite-status' });
  const result = h('section', { class: 'card invite-result', testid: 'invite-result', hidden: true, tabIndex: -1, 'aria-labelledby': 'invite-result-title' });
  let offSession = null;

  const form = h(
    'form',
    {
      class: 'card form-grid',
      testid: 'invite-form',
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          if (!ticket.value.trim() || !endUser.value.trim()) {
            showStatus(status, 'error', 'invite.missing');
            (ticket.value.trim() ? endUser : ticket).focus();
            return;
          }
          submit.disabled = true;
          showStatus(status, 'info', 'invite.creating');
          try {
            const body = {
              op: 'create_invitation',
              ticket: ticket.value.trim(),
              end_user: endUser.value.trim(),
              ttl_secs: ttl.value ? Number(ttl.value) : null,
            };
            const inv = await api.expect(body, 'invitation');
            showStatus(status, 'ok', 'invite.created');
            showResult(inv);
          } catch (e) {
            showStatusText(status, 'error', errorText(e));
          } finally {
            submit.disabled = false;
          }
        },
      },
    },
    field({ label: 'invite.ticket', input: ticket, hint: 'invite.ticketHint' }),
    field({ label: 'invite.endUser', input: endUser, hint: 'invite.endUserHint' }),
    field({ label: 'invite.ttl.label', input: ttl }),
    h('div', { class: 'actions' }, submit),
    status,
  );

  function valueRow(labelKey, value, testid, { big = false, display } = {}) {
    return h(
      'div',
      { class: 'kv-row' },
      h('dt', { t: labelKey }),
      h(
        'dd',
        {},
        h('span', { class: ['mono', big ? 'big' : null], testid, text: display ?? value, dataset: { value } }),
        ' ',
        copyButton(() => value, { testid: `${testid}-copy`, label: 'common.copyWhat', labelArgs: { what: t(labelKey) } }),
      ),
    );
  }

  function showResult(inv) {
    clear(result);
    const operator = api.profile;
    const { subject, body } = invitationMail(inv, operator);
    const mailto = mailtoUrl(subject, body);
    const joined = h('p', { class: 'notice', role: 'status', 'aria-live': 'polite', testid: 'invite-joined', t: 'invite.waitingForCustomer' });
    const to = h('input', { type: 'email', required: true, maxLength: MAX_NAME_CHARS, autocomplete: 'email', testid: 'invite-email-to' });
    const sendStatus = statusLine({ testid: 'invite-email-status' });
    const send = h('button', { type: 'submit', class: 'secondary', t: 'invite.email.send', testid: 'invite-email-send' });
    const mailForm = h(
      'form',
      {
        class: 'inline-form',
        testid: 'invite-email-form',
        on: {
          submit: async (ev) => {
            ev.preventDefault();
            if (!to.checkValidity()) {
              showStatus(sendStatus, 'error', 'invite.email.badAddress');
              to.focus();
              return;
            }
            send.disabled = true;
            showStatus(sendStatus, 'info', 'invite.email.sending');
            try {
              await api.emailInvitation(inv.session_id, to.value.trim());
              showStatus(sendStatus, 'ok', 'invite.email.sent', { to: to.value.trim() });
            } catch (e) {
              showMailError(sendStatus, e);
            } finally {
              send.disabled = false;
            }
          },
        },
      },
      field({ label: 'invite.email.to', input: to }),
      send,
    );
    result.append(
      h('h2', { id: 'invite-result-title', t: 'invite.resultTitle', targs: { ticket: displaySafe(inv.ticket), customer: displaySafe(inv.end_user) } }),
      h(
        'dl',
        { class: 'kv' },
        valueRow('invite.connectionId', inv.connection_id, 'invite-connection-id', { big: true, display: groupDigits(inv.connection_id) }),
        valueRow('invite.link', inv.link, 'invite-link'),
        valueRow('invite.shortLink', inv.short_link, 'invite-short-link'),
        h('div', { class: 'kv-row' }, h('dt', { t: 'invite.expires' }), h('dd', {}, timeWithRelative(inv.expires_at, { testid: 'invite-expires' }))),
        h('div', { class: 'kv-row' }, h('dt', { t: 'invite.session' }), h('dd', { class: 'mono', text: inv.session_id, testid: 'invite-session-id' })),
      ),
      h('h3', { t: 'invite.email.title' }),
      h('p', {}, h('a', { class: 'button secondary', href: mailto, t: 'invite.email.mailto', testid: 'invite-mailto' }), ' ', h('small', { class: 'muted', t: 'invite.email.mailtoHint' })),
      mailForm,
      sendStatus,
      joined,
      h(
        'div',
        { class: 'actions' },
        button('invite.another', () => {
          ticket.value = '';
          endUser.value = '';
          result.hidden = true;
          form.hidden = false;
          showStatus(status, 'info', null);
          if (sessionId) app.navigate('#/invite');
          else ticket.focus();
        }, { class: 'secondary', testid: 'invite-another' }),
      ),
    );
    result.hidden = false;
    result.focus();
    offSession?.();
    offSession = api.on('session', ({ sessionId, msg }) => {
      if (sessionId !== inv.session_id || msg.kind !== 'state' || msg.state !== 'waiting') return;
      clear(joined);
      joined.append(
        h('span', { t: 'invite.customerJoined', targs: { customer: displaySafe(inv.end_user) } }),
        ' ',
        h('button', { type: 'button', class: 'primary small', t: 'sessions.connect', testid: 'invite-connect', on: { click: () => app.navigate(`#/session/${inv.session_id}`) } }),
      );
    });
  }

  const el = h(
    'section',
    { class: 'view invite-view', 'aria-labelledby': 'invite-title' },
    h('div', { class: 'view-head' }, h('h1', { id: 'invite-title', t: 'invite.title' })),
    h('p', { class: 'lead', t: 'invite.intro' }),
    form,
    result,
  );
  if (sessionId) {
    form.hidden = true;
    showStatus(status, 'info', 'invite.loadingOpen');
    el.insertBefore(status, result);
    api
      .expect({ op: 'invitation', session_id: sessionId }, 'invitation')
      .then((inv) => {
        showStatus(status, 'info', null);
        showResult(inv);
      })
      .catch((e) => {
        showStatusText(status, 'error', errorText(e));
        form.hidden = false;
      });
  }

  return {
    el,
    titleKey: 'invite.title',
    dispose: () => offSession?.(),
  };
}
