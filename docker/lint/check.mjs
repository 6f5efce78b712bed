// Static checks of docker/Dockerfile and docker/compose.yaml, for CI, which has no Docker engine
// to build or start them (docker/README.md). Two layers:
//   1. dockerfilelint 1.8.0 (npm) on the Dockerfile: syntax and common mistakes;
//   2. basinlab's own rules, the promises docker/README.md makes:
//      Dockerfile — multi-stage; the build stage is Debian 12 and runs exactly the README's test
//      command and the release build of .ci/run (same text, so CI exercises what the image
//      runs); the runtime stage is Debian 12, installs only shared libraries (no -dev package,
//      no compiler), runs as a non-root user, keeps its data on a VOLUME, has a HEALTHCHECK on
//      /healthz, copies every file it names from the build stage or the repository, and takes
//      its configuration from BASINLAB_* environment variables only (no secrets baked in);
//      compose.yaml — valid YAML with the API, PostgreSQL 15 and two workers, a named volume
//      for the database, health checks, start order gated on service_healthy, every
//      BASINLAB_* variable one that `basinlab serve` knows (server/config.c).
// Prints one line per problem and "N passed, N failed"; exits 1 on any failure.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const require = createRequire(import.meta.url);
const dockerfilelint = require('dockerfilelint');

const here = path.dirname(fileURLToPath(import.meta.url));
const docker = path.resolve(here, '..');
const root = path.resolve(docker, '..');
const read = (p) => readFileSync(path.join(root, p), 'utf8');

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) {
    passed++;
  } else {
    failed++;
    console.log(`FAIL ${name}${detail ? `: ${detail}` : ''}`);
  }
}

// ---- the Dockerfile ----

const dockerfileText = read('docker/Dockerfile');
const lint = dockerfilelint.run(docker, dockerfileText);
check('dockerfilelint finds nothing', lint.length === 0,
  lint.map((i) => `line ${i.line}: ${i.title} (${i.rule})`).join('; '));

