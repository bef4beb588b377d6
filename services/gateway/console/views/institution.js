// views/institution.js: what a carbon-finance institution sees: its profile
// (or a registration form when it is not on the register yet), its products
// (create, edit, publish, pause, retire), its proposed matches with the
// reasons (accept, decline, report the outcome), and its talent-base events
// with their registrations.

import { h, fill, keyed, place } from '../dom.js';
import { t, label, shortName, orgName, CATEGORY_CLASSES, fullName } from '../i18n.js';
import { get, post, listAll, p } from '../api.js';
import * as fmt from '../format.js';
import * as live from '../live.js';
import { fillBar } from '../charts.js';
import { myInstitution, forgetDirectory, product } from '../data.js';
import {
  page, card, table, badge, field, enumOptions, checkGroup, checked, val, errorBox, showError, clearErrors,
  loading, failed, dl, busy, toast, reasonDialog, reasons,
} from '../ui.js';

export const routes = [
  { path: 'inst', nav: 'nav.profile', title: 'nav.profile', render: profile },
  { path: 'inst/products', nav: 'nav.products', title: 'nav.products', render: products },
  { path: 'inst/matches', nav: 'nav.matches', title: 'nav.matches', render: matches },
  { path: 'inst/events', nav: 'nav.events', title: 'nav.events', render: events },
];

// mine reads the caller's institution; views without one point to the profile.
async function mine(ctx, opts) {
  return myInstitution(ctx.session.org, opts);
}

function notRegistered() {
  return h('p', { class: 'notice' }, t('inst.notRegistered'), ' ', h('a', { href: '#/inst' }, t('inst.registerLink')));
}

// ----------------------------------------------------------------- profile

function profile(ctx) {
  const body = h('div', { id: 'profile-body' }, loading());
  const load = async (fresh = false) => {
    fill(body, loading());
    try {
      const x = await mine(ctx, { fresh });
      if (!ctx.current()) return;
      if (!x) { fill(body, registerForm(ctx, () => load(true))); return; }
      const full = (await get(`/v1/institutions/${p(x.id)}`)).institution || x;
      if (!ctx.current()) return;
      fill(body, profileView(full, () => load(true)));
    } catch (err) {
      fill(body, failed(err, () => load(true)));
    }
  };
  load();
  return page(t('nav.profile'), { intro: t('profile.intro') }, body);
}

function profileView(x, reload) {
  const form = h('form', { class: 'form', id: 'profile-form', novalidate: true },
    errorBox(),
    h('div', { class: 'form-grid' },
      field({ label: t('inst.nameZh'), name: 'name_zh', value: x.nameZh, required: true }),
      field({ label: t('inst.nameEn'), name: 'name_en', value: x.nameEn }),
      field({ label: t('inst.address'), name: 'address', value: x.address, wide: true }),
      field({ label: t('csv.contactName'), name: 'contact.name', value: x.contact?.name, required: true }),
      field({ label: t('csv.phone'), name: 'contact.phone', value: x.contact?.phone, type: 'tel' }),
      field({ label: t('csv.email'), name: 'contact.email', value: x.contact?.email, type: 'email' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'profile-save' }, t('common.save'))));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(form.querySelector('[type=submit]'), async () => {
      clearErrors(form);
      await post(`/v1/institutions/${p(x.id)}:update`, {
        version: x.version,
        institution: {
          nameZh: val(form, 'name_zh'), nameEn: val(form, 'name_en'), address: val(form, 'address'),
          contact: { name: val(form, 'contact.name'), phone: val(form, 'contact.phone'), email: val(form, 'contact.email') },
        },
        updateMask: 'nameZh,nameEn,address,contact',
      });
      toast(t('common.saved'));
      forgetDirectory();
      reload();
    }, (err) => showError(form, err));
  });
  return h('div', { class: 'grid-2' },
    card(orgName(x.nameZh, x.nameEn), { id: 'profile-card', dataset: { testid: 'profile', institutionId: x.id, state: shortName('InstitutionState', x.state) } },
      h('p', {}, badge('InstitutionState', x.state)),
      shortName('InstitutionState', x.state) !== 'ACTIVE' ? h('p', { class: 'notice' }, t(`profile.state.${shortName('InstitutionState', x.state)}`)) : null,
      dl([
        [t('inst.creditCode'), h('span', { class: 'mono' }, x.creditCode)],
        [t('inst.kind'), label('InstitutionKind', x.kind)],
        [t('inst.tier'), label('Tier', x.tier)],
        [t('inst.zone'), label('Zone', x.zone)],
        [t('inst.licences'), (x.licences || []).map((l) => `${l.name} ${l.number || ''}`).join('；') || '—'],
        [t('inst.registered'), fmt.dateTime(x.createTime)],
      ]),
      h('h3', {}, t('profile.history')),
      table({
        rows: x.reviews || [],
        empty: t('profile.noHistory'),
        columns: [
          { label: t('profile.when'), render: (r) => fmt.dateTime(r.time) },
          { label: t('profile.action'), render: (r) => label('ReviewAction', r.action) },
          { label: t('inst.state'), render: (r) => badge('InstitutionState', r.toState) },
          { label: t('review.reason'), render: (r) => r.reason || '—' },
        ],
      })),
    card(t('profile.edit'), {}, form));
}

