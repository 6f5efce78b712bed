// The real server against its contract: starts `basinlab serve` (BASINLAB_BINARY) on a fresh
// database, exercises every operation of api/openapi.yaml with fetch() — successes, paging,
// conditional GETs, the event stream and the error answers — and checks EVERY answer against
// the document: the (operation, status) pair must be listed, the content type must be one the
// response lists, required headers must be present and match their schemas, and every JSON body
// (problems included) must validate against the response schema. A request body the server
// accepted (2xx) must also validate against the operation's request schema, so the contract is
// never stricter than the server. The run ends by checking that every operation was seen
// answering 2xx, and that the server shuts down cleanly on SIGTERM.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Contract, isJsonMedia, mediaType } from './oas.mjs';
import { Server, binaryPath, request, requestHeadersOnly, sleep } from './server.mjs';

const contract = new Contract();
const MAX_QUEUED_RUNS = 100;
let server;
let webRoot;
const seen = new Map(); // "METHOD template status" → count

/* Check one answer against the contract; returns the answer with `json` parsed. */
function check(method, target, res, requestBody) {
  const url = new URL(target, 'http://x.invalid');
  const where = `${method} ${url.pathname}${url.search} → ${res.status}`;
  const found = contract.responseFor(method, url.pathname, res.status);
  assert.ok(found, `${where}: this answer is not in the contract\n${res.text.slice(0, 500)}`);
  seen.set(found.key, (seen.get(found.key) || 0) + 1);
  assert.ok(res.headers.get('x-request-id'), `${where}: every answer carries X-Request-Id`);

  for (const [name, h] of Object.entries(found.response.headers || {})) {
    const header = contract.resolve(h);
    const value = res.headers.get(name);
    if (header.required) assert.ok(value !== null, `${where}: required header ${name} is missing`);
    if (value !== null && header.schema) {
      const bad = contract.violations(header.schema, value);
      assert.equal(bad, null, `${where}: header ${name}: ${value}\n${bad}`);
    }
  }

  const content = found.response.content || {};
  const media = mediaType(res.headers.get('content-type'));
  const out = { ...res, json: undefined };
  if (method === 'HEAD') {
    assert.equal(res.bytes.length, 0, `${where}: a HEAD answer has no body`);
    if (Object.keys(content).length > 0) assert.ok(content[media], `${where}: content type ${media}`);
    return out;
  }
  if (Object.keys(content).length === 0) {
    assert.equal(res.bytes.length, 0, `${where}: the contract says this answer has no body`);
    return out;
  }
  assert.ok(content[media], `${where}: content type ${media} is not one of ${Object.keys(content)}`);
  const schema = content[media].schema;
  if (isJsonMedia(media)) {
    out.json = JSON.parse(res.text);
    const bad = contract.violations(schema, out.json);
    assert.equal(bad, null, `${where}: body does not match the schema\n${bad}\n${res.text.slice(0, 2000)}`);
  } else if (schema?.type === 'string' && !schema.contentMediaType && media !== 'text/event-stream') {
    const bad = contract.violations(schema, res.text);
    assert.equal(bad, null, `${where}: body does not match the schema\n${bad}`);
  }

  if (res.status < 300 && requestBody !== undefined && found.operation?.requestBody) {
    const rb = found.operation.requestBody.content['application/json'];
    const bad = contract.violations(rb.schema, requestBody);
    assert.equal(bad, null, `${where}: the server accepted a body the contract refuses\n${bad}`);
  }
  return out;
}

/* Request + check. opts as server.mjs request(), plus `base` for another server than the main one. */
async function call(method, target, opts = {}) {
  const res = await request(opts.base || server.base, method, target, opts);
  return check(method, target, res, opts.json);
}

const get = (target, opts) => call('GET', target, opts);
const post = (target, json, opts = {}) => call('POST', target, { ...opts, json });
const del = (target) => call('DELETE', target);

/* The pointers of a problem's `errors`. */
const pointers = (res) => (res.json.errors || []).map((e) => e.pointer);

/* Poll GET target until pred(json) holds. */
async function waitFor(target, pred, timeoutMs = 20000) {
  const t0 = Date.now();
  for (;;) {
    const res = await get(target);
    assert.equal(res.status, 200);
    if (pred(res.json)) return res.json;
    if (Date.now() - t0 > timeoutMs) assert.fail(`${target}: condition not met in ${timeoutMs} ms: ${res.text}`);
    await sleep(50);
  }
}

/* The events of a text/event-stream body: [{id, event, data}] (comments skipped). */
function parseEvents(text) {
  const events = [];
  for (const block of text.split('\n\n')) {
    const ev = { id: null, event: 'message', data: [] };
    let any = false;
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      any = true;
      if (field === 'id') ev.id = value;
      else if (field === 'event') ev.event = value;
      else if (field === 'data') ev.data.push(value);
    }
    if (any) events.push({ ...ev, data: ev.data.join('\n') });
  }
  return events;
}

/* Read a whole event stream (it ends once the experiment is settled) and check each event's
 * data against the schema the contract gives its event type. */
async function readEvents(expId, headers = {}, query = '') {
  const target = `/v1/experiments/${expId}/events${query}`;
  const res = await call('GET', target, { headers, timeoutMs: 20000 });
  assert.equal(res.status, 200, res.text);
  const schemas = contract.resolve(contract.doc.paths['/v1/experiments/{id}/events'].get.responses['200'])
    .content['text/event-stream']['x-events'];
  const events = parseEvents(res.text);
  for (const ev of events) {
    assert.ok(schemas[ev.event], `event type ${ev.event} is not in the contract`);
    const data = JSON.parse(ev.data);
    const bad = contract.violations(schemas[ev.event], data);
    assert.equal(bad, null, `event ${ev.id} ${ev.event}: ${ev.data}\n${bad}`);
    ev.json = data;
  }
  return events;
}

const xorArch = {
  input_shape: [2],
  layers: [{ type: 'dense', units: 4 }, { type: 'activation', kind: 'relu' }, { type: 'dense', units: 1 }],
};

