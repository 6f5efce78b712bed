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

export function mountExperiment(root, route) {
  const id = route.id;
  const base = `/v1/experiments/${encodeURIComponent(id)}`;
  let exp = null;
  let destroyed = false;
  let selected = route.query.run || null;
  let plotted = route.query.plot ? route.query.plot.split(',').filter(Boolean) : null; // null = default choice
  let basins = null; // array once loaded
  let basinsState = 'loading';
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
  const histEl = h('div', { class: 'chart', id: 'hist' });
  const histNote = h('p', { class: 'caption' });
  const basinsEl = h('div', { id: 'basins' });
  const runsBody = h('tbody');
  const runsNote = h('p', { class: 'note' });
  const order = h('select', { id: 'runs-order', 'aria-label': 'Order runs by' }, h('option', { value: 'final_risk' }, 'by final risk'), h('option', { value: 'index' }, 'by index'));
  const filter = h(
    'select',
    { id: 'runs-status', 'aria-label': 'Show runs with status' },
    ['any', 'finished', 'running', 'queued', 'failed', 'cancelled'].map((s) => h('option', { value: s }, s === 'any' ? 'all statuses' : s)),
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
    h(
      'div',
      { class: 'grid2' },
      panel('Final risks', histEl, histNote),
      panel('Basins', basinsEl),
    ),
    h(
      'div',
      { class: 'grid2' },
      panel(
        'Runs',
        h('div', { class: 'row' }, order, filter),
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
    panel('Trajectories', trajEl, trajNote),
  );

  // ---- header and cards ----
  function showExperiment(e) {
    exp = e;
    setChildren(statusBadge, badge(e.status));
    cancelBtn.classList.toggle('hidden', !(e.status === 'queued' || e.status === 'running'));
    bar.update(e.progress);
    const s = e.summary || {};
    cBest.set(risk(s.best_risk), s.best_run_id ? h('a', { href: runHash(s.best_run_id) }, 'best run') : '');
    if (s.spurious_share !== undefined && s.spurious_share !== null) cSpurious.set(shareWithCi(s.spurious_share, s.spurious_share_ci), 'of runs end in a spurious minimum');
    else cSpurious.set(h('span', { class: 'note' }, 'pending'), 'no spurious-minimum analysis from the server yet');
    const counts = s.label_counts || s.verdicts;
    if (counts && Object.values(counts).some((n) => n > 0)) cVerdicts.set(h('span', { class: 's' }, labelCounts(counts)));
    else cVerdicts.set(h('span', { class: 'note' }, 'pending'), 'no run has a verdict yet');
    const opt = e.optimizer ? `${e.optimizer.kind}, lr ${e.optimizer.lr}` : '';
    cSetup.set(`${e.restarts} × ${e.optimizer ? e.optimizer.kind : 'run'}`, `${opt} · ${e.max_steps ?? '?'} steps · ${e.loss || ''} loss · submitted ${ago(e.created_at)}`);
    datasetLink.href = `#/datasets/${encodeURIComponent(e.dataset_id)}${selected ? `?run=${encodeURIComponent(selected)}` : ''}`;
    document.title = `Experiment ${id} · basinlab`;
  }

  function runHash(runId, extra = {}) {
    const sp = new URLSearchParams();
    sp.set('run', runId);
    const p = extra.plot !== undefined ? extra.plot : plotted;
    if (p && p.length) sp.set('plot', p.join(','));
    return `#/experiments/${encodeURIComponent(id)}?${sp}`;
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
    let text = `${n} finished run${n === 1 ? '' : 's'}`;
    if (runsTruncated) text += ` (the first ${MAX_HIST_RUNS} by risk)`;
    if (basins && basins.length) {
      const sp = basins.filter((b) => b.spurious).length;
      text += `. Lines mark the ${basins.length} basins (B = basin, S = spurious basin, in red); red bars are runs in spurious basins.`;
      if (!sp) text += ' No basin is spurious.';
      if (basins.some((b) => b.membersTruncated)) text += ' (Some member lists could not be loaded in full; red bars may undercount.)';
    } else {
      text += '. Basins are not marked: ' + (basinsState === 'unavailable' ? 'the server does not provide them.' : 'not computed yet.');
    }
    histNote.textContent = text;
  }
  const drawHistogramSoon = throttle(drawHistogram, 400);

  async function loadRisks() {
    try {
      const { items, truncated } = await getAllPages(`${base}/runs`, { status: 'finished', order: 'final_risk' }, { maxItems: MAX_HIST_RUNS });
      if (destroyed) return;
      for (const r of items) {
        runIndex.set(r.id, r.index);
        if (r.final_risk !== null) risks.set(r.id, r.final_risk);
        if (r.spurious && r.spurious.flag) flagged.add(r.id);
      }
      runsTruncated = truncated;
      drawHistogram();
      if (!plotted) drawTrajectories();
    } catch (e) {
      if (!destroyed) setChildren(histNote, unavailable('The final risks could not be loaded', e));
    }
  }

  // ---- basins ----
  async function loadBasins() {
    try {
      const data = await get(`${base}/basins`);
      if (destroyed) return;
      basins = data.basins || [];
      basinsState = 'ok';
      renderBasins(data);
      await completeMembers();
    } catch (e) {
      if (destroyed) return;
      basins = null;
      basinsState = e instanceof ApiError && (e.status === 405 || e.status === 501 || (e.status === 404 && /no resource at this path/.test(e.detail))) ? 'unavailable' : 'error';
      if (e instanceof ApiError && e.status === 409)
        setChildren(basinsEl, h('p', { class: 'note' }, `Basins are computed once the runs are done (${e.detail}).`));
      else if (basinsState === 'unavailable') setChildren(basinsEl, unavailable(`Basins are not available from this server: GET ${base}/basins failed`, e));
      else setChildren(basinsEl, unavailable('The basins could not be computed', e));
    }
    drawHistogram();
    if (!plotted) drawTrajectories();
  }

  // The basins answer may list only the first members of a large basin; the histogram needs all
  // members of the spurious ones, so fetch the rest from the basin's member list.
  async function completeMembers() {
    for (const b of basins) {
      const listed = Array.isArray(b.member_run_ids) ? b.member_run_ids.length : 0;
      if (!b.spurious || !(b.count > listed)) continue;
      try {
        const { items } = await getAllPages(`${base}/basins/${encodeURIComponent(b.index)}/members`, {}, { maxItems: MAX_HIST_RUNS });
        b.member_run_ids = items.map((it) => (typeof it === 'string' ? it : it.id || it.run_id)).filter(Boolean);
      } catch {
        b.membersTruncated = true;
      }
      if (destroyed) return;
    }
  }

  function renderBasins(data) {
    if (!basins.length) {
      setChildren(basinsEl, h('p', { class: 'note' }, 'No basins (no finished run yet).'));
      return;
    }
    const rows = basins.map((b) =>
      h(
        'tr',
        { class: b.spurious ? 'spurious' : '' },
        h(
          'td',
          {},
          `${b.spurious ? 'S' : 'B'}${b.index} `,
          b.spurious ? h('span', { class: 'badge badge-spurious', title: b.witness_run_id ? `a run with lower risk: ${b.witness_run_id}, gap ${num(b.gap)}` : '' }, 'spurious') : null,
        ),
        h('td', { class: 'num' }, risk(b.risk)),
        h('td', { class: 'num' }, String(b.count ?? '—')),
        h('td', { class: 'num' }, shareWithCi(b.share, b.share_ci)),
        h('td', {}, b.representative_run_id ? h('a', { href: runHash(b.representative_run_id), title: 'select the representative run' }, shortId(b.representative_run_id)) : '—'),
        h('td', { class: 'hide-narrow' }, labelCounts(b.label_counts)),
      ),
    );
    setChildren(
      basinsEl,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { id: 'basins-table' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['Basin', 'Risk', 'Runs', 'Share [CI]', 'Representative', 'Verdicts'].map((t, i) =>
                h('th', { scope: 'col', class: i >= 1 && i <= 3 ? 'num' : i === 5 ? 'hide-narrow' : '' }, t),
              ),
            ),
          ),
          h('tbody', {}, rows),
        ),
      ),
      h('p', { class: 'caption' }, `${data.total_runs ?? ''} runs; best risk ${risk(data.best_risk)}. A basin is spurious when its risk is above the best by more than the tolerance; its witness is a run that did better.`),
    );
  }

  // ---- runs table ----
  const runCursors = [null];
  let runPage = 0;
  let runsItems = [];
  async function loadRuns() {
    const url = q(`${base}/runs`, { limit: RUNS_PAGE, order: order.value, status: filter.value === 'any' ? null : filter.value, cursor: runCursors[runPage] });
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
        const sp = r.spurious && r.spurious.flag;
        return h(
          'tr',
          { class: `${r.id === selected ? 'selected' : ''} ${sp ? 'spurious' : ''}`, 'data-run': r.id },
          h('td', {}, box),
          h('td', {}, h('a', { href: runHash(r.id), 'aria-current': r.id === selected ? 'true' : null }, `#${r.index}`)),
          h('td', {}, badge(r.status)),
          h('td', { class: 'num' }, risk(r.final_risk)),
          h('td', { class: 'num hide-narrow' }, num(r.grad_norm)),
          h('td', { class: 'num hide-narrow' }, r.steps ?? '—'),
          h('td', {}, r.status === 'finished' ? verdictBadge(r.verdict_label || (r.verdict && r.verdict.label)) : '', sp ? h('span', { class: 'badge badge-spurious' }, 'spurious') : ''),
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
  order.addEventListener('change', () => {
    runCursors.length = 1;
    runPage = 0;
    runsItems = [];
    loadRuns();
  });
  filter.addEventListener('change', () => {
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
    const other = best && best !== r.id ? best : null;
    const plotSet = new Set(currentPlotted());
    const kv = (pairs) => h('dl', { class: 'kv' }, pairs.filter(Boolean).flatMap(([k, val]) => [h('dt', {}, k), h('dd', {}, val)]));
    const blocks = [
      h('h3', {}, `Run #${r.index} `, shortId(r.id), ' ', badge(r.status)),
      h(
        'div',
        { class: 'row' },
        other ? h('a', { class: 'button', href: `#/compare?a=${encodeURIComponent(r.id)}&b=${encodeURIComponent(other)}`, id: 'compare-best' }, 'Compare with the best run') : null,
        exp ? h('a', { class: 'button', href: `#/datasets/${encodeURIComponent(exp.dataset_id)}?run=${encodeURIComponent(r.id)}` }, 'Fitted function') : null,
        r.status !== 'queued' ? h('button', { type: 'button', onclick: () => togglePlot(r.id, !plotSet.has(r.id)) }, plotSet.has(r.id) ? 'Remove from plot' : 'Plot trajectory') : null,
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
      h('h3', {}, 'Verdict'),
    ];
    if (!v) {
      blocks.push(
        h('p', { class: 'note', id: 'verdict-pending' }, r.status === 'finished' ? 'Verdict pending: the server has not certified this end point yet.' : `No verdict: the run is ${r.status}.`),
      );
    } else {
      blocks.push(
        h('p', {}, verdictBadge(v.label), v.decided_by ? ` decided by ${v.decided_by}` : ''),
        v.reason ? h('p', { class: 'note' }, v.reason) : null,
        kv([
          ['gradient norm', num(v.grad_norm)],
          ['margin', num(v.margin)],
          ['λ_min (Hessian)', num(v.lambda_min)],
          ['λ_max (Hessian)', num(v.lambda_max)],
        ]),
      );
      const cert = v.certificate;
      if (cert && Array.isArray(cert.groups) && cert.groups.length) {
        blocks.push(
          h('h3', {}, `Certificate${cert.B !== undefined ? ` (B = ${num(cert.B)})` : ''}`),
          h(
            'div',
            { class: 'table-wrap' },
            h(
              'table',
              {},
              h('thead', {}, h('tr', {}, h('th', {}, 'Group'), h('th', { class: 'num' }, 'samples'), h('th', { class: 'num' }, 'risk sum'), h('th', { class: 'num' }, 'best fit risk sum'))),
              h(
                'tbody',
                {},
                cert.groups.map((g, i) => h('tr', {}, h('td', {}, String(i + 1)), h('td', { class: 'num' }, String(g.n_samples)), h('td', { class: 'num' }, num(g.risk_sum)), h('td', { class: 'num' }, num(g.fit_risk_sum)))),
              ),
            ),
          ),
          h('p', { class: 'caption' }, 'Each group of samples shares one activation pattern; the end point is a minimum of the region when every group already attains its best affine fit.'),
        );
      }
    }
    blocks.push(h('h3', {}, 'Spurious?'));
    if (sp && sp.flag === true) {
      blocks.push(
        h('p', {}, h('span', { class: 'badge badge-spurious' }, 'spurious'), ' risk exceeds that of ', sp.witness_run_id ? h('a', { href: runHash(sp.witness_run_id) }, shortId(sp.witness_run_id)) : 'a better run', ` by ${num(sp.gap)}${sp.basis ? ` (judged by ${sp.basis})` : ''}.`),
      );
    } else if (sp && sp.flag === false) {
      blocks.push(h('p', {}, `Not spurious: no run found a lower risk beyond the tolerance${sp.tol !== undefined && sp.tol !== null ? ` (${num(sp.tol)})` : ''}.`));
    } else if (sp && sp.flag === null) {
      blocks.push(h('p', { class: 'note' }, 'Undecided: this end point is not known to be a minimum, so it cannot be called a spurious one.'));
    } else {
      blocks.push(h('p', { class: 'note' }, 'Pending: the server has not compared this end point with the other runs yet.'));
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
    go(selected ? runHash(selected, { plot: set }) : `#/experiments/${encodeURIComponent(id)}?plot=${set.join(',')}`, { replace: true });
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
      trajNote.textContent = results.some((x) => x.e) ? `Trajectories could not be loaded: ${results.find((x) => x.e).e.message}` : 'The selected runs have no trajectory points yet.';
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
        // the last word: everything once more, now that nothing changes
        get(base).then((e) => !destroyed && showExperiment(e), () => {});
        loadRisks();
        loadBasins();
        loadRuns();
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
      const plotChanged = JSON.stringify(newPlot) !== JSON.stringify(plotted);
      const selChanged = newSel !== selected;
      selected = newSel;
      plotted = newPlot;
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
