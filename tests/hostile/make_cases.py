#!/usr/bin/env python3
"""Writes tests/hostile/cases.jsonl: the hostile-request corpus that tests/unit/test_hostile.c
replays over real HTTP against `basinlab serve`.

The expectations come from the API's documented contract (api/openapi.yaml and
/work/shared/design/api.md: 400 malformed JSON or query, 404 unknown path or id, 405 with Allow,
409 state conflict, 413 too large, 415 wrong media type, 422 valid JSON but an invalid spec, each
as application/problem+json whose `errors[].pointer` names the offending field), never from
running the server. Run this script after editing it and commit both files.

One JSON object per line, replayed in order:
  id        unique name (also what a failure report prints)
  method    request method (sent as is)
  path      request target as sent on the wire, query included (UTF-8 text); path_b64 when the
            target holds bytes that are not UTF-8
  headers   [[name, value], ...] sent in order (duplicates allowed); a value {"b64": ...} is
            bytes; Content-Length is added by the replayer unless the case sets it or sets
            "chunked": true (the body then goes out in chunked transfer coding)
  no_body   the case's own Content-Length announces a body that is never sent
  body      UTF-8 text; body_b64 for arbitrary bytes; body_gen [[text, count], ...] for bodies
            too large to store: each text repeated count times, in order
  raw_b64   the whole request, bytes as sent (for malformed request lines and headers);
            raw_gen [[base64, count], ...] the same built from repeated pieces
  slow      {"interval_ms", "chunk"}: the body is sent `chunk` bytes at a time, one chunk per
            interval; meanwhile other clients must be answered promptly
  timeout_ms  the answer must arrive within this time (default 30 s)
  expect    {"status": N (or "status_class": 4 for any 4xx, or "status_in": [N, ...]),
             "problem": true when the answer must be problem+json (default: true for 4xx),
             "pointer": a JSON Pointer that must appear in errors[].pointer,
             "pointer_prefix": some errors[].pointer must start with this,
             "detail_contains": text the problem's detail must contain (a query parameter),
             "header": {name: substring the response header must contain},
             "header_not": {name: substring the response header must not contain},
             "items": N — a 200 list answer must have N items,
             "json": {JSON Pointer: value} — members of a JSON answer}
  capture   {name: JSON Pointer into the answer} — later cases use ${name} in path, headers or
            body; captured ids of created records feed the final "nothing half-written" check
  creates   "datasets" | "architectures" | "experiments" — a valid request that must create
            exactly one record (an experiment with inline objects also creates its dataset and
            architecture records, named by its answer)
"""
import base64
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
cases = []
ids = set()

JSON = [["Content-Type", "application/json"]]
CSV = [["Content-Type", "text/csv"]]


def add(cid, method, path, expect, body=None, headers=None, **extra):
    assert cid not in ids, cid
    ids.add(cid)
    c = {"id": cid, "method": method, "path": path}
    if headers is None:
        headers = JSON if body is not None or "body_gen" in extra else []
    c["headers"] = headers
    if body is not None:
        if isinstance(body, bytes):
            c["body_b64"] = base64.b64encode(body).decode()
        elif isinstance(body, str):
            c["body"] = body
        else:
            c["body"] = json.dumps(body, ensure_ascii=False)
    c["expect"] = expect
    c.update(extra)
    cases.append(c)


def e(status=0, pointer=None, **kw):
    x = {"status": status}
    if pointer is not None:
        x["pointer"] = pointer
    x.update(kw)
    return x


# ---- building blocks of valid bodies ----
MLP = {"input_shape": [2], "layers": [{"type": "dense", "units": 4},
                                      {"type": "activation", "kind": "relu"},
                                      {"type": "dense", "units": 1}]}
XOR = {"kind": "generator", "generator": {"name": "xor", "n": 16, "noise": 0.05, "seed": 1}}
SMALL_EXP = {"dataset": XOR, "architecture": MLP, "loss": "squared",
             "optimizer": {"kind": "gd", "lr": 0.05}, "restarts": 2, "seed": 3, "max_steps": 50}


def with_(base, **kw):
    d = json.loads(json.dumps(base))
    for k, v in kw.items():
        if v is DEL:
            d.pop(k, None)
        else:
            d[k] = v
    return d


DEL = object()


def layer(**kw):
    return kw


def arch_with_layer(lay, shape=None):
    return {"input_shape": shape or [2], "layers": [lay, {"type": "dense", "units": 1}]}


# =========================================================================================
# 1. Records the rest of the corpus refers to (valid requests; each creates exactly one record)
# =========================================================================================
add("setup-dataset", "POST", "/v1/datasets", e(201), body=with_(XOR, name="setup"),
    capture={"ds1": "/id"}, creates="datasets")
add("setup-architecture", "POST", "/v1/architectures", e(201), body=with_(MLP, name="setup"),
    capture={"ar1": "/id"}, creates="architectures")
add("setup-experiment", "POST", "/v1/experiments", e(202, header={"Location": "/v1/experiments/"}),
    body={"dataset_id": "${ds1}", "architecture_id": "${ar1}", "restarts": 2, "max_steps": 20},
    headers=JSON + [["Idempotency-Key", "hostile-key-1"]],
    capture={"ex1": "/id"}, creates="experiments")
# SQL metacharacters in names are data: stored and echoed verbatim
SQL_NAMES = ["'; DROP TABLE datasets; --", "\" OR \"1\"=\"1", "x' OR 1=1 --", "/* */ UNION SELECT *",
             "Robert'); DELETE FROM experiments;--", "%' ; --"]
for i, n in enumerate(SQL_NAMES):
    add(f"sql-name-dataset-{i}", "POST", "/v1/datasets", e(201, json={"/name": n}),
        body=with_(XOR, name=n), creates="datasets")
for i, n in enumerate(SQL_NAMES[:3]):
    add(f"sql-name-architecture-{i}", "POST", "/v1/architectures", e(201, json={"/name": n}),
        body=with_(MLP, name=n), creates="architectures")
add("csv-valid-bom-at-start", "POST", "/v1/datasets?name=bom", e(201, json={"/n": 2}),
    body=b"\xef\xbb\xbfx1,x2,y\n1,2,0\n3,4,1\n", headers=CSV, creates="datasets")
add("unicode-name-roundtrip", "POST", "/v1/architectures", e(201, json={"/name": "réseau ∑ 🧠"}),
    body=with_(MLP, name="réseau ∑ 🧠"), creates="architectures")

# =========================================================================================
# 2. Broken JSON → 400, pointer "" (the whole body)
# =========================================================================================
BROKEN = {
    "truncated-object": '{"input_shape": [2], "layers": [',
    "truncated-string": '{"name": "abc',
    "trailing-comma": '{"input_shape": [2],}',
    "single-quotes": "{'input_shape': [2]}",
    "unquoted-key": '{input_shape: [2]}',
    "trailing-garbage": '{"input_shape": [2]} x',
    "two-documents": '{} {}',
    "nan-literal": '{"input_shape": [NaN]}',
    "infinity-literal": '{"input_shape": [Infinity]}',
    "minus-infinity": '{"input_shape": [-Infinity]}',
    "hex-number": '{"input_shape": [0x10]}',
    "leading-zero": '{"input_shape": [02]}',
    "plus-sign": '{"input_shape": [+2]}',
    "bare-dot": '{"input_shape": [.5]}',
    "overflow-real-1e400": '{"input_shape": [1e400]}',
    "overflow-neg-real": '{"input_shape": [-1e400]}',
    "overflow-integer": '{"input_shape": [99999999999999999999999]}',
    "int64-plus-one": '{"input_shape": [9223372036854775808]}',
    "comment": '{"input_shape": [2] /* c */}',
    "line-comment": '{"input_shape": [2]} // c',
    "bad-escape": '{"name": "\\x41"}',
    "bad-unicode-escape": '{"name": "\\uZZZZ"}',
    "lone-surrogate-escape": '{"name": "\\ud800"}',
    "nul-escape": '{"name": "a\\u0000b"}',
    "control-char-in-string": '{"name": "a\tb"}',
    "only-whitespace": '   \n\t ',
    "top-level-null": 'null',
    "top-level-number": '42',
    "top-level-string": '"x"',
    "top-level-true": 'true',
    "empty-array-close": ']',
    "unbalanced": '{"a": [1, 2}',
    "colon-missing": '{"a" 1}',
    "true-typo": '{"a": tru}',
}
for name, text in BROKEN.items():
    add(f"json-{name}", "POST", "/v1/architectures", e(400, ""), body=text)
