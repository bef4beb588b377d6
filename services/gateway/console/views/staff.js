// views/staff.js: what district staff see: the overview (KPIs, the live match
// feed, completed volume by category, sector and zone), the institution
// review queue, the directory with the finance axis' share, overdue matches
// to chase, the talent-base calendar with fill rates, and CSV reports.

import { h, fill } from '../dom.js';
import { t, label, shortName, orgName, lang } from '../i18n.js';
import { get, post, listAll, p } from '../api.js';
import * as fmt from '../format.js';
import * as live from '../live.js';
import { barChart, fillBar } from '../charts.js';
import { exportButton, download } from '../csv.js';
import { directory, instName, forgetDirectory } from '../data.js';
import {
  page, card, table, badge, field, enumOptions, loading, failed, dl, busy, toast, reasonDialog, val,
} from '../ui.js';

export const routes = [
  { path: 'staff', nav: 'nav.overview', title: 'nav.overview', render: overview },
  { path: 'staff/review', nav: 'nav.review', title: 'nav.review', render: review },
  { path: 'staff/directory', nav: 'nav.directory', title: 'nav.directory', render: directoryPage },
  { path: 'staff/overdue', nav: 'nav.overdue', title: 'nav.overdue', render: overdue },
  { path: 'staff/talent', nav: 'nav.talent', title: 'nav.talent', render: talent },
  { path: 'staff/reports', nav: 'nav.reports', title: 'nav.reports', render: reports },
];

// ---------------------------------------------------------------- overview

// The figures: GetMatchStats plus the count of OPEN demands.
async function readKpis() {
  const [stats, open] = await Promise.all([
    get('/v1/matches/stats'),
    listAll('/v1/demands', 'demands', { state: 'DEMAND_STATE_OPEN' }, 5).then((l) => l.length),
  ]);
  return { stats, open };
}

function kpiCard(key, value, raw, sub) {
  return h('div', { class: 'kpi', id: `kpi-${key}`, dataset: { testid: 'kpi', kpi: key, value: raw } },
    h('div', { class: 'kpi-label' }, t(`kpi.${key}`)),
    h('div', { class: 'kpi-value' }, value),
    sub ? h('div', { class: 'kpi-sub' }, sub) : null);
}

function drawKpis(el, { stats: s, open }) {
  const overdue = fmt.num(s.overdueResponses) + fmt.num(s.overdueOutcomes);
  fill(el,
    kpiCard('openDemands', fmt.int(open), open,
      t('kpi.openDemandsSub', { posted: fmt.int(s.demandsPosted), attention: fmt.int(s.demandsNeedingAttention) })),
    kpiCard('matchRate', fmt.pct(s.matchRateBps, 1), fmt.num(s.matchRateBps),
      t('kpi.matchRateSub', { n: fmt.int(s.demandsWithAcceptedMatch), of: fmt.int(s.demandsPosted) })),
    kpiCard('medianAccept', fmt.duration(s.medianTimeToAccept), fmt.seconds(s.medianTimeToAccept),
      t('kpi.medianAcceptSub', { p90: fmt.duration(s.p90TimeToAccept), accepted: fmt.int(s.matchesAccepted) })),
    kpiCard('overdue', fmt.int(overdue), overdue,
      t('kpi.overdueSub', { responses: fmt.int(s.overdueResponses), outcomes: fmt.int(s.overdueOutcomes) })),
    kpiCard('completed', fmt.money(s.completedAmountYuan), fmt.num(s.completedAmountYuan),
      t('kpi.completedSub', { deals: fmt.int(s.completedDeals), tonnes: fmt.tonnes(s.completedTonnes) })));
}

const VOLUME_DIMS = [
  { key: 'category', field: 'completedByCategory', type: 'ProductCategory' },
  { key: 'sector', field: 'completedBySector', type: 'Sector' },
  { key: 'zone', field: 'completedByZone', type: 'Zone' },
];

function metricValue(v, metric) {
  if (metric === 'deals') return { value: fmt.num(v.deals), display: fmt.int(v.deals) };
  if (metric === 'tonnes') return { value: fmt.num(v.tonnes), display: fmt.tonnes(v.tonnes) };
  return { value: fmt.num(v.amountYuan), display: fmt.money(v.amountYuan) };
}

function drawCharts(el, stats, metric) {
  fill(el, VOLUME_DIMS.map((d) => {
    const data = (stats[d.field] || []).map((v) => ({ key: v.key, label: label(d.type, v.key), ...metricValue(v, metric) }));
    return h('div', { class: 'chart-box' },
      h('h3', {}, t(`chart.by.${d.key}`)),
      barChart({ title: t(`chart.by.${d.key}`), data, testid: `chart-${d.key}`, unitLabel: t(`chart.metric.${metric}`) }));
  }));
}

