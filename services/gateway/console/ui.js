// ui.js: the console's shared pieces: page frame, tables, form fields with
// their error slots, state badges, a reason dialog, toasts, busy buttons.

import { h, fill, uid } from './dom.js';
import { t, label, enumValues, shortName } from './i18n.js';
import { ApiError } from './api.js';

// page is a view's frame: a heading, an optional toolbar, the content.
export function page(title, { actions, intro } = {}, ...children) {
  return h('section', { class: 'page', 'aria-labelledby': 'page-title' },
    h('div', { class: 'page-head' },
      h('h1', { id: 'page-title', tabindex: '-1' }, title),
      actions ? h('div', { class: 'page-actions' }, actions) : null),
    intro ? h('p', { class: 'intro' }, intro) : null,
    children);
}

// card is a titled block inside a page.
export function card(title, attrs, ...children) {
  const id = uid('card');
  return h('section', { class: 'card', 'aria-labelledby': id, ...attrs },
    title ? h('h2', { id }, title) : null,
    children);
}

// table renders rows with columns [{label, render(row), num, nowrap, wide}].
// rowAttrs gives each <tr> its attributes (data-testid and friends). With
// pageSize, the first pageSize rows show and a button adds more.
export function table({ columns, rows, rowAttrs, empty, caption, testid, id, pageSize }) {
  const cls = (c) => [c.num ? 'num' : '', c.nowrap ? 'nowrap' : '', c.wide ? 'wide' : ''].join(' ').trim() || null;
  const rowOf = (r) => h('tr', rowAttrs ? rowAttrs(r) : {},
    columns.map((c) => h('td', { class: cls(c), 'data-label': c.label }, c.render(r))));
  const tbody = h('tbody', {});
  let shown = 0;
  const more = h('button', { type: 'button', class: 'secondary more', dataset: { testid: 'show-more' } });
  const showMore = () => {
    const next = pageSize ? rows.slice(shown, shown + pageSize) : rows.slice(shown);
    for (const r of next) tbody.appendChild(rowOf(r));
    shown += next.length;
    more.hidden = shown >= rows.length;
    more.textContent = t('common.showMore', { n: rows.length - shown });
  };
  more.addEventListener('click', showMore);
  if (rows.length) showMore();
  else {
    tbody.appendChild(h('tr', { class: 'empty' }, h('td', { colspan: columns.length }, empty || t('common.none'))));
    more.hidden = true;
  }
  return h('div', { class: 'table-wrap' },
    h('table', { dataset: { testid, total: rows.length }, id },
      caption ? h('caption', {}, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: cls(c) }, c.label)))),
      tbody),
    more);
}

// badge shows an enum value as a coloured label.
export function badge(type, value) {
  const short = shortName(type, value);
  return h('span', { class: `badge badge-${short.toLowerCase()}`, dataset: { state: short } }, label(type, value));
}

// field is a labelled input with its error slot. opts: label, name (the
// proto field path, so server violations land next to it), type, value,
// required, hint, attrs (extra input attributes), options (for selects:
// [{value, label}] or a ready <select>).
export function field(opts) {
  const id = opts.id || uid('in');
  const errId = `${id}-err`;
  const hintId = opts.hint ? `${id}-hint` : null;
  const describedBy = [hintId, errId].filter(Boolean).join(' ');
  let input;
  if (opts.type === 'select') {
    input = h('select', { id, name: opts.name, required: opts.required, 'aria-describedby': describedBy, ...opts.attrs },
      (opts.options || []).map((o) => (o.group
        ? h('optgroup', { label: o.group }, o.options.map((x) => h('option', { value: x.value, selected: x.value === opts.value }, x.label)))
        : h('option', { value: o.value, selected: o.value === opts.value }, o.label))));
  } else if (opts.type === 'textarea') {
    input = h('textarea', { id, name: opts.name, required: opts.required, rows: opts.rows || 3, 'aria-describedby': describedBy, ...opts.attrs });
    input.value = opts.value ?? '';
  } else if (opts.type === 'checkbox') {
    input = h('input', { id, type: 'checkbox', name: opts.name, checked: !!opts.value, 'aria-describedby': describedBy, ...opts.attrs });
    return h('div', { class: 'field field-check', dataset: { field: opts.name } },
      input, h('label', { for: id }, opts.label),
      hintId ? h('small', { id: hintId, class: 'hint' }, opts.hint) : null,
      h('small', { id: errId, class: 'field-error', 'aria-live': 'polite' }));
  } else {
    input = h('input', {
      id, name: opts.name, type: opts.type || 'text', required: opts.required,
      autocomplete: opts.autocomplete || 'off', 'aria-describedby': describedBy, ...opts.attrs,
    });
    input.value = opts.value ?? '';
  }
  return h('div', { class: `field ${opts.wide ? 'wide' : ''}`, dataset: { field: opts.name } },
    h('label', { for: id }, opts.label, opts.required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null),
    input,
    hintId ? h('small', { id: hintId, class: 'hint' }, opts.hint) : null,
    h('small', { id: errId, class: 'field-error', 'aria-live': 'polite' }));
}