BROKEN_BYTES = {
    "invalid-utf8-in-string": b'{"name": "\xff\xfe"}',
    "overlong-utf8": b'{"name": "\xc0\xaf"}',
    "utf8-surrogate-bytes": b'{"name": "\xed\xa0\x80"}',
    "truncated-utf8": b'{"name": "\xe2\x82"}',
    "raw-nul-byte": b'{"name": "a\x00b", "input_shape": [2]}',
    "nul-after-document": b'{"input_shape": [2]}\x00',
    "bom-before-document": b'\xef\xbb\xbf{"input_shape": [2]}',
    "utf16-body": '{"input_shape": [2]}'.encode("utf-16"),
    "latin1-key": b'{"caf\xe9": 1}',
    "bad-escape-before-multibyte": '{"name": "\\é"}'.encode(),
    "bad-escape-before-emoji": '{"name": "\\🧠"}'.encode(),
    "invalid-token-multibyte": '{"name": ünquoted}'.encode(),
}
for name, raw in BROKEN_BYTES.items():
    add(f"json-{name}", "POST", "/v1/architectures", e(400, ""), body=raw)
# the same malformations reach every JSON endpoint
for name in ["truncated-object", "nan-literal", "overflow-real-1e400"]:
    add(f"json-{name}-datasets", "POST", "/v1/datasets", e(400, ""), body=BROKEN[name])
    add(f"json-{name}-experiments", "POST", "/v1/experiments", e(400, ""), body=BROKEN[name])
add("json-bad-escape-multibyte-experiments", "POST", "/v1/experiments", e(400, ""),
    body='{"dataset_id": "\\ü"}'.encode())

# duplicate keys (the parser rejects them rather than silently keeping one)
DUPS = {
    "architectures": '{"input_shape": [2], "input_shape": [3], "layers": [{"type": "dense", "units": 1}]}',
    "datasets": '{"kind": "generator", "kind": "inline", "generator": {"name": "xor", "n": 4}}',
    "experiments": '{"dataset_id": "${ds1}", "architecture_id": "${ar1}", "restarts": 1, "restarts": 2}',
}
for ep, text in DUPS.items():
    add(f"json-duplicate-key-{ep}", "POST", f"/v1/{ep}", e(400, ""), body=text)
add("json-duplicate-key-nested", "POST", "/v1/architectures", e(400, ""),
    body='{"input_shape": [2], "layers": [{"type": "dense", "units": 1, "units": 2}]}')

# deep nesting: refused before the (recursive) parser sees it
add("nesting-100000-arrays", "POST", "/v1/architectures", e(400),
    body_gen=[["[", 100000]])
add("nesting-100000-objects", "POST", "/v1/datasets", e(400),
    body_gen=[["{\"a\":", 100000]])
add("nesting-100000-balanced", "POST", "/v1/experiments", e(400),
    body_gen=[["[", 100000], ["]", 100000]])
add("nesting-65-in-field", "POST", "/v1/architectures", e(400),
    body='{"input_shape": [2], "x": ' + "[" * 64 + "]" * 64 + "}")
# brackets inside strings do not count: this body is shallow, and its only fault is /x
add("nesting-brackets-in-string", "POST", "/v1/architectures", e(422, "/x"),
    body=json.dumps({"input_shape": [2], "layers": [{"type": "dense", "units": 1}],
                     "x": "[" * 5000}))
add("nesting-63-in-unknown-field", "POST", "/v1/architectures", e(422, "/x"),
    body='{"input_shape": [2], "layers": [{"type": "dense", "units": 1}], "x": ' + "[" * 62 +
    "]" * 62 + "}")
add("nesting-escaped-quote-trick", "POST", "/v1/architectures", e(400),
    body='{"a": "\\"", "b": ' + "[" * 70 + "]" * 70 + "}")

# =========================================================================================
# 3. Architectures: wrong types, absurd sizes, unknown fields → 422 at the field
# =========================================================================================
A = "/v1/architectures"
UNIT_VALUES = {"string": "4", "float": 4.5, "zero": 0, "negative": -1, "neg-zero-int": "RAW:-0",
               "neg-zero-real": "RAW:-0.0", "tiny-1e-400": "RAW:1e-400", "billion": 1000000000,
               "over-width": 65537, "true": True, "null": None, "array": [4], "object": {"n": 4},
               "huge-real": 1e300, "fraction": 0.5, "exp-notation-frac": "RAW:4e-1"}
for name, v in UNIT_VALUES.items():
    if isinstance(v, str) and v.startswith("RAW:"):
        text = '{"input_shape": [2], "layers": [{"type": "dense", "units": ' + v[4:] + '}]}'
        add(f"arch-units-{name}", "POST", A, e(422, "/layers/0/units"), body=text)
    else:
        add(f"arch-units-{name}", "POST", A, e(422, "/layers/0/units"),
            body={"input_shape": [2], "layers": [{"type": "dense", "units": v}]})
SHAPES = {"empty": ([], "/input_shape"), "rank2": ([2, 2], "/input_shape"),
          "rank4": ([1, 1, 1, 1], "/input_shape"), "zero": ([0], "/input_shape/0"),
          "negative": ([-3], "/input_shape/0"), "string": (["2"], "/input_shape/0"),
          "float": ([2.5], "/input_shape/0"), "billion": ([1000000000], "/input_shape/0"),
          "product-too-big": ([16384, 16384, 16384], "/input_shape"),
          "not-array": ("2", "/input_shape"), "null": (None, "/input_shape"),
          "nested": ([[2]], "/input_shape/0")}
for name, (v, ptr) in SHAPES.items():
    add(f"arch-input-shape-{name}", "POST", A, e(422, ptr),
        body={"input_shape": v, "layers": [{"type": "dense", "units": 1}]})
add("arch-input-shape-missing", "POST", A, e(422, "/input_shape"),
    body={"layers": [{"type": "dense", "units": 1}]})
add("arch-layers-missing", "POST", A, e(422, "/layers"), body={"input_shape": [2]})
add("arch-layers-empty", "POST", A, e(422, "/layers"), body={"input_shape": [2], "layers": []})
add("arch-layers-string", "POST", A, e(422, "/layers"), body={"input_shape": [2], "layers": "dense"})
add("arch-layers-too-many", "POST", A, e(422, "/layers"),
    body={"input_shape": [2], "layers": [{"type": "activation", "kind": "relu"}] * 65 +
          [{"type": "dense", "units": 1}]})
add("arch-layer-not-object", "POST", A, e(422, "/layers/0"), body={"input_shape": [2], "layers": [7]})
add("arch-layer-type-unknown", "POST", A, e(422, "/layers/0/type"),
    body={"input_shape": [2], "layers": [{"type": "transformer", "units": 1}]})
add("arch-layer-type-missing", "POST", A, e(422, "/layers/0/type"),
    body={"input_shape": [2], "layers": [{"units": 1}]})
add("arch-layer-type-case", "POST", A, e(422, "/layers/0/type"),
    body={"input_shape": [2], "layers": [{"type": "Dense", "units": 1}]})
add("arch-unknown-top-field", "POST", A, e(422, "/bogus"), body=with_(MLP, bogus=1))
add("arch-unknown-layer-field", "POST", A, e(422, "/layers/0/activation"),
    body={"input_shape": [2], "layers": [{"type": "dense", "units": 1, "activation": "relu"}]})
add("arch-unknown-field-slash", "POST", A, e(422, "/a~1b"), body=with_(MLP, **{"a/b": 1}))
add("arch-unknown-field-tilde", "POST", A, e(422, "/m~0n"), body=with_(MLP, **{"m~n": 1}))
add("arch-unknown-field-sql", "POST", A, e(422, "/' OR 1=1 --"), body=with_(MLP, **{"' OR 1=1 --": 1}))
add("arch-unknown-field-empty-key", "POST", A, e(422, "/"), body=with_(MLP, **{"": 1}))
add("arch-unknown-field-long-key", "POST", A, e(422, "/" + "k" * 3000), body=with_(MLP, **{"k" * 3000: 1}))
add("arch-unknown-field-unicode-key", "POST", A, e(422, "/ключ"), body=with_(MLP, **{"ключ": 1}))
add("arch-name-number", "POST", A, e(422, "/name"), body=with_(MLP, name=123))
add("arch-name-object", "POST", A, e(422, "/name"), body=with_(MLP, name={"$ne": None}))
add("arch-name-sql-with-bad-layer", "POST", A, e(422, "/layers/0/units"),
    body={"name": "'; DROP TABLE architectures; --", "input_shape": [2],
          "layers": [{"type": "dense", "units": -1}]})
