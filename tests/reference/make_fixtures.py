#!/usr/bin/python3
"""Reference fixtures for libbasin, computed with PyTorch (an independent implementation).

Writes one JSON file per family into fixtures/ beside this script:
  dense.json, losses.json, conv.json, teacher_student.json  -- network cases: outputs, risk,
      gradient and Hessian-vector product at a random parameter vector;
  optim.json  -- parameter trajectories of torch.optim over the first 5 full-batch steps.

Run with Debian's interpreter (torch 1.13 + numpy live there, not in the pyenv python):
    /usr/bin/python3 tests/reference/make_fixtures.py
Everything is float64 and seeded per case (from the case name), so re-running reproduces the
files byte for byte on the same torch build.

DESIGN
  * The network is built from the same layer JSON the REST API accepts; parameters are
    torch.cat([p.flatten() for p in model.parameters()]) -- weight then bias, layer by layer,
    which is the flat layout libbasin documents in net.h.
  * Losses follow core/src/loss.c: per-sample sums over the k outputs, risk = mean over samples.
    Huber is torch's HuberLoss(delta) summed per sample, logistic is BCEWithLogits, cross
    entropy uses class-index targets, hinge is max(0, 1 - (2y-1) o).
  * grad is autograd of the risk; hvp is autograd of (grad . v) (double backward), i.e. the
    exact Hessian of the piecewise-smooth risk on the current linear region.
  * The comparison is meaningless at kinks, where the two sides may pick different one-sided
    derivatives. So every sample is re-drawn until no activation input lies within KINK of 0,
    no max-pool window has its two largest entries within KINK of each other (windows that are
    all exactly 0 after a ReLU are allowed: every entry then has zero derivative), and the
    loss is at least KINK away from its own kinks (|r| = 0 absolute, |r| = delta Huber,
    margin = 0 hinge).
"""
import json
import os
import sys
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
torch.manual_seed(20240611)

KINK = 1e-3
MAX_REDRAWS = 500
HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "fixtures")


# ---------------------------------------------------------------- layers ----------------------

def act_slopes(spec):
    kind = spec["kind"]
    if kind == "relu":
        return 0.0, 1.0
    if kind == "leaky_relu":
        return spec["slope"], 1.0
    if kind == "pwl":
        return spec["s_neg"], spec["s_pos"]
    if kind == "identity":
        return 1.0, 1.0
    raise ValueError(kind)


def apply_act(spec, z):
    kind = spec["kind"]
    if kind == "relu":
        return torch.relu(z)
    if kind == "leaky_relu":
        return F.leaky_relu(z, spec["slope"])
    if kind == "pwl":
        return spec["s_pos"] * torch.relu(z) - spec["s_neg"] * torch.relu(-z)
    if kind == "identity":
        return z
    raise ValueError(kind)


