// The evidence behind a run's verdict (the run's `verdict`, server/certificate_json.h) and its
// spurious judgement (the run's `spurious`, server/spurious.h), drawn as read-only blocks for the
// experiment page. Every number shown is one the server sent; a test that did not run is said
// to have not run, never given a value.
import { h, num, risk, shortId, verdictBadge } from './util.js';

const words = (s) => String(s ?? '').replaceAll('_', ' ');
const yesNo = (b) => (b === true ? 'yes' : b === false ? 'no' : '—');

function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(Boolean).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function table(id, head, rows, numCols = []) {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { id },
      h('thead', {}, h('tr', {}, head.map((t, i) => h('th', { scope: 'col', class: numCols.includes(i) ? 'num' : '' }, t)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c, i) => h('td', { class: numCols.includes(i) ? 'num' : '' }, c))))),
    ),
  );
}

/** "held", "failed", "not run" for one of the certificate's tests. */
function outcome(ran, holds) {
  if (!ran) return h('span', { class: 'note' }, 'not run');
  return holds ? h('span', { class: 'badge verdict-certified_minimum' }, 'holds') : h('span', { class: 'badge verdict-saddle' }, 'fails');
}

/** The rows of the tests table: which checks ran, what they found. */
function testRows(v) {
  const rows = [];
  const rg = v.region || {};
  rows.push([
    'region certificate',
    outcome(rg.ran, rg.holds),
    rg.ran ? `bound B ${risk(rg.bound)}, R − B ${num(rg.bound_gap)}, ${rg.n_groups ?? '?'} group${rg.n_groups === 1 ? '' : 's'}${rg.exact ? ', exact fits' : ''}` : '',
  ]);
  if (rg.boundary && rg.boundary.ran)
    rows.push(['  … on boundary patterns', outcome(true, rg.boundary.holds), `${rg.boundary.evaluated} of ${rg.boundary.total} evaluated, bound ${risk(rg.boundary.bound)}`]);
  const ex = v.exact || {};
  rows.push([
    'exact local test',
    ex.applicable === false ? h('span', { class: 'note' }, 'not applicable') : outcome(ex.ran, ex.holds),
    ex.ran ? `value ${risk(ex.value)}${ex.not_minimum ? ', shows it is not a minimum' : ''}${ex.descent_verified ? ', descent verified' : ''}` : '',
  ]);
  const cv = v.curvature || {};
  rows.push([
    'curvature (Hessian)',
    cv.ran ? h('span', {}, cv.converged ? 'converged' : 'not converged') : h('span', { class: 'note' }, 'not run'),
    cv.ran ? `λ_min ${num(cv.lambda_min)}, λ_max ${num(cv.lambda_max)}${cv.near_zero_eigs ? `, ${cv.near_zero_eigs} near zero` : ''}${cv.dense ? ' (dense)' : ''}` : '',
  ]);
  const probes = Array.isArray(v.probes) ? v.probes : [];
  const escaped = probes.reduce((a, p) => a + (p.escaped || 0), 0);
  const tried = probes.reduce((a, p) => a + (p.tried || 0), 0);
  rows.push(['random probes', probes.length ? h('span', {}, escaped ? `${escaped} escaped` : 'none escaped') : h('span', { class: 'note' }, 'not run'), probes.length ? `${tried} tried at ${probes.length} radi${probes.length === 1 ? 'us' : 'i'}` : '']);
  const po = v.polish || {};
  rows.push(['polish', po.ran ? h('span', {}, po.accepted ? 'accepted' : 'rejected') : h('span', { class: 'note' }, 'not run'), po.ran ? `${words(po.method)}, risk ${risk(po.risk_before)} → ${risk(po.risk_after)}` : '']);
  return rows;
}

/**
 * The verdict blocks of a run: label and test that decided it, the numbers it rests on, the
 * tests that ran, the sample groups of the region certificate and the probes. v is the run's
 * `verdict` (not null).
 */