// enumOptions lists an enum's values for a select; empty adds a first
// "any"/"choose" option with value ''.
export function enumOptions(type, { empty, values } = {}) {
  const vals = values || enumValues(type);
  const out = vals.map((v) => ({ value: v, label: label(type, v) }));
  if (empty) out.unshift({ value: '', label: empty });
  return out;
}

// checkGroup is a fieldset of checkboxes over enum values.
export function checkGroup({ legend, name, type, values, selected = [], hint }) {
  const vals = values || enumValues(type);
  const errId = uid('err');
  return h('fieldset', { class: 'field checks wide', dataset: { field: name }, 'aria-describedby': errId },
    h('legend', {}, legend),
    hint ? h('small', { class: 'hint' }, hint) : null,
    h('div', { class: 'check-grid' }, vals.map((v) => {
      const id = uid('cb');
      return h('span', { class: 'check' },
        h('input', { type: 'checkbox', id, name, value: v, checked: selected.includes(v) }),
        h('label', { for: id }, label(type, v)));
    })),
    h('small', { id: errId, class: 'field-error', 'aria-live': 'polite' }));
}

// checked returns the values of a form's checked boxes named name.
export function checked(form, name) {
  return Array.from(form.querySelectorAll(`input[type=checkbox][name="${name}"]`)).filter((x) => x.checked).map((x) => x.value);
}

// val reads a named control of a form.
export function val(form, name) {
  const el = form.elements.namedItem(name);
  if (!el) return '';
  if (el.type === 'checkbox') return el.checked;
  return typeof el.value === 'string' ? el.value.trim() : '';
}

// errorBox is the place a form shows what went wrong.
export function errorBox() {
  return h('div', { class: 'error-box', role: 'alert', dataset: { testid: 'form-error' }, hidden: true });
}

// clearErrors empties a form's error box and field errors.
export function clearErrors(form) {
  for (const e of form.querySelectorAll('.field-error')) e.textContent = '';
  for (const e of form.querySelectorAll('[aria-invalid]')) e.removeAttribute('aria-invalid');
  const box = form.querySelector('.error-box');
  if (box) { box.hidden = true; box.replaceChildren(); }
}

// showError puts err's message in the form's error box and each field
// violation next to its field (matched by the input's name, the proto field
// path; "regions[2]" lands on "regions"; "demand.amount_yuan" on the field
// named so, or on "amount_yuan").
export function showError(form, err) {
  clearErrors(form);
  const box = form.querySelector('.error-box');
  const unplaced = [];
  const violations = err instanceof ApiError ? err.violations : [];
  for (const v of violations) {
    const slot = findField(form, v.field || '');
    if (slot) {
      const e = slot.querySelector('.field-error');
      e.textContent = v.description;
      const input = slot.querySelector('input,select,textarea');
      if (input) input.setAttribute('aria-invalid', 'true');
    } else {
      unplaced.push(v);
    }
  }
  if (box) {
    fill(box,
      h('strong', {}, errorTitle(err)), ' ', err.message || String(err),
      unplaced.length ? h('ul', {}, unplaced.map((v) => h('li', {}, h('code', {}, v.field), ': ', v.description))) : null,
      err.requestId ? h('small', { class: 'muted' }, ` (${t('error.request')} ${err.requestId})`) : null);
    box.hidden = false;
  }
  const first = form.querySelector('[aria-invalid=true]');
  if (first) first.focus();
}

function findField(form, path) {
  const candidates = [path, path.replace(/\[\d+\]/g, '')];
  // Drop leading segments: "demand.amount_yuan" -> "amount_yuan".
  const segs = path.replace(/\[\d+\]/g, '').split('.');
  for (let i = 1; i < segs.length; i += 1) candidates.push(segs.slice(i).join('.'));
  for (const c of candidates) {
    const slot = form.querySelector(`[data-field="${CSS.escape(c)}"]`);
    if (slot) return slot;
  }
  return null;
}

export function errorTitle(err) {
  if (err instanceof ApiError && err.status) {
    const key = `status.${err.status}`;
    const txt = t(key, {}, '');
    return txt || err.status;
  }
  return t('error.generic');
}

