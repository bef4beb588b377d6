// views/enterprise.js: what an enterprise sees: post a demand and list its
// demands; one demand with its ranked matches, their reasons, ExplainMatch
// for any product, confirm one, follow its status live; browse the published
// products; register people for talent-base events.

import { h, fill, keyed, place } from '../dom.js';
import { t, label, shortName, orgName, CATEGORY_CLASSES, fullName } from '../i18n.js';
import { get, post, listAll, p, setSession } from '../api.js';
import * as fmt from '../format.js';
import * as live from '../live.js';
import { fillBar } from '../charts.js';
import { directory, instName, product } from '../data.js';
import {
  page, card, table, badge, field, enumOptions, checked, val, errorBox, showError, clearErrors,
  loading, failed, dl, busy, toast, reasonDialog, reasons,
} from '../ui.js';
import { demandSummary } from './institution.js';

export const routes = [
  { path: 'ent', nav: 'nav.demands', title: 'nav.demands', render: demands },
  { path: 'ent/demands/:id', navFor: 'ent', title: 'demand.detailTitle', render: demandDetail },
  { path: 'ent/products', nav: 'nav.browse', title: 'nav.browse', render: browse },
  { path: 'ent/events', nav: 'nav.entEvents', title: 'nav.entEvents', render: entEvents },
];

const NUM = (s) => (s === '' ? undefined : Number(s));

// ----------------------------------------------------------------- demands

function categoryChecks() {
  return h('fieldset', { class: 'field checks wide', dataset: { field: 'categories' } },
    h('legend', {}, t('demand.categories')),
    h('small', { class: 'hint' }, t('demand.categoriesHint')),
    CATEGORY_CLASSES.map((c) => h('div', { class: 'check-class' },
      h('span', { class: 'check-class-name' }, t(`category.class.${c.key}`)),
      h('div', { class: 'check-grid' }, c.values.map((v) => {
        const id = `cat-${v}`;
        return h('span', { class: 'check' },
          h('input', { type: 'checkbox', id, name: 'categories', value: fullName('ProductCategory', v) }),
          h('label', { for: id }, label('ProductCategory', v)));
      })))),
    h('small', { class: 'field-error', 'aria-live': 'polite' }));
}