before(async () => {
  // a web root of our own, so the dashboard routes have files to serve
  webRoot = mkdtempSync(path.join(os.tmpdir(), 'basinlab-web-'));
  mkdirSync(path.join(webRoot, 'js'));
  mkdirSync(path.join(webRoot, 'vendor'));
  writeFileSync(path.join(webRoot, 'index.html'), '<!doctype html><title>basinlab</title>\n');
  writeFileSync(path.join(webRoot, 'js', 'app.js'), 'export const x = 1;\n');
  writeFileSync(path.join(webRoot, 'vendor', 'lib.css'), 'body { margin: 0 }\n');
  writeFileSync(path.join(webRoot, 'icon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>\n');
  server = await Server.start(['--max-queued-runs', String(MAX_QUEUED_RUNS), '--web', webRoot]);
});

after(async () => {
  if (server) {
    const status = await server.stop();
    rmSync(webRoot, { recursive: true, force: true });
    assert.deepEqual(status, { code: 0, signal: null }, `unclean shutdown:\n${server.stderr.slice(-4000)}`);
  }
});

// ids made along the way
const ids = {};

describe('meta', () => {
  it('answers /healthz and /readyz', async () => {
    const h = await get('/healthz');
    assert.equal(h.status, 200);
    assert.deepEqual(h.json, { status: 'ok' });
    const r = await get('/readyz');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { status: 'ready' });
  });

  it('publishes its limits, with ETag and 304', async () => {
    const l = await get('/v1/limits');
    assert.equal(l.status, 200);
    ids.limits = l.json;
    const etag = l.headers.get('etag');
    const again = await get('/v1/limits', { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304);
    assert.equal(again.headers.get('etag'), etag);
    const other = await get('/v1/limits', { headers: { 'If-None-Match': '"0000000000000000"' } });
    assert.equal(other.status, 200);
  });

  it('serves exactly the contract it was built with', async () => {
    const o = await get('/openapi.yaml');
    assert.equal(o.status, 200);
    assert.equal(o.text, contract.text, 'GET /openapi.yaml differs from api/openapi.yaml: rebuild');
  });

  it('exposes Prometheus metrics', async () => {
    const m = await get('/metrics');
    assert.equal(m.status, 200);
    assert.match(m.text, /^basinlab_store_up 1$/m);
    assert.match(m.text, /^# TYPE basinlab_http_requests_total counter$/m);
  });
});

describe('generic answers', () => {
  it('405 with Allow for a method a path does not serve', async () => {
    const r = await call('PUT', '/v1/datasets', { json: {} });
    assert.equal(r.status, 405);
    assert.deepEqual(r.headers.get('allow').split(', ').sort(), ['GET', 'HEAD', 'POST']);
    const d = await call('DELETE', '/healthz');
    assert.equal(d.status, 405);
  });

  it('serves HEAD wherever GET is served: same status and headers, no body', async () => {
    const g = await get('/v1/limits');
    const h = await call('HEAD', '/v1/limits');
    assert.equal(h.status, 200);
    assert.equal(h.headers.get('etag'), g.headers.get('etag'));
    const nf = await call('HEAD', '/v1/runs/run_0000000000000000');
    assert.equal(nf.status, 404);
  });

  it('404 for a path no route has', async () => {
    const r = await get('/v1/nothing/here');
    assert.equal(r.status, 404);
    assert.equal(r.json.instance, '/v1/nothing/here');
  });

  it('400 for malformed percent-encoding in the path', async () => {
    const r = await get('/v1/datasets/%zz');
    assert.equal(r.status, 400);
  });

  it('413 for an announced body above max_body_bytes, before reading it', async () => {
    const target = '/v1/datasets';
    const res = await requestHeadersOnly(server.base, 'POST', target, {
      'Content-Type': 'application/json',
      'Content-Length': String(ids.limits.max_body_bytes + 1),
    });
    const r = check('POST', target, res);
    assert.equal(r.status, 413);
  });
});

describe('dashboard files', () => {
  it('serves / and files with security headers, ETag and 304', async () => {
    const index = await get('/');
    assert.equal(index.status, 200);
    assert.equal(mediaType(index.headers.get('content-type')), 'text/html');
    assert.match(index.text, /<title>basinlab<\/title>/);
    const js = await get('/js/app.js');
    assert.equal(mediaType(js.headers.get('content-type')), 'text/javascript');
    const css = await get('/vendor/lib.css');
    assert.equal(mediaType(css.headers.get('content-type')), 'text/css');
    const svg = await get('/icon.svg');
    assert.equal(svg.status, 200);
    const again = await get('/js/app.js', { headers: { 'If-None-Match': js.headers.get('etag') } });
    assert.equal(again.status, 304);
  });

  it('404 for unknown files, dotfiles and unserved extensions; 400 for an encoded slash', async () => {
    for (const target of ['/nothing.js', '/js/missing.js', '/.env', '/x.exe', '/vendor/a..b']) {
      const r = await get(target);
      assert.equal(r.status, 404, target);
    }
    const r = await get('/js/a%2Fb.js');
    assert.equal(r.status, 400);
  });
});

describe('datasets', () => {
  it('creates a generator dataset (201 + Location)', async () => {
    const r = await post('/v1/datasets', { kind: 'generator', generator: { name: 'xor', n: 40, seed: 1 } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.headers.get('location'), `/v1/datasets/${r.json.id}`);
    assert.equal(r.json.kind, 'generator');
    assert.equal(r.json.n, 40);
    assert.deepEqual(r.json.input_shape, [2]);
    assert.equal(r.json.generator.noise, 0.05, 'the default noise is filled in');
    ids.dsXor = r.json.id;
  });

  it('creates an inline dataset; XOR has the affine least-squares risk 1/8', async () => {
    const body = { kind: 'inline', name: 'corners', x: [[0, 0], [0, 1], [1, 0], [1, 1]], y: [0, 1, 1, 0] };
    const r = await post('/v1/datasets', body);
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.task, 'binary');
    // the best affine fit of XOR on the four corners is the constant 1/2: (1/4)·4·½·(½)² = 1/8
    assert.ok(Math.abs(r.json.linear_fit.loss.squared.risk - 0.125) < 1e-12);
    assert.equal(r.json.linear_fit.loss.squared.linearly_fittable, false);
    ids.dsInline = r.json.id;
  });

  it('creates a dataset from a text/csv body with options in the query', async () => {
    const csv = 'a,b,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n';
    const r = await call('POST', '/v1/datasets?name=csvxor&header=true&y_cols=1', {
      headers: { 'Content-Type': 'text/csv' },
      body: csv,
    });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.kind, 'csv');
    assert.equal(r.json.name, 'csvxor');
    assert.equal(r.json.header, true);
    assert.equal(r.json.n, 4);
    ids.dsCsv = r.json.id;
  });

  it('creates a Gaussian teacher population (n = 0, no linear fit)', async () => {
    const r = await post('/v1/datasets', { kind: 'teacher_gaussian', k: 2, d: 3 });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.n, 0);
    assert.equal(r.json.linear_fit, null);
    assert.equal(r.json.teacher, 'identity');
    ids.dsTeacher = r.json.id;
  });

  it('422 lists every invalid field of a JSON body', async () => {
    const r = await post('/v1/datasets', { kind: 'inline', x: [[0, 0], [1]], y: [1, 2, 3], extra: true });
    assert.equal(r.status, 422);
    assert.ok(pointers(r).includes('/extra'), JSON.stringify(r.json.errors));
    const k = await post('/v1/datasets', { kind: 'parquet' });
    assert.equal(k.status, 422);
    assert.deepEqual(pointers(k), ['/kind']);
  });

  it('422 for a CSV upload points at the query parameter or the text', async () => {
    const q = await call('POST', '/v1/datasets?y_cols=abc', { headers: { 'Content-Type': 'text/csv' }, body: '1,2\n' });
    assert.equal(q.status, 422);
    assert.deepEqual(pointers(q), ['?y_cols']);
    const t = await call('POST', '/v1/datasets', { headers: { 'Content-Type': 'text/csv' }, body: '1,2\n3,oops\n' });
    assert.equal(t.status, 422);
    assert.ok(pointers(t).includes(''), JSON.stringify(t.json));
  });

  it('415 for another media type, 400 for malformed JSON and a missing body', async () => {
    const u = await call('POST', '/v1/datasets', { headers: { 'Content-Type': 'text/plain' }, body: 'x' });
    assert.equal(u.status, 415);
    const c = await call('POST', '/v1/datasets', { headers: { 'Content-Type': 'application/json; charset=latin1' }, body: '{}' });
    assert.equal(c.status, 415);
    const m = await call('POST', '/v1/datasets', { headers: { 'Content-Type': 'application/json' }, body: '{"kind": ' });
    assert.equal(m.status, 400);
    assert.equal(m.json.title, 'Malformed JSON');
    const n = await call('POST', '/v1/datasets', { headers: { 'Content-Type': 'application/json' } });
    assert.equal(n.status, 400);
    const deep = await call('POST', '/v1/datasets', { headers: { 'Content-Type': 'application/json' }, body: '['.repeat(100) + ']'.repeat(100) });
    assert.equal(deep.status, 400);
  });

  it('lists with limit, next_cursor and Link; bad paging is 400', async () => {
    const first = await get('/v1/datasets?limit=1');
    assert.equal(first.status, 200);
    assert.equal(first.json.items.length, 1);
    assert.ok(first.json.next_cursor);
    const link = first.headers.get('link').match(/^<([^>]+)>; rel="next"$/)[1];
    assert.equal(link, `/v1/datasets?limit=1&cursor=${encodeURIComponent(first.json.next_cursor)}`);
    const second = await get(link);
    assert.equal(second.status, 200);
    assert.equal(second.json.items.length, 1);
    assert.notEqual(second.json.items[0].id, first.json.items[0].id);
    const all = await get('/v1/datasets');
    assert.equal(all.json.items.length, 4);
    assert.equal(all.json.next_cursor, null);
    assert.equal(all.headers.get('link'), null);
    for (const q of ['limit=0', 'limit=1001', 'limit=abc', 'cursor=garbage']) {
      const bad = await get(`/v1/datasets?${q}`);
      assert.equal(bad.status, 400, q);
    }
  });

  it('gets one with ETag; If-None-Match gives 304', async () => {
    const r = await get(`/v1/datasets/${ids.dsXor}`);
    assert.equal(r.status, 200);
    assert.equal(r.json.id, ids.dsXor);
    const nm = await get(`/v1/datasets/${ids.dsXor}`, { headers: { 'If-None-Match': r.headers.get('etag') } });
    assert.equal(nm.status, 304);
  });

  it('serves the points as paged JSON and as CSV, which agree', async () => {
    const p = await get(`/v1/datasets/${ids.dsXor}/points?limit=10`);
    assert.equal(p.status, 200);
    assert.equal(p.json.count, 10);
    assert.equal(p.json.x.length, 10);
    assert.equal(p.json.next_cursor, 'p10');
    assert.match(p.headers.get('link'), /cursor=p10/);
    const rest = await get(`/v1/datasets/${ids.dsXor}/points?limit=100&cursor=p10`);
    assert.equal(rest.json.offset, 10);
    assert.equal(rest.json.count, 30);
    assert.equal(rest.json.next_cursor, null);
    const csv = await get(`/v1/datasets/${ids.dsXor}/points?format=csv`);
    assert.equal(csv.status, 200);
    const lines = csv.text.trim().split('\n');
    assert.equal(lines[0], 'x0,x1,y0');
    assert.equal(lines.length, 41);
    const row10 = lines[11].split(',').map(Number);
    assert.deepEqual(row10, [...rest.json.x[0], rest.json.y[0]]);
    for (const q of ['cursor=zzz', 'cursor=p40', 'format=xml', 'limit=10001']) {
      const bad = await get(`/v1/datasets/${ids.dsXor}/points?${q}`);
      assert.equal(bad.status, 400, q);
    }
  });

  it('404 for unknown or malformed ids, 400 for an id with a slash', async () => {
    for (const target of ['/v1/datasets/ds_0000000000000000', '/v1/datasets/nope', '/v1/datasets/nope/points']) {
      const r = await get(target);
      assert.equal(r.status, 404, target);
    }
    const s = await get('/v1/datasets/a%2Fb');
    assert.equal(s.status, 400);
  });

  it('deletes an unused dataset (204), then it is gone', async () => {
    const d = await del(`/v1/datasets/${ids.dsTeacher}`);
    assert.equal(d.status, 204);
    const g = await get(`/v1/datasets/${ids.dsTeacher}`);
    assert.equal(g.status, 404);
    const again = await del(`/v1/datasets/${ids.dsTeacher}`);
    assert.equal(again.status, 404);
  });
});

