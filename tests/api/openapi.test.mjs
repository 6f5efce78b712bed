// The contract document itself (no server needed): api/openapi.yaml is a valid OpenAPI 3.1
// document (checked against the official OAS 3.1 JSON schema by
// @seriousme/openapi-schema-validator), every reference resolves, every schema compiles under
// strict JSON Schema 2020-12, it documents exactly the routes of server/routes.c with the body
// kinds and the pipeline answers the router gives every route, the schemas are as strict as
// the server on known good and bad bodies, and every api/examples/*.json pair conforms.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

import { Validator } from '@seriousme/openapi-schema-validator';

import { Contract, SOURCE_DIR, collectRefs, isJsonMedia, mediaType, pointerGet } from './oas.mjs';

const contract = new Contract();
const { doc } = contract;

/* {method, path, handler, flags} of every entry of the C route table. */
function routeTable() {
  const text = readFileSync(path.join(SOURCE_DIR, 'server', 'routes.c'), 'utf8');
  const re = /\{\s*"([A-Z]+)",\s*"([^"]+)",\s*(\w+),\s*([A-Z_ |]+?)\s*\}/g;
  const out = [];
  for (const m of text.matchAll(re)) {
    out.push({ method: m[1], path: m[2], handler: m[3], flags: m[4].split('|').map((s) => s.trim()) });
  }
  return out;
}

describe('api/openapi.yaml is a valid OpenAPI 3.1 document', () => {
  it('passes the official OAS 3.1 schema', async () => {
    const validator = new Validator();
    const res = await validator.validate(structuredClone(doc));
    assert.equal(validator.version, '3.1');
    assert.equal(res.valid, true, JSON.stringify(res.errors, null, 2));
  });

  it('resolves every $ref', () => {
    const refs = collectRefs(doc);
    assert.ok(refs.length > 50);
    for (const { ref, where } of refs) {
      assert.ok(ref.startsWith('#/'), `${where}: only local references are used (${ref})`);
      assert.notEqual(pointerGet(doc, ref), undefined, `${where}: ${ref} does not resolve`);
    }
  });

  it('compiles every schema under strict JSON Schema 2020-12', () => {
    for (const name of Object.keys(doc.components.schemas)) {
      assert.doesNotThrow(() => contract.validator(contract.schema(name)), name);
    }
    for (const { method, template, operation } of contract.operations()) {
      for (const [status, r] of Object.entries(operation.responses)) {
        const resp = contract.resolve(r);
        for (const [media, m] of Object.entries(resp.content || {})) {
          assert.doesNotThrow(() => contract.validator(m.schema), `${method} ${template} ${status} ${media}`);
          for (const [ev, s] of Object.entries(m['x-events'] || {})) {
            assert.doesNotThrow(() => contract.validator(s), `${method} ${template} event ${ev}`);
          }
        }
        for (const [name, h] of Object.entries(resp.headers || {})) {
          assert.doesNotThrow(() => contract.validator(contract.resolve(h).schema), `${template} ${name}`);
        }
      }
      for (const p of operation.parameters || []) {
        assert.doesNotThrow(() => contract.validator(contract.resolve(p).schema), `${template} ${p.name || p.$ref}`);
      }
    }
  });

  it('has unique operationIds', () => {
    const ids = contract.operations().map((o) => o.operation.operationId);
    assert.equal(new Set(ids).size, ids.length);
    assert.ok(ids.every((id) => typeof id === 'string' && id.length > 0));
  });
});

describe('the document matches server/routes.c', () => {
  const routes = routeTable();

  it('documents every route and nothing else', () => {
    assert.ok(routes.length >= 20, `parsed only ${routes.length} routes from routes.c`);
    const fromC = routes.map((r) => `${r.method} ${r.path}`).sort();
    const fromDoc = contract.operations().map((o) => `${o.method} ${o.template}`).sort();
    assert.deepEqual(fromDoc, fromC);
  });

  it('gives each route the request body kind the router enforces', () => {
    for (const r of routes) {
      const op = doc.paths[r.path][r.method.toLowerCase()];
      const media = Object.keys(op.requestBody?.content || {}).sort();
      if (r.flags.includes('ROUTE_BODY_JSON')) {
        assert.deepEqual(media, ['application/json'], `${r.method} ${r.path}`);
      } else if (r.flags.includes('ROUTE_BODY_CSV_OR_JSON')) {
        assert.deepEqual(media, ['application/json', 'text/csv'], `${r.method} ${r.path}`);
      } else {
        assert.deepEqual(media, [], `${r.method} ${r.path} takes no body`);
      }
      if (r.flags.includes('ROUTE_STREAM')) {
        assert.deepEqual(Object.keys(contract.resolve(op.responses['200']).content), ['text/event-stream']);
      }
    }
  });

  it('lists the answers the request pipeline gives every route', () => {
    for (const r of routes) {
      const op = doc.paths[r.path][r.method.toLowerCase()];
      const name = `${r.method} ${r.path}`;
      const has = (status) => Object.hasOwn(op.responses, String(status));
      assert.ok(has(413), `${name}: any route refuses an oversized body (413)`);
      assert.ok(has(500), `${name}: any handler can fail (500)`);
      if (op.requestBody) {
        for (const s of [400, 415, 422]) assert.ok(has(s), `${name}: a body route answers ${s}`);
      }
      if (r.path.includes('{')) {
        assert.ok(has(400), `${name}: bad path parameters are 400`);
        assert.ok(has(404), `${name}: unknown ids are 404`);
      }
      if (r.method === 'GET' && !r.flags.includes('ROUTE_STREAM')) {
        assert.ok(has(304), `${name}: GET answers 304 to a matching If-None-Match`);
        const ok = contract.resolve(op.responses['200']);
        assert.ok(contract.resolve(ok.headers?.ETag || {}).required, `${name}: 200 carries an ETag`);
      }
      for (const [status, resp] of Object.entries(op.responses)) {
        if (Number(status) >= 400) {
          const content = contract.resolve(resp).content;
          assert.deepEqual(Object.keys(content), ['application/problem+json'], `${name} ${status}`);
        }
      }
    }
  });
});

