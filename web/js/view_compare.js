// Compare two runs (#/compare?a=RUN&b=RUN): both end points side by side, and from
// GET /v1/compare the risk along the straight path between them — after aligning B's hidden
// units to A's (the network's permutation/scaling symmetry) and without — with the barrier
// of each path (its highest risk above the higher end point), the distance between the two
// fitted functions on the data, how many activation patterns agree, and the parameter
// distance before and after alignment. Every number is the server's.
import { ApiError, get, q } from './api.js';
import { destroyChart, pathChart } from './charts.js';
import { go } from './nav.js';
import { badge, h, num, panel, risk, setChildren, shortId, unavailable, verdictBadge } from './util.js';

function spuriousText(sp) {
  if (!sp || sp.flag === null || sp.flag === undefined) return h('span', { class: 'note' }, 'undecided');
  if (sp.flag) return h('span', { class: 'badge badge-spurious' }, 'spurious');
  return sp.global ? 'no (global)' : 'no';
}

function runCard(label, r) {
  const kv = [
    ['final risk', risk(r.final_risk)],
    ['gradient norm', num(r.grad_norm)],
    ['steps', String(r.steps ?? '—')],
    ['verdict', verdictBadge(r.verdict_label || (r.verdict && r.verdict.label))],
    ['spurious', spuriousText(r.spurious)],
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
      cmp = await get(q('/v1/compare', { a, b, unaligned: 'true' }));
    } catch (e) {
      if (destroyed) return;
      const msg =
        e instanceof ApiError && e.status === 409
          ? 'A run has no end point yet'
          : e instanceof ApiError && e.status === 422
            ? 'These runs cannot be compared'
            : 'The comparison could not be computed';
      setChildren(chartNote, unavailable(msg, e));
      return;
    }
    if (destroyed) return;
    const card = (k, v, sub, key) => h('div', { class: 'card', 'data-key': key }, h('div', { class: 'k' }, k), h('div', { class: 'v' }, v), h('div', { class: 's' }, sub || ''));
    const bar = cmp.barrier || {};
    const pd = cmp.param_distance || {};
    const al = cmp.alignment || {};
    setChildren(
      numbersEl,
      card('Barrier (aligned)', num(bar.aligned), 'highest risk on the aligned path above the higher end point', 'barrier-aligned'),
      card('Barrier (unaligned)', num(bar.unaligned), 'the same on the path between the end points as given', 'barrier-unaligned'),
      card('Function distance', num(cmp.function_distance), `RMS difference of the outputs on the data (output RMS of A: ${num(cmp.output_rms)})`, 'function-distance'),
      card('Risk difference', num(cmp.risk_diff), `data risk A ${risk(cmp.risk_a)} · B ${risk(cmp.risk_b)}`, 'risk-diff'),
      cmp.pattern_agreement ? card('Activation patterns', patternText(cmp.pattern_agreement), 'agreement after alignment, over the samples', 'patterns') : null,
      card(
        'Parameter distance',
        num(pd.aligned),
        `before alignment ${num(pd.unaligned)}; ${al.moved ?? '?'} of ${al.units ?? '?'} hidden units moved${al.converged === false ? ' (alignment did not converge)' : ''}`,
        'param-distance',
      ),
    );
    if (cmp.path && Array.isArray(cmp.path.t) && cmp.path.t.length) {
      chart = pathChart(chartEl, cmp.path);
      setChildren(
        chartNote,
        h(
          'p',
          { class: 'caption' },
          `Data risk at (1 − t)·θ_A + t·θ_B on ${cmp.grid ?? cmp.path.t.length} points. The aligned path first permutes and rescales the hidden units of B to match A, so a barrier that disappears after alignment came from the symmetry, not from the landscape.`,
        ),
      );
    } else {
      setChildren(chartNote, h('p', { class: 'note' }, 'The server sent no path profile.'));
    }
  }

  // {units, samples, pattern_units}: the share of (sample, unit) pairs on the same side and of
  // samples with identical patterns; both are 1 when no unit has a pattern (pattern_units 0)
  function patternText(p) {
    if (!p || typeof p !== 'object') return '—';
    if (!p.pattern_units) return 'no pattern units';
    return `${(100 * p.units).toFixed(1)}% of units · ${(100 * p.samples).toFixed(1)}% of samples`;
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
