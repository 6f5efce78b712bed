// Charts of the dashboard. Line, bar and scatter charts are uPlot (vendored from npm into
// vendor/, MIT); the 2-D decision-function heat map is drawn on a plain canvas because uPlot
// has no image plots. Every chart follows its container's width (ResizeObserver), so the page
// works at 1280×800 and in a narrow window alike. Pure helpers (histogram binning, series
// alignment) are exported separately so they can be read and checked on their own.
import uPlot from '../vendor/uPlot.esm.js';

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22'];
const SPURIOUS = '#d62728';
const BENIGN = '#3b6fb6';
const RISK_FLOOR = 1e-16; // a risk of exactly 0 is drawn in the lowest bin on log axes

const sup = { '-': '⁻', 0: '⁰', 1: '¹', 2: '²', 3: '³', 4: '⁴', 5: '⁵', 6: '⁶', 7: '⁷', 8: '⁸', 9: '⁹' };
/** "10⁻³" for a log10 value that is an integer, else a short number. */
export function pow10Label(e) {
  const r = Math.round(e);
  if (Math.abs(e - r) < 1e-9) return `10${String(r).replace(/./g, (c) => sup[c] || c)}`;
  return Number(10 ** e).toPrecision(2);
}

/** Ticks of a log10 axis: whole decades when the range spans at least two, else uPlot's own. */
function decadeSplits(u, _axisIdx, min, max, incr) {
  const lo = Math.ceil(min);
  const hi = Math.floor(max);
  if (hi - lo >= 1) {
    const step = Math.max(1, Math.ceil((hi - lo + 1) / Math.max(2, Math.floor(u.bbox.width / devicePixelRatio / 70))));
    const out = [];
    for (let e = lo; e <= hi; e += step) out.push(e);
    return out;
  }
  const out = [];
  const start = Math.ceil(min / incr) * incr;
  for (let v = start; v <= max + 1e-12; v += incr) out.push(Number(v.toFixed(10)));
  return out;
}

/** Create a uPlot chart that fills `container`'s width; destroy with destroyChart(). */
export function makeChart(container, opts, data) {
  const width = Math.max(240, container.clientWidth || 600);
  const u = new uPlot({ height: 260, ...opts, width }, data, container);
  const ro = new ResizeObserver(() => {
    const w = Math.max(240, container.clientWidth);
    if (Math.abs(w - u.width) > 2) u.setSize({ width: w, height: u.height });
  });
  ro.observe(container);
  u.basinRo = ro;
  return u;
}

export function destroyChart(u) {
  if (!u) return;
  if (u.basinRo) u.basinRo.disconnect();
  u.destroy();
}

/**
 * Bin final risks on a log10 axis. Returns {centers, counts, marked, edges, lo, width}: counts
 * of all risks per bin and `marked` counts of the risks whose run id is in markedIds (the runs
 * of spurious basins), centers in log10 units.
 */
export function logHistogram(values, { bins = 40, ids = null, markedIds = null } = {}) {
  const logs = [];
  const marks = [];
  values.forEach((v, i) => {
    if (v === null || v === undefined || !Number.isFinite(v) || v < 0) return;
    logs.push(Math.log10(Math.max(v, RISK_FLOOR)));
    marks.push(!!(markedIds && ids && markedIds.has(ids[i])));
  });
  if (!logs.length) return { centers: [], counts: [], marked: [], edges: [], lo: 0, width: 1 };
  let lo = Infinity;
  let hi = -Infinity;
  for (const l of logs) {
    if (l < lo) lo = l;
    if (l > hi) hi = l;
  }
  // all values equal: one bin centred on them (two bins would put the bar beside the value)
  const single = hi - lo < 1e-9;
  if (single) {
    lo -= 0.25;
    hi += 0.25;
  }
  const n = single ? 1 : Math.max(1, Math.min(bins, Math.ceil(Math.sqrt(logs.length) * 2)));
  const width = (hi - lo) / n;
  const counts = new Array(n).fill(0);
  const marked = new Array(n).fill(0);
  logs.forEach((l, i) => {
    const b = Math.min(n - 1, Math.floor((l - lo) / width));
    counts[b]++;
    if (marks[i]) marked[b]++;
  });
  const centers = counts.map((_, b) => lo + (b + 0.5) * width);
  const edges = counts.map((_, b) => lo + b * width).concat([hi]);
  return { centers, counts, marked, edges, lo, width };
}

