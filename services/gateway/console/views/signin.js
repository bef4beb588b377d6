// views/signin.js: sign-in. In development mode the gateway lists demo
// identities (GET /api/dev/identities) and mints a token for the one picked
// (POST /api/dev/token); otherwise the user pastes a token. The token goes
// to sessionStorage only.

import { h, fill } from '../dom.js';
import { t, orgName, label } from '../i18n.js';
import { get, post, setSession, decodeToken, ApiError } from '../api.js';
import { myInstitution } from '../data.js';
import { page, card, errorBox, showError, clearErrors, busy } from '../ui.js';

export const routes = [{ path: 'signin', title: 'signin.title', render }];

const ROLES = ['staff', 'institution', 'enterprise'];

function render(ctx) {
  const devList = h('div', { id: 'dev-identities', class: 'identity-groups' }, h('p', { class: 'loading' }, t('common.loading')));
  const devCard = card(t('signin.devTitle'), { id: 'dev-card', hidden: true },
    h('p', { class: 'muted' }, t('signin.devIntro')), devList);

  const tokenInput = h('textarea', {
    id: 'token-input', name: 'token', rows: 4, required: true, autocomplete: 'off', spellcheck: 'false',
    'aria-describedby': 'token-hint',
  });
  const form = h('form', { id: 'token-form', class: 'form', novalidate: true },
    errorBox(),
    h('div', { class: 'field wide', dataset: { field: 'token' } },
      h('label', { for: 'token-input' }, t('signin.token')),
      tokenInput,
      h('small', { id: 'token-hint', class: 'hint' }, t('signin.tokenHint')),
      h('small', { class: 'field-error', 'aria-live': 'polite' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'token-submit' }, t('signin.useToken'))));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(form.querySelector('button[type=submit]'), () => useToken(ctx, form, tokenInput.value.trim()), (err) => showError(form, err));
  });

  loadIdentities(ctx, devCard, devList);
  return page(t('signin.title'), { intro: t('signin.intro') },
    ctx.notice ? h('p', { class: 'notice', role: 'status' }, ctx.notice) : null,
    h('div', { class: 'grid-2' }, devCard, card(t('signin.tokenTitle'), {}, form)));
}

async function loadIdentities(ctx, devCard, devList) {
  let list;
  try {
    const r = await get('/api/dev/identities');
    list = Array.isArray(r) ? r : (r.identities || []);
  } catch {
    // Not development mode: only the token form.
    return;
  }
  if (!ctx.current() || !list.length) return;
  devCard.hidden = false;
  const err = h('div', { class: 'error-box', role: 'alert', hidden: true });
  fill(devList, err, ROLES.map((role) => {
    const mine = list.filter((x) => x.role === role);
    if (!mine.length) return null;
    return h('div', { class: 'identity-group' },
      h('h3', {}, t(`role.${role}`)),
      h('ul', { class: 'identities' }, mine.map((x) => {
        const id = x.identity || x.id || x.key;
        return h('li', {},
          h('button', {
            type: 'button', class: 'identity', dataset: { testid: 'dev-identity', identity: id, role, org: x.org || '' },
            onclick: (e) => busy(e.currentTarget, () => devSignIn(ctx, id, x), (er) => {
              fill(err, er.message || String(er));
              err.hidden = false;
            }),
          },
          h('strong', {}, orgName(x.name, x.nameEn) || id),
          x.kind ? h('small', {}, role === 'institution' ? label('InstitutionKind', x.kind) : label('Sector', x.kind)) : null,
          x.org ? h('small', { class: 'mono' }, x.org) : null));
      })));
  }));
}

async function devSignIn(ctx, identity, x) {
  const r = await post('/api/dev/token', { identity });
  const claims = decodeToken(r.token) || {};
  setSession({
    token: r.token, role: r.role || claims.role, org: r.org || claims.org || '',
    name: r.name || x.name || '', nameEn: x.nameEn || '', subject: r.subject || claims.sub || '',
    kind: x.kind || '',
  });
  ctx.signedIn();
}

async function useToken(ctx, form, token) {
  clearErrors(form);
  const claims = token ? decodeToken(token) : null;
  if (!claims || !ROLES.includes(claims.role)) {
    throw new ApiError(400, { status: 'INVALID_ARGUMENT', message: t('signin.badToken'), violations: [{ field: 'token', description: t('signin.badTokenField') }] });
  }
  // The desk checks it: any call every role may make will do.
  await get('/v1/reference-prices', { history_size: 1 }, { token });
  const sess = { token, role: claims.role, org: claims.org || '', name: '', nameEn: '', subject: claims.sub || '' };
  setSession(sess);
  if (sess.role === 'institution') {
    // Name the institution in the header, from its register entry.
    const me = await myInstitution(sess.org, { fresh: true }).catch(() => null);
    if (me) setSession({ ...sess, name: me.nameZh || '', nameEn: me.nameEn || '' });
  }
  ctx.signedIn();
}