function registerForm(ctx, reload) {
  const form = h('form', { class: 'form', id: 'register-form', novalidate: true },
    errorBox(),
    h('div', { class: 'form-grid' },
      field({ label: t('inst.creditCode'), name: 'credit_code', value: ctx.session.org, required: true, attrs: { readonly: true } }),
      field({ label: t('inst.nameZh'), name: 'name_zh', required: true }),
      field({ label: t('inst.nameEn'), name: 'name_en' }),
      field({ label: t('inst.kind'), name: 'kind', type: 'select', required: true, options: enumOptions('InstitutionKind', { empty: t('common.choose') }) }),
      field({ label: t('inst.tier'), name: 'tier', type: 'select', required: true, options: enumOptions('Tier', { empty: t('common.choose') }) }),
      field({ label: t('inst.zone'), name: 'zone', type: 'select', required: true, options: enumOptions('Zone', { empty: t('common.choose') }) }),
      field({ label: t('inst.address'), name: 'address', wide: true }),
      field({ label: t('csv.contactName'), name: 'contact.name', required: true }),
      field({ label: t('csv.phone'), name: 'contact.phone', type: 'tel' }),
      field({ label: t('csv.email'), name: 'contact.email', type: 'email' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('profile.register'))));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(form.querySelector('[type=submit]'), async () => {
      clearErrors(form);
      await post('/v1/institutions', {
        creditCode: val(form, 'credit_code'), nameZh: val(form, 'name_zh'), nameEn: val(form, 'name_en'),
        kind: val(form, 'kind') || undefined, tier: val(form, 'tier') || undefined, zone: val(form, 'zone') || undefined,
        address: val(form, 'address'),
        contact: { name: val(form, 'contact.name'), phone: val(form, 'contact.phone'), email: val(form, 'contact.email') },
      });
      toast(t('profile.registered'));
      reload();
    }, (err) => showError(form, err));
  });
  return card(t('profile.registerTitle'), {}, h('p', {}, t('profile.registerIntro')), form);
}

// ---------------------------------------------------------------- products

const NUM = (s) => (s === '' ? undefined : Number(s));

function categoryOptions() {
  return CATEGORY_CLASSES.map((c) => ({
    group: t(`category.class.${c.key}`),
    options: c.values.map((v) => ({ value: fullName('ProductCategory', v), label: label('ProductCategory', v) })),
  }));
}