/**
 * Place labels centred at xs (pixels, any order) of the given widths in up to `rows` rows
 * without overlap (gap pixels apart): returns, per label, its row or -1 when it does not fit.
 * Labels are placed left to right, each in the first row where it clears the previous one.
 */
export function labelRows(xs, widths, { rows = 2, gap = 4 } = {}) {
  const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
  const right = new Array(rows).fill(-Infinity);
  const out = new Array(xs.length).fill(-1);
  for (const i of order) {
    const left = xs[i] - widths[i] / 2;
    for (let r = 0; r < rows; r++) {
      if (left >= right[r] + gap) {
        out[i] = r;
        right[r] = xs[i] + widths[i] / 2;
        break;
      }
    }
  }
  return out;
}

/** Vertical marker lines with labels at given x values (data units) — a uPlot draw hook.
 * Labels that would overlap go to a second row, or are left out (the line stays). */
function markersPlugin(getMarkers) {
  return {
    hooks: {
      draw: (u) => {
        const ctx = u.ctx;
        const { top, height } = u.bbox;
        ctx.save();
        ctx.font = `${Math.round(11 * devicePixelRatio)}px system-ui, sans-serif`;
        ctx.textAlign = 'center';
        const shown = [];
        for (const m of getMarkers()) {
          const x = u.valToPos(m.x, 'x', true);
          if (!Number.isFinite(x)) continue;
          ctx.strokeStyle = m.color;
          ctx.fillStyle = m.color;
          ctx.lineWidth = (m.width || 1.5) * devicePixelRatio;
          ctx.setLineDash(m.dash ? m.dash.map((d) => d * devicePixelRatio) : []);
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          if (m.label) shown.push({ x, m });
        }
        const rowsOf = labelRows(
          shown.map((s) => s.x),
          shown.map((s) => ctx.measureText(s.m.label).width),
          { gap: 4 * devicePixelRatio },
        );
        shown.forEach((s, i) => {
          if (rowsOf[i] < 0) return;
          const y = top + (12 + 13 * rowsOf[i]) * devicePixelRatio;
          const w = ctx.measureText(s.m.label).width;
          ctx.fillStyle = 'rgba(255,255,255,0.85)';
          ctx.fillRect(s.x - w / 2 - 2, y - 10 * devicePixelRatio, w + 4, 13 * devicePixelRatio);
          ctx.fillStyle = s.m.color;
          ctx.fillText(s.m.label, s.x, y);
        });
        ctx.restore();
      },
    },
  };
}

/** Where a basin sits on the final-risk axis: its representative's stored final risk (the
 * objective value the runs are binned by), else its data risk. */
export function basinRisk(b) {
  return typeof b.final_risk === 'number' ? b.final_risk : b.risk;
}

/**
 * Histogram of final risks (log axis) with basins marked: a line per basin at its risk (red and
 * labelled "S" when spurious), and the runs that belong to spurious basins stacked in red.
 * Returns {update(values, ids, basins, flaggedIds)} and destroy().
 */
export function riskHistogram(container, { height = 240 } = {}) {
  let basins = [];
  let u = null;
  let xRange = [0, 1];
  const bars = uPlot.paths.bars({ size: [0.92, 80], align: 0 });
  const opts = {
    height,
    scales: { x: { time: false, range: () => xRange }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.25)] } },
    axes: [
      { label: 'final risk (log scale)', values: (_u, ticks) => ticks.map(pow10Label), space: 60, splits: decadeSplits },
      { label: 'runs', size: 50 },
    ],
    series: [
      { label: 'log₁₀ risk', value: (_u, v) => (v === null ? '—' : pow10Label(v)) },
      { label: 'runs', fill: '#3b6fb6cc', stroke: BENIGN, paths: bars, points: { show: false } },
      { label: 'in spurious basins', fill: '#d62728dd', stroke: SPURIOUS, paths: bars, points: { show: false } },
    ],
    legend: { live: true },
    plugins: [
      markersPlugin(() =>
        basins
          .filter((b) => Number.isFinite(basinRisk(b)))
          .map((b) => ({
            x: Math.log10(Math.max(basinRisk(b), RISK_FLOOR)),
            color: b.spurious ? SPURIOUS : '#333',
            dash: b.spurious ? null : [4, 3],
            label: `${b.spurious ? 'S' : 'B'}${b.index}`,
          })),
      ),
    ],
  };
  const api = {
    bins: null,
    update(values, ids, newBasins, flaggedIds = null) {
      basins = newBasins || [];
      // runs in spurious basins: the basins' member lists, plus runs flagged spurious themselves
      const spuriousIds = new Set(flaggedIds || []);
      for (const b of basins) if (b.spurious && Array.isArray(b.member_run_ids)) b.member_run_ids.forEach((id) => spuriousIds.add(id));
      const hist = logHistogram(values, { ids, markedIds: spuriousIds });
      api.bins = hist;
      // keep the basin markers inside the x range
      let xs = hist.centers;
      const data = [xs, hist.counts.map((c) => (c > 0 ? c : null)), hist.marked.map((m) => (m > 0 ? m : null))];
      if (!xs.length) {
        xs = [0];
        data[0] = xs;
        data[1] = [null];
        data[2] = [null];
      }
      const bx = basins.filter((b) => Number.isFinite(basinRisk(b))).map((b) => Math.log10(Math.max(basinRisk(b), RISK_FLOOR)));
      const lo = Math.min(hist.edges.length ? hist.edges[0] : -1, ...bx) - (hist.width || 0.5) / 2;
      const hi = Math.max(hist.edges.length ? hist.edges[hist.edges.length - 1] : 1, ...bx) + (hist.width || 0.5) / 2;
      xRange = [lo, hi];
      if (!u) u = makeChart(container, opts, data);
      else u.setData(data);
    },
    destroy() {
      destroyChart(u);
      u = null;
    },
  };
  return api;
}

