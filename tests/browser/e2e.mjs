// End-to-end test of the basinlab dashboard in a real browser: Debian's chromium driven headless
// by playwright-core (no browser download), against a real `basinlab serve` started here on
// loopback with a fresh database. It submits an experiment through the form (first with an
// invalid learning rate, to see the server's 422 land next to that field), watches it complete,
// and then checks every analysis view against the server's own answers — no request is
// intercepted to fake data: the basins table against GET /basins (also with other tolerances),
// the spurious flags against the runs' own, a real verdict (a linear-region minimum built by
// POST /v1/constructions on the same objective) against its certificate, the compare view's
// barrier against GET /v1/compare, the 1-D function view's breakpoints and the 2-D heat map's
// regions against GET /runs/{id}/function, and the list's summaries against GET one. It also
// checks the narrow layout and the polling fallback when the event stream is blocked, and saves
// screenshots of each step (the analysis views as *-real.png).
//
// Environment: BASINLAB_BINARY (the server; default <repo>/build/test/basinlab),
// BASINLAB_SCREENSHOTS (default <repo>/build/test/screenshots), CHROMIUM (default
// /usr/bin/chromium). Prints "N passed, M failed" and exits non-zero on any failure.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const binary = process.env.BASINLAB_BINARY || join(repo, 'build', 'test', 'basinlab');
const shots = process.env.BASINLAB_SCREENSHOTS || join(repo, 'build', 'test', 'screenshots');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const RESTARTS = 12;

let passed = 0;
let failed = 0;
const failures = [];
function check(name, ok, detail = '') {
  if (ok) {
    passed++;
    console.log(`ok - ${name}`);
  } else {
    failed++;
    failures.push(name);
    console.log(`not ok - ${name}${detail ? `: ${detail}` : ''}`);
  }
}