// toast shows a short message in the page's live region.
export function toast(msg, kind = 'ok') {
  const region = document.getElementById('toasts');
  if (!region) return;
  const el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status', dataset: { testid: 'toast' } }, msg);
  region.appendChild(el);
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 4000);
}

// toastError reports a failed action that has no form of its own.
export function toastError(err) {
  toast(`${errorTitle(err)}: ${err.message || err}`, 'error');
}

// busy runs fn with button disabled; errors go to onError (default: toast).
export async function busy(button, fn, onError = toastError) {
  if (button) { button.disabled = true; button.setAttribute('aria-busy', 'true'); }
  try {
    return await fn();
  } catch (err) {
    onError(err);
    return undefined;
  } finally {
    if (button) { button.disabled = false; button.removeAttribute('aria-busy'); }
  }
}

// reasonDialog asks for a reason (required) and resolves to it, or null when
// cancelled. It is a modal <dialog>: focus moves into it and Escape closes it.
export function reasonDialog({ title, prompt, confirm, danger, value = '' }) {
  return new Promise((resolve) => {
    const input = h('textarea', { id: 'dialog-reason', name: 'reason', rows: 3, required: true, maxlength: 500 });
    input.value = value;
    const err = h('small', { class: 'field-error', id: 'dialog-reason-err', 'aria-live': 'polite' });
    input.setAttribute('aria-describedby', 'dialog-reason-err');
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'dialog-title', dataset: { testid: 'reason-dialog' } },
      h('form', { method: 'dialog' },
        h('h2', { id: 'dialog-title' }, title),
        h('div', { class: 'field wide' }, h('label', { for: 'dialog-reason' }, prompt), input, err),
        h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'secondary', id: 'dialog-cancel', onclick: () => dlg.close('cancel') }, t('common.cancel')),
          h('button', { type: 'submit', class: danger ? 'danger' : 'primary', id: 'dialog-confirm', value: 'ok' }, confirm))));
    dlg.querySelector('form').addEventListener('submit', (e) => {
      if (!input.value.trim()) {
        e.preventDefault();
        err.textContent = t('common.reasonRequired');
        input.setAttribute('aria-invalid', 'true');
        input.focus();
      }
    });
    dlg.addEventListener('close', () => {
      const ok = dlg.returnValue === 'ok';
      const reason = input.value.trim();
      dlg.remove();
      resolve(ok && reason ? reason : null);
    });
    document.body.appendChild(dlg);
    dlg.showModal();
    input.focus();
  });
}

// loading is what a view shows while it reads.
export function loading() {
  return h('p', { class: 'loading', role: 'status' }, t('common.loading'));
}

// failed is what a view shows when its read failed.
export function failed(err, retry) {
  return h('div', { class: 'error-box', role: 'alert' },
    h('strong', {}, errorTitle(err)), ' ', err.message || String(err), ' ',
    retry ? h('button', { type: 'button', class: 'secondary', onclick: retry }, t('common.retry')) : null);
}

// dl is a definition list of [label, value] pairs.
export function dl(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}

// reasons shows a match's checks and score parts.
export function reasons(checks, scoreParts) {
  return h('div', { class: 'reasons', dataset: { testid: 'reasons' } },
    h('ul', { class: 'checks' }, (checks || []).map((c) => h('li', { class: c.ok ? 'ok' : 'fail', dataset: { check: c.name } },
      h('span', { class: 'mark', 'aria-hidden': 'true' }, c.ok ? '✓' : '✗'),
      h('span', { class: 'sr-only' }, c.ok ? t('reason.met') : t('reason.notMet')),
      h('strong', {}, label('Check', c.name)), ' ',
      h('span', { class: 'detail' }, c.detail || '')))),
    scoreParts && scoreParts.length ? h('table', { class: 'score-parts' },
      h('caption', {}, t('reason.scoreParts')),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, t('reason.part')), h('th', { scope: 'col', class: 'num' }, t('reason.weight')),
        h('th', { scope: 'col', class: 'num' }, t('reason.value')), h('th', { scope: 'col', class: 'num' }, t('reason.contribution')),
        h('th', { scope: 'col' }, t('reason.detail')))),
      h('tbody', {}, scoreParts.map((sp) => h('tr', {},
        h('td', {}, label('ScorePart', sp.name)),
        h('td', { class: 'num' }, fmt2(sp.weight)),
        h('td', { class: 'num' }, fmt2(sp.value)),
        h('td', { class: 'num' }, fmt2(sp.contribution)),
        h('td', {}, sp.detail || ''))))) : null);
}

export function fmt2(x) {
  const n = Number(x || 0);
  return n.toFixed(2);
}
