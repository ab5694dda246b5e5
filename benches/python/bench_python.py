"""Python side by side: insitu's Python client vs the SmartRedis Python client against the
same `insitu serve`, and insitu's infer vs raw onnxruntime in Python.

    python benches/python/bench_python.py [--quick] [--json OUT.json]

Needs INSITU_BIN (a release `insitu` binary; ./dev.sh bench sets it), smartredis,
onnxruntime, onnx. Contenders run interleaved, round after round, so machine noise hits
them alike; the table shows per-operation medians and p99 and the ratio to the peer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("SR_DB_TYPE", "Standalone")
os.environ.setdefault("SR_LOG_LEVEL", "QUIET")
os.environ.setdefault("SR_LOG_FILE", os.devnull)

import insitu  # noqa: E402
from insitu.testing import ServeProcess  # noqa: E402


def mlp(n_in=16, n_hidden=64, n_out=4):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal(s).astype(np.float32) for s in ((n_in, n_hidden), (n_hidden,), (n_hidden, n_out), (n_out,))]
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h0"]), helper.make_node("Add", ["h0", "b1"], ["h1"]),
         helper.make_node("Relu", ["h1"], ["h"]), helper.make_node("MatMul", ["h", "w2"], ["y0"]),
         helper.make_node("Add", ["y0", "b2"], ["y"])],
        "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", n_out])],
        [numpy_helper.from_array(a, n) for a, n in zip(ws, ("w1", "b1", "w2", "b2"))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def measure(contenders: dict, ops: int, rounds: int) -> dict:
    """Per-op latencies (us) of each contender, interleaved round by round."""
    lat = {k: [] for k in contenders}
    for f in contenders.values():  # warm up
        for _ in range(max(2, ops // 10)):
            f()
    for _ in range(rounds):
        for k, f in contenders.items():
            for _ in range(ops):
                t0 = time.perf_counter_ns()
                f()
                lat[k].append((time.perf_counter_ns() - t0) / 1000)
    return {k: (float(np.median(v)), float(np.percentile(v, 99))) for k, v in lat.items()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a few ops each: a smoke run")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()
    binary = os.environ.get("INSITU_BIN")
    if not binary:
        print("set INSITU_BIN to an insitu binary (release for real numbers)", file=sys.stderr)
        return 2
    from smartredis import Client as SRClient
    import onnxruntime as ort

    server = ServeProcess("--log", "warn", binary=binary)
    tcp, unix = server.tcp, server.unix
    rows = []
    try:
        ins = {"tcp": insitu.Client(tcp, key_in=[], key_out=""),
               "unix": insitu.Client(unix, key_in=[], key_out="")}
        inproc = insitu.Client("inproc", key_in=[], key_out="")
        sr = {"tcp": SRClient(address=tcp, cluster=False), "unix": SRClient(address=unix, cluster=False)}
        scale = 0.05 if args.quick else 1.0

        def ops_for(nbytes):
            return max(3, int(scale * min(2000, max(20, (256 << 20) // (nbytes * 8)))))

        for label, nbytes in (("1 KiB", 1 << 10), ("1 MiB", 1 << 20), ("16 MiB", 16 << 20)):
            a = np.random.default_rng(1).standard_normal(nbytes // 4).astype(np.float32)
            out = np.empty_like(a)
            for tr in ("tcp", "unix"):
                c, s = ins[tr], sr[tr]
                res = measure({
                    "insitu": lambda: (c.put_tensor("t", a), c.get_tensor("t")),
                    "smartredis": lambda: (s.put_tensor("t", a), s.get_tensor("t")),
                }, ops_for(nbytes), 3 if args.quick else 5)
                rows.append((f"put+get {label} float32, {tr}", "insitu", res["insitu"], "SmartRedis", res["smartredis"]))
            res = measure({
                "insitu": lambda: (inproc.put_tensor("t", a), inproc.get_tensor("t")),
                "memcpy": lambda: np.copyto(out, a),
            }, ops_for(nbytes), 3 if args.quick else 5)
            rows.append((f"put+get {label} float32, inproc", "insitu", res["insitu"], "numpy copy x1", res["memcpy"]))

        model = mlp()
        sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        for c in list(ins.values()) + [inproc]:
            c.set_model("mlp", model)
        for batch in (1, 1024):
            x = np.random.default_rng(2).standard_normal((batch, 16)).astype(np.float32)
            n = max(3, int(scale * (2000 if batch == 1 else 400)))
            raw = lambda: sess.run(None, {"x": x})  # noqa: E731
            res = measure({"insitu": lambda: inproc.infer("mlp", x), "raw": raw}, n, 3 if args.quick else 5)
            rows.append((f"infer MLP batch {batch}, inproc", "insitu", res["insitu"], "onnxruntime (Python)", res["raw"]))
            for tr in ("tcp", "unix"):
                c, s = ins[tr], sr[tr]

                def sr_run():
                    s.put_tensor("x", x)
                    s.run_model("mlp", ["x"], ["y"])
                    return s.get_tensor("y")

                res = measure({"insitu": lambda: c.infer("mlp", x), "sr": sr_run}, n, 3 if args.quick else 5)
                rows.append((f"infer MLP batch {batch}, {tr}", "insitu infer", res["insitu"],
                             "SmartRedis put+run_model+get", res["sr"]))
    finally:
        server.stop()

    lines = [f"# insitu Python client, side by side ({'quick smoke run' if args.quick else 'full run'})",
             "", f"machine: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
             f"numpy {np.__version__}", "",
             "| workload | insitu p50 / p99 (us) | peer | peer p50 / p99 (us) | insitu speed-up (peer p50 / insitu p50) |",
             "|---|---|---|---|---|"]
    for name, _, (a50, a99), peer, (b50, b99) in rows:
        lines.append(f"| {name} | {a50:.1f} / {a99:.1f} | {peer} | {b50:.1f} / {b99:.1f} | {b50 / a50:.2f}x |")
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{"workload": r[0], "insitu_p50_us": r[2][0], "insitu_p99_us": r[2][1], "peer": r[3],
              "peer_p50_us": r[4][0], "peer_p99_us": r[4][1]} for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