describe('architectures', () => {
  it('creates one in canonical form (defaults filled in, parameters counted)', async () => {
    const r = await post('/v1/architectures', xorArch);
    assert.equal(r.status, 201, r.text);
    assert.equal(r.headers.get('location'), `/v1/architectures/${r.json.id}`);
    assert.equal(r.json.param_count, 2 * 4 + 4 + 4 * 1 + 1);
    assert.equal(r.json.output_dim, 1);
    assert.equal(r.json.layers[0].bias, true);
    ids.arXor = r.json.id;
  });

  it('counts a small conv net by hand', async () => {
    const body = {
      name: 'conv',
      input_shape: [1, 4, 4],
      layers: [
        { type: 'conv2d', filters: 2, kernel: 3 },
        { type: 'activation', kind: 'pwl', s_neg: 0.1, s_pos: 1 },
        { type: 'flatten' },
        { type: 'dense', units: 1 },
      ],
    };
    const r = await post('/v1/architectures', body);
    assert.equal(r.status, 201, r.text);
    // conv: 2·1·3·3 + 2 = 20; output 2×2×2 = 8 → dense: 8 + 1 = 9
    assert.equal(r.json.param_count, 29);
    assert.equal(r.json.layers[0].stride, 1);
    assert.equal(r.json.layers[0].padding, 'valid');
    ids.arConv = r.json.id;
  });

  it('422 for invalid specs, with pointers', async () => {
    const a = await post('/v1/architectures', { layers: [] });
    assert.equal(a.status, 422);
    assert.deepEqual(pointers(a).sort(), ['/input_shape', '/layers']);
    const b = await post('/v1/architectures', { input_shape: [2], layers: [{ type: 'activation', kind: 'relu' }] });
    assert.equal(b.status, 422);
    assert.deepEqual(pointers(b), ['/layers']);
    const c = await post('/v1/architectures', { input_shape: [2], layers: [{ type: 'dense', units: 0 }, { type: 'softmax' }] });
    assert.equal(c.status, 422);
    assert.deepEqual(pointers(c).sort(), ['/layers/0/units', '/layers/1/type']);
  });

  it('415 and 400 from the pipeline', async () => {
    const u = await call('POST', '/v1/architectures', { headers: { 'Content-Type': 'text/csv' }, body: 'a\n' });
    assert.equal(u.status, 415);
    const n = await call('POST', '/v1/architectures', { headers: { 'Content-Type': 'application/json' }, body: '{"a":1,"a":2}' });
    assert.equal(n.status, 400, 'duplicate keys are malformed');
  });

  it('lists, gets (304), deletes an unused one', async () => {
    const l = await get('/v1/architectures?limit=1');
    assert.equal(l.status, 200);
    assert.ok(l.headers.get('link'));
    const g = await get(`/v1/architectures/${ids.arConv}`);
    assert.equal(g.status, 200);
    const nm = await get(`/v1/architectures/${ids.arConv}`, { headers: { 'If-None-Match': g.headers.get('etag') } });
    assert.equal(nm.status, 304);
    const d = await del(`/v1/architectures/${ids.arConv}`);
    assert.equal(d.status, 204);
    const gone = await get(`/v1/architectures/${ids.arConv}`);
    assert.equal(gone.status, 404);
    const bad = await get('/v1/architectures?cursor=garbage');
    assert.equal(bad.status, 400);
  });
});