function eventLabel(type) {
  return label('EventType', type);
}

function feedRow(ev, dir) {
  const m = ev.match;
  const type = String(ev.eventType || '').replace(/^matching\.match\./, '');
  return h('tr', {
    class: 'feed-row fresh',
    dataset: {
      testid: 'feed-row', eventId: ev.eventId, matchId: m.id, demandId: m.demandId,
      eventType: type, state: shortName('MatchState', m.state), receivedAt: ev.receivedAt, institutionId: m.institutionId,
    },
  },
  h('td', { 'data-label': t('feed.time') }, h('time', { datetime: ev.eventTime }, fmt.time(ev.eventTime))),
  h('td', { 'data-label': t('feed.event') }, h('span', { class: `ev ev-${type}` }, eventLabel(type))),
  h('td', { 'data-label': t('feed.institution') }, instName(dir, m.institutionId, m.institutionCreditCode)),
  h('td', { 'data-label': t('feed.category') }, label('ProductCategory', m.category), h('br'), h('small', { class: 'muted' }, label('Sector', m.sector))),
  h('td', { 'data-label': t('feed.demand'), class: 'mono' }, fmt.shortId(m.demandId)),
  h('td', { 'data-label': t('feed.rank'), class: 'num' }, m.rank ? `#${m.rank} · ${Number(m.score || 0).toFixed(2)}` : '—'));
}

const FEED_FILTERS = {
  all: () => true,
  proposed: (type) => type === 'proposed',
  accepted: (type) => type === 'accepted' || type === 'confirmed',
  outcomes: (type) => type === 'completed' || type === 'failed',
  trouble: (type) => ['declined', 'expired', 'flagged', 'withdrawn', 'closed'].includes(type),
};

function overview(ctx) {
  const kpis = h('div', { class: 'kpis', id: 'kpis', 'aria-live': 'polite' }, loading());
  const charts = h('div', { class: 'charts', id: 'charts' }, loading());
  let metric = 'amount';
  let lastStats = null;
  let filter = 'all';
  let dir = null;

  const tbody = h('tbody', { id: 'feed-rows' });
  const emptyRow = () => h('tr', { class: 'empty', id: 'feed-empty' }, h('td', { colspan: 6 }, t('feed.empty')));
  const typeOf = (ev) => String(ev.eventType || '').replace(/^matching\.match\./, '');
  const redrawFeed = () => {
    const rows = live.recent().filter((ev) => FEED_FILTERS[filter](typeOf(ev))).slice(0, 150).map((ev) => {
      const row = feedRow(ev, dir);
      row.classList.remove('fresh');
      return row;
    });
    fill(tbody, rows.length ? rows : emptyRow());
  };
  const feedTable = h('div', { class: 'table-wrap feed' },
    h('table', { id: 'feed', dataset: { testid: 'feed' } },
      h('caption', { class: 'sr-only' }, t('feed.title')),
      h('thead', {}, h('tr', {},
        ['time', 'event', 'institution', 'categorySector', 'demand', 'rank'].map((k) => h('th', { scope: 'col', class: k === 'rank' ? 'num' : null }, t(`feed.${k}`))))),
      tbody));
  const filterSel = h('select', { id: 'feed-filter', onchange: (e) => { filter = e.target.value; redrawFeed(); } },
    Object.keys(FEED_FILTERS).map((k) => h('option', { value: k }, t(`feed.filter.${k}`))));
  const metricSel = h('select', {
    id: 'chart-metric',
    onchange: (e) => { metric = e.target.value; if (lastStats) drawCharts(charts, lastStats, metric); },
  }, ['amount', 'deals', 'tonnes'].map((k) => h('option', { value: k }, t(`chart.metric.${k}`))));

  let timer = null;
  let loadingKpis = false;
  let again = false;
  const refresh = async () => {
    if (loadingKpis) { again = true; return; }
    loadingKpis = true;
    try {
      const k = await readKpis();
      if (!ctx.current()) return;
      lastStats = k.stats;
      drawKpis(kpis, k);
      drawCharts(charts, k.stats, metric);
      kpis.dataset.updatedAt = String(Date.now());
    } catch (err) {
      if (ctx.current()) fill(kpis, failed(err, refresh));
    } finally {
      loadingKpis = false;
      if (again) { again = false; refresh(); }
    }
  };
  // New events change the figures: re-read them, at most every 300 ms.
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  };
  ctx.cleanup(() => clearTimeout(timer));
  const interval = setInterval(refresh, 30000);
  ctx.cleanup(() => clearInterval(interval));

  ctx.cleanup(live.subscribe((ev) => {
    if (FEED_FILTERS[filter](typeOf(ev))) {
      document.getElementById('feed-empty')?.remove();
      tbody.prepend(feedRow(ev, dir));
      while (tbody.rows.length > 150) tbody.deleteRow(tbody.rows.length - 1);
    }
    soon();
  }));

  redrawFeed();
  directory().then((d) => { dir = d; if (ctx.current()) redrawFeed(); }).catch(() => {});
  refresh();

  return page(t('staff.overview.title'), { intro: t('staff.overview.intro') },
    h('section', { 'aria-label': t('kpi.title') }, kpis),
    h('div', { class: 'grid-feed' },
      card(t('feed.title'), { id: 'feed-card' },
        h('div', { class: 'toolbar' },
          h('label', { for: 'feed-filter' }, t('feed.show')), filterSel,
          h('span', { class: 'muted' }, t('feed.hint'))),
        feedTable),
      card(t('chart.title'), { id: 'charts-card' },
        h('div', { class: 'toolbar' },
          h('label', { for: 'chart-metric' }, t('chart.metric')), metricSel,
          exportButton('completed-volume', async () => volumeRows((await get('/v1/matches/stats'))))),
        charts)));
}