function demandForm(ctx) {
  const deadline = new Date(Date.now() + 30 * 86400000);
  const amountHint = h('small', { class: 'hint', id: 'amount-preview', 'aria-live': 'polite' });
  const form = h('form', { class: 'form', id: 'demand-form', novalidate: true },
    errorBox(),
    h('div', { class: 'form-grid' },
      field({ label: t('demand.enterpriseName'), name: 'enterprise_name', value: ctx.session.name || localStorage.getItem('carbondesk.enterpriseName') || '', required: true }),
      field({ label: t('demand.kind'), name: 'kind', type: 'select', required: true, value: 'DEMAND_KIND_FINANCING', options: enumOptions('DemandKind') }),
      categoryChecks(),
      field({ label: t('demand.amountYuan'), name: 'amount_yuan', type: 'number', required: true, attrs: { min: 1, step: 1, inputmode: 'numeric' } }),
      field({ label: t('demand.termMonths'), name: 'term_months', type: 'number', value: 12, hint: t('demand.termHint'), attrs: { min: 0, max: 360, step: 1 } }),
      field({
        label: t('demand.sector'), name: 'sector', type: 'select', required: true,
        value: ctx.session.kind ? fullName('Sector', ctx.session.kind) : '', options: enumOptions('Sector', { empty: t('common.choose') }),
      }),
      field({ label: t('demand.etsCovered'), name: 'ets_covered', type: 'checkbox' }),
      field({ label: t('demand.region'), name: 'region', value: '420106', required: true, hint: t('demand.regionHint'), attrs: { inputmode: 'numeric', maxlength: 6 } }),
      field({ label: t('demand.zone'), name: 'zone', type: 'select', options: enumOptions('Zone', { empty: t('common.none') }) }),
      field({ label: t('demand.ceaTonnes'), name: 'cea_tonnes', type: 'number', value: 0, attrs: { min: 0, step: 1 } }),
      field({ label: t('demand.ccerTonnes'), name: 'ccer_tonnes', type: 'number', value: 0, attrs: { min: 0, step: 1 } }),
      field({ label: t('demand.emissions'), name: 'annual_emissions_tonnes', type: 'number', value: 0, attrs: { min: 0, step: 1 } }),
      field({ label: t('demand.deadline'), name: 'deadline', type: 'datetime-local', required: true, value: fmt.rfc3339ToLocalInput(deadline) }),
      field({ label: t('demand.description'), name: 'description', type: 'textarea', wide: true })),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'demand-submit' }, t('demand.post'))));
  const amount = form.elements.namedItem('amount_yuan');
  amount.insertAdjacentElement('afterend', amountHint);
  amount.addEventListener('input', () => { amountHint.textContent = amount.value ? `= ${fmt.money(amount.value)}` : ''; });

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(form.querySelector('[type=submit]'), async () => {
      clearErrors(form);
      const name = val(form, 'enterprise_name');
      const body = {
        demand: {
          enterpriseName: name,
          kind: val(form, 'kind'),
          categories: checked(form, 'categories'),
          amountYuan: NUM(val(form, 'amount_yuan')),
          termMonths: NUM(val(form, 'term_months')) || 0,
          sector: val(form, 'sector') || undefined,
          etsCovered: val(form, 'ets_covered'),
          region: val(form, 'region'),
          zone: val(form, 'zone') || undefined,
          ceaTonnes: NUM(val(form, 'cea_tonnes')) || 0,
          ccerTonnes: NUM(val(form, 'ccer_tonnes')) || 0,
          annualEmissionsTonnes: NUM(val(form, 'annual_emissions_tonnes')) || 0,
          deadline: fmt.localInputToRFC3339(val(form, 'deadline')),
          description: val(form, 'description'),
        },
      };
      // The browser tests time the live feed from here.
      window.__lastPost = { startedAt: Date.now() };
      const r = await post('/v1/demands', body);
      window.__lastPost.demandId = r.demand.id;
      window.__lastPost.doneAt = Date.now();
      try { localStorage.setItem('carbondesk.enterpriseName', name); } catch { /* optional */ }
      if (!ctx.session.name) setSession({ ...ctx.session, name });
      toast(t('demand.postedToast', { n: (r.matches || []).length }));
      ctx.go(`ent/demands/${r.demand.id}`);
    }, (err) => showError(form, err));
  });
  return form;
}

function demands(ctx) {
  const body = h('div', { id: 'demands-body' }, loading());
  const formBox = h('div', { id: 'demand-form-box' });
  // The table is rebuilt only when a demand in it has changed, so a live
  // event that leaves the list as it was does not replace a link as it is
  // clicked.
  let shown = null;
  const load = async () => {
    try {
      const list = (await listAll('/v1/demands', 'demands')).reverse();
      if (!ctx.current()) return;
      const stamp = list.map((d) => `${d.id}:${d.version}`).join(' ');
      if (stamp === shown) return;
      shown = stamp;
      fill(body, table({
        testid: 'my-demands',
        rows: list,
        empty: t('demand.none'),
        rowAttrs: (d) => ({ dataset: { testid: 'demand-row', demandId: d.id, state: shortName('DemandState', d.state) } }),
        columns: [
          { label: t('demand.posted'), render: (d) => fmt.dateTime(d.createTime) },
          { label: t('demand.kind'), render: (d) => h('a', { href: `#/ent/demands/${d.id}` }, label('DemandKind', d.kind)) },
          { label: t('demand.categories'), render: (d) => (d.categories || []).map((c) => label('ProductCategory', c)).join('、') || t('demand.anyCategory') },
          { label: t('demand.amount'), num: true, render: (d) => fmt.money(d.amountYuan) },
          { label: t('demand.term'), render: (d) => (fmt.num(d.termMonths) ? fmt.months(d.termMonths) : '—') },
          { label: t('demand.acceptedCount'), num: true, render: (d) => fmt.int(d.acceptedCount) },
          { label: t('demand.state'), render: (d) => badge('DemandState', d.state) },
          { label: t('common.actions'), render: (d) => h('a', { href: `#/ent/demands/${d.id}`, class: 'button secondary small' }, t('demand.open')) },
        ],
      }));
    } catch (err) {
      shown = null;
      fill(body, failed(err, load));
    }
  };
  const toggle = h('button', {
    type: 'button', class: 'primary', id: 'demand-new', 'aria-expanded': 'false',
    onclick: () => {
      const opening = !formBox.firstChild;
      fill(formBox, opening ? card(t('demand.newTitle'), {}, demandForm(ctx)) : null);
      toggle.setAttribute('aria-expanded', String(opening));
      if (opening) formBox.querySelector('input')?.focus();
    },
  }, t('demand.new'));
  // A match changing changes its demand's counts and state: re-read, at
  // most every 300 ms.
  let timer = null;
  ctx.cleanup(live.subscribe(() => { clearTimeout(timer); timer = setTimeout(load, 300); }));
  ctx.cleanup(() => clearTimeout(timer));
  load();
  return page(t('nav.demands'), { intro: t('demand.intro'), actions: toggle }, formBox, card(t('demand.mine'), {}, body));
}