function productForm(x, onDone, onCancel) {
  const pr = x || {};
  const rate = pr.price?.annualRate;
  const priceKind = pr.price && pr.price.feeYuan !== undefined && !rate ? 'fee' : 'rate';
  const form = h('form', { class: 'form', id: 'product-form', novalidate: true, dataset: { testid: 'product-form', productId: pr.id || '' } },
    errorBox(),
    h('div', { class: 'form-grid' },
      field({ label: t('product.nameZh'), name: 'name_zh', value: pr.nameZh, required: true }),
      field({ label: t('product.nameEn'), name: 'name_en', value: pr.nameEn }),
      field({
        label: t('product.category'), name: 'category', type: 'select', required: true, value: pr.category,
        options: [{ value: '', label: t('common.choose') }, ...categoryOptions()],
      }),
      checkGroup({ legend: t('product.demandKinds'), name: 'demand_kinds', type: 'DemandKind', selected: pr.demandKinds || [] }),
      field({ label: t('product.amountMin'), name: 'amount.min_yuan', type: 'number', value: pr.amount?.minYuan, required: true, attrs: { min: 1, step: 1, inputmode: 'numeric' } }),
      field({ label: t('product.amountMax'), name: 'amount.max_yuan', type: 'number', value: pr.amount?.maxYuan, required: true, attrs: { min: 1, step: 1, inputmode: 'numeric' } }),
      field({ label: t('product.termMin'), name: 'term.min_months', type: 'number', value: pr.term?.minMonths ?? '', hint: t('product.termHint'), attrs: { min: 0, step: 1 } }),
      field({ label: t('product.termMax'), name: 'term.max_months', type: 'number', value: pr.term?.maxMonths ?? '', attrs: { min: 0, step: 1 } }),
      field({
        label: t('product.priceKind'), name: 'price_kind', type: 'select', value: priceKind,
        options: [{ value: 'rate', label: t('product.priceRate') }, { value: 'fee', label: t('product.priceFee') }],
      }),
      field({ label: t('product.rateMin'), name: 'price.annual_rate.min_bps', type: 'number', value: rate?.minBps ?? '', hint: t('product.bpsHint'), attrs: { min: 0, step: 1 } }),
      field({ label: t('product.rateMax'), name: 'price.annual_rate.max_bps', type: 'number', value: rate?.maxBps ?? '', attrs: { min: 0, step: 1 } }),
      field({ label: t('product.fee'), name: 'price.fee_yuan', type: 'number', value: pr.price?.feeYuan ?? '', attrs: { min: 0, step: 1 } }),
      checkGroup({ legend: t('product.sectors'), name: 'sectors', type: 'Sector', selected: pr.sectors || [], hint: t('product.sectorsHint') }),
      field({ label: t('product.regions'), name: 'regions', value: (pr.regions || []).join(', '), hint: t('product.regionsHint') }),
      field({
        label: t('product.collateral'), name: 'collateral.asset', type: 'select', value: pr.collateral?.asset || '',
        options: enumOptions('CarbonAsset', { empty: t('product.noCollateral') }),
      }),
      field({ label: t('product.pledgeRate'), name: 'collateral.pledge_rate_bps', type: 'number', value: pr.collateral?.pledgeRateBps ?? '', hint: t('product.bpsHint'), attrs: { min: 0, max: 10000, step: 1 } }),
      field({ label: t('product.description'), name: 'description', type: 'textarea', value: pr.description, wide: true }),
      field({ label: t('csv.contactName'), name: 'contact.name', value: pr.contact?.name }),
      field({ label: t('csv.phone'), name: 'contact.phone', value: pr.contact?.phone, type: 'tel' }),
      field({ label: t('csv.email'), name: 'contact.email', value: pr.contact?.email, type: 'email' })),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', onclick: onCancel }, t('common.cancel')),
      h('button', { type: 'submit', class: 'primary', id: 'product-save' }, x ? t('common.save') : t('product.create'))));

  // Show the rate or the fee fields, as the price kind says.
  const priceSel = form.elements.namedItem('price_kind');
  const syncPrice = () => {
    const fee = priceSel.value === 'fee';
    for (const n of ['price.annual_rate.min_bps', 'price.annual_rate.max_bps']) form.querySelector(`[data-field="${n}"]`).hidden = fee;
    form.querySelector('[data-field="price.fee_yuan"]').hidden = !fee;
  };
  priceSel.addEventListener('change', syncPrice);
  syncPrice();

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(form.querySelector('[type=submit]'), async () => {
      clearErrors(form);
      const asset = val(form, 'collateral.asset');
      const body = {
        nameZh: val(form, 'name_zh'),
        nameEn: val(form, 'name_en'),
        category: val(form, 'category') || undefined,
        demandKinds: checked(form, 'demand_kinds'),
        amount: { minYuan: NUM(val(form, 'amount.min_yuan')), maxYuan: NUM(val(form, 'amount.max_yuan')) },
        term: { minMonths: NUM(val(form, 'term.min_months')) || 0, maxMonths: NUM(val(form, 'term.max_months')) || 0 },
        price: priceSel.value === 'fee'
          ? { feeYuan: NUM(val(form, 'price.fee_yuan')) ?? 0 }
          : { annualRate: { minBps: NUM(val(form, 'price.annual_rate.min_bps')) ?? 0, maxBps: NUM(val(form, 'price.annual_rate.max_bps')) ?? 0 } },
        sectors: checked(form, 'sectors'),
        regions: val(form, 'regions').split(/[,，\s]+/).filter(Boolean),
        collateral: asset ? { asset, pledgeRateBps: NUM(val(form, 'collateral.pledge_rate_bps')) || 0 } : {},
        description: val(form, 'description'),
        contact: { name: val(form, 'contact.name'), phone: val(form, 'contact.phone'), email: val(form, 'contact.email') },
      };
      if (x) {
        await post(`/v1/products/${p(x.id)}:update`, {
          version: x.version, product: body,
          updateMask: 'nameZh,nameEn,category,demandKinds,amount,term,price,sectors,regions,collateral,description,contact',
        });
      } else {
        await post('/v1/products', { product: body });
      }
      toast(x ? t('common.saved') : t('product.created'));
      onDone();
    }, (err) => showError(form, err));
  });
  return form;
}