export function verdictBlocks(v) {
  const out = [];
  out.push(h('p', { id: 'verdict-label' }, verdictBadge(v.label), v.decided_by ? ` decided by ${words(v.decided_by)}` : ''));
  if (v.contradiction) out.push(h('p', { class: 'error-box' }, 'The tests contradict each other; the label is the cautious one.'));
  if (v.reason) out.push(h('p', { class: 'note' }, v.reason));
  const m = v.margin || {};
  const at = m.at ? ` (layer ${m.at.layer}, sample ${m.at.sample}, unit ${m.at.unit})` : '';
  const dead = Array.isArray(v.dead_units) ? v.dead_units.reduce((a, l) => a + (Array.isArray(l.dead) ? l.dead.length : 0), 0) : null;
  const units = Array.isArray(v.dead_units) ? v.dead_units.reduce((a, l) => a + (l.units || 0), 0) : null;
  out.push(
    kv([
      ['risk', risk(v.risk)],
      ['gradient norm', `${num(v.grad_norm)}${v.grad_norm_rel !== null && v.grad_norm_rel !== undefined ? ` (relative ${num(v.grad_norm_rel)})` : ''}`],
      ['stationary', yesNo(v.stationary)],
      ['activation margin', m.value === null || m.value === undefined ? 'no pattern depends on θ' : `${num(m.value)}${at}`],
      dead !== null ? ['dead units', `${dead} of ${units}`] : null,
      v.boundary ? ['units on a boundary', String(v.boundary.count ?? 0)] : null,
      ['symmetry zero modes', String(v.symmetry_zero_modes ?? '—')],
      ['parameters · samples', `${v.dim ?? '?'} · ${v.n_samples ?? '?'}`],
    ]),
  );
  out.push(h('h3', {}, 'Tests'), table('verdict-tests', ['Test', 'Result', 'Numbers'], testRows(v)));

  const rg = v.region || {};
  const groups = Array.isArray(rg.groups) ? rg.groups : [];
  if (groups.length) {
    out.push(
      h('h3', {}, `Region certificate: ${rg.n_groups ?? groups.length} sample group${(rg.n_groups ?? groups.length) === 1 ? '' : 's'}`),
      table(
        'cert-groups',
        ['Group', 'Samples', 'Risk sum', 'Best fit risk sum', 'Fit gap', 'Exact'],
        groups.map((g, i) => [String(i + 1), String(g.n_samples), num(g.risk_sum), num(g.fit_risk_sum), num(g.fit_gap), yesNo(g.fit_exact)]),
        [1, 2, 3, 4],
      ),
      h(
        'p',
        { class: 'caption' },
        'Each group of samples shares one activation pattern; the end point is a minimum of its region when every group already attains its best affine fit (risk sum = best fit risk sum).' +
          (rg.n_groups > groups.length ? ` The server lists the first ${groups.length} of ${rg.n_groups} groups.` : ''),
      ),
    );
  }
  const probes = Array.isArray(v.probes) ? v.probes : [];
  if (probes.length) {
    out.push(
      h('h3', {}, 'Probes'),
      table('verdict-probes', ['Radius', 'Tried', 'Escaped', 'Best risk'], probes.map((p) => [num(p.radius_abs ?? p.radius), String(p.tried), String(p.escaped), risk(p.best_risk)]), [0, 1, 2, 3]),
    );
  }
  if (v.descent) out.push(h('p', {}, `A descent direction was found (${words(v.descent.from)}${v.descent.curvature !== null && v.descent.curvature !== undefined ? `, curvature ${num(v.descent.curvature)}` : ''}).`));
  if (v.witness) out.push(h('p', {}, `A nearby point has risk ${risk(v.witness.risk)} at distance ${num(v.witness.radius)}.`));
  return out;
}

/**
 * The spurious judgement of a run (spurious.h): a minimum above the best point of its
 * objective by more than the tolerance, with that best run as witness. runHref(runId,
 * experimentId) makes the witness a link.
 */
export function spuriousBlocks(r, runHref) {
  const sp = r.spurious;
  if (!sp) return [h('p', { class: 'note', id: 'spurious-judgement' }, 'The server sent no spurious judgement for this run.')];
  const witness = sp.witness_run_id ? h('a', { href: runHref(sp.witness_run_id, sp.witness_experiment_id), id: 'witness-link' }, shortId(sp.witness_run_id)) : null;
  const tol = sp.tol !== null && sp.tol !== undefined ? ` (tolerance ${num(sp.tol)})` : '';
  const basis = sp.basis === 'stationary' ? ' It is taken as a minimum because it stopped at the gradient tolerance; no verdict yet.' : sp.basis === 'verdict' ? ' Its verdict says it is a minimum.' : '';
  let text;
  if (sp.flag === true) {
    text = h('p', {}, h('span', { class: 'badge badge-spurious' }, 'spurious'), ` a minimum whose risk is above the best of its objective by ${num(sp.gap)}${tol}; witness: `, witness || 'a better run', ` (risk ${risk(sp.best_risk)}).${basis}`);
  } else if (sp.flag === false && sp.global) {
    text = h('p', {}, h('span', { class: 'badge verdict-certified_minimum' }, 'global'), ` Not spurious: its risk is zero up to the tolerance${tol}, and no loss here is negative.`);
  } else if (sp.flag === false && sp.basis === 'verdict' && witness) {
    text = h('p', {}, `Not spurious: its verdict says it is not a minimum. A lower point exists (`, witness, `, gap ${num(sp.gap)}).`);
  } else if (sp.flag === false) {
    text = h('p', {}, `Not spurious: its risk is within the tolerance${tol} of the best of its objective${sp.gap !== null && sp.gap !== undefined ? ` (gap ${num(sp.gap)})` : ''}.${basis}`);
  } else {
    text = h(
      'p',
      { class: 'note' },
      r.status !== 'finished'
        ? `Undecided: the run is ${r.status}.`
        : 'Undecided: this end point is not known to be a minimum (no verdict yet, and it did not stop at the gradient tolerance), so it cannot be called a spurious one.',
      witness ? h('span', {}, ' A lower point exists: ', witness, ` (gap ${num(sp.gap)}).`) : '',
    );
  }
  text.id = 'spurious-judgement';
  return [text];
}
