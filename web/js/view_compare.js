// Compare two runs (#/compare?a=RUN&b=RUN): both end points side by side, and from
// GET /v1/compare the risk along the straight path between them — after aligning B's hidden
// units to A's (the network's permutation/scaling symmetry) and without — with the barrier
// height of each path and the distance between the two fitted functions. When the server has
// no comparison endpoint the view says so and still shows what the runs themselves report.
import { ApiError, get, q } from './api.js';
import { destroyChart, pathChart } from './charts.js';
import { go } from './nav.js';
import { badge, h, num, panel, risk, setChildren, shortId, unavailable, verdictBadge } from './util.js';

function runCard(label, r) {
  const kv = [
    ['final risk', risk(r.final_risk)],
    ['gradient norm', num(r.grad_norm)],
    ['steps', String(r.steps ?? '—')],
    ['verdict', verdictBadge(r.verdict_label || (r.verdict && r.verdict.label))],
  ];
  return h(
    'div',
    { class: 'card' },
    h('div', { class: 'k' }, label),
    h('div', { class: 'v' }, h('a', { href: `#/experiments/${encodeURIComponent(r.experiment_id)}?run=${encodeURIComponent(r.id)}` }, `run #${r.index}`), ' ', badge(r.status)),
    h('div', { class: 's' }, shortId(r.id)),
    h('dl', { class: 'kv' }, kv.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
  );
}

export function mountCompare(root, route) {
  let chart = null;
  let destroyed = false;
  const inA = h('input', { type: 'text', id: 'cmp-a', value: route.query.a || '', placeholder: 'run_…', autocomplete: 'off', spellcheck: 'false' });
  const inB = h('input', { type: 'text', id: 'cmp-b', value: route.query.b || '', placeholder: 'run_…', autocomplete: 'off', spellcheck: 'false' });
  const form = h(
    'form',
    { class: 'row', id: 'compare-form' },
    h('div', { class: 'field' }, h('label', { for: 'cmp-a' }, 'Run A'), inA),
    h('div', { class: 'field' }, h('label', { for: 'cmp-b' }, 'Run B'), inB),
    h('button', { type: 'submit', class: 'primary' }, 'Compare'),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    go(`#/compare?a=${encodeURIComponent(inA.value.trim())}&b=${encodeURIComponent(inB.value.trim())}`);
  });
  const runsEl = h('div', { class: 'cards', id: 'compare-runs' });
  const numbersEl = h('div', { class: 'cards', id: 'compare-numbers' });
  const chartEl = h('div', { class: 'chart', id: 'path-chart' });
  const chartNote = h('div', { id: 'path-note' });
  setChildren(
    root,
    h('h1', {}, 'Compare runs'),
    panel('Runs', form, runsEl),
    panel('Path between the end points', numbersEl, chartEl, chartNote),
  );

  async function load(a, b) {
    destroyChart(chart);
    chart = null;
    setChildren(runsEl);
    setChildren(numbersEl);
    setChildren(chartEl);
    if (!a || !b) {
      setChildren(chartNote, h('p', { class: 'note' }, 'Give two run ids (the experiment page links here from a selected run).'));
      return;
    }
    setChildren(chartNote, h('p', { class: 'note' }, 'Loading…'));
    const [ra, rb] = await Promise.all([a, b].map((x) => get(`/v1/runs/${encodeURIComponent(x)}`).catch((e) => e)));
    if (destroyed) return;
    setChildren(
      runsEl,
      ra instanceof Error ? unavailable(`Run A (${a}) could not be loaded`, ra) : runCard('Run A', ra),
      rb instanceof Error ? unavailable(`Run B (${b}) could not be loaded`, rb) : runCard('Run B', rb),
    );
    let cmp;
    try {
      cmp = await get(q('/v1/compare', { a, b }));
    } catch (e) {
      if (destroyed) return;
      const msg = e instanceof ApiError && e.status === 404 && /no resource at this path/.test(e.detail || '')
        ? 'The path profile, barrier and function distance are not available: this server has no GET /v1/compare yet'
        : 'The comparison could not be computed';
      setChildren(chartNote, unavailable(msg, e));
      return;
    }
    if (destroyed) return;
    const card = (k, v, s) => h('div', { class: 'card' }, h('div', { class: 'k' }, k), h('div', { class: 'v' }, v), h('div', { class: 's' }, s || ''));
    const bar = cmp.barrier || {};
    setChildren(
      numbersEl,
      card('Barrier (aligned)', num(bar.aligned), 'highest risk on the path above the higher end point'),
      card('Barrier (unaligned)', num(bar.unaligned), 'same, without undoing the symmetry'),
      card('Function distance', num(cmp.function_distance), 'between the two fitted functions on the data'),
      card('Risk difference', num(cmp.risk_diff), `A ${risk(cmp.risk_a)} · B ${risk(cmp.risk_b)}`),
      cmp.pattern_agreement ? card('Activation patterns', patternText(cmp.pattern_agreement), 'agreement on the samples') : null,
    );
    if (cmp.path && Array.isArray(cmp.path.t) && cmp.path.t.length) {
      chart = pathChart(chartEl, cmp.path);
      setChildren(
        chartNote,
        h(
          'p',
          { class: 'caption' },
          'Risk at (1 − t)·θ_A + t·θ_B. The aligned path first permutes and rescales the hidden units of B to match A, so a barrier that disappears after alignment came from the symmetry, not from the landscape.',
        ),
      );
    } else {
      setChildren(chartNote, h('p', { class: 'note' }, 'The server sent no path profile.'));
    }
  }

  function patternText(p) {
    if (typeof p === 'number') return `${(100 * p).toFixed(1)}%`;
    if (p && typeof p === 'object') {
      if (typeof p.aligned === 'number') return `${(100 * p.aligned).toFixed(1)}%${typeof p.unaligned === 'number' ? ` (unaligned ${(100 * p.unaligned).toFixed(1)}%)` : ''}`;
      return Object.entries(p).map(([k, v]) => `${k} ${typeof v === 'number' ? num(v) : JSON.stringify(v)}`).join(' · ');
    }
    return '—';
  }

  load(route.query.a, route.query.b);
  return {
    update(r) {
      inA.value = r.query.a || '';
      inB.value = r.query.b || '';
      load(r.query.a, r.query.b);
    },
    destroy() {
      destroyed = true;
      destroyChart(chart);
    },
  };
}
