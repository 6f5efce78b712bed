#!/usr/bin/env python3
"""The server half of the performance benchmark (bench/README.md, "Server figures").

One command measures `basinlab serve` through its REST API on this machine:

  1. GET /v1/runs/{id} with wrk (plain 200 and conditional 304 with If-None-Match), once while
     the server is idle and once while both workers train a big experiment of case a's shape
     (MLP 2-16-16-1 ReLU, two moons N = 200, lr 0.05, 2000 GD steps per restart);
  2. trajectory ingestion of that training experiment (points stored per second) and the
     on-disk bytes per stored point (SQLite's dbstat virtual table);
  3. peak RSS (VmHWM) and restarts/s of a 10,000-restart experiment of case a through the full
     server path, certification included (the API's default certify options), on a fresh server.

    python3 bench/server_bench.py [--duration 30] [--binary build-bench-srv/basinlab]

Without --binary it builds the server in Release in build-bench-srv/. Each server runs on a
fresh SQLite file in a temporary directory, on a free loopback port (--port 0), with 2 workers.
Writes a markdown table (stdout and --out) and the same figures as JSON beside it. Python
standard library only; every wait is bounded.
"""
import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TARGET_IDLE_RPS = 15000.0
TARGET_IDLE_P99_MS = 10.0
TARGET_TRAIN_P99_MS = 50.0
TARGET_BYTES_PER_POINT = 32.0
TARGET_PEAK_RSS_MB = 300.0

DATASET = {"name": "bench-moons", "kind": "generator",
           "generator": {"name": "two_moons", "n": 200, "noise": 0.1, "seed": 1}}
ARCHITECTURE = {"name": "bench-case-a", "input_shape": [2], "layers": [
    {"type": "dense", "units": 16}, {"type": "activation", "kind": "relu"},
    {"type": "dense", "units": 16}, {"type": "activation", "kind": "relu"},
    {"type": "dense", "units": 1}]}


def log(msg):
    print(f"[server_bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- the server process ----

class Server:
    """One `basinlab serve` on a fresh database, talked to over loopback HTTP."""

    def __init__(self, binary, workdir, name, workers):
        self.db = Path(workdir) / f"{name}.db"
        self.stdout_path = Path(workdir) / f"{name}.stdout"
        self.stderr_path = Path(workdir) / f"{name}.log"
        self.out = open(self.stdout_path, "wb")
        self.err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--port", "0", "--bind", "127.0.0.1", "--db", str(self.db),
             "--workers", str(workers)],
            stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        self.base = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            m = re.search(rb"http://127\.0\.0\.1:(\d+)", self.stdout_path.read_bytes())
            if m:
                self.base = f"http://127.0.0.1:{int(m.group(1))}"
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if self.base is None:
            self.kill()
            raise RuntimeError(f"the server did not start; log:\n{self.log_tail()}")

    def log_tail(self, n=20):
        try:
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def request(self, method, path, body=None, headers=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, method, path, body=None, expect=(200,)):
        status, _, raw = self.request(method, path, body)
        if status not in expect:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {raw[:500]!r}")
        return json.loads(raw) if raw else None

    def proc_status(self):
        """VmHWM and VmRSS in kB (None once the process is gone)."""
        out = {}
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(("VmHWM:", "VmRSS:")):
                    out[line.split(":")[0]] = int(line.split()[1])
        except OSError:
            return None
        return out

    def cpu_seconds(self):
        """utime + stime of the whole process (all threads), in seconds."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            return None

    def stop(self, timeout=30):
        """SIGTERM (drain) and wait; SIGKILL after the timeout. Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.out.close()
        self.err.close()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class RssSampler:
    """Samples VmRSS every `period` s in a thread; VmHWM is read from the kernel at the end."""

    def __init__(self, server, period=0.5):
        self.server, self.period = server, period
        self.samples = []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.stop_flag.is_set():
            st = self.server.proc_status()
            if st is None:
                break
            self.samples.append((time.monotonic(), st.get("VmRSS", 0), st.get("VmHWM", 0)))
            self.stop_flag.wait(self.period)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(timeout=5)


# ---- wrk ----

_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_UNIT_B = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