describe('the document matches the access policy of server/auth.c', () => {
  const routes = routeTable();
  const text = readFileSync(path.join(SOURCE_DIR, 'server', 'auth.c'), 'utf8');
  const table = text.match(/public_patterns\[\]\s*=\s*\{([\s\S]*?)\};/);
  const isPublic = new Set([...(table?.[1] || '').matchAll(/"([^"]+)"/g)].map((m) => m[1]));

  it('finds the public routes', () => {
    assert.ok(isPublic.has('/healthz') && isPublic.has('/js/{file}'), [...isPublic].join(' '));
  });

  it('lists 401/403 exactly where a token is needed, and 429 everywhere', () => {
    for (const r of routes) {
      const op = doc.paths[r.path][r.method.toLowerCase()];
      const name = `${r.method} ${r.path}`;
      const has = (status) => Object.hasOwn(op.responses, String(status));
      assert.ok(has(429), `${name}: the rate limit applies to every route`);
      if (isPublic.has(r.path)) {
        assert.deepEqual(op.security, [], `${name} is public`);
        assert.ok(!has(401) && !has(403), `${name}: public routes never ask for a token`);
        continue;
      }
      assert.equal(op.security, undefined, `${name}: the document's bearerAuth applies`);
      assert.ok(has(401), `${name}: needs a token under --auth tokens`);
      assert.equal(has(403), r.method !== 'GET', `${name}: only writes need the write scope`);
      assert.ok(has(503), `${name}: the token check can find the store busy`);
    }
  });
});

describe('the schemas are as strict as the server', () => {
  const accepts = (name, value) => contract.violations(contract.schema(name), value) === null;
  const xorArch = {
    input_shape: [2],
    layers: [{ type: 'dense', units: 4 }, { type: 'activation', kind: 'relu' }, { type: 'dense', units: 1 }],
  };

  it('accepts the api.md example experiment', () => {
    const body = {
      dataset: { kind: 'generator', generator: { name: 'xor', n: 200, noise: 0.05, seed: 1 } },
      architecture: xorArch,
      loss: 'squared',
      optimizer: { kind: 'gd', lr: 0.05 },
      restarts: 200,
      max_steps: 20000,
      seed: 7,
    };
    assert.equal(contract.violations(contract.schema('ExperimentCreate'), body), null);
  });

  it('refuses experiments the parser refuses', () => {
    const base = { dataset_id: 'ds_0123456789abcdef', architecture_id: 'ar_0123456789abcdef' };
    assert.ok(accepts('ExperimentCreate', base));
    assert.ok(!accepts('ExperimentCreate', { architecture_id: base.architecture_id }), 'dataset missing');
    assert.ok(!accepts('ExperimentCreate', { ...base, dataset: { kind: 'inline', x: [[1]], y: [1] } }), 'both');
    assert.ok(!accepts('ExperimentCreate', { ...base, bogus: 1 }), 'unknown field');
    assert.ok(!accepts('ExperimentCreate', { ...base, restarts: 0 }), 'restarts 0');
    assert.ok(!accepts('ExperimentCreate', { ...base, optimizer: { kind: 'gd', batch: 4 } }), 'gd batch');
    assert.ok(!accepts('ExperimentCreate', { ...base, optimizer: { kind: 'sgd', lr: 0.1 } }), 'sgd no batch');
    assert.ok(accepts('ExperimentCreate', { ...base, optimizer: { kind: 'sgd', batch: 8 } }));
    assert.ok(accepts('ExperimentCreate', { ...base, optimizer: { lr: 0.1 } }), 'kind defaults to gd');
    assert.ok(!accepts('ExperimentCreate', { ...base, optimizer: { kind: 'adam', momentum: 0.9 } }));
    assert.ok(!accepts('ExperimentCreate', { ...base, init: { std: 0.1 } }), 'std needs kind normal');
    assert.ok(accepts('ExperimentCreate', { ...base, init: { kind: 'normal', std: 0.1 } }));
    assert.ok(!accepts('ExperimentCreate', { ...base, loss: 'l2' }));
    assert.ok(accepts('ExperimentCreate', { ...base, loss: { kind: 'huber', delta: 0.5 } }));
    assert.ok(!accepts('ExperimentCreate', { ...base, loss: { kind: 'squared', delta: 0.5 } }));
    assert.ok(!accepts('ExperimentCreate', { ...base, stop: { plateau: { tol: 1e-6 } } }), 'window required');
    assert.ok(!accepts('ExperimentCreate', { ...base, stop: { diverge_factor: 0.5 } }));
    assert.ok(accepts('ExperimentCreate', { ...base, stop: { risk_tol: null, diverge_factor: null } }));
  });

  it('refuses layers and shapes the parser refuses', () => {
    assert.ok(accepts('ArchitectureCreate', xorArch));
    assert.ok(!accepts('ArchitectureCreate', { layers: xorArch.layers }), 'input_shape required');
    assert.ok(accepts('ArchitectureSpec', { layers: xorArch.layers }), 'inline: input_shape optional');
    assert.ok(!accepts('ArchitectureCreate', { input_shape: [2, 2], layers: xorArch.layers }), 'rank 2');
    assert.ok(accepts('ArchitectureCreate', { input_shape: [1, 4, 4], layers: [{ type: 'flatten' }, { type: 'dense', units: 1 }] }));
    assert.ok(!accepts('Layer', { type: 'activation', kind: 'pwl', s_neg: 0.1 }), 'pwl needs s_pos');
    assert.ok(!accepts('Layer', { type: 'activation', kind: 'relu', slope: 0.1 }), 'relu has no slope');
    assert.ok(accepts('Layer', { type: 'activation', kind: 'leaky_relu' }));
    assert.ok(!accepts('Layer', { type: 'dense', units: 0 }));
    assert.ok(!accepts('Layer', { type: 'conv2d', filters: 2, kernel: 3, padding: 'full' }));
    assert.ok(accepts('Layer', { type: 'conv2d', filters: 2, kernel: 3, padding: 1 }));
    assert.ok(!accepts('Layer', { type: 'softmax' }));
  });

  it('refuses datasets the parser refuses', () => {
    assert.ok(accepts('DatasetCreate', { kind: 'inline', x: [[0, 1]], y: [1] }));
    assert.ok(accepts('DatasetCreate', { kind: 'inline', x: [[0, 1]], y: [[1, 2]] }));
    assert.ok(!accepts('DatasetCreate', { kind: 'inline', x: [], y: [] }));
    assert.ok(!accepts('DatasetCreate', { kind: 'generator', generator: { name: 'xor' } }), 'n required');
    assert.ok(!accepts('DatasetCreate', { kind: 'generator', generator: { name: 'mnist', n: 10 } }));
    assert.ok(!accepts('DatasetCreate', { kind: 'csv', csv: 'a,b\n1,2\n', y_cols: 0 }));
    assert.ok(accepts('DatasetCreate', { kind: 'teacher_gaussian', k: 2, d: 4, teacher: 'random_orthonormal' }));
    assert.ok(!accepts('DatasetCreate', { kind: 'teacher_gaussian', k: 2 }), 'd required');
    assert.ok(!accepts('DatasetCreate', { kind: 'parquet' }));
  });

  it('refuses certify options the parser refuses', () => {
    const base = { dataset_id: 'ds_0123456789abcdef', architecture_id: 'ar_0123456789abcdef' };
    assert.ok(accepts('ExperimentCreate', { ...base, certify: { probes: 4, radii: [0.1], spurious_tol: 0 } }));
    assert.ok(!accepts('ExperimentCreate', { ...base, certify: { probe_radii: [0.1], radii: [0.1] } }), 'radii twice');
    assert.ok(!accepts('ExperimentCreate', { ...base, certify: { probes: 65 } }));
    assert.ok(!accepts('ExperimentCreate', { ...base, certify: { tolerance: 1 } }), 'unknown field');
    assert.ok(!accepts('ExperimentCreate', { ...base, certify: { grad_tol: -1 } }));
  });

  it('holds the analysis answers to their invariants', () => {
    const rid = 'run_0123456789abcdef', eid = 'ex_0123456789abcdef';
    const flag = { flag: false, basis: 'verdict', global: false, witness_run_id: null, witness_experiment_id: null, gap: 0, best_risk: 0.1, tol: 1e-6 };
    assert.ok(accepts('Spurious', flag));
    assert.ok(!accepts('Spurious', { ...flag, flag: true }), 'a spurious run names its witness');
    assert.ok(accepts('Spurious', { ...flag, flag: true, witness_run_id: rid, witness_experiment_id: eid, gap: 0.2 }));
    assert.ok(!accepts('Spurious', { ...flag, basis: null }), 'a flag needs a basis');
    assert.ok(accepts('Spurious', { ...flag, flag: null, basis: null, gap: null, tol: null }));
    assert.ok(!accepts('Spurious', { ...flag, basis: 'guess' }));
    assert.ok(!accepts('Spurious', { ...flag, extra: 1 }));
    const fn1 = { run_id: rid, input_dim: 1, nx: 2, ny: 1, value_kind: 'output', x: [0, 1], y: [1, null], breakpoints: [], breakpoints_complete: true, bisection_tol: 1e-9, range: [[0, 1]], data: { x: [], y: [], truncated: false } };
    assert.ok(accepts('RunFunction', fn1));
    assert.ok(!accepts('RunFunction', { ...fn1, ny: 2 }), '1-D has ny 1');
    assert.ok(!accepts('RunFunction', { ...fn1, input_dim: 2 }), '2-D has other fields');
    assert.ok(!accepts('RunFunction', { ...fn1, value_kind: 'probability' }));
    assert.ok(!accepts('WilsonInterval', [0.2]));
    assert.ok(!accepts('WilsonInterval', [0.2, 1.1]));
    assert.ok(!accepts('LabelCounts', { certified_minimum: 1 }), 'every label is counted');
  });

  it('describes problems as RFC 9457 bodies with JSON Pointers', () => {
    const p = { type: 'about:blank', title: 'Unprocessable Content', status: 422, detail: 'x', instance: '/v1/datasets' };
    assert.ok(!accepts('Problem422', p), '422 needs errors');
    assert.ok(accepts('Problem422', { ...p, errors: [{ pointer: '/layers/2/units', message: 'required' }] }));
    assert.ok(accepts('Problem422', { ...p, errors: [{ pointer: '?y_cols', message: 'must be a positive integer' }] }));
    assert.ok(accepts('Problem422', { ...p, errors: [{ pointer: '', message: 'bad CSV' }] }));
    assert.ok(!accepts('Problem422', { ...p, errors: [{ pointer: 'layers', message: 'x' }] }), 'not a pointer');
    assert.ok(!accepts('Problem422', { ...p, status: 400, errors: [{ pointer: '', message: 'x' }] }), 'status');
    assert.ok(!accepts('Problem', { ...p, code: 7 }), 'no extra members');
    const a = { ...p, detail: 'this dataset has no samples' };
    assert.ok(accepts('Problem422Analysis', a));
    assert.ok(!accepts('Problem422Analysis', { ...a, errors: [{ pointer: '', message: 'x' }] }), 'no body to point into');
    assert.ok(!accepts('Problem422Analysis', { ...a, detail: undefined }), 'detail says why');
  });
});

describe('api/examples', () => {
  const dir = path.join(SOURCE_DIR, 'api', 'examples');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

  it('has examples', () => assert.ok(files.length >= 8, `only ${files.length} examples`));

  for (const file of files) {
    it(`${file} is a documented request/response pair`, () => {
      const ex = JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
      const { request, response } = ex;
      const url = new URL(request.path, 'http://example.invalid');
      const found = contract.responseFor(request.method, url.pathname, response.status);
      assert.ok(found?.operation, `${request.method} ${url.pathname} ${response.status} is not documented`);
      assert.equal(found.operation.operationId, ex.operationId);
      if (request.body !== undefined) {
        const media = mediaType(request.headers?.['Content-Type'] || 'application/json');
        const rb = found.operation.requestBody?.content?.[media];
        assert.ok(rb, `the operation takes no ${media} body`);
        if (isJsonMedia(media) && response.status < 300) {
          assert.equal(contract.violations(rb.schema, request.body), null);
        }
      }
      const content = found.response.content || {};
      if (response.body === undefined) {
        assert.deepEqual(Object.keys(content), [], 'the documented answer has a body');
      } else {
        const media = mediaType(response.headers?.['Content-Type'] || 'application/json');
        assert.ok(content[media], `answer media ${media} not documented`);
        assert.equal(contract.violations(content[media].schema, response.body), null);
      }
      for (const [name, h] of Object.entries(found.response.headers || {})) {
        const header = contract.resolve(h);
        const value = response.headers?.[name];
        if (header.required) assert.ok(value !== undefined, `required header ${name} missing`);
        if (value !== undefined) assert.equal(contract.violations(header.schema, value), null, name);
      }
    });
  }
});