// ------------------------------------------------------------ one demand

function rankOrder(a, b) {
  // Best first: by proposal round (older first), then rank.
  const ta = String(a.createTime || '');
  const tb = String(b.createTime || '');
  if (ta.slice(0, 19) !== tb.slice(0, 19)) return ta.localeCompare(tb);
  return (a.rank || 99) - (b.rank || 99);
}

function demandDetail(ctx) {
  const id = ctx.params.id;
  const head = h('div', { id: 'demand-head' }, loading());
  const list = h('div', { id: 'demand-matches', class: 'match-list' });
  const explainBox = h('div', { id: 'explain-box' });
  let demand = null;
  const matches = new Map();
  let dir = null;

  // A card is redrawn only when its match, the demand's state (which
  // decides the confirm button) or the directory (its institution's name)
  // has changed, so a live update does not replace a card as it is clicked.
  const noMatches = h('p', { class: 'empty-note' }, t('demand.noMatches'));
  const cards = keyed((m) => m.id, (m) => `${m.version} ${demand ? demand.state : ''} ${!!dir}`, (m) => matchCard(m));
  const draw = () => {
    const ms = [...matches.values()].sort(rankOrder);
    place(list, ms.length ? cards(ms) : [noMatches]);
  };
  const matchCard = (m) => {
    const st = shortName('MatchState', m.state);
    const nameBox = h('strong', {}, m.productId);
    product(m.productId).then((pr) => { if (pr) nameBox.textContent = orgName(pr.nameZh, pr.nameEn); });
    const confirm = (e) => busy(e.target, async () => {
      const r = await post(`/v1/matches/${p(m.id)}:confirm`, { version: m.version });
      update(r.match);
      toast(t('match.confirmedToast'));
      reloadDemand();
    });
    return h('article', {
      class: `card match st-${st.toLowerCase()}`,
      dataset: { testid: 'ent-match', matchId: m.id, productId: m.productId, institutionId: m.institutionId, institutionCode: m.institutionCreditCode, state: st, rank: m.rank },
    },
    h('header', { class: 'match-head' },
      h('div', {}, h('span', { class: 'rank' }, `#${m.rank || '—'}`), ' ', nameBox, h('br'),
        h('small', {}, instName(dir, m.institutionId, m.institutionCreditCode), ' · ', label('ProductCategory', m.category))),
      h('div', {}, badge('MatchState', m.state))),
    dl([
      [t('match.score'), Number(m.score || 0).toFixed(3)],
      [t('match.responseDeadline'), fmt.dateTime(m.responseDeadline)],
      m.stateReason ? [t('match.stateReason'), m.stateReason] : null,
      m.outcome && m.outcome.amountYuan ? [t('outcome.deal'), `${fmt.money(m.outcome.amountYuan)} · ${fmt.pct(m.outcome.rateBps)}`] : null,
    ]),
    h('details', { class: 'why' }, h('summary', {}, t('match.why')), reasons(m.checks, m.scoreParts)),
    h('div', { class: 'actions' },
      st === 'ACCEPTED' && demand && shortName('DemandState', demand.state) === 'OPEN'
        ? h('button', { type: 'button', class: 'primary', dataset: { testid: 'confirm' }, onclick: confirm }, t('match.confirm')) : null));
  };
  const update = (m) => {
    if (m.demandId !== id) return;
    const old = matches.get(m.id);
    if (old && Number(old.version) > Number(m.version)) return;
    matches.set(m.id, m);
    draw();
  };
  const drawHead = () => {
    const st = shortName('DemandState', demand.state);
    fill(head, card(null, { dataset: { testid: 'demand-detail', demandId: demand.id, state: st } },
      h('div', { class: 'match-head' }, demandSummary(demand), badge('DemandState', demand.state)),
      dl([
        [t('demand.id'), h('span', { class: 'mono', id: 'demand-id' }, demand.id)],
        [t('demand.categories'), (demand.categories || []).map((c) => label('ProductCategory', c)).join('、') || t('demand.anyCategory')],
        [t('demand.region'), demand.region],
        [t('demand.deadline'), fmt.dateTime(demand.deadline)],
        [t('demand.acceptedCount'), fmt.int(demand.acceptedCount)],
        demand.needsAttention ? [t('demand.attention'), demand.attentionReason] : null,
        demand.stateReason ? [t('match.stateReason'), demand.stateReason] : null,
      ]),
      st === 'OPEN' ? h('div', { class: 'actions' }, h('button', {
        type: 'button', class: 'danger', id: 'demand-withdraw',
        onclick: async (e) => {
          const reason = await reasonDialog({ title: t('demand.withdrawTitle'), prompt: t('review.reason'), confirm: t('demand.withdraw'), danger: true });
          if (!reason) return;
          await busy(e.target, async () => {
            await post(`/v1/demands/${p(id)}:withdraw`, { version: demand.version, reason });
            reloadDemand();
          });
        },
      }, t('demand.withdraw'))) : null));
  };
  const reloadDemand = async () => {
    try {
      const r = await get(`/v1/demands/${p(id)}`);
      if (!ctx.current()) return;
      demand = r.demand;
      for (const m of r.matches || []) update(m);
      drawHead();
      draw();
    } catch (err) {
      fill(head, failed(err, reloadDemand));
    }
  };
  // Status changes come in on the live feed; the demand's own state (and
  // its accepted count) is re-read when one of its matches changes.
  let timer = null;
  ctx.cleanup(live.subscribe((ev) => {
    if (ev.match.demandId !== id) return;
    update(ev.match);
    clearTimeout(timer);
    timer = setTimeout(reloadDemand, 200);
  }));
  ctx.cleanup(() => clearTimeout(timer));

  directory().then((d) => { dir = d; if (ctx.current() && demand) draw(); }).catch(() => {});
  reloadDemand();
  fill(explainBox, explainForm(id));
  return page(t('demand.detailTitle'), {
    actions: h('a', { href: '#/ent', class: 'button secondary' }, t('demand.back')),
  },
  head,
  card(t('demand.matches'), { id: 'matches-card' }, h('p', { class: 'muted' }, t('demand.matchesIntro')), list),
  card(t('explain.title'), { id: 'explain-card' }, explainBox));
}