/** Align several (x, y) series on one x axis for uPlot (union of xs, nulls elsewhere). */
export function alignSeries(series) {
  const xs = Array.from(new Set(series.flatMap((s) => s.x))).sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = series.map((s) => {
    const y = new Array(xs.length).fill(null);
    s.x.forEach((x, i) => {
      y[index.get(x)] = s.y[i];
    });
    return y;
  });
  return [xs, ...ys];
}

/**
 * Risk against step for several runs, log-scale risk. runs: [{label, points: [[step, risk,
 * ...], ...]}]. Non-positive risks cannot be drawn on a log axis and are left out.
 */
export function trajectoryChart(container, runs, { height = 280 } = {}) {
  const series = runs.map((r) => {
    const x = [];
    const y = [];
    let last = -Infinity;
    for (const p of r.points) {
      if (p[0] <= last) continue; // the display series is sorted by step; guard duplicates
      last = p[0];
      x.push(p[0]);
      y.push(p[1] !== null && p[1] > 0 ? p[1] : null);
    }
    return { x, y };
  });
  const data = alignSeries(series);
  return makeChart(
    container,
    {
      height,
      scales: { x: { time: false }, y: { distr: 3 } },
      axes: [{ label: 'step' }, { label: 'risk (log scale)', size: 60, values: logTickLabels }],
      series: [
        { label: 'step' },
        ...runs.map((r, i) => ({ label: r.label, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: true, value: (_u, v) => (v === null ? '—' : num3(v)) })),
      ],
    },
    data,
  );
}

/** Labels of a log axis's ticks: powers of ten as 10ⁿ, thinned to every k-th decade so that
 * labels stay about 18 px apart; the ticks between stay unlabelled (grid lines only). */
function logTickLabels(u, ticks) {
  const decades = ticks.filter((v) => v > 0 && Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9);
  const px = u.bbox && u.bbox.height > 0 ? u.bbox.height / devicePixelRatio : 0.7 * u.height;
  const k = Math.max(1, Math.ceil((decades.length * 18) / Math.max(1, px)));
  return ticks.map((v) => {
    if (v === null || !(v > 0)) return '';
    const e = Math.log10(v);
    if (Math.abs(e - Math.round(e)) > 1e-9) return decades.length >= 2 ? '' : num3(v);
    return Math.round(e) % k === 0 ? pow10Label(e) : '';
  });
}

function num3(v) {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e-3 && a < 1e4 ? String(Number(v.toPrecision(3))) : v.toExponential(1);
}

/** The risk along a path between two end points: aligned and unaligned profiles against t. */
export function pathChart(container, path, { height = 280 } = {}) {
  const series = [];
  const data = [path.t];
  if (Array.isArray(path.aligned)) {
    series.push({ label: 'aligned path', stroke: '#1f77b4', width: 2, spanGaps: true });
    data.push(path.aligned);
  }
  if (Array.isArray(path.unaligned)) {
    series.push({ label: 'unaligned path', stroke: '#ff7f0e', width: 1.5, dash: [6, 4], spanGaps: true });
    data.push(path.unaligned);
  }
  return makeChart(
    container,
    {
      height,
      scales: { x: { time: false } },
      axes: [{ label: 't (0 = run A, 1 = run B)' }, { label: 'risk', size: 70, values: (_u, t) => t.map(num3) }],
      series: [{ label: 't' }, ...series],
    },
    data,
  );
}

