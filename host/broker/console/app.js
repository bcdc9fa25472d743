// Lifeline operator console: entry point. Loads the translations, asks the
// broker who is logged in, then shows the login form or the console (a
// header with the navigation and the user menu, and one view at a time,
// chosen by the URL's hash: #/sessions, #/invite, #/session/ID,
// #/report/ID, #/scripts, #/settings).

import { Api } from './src/api.js';
import { loadE2e } from './src/e2e.js';
import { initI18n, loadResources, LANGUAGES, language, setLanguage, onLanguageChange, t } from './src/i18n.js';
import { h, clear, relabel, setT, menuButton, announce, errorText } from './src/dom.js';
import { createLoginView } from './src/login.js';
import { createSessionsView } from './src/sessions.js';
import { createInviteView } from './src/invite.js';
import { createSessionView } from './src/session.js';
import { createReportView } from './src/report.js';
import { createLibraryView } from './src/scripts.js';
import { createSettingsView } from './src/settings.js';

const ROUTES = [
  { pattern: /^#\/sessions$/, make: (app) => createSessionsView(app), nav: 'sessions' },
  { pattern: /^#\/invite$/, make: (app) => createInviteView(app), nav: 'invite' },
  { pattern: /^#\/invite\/([A-Za-z0-9_-]{1,128})$/, make: (app, m) => createInviteView(app, m[1]), nav: 'sessions' },
  { pattern: /^#\/session\/([A-Za-z0-9_-]{1,128})$/, make: (app, m) => createSessionView(app, m[1]), nav: 'sessions' },
  { pattern: /^#\/report\/([A-Za-z0-9_-]{1,128})$/, make: (app, m) => createReportView(app, m[1]), nav: 'sessions' },
  { pattern: /^#\/scripts$/, make: (app) => createLibraryView(app), nav: 'scripts' },
  { pattern: /^#\/settings$/, make: (app) => createSettingsView(app), nav: 'settings' },
];

const NAV = [
  { id: 'sessions', href: '#/sessions', label: 'nav.sessions', testid: 'nav-sessions' },
  { id: 'invite', href: '#/invite', label: 'nav.invite', testid: 'nav-invite' },
  { id: 'scripts', href: '#/scripts', label: 'nav.scripts', testid: 'nav-scripts' },
];

class App {
  constructor(e2e) {
    this.api = new Api({ e2e });
    this.header = document.getElementById('app-header');
    this.main = document.getElementById('main');
    this.view = null;
    this.viewKey = null;
    this.navLinks = new Map();
    this.greeting = null;
    this.api.on('expired', () => this.showLogin('login.expired'));
    this.api.on('status', (s) => this.showConnection(s));
    window.addEventListener('hashchange', () => this.route());
    onLanguageChange(() => {
      relabel(document);
      this.updateTitle();
    });
    const skip = document.getElementById('skip-link');
    if (skip) {
      skip.addEventListener('click', (ev) => {
        ev.preventDefault();
        this.main.focus();
      });
    }
  }

  get profile() {
    return this.api.profile;
  }

  /** Updates the header's greeting after a profile change. */
  setProfile(p) {
    this.api.profile = p;
    if (this.greeting) setT(this.greeting, 'header.hello', { name: p.name || p.username });
  }

  navigate(hash) {
    if (location.hash === hash) this.route(true);
    else location.hash = hash;
  }

  async start() {
    let profile = null;
    try {
      profile = await this.api.me();
    } catch (e) {
      this.showFatal(errorText(e));
      return;
    }
    if (profile) this.enter();
    else this.showLogin();
  }

  showFatal(text) {
    clear(this.header);
    clear(this.main);
    this.main.appendChild(h('div', { class: 'card error-card', role: 'alert' }, h('h1', { t: 'app.unavailable' }), h('p', { text })));
  }

  showLogin(messageKey) {
    this.disposeView();
    this.api.disconnect();
    this.renderHeader(false);
    clear(this.main);
    const view = createLoginView({ api: this.api, message: messageKey, onLoggedIn: () => this.enter() });
    this.view = view;
    this.viewKey = 'login';
    this.main.appendChild(view.el);
    this.updateTitle('login.title');
    view.focus?.();
  }

  enter() {
    this.renderHeader(true);
    this.api.connect().catch(() => {
      // The status indicator tells; requests wait for the socket.
    });
    if (!location.hash || location.hash === '#' || location.hash === '#/') {
      history.replaceState(null, '', '#/sessions');
    }
    this.route(true);
  }

  renderHeader(loggedIn) {
    clear(this.header);
    this.navLinks.clear();
    this.greeting = null;
    const brand = h('a', { class: 'brand', href: loggedIn ? '#/sessions' : '#', tattrs: { 'aria-label': 'header.home' } }, h('img', { class: 'brand-mark', src: new URL('./icon.svg', import.meta.url).href, alt: '', width: 28, height: 28 }), h('span', { t: 'app.name' }));
    this.header.appendChild(brand);
    if (!loggedIn) {
      this.header.appendChild(h('div', { class: 'header-spacer' }));
      this.header.appendChild(this.languageSelect());
      return;
    }
    const nav = h('nav', { class: 'main-nav', tattrs: { 'aria-label': 'nav.label' } });
    const ul = h('ul');
    for (const n of NAV) {
      const a = h('a', { href: n.href, t: n.label, testid: n.testid });
      this.navLinks.set(n.id, a);
      ul.appendChild(h('li', {}, a));
    }
    nav.appendChild(ul);
    this.header.appendChild(nav);
    this.header.appendChild(h('div', { class: 'header-spacer' }));
    this.connection = h('div', { class: 'connection', role: 'status', 'aria-live': 'polite', testid: 'connection-status' });
    this.header.appendChild(this.connection);
    this.showConnection({ state: this.api.state });
    const p = this.profile || { username: '', name: '' };
    this.greeting = h('span', { t: 'header.hello', targs: { name: p.name || p.username } });
    const items = [
      { label: 'header.settings', testid: 'menu-settings', onSelect: () => this.navigate('#/settings') },
      { separator: true },
      { heading: 'header.language', testid: 'language-menu' },
      ...LANGUAGES.map((l) => ({
        text: l.name,
        lang: l.code,
        testid: `menu-lang-${l.code}`,
        checked: () => language() === l.code,
        onSelect: () => this.switchLanguage(l.code),
      })),
      { separator: true },
      { label: 'header.logout', testid: 'menu-logout', onSelect: () => this.logout() },
    ];
    const menu = menuButton({
      buttonContent: [this.greeting, h('span', { class: 'caret', 'aria-hidden': 'true', text: '▾' })],
      buttonTestid: 'user-menu',
      items,
      label: 'header.userMenu',
    });
    this.header.appendChild(menu.el);
  }

  languageSelect() {
    const sel = h('select', { id: 'login-language', testid: 'login-language', on: { change: () => this.switchLanguage(sel.value) } });
    for (const l of LANGUAGES) {
      sel.appendChild(h('option', { value: l.code, text: l.name, lang: l.code, selected: language() === l.code }));
    }
    return h('div', { class: 'language-select' }, h('label', { for: sel.id, t: 'header.language' }), sel);
  }

  async switchLanguage(code) {
    await setLanguage(code);
    const l = LANGUAGES.find((x) => x.code === code);
    announce(t('header.languageChanged', { language: l ? l.name : code }));
  }

  showConnection({ state, delayMs }) {
    if (!this.connection) return;
    clear(this.connection);
    this.connection.className = `connection conn-${state}`;
    this.connection.dataset.state = state;
    const keys = {
      open: 'connection.open',
      connecting: 'connection.connecting',
      reconnecting: 'connection.reconnecting',
      closed: 'connection.closed',
    };
    const secs = delayMs ? Math.max(1, Math.round(delayMs / 1000)) : 0;
    this.connection.appendChild(h('span', { class: 'dot', 'aria-hidden': 'true' }));
    this.connection.appendChild(h('span', { t: state === 'reconnecting' && secs ? 'connection.retryIn' : keys[state] || 'connection.closed', targs: { secs } }));
    if (state === 'reconnecting' && secs) {
      this.connection.appendChild(h('button', { type: 'button', class: 'link small', t: 'connection.retryNow', on: { click: () => this.api.retryNow() } }));
    }
  }

  async logout() {
    try {
      await this.api.logout();
    } catch {
      // Logged out locally anyway; the cookie session expires by itself.
    }
    history.replaceState(null, '', '#/sessions');
    this.showLogin('login.loggedOut');
  }

  disposeView() {
    if (this.view?.dispose) {
      try {
        this.view.dispose();
      } catch (e) {
        console.error('console: disposing a view failed', e);
      }
    }
    this.view = null;
    this.viewKey = null;
  }

  route(force = false) {
    if (!this.profile) return;
    const hash = location.hash || '#/sessions';
    const match = ROUTES.map((r) => ({ r, m: r.pattern.exec(hash) })).find((x) => x.m);
    if (!match) {
      history.replaceState(null, '', '#/sessions');
      return this.route(true);
    }
    if (!force && this.viewKey === hash) return;
    this.disposeView();
    clear(this.main);
    const view = match.r.make(this, match.m);
    this.view = view;
    this.viewKey = hash;
    this.main.appendChild(view.el);
    for (const [id, a] of this.navLinks) {
      if (id === match.r.nav) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    this.updateTitle(view.titleKey, view.titleArgs);
    // Move focus to the new view's heading so screen readers announce it.
    const heading = this.main.querySelector('h1');
    if (heading) {
      heading.tabIndex = -1;
      heading.focus({ preventScroll: false });
    }
  }

  updateTitle(key, args) {
    if (key) {
      this.titleKey = key;
      this.titleArgs = args;
    }
    const part = this.titleKey ? t(this.titleKey, this.titleArgs) : '';
    document.title = part ? `${part} — ${t('app.name')}` : t('app.name');
  }
}

async function main() {
  // The end-to-end module loads beside the translations; without it the
  // console sends and shows no session content.
  const e2e = loadE2e().then(
    (module) => ({ module }),
    (error) => ({ error }),
  );
  let resources;
  try {
    resources = await loadResources();
  } catch (e) {
    const main = document.getElementById('main');
    main.textContent = `Lifeline: ${e.message}`;
    return;
  }
  await initI18n(resources);
  relabel(document);
  const { module, error } = await e2e;
  const app = new App(module);
  window.lifelineConsole = app;
  if (error) {
    app.showFatal(t('e2e.unavailable', { reason: error.message }));
    return;
  }
  await app.start();
}

main();