describe('experiments', () => {
  const spec = () => ({
    dataset_id: ids.dsXor,
    architecture_id: ids.arXor,
    loss: 'squared',
    optimizer: { kind: 'gd', lr: 0.1 },
    restarts: 4,
    max_steps: 200,
    trajectory_every: 10,
    seed: 3,
  });

  it('submits (202 + Location) and runs to finished', async () => {
    const r = await post('/v1/experiments', spec());
    assert.equal(r.status, 202, r.text);
    assert.equal(r.headers.get('location'), `/v1/experiments/${r.json.id}`);
    assert.equal(r.headers.get('idempotent-replayed'), null);
    assert.equal(r.json.progress.total, 4);
    ids.exA = r.json.id;
    const done = await waitFor(`/v1/experiments/${ids.exA}`, (e) => e.status === 'finished');
    assert.equal(done.progress.finished, 4);
    assert.ok(done.summary.best_run_id);
    assert.equal(done.summary.stop_reasons.max_steps, 4);
    ids.bestRun = done.summary.best_run_id;
  });

  it('submits inline objects, which become records of their own', async () => {
    const body = {
      dataset: { kind: 'inline', x: [[0, 0], [0, 1], [1, 0], [1, 1]], y: [0, 1, 1, 0] },
      architecture: { layers: xorArch.layers },
      optimizer: { kind: 'adam', lr: 0.05 },
      init: { kind: 'normal', std: 0.5 },
      restarts: 2,
      max_steps: 100,
      stop: { grad_tol: 0, plateau: { tol: 1e-12, window: 50 } },
    };
    const r = await post('/v1/experiments', body);
    assert.equal(r.status, 202, r.text);
    assert.match(r.json.dataset_id, /^ds_/);
    assert.deepEqual(r.json.optimizer.beta2, 0.999, 'adam defaults are filled in');
    const ds = await get(`/v1/datasets/${r.json.dataset_id}`);
    assert.equal(ds.status, 200);
    assert.equal(ds.json.kind, 'inline');
    ids.exInline = r.json.id;
    await waitFor(`/v1/experiments/${ids.exInline}`, (e) => e.status === 'finished');
  });

  it('gets a finished experiment with 304 on a matching ETag', async () => {
    const g = await get(`/v1/experiments/${ids.exA}`);
    const nm = await get(`/v1/experiments/${ids.exA}`, { headers: { 'If-None-Match': g.headers.get('etag') } });
    assert.equal(nm.status, 304);
  });

  it('replays an idempotent submission; another body under the key is 409', async () => {
    const key = `contract-${Date.now()}`;
    const body = spec();
    const first = await post('/v1/experiments', body, { headers: { 'Idempotency-Key': key } });
    assert.equal(first.status, 202);
    // the same body with other key order and whitespace
    const reordered = Object.fromEntries(Object.entries(body).reverse());
    const again = await call('POST', '/v1/experiments', {
      headers: { 'Idempotency-Key': key, 'Content-Type': 'application/json' },
      body: JSON.stringify(reordered, null, 2),
    });
    assert.equal(again.status, 202);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.headers.get('location'), first.headers.get('location'));
    const other = await post('/v1/experiments', { ...body, seed: 4 }, { headers: { 'Idempotency-Key': key } });
    assert.equal(other.status, 409);
    const long = await post('/v1/experiments', body, { headers: { 'Idempotency-Key': 'k'.repeat(201) } });
    assert.equal(long.status, 400);
    await waitFor(`/v1/experiments/${first.json.id}`, (e) => e.status === 'finished');
  });

  it('422 for invalid specs and unknown references, with pointers', async () => {
    const bad = await post('/v1/experiments', {
      ...spec(),
      restarts: 0,
      optimizer: { kind: 'gd', batch: 3 },
      bogus: 1,
    });
    assert.equal(bad.status, 422);
    assert.deepEqual(pointers(bad).sort(), ['/bogus', '/optimizer/batch', '/restarts']);
    const refs = await post('/v1/experiments', { ...spec(), dataset_id: 'ds_0000000000000000' });
    assert.equal(refs.status, 422);
    assert.deepEqual(pointers(refs), ['/dataset_id']);
    const compat = await post('/v1/experiments', { ...spec(), loss: 'cross_entropy' });
    assert.equal(compat.status, 422);
    assert.ok(pointers(compat).includes('/loss'), JSON.stringify(compat.json));
    const none = await post('/v1/experiments', {});
    assert.equal(none.status, 422);
    assert.deepEqual(pointers(none).sort(), ['/architecture', '/dataset']);
  });

  it('429 with Retry-After when the queue would exceed its bound', async () => {
    const r = await post('/v1/experiments', { ...spec(), restarts: MAX_QUEUED_RUNS + 1 });
    assert.equal(r.status, 429);
  });

  it('lists experiments, filtered by status, paged', async () => {
    const l = await get('/v1/experiments?status=finished');
    assert.equal(l.status, 200);
    assert.ok(l.json.items.some((e) => e.id === ids.exA));
    assert.ok(l.json.items.every((e) => e.status === 'finished'));
    const q = await get('/v1/experiments?status=queued');
    assert.ok(q.json.items.every((e) => e.status === 'queued'));
    const p = await get('/v1/experiments?limit=1');
    assert.match(p.headers.get('link'), /limit=1&cursor=/);
    const bad = await get('/v1/experiments?status=bogus');
    assert.equal(bad.status, 400);
  });

  it('lists runs: by index, paged, by final risk, filtered', async () => {
    const all = await get(`/v1/experiments/${ids.exA}/runs`);
    assert.deepEqual(all.json.items.map((r) => r.index), [0, 1, 2, 3]);
    ids.runs = all.json.items;
    const p1 = await get(`/v1/experiments/${ids.exA}/runs?limit=2`);
    assert.deepEqual(p1.json.items.map((r) => r.index), [0, 1]);
    const link = p1.headers.get('link').match(/^<([^>]+)>/)[1];
    const p2 = await get(link);
    assert.deepEqual(p2.json.items.map((r) => r.index), [2, 3]);
    assert.equal(p2.json.next_cursor, null);
    const byRisk = await get(`/v1/experiments/${ids.exA}/runs?order=final_risk`);
    const risks = byRisk.json.items.map((r) => r.final_risk);
    assert.deepEqual(risks, [...risks].sort((a, b) => a - b));
    assert.equal(byRisk.json.items[0].id, ids.bestRun);
    const fin = await get(`/v1/experiments/${ids.exA}/runs?status=finished`);
    assert.equal(fin.json.items.length, 4);
    const failed = await get(`/v1/experiments/${ids.exA}/runs?status=failed`);
    assert.equal(failed.json.items.length, 0);
    for (const q of ['cursor=zzz', 'order=name', 'status=done', 'limit=0']) {
      const bad = await get(`/v1/experiments/${ids.exA}/runs?${q}`);
      assert.equal(bad.status, 400, q);
    }
    const nf = await get('/v1/experiments/ex_0000000000000000/runs');
    assert.equal(nf.status, 404);
  });

  it('streams its events as SSE, resumable by Last-Event-ID', async () => {
    const events = await readEvents(ids.exA);
    const runEvents = events.filter((e) => e.event === 'run_finished');
    assert.equal(runEvents.length, 4);
    assert.deepEqual(runEvents.map((e) => e.json.index).sort(), [0, 1, 2, 3]);
    const last = events[events.length - 1];
    assert.equal(last.event, 'status');
    assert.equal(last.json.status, 'finished');
    const idsSeen = events.map((e) => Number(e.id));
    assert.deepEqual(idsSeen, [...idsSeen].sort((a, b) => a - b));
    assert.equal(new Set(idsSeen).size, idsSeen.length);
    const prev = events[events.length - 2].id;
    const resumed = await readEvents(ids.exA, { 'Last-Event-ID': prev });
    assert.deepEqual(resumed.map((e) => e.id), [last.id]);
    const byQuery = await readEvents(ids.exA, {}, `?last_event_id=${prev}`);
    assert.deepEqual(byQuery.map((e) => e.id), [last.id]);
    const bad = await get(`/v1/experiments/${ids.exA}/events`, { headers: { 'Last-Event-ID': 'abc' } });
    assert.equal(bad.status, 400);
    const nf = await get('/v1/experiments/ex_0000000000000000/events');
    assert.equal(nf.status, 404);
  });

  it('409 for deleting records in use and cancelling a finished experiment', async () => {
    const ds = await del(`/v1/datasets/${ids.dsXor}`);
    assert.equal(ds.status, 409);
    const ar = await del(`/v1/architectures/${ids.arXor}`);
    assert.equal(ar.status, 409);
    const c = await post(`/v1/experiments/${ids.exA}/cancel`);
    assert.equal(c.status, 409);
  });

  it('cancels a running experiment, then deletes it', async () => {
    const r = await post('/v1/experiments', { ...spec(), restarts: 2, max_steps: 5000000, trajectory_every: 0 });
    assert.equal(r.status, 202);
    const id = r.json.id;
    const busy = await del(`/v1/experiments/${id}`);
    assert.equal(busy.status, 409, 'a queued or running experiment is cancelled first');
    const c = await post(`/v1/experiments/${id}/cancel`);
    assert.equal(c.status, 200);
    assert.equal(c.json.status, 'cancelled');
    const c2 = await post(`/v1/experiments/${id}/cancel`);
    assert.equal(c2.status, 200, 'cancel is idempotent');
    const settled = await waitFor(`/v1/experiments/${id}`, (e) => e.progress.running === 0 && e.progress.queued === 0);
    assert.equal(settled.progress.cancelled, 2);
    const events = await readEvents(id);
    assert.ok(events.some((e) => e.event === 'status' && e.json.status === 'cancelled'));
    const runs = await get(`/v1/experiments/${id}/runs?status=cancelled`);
    assert.equal(runs.json.items.length, 2);
    const noParams = runs.json.items.find((x) => !x.has_params);
    assert.ok(noParams, 'a run cancelled before it trained has no end point');
    const p = await get(`/v1/runs/${noParams.id}/params`);
    assert.equal(p.status, 404);
    const d = await del(`/v1/experiments/${id}`);
    assert.equal(d.status, 204);
    const gone = await get(`/v1/experiments/${id}`);
    assert.equal(gone.status, 404);
    const goneRun = await get(`/v1/runs/${noParams.id}`);
    assert.equal(goneRun.status, 404);
    const nf = await post('/v1/experiments/ex_0000000000000000/cancel');
    assert.equal(nf.status, 404);
    const nd = await del('/v1/experiments/ex_0000000000000000');
    assert.equal(nd.status, 404);
  });
});

describe('runs', () => {
  it('gets a run with ETag and 304', async () => {
    const r = await get(`/v1/runs/${ids.bestRun}`);
    assert.equal(r.status, 200);
    assert.equal(r.json.status, 'finished');
    assert.equal(r.json.steps, 200);
    assert.equal(r.json.has_params, true);
    const nm = await get(`/v1/runs/${ids.bestRun}`, { headers: { 'If-None-Match': r.headers.get('etag') } });
    assert.equal(nm.status, 304);
    for (const target of ['/v1/runs/run_0000000000000000', '/v1/runs/ds_0000000000000000']) {
      assert.equal((await get(target)).status, 404, target);
    }
  });

  it('serves the trajectory: display, downsampled, full pages and CSV agree', async () => {
    const base = `/v1/runs/${ids.bestRun}/trajectory`;
    const t = await get(base);
    assert.equal(t.status, 200);
    assert.equal(t.json.downsampled, false);
    assert.equal(t.json.count, t.json.points.length);
    assert.equal(t.json.total_count, 21, 'steps 0, 10, ..., 200');
    assert.equal(t.json.points[0][0], 0);
    assert.equal(t.json.points.at(-1)[0], 200);
    assert.equal(t.json.last_step, 200);

    const ds = await get(`${base}?max_points=4`);
    assert.equal(ds.json.downsampled, true);
    assert.ok(ds.json.count <= 4 && ds.json.count >= 2);
    assert.equal(ds.json.points[0][0], 0, 'the first point survives');
    assert.equal(ds.json.points.at(-1)[0], 200, 'the last point survives');

    const page = await get(`${base}?full=true&limit=5`);
    assert.equal(page.json.count, 5);
    assert.equal(page.json.next_cursor, 's50');
    assert.match(page.headers.get('link'), /cursor=s50/);
    const next = await get(page.headers.get('link').match(/^<([^>]+)>/)[1]);
    assert.equal(next.json.points[0][0], 50);

    const csv = await get(`${base}?format=csv`);
    assert.equal(csv.status, 200);
    const rows = csv.text.trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
    assert.deepEqual(rows, t.json.points);

    const ranged = await get(`${base}?from=50&to=100`);
    assert.deepEqual(ranged.json.points.map((p) => p[0]), [50, 60, 70, 80, 90, 100]);

    for (const q of ['max_points=3', 'from=5&to=1', 'full=true&cursor=zzz', 'format=xml', 'full=yes', 'from=-1']) {
      const bad = await get(`${base}?${q}`);
      assert.equal(bad.status, 400, q);
    }
    assert.equal((await get('/v1/runs/run_0000000000000000/trajectory')).status, 404);
  });

  it('serves the end point as JSON and as raw float64, which agree', async () => {
    const j = await get(`/v1/runs/${ids.bestRun}/params`);
    assert.equal(j.status, 200);
    assert.equal(j.json.param_count, 17);
    assert.equal(j.json.params.length, 17);
    const b = await get(`/v1/runs/${ids.bestRun}/params`, { headers: { Accept: 'application/octet-stream' } });
    assert.equal(b.status, 200);
    assert.equal(mediaType(b.headers.get('content-type')), 'application/octet-stream');
    assert.equal(b.headers.get('x-param-count'), '17');
    assert.equal(b.bytes.length, 17 * 8);
    const values = Array.from({ length: 17 }, (_, i) => b.bytes.readDoubleLE(8 * i));
    assert.deepEqual(values, j.json.params);
    const nm = await get(`/v1/runs/${ids.bestRun}/params`, { headers: { 'If-None-Match': j.headers.get('etag') } });
    assert.equal(nm.status, 304);
    assert.equal((await get('/v1/runs/run_0000000000000000/params')).status, 404);
  });
});

