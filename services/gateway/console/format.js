// format.js: how numbers, money, rates, times and durations read, in the
// current language. The gateway sends 64-bit integers as strings (protojson)
// and leaves zero values out, so every helper takes a string, a number or
// undefined.

import { lang } from './i18n.js';

// Times read in the district's own time zone, whatever the browser's is.
const TZ = 'Asia/Shanghai';

// num turns a protojson integer (string or number, maybe absent) into a
// Number. Amounts here stay far below 2^53.
export function num(v) {
  if (v === undefined || v === null || v === '') return 0;
  const n = Number(v);
  return Number.isFinite(n) ? n : 0;
}

function locale() {
  return lang() === 'zh' ? 'zh-CN' : 'en-GB';
}

// int: 12,345.
export function int(v) {
  return new Intl.NumberFormat(locale()).format(num(v));
}

function dec(n, digits) {
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(n);
}

// money: whole yuan. Chinese reads large sums in 万 and 亿; English with
// thousands separators.
export function money(v) {
  const n = num(v);
  if (lang() === 'zh') {
    const a = Math.abs(n);
    if (a >= 1e8) return `${dec(n / 1e8, 2)} 亿元`;
    if (a >= 1e4) return `${dec(n / 1e4, 2)} 万元`;
    return `${dec(n, 0)} 元`;
  }
  return `¥${dec(n, 0)}`;
}

// moneyRange: "500 万元 – 6,000 万元".
export function moneyRange(r) {
  if (!r) return '—';
  return `${money(r.minYuan)} – ${money(r.maxYuan)}`;
}

// tonnes: whole tonnes.
export function tonnes(v) {
  return lang() === 'zh' ? `${int(v)} 吨` : `${int(v)} t`;
}

// pct: basis points as a percentage, 4.35%.
export function pct(bps, digits = 2) {
  return `${dec(num(bps) / 100, digits)}%`;
}

// rateRange: an annual rate range in basis points.
export function rateRange(r) {
  if (!r) return '—';
  const lo = num(r.minBps);
  const hi = num(r.maxBps);
  return lo === hi ? pct(lo) : `${pct(lo)} – ${pct(hi)}`;
}

// months: 12 个月 / 12 months.
export function months(v) {
  const n = num(v);
  return lang() === 'zh' ? `${n} 个月` : `${n} ${n === 1 ? 'month' : 'months'}`;
}

export function termRange(r) {
  if (!r || (!num(r.minMonths) && !num(r.maxMonths))) return lang() === 'zh' ? '不限期限' : 'no term';
  return lang() === 'zh' ? `${num(r.minMonths)}–${num(r.maxMonths)} 个月` : `${num(r.minMonths)}–${num(r.maxMonths)} months`;
}

// price: a product's price, rate range or fee.
export function price(p) {
  if (!p) return '—';
  if (p.annualRate) return (lang() === 'zh' ? '年化 ' : 'p.a. ') + rateRange(p.annualRate);
  if (p.feeYuan !== undefined) return (lang() === 'zh' ? '服务费 ' : 'fee ') + money(p.feeYuan);
  return '—';
}

function parts(ts) {
  const d = ts instanceof Date ? ts : new Date(ts);
  if (Number.isNaN(d.getTime())) return null;
  const f = new Intl.DateTimeFormat('en-CA', {
    timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
  }).formatToParts(d);
  const o = {};
  for (const p of f) o[p.type] = p.value;
  return o;
}

// dateTime: 2025-04-02 14:30 (Beijing time).
export function dateTime(ts) {
  if (!ts) return '—';
  const p = parts(ts);
  return p ? `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}` : '—';
}

// time: 14:30:05, for the live feed.
export function time(ts) {
  if (!ts) return '—';
  const p = parts(ts);
  return p ? `${p.hour}:${p.minute}:${p.second}` : '—';
}

// date: 2025-04-02.
export function date(ts) {
  if (!ts) return '—';
  const p = parts(ts);
  return p ? `${p.year}-${p.month}-${p.day}` : '—';
}

// dayKey: the Beijing calendar day of ts, "2025-04-02".
export function dayKey(ts) {
  return date(ts);
}

// seconds parses a protojson Duration ("3600.5s").
export function seconds(d) {
  if (!d) return 0;
  const n = parseFloat(String(d));
  return Number.isFinite(n) ? n : 0;
}

// duration: a protojson Duration as "2 天 3 小时" / "2 d 3 h".
export function duration(d) {
  if (d === undefined || d === null || d === '') return '—';
  let sec = Math.round(seconds(d));
  const zh = lang() === 'zh';
  if (sec < 60) return zh ? `${sec} 秒` : `${sec} s`;
  const days = Math.floor(sec / 86400); sec -= days * 86400;
  const hrs = Math.floor(sec / 3600); sec -= hrs * 3600;
  const mins = Math.floor(sec / 60);
  const out = [];
  if (days) out.push(zh ? `${days} 天` : `${days} d`);
  if (hrs) out.push(zh ? `${hrs} 小时` : `${hrs} h`);
  if (mins && !days) out.push(zh ? `${mins} 分` : `${mins} min`);
  return out.join(' ') || (zh ? '0 分' : '0 min');
}

// toRFC3339 turns a <input type=datetime-local> value (read as Beijing
// time) into an RFC 3339 timestamp.
export function localInputToRFC3339(v) {
  if (!v) return undefined;
  const d = new Date(`${v}:00+08:00`);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

// rfc3339ToLocalInput is the reverse, for pre-filling a form.
export function rfc3339ToLocalInput(ts) {
  if (!ts) return '';
  const p = parts(ts);
  return p ? `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}` : '';
}

// short shows the tail of a long id (ULIDs share their time prefix).
export function shortId(id) {
  if (!id) return '—';
  return id.length > 10 ? `…${id.slice(-8)}` : id;
}
