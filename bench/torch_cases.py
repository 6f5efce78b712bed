#!/usr/bin/python3
"""The PyTorch side of the basinlab benchmark (bench/README.md).

Each case does the same work as `basinbench run` on the same data files (written by
`basinbench gen`), the way a competent PyTorch user would write it: a plain nn.Module +
torch.optim.SGD loop, and for the many-restarts cases also a vectorised variant whose restarts
are one batch of weights multiplied with torch.bmm / baddbmm. Losses follow basinlab's
conventions (squared = ½Σ(o−y)² per sample, mean over samples; cross entropy = torch's mean).

Prints one JSON object: the case, the measured in-process time and the figure of merit
(restarts/s or seconds per step). Run with Debian's /usr/bin/python3 (python3-torch).
"""
import argparse
import json
import math
import os
import sys
import time

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # run.py reports the PyTorch side as skipped
    print("torch_cases.py: cannot import PyTorch (%s)" % e, file=sys.stderr)
    sys.exit(3)


def load(data_dir, name):
    with open(os.path.join(data_dir, name + ".json")) as f:
        meta = json.load(f)
    raw = np.fromfile(os.path.join(data_dir, name + ".bin"), dtype="<f8")
    n, d, yd = meta["n"], meta["in_dim"], meta["y_dim"]
    assert raw.size == n * (d + yd), "data file size does not match its header"
    x = raw[: n * d].reshape([n] + meta["in_shape"])
    y = raw[n * d:].reshape(n, yd)
    return meta, x, y


def mlp(widths, dtype):
    layers = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i + 2 < len(widths):
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers).to(dtype)
    he_init(model)
    return model


def cnn(dtype):
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(4),
        nn.Flatten(), nn.Linear(16, 1)).to(dtype)
    he_init(model)
    return model


