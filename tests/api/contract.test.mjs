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
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Contract, isJsonMedia, mediaType } from './oas.mjs';
import { Server, request, requestHeadersOnly, sleep } from './server.mjs';

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

/* Request + check. opts as server.mjs request(). */
async function call(method, target, opts = {}) {
  const res = await request(server.base, method, target, opts);
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