// volumeRows: completed volume by category, sector and zone, one table.
function volumeRows(stats) {
  const rows = [[t('csv.dimension'), t('csv.key'), t('csv.label'), t('csv.deals'), t('csv.amountYuan'), t('csv.tonnes')]];
  for (const d of VOLUME_DIMS) {
    for (const v of stats[d.field] || []) {
      rows.push([t(`chart.by.${d.key}`), v.key, label(d.type, v.key), fmt.num(v.deals), fmt.num(v.amountYuan), fmt.num(v.tonnes)]);
    }
  }
  return rows;
}

// kpiRows: the headline figures.
async function kpiRows() {
  const { stats: s, open } = await readKpis();
  return [
    [t('csv.figure'), t('csv.value')],
    [t('kpi.openDemands'), open],
    [t('csv.demandsPosted'), fmt.num(s.demandsPosted)],
    [t('csv.demandsWithAccepted'), fmt.num(s.demandsWithAcceptedMatch)],
    [t('csv.matchRatePct'), (fmt.num(s.matchRateBps) / 100).toFixed(2)],
    [t('csv.matchesProposed'), fmt.num(s.matchesProposed)],
    [t('csv.matchesAccepted'), fmt.num(s.matchesAccepted)],
    [t('csv.acceptanceRatePct'), (fmt.num(s.acceptanceRateBps) / 100).toFixed(2)],
    [t('csv.medianAcceptSeconds'), Math.round(fmt.seconds(s.medianTimeToAccept))],
    [t('csv.p90AcceptSeconds'), Math.round(fmt.seconds(s.p90TimeToAccept))],
    [t('csv.overdueResponses'), fmt.num(s.overdueResponses)],
    [t('csv.overdueOutcomes'), fmt.num(s.overdueOutcomes)],
    [t('csv.needingAttention'), fmt.num(s.demandsNeedingAttention)],
    [t('csv.completedDeals'), fmt.num(s.completedDeals)],
    [t('csv.completedAmountYuan'), fmt.num(s.completedAmountYuan)],
    [t('csv.completedTonnes'), fmt.num(s.completedTonnes)],
  ];
}

// ------------------------------------------------------------------ review

function review(ctx) {
  const list = h('div', { id: 'review-list' }, loading());
  const load = async () => {
    fill(list, loading());
    try {
      const pending = await listAll('/v1/institutions', 'institutions', { state: 'INSTITUTION_STATE_PENDING' });
      if (!ctx.current()) return;
      fill(list, pending.length
        ? pending.map((x) => reviewCard(x, load))
        : h('p', { class: 'empty-note', dataset: { testid: 'review-empty' } }, t('review.empty')));
    } catch (err) {
      fill(list, failed(err, load));
    }
  };
  load();
  return page(t('nav.review'), {
    intro: t('review.intro'),
    actions: h('button', { type: 'button', class: 'secondary', onclick: load }, t('common.refresh')),
  }, list);
}

