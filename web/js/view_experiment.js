// One experiment: live progress (Server-Sent Events, falling back to ETag polling), the
// histogram of final risks with the basins marked and spurious basins in red, the basins table
// (GET /v1/experiments/{id}/basins, with its clustering tolerances in the address), the runs
// (paged by the server, filterable by the server's spurious flag), risk-vs-step trajectories of
// selected runs (downsampled by the server, log scale) and, for one selected run, its verdict
// with the evidence behind it (certificate_json.h) and its spurious judgement with the witness.
//
// The selection lives in the hash (#/experiments/ID?run=RUN&plot=R1,R2&risk_tol=&func_tol=) so
// that it survives a reload and can be linked; a change of it reaches update() without
// refetching the rest. What the server has not decided (a verdict not yet computed, a flag it
// reports as unknown) is shown as such, never filled in.
import { ApiError, get, getAllPages, getJSON, follow, postJSON, q } from './api.js';
import { riskHistogram, trajectoryChart, destroyChart } from './charts.js';
import { go, toast } from './nav.js';
import {
  ago, anyVerdict, badge, basisText, h, labelCounts, num, panel, progressBar, risk, setChildren, shareWithCi, shortId, throttle, unavailable, verdictBadge,
} from './util.js';
import { spuriousBlocks, verdictBlocks } from './verdict.js';

const RUNS_PAGE = 25;
const MAX_HIST_RUNS = 10000;
const TRAJ_POINTS = 400;
const MAX_PLOTTED = 8;
const BASINS_PAGE = 50;

function describeArch(a) {
  if (!a || !Array.isArray(a.layers)) return '';
  const parts = [];
  for (const l of a.layers) {
    if (l.type === 'dense') parts.push(`${l.units}`);
    else if (l.type === 'activation') parts.push(l.kind === 'leaky_relu' ? `leaky(${l.slope})` : l.kind);
    else parts.push(l.type);
  }
  return `[${(a.input_shape || []).join('×')}] → ${parts.join(' → ')}`;
}

function card(k, v, s) {
  const vEl = h('div', { class: 'v' }, v);
  const sEl = h('div', { class: 's' }, s || '');
  const el = h('div', { class: 'card' }, h('div', { class: 'k' }, k), vEl, sEl);
  el.set = (nv, ns) => {
    setChildren(vEl, nv);
    setChildren(sEl, ns || '');
  };
  return el;
}

/** The clustering tolerances of the address (risk_tol, func_tol), or null for the server's. */
function tolsOf(query) {
  const t = (v) => (v !== undefined && v !== '' && Number.isFinite(Number(v)) ? v : null);
  return { risk_tol: t(query.risk_tol), func_tol: t(query.func_tol) };
}

