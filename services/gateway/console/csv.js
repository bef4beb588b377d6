// csv.js: CSV export of the tables a district reports upward. Built in the
// browser from what the console already read; UTF-8 with a byte-order mark
// so spreadsheet programs read the Chinese right; a cell starting with = + -
// or @ is prefixed with ' so no spreadsheet runs it as a formula.

import { h } from './dom.js';
import { t } from './i18n.js';
import { busy } from './ui.js';

function cell(v) {
  let str = v === undefined || v === null ? '' : String(v);
  if (/^[=+\-@\t\r]/.test(str) && !/^-?\d+(\.\d+)?$/.test(str)) str = `'${str}`;
  return /[",\n\r]/.test(str) ? `"${str.replace(/"/g, '""')}"` : str;
}

// toCSV turns rows (arrays of cells) into CSV text, CRLF line ends.
export function toCSV(rows) {
  return rows.map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n';
}

// download saves rows as name-YYYYMMDD.csv. The last export is also kept
// in window.__lastCsv for the browser tests.
export function download(name, rows) {
  const stamp = new Date().toISOString().slice(0, 10).replace(/-/g, '');
  const filename = `${name}-${stamp}.csv`;
  const text = toCSV(rows);
  window.__lastCsv = { filename, text };
  const url = URL.createObjectURL(new Blob(['\ufeff', text], { type: 'text/csv;charset=utf-8' }));
  const a = h('a', { href: url, download: filename, hidden: true });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// exportButton is a button that builds rows (maybe asynchronously) and
// downloads them.
export function exportButton(name, build, testid) {
  return h('button', {
    type: 'button', class: 'secondary export', dataset: { testid: testid || `export-${name}` },
    onclick: (e) => busy(e.currentTarget, async () => download(name, await build())),
  }, t('common.exportCsv'));
}