add("arch-body-array", "POST", A, e(422, ""), body=[MLP])
add("arch-body-empty-object", "POST", A, e(422, "/input_shape"), body={})
add("arch-bias-string", "POST", A, e(422, "/layers/0/bias"),
    body={"input_shape": [2], "layers": [{"type": "dense", "units": 1, "bias": "yes"}]})
add("arch-bias-number", "POST", A, e(422, "/layers/0/bias"),
    body={"input_shape": [2], "layers": [{"type": "dense", "units": 1, "bias": 1}]})
ACTS = {"kind-unknown": ({"type": "activation", "kind": "tanh"}, "/layers/1/kind"),
        "kind-missing": ({"type": "activation"}, "/layers/1/kind"),
        "leaky-slope-string": ({"type": "activation", "kind": "leaky_relu", "slope": "x"}, "/layers/1/slope"),
        "leaky-slope-null": ({"type": "activation", "kind": "leaky_relu", "slope": None}, "/layers/1/slope"),
        "pwl-missing-s-neg": ({"type": "activation", "kind": "pwl", "s_pos": 1}, "/layers/1/s_neg"),
        "pwl-s-pos-bool": ({"type": "activation", "kind": "pwl", "s_neg": 0, "s_pos": True}, "/layers/1/s_pos"),
        "relu-with-slope": ({"type": "activation", "kind": "relu", "slope": 0.1}, "/layers/1/slope")}
for name, (lay, ptr) in ACTS.items():
    add(f"arch-activation-{name}", "POST", A, e(422, ptr),
        body={"input_shape": [2], "layers": [{"type": "dense", "units": 2}, lay,
                                             {"type": "dense", "units": 1}]})
CONV_IN = [1, 4, 4]
CONVS = {"kernel-too-large": ({"type": "conv2d", "filters": 1, "kernel": 9}, "/layers/0/kernel"),
         "kernel-zero": ({"type": "conv2d", "filters": 1, "kernel": 0}, "/layers/0/kernel"),
         "filters-missing": ({"type": "conv2d", "kernel": 2}, "/layers/0/filters"),
         "filters-huge": ({"type": "conv2d", "filters": 10 ** 7, "kernel": 2}, "/layers/0/filters"),
         "stride-zero": ({"type": "conv2d", "filters": 1, "kernel": 2, "stride": 0}, "/layers/0/stride"),
         "padding-negative": ({"type": "conv2d", "filters": 1, "kernel": 2, "padding": -1}, "/layers/0/padding"),
         "padding-word": ({"type": "conv2d", "filters": 1, "kernel": 2, "padding": "full"}, "/layers/0/padding"),
         "padding-huge": ({"type": "conv2d", "filters": 1, "kernel": 2, "padding": 10 ** 9}, "/layers/0/padding")}
for name, (lay, ptr) in CONVS.items():
    add(f"arch-conv-{name}", "POST", A, e(422, ptr),
        body={"input_shape": CONV_IN, "layers": [lay, {"type": "flatten"}, {"type": "dense", "units": 1}]})
add("arch-conv-on-vector", "POST", A, e(422, pointer_prefix="/layers/0"),
    body={"input_shape": [16], "layers": [{"type": "conv2d", "filters": 1, "kernel": 2},
                                          {"type": "flatten"}, {"type": "dense", "units": 1}]})
add("arch-pool-too-large", "POST", A, e(422, "/layers/0/size"),
    body={"input_shape": CONV_IN, "layers": [{"type": "maxpool", "size": 5}, {"type": "flatten"},
                                             {"type": "dense", "units": 1}]})
add("arch-pool-size-zero", "POST", A, e(422, "/layers/0/size"),
    body={"input_shape": CONV_IN, "layers": [{"type": "avgpool", "size": 0}, {"type": "flatten"},
                                             {"type": "dense", "units": 1}]})
add("arch-ends-with-image", "POST", A, e(422, "/layers"),
    body={"input_shape": CONV_IN, "layers": [{"type": "conv2d", "filters": 1, "kernel": 2}]})
add("arch-no-parameters", "POST", A, e(422, "/layers"),
    body={"input_shape": [2], "layers": [{"type": "activation", "kind": "relu"}]})
# absurd sizes: refused by the published limits, not by running out of memory
add("arch-billion-parameters", "POST", A, e(422, ""),
    body={"input_shape": [16384], "layers": [{"type": "dense", "units": 65536}]})
add("arch-deep-wide-parameters", "POST", A, e(422, ""),
    body={"input_shape": [65], "layers": [{"type": "dense", "units": 65536},
                                          {"type": "dense", "units": 65536},
                                          {"type": "dense", "units": 1}]})
add("arch-conv-billion-parameters", "POST", A, e(422, ""),
    body={"input_shape": [1, 128, 128], "layers": [{"type": "conv2d", "filters": 65536, "kernel": 64},
                                                   {"type": "flatten"}, {"type": "dense", "units": 1}]})
add("arch-width-over-limit", "POST", A, e(422, "/layers/0/units"),
    body={"input_shape": [1], "layers": [{"type": "dense", "units": 2 ** 40}]})
add("arch-width-2pow64", "POST", A, e(400, ""),
    body='{"input_shape": [1], "layers": [{"type": "dense", "units": 18446744073709551616}]}')
add("arch-width-2pow63-minus-1", "POST", A, e(422, "/layers/0/units"),
    body='{"input_shape": [1], "layers": [{"type": "dense", "units": 9223372036854775807}]}')
add("arch-width-int64-min", "POST", A, e(422, "/layers/0/units"),
    body='{"input_shape": [1], "layers": [{"type": "dense", "units": -9223372036854775808}]}')
add("arch-many-errors", "POST", A, e(422, "/layers/63/units"),
    body={"input_shape": [2], "layers": [{"type": "dense", "units": -1}] * 64})
add("arch-errors-beyond-cap", "POST", A, e(422, "/layers/0/units"),
    body={"input_shape": [2], "layers": [{"type": "dense", "units": -1, "bias": "x"}] * 64})

