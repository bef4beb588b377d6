// data.js: reads several views share, kept for a short while so moving
// between pages does not re-read the whole directory each time.

import { listAll, get, p } from './api.js';
import { orgName } from './i18n.js';

const TTL_MS = 15000;
let dirCache = null; // {at, promise}

// directory returns the institutions the caller may see (staff: all; others:
// the ACTIVE directory plus their own), as {list, byId, byCode}.
export function directory({ fresh = false } = {}) {
  if (!fresh && dirCache && Date.now() - dirCache.at < TTL_MS) return dirCache.promise;
  const promise = listAll('/v1/institutions', 'institutions').then((list) => {
    const byId = new Map(list.map((x) => [x.id, x]));
    const byCode = new Map(list.map((x) => [x.creditCode, x]));
    return { list, byId, byCode };
  });
  dirCache = { at: Date.now(), promise };
  promise.catch(() => { dirCache = null; });
  return promise;
}

export function forgetDirectory() {
  dirCache = null;
}

// instName names an institution by id (or credit code) from a directory.
export function instName(dir, id, code) {
  const x = (dir && (dir.byId.get(id) || dir.byCode.get(code))) || null;
  return x ? orgName(x.nameZh, x.nameEn) : (code || id || '—');
}

// myInstitution finds the signed-in institution's own record (its
// organisation is its credit code), or null when it has not registered.
export async function myInstitution(org, { fresh = false } = {}) {
  const dir = await directory({ fresh });
  return dir.byCode.get(org) || null;
}

const productCache = new Map();

// product reads a product once per page life; a product the caller may no
// longer see (paused, retired) resolves to null.
export function product(id) {
  if (!productCache.has(id)) {
    const pr = get(`/v1/products/${p(id)}`).then((r) => r.product).catch(() => null);
    productCache.set(id, pr);
  }
  return productCache.get(id);
}

export function forgetProducts() {
  productCache.clear();
}
