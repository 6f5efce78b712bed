// The submission form: dataset (a generator or an uploaded CSV), architecture (hidden widths
// and activation), optimizer and restarts → POST /v1/experiments. The server is the only
// validator (the form is `novalidate`): a 422 problem's errors[].pointer (a JSON Pointer into
// the request body) is mapped back to the field that produced that part of the body, and the
// message is shown next to it (aria-invalid + aria-describedby, focus on the first). Pointers
// no field owns are listed above the form. One Idempotency-Key per form state makes a double
// click or a retry after a network error return the first experiment instead of a second.
import { ApiError, get, newIdempotencyKey, postJSON } from './api.js';
import { go } from './nav.js';
import { h, setChildren } from './util.js';

const GENERATORS = {
  xor: { dim: 2, label: 'xor (2-D, binary)' },
  two_moons: { dim: 2, label: 'two moons (2-D, binary)' },
  circles: { dim: 2, label: 'circles (2-D, binary)' },
  spirals: { dim: 2, label: 'spirals (2-D, classes)', classes: true },
  gaussian_blobs: { dim: null, label: 'Gaussian blobs (d-D, classes)', classes: true, dimField: true },
  sine: { dim: 1, label: 'sine (1-D, regression)' },
};

/** A labelled field with its error slot; returns {wrap, input, err}. */
function field(id, label, input, hint) {
  const err = h('span', { class: 'err', id: `${id}-err`, 'aria-live': 'polite' });
  input.id = id;
  input.setAttribute('aria-describedby', `${id}-err${hint ? ` ${id}-hint` : ''}`);
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null, err);
  return { wrap, input, err };
}

function numInput(attrs) {
  return h('input', { type: 'number', step: 'any', inputmode: 'decimal', ...attrs });
}

function select(options, value) {
  return h(
    'select',
    {},
    Object.entries(options).map(([v, text]) => h('option', { value: v, selected: v === value }, text)),
  );
}

/** The number in an input, or undefined when empty (so the server's default applies). */
function numberOf(input) {
  const s = input.value.trim();
  if (s === '') return undefined;
  const v = Number(s);
  return Number.isFinite(v) ? v : s; // a non-number goes to the server as text: it will say why
}

/** Parse "16, 16" into [16, 16]; throws with a message for the field. */
export function parseWidths(text) {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  if (!parts.length) throw new Error('give at least one hidden width, e.g. 8 or 16, 16');
  return parts.map((p) => {
    if (!/^\d+$/.test(p)) throw new Error(`"${p}" is not a whole number`);
    return Number(p);
  });
}

/**
 * Map a JSON Pointer from the server to a field id, using the longest matching prefix in
 * `owners` ({pointer prefix: field id}). Returns null when no field owns it.
 */
export function ownerOf(pointer, owners) {
  let best = null;
  let bestLen = -1;
  for (const [prefix, id] of Object.entries(owners)) {
    if ((pointer === prefix || pointer.startsWith(`${prefix}/`) || prefix === '') && prefix.length > bestLen) {
      best = id;
      bestLen = prefix.length;
    }
  }
  return bestLen > 0 ? best : null;
}

