// The experiments list: newest first (the server's order), one page at a time with the
// server's opaque cursors (a stack of them for "newer"), each row with its status, a live
// progress bar (runs done / total), the best risk, the share of spurious minima with its 95%
// interval and the verdict counts — all from the list answer itself, whose items carry the
// computed summary (without the per-run stop-reason scan of GET one). The page is re-fetched
// every few seconds with If-None-Match while any experiment on it is still queued or running,
// so an idle list costs one 304 per poll.
import { getJSON, q } from './api.js';
import { ago, anyVerdict, badge, basisText, h, labelCounts, progressBar, risk, setChildren, shareWithCi, shortId, unavailable } from './util.js';

const PAGE = 20;
const POLL_MS = 2000;

function summaryCells(e) {
  const s = e.summary || {};
  const hasShare = s.spurious_share !== undefined && s.spurious_share !== null;
  const counts = s.label_counts || s.verdicts;
  let share;
  if (!hasShare) share = h('span', { class: 'note' }, e.status === 'finished' || e.status === 'cancelled' ? '—' : 'pending');
  else if (!s.minima_count) share = h('span', { class: 'note', title: 'no finished run is known to be a minimum (no verdict, and none stopped at the gradient tolerance)' }, 'no minima');
  else share = shareWithCi(s.spurious_share, s.spurious_share_ci);
  const shareTitle = hasShare
    ? `${s.spurious_count ?? '?'} spurious of ${s.minima_count ?? '?'} minima; share of finished runs with its 95% Wilson interval; minima judged ${basisText(s.spurious_basis) || '—'}`
    : 'no finished run yet';
  return [
    h('td', { class: 'num best-risk' }, risk(s.best_risk)),
    h('td', { class: 'num spurious-share', title: shareTitle }, share),
    h('td', { class: 'hide-narrow verdicts' }, anyVerdict(counts) || (counts && counts.none) ? labelCounts(counts) : h('span', { class: 'note' }, 'pending')),
  ];
}

function datasetText(e) {
  if (!e.dataset_id) return '';
  return e.dataset_id;
}

function row(e) {
  const bar = progressBar(e.progress);
  return h(
    'tr',
    { 'data-id': e.id },
    h(
      'td',
      {},
      h('a', { href: `#/experiments/${encodeURIComponent(e.id)}` }, shortId(e.id)),
      h('div', { class: 'note' }, e.summary && e.summary.origin === 'construction' ? `construction: ${String(e.summary.kind || '').replaceAll('_', ' ')} · ` : '', ago(e.created_at)),
    ),
    h('td', {}, badge(e.status)),
    h('td', {}, bar),
    ...summaryCells(e),
    h('td', { class: 'hide-narrow mono' }, e.dataset_id ? h('a', { href: `#/datasets/${encodeURIComponent(e.dataset_id)}` }, datasetText(e)) : ''),
  );
}

export function mountList(root) {
  const cursors = [null]; // cursors[k] = the cursor of page k
  let page = 0;
  let timer = null;
  let destroyed = false;
  const body = h('tbody');
  const table = h(
    'table',
    {},
    h('caption', { class: 'hidden' }, 'Experiments, newest first'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col' }, 'Experiment'),
        h('th', { scope: 'col' }, 'Status'),
        h('th', { scope: 'col' }, 'Runs done'),
        h('th', { scope: 'col', class: 'num' }, 'Best risk'),
        h('th', { scope: 'col', class: 'num' }, 'Spurious share'),
        h('th', { scope: 'col', class: 'hide-narrow' }, 'Verdicts'),
        h('th', { scope: 'col', class: 'hide-narrow' }, 'Dataset'),
      ),
    ),
    body,
  );
  const status = h('p', { class: 'note', 'aria-live': 'polite' }, 'Loading experiments…');
  const prev = h('button', { type: 'button', onclick: () => turn(-1) }, '← Newer');
  const next = h('button', { type: 'button', onclick: () => turn(1) }, 'Older →');
  const pageLabel = h('span', { class: 'note' });
  setChildren(
    root,
    h('h1', {}, 'Experiments', h('span', { class: 'spacer' }), h('a', { class: 'button primary', href: '#/new' }, 'New experiment')),
    h('section', { class: 'panel', 'aria-label': 'Experiments' }, status, h('div', { class: 'table-wrap' }, table), h('div', { class: 'pager' }, prev, next, pageLabel)),
  );

  async function load() {
    clearTimeout(timer);
    const url = q('/v1/experiments', { limit: PAGE, cursor: cursors[page] });
    try {
      const { data, changed } = await getJSON(url);
      if (destroyed) return;
      if (changed) {
        setChildren(body, data.items.map(row));
        if (!data.items.length)
          setChildren(body, h('tr', {}, h('td', { colspan: 7 }, page === 0 ? h('span', {}, 'No experiments yet. ', h('a', { href: '#/new' }, 'Submit the first one.')) : 'No more experiments.')));
        cursors[page + 1] = data.next_cursor;
      }
      status.textContent = '';
      prev.disabled = page === 0;
      next.disabled = !cursors[page + 1];
      pageLabel.textContent = `page ${page + 1}`;
      const live = data.items.some((e) => e.status === 'queued' || e.status === 'running');
      if (live) timer = setTimeout(load, POLL_MS);
    } catch (e) {
      if (destroyed) return;
      setChildren(status, unavailable('The experiments could not be loaded', e));
      timer = setTimeout(load, POLL_MS * 3);
    }
  }

  function turn(d) {
    if (d > 0 && !cursors[page + 1]) return;
    page = Math.max(0, page + d);
    load();
  }

  load();
  return {
    destroy() {
      destroyed = true;
      clearTimeout(timer);
    },
  };
}

