// Reboot: restart the customer's computer (plugin "reboot"); the agent
// comes back as a service and rejoins the same session. The session's
// state is followed through the rejoin: asked (the customer decides) →
// rebooting (the agent took its rejoin ticket) → waiting (the computer is
// away) → back (the session is connected again), or cancelled/failed.
// Sent: RunPlugin reboot reboot [REASON]. Pushed: PluginOutput,
// PluginDone, State, End.

import { h, field, statusLine, showStatus, confirmDialog, setT, timeEl, clear, announce } from './dom.js';
import { t } from './i18n.js';
import { displaySafe, MAX_TEXT_CHARS } from './util.js';
import { runInto, outputArea, clearOutputButton } from './plugins.js';

export const PLUGIN = 'reboot';

export const PHASE_KEYS = Object.freeze({
  idle: 'reboot.phase.idle',
  asked: 'reboot.phase.asked',
  rebooting: 'reboot.phase.rebooting',
  waiting: 'reboot.phase.waiting',
  back: 'reboot.phase.back',
  failed: 'reboot.phase.failed',
  ended: 'reboot.phase.ended',
});

/**
 * The next phase after a session state: a pure function of (phase, state)
 * for the tests. `state` is a SessionState name.
 */
export function nextPhase(phase, state) {
  if (state === 'ended') return 'ended';
  if (state === 'rebooting') return phase === 'rebooting' || phase === 'waiting' ? 'waiting' : 'rebooting';
  if (phase === 'rebooting' || phase === 'waiting') return 'back';
  return phase;
}

export function createRebootPanel(ctx) {
  const reason = h('input', { type: 'text', maxLength: MAX_TEXT_CHARS, autocomplete: 'off', testid: 'reboot-reason' });
  const go = h('button', { type: 'submit', class: 'danger', t: 'reboot.button', testid: 'reboot-button' });
  const stateEl = h('p', { class: 'reboot-state', role: 'status', 'aria-live': 'assertive', testid: 'reboot-state' });
  const steps = h('ol', { class: 'steps', testid: 'reboot-steps' });
  const out = outputArea({ testid: 'reboot-output' });
  const formStatus = statusLine({ testid: 'reboot-form-status' });
  let phase = 'idle';

  function setPhase(p, detail) {
    phase = p;
    stateEl.dataset.phase = p;
    setT(stateEl, PHASE_KEYS[p]);
    if (p !== 'idle') {
      steps.appendChild(h('li', { class: `step-${p}` }, timeEl(new Date().toISOString(), 'time', { class: 'log-time' }), ' ', h('span', { t: PHASE_KEYS[p] }), detail ? h('span', { class: 'muted', text: ` — ${displaySafe(detail)}` }) : null));
    }
    go.disabled = p === 'asked' || p === 'rebooting' || p === 'waiting' || p === 'ended';
    if (p === 'back') announce(t('reboot.phase.back'));
  }

  const form = h(
    'form',
    {
      class: 'inline-form',
      testid: 'reboot-form',
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          const ok = await confirmDialog({
            title: 'reboot.confirm.title',
            body: 'reboot.confirm.body',
            bodyArgs: { customer: ctx.summary?.end_user ?? '' },
            confirm: 'reboot.confirm.confirm',
            danger: true,
            testid: 'reboot-confirm',
          });
          if (!ok) return;
          const r = reason.value.trim();
          clear(steps);
          setPhase('asked');
          showStatus(formStatus, 'info', null);
          const id = runInto(ctx, out, PLUGIN, 'reboot', r ? [r] : [], {
            onEnd: (done, text) => {
              // The call ends before the restart (ok) or instead of it.
              if (!done && phase === 'asked') setPhase('failed', text);
            },
          });
          if (id === null) setPhase('failed');
        },
      },
    },
    field({ label: 'reboot.reason', input: reason, hint: 'reboot.reasonHint' }),
    go,
  );

  const offs = [
    ctx.on('state', (msg) => {
      const next = nextPhase(phase, msg.state);
      if (next !== phase || msg.state === 'rebooting') setPhase(next, msg.detail);
    }),
    ctx.on('end', (msg) => setPhase('ended', msg.reason)),
    ctx.on('attached', (s) => {
      // Opened (or reconnected) while the computer restarts, or after.
      if (s.state === 'rebooting') setPhase('waiting');
      else if (phase === 'rebooting' || phase === 'waiting') setPhase('back');
    }),
  ];

  setPhase('idle');
  const el = h(
    'section',
    { class: 'panel reboot-panel', 'aria-labelledby': 'reboot-title', testid: 'reboot-panel' },
    h('h2', { id: 'reboot-title', t: 'reboot.title' }),
    h('p', { class: 'hint', t: 'reboot.intro' }),
    form,
    formStatus,
    stateEl,
    steps,
    h('div', { class: 'toolbar' }, clearOutputButton(out)),
    out,
  );
  return { el, dispose: () => offs.forEach((off) => off()) };
}