// explainForm: pick any published product and ask why it does or does not
// fit the demand.
function explainForm(demandId, productId) {
  const out = h('div', { id: 'explain-result', 'aria-live': 'polite' });
  const sel = h('select', { id: 'explain-product', name: 'product_id', required: true }, h('option', { value: '' }, t('common.loading')));
  const form = h('form', { class: 'form inline', id: 'explain-form', novalidate: true },
    errorBox(),
    h('div', { class: 'field wide', dataset: { field: 'product_id' } },
      h('label', { for: 'explain-product' }, t('explain.product')), sel,
      h('small', { class: 'field-error', 'aria-live': 'polite' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary', id: 'explain-submit' }, t('explain.run'))));
  (async () => {
    try {
      const [list, dir] = await Promise.all([listAll('/v1/products', 'products', { state: 'PRODUCT_STATE_PUBLISHED' }), directory()]);
      fill(sel, h('option', { value: '' }, t('common.choose')),
        list.map((x) => h('option', { value: x.id, selected: x.id === productId },
          `${orgName(x.nameZh, x.nameEn)} — ${instName(dir, x.institutionId, x.institutionCreditCode)}`)));
    } catch (err) {
      fill(sel, h('option', { value: '' }, err.message));
    }
  })();
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(form.querySelector('[type=submit]'), async () => {
      clearErrors(form);
      if (!sel.value) { sel.focus(); return; }
      const r = await get(`/v1/demands/${p(demandId)}/products/${p(sel.value)}:explain`);
      fill(out, h('div', { class: `explain ${r.eligible ? 'ok' : 'fail'}`, dataset: { testid: 'explain', eligible: String(!!r.eligible) } },
        h('p', {}, h('strong', {}, r.eligible ? t('explain.eligible') : t('explain.notEligible')),
          r.eligible ? ` · ${t('match.score')} ${Number(r.score || 0).toFixed(3)}` : '',
          r.match ? [' · ', badge('MatchState', r.match.state)] : ''),
        reasons(r.checks, r.scoreParts)));
    }, (err) => showError(form, err));
  });
  return h('div', {}, form, out);
}

// ----------------------------------------------------------------- browse

function browse(ctx) {
  const body = h('div', { id: 'browse-body' }, loading());
  const explainBox = h('div', { id: 'browse-explain' });
  const filters = h('form', { class: 'filters', id: 'browse-filters', role: 'search' },
    field({ label: t('feed.category'), name: 'category', type: 'select', options: enumOptions('ProductCategory', { empty: t('common.any') }) }),
    field({ label: t('demand.sector'), name: 'sector', type: 'select', options: enumOptions('Sector', { empty: t('common.any') }) }),
    field({ label: t('browse.amount'), name: 'amount_yuan', type: 'number', attrs: { min: 0, step: 1 } }),
    field({ label: t('browse.search'), name: 'name_contains', type: 'search' }),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'secondary', id: 'browse-apply' }, t('common.filter')),
      h('button', { type: 'button', class: 'secondary', id: 'products-refresh', onclick: () => load() }, t('common.refresh'))));
  let myOpen = [];
  const load = async () => {
    try {
      const [list, dir, mine] = await Promise.all([
        listAll('/v1/products', 'products', {
          state: 'PRODUCT_STATE_PUBLISHED', category: val(filters, 'category'), sector: val(filters, 'sector'),
          amount_yuan: val(filters, 'amount_yuan'), name_contains: val(filters, 'name_contains'),
        }),
        directory({ fresh: true }),
        listAll('/v1/demands', 'demands', { state: 'DEMAND_STATE_OPEN' }),
      ]);
      if (!ctx.current()) return;
      myOpen = mine;
      body.dataset.loadedAt = String(Date.now());
      fill(body, table({
        testid: 'products',
        pageSize: 50,
        caption: t('browse.count', { n: list.length }),
        rows: list,
        empty: t('browse.none'),
        rowAttrs: (x) => ({ dataset: { testid: 'product-row', productId: x.id, institutionId: x.institutionId, institutionCode: x.institutionCreditCode } }),
        columns: [
          { label: t('product.name'), render: (x) => h('span', {}, h('strong', {}, orgName(x.nameZh, x.nameEn)), h('br'), h('small', {}, instName(dir, x.institutionId, x.institutionCreditCode))) },
          { label: t('product.category'), render: (x) => label('ProductCategory', x.category) },
          { label: t('product.amount'), nowrap: true, render: (x) => fmt.moneyRange(x.amount) },
          { label: t('product.term'), nowrap: true, render: (x) => fmt.termRange(x.term) },
          { label: t('product.price'), nowrap: true, render: (x) => fmt.price(x.price) },
          { label: t('product.collateral'), wide: true, render: (x) => (x.collateral?.asset ? `${label('CarbonAsset', x.collateral.asset)} · ${fmt.pct(x.collateral.pledgeRateBps, 0)}` : t('product.noCollateral')) },
          { label: t('product.sectors'), wide: true, render: (x) => (x.sectors || []).map((s) => label('Sector', s)).join('、') || t('product.allSectors') },
          {
            label: t('common.actions'),
            render: (x) => (myOpen.length ? h('button', {
              type: 'button', class: 'secondary small', dataset: { testid: 'explain-product' },
              onclick: () => explainFor(x),
            }, t('explain.short')) : '—'),
          },
        ],
      }));
    } catch (err) {
      fill(body, failed(err, load));
    }
  };
  const explainFor = (x) => {
    const sel = h('select', { id: 'explain-demand' }, myOpen.map((d) => h('option', { value: d.id }, `${label('DemandKind', d.kind)} · ${fmt.money(d.amountYuan)} · ${fmt.date(d.createTime)}`)));
    const out = h('div', { 'aria-live': 'polite' });
    fill(explainBox, card(t('explain.forProduct', { name: orgName(x.nameZh, x.nameEn) }), { id: 'explain-card' },
      h('div', { class: 'form inline' },
        h('div', { class: 'field wide' }, h('label', { for: 'explain-demand' }, t('explain.demand')), sel),
        h('div', { class: 'actions' }, h('button', {
          type: 'button', class: 'primary', id: 'explain-run',
          onclick: (e) => busy(e.target, async () => {
            const r = await get(`/v1/demands/${p(sel.value)}/products/${p(x.id)}:explain`);
            fill(out, h('div', { class: `explain ${r.eligible ? 'ok' : 'fail'}`, dataset: { testid: 'explain', eligible: String(!!r.eligible) } },
              h('p', {}, h('strong', {}, r.eligible ? t('explain.eligible') : t('explain.notEligible')),
                r.eligible ? ` · ${t('match.score')} ${Number(r.score || 0).toFixed(3)}` : ''),
              reasons(r.checks, r.scoreParts)));
          }),
        }, t('explain.run')))),
      out));
    explainBox.scrollIntoView({ block: 'nearest' });
    sel.focus();
  };
  filters.addEventListener('submit', (e) => { e.preventDefault(); load(); });
  load();
  return page(t('nav.browse'), { intro: t('browse.intro') }, card(null, {}, filters), explainBox, card(null, {}, body));
}