# =========================================================================================
# 4. Datasets (JSON): wrong types, mismatched shapes, limits
# =========================================================================================
D = "/v1/datasets"
INL = {"kind": "inline", "x": [[0, 0], [0, 1], [1, 0], [1, 1]], "y": [0, 1, 1, 0]}
DS_CASES = {
    "kind-missing": ({"x": [[1]], "y": [1]}, "/kind"),
    "kind-unknown": ({"kind": "excel"}, "/kind"),
    "kind-number": ({"kind": 1}, "/kind"),
    "kind-sql": ({"kind": "inline' OR '1'='1"}, "/kind"),
    "inline-ragged-rows": (with_(INL, x=[[0, 0], [0], [1, 0], [1, 1]]), "/x/1"),
    "inline-row-not-array": (with_(INL, x=[[0, 0], 5, [1, 0], [1, 1]]), "/x/1"),
    "inline-cell-string": (with_(INL, x=[[0, "1"], [0, 1], [1, 0], [1, 1]]), "/x/0/1"),
    "inline-cell-null": (with_(INL, x=[[None, 0], [0, 1], [1, 0], [1, 1]]), "/x/0/0"),
    "inline-cell-bool": (with_(INL, x=[[0, 0], [0, 1], [True, 0], [1, 1]]), "/x/2/0"),
    "inline-y-short": (with_(INL, y=[0, 1, 1]), "/y"),
    "inline-y-long": (with_(INL, y=[0, 1, 1, 0, 1]), "/y"),
    "inline-y-string": (with_(INL, y=[0, "1", 1, 0]), "/y/1"),
    "inline-y-rows-ragged": (with_(INL, y=[[0], [1, 2], [1], [0]]), "/y/1"),
    "inline-y-empty-row": (with_(INL, y=[[], [1], [1], [0]]), "/y/0"),
    "inline-x-empty": (with_(INL, x=[], y=[]), "/x"),
    "inline-x-missing": (with_(INL, x=DEL), "/x"),
    "inline-y-missing": (with_(INL, y=DEL), "/y"),
    "inline-x-object": (with_(INL, x={"0": [1]}), "/x"),
    "inline-empty-row0": (with_(INL, x=[[], [], [], []]), "/x/0"),
    "inline-shape-mismatch": (with_(INL, input_shape=[3]), "/input_shape"),
    "inline-shape-image-mismatch": (with_(INL, input_shape=[1, 2, 2]), "/input_shape"),
    "inline-shape-zero": (with_(INL, input_shape=[0]), "/input_shape/0"),
    "inline-unknown-field": (with_(INL, generator={"name": "xor"}), "/generator"),
    "inline-name-number": (with_(INL, name=5), "/name"),
    "gen-missing": ({"kind": "generator"}, "/generator"),
    "gen-not-object": ({"kind": "generator", "generator": "xor"}, "/generator"),
    "gen-name-unknown": ({"kind": "generator", "generator": {"name": "mandelbrot", "n": 4}}, "/generator/name"),
    "gen-name-missing": ({"kind": "generator", "generator": {"n": 4}}, "/generator/name"),
    "gen-n-zero": ({"kind": "generator", "generator": {"name": "xor", "n": 0}}, "/generator/n"),
    "gen-n-negative": ({"kind": "generator", "generator": {"name": "xor", "n": -5}}, "/generator/n"),
    "gen-n-billion": ({"kind": "generator", "generator": {"name": "xor", "n": 10 ** 9}}, "/generator/n"),
    "gen-n-string": ({"kind": "generator", "generator": {"name": "xor", "n": "10"}}, "/generator/n"),
    "gen-n-float": ({"kind": "generator", "generator": {"name": "xor", "n": 10.5}}, "/generator/n"),
    "gen-n-missing": ({"kind": "generator", "generator": {"name": "xor"}}, "/generator/n"),
    "gen-noise-negative": ({"kind": "generator", "generator": {"name": "xor", "n": 4, "noise": -1}}, "/generator/noise"),
    "gen-noise-string": ({"kind": "generator", "generator": {"name": "xor", "n": 4, "noise": "lots"}}, "/generator/noise"),
    "gen-seed-negative": ({"kind": "generator", "generator": {"name": "xor", "n": 4, "seed": -1}}, "/generator/seed"),
    "gen-seed-float": ({"kind": "generator", "generator": {"name": "xor", "n": 4, "seed": 0.5}}, "/generator/seed"),
    "gen-unknown-field": ({"kind": "generator", "generator": {"name": "xor", "n": 4, "depth": 3}}, "/generator/depth"),
    "gen-spirals-classes-1": ({"kind": "generator", "generator": {"name": "spirals", "n": 4, "classes": 1}}, "/generator/classes"),
    "gen-spirals-classes-huge": ({"kind": "generator", "generator": {"name": "spirals", "n": 4, "classes": 100000}}, "/generator/classes"),
    "gen-blobs-dim-zero": ({"kind": "generator", "generator": {"name": "gaussian_blobs", "n": 4, "dim": 0}}, "/generator/dim"),
    "gen-blobs-too-many-values": ({"kind": "generator", "generator": {"name": "gaussian_blobs", "n": 100000, "dim": 16384}}, "/generator/n"),
    "gen-bars-image-huge": ({"kind": "generator", "generator": {"name": "bars_stripes", "n": 4, "image_size": 1000}}, "/generator/image_size"),
    "gen-xor-dim-not-allowed": ({"kind": "generator", "generator": {"name": "xor", "n": 4, "dim": 3}}, "/generator/dim"),
    "gen-teacher-missing": ({"kind": "generator", "generator": {"name": "teacher", "n": 4, "dim": 2}}, "/generator/teacher"),
    "gen-teacher-bad-layer": ({"kind": "generator", "generator": {"name": "teacher", "n": 4, "dim": 2, "teacher": {"layers": [{"type": "dense", "units": 0}]}}}, "/generator/teacher/layers/0/units"),
    "gen-teacher-shape-mismatch": ({"kind": "generator", "generator": {"name": "teacher", "n": 4, "dim": 2, "teacher": {"input_shape": [3], "layers": [{"type": "dense", "units": 1}]}}}, "/generator/teacher/input_shape"),
    "tg-k-zero": ({"kind": "teacher_gaussian", "k": 0, "d": 4}, "/k"),
    "tg-d-missing": ({"kind": "teacher_gaussian", "k": 2}, "/d"),
    "tg-k-over-d": ({"kind": "teacher_gaussian", "k": 5, "d": 4}, "/teacher"),
    "tg-teacher-unknown": ({"kind": "teacher_gaussian", "k": 2, "d": 4, "teacher": "zzz"}, "/teacher"),
    "tg-teacher-number": ({"kind": "teacher_gaussian", "k": 2, "d": 4, "teacher": 3}, "/teacher"),
    "tg-matrix-rows": ({"kind": "teacher_gaussian", "k": 2, "d": 2, "teacher": [[1, 0]]}, "/teacher"),
    "tg-matrix-cell": ({"kind": "teacher_gaussian", "k": 2, "d": 2, "teacher": [[1, 0], [0, "x"]]}, "/teacher/1/1"),
    "tg-d-huge": ({"kind": "teacher_gaussian", "k": 2, "d": 10 ** 9}, "/d"),
    "csv-json-ragged": ({"kind": "csv", "csv": "1,2\n3\n"}, "/csv"),
    "csv-json-not-string": ({"kind": "csv", "csv": 123}, "/csv"),
    "csv-json-missing": ({"kind": "csv"}, "/csv"),
    "csv-json-delimiter-long": ({"kind": "csv", "csv": "1,2\n", "delimiter": ";;"}, "/delimiter"),
    "csv-json-delimiter-quote": ({"kind": "csv", "csv": "1,2\n", "delimiter": "\""}, "/delimiter"),
    "csv-json-delimiter-newline": ({"kind": "csv", "csv": "1,2\n", "delimiter": "\n"}, "/delimiter"),
    "csv-json-y-cols-zero": ({"kind": "csv", "csv": "1,2\n", "y_cols": 0}, "/y_cols"),
    "csv-json-y-cols-all": ({"kind": "csv", "csv": "1,2\n", "y_cols": 2}, "/csv"),
    "csv-json-header-string": ({"kind": "csv", "csv": "1,2\n", "header": "yes"}, "/header"),
    "csv-json-nan-cell": ({"kind": "csv", "csv": "nan,1\n"}, "/csv"),
    "csv-json-inf-cell": ({"kind": "csv", "csv": "1,inf\n"}, "/csv"),
    "csv-json-huge-cell": ({"kind": "csv", "csv": "1e999,1\n"}, "/csv"),
    "csv-json-shape-mismatch": ({"kind": "csv", "csv": "1,2,3\n", "input_shape": [3]}, "/input_shape"),
}
for name, (body, ptr) in DS_CASES.items():
    add(f"ds-{name}", "POST", D, e(422, ptr), body=body)
add("ds-body-array", "POST", D, e(422, ""), body=[INL])
add("ds-name-sql-bad-n", "POST", D, e(422, "/generator/n"),
    body={"kind": "generator", "name": "x'); DROP TABLE datasets;--",
          "generator": {"name": "xor", "n": -1}})
add("ds-inline-big-numbers", "POST", D, e(400, ""),
    body='{"kind": "inline", "x": [[1e400]], "y": [1]}')
add("ds-inline-tiny-numbers-bad-y", "POST", D, e(422, "/y/0"),
    body='{"kind": "inline", "x": [[1e-400, -0]], "y": ["1e-400"]}')

