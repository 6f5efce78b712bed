// The dashboard's client of the public basinlab API (api/openapi.yaml), written to double as a
// reference client: conditional GETs with the server's ETags (If-None-Match → 304 reuses the
// last body), RFC 9457 problems turned into errors that keep `errors[].pointer`, paged lists
// followed through `next_cursor`, Idempotency-Key on submissions, and experiment progress from
// Server-Sent Events with a fallback to ETag polling when the stream cannot be used.

/** An API failure: HTTP status plus the problem document (title, detail, errors[]). */
export class ApiError extends Error {
  constructor(status, problem, url) {
    const detail = problem && (problem.detail || problem.title);
    super(detail ? `${status}: ${detail}` : `HTTP ${status} for ${url}`);
    this.status = status;
    this.problem = problem || null;
    this.detail = detail || '';
    this.url = url;
  }
}

// url → {etag, data}: the last 200 of each GET, reused when the server answers 304.
const cache = new Map();
const CACHE_MAX = 500;

async function problemOf(res) {
  const ct = res.headers.get('content-type') || '';
  if (ct.includes('json')) {
    try {
      return await res.json();
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * GET a JSON resource. Returns {data, changed, etag}: changed is false when the server said
 * 304 (data is then the cached body). `cache: 'no-store'` keeps the browser's HTTP cache out of
 * the way so that this code sees the 304 itself.
 */
export async function getJSON(url, { signal } = {}) {
  const prev = cache.get(url);
  const headers = { Accept: 'application/json' };
  if (prev) headers['If-None-Match'] = prev.etag;
  const res = await fetch(url, { headers, signal, cache: 'no-store' });
  if (res.status === 304 && prev) return { data: prev.data, changed: false, etag: prev.etag };
  if (!res.ok) throw new ApiError(res.status, await problemOf(res), url);
  const data = await res.json();
  const etag = res.headers.get('ETag');
  if (etag) {
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value);
    cache.set(url, { etag, data });
  }
  return { data, changed: true, etag };
}

/** GET and return just the body. */
export async function get(url, opts) {
  return (await getJSON(url, opts)).data;
}

/** POST JSON; returns {status, data, location}. Problems become ApiError. */
export async function postJSON(url, body, extraHeaders = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...extraHeaders },
    body: JSON.stringify(body),
    cache: 'no-store',
  });
  if (!res.ok) throw new ApiError(res.status, await problemOf(res), url);
  const text = await res.text();
  return { status: res.status, data: text ? JSON.parse(text) : null, location: res.headers.get('Location') };
}

/** Build "/v1/x?a=1&b=2" skipping null/undefined/'' values. */
export function q(path, params = {}) {
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') sp.set(k, v);
  const s = sp.toString();
  return s ? `${path}?${s}` : path;
}

/**
 * Follow a paged list ({items, next_cursor}) until maxItems; onPage(items) sees each page as it
 * arrives so a view can draw progressively. Returns all items.
 */
export async function getAllPages(path, params, { maxItems = 10000, pageSize = 1000, signal, onPage } = {}) {
  const all = [];
  let cursor = null;
  do {
    const page = await get(q(path, { ...params, limit: Math.min(pageSize, maxItems - all.length), cursor }), { signal });
    all.push(...page.items);
    if (onPage) onPage(page.items, all);
    cursor = page.next_cursor;
  } while (cursor && all.length < maxItems);
  return { items: all, truncated: !!cursor };
}

const TERMINAL = new Set(['finished', 'cancelled']);

/**
 * Follow an experiment live. Handlers: onEvent(type, data) for each SSE event ("status",
 * "run_finished", ...), onExperiment(exp) whenever a fresh experiment body is fetched,
 * onMode(mode) with 'stream' | 'polling' | 'done'. Uses EventSource on
 * /v1/experiments/{id}/events (the browser resumes with Last-Event-ID after a drop); when the
 * stream errors out before the experiment is terminal, it falls back to polling the
 * experiment with If-None-Match every pollMs. Returns {close()}.
 */
export function follow(expId, { onEvent, onExperiment, onMode, pollMs = 1500 } = {}) {
  const url = `/v1/experiments/${encodeURIComponent(expId)}`;
  let es = null;
  let timer = null;
  let closed = false;
  let errors = 0;

  const refresh = async () => {
    try {
      const { data, changed } = await getJSON(url);
      if (changed && onExperiment) onExperiment(data);
      return data;
    } catch (e) {
      if (onEvent) onEvent('error', { message: e.message });
      return null;
    }
  };

  const finish = () => {
    if (es) es.close();
    es = null;
    clearTimeout(timer);
    if (!closed && onMode) onMode('done');
    closed = true;
  };

  const poll = async () => {
    if (closed) return;
    const exp = await refresh();
    if (exp && TERMINAL.has(exp.status)) finish();
    else if (!closed) timer = setTimeout(poll, pollMs);
  };

  const startPolling = () => {
    if (es) es.close();
    es = null;
    if (onMode) onMode('polling');
    poll();
  };

  if (typeof EventSource === 'undefined') {
    startPolling();
  } else {
    es = new EventSource(`${url}/events`);
    let opened = false;
    es.onopen = () => {
      opened = true;
      errors = 0;
    };
    if (onMode) onMode('stream');
    const handle = (type) => (ev) => {
      errors = 0;
      let data = null;
      try {
        data = JSON.parse(ev.data);
      } catch {
        data = ev.data;
      }
      if (onEvent) onEvent(type, data, ev.lastEventId);
      if (type === 'status' && data && TERMINAL.has(data.status)) {
        // the terminal status comes before the last runs' events only for cancels; one final
        // fetch makes the view consistent either way
        refresh().then((exp) => {
          if (!exp || TERMINAL.has(exp.status)) finish();
        });
      }
    };
    for (const type of ['status', 'run_finished', 'progress', 'experiment_finished'])
      es.addEventListener(type, handle(type));
    es.onerror = async () => {
      if (closed) return;
      // The server ends the stream when the experiment is done; EventSource would reconnect
      // forever, so look at the experiment first.
      const exp = await refresh();
      if (exp && TERMINAL.has(exp.status)) return finish();
      // A stream that never opened (blocked by a proxy, refused) will not start working by
      // retrying: poll at once. One that worked and dropped is resumed by EventSource itself
      // (Last-Event-ID), unless it keeps failing.
      errors++;
      if (!opened || !es || es.readyState === EventSource.CLOSED || errors >= 3) startPolling();
    };
  }
  refresh().then((exp) => {
    if (exp && TERMINAL.has(exp.status)) finish();
  });
  return { close: () => { closed = true; if (es) es.close(); es = null; clearTimeout(timer); } };
}

/** A random Idempotency-Key for one submission (kept across retries of the same form). */
export function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
