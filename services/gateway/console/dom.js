// dom.js: a small element builder. Every text the console shows goes in as a
// text node, never as HTML, so data from the desk cannot inject markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

// h builds an element: h('button', {class: 'primary', onclick: fn}, 'Save').
// Attributes: class, dataset ({testid: 'x'} -> data-testid), on<event>
// handlers, boolean attributes (true sets, false/null/undefined omits),
// anything else as an attribute. Children: strings, numbers, nodes, arrays,
// null/undefined/false (skipped).
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

// s builds an SVG element the same way.
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'dataset') {
      for (const [dk, dv] of Object.entries(v)) {
        if (dv !== null && dv !== undefined) el.dataset[dk] = String(dv);
      }
    } else if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'value' && 'value' in el && el.namespaceURI !== SVG_NS) {
      el.value = v;
    } else if (k === 'checked' || k === 'selected') {
      el[k] = !!v;
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// clear empties an element and fills it with children.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// place makes parent's children exactly nodes, in order, moving only the
// ones out of place: a node that stays where it is is not touched.
export function place(parent, nodes) {
  nodes.forEach((n, i) => {
    const at = parent.childNodes[i];
    if (at !== n) parent.insertBefore(n, at || null);
  });
  while (parent.childNodes.length > nodes.length) parent.lastChild.remove();
  return parent;
}

// keyed returns a renderer for a list that changes live: called with the
// current items, it returns their elements, running render(item) only for
// an item whose key is new or whose stamp (its version, and whatever else
// the row shows) has changed. With place, a live update elsewhere in the
// list leaves a row alone: a click pressed on its button is not lost to a
// replacement under the pointer, and an open <details> stays open.
// reset() makes the next call render every item afresh (a reload).
export function keyed(keyOf, stampOf, render) {
  let rows = new Map(); // key -> { stamp, el }
  const rowsOf = (items) => {
    const next = new Map();
    const els = items.map((it) => {
      const k = keyOf(it);
      const stamp = stampOf(it);
      let row = rows.get(k);
      if (!row || row.stamp !== stamp) row = { stamp, el: render(it) };
      next.set(k, row);
      return row.el;
    });
    rows = next;
    return els;
  };
  // reset forgets the rows: the next call renders every item afresh.
  rowsOf.reset = () => { rows = new Map(); };
  return rowsOf;
}

// uid returns a fresh id for label/input pairs.
let seq = 0;
export function uid(prefix = 'f') {
  seq += 1;
  return `${prefix}-${seq}`;
}