function reviewCard(x, reload) {
  const act = (verb, danger) => async (e) => {
    const reason = await reasonDialog({
      title: t(`review.${verb}Title`, { name: orgName(x.nameZh, x.nameEn) }),
      prompt: t('review.reason'), confirm: t(`review.${verb}`), danger,
    });
    if (!reason) return;
    await busy(e.target, async () => {
      await post(`/v1/institutions/${p(x.id)}:${verb}`, { reason, version: x.version });
      toast(t(`review.${verb}Done`, { name: orgName(x.nameZh, x.nameEn) }));
      forgetDirectory();
      reload();
    });
  };
  return h('article', { class: 'card review', dataset: { testid: 'review-row', institutionId: x.id, creditCode: x.creditCode } },
    h('h2', {}, orgName(x.nameZh, x.nameEn), ' ', badge('InstitutionState', x.state)),
    dl([
      [t('inst.creditCode'), h('span', { class: 'mono' }, x.creditCode)],
      [t('inst.nameOther'), lang() === 'zh' ? x.nameEn : x.nameZh],
      [t('inst.kind'), label('InstitutionKind', x.kind)],
      [t('inst.tier'), label('Tier', x.tier)],
      [t('inst.zone'), label('Zone', x.zone)],
      [t('inst.address'), x.address],
      [t('inst.contact'), x.contact ? `${x.contact.name || ''} ${x.contact.phone || ''} ${x.contact.email || ''}` : '—'],
      [t('inst.licences'), (x.licences || []).map((l) => `${l.name} ${l.number || ''} (${l.issuer || ''})`).join('；') || '—'],
      [t('inst.registered'), fmt.dateTime(x.createTime)],
    ]),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'primary', dataset: { testid: 'approve' }, onclick: act('approve', false) }, t('review.approve')),
      h('button', { type: 'button', class: 'danger', dataset: { testid: 'reject' }, onclick: act('reject', true) }, t('review.reject'))));
}

// --------------------------------------------------------------- directory

function directoryPage(ctx) {
  const stats = h('div', { id: 'registry-stats' }, loading());
  const results = h('div', { id: 'directory-results' }, loading());
  const filters = h('form', { class: 'filters', id: 'directory-filters', role: 'search' },
    field({ label: t('inst.state'), name: 'state', type: 'select', options: enumOptions('InstitutionState', { empty: t('common.any') }) }),
    field({ label: t('inst.kind'), name: 'kind', type: 'select', options: enumOptions('InstitutionKind', { empty: t('common.any') }) }),
    field({ label: t('inst.zone'), name: 'zone', type: 'select', options: enumOptions('Zone', { empty: t('common.any') }) }),
    field({ label: t('directory.search'), name: 'name_contains', type: 'search' }),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, t('common.filter'))));
  let rows = [];
  const params = () => ({
    state: val(filters, 'state'), kind: val(filters, 'kind'), zone: val(filters, 'zone'), name_contains: val(filters, 'name_contains'),
  });
  const load = async () => {
    fill(results, loading());
    try {
      const [list, st] = await Promise.all([listAll('/v1/institutions', 'institutions', params()), get('/v1/registry/stats')]);
      if (!ctx.current()) return;
      rows = list;
      drawRegistryStats(stats, st);
      fill(results, directoryTable(list, load));
    } catch (err) {
      fill(results, failed(err, load));
    }
  };
  filters.addEventListener('submit', (e) => { e.preventDefault(); load(); });
  load();
  return page(t('nav.directory'), {
    intro: t('directory.intro'),
    actions: exportButton('institutions', () => institutionRows(rows)),
  }, stats, card(null, {}, filters, results));
}

function drawRegistryStats(el, st) {
  const byZone = (st.byZone || []).map((c) => ({ key: c.key, label: label('Zone', c.key), value: fmt.num(c.count), display: fmt.int(c.count) }));
  const byKind = (st.byKind || []).map((c) => ({ key: c.key, label: label('InstitutionKind', c.key), value: fmt.num(c.count), display: fmt.int(c.count) }));
  fill(el,
    h('div', { class: 'kpis' },
      kpiCard('institutions', fmt.int(st.total), fmt.num(st.total), t('kpi.institutionsSub', { active: fmt.int(st.active) })),
      h('div', { class: 'kpi', id: 'kpi-axisShare', dataset: { testid: 'kpi', kpi: 'axisShare', value: fmt.num(st.financeAxisShareBps) } },
        h('div', { class: 'kpi-label' }, t('kpi.axisShare')),
        h('div', { class: 'kpi-value' }, fmt.pct(st.financeAxisShareBps, 1)),
        fillBar(st.financeAxisShareBps, t('kpi.axisShareSub', { n: fmt.int(st.activeOnFinanceAxis), of: fmt.int(st.active) })))),
    h('div', { class: 'grid-2' },
      card(t('directory.byZone'), {}, barChart({ title: t('directory.byZone'), data: byZone, testid: 'chart-inst-zone', unitLabel: t('chart.count') })),
      card(t('directory.byKind'), {}, barChart({ title: t('directory.byKind'), data: byKind, testid: 'chart-inst-kind', unitLabel: t('chart.count') }))));
}