describe('analysis', () => {
  // Independent references for the 2-4-1 and 1-4-1 ReLU nets used here: the forward pass from
  // the documented flat layout (W1 [H][d] row-major, b1 [H], W2 [1][H], b2), the squared loss
  // ½(f − y)² averaged over the samples, and the activation pattern (z > 0 per unit).
  const H = 4;
  const hidden = (p, x) => {
    const d = x.length;
    return Array.from({ length: H }, (_, j) => x.reduce((s, xi, i) => s + p[j * d + i] * xi, 0) + p[H * d + j]);
  };
  const forward = (p, x) => {
    const d = x.length;
    const z = hidden(p, x);
    return z.reduce((s, zj, j) => s + p[H * d + H + j] * Math.max(0, zj), p[H * d + 2 * H]);
  };
  const pattern = (p, x) => hidden(p, x).map((z) => (z > 0 ? '1' : '0')).join('');
  const risk = (p, pts) => pts.x.reduce((s, x, i) => s + 0.5 * (forward(p, x) - pts.y[i]) ** 2, 0) / pts.x.length;
  const close = (a, b, rel = 1e-9) => Math.abs(a - b) <= rel * Math.max(1, Math.abs(a), Math.abs(b));
  const params = async (runId) => (await get(`/v1/runs/${runId}/params`)).json.params;

  const vData = { kind: 'inline', x: [[-3], [-2], [-1], [-0.5], [0.5], [1], [2], [3.5]], y: [2.9, 2.1, 0.8, 0.45, 0.6, 1.1, 1.9, 3.3] };
  const submit = async (body) => {
    const r = await post('/v1/experiments', body);
    assert.equal(r.status, 202, r.text);
    return r.json.id;
  };
  const finished = (id) => waitFor(`/v1/experiments/${id}`, (e) => e.status === 'finished');

  before(async () => {
    // a 1-D experiment (breakpoints), a teacher population (no samples), a 3-input net (no
    // drawing); all small, trained while the checks on the XOR experiment run
    ids.ex1d = await submit({
      dataset: vData,
      architecture: { layers: [{ type: 'dense', units: H }, { type: 'activation', kind: 'relu' }, { type: 'dense', units: 1 }] },
      optimizer: { kind: 'gd', lr: 0.05 }, restarts: 2, max_steps: 300, seed: 5, trajectory_every: 0,
    });
    ids.exTeacher = await submit({
      dataset: { kind: 'teacher_gaussian', k: 2, d: 2 },
      architecture: { input_shape: [2], layers: [{ type: 'dense', units: 2, bias: false }, { type: 'activation', kind: 'relu' }, { type: 'sum' }] },
      optimizer: { kind: 'gd', lr: 0.1 }, restarts: 1, max_steps: 200, trajectory_every: 0,
    });
    ids.ex3d = await submit({
      dataset: { kind: 'inline', x: [[0, 0, 0], [1, 1, 1], [1, 0, 1]], y: [0.5, 1.5, 2.5] },
      architecture: { layers: [{ type: 'dense', units: 1 }] },
      restarts: 1, max_steps: 5, trajectory_every: 0,
    });
  });

  it('flags each run spurious or not against the objective best, with a witness', async () => {
    // A known spurious minimum of the same objective: every hidden unit dead (W1 = 0, b1 = −1)
    // and the output bias at the mean target, so f is the best constant, risk ½·Var(y); a
    // perturbation keeps the units dead, so it is a minimum, far above the trained best.
    const pts = (await get(`/v1/datasets/${ids.dsXor}/points?limit=100`)).json;
    const mean = pts.y.reduce((a, y) => a + y, 0) / pts.y.length;
    const dead = [...Array(8).fill(0), ...Array(H).fill(-1), ...Array(H).fill(0.5), mean];
    const ev = await post('/v1/evaluations', { dataset_id: ids.dsXor, architecture_id: ids.arXor, params: dead });
    assert.equal(ev.status, 201, ev.text);
    assert.ok(close(ev.json.risk, pts.y.reduce((a, y) => a + 0.5 * (y - mean) ** 2, 0) / pts.y.length, 1e-12));
    assert.equal(ev.json.run.verdict_label, 'certified_minimum');
    assert.equal(ev.json.run.spurious.flag, true);
    ids.exDead = ev.json.experiment_id;
    const runs = [
      ...(await get(`/v1/experiments/${ids.exA}/runs`)).json.items,
      ...(await get(`/v1/experiments/${ids.exDead}/runs`)).json.items,
    ];
    const exps = (await get('/v1/experiments?limit=1000')).json.items;
    const same = exps.filter((e) => e.dataset_id === ids.dsXor && e.architecture_id === ids.arXor && e.loss === 'squared' && e.l2 === 0);
    // every run of the same objective counts for the best (spurious.h), not just exA's
    let best = Infinity;
    for (const e of same) {
      for (const r of (await get(`/v1/experiments/${e.id}/runs?status=finished`)).json.items) {
        if (r.final_risk !== null) best = Math.min(best, r.final_risk);
      }
    }
    assert.ok(Number.isFinite(best));
    let flagged = 0;
    for (const r of runs) {
      const s = r.spurious;
      assert.equal(r.status, 'finished');
      const R = r.final_risk;
      const tol = 1e-6 * Math.max(1, Math.abs(R));
      const minimum = ['certified_minimum', 'likely_minimum'].includes(r.verdict_label) ? 1
        : ['saddle', 'not_converged'].includes(r.verdict_label) ? 0
          : r.verdict_label === null && r.stop_reason === 'grad_tol' ? 1 : -1;
      assert.equal(s.best_risk, best, r.id);
      assert.equal(s.gap, R - best, r.id);
      assert.equal(s.tol, tol, r.id);
      assert.equal(s.global, R <= tol, r.id);
      assert.equal(s.basis, minimum === -1 ? null : r.verdict_label === null ? 'stationary' : 'verdict', r.id);
      const above = R - best > tol && R > tol;
      assert.equal(s.flag, minimum === 1 ? above : minimum === 0 ? false : null, r.id);
      if (R - best > tol) {
        const w = (await get(`/v1/runs/${s.witness_run_id}`)).json;
        assert.equal(w.final_risk, best, 'the witness is a best run');
        assert.equal(s.witness_experiment_id, w.experiment_id);
        assert.ok(same.some((e) => e.id === w.experiment_id), 'of the same objective');
      } else {
        assert.equal(s.witness_run_id, null, r.id);
      }
      if (s.flag) flagged++;
      const one = await get(`/v1/runs/${r.id}`);
      assert.deepEqual(one.json.spurious, s, 'GET one and the list agree');
    }
    assert.ok(flagged >= 1);
    for (const ex of [ids.exA, ids.exDead]) {
      const mine = runs.filter((r) => r.experiment_id === ex);
      const t = await get(`/v1/experiments/${ex}/runs?spurious=true`);
      assert.deepEqual(t.json.items.map((r) => r.id).sort(), mine.filter((r) => r.spurious.flag === true).map((r) => r.id).sort());
      const f = await get(`/v1/experiments/${ex}/runs?spurious=false`);
      assert.deepEqual(f.json.items.map((r) => r.id).sort(), mine.filter((r) => r.spurious.flag === false).map((r) => r.id).sort());
    }
    const d = (await get(`/v1/experiments/${ids.exDead}`)).json.summary;
    assert.equal(d.spurious_count, 1);
    assert.equal(d.minima_count, 1);
    assert.equal(d.spurious_share, 1);
    assert.equal((await get(`/v1/experiments/${ids.exA}/runs?spurious=maybe`)).status, 400);
  });

  it('summarises labels, minima and the spurious share as the runs say', async () => {
    const runs = (await get(`/v1/experiments/${ids.exA}/runs`)).json.items;
    const s = (await get(`/v1/experiments/${ids.exA}`)).json.summary;
    const labels = { certified_minimum: 0, likely_minimum: 0, saddle: 0, not_converged: 0, none: 0, other: 0 };
    for (const r of runs) labels[r.verdict_label ?? 'none']++;
    assert.deepEqual(s.label_counts, labels);
    const verdicts = {};
    for (const r of runs) if (r.verdict_label) verdicts[r.verdict_label] = (verdicts[r.verdict_label] || 0) + 1;
    assert.deepEqual(s.verdicts, verdicts);
    assert.equal(s.minima_count, runs.filter((r) => ['certified_minimum', 'likely_minimum'].includes(r.verdict_label)).length);
    const spur = runs.filter((r) => r.spurious.flag === true).length;
    assert.equal(s.spurious_count, spur);
    assert.equal(s.spurious_share, spur / runs.length);
    assert.ok(s.spurious_share_ci[0] <= s.spurious_share && s.spurious_share <= s.spurious_share_ci[1]);
    // Wilson 95% for k of n, by hand
    const n = runs.length, p = spur / n, z = 1.959963984540054;
    const centre = (p + (z * z) / (2 * n)) / (1 + (z * z) / n);
    const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / (1 + (z * z) / n);
    assert.ok(close(s.spurious_share_ci[0], Math.max(0, centre - half), 1e-12));
    assert.ok(close(s.spurious_share_ci[1], Math.min(1, centre + half), 1e-12));
    assert.equal(s.spurious_tol, 1e-6);
    assert.equal(s.objective_best.risk, runs[0].spurious.best_risk);
    const exps = (await get('/v1/experiments?limit=1000')).json.items;
    assert.equal(s.objective_experiments,
      exps.filter((e) => e.dataset_id === ids.dsXor && e.architecture_id === ids.arXor && e.loss === 'squared' && e.l2 === 0).length);
    const item = exps.find((e) => e.id === ids.exA);
    assert.deepEqual({ ...item.summary, stop_reasons: s.stop_reasons, verdicts: s.verdicts }, s, 'a list item has the same summary');
  });

  it('stores each verdict with the numbers of the judged point', async () => {
    const runs = (await get(`/v1/experiments/${ids.exA}/runs`)).json.items;
    let judged = 0;
    for (const r of runs.filter((x) => x.verdict !== null)) {
      judged++;
      const v = r.verdict;
      assert.equal(v.label, r.verdict_label);
      assert.equal(v.risk, r.final_risk, 'the stored end point is the judged one');
      assert.equal(v.grad_norm, r.grad_norm);
      assert.equal(v.dim, 17);
      assert.equal(v.n_samples, 40);
      // the region certificate's groups partition the samples
      if (v.region.ran) {
        const seen = v.region.groups.flatMap((g) => g.indices).sort((a, b) => a - b);
        assert.deepEqual(seen, Array.from({ length: 40 }, (_, i) => i));
        assert.equal(v.region.groups.reduce((a, g) => a + g.n_samples, 0), 40);
        assert.equal(v.region.n_groups, v.region.groups.length);
      }
      if (v.descent) assert.equal(v.descent.direction.length, 17);
      // the risk at the judged point, recomputed from the stored end point
      const pts = (await get(`/v1/datasets/${ids.dsXor}/points?limit=100`)).json;
      assert.ok(close(risk(await params(r.id), pts), r.final_risk, 1e-9), r.id);
    }
    assert.ok(judged > 0, 'certify is on by default');
  });

  it('judges a teacher population from the closed form', async () => {
    await finished(ids.exTeacher);
    const [r] = (await get(`/v1/experiments/${ids.exTeacher}/runs`)).json.items;
    assert.ok(r.verdict, r.error);
    assert.ok(['closed_form_hessian', 'stationarity'].includes(r.verdict.decided_by));
    assert.equal(r.verdict.closed_form.students, 2);
    assert.equal(r.verdict.closed_form.teachers, 2);
    assert.equal(r.verdict.n_samples, 0);
    const b = await get(`/v1/experiments/${ids.exTeacher}/basins`);
    assert.equal(b.status, 422, 'a population has no samples to cluster on');
    const c = await get(`/v1/compare?a=${r.id}&b=${r.id}`);
    assert.equal(c.status, 422);
    const f = await get(`/v1/runs/${r.id}/function?nx=3&ny=2`);
    assert.equal(f.status, 200);
    assert.deepEqual(f.json.range, [[-3, 3], [-3, 3]]);
    assert.deepEqual(f.json.data, { x0: [], x1: [], y: [], truncated: false });
    // the student computes relu(w1·x) + relu(w2·x)
    const w = await params(r.id);
    const g = (x0, x1) => Math.max(0, w[0] * x0 + w[1] * x1) + Math.max(0, w[2] * x0 + w[3] * x1);
    f.json.values.forEach((row, i) => row.forEach((v, j) => assert.ok(close(v, g(f.json.x0[j], f.json.x1[i]), 1e-12))));
  });

  it('clusters the finished runs into basins', async () => {
    const runs = (await get(`/v1/experiments/${ids.exA}/runs`)).json.items;
    const b = await get(`/v1/experiments/${ids.exA}/basins?risk_tol=1e-6&func_tol=1e-3`);
    assert.equal(b.status, 200);
    const page = b.json;
    assert.equal(page.total_runs, 4);
    assert.equal(page.finished_runs, 4);
    assert.equal(page.clustered_runs + page.skipped_runs, 4);
    assert.equal(page.basin_count, page.basins.length);
    assert.equal(page.best_risk, runs[0].spurious.best_risk);
    const members = page.basins.flatMap((x) => x.member_run_ids).sort();
    assert.deepEqual(members, runs.map((r) => r.id).sort(), 'every run in exactly one basin');
    const byId = Object.fromEntries(runs.map((r) => [r.id, r]));
    let prev = -Infinity;
    for (const [i, x] of page.basins.entries()) {
      assert.equal(x.index, i);
      assert.equal(x.count, x.member_run_ids.length);
      assert.equal(x.share, x.count / page.finished_runs);
      const rep = byId[x.representative_run_id];
      assert.ok(x.member_run_ids.includes(rep.id));
      assert.equal(x.final_risk, rep.final_risk);
      assert.ok(x.final_risk >= prev, 'lowest risk first');
      prev = x.final_risk;
      // the representative is the lowest-risk member, and every member is within risk_tol
      for (const m of x.member_run_ids) {
        assert.ok(byId[m].final_risk >= rep.final_risk);
        assert.ok(Math.abs(byId[m].final_risk - rep.final_risk) <= 1e-6 * Math.max(1, Math.abs(rep.final_risk)) + 1e-15);
      }
      const R = x.final_risk, tol = page.tol_rel * Math.max(1, Math.abs(R));
      assert.equal(x.tol, tol);
      assert.equal(x.gap, R - page.best_risk);
      assert.equal(x.spurious, R - page.best_risk > tol && R > tol);
      const labels = { certified_minimum: 0, likely_minimum: 0, saddle: 0, not_converged: 0, none: 0, other: 0 };
      for (const m of x.member_run_ids) labels[byId[m].verdict_label ?? 'none']++;
      assert.deepEqual(x.label_counts, labels);
    }
    // the loosest tolerances put every run into one basin, represented by the best run
    const one = await get(`/v1/experiments/${ids.exA}/basins?risk_tol=1&func_tol=1000`);
    assert.equal(one.json.basin_count, 1);
    assert.equal(one.json.basins[0].count, 4);
    assert.equal(one.json.basins[0].final_risk, Math.min(...runs.map((r) => r.final_risk)));
    assert.equal(one.json.basins[0].share, 1);
  });

  it('caches, pages and refuses bad basin queries', async () => {
    const q = `/v1/experiments/${ids.exA}/basins?risk_tol=2e-6`;
    const first = await get(q);
    assert.equal(first.headers.get('x-basins-cache'), 'miss');
    const again = await get(q);
    assert.equal(again.headers.get('x-basins-cache'), 'hit');
    assert.deepEqual(again.json, first.json);
    if (first.json.basin_count > 1) {
      const p1 = await get(`${q}&limit=1`);
      assert.equal(p1.json.basins.length, 1);
      assert.equal(p1.json.next_cursor, 'b1');
      const link = p1.headers.get('link').match(/^<([^>]+)>/)[1];
      const p2 = await get(link);
      assert.deepEqual(p2.json.basins[0], first.json.basins[1]);
    }
    const nm = await get(q, { headers: { 'If-None-Match': first.headers.get('etag') } });
    assert.equal(nm.status, 304);
    for (const bad of ['risk_tol=2', 'risk_tol=x', 'func_tol=-1', 'limit=0', 'cursor=zzz', 'cursor=b99']) {
      assert.equal((await get(`/v1/experiments/${ids.exA}/basins?${bad}`)).status, 400, bad);
    }
    assert.equal((await get('/v1/experiments/ex_0000000000000000/basins')).status, 404);
  });

  it('lists the members of one basin, paged', async () => {
    const basins = (await get(`/v1/experiments/${ids.exA}/basins?risk_tol=1&func_tol=1000`)).json.basins;
    const all = await get(`/v1/experiments/${ids.exA}/basins/0/members?risk_tol=1&func_tol=1000`);
    assert.equal(all.status, 200);
    assert.equal(all.json.members_total, 4);
    assert.deepEqual(all.json.items.map((m) => m.run_id), basins[0].member_run_ids);
    assert.deepEqual(all.json.items.map((m) => m.index), [0, 1, 2, 3], 'by restart index');
    for (const m of all.json.items) {
      const r = (await get(`/v1/runs/${m.run_id}`)).json;
      assert.equal(m.final_risk, r.final_risk);
      assert.equal(m.verdict_label, r.verdict_label);
    }
    const p1 = await get(`/v1/experiments/${ids.exA}/basins/0/members?risk_tol=1&func_tol=1000&limit=3`);
    assert.equal(p1.json.next_cursor, 'm3');
    const p2 = await get(p1.headers.get('link').match(/^<([^>]+)>/)[1]);
    assert.deepEqual(p2.json.items, all.json.items.slice(3));
    assert.equal(p2.json.next_cursor, null);
    assert.equal((await get(`/v1/experiments/${ids.exA}/basins/1/members?risk_tol=1&func_tol=1000`)).status, 404);
    assert.equal((await get(`/v1/experiments/${ids.exA}/basins/x/members`)).status, 404);
    assert.equal((await get(`/v1/experiments/${ids.exA}/basins/0/members?cursor=m0`)).status, 400);
  });

  it('compares two end points; the numbers agree with a forward pass of their params', async () => {
    const runs = (await get(`/v1/experiments/${ids.exA}/runs?order=final_risk`)).json.items;
    const [a, b] = [runs[0], runs.at(-1)];
    const [pa, pb] = [await params(a.id), await params(b.id)];
    const pts = (await get(`/v1/datasets/${ids.dsXor}/points?limit=100`)).json;
    const c = await get(`/v1/compare?a=${a.id}&b=${b.id}&grid=5`);
    assert.equal(c.status, 200, c.text);
    const cmp = c.json;
    assert.equal(cmp.a, a.id);
    assert.equal(cmp.grid, 5);
    assert.ok(close(cmp.risk_a, risk(pa, pts), 1e-9));
    assert.ok(close(cmp.risk_b, risk(pb, pts), 1e-9));
    assert.ok(close(cmp.risk_diff, cmp.risk_b - cmp.risk_a, 1e-12));
    const fa = pts.x.map((x) => forward(pa, x)), fb = pts.x.map((x) => forward(pb, x));
    const rms = (v) => Math.sqrt(v.reduce((s, t) => s + t * t, 0) / v.length);
    assert.ok(close(cmp.function_distance, rms(fa.map((v, i) => v - fb[i])), 1e-9));
    assert.ok(close(cmp.output_rms, rms(fa), 1e-9));
    assert.deepEqual(cmp.path.t, [0, 0.25, 0.5, 0.75, 1]);
    cmp.path.t.forEach((t, k) => {
      const mid = pa.map((v, i) => (1 - t) * v + t * pb[i]);
      assert.ok(close(cmp.path.unaligned[k], risk(mid, pts), 1e-9), `unaligned path at t=${t}`);
    });
    // alignment and normalisation keep the function, so the aligned path has the same ends
    assert.ok(close(cmp.path.aligned[0], cmp.risk_a, 1e-9));
    assert.ok(close(cmp.path.aligned.at(-1), cmp.risk_b, 1e-9));
    assert.ok(close(cmp.barrier.unaligned, Math.max(...cmp.path.unaligned) - Math.max(cmp.risk_a, cmp.risk_b), 1e-9));
    assert.ok(close(cmp.barrier.aligned, Math.max(...cmp.path.aligned) - Math.max(cmp.risk_a, cmp.risk_b), 1e-9));
    // patterns are compared after b is aligned (permuted), so only their count is checked here
    assert.equal(cmp.pattern_agreement.pattern_units, H);
    // a run against itself (b is normalised and aligned first: equal up to rounding)
    const self = (await get(`/v1/compare?a=${a.id}&b=${a.id}&unaligned=false`)).json;
    assert.ok(self.function_distance <= 1e-12 * self.output_rms, `${self.function_distance}`);
    assert.ok(Math.abs(self.risk_diff) <= 1e-12, `${self.risk_diff}`);
    assert.ok(self.param_distance.aligned <= 1e-12, `${self.param_distance.aligned}`);
    assert.equal(self.pattern_agreement.units, 1);
    assert.equal(self.pattern_agreement.samples, 1);
    assert.equal(self.path.unaligned, null);
    assert.equal(self.barrier.unaligned, null);
  });

  it('refuses comparisons it cannot make', async () => {
    await finished(ids.ex1d);
    const [r1] = (await get(`/v1/experiments/${ids.ex1d}/runs`)).json.items;
    const a = ids.bestRun;
    const other = await get(`/v1/compare?a=${a}&b=${r1.id}`);
    assert.equal(other.status, 422, 'another dataset');
    assert.match(other.json.detail, /query parameter 'b'/);
    for (const q of [`a=${a}`, `b=${a}`, `a=${a}&b=ds_0000000000000000`, `a=${a}&b=${a}&grid=1`, `a=${a}&b=${a}&grid=202`, `a=${a}&b=${a}&unaligned=yes`]) {
      assert.equal((await get(`/v1/compare?${q}`)).status, 400, q);
    }
    assert.equal((await get(`/v1/compare?a=${a}&b=run_0000000000000000`)).status, 404);
  });

  it('draws the 2-D function of an end point with its activation regions', async () => {
    const p = await params(ids.bestRun);
    const pts = (await get(`/v1/datasets/${ids.dsXor}/points?limit=100`)).json;
    const f = await get(`/v1/runs/${ids.bestRun}/function?nx=7&ny=5`);
    assert.equal(f.status, 200, f.text);
    const fn = f.json;
    assert.equal(fn.input_dim, 2);
    assert.equal(fn.value_kind, 'output');
    assert.equal(fn.x0.length, 7);
    assert.equal(fn.values.length, 5);
    // the grid spans the data widened by 10% of its span on each side
    for (const [axis, grid] of [[0, fn.x0], [1, fn.x1]]) {
      const v = pts.x.map((x) => x[axis]);
      const lo = Math.min(...v), hi = Math.max(...v), pad = 0.1 * (hi - lo);
      assert.ok(close(grid[0], lo - pad, 1e-12) && close(grid.at(-1), hi + pad, 1e-12));
      assert.ok(close(fn.range[axis][0], lo - pad, 1e-12));
    }
    const seen = new Map();
    fn.values.forEach((row, r) => row.forEach((v, c) => {
      const x = [fn.x0[c], fn.x1[r]];
      assert.ok(close(v, forward(p, x), 1e-12), `f(${x})`);
      // same region id ⇔ same activation pattern
      const pat = pattern(p, x), id = fn.region_ids[r][c];
      if (seen.has(id)) assert.equal(seen.get(id), pat);
      seen.set(id, pat);
    }));
    assert.equal(new Set(seen.values()).size, seen.size);
    assert.equal(fn.regions, seen.size);
    assert.deepEqual(fn.data.x0, pts.x.map((x) => x[0]));
    assert.deepEqual(fn.data.y, pts.y);
    for (const q of ['nx=1', 'nx=401', 'ny=0', 'nx=abc']) {
      assert.equal((await get(`/v1/runs/${ids.bestRun}/function?${q}`)).status, 400, q);
    }
    assert.equal((await get('/v1/runs/run_0000000000000000/function')).status, 404);
  });

  it('draws the 1-D function with every breakpoint of the net', async () => {
    await finished(ids.ex1d);
    const runs = (await get(`/v1/experiments/${ids.ex1d}/runs`)).json.items;
    for (const r of runs) {
      const p = await params(r.id);
      const fn = (await get(`/v1/runs/${r.id}/function?nx=50`)).json;
      assert.equal(fn.input_dim, 1);
      assert.equal(fn.ny, 1);
      fn.x.forEach((x, k) => assert.ok(close(fn.y[k], forward(p, [x]), 1e-12)));
      const [lo, hi] = fn.range[0];
      assert.ok(close(lo, -3 - 0.65, 1e-12) && close(hi, 3.5 + 0.65, 1e-12));
      // unit j switches at x = −b_j / w_j
      const kinks = [...new Set(Array.from({ length: H }, (_, j) => -p[H + j] / p[j])
        .filter((x) => Number.isFinite(x) && x > lo && x < hi))].sort((a, b) => a - b);
      assert.equal(fn.breakpoints_complete, true);
      assert.equal(fn.breakpoints.length, kinks.length, `${fn.breakpoints} vs ${kinks}`);
      fn.breakpoints.forEach((x, k) => assert.ok(Math.abs(x - kinks[k]) <= fn.bisection_tol, `${x} vs ${kinks[k]}`));
      assert.deepEqual(fn.data, { x: vData.x.map((x) => x[0]), y: vData.y, truncated: false });
    }
  });

  it('409 without an end point, 422 for inputs it cannot draw', async () => {
    await finished(ids.ex3d);
    const [r3] = (await get(`/v1/experiments/${ids.ex3d}/runs`)).json.items;
    const f3 = await get(`/v1/runs/${r3.id}/function`);
    assert.equal(f3.status, 422, f3.text);
    const id = await submit({ dataset_id: ids.dsXor, architecture_id: ids.arXor, restarts: 2, max_steps: 5000000, trajectory_every: 0 });
    assert.equal((await post(`/v1/experiments/${id}/cancel`)).status, 200);
    await waitFor(`/v1/experiments/${id}`, (e) => e.progress.running === 0 && e.progress.queued === 0);
    const none = (await get(`/v1/experiments/${id}/runs`)).json.items.find((x) => !x.has_params);
    assert.ok(none, 'a run cancelled before it trained');
    assert.equal((await get(`/v1/runs/${none.id}/function`)).status, 409);
    assert.equal((await get(`/v1/compare?a=${ids.bestRun}&b=${none.id}`)).status, 409);
    assert.equal(none.spurious.flag, null, 'an unfinished run is not judged');
    assert.equal(none.spurious.tol, null);
    assert.equal((await del(`/v1/experiments/${id}`)).status, 204);
  });
});