def he_init(model):
    """He-normal weights (fan_in), zero biases: basinlab's default init."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)


def squared(out, y):
    return 0.5 * (out - y).pow(2).sum(dim=1).mean()


def sync_start(args):
    """With --barrier DIR (run.py's multi-process runs): announce readiness, then wait until
    run.py says go, so that the timed loops of all processes overlap."""
    if not args.barrier:
        return
    with open(os.path.join(args.barrier, "ready.%d" % args.rank), "w"):
        pass
    go = os.path.join(args.barrier, "go")
    deadline = time.monotonic() + 600
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            raise RuntimeError("barrier: no go from run.py")
        time.sleep(0.0005)


def train_steps(model, x, y, loss_fn, lr, steps):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    return float(loss.detach())


def time_per_step(args, model, x, y, loss_fn):
    train_steps(model, x, y, loss_fn, args.lr, args.warmup)
    sync_start(args)
    t0 = time.perf_counter()
    last = train_steps(model, x, y, loss_fn, args.lr, args.steps)
    dt = time.perf_counter() - t0
    return {"seconds": dt, "steps": args.steps, "value": dt / args.steps, "unit": "s/step",
            "final_loss": last}


# ---- case a: many restarts of a tiny MLP ----

def case_a_plain(args, x, y):
    widths = [2, 16, 16, 1]
    model = mlp(widths, args.dtype)  # warm-up: first-call overheads out of the timing
    train_steps(model, x, y, squared, args.lr, 20)
    sync_start(args)
    t0 = time.perf_counter()
    for _ in range(args.restarts):
        model = mlp(widths, args.dtype)
        last = train_steps(model, x, y, squared, args.lr, args.steps)
    dt = time.perf_counter() - t0
    return {"seconds": dt, "restarts": args.restarts, "steps": args.steps,
            "value": args.restarts / dt, "unit": "restarts/s", "final_loss": last}


def bmm_params(widths, r, dtype):
    """Batched weights [r, out, in] and biases [r, out, 1], He-normal / zero."""
    ps = []
    for i in range(len(widths) - 1):
        w = torch.randn(r, widths[i + 1], widths[i], dtype=dtype) * math.sqrt(2.0 / widths[i])
        b = torch.zeros(r, widths[i + 1], 1, dtype=dtype)
        ps += [w.requires_grad_(), b.requires_grad_()]
    return ps


def bmm_forward(ps, xt):
    """xt: [r, in, N] (an expanded view). Features × samples, so every layer is one baddbmm."""
    h = xt
    n_layers = len(ps) // 2
    for i in range(n_layers):
        h = torch.baddbmm(ps[2 * i + 1], ps[2 * i], h)
        if i + 1 < n_layers:
            h = torch.relu(h)
    return h


def case_a_bmm(args, x, y):
    widths = [2, 16, 16, 1]
    r = args.chunk
    xt = x.t().unsqueeze(0).expand(r, -1, -1)
    yt = y.t().unsqueeze(0)

    def run(steps):
        ps = bmm_params(widths, r, args.dtype)
        opt = torch.optim.SGD(ps, lr=args.lr)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            out = bmm_forward(ps, xt)
            # Σ over restarts of each restart's mean loss: restarts stay independent.
            loss = 0.5 * (out - yt).pow(2).sum(dim=1).mean(dim=1).sum()
            loss.backward()
            opt.step()
        return float(loss.detach()) / r

    run(20)
    groups = max(1, args.restarts // r)
    sync_start(args)
    t0 = time.perf_counter()
    for _ in range(groups):
        last = run(args.steps)
    dt = time.perf_counter() - t0
    return {"seconds": dt, "restarts": groups * r, "chunk": r, "steps": args.steps,
            "value": groups * r / dt, "unit": "restarts/s", "final_loss": last}


# ---- case e: the Gaussian teacher–student closed form ----

def teacher_risk(w, v, vv_const):
    """F(W) = ½ΣΣκ(w_i,w_l) − ΣΣκ(w_i,v_j) + const, κ by the arc-cosine kernel; the angle by
    Kahan's 2·atan2(‖û−v̂‖, ‖û+v̂‖) (stable near 0 and π, unlike acos)."""
    n = w.shape[0]
    wn = torch.linalg.vector_norm(w, dim=1)
    vn = torch.linalg.vector_norm(v, dim=1)
    wu = w / wn[:, None]
    vu = v / vn[:, None]

    def kappa(au, an, bu, bn):  # pairs of rows: au[p] with bu[p]
        diff = torch.linalg.vector_norm(au - bu, dim=-1)
        summ = torch.linalg.vector_norm(au + bu, dim=-1)
        th = 2.0 * torch.atan2(diff, summ)
        return an * bn * (torch.sin(th) + (math.pi - th) * torch.cos(th)) / (2.0 * math.pi)

    i, l = torch.triu_indices(n, n, 1)
    kww = kappa(wu[i], wn[i], wu[l], wn[l]).sum()  # i < l; κ(w,w) = ‖w‖²/2 on the diagonal
    kwv = kappa(wu[:, None, :], wn[:, None], vu[None, :, :], vn[None, :]).sum()
    return 0.5 * (wn.pow(2).sum() * 0.5 + 2.0 * kww) - kwv + vv_const


def case_e(args, data_dir):
    with open(os.path.join(data_dir, "case_e.json")) as f:
        meta = json.load(f)
    n, k, d = meta["n"], meta["k"], meta["d"]
    starts = np.fromfile(os.path.join(data_dir, "case_e.bin"), dtype="<f8")
    starts = starts.reshape(meta["restarts"], n, d)
    v = torch.eye(k, d, dtype=args.dtype)
    vv_const = 0.5 * (k * 0.5 + k * (k - 1) / (2.0 * math.pi))  # ½ Σ_ij κ(e_i, e_j)
    restarts = min(args.restarts, starts.shape[0])
    steps_total = 0
    converged = 0
    sync_start(args)
    t0 = time.perf_counter()
    for r in range(restarts):
        w = torch.tensor(starts[r], dtype=args.dtype, requires_grad=True)
        opt = torch.optim.SGD([w], lr=args.lr)
        for step in range(args.max_steps + 1):
            opt.zero_grad(set_to_none=True)
            loss = teacher_risk(w, v, vv_const)
            loss.backward()
            if float(torch.linalg.vector_norm(w.grad)) <= args.grad_tol:
                converged += 1
                break
            if step == args.max_steps:
                break
            opt.step()
        steps_total += step
    dt = time.perf_counter() - t0
    return {"seconds": dt, "restarts": restarts, "steps_total": steps_total,
            "converged": converged, "value": restarts / dt, "unit": "restarts/s",
            "final_loss": float(loss.detach())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", required=True, choices=list("abcde"))
    ap.add_argument("--variant", default="plain", choices=["plain", "bmm"])
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", required=True, help="directory written by `basinbench gen`")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--restarts", type=int, default=4)
    ap.add_argument("--chunk", type=int, default=64, help="bmm: restarts per batch")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--max-steps", type=int, default=100000)
    ap.add_argument("--grad-tol", type=float, default=1e-9)
    ap.add_argument("--barrier", help="directory for run.py's start barrier")
    ap.add_argument("--rank", type=int, default=0)
    args = ap.parse_args()
    args.dtype = getattr(torch, args.dtype)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    if args.case == "e":
        res = case_e(args, args.data)
    else:
        meta, xn, yn = load(args.data, "case_" + args.case)
        x = torch.tensor(xn, dtype=args.dtype)
        y = torch.tensor(yn, dtype=args.dtype)
        if args.case == "a":
            res = case_a_bmm(args, x, y) if args.variant == "bmm" else case_a_plain(args, x, y)
        elif args.case == "b":
            res = time_per_step(args, mlp([2, 64, 64, 64, 1], args.dtype), x, y, squared)
        elif args.case == "c":
            labels = y[:, 0].long()
            res = time_per_step(args, mlp([784, 256, 256, 10], args.dtype), x, labels,
                                F.cross_entropy)
        else:
            res = time_per_step(args, cnn(args.dtype), x, y, squared)
    res.update({"side": "torch", "case": args.case, "variant": args.variant,
                "dtype": str(args.dtype).replace("torch.", ""), "threads": args.threads,
                "torch": torch.__version__})
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