function directoryTable(list, reload) {
  const act = (x, verb, danger) => async (e) => {
    const reason = await reasonDialog({
      title: t(`review.${verb}Title`, { name: orgName(x.nameZh, x.nameEn) }),
      prompt: t('review.reason'), confirm: t(`review.${verb}`), danger,
    });
    if (!reason) return;
    await busy(e.target, async () => {
      await post(`/v1/institutions/${p(x.id)}:${verb}`, { reason, version: x.version });
      toast(t(`review.${verb}Done`, { name: orgName(x.nameZh, x.nameEn) }));
      forgetDirectory();
      reload();
    });
  };
  return table({
    testid: 'directory',
    caption: t('directory.count', { n: list.length }),
    rows: list,
    rowAttrs: (x) => ({ dataset: { testid: 'inst-row', institutionId: x.id, creditCode: x.creditCode, state: shortName('InstitutionState', x.state) } }),
    columns: [
      { label: t('inst.name'), render: (x) => h('span', {}, h('strong', {}, orgName(x.nameZh, x.nameEn)), h('br'), h('small', { class: 'mono muted' }, x.creditCode)) },
      { label: t('inst.kind'), render: (x) => `${label('InstitutionKind', x.kind)} · ${label('Tier', x.tier)}` },
      { label: t('inst.zone'), render: (x) => h('span', { class: shortName('Zone', x.zone) === 'FINANCE_AXIS' ? 'axis' : null }, label('Zone', x.zone)) },
      { label: t('inst.contact'), render: (x) => (x.contact ? [x.contact.name, h('br'), h('small', {}, x.contact.phone || x.contact.email || '')] : '—') },
      { label: t('inst.state'), render: (x) => badge('InstitutionState', x.state) },
      {
        label: t('common.actions'),
        render: (x) => {
          const st = shortName('InstitutionState', x.state);
          if (st === 'ACTIVE') return h('button', { type: 'button', class: 'danger-outline small', dataset: { testid: 'suspend' }, onclick: act(x, 'suspend', true) }, t('review.suspend'));
          if (st === 'SUSPENDED') return h('button', { type: 'button', class: 'secondary small', dataset: { testid: 'reinstate' }, onclick: act(x, 'reinstate', false) }, t('review.reinstate'));
          if (st === 'PENDING') return h('a', { href: '#/staff/review' }, t('review.toQueue'));
          return '—';
        },
      },
    ],
  });
}

function institutionRows(list) {
  return [
    [t('inst.creditCode'), t('csv.nameZh'), t('csv.nameEn'), t('inst.kind'), t('inst.tier'), t('inst.zone'), t('inst.state'), t('inst.address'), t('csv.contactName'), t('csv.phone'), t('csv.email'), t('inst.registered')],
    ...list.map((x) => [x.creditCode, x.nameZh, x.nameEn, label('InstitutionKind', x.kind), label('Tier', x.tier), label('Zone', x.zone),
      label('InstitutionState', x.state), x.address, x.contact?.name, x.contact?.phone, x.contact?.email, fmt.dateTime(x.createTime)]),
  ];
}

// ----------------------------------------------------------------- overdue

async function readOverdue() {
  const [matches, demands, dir] = await Promise.all([
    listAll('/v1/matches', 'matches', { overdue: true }),
    listAll('/v1/demands', 'demands', { needs_attention: true }),
    directory({ fresh: true }),
  ]);
  return { matches, demands, dir };
}

function overdueKind(m) {
  const out = [];
  if (m.responseOverdue) out.push(t('overdue.response'));
  if (m.outcomeOverdue) out.push(t('overdue.outcome'));
  return out.join(' · ') || t('overdue.response');
}

function lateBy(m) {
  const dl = m.outcomeOverdue ? m.outcomeDeadline : m.responseDeadline;
  if (!dl) return '—';
  const sec = (Date.now() - new Date(dl).getTime()) / 1000;
  return sec > 0 ? fmt.duration(`${sec}s`) : '—';
}