function products(ctx) {
  const body = h('div', { id: 'products-body' }, loading());
  const formBox = h('div', { id: 'product-form-box' });
  let me = null;
  const closeForm = () => fill(formBox);
  const openForm = (x) => {
    fill(formBox, card(x ? t('product.editTitle', { name: orgName(x.nameZh, x.nameEn) }) : t('product.newTitle'), {},
      productForm(x, () => { closeForm(); load(); }, closeForm)));
    formBox.querySelector('input')?.focus();
  };
  const act = (x, verb, needReason) => async (e) => {
    let reason;
    if (needReason) {
      reason = await reasonDialog({ title: t(`product.${verb}Title`, { name: orgName(x.nameZh, x.nameEn) }), prompt: t('review.reason'), confirm: t(`product.${verb}`), danger: verb === 'retire' });
      if (!reason) return;
    }
    await busy(e.target, async () => {
      await post(`/v1/products/${p(x.id)}:${verb}`, { version: x.version, reason });
      toast(t(`product.${verb}Done`));
      load();
    });
  };
  const load = async () => {
    try {
      me = me || await mine(ctx);
      if (!ctx.current()) return;
      if (!me) { fill(body, notRegistered()); return; }
      const list = await listAll('/v1/products', 'products', { institution_id: me.id });
      if (!ctx.current()) return;
      fill(body, table({
        testid: 'my-products',
        rows: list,
        empty: t('product.none'),
        rowAttrs: (x) => ({ dataset: { testid: 'my-product-row', productId: x.id, state: shortName('ProductState', x.state) } }),
        columns: [
          { label: t('product.name'), render: (x) => h('span', {}, h('strong', {}, orgName(x.nameZh, x.nameEn)), x.stateReason ? [h('br'), h('small', { class: 'muted' }, x.stateReason)] : null) },
          { label: t('product.category'), render: (x) => label('ProductCategory', x.category) },
          { label: t('product.amount'), nowrap: true, render: (x) => fmt.moneyRange(x.amount) },
          { label: t('product.term'), nowrap: true, render: (x) => fmt.termRange(x.term) },
          { label: t('product.price'), nowrap: true, render: (x) => fmt.price(x.price) },
          { label: t('product.state'), render: (x) => badge('ProductState', x.state) },
          {
            label: t('common.actions'),
            render: (x) => {
              const st = shortName('ProductState', x.state);
              return h('div', { class: 'row-actions' },
                st !== 'RETIRED' ? h('button', { type: 'button', class: 'secondary small', dataset: { testid: 'edit' }, onclick: () => openForm(x) }, t('common.edit')) : null,
                st === 'DRAFT' || st === 'PAUSED' ? h('button', { type: 'button', class: 'primary small', dataset: { testid: 'publish' }, onclick: act(x, 'publish', false) }, t('product.publish')) : null,
                st === 'PUBLISHED' ? h('button', { type: 'button', class: 'secondary small', dataset: { testid: 'pause' }, onclick: act(x, 'pause', true) }, t('product.pause')) : null,
                st !== 'RETIRED' ? h('button', { type: 'button', class: 'danger-outline small', dataset: { testid: 'retire' }, onclick: act(x, 'retire', true) }, t('product.retire')) : null);
            },
          },
        ],
      }));
    } catch (err) {
      fill(body, failed(err, load));
    }
  };
  load();
  return page(t('nav.products'), {
    intro: t('product.intro'),
    actions: h('button', { type: 'button', class: 'primary', id: 'product-new', onclick: () => openForm(null) }, t('product.new')),
  }, formBox, card(null, {}, body));
}

// ----------------------------------------------------------------- matches

const MATCH_TABS = {
  todo: ['PROPOSED'],
  accepted: ['ACCEPTED'],
  confirmed: ['CONFIRMED'],
  done: ['COMPLETED', 'FAILED'],
  all: null,
};