class Net(nn.Module):
    """A torch model for one layer list; forward() can record kink-relevant inputs."""

    def __init__(self, input_shape, layers):
        super().__init__()
        self.specs = layers
        self.mods = nn.ModuleList()
        shape = list(input_shape)
        for spec in layers:
            t = spec["type"]
            mod = None
            if t == "dense":
                assert len(shape) == 1, "dense needs a flat input: add a flatten layer"
                mod = nn.Linear(shape[0], spec["units"], bias=spec["bias"])
                shape = [spec["units"]]
            elif t == "conv2d":
                c, h, w = shape
                k, s, p = spec["kernel"], spec["stride"], spec["padding"]
                if p == "valid":
                    total = 0
                elif p == "same":
                    assert s == 1
                    total = k - 1
                else:
                    total = 2 * p
                mod = nn.Conv2d(c, spec["filters"], k, stride=s, padding=p, bias=spec["bias"])
                shape = [spec["filters"], (h + total - k) // s + 1, (w + total - k) // s + 1]
            elif t in ("avgpool", "maxpool"):
                c, h, w = shape
                shape = [c, h // spec["size"], w // spec["size"]]
            elif t == "flatten":
                n = 1
                for d in shape:
                    n *= d
                shape = [n]
            elif t == "sum":
                shape = [1]
            elif t != "activation":
                raise ValueError(t)
            self.mods.append(mod if mod is not None else nn.Identity())
        self.out_shape = shape

    def forward(self, x, record=None):
        for spec, mod in zip(self.specs, self.mods):
            t = spec["type"]
            if t in ("dense", "conv2d"):
                x = mod(x)
            elif t == "activation":
                if record is not None:
                    record.append(("act", x.detach()))
                x = apply_act(spec, x)
            elif t == "avgpool":
                x = F.avg_pool2d(x, spec["size"])
            elif t == "maxpool":
                if record is not None:
                    record.append(("maxpool", x.detach(), spec["size"]))
                x = F.max_pool2d(x, spec["size"])
            elif t == "flatten":
                x = x.flatten(1)
            elif t == "sum":
                x = x.flatten(1).sum(1, keepdim=True)
        return x


def flat_params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def set_params(model, theta):
    off = 0
    with torch.no_grad():
        for p in model.parameters():
            n = p.numel()
            p.copy_(theta[off:off + n].view_as(p))
            off += n
    assert off == theta.numel()


def draw_params(model, gen, scale=1.0, bias_std=0.5):
    """He-scaled normal weights and visibly non-zero biases, so every term of the layout matters."""
    parts = []
    for p in model.parameters():
        if p.dim() >= 2:
            fan_in = p[0].numel()
            parts.append(torch.randn(p.numel(), generator=gen) * (2.0 / fan_in) ** 0.5 * scale)
        else:
            parts.append(torch.randn(p.numel(), generator=gen) * bias_std)
    theta = torch.cat(parts) if parts else torch.zeros(0)
    set_params(model, theta)
    return theta


# ---------------------------------------------------------------- losses ----------------------

def per_sample_loss(loss, o, y):
    kind = loss["kind"]
    if kind == "squared":
        return 0.5 * ((o - y) ** 2).sum(1)
    if kind == "absolute":
        return (o - y).abs().sum(1)
    if kind == "huber":
        return F.huber_loss(o, y, reduction="none", delta=loss["delta"]).sum(1)
    if kind == "logistic":
        return F.binary_cross_entropy_with_logits(o[:, 0], y[:, 0], reduction="none")
    if kind == "cross_entropy":
        return F.cross_entropy(o, y[:, 0].long(), reduction="none")
    if kind == "hinge":
        return torch.relu(1.0 - (2.0 * y[:, 0] - 1.0) * o[:, 0])
    raise ValueError(kind)


def draw_targets(loss, out_dim, m, gen, y_std=1.0):
    kind = loss["kind"]
    if kind in ("logistic", "hinge"):
        return torch.randint(0, 2, (m, 1), generator=gen).to(torch.float64)
    if kind == "cross_entropy":
        return torch.randint(0, out_dim, (m, 1), generator=gen).to(torch.float64)
    return torch.randn(m, out_dim, generator=gen) * y_std


def loss_kink_bad(loss, o, y):
    """Per-sample mask: the loss is within KINK of one of its kinks."""
    kind = loss["kind"]
    r = o - y if y.shape == o.shape else None
    if kind == "absolute":
        return (r.abs() <= KINK).any(1)
    if kind == "huber":
        return ((r.abs() - loss["delta"]).abs() <= KINK).any(1)
    if kind == "hinge":
        return (1.0 - (2.0 * y[:, 0] - 1.0) * o[:, 0]).abs() <= KINK
    return torch.zeros(o.shape[0], dtype=torch.bool)


def loss_batch_ok(loss, o, y):
    """The batch exercises both branches of a piecewise loss."""
    kind = loss["kind"]
    if kind == "huber":
        a = (o - y).abs()
        return bool((a < loss["delta"]).any() and (a > loss["delta"]).any())
    if kind == "hinge":
        margin = 1.0 - (2.0 * y[:, 0] - 1.0) * o[:, 0]
        return bool((margin > 0).any() and (margin < 0).any())
    if kind == "absolute":
        r = o - y
        return bool((r > 0).any() and (r < 0).any())
    return True


def net_kink_bad(model, x):
    """Per-sample mask: some activation input near 0 or some max-pool window near a tie."""
    rec = []
    with torch.no_grad():
        o = model(x, rec)
    bad = torch.zeros(x.shape[0], dtype=torch.bool)
    for item in rec:
        if item[0] == "act":
            bad |= (item[1].flatten(1).abs() <= KINK).any(1)
        else:
            z, s = item[1], item[2]
            m, c, h, w = z.shape
            z = z[:, :, : (h // s) * s, : (w // s) * s]
            win = F.unfold(z.reshape(m * c, 1, (h // s) * s, (w // s) * s), s, stride=s)
            top = win.topk(2, dim=1).values  # (m*c, 2, windows)
            gap = top[:, 0] - top[:, 1]
            all_zero = (top[:, 0] == 0) & (top[:, 1] == 0)
            near = (gap <= KINK) & ~all_zero
            bad |= near.reshape(m, -1).any(1)
    return bad, o


# ---------------------------------------------------------------- cases -----------------------

def seeded(name):
    return torch.Generator().manual_seed(zlib.crc32(name.encode()))


def make_case(name, input_shape, layers, loss, m, param_scale=1.0, y_std=1.0, teacher=None):
    gen = seeded(name)
    model = Net(input_shape, layers)
    assert len(model.out_shape) == 1
    out_dim = model.out_shape[0]
    in_dim = 1
    for d in input_shape:
        in_dim *= d
    theta = draw_params(model, gen, param_scale)
    v = torch.randn(theta.numel(), generator=gen)

    def targets(xs, k):
        if teacher is not None:
            with torch.no_grad():
                return torch.relu(xs @ teacher.T).sum(1, keepdim=True)
        return draw_targets(loss, out_dim, k, gen, y_std)

    for _ in range(MAX_REDRAWS):
        x = torch.randn(m, in_dim, generator=gen)
        y = targets(x, m)
        for _ in range(MAX_REDRAWS):
            bad, o = net_kink_bad(model, x.view(m, *input_shape))
            bad |= loss_kink_bad(loss, o, y)
            nb = int(bad.sum())
            if nb == 0:
                break
            x[bad] = torch.randn(nb, in_dim, generator=gen)
            y[bad] = targets(x[bad], nb)
        else:
            raise RuntimeError(name + ": could not avoid kinks")
        if loss_batch_ok(loss, o, y):
            break
    else:
        raise RuntimeError(name + ": batch never covers both loss branches")

    params = list(model.parameters())
    out = model(x.view(m, *input_shape))
    risk = per_sample_loss(loss, out, y).mean()
    grads = torch.autograd.grad(risk, params, create_graph=True)
    g = torch.cat([t.flatten() for t in grads])
    hv = torch.autograd.grad((g * v).sum(), params, allow_unused=True)
    hv = torch.cat([torch.zeros(p.numel()) if t is None else t.flatten()
                    for t, p in zip(hv, params)])
    return {
        "name": name,
        "input_shape": list(input_shape),
        "layers": layers,
        "loss": loss,
        "param_count": theta.numel(),
        "out_dim": out_dim,
        "x": x.tolist(),
        "y": y.tolist(),
        "params": theta.tolist(),
        "v": v.tolist(),
        "risk": risk.item(),
        "grad": g.detach().tolist(),
        "hvp": hv.detach().tolist(),
        "outputs": out.detach().tolist(),
    }


def dense(units, bias=True):
    return {"type": "dense", "units": units, "bias": bias}


def conv(filters, kernel, stride=1, padding="valid", bias=True):
    return {"type": "conv2d", "filters": filters, "kernel": kernel, "stride": stride,
            "padding": padding, "bias": bias}


def act(kind, **kw):
    d = {"type": "activation", "kind": kind}
    d.update(kw)
    return d


RELU = act("relu")
FLAT = {"type": "flatten"}
SQ = {"kind": "squared"}


def pool(kind, size):
    return {"type": kind, "size": size}


def dense_family():
    acts = [("relu", RELU), ("leaky", act("leaky_relu", slope=0.1)),
            ("pwl", act("pwl", s_neg=0.25, s_pos=2.0)),
            ("pwl_nonmonotone", act("pwl", s_neg=-0.5, s_pos=1.5)),
            ("identity", act("identity"))]
    cases = []
    for tag, a in acts:
        for bias in (True, False):
            name = "dense_%s_%s" % (tag, "bias" if bias else "nobias")
            cases.append(make_case(name, [3], [dense(5, bias), a, dense(1, bias)], SQ, 7))
    cases.append(make_case("linear_model", [3], [dense(1)], SQ, 5))
    cases.append(make_case("deep_dense_mixed", [4],
                           [dense(6), RELU, dense(5), act("leaky_relu", slope=0.2), dense(4),
                            act("pwl", s_neg=0.5, s_pos=1.5), dense(1)], SQ, 8))
    cases.append(make_case("deep_dense_relu_nobias", [3],
                           [dense(5, False), RELU, dense(5, False), RELU, dense(5, False), RELU,
                            dense(1, False)], SQ, 8))
    for kind in ("squared", "absolute", "huber"):
        loss = {"kind": kind}
        if kind == "huber":
            loss["delta"] = 0.5
        cases.append(make_case("vector_out_" + kind, [4], [dense(6), RELU, dense(3)], loss, 6))
    return cases


def loss_family():
    layers1 = [dense(5), RELU, dense(1)]
    cases = [
        make_case("loss_squared", [3], layers1, {"kind": "squared"}, 8),
        make_case("loss_absolute", [3], layers1, {"kind": "absolute"}, 8),
        make_case("loss_huber", [3], layers1, {"kind": "huber", "delta": 0.5}, 8),
        make_case("loss_logistic", [3], layers1, {"kind": "logistic"}, 8),
        make_case("loss_cross_entropy", [3], [dense(5), RELU, dense(3)],
                  {"kind": "cross_entropy"}, 8),
        make_case("loss_hinge", [3], layers1, {"kind": "hinge"}, 8),
        # Large logits: the stable softplus / log-sum-exp forms must still agree.
        make_case("loss_logistic_large_logits", [3], layers1, {"kind": "logistic"}, 8,
                  param_scale=6.0),
        make_case("loss_cross_entropy_large_logits", [3], [dense(5), RELU, dense(3)],
                  {"kind": "cross_entropy"}, 8, param_scale=6.0),
    ]
    return cases


def conv_family():
    leaky = act("leaky_relu", slope=0.1)
    C = make_case
    return [
        C("conv_s1_valid", [1, 6, 6], [conv(2, 3), RELU, FLAT, dense(1)], SQ, 4),
        C("conv_s1_same_multichannel", [2, 5, 5], [conv(3, 3, 1, "same"), leaky, FLAT, dense(1)],
          SQ, 4),
        C("conv_s1_same_even_kernel2", [2, 5, 5], [conv(2, 2, 1, "same"), RELU, FLAT, dense(1)],
          SQ, 4),
        C("conv_s1_same_even_kernel4_nobias", [1, 6, 6],
          [conv(2, 4, 1, "same", False), RELU, FLAT, dense(1)], SQ, 4),
        C("conv_s2_valid", [1, 7, 7], [conv(2, 3, 2), RELU, FLAT, dense(1)], SQ, 4),
        C("conv_s2_pad1_vector_out", [3, 6, 6], [conv(2, 3, 2, 1), RELU, FLAT, dense(2)], SQ, 4),
        C("conv_s3_pad2_nobias", [2, 7, 7],
          [conv(3, 3, 3, 2, False), act("pwl", s_neg=0.3, s_pos=1.2), FLAT, dense(1)], SQ, 4),
        C("conv_relu_avgpool_floor", [1, 8, 8],
          [conv(2, 2), RELU, pool("avgpool", 2), FLAT, dense(1)], SQ, 4),
        C("conv_relu_maxpool", [2, 6, 6],
          [conv(3, 3, 1, "same"), RELU, pool("maxpool", 2), FLAT, dense(1)], SQ, 4),
        C("conv_leaky_maxpool3_floor", [1, 8, 8],
          [conv(2, 2), leaky, pool("maxpool", 3), FLAT, dense(1)], SQ, 4),
        C("maxpool_on_input_odd", [2, 4, 5],
          [pool("maxpool", 2), FLAT, dense(3), RELU, dense(1)], SQ, 4),
        C("avgpool_on_input", [1, 5, 5], [pool("avgpool", 2), FLAT, dense(2)], SQ, 3),
        C("conv_identity_stack", [1, 6, 6],
          [conv(2, 3), act("identity"), conv(2, 2, 2, 1), FLAT, dense(1)], SQ, 3),
        C("cnn_paper_shape", [1, 10, 10],
          [conv(4, 3), RELU, pool("avgpool", 2), conv(4, 3), RELU, FLAT, dense(1)], SQ, 4),
        C("cnn_cross_entropy", [2, 8, 8],
          [conv(3, 3, 1, "same"), RELU, pool("maxpool", 2), conv(4, 3), leaky, FLAT, dense(3)],
          {"kind": "cross_entropy"}, 4),
        C("conv_logistic", [1, 5, 5], [conv(2, 3, 1, 1), RELU, FLAT, dense(1)],
          {"kind": "logistic"}, 4),
    ]


def teacher_family():
    cases = []
    for n, d, k, m in ((3, 4, 2, 10), (5, 2, 3, 8), (2, 6, 2, 12)):
        name = "student_n%d_d%d" % (n, d)
        teacher = torch.randn(k, d, generator=seeded(name + "_teacher"))
        cases.append(make_case(name, [d], [dense(n, False), RELU, {"type": "sum"}], SQ, m,
                               teacher=teacher))
    return cases


# ---------------------------------------------------------------- optimizers ------------------

OPTIMIZERS = [
    {"name": "sgd", "kind": "gd", "lr": 0.1},
    {"name": "momentum", "kind": "momentum", "lr": 0.1, "momentum": 0.9},
    {"name": "nesterov", "kind": "nesterov", "lr": 0.1, "momentum": 0.9},
    {"name": "adam", "kind": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    {"name": "sgd_steplr", "kind": "gd", "lr": 0.1,
     "schedule": {"kind": "step", "step_every": 2, "gamma": 0.5}},
]
STEPS = 5


def torch_optimizer(spec, params):
    k = spec["kind"]
    if k == "gd":
        return torch.optim.SGD(params, lr=spec["lr"])
    if k == "momentum":
        return torch.optim.SGD(params, lr=spec["lr"], momentum=spec["momentum"])
    if k == "nesterov":
        return torch.optim.SGD(params, lr=spec["lr"], momentum=spec["momentum"], nesterov=True)
    if k == "adam":
        return torch.optim.Adam(params, lr=spec["lr"], betas=(spec["beta1"], spec["beta2"]),
                                eps=spec["eps"])
    raise ValueError(k)


def run_trajectory(model, theta0, spec, loss, x, y):
    set_params(model, theta0)
    opt = torch_optimizer(spec, list(model.parameters()))
    sched = None
    if "schedule" in spec:
        s = spec["schedule"]
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=s["step_every"], gamma=s["gamma"])
    thetas, risks, bad = [], [], False
    for _ in range(STEPS):
        b, _ = net_kink_bad(model, x)
        bad |= bool(b.any())
        opt.zero_grad()
        risk = per_sample_loss(loss, model(x), y).mean()
        risk.backward()
        opt.step()
        if sched is not None:
            sched.step()
        risks.append(risk.item())
        thetas.append(flat_params(model).tolist())
    return thetas, risks, bad


def optim_case(name, input_shape, layers, loss, m):
    gen = seeded(name)
    model = Net(input_shape, layers)
    for _ in range(MAX_REDRAWS):
        theta0 = draw_params(model, gen)
        x = torch.randn(m, *input_shape, generator=gen)
        y = draw_targets(loss, model.out_shape[0], m, gen)
        runs, any_bad = [], False
        for spec in OPTIMIZERS:
            thetas, risks, bad = run_trajectory(model, theta0, spec, loss, x, y)
            any_bad |= bad
            runs.append(dict(spec, thetas=thetas, risks=risks))
        if not any_bad:
            break
    else:
        raise RuntimeError(name + ": trajectories keep meeting kinks")
    return {
        "name": name,
        "input_shape": list(input_shape),
        "layers": layers,
        "loss": loss,
        "param_count": theta0.numel(),
        "x": x.view(m, -1).tolist(),
        "y": y.tolist(),
        "params": theta0.tolist(),
        "steps": STEPS,
        "optimizers": runs,
    }


def optim_family():
    return [
        optim_case("optim_dense_2_3_1_squared", [2], [dense(3), RELU, dense(1)], SQ, 6),
        optim_case("optim_dense_3_4_1_logistic", [3],
                   [dense(4), act("leaky_relu", slope=0.1), dense(1)], {"kind": "logistic"}, 8),
    ]


# ---------------------------------------------------------------- output ----------------------

def write_family(family, cases):
    path = os.path.join(OUT_DIR, family + ".json")
    body = ",\n".join(json.dumps(c, separators=(",", ":")) for c in cases)
    with open(path, "w") as f:
        f.write('{"family":"%s","generator":"tests/reference/make_fixtures.py",'
                '"torch":"%s","cases":[\n%s\n]}\n' % (family, torch.__version__, body))
    print("%-20s %3d cases  %7d bytes" % (family + ".json", len(cases), os.path.getsize(path)))


def check_family(family):
    """Re-check a written fixture with central differences (no autograd involved)."""
    with open(os.path.join(OUT_DIR, family + ".json")) as f:
        cases = json.load(f)["cases"]
    worst = 0.0
    for c in cases:
        model = Net(c["input_shape"], c["layers"])
        x = torch.tensor(c["x"]).view(-1, *c["input_shape"])
        y = torch.tensor(c["y"])
        theta = torch.tensor(c["params"])
        v = torch.tensor(c["v"])

        def risk(t):
            set_params(model, t)
            with torch.no_grad():
                return per_sample_loss(c["loss"], model(x), y).mean().item()

        def grad(t):
            h, g = 1e-6, torch.zeros_like(t)
            for i in range(t.numel()):
                e = torch.zeros_like(t)
                e[i] = h
                g[i] = (risk(t + e) - risk(t - e)) / (2 * h)
            return g

        def autograd_grad(t):
            # First-order autograd only: checks the double-backward hvp independently.
            set_params(model, t)
            r = per_sample_loss(c["loss"], model(x), y).mean()
            return torch.cat([q.flatten() for q in torch.autograd.grad(r, model.parameters())])

        def rel(a, b):
            return float((a - b).norm() / max(float(b.norm()), 1e-12))

        h = 1e-5 / max(float(v.norm()), 1.0)
        fd_hvp = (autograd_grad(theta + h * v) - autograd_grad(theta - h * v)) / (2 * h)
        errs = (abs(risk(theta) - c["risk"]) / max(abs(c["risk"]), 1e-12),
                rel(grad(theta), torch.tensor(c["grad"])), rel(fd_hvp, torch.tensor(c["hvp"])))
        worst = max(worst, *errs)
        print("  %-36s risk %.1e grad %.1e hvp %.1e" % ((c["name"],) + errs))
    return worst


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    if "--check" in sys.argv:
        worst = max(check_family(f) for f in ("dense", "losses", "conv", "teacher_student"))
        print("worst finite-difference relative error %.1e" % worst)
        sys.exit(0 if worst < 1e-6 else 1)
    write_family("dense", dense_family())
    write_family("losses", loss_family())
    write_family("conv", conv_family())
    write_family("teacher_student", teacher_family())
    write_family("optim", optim_family())


if __name__ == "__main__":
    main()