describe('authentication and rate limits', () => {
  const onPg = /^postgres(ql)?:\/\//.test(process.env.BASINLAB_TEST_STORE || '');
  let authed, limited;
  const token = (scope) => {
    const out = execFileSync(binaryPath(), ['token', 'create', '--scope', scope, '--db', authed.store], { encoding: 'utf8' });
    return out.trim().split(/\s+/).find((w) => w.startsWith('blt_'));
  };

  before(async () => {
    if (!onPg) authed = await Server.start(['--auth', 'tokens']);
    limited = await Server.start(['--rate-limit', '1:3']);
  });
  after(async () => {
    for (const s of [authed, limited]) {
      if (s) assert.deepEqual(await s.stop(), { code: 0, signal: null }, s.stderr.slice(-2000));
    }
  });

  it('401 without a valid token, 403 for too small a scope; public routes stay public', { skip: onPg && 'PostgreSQL keeps no API tokens' }, async () => {
    const at = (method, target, opts = {}) => call(method, target, { ...opts, base: authed.base });
    const read = token('read'), write = token('write');
    assert.match(read, /^blt_/);
    const none = await at('GET', '/v1/limits');
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="basinlab"');
    const bad = await at('GET', '/v1/limits', { headers: { Authorization: 'Bearer blt_nope' } });
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get('www-authenticate'), /error="invalid_token"/);
    const r = await at('GET', '/v1/limits', { headers: { Authorization: `Bearer ${read}` } });
    assert.equal(r.status, 200);
    const body = { kind: 'inline', x: [[0], [1]], y: [0, 1] };
    const denied = await at('POST', '/v1/datasets', { json: body, headers: { Authorization: `Bearer ${read}` } });
    assert.equal(denied.status, 403);
    assert.match(denied.headers.get('www-authenticate'), /error="insufficient_scope"/);
    const ok = await at('POST', '/v1/datasets', { json: body, headers: { Authorization: `Bearer ${write}` } });
    assert.equal(ok.status, 201);
    const del403 = await at('DELETE', `/v1/datasets/${ok.json.id}`, { headers: { Authorization: `Bearer ${read}` } });
    assert.equal(del403.status, 403);
    assert.equal((await at('GET', `/v1/experiments/${'ex_0000000000000000'}/basins`)).status, 401);
    assert.equal((await at('GET', '/v1/compare?a=x&b=y')).status, 401);
    assert.equal((await at('GET', '/metrics')).status, 401);
    for (const target of ['/healthz', '/readyz', '/openapi.yaml']) {
      assert.equal((await at('GET', target)).status, 200, target);
    }
    assert.equal((await at('GET', '/v1/nothing/here')).status, 404, 'routing comes first');
    assert.equal((await at('PUT', '/v1/datasets', { json: {} })).status, 405);
  });

  it('429 with Retry-After beyond the per-client rate', async () => {
    const lim = await call('GET', '/v1/limits', { base: limited.base });
    assert.equal(lim.status, 200);
    assert.deepEqual(lim.json.rate_limit, { requests_per_second: 1, burst: 3 });
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await call('GET', '/healthz', { base: limited.base })).status);
    assert.ok(statuses.includes(429), `${statuses}`);
    assert.equal(statuses.filter((s) => s === 200).length <= 3, true, `${statuses}`);
  });
});