function outcomeDialog(m) {
  return new Promise((resolve) => {
    const form = h('form', { class: 'form', novalidate: true, id: 'outcome-form' },
      h('h2', { id: 'outcome-title' }, t('outcome.title')),
      errorBox(),
      h('fieldset', { class: 'field wide' }, h('legend', {}, t('outcome.result')),
        h('span', { class: 'check' }, h('input', { type: 'radio', name: 'result', id: 'outcome-completed', value: 'completed', checked: true }), h('label', { for: 'outcome-completed' }, t('outcome.completed'))),
        h('span', { class: 'check' }, h('input', { type: 'radio', name: 'result', id: 'outcome-failed', value: 'failed' }), h('label', { for: 'outcome-failed' }, t('outcome.failed')))),
      h('div', { class: 'form-grid', id: 'outcome-deal' },
        field({ label: t('outcome.amount'), name: 'completed.amount_yuan', type: 'number', required: true, attrs: { min: 1, step: 1 } }),
        field({ label: t('outcome.rate'), name: 'completed.rate_bps', type: 'number', hint: t('product.bpsHint'), attrs: { min: 0, step: 1 } }),
        field({ label: t('outcome.term'), name: 'completed.term_months', type: 'number', attrs: { min: 0, step: 1 } }),
        field({ label: t('outcome.tonnes'), name: 'completed.tonnes', type: 'number', attrs: { min: 0, step: 1 } })),
      h('div', { class: 'form-grid', id: 'outcome-failure', hidden: true },
        field({ label: t('outcome.reason'), name: 'failed.reason', type: 'select', options: enumOptions('FailureReason', { empty: t('common.choose') }) })),
      field({ label: t('outcome.note'), name: 'note', type: 'textarea', wide: true }),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', onclick: () => dlg.close() }, t('common.cancel')),
        h('button', { type: 'submit', class: 'primary', id: 'outcome-submit' }, t('outcome.submit'))));
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'outcome-title' }, form);
    const sync = () => {
      const failedOn = form.querySelector('#outcome-failed').checked;
      form.querySelector('#outcome-deal').hidden = failedOn;
      form.querySelector('#outcome-failure').hidden = !failedOn;
    };
    for (const r of form.querySelectorAll('input[name=result]')) r.addEventListener('change', sync);
    let result = null;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const note = val(form, 'note');
      const body = form.querySelector('#outcome-failed').checked
        ? { version: m.version, failed: { reason: val(form, 'failed.reason') || undefined, note } }
        : {
          version: m.version,
          completed: {
            amountYuan: NUM(val(form, 'completed.amount_yuan')), rateBps: NUM(val(form, 'completed.rate_bps')),
            termMonths: NUM(val(form, 'completed.term_months')), tonnes: NUM(val(form, 'completed.tonnes')), note,
          },
        };
      busy(form.querySelector('[type=submit]'), async () => {
        clearErrors(form);
        result = await post(`/v1/matches/${p(m.id)}:reportOutcome`, body);
        dlg.close();
      }, (err) => showError(form, err));
    });
    dlg.addEventListener('close', () => { dlg.remove(); resolve(result); });
    document.body.appendChild(dlg);
    dlg.showModal();
    form.querySelector('input[name="completed.amount_yuan"]').focus();
  });
}

