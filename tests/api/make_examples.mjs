// Regenerates api/examples/*.json: request/response pairs recorded from a real server, for
// readers of the contract and for the README walk-through. openapi.test.mjs checks that every
// pair is documented and conforms, so a stale example fails the tests.
//
//   BASINLAB_BINARY=build/test/basinlab node tests/api/make_examples.mjs
//
// Each file: {"summary", "operationId", "request": {method, path, headers?, body?},
// "response": {status, headers, body?}}. Bodies are JSON values (a CSV body is a string).
// Response headers are the documented ones the answer had, plus Content-Type.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { Contract, SOURCE_DIR, isJsonMedia, mediaType } from './oas.mjs';
import { Server, request, sleep } from './server.mjs';

const contract = new Contract();
const outDir = path.join(SOURCE_DIR, 'api', 'examples');
const server = await Server.start(['--max-queued-runs', '100']);

async function record(name, summary, method, target, { json, body, headers = {} } = {}) {
  const res = await request(server.base, method, target, { json, body, headers });
  const url = new URL(target, 'http://x.invalid');
  const found = contract.responseFor(method, url.pathname, res.status);
  if (!found?.operation) throw new Error(`${method} ${target} → ${res.status} is not documented`);
  const reqHeaders = { ...headers };
  if (json !== undefined) reqHeaders['Content-Type'] = 'application/json';
  const example = {
    summary,
    operationId: found.operation.operationId,
    request: { method, path: target },
    response: { status: res.status, headers: {} },
  };
  if (Object.keys(reqHeaders).length > 0) example.request.headers = reqHeaders;
  if (json !== undefined) example.request.body = json;
  else if (body !== undefined) example.request.body = body;
  const ct = res.headers.get('content-type');
  if (ct) example.response.headers['Content-Type'] = ct;
  for (const name of Object.keys(found.response.headers || {})) {
    const v = res.headers.get(name);
    if (v !== null) example.response.headers[name] = v;
  }
  if (res.bytes.length > 0) {
    example.response.body = isJsonMedia(mediaType(ct)) ? JSON.parse(res.text) : res.text;
  }
  writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(example, null, 2) + '\n');
  return example.response;
}

try {
  mkdirSync(outDir, { recursive: true });
  const ds = await record('create_dataset_generator', 'A generated XOR dataset (JSON body).', 'POST', '/v1/datasets', {
    json: { kind: 'generator', name: 'xor', generator: { name: 'xor', n: 40, noise: 0.05, seed: 1 } },
  });
  await record('create_dataset_csv', 'A dataset uploaded as CSV, options in the query.', 'POST',
    '/v1/datasets?name=corners&header=true&y_cols=1', {
      headers: { 'Content-Type': 'text/csv' },
      body: 'x0,x1,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n',
    });
  const ar = await record('create_architecture', 'A one-hidden-layer ReLU network for 2-d inputs.', 'POST',
    '/v1/architectures', {
      json: {
        name: 'relu-4',
        input_shape: [2],
        layers: [{ type: 'dense', units: 4 }, { type: 'activation', kind: 'relu' }, { type: 'dense', units: 1 }],
      },
    });
  const ex = await record('create_experiment', 'Submit 8 restarts of gradient descent (202 Accepted).', 'POST',
    '/v1/experiments', {
      headers: { 'Idempotency-Key': 'readme-example-1' },
      json: {
        dataset_id: ds.body.id,
        architecture_id: ar.body.id,
        loss: 'squared',
        optimizer: { kind: 'gd', lr: 0.1 },
        init: { kind: 'normal', std: 0.5 },
        restarts: 8,
        max_steps: 2000,
        trajectory_every: 200,
        seed: 7,
      },
    });
  await record('create_experiment_invalid', 'A spec with three mistakes: every one is listed (422).', 'POST',
    '/v1/experiments', {
      json: {
        dataset_id: ds.body.id,
        architecture_id: ar.body.id,
        restarts: 0,
        optimizer: { kind: 'gd', lr: -1 },
        stop: { grad_tol: 1e-9, patience: 10 },
      },
    });
  const expPath = `/v1/experiments/${ex.body.id}`;
  for (let i = 0; i < 400; i++) {
    const r = await request(server.base, 'GET', expPath);
    if (JSON.parse(r.text).status === 'finished') break;
    await sleep(50);
  }
  const done = await record('get_experiment', 'A finished experiment with its summary.', 'GET', expPath);
  await record('list_runs', 'The two lowest-risk runs, with the next page in Link.', 'GET',
    `${expPath}/runs?order=final_risk&limit=2`);
  const best = done.body.summary.best_run_id;
  await record('get_run', 'One run.', 'GET', `/v1/runs/${best}`);
  await record('get_run_trajectory', 'Its trajectory, downsampled to at most 4 points.', 'GET',
    `/v1/runs/${best}/trajectory?max_points=4`);
  await record('get_run_params', 'Its end point in the PyTorch state_dict layout.', 'GET', `/v1/runs/${best}/params`);
  const basins = await record('list_basins', 'The two lowest basins of the experiment, each with its spurious flag.', 'GET',
    `${expPath}/basins?limit=2`);
  await record('list_basin_members', 'The runs of its lowest basin.', 'GET', `${expPath}/basins/0/members?limit=5`);
  const worst = basins.body.basins.at(-1).representative_run_id;
  await record('compare_runs', 'The best run against another: risks, function distance and the path between them.',
    'GET', `/v1/compare?a=${best}&b=${worst}&grid=5`);
  await record('get_run_function', 'The function the best run computes, on a 5 × 3 grid with its activation regions.',
    'GET', `/v1/runs/${best}/function?nx=5&ny=3`);
  // every hidden unit dead and the output at the mean target: a certified, spurious minimum
  const points = JSON.parse((await request(server.base, 'GET', `/v1/datasets/${ds.body.id}/points?limit=100`)).text);
  const mean = points.y.reduce((a, y) => a + y, 0) / points.y.length;
  await record('create_evaluation', 'A given point judged and stored: a certified minimum that is spurious.', 'POST',
    '/v1/evaluations', {
      json: {
        dataset_id: ds.body.id,
        architecture_id: ar.body.id,
        params: [0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, 0.5, 0.5, 0.5, 0.5, mean],
        certify: { probes: 0 },
      },
    });
  await record('delete_dataset_in_use', 'A dataset an experiment uses cannot be deleted (409).', 'DELETE',
    `/v1/datasets/${ds.body.id}`);
  await record('get_limits', 'The published limits.', 'GET', '/v1/limits');
  await record('not_found', 'An unknown id (404).', 'GET', '/v1/runs/run_0000000000000000');
} finally {
  const status = await server.stop();
  if (status.code !== 0) console.error(`server exit ${JSON.stringify(status)}\n${server.stderr}`);
}
console.log(`wrote ${outDir}`);