// ----------------------------------------------------------------- events

function fillBps(e) {
  const cap = fmt.num(e.capacity);
  return cap ? Math.round((fmt.num(e.seats?.taken) / cap) * 10000) : 0;
}

function registerDialog(ev, org) {
  return new Promise((resolve) => {
    const form = h('form', { class: 'form', novalidate: true, id: 'register-person-form' },
      h('h2', { id: 'register-title' }, t('attendee.registerFor', { title: orgName(ev.titleZh, ev.titleEn) })),
      errorBox(),
      h('div', { class: 'form-grid' },
        field({ label: t('attendee.name'), name: 'attendee.name', required: true, id: 'attendee-name' }),
        field({ label: t('attendee.organization'), name: 'attendee.organization', value: org, required: true }),
        field({ label: t('attendee.role'), name: 'attendee.role' }),
        field({ label: t('csv.phone'), name: 'attendee.phone', type: 'tel', hint: t('attendee.contactHint') }),
        field({ label: t('csv.email'), name: 'attendee.email', type: 'email' })),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', onclick: () => dlg.close() }, t('common.cancel')),
        h('button', { type: 'submit', class: 'primary', id: 'register-submit' }, t('attendee.register'))));
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'register-title' }, form);
    let result = null;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(form.querySelector('[type=submit]'), async () => {
        clearErrors(form);
        result = await post(`/v1/talent/events/${p(ev.id)}/registrations`, {
          attendee: {
            name: val(form, 'attendee.name'), organization: val(form, 'attendee.organization'), role: val(form, 'attendee.role'),
            phone: val(form, 'attendee.phone'), email: val(form, 'attendee.email'),
          },
        });
        dlg.close();
      }, (err) => showError(form, err));
    });
    dlg.addEventListener('close', () => { dlg.remove(); resolve(result); });
    document.body.appendChild(dlg);
    dlg.showModal();
    form.querySelector('#attendee-name').focus();
  });
}