# =========================================================================================
# 5. Datasets (text/csv): ragged rows, bad encodings, query options
# =========================================================================================
CSV_BAD = {
    # the first row is numeric (no header is detected), the fault is in the second
    "ragged": b"1,2,3\n4,5\n",
    "ragged-long": b"1,2\n3,4,5\n",
    "invalid-utf8": b"1,2\n\xff\xfe,3\n",
    "invalid-utf8-header": b"a\xff,b\n1,2\n",
    "overlong-utf8": b"1,2\n\xc0\xaf,1\n",
    "nul-byte": b"1,2\n3,\x004\n",
    "nul-only": b"\x00\x00\x00",
    "bom-in-middle": b"1,2\n\xef\xbb\xbf3,4\n",
    "bom-twice": b"\xef\xbb\xbf\xef\xbb\xbf1,2\n",
    "nan": b"1,2\nnan,1\n",
    "inf": b"1,2\n1,inf\n",
    "minus-inf": b"1,2\n1,-Infinity\n",
    "overflow": b"1,2\n1e999,1\n",
    "hex": b"1,2\n0x10,1\n",
    "comma-decimal": b"1;2\n\"1,5\";2\n",
    "unterminated-quote": b"1,2\n\"1,2\n3,4\n",
    "quote-in-field": b"1,2\n1,2\"3\n",
    "junk-after-quote": b"1,2\n\"1\"x,2\n",
    "only-header": b"x,y\n",
    "only-newlines": b"\n\n\r\n",
    "single-column": b"1\n2\n",
    "text-cells": b"a,b\nc,d\n",
    "sql-cell": b"1,2\n'; DROP TABLE datasets; --,3\n",
    "empty-cells": b"1,2\n,2\n",
    "utf16": "1,2\n3,4\n".encode("utf-16"),
    "long-cell": b"1,2\n" + b"1" * 200 + b",2\n",
    "cr-only-ragged": b"1,2\r3\r",
}
for name, raw in CSV_BAD.items():
    add(f"csv-{name}", "POST", D, e(422, ""), body=raw, headers=CSV)
CSV_OK = b"x1,x2,y\n1,2,0\n3,4,1\n"
CSV_Q = {
    "y-cols-zero": ("?y_cols=0", "?y_cols"),
    "y-cols-negative": ("?y_cols=-1", "?y_cols"),
    "y-cols-word": ("?y_cols=two", "?y_cols"),
    "y-cols-huge": ("?y_cols=99999999999", "?y_cols"),
    "y-cols-float": ("?y_cols=1.5", "?y_cols"),
    "y-cols-empty": ("?y_cols=", "?y_cols"),
    "header-maybe": ("?header=maybe", "?header"),
    "header-one": ("?header=1", "?header"),
    "delimiter-long": ("?delimiter=%3B%3B", "?delimiter"),
    "delimiter-quote": ("?delimiter=%22", "?delimiter"),
    "delimiter-not-utf8": ("?delimiter=%FF", "?delimiter"),
    "name-not-utf8": ("?name=%C3", "?name"),
    "input-shape-letters": ("?input_shape=a,b", "?input_shape"),
    "input-shape-mismatch": ("?input_shape=3", "?input_shape"),
    "input-shape-rank2": ("?input_shape=1,2", "?input_shape"),
    "input-shape-zero": ("?input_shape=0", "?input_shape"),
    "input-shape-trailing-comma": ("?input_shape=2,", "?input_shape"),
}
for name, (q, ptr) in CSV_Q.items():
    add(f"csv-query-{name}", "POST", D + q, e(422, ptr), body=CSV_OK, headers=CSV)
add("csv-query-header-false-nan-first", "POST", D + "?header=false", e(422, ""), body=b"nan,1\n2,3\n",
    headers=CSV)
add("csv-empty-body", "POST", D, e(400), body=b"", headers=CSV)
add("csv-charset-latin1", "POST", D, e(415), body=CSV_OK,
    headers=[["Content-Type", "text/csv; charset=iso-8859-1"]])

# =========================================================================================
# 6. Experiments: wrong types, NaN/huge numbers, mismatched shapes, bad references
# =========================================================================================
X = "/v1/experiments"
def exp(**kw):
    return with_(SMALL_EXP, **kw)

EXP_CASES = {
    "dataset-missing": (exp(dataset=DEL), "/dataset"),
    "architecture-missing": (exp(architecture=DEL), "/architecture"),
    "dataset-and-id": (exp(dataset_id="${ds1}"), "/dataset_id"),
    "architecture-and-id": (exp(architecture_id="${ar1}"), "/architecture_id"),
    "dataset-id-number": (exp(dataset=DEL, dataset_id=5), "/dataset_id"),
    "dataset-id-empty": (exp(dataset=DEL, dataset_id=""), "/dataset_id"),
    "dataset-not-object": (exp(dataset="xor"), "/dataset"),
    "architecture-array": (exp(architecture=[MLP]), "/architecture"),
    "restarts-zero": (exp(restarts=0), "/restarts"),
    "restarts-negative": (exp(restarts=-1), "/restarts"),
    "restarts-billion": (exp(restarts=10 ** 9), "/restarts"),
    "restarts-over-limit": (exp(restarts=10001), "/restarts"),
    "restarts-string": (exp(restarts="10"), "/restarts"),
    "restarts-float": (exp(restarts=2.5), "/restarts"),
    "restarts-null": (exp(restarts=None), "/restarts"),
    "max-steps-zero": (exp(max_steps=0), "/max_steps"),
    "max-steps-huge": (exp(max_steps=10 ** 12), "/max_steps"),
    "max-steps-bool": (exp(max_steps=True), "/max_steps"),
    "seed-negative": (exp(seed=-1), "/seed"),
    "seed-float": (exp(seed=1.5), "/seed"),
    "seed-string": (exp(seed="7"), "/seed"),
    "l2-negative": (exp(l2=-0.1), "/l2"),
    "l2-string": (exp(l2="none"), "/l2"),
    "loss-unknown": (exp(loss="mse"), "/loss"),
    "loss-number": (exp(loss=2), "/loss"),
    "loss-huber-delta-negative": (exp(loss={"kind": "huber", "delta": -1}), "/loss/delta"),
    "loss-unknown-field": (exp(loss={"kind": "huber", "delta": 1, "p": 2}), "/loss/p"),
    "optimizer-kind-unknown": (exp(optimizer={"kind": "rmsprop", "lr": 0.1}), "/optimizer/kind"),
    "optimizer-lr-zero": (exp(optimizer={"kind": "gd", "lr": 0}), "/optimizer/lr"),
    "optimizer-lr-negative": (exp(optimizer={"kind": "gd", "lr": -0.1}), "/optimizer/lr"),
    "optimizer-lr-string": (exp(optimizer={"kind": "gd", "lr": "fast"}), "/optimizer/lr"),
    "optimizer-not-object": (exp(optimizer="adam"), "/optimizer"),
    "optimizer-sgd-batch-zero": (exp(optimizer={"kind": "sgd", "lr": 0.1, "batch": 0}), "/optimizer/batch"),
    "optimizer-batch-over-n": (exp(optimizer={"kind": "sgd", "lr": 0.1, "batch": 1000}), "/optimizer/batch"),
    "optimizer-unknown-field": (exp(optimizer={"kind": "gd", "lr": 0.1, "beta1": 0.9}), "/optimizer/beta1"),
    "optimizer-schedule-no-step": (exp(optimizer={"kind": "gd", "lr": 0.1, "schedule": {"kind": "step"}}), "/optimizer/schedule/step_every"),
    "optimizer-schedule-unknown": (exp(optimizer={"kind": "gd", "lr": 0.1, "schedule": {"kind": "cyclic"}}), "/optimizer/schedule/kind"),
    "init-kind-unknown": (exp(init={"kind": "zeros"}), "/init/kind"),
    "init-normal-std-zero": (exp(init={"kind": "normal", "std": 0}), "/init/std"),
    "init-uniform-a-negative": (exp(init={"kind": "uniform", "a": -1}), "/init/a"),
    "init-given-missing": (exp(init={"kind": "given"}), "/init/params"),
    "init-given-wrong-length": (exp(init={"kind": "given", "params": [0.1, 0.2]}), "/init/params"),
    "init-given-string": (exp(init={"kind": "given", "params": ["a"] + [0] * 16}), "/init/params/0"),
    "init-given-too-many": (exp(init={"kind": "given", "params": [0] * 100}), "/init/params"),
    "stop-grad-tol-negative": (exp(stop={"grad_tol": -1}), "/stop/grad_tol"),
    "stop-plateau-window-zero": (exp(stop={"plateau": {"tol": 1e-6, "window": 0}}), "/stop/plateau/window"),
    "stop-plateau-not-object": (exp(stop={"plateau": 5}), "/stop/plateau"),
    "stop-diverge-small": (exp(stop={"diverge_factor": 0.5}), "/stop/diverge_factor"),
    "stop-unknown-field": (exp(stop={"patience": 5}), "/stop/patience"),
    "trajectory-every-too-dense": (exp(max_steps=10 ** 7, trajectory_every=1), "/trajectory_every"),
    "trajectory-every-negative": (exp(trajectory_every=-1), "/trajectory_every"),
    "max-batch-zero": (exp(max_batch=0), "/max_batch"),
    "certify-string": (exp(certify="yes"), "/certify"),
    "unknown-top-field": (exp(priority="high"), "/priority"),
    "unknown-field-sql": (exp(**{"id; DROP TABLE runs": 1}), "/id; DROP TABLE runs"),
    "shape-mismatch": (exp(architecture=with_(MLP, input_shape=[3])), "/architecture/input_shape"),
    "shape-image-vs-vector": (exp(architecture={"input_shape": [1, 2, 1], "layers": [{"type": "flatten"}, {"type": "dense", "units": 1}]}), "/architecture/input_shape"),
    "cross-entropy-one-output": (exp(loss="cross_entropy"), "/loss"),
    "logistic-regression-targets": (exp(dataset={"kind": "generator", "generator": {"name": "sine", "n": 8}},
                                        architecture=with_(MLP, input_shape=[1]), loss="logistic"), "/dataset/generator"),
    "hinge-bad-inline-target": (exp(dataset=with_(INL, y=[0, 1, 2, 0]), loss="hinge"), "/dataset/y/2"),
    "inline-dataset-null-cell": (exp(dataset=with_(INL, x=[[None, 0], [0, 1], [1, 0], [1, 1]])), "/dataset/x/0/0"),
    "inline-architecture-bad-units": (exp(architecture={"input_shape": [2], "layers": [{"type": "dense", "units": 0}]}), "/architecture/layers/0/units"),
    "teacher-wrong-student": (exp(dataset={"kind": "teacher_gaussian", "k": 2, "d": 2},
                                  architecture={"input_shape": [2], "layers": [{"type": "dense", "units": 2}, {"type": "activation", "kind": "relu"}, {"type": "dense", "units": 1}]}), "/architecture/layers/0/bias"),
    "teacher-logistic": (exp(dataset={"kind": "teacher_gaussian", "k": 2, "d": 2},
                             architecture={"input_shape": [2], "layers": [{"type": "dense", "units": 2, "bias": False}, {"type": "activation", "kind": "relu"}, {"type": "sum"}]},
                             loss="logistic"), "/loss"),
    "dataset-id-unknown": (exp(dataset=DEL, dataset_id="ds_0000000000000000"), "/dataset_id"),
    "architecture-id-unknown": (exp(architecture=DEL, architecture_id="ar_ffffffffffffffff"), "/architecture_id"),
    "dataset-id-sql": (exp(dataset=DEL, dataset_id="x' OR '1'='1"), "/dataset_id"),
    "dataset-id-sql-comment": (exp(dataset=DEL, dataset_id="ds_1; --"), "/dataset_id"),
    "dataset-id-traversal": (exp(dataset=DEL, dataset_id="../../etc/passwd"), "/dataset_id"),
    "dataset-id-long": (exp(dataset=DEL, dataset_id="d" * 5000), "/dataset_id"),
    "dataset-id-unicode-long": (exp(dataset=DEL, dataset_id="a" + "é" * 40), "/dataset_id"),
    "architecture-id-emoji": (exp(architecture=DEL, architecture_id="a" + "🧠" * 30), "/architecture_id"),
    "architecture-id-is-dataset-id": (exp(architecture=DEL, architecture_id="${ds1}"), "/architecture_id"),
    "mismatch-by-id": ({"dataset_id": "${ds1}", "architecture": with_(MLP, input_shape=[5])}, "/architecture/input_shape"),
    "loss-mismatch-by-id": ({"dataset_id": "${ds1}", "architecture_id": "${ar1}", "loss": "cross_entropy"}, "/loss"),
}
for name, (body, ptr) in EXP_CASES.items():
    add(f"exp-{name}", "POST", X, e(422, ptr), body=body)
