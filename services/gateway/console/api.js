// api.js: every call to the desk goes through here. The bearer token lives in
// sessionStorage and travels only in the Authorization header: never in a
// URL, never in a log line. Errors come back as ApiError with the gateway's
// JSON error body: {code, status, message, violations: [{field,
// description}], request_id}.

const SESSION_KEY = 'carbondesk.session';
const TIMEOUT_MS = 20000;

// session returns {token, role, org, name, subject} or null.
export function session() {
  try {
    const raw = sessionStorage.getItem(SESSION_KEY);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

export function setSession(s) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
}

export function clearSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

// ApiError is a failed call: HTTP status, gRPC status name, message a person
// can act on, field violations.
export class ApiError extends Error {
  constructor(httpStatus, body) {
    const b = body && typeof body === 'object' ? body : {};
    super(b.message || `HTTP ${httpStatus}`);
    this.name = 'ApiError';
    this.httpStatus = httpStatus;
    this.code = b.code;
    this.status = b.status || '';
    this.violations = Array.isArray(b.violations) ? b.violations : violationsFromDetails(b.details);
    this.requestId = b.request_id || b.requestId || '';
  }
}

// The gateway flattens violations; a plain grpc-gateway error keeps them in
// google.rpc.BadRequest details. Read both.
function violationsFromDetails(details) {
  const out = [];
  for (const d of Array.isArray(details) ? details : []) {
    for (const v of d.fieldViolations || d.field_violations || []) {
      out.push({ field: v.field, description: v.description });
    }
  }
  return out;
}

// query turns {page_size: 20, states: ['A', 'B'], empty: ''} into
// "?page_size=20&states=A&states=B"; empty values are left out.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    if (Array.isArray(v)) {
      for (const x of v) if (x !== undefined && x !== null && x !== '') q.append(k, String(x));
    } else {
      q.append(k, String(v));
    }
  }
  const str = q.toString();
  return str ? `?${str}` : '';
}

// p encodes one path segment.
export function p(id) {
  return encodeURIComponent(String(id ?? ''));
}

function authHeaders(extra) {
  const h = { Accept: 'application/json', ...extra };
  const s = session();
  if (s && s.token) h.Authorization = `Bearer ${s.token}`;
  return h;
}

async function readError(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  const err = new ApiError(resp.status, body);
  if (resp.status === 401) {
    window.dispatchEvent(new CustomEvent('carbondesk:unauthenticated', { detail: err.message }));
  }
  return err;
}

// call sends one request and returns the parsed JSON body.
export async function call(method, path, { params, body, signal, token } = {}) {
  const timeout = AbortSignal.timeout(TIMEOUT_MS);
  const headers = authHeaders(body !== undefined ? { 'Content-Type': 'application/json' } : {});
  if (token) headers.Authorization = `Bearer ${token}`;
  const resp = await fetch(path + query(params), {
    method,
    headers,
    body: body !== undefined ? JSON.stringify(body) : undefined,
    signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    cache: 'no-store',
    credentials: 'omit',
  });
  if (!resp.ok) throw await readError(resp);
  if (resp.status === 204) return {};
  const text = await resp.text();
  return text ? JSON.parse(text) : {};
}

export const get = (path, params, opts) => call('GET', path, { ...opts, params });
export const post = (path, body, opts) => call('POST', path, { ...opts, body: body ?? {} });

// listAll pages through a List RPC (at most maxPages pages of 200) and
// returns the concatenated items of field.
export async function listAll(path, field, params = {}, maxPages = 10) {
  const out = [];
  let token = '';
  for (let i = 0; i < maxPages; i += 1) {
    const r = await get(path, { ...params, page_size: 200, page_token: token });
    out.push(...(r[field] || []));
    token = r.nextPageToken || '';
    if (!token) break;
  }
  return out;
}

// decodeToken reads (without verifying: the server does that) the claims of
// a pasted token, to show who it is for.
export function decodeToken(tok) {
  const parts = String(tok).split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeURIComponent(Array.from(atob(b64 + '==='.slice((b64.length + 3) % 4)))
      .map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join(''));
    return JSON.parse(json);
  } catch {
    return null;
  }
}

// Watch reads GET /v1/matches:watch, newline-delimited JSON, with fetch() and
// a ReadableStream so the token stays in the header. It reconnects after a
// break with start_time = the last event_time seen (replayed events are
// dropped by event id), backing off from 1 s to 15 s.
export class Watch {
  constructor({ filters = {}, since, onEvent, onStatus }) {
    this.filters = filters;
    this.since = since; // RFC 3339; undefined: only new changes
    this.onEvent = onEvent;
    this.onStatus = onStatus || (() => {});
    this.seen = new Set();
    this.seenOrder = [];
    this.stopped = false;
    this.ctrl = null;
    this.backoff = 1000;
    this.status = 'connecting';
  }

  start() {
    this.loop();
    return this;
  }

  stop() {
    this.stopped = true;
    if (this.ctrl) this.ctrl.abort();
  }

  setStatus(s, detail) {
    this.status = s;
    this.onStatus(s, detail);
  }

  remember(id) {
    this.seen.add(id);
    this.seenOrder.push(id);
    if (this.seenOrder.length > 5000) this.seen.delete(this.seenOrder.shift());
  }

  async loop() {
    while (!this.stopped) {
      this.setStatus(this.status === 'live' ? 'reconnecting' : this.status);
      try {
        await this.once();
        // The server ended the stream: reconnect at once.
        this.backoff = 1000;
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof ApiError && (err.httpStatus === 401 || err.httpStatus === 403)) {
          this.setStatus('stopped', err.message);
          return;
        }
        this.setStatus('reconnecting', err && err.message);
        await new Promise((r) => setTimeout(r, this.backoff));
        this.backoff = Math.min(this.backoff * 2, 15000);
      }
    }
  }

  async once() {
    this.ctrl = new AbortController();
    const params = { ...this.filters, start_time: this.since };
    const resp = await fetch(`/v1/matches:watch${query(params)}`, {
      headers: authHeaders({ Accept: 'application/json' }),
      signal: this.ctrl.signal,
      cache: 'no-store',
      credentials: 'omit',
    });
    if (!resp.ok) throw await readError(resp);
    this.setStatus('live');
    this.backoff = 1000;
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) this.line(line);
      }
    }
    if (buf.trim()) this.line(buf.trim());
  }

  line(line) {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    if (msg.error) {
      // A stream's last line: {"error": {code, message, ...}} with a gRPC code.
      const http = { 16: 401, 7: 403, 8: 429 }[msg.error.code] || 503;
      throw new ApiError(http, msg.error);
    }
    const ev = msg.result;
    if (!ev || !ev.match) return;
    if (ev.eventTime) this.since = ev.eventTime;
    if (ev.eventId) {
      if (this.seen.has(ev.eventId)) return;
      this.remember(ev.eventId);
    }
    this.onEvent(ev);
  }
}