export function mountSubmit(root) {
  let key = newIdempotencyKey();
  let busy = false;
  const f = {};
  const add = (name, id, label, input, hint) => {
    f[name] = field(id, label, input, hint);
    return f[name].wrap;
  };

  // ---- dataset ----
  const srcGen = h('input', { type: 'radio', name: 'source', value: 'generator', id: 'f-src-gen', checked: true });
  const srcCsv = h('input', { type: 'radio', name: 'source', value: 'csv', id: 'f-src-csv' });
  const genOpts = Object.fromEntries(Object.entries(GENERATORS).map(([k, g]) => [k, g.label]));
  const genFields = h(
    'div',
    { class: 'fields' },
    add('genName', 'f-gen-name', 'Generator', select(genOpts, 'xor')),
    add('genN', 'f-gen-n', 'Samples (n)', numInput({ value: '40', min: 1, step: 1 })),
    add('genNoise', 'f-gen-noise', 'Noise', numInput({ value: '0.05', min: 0 })),
    add('genSeed', 'f-gen-seed', 'Data seed', numInput({ value: '1', min: 0, step: 1 })),
    add('genClasses', 'f-gen-classes', 'Classes', numInput({ value: '3', min: 2, step: 1 })),
    add('genDim', 'f-gen-dim', 'Blob dimension', numInput({ value: '2', min: 1, step: 1 })),
  );
  const csvFields = h(
    'div',
    { class: 'fields hidden' },
    add('csvFile', 'f-csv-file', 'CSV file', h('input', { type: 'file', accept: '.csv,text/csv' }), 'numbers only; targets in the last column(s)'),
    add('csvYCols', 'f-csv-ycols', 'Target columns', numInput({ value: '1', min: 1, step: 1 })),
    add('csvHeader', 'f-csv-header', 'First line is a header', h('select', {}, h('option', { value: 'auto' }, 'detect'), h('option', { value: 'true' }, 'yes'), h('option', { value: 'false' }, 'no'))),
  );

  // ---- architecture ----
  const archFields = h(
    'div',
    { class: 'fields' },
    add('inputDim', 'f-input-dim', 'Input dimension', numInput({ value: '2', min: 1, step: 1 }), 'set from the generator; edit for CSV data'),
    add('hidden', 'f-hidden', 'Hidden widths', h('input', { type: 'text', value: '4', autocomplete: 'off', spellcheck: 'false' }), 'one dense layer per number, e.g. 8 or 16, 16'),
    add('act', 'f-activation', 'Activation', select({ relu: 'ReLU', leaky_relu: 'leaky ReLU', pwl: 'piecewise linear (two slopes)', identity: 'identity (linear network)' }, 'relu')),
    add('slope', 'f-slope', 'Negative slope', numInput({ value: '0.01' })),
    add('sNeg', 'f-sneg', 'Slope for x < 0', numInput({ value: '0.1' })),
    add('sPos', 'f-spos', 'Slope for x > 0', numInput({ value: '1' })),
    add('out', 'f-out', 'Output units', numInput({ value: '1', min: 1, step: 1 })),
  );

  // ---- training ----
  const trainFields = h(
    'div',
    { class: 'fields' },
    add('loss', 'f-loss', 'Loss', select({ squared: 'squared', absolute: 'absolute', huber: 'Huber', logistic: 'logistic', cross_entropy: 'cross-entropy', hinge: 'hinge' }, 'squared')),
    add('opt', 'f-opt', 'Optimizer', select({ gd: 'gradient descent', sgd: 'SGD (mini-batch)', momentum: 'momentum', nesterov: 'Nesterov', adam: 'Adam' }, 'gd')),
    add('lr', 'f-lr', 'Learning rate', numInput({ value: '0.05', min: 0 })),
    add('batch', 'f-batch', 'Batch size', numInput({ value: '16', min: 1, step: 1 })),
    add('init', 'f-init', 'Initialisation', select({ he: 'He (normal)', he_uniform: 'He (uniform)', xavier: 'Xavier (normal)', xavier_uniform: 'Xavier (uniform)' }, 'he')),
    add('restarts', 'f-restarts', 'Restarts (runs)', numInput({ value: '24', min: 1, step: 1 })),
    add('maxSteps', 'f-max-steps', 'Max steps per run', numInput({ value: '3000', min: 1, step: 1 })),
    add('seed', 'f-seed', 'Seed', numInput({ value: '7', min: 0, step: 1 })),
    add('gradTol', 'f-grad-tol', 'Stop at gradient norm', numInput({ value: '1e-8', min: 0 })),
  );

  const summary = h('div', { class: 'error-box hidden', role: 'alert', tabindex: '-1', id: 'form-errors' });
  const submitBtn = h('button', { type: 'submit', class: 'primary', id: 'f-submit' }, 'Submit experiment');
  const state = h('span', { class: 'note', 'aria-live': 'polite' });
  const preview = h('pre', { class: 'mono', id: 'f-preview' });
  const form = h(
    'form',
    { class: 'submit', novalidate: true, 'aria-describedby': 'form-errors' },
    summary,
    h(
      'fieldset',
      {},
      h('legend', {}, 'Dataset'),
      h('div', { class: 'radios', role: 'radiogroup', 'aria-label': 'Dataset source' }, h('label', {}, srcGen, 'Generated data'), h('label', {}, srcCsv, 'CSV upload')),
      genFields,
      csvFields,
    ),
    h('fieldset', {}, h('legend', {}, 'Architecture'), archFields),
    h('fieldset', {}, h('legend', {}, 'Training'), trainFields),
    h('details', {}, h('summary', {}, 'The request this form sends'), preview),
    h('div', { class: 'form-actions' }, submitBtn, state),
  );
  setChildren(root, h('h1', {}, 'New experiment'), h('p', { class: 'note' }, 'Many training runs from random starts; each end point gets a verdict, and the end points are grouped into basins.'), form);

  const limitsNote = (lim) => {
    if (lim.max_restarts) f.restarts.input.max = lim.max_restarts;
    if (lim.max_steps) f.maxSteps.input.max = lim.max_steps;
    if (lim.max_points) f.genN.input.max = lim.max_points;
  };
  get('/v1/limits').then(limitsNote, () => {});

  // ---- dependent fields ----
  const isCsv = () => srcCsv.checked;
  function sync() {
    csvFields.classList.toggle('hidden', !isCsv());
    genFields.classList.toggle('hidden', isCsv());
    const g = GENERATORS[f.genName.input.value];
    f.genClasses.wrap.classList.toggle('hidden', !(g && g.classes));
    f.genDim.wrap.classList.toggle('hidden', !(g && g.dimField));
    if (!isCsv() && g) {
      f.inputDim.input.value = g.dim !== null ? String(g.dim) : f.genDim.input.value;
      f.inputDim.input.readOnly = true;
    } else {
      f.inputDim.input.readOnly = false;
    }
    const act = f.act.input.value;
    f.slope.wrap.classList.toggle('hidden', act !== 'leaky_relu');
    f.sNeg.wrap.classList.toggle('hidden', act !== 'pwl');
    f.sPos.wrap.classList.toggle('hidden', act !== 'pwl');
    f.batch.wrap.classList.toggle('hidden', f.opt.input.value !== 'sgd');
  }
  let csvText = null;
  f.csvFile.input.addEventListener('change', async () => {
    const file = f.csvFile.input.files[0];
    csvText = file ? await file.text() : null;
    if (csvText) {
      // a first guess at the input dimension: columns of the first data line minus targets
      const first = csvText.split(/\r?\n/).find((l) => /\d/.test(l) && !/[a-df-z]/i.test(l));
      const cols = first ? first.split(',').length : 0;
      const ycols = Number(f.csvYCols.input.value) || 1;
      if (cols > ycols) f.inputDim.input.value = String(cols - ycols);
    }
    refreshPreview();
  });

  // ---- the request body and who owns which part of it ----
  let owners = {};
  function build() {
    const own = {};
    const body = {};
    const act = f.act.input.value;
    if (isCsv()) {
      body.dataset = { kind: 'csv', csv: csvText ?? '' };
      const y = numberOf(f.csvYCols.input);
      if (y !== undefined) body.dataset.y_cols = y;
      if (f.csvHeader.input.value !== 'auto') body.dataset.header = f.csvHeader.input.value === 'true';
      Object.assign(own, { '/dataset': 'f-csv-file', '/dataset/csv': 'f-csv-file', '/dataset/y_cols': 'f-csv-ycols', '/dataset/header': 'f-csv-header', '/dataset/input_shape': 'f-input-dim' });
    } else {
      const name = f.genName.input.value;
      const g = { name, n: numberOf(f.genN.input), noise: numberOf(f.genNoise.input), seed: numberOf(f.genSeed.input) };
      if (GENERATORS[name].classes) g.classes = numberOf(f.genClasses.input);
      if (GENERATORS[name].dimField) g.dim = numberOf(f.genDim.input);
      for (const k of Object.keys(g)) if (g[k] === undefined) delete g[k];
      body.dataset = { kind: 'generator', generator: g };
      Object.assign(own, {
        '/dataset': 'f-gen-name',
        '/dataset/generator': 'f-gen-name',
        '/dataset/generator/name': 'f-gen-name',
        '/dataset/generator/n': 'f-gen-n',
        '/dataset/generator/noise': 'f-gen-noise',
        '/dataset/generator/seed': 'f-gen-seed',
        '/dataset/generator/classes': 'f-gen-classes',
        '/dataset/generator/dim': 'f-gen-dim',
      });
    }
    let widths = [];
    let widthError = null;
    try {
      widths = parseWidths(f.hidden.input.value);
    } catch (e) {
      widthError = e.message;
    }
    const layers = [];
    own['/architecture'] = 'f-hidden';
    own['/architecture/layers'] = 'f-hidden';
    own['/architecture/input_shape'] = 'f-input-dim';
    for (const w of widths) {
      own[`/architecture/layers/${layers.length}`] = 'f-hidden';
      layers.push({ type: 'dense', units: w });
      const a = { type: 'activation', kind: act };
      if (act === 'leaky_relu') a.slope = numberOf(f.slope.input);
      if (act === 'pwl') Object.assign(a, { s_neg: numberOf(f.sNeg.input), s_pos: numberOf(f.sPos.input) });
      const at = `/architecture/layers/${layers.length}`;
      Object.assign(own, { [at]: 'f-activation', [`${at}/kind`]: 'f-activation', [`${at}/slope`]: 'f-slope', [`${at}/s_neg`]: 'f-sneg', [`${at}/s_pos`]: 'f-spos' });
      layers.push(a);
    }
    own[`/architecture/layers/${layers.length}`] = 'f-out';
    layers.push({ type: 'dense', units: numberOf(f.out.input) });
    body.architecture = { input_shape: [numberOf(f.inputDim.input)], layers };
    body.loss = f.loss.input.value;
    body.optimizer = { kind: f.opt.input.value, lr: numberOf(f.lr.input) };
    if (f.opt.input.value === 'sgd') body.optimizer.batch = numberOf(f.batch.input);
    body.init = { kind: f.init.input.value };
    body.restarts = numberOf(f.restarts.input);
    body.max_steps = numberOf(f.maxSteps.input);
    body.seed = numberOf(f.seed.input);
    const tol = numberOf(f.gradTol.input);
    if (tol !== undefined) body.stop = { grad_tol: tol };
    Object.assign(own, {
      '/loss': 'f-loss',
      '/optimizer': 'f-opt',
      '/optimizer/kind': 'f-opt',
      '/optimizer/lr': 'f-lr',
      '/optimizer/batch': 'f-batch',
      '/init': 'f-init',
      '/restarts': 'f-restarts',
      '/max_steps': 'f-max-steps',
      '/seed': 'f-seed',
      '/stop': 'f-grad-tol',
      '/stop/grad_tol': 'f-grad-tol',
    });
    strip(body);
    owners = own;
    return { body, widthError };
  }
  function strip(o) {
    for (const k of Object.keys(o)) {
      if (o[k] === undefined) delete o[k];
      else if (o[k] && typeof o[k] === 'object' && !Array.isArray(o[k])) strip(o[k]);
      else if (Array.isArray(o[k])) o[k].forEach((x) => x && typeof x === 'object' && strip(x));
    }
  }
  function refreshPreview() {
    const { body } = build();
    const shown = JSON.parse(JSON.stringify(body));
    if (shown.dataset && typeof shown.dataset.csv === 'string' && shown.dataset.csv.length > 200) shown.dataset.csv = `${shown.dataset.csv.slice(0, 200)}… (${csvText.length} bytes)`;
    preview.textContent = `POST /v1/experiments\nContent-Type: application/json\nIdempotency-Key: ${key}\n\n${JSON.stringify(shown, null, 2)}`;
  }

  // ---- errors ----
  const byId = () => Object.fromEntries(Object.values(f).map((x) => [x.input.id, x]));
  function clearErrors() {
    for (const x of Object.values(f)) {
      x.err.textContent = '';
      x.input.removeAttribute('aria-invalid');
    }
    summary.classList.add('hidden');
    setChildren(summary);
  }
  function showErrors(list, title) {
    const fields = byId();
    const loose = [];
    let first = null;
    for (const e of list) {
      const id = ownerOf(e.pointer || '', owners);
      const fx = id && fields[id];
      if (fx && !fx.wrap.closest('.hidden')) {
        fx.err.textContent = fx.err.textContent ? `${fx.err.textContent}; ${e.message}` : e.message;
        fx.input.setAttribute('aria-invalid', 'true');
        if (!first) first = fx.input;
      } else {
        loose.push(e);
      }
    }
    if (loose.length || title) {
      setChildren(
        summary,
        h('strong', {}, title || 'The server refused the experiment.'),
        loose.length ? h('ul', {}, loose.map((e) => h('li', {}, e.pointer ? h('code', {}, e.pointer) : null, e.pointer ? ': ' : '', e.message))) : null,
      );
      summary.classList.remove('hidden');
    }
    (first || summary).focus();
  }

  // ---- submit ----
  form.addEventListener('input', () => {
    key = newIdempotencyKey(); // a changed form is a new request
    refreshPreview();
  });
  form.addEventListener('change', () => {
    sync();
    refreshPreview();
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (busy) return;
    clearErrors();
    const { body, widthError } = build();
    if (widthError) {
      showErrors([{ pointer: '/architecture/layers', message: widthError }]);
      return;
    }
    if (isCsv() && !csvText) {
      showErrors([{ pointer: '/dataset/csv', message: 'choose a CSV file' }]);
      return;
    }
    busy = true;
    submitBtn.disabled = true;
    state.textContent = 'Submitting…';
    try {
      const res = await postJSON('/v1/experiments', body, { 'Idempotency-Key': key });
      const id = (res.data && res.data.id) || (res.location || '').split('/').pop();
      state.textContent = `Accepted: ${id}`;
      go(`#/experiments/${encodeURIComponent(id)}`);
    } catch (e) {
      state.textContent = '';
      if (e instanceof ApiError && e.problem && Array.isArray(e.problem.errors) && e.problem.errors.length) {
        showErrors(e.problem.errors, e.status === 422 ? null : e.detail);
      } else if (e instanceof ApiError && (e.status === 429 || e.status === 503)) {
        showErrors([], `The server is busy (${e.status}): ${e.detail || 'try again shortly'}.`);
      } else {
        showErrors([], e instanceof ApiError ? `The server answered ${e.status}: ${e.detail}` : `The request failed: ${e.message}`);
      }
    } finally {
      busy = false;
      submitBtn.disabled = false;
    }
  });
  sync();
  refreshPreview();
  return {};
}