/**
 * 1-D data with, when given, the fitted CPWL function and its breakpoints (dashed lines).
 * points: {x: [..], y: [..]}; fn: {x, y, breakpoints} or null.
 */
export function curveChart(container, points, fn, { height = 320 } = {}) {
  const order = points.x.map((_, i) => i).sort((a, b) => points.x[a] - points.x[b]);
  const data = { x: order.map((i) => points.x[i]), y: order.map((i) => points.y[i]) };
  const parts = [data];
  const series = [{ label: 'x' }, { label: 'samples', stroke: '#333', fill: '#333', paths: () => null, points: { show: true, size: 6, fill: '#444' } }];
  if (fn && Array.isArray(fn.x)) {
    parts.push({ x: fn.x, y: fn.y });
    series.push({ label: 'fitted function', stroke: '#d62728', width: 2, spanGaps: true, points: { show: false } });
  }
  const breakpoints = (fn && fn.breakpoints) || [];
  return makeChart(
    container,
    {
      height,
      scales: { x: { time: false } },
      axes: [{ label: 'x' }, { label: 'y', size: 60 }],
      series,
      plugins: [markersPlugin(() => breakpoints.map((b) => ({ x: b, color: '#7a7a7a', dash: [3, 3], width: 1 })))],
    },
    alignSeries(parts),
  );
}

// ---- 2-D: a canvas heat map ----

/** About five round tick values inside [lo, hi]. */
export function niceTicks(lo, hi, n = 5) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= n + 0.5) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) out.push(Math.abs(v) < 1e-12 * span ? 0 : Number(v.toPrecision(12)));
  return out;
}

function lerp(a, b, t) {
  return Math.round(a + (b - a) * t);
}

/** Diverging blue–white–red for t in [-1, 1]. */
export function diverging(t) {
  const c = Math.max(-1, Math.min(1, t));
  const blue = [49, 104, 176];
  const red = [200, 50, 45];
  const w = [247, 247, 247];
  const [a, b, s] = c < 0 ? [w, blue, -c] : [w, red, c];
  return [lerp(a[0], b[0], s), lerp(a[1], b[1], s), lerp(a[2], b[2], s)];
}

/**
 * Read a grid answer {x0, x1, values, region_ids} as values[row][col] with rows along x1 and
 * columns along x0 (transposed when the server sent it the other way).
 */
export function gridRows(fn) {
  const nx = fn.x0.length;
  const ny = fn.x1.length;
  const v = fn.values;
  const r = fn.region_ids;
  if (v.length === ny && (v[0] || []).length === nx) return { values: v, regions: r };
  if (v.length === nx && (v[0] || []).length === ny) {
    const tr = (m) => (m ? fn.x1.map((_, j) => fn.x0.map((__, i) => m[i][j])) : m);
    return { values: tr(v), regions: tr(r) };
  }
  throw new Error(`the grid has ${v.length} rows, expected ${ny} (x1) or ${nx} (x0)`);
}

/**
 * Draw 2-D samples (coloured by target) on a canvas, over the decision function as a heat map
 * with the activation-region boundaries when fn is given. Returns {destroy()}.
 */