add("exp-body-array", "POST", X, e(422, ""), body=[SMALL_EXP])
add("exp-body-empty-object", "POST", X, e(422, "/dataset"), body={})
add("exp-restarts-1e400", "POST", X, e(400, ""),
    body='{"dataset_id": "${ds1}", "architecture_id": "${ar1}", "restarts": 1e400}')
add("exp-lr-1e-400", "POST", X, e(422, "/optimizer/lr"),
    body='{"dataset_id": "${ds1}", "architecture_id": "${ar1}", "optimizer": {"kind": "gd", "lr": 1e-400}}')
add("exp-restarts-neg-zero-real", "POST", X, e(422, "/restarts"),
    body='{"dataset_id": "${ds1}", "architecture_id": "${ar1}", "restarts": -0.0}')
add("exp-seed-huge-int", "POST", X, e(400, ""),
    body='{"dataset_id": "${ds1}", "architecture_id": "${ar1}", "seed": 123456789012345678901234567890}')
add("exp-l2-1e308-times-10", "POST", X, e(400, ""),
    body='{"dataset_id": "${ds1}", "architecture_id": "${ar1}", "l2": 1.8e308}')
# work that the limits must bound before it starts: the population risk of a k × d teacher costs
# k²·d to set up (16384³ ≈ 4·10¹² here); a parser-level refusal answers in microseconds
STUDENT_16384 = {"input_shape": [16384], "layers": [{"type": "dense", "units": 1, "bias": False},
                                                    {"type": "activation", "kind": "relu"},
                                                    {"type": "sum"}]}
add("exp-teacher-gaussian-huge-work", "POST", X, e(422, pointer_prefix="/dataset"),
    body={"dataset": {"kind": "teacher_gaussian", "k": 16384, "d": 16384},
          "architecture": STUDENT_16384, "restarts": 1, "max_steps": 1}, timeout_ms=5000)
add("exp-many-errors-all-reported", "POST", X, e(422, "/max_steps"),
    body={"dataset": {"kind": "inline", "x": [[1]], "y": ["a"]}, "restarts": 0, "max_steps": -5,
          "optimizer": {"kind": "gd", "lr": -1}, "architecture": {"layers": []}})

# SQL metacharacters in every string field that has a fixed vocabulary: refused at that field
SQL = ["' OR 1=1 --", "\"; DROP TABLE runs; --", "*/ UNION SELECT 1 /*"]
SQL_FIELDS = [
    (D, lambda v: {"kind": v}, "/kind"),
    (D, lambda v: {"kind": "generator", "generator": {"name": v, "n": 4}}, "/generator/name"),
    (D, lambda v: {"kind": "teacher_gaussian", "k": 1, "d": 2, "teacher": v}, "/teacher"),
    (D, lambda v: {"kind": "csv", "csv": "1,2\n", "delimiter": v}, "/delimiter"),
    (A, lambda v: {"input_shape": [2], "layers": [{"type": v}]}, "/layers/0/type"),
    (A, lambda v: {"input_shape": [2], "layers": [{"type": "activation", "kind": v},
                                                  {"type": "dense", "units": 1}]}, "/layers/0/kind"),
    (A, lambda v: {"input_shape": [2], "layers": [{"type": "conv2d", "filters": 1, "kernel": 1,
                                                   "padding": v}]}, "/layers/0/padding"),
    (X, lambda v: exp(loss=v), "/loss"),
    (X, lambda v: exp(optimizer={"kind": v}), "/optimizer/kind"),
    (X, lambda v: exp(optimizer={"kind": "gd", "schedule": {"kind": v}}), "/optimizer/schedule/kind"),
    (X, lambda v: exp(init={"kind": v}), "/init/kind"),
    (X, lambda v: exp(dataset=DEL, dataset_id=v), "/dataset_id"),
    (X, lambda v: exp(architecture=DEL, architecture_id=v), "/architecture_id"),
]
for i, (ep, make, ptr) in enumerate(SQL_FIELDS):
    for j, v in enumerate(SQL):
        add(f"sql-field-{ptr.strip('/').replace('/', '-')}-{j}", "POST", ep, e(422, ptr), body=make(v))

# =========================================================================================
# 7. Idempotency-Key abuse (checked before anything is created)
# =========================================================================================
VALID_BY_ID = {"dataset_id": "${ds1}", "architecture_id": "${ar1}", "restarts": 1, "max_steps": 10}
KEYS = {"too-long-201": "k" * 201, "huge-8000": "K" * 8000, "empty": "",
        "tab": "a\tb", "del-char": "a\x7fb", "non-ascii": "clé", "emoji": "🔑",
        "control-0x01": "a\x01b", "escape-0x1b": "\x1b[31m", "vertical-tab": "a\x0bb"}
