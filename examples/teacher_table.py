#!/usr/bin/env python3
"""The teacher-student table of docs/paper.md, measured through a basinlab server.

For k = n = 6..12 it submits examples/teacher_student_kNN.json (300 restarts of plain gradient
descent on the closed-form population risk F of a 2-layer ReLU student with n units against an
identity teacher with k units, x ~ N(0, I_k)), waits, and reads back every run. A run counts as a
*spurious minimum* exactly when the server flags it (spurious.h): its verdict is a minimum
(certified_minimum / likely_minimum; the worker judges teacher runs from the closed-form Hessian,
verdict.h) -- or, on a server without verdicts, it stopped at the gradient tolerance -- and its F
is above the best point of the objective (F = 0 is reached) by more than 1e-6 max(1, F). The share and its Wilson 95% interval are the server's.

Independent checks, in plain Python from the closed form of science.md (no code shared with the
server): F and its gradient at every flagged run's stored end point (GET /v1/runs/{id}/params)
must agree with the stored final_risk and be stationary; the Hessian (central differences of the
analytic gradient) is tested for positive definiteness with Cholesky of H - tau I and H + tau I,
tau = 1e-6 max|H_ij|: "strict minimum" when H - tau I is positive definite, "saddle" when not even
H + tau I is. The second-order check runs on at most --check flagged runs per k (all distinct
risk levels first).

    python3 examples/teacher_table.py [--server http://127.0.0.1:8080] [--ks 6-12] [--check 40]
                                      [--markdown table.md] [--json raw.json]

Standard library only."""
import argparse
import collections
import json
import math
import os
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def call(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, method=method, data=data,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


# ---- the closed form (Safran & Shamir 2018; science.md), written out independently ----

def kappa(u, v):
    nu = math.sqrt(sum(a * a for a in u))
    nv = math.sqrt(sum(a * a for a in v))
    if nu == 0 or nv == 0:
        return 0.0
    c = max(-1.0, min(1.0, sum(a * b for a, b in zip(u, v)) / (nu * nv)))
    t = math.acos(c)
    return nu * nv * (math.sin(t) + (math.pi - t) * c) / (2 * math.pi)


def gfun(w, v):
    """d kappa(w, v) / dw = (|v| sin t wbar + (pi - t) v) / (2 pi)."""
    nw = math.sqrt(sum(a * a for a in w))
    nv = math.sqrt(sum(a * a for a in v))
    if nw == 0 or nv == 0:
        return [0.0] * len(w)
    c = max(-1.0, min(1.0, sum(a * b for a, b in zip(w, v)) / (nw * nv)))
    t = math.acos(c)
    return [(nv * math.sin(t) * a / nw + (math.pi - t) * b) / (2 * math.pi) for a, b in zip(w, v)]


def risk(W, V):
    s = 0.5 * sum(kappa(a, b) for a in W for b in W)
    s -= sum(kappa(a, b) for a in W for b in V)
    s += 0.5 * sum(kappa(a, b) for a in V for b in V)
    return s


def grad(W, V):
    out = []
    for i, w in enumerate(W):
        g = [0.5 * a for a in w]
        for j, u in enumerate(W):
            if j != i:
                g = [x + y for x, y in zip(g, gfun(w, u))]
        for v in V:
            g = [x - y for x, y in zip(g, gfun(w, v))]
        out.extend(g)
    return out


def rows(theta, n, d):
    return [theta[i * d:(i + 1) * d] for i in range(n)]


def hessian(theta, n, d, V):
    p = len(theta)
    h = 1e-5
    H = [[0.0] * p for _ in range(p)]
    for c in range(p):
        tp = list(theta)
        tm = list(theta)
        tp[c] += h
        tm[c] -= h
        gp = grad(rows(tp, n, d), V)
        gm = grad(rows(tm, n, d), V)
        for r in range(p):
            H[r][c] = (gp[r] - gm[r]) / (2 * h)
    return [[0.5 * (H[r][c] + H[c][r]) for c in range(p)] for r in range(p)]


def positive_definite(H, shift):
    p = len(H)
    L = [[0.0] * p for _ in range(p)]
    for i in range(p):
        for j in range(i + 1):
            s = H[i][j] - (shift if i == j else 0.0) - sum(L[i][k] * L[j][k] for k in range(j))
            if i == j:
                if s <= 0:
                    return False
                L[i][i] = math.sqrt(s)
            else:
                L[i][j] = s / L[j][j]
    return True


# ---- the measurement ----

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


def ks_arg(text):
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in text.split(",")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", default="http://127.0.0.1:8080")
    ap.add_argument("--ks", type=ks_arg, default=list(range(6, 13)))
    ap.add_argument("--check", type=int, default=40, help="second-order checks per k")
    ap.add_argument("--markdown", help="write the table here")
    ap.add_argument("--json", help="write the raw answers here")
    a = ap.parse_args()
    base = a.server.rstrip("/")

    exps = {}
    for k in a.ks:
        spec = json.load(open(os.path.join(HERE, f"teacher_student_k{k:02d}.json")))
        status, e = call(base, "POST", "/v1/experiments", spec)
        if status != 202:
            sys.exit(f"k={k}: {status} {e}")
        exps[k] = (spec, e["id"])
        print(f"k = n = {k}: experiment {e['id']} ({spec['restarts']} restarts)", file=sys.stderr)
    t0 = time.time()
    pending = set(a.ks)
    while pending:
        for k in sorted(pending):
            _, e = call(base, "GET", f"/v1/experiments/{exps[k][1]}")
            if e["status"] in ("finished", "cancelled"):
                pending.discard(k)
                print(f"k = {k} done after {time.time() - t0:.0f} s", file=sys.stderr)
        time.sleep(2)

    table, raw = [], {}
    for k in a.ks:
        spec, exp_id = exps[k]
        _, e = call(base, "GET", f"/v1/experiments/{exp_id}")
        runs = all_runs(base, exp_id)
        s = e["summary"]
        flagged = [r for r in runs if (r.get("spurious") or {}).get("flag")]
        conv = sum(r["stop_reason"] == "grad_tol" for r in runs)
        glob = sum((r.get("spurious") or {}).get("global") is True for r in runs)
        levels = sorted({float(f"{r['final_risk']:.6g}") for r in flagged})
        steps = sorted(r["steps"] for r in runs if r["steps"] is not None)
        # independent checks
        V = [[1.0 if i == j else 0.0 for j in range(k)] for i in range(k)]
        order, seen = [], set()
        for r in flagged:  # one per level first, then the rest
            lv = float(f"{r['final_risk']:.6g}")
            if lv not in seen:
                seen.add(lv)
                order.append(r)
        order += [r for r in flagged if r not in order]
        checked = strict = saddle = 0
        max_risk_diff = max_grad = 0.0
        for r in order[:a.check]:
            _, p = call(base, "GET", f"/v1/runs/{r['id']}/params")
            theta = p["params"]
            W = rows(theta, k, k)
            F = risk(W, V)
            g = grad(W, V)
            max_risk_diff = max(max_risk_diff, abs(F - r["final_risk"]))
            max_grad = max(max_grad, math.sqrt(sum(x * x for x in g)))
            H = hessian(theta, k, k, V)
            tau = 1e-6 * max(abs(x) for row in H for x in row)
            checked += 1
            if positive_definite(H, tau):
                strict += 1
            elif not positive_definite(H, -tau):
                saddle += 1
        row = {
            "k": k, "experiment": exp_id, "restarts": len(runs), "converged": conv,
            "global": glob, "spurious": len(flagged), "server_spurious": s.get("spurious_count"),
            "share": s.get("spurious_share"), "ci": s.get("spurious_share_ci"),
            "levels": len(levels), "lowest_spurious": levels[0] if levels else None,
            "median_steps": steps[len(steps) // 2] if steps else None,
            "checked": checked, "strict": strict, "saddle": saddle,
            "basis": s.get("spurious_basis"), "labels": s.get("label_counts"),
            "flagged_labels": dict(collections.Counter(r["verdict_label"] for r in flagged)),
            "max_risk_diff": max_risk_diff, "max_grad": max_grad,
        }
        table.append(row)
        raw[k] = {"experiment": e, "runs": runs}
        print(json.dumps(row), file=sys.stderr)

    head = ("| k = n | restarts | stopped at ‖∇F‖ ≤ 1e-9 | reached F = 0 | spurious minima | share "
            "(95% CI) | distinct spurious F | lowest spurious F | second-order check "
            "(strict min / checked) |\n|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in table:
        ci = r["ci"] or [float("nan"), float("nan")]
        lines.append(f"| {r['k']} | {r['restarts']} | {r['converged']} | {r['global']} | "
                     f"{r['spurious']} | {100 * (r['share'] or 0):.1f}% "
                     f"({100 * ci[0]:.1f}–{100 * ci[1]:.1f}%) | {r['levels']} | "
                     f"{r['lowest_spurious'] if r['lowest_spurious'] is not None else '–'} | "
                     f"{r['strict']} / {r['checked']} |")
    text = head + "\n".join(lines) + "\n"
    print(text)
    worst = max((r["max_risk_diff"] for r in table), default=0)
    gmax = max((r["max_grad"] for r in table), default=0)
    print(f"independent check: |F_python - final_risk| <= {worst:.2e}, "
          f"|grad F_python| <= {gmax:.2e} at the checked points")
    for r in table:
        print(f"k = {r['k']}: spurious basis {r['basis']}, verdicts of all runs {r['labels']}, "
              f"of the spurious ones {r['flagged_labels']}")
    if a.markdown:
        open(a.markdown, "w").write(text)
    if a.json:
        json.dump({"table": table, "raw": raw}, open(a.json, "w"))


if __name__ == "__main__":
    main()
