// charts.js: hand-made SVG bar charts. No library: a chart is a handful of
// <rect> and <text> elements with a <title> each, scaled into a viewBox so it
// shrinks with the screen. Every chart comes with its figures as a table
// (for screen readers and for copying).

import { h, s, uid } from './dom.js';
import { t } from './i18n.js';

const W = 440;
const LABEL_W = 150;
const VALUE_W = 96;
const ROW_H = 26;
const BAR_H = 16;

// barChart draws horizontal bars. data: [{key, label, value, display}],
// value a number (the bar's length), display its text.
export function barChart({ title, data, testid, unitLabel }) {
  const id = uid('chart');
  const rows = [...data].sort((a, b) => b.value - a.value);
  const max = Math.max(1, ...rows.map((r) => r.value));
  const height = Math.max(1, rows.length) * ROW_H + 8;
  const barSpace = W - LABEL_W - VALUE_W;
  const svg = s('svg', {
    viewBox: `0 0 ${W} ${height}`, class: 'chart', role: 'img',
    'aria-labelledby': `${id}-t`, preserveAspectRatio: 'xMinYMin meet',
  },
  s('title', { id: `${id}-t` }, title),
  rows.length ? null : s('text', { x: 8, y: 20, class: 'chart-empty' }, t('chart.empty')),
  rows.map((r, i) => {
    const y = i * ROW_H + 4;
    const w = r.value > 0 ? Math.max(2, (r.value / max) * barSpace) : 0;
    return s('g', { class: 'bar', 'data-key': r.key },
      s('title', {}, `${r.label}: ${r.display}`),
      s('text', { x: LABEL_W - 8, y: y + BAR_H - 3, 'text-anchor': 'end', class: 'chart-label' }, clip(r.label, 20)),
      s('rect', { x: LABEL_W, y, width: w.toFixed(1), height: BAR_H, rx: 2, class: `chart-bar c${i % 6}` }),
      s('text', { x: LABEL_W + w + 6, y: y + BAR_H - 3, class: 'chart-value' }, r.display));
  }));
  return h('figure', { class: 'chart-fig', dataset: { testid } },
    svg,
    h('details', { class: 'chart-data' },
      h('summary', {}, t('chart.showData')),
      h('table', {},
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, title), h('th', { scope: 'col', class: 'num' }, unitLabel || t('chart.value')))),
        h('tbody', {}, rows.map((r) => h('tr', {}, h('td', {}, r.label), h('td', { class: 'num' }, r.display)))))));
}

// clip shortens a label to about n half-width characters (a CJK character
// counts two); the bar's <title> and the table beside keep the full text.
function clip(text, n) {
  let width = 0;
  let out = '';
  for (const ch of String(text)) {
    width += ch.charCodeAt(0) > 0x2e80 ? 2 : 1;
    if (width > n) return `${out}…`;
    out += ch;
  }
  return out;
}

// fillBar is a small inline meter of a share in basis points.
export function fillBar(bps, labelText) {
  const pct = Math.max(0, Math.min(10000, Number(bps) || 0)) / 100;
  const cls = pct >= 90 ? 'full' : pct >= 50 ? 'mid' : 'low';
  return h('span', { class: 'fill' },
    s('svg', { viewBox: '0 0 100 8', class: 'fill-bar', 'aria-hidden': 'true', preserveAspectRatio: 'none' },
      s('rect', { x: 0, y: 0, width: 100, height: 8, class: 'fill-bg' }),
      s('rect', { x: 0, y: 0, width: pct.toFixed(1), height: 8, class: `fill-fg ${cls}` })),
    h('span', { class: 'fill-text' }, labelText));
}