/** Start the server; resolves with {proc, base} once it printed its address. */
function startServer(db) {
  const t0 = Date.now();
  return new Promise((resolveStart, reject) => {
    const proc = spawn(binary, ['serve', '--port', '0', '--db', db, '--web', join(repo, 'web'), '--workers', '2'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out} ${err}`)), 15000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[^\s]+)/);
      if (m) {
        clearTimeout(timer);
        resolveStart({ proc, base: m[1], stderr: () => err });
      }
    });
    proc.stderr.on('data', (d) => {
      err += d;
    });
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      // after the start this only records the fact: a server that ends before the test stops
      // it (killed from outside, or crashed) is reported as such, not as a browser failure
      proc.earlyExit = `the server exited on its own ${((Date.now() - t0) / 1000).toFixed(1)} s after the start (code ${code}, signal ${signal})`;
      reject(new Error(`server exited with ${code}: ${err}`));
    });
  });
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

/** Red-ish pixels (the colour of spurious basins) on the first canvas under `selector`. */
async function redPixels(page, selector) {
  return page.locator(`${selector} canvas`).first().evaluate((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] > 180 && d[i + 1] < 90 && d[i + 2] < 90 && d[i + 3] > 200) n++;
    return n;
  });
}

async function fetchJSON(base, path, init) {
  const r = await fetch(`${base}${path}`, init);
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Error(`${init && init.method ? init.method : 'GET'} ${path}: ${r.status} ${JSON.stringify(body)}`);
  return body;
}

/** |shown − want| within the display's rounding (4–5 significant digits) of want. */
function close(shown, want, rel = 5e-4) {
  const v = Number(String(shown).trim());
  return Number.isFinite(v) && Number.isFinite(want) && Math.abs(v - want) <= rel * Math.abs(want) + 1e-300;
}

/** The share as the dashboard prints it (util.js pct): one decimal of a percentage. */
const pctText = (v) => `${(100 * v).toFixed(1)}%`;
/** The spurious share of a summary as the dashboard prints it ('no minima' when no run is one). */
const shareText = (s) => (s.minima_count ? pctText(s.spurious_share) : 'no minima');

/** The basins table against GET /basins with the same tolerances. */
async function checkBasinsTable(page, base, expId, query, label) {
  const want = await fetchJSON(base, `/v1/experiments/${expId}/basins?limit=50${query}`);
  await page.locator('#basins-table tbody tr').first().waitFor({ timeout: 15000 });
  await page.locator('#basins-summary', { hasText: `${want.basin_count} basin` }).waitFor({ timeout: 15000 });
  const rows = await page.locator('#basins-table tbody tr').evaluateAll((trs) =>
    trs.map((tr) => ({ index: tr.dataset.basin, spurious: tr.classList.contains('spurious'), count: tr.querySelector('td.basin-count').textContent, cells: Array.from(tr.cells).map((c) => c.textContent) })),
  );
  check(`${label}: one row per basin of the API (${want.basin_count})`, rows.length === want.basins.length, `${rows.length} vs ${want.basins.length}`);
  const same = want.basins.every((b, k) => rows[k] && rows[k].index === String(b.index) && rows[k].count === String(b.count) && rows[k].spurious === (b.spurious === true));
  check(`${label}: each row shows the API's basin index, member count and spurious flag`, same, JSON.stringify(rows.map((r) => [r.index, r.count, r.spurious])) + ' vs ' + JSON.stringify(want.basins.map((b) => [b.index, b.count, b.spurious])));
  const risksOk = want.basins.every((b, k) => rows[k] && close(rows[k].cells[1], b.final_risk, 5e-3));
  check(`${label}: each row shows the API's basin risk`, risksOk, JSON.stringify(rows.map((r) => r.cells[1])));
  const sharesOk = want.basins.every((b, k) => rows[k] && rows[k].cells[4].startsWith(pctText(b.share)));
  check(`${label}: each row shows the API's share`, sharesOk, JSON.stringify(rows.map((r) => r.cells[4])));
  return want;
}

/** The analysis views against the server's answers. */
async function realViews(page, base, expId, exp) {
  // ---- basins, at the server's default tolerances and at looser ones typed into the form
  await page.goto(`${base}/#/experiments/${expId}`);
  const basins = await checkBasinsTable(page, base, expId, '', 'basins');
  const nSpurious = basins.basins.filter((b) => b.spurious).length;
  check('this experiment has a spurious basin and a non-spurious one (the scenario needs both)', nSpurious > 0 && nSpurious < basins.basins.length, `${nSpurious} of ${basins.basins.length}`);
  await page.locator('#hist + .caption', { hasText: 'Lines mark' }).waitFor({ timeout: 10000 });
  const red = await redPixels(page, '#hist');
  check('the histogram draws spurious basins in red exactly when there are some', nSpurious ? red > 20 : red === 0, `${red} red pixels`);
  const fits = await page.locator('#basins-table').evaluate((t) => ({ table: t.scrollWidth, wrap: t.parentElement.clientWidth }));
  check('the basins table fits its panel at 1280 px (no column cut off)', fits.table <= fits.wrap, JSON.stringify(fits));
  const spCard = await page.locator('#card-spurious .v').textContent();
  check("the spurious-share card shows the summary's share", spCard.startsWith(shareText(exp.summary)), `${spCard} vs ${exp.summary.spurious_share}`);
  await shot(page, '10-basins-real');

  await page.locator('#basins-risk-tol').fill('1e-2');
  await page.locator('#basins-func-tol').fill('0.5');
  await page.getByRole('button', { name: 'Regroup' }).click();
  await page.waitForURL(/risk_tol=1e-2/);
  const loose = await checkBasinsTable(page, base, expId, '&risk_tol=1e-2&func_tol=0.5', 'basins at risk_tol 1e-2, func_tol 0.5');
  check('looser tolerances give fewer basins here', loose.basin_count < basins.basin_count, `${loose.basin_count} vs ${basins.basin_count}`);
  await shot(page, '10-basins-loose-real');

  // ---- the runs' spurious flags in the table are the API's
  const apiRuns = (await fetchJSON(base, `/v1/experiments/${expId}/runs?order=final_risk&limit=1000`)).items;
  await page.goto(`${base}/#/experiments/${expId}`);
  await page.locator('#runs tbody tr[data-run]').first().waitFor();
  const shownFlags = await page.locator('#runs tbody tr[data-run]').evaluateAll((trs) => Object.fromEntries(trs.map((tr) => [tr.dataset.run, tr.classList.contains('spurious')])));
  const runsFit = await page.locator('#runs').evaluate((t) => ({ table: t.scrollWidth, wrap: t.parentElement.clientWidth }));
  check('the runs table fits its panel at 1280 px (no column cut off)', runsFit.table <= runsFit.wrap, JSON.stringify(runsFit));
  const flagOk = apiRuns.slice(0, 25).every((r) => shownFlags[r.id] === (r.spurious.flag === true));
  check("the runs table marks exactly the runs the API flags spurious", flagOk, JSON.stringify(shownFlags));
  await page.locator('#runs-spurious').selectOption('true');
  const nFlagged = apiRuns.filter((r) => r.spurious.flag === true).length;
  await page.waitForFunction((n) => document.querySelectorAll('#runs tbody tr[data-run]').length === n, nFlagged, { timeout: 10000 }).catch(() => {});
  check('filtering the runs by the spurious flag shows the flagged runs only', (await page.locator('#runs tbody tr[data-run]').count()) === nFlagged && (await page.locator('#runs tbody tr.spurious').count()) === nFlagged, String(nFlagged));

  // ---- a spurious run (else the worst run): its judgement, and the compare view against
  // GET /v1/compare. (Which runs are flagged depends on the verdicts the worker writes; the
  // checks follow the API's flag either way.)
  const spRun = apiRuns.find((r) => r.spurious.flag === true) || apiRuns[apiRuns.length - 1];
  await page.goto(`${base}/#/experiments/${expId}?run=${spRun.id}`);
  await page.locator('#spurious-judgement').waitFor();
  const judgement = await page.locator('#spurious-judgement').textContent();
  if (spRun.spurious.flag === true) check('a spurious run says so, with its gap', judgement.includes('spurious') && judgement.includes('above the best'), judgement);
  else check('a run the API does not flag is not called spurious', !judgement.startsWith('spurious'), judgement);
  if (spRun.spurious.witness_run_id) {
    const witnessHref = await page.locator('#witness-link').getAttribute('href');
    check("the witness link names the API's witness run", witnessHref.includes(spRun.spurious.witness_run_id), witnessHref);
  }
  await page.locator('#compare-best').click();
  await page.waitForURL(/#\/compare\?a=/);
  const b = decodeURIComponent(new URL(page.url()).hash.split('b=')[1]);
  const wantB = spRun.spurious.witness_run_id || exp.summary.best_run_id;
  check('the compare button compares with the witness (else the best run)', b === wantB, `${b} vs ${wantB}`);
  const cmp = await fetchJSON(base, `/v1/compare?a=${spRun.id}&b=${b}&unaligned=true`);
  await page.locator('#path-chart canvas').first().waitFor({ timeout: 15000 });
  const cardV = async (key) => page.locator(`#compare-numbers [data-key="${key}"] .v`).textContent();
  check("the compare view's aligned barrier is the API's", close(await cardV('barrier-aligned'), cmp.barrier.aligned), `${await cardV('barrier-aligned')} vs ${cmp.barrier.aligned}`);
  check("the compare view's unaligned barrier is the API's", close(await cardV('barrier-unaligned'), cmp.barrier.unaligned), `${await cardV('barrier-unaligned')} vs ${cmp.barrier.unaligned}`);
  check("the compare view's function distance is the API's", close(await cardV('function-distance'), cmp.function_distance), `${await cardV('function-distance')} vs ${cmp.function_distance}`);
  const pathLen = await page.evaluate(() => document.querySelector('#path-chart .u-over') !== null);
  check('the path profile is drawn', pathLen);
  await shot(page, '12-compare-real');

  // ---- a real verdict: the linear-region minimum of the same objective, built and certified by
  // the server (POST /v1/constructions); it is a certified minimum above the trained best
  const cons = await fetchJSON(base, '/v1/constructions', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ kind: 'linear_region_minimum', dataset_id: exp.dataset_id, architecture_id: exp.architecture_id, loss: exp.loss }),
  });
  const run = await fetchJSON(base, `/v1/runs/${cons.run.id}`);
  check('the construction has a verdict (the scenario needs one)', !!run.verdict, JSON.stringify(run.verdict_label));
  await page.goto(`${base}/#/experiments/${run.experiment_id}?run=${run.id}`);
  await page.locator('#verdict-label').waitFor({ timeout: 10000 });
  const label = await page.locator('#verdict-label').textContent();
  check("the evidence panel shows the API's verdict label and deciding test", label.includes(run.verdict.label.replaceAll('_', ' ')) && label.includes(run.verdict.decided_by.replaceAll('_', ' ')), label);
  const groups = run.verdict.region.groups;
  check('the certificate lists every sample group the API sent', groups.length > 0 && (await page.locator('#cert-groups tbody tr').count()) === groups.length, String(groups.length));
  const g0 = await page.locator('#cert-groups tbody tr').first().locator('td').allTextContents();
  check("the first group's samples and risk sums are the API's", g0[1] === String(groups[0].n_samples) && close(g0[2], groups[0].risk_sum) && close(g0[3], groups[0].fit_risk_sum), JSON.stringify(g0));
  const tests = await page.locator('#verdict-tests').textContent();
  check('the tests table says whether the region certificate held', tests.includes('region certificate') && tests.includes(run.verdict.region.holds ? 'holds' : 'fails'), tests.slice(0, 200));
  const j2 = await page.locator('#spurious-judgement').textContent();
  if (run.spurious.flag === true) {
    check('a certified minimum above the best is called spurious', j2.includes('spurious'), j2);
    check("its witness link names the API's witness", (await page.locator('#witness-link').getAttribute('href')).includes(run.spurious.witness_run_id));
  } else {
    check('the judgement is not called spurious when the API says it is not', !j2.startsWith('spurious'), j2);
  }
  await shot(page, '11-verdict-real');

  // ---- the 2-D function of the best run: heat map with the API's region count
  const bestId = exp.summary.best_run_id;
  const fn = await fetchJSON(base, `/v1/runs/${bestId}/function?nx=120&ny=120`);
  await page.goto(`${base}/#/datasets/${exp.dataset_id}?run=${bestId}`);
  await page.locator('canvas.plane').waitFor();
  await page.locator('#function-caption', { hasText: 'activation region' }).waitFor({ timeout: 10000 });
  const cap = await page.locator('#function-caption').textContent();
  check("the 2-D function view states the API's region count", cap.includes(`between the ${fn.regions} activation region`), cap);
  const corners = await page.locator('canvas.plane').evaluate((c) => {
    const ctx = c.getContext('2d');
    const px = (fx, fy) => Array.from(ctx.getImageData(Math.round(c.width * fx), Math.round(c.height * fy), 1, 1).data.slice(0, 3));
    return { tl: px(0.2, 0.2), br: px(0.85, 0.8), tr: px(0.85, 0.2) };
  });
  // xor: the best fit is high in two opposite quadrants and low in the other two
  check('the heat map colours differ across the pieces', JSON.stringify(corners.tl) !== JSON.stringify(corners.tr), JSON.stringify(corners));
  await shot(page, '13-function-2d-real');
}

/** The dashboard's pure helpers, run in the page against hand-computed answers. */
async function helperChecks(page) {
  const r = await page.evaluate(async () => {
    const charts = await import('/js/charts.js');
    const submit = await import('/js/view_submit.js');
    const out = {};
    // logs -4, -4, -2 and -16 (a zero risk is floored at 1e-16): 4 bins of width 3.5 from -16
    const hist = charts.logHistogram([1e-4, 1e-4, 1e-2, 0], { ids: ['a', 'b', 'c', 'd'], markedIds: new Set(['b', 'c']) });
    out.hist = { counts: hist.counts, marked: hist.marked, lo: hist.lo, width: hist.width };
    out.ticks = charts.niceTicks(-1.26, 1.22);
    out.align = charts.alignSeries([{ x: [0, 2], y: [1, 2] }, { x: [1, 2], y: [5, 6] }]);
    out.grid = charts.gridRows({ x0: [0, 1, 2], x1: [0, 1], values: [[1, 2], [3, 4], [5, 6]], region_ids: null }).values;
    const owners = { '/architecture/layers': 'f-hidden', '/architecture/layers/3': 'f-x', '/optimizer': 'f-opt', '/optimizer/lr': 'f-lr' };
    out.owner = [submit.ownerOf('/architecture/layers/3/units', owners), submit.ownerOf('/optimizer/lrx', owners), submit.ownerOf('/zzz', owners), submit.ownerOf('/optimizer/lr', owners)];
    const util = await import('/js/util.js');
    out.rows = [charts.labelRows([0, 5, 100], [10, 10, 10]), charts.labelRows([0, 5, 100], [10, 10, 10], { rows: 1 })];
    out.counts = util.labelCounts({ none: 2, saddle: 1, certified_minimum: 3, likely_minimum: 0 });
    out.share = util.shareWithCi(1 / 6, [0.0469, 0.448]);
    out.basinRisk = [charts.basinRisk({ risk: 1, final_risk: 2 }), charts.basinRisk({ risk: 1 })];
    out.widths = submit.parseWidths(' 16, 8 ');
    try {
      submit.parseWidths('4 x');
      out.widthsThrew = false;
    } catch {
      out.widthsThrew = true;
    }
    return out;
  });
  const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  check('logHistogram bins log risks (zero floored at 1e-16) and counts the marked runs', eq(r.hist, { counts: [1, 0, 0, 3], marked: [0, 0, 0, 2], lo: -16, width: 3.5 }), JSON.stringify(r.hist));
  check('niceTicks picks round steps', eq(r.ticks, [-1, -0.5, 0, 0.5, 1]), JSON.stringify(r.ticks));
  check('alignSeries unions the x values with gaps as null', eq(r.align, [[0, 1, 2], [1, null, 2], [null, 5, 6]]), JSON.stringify(r.align));
  check('gridRows transposes a column-major grid to rows along x1', eq(r.grid, [[1, 3, 5], [2, 4, 6]]), JSON.stringify(r.grid));
  check('ownerOf maps a JSON Pointer to the field of its longest segment prefix', eq(r.owner, ['f-x', 'f-opt', null, 'f-lr']), JSON.stringify(r.owner));
  // label 1 (centre 5, width 10) overlaps label 0 (right edge 5, gap 4): second row, or left out
  check('labelRows puts an overlapping label in the next row, or leaves it out', eq(r.rows, [[0, 1, 0], [0, -1, 0]]), JSON.stringify(r.rows));
  check('labelCounts orders the labels and names runs without a verdict', r.counts === 'certified minimum 3 · saddle 1 · no verdict 2', r.counts);
  check('shareWithCi rounds the interval outwards', r.share === '16.7% [4–45%]', r.share);
  check('basins sit on the final-risk axis at their final risk', eq(r.basinRisk, [2, 1]), JSON.stringify(r.basinRisk));
  check('parseWidths reads hidden widths and refuses non-numbers', eq(r.widths, [16, 8]) && r.widthsThrew, JSON.stringify(r.widths));
}

async function main() {
  if (!existsSync(binary)) throw new Error(`no server binary at ${binary} (set BASINLAB_BINARY)`);
  mkdirSync(shots, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'basinlab-e2e-'));
  const profile = join(tmp, 'profile');
  mkdirSync(profile);
  const server = await startServer(join(tmp, 'db.sqlite'));
  const { base } = server;
  let context = null;
  try {
    // static files: content type and security headers
    const res = await fetch(`${base}/`);
    const csp = res.headers.get('content-security-policy') || '';
    check('GET / serves the dashboard as HTML', res.status === 200 && (res.headers.get('content-type') || '').startsWith('text/html'));
    check("GET / sends a self-only CSP and nosniff", csp.includes("default-src 'self'") && res.headers.get('x-content-type-options') === 'nosniff');

    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      viewport: { width: 1280, height: 800 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = context.pages()[0] || (await context.newPage());
    const problems = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      // a 404 of an endpoint the server does not have yet is logged by the browser as
      // "Failed to load resource"; the views show those states themselves
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
    });

    // 1. the empty list
    await page.goto(`${base}/`);
    await page.getByRole('heading', { name: 'Experiments' }).waitFor();
    await page.getByText('No experiments yet').waitFor();
    check('the list says there are no experiments yet', true);
    await shot(page, '01-list-empty');
    await helperChecks(page);

    // 2. the form, driven from the keyboard where it matters; an invalid learning rate first
    await page.getByRole('link', { name: 'New experiment' }).first().click();
    await page.getByRole('heading', { name: 'New experiment' }).waitFor();
    // noise-free xor, 2-4-1 ReLU, Adam to a gradient tolerance: most runs reach a global
    // minimum, a few stop at a stationary point with a higher risk (spurious by stationarity)
    await page.getByLabel('Generator').selectOption('xor');
    await page.getByLabel('Samples (n)').fill('40');
    await page.getByLabel('Noise').fill('0');
    await page.getByLabel('Hidden widths').fill('4');
    await page.getByLabel('Optimizer').selectOption('adam');
    await page.getByLabel('Restarts (runs)').fill(String(RESTARTS));
    await page.getByLabel('Max steps per run').fill('3000');
    await page.getByLabel('Seed', { exact: true }).fill('7');
    await page.getByLabel('Stop at gradient norm').fill('1e-6');
    await page.getByLabel('Learning rate').fill('0');
    await page.getByLabel('Learning rate').press('Enter'); // submit from the keyboard
    const lrErr = page.locator('#f-lr-err');
    await lrErr.filter({ hasText: /./ }).waitFor({ timeout: 10000 });
    const lrText = await lrErr.textContent();
    check('the 422 error for /optimizer/lr is shown next to the learning-rate field', /> ?0|positive|greater/.test(lrText), lrText);
    check('the learning-rate field is marked invalid', (await page.getByLabel('Learning rate').getAttribute('aria-invalid')) === 'true');
    check('the invalid field has the focus', await page.evaluate(() => document.activeElement && document.activeElement.id === 'f-lr'));
    check('no other field got an error', (await page.locator('.field .err:not(:empty)').count()) === 1);
    const unlabelled = await page.evaluate(() =>
      Array.from(document.querySelectorAll('form.submit input, form.submit select')).filter((el) => !el.labels.length && !el.getAttribute('aria-label')).map((el) => el.id || el.name),
    );
    check('every form control has a label', unlabelled.length === 0, unlabelled.join(','));
    await shot(page, '02-form-422');

    await page.getByLabel('Learning rate').fill('0.02');
    await page.getByRole('button', { name: 'Submit experiment' }).click();
    await page.waitForURL(/#\/experiments\/ex_/, { timeout: 10000 });
    const expId = decodeURIComponent(page.url().split('#/experiments/')[1]);
    check('submitting leads to the experiment page', /^ex_/.test(expId), expId);

    // 3. watch it complete (events stream); the progress bar reaches RESTARTS / RESTARTS
    await page.locator('h1 .badge-finished').waitFor({ timeout: 90000 });
    await page.locator('.bar-label', { hasText: `${RESTARTS} / ${RESTARTS}` }).first().waitFor({ timeout: 10000 });
    check('the experiment page shows the experiment finished with every run done', true);
    const progress = await page.locator('[role=progressbar]').first().getAttribute('aria-valuenow');
    check('the progress bar reports all runs done', progress === String(RESTARTS), progress);
    const api = await (await fetch(`${base}/v1/experiments/${expId}`)).json();
    const best = api.summary && api.summary.best_risk;
    await page.locator('#hist canvas').first().waitFor();
    const histText = await page.locator('#hist + .caption').textContent();
    check('the histogram counts every finished run', histText.startsWith(`${api.progress.finished} finished run`), histText);
    await page.locator('#runs tbody tr[data-run]').first().waitFor();
    const firstRisk = await page.locator('#runs tbody tr[data-run] td.num').first().textContent();
    check('runs are ordered by final risk, best first', best !== null && Math.abs(Number(firstRisk) - best) <= 5e-3 * Math.abs(best) + 1e-12, `${firstRisk} vs ${best}`);
    await page.locator('#traj canvas').first().waitFor({ timeout: 15000 });
    check('trajectories are drawn for the default runs', (await page.locator('#traj').getAttribute('data-series')) !== null);
    await shot(page, '03-experiment');

    // 4. open a run that is not plotted by default (the default plots one run per basin)
    const unplotted = page.locator('#runs tbody tr[data-run]').filter({ has: page.locator('input[type=checkbox]:not(:checked)') }).first();
    const secondId = await unplotted.getAttribute('data-run');
    await unplotted.getByRole('link').click();
    await page.locator('#evidence h3', { hasText: 'Run #' }).waitFor();
    check('the selected run is highlighted in the table', (await page.locator(`#runs tr.selected[data-run="${secondId}"]`).count()) === 1);
    const run = await (await fetch(`${base}/v1/runs/${secondId}`)).json();
    const evidence = await page.locator('#evidence').textContent();
    if (run.verdict) check('the verdict evidence shows the label', evidence.includes(run.verdict.label.replace('_', ' ')), evidence.slice(0, 200));
    else check('a run without a verdict says the verdict is pending', (await page.locator('#verdict-pending').count()) === 1);
    await page.locator('#traj canvas').first().waitFor();
    const before = Number(await page.locator('#traj').getAttribute('data-series'));
    await page.getByRole('button', { name: 'Plot trajectory' }).click();
    await page.locator(`#traj[data-series="${before + 1}"]`).waitFor({ timeout: 10000 });
    check('plotting the selected run adds its trajectory', (await page.locator(`#runs tr[data-run="${secondId}"] input[type=checkbox]`).isChecked()) === true);
    check('the plotted runs are kept in the address', page.url().includes('plot='));
    await shot(page, '04-run');

    // 5. compare it with the best run (or its witness)
    await page.locator('#compare-best').click();
    await page.waitForURL(/#\/compare\?a=/);
    await page.locator('#compare-runs .card').nth(1).waitFor({ timeout: 10000 });
    await page.locator('#path-chart canvas, #path-note .unavailable').first().waitFor({ timeout: 15000 });
    const cards = await page.locator('#compare-runs .card').count();
    check('the compare view shows both runs', cards === 2, String(cards));
    check('the path profile is drawn', (await page.locator('#path-chart canvas').count()) > 0);
    await shot(page, '05-compare');

    // 6. the dataset view with the run's function (2-D xor)
    await page.goto(`${base}/#/datasets/${api.dataset_id}?run=${secondId}`);
    await page.locator('canvas.plane').waitFor({ timeout: 15000 });
    check('the 2-D dataset is drawn', true);
    await page.locator('#dataset-plot + div .caption').waitFor();
    await shot(page, '06-dataset');

    // 6b. the analysis views against the server's answers
    await realViews(page, base, expId, api);

    // 7. a narrow window: nothing wider than the viewport
    await page.setViewportSize({ width: 420, height: 800 });
    await page.goto(`${base}/#/experiments/${expId}?run=${secondId}`);
    await page.locator('#evidence h3', { hasText: 'Run #' }).waitFor();
    await page.locator('#hist canvas').first().waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check('the experiment page fits a 420 px window', overflow <= 1, `overflows by ${overflow}px`);
    await shot(page, '07-narrow');
    await page.goto(`${base}/#/new`);
    await page.getByRole('heading', { name: 'New experiment' }).waitFor();
    const formOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check('the form fits a 420 px window', formOverflow <= 1, `overflows by ${formOverflow}px`);
    await shot(page, '07-narrow-form');
    await page.setViewportSize({ width: 1280, height: 800 });

    // 8. polling fallback: with the event stream blocked, progress still arrives via ETag polls
    const sub = await fetch(`${base}/v1/experiments`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        dataset: { kind: 'generator', generator: { name: 'sine', n: 30, seed: 2 } },
        architecture: { input_shape: [1], layers: [{ type: 'dense', units: 6 }, { type: 'activation', kind: 'relu' }, { type: 'dense', units: 1 }] },
        optimizer: { kind: 'gd', lr: 0.05 },
        restarts: 6,
        max_steps: 12000,
        seed: 3,
      }),
    });
    const exp2 = await sub.json();
    check('a second experiment is accepted by the API', sub.status === 202, String(sub.status));
    let conditional = 0;
    let notModified = 0;
    await page.route('**/events*', (route) => route.abort());
    page.on('request', (r) => {
      if (r.url().endsWith(`/v1/experiments/${exp2.id}`) && r.headers()['if-none-match']) conditional++;
    });
    page.on('response', (r) => {
      if (r.url().endsWith(`/v1/experiments/${exp2.id}`) && r.status() === 304) notModified++;
    });
    await page.goto(`${base}/#/experiments/${exp2.id}`);
    try {
      await page.locator('.live.polling').waitFor({ timeout: 5000 });
      await shot(page, '08-live-polling');
    } catch {
      /* finished before the first poll: nothing live to show */
    }
    await page.locator('h1 .badge-finished').waitFor({ timeout: 90000 });
    await page.locator('.bar-label', { hasText: '6 / 6' }).first().waitFor({ timeout: 10000 });
    check('with the event stream blocked the page still follows the experiment to the end', true);
    const modes = await page.locator('.live').getAttribute('data-modes');
    check('a blocked event stream switches the page to polling', /stream,polling/.test(modes || ''), modes);
    check('the fallback polls with If-None-Match', conditional > 0, `${conditional} conditional GETs, ${notModified} answered 304`);
    await page.unroute('**/events*');
    const exp2done = await fetchJSON(base, `/v1/experiments/${exp2.id}`);
    const run1d = exp2done.summary.best_run_id;
    const fn1 = await fetchJSON(base, `/v1/runs/${run1d}/function?nx=400`);
    await page.goto(`${base}/#/datasets/${exp2.dataset_id}?run=${run1d}`);
    await page.locator('#dataset-plot canvas').first().waitFor({ timeout: 15000 });
    check('the 1-D dataset is drawn', true);
    await page.locator('#dataset-plot + div .caption').first().waitFor();
    const shownBps = await page.locator('#breakpoints .bp').allTextContents();
    check('the 1-D function of a 6-unit ReLU net has breakpoints (the scenario needs some)', fn1.breakpoints.length > 0, String(fn1.breakpoints.length));
    check(
      "the 1-D function view lists the API's breakpoints",
      shownBps.length === fn1.breakpoints.length && fn1.breakpoints.every((b, k) => close(shownBps[k], b, 1e-4)),
      `${JSON.stringify(shownBps)} vs ${JSON.stringify(fn1.breakpoints)}`,
    );
    const cap1 = await page.locator('#dataset-plot + div .caption').first().textContent();
    check('the 1-D caption counts the breakpoints', cap1.includes(`${fn1.breakpoints.length} breakpoint`), cap1);
    await shot(page, '14-function-1d-real');

    // 9. the list: newest first, as the API orders it, each row with the API's summary
    const list = (await fetchJSON(base, '/v1/experiments?limit=20')).items;
    await page.goto(`${base}/#/`);
    await page.locator('tbody tr[data-id]').nth(list.length - 1).waitFor();
    const ids = await page.locator('tbody tr[data-id]').evaluateAll((rows) => rows.map((r) => r.dataset.id));
    check('the list shows the experiments in the API order, newest first', ids.join(',') === list.map((e) => e.id).join(',') && ids[0] === exp2.id && ids.includes(expId), ids.join(','));
    check('the list shows every experiment finished', (await page.locator('tbody .badge-finished').count()) === list.length);
    const one = await fetchJSON(base, `/v1/experiments/${expId}`);
    const li = list.find((e) => e.id === expId);
    const keys = ['best_risk', 'best_run_id', 'spurious_share', 'spurious_count', 'minima_count', 'label_counts', 'objective_best'];
    check(
      'GET /v1/experiments items carry the summary of GET one (no per-row requests needed)',
      li.summary && keys.every((k) => JSON.stringify(li.summary[k]) === JSON.stringify(one.summary[k])),
      JSON.stringify(li.summary),
    );
    const cells = await page.locator(`tbody tr[data-id="${expId}"]`).evaluate((tr) => ({ best: tr.querySelector('td.best-risk').textContent, share: tr.querySelector('td.spurious-share').textContent }));
    check('the list shows the best risk of an experiment', close(cells.best, one.summary.best_risk, 5e-3), `${cells.best} vs ${one.summary.best_risk}`);
    check('the list shows the spurious share of an experiment', cells.share.startsWith(shareText(one.summary)), `${cells.share} vs ${one.summary.spurious_share}`);
    await shot(page, '09-list-real');

    // 10. a CSV upload through the form (1-D regression, header line)
    await page.goto(`${base}/#/new`);
    await page.getByRole('heading', { name: 'New experiment' }).waitFor();
    await page.getByLabel('CSV upload').check();
    const csv = 'x,y\n' + Array.from({ length: 12 }, (_, i) => `${(i / 11) * 2 - 1},${Math.abs((i / 11) * 2 - 1)}`).join('\n') + '\n';
    await page.getByLabel('CSV file').setInputFiles({ name: 'v.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await page.getByLabel('First line is a header').selectOption('true');
    await page.getByLabel('Input dimension').fill('1');
    await page.getByLabel('Restarts (runs)').fill('3');
    await page.getByLabel('Max steps per run').fill('300');
    await page.getByRole('button', { name: 'Submit experiment' }).click();
    await page.waitForURL(/#\/experiments\/ex_/, { timeout: 10000 });
    const exp3 = await (await fetch(`${base}/v1/experiments/${decodeURIComponent(page.url().split('#/experiments/')[1])}`)).json();
    const ds3 = await (await fetch(`${base}/v1/datasets/${exp3.dataset_id}`)).json();
    check('a CSV uploaded through the form becomes the dataset', ds3.kind === 'csv' && ds3.n === 12, `${ds3.kind} n=${ds3.n}`);

    check('no script errors or CSP violations in the console', problems.length === 0, problems.join(' | '));
  } finally {
    if (context) await context.close();
    let code = server.proc.exitCode;
    check('the server ran until the test stopped it', code === null && !server.proc.earlyExit, server.proc.earlyExit || `exit ${code}`);
    if (code === null) {
      const exited = new Promise((r) => server.proc.once('exit', (c) => r(c)));
      server.proc.kill('SIGTERM');
      code = await exited;
    }
    check('the server drains and exits 0 on SIGTERM', code === 0, `exit ${code}: ${server.stderr().slice(-2000)}`);
    rmSync(tmp, { recursive: true, force: true });
  }
}

try {
  await main();
} catch (e) {
  check('the scenario ran to the end', false, e.stack || e.message);
}
console.log(`screenshots: ${shots}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
