#!/usr/bin/env python3
"""basinlab vs PyTorch, side by side: the one command of bench/README.md.

Builds the core and bench/basinbench.c in Release, writes the cases' data once, then for each
case and thread count runs basinlab (basinbench) and PyTorch (torch_cases.py, Debian's
/usr/bin/python3) alternately, A/B then B/A, on the same data in float64, for --pairs pairs;
PyTorch float32 and PyTorch's default configuration are measured too. Prints, per case, both
sides' min/median/max, the per-pair ratio (min/median/max) against the target, and basinlab's
GFLOP/s next to the machine's FMA peak and dgemm rate measured in the same run. Raw results go
to OUT/results.json and the tables to OUT/summary.md.

Standard library only, so it runs under any python3; torch is only imported by the child.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TORCH_PY = "/usr/bin/python3"

# PyTorch's best configuration on these machines (shared/design/perf.md): no page-faulting
# malloc every step, OpenMP threads that do not spin against OpenBLAS's.
TORCH_BEST_ENV = {
    "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1073741824:"
                      "glibc.malloc.trim_threshold=4294967296",
    "OMP_WAIT_POLICY": "PASSIVE",
}

# Per case: basinbench options, torch variants (name, options), the figure of merit and the
# targets (ratio basinlab / torch, > 1 = basinlab faster) from issue 6.
CASES = {
    "a": {"title": "MLP 2-16-16-1, N=200, 2000 GD steps per restart", "unit": "restarts/s",
          "ours": ["--restarts", "128", "--steps", "2000"],
          "torch": [("plain", ["--restarts", "2", "--steps", "2000"]),
                    ("bmm", ["--variant", "bmm", "--restarts", "128", "--chunk", "128",
                             "--steps", "2000"])],
          "targets": {"plain": 20.0, "bmm": 3.0}, "peak_target": 0.30},
    "b": {"title": "MLP 2-64-64-64-1, N=2000", "unit": "s/step",
          "ours": ["--steps", "60", "--warmup", "5"],
          "torch": [("plain", ["--steps", "60", "--warmup", "5"])],
          "targets": {"plain": 2.0}},
    "c": {"title": "MLP 784-256-256-10 cross entropy, N=10000", "unit": "s/step",
          "ours": ["--steps", "16", "--warmup", "2"],
          "torch": [("plain", ["--steps", "16", "--warmup", "2", "--lr", "0.01"])],
          "targets": {"plain": 1.0}, "dgemm_target": 0.60},
    "d": {"title": "CNN 1x8x8: conv3(8) relu avgpool2 conv3(16) relu gap dense1, N=1000",
          "unit": "s/step",
          "ours": ["--steps", "40", "--warmup", "5"],
          "torch": [("plain", ["--steps", "40", "--warmup", "5"])],
          "targets": {"plain": 3.0}},
    "e": {"title": "teacher-student k=n=10, lr 0.1, to grad norm 1e-9", "unit": "restarts/s",
          "ours": ["--restarts", "256", "--steps", "100000"],
          "torch": [("plain", ["--restarts", "4", "--lr", "0.1", "--max-steps", "100000",
                               "--grad-tol", "1e-9"])],
          "targets": {"plain": 20.0}},
    "f": {"title": "basin_certify of case b's end point (1000 GD steps)", "unit": "s",
          "ours": ["--steps", "1000"], "torch": [], "targets": {}},
}
SMOKE = {"ours": ["--restarts", "16", "--steps", "50"],
         "torch": [("plain", ["--restarts", "1", "--steps", "50"])]}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run_json(cmd, env, cwd=None):
    """Run cmd, return (parsed last JSON line of stdout, whole-process wall seconds)."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), p.returncode,
                                                  p.stderr.strip()[-2000:]))
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1]
    res = json.loads(line)
    res["process_wall_s"] = wall
    return res


