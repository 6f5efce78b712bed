// The experiments list: newest first (the server's order), one page at a time with the
// server's opaque cursors (a stack of them for "newer"), each row with its status, a live
// progress bar (runs done / total), the best risk and the share of spurious minima. The page
// is re-fetched every few seconds with If-None-Match while any experiment on it is still
// queued or running, so an idle list costs one 304 per poll.
import { get, getJSON, q } from './api.js';
import { ago, badge, h, labelCounts, progressBar, risk, setChildren, shareWithCi, shortId, unavailable } from './util.js';

const PAGE = 20;
const POLL_MS = 2000;

function summaryCells(e) {
  const s = e.summary || {};
  const hasShare = s.spurious_share !== undefined && s.spurious_share !== null;
  const verdicts = s.label_counts || s.verdicts;
  const anyVerdict = verdicts && Object.values(verdicts).some((n) => n > 0);
  return [
    h('td', { class: 'num best-risk' }, risk(s.best_risk)),
    h(
      'td',
      { class: 'num', title: hasShare ? 'share of runs that ended in a spurious minimum, with its confidence interval' : 'no spurious-minimum analysis from the server yet' },
      hasShare ? shareWithCi(s.spurious_share, s.spurious_share_ci) : h('span', { class: 'note' }, 'pending'),
    ),
    h('td', { class: 'hide-narrow' }, anyVerdict ? labelCounts(verdicts) : h('span', { class: 'note' }, 'pending')),
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
    h('td', {}, h('a', { href: `#/experiments/${encodeURIComponent(e.id)}` }, shortId(e.id)), h('div', { class: 'note' }, ago(e.created_at))),
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
        fillSummaries(data.items);
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

  // The list answer may carry no summary (the server computes it per experiment on GET); then
  // each row's summary comes from its own conditional GET, at most PAGE of them.
  async function fillSummaries(items) {
    const missing = items.filter((e) => !e.summary);
    await Promise.all(
      missing.map(async (e) => {
        try {
          const full = await get(`/v1/experiments/${encodeURIComponent(e.id)}`);
          if (destroyed || !full.summary) return;
          const tr = body.querySelector(`tr[data-id="${CSS.escape(e.id)}"]`);
          if (tr) tr.replaceWith(row({ ...e, summary: full.summary }));
        } catch {
          /* the row keeps its placeholders */
        }
      }),
    );
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