export function mountExperiment(root, route) {
  const id = route.id;
  const base = `/v1/experiments/${encodeURIComponent(id)}`;
  let exp = null;
  let destroyed = false;
  let selected = route.query.run || null;
  let plotted = route.query.plot ? route.query.plot.split(',').filter(Boolean) : null; // null = default choice
  let tols = tolsOf(route.query);
  let basins = null; // array once loaded
  let basinsData = null; // the first page's answer (counts, tolerances, best point)
  let basinsNext = null; // next_cursor of the last page loaded
  let basinsState = 'loading';
  let basinsToken = 0;
  const risks = new Map(); // run id → final risk of finished runs
  const flagged = new Set(); // runs whose own view says spurious
  const runIndex = new Map(); // run id → index, for labels
  let runsTruncated = false;
  let follower = null;
  let trajChart = null;
  const timers = [];

  // ---- skeleton ----
  const statusBadge = h('span');
  const liveEl = h('span', { class: 'live' });
  const cancelBtn = h('button', { type: 'button', class: 'danger hidden', onclick: cancel }, 'Cancel');
  const bar = progressBar(null);
  const cProgress = card('Runs done', bar);
  const cBest = card('Best risk', '—');
  const cSpurious = card('Spurious share', '—');
  const cVerdicts = card('Verdicts', '—');
  const cSetup = card('Setup', '—');
  cBest.id = 'card-best';
  cSpurious.id = 'card-spurious';
  cVerdicts.id = 'card-verdicts';
  const histEl = h('div', { class: 'chart', id: 'hist' });
  const histNote = h('p', { class: 'caption' });
  const basinsEl = h('div', { id: 'basins' });
  const riskTolIn = h('input', { type: 'text', id: 'basins-risk-tol', inputmode: 'decimal', value: tols.risk_tol ?? '', placeholder: '1e-6', autocomplete: 'off', spellcheck: 'false' });
  const funcTolIn = h('input', { type: 'text', id: 'basins-func-tol', inputmode: 'decimal', value: tols.func_tol ?? '', placeholder: '1e-3', autocomplete: 'off', spellcheck: 'false' });
  const tolForm = h(
    'form',
    { class: 'row', id: 'basins-form' },
    h('div', { class: 'field' }, h('label', { for: 'basins-risk-tol' }, 'Same risk level within (relative)'), riskTolIn),
    h('div', { class: 'field' }, h('label', { for: 'basins-func-tol' }, 'Same function within (relative)'), funcTolIn),
    h('button', { type: 'submit' }, 'Regroup'),
  );
  tolForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    go(hashWith({ risk_tol: riskTolIn.value.trim() || null, func_tol: funcTolIn.value.trim() || null }), { replace: true });
  });
  const runsBody = h('tbody');
  const runsNote = h('p', { class: 'note' });
  const order = h('select', { id: 'runs-order', 'aria-label': 'Order runs by' }, h('option', { value: 'final_risk' }, 'by final risk'), h('option', { value: 'index' }, 'by index'));
  const filter = h(
    'select',
    { id: 'runs-status', 'aria-label': 'Show runs with status' },
    ['any', 'finished', 'running', 'queued', 'failed', 'cancelled'].map((s) => h('option', { value: s }, s === 'any' ? 'all statuses' : s)),
  );
  const spFilter = h(
    'select',
    { id: 'runs-spurious', 'aria-label': 'Show runs by spurious flag' },
    h('option', { value: 'any' }, 'spurious or not'),
    h('option', { value: 'true' }, 'spurious only'),
    h('option', { value: 'false' }, 'not spurious'),
  );
  const prevBtn = h('button', { type: 'button', onclick: () => runsTurn(-1) }, '← Previous');
  const nextBtn = h('button', { type: 'button', onclick: () => runsTurn(1) }, 'Next →');
  const pageLabel = h('span', { class: 'note' });
  const evidenceEl = h('div', { id: 'evidence' }, h('p', { class: 'note' }, 'Select a run in the table to see its verdict evidence.'));
  const trajEl = h('div', { class: 'chart', id: 'traj' });
  const trajNote = h('p', { class: 'caption' });
  const datasetLink = h('a', { class: 'button', href: '#/' }, 'Dataset view');

  const hist = riskHistogram(histEl);
  setChildren(
    root,
    h('h1', {}, 'Experiment ', h('span', { class: 'mono' }, id), statusBadge, liveEl, h('span', { class: 'spacer' }), datasetLink, cancelBtn),
    h('div', { class: 'cards' }, cProgress, cBest, cSpurious, cVerdicts, cSetup),
    h('div', { class: 'grid2' }, panel('Final risks', histEl, histNote), panel('Trajectories', trajEl, trajNote)),
    panel('Basins', tolForm, basinsEl),
    h(
      'div',
      { class: 'grid2' },
      panel(
        'Runs',
        h('div', { class: 'row' }, order, filter, spFilter),
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { id: 'runs' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                h('th', { scope: 'col' }, h('span', { title: 'plot the trajectory' }, 'Plot')),
                h('th', { scope: 'col' }, 'Run'),
                h('th', { scope: 'col' }, 'Status'),
                h('th', { scope: 'col', class: 'num' }, 'Final risk'),
                h('th', { scope: 'col', class: 'num hide-narrow' }, '‖∇‖'),
                h('th', { scope: 'col', class: 'num hide-narrow' }, 'Steps'),
                h('th', { scope: 'col' }, 'Verdict'),
              ),
            ),
            runsBody,
          ),
        ),
        h('div', { class: 'pager' }, prevBtn, pageLabel, nextBtn),
        runsNote,
      ),
      panel('Selected run', evidenceEl),
    ),
  );

  /** This page's address with some query parameters changed (null removes one). */
  function hashWith(changes) {
    const sp = new URLSearchParams();
    const cur = { run: selected, plot: plotted && plotted.length ? plotted.join(',') : null, risk_tol: tols.risk_tol, func_tol: tols.func_tol, ...changes };
    for (const [k, v] of Object.entries(cur)) if (v !== null && v !== undefined && v !== '') sp.set(k, v);
    const s = sp.toString();
    return `#/experiments/${encodeURIComponent(id)}${s ? `?${s}` : ''}`;
  }

  // ---- header and cards ----
  function showExperiment(e) {
    exp = e;
    setChildren(statusBadge, badge(e.status));
    cancelBtn.classList.toggle('hidden', !(e.status === 'queued' || e.status === 'running'));
    bar.update(e.progress);
    const s = e.summary || {};
    const ob = s.objective_best;
    const elsewhere = ob && ob.run_id && ob.run_id !== s.best_run_id;
    cBest.set(
      risk(s.best_risk),
      h(
        'span',
        {},
        s.best_run_id ? h('a', { href: runHash(s.best_run_id) }, 'best run') : '',
        elsewhere
          ? h('span', {}, ` · best of the objective: ${risk(ob.risk)} (`, h('a', { href: runHref(ob.run_id, ob.experiment_id), id: 'objective-best' }, ob.experiment_id === id ? 'this experiment' : 'another experiment'), ')')
          : s.objective_experiments > 1
            ? ` · the lowest of ${s.objective_experiments} experiments on this objective`
            : '',
      ),
    );
    if (s.spurious_share === undefined || s.spurious_share === null) {
      cSpurious.set(h('span', { class: 'note' }, e.status === 'finished' || e.status === 'cancelled' ? '—' : 'pending'), 'no finished run yet');
    } else if (!s.minima_count) {
      cSpurious.set(h('span', { class: 'note' }, 'no minima'), 'no finished run is known to be a minimum yet (no verdict, and none stopped at the gradient tolerance)');
    } else {
      cSpurious.set(
        shareWithCi(s.spurious_share, s.spurious_share_ci),
        h(
          'span',
          { title: `share of finished runs with its 95% Wilson interval; ${s.minima_count} runs are taken as minima, ${basisText(s.spurious_basis)}; spurious = above the best of the objective by more than ${num(s.spurious_tol)}·max(1, |R|)` },
          `${s.spurious_count} of ${e.progress.finished} finished runs` + (s.spurious_basis === 'stationary' ? ' (minima by stationarity)' : s.spurious_basis === 'mixed' ? ' (minima by verdict or stationarity)' : ''),
        ),
      );
    }
    const counts = s.label_counts || s.verdicts;
    if (anyVerdict(counts)) cVerdicts.set(h('span', { class: 's' }, labelCounts(counts)));
    else cVerdicts.set(h('span', { class: 'note' }, 'pending'), counts && counts.none ? `no verdict yet for the ${counts.none} finished runs` : 'no run has a verdict yet');
    const opt = e.optimizer ? `${e.optimizer.kind}, lr ${e.optimizer.lr}` : '';
    if (s.origin === 'construction') cSetup.set(`construction`, `${String(s.kind || '').replaceAll('_', ' ')} · ${e.loss || ''} loss · made ${ago(e.created_at)}`);
    else cSetup.set(`${e.restarts} × ${e.optimizer ? e.optimizer.kind : 'run'}`, `${opt} · ${e.max_steps ?? '?'} steps · ${e.loss || ''} loss · submitted ${ago(e.created_at)}`);
    datasetLink.href = `#/datasets/${encodeURIComponent(e.dataset_id)}${selected ? `?run=${encodeURIComponent(selected)}` : ''}`;
    document.title = `Experiment ${id} · basinlab`;
  }

  function runHash(runId, extra = {}) {
    return hashWith({ run: runId, ...(extra.plot !== undefined ? { plot: extra.plot && extra.plot.length ? extra.plot.join(',') : null } : {}) });
  }

  /** A run of this experiment keeps this page's state; one of another experiment opens that one. */
  function runHref(runId, expId) {
    if (!expId || expId === id) return runHash(runId);
    return `#/experiments/${encodeURIComponent(expId)}?run=${encodeURIComponent(runId)}`;
  }

  async function cancel() {
    cancelBtn.disabled = true;
    try {
      await postJSON(`${base}/cancel`, {});
      toast('Cancel requested');
    } catch (e) {
      toast(`Cancel failed: ${e.message}`);
    } finally {
      cancelBtn.disabled = false;
    }
  }

  // ---- final risks ----
  function drawHistogram() {
    const ids = Array.from(risks.keys());
    const vals = ids.map((k) => risks.get(k));
    hist.update(vals, ids, basins || [], flagged);
    const n = vals.length;
    histEl.classList.toggle('hidden', n === 0);
    if (n === 0) {
      histNote.textContent = 'No finished run yet.';
      return;
    }
    let text = `${n} finished run${n === 1 ? '' : 's'}`;
    if (runsTruncated) text += ` (the first ${MAX_HIST_RUNS} by risk)`;
    const tiny = vals.filter((v) => v < 1e-16).length;
    if (tiny) text += ` (${tiny} below 10⁻¹⁶, drawn at 10⁻¹⁶)`;
    if (basins && basins.length) {
      const sp = basins.filter((b) => b.spurious).length;
      text += `. Lines mark ${basinsNext ? `the first ${basins.length}` : `the ${basins.length}`} basins (B = basin, S = spurious basin, in red); red bars are runs in spurious basins or flagged spurious themselves.`;
      if (!sp) text += ' No basin is spurious.';
      if (basins.some((b) => b.membersTruncated)) text += ' (Some member lists could not be loaded in full; red bars may undercount.)';
    } else if (flagged.size) {
      text += `. Red bars are runs flagged spurious. Basins are not marked: ${basinsState === 'loading' ? 'not computed yet.' : 'see the basins panel.'}`;
    } else {
      text += '. Basins are not marked: ' + (basinsState === 'loading' ? 'not computed yet.' : 'see the basins panel.');
    }
    histNote.textContent = text;
  }
  const drawHistogramSoon = throttle(drawHistogram, 400);

  async function loadRisks() {
    try {
      const { items, truncated } = await getAllPages(`${base}/runs`, { status: 'finished', order: 'final_risk' }, { maxItems: MAX_HIST_RUNS });
      if (destroyed) return;
      flagged.clear();
      for (const r of items) {
        runIndex.set(r.id, r.index);
        if (r.final_risk !== null) risks.set(r.id, r.final_risk);
        if (r.spurious && r.spurious.flag === true) flagged.add(r.id);
      }
      runsTruncated = truncated;
      drawHistogram();
      if (!plotted) drawTrajectories();
    } catch (e) {
      if (!destroyed) setChildren(histNote, unavailable('The final risks could not be loaded', e));
    }
  }

  // ---- basins ----
  const tolParams = () => ({ risk_tol: tols.risk_tol, func_tol: tols.func_tol });

  async function loadBasins() {
    const token = ++basinsToken;
    try {
      const data = await get(q(`${base}/basins`, { ...tolParams(), limit: BASINS_PAGE }));
      if (destroyed || token !== basinsToken) return;
      basinsData = data;
      basins = data.basins || [];
      basinsNext = data.next_cursor || null;
      basinsState = 'ok';
      const short = (v) => (v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential() : String(v));
      if (tols.risk_tol === null) riskTolIn.placeholder = short(data.risk_tol);
      if (tols.func_tol === null) funcTolIn.placeholder = short(data.func_tol);
      renderBasins();
      await completeMembers(token);
    } catch (e) {
      if (destroyed || token !== basinsToken) return;
      basins = null;
      basinsData = null;
      basinsState = 'error';
      if (e instanceof ApiError && e.status === 400) setChildren(basinsEl, unavailable('These tolerances are not accepted', e));
      else if (e instanceof ApiError && e.status === 422) setChildren(basinsEl, unavailable('The basins of this experiment cannot be computed', e));
      else setChildren(basinsEl, unavailable('The basins could not be loaded', e));
    }
    if (token !== basinsToken) return;
    drawHistogram();
    if (!plotted) {
      // the default plot is one representative per basin: the ticks in the runs table follow
      drawTrajectories();
      if (runsItems.length) renderRuns();
    }
  }

  async function loadMoreBasins() {
    const token = basinsToken;
    try {
      const data = await get(q(`${base}/basins`, { ...tolParams(), limit: BASINS_PAGE, cursor: basinsNext }));
      if (destroyed || token !== basinsToken) return;
      basins.push(...(data.basins || []));
      basinsNext = data.next_cursor || null;
      renderBasins();
      await completeMembers(token);
      drawHistogram();
    } catch (e) {
      if (!destroyed) toast(`More basins could not be loaded: ${e.message}`);
    }
  }

  // The basins answer lists the first members of a basin only; the histogram needs all members
  // of the spurious ones, so fetch the rest from the basin's member list (same tolerances).
  async function completeMembers(token) {
    for (const b of basins) {
      const listed = Array.isArray(b.member_run_ids) ? b.member_run_ids.length : 0;
      if (!b.spurious || !(b.members_total > listed) || b.membersComplete) continue;
      try {
        const { items, truncated } = await getAllPages(`${base}/basins/${encodeURIComponent(b.index)}/members`, tolParams(), { maxItems: MAX_HIST_RUNS });
        if (token !== basinsToken) return;
        b.member_run_ids = items.map((it) => it.run_id);
        b.membersComplete = true;
        b.membersTruncated = truncated;
      } catch {
        b.membersTruncated = true;
      }
      if (destroyed) return;
    }
  }

  function basinBadge(b) {
    if (b.spurious === true)
      return h('span', { class: 'badge badge-spurious', title: b.witness_run_id ? `the best point of the objective, run ${b.witness_run_id}, is lower by ${num(b.gap)}` : '' }, 'spurious');
    if (b.spurious === false && b.gap !== null && b.tol !== null && b.gap <= b.tol) return h('span', { class: 'badge verdict-certified_minimum', title: 'at the best risk of the objective' }, 'lowest');
    return null;
  }

  function renderBasins() {
    const data = basinsData;
    const head = h(
      'p',
      { class: 'note', id: 'basins-summary' },
      `${data.basin_count} basin${data.basin_count === 1 ? '' : 's'} among ${data.clustered_runs} clustered runs`,
      data.skipped_runs ? ` (${data.skipped_runs} finished runs without a usable end point left out)` : '',
      data.finished_runs < data.total_runs ? ` — ${data.finished_runs} of ${data.total_runs} runs had finished when they were grouped` : '',
      `; same risk level within ${num(data.risk_tol)}·max(1, |R|), same function within ${num(data.func_tol)}·(1 + RMS output).`,
    );
    if (!basins.length) {
      setChildren(
        basinsEl,
        h('p', { class: 'note', id: 'basins-summary' }, data.finished_runs ? `0 basins: none of the ${data.finished_runs} finished runs has a usable end point.` : 'No basins yet: no run has finished. They are grouped again when the experiment is done.'),
      );
      return;
    }
    const rows = basins.map((b) =>
      h(
        'tr',
        { class: b.spurious ? 'spurious' : '', 'data-basin': b.index },
        h('td', {}, `${b.spurious ? 'S' : 'B'}${b.index} `, basinBadge(b)),
        h('td', { class: 'num', title: b.risk !== b.final_risk ? `data risk ${b.risk}` : '' }, risk(b.final_risk)),
        h('td', { class: 'num hide-narrow' }, b.gap === null || b.gap === undefined ? '—' : num(b.gap)),
        h('td', { class: 'num basin-count' }, String(b.count ?? '—')),
        h('td', { class: 'num' }, shareWithCi(b.share, b.share_ci)),
        h('td', { class: 'num hide-narrow', title: 'activation regions of the representative on the data' }, String(b.regions ?? '—')),
        h('td', { class: 'num hide-narrow', title: 'largest function distance of a member from the representative' }, num(b.max_func_dist)),
        h('td', {}, b.representative_run_id ? h('a', { href: runHash(b.representative_run_id), title: 'select the representative run' }, shortId(b.representative_run_id)) : '—'),
        h('td', { class: 'hide-narrow' }, labelCounts(b.label_counts)),
      ),
    );
    const heads = [
      ['Basin', ''],
      ['Risk', 'num'],
      ['Above best', 'num hide-narrow'],
      ['Runs', 'num'],
      ['Share [95% CI]', 'num'],
      ['Regions', 'num hide-narrow'],
      ['Max d_f', 'num hide-narrow'],
      ['Representative', ''],
      ['Verdicts', 'hide-narrow'],
    ];
    const bestLink = data.best_run_id ? h('a', { href: runHref(data.best_run_id, data.best_experiment_id) }, shortId(data.best_run_id)) : null;
    setChildren(
      basinsEl,
      head,
      h(
        'div',
        { class: 'table-wrap' },
        h('table', { id: 'basins-table' }, h('thead', {}, h('tr', {}, heads.map(([t, c]) => h('th', { scope: 'col', class: c }, t)))), h('tbody', {}, rows)),
      ),
      basinsNext ? h('div', { class: 'pager' }, h('button', { type: 'button', id: 'basins-more', onclick: loadMoreBasins }, `Show more basins (${basins.length} of ${data.basin_count} shown)`)) : null,
      h(
        'p',
        { class: 'caption' },
        `Best point of the objective: ${risk(data.best_risk)}`,
        bestLink ? h('span', {}, ' (run ', bestLink, data.best_experiment_id && data.best_experiment_id !== id ? ', another experiment' : '', ')') : '',
        '. A basin is spurious when its representative\u2019s final risk is above that best by more than the tolerance (and not zero up to it); this judges its risk level only — the Verdicts column says whether its runs are certified minima.',
      ),
    );
  }

  // ---- runs table ----
  const runCursors = [null];
  let runPage = 0;
  let runsItems = [];
  async function loadRuns() {
    const url = q(`${base}/runs`, {
      limit: RUNS_PAGE,
      order: order.value,
      status: filter.value === 'any' ? null : filter.value,
      spurious: spFilter.value === 'any' ? null : spFilter.value,
      cursor: runCursors[runPage],
    });
    try {
      const { data, changed } = await getJSON(url);
      if (destroyed) return;
      runCursors[runPage + 1] = data.next_cursor;
      prevBtn.disabled = runPage === 0;
      nextBtn.disabled = !data.next_cursor;
      pageLabel.textContent = `page ${runPage + 1}`;
      if (!changed && runsItems.length) return;
      runsItems = data.items;
      for (const r of runsItems) runIndex.set(r.id, r.index);
      renderRuns();
    } catch (e) {
      if (!destroyed) setChildren(runsNote, unavailable('The runs could not be loaded', e));
    }
  }
  const loadRunsSoon = throttle(loadRuns, 1000);
  function renderRuns() {
    const plotSet = new Set(currentPlotted());
    setChildren(
      runsBody,
      runsItems.map((r) => {
        const box = h('input', {
          type: 'checkbox',
          checked: plotSet.has(r.id),
          'aria-label': `plot the trajectory of run ${r.index}`,
          disabled: r.status === 'queued',
          onchange: (ev) => togglePlot(r.id, ev.target.checked),
        });
        const sp = r.spurious && r.spurious.flag === true;
        return h(
          'tr',
          { class: `${r.id === selected ? 'selected' : ''} ${sp ? 'spurious' : ''}`, 'data-run': r.id },
          h('td', {}, box),
          h('td', {}, h('a', { href: runHash(r.id), 'aria-current': r.id === selected ? 'true' : null }, `#${r.index}`)),
          h('td', {}, badge(r.status)),
          h('td', { class: 'num' }, risk(r.final_risk)),
          h('td', { class: 'num hide-narrow' }, num(r.grad_norm)),
          h('td', { class: 'num hide-narrow' }, r.steps ?? '—'),
          h('td', { class: 'wrap' }, r.status === 'finished' ? verdictBadge(r.verdict_label || (r.verdict && r.verdict.label)) : '', sp ? [' ', h('span', { class: 'badge badge-spurious', title: `above the best of the objective by ${num(r.spurious.gap)}` }, 'spurious')] : ''),
        );
      }),
    );
    if (!runsItems.length) setChildren(runsBody, h('tr', {}, h('td', { colspan: 7, class: 'note' }, 'No runs match.')));
    runsNote.textContent = '';
  }
  function runsTurn(d) {
    if (d > 0 && !runCursors[runPage + 1]) return;
    runPage = Math.max(0, runPage + d);
    runsItems = [];
    loadRuns();
  }
  for (const sel of [order, filter, spFilter])
    sel.addEventListener('change', () => {
      runCursors.length = 1;
      runPage = 0;
      runsItems = [];
      loadRuns();
    });

  // ---- selected run: verdict evidence ----
  async function loadSelected() {
    if (!selected) return;
    setChildren(evidenceEl, h('p', { class: 'note' }, 'Loading run…'));
    try {
      const r = await get(`/v1/runs/${encodeURIComponent(selected)}`);
      if (destroyed || r.id !== selected) return;
      renderEvidence(r);
    } catch (e) {
      if (!destroyed) setChildren(evidenceEl, unavailable(`Run ${selected} could not be loaded`, e));
    }
  }

  function renderEvidence(r) {
    const v = r.verdict;
    const sp = r.spurious;
    const best = exp && exp.summary && exp.summary.best_run_id;
    // compare with the witness (the objective's best) when there is one, else this experiment's best
    const other = sp && sp.witness_run_id && sp.witness_run_id !== r.id ? sp.witness_run_id : best && best !== r.id ? best : null;
    const plotSet = new Set(currentPlotted());
    const kv = (pairs) => h('dl', { class: 'kv' }, pairs.filter(Boolean).flatMap(([k, val]) => [h('dt', {}, k), h('dd', {}, val)]));
    const blocks = [
      h('h3', {}, `Run #${r.index} `, shortId(r.id), ' ', badge(r.status), r.origin && r.origin !== 'trained' ? [' ', h('span', { class: 'badge' }, r.origin)] : ''),
      h(
        'div',
        { class: 'row' },
        other ? h('a', { class: 'button', href: `#/compare?a=${encodeURIComponent(r.id)}&b=${encodeURIComponent(other)}`, id: 'compare-best' }, other === (sp && sp.witness_run_id) ? 'Compare with the witness' : 'Compare with the best run') : null,
        exp ? h('a', { class: 'button', href: `#/datasets/${encodeURIComponent(exp.dataset_id)}?run=${encodeURIComponent(r.id)}` }, 'Fitted function') : null,
        r.status !== 'queued' && r.origin !== 'construction' && r.origin !== 'imported'
          ? h('button', { type: 'button', onclick: () => togglePlot(r.id, !plotSet.has(r.id)) }, plotSet.has(r.id) ? 'Remove from plot' : 'Plot trajectory')
          : null,
      ),
      kv([
        ['final risk', risk(r.final_risk)],
        ['initial risk', risk(r.initial_risk)],
        ['steps', `${r.steps ?? '—'}${r.stop_reason ? ` (stopped: ${r.stop_reason.replaceAll('_', ' ')})` : ''}`],
        ['gradient norm', num(r.grad_norm)],
        ['parameter norm', num(r.param_norm)],
        ['seed', String(r.seed)],
        r.timings && r.timings.duration_ms !== null ? ['time', `${r.timings.duration_ms} ms`] : null,
        r.error ? ['error', r.error] : null,
      ]),
      h('h3', {}, 'Spurious?'),
      ...spuriousBlocks(r, runHref),
      h('h3', {}, 'Verdict'),
    ];
    if (!v) {
      blocks.push(
        h('p', { class: 'note', id: 'verdict-pending' }, r.status === 'finished' ? 'Verdict pending: the server has not certified this end point yet.' : `No verdict: the run is ${r.status}.`),
      );
    } else {
      blocks.push(...verdictBlocks(v));
    }
    setChildren(evidenceEl, blocks);
  }

  // ---- trajectories ----
  function defaultPlotted() {
    // representatives of the basins when known, else the best, median and worst finished runs
    if (basins && basins.length) return basins.slice(0, MAX_PLOTTED).map((b) => b.representative_run_id).filter(Boolean);
    const sorted = Array.from(risks.entries()).sort((a, b) => a[1] - b[1]).map(([k]) => k);
    if (!sorted.length) return [];
    const pick = [sorted[0], sorted[Math.floor((sorted.length - 1) / 2)], sorted[sorted.length - 1]];
    return Array.from(new Set(pick));
  }
  function currentPlotted() {
    return plotted || defaultPlotted();
  }
  function togglePlot(runId, on) {
    const set = currentPlotted().filter((x) => x !== runId);
    if (on) set.push(runId);
    if (set.length > MAX_PLOTTED) set.splice(0, set.length - MAX_PLOTTED);
    go(hashWith({ plot: set.length ? set.join(',') : null }), { replace: true });
  }

  let trajToken = 0;
  async function drawTrajectories() {
    const ids = currentPlotted();
    const token = ++trajToken;
    if (!ids.length) {
      destroyChart(trajChart);
      trajChart = null;
      trajNote.textContent = 'No finished run to plot yet. Tick runs in the table to plot their trajectories.';
      return;
    }
    trajNote.textContent = 'Loading trajectories…';
    const results = await Promise.all(
      ids.map((rid) =>
        get(q(`/v1/runs/${encodeURIComponent(rid)}/trajectory`, { max_points: TRAJ_POINTS })).then(
          (t) => ({ rid, t }),
          (e) => ({ rid, e }),
        ),
      ),
    );
    if (destroyed || token !== trajToken) return;
    const ok = results.filter((x) => x.t && x.t.points && x.t.points.length);
    destroyChart(trajChart);
    trajChart = null;
    setChildren(trajEl);
    if (!ok.length) {
      trajNote.textContent = results.some((x) => x.e)
        ? `Trajectories could not be loaded: ${results.find((x) => x.e).e.message}`
        : 'The selected runs have no trajectory points (constructed or imported end points were not trained; queued runs have not started).';
      return;
    }
    const name = (rid) => (runIndex.has(rid) ? `run #${runIndex.get(rid)}` : `run …${rid.slice(-6)}`);
    const runs = ok.map((x) => ({ label: `${name(x.rid)}${risks.has(x.rid) ? ` (${risk(risks.get(x.rid))})` : ''}`, points: x.t.points }));
    trajChart = trajectoryChart(trajEl, runs);
    const down = ok.filter((x) => x.t.downsampled);
    trajNote.textContent =
      `${plotted ? 'Selected runs' : 'Default choice: ' + (basins && basins.length ? 'one representative per basin' : 'the best, median and worst finished runs')}. ` +
      (down.length ? `Downsampled by the server to ≤ ${TRAJ_POINTS} points per run (each bucket keeps its first, last, lowest and highest risk).` : 'Every stored point is shown.');
    trajEl.dataset.series = String(ok.length);
  }

  // ---- live ----
  let lastDone = -1;
  let mode = 'stream';
  const onProgress = throttle(() => {
    loadRunsSoon();
    if (mode === 'polling') loadRisks(); // no run events to learn the risks from
    if (!plotted) drawTrajectories();
  }, 2000);
  follower = follow(id, {
    onExperiment(e) {
      const first = exp === null;
      showExperiment(e);
      const done = (e.progress.finished || 0) + (e.progress.failed || 0) + (e.progress.cancelled || 0);
      if (first) return;
      if (done !== lastDone) {
        lastDone = done;
        onProgress();
      }
    },
    onEvent(type, data) {
      if (type === 'run_finished' && data) {
        if (data.index !== undefined) runIndex.set(data.run_id, data.index);
        if (data.status === 'finished' && data.final_risk !== null && data.final_risk !== undefined) risks.set(data.run_id, data.final_risk);
        if (exp && data.progress) {
          exp.progress = { ...exp.progress, ...data.progress };
          bar.update({ ...data.progress, total: exp.progress.total });
        }
        drawHistogramSoon();
        loadRunsSoon();
      } else if (type === 'status' && data && exp) {
        exp.status = data.status;
        setChildren(statusBadge, badge(data.status));
      }
    },
    onMode(m) {
      mode = m;
      liveEl.dataset.modes = liveEl.dataset.modes ? `${liveEl.dataset.modes},${m}` : m;
      liveEl.className = `live ${mode}`;
      liveEl.textContent = mode === 'stream' ? 'live (events)' : mode === 'polling' ? 'live (polling)' : 'up to date';
      if (mode === 'done') {
        // the last word: everything once more, now that nothing changes (spurious flags and
        // basins are judged against the final best)
        get(base).then((e) => !destroyed && showExperiment(e), () => {});
        loadRisks();
        loadBasins();
        loadRuns();
        if (selected) loadSelected();
      }
    },
  });

  loadRisks();
  loadBasins();
  loadRuns();
  loadSelected();
  if (plotted) drawTrajectories();

  return {
    update(r) {
      const newSel = r.query.run || null;
      const newPlot = r.query.plot ? r.query.plot.split(',').filter(Boolean) : null;
      const newTols = tolsOf(r.query);
      const plotChanged = JSON.stringify(newPlot) !== JSON.stringify(plotted);
      const selChanged = newSel !== selected;
      const tolsChanged = newTols.risk_tol !== tols.risk_tol || newTols.func_tol !== tols.func_tol;
      selected = newSel;
      plotted = newPlot;
      tols = newTols;
      if (tolsChanged) {
        riskTolIn.value = tols.risk_tol ?? '';
        funcTolIn.value = tols.func_tol ?? '';
        setChildren(basinsEl, h('p', { class: 'note' }, 'Grouping the end points…'));
        basinsState = 'loading';
        loadBasins();
      }
      if (selChanged) {
        loadSelected();
        if (exp) datasetLink.href = `#/datasets/${encodeURIComponent(exp.dataset_id)}${selected ? `?run=${encodeURIComponent(selected)}` : ''}`;
      }
      if (selChanged || plotChanged) renderRuns();
      if (plotChanged) {
        drawTrajectories();
        if (selected) loadSelected();
      }
    },
    destroy() {
      destroyed = true;
      if (follower) follower.close();
      timers.forEach(clearTimeout);
      hist.destroy();
      destroyChart(trajChart);
    },
  };
}