def run_procs(cmds, env, unit):
    """Run the commands at once, each pinned to its own core, released together through a
    start barrier (torch_cases.py --barrier); returns one combined result: the throughput of
    all of them over the union of their timed loops."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix="basinbench-barrier-") as bar:
        t0 = time.perf_counter()
        procs = [subprocess.Popen(c + ["--barrier", bar, "--rank", str(i)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i, c in enumerate(cmds)]
        deadline = time.monotonic() + 600
        while not all(os.path.exists(os.path.join(bar, "ready.%d" % i))
                      for i in range(len(cmds))):
            if any(p.poll() not in (None, 0) for p in procs) or time.monotonic() > deadline:
                for p in procs:
                    p.kill()
                errs = [p.communicate()[1] for p in procs]
                raise RuntimeError("parallel PyTorch runs failed: %s" % " | ".join(
                    e.strip()[-500:] for e in errs))
            time.sleep(0.001)
        with open(os.path.join(bar, "go"), "w"):
            pass
        outs = [p.communicate() for p in procs]
        wall = time.perf_counter() - t0
    for p, (_, err) in zip(procs, outs):
        if p.returncode != 0:
            raise RuntimeError("parallel PyTorch run failed (%d): %s" % (p.returncode,
                                                                       err.strip()[-2000:]))
    res = [json.loads([ln for ln in o.splitlines() if ln.startswith("{")][-1])
           for o, _ in outs]
    span = max(r["seconds"] for r in res)
    out = dict(res[0])
    out["seconds"] = span
    out["processes"] = len(res)
    if unit == "restarts/s":
        out["restarts"] = sum(r["restarts"] for r in res)
        out["value"] = out["restarts"] / span
    else:
        out["steps"] = sum(r["steps"] for r in res)
        out["value"] = span / out["steps"]
    out["process_wall_s"] = wall
    return out


def base_env(args, threads):
    env = dict(os.environ)
    if args.openblas == "unset":
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    env["OMP_NUM_THREADS"] = str(threads)
    return env


def pin(threads):
    """Single-thread runs are pinned to one core, both sides the same one."""
    return ["taskset", "-c", "1"] if threads == 1 and has_taskset() else []


def has_taskset():
    return subprocess.run(["sh", "-c", "command -v taskset"], capture_output=True).returncode == 0


def build(args):
    bdir = args.build_dir
    log("building basinbench (Release) in", bdir)
    cfg = ["cmake", "-S", ROOT, "-B", bdir, "-DCMAKE_BUILD_TYPE=Release",
           "-DBASINLAB_TESTS=OFF"]
    if args.native:
        cfg.append("-DNATIVE=ON")
    subprocess.run(cfg, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", bdir, "--target", "basinbench", "-j2"], check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(bdir, "bench", "basinbench")


def torch_ok():
    if not os.path.exists(TORCH_PY):
        return False, TORCH_PY + " not found"
    p = subprocess.run([TORCH_PY, "-c", "import torch"], capture_output=True, text=True)
    if p.returncode != 0:
        return False, "`%s -c \"import torch\"` failed" % TORCH_PY
    return True, ""


def stats(xs):
    return {"min": min(xs), "median": statistics.median(xs), "max": max(xs), "n": len(xs)}


def better(unit):
    """Ratio basinlab/torch such that > 1 means basinlab is faster."""
    if unit == "restarts/s":
        return lambda ours, torch: ours / torch
    return lambda ours, torch: torch / ours


def measure_case(args, name, spec, threads, have_torch, data, binpath, pairs):
    ours_opts = spec["ours"]
    variants = spec["torch"] if have_torch else []
    env = base_env(args, threads)
    tenv = dict(env, **TORCH_BEST_ENV)
    p = pin(threads)
    rows = {"ours": [], "torch": {v: [] for v, _ in variants}, "torch32": {},
            "torch_default": {}}
    ours_cmd = p + [binpath, "run", name, data, "--threads", str(threads)] + ours_opts

    def torch_cmd(opts, dtype="float64"):
        return p + [TORCH_PY, os.path.join(HERE, "torch_cases.py"), "--case", name, "--data",
                    data, "--threads", str(threads), "--dtype", dtype] + opts

    penv = dict(base_env(args, 1), **TORCH_BEST_ENV)

    def proc_cmds(opts):
        pre = (lambda i: ["taskset", "-c", str(i)]) if has_taskset() else (lambda i: [])
        return [pre(i) + [TORCH_PY, os.path.join(HERE, "torch_cases.py"), "--case", name,
                          "--data", data, "--threads", "1", "--dtype", "float64"] + opts
                for i in range(threads)]

    for k in range(pairs):
        order = ["ours", "torch"] if k % 2 == 0 else ["torch", "ours"]
        for side in order:
            if side == "ours":
                r = run_json(ours_cmd, env)
                rows["ours"].append(r)
                log("  [%s T=%d pair %d] basinlab %.4g %s" % (name, threads, k, r["value"],
                                                               r["unit"]))
            else:
                for v, opts in variants:
                    r = run_json(torch_cmd(opts), tenv)
                    rows["torch"][v].append(r)
                    log("  [%s T=%d pair %d] torch %s %.4g %s" % (name, threads, k, v,
                                                                  r["value"], r["unit"]))
                    if threads > 1:  # the other way to use T cores: T one-thread processes
                        pv = "%s ×%d proc" % (v, threads)
                        r = run_procs(proc_cmds(opts), penv, spec["unit"])
                        rows["torch"].setdefault(pv, []).append(r)
                        log("  [%s T=%d pair %d] torch %s %.4g %s" % (name, threads, k, pv,
                                                                      r["value"], r["unit"]))
    # float32 and the default configuration: fewer runs, reported beside the ratio.
    if name != "e":  # ‖∇F‖ ≤ 1e-9 is below float32 resolution: no float32 run for case e
        for v, opts in variants:
            rows["torch32"][v] = [run_json(torch_cmd(opts, "float32"), tenv)
                                  for _ in range(args.extra_runs)]
    for v, opts in variants:
        rows["torch_default"][v] = [run_json(torch_cmd(opts), env)
                                    for _ in range(args.extra_runs)]
    return rows


def summarise(name, spec, threads, rows, peaks):
    unit = spec["unit"]
    ratio = better(unit)
    ours = [r["value"] for r in rows["ours"]]
    out = {"case": name, "threads": threads, "unit": unit, "title": spec["title"],
           "ours": stats(ours), "torch": {}, "ratio": {}, "torch32": {}, "torch_default": {},
           "targets": spec["targets"]}
    if "gflops" in rows["ours"][0]:
        g = [r["gflops"] for r in rows["ours"]]
        out["gflops"] = stats(g)
        pk = peaks.get(threads)
        if pk:
            out["pct_fma_peak"] = statistics.median(g) / pk["fma_gflops"]
            out["pct_dgemm"] = statistics.median(g) / pk["dgemm_gflops"]
    out["maxrss_kb"] = max(r["maxrss_kb"] for r in rows["ours"])
    for v, rs in rows["torch"].items():
        vals = [r["value"] for r in rs]
        out["torch"][v] = stats(vals)
        out["ratio"][v] = stats([ratio(a, b) for a, b in zip(ours, vals)])
    for key in ("torch32", "torch_default"):
        for v, rs in rows[key].items():
            if rs:
                vals = [r["value"] for r in rs]
                out[key][v] = stats(vals)
                out[key][v]["ratio_median"] = ratio(statistics.median(ours),
                                                    statistics.median(vals))
    return out


def fmt(x):
    return "%.3g" % x


def table(summaries, peaks, meta):
    lines = []
    lines.append("machine: %s; %s" % (meta["cpu"], meta["conditions"]))
    for t, pk in sorted(peaks.items()):
        lines.append("peak T=%d: FMA loop %.1f GFLOP/s (float64, %d-wide), dgemm n=2000 %.1f "
                     "GFLOP/s (OpenBLAS core %s)" % (t, pk["fma_gflops"],
                                                     pk["fma_vector_doubles"],
                                                     pk["dgemm_gflops"], pk["blas_core"]))
    lines.append("")
    lines.append("| case | T | unit | basinlab median (min–max) | PyTorch variant | PyTorch "
                 "median (min–max) | ratio median (min–max) | target | met | basinlab "
                 "GFLOP/s (% FMA peak / % dgemm) | PyTorch f32 (ratio) | PyTorch default cfg "
                 "(ratio) |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in summaries:
        o = s["ours"]
        ours_s = "%s (%s–%s)" % (fmt(o["median"]), fmt(o["min"]), fmt(o["max"]))
        gf = "–"
        if "gflops" in s:
            gf = "%.1f (%.0f%% / %.0f%%)" % (s["gflops"]["median"], 100 * s.get("pct_fma_peak", 0),
                                             100 * s.get("pct_dgemm", 0))
        variants = list(s["torch"].keys()) or ["–"]
        for v in variants:
            if v == "–":
                lines.append("| %s | %d | %s | %s | – | – | – | – | – | %s | – | – |" % (
                    s["case"], s["threads"], s["unit"], ours_s, gf))
                continue
            t = s["torch"][v]
            r = s["ratio"][v]
            tgt = s["targets"].get(v.split(" ")[0])
            met = "yes" if tgt is not None and r["median"] >= tgt else "no"
            t32 = s["torch32"].get(v)
            tdf = s["torch_default"].get(v)
            lines.append("| %s | %d | %s | %s | %s | %s (%s–%s) | %.2f× (%.2f–%.2f) | ≥ %g× | %s "
                         "| %s | %s | %s |" % (
                             s["case"], s["threads"], s["unit"], ours_s, v, fmt(t["median"]),
                             fmt(t["min"]), fmt(t["max"]), r["median"], r["min"], r["max"],
                             tgt if tgt is not None else 0, met, gf,
                             "%s (%.2f×)" % (fmt(t32["median"]), t32["ratio_median"])
                             if t32 else "–",
                             "%s (%.2f×)" % (fmt(tdf["median"]), tdf["ratio_median"])
                             if tdf else "–"))
    return "\n".join(lines)


def machine_meta(args):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    cpu = ln.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0, 0, 0)
    return {"cpu": "%s, %d cores" % (cpu, os.cpu_count() or 0),
            "conditions": "load average %.2f %.2f %.2f at start; OPENBLAS_CORETYPE=%s "
                          "OPENBLAS_L2_SIZE=%s (%s)" % (
                              load[0], load[1], load[2],
                              os.environ.get("OPENBLAS_CORETYPE", "unset"),
                              os.environ.get("OPENBLAS_L2_SIZE", "unset"),
                              "as set" if args.openblas == "env" else "both unset for both sides")}


def smoke(args, binpath):
    """One short pair of case a (CI): basinlab must run and give a sane figure; torch only if
    it is installed."""
    os.makedirs(args.out, exist_ok=True)
    data = os.path.join(args.out, "data")
    subprocess.run([binpath, "gen", data, "a"], check=True)
    env = base_env(args, 1)
    ours = run_json([binpath, "run", "a", data, "--threads", "1"] + SMOKE["ours"], env)
    ok = ours["value"] > 0 and ours["unit"] == "restarts/s" and ours.get("diverged", 1) == 0
    print("bench_smoke: basinlab case a: %.3g restarts/s (%d restarts x %d steps), "
          "mean final risk %.4g" % (ours["value"], ours["restarts"], ours["steps"],
                                    ours["mean_final_risk"]))
    tenv = dict(env, **TORCH_BEST_ENV)
    for v, opts in SMOKE["torch"]:
        cmd = [TORCH_PY, os.path.join(HERE, "torch_cases.py"), "--case", "a", "--data", data,
               "--threads", "1"] + opts
        if not os.path.exists(TORCH_PY):
            print("bench_smoke: PyTorch side SKIPPED: %s not found" % TORCH_PY)
            break
        p = subprocess.run(cmd, env=tenv, capture_output=True, text=True)
        if p.returncode == 3:  # torch_cases.py: `import torch` failed
            print("bench_smoke: PyTorch side SKIPPED: `%s -c \"import torch\"` fails (%s)" % (
                TORCH_PY, p.stderr.strip()))
            break
        if p.returncode != 0:
            print("bench_smoke: torch side failed: %s" % p.stderr.strip()[-500:])
            ok = False
            break
        r = json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1])
        ok = ok and r["value"] > 0
        print("bench_smoke: torch %s case a: %.3g restarts/s (ratio %.2f; a smoke run, not a "
              "measurement)" % (v, r["value"], ours["value"] / r["value"]))
    print("bench_smoke: %s" % ("ok" if ok else "FAILED"))
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="abcdef")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--threads", default="1,2", help="comma list, e.g. 1,2")
    ap.add_argument("--extra-runs", type=int, default=2,
                    help="runs of PyTorch float32 and of its default configuration")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--bin", help="use this basinbench instead of building one")
    ap.add_argument("--native", action="store_true", help="build with -march=native")
    ap.add_argument("--openblas", choices=["env", "unset"], default="env",
                    help="unset: drop OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for both sides")
    ap.add_argument("--memory", action="store_true",
                    help="also run a 10,000-restart experiment of case a and report its RSS")
    ap.add_argument("--out", default=os.path.join(ROOT, "build-bench", "results"))
    ap.add_argument("--smoke", action="store_true", help="CI: one short pair of case a")
    args = ap.parse_args()

    binpath = args.bin or build(args)
    if args.smoke:
        return smoke(args, binpath)

    os.makedirs(args.out, exist_ok=True)
    data = os.path.join(args.out, "data")
    subprocess.run([binpath, "gen", data], check=True)
    have_torch, why = torch_ok()
    if not have_torch:
        log("PyTorch side skipped:", why)
    meta = machine_meta(args)
    threads = [int(t) for t in args.threads.split(",")]
    peaks = {}
    for t in threads:
        peaks[t] = run_json(pin(t) + [binpath, "peak", "--threads", str(t)], base_env(args, t))
        log("peak T=%d: %s" % (t, json.dumps(peaks[t])))
    raw, summaries = {}, []
    for name in args.cases:
        spec = CASES[name]
        for t in threads:
            if name == "f" and t > 1:  # one certification is one thread's work, as in a worker
                continue
            log("case %s (%s), T=%d" % (name, spec["title"], t))
            try:
                rows = measure_case(args, name, spec, t, have_torch, data, binpath, args.pairs)
            except RuntimeError as e:
                log("  case %s failed: %s" % (name, e))
                raw["%s/T%d" % (name, t)] = {"error": str(e)}
                continue
            raw["%s/T%d" % (name, t)] = rows
            summaries.append(summarise(name, spec, t, rows, peaks))
    if args.memory:
        env = base_env(args, 2)
        r = run_json([binpath, "run", "a", data, "--threads", "2", "--restarts", "10000",
                      "--steps", "2000"], env)
        raw["memory"] = r
        log("memory: 10000 restarts of case a: max RSS %.1f MB in %.1f s" % (
            r["maxrss_kb"] / 1024.0, r["seconds"]))
    meta["conditions"] += "; load average %.2f at end" % os.getloadavg()[0]
    text = table(summaries, peaks, meta)
    if "memory" in raw:
        text += "\n\nmemory: 10,000 restarts of case a (2 threads): max RSS %.1f MB, %.1f s" % (
            raw["memory"]["maxrss_kb"] / 1024.0, raw["memory"]["seconds"])
    print(text)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "peaks": peaks, "summaries": summaries, "raw": raw}, f,
                  indent=1)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