describe('constructions and evaluations', () => {
  // a V with a bump: no line fits it (R_lin > 0)
  const vData = { kind: 'inline', x: [[-3], [-2], [-1], [-0.5], [0.5], [1], [2], [3.5]], y: [2.9, 2.1, 0.8, 0.45, 0.6, 1.1, 1.9, 3.3] };
  const net141 = { input_shape: [1], layers: [{ type: 'dense', units: 4 }, { type: 'activation', kind: 'relu' }, { type: 'dense', units: 1 }] };

  it('builds, certifies and stores each construction kind', async () => {
    const lr = await post('/v1/constructions', { kind: 'linear_region_minimum', dataset: vData, architecture: net141 });
    assert.equal(lr.status, 201, lr.text);
    assert.equal(lr.headers.get('location'), `/v1/runs/${lr.json.run.id}`);
    assert.equal(lr.json.run.origin, 'construction');
    const ds = await get(`/v1/datasets/${lr.json.dataset_id}`);
    assert.ok(Math.abs(lr.json.run.final_risk - ds.json.linear_fit.loss.squared.risk) <= 1e-12);
    const gf = await post('/v1/constructions', { kind: 'group_fit', dataset_id: lr.json.dataset_id, architecture_id: lr.json.architecture_id, breakpoints: [0] });
    assert.equal(gf.status, 201, gf.text);
    assert.ok(gf.json.run.final_risk < lr.json.run.final_risk);
    const run = await get(`/v1/runs/${lr.json.run.id}`);
    assert.equal(run.status, 200);
    const cp = await post('/v1/constructions', {
      kind: 'cpwl', dataset: { kind: 'inline', x: [[0, 0], [1, 2], [-1, 1]], y: [0.5, 1, 2] },
      pieces: [{ a: [1, 0], b: 0 }, { a: [0, 1], b: 0.5 }, { a: [-1, -1], b: 2 }], sets: [[0, 1], [2]],
    });
    assert.equal(cp.status, 201, cp.text);
    assert.equal(cp.json.construction.kind, 'cpwl');
  });

  it('refuses impossible constructions at the offending field', async () => {
    const bad = await post('/v1/constructions', { kind: 'group_fit', dataset: { kind: 'inline', x: [[-1], [0], [1]], y: [1.5, 0.25, 1.5] }, groups: [0, 1, 0] });
    assert.equal(bad.status, 422);
    assert.deepEqual(pointers(bad), ['/groups']);
    const kind = await post('/v1/constructions', { kind: 'spline', dataset: vData });
    assert.equal(kind.status, 422);
    assert.ok(pointers(kind).includes('/kind'));
    const none = await post('/v1/constructions', { kind: 'group_fit', dataset_id: 'ds_0000000000000000', breakpoints: [0] });
    assert.equal(none.status, 422);
    assert.deepEqual(pointers(none), ['/dataset_id']);
  });

  it('evaluates and stores a given parameter vector', async () => {
    const line = { input_shape: [1], layers: [{ type: 'dense', units: 1 }] };
    const wrong = await post('/v1/evaluations', { dataset: vData, architecture: line, params: [1, 2, 3] });
    assert.equal(wrong.status, 422);
    assert.deepEqual(pointers(wrong), ['/params']);
    const ok = await post('/v1/evaluations', { dataset: vData, architecture: line, params: [0.3, 1.1], certify: { probes: 2 } });
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.json.run.origin, 'imported');
    assert.equal(ok.headers.get('location'), `/v1/runs/${ok.json.run.id}`);
    const run = await get(`/v1/runs/${ok.json.run.id}`);
    assert.equal(run.json.final_risk, ok.json.risk);
  });
});

describe('coverage', () => {
  it('saw every operation of the contract answer 2xx', () => {
    const missing = [];
    for (const { method, template, operation } of contract.operations()) {
      const ok = Object.keys(operation.responses).some((s) => s.startsWith('2') && seen.has(`${method} ${template} ${s}`));
      if (!ok) missing.push(`${method} ${template}`);
    }
    assert.deepEqual(missing, []);
  });

  it('metrics count what happened', async () => {
    const m = await get('/metrics');
    const finished = Number(m.text.match(/^basinlab_runs\{status="finished"\} (\d+)$/m)[1]);
    assert.ok(finished >= 10, `finished runs: ${finished}`);
    const cls = Number(m.text.match(/^basinlab_http_responses_total\{class="4xx"\} (\d+)$/m)[1]);
    assert.ok(cls >= 50, `4xx answers: ${cls}`);
  });
});