export function planeChart(container, points, fn, { center = 0.5 } = {}) {
  const canvas = document.createElement('canvas');
  canvas.className = 'plane';
  canvas.setAttribute('role', 'img');
  container.appendChild(canvas);
  const draw = () => {
    const cssW = Math.min(560, Math.max(240, container.clientWidth));
    const dpr = devicePixelRatio || 1;
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssW * dpr);
    canvas.style.width = `${cssW}px`;
    canvas.style.height = `${cssW}px`;
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, cssW, cssW);
    const pad = 52;
    const size = cssW - pad - 12;
    // extent: the function grid when there is one, else the data with a margin
    let xmin, xmax, ymin, ymax;
    if (fn) {
      [xmin, xmax] = [fn.x0[0], fn.x0[fn.x0.length - 1]];
      [ymin, ymax] = [fn.x1[0], fn.x1[fn.x1.length - 1]];
    } else {
      const xs = points.x.map((p) => p[0]);
      const ys = points.x.map((p) => p[1]);
      [xmin, xmax, ymin, ymax] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
      const mx = (xmax - xmin) * 0.08 || 1;
      const my = (ymax - ymin) * 0.08 || 1;
      [xmin, xmax, ymin, ymax] = [xmin - mx, xmax + mx, ymin - my, ymax + my];
    }
    const px = (x) => pad + ((x - xmin) / (xmax - xmin)) * size;
    const py = (y) => 10 + size - ((y - ymin) / (ymax - ymin)) * size;
    if (fn) {
      const { values, regions } = gridRows(fn);
      const nx = fn.x0.length;
      const ny = fn.x1.length;
      let dev = 0;
      for (const row of values) for (const v of row) if (Number.isFinite(v)) dev = Math.max(dev, Math.abs(v - center));
      dev = dev || 1;
      const cw = size / nx;
      const ch = size / ny;
      for (let j = 0; j < ny; j++)
        for (let i = 0; i < nx; i++) {
          const v = values[j][i];
          const [r, g, b] = Number.isFinite(v) ? diverging((v - center) / dev) : [200, 200, 200];
          ctx.fillStyle = `rgb(${r},${g},${b})`;
          ctx.fillRect(pad + i * cw, 10 + size - (j + 1) * ch, cw + 0.6, ch + 0.6);
        }
      if (regions) {
        // a boundary wherever two neighbouring grid cells lie in different activation regions
        ctx.strokeStyle = 'rgba(20,20,20,0.55)';
        ctx.lineWidth = 1;
        ctx.beginPath();
        for (let j = 0; j < ny; j++)
          for (let i = 0; i < nx; i++) {
            const y0 = 10 + size - (j + 1) * ch;
            if (i + 1 < nx && regions[j][i] !== regions[j][i + 1]) {
              ctx.moveTo(pad + (i + 1) * cw, y0);
              ctx.lineTo(pad + (i + 1) * cw, y0 + ch);
            }
            if (j + 1 < ny && regions[j][i] !== regions[j + 1][i]) {
              ctx.moveTo(pad + i * cw, y0);
              ctx.lineTo(pad + (i + 1) * cw, y0);
            }
          }
        ctx.stroke();
      }
    }
    // axes
    ctx.strokeStyle = '#555';
    ctx.strokeRect(pad, 10, size, size);
    ctx.fillStyle = '#333';
    ctx.font = '11px system-ui, sans-serif';
    ctx.textAlign = 'center';
    for (const x of niceTicks(xmin, xmax)) {
      ctx.fillText(num3(x), px(x), 10 + size + 14);
      ctx.fillRect(px(x) - 0.5, 10 + size, 1, 4);
    }
    ctx.textAlign = 'right';
    for (const y of niceTicks(ymin, ymax)) {
      ctx.fillText(num3(y), pad - 7, py(y) + 4);
      ctx.fillRect(pad - 4, py(y) - 0.5, 4, 1);
    }
    ctx.textAlign = 'center';
    ctx.fillText('x₀', pad + size / 2, cssW - 2);
    ctx.save();
    ctx.translate(11, 10 + size / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText('x₁', 0, 0);
    ctx.restore();
    // samples
    const ys = points.y.map((y) => (Array.isArray(y) ? y[0] : y));
    const ylo = Math.min(...ys);
    const yhi = Math.max(...ys);
    const binary = ys.every((y) => y === ylo || y === yhi);
    for (let k = 0; k < points.x.length; k++) {
      const [x, y] = points.x[k];
      const t = yhi > ylo ? (ys[k] - ylo) / (yhi - ylo) : 0.5;
      const [r, g, b] = binary ? (t > 0.5 ? [200, 50, 45] : [49, 104, 176]) : diverging(2 * t - 1);
      ctx.beginPath();
      ctx.arc(px(x), py(y), 3.5, 0, 2 * Math.PI);
      ctx.fillStyle = `rgb(${r},${g},${b})`;
      ctx.fill();
      ctx.strokeStyle = fn ? '#111' : '#fff';
      ctx.lineWidth = 1;
      ctx.stroke();
    }
  };
  draw();
  let lastW = container.clientWidth;
  const ro = new ResizeObserver(() => {
    if (Math.abs(container.clientWidth - lastW) > 2) {
      lastW = container.clientWidth;
      draw();
    }
  });
  ro.observe(container);
  return {
    canvas,
    destroy() {
      ro.disconnect();
      canvas.remove();
    },
  };
}