// Instructions with their continuation lines joined, comments dropped.
const instructions = [];
{
  let cur = '';
  for (const raw of dockerfileText.split('\n')) {
    const line = raw.trim();
    if (!cur && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue;
    cur += (cur ? ' ' : '') + line.replace(/\\$/, '').trim();
    if (!line.endsWith('\\')) {
      const m = cur.match(/^(\w+)\s+(.*)$/);
      if (m) instructions.push({ op: m[1].toUpperCase(), args: m[2] });
      cur = '';
    }
  }
}
const stages = [];
for (const ins of instructions) {
  if (ins.op === 'FROM') {
    const m = ins.args.match(/^(\S+)(?:\s+AS\s+(\S+))?$/i);
    stages.push({ image: m ? m[1] : ins.args, name: m && m[2], ins: [] });
  } else if (stages.length) {
    stages[stages.length - 1].ins.push(ins);
  }
}
check('multi-stage: a build and a runtime stage', stages.length === 2, `${stages.length} stages`);
const [build, runtime] = stages;
if (build && runtime) {
  check('build stage is Debian 12', /^debian:12(\b|-|$)/.test(build.image), build.image);
  check('runtime stage is Debian 12', /^debian:12(\b|-|$)/.test(runtime.image), runtime.image);
  const runs = build.ins.filter((i) => i.op === 'RUN').map((i) => i.args);

  // The README's test command and CI's release build, word for word.
  const readme = read('README.md');
  check('the README names scripts/test as its test command', /^scripts\/test\b/m.test(readme));
  check('build stage runs scripts/test', runs.includes('scripts/test'), runs.join(' | '));
  const ci = read('.ci/run');
  const release = ci.split('\n').map((l) => l.trim()).find((l) => l.startsWith('scripts/build build/release'));
  check('.ci/run has the release build', Boolean(release));
  check('build stage runs the release build of .ci/run', release && runs.includes(release),
    `${release} not in ${runs.join(' | ')}`);

  const rrun = runtime.ins.filter((i) => i.op === 'RUN').map((i) => i.args).join(' ');
  const pkgs = (rrun.match(/install\s+-y\s+--no-install-recommends\s+([^&]*)/) || [, ''])[1]
    .split(/\s+/).filter(Boolean);
  check('runtime installs its libraries without recommends', pkgs.length > 0, rrun);
  check('runtime installs no -dev package, compiler or build tool',
    pkgs.every((p) => !/-dev$|^(gcc|g\+\+|clang|cmake|make|build-essential|nodejs|npm)$/.test(p)),
    pkgs.join(' '));
  check('runtime cleans the apt lists', /rm -rf \/var\/lib\/apt\/lists/.test(rrun));
  // every shared library the build links must come from an installed runtime package
  for (const lib of ['libmicrohttpd12', 'libjansson4', 'libsqlite3-0', 'liblapacke', 'libnettle8', 'libpq5']) {
    check(`runtime installs ${lib}`, pkgs.includes(lib));
  }
  check('runtime installs an OpenBLAS', pkgs.some((p) => /^libopenblas0/.test(p)));

  const user = runtime.ins.filter((i) => i.op === 'USER').map((i) => i.args);
  check('runtime runs as a non-root user', user.length === 1 && !/^(root|0)(:|$)/.test(user[0]), user.join());
  check('runtime creates that user', new RegExp(`useradd[^&]*\\b${user[0]}\\b`).test(rrun));
  const vol = runtime.ins.filter((i) => i.op === 'VOLUME').map((i) => i.args).join(' ');
  check('runtime keeps its data on a volume', /\/var\/lib\/basinlab/.test(vol), vol);
  const env = runtime.ins.filter((i) => i.op === 'ENV').map((i) => i.args).join(' ');
  check('runtime puts the SQLite default on the volume', /BASINLAB_DB=\/var\/lib\/basinlab\//.test(env), env);
  const names = [...env.matchAll(/(\w+)=/g)].map((m) => m[1]);
  check('runtime ENV sets only BASINLAB_* settings', names.length > 0 && names.every((n) => n.startsWith('BASINLAB_')), names.join());
  check('no secret in the image', !/PASSWORD|SECRET|TOKEN/i.test(env) && !/postgres:\/\/[^@\s]*:[^@\s]*@/.test(dockerfileText));
  check('no ARG: configuration is by environment only', !instructions.some((i) => i.op === 'ARG'));
  const hc = runtime.ins.filter((i) => i.op === 'HEALTHCHECK');
  check('runtime has one HEALTHCHECK', hc.length === 1);
  const hcScript = read('docker/healthcheck');
  check('the health check asks /healthz for a 200', /\/healthz/.test(hcScript) && /200/.test(hcScript));
  check('the health check script is what the HEALTHCHECK runs',
    hc.length === 1 && hc[0].args.includes('/usr/local/bin/basinlab-healthcheck') &&
      runtime.ins.some((i) => i.op === 'COPY' && i.args === 'docker/healthcheck /usr/local/bin/basinlab-healthcheck'));
  const ep = runtime.ins.filter((i) => i.op === 'ENTRYPOINT').map((i) => i.args).join();
  check('the entry point is the basinlab binary', /"\/usr\/local\/bin\/basinlab"/.test(ep), ep);
  check('the binary comes from the release build',
    runtime.ins.some((i) => i.op === 'COPY' && /--from=build \/src\/build\/release\/basinlab /.test(i.args)));
  // files copied from the repository (directly or through /src in the build stage) exist
  for (const c of runtime.ins.filter((i) => i.op === 'COPY')) {
    const parts = c.args.split(/\s+/);
    const fromBuild = parts[0] === '--from=build';
    const srcs = (fromBuild ? parts.slice(1) : parts).slice(0, -1);
    for (const s of srcs) {
      if (fromBuild && s.startsWith('/src/build/')) continue; // made by the build
      const rel = fromBuild ? s.replace(/^\/src\//, '') : s;
      check(`COPY source ${rel} exists`, existsSync(path.join(root, rel)));
    }
  }
  const ignore = existsSync(path.join(root, '.dockerignore')) ? read('.dockerignore') : '';
  check('.dockerignore keeps build trees and node_modules out of the context',
    /^build-\*$/m.test(ignore) && /node_modules/.test(ignore));
}

// ---- compose.yaml ----

const composeText = read('docker/compose.yaml');
let compose = null;
try {
  const doc = YAML.parseDocument(composeText, { merge: true });
  check('compose.yaml parses', doc.errors.length === 0, doc.errors.map(String).join('; '));
  compose = doc.toJS({ maxAliasCount: 100 });
} catch (e) {
  check('compose.yaml parses', false, String(e));
}
if (compose) {
  const svc = compose.services || {};
  const known = new Set([...read('server/config.c').matchAll(/"(BASINLAB_[A-Z_]+)"/g)].map((m) => m[1]));
  check('services: postgres, api, worker', ['postgres', 'api', 'worker'].every((s) => svc[s]),
    Object.keys(svc).join());
  const pg = svc.postgres || {};
  check('PostgreSQL 15', /^postgres:15(\b|-|$)/.test(pg.image || ''), pg.image);
  check('PostgreSQL has a health check', Boolean(pg.healthcheck && pg.healthcheck.test));
  const pgVol = (pg.volumes || []).map(String).find((v) => v.endsWith(':/var/lib/postgresql/data'));
  check('PostgreSQL data on a named volume', pgVol && compose.volumes &&
    Object.prototype.hasOwnProperty.call(compose.volumes, pgVol.split(':')[0]), pgVol);
  const api = svc.api || {};
  const worker = svc.worker || {};
  for (const [name, s] of [['api', api], ['worker', worker]]) {
    check(`${name} is built from docker/Dockerfile`, s.build && s.build.dockerfile === 'docker/Dockerfile' &&
      path.resolve(docker, s.build.context) === root);
    const env = s.environment || {};
    check(`${name} stores on the postgres service`, /^postgres:\/\/[^@]*@postgres:5432\//.test(env.BASINLAB_STORE || ''),
      env.BASINLAB_STORE);
    for (const k of Object.keys(env)) check(`${name}: ${k} is a basinlab setting`, known.has(k));
    check(`${name} starts after PostgreSQL is healthy`,
      s.depends_on && s.depends_on.postgres && s.depends_on.postgres.condition === 'service_healthy');
  }
  check('the API only serves (workers train)', (api.environment || {}).BASINLAB_TRAIN === '0');
  check('the API publishes port 8080', (api.ports || []).some((p) => String(p).endsWith(':8080')));
  check('two workers', worker.deploy && worker.deploy.replicas === 2);
  check('workers run `basinlab worker`', Array.isArray(worker.command) && worker.command[0] === 'worker');
  check('workers start after the API is healthy',
    worker.depends_on && worker.depends_on.api && worker.depends_on.api.condition === 'service_healthy');
  check('workers have their own health check (no HTTP)', Boolean(worker.healthcheck && worker.healthcheck.test));
  check('no password in compose.yaml but a default for local trials',
    !/postgres:\/\/[^@$]*:[^@$]+@/.test(composeText.replace(/\$\{[^}]*\}/g, '')));
}

// ---- the README documents both ----
const dreadme = existsSync(path.join(docker, 'README.md')) ? read('docker/README.md') : '';
check('docker/README.md documents docker compose up', /docker compose -f docker\/compose\.yaml up/.test(dreadme));
check('docker/README.md documents basinlab worker by hand', /basinlab worker --store postgres:\/\//.test(dreadme));

console.log(`docker lint: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