for name, key in KEYS.items():
    add(f"idem-{name}", "POST", X, e(400, detail_contains="Idempotency-Key"), body=VALID_BY_ID,
        headers=JSON + [["Idempotency-Key", key]])
add("idem-reused-different-body", "POST", X, e(409),
    body=with_(VALID_BY_ID, restarts=3), headers=JSON + [["Idempotency-Key", "hostile-key-1"]])
add("idem-reused-inline-body", "POST", X, e(409), body=SMALL_EXP,
    headers=JSON + [["Idempotency-Key", "hostile-key-1"]])
add("idem-replay-same-body", "POST", X,
    e(202, header={"Idempotent-Replayed": "true"}, json={"/id": "${ex1}"}),
    body={"dataset_id": "${ds1}", "architecture_id": "${ar1}", "restarts": 2, "max_steps": 20},
    headers=JSON + [["Idempotency-Key", "hostile-key-1"]])
add("idem-key-sql-invalid-body", "POST", X, e(422, "/restarts"),
    body=with_(VALID_BY_ID, restarts=0), headers=JSON + [["Idempotency-Key", "' OR 1=1; --"]])

# =========================================================================================
# 8. Paths: traversal, encodings, very long ids, unknown routes, wrong methods
# =========================================================================================
for res in ["datasets", "architectures", "experiments", "runs"]:
    base = f"/v1/{res}/"
    add(f"path-{res}-dotdot", "GET", base + "..", e(400))
    add(f"path-{res}-dot", "GET", base + ".", e(400))
    add(f"path-{res}-enc-dotdot", "GET", base + "%2e%2e", e(400))
    add(f"path-{res}-enc-dotdot-upper", "GET", base + "%2E%2E", e(400))
    add(f"path-{res}-enc-slash", "GET", base + "a%2Fb", e(400))
    add(f"path-{res}-enc-traversal", "GET", base + "..%2F..%2Fetc%2Fpasswd", e(400))
    add(f"path-{res}-nul", "GET", base + "ds_%00", e(400))
    add(f"path-{res}-bad-percent", "GET", base + "%zz", e(400))
    add(f"path-{res}-truncated-percent", "GET", base + "abc%2", e(400))
    add(f"path-{res}-long-id", "GET", base + "x" * 3000, e(404))
    add(f"path-{res}-sql-id", "GET", base + "x'%20OR%20'1'%3D'1", e(404))
    add(f"path-{res}-not-utf8-id", "GET", base + "%FF%FE", e(404))
    add(f"path-{res}-unicode-id", "GET", base + "%C3%A9" * 30, e(404))
add("path-traversal-raw", "GET", "/v1/datasets/../../../etc/passwd", e(404))
add("path-traversal-points", "GET", "/v1/datasets/../points", e(400))
add("path-delete-enc-slash", "DELETE", "/v1/datasets/..%2f", e(400))
add("path-delete-sql", "DELETE", "/v1/datasets/ds_'%3B%20DELETE%20FROM%20datasets%3B--", e(404))
add("path-delete-unknown-id", "DELETE", "/v1/experiments/ex_0123456789abcdef", e(404))
add("path-cancel-unknown-id", "POST", "/v1/experiments/ex_0123456789abcdef/cancel", e(404))
add("path-cancel-traversal", "POST", "/v1/experiments/%2e%2e/cancel", e(400))
add("path-static-traversal", "GET", "/js/..%2F..%2Fserver%2Fmain.c", e(400))
add("path-static-backslash", "GET", "/js/..%5C..%5Cserver%5Cmain.c", e(404))
add("path-static-dotdot", "GET", "/vendor/..", e(400))
add("path-static-top-dotdot", "GET", "/%2e%2e", e(400))
add("path-static-nul", "GET", "/index.html%00.js", e(400))
add("path-raw-not-utf8", "GET", "/v1/datasets/", e(404), path_b64=base64.b64encode(b"/v1/datasets/\xff\xfe").decode())
add("path-raw-not-utf8-unknown", "GET", "/", e(404), path_b64=base64.b64encode(b"/v1/\xc3").decode())
add("path-v2", "GET", "/v2/datasets", e(404))
add("path-trailing-slash", "GET", "/v1/datasets/", e(404))
add("path-double-slash", "GET", "//v1/datasets", e(404))
add("path-inner-double-slash", "GET", "/v1//datasets", e(404))
add("path-upper-case", "GET", "/V1/DATASETS", e(404))
add("path-extra-segment", "GET", "/v1/datasets/${ds1}/points/extra", e(404))
add("path-many-segments", "GET", "/a" * 40, e(404))
add("path-enc-percent", "GET", "/v1/datasets/%25", e(404))
add("path-points-unknown", "GET", "/v1/datasets/ds_0123456789abcdef/points", e(404))
METHODS = [("PUT", "/v1/datasets", "POST"), ("PATCH", "/v1/architectures/${ar1}", "DELETE"),
           ("DELETE", "/v1/datasets", "GET"), ("POST", "/healthz", "GET"),
           ("GET", "/v1/experiments/${ex1}/cancel", "POST"), ("OPTIONS", "/v1/datasets", "GET"),
           ("TRACE", "/v1/datasets", "GET"), ("BREW", "/v1/experiments", "POST"),
           ("get", "/healthz", "GET"), ("PUT", "/v1/experiments/${ex1}", "DELETE"),
           ("POST", "/v1/datasets/${ds1}", "DELETE"), ("DELETE", "/v1/runs/run_0123456789abcdef", "GET"),
           ("POST", "/v1/limits", "GET"), ("PROPFIND", "/v1/architectures", "POST")]
for i, (m, p, allowed) in enumerate(METHODS):
    add(f"method-{m.lower()}-{i}", m, p, e(405, header={"Allow": allowed}))
add("method-raw-not-utf8", "GET", "/healthz", e(405),
    raw_b64=base64.b64encode(b"G\xc3T /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").decode())

# =========================================================================================
# 9. Content types, body sizes
# =========================================================================================
CT = {"text-plain": "text/plain", "form": "application/x-www-form-urlencoded",
      "multipart": "multipart/form-data; boundary=x", "jsonx": "application/jsonx",
      "json-latin1": "application/json; charset=latin1", "xml": "application/xml",
      "star": "*/*", "empty": "", "garbage": "\"; DROP TABLE",
      "json-charset-sql": "application/json; charset=\"utf-8' OR 1=1\"",
      "not-utf8": {"b64": base64.b64encode(b"text/\xff").decode()}, "csv-for-json-route": "text/csv"}
for name, ct in CT.items():
    hdr = [["Content-Type", ct]]
    add(f"ctype-{name}", "POST", A, e(415), body=MLP, headers=hdr)
add("ctype-missing", "POST", A, e(415), body=MLP, headers=[])
add("ctype-missing-experiments", "POST", X, e(415), body=SMALL_EXP, headers=[])
add("ctype-text-plain-datasets", "POST", D, e(415), body=CSV_OK, headers=[["Content-Type", "text/plain"]])
add("ctype-upper-case-ok", "POST", A, e(422, "/layers/0/units"),
    body={"input_shape": [2], "layers": [{"type": "dense", "units": 0}]},
    headers=[["Content-Type", "APPLICATION/JSON; Charset=UTF-8"]])
add("ctype-duplicate-header", "POST", A, e(0, status_in=[415, 422]),
    body={"input_shape": [2], "layers": [{"type": "dense", "units": 0}]},
    headers=[["Content-Type", "application/json"], ["Content-Type", "text/plain"]])
add("body-empty-json", "POST", A, e(400), body="")
add("body-empty-experiments", "POST", X, e(400), body="")
add("body-too-large-announced", "POST", A, e(413),
    headers=JSON + [["Content-Length", "33554433"]], body="", no_body=True)
add("body-too-large-overflowing-length", "POST", D, e(0, status_class=4, problem=False),
    headers=JSON + [["Content-Length", "99999999999999999999999999"]], body="", no_body=True)
add("body-too-large-chunked", "POST", X, e(413), chunked=True,
    body_gen=[["{\"name\": \"", 1], ["a", 33554432], ["\"}", 1]])
add("body-too-large-csv", "POST", D, e(413), headers=CSV, chunked=True,
    body_gen=[["1,2\n", 8388609]])
add("body-on-get-ignored", "GET", "/healthz", e(200, problem=False), body="{\"x\": [[[[[[")

