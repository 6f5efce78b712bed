#!/usr/bin/env python3
"""Run one of the paper cases (examples/paper_*.json) against a basinlab server and print what it
found: the trained runs' risk levels next to the constructed minima, each with its verdict and
its spurious flag (with the witness that beats it).

A case file holds a dataset and an architecture (stored once as records, so that every point below
has the same objective: dataset, architecture, loss), the rest of an experiment (trained from many
random starts), and a list of constructions (POST /v1/constructions bodies without the dataset;
"use_architecture": true adds the architecture's id, which linear_region_minimum needs and
group_fit uses to write its one-hidden-layer fit into the trained architecture).

    python3 examples/paper_run.py examples/paper_1d.json [--server http://127.0.0.1:8080]

Standard library only. Exit status 0 when every request was answered as expected (a construction
the server refuses with 422, e.g. an impossible partition, is reported, not an error)."""
import argparse
import collections
import json
import sys
import time
import urllib.error
import urllib.request


def call(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, method=method, data=data,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def must(status, body, want, what):
    if status != want:
        sys.exit(f"{what}: expected {want}, got {status}: {json.dumps(body)[:800]}")
    return body


def wait_finished(base, exp_id, poll=1.0):
    while True:
        _, e = call(base, "GET", f"/v1/experiments/{exp_id}")
        if e["status"] in ("finished", "cancelled"):
            return e
        p = e["progress"]
        print(f"  ... {p['finished'] + p['failed']}/{e['restarts']} runs done", file=sys.stderr)
        time.sleep(poll)


def all_runs(base, exp_id):
    runs, cursor = [], None
    while True:
        q = f"/v1/experiments/{exp_id}/runs?limit=1000&order=final_risk"
        if cursor:
            q += "&cursor=" + cursor
        _, page = call(base, "GET", q)
        runs += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return runs


def fmt(v):
    return "null" if v is None else f"{v:.6g}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("case")
    ap.add_argument("--server", default="http://127.0.0.1:8080")
    ap.add_argument("--json", help="also write everything the server answered to this file")
    a = ap.parse_args()
    case = json.load(open(a.case))
    base = a.server.rstrip("/")
    out = {"case": a.case}

    ds = must(*call(base, "POST", "/v1/datasets", case["dataset"]), 201, "dataset")
    ar = must(*call(base, "POST", "/v1/architectures", case["architecture"]), 201, "architecture")
    fit = (ds.get("linear_fit") or {}).get("loss", {}).get("squared", {})
    print(f"dataset {ds['id']}: n = {ds['n']}, task {ds['task']}, "
          f"R_lin (squared) = {fmt(fit.get('risk'))}")
    print(f"architecture {ar['id']}: {ar['param_count']} parameters")

    body = dict(case["experiment"], dataset_id=ds["id"], architecture_id=ar["id"])
    ex = must(*call(base, "POST", "/v1/experiments", body), 202, "experiment")
    print(f"experiment {ex['id']}: {ex['restarts']} restarts queued")

    points = []
    for c in case.get("constructions", []):
        body = {k: v for k, v in c.items() if k != "use_architecture"}
        body["dataset_id"] = ds["id"]
        if c.get("use_architecture"):
            body["architecture_id"] = ar["id"]
        t0 = time.time()
        status, res = call(base, "POST", "/v1/constructions", body)
        took = time.time() - t0
        desc = c["kind"] + "".join(f" {k}={json.dumps(c[k])}" for k in ("breakpoints", "groups")
                                   if k in c)
        if c.get("certify"):
            desc += " certify=" + json.dumps(c["certify"])
        if status == 201:
            points.append((desc, res))
            print(f"construction {desc}: run {res['run']['id']}, risk {fmt(res['run']['final_risk'])}, "
                  f"verdict {res['verdict']['label']} ({res['verdict']['decided_by']}), {took:.2f} s")
        else:
            must(status, res, 422, desc)
            points.append((desc, {"refused": res}))
            for e in res.get("errors", []):
                print(f"construction {desc}: refused (422) at {e['pointer']}: {e['message']}")

    e = wait_finished(base, ex["id"])
    runs = all_runs(base, ex["id"])
    s = e["summary"]
    print(f"\ntrained runs ({len(runs)}): best risk {fmt(s['best_risk'])}; stop reasons "
          f"{s['stop_reasons']}; verdicts {s['verdicts']}")
    # the minima (by verdict; before verdicts exist: runs stopped at the gradient tolerance),
    # grouped by risk level, then what the other runs were
    def minimum(r):
        if r["verdict_label"]:
            return r["verdict_label"] in ("certified_minimum", "likely_minimum")
        return r["stop_reason"] == "grad_tol"
    levels = collections.OrderedDict()
    for r in runs:
        if r["final_risk"] is None or not minimum(r):
            continue
        key = float(f"{r['final_risk']:.4g}")
        lv = levels.setdefault(key, collections.Counter())
        lv["runs"] += 1
        lv[r["verdict_label"] or "stationary"] += 1
        lv["spurious"] += bool((r.get("spurious") or {}).get("flag"))
    print("  minima by risk level (4 digits)   runs   verdicts                        spurious")
    for risk, lv in levels.items():
        kinds = ", ".join(f"{k} {v}" for k, v in lv.items() if k not in ("runs", "spurious"))
        print(f"  {risk:<32.6g} {lv['runs']:>5}   {kinds:<32} {lv['spurious']:>5}")
    others = collections.Counter(r["verdict_label"] or r["stop_reason"] or r["status"]
                                 for r in runs if not minimum(r))
    print(f"  other runs: {dict(others) or 'none'}")
    print(f"  spurious: {s.get('spurious_count')} of {s.get('minima_count')} minima "
          f"(basis {s.get('spurious_basis')}), share of runs {fmt(s.get('spurious_share'))}, "
          f"95% CI {s.get('spurious_share_ci')}")
    best = s.get("objective_best") or {}
    print(f"  best point of the objective: risk {fmt(best.get('risk'))}, run {best.get('run_id')}")

    print("\nconstructed points, judged against every point of the objective:")
    for desc, res in points:
        if "refused" in res:
            print(f"  {desc}: refused")
            continue
        _, run = call(base, "GET", f"/v1/runs/{res['run']['id']}")
        sp = run.get("spurious") or {}
        verdict = f"{run['verdict_label']}"
        flag = sp.get("flag")
        tail = (f"spurious, witness {sp.get('witness_run_id')} (gap {fmt(sp.get('gap'))})"
                if flag else ("global" if sp.get("global") else f"not spurious (flag {flag})"))
        print(f"  {desc}: risk {fmt(run['final_risk'])}, {verdict}, {tail}")
        res["run_now"] = run
    _, basins = call(base, "GET", f"/v1/experiments/{ex['id']}/basins")
    if isinstance(basins, dict) and "basins" in basins:
        print(f"\nbasins of the trained runs: {basins.get('basin_count')} "
              f"(first 10: risk, share, spurious)")
        for b in basins["basins"][:10]:
            print(f"  {fmt(b.get('risk'))}  {fmt(b.get('share'))}  {b.get('spurious')}")
    if a.json:
        out.update(dataset=ds, architecture=ar, experiment=e, runs=runs, basins=basins,
                   constructions=[{"what": d, "answer": r} for d, r in points])
        json.dump(out, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