function matches(ctx) {
  const body = h('div', { id: 'matches-body' }, loading());
  let tab = 'todo';
  let me = null;
  const byId = new Map();
  const demands = new Map(); // id -> Promise<demand|null>
  const demandOf = (id) => {
    if (!demands.has(id)) demands.set(id, get(`/v1/demands/${p(id)}`).then((r) => r.demand).catch(() => null));
    return demands.get(id);
  };
  // The tab buttons and the cards are kept across redraws (only their
  // counts and changed cards are redrawn), so a live update does not
  // replace a button as someone clicks it.
  const inTab = (k, m) => !MATCH_TABS[k] || MATCH_TABS[k].includes(shortName('MatchState', m.state));
  const tabButtons = Object.keys(MATCH_TABS).map((k) => h('button', {
    type: 'button', id: `tab-${k}`, dataset: { testid: `tab-${k}` },
    onclick: () => { tab = k; draw(); },
  }));
  const tabs = h('div', { class: 'tabs', role: 'group', 'aria-label': t('matchTab.label'), hidden: true }, tabButtons);
  const drawTabs = () => {
    tabs.hidden = false;
    Object.keys(MATCH_TABS).forEach((k, i) => {
      const n = [...byId.values()].filter((m) => inTab(k, m)).length;
      tabButtons[i].setAttribute('aria-pressed', String(k === tab));
      tabButtons[i].textContent = `${t(`matchTab.${k}`)} (${n})`;
    });
  };
  const matchList = h('div', { class: 'match-list' });
  const emptyNote = h('p', { class: 'empty-note' }, t('matchTab.empty'));
  const cards = keyed((m) => m.id, (m) => m.version, (m) => matchCard(m));
  const draw = () => {
    drawTabs();
    const list = [...byId.values()]
      .filter((m) => inTab(tab, m))
      .sort((a, b) => String(b.updateTime || b.createTime).localeCompare(String(a.updateTime || a.createTime)));
    place(matchList, cards(list));
    place(body, [list.length ? matchList : emptyNote]);
  };
  const matchCard = (m) => {
    const st = shortName('MatchState', m.state);
    // Until the demand arrives its line holds a placeholder of the same
    // shape, so the card's buttons do not move when it comes.
    const demandBox = h('div', { class: 'demand-summary', dataset: { loading: '' } }, h('p', { class: 'demand-line muted' }, t('common.loading')));
    const productName = h('span', { class: 'product-name' });
    product(m.productId).then((pr) => { if (pr) productName.textContent = orgName(pr.nameZh, pr.nameEn); });
    demandOf(m.demandId).then((d) => {
      fill(demandBox, d ? demandSummary(d) : h('p', { class: 'demand-line muted mono' }, m.demandId));
      delete demandBox.dataset.loading;
    });
    const accept = (e) => busy(e.target, async () => {
      const r = await post(`/v1/matches/${p(m.id)}:accept`, { version: m.version });
      update(r.match);
      toast(t('match.acceptedToast'));
    });
    const decline = async (e) => {
      const reason = await reasonDialog({ title: t('match.declineTitle'), prompt: t('review.reason'), confirm: t('match.decline'), danger: true });
      if (!reason) return;
      await busy(e.target, async () => {
        const r = await post(`/v1/matches/${p(m.id)}:decline`, { version: m.version, reason });
        update(r.match);
        toast(t('match.declinedToast'));
      });
    };
    const report = async () => {
      const r = await outcomeDialog(m);
      if (r && r.match) { update(r.match); toast(t('outcome.done')); }
    };
    return h('article', { class: `card match st-${st.toLowerCase()}`, dataset: { testid: 'match-row', matchId: m.id, demandId: m.demandId, state: st } },
      h('header', { class: 'match-head' },
        h('div', {}, h('strong', {}, productName), h('br'),
          h('small', {}, label('ProductCategory', m.category), ' · ', label('Sector', m.sector)),
          m.reverse ? h('span', { class: 'tag' }, t('match.reverse')) : null,
          m.reoffer ? h('span', { class: 'tag' }, t('match.reoffer')) : null),
        h('div', {}, badge('MatchState', m.state))),
      demandBox,
      dl([
        [t('match.rankScore'), `#${m.rank || '—'} · ${Number(m.score || 0).toFixed(3)}`],
        [t('match.responseDeadline'), h('span', { class: m.responseOverdue ? 'warn' : null }, fmt.dateTime(m.responseDeadline), m.responseOverdue ? ` (${t('overdue.response')})` : '')],
        m.outcomeDeadline ? [t('match.outcomeDeadline'), h('span', { class: m.outcomeOverdue ? 'warn' : null }, fmt.dateTime(m.outcomeDeadline))] : null,
        m.stateReason ? [t('match.stateReason'), m.stateReason] : null,
        m.outcome && m.outcome.amountYuan ? [t('outcome.deal'), `${fmt.money(m.outcome.amountYuan)} · ${fmt.pct(m.outcome.rateBps)} · ${fmt.months(m.outcome.termMonths)}`] : null,
      ]),
      h('details', { class: 'why' }, h('summary', {}, t('match.why')), reasons(m.checks, m.scoreParts)),
      h('div', { class: 'actions' },
        st === 'PROPOSED' ? h('button', { type: 'button', class: 'primary', dataset: { testid: 'accept' }, onclick: accept }, t('match.accept')) : null,
        st === 'PROPOSED' ? h('button', { type: 'button', class: 'secondary', dataset: { testid: 'decline' }, onclick: decline }, t('match.decline')) : null,
        st === 'CONFIRMED' ? h('button', { type: 'button', class: 'primary', dataset: { testid: 'report-outcome' }, onclick: report }, t('outcome.report')) : null));
  };
  const update = (m) => {
    const old = byId.get(m.id);
    if (old && Number(old.version) > Number(m.version)) return;
    byId.set(m.id, m);
    draw();
  };
  const load = async () => {
    try {
      me = me || await mine(ctx);
      if (!ctx.current()) return;
      if (!me) { fill(body, notRegistered()); return; }
      const list = await listAll('/v1/matches', 'matches', { institution_id: me.id });
      if (!ctx.current()) return;
      for (const m of list) byId.set(m.id, m);
      draw();
    } catch (err) {
      fill(body, failed(err, load));
    }
  };
  // New proposals and changes arrive on the live feed (only this
  // institution's matches).
  ctx.cleanup(live.subscribe((ev) => update(ev.match)));
  load();
  return page(t('nav.matches'), {
    intro: t('match.intro'),
    actions: h('button', { type: 'button', class: 'secondary', onclick: () => { byId.clear(); demands.clear(); cards.reset(); load(); } }, t('common.refresh')),
  }, tabs, body);
}