# =========================================================================================
# 10. Query parameters
# =========================================================================================
LIMITS = {"negative": "-1", "zero": "0", "over-max": "1001", "billion": "1e9", "float": "1.5",
          "word": "ten", "empty": "", "space": "%205", "plus": "%2B5", "huge": "9" * 30,
          "hex": "0x10", "sql": "1%20OR%201%3D1", "not-utf8": "%FF"}
for ep in ["datasets", "architectures", "experiments"]:
    for name, v in LIMITS.items():
        add(f"query-{ep}-limit-{name}", "GET", f"/v1/{ep}?limit={v}", e(400, detail_contains="limit"))
    add(f"query-{ep}-cursor-garbage", "GET", f"/v1/{ep}?cursor=garbage", e(400, detail_contains="cursor"))
    add(f"query-{ep}-cursor-sql", "GET", f"/v1/{ep}?cursor=%27%20OR%201%3D1%20--",
        e(400, detail_contains="cursor"))
    add(f"query-{ep}-cursor-long", "GET", f"/v1/{ep}?cursor=" + "A" * 4000, e(400, detail_contains="cursor"))
    add(f"query-{ep}-cursor-not-utf8", "GET", f"/v1/{ep}?cursor=%FF%FE", e(400, detail_contains="cursor"))
add("query-experiments-status-bogus", "GET", "/v1/experiments?status=bogus", e(400, detail_contains="status"))
add("query-experiments-status-sql", "GET", "/v1/experiments?status=%27%20OR%20%271%27%3D%271",
    e(400, detail_contains="status"))
add("query-experiments-status-not-utf8", "GET", "/v1/experiments?status=%C3", e(400, detail_contains="status"))
add("query-runs-order-random", "GET", "/v1/experiments/${ex1}/runs?order=random", e(400, detail_contains="order"))
add("query-runs-status-zzz", "GET", "/v1/experiments/${ex1}/runs?status=zzz", e(400, detail_contains="status"))
add("query-runs-limit-negative", "GET", "/v1/experiments/${ex1}/runs?limit=-1", e(400, detail_contains="limit"))
add("query-runs-cursor-garbage", "GET", "/v1/experiments/${ex1}/runs?cursor=garbage", e(400, detail_contains="cursor"))
add("query-runs-verdict-sql", "GET", "/v1/experiments/${ex1}/runs?verdict=%27%20OR%201%3D1%20--",
    e(200, problem=False, items=0))
add("query-runs-verdict-sql-union", "GET",
    "/v1/experiments/${ex1}/runs?verdict=x%27%20UNION%20SELECT%20*%20FROM%20datasets%20--",
    e(200, problem=False, items=0))
add("query-points-format-xml", "GET", "/v1/datasets/${ds1}/points?format=xml", e(400, detail_contains="format"))
add("query-points-limit-zero", "GET", "/v1/datasets/${ds1}/points?limit=0", e(400, detail_contains="limit"))
add("query-points-cursor-past-end", "GET", "/v1/datasets/${ds1}/points?cursor=p999999", e(400, detail_contains="cursor"))
add("query-points-cursor-negative", "GET", "/v1/datasets/${ds1}/points?cursor=p-1", e(400, detail_contains="cursor"))
add("query-points-cursor-garbage", "GET", "/v1/datasets/${ds1}/points?cursor=%27%3B--", e(400, detail_contains="cursor"))
add("query-points-cursor-overflow", "GET", "/v1/datasets/${ds1}/points?cursor=p99999999999999999999",
    e(400, detail_contains="cursor"))
add("setup-run-id", "GET", "/v1/experiments/${ex1}/runs?limit=1", e(200, problem=False),
    capture={"run1": "/items/0/id"})
RUNQ = {"max-points-negative": ("max_points=-1", "max_points"), "max-points-three": ("max_points=3", "max_points"),
        "max-points-huge": ("max_points=99999999999", "max_points"), "from-word": ("from=abc", "from"),
        "to-negative": ("to=-5", "to"), "from-after-to": ("from=10&to=5", "from"),
        "format-xml": ("format=xml", "format"), "full-yes": ("full=yes", "full"),
        "limit-zero": ("limit=0", "limit"), "cursor-garbage": ("cursor=zzz", "cursor"),
        "from-huge": ("from=99999999999999999", "from")}
for name, (q, word) in RUNQ.items():
    add(f"query-trajectory-{name}", "GET", "/v1/runs/${run1}/trajectory?" + q, e(400, detail_contains=word))

# =========================================================================================
# 11. Headers and request framing (answered by the HTTP layer: any 4xx, server stays up)
# =========================================================================================
add("header-request-id-control", "GET", "/healthz",
    e(200, problem=False, header_not={"X-Request-Id": "evil"}), headers=[["X-Request-Id", "evil\x01id"]])
add("header-request-id-log-injection", "GET", "/healthz",
    e(200, problem=False, header_not={"X-Request-Id": "evil"}),
    headers=[["X-Request-Id", "evil\" status=200 forged=\"1"]])
add("header-request-id-too-long", "GET", "/healthz",
    e(200, problem=False, header_not={"X-Request-Id": "evil"}), headers=[["X-Request-Id", "evil" * 100]])
add("header-request-id-plain-echoed", "GET", "/healthz",
    e(200, problem=False, header={"X-Request-Id": "hostile-req-1"}),
    headers=[["X-Request-Id", "hostile-req-1"]])
add("header-if-none-match-garbage", "GET", "/healthz", e(200, problem=False),
    headers=[["If-None-Match", "\"" * 500 + ",,,W/W/W/*x"]])
add("header-huge-count", "GET", "/v1/datasets?limit=0", e(400, detail_contains="limit"),
    headers=[[f"X-Filler-{i}", "v" * 20] for i in range(200)])
RAW = {
    "no-host-http11": b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
    "bad-content-length": b"POST /v1/architectures HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\nConnection: close\r\n\r\n{}",
    "content-length-letters": b"POST /v1/architectures HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\nConnection: close\r\n\r\n{}",
    "header-without-colon": b"GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\nConnection: close\r\n\r\n",
    "asterisk-target": b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "absolute-form-other-host": b"GET http://evil.example/v1/datasets HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "bad-chunk-size": b"POST /v1/architectures HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n",
}
for name, raw in RAW.items():
    add(f"raw-{name}", "GET", "/", e(0, status_class=4, problem=False),
        raw_b64=base64.b64encode(raw).decode())
b64 = lambda b: base64.b64encode(b).decode()
add("raw-huge-header-line", "GET", "/", e(0, status_class=4, problem=False),
    raw_gen=[[b64(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "), 1], [b64(b"aaaa"), 16384],
             [b64(b"\r\nConnection: close\r\n\r\n"), 1]])
add("raw-huge-request-line", "GET", "/", e(0, status_class=4, problem=False),
    raw_gen=[[b64(b"GET /v1/datasets/"), 1], [b64(b"aaaa"), 16384],
             [b64(b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 1]])

# =========================================================================================
# 12. A slow client: one byte every 100 ms; other clients must not wait for it
# =========================================================================================
add("slow-body-invalid-arch", "POST", A, e(422, "/layers/0/units"),
    body={"input_shape": [2], "layers": [{"type": "dense", "units": -7}]},
    slow={"interval_ms": 100, "chunk": 4})
add("slow-body-chunked", "POST", A, e(422, "/layers"), chunked=True,
    body={"input_shape": [2], "layers": []}, slow={"interval_ms": 100, "chunk": 3})
add("slow-body-csv", "POST", D, e(422, ""), headers=CSV, body=b"1,2\n3\n",
    slow={"interval_ms": 100, "chunk": 1})

# =========================================================================================
# 13. State conflicts after all of the above
# =========================================================================================
add("conflict-delete-dataset-in-use", "DELETE", "/v1/datasets/${ds1}", e(409))
add("conflict-delete-architecture-in-use", "DELETE", "/v1/architectures/${ar1}", e(409))

# numbers in "expect.status" of 0 mean "status_class" decides; normalise for readers
for c in cases:
    x = c["expect"]
    if x.get("status") == 0:
        del x["status"]

with open(os.path.join(HERE, "cases.jsonl"), "w", encoding="utf-8") as f:
    for c in cases:
        f.write(json.dumps(c, ensure_ascii=False) + "\n")
print(f"{len(cases)} cases")
