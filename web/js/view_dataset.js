// A dataset (#/datasets/ID?run=RUN): its description and, for 1-D and 2-D inputs, the samples
// drawn; with a run chosen, the function that run's end point computes, from
// GET /v1/runs/{id}/function — 1-D: the continuous piecewise-linear curve with the breakpoints
// the server located (listed under the chart); 2-D: the function as a heat map with the
// boundaries of the activation regions — so one sees which linear piece fits which group of
// samples. The function is evaluated by the server; the dashboard only draws it.
import { ApiError, get, q } from './api.js';
import { curveChart, destroyChart, planeChart } from './charts.js';
import { go } from './nav.js';
import { h, num, panel, risk, setChildren, unavailable } from './util.js';

const VALUE_TEXT = { output: 'output', logit: 'logit (the output before the link)', class: 'predicted class' };

const MAX_POINTS = 5000;
const GRID = 120;

export function mountDataset(root, route) {
  const id = route.id;
  let destroyed = false;
  let chart = null;
  let plane = null;
  let ds = null;
  let points = null;
  const infoEl = h('div', { id: 'dataset-info' }, h('p', { class: 'note' }, 'Loading…'));
  const runIn = h('input', { type: 'text', id: 'ds-run', value: route.query.run || '', placeholder: 'run_…', autocomplete: 'off', spellcheck: 'false' });
  const runForm = h(
    'form',
    { class: 'row' },
    h('div', { class: 'field' }, h('label', { for: 'ds-run' }, 'Show the function of run'), runIn),
    h('button', { type: 'submit' }, 'Show'),
  );
  runForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = runIn.value.trim();
    go(`#/datasets/${encodeURIComponent(id)}${v ? `?run=${encodeURIComponent(v)}` : ''}`);
  });
  const plotEl = h('div', { class: 'chart', id: 'dataset-plot' });
  const plotNote = h('div', {});
  const runNote = h('div', {});
  setChildren(root, h('h1', {}, 'Dataset ', h('span', { class: 'mono' }, id)), panel('About', infoEl), panel('Data and fitted function', runForm, runNote, plotEl, plotNote));

  function renderInfo() {
    const lf = ds.linear_fit && ds.linear_fit.loss;
    const lin = lf ? Object.entries(lf).map(([loss, v]) => `${loss}: ${risk(v.risk)}${v.linearly_fittable ? ' (fits exactly)' : ''}`).join(' · ') : '—';
    const gen = ds.generator ? `${ds.generator.name}, n = ${ds.generator.n ?? ds.n}, noise ${ds.generator.noise ?? '—'}` : '';
    const pairs = [
      ['kind', `${ds.kind}${gen ? ` (${gen})` : ''}`],
      ['samples', String(ds.n)],
      ['input shape', JSON.stringify(ds.input_shape)],
      ['task', `${ds.task}${ds.n_classes ? `, ${ds.n_classes} classes` : ''}`],
      ['best linear fit risk', lin],
    ];
    setChildren(infoEl, h('dl', { class: 'kv' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
  }

  function inputDim() {
    return (ds.input_shape || []).reduce((a, b) => a * b, 1);
  }

  async function draw(runId) {
    destroyChart(chart);
    chart = null;
    if (plane) plane.destroy();
    plane = null;
    setChildren(plotEl);
    setChildren(runNote);
    const d = inputDim();
    if (d !== 1 && d !== 2) {
      setChildren(plotNote, h('p', { class: 'note' }, `The inputs have ${d} dimensions; only 1-D and 2-D inputs are drawn.`));
      return;
    }
    let fn = null;
    let run = null;
    if (runId) {
      try {
        run = await get(`/v1/runs/${encodeURIComponent(runId)}`);
        fn = await get(q(`/v1/runs/${encodeURIComponent(runId)}/function`, d === 1 ? { nx: 400 } : { nx: GRID, ny: GRID }));
      } catch (e) {
        if (destroyed) return;
        const why = e instanceof ApiError && e.status === 409 ? `Run ${runId} has no end point yet` : `The function of run ${runId} could not be drawn`;
        setChildren(runNote, unavailable(why, e));
        fn = null;
      }
    }
    if (destroyed) return;
    const ys = points.y.map((y) => (Array.isArray(y) ? y[0] : y));
    const kind = fn ? VALUE_TEXT[fn.value_kind] || fn.value_kind || 'output' : '';
    if (d === 1) {
      chart = curveChart(plotEl, { x: points.x.map((r) => r[0]), y: ys }, fn);
      const bps = fn && Array.isArray(fn.breakpoints) ? fn.breakpoints : [];
      setChildren(
        plotNote,
        h(
          'p',
          { class: 'caption' },
          fn
            ? `Samples (dots) and the ${kind} of run #${run.index} (risk ${risk(run.final_risk)}) on ${fn.x.length} points: ${bps.length} breakpoint${bps.length === 1 ? '' : 's'} in the drawn range (dashed)${fn.breakpoints_complete === false ? ', not all located (the server stopped at its bound)' : ''}; between two breakpoints the network is affine.`
            : 'Samples. Choose a run to draw its fitted function.',
        ),
        fn && bps.length
          ? h('p', { class: 'caption', id: 'breakpoints' }, 'Breakpoints at x = ', bps.map((b, i) => [i ? ', ' : '', h('span', { class: 'mono bp' }, num(b, 4))]), ` (located to ${num(fn.bisection_tol)}).`)
          : null,
      );
    } else {
      // white is the value that separates the classes: 0 for a logit, 0.5 for 0/1 targets
      const center = fn && fn.value_kind === 'logit' ? 0 : fn && fn.value_kind === 'class' ? (ds.n_classes ? (ds.n_classes - 1) / 2 : 0.5) : ds.task === 'binary' ? 0.5 : ys.reduce((a, b) => a + b, 0) / ys.length;
      plane = planeChart(plotEl, { x: points.x, y: points.y }, fn ? { ...fn } : null, { center });
      plane.canvas.setAttribute('aria-label', fn ? `the ${kind} of run ${runId} over the samples` : 'the samples');
      setChildren(
        plotNote,
        h(
          'p',
          { class: 'caption', id: 'function-caption' },
          fn
            ? `The ${kind} of run #${run.index} (risk ${risk(run.final_risk)}) on a ${fn.x0.length} × ${fn.x1.length} grid: colour = value (white = ${num(center)}); thin lines = boundaries between the ${fn.regions} activation region${fn.regions === 1 ? '' : 's'} met on the grid, where the network switches from one affine piece to another.`
            : 'Samples coloured by target. Choose a run to draw its decision function and activation regions.',
        ),
        h(
          'div',
          { class: 'legend-swatches' },
          h('span', {}, h('span', { class: 'sw sw-blue' }), ds.task === 'binary' ? 'label 0' : 'low'),
          h('span', {}, h('span', { class: 'sw sw-red' }), ds.task === 'binary' ? 'label 1' : 'high'),
          fn ? h('span', {}, h('span', { class: 'sw sw-grad' }), 'function value') : null,
          fn ? h('span', {}, h('span', { class: 'sw sw-line' }), 'region boundary') : null,
        ),
      );
    }
    if (points.truncated) plotNote.appendChild(h('p', { class: 'note' }, `Only the first ${MAX_POINTS} of ${ds.n} samples are drawn.`));
  }

  async function load() {
    try {
      ds = await get(`/v1/datasets/${encodeURIComponent(id)}`);
      if (destroyed) return;
      renderInfo();
      const d = inputDim();
      if (d === 1 || d === 2) {
        // the points are paged like every list; x and y arrive per page
        const x = [];
        const y = [];
        let cursor = null;
        do {
          const page = await get(q(`/v1/datasets/${encodeURIComponent(id)}/points`, { limit: Math.min(5000, MAX_POINTS - x.length), cursor }));
          x.push(...page.x);
          y.push(...page.y);
          cursor = page.next_cursor;
        } while (cursor && x.length < MAX_POINTS);
        points = { x, y, truncated: !!cursor };
      }
      if (destroyed) return;
      await draw(route.query.run);
    } catch (e) {
      if (!destroyed) setChildren(infoEl, unavailable(`Dataset ${id} could not be loaded`, e));
    }
  }
  load();
  return {
    update(r) {
      runIn.value = r.query.run || '';
      if (ds && (points || inputDim() > 2)) draw(r.query.run);
    },
    destroy() {
      destroyed = true;
      destroyChart(chart);
      if (plane) plane.destroy();
    },
  };
}