function overdue(ctx) {
  const body = h('div', { id: 'overdue-body' }, loading());
  let data = null;
  const load = async () => {
    fill(body, loading());
    try {
      data = await readOverdue();
      if (!ctx.current()) return;
      const { matches, demands, dir } = data;
      fill(body,
        card(t('overdue.matches', { n: matches.length }), { id: 'overdue-matches' },
          h('div', { class: 'toolbar' }, exportButton('overdue-matches', () => overdueRows(data))),
          table({
            testid: 'overdue',
            rows: matches,
            empty: t('overdue.none'),
            rowAttrs: (m) => ({ dataset: { testid: 'overdue-row', matchId: m.id } }),
            columns: [
              { label: t('feed.institution'), render: (m) => instCell(dir, m) },
              { label: t('feed.category'), render: (m) => label('ProductCategory', m.category) },
              { label: t('feed.sector'), render: (m) => label('Sector', m.sector) },
              { label: t('overdue.kind'), render: (m) => h('span', { class: 'warn' }, overdueKind(m)) },
              { label: t('overdue.deadline'), render: (m) => fmt.dateTime(m.outcomeOverdue ? m.outcomeDeadline : m.responseDeadline) },
              { label: t('overdue.late'), render: (m) => lateBy(m) },
              { label: t('feed.state'), render: (m) => badge('MatchState', m.state) },
              { label: t('feed.demand'), render: (m) => h('span', { class: 'mono' }, fmt.shortId(m.demandId)) },
            ],
          })),
        card(t('overdue.demands', { n: demands.length }), { id: 'attention-demands' },
          h('div', { class: 'toolbar' }, exportButton('demands-attention', () => attentionRows(data))),
          table({
            testid: 'attention',
            rows: demands,
            empty: t('overdue.noDemands'),
            rowAttrs: (d) => ({ dataset: { testid: 'attention-row', demandId: d.id } }),
            columns: [
              { label: t('demand.enterprise'), render: (d) => h('span', {}, d.enterpriseName, h('br'), h('small', { class: 'mono muted' }, d.enterpriseCreditCode)) },
              { label: t('demand.kind'), render: (d) => label('DemandKind', d.kind) },
              { label: t('demand.amount'), render: (d) => fmt.money(d.amountYuan), num: true },
              { label: t('demand.sector'), render: (d) => label('Sector', d.sector) },
              { label: t('demand.attention'), render: (d) => d.attentionReason || '—' },
              { label: t('demand.state'), render: (d) => badge('DemandState', d.state) },
              { label: t('demand.posted'), render: (d) => fmt.dateTime(d.createTime) },
            ],
          })));
    } catch (err) {
      fill(body, failed(err, load));
    }
  };
  load();
  return page(t('nav.overdue'), {
    intro: t('overdue.intro'),
    actions: h('button', { type: 'button', class: 'secondary', onclick: load }, t('common.refresh')),
  }, body);
}

function instCell(dir, m) {
  const x = dir.byId.get(m.institutionId);
  return h('span', {},
    h('strong', {}, instName(dir, m.institutionId, m.institutionCreditCode)),
    x && x.contact ? [h('br'), h('small', {}, [x.contact.name, x.contact.phone, x.contact.email].filter(Boolean).join(' · '))] : null);
}

function overdueRows({ matches, dir }) {
  return [
    [t('csv.matchId'), t('csv.demandId'), t('feed.institution'), t('inst.creditCode'), t('csv.contactName'), t('csv.phone'), t('csv.email'),
      t('feed.category'), t('feed.sector'), t('overdue.kind'), t('csv.responseDeadline'), t('csv.outcomeDeadline'), t('feed.state')],
    ...matches.map((m) => {
      const x = dir.byId.get(m.institutionId);
      return [m.id, m.demandId, instName(dir, m.institutionId, m.institutionCreditCode), m.institutionCreditCode, x?.contact?.name, x?.contact?.phone, x?.contact?.email,
        label('ProductCategory', m.category), label('Sector', m.sector), overdueKind(m), fmt.dateTime(m.responseDeadline), fmt.dateTime(m.outcomeDeadline), label('MatchState', m.state)];
    }),
  ];
}

function attentionRows({ demands }) {
  return [
    [t('csv.demandId'), t('demand.enterprise'), t('inst.creditCode'), t('demand.kind'), t('csv.amountYuan'), t('demand.sector'), t('demand.attention'), t('demand.state'), t('demand.posted')],
    ...demands.map((d) => [d.id, d.enterpriseName, d.enterpriseCreditCode, label('DemandKind', d.kind), fmt.num(d.amountYuan), label('Sector', d.sector),
      d.attentionReason, label('DemandState', d.state), fmt.dateTime(d.createTime)]),
  ];
}