def parse_wrk(text):
    """The figures of wrk 4.1's --latency report (raises if a required line is missing)."""
    out = {}
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)([KMGT]?B) read",
                  text, re.M)
    if not m:
        raise ValueError("wrk output has no 'requests in' line")
    out["requests"] = int(m.group(1))
    out["seconds"] = float(m.group(2)) * _UNIT_MS[m.group(3)] / 1e3
    out["bytes_read"] = float(m.group(4)) * _UNIT_B[m.group(5)]
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if not m:
        raise ValueError("wrk output has no Requests/sec line")
    out["rps"] = float(m.group(1))
    for pct, val, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", text,
                                     re.M):
        out[f"p{pct}_ms"] = float(val) * _UNIT_MS[unit]
    if "p99_ms" not in out or "p50_ms" not in out:
        raise ValueError("wrk output has no latency distribution (run with --latency)")
    m = re.search(r"^\s+Latency\s+([\d.]+)(us|ms|s|m|h)\s+[\d.]+\w+\s+([\d.]+)(us|ms|s|m|h)",
                  text, re.M)
    if m:
        out["mean_ms"] = float(m.group(1)) * _UNIT_MS[m.group(2)]
        out["max_ms"] = float(m.group(3)) * _UNIT_MS[m.group(4)]
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = sum(int(g) for g in m.groups()) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx_3xx"] = int(m.group(1)) if m else 0
    out["bytes_per_response"] = out["bytes_read"] / out["requests"] if out["requests"] else None
    return out


def run_wrk(url, duration, connections, threads, headers=()):
    cmd = ["wrk", "--latency", f"-t{threads}", f"-c{connections}", f"-d{duration}s",
           "--timeout", "10s"]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(url)
    log("  " + " ".join(cmd))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if r.returncode != 0:
        raise RuntimeError(f"wrk failed ({r.returncode}): {r.stderr.strip()}")
    res = parse_wrk(r.stdout)
    res["command"] = " ".join(cmd)
    res["raw"] = r.stdout
    return res


# ---- API helpers ----

def make_fixtures(srv, data_seed=1):
    spec = json.loads(json.dumps(DATASET))
    spec["generator"]["seed"] = data_seed
    spec["name"] = f"bench-moons-{data_seed}"
    ds = srv.json("POST", "/v1/datasets", spec, expect=(201,))["id"]
    ar = srv.json("POST", "/v1/architectures", ARCHITECTURE, expect=(201,))["id"]
    return ds, ar


def case_a(ds, ar, restarts, seed, trajectory_every=None):
    body = {"dataset_id": ds, "architecture_id": ar, "loss": "squared",
            "optimizer": {"kind": "gd", "lr": 0.05}, "init": {"kind": "he", "bias": 0},
            "restarts": restarts, "max_steps": 2000, "seed": seed}
    if trajectory_every is not None:
        body["trajectory_every"] = trajectory_every
    return body


def submit(srv, body):
    return srv.json("POST", "/v1/experiments", body, expect=(202,))


def experiment_light(srv, ex_id):
    """The experiment's list item (status, progress). Not GET /v1/experiments/{id}: that one
    scans the experiment's runs with their verdicts for its summary (up to 5000 runs; seconds
    and hundreds of MB at thousands of runs), which would load the server being measured."""
    for item in srv.json("GET", "/v1/experiments?limit=100")["items"]:
        if item["id"] == ex_id:
            return item
    raise RuntimeError(f"experiment {ex_id} is not in the list")


def wait_experiment(srv, ex_id, timeout, on_poll=None, period=1.0):
    deadline = time.monotonic() + timeout
    while True:
        doc = experiment_light(srv, ex_id)
        if on_poll:
            on_poll(doc)
        if doc["status"] in ("finished", "cancelled"):
            return doc
        if time.monotonic() > deadline:
            raise RuntimeError(f"experiment {ex_id} not done after {timeout} s: "
                               f"{doc['progress']}")
        if srv.proc.poll() is not None:
            raise RuntimeError(f"the server exited ({srv.proc.returncode}):\n{srv.log_tail()}")
        time.sleep(period)


