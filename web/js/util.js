// Small DOM and formatting helpers shared by every view. Text always goes in through text nodes
// (never innerHTML), so ids, messages and labels from the server cannot inject markup; styles
// come from classes only, because the Content-Security-Policy forbids inline style attributes.

/** Create an element: h('a', {href: '#/', class: 'x', onclick: fn}, 'text', child, [more]). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replace the children of el. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A number in a short readable form; '—' for null/undefined/NaN. */
export function num(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  if (typeof v !== 'number') return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e5) return Number(v.toPrecision(digits + 1)).toString();
  return v.toExponential(digits - 1);
}

/** A risk: exponent form below 1e-3, so that 1.2e-9 and 3.4e-12 read as different. */
export function risk(v) {
  return num(v, 3);
}

/** A share in [0,1] as a percentage. */
export function pct(v, digits = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  return `${(100 * v).toFixed(digits)}%`;
}

/** "12.0% [8–17%]" for a share with its confidence interval (either part may be missing). */
export function shareWithCi(share, ci) {
  if (share === null || share === undefined) return '—';
  if (Array.isArray(ci) && ci.length === 2 && ci[0] !== null && ci[1] !== null)
    return `${pct(share)} [${Math.floor(100 * ci[0] + 1e-9)}–${Math.ceil(100 * ci[1] - 1e-9)}%]`;
  return pct(share);
}

/** "3 min ago" for an RFC 3339 time; '' when absent. */
export function ago(iso) {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(t).toISOString().slice(0, 10);
}

/** Runs that are done (terminal) out of all, from an experiment's progress object. */
export function progressCounts(p) {
  if (!p) return { done: 0, total: 0 };
  const done = (p.finished || 0) + (p.failed || 0) + (p.cancelled || 0);
  const total = p.total ?? done + (p.queued || 0) + (p.running || 0);
  return { done, total };
}

/** A progress bar (role=progressbar) that update() can refresh in place. */
export function progressBar(progress) {
  const fill = h('span', { class: 'bar-fill' });
  const label = h('span', { class: 'bar-label' });
  const bar = h('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0 }, fill);
  const el = h('div', { class: 'progress' }, bar, label);
  el.update = (p) => {
    const { done, total } = progressCounts(p);
    const frac = total > 0 ? done / total : 0;
    // width through a CSS custom property set from script: allowed under style-src 'self'
    fill.style.setProperty('--frac', String(frac));
    bar.setAttribute('aria-valuemax', String(total));
    bar.setAttribute('aria-valuenow', String(done));
    bar.setAttribute('aria-valuetext', `${done} of ${total} runs done`);
    const extra = [];
    if (p && p.running) extra.push(`${p.running} running`);
    if (p && p.failed) extra.push(`${p.failed} failed`);
    if (p && p.cancelled) extra.push(`${p.cancelled} cancelled`);
    label.textContent = `${done} / ${total}` + (extra.length ? ` (${extra.join(', ')})` : '');
  };
  el.update(progress);
  return el;
}

/** A status badge. */
export function badge(status) {
  return h('span', { class: `badge badge-${status || 'unknown'}` }, status || 'unknown');
}

const LABEL_TEXT = {
  certified_minimum: 'certified minimum',
  likely_minimum: 'likely minimum',
  saddle: 'saddle',
  not_converged: 'not converged',
};

/** A verdict label as a badge ('pending' when the run has none yet). */
export function verdictBadge(label) {
  if (!label) return h('span', { class: 'badge badge-pending', title: 'no verdict yet' }, 'pending');
  return h('span', { class: `badge verdict-${label}` }, LABEL_TEXT[label] || label);
}

// the server's label_counts keys besides the labels: runs without a verdict, and labels this
// dashboard does not know
const COUNT_TEXT = { ...LABEL_TEXT, none: 'no verdict', other: 'other label' };
const COUNT_ORDER = ['certified_minimum', 'likely_minimum', 'saddle', 'not_converged', 'other', 'none'];

/** "certified minimum 12 · saddle 3 · no verdict 2" from a {label: count} object (the server's
 * label_counts, or the older verdicts map); '—' when every count is zero. */
export function labelCounts(counts) {
  if (!counts || typeof counts !== 'object') return '—';
  const rank = (k) => (COUNT_ORDER.includes(k) ? COUNT_ORDER.indexOf(k) : COUNT_ORDER.length);
  const parts = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .sort((a, b) => rank(a[0]) - rank(b[0]))
    .map(([k, n]) => `${COUNT_TEXT[k] || k.replaceAll('_', ' ')} ${n}`);
  return parts.length ? parts.join(' · ') : '—';
}

/** True when some run of a label_counts object has a verdict (any key but "none"). */
export function anyVerdict(counts) {
  return !!counts && typeof counts === 'object' && Object.entries(counts).some(([k, n]) => k !== 'none' && n > 0);
}

/** How the server decided which runs are minima (summary.spurious_basis, run.spurious.basis). */
export function basisText(basis) {
  if (basis === 'verdict') return 'by verdict';
  if (basis === 'stationary') return 'by stationarity (stopped at the gradient tolerance; no verdict yet)';
  if (basis === 'mixed') return 'by verdict where there is one, else by stationarity';
  return '';
}

/** The query parameters of the current hash ("#/compare?a=1&b=2" → {a: '1', b: '2'}). */
export function hashQuery() {
  const i = location.hash.indexOf('?');
  return Object.fromEntries(new URLSearchParams(i < 0 ? '' : location.hash.slice(i + 1)));
}

/** A panel: a titled section with an optional note line. */
export function panel(title, ...children) {
  return h('section', { class: 'panel', 'aria-label': title }, h('h2', {}, title), ...children);
}

/** A note for something the server does not (yet) provide: says what and why, never fakes. */
export function unavailable(what, err) {
  const why = err && err.status ? ` (the server answered ${err.status}${err.detail ? `: ${err.detail}` : ''})` : err ? ` (${err.message})` : '';
  return h('p', { class: 'note unavailable', role: 'note' }, `${what}${why}.`);
}

/** Throttle fn to at most one call per `ms`, always running the last call. */
export function throttle(fn, ms) {
  let timer = null;
  let pending = false;
  return (...args) => {
    if (timer) {
      pending = args;
      return;
    }
    fn(...args);
    timer = setTimeout(function tick() {
      timer = null;
      if (pending) {
        const a = pending;
        pending = false;
        fn(...a);
        timer = setTimeout(tick, ms);
      }
    }, ms);
  };
}

/** A short id for tables ("run_3fa9…c1"), full id in the title. */
export function shortId(id) {
  if (!id) return '—';
  const s = id.length > 14 ? `${id.slice(0, 10)}…${id.slice(-3)}` : id;
  return h('span', { class: 'mono', title: id }, s);
}
