// Chat with the customer, both ways. Sent: session Chat {from: operator,
// text} (the broker stamps the sender). Pushed: session Chat.

import { h, field, timeEl, liveLog, statusLine, showStatus, showStatusText, errorText } from './dom.js';
import { displaySafe, MAX_TEXT_CHARS } from './util.js';

const FROM_KEYS = { operator: 'chat.from.operator', customer: 'chat.from.customer', broker: 'chat.from.broker', you: 'chat.from.you' };

export function createChatPanel(ctx) {
  const log = liveLog({ label: 'chat.logLabel', testid: 'chat-log', className: 'chat-log' });
  const input = h('textarea', { rows: 2, maxLength: MAX_TEXT_CHARS, testid: 'chat-input', autocomplete: 'off' });
  const send = h('button', { type: 'submit', class: 'primary', t: 'chat.send', testid: 'chat-send' });
  const status = statusLine({ testid: 'chat-status' });

  function add(from, text) {
    const who = FROM_KEYS[from] || FROM_KEYS.broker;
    log.add(
      h(
        'li',
        { class: ['chat-entry', `from-${from}`], dataset: { from } },
        h('span', { class: 'chat-meta' }, h('span', { class: 'chat-who', t: who }), ' ', timeEl(new Date().toISOString(), 'timeShort', { class: 'log-time' })),
        h('span', { class: 'chat-text', text: displaySafe(text) }),
      ),
    );
  }

  function submit() {
    const text = input.value.trim();
    if (!text) return;
    try {
      ctx.send({ kind: 'chat', from: 'operator', text });
      add('you', text);
      input.value = '';
      showStatus(status, 'info', null);
    } catch (e) {
      showStatusText(status, 'error', errorText(e));
    }
  }

  input.addEventListener('keydown', (ev) => {
    // Enter sends; Shift+Enter starts a new line.
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      submit();
    }
  });

  const form = h(
    'form',
    { class: 'chat-form', testid: 'chat-form', on: { submit: (ev) => { ev.preventDefault(); submit(); } } },
    field({ label: 'chat.inputLabel', input, hint: 'chat.inputHint' }),
    send,
    status,
  );

  const offs = [
    ctx.on('chat', (msg) => add(msg.from === 'operator' ? 'operator' : msg.from, msg.text)),
    ctx.on('state-change', (state) => {
      const over = state === 'ended';
      input.disabled = over;
      send.disabled = over;
      // A line refused while the computer restarted: the refusal no longer holds.
      if (!over && state !== 'rebooting' && status.classList.contains('error')) showStatus(status, 'info', null);
    }),
  ];

  const el = h('section', { class: 'panel chat-panel', 'aria-labelledby': 'chat-title', testid: 'chat-panel' }, h('h2', { id: 'chat-title', t: 'chat.title' }), log.el, form);
  return { el, dispose: () => offs.forEach((off) => off()) };
}