def pick_run(srv, ex_id):
    """A finished run of ex_id, its ETag and body size; checks the conditional GET gives 304."""
    page = srv.json("GET", f"/v1/experiments/{ex_id}/runs?limit=1&status=finished")
    run_id = page["items"][0]["id"]
    path = f"/v1/runs/{run_id}"
    status, headers, body = srv.request("GET", path)
    etag = {k.lower(): v for k, v in headers.items()}.get("etag")
    if status != 200 or not etag:
        raise RuntimeError(f"GET {path}: HTTP {status}, ETag {etag!r}")
    status2, _, body2 = srv.request("GET", path, headers={"If-None-Match": etag})
    if status2 != 304 or body2:
        raise RuntimeError(f"GET {path} with If-None-Match: HTTP {status2}, "
                           f"{len(body2)} body bytes (expected a bodiless 304)")
    return path, etag, len(body)


def wrk_pair(srv, path, etag, args, label):
    """The plain (200) and the conditional (304) wrk run of one GET."""
    url = srv.base + path
    out = {}
    for kind, headers in (("200", ()), ("304", (f"If-None-Match: {etag}",))):
        cpu0, t0 = srv.cpu_seconds(), time.monotonic()
        res = run_wrk(url, args.duration, args.connections, args.threads, headers)
        cpu1, t1 = srv.cpu_seconds(), time.monotonic()
        res["server_cpu_cores"] = ((cpu1 - cpu0) / (t1 - t0)
                                   if cpu0 is not None and cpu1 is not None else None)
        # wrk counts 3xx as success: a conditional run is only a 304 run if no body came back
        res["bodiless"] = res["bytes_per_response"] is not None and res["bytes_per_response"] < 1024
        log(f"  {label} {kind}: {res['rps']:.0f} req/s, p50 {res['p50_ms']:.2f} ms, "
            f"p99 {res['p99_ms']:.2f} ms, errors {res['socket_errors']}, "
            f"non-2xx/3xx {res['non_2xx_3xx']}, {res['bytes_per_response']:.0f} B/response")
        out[kind] = res
    return out


# ---- the database, read after the server stopped ----