export function demandSummary(d) {
  return h('p', { class: 'demand-line' },
    h('strong', {}, d.enterpriseName || d.enterpriseCreditCode), ' · ',
    label('DemandKind', d.kind), ' · ', fmt.money(d.amountYuan),
    fmt.num(d.termMonths) ? ` · ${fmt.months(d.termMonths)}` : '',
    ' · ', label('Sector', d.sector),
    fmt.num(d.ceaTonnes) ? ` · CEA ${fmt.tonnes(d.ceaTonnes)}` : '',
    fmt.num(d.ccerTonnes) ? ` · CCER ${fmt.tonnes(d.ccerTonnes)}` : '',
    d.description ? [h('br'), h('small', { class: 'muted' }, d.description)] : null);
}

// ------------------------------------------------------------------ events

function fillBps(e) {
  const cap = fmt.num(e.capacity);
  return cap ? Math.round((fmt.num(e.seats?.taken) / cap) * 10000) : 0;
}

function eventForm(onDone, onCancel) {
  const start = new Date(Date.now() + 14 * 86400000);
  start.setUTCHours(6, 30, 0, 0); // 14:30 Beijing time
  const end = new Date(start.getTime() + 2 * 3600000);
  const form = h('form', { class: 'form', id: 'event-form', novalidate: true },
    errorBox(),
    h('div', { class: 'form-grid' },
      field({ label: t('event.titleZh'), name: 'title_zh', required: true }),
      field({ label: t('event.titleEn'), name: 'title_en' }),
      field({ label: t('event.kind'), name: 'kind', type: 'select', required: true, options: enumOptions('EventKind', { empty: t('common.choose') }) }),
      field({ label: t('event.capacity'), name: 'capacity', type: 'number', required: true, value: 50, attrs: { min: 1, max: 10000 } }),
      field({ label: t('event.start'), name: 'start_time', type: 'datetime-local', required: true, value: fmt.rfc3339ToLocalInput(start) }),
      field({ label: t('event.end'), name: 'end_time', type: 'datetime-local', required: true, value: fmt.rfc3339ToLocalInput(end) }),
      field({ label: t('event.deadline'), name: 'registration_deadline', type: 'datetime-local', hint: t('event.deadlineHint') }),
      field({ label: t('event.hours'), name: 'training_hours', type: 'number', value: 0, attrs: { min: 0, max: 200 } }),
      field({ label: t('event.venue'), name: 'venue', wide: true }),
      field({ label: t('event.zone'), name: 'zone', type: 'select', options: enumOptions('Zone', { empty: t('common.none') }) }),
      field({ label: t('event.description'), name: 'description', type: 'textarea', wide: true })),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', onclick: onCancel }, t('common.cancel')),
      h('button', { type: 'submit', class: 'primary' }, t('event.create'))));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(form.querySelector('[type=submit]'), async () => {
      clearErrors(form);
      await post('/v1/talent/events', {
        event: {
          titleZh: val(form, 'title_zh'), titleEn: val(form, 'title_en'), kind: val(form, 'kind') || undefined,
          capacity: NUM(val(form, 'capacity')), startTime: fmt.localInputToRFC3339(val(form, 'start_time')),
          endTime: fmt.localInputToRFC3339(val(form, 'end_time')),
          registrationDeadline: fmt.localInputToRFC3339(val(form, 'registration_deadline')),
          trainingHours: NUM(val(form, 'training_hours')) || 0, venue: val(form, 'venue'), zone: val(form, 'zone') || undefined,
          description: val(form, 'description'),
        },
      });
      toast(t('event.created'));
      onDone();
    }, (err) => showError(form, err));
  });
  return form;
}