// ------------------------------------------------------------------ talent

function fillBps(e) {
  const cap = fmt.num(e.capacity);
  return cap ? Math.round((fmt.num(e.seats?.taken) / cap) * 10000) : 0;
}

function monthStart(d) {
  // The first day of d's month, Beijing time, as a key "YYYY-MM".
  return fmt.date(d).slice(0, 7);
}

function addMonths(key, n) {
  const [y, m] = key.split('-').map(Number);
  const d = new Date(Date.UTC(y, m - 1 + n, 1));
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

// monthName: "2026年11月" / "November 2026".
function monthName(key) {
  const [y, m] = key.split('-').map(Number);
  return new Intl.DateTimeFormat(lang() === 'zh' ? 'zh-CN' : 'en-GB', { year: 'numeric', month: 'long', timeZone: 'UTC' })
    .format(new Date(Date.UTC(y, m - 1, 1)));
}

function calendar(events, monthKey) {
  const [y, m] = monthKey.split('-').map(Number);
  const first = new Date(Date.UTC(y, m - 1, 1));
  const days = new Date(Date.UTC(y, m, 0)).getUTCDate();
  const lead = (first.getUTCDay() + 6) % 7; // weeks start on Monday
  const byDay = new Map();
  for (const e of events) {
    const k = fmt.dayKey(e.startTime);
    if (!byDay.has(k)) byDay.set(k, []);
    byDay.get(k).push(e);
  }
  const today = fmt.dayKey(new Date());
  const cells = [];
  for (let i = 0; i < lead; i += 1) cells.push(h('div', { class: 'cal-cell pad', 'aria-hidden': 'true' }));
  for (let d = 1; d <= days; d += 1) {
    const key = `${monthKey}-${String(d).padStart(2, '0')}`;
    const evs = byDay.get(key) || [];
    cells.push(h('div', { class: `cal-cell${key === today ? ' today' : ''}${evs.length ? ' has' : ''}`, dataset: { day: key } },
      h('div', { class: 'cal-day' }, h('span', { class: 'sr-only' }, `${monthKey}-`), String(d)),
      evs.map((e) => h('div', { class: `cal-ev st-${shortName('EventState', e.state).toLowerCase()}`, dataset: { testid: 'cal-event', eventId: e.id }, title: orgName(e.titleZh, e.titleEn) },
        h('span', { class: 'cal-time' }, fmt.time(e.startTime).slice(0, 5)), ' ',
        h('span', { class: 'cal-title' }, orgName(e.titleZh, e.titleEn)),
        fillBar(fillBps(e), fmt.pct(fillBps(e), 0))))));
  }
  while (cells.length % 7) cells.push(h('div', { class: 'cal-cell pad', 'aria-hidden': 'true' }));
  const weekdays = lang() === 'zh' ? ['一', '二', '三', '四', '五', '六', '日'] : ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
  return h('div', { class: 'calendar', role: 'group', 'aria-label': monthName(monthKey) },
    weekdays.map((w) => h('div', { class: 'cal-head', 'aria-hidden': 'true' }, w)),
    cells);
}

function talent(ctx) {
  const body = h('div', { id: 'talent-body' }, loading());
  let events = [];
  let month = monthStart(new Date());
  const calBox = h('div', { id: 'calendar' });
  const monthLabel = h('strong', { id: 'cal-month', 'aria-live': 'polite' });
  const drawCal = () => {
    monthLabel.textContent = monthName(month);
    fill(calBox, calendar(events.filter((e) => monthStart(e.startTime) === month), month));
  };
  const load = async () => {
    fill(body, loading());
    try {
      const [list, stats] = await Promise.all([listAll('/v1/talent/events', 'events'), get('/v1/talent/stats')]);
      if (!ctx.current()) return;
      events = list.sort((a, b) => String(a.startTime).localeCompare(String(b.startTime)));
      // Open on the month of the next event to come, if the current one has none.
      const now = new Date().toISOString();
      const next = events.find((e) => e.startTime >= now);
      if (next && !events.some((e) => monthStart(e.startTime) === month)) month = monthStart(next.startTime);
      drawCal();
      fill(body,
        h('div', { class: 'kpis' },
          kpiCard('events', fmt.int(stats.events), fmt.num(stats.events), t('kpi.eventsSub', { capacity: fmt.int(stats.capacity), taken: fmt.int(stats.taken) })),
          kpiCard('fillRate', fmt.pct(stats.fillRateBps, 1), fmt.num(stats.fillRateBps), t('kpi.fillRateSub', { waitlist: fmt.int(stats.waitlistLength) })),
          kpiCard('attendance', fmt.pct(stats.attendanceRateBps, 1), fmt.num(stats.attendanceRateBps), t('kpi.attendanceSub', { attended: fmt.int(stats.attended) })),
          kpiCard('hours', fmt.int(stats.hoursCredited), fmt.num(stats.hoursCredited), t('kpi.hoursSub'))),
        card(t('talent.calendar'), { id: 'calendar-card' },
          h('div', { class: 'toolbar' },
            h('button', { type: 'button', class: 'secondary', id: 'cal-prev', 'aria-label': t('talent.prevMonth'), onclick: () => { month = addMonths(month, -1); drawCal(); } }, '‹'),
            monthLabel,
            h('button', { type: 'button', class: 'secondary', id: 'cal-next', 'aria-label': t('talent.nextMonth'), onclick: () => { month = addMonths(month, 1); drawCal(); } }, '›')),
          calBox),
        card(t('talent.events', { n: events.length }), { id: 'events-card' },
          h('div', { class: 'toolbar' }, exportButton('talent-events', () => eventRows(events))),
          table({
            testid: 'events',
            rows: events,
            rowAttrs: (e) => ({ dataset: { testid: 'event-row', eventId: e.id } }),
            columns: [
              { label: t('event.start'), render: (e) => fmt.dateTime(e.startTime) },
              { label: t('event.title'), render: (e) => h('span', {}, h('strong', {}, orgName(e.titleZh, e.titleEn)), h('br'), h('small', {}, e.hostName || t('event.district'))) },
              { label: t('event.kind'), render: (e) => label('EventKind', e.kind) },
              { label: t('event.seats'), num: true, render: (e) => `${fmt.int(e.seats?.taken)} / ${fmt.int(e.capacity)}` },
              { label: t('event.waitlisted'), num: true, render: (e) => fmt.int(e.seats?.waitlisted) },
              { label: t('event.fill'), render: (e) => fillBar(fillBps(e), fmt.pct(fillBps(e), 0)) },
              { label: t('event.state'), render: (e) => badge('EventState', e.state) },
            ],
          })));
    } catch (err) {
      fill(body, failed(err, load));
    }
  };
  load();
  return page(t('nav.talent'), { intro: t('talent.intro') }, body);
}

function eventRows(events) {
  return [
    [t('csv.eventId'), t('csv.titleZh'), t('csv.titleEn'), t('event.kind'), t('event.host'), t('event.start'), t('event.end'), t('event.venue'),
      t('event.capacity'), t('event.taken'), t('event.waitlisted'), t('event.attended'), t('csv.fillRatePct'), t('event.hours'), t('event.state')],
    ...events.map((e) => [e.id, e.titleZh, e.titleEn, label('EventKind', e.kind), e.hostName || t('event.district'), fmt.dateTime(e.startTime), fmt.dateTime(e.endTime), e.venue,
      fmt.num(e.capacity), fmt.num(e.seats?.taken), fmt.num(e.seats?.waitlisted), fmt.num(e.seats?.attended), (fillBps(e) / 100).toFixed(1), fmt.num(e.trainingHours), label('EventState', e.state)]),
  ];
}

// ----------------------------------------------------------------- reports

function reports() {
  const item = (key, build) => h('li', { class: 'report' },
    h('div', {}, h('strong', {}, t(`reports.${key}`)), h('br'), h('small', { class: 'muted' }, t(`reports.${key}Hint`))),
    h('button', {
      type: 'button', class: 'secondary', dataset: { testid: `report-${key}` },
      onclick: (e) => busy(e.currentTarget, async () => { download(key, await build()); toast(t('reports.done')); }),
    }, t('common.exportCsv')));
  return page(t('nav.reports'), { intro: t('reports.intro') },
    card(null, {}, h('ul', { class: 'reports' },
      item('kpis', kpiRows),
      item('volume', async () => volumeRows(await get('/v1/matches/stats'))),
      item('institutions', async () => institutionRows(await listAll('/v1/institutions', 'institutions'))),
      item('overdue', async () => overdueRows(await readOverdue())),
      item('attention', async () => attentionRows(await readOverdue())),
      item('events', async () => eventRows(await listAll('/v1/talent/events', 'events'))))));
}
