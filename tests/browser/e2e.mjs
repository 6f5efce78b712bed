// End-to-end test of the basinlab dashboard in a real browser: Debian's chromium driven headless
// by playwright-core (no browser download), against a real `basinlab serve` started here on
// loopback with a fresh database. It submits an experiment through the form (first with an
// invalid learning rate, to see the server's 422 land next to that field), watches it complete,
// opens a run, the compare view and the dataset view, checks the narrow layout and the polling
// fallback when the event stream is blocked, and saves screenshots of each step.
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
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${err}`));
    });
  });
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
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

    // 2. the form, driven from the keyboard where it matters; an invalid learning rate first
    await page.getByRole('link', { name: 'New experiment' }).first().click();
    await page.getByRole('heading', { name: 'New experiment' }).waitFor();
    await page.getByLabel('Generator').selectOption('xor');
    await page.getByLabel('Samples (n)').fill('40');
    await page.getByLabel('Hidden widths').fill('4');
    await page.getByLabel('Restarts (runs)').fill(String(RESTARTS));
    await page.getByLabel('Max steps per run').fill('1500');
    await page.getByLabel('Learning rate').fill('0');
    await page.getByLabel('Learning rate').press('Enter'); // submit from the keyboard
    const lrErr = page.locator('#f-lr-err');
    await lrErr.filter({ hasText: /./ }).waitFor({ timeout: 10000 });
    const lrText = await lrErr.textContent();
    check('the 422 error for /optimizer/lr is shown next to the learning-rate field', /> ?0|positive|greater/.test(lrText), lrText);
    check('the learning-rate field is marked invalid', (await page.getByLabel('Learning rate').getAttribute('aria-invalid')) === 'true');
    check('the invalid field has the focus', await page.evaluate(() => document.activeElement && document.activeElement.id === 'f-lr'));
    check('no other field got an error', (await page.locator('.field .err:not(:empty)').count()) === 1);
    await shot(page, '02-form-422');

    await page.getByLabel('Learning rate').fill('0.05');
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
    check('runs are ordered by final risk, best first', best !== null && Math.abs(Number(firstRisk) - best) <= 1e-3 * Math.abs(best) + 1e-12, `${firstRisk} vs ${best}`);
    await page.locator('#traj canvas').first().waitFor({ timeout: 15000 });
    check('trajectories are drawn for the default runs', (await page.locator('#traj').getAttribute('data-series')) !== null);
    await shot(page, '03-experiment');

    // 4. open a run that is not the best: its evidence panel
    const second = page.locator('#runs tbody tr[data-run]').nth(1);
    const secondId = await second.getAttribute('data-run');
    await second.getByRole('link').click();
    await page.locator('#evidence h3', { hasText: 'Run #' }).waitFor();
    check('the selected run is highlighted in the table', (await page.locator(`#runs tr.selected[data-run="${secondId}"]`).count()) === 1);
    const run = await (await fetch(`${base}/v1/runs/${secondId}`)).json();
    const evidence = await page.locator('#evidence').textContent();
    if (run.verdict) check('the verdict evidence shows the label', evidence.includes(run.verdict.label.replace('_', ' ')), evidence.slice(0, 200));
    else check('a run without a verdict says the verdict is pending', (await page.locator('#verdict-pending').count()) === 1);
    await page.locator('#traj canvas').first().waitFor();
    await shot(page, '04-run');

    // 5. compare it with the best run
    await page.locator('#compare-best').click();
    await page.waitForURL(/#\/compare\?a=/);
    await page.locator('#compare-runs .card').nth(1).waitFor({ timeout: 10000 });
    await page.locator('#path-chart canvas, #compare-runs ~ * .unavailable, .unavailable').first().waitFor({ timeout: 15000 });
    const cards = await page.locator('#compare-runs .card').count();
    check('the compare view shows both runs', cards === 2, String(cards));
    const hasCompare = (await fetch(`${base}/v1/compare?a=${secondId}&b=${api.summary.best_run_id}`)).status === 200;
    if (hasCompare) check('the path profile is drawn', (await page.locator('#path-chart canvas').count()) > 0);
    else check('without /v1/compare the view says the comparison is unavailable', (await page.locator('.unavailable', { hasText: 'compare' }).count()) === 1);
    await shot(page, '05-compare');

    // 6. the dataset view with the run's function (2-D xor)
    await page.goto(`${base}/#/datasets/${api.dataset_id}?run=${secondId}`);
    await page.locator('canvas.plane').waitFor({ timeout: 15000 });
    check('the 2-D dataset is drawn', true);
    await page.locator('#dataset-plot + div .caption').waitFor();
    await shot(page, '06-dataset');

    // 7. a narrow window: nothing wider than the viewport
    await page.setViewportSize({ width: 420, height: 800 });
    await page.goto(`${base}/#/experiments/${expId}?run=${secondId}`);
    await page.locator('#evidence h3', { hasText: 'Run #' }).waitFor();
    await page.locator('#hist canvas').first().waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check('the experiment page fits a 420 px window', overflow <= 1, `overflows by ${overflow}px`);
    await shot(page, '07-narrow');
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
        max_steps: 20000,
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
    await page.locator('h1 .badge-finished').waitFor({ timeout: 90000 });
    await page.locator('.bar-label', { hasText: '6 / 6' }).first().waitFor({ timeout: 10000 });
    check('with the event stream blocked the page still follows the experiment to the end', true);
    check('the fallback polls with If-None-Match', conditional > 0, `${conditional} conditional GETs, ${notModified} answered 304`);
    await page.unroute('**/events*');
    await page.goto(`${base}/#/datasets/${exp2.dataset_id}?run=${(await (await fetch(`${base}/v1/experiments/${exp2.id}`)).json()).summary.best_run_id}`);
    await page.locator('#dataset-plot canvas').first().waitFor({ timeout: 15000 });
    check('the 1-D dataset is drawn', true);
    await shot(page, '08-dataset-1d');

    // 9. the list: newest first, both finished
    await page.goto(`${base}/#/`);
    await page.locator('tbody tr[data-id]').nth(1).waitFor();
    const ids = await page.locator('tbody tr[data-id]').evaluateAll((rows) => rows.map((r) => r.dataset.id));
    check('the list shows the newest experiment first', ids[0] === exp2.id && ids[1] === expId, ids.join(','));
    check('the list shows both finished', (await page.locator('tbody .badge-finished').count()) === 2);
    await shot(page, '09-list');

    check('no script errors or CSP violations in the console', problems.length === 0, problems.join(' | '));
  } finally {
    if (context) await context.close();
    if (server.proc.exitCode === null) {
      const exited = new Promise((r) => server.proc.once('exit', r));
      server.proc.kill('SIGTERM');
      await exited;
    }
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