function registrationsTable(ev, reload) {
  const box = h('div', { class: 'registrations' }, loading());
  (async () => {
    try {
      const regs = await listAll(`/v1/talent/events/${p(ev.id)}/registrations`, 'registrations');
      fill(box, table({
        testid: 'registrations',
        rows: regs,
        empty: t('event.noRegistrations'),
        rowAttrs: (r) => ({ dataset: { testid: 'registration-row', registrationId: r.id, state: shortName('RegistrationState', r.state) } }),
        columns: [
          { label: '#', num: true, render: (r) => r.position },
          { label: t('attendee.name'), render: (r) => r.attendee?.name },
          { label: t('attendee.organization'), render: (r) => r.attendee?.organization },
          { label: t('attendee.role'), render: (r) => r.attendee?.role || '—' },
          { label: t('attendee.contact'), render: (r) => [r.attendee?.phone, r.attendee?.email].filter(Boolean).join(' · ') || '—' },
          { label: t('event.state'), render: (r) => [badge('RegistrationState', r.state), r.waitlistPosition ? ` #${r.waitlistPosition}` : ''] },
          {
            label: t('common.actions'),
            render: (r) => (shortName('RegistrationState', r.state) === 'CONFIRMED'
              ? h('button', {
                type: 'button', class: 'secondary small', dataset: { testid: 'check-in' },
                onclick: (e) => busy(e.target, async () => { await post(`/v1/registrations/${p(r.id)}:checkIn`, { version: r.version }); toast(t('event.checkedIn')); reload(); }),
              }, t('event.checkIn'))
              : '—'),
          },
        ],
      }));
    } catch (err) {
      fill(box, failed(err));
    }
  })();
  return box;
}

function events(ctx) {
  const body = h('div', { id: 'events-body' }, loading());
  const formBox = h('div', { id: 'event-form-box' });
  let me = null;
  const open = new Set();
  const closeForm = () => fill(formBox);
  const act = (ev, verb, needReason) => async (e) => {
    let reason;
    if (needReason) {
      reason = await reasonDialog({ title: t(`event.${verb}Title`), prompt: t('review.reason'), confirm: t(`event.${verb}`), danger: verb === 'cancel' });
      if (!reason) return;
    }
    await busy(e.target, async () => {
      await post(`/v1/talent/events/${p(ev.id)}:${verb}`, { version: ev.version, reason });
      toast(t('common.saved'));
      load();
    });
  };
  const load = async () => {
    try {
      me = me || await mine(ctx);
      if (!ctx.current()) return;
      if (!me) { fill(body, notRegistered()); return; }
      const list = (await listAll('/v1/talent/events', 'events', { host_institution_id: me.id }))
        .sort((a, b) => String(a.startTime).localeCompare(String(b.startTime)));
      if (!ctx.current()) return;
      fill(body, list.length ? list.map((ev) => {
        const st = shortName('EventState', ev.state);
        const regBox = h('div');
        const details = h('details', { class: 'regs', open: open.has(ev.id) },
          h('summary', {}, t('event.registrations', { n: fmt.int(ev.seats?.registrations) })), regBox);
        const drawRegs = () => fill(regBox, registrationsTable(ev, load));
        details.addEventListener('toggle', () => {
          if (details.open) { open.add(ev.id); drawRegs(); } else open.delete(ev.id);
        });
        if (details.open) drawRegs();
        return h('article', { class: 'card event', dataset: { testid: 'my-event', eventId: ev.id, state: st } },
          h('header', { class: 'match-head' },
            h('h2', {}, orgName(ev.titleZh, ev.titleEn)), badge('EventState', ev.state)),
          dl([
            [t('event.kind'), label('EventKind', ev.kind)],
            [t('event.when'), `${fmt.dateTime(ev.startTime)} – ${fmt.time(ev.endTime).slice(0, 5)}`],
            [t('event.venue'), ev.venue || '—'],
            [t('event.seats'), fillBar(fillBps(ev), `${fmt.int(ev.seats?.taken)} / ${fmt.int(ev.capacity)} · ${t('event.waitlistedN', { n: fmt.int(ev.seats?.waitlisted) })}`)],
            [t('event.hours'), fmt.int(ev.trainingHours)],
          ]),
          h('div', { class: 'actions' },
            st === 'DRAFT' ? h('button', { type: 'button', class: 'primary', onclick: act(ev, 'publish', false) }, t('event.publish')) : null,
            st === 'PUBLISHED' ? h('button', { type: 'button', class: 'secondary', onclick: act(ev, 'close', true) }, t('event.close')) : null,
            ['DRAFT', 'PUBLISHED', 'CLOSED'].includes(st) ? h('button', { type: 'button', class: 'danger', onclick: act(ev, 'cancel', true) }, t('event.cancel')) : null),
          details);
      }) : h('p', { class: 'empty-note' }, t('event.none')));
    } catch (err) {
      fill(body, failed(err, load));
    }
  };
  load();
  return page(t('nav.events'), {
    intro: t('event.intro'),
    actions: h('button', {
      type: 'button', class: 'primary', id: 'event-new',
      onclick: () => { fill(formBox, card(t('event.newTitle'), {}, eventForm(() => { closeForm(); load(); }, closeForm))); formBox.querySelector('input')?.focus(); },
    }, t('event.new')),
  }, formBox, body);
}
