// Talks to runq's API: relative URLs (so it works on any node of a cluster and behind a
// proxy), the API key as a Bearer header (never in a URL), errors as ApiError with the
// server's `detail`.

const KEY = 'runq.apiKey';

// What /health said: does this server want a key?
export const auth = { required: false };

const hooks = { unauthorized: () => {}, connection: () => {} };

// unauthorized(): a request with the saved key got 401 (key forgotten, ask again).
// connection(ok): whether the server answers at all.
export function setHooks(h) {
  Object.assign(hooks, h);
}

// The key lives in sessionStorage only: gone when the tab closes, never in a cookie,
// localStorage or a URL.
export function getKey() {
  try {
    return sessionStorage.getItem(KEY) || '';
  } catch {
    return '';
  }
}

export function saveKey(key) {
  sessionStorage.setItem(KEY, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY);
}

// Whether requests can be made now: no key needed, or one saved.
export function ready() {
  return !auth.required || getKey() !== '';
}

export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail);
    this.status = status;
    this.body = body;
  }
}

// The `detail` of an error body as one line: a string, or FastAPI's 422 list.
export function detailText(body, status) {
  const d = body && body.detail;
  if (typeof d === 'string') return d;
  if (Array.isArray(d)) {
    return d.map((e) => {
      const loc = Array.isArray(e.loc) ? e.loc.filter((p) => p !== 'body').join('.') : '';
      return (loc ? `${loc}: ` : '') + (e.msg || e.type || 'invalid');
    }).join('; ');
  }
  return `HTTP ${status}`;
}

function headers(key, extra) {
  const h = { Accept: 'application/json', ...extra };
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

// fetch() with the key; `key` overrides the saved one (checking a key before saving it,
// in which case a 401 is the caller's to report and does not trigger the hook).
async function send(path, { method = 'GET', body, signal, key, accept, extra = {} } = {}) {
  const explicit = key !== undefined;
  if (body !== undefined) extra = { ...extra, 'Content-Type': 'application/json' };
  const init = {
    method,
    headers: headers(explicit ? key : getKey(), extra),
    signal,
    cache: 'no-store',
    credentials: 'same-origin',
  };
  if (accept) init.headers.Accept = accept;
  if (body !== undefined) init.body = JSON.stringify(body);
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e.name !== 'AbortError') hooks.connection(false);
    throw e;
  }
  hooks.connection(true);
  if (res.status === 401 && !explicit) hooks.unauthorized();
  return res;
}

// A JSON call: resolves to the parsed body (null for 204), rejects with ApiError.
export async function call(path, opts = {}) {
  const res = await send(path, opts);
  const text = await res.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = { detail: text };
    }
  }
  if (!res.ok) throw new ApiError(res.status, detailText(body, res.status), body);
  return body;
}

// The Response of a stream request (its body unread); rejects with ApiError unless 200.
export async function openStream(path, { signal, lastEventId } = {}) {
  const extra = lastEventId ? { 'Last-Event-ID': String(lastEventId) } : {};
  const res = await send(path, { signal, accept: 'text/event-stream', extra });
  if (!res.ok) {
    let body = null;
    try {
      body = await res.json();
    } catch { /* not JSON */ }
    throw new ApiError(res.status, detailText(body, res.status), body);
  }
  return res;
}

// Builds `path?a=1&b=2`, leaving out empty values.
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== '' && v !== null && v !== undefined) q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

// Runs fn every `ms` (after the previous run finished: never two at once) while the API
// is usable. Returns {stop, now}: now() runs it at once (after a user action).
export function every(ms, fn) {
  let timer = null;
  let stopped = false;
  let running = false;
  let again = false;
  async function tick() {
    clearTimeout(timer);
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      if (ready()) await fn();
    } catch {
      // fn reports its own errors on the page; a poll must outlive them.
    } finally {
      running = false;
      if (!stopped) timer = setTimeout(tick, again ? 0 : ms);
      again = false;
    }
  }
  tick();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
    now: tick,
  };
}