function entEvents(ctx) {
  const body = h('div', { id: 'ent-events-body' }, loading());
  const regsBox = h('div', { id: 'my-registrations' }, loading());
  const load = async () => {
    try {
      const [all, regs] = await Promise.all([
        listAll('/v1/talent/events', 'events'),
        listAll('/v1/registrations', 'registrations'),
      ]);
      if (!ctx.current()) return;
      const evs = all.filter((e) => shortName('EventState', e.state) === 'PUBLISHED')
        .sort((a, b) => String(a.startTime).localeCompare(String(b.startTime)));
      const titles = new Map(all.map((e) => [e.id, orgName(e.titleZh, e.titleEn)]));
      fill(body, evs.length ? h('div', { class: 'event-list' }, evs.map((ev) => h('article', { class: 'card event', dataset: { testid: 'open-event', eventId: ev.id } },
        h('header', { class: 'match-head' }, h('h2', {}, orgName(ev.titleZh, ev.titleEn)), h('span', { class: 'tag' }, label('EventKind', ev.kind))),
        dl([
          [t('event.when'), `${fmt.dateTime(ev.startTime)} – ${fmt.time(ev.endTime).slice(0, 5)}`],
          [t('event.host'), ev.hostName || t('event.district')],
          [t('event.venue'), ev.venue || '—'],
          [t('event.deadline'), fmt.dateTime(ev.registrationDeadline)],
          [t('event.seats'), fillBar(fillBps(ev), `${fmt.int(ev.seats?.taken)} / ${fmt.int(ev.capacity)}`)],
          [t('event.hours'), fmt.int(ev.trainingHours)],
        ]),
        ev.description ? h('p', { class: 'muted' }, ev.description) : null,
        h('div', { class: 'actions' }, h('button', {
          type: 'button', class: 'primary', dataset: { testid: 'register' },
          onclick: async () => {
            const r = await registerDialog(ev, ctx.session.name || '');
            if (!r) return;
            const reg = r.registration;
            toast(shortName('RegistrationState', reg.state) === 'WAITLISTED'
              ? t('attendee.waitlisted', { n: reg.waitlistPosition || '' }) : t('attendee.confirmed'));
            load();
          },
        }, t('attendee.register')))))) : h('p', { class: 'empty-note' }, t('event.noneOpen')));
      fill(regsBox, table({
        testid: 'my-registrations',
        rows: regs,
        empty: t('attendee.none'),
        rowAttrs: (r) => ({ dataset: { testid: 'my-registration', registrationId: r.id, state: shortName('RegistrationState', r.state) } }),
        columns: [
          { label: t('event.title'), render: (r) => titles.get(r.eventId) || r.eventId },
          { label: t('attendee.name'), render: (r) => r.attendee?.name },
          { label: t('attendee.role'), render: (r) => r.attendee?.role || '—' },
          { label: t('event.state'), render: (r) => [badge('RegistrationState', r.state), r.waitlistPosition ? ` #${r.waitlistPosition}` : ''] },
          {
            label: t('common.actions'),
            render: (r) => (['CONFIRMED', 'WAITLISTED'].includes(shortName('RegistrationState', r.state)) ? h('button', {
              type: 'button', class: 'secondary small',
              onclick: async (e) => {
                const reason = await reasonDialog({ title: t('attendee.cancelTitle'), prompt: t('review.reason'), confirm: t('attendee.cancel'), danger: true });
                if (!reason) return;
                await busy(e.target, async () => { await post(`/v1/registrations/${p(r.id)}:cancel`, { version: r.version, reason }); load(); });
              },
            }, t('attendee.cancel')) : '—'),
          },
        ],
      }));
    } catch (err) {
      fill(body, failed(err, load));
    }
  };
  load();
  return page(t('nav.entEvents'), { intro: t('entEvents.intro') }, body, card(t('attendee.mine'), {}, regsBox));
}
