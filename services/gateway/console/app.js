// app.js: the console's shell: the hash router, the header (who is signed
// in, language, sign-out, live-feed status), the navigation of each role.
// Routes are "#/<area>/<page>[/<id>]"; each view module exports its routes
// as [{path, nav, render(ctx)}], render returning the page's node and
// registering what to stop when the page goes (ctx.cleanup).

import { h, fill } from './dom.js';
import { t, lang, setLang, onLangChange, label, orgName } from './i18n.js';
import { session, clearSession } from './api.js';
import * as live from './live.js';
import { forgetDirectory, forgetProducts } from './data.js';
import { routes as signinRoutes } from './views/signin.js';
import { routes as staffRoutes } from './views/staff.js';
import { routes as instRoutes } from './views/institution.js';
import { routes as entRoutes } from './views/enterprise.js';

const HOME = { staff: 'staff', institution: 'inst', enterprise: 'ent' };
const ROUTES = [
  ...signinRoutes.map((r) => ({ ...r, role: null })),
  ...staffRoutes.map((r) => ({ ...r, role: 'staff' })),
  ...instRoutes.map((r) => ({ ...r, role: 'institution' })),
  ...entRoutes.map((r) => ({ ...r, role: 'enterprise' })),
];

const main = document.getElementById('main');
const header = document.getElementById('header');
let cleanups = [];
let renderSeq = 0;
let signinNotice = '';

function currentPath() {
  return decodeURIComponent(window.location.hash.replace(/^#\/?/, '')).replace(/\/+$/, '');
}

// go navigates to a route path ("staff/review").
export function go(path) {
  const target = `#/${path}`;
  if (window.location.hash === target) render();
  else window.location.hash = target;
}

function match(path) {
  for (const r of ROUTES) {
    const want = r.path.split('/');
    const got = path.split('/');
    if (want.length !== got.length) continue;
    const params = {};
    let ok = true;
    for (let i = 0; i < want.length; i += 1) {
      if (want[i].startsWith(':')) params[want[i].slice(1)] = got[i];
      else if (want[i] !== got[i]) { ok = false; break; }
    }
    if (ok) return { route: r, params };
  }
  return null;
}

function runCleanups() {
  for (const fn of cleanups) {
    try { fn(); } catch { /* a view's cleanup never blocks the next view */ }
  }
  cleanups = [];
}

// render draws the route of the current hash. focus moves to the page's
// heading on navigation (not on a language switch).
function render({ focus = true } = {}) {
  runCleanups();
  const seq = ++renderSeq;
  const sess = session();
  const path = currentPath();
  let m = match(path);

  if (!sess) {
    if (!m || m.route.role !== null) { go('signin'); return; }
  } else if (!m || (m.route.role !== null && m.route.role !== sess.role) || m.route.path === 'signin') {
    go(HOME[sess.role] || 'signin');
    return;
  }
  drawHeader(sess, m.route);
  const ctx = {
    session: sess,
    params: m.params,
    notice: signinNotice,
    cleanup: (fn) => cleanups.push(fn),
    rerender: () => render({ focus: false }),
    go,
    signedIn,
    current: () => seq === renderSeq,
  };
  signinNotice = '';
  let node;
  try {
    node = m.route.render(ctx);
  } catch (err) {
    node = h('p', { class: 'error-box', role: 'alert' }, String(err));
  }
  fill(main, node);
  document.title = `${m.route.title ? t(m.route.title) + ' · ' : ''}${t('app.title')}`;
  if (focus) {
    const h1 = main.querySelector('h1');
    if (h1) h1.focus({ preventScroll: true });
  }
}

function drawHeader(sess, route) {
  const nav = sess ? ROUTES.filter((r) => r.role === sess.role && r.nav) : [];
  const here = route.navFor || route.path;
  const statusEl = h('span', { id: 'feed-status', class: 'feed-status', role: 'status', dataset: { testid: 'feed-status' } });
  const paintStatus = (st) => {
    statusEl.dataset.status = st;
    statusEl.textContent = t(`live.${st}`);
  };
  if (sess) {
    paintStatus(live.currentStatus().status);
    cleanups.push(live.onStatus(paintStatus));
  }
  fill(header,
    h('a', { class: 'skip', href: '#main', onclick: (e) => { e.preventDefault(); main.focus(); } }, t('app.skip')),
    h('div', { class: 'bar' },
      h('div', { class: 'brand' },
        h('img', { src: 'favicon.svg', alt: '', width: 28, height: 28 }),
        h('span', {}, h('strong', {}, t('app.title')), h('small', {}, t('app.subtitle')))),
      h('div', { class: 'tools' },
        sess ? statusEl : null,
        sess ? h('span', { class: 'who', id: 'who', dataset: { testid: 'who', role: sess.role } },
          h('span', { class: `role role-${sess.role}` }, t(`role.${sess.role}`)), ' ', orgName(sess.name, sess.nameEn) || sess.org || sess.subject || '') : null,
        h('button', {
          type: 'button', id: 'lang-toggle', class: 'secondary', lang: lang() === 'zh' ? 'en' : 'zh-CN',
          'aria-label': t('app.switchLang'), onclick: () => setLang(lang() === 'zh' ? 'en' : 'zh'),
        }, lang() === 'zh' ? 'English' : '中文'),
        sess ? h('button', { type: 'button', id: 'sign-out', class: 'secondary', onclick: signOut }, t('app.signOut')) : null)),
    nav.length ? h('nav', { class: 'nav', 'aria-label': t('app.nav') },
      h('ul', {}, nav.map((r) => h('li', {},
        h('a', { href: `#/${r.path}`, 'aria-current': r.path === here ? 'page' : null, dataset: { testid: `nav-${r.path.replace(/\//g, '-')}` } }, t(r.nav)))))) : null);
}

// forget drops what the last person read, so the next one never sees it.
function forget() {
  forgetDirectory();
  forgetProducts();
}

function signOut() {
  live.stop();
  clearSession();
  forget();
  go('signin');
}

// signedIn is called by the sign-in view once the session is stored.
export function signedIn() {
  forget();
  const sess = session();
  live.start(sess.role);
  go(HOME[sess.role]);
}

window.addEventListener('carbondesk:unauthenticated', (e) => {
  if (!session()) return;
  live.stop();
  clearSession();
  forget();
  signinNotice = t('signin.expired', { reason: e.detail || '' });
  go('signin');
});

window.addEventListener('hashchange', () => render());
onLangChange(() => render({ focus: false }));
document.documentElement.lang = lang() === 'zh' ? 'zh-CN' : 'en';

// A reload keeps the session (sessionStorage) and reopens its feed.
const sess = session();
if (sess) live.start(sess.role);
render();

// Exposed for the headless-browser tests and for the curious: no secrets.
window.carbondesk = { label, lang, go };