def db_figures(db, experiment_id):
    """Points stored, their time span and the on-disk bytes of the trajectory table."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        out = {"sqlite_version": sqlite3.sqlite_version}
        row = con.execute(
            "SELECT count(*), coalesce(sum(c.count), 0) FROM trajectory_chunks c "
            "JOIN runs r ON r.id = c.run_id WHERE r.experiment_id = ?", (experiment_id,)
        ).fetchone()
        out["chunks"], out["points"] = row
        row = con.execute(
            "SELECT min(started_at), max(finished_at), "
            "sum(status = 'finished'), count(*) FROM runs "
            "WHERE experiment_id = ? AND started_at IS NOT NULL", (experiment_id,)).fetchone()
        out["first_start_ms"], out["last_finish_ms"], out["runs_finished"], out["runs_started"] = row
        if row[0] is not None and row[1] is not None and row[1] > row[0]:
            out["span_s"] = (row[1] - row[0]) / 1000.0
            out["points_per_s"] = out["points"] / out["span_s"]
        # the whole table (every experiment of this database), for bytes per point
        out["table_points"] = con.execute(
            "SELECT coalesce(sum(count), 0) FROM trajectory_chunks").fetchone()[0]
        out["table_chunks"] = con.execute("SELECT count(*) FROM trajectory_chunks").fetchone()[0]
        out["page_size"] = con.execute("PRAGMA page_size").fetchone()[0]
        try:
            rows = con.execute(
                "SELECT name, count(*), sum(pgsize), sum(payload) FROM dbstat "
                "WHERE name IN ('trajectory_chunks', 'sqlite_autoindex_trajectory_chunks_1') "
                "GROUP BY name").fetchall()
            out["method"] = "dbstat"
        except sqlite3.OperationalError:  # an SQLite built without SQLITE_ENABLE_DBSTAT_VTAB
            rows = None
    finally:
        con.close()
    if rows is None:
        rows = pages_by_vacuum(db)
        out["method"] = "VACUUM INTO copy + page counts"
    sizes = {name: {"pages": n, "bytes": b, "payload": p} for name, n, b, p in rows}
    out["dbstat"] = sizes
    table = sizes.get("trajectory_chunks", {}).get("bytes", 0)
    index = sizes.get("sqlite_autoindex_trajectory_chunks_1", {}).get("bytes", 0)
    if out["table_points"]:
        out["bytes_per_point_table"] = table / out["table_points"]
        out["bytes_per_point_with_index"] = (table + index) / out["table_points"]
    out["db_file_bytes"] = sum(p.stat().st_size for p in Path(db).parent.glob(Path(db).name + "*"))
    return out


def pages_by_vacuum(db):
    """Fallback without dbstat: the file growth of a vacuumed copy without the trajectories."""
    with tempfile.TemporaryDirectory() as d:
        full, bare = Path(d) / "full.db", Path(d) / "bare.db"
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        con.execute("VACUUM INTO ?", (str(full),))
        con.close()
        shutil.copy(full, bare)
        con = sqlite3.connect(bare)
        con.execute("DELETE FROM trajectory_chunks")
        con.commit()
        con.execute("VACUUM")
        con.close()
        diff = full.stat().st_size - bare.stat().st_size
    return [("trajectory_chunks", None, diff, None)]


# ---- the phases ----

def phase_reads(binary, workdir, args, res):
    srv = Server(binary, workdir, "reads", args.workers)
    log(f"server (reads) pid {srv.pid} at {srv.base}, db {srv.db}")
    try:
        # The runs read by wrk are of other data (two moons, seed 7) than the training experiment
        # (case a's data, seed 1): a run's body has a "spurious" block judged against the best
        # risk of its objective (dataset, architecture, loss), which the training experiment
        # would otherwise move at every new best, changing the ETag under the conditional GET.
        ds_read, ar = make_fixtures(srv, data_seed=7)
        ds = srv.json("POST", "/v1/datasets", DATASET, expect=(201,))["id"]
        t0 = time.monotonic()
        warm = submit(srv, case_a(ds_read, ar, args.warmup_restarts, seed=1))
        wait_experiment(srv, warm["id"], timeout=600)
        done = srv.json("GET", f"/v1/experiments/{warm['id']}")
        warm_s = time.monotonic() - t0
        res["warmup"] = {"restarts": args.warmup_restarts, "seconds": warm_s,
                         "restarts_per_s": args.warmup_restarts / warm_s,
                         "verdicts": done["summary"]["verdicts"]}
        log(f"warm-up: {args.warmup_restarts} restarts in {warm_s:.1f} s")
        path, etag, size = pick_run(srv, warm["id"])
        res["get"] = {"path": path, "etag": etag, "body_bytes": size}
        log(f"GET {path}: {size} bytes, ETag {etag}")

        log(f"idle: wrk {args.duration} s × 2")
        res["idle"] = wrk_pair(srv, path, etag, args, "idle")

        # A big experiment that keeps both workers busy for both wrk runs (checked below).
        body = case_a(ds, ar, args.train_restarts, seed=2, trajectory_every=args.trajectory_every)
        ex = submit(srv, body)
        tr = {"experiment_id": ex["id"], "restarts": args.train_restarts,
              "trajectory_every": ex["trajectory_every"], "certify": ex["certify"]}
        deadline = time.monotonic() + 60
        while True:
            prog = experiment_light(srv, ex["id"])["progress"]
            if prog["running"] >= args.workers or prog["finished"] > 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the workers did not start: {prog}")
            time.sleep(0.2)
        time.sleep(2)  # past the first claims: both workers in steady state
        before = experiment_light(srv, ex["id"])["progress"]
        t0 = time.monotonic()
        log(f"training ({ex['id']}): wrk {args.duration} s × 2")
        res["training"] = wrk_pair(srv, path, etag, args, "training")
        t1 = time.monotonic()
        after = experiment_light(srv, ex["id"])["progress"]
        tr["progress_before"], tr["progress_after"] = before, after
        tr["finished_during_wrk"] = after["finished"] - before["finished"]
        tr["restarts_per_s_during_wrk"] = tr["finished_during_wrk"] / (t1 - t0)
        tr["busy_throughout"] = after["queued"] > 0 and after["running"] >= args.workers
        if not tr["busy_throughout"]:
            log("WARNING: the training experiment ran out of work before wrk ended")
        srv.json("POST", f"/v1/experiments/{ex['id']}/cancel", expect=(200, 202))
        res["train_experiment"] = tr
    finally:
        res["reads_exit"] = srv.stop()
    if "train_experiment" not in res:
        return
    res["train_ingest"] = db_figures(srv.db, res["train_experiment"]["experiment_id"])
    log(f"ingestion: {res['train_ingest']}")


def phase_memory(binary, workdir, args, res):
    srv = Server(binary, workdir, "memory", args.workers)
    log(f"server (memory) pid {srv.pid} at {srv.base}, db {srv.db}")
    try:
        ds, ar = make_fixtures(srv)
        base = srv.proc_status()
        body = case_a(ds, ar, args.memory_restarts, seed=3)
        last = [0.0]

        def progress(doc):
            now = time.monotonic()
            if now - last[0] > 30:
                last[0] = now
                st = srv.proc_status() or {}
                log(f"  memory run: {doc['progress']}, RSS {st.get('VmRSS', 0) / 1024:.0f} MB")

        with RssSampler(srv) as sampler:
            t0 = time.monotonic()
            ex = submit(srv, body)
            wait_experiment(srv, ex["id"], timeout=args.memory_timeout, on_poll=progress)
            secs = time.monotonic() - t0
            st = srv.proc_status()
        # then one GET of the finished experiment (its summary scans the runs), measured alone
        t1 = time.monotonic()
        done = srv.json("GET", f"/v1/experiments/{ex['id']}", expect=(200,))
        get_s = time.monotonic() - t1
        st_get = srv.proc_status() or {}
        mem = {"experiment_id": ex["id"], "restarts": args.memory_restarts, "seconds": secs,
               "restarts_per_s": args.memory_restarts / secs,
               "trajectory_every": ex["trajectory_every"], "certify": ex["certify"],
               "verdicts": done["summary"]["verdicts"],
               "stop_reasons": done["summary"]["stop_reasons"],
               "progress": done["progress"],
               "rss_start_kb": base.get("VmRSS"), "vmhwm_kb": st.get("VmHWM"),
               "rss_end_kb": st.get("VmRSS"),
               "rss_max_sampled_kb": max((s[1] for s in sampler.samples), default=None),
               "samples": len(sampler.samples),
               "get_experiment_s": get_s, "vmhwm_after_get_experiment_kb": st_get.get("VmHWM")}
        res["memory"] = mem
        log(f"memory: {args.memory_restarts} restarts in {secs:.1f} s, "
            f"VmHWM {mem['vmhwm_kb'] / 1024:.1f} MB")
    finally:
        res["memory_exit"] = srv.stop()
    if "memory" not in res:
        return
    res["memory_ingest"] = db_figures(srv.db, res["memory"]["experiment_id"])


# ---- report ----

def verdict_options(c):
    if not c.get("enabled"):
        return "certification off"
    parts = [f"polish {'on' if c['polish'] else 'off'} (max {c['polish_max_iter']} it)",
             f"probes {c['probes']}×{c['probe_steps']} steps",
             f"dense Hessian ≤ {c['dense_max_params']} params",
             f"lanczos_max_iter {c['lanczos_max_iter']}",
             f"max_boundary_pairs {c['max_boundary_pairs']}"]
    return "certify on (API defaults): " + ", ".join(parts)


def ok(flag):
    return "✔" if flag else "✘"


def markdown(res, args):
    L = []
    m = res["machine"]
    L.append("## Server figures")
    L.append("")
    L.append(f"{m['date']} · {m['cpu']} · {m['cores']} cores · load before: {m['load_before']}"
             f" · after: {m.get('load_after', '?')} · wrk `-t{args.threads} "
             f"-c{args.connections} -d{args.duration}s --latency` on the same machine (loopback)"
             f" · `basinlab serve --workers {args.workers}`, Release, SQLite (WAL, "
             f"synchronous=FULL) on {m['tmp_fs']}")
    L.append("")
    g = res.get("get", {})
    L.append(f"GET `/v1/runs/{{id}}` of a finished case-a run: {g.get('body_bytes')} bytes of "
             f"JSON (verdict included); conditional = `If-None-Match: {g.get('etag')}` → 304.")
    L.append("")
    L.append("| GET /v1/runs/{id} | req/s | p50 ms | p99 ms | max ms | socket errors | "
             "non-2xx/3xx | B/response | server CPU (cores) | target |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for phase, label in (("idle", "idle"), ("training", "2 workers training")):
        for kind in ("200", "304"):
            r = res.get(phase, {}).get(kind)
            if not r:
                continue
            if phase == "idle":
                tgt = (f"≥ {TARGET_IDLE_RPS:.0f} req/s {ok(r['rps'] >= TARGET_IDLE_RPS)}, "
                       f"p99 < {TARGET_IDLE_P99_MS:g} ms {ok(r['p99_ms'] < TARGET_IDLE_P99_MS)}")
            else:
                tgt = (f"p99 < {TARGET_TRAIN_P99_MS:g} ms "
                       f"{ok(r['p99_ms'] < TARGET_TRAIN_P99_MS)}")
            cores = r.get("server_cpu_cores")
            L.append(f"| {label}, {'plain 200' if kind == '200' else 'conditional 304'} | "
                     f"{r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                     f"{r.get('max_ms', float('nan')):.1f} | {r['socket_errors']} | "
                     f"{r['non_2xx_3xx']} | {r['bytes_per_response']:.0f} | "
                     f"{'' if cores is None else f'{cores:.2f}'} | {tgt} |")
    for phase in ("idle", "training"):
        r = res.get(phase, {}).get("304")
        if r and not r["bodiless"]:
            L.append(f"**{phase}: the conditional run got bodies back "
                     f"({r['bytes_per_response']:.0f} B/response): the ETag changed.**")
    L.append("")
    tr = res.get("train_experiment")
    if tr:
        L.append(f"Training during the wrk runs: experiment of {tr['restarts']} restarts "
                 f"(trajectory_every {tr['trajectory_every']}), "
                 f"{tr['finished_during_wrk']} restarts finished during the two wrk runs "
                 f"({tr['restarts_per_s_during_wrk']:.1f}/s); both workers busy throughout: "
                 f"{'yes' if tr['busy_throughout'] else 'NO'}; {verdict_options(tr['certify'])}.")
        L.append("")
    L.append("| trajectory storage | runs finished | points | span s | points/s | "
             "B/point (table) | B/point (+ PK index) | payload B/point | target |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for key, label in (("train_ingest", "training experiment (during wrk)"),
                       ("memory_ingest", "memory experiment (idle server)")):
        d = res.get(key)
        if not d:
            continue
        every = (res.get("train_experiment") if key == "train_ingest"
                 else res.get("memory", {})).get("trajectory_every")
        tbl = d.get("dbstat", {}).get("trajectory_chunks", {})
        payload = (tbl.get("payload") / d["table_points"]
                   if tbl.get("payload") and d.get("table_points") else None)
        bpp = d.get("bytes_per_point_table")
        L.append(f"| {label}, every {every} step(s) | {d.get('runs_finished')} | "
                 f"{d['points']} | {d.get('span_s', float('nan')):.1f} | "
                 f"{d.get('points_per_s', float('nan')):.0f} | "
                 f"{'' if bpp is None else f'{bpp:.2f}'} | "
                 f"{d.get('bytes_per_point_with_index', float('nan')):.2f} | "
                 f"{'' if payload is None else f'{payload:.2f}'} | "
                 f"≤ {TARGET_BYTES_PER_POINT:g} B/point "
                 f"{ok(bpp is not None and bpp <= TARGET_BYTES_PER_POINT)} |")
    L.append("")
    L.append("Bytes per point: SQLite's `dbstat` pages of `trajectory_chunks` (and of its primary "
             "key index) over every point in the table; a point's raw payload is 24 B (risk, "
             "grad_norm, param_norm as float64; steps implied by the chunk's stride) or 32 B "
             "with explicit steps when they are irregular. Points/s: points stored for the "
             "experiment over first claim → last run end (runs table timestamps).")
    L.append("")
    mem = res.get("memory")
    if mem:
        hwm = mem["vmhwm_kb"] / 1024
        L.append("| many-restart run | restarts | wall s | restarts/s | peak RSS (VmHWM) MB | "
                 "RSS start / end MB | target |")
        L.append("|---|---:|---:|---:|---:|---:|---|")
        L.append(f"| case a, full server path | {mem['restarts']} | {mem['seconds']:.1f} | "
                 f"{mem['restarts_per_s']:.2f} | {hwm:.1f} | "
                 f"{(mem['rss_start_kb'] or 0) / 1024:.1f} / {(mem['rss_end_kb'] or 0) / 1024:.1f}"
                 f" | < {TARGET_PEAK_RSS_MB:g} MB {ok(hwm < TARGET_PEAK_RSS_MB)} |")
        L.append("")
        if mem.get("vmhwm_after_get_experiment_kb"):
            L.append(f"Then one `GET /v1/experiments/{{id}}` of the finished experiment took "
                     f"{mem['get_experiment_s'] * 1000:.0f} ms and left VmHWM at "
                     f"{mem['vmhwm_after_get_experiment_kb'] / 1024:.1f} MB (its summary is "
                     f"counted in SQL over every run).")
            L.append("")
        L.append(f"Memory run: submission → experiment finished (progress polled every second "
                 f"through the experiment list, which skips the run scan), measured by the client; "
                 f"{verdict_options(mem['certify'])}; trajectory_every {mem['trajectory_every']};"
                 f" verdicts {mem['verdicts']}; stop reasons {mem['stop_reasons']}.")
        L.append("")
    return "\n".join(L) + "\n"


def machine():
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    fs = subprocess.run(["df", "--output=fstype", tempfile.gettempdir()], capture_output=True,
                        text=True).stdout.split()
    return {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "cpu": cpu, "cores": os.cpu_count(),
            "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "tmp_fs": fs[-1] if fs else "?",
            "wrk": subprocess.run(["wrk", "--version"], capture_output=True,
                                  text=True).stdout.splitlines()[0:1]}


def build():
    bdir = ROOT / "build-bench-srv"
    log(f"building basinlab (Release) in {bdir}")
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(bdir), "-DCMAKE_BUILD_TYPE=Release",
                    "-DBASINLAB_TESTS=OFF"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(bdir), "--target", "basinlab", "-j2"], check=True,
                   stdout=subprocess.DEVNULL)
    for cand in (bdir / "basinlab", bdir / "server" / "basinlab"):
        if cand.is_file():
            return cand
    raise RuntimeError(f"no basinlab binary in {bdir}")


def main():
    # SIGTERM/SIGINT end the run through the finally blocks, which stop the servers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=30, help="seconds per wrk run (1..30)")
    ap.add_argument("--binary", help="the basinlab executable (default: build it in Release)")
    ap.add_argument("--out", default=str(ROOT / "build-bench" / "results" / "server.md"),
                    help="markdown output (JSON beside it, .json)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--warmup-restarts", type=int, default=32,
                    help="case-a restarts trained before the idle reads (their runs are read)")
    ap.add_argument("--train-restarts", type=int, default=10000,
                    help="restarts of the experiment trained during the second wrk pair "
                         "(cancelled after it)")
    ap.add_argument("--trajectory-every", type=int, default=1,
                    help="trajectory_every of that experiment (1 = every step: the most "
                         "ingestion)")
    ap.add_argument("--memory-restarts", type=int, default=10000,
                    help="restarts of the memory run (0 = skip it)")
    ap.add_argument("--memory-timeout", type=float, default=3600)
    args = ap.parse_args()
    if not 1 <= args.duration <= 30:
        ap.error("--duration must be in 1..30 seconds")
    if shutil.which("wrk") is None:
        sys.exit("server_bench: wrk is not installed (apt-get install wrk)")
    binary = Path(args.binary).resolve() if args.binary else build()
    res = {"machine": machine(), "binary": str(binary), "args": vars(args)}
    log(f"binary {binary}; load {res['machine']['load_before']}")
    workdir = tempfile.mkdtemp(prefix="basinlab_srvbench_")
    try:
        phase_reads(binary, workdir, args, res)
        if args.memory_restarts > 0:
            phase_memory(binary, workdir, args, res)
    finally:
        res["machine"]["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            md = markdown(res, args)
        except Exception as e:  # a partial run still leaves its JSON behind
            md = f"## Server figures\n\n(incomplete run: {e!r})\n"
        out.write_text(md)
        if not os.environ.get("SRVBENCH_KEEP_RAW"):
            for phase in ("idle", "training"):
                for r in res.get(phase, {}).values():
                    r.pop("raw", None)
        out.with_suffix(".json").write_text(json.dumps(res, indent=2, default=str) + "\n")
        if os.environ.get("KEEP"):
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(md, end="")
    log(f"wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
