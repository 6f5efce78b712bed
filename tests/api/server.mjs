// Starting and stopping a real `basinlab serve` for the API tests, and a small HTTP client.
//
// The binary comes from BASINLAB_BINARY (ctest sets it to the built target). The server gets a
// fresh database in a temporary directory, port 0 (the kernel picks a free one) and one worker;
// its address is read from the "basinlab listening on http://HOST:PORT" line it prints once
// everything is up. stop() sends SIGTERM (the graceful drain) and waits for the exit status.
// With BASINLAB_TEST_STORE set to a postgres:// URL (ctest's api_contract_pg, scripts/pg) the
// server stores on PostgreSQL instead, in a fresh schema of its own (basinlab's schema= parameter).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

const START_TIMEOUT_MS = 20000;
const STOP_TIMEOUT_MS = 15000;

export function binaryPath() {
  const bin = process.env.BASINLAB_BINARY;
  if (!bin) {
    throw new Error('BASINLAB_BINARY is not set: run through ctest, or set it to the built basinlab');
  }
  if (!existsSync(bin)) throw new Error(`BASINLAB_BINARY=${bin} does not exist (build it first)`);
  return bin;
}

/* A SQLite file in dir, or on PostgreSQL the test URL with a schema named after dir. */
function storeLocation(dir) {
  const pg = process.env.BASINLAB_TEST_STORE;
  if (!pg || !/^postgres(ql)?:\/\//.test(pg)) return path.join(dir, 'x.db');
  const schema = 't_' + path.basename(dir).toLowerCase().replace(/[^a-z0-9]/g, '_');
  return `${pg}${pg.includes('?') ? '&' : '?'}schema=${schema}`;
}

export class Server {
  /* extraArgs: more `serve` flags, e.g. ['--max-queued-runs', '100']. */
  static async start(extraArgs = []) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'basinlab-api-'));
    const store = storeLocation(dir);
    const args = ['serve', '--port', '0', '--db', store, '--workers', '1', ...extraArgs];
    const child = spawn(binaryPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const server = new Server(child, dir);
    server.store = store; // for `basinlab token create --db`
    child.stderr.on('data', (d) => {
      server.stderr += d.toString();
    });
    server.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => resolve({ code, signal }));
    });
    let stdout = '';
    server.base = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`no "listening" line within ${START_TIMEOUT_MS} ms\n${server.stderr}`));
      }, START_TIMEOUT_MS);
      child.stdout.on('data', (d) => {
        stdout += d.toString();
        const m = stdout.match(/listening on (http:\/\/\S+)/);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      server.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`basinlab serve exited (${code ?? signal}) before listening\n${server.stderr}`));
      });
    });
    return server;
  }

  constructor(child, dir) {
    this.child = child;
    this.dir = dir;
    this.stderr = '';
    this.base = '';
    this.store = '';
  }

  /* SIGTERM, then the exit status ({code, signal}); SIGKILL after STOP_TIMEOUT_MS. */
  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    const status = await this.exited;
    clearTimeout(timer);
    rmSync(this.dir, { recursive: true, force: true });
    return status;
  }
}

/* One request with fetch. body: an object (sent as JSON) or a string/Buffer (sent as is, with
 * the given content-type). Returns {status, headers, bytes, text, json}. */
export async function request(base, method, target, { headers = {}, body, json, timeoutMs = 15000 } = {}) {
  // Connection: close — no idle keep-alive sockets, which would hold up the server's drain
  const init = { method, headers: { Connection: 'close', ...headers }, signal: AbortSignal.timeout(timeoutMs) };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    if (!Object.keys(init.headers).some((h) => h.toLowerCase() === 'content-type')) {
      init.headers['Content-Type'] = 'application/json';
    }
  } else if (body !== undefined) {
    init.body = body;
  }
  const res = await fetch(new URL(target, base), init);
  const bytes = Buffer.from(await res.arrayBuffer());
  const text = bytes.toString('utf8');
  return { status: res.status, headers: res.headers, bytes, text };
}

/* A request whose headers announce a body that is never sent (node:http, since fetch always
 * sends what it announces): the server must answer from the headers alone. */
export function requestHeadersOnly(base, method, target, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(target, base), { method, headers });
    req.setTimeout(10000, () => req.destroy(new Error('timeout')));
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const bytes = Buffer.concat(chunks);
        req.destroy();
        resolve({ status: res.statusCode, headers: new Headers(res.headers), bytes, text: bytes.toString('utf8') });
      });
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
