// Consent requests as a modal dialog: who asks (with the security code of
// their end-to-end channel, when there is one), which plugin, the
// manifest's consent text, the allowed answers and a countdown to the
// deadline the agent set. The agent decides expiry (deny); the page only
// shows the seconds left and closes the dialog when the agent says the
// request was resolved. Requests wait in arrival order.

import { setT } from '../lib/dom.js';

const BUTTONS = {
  allow_once: 'consent-allow-once',
  allow_session: 'consent-allow-session',
  deny: 'consent-deny',
};

/** The seconds left until `deadlineMs` (never below 0). */
export function secondsLeft(deadlineMs, now = Date.now()) {
  return Math.max(0, Math.ceil((deadlineMs - now) / 1000));
}

export class ConsentDialog {
  /** `answer(id, decision)` sends the customer's answer. */
  constructor(answer) {
    this.answer = answer;
    this.queue = [];
    this.current = null;
    this.timer = null;
    this.dialog = document.getElementById('consent');
    this.returnFocus = null;
    for (const [decision, id] of Object.entries(BUTTONS)) {
      document.getElementById(id).addEventListener('click', () => {
        if (this.current) this.answer(this.current.id, decision);
      });
    }
    // Escape does not dismiss a request: it must be answered (or expire).
    this.dialog.addEventListener('cancel', (e) => e.preventDefault());
  }

  /** A new request (or one seen again after a reconnection). */
  add(ask) {
    if (this.current?.id === ask.id || this.queue.some((q) => q.id === ask.id)) return;
    this.queue.push(ask);
    if (!this.current) this.next();
  }

  /** The agent resolved request `id`. */
  resolved(id) {
    this.queue = this.queue.filter((q) => q.id !== id);
    if (this.current?.id === id) {
      this.close();
      this.next();
    }
  }

  /** Forget everything (a new connection sends what is open again). */
  reset() {
    this.queue = [];
    this.close();
  }

  next() {
    const ask = this.queue.shift();
    if (!ask) return;
    this.current = ask;
    this.render();
    if (!this.dialog.open) {
      this.returnFocus = document.activeElement;
      this.dialog.showModal();
    }
    document.getElementById(BUTTONS.allow_once).focus();
    this.tick();
    this.timer = setInterval(() => this.tick(), 250);
  }

  render() {
    const a = this.current;
    const question = a.kind === 'question';
    const args = { operator: a.operator, plugin: a.plugin, action: a.action };
    this.dialog.dataset.id = String(a.id);
    this.dialog.dataset.kind = a.kind;
    setT(document.getElementById('consent-title'), question ? 'window.consent.questionTitle' : 'window.consent.title', args);
    setT(document.getElementById('consent-what'), question ? 'window.consent.questionWhat' : 'window.consent.what', args);
    const code = document.getElementById('consent-code');
    if (a.code) setT(code, 'window.security.consent', { operator: a.operator, code: a.code });
    else code.textContent = '';
    code.hidden = !a.code;
    document.getElementById('consent-detail').textContent = a.detail;
    const note = document.getElementById('consent-note');
    if (question) setT(note, 'window.consent.questionNote');
    else note.textContent = '';
    note.hidden = !question;
    setT(document.getElementById(BUTTONS.allow_once), 'window.consent.allowOnce');
    setT(document.getElementById(BUTTONS.allow_session), 'window.consent.allowSession');
    setT(document.getElementById(BUTTONS.deny), 'window.consent.deny');
    for (const [decision, id] of Object.entries(BUTTONS)) {
      document.getElementById(id).hidden = !a.answers.includes(decision);
    }
  }

  tick() {
    if (!this.current) return;
    const seconds = secondsLeft(this.current.deadline_ms);
    const el = document.getElementById('consent-countdown');
    el.dataset.seconds = String(seconds);
    setT(el, 'window.consent.countdown', { seconds });
  }

  close() {
    clearInterval(this.timer);
    this.timer = null;
    this.current = null;
    if (this.dialog.open) this.dialog.close();
    if (this.returnFocus && document.contains(this.returnFocus)) this.returnFocus.focus();
    this.returnFocus = null;
  }
}
