"""KServe v2 inference side by side: the MLP at batch 1 and 1024 through insitu's gRPC and
HTTP front ends (tritonclient, Triton's own client, as the load generator), through RESP
(the insitu Python client's infer: one round trip) and in process (the insitu Python
package's in-process engine), against raw onnxruntime in the same Python process; 1 and
32 clients (client processes, each with its own connection).

    python benches/python/bench_kserve.py MODELS_DIR [--quick] [--json OUT.json]

Needs INSITU_BIN (a release `insitu` binary; ./dev.sh compare sets it). Rows are written
in the comparison harness' format (section "kserve"); benches/src/bin/compare.rs merges
them into BENCHMARKS.md. Every contender gets the same number of seconds per cell, in
interleaved rounds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

os.environ.setdefault("SR_LOG_LEVEL", "QUIET")


def make_call(kind: str, addr: str, batch: int, model_path: str):
    """A function doing one inference of `batch` rows the way `kind` does it."""
    x = np.random.default_rng(batch).standard_normal((batch, 16)).astype(np.float32)
    if kind == "grpc":
        import tritonclient.grpc as tg
        c = tg.InferenceServerClient(addr)
        i = tg.InferInput("x", [batch, 16], "FP32")
        i.set_data_from_numpy(x)
        return lambda: c.infer("mlp", [i]).as_numpy("y")
    if kind == "http":
        import tritonclient.http as th
        c = th.InferenceServerClient(addr)
        i = th.InferInput("x", [batch, 16], "FP32")
        i.set_data_from_numpy(x)
        return lambda: c.infer("mlp", [i]).as_numpy("y")
    if kind == "resp":
        import insitu
        c = insitu.Client(addr, key_in=[], key_out="")
        return lambda: c.infer("mlp", x)
    if kind == "inproc":
        import insitu
        c = insitu.Client("inproc", key_in=[], key_out="")
        c.set_model("mlp", Path(model_path).read_bytes())
        return lambda: c.infer("mlp", x)
    if kind == "raw":
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        s = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
        return lambda: s.run(None, {"x": x})
    raise ValueError(kind)


def client_loop(args):
    kind, addr, batch, model_path, seconds, start_at = args
    call = make_call(kind, addr, batch, model_path)
    for _ in range(3):
        call()
    while time.time() < start_at:
        time.sleep(0.001)
    lat = []
    end = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter_ns()
        call()
        lat.append((time.perf_counter_ns() - t0) / 1000)
        if time.perf_counter() >= end:
            break
    return lat


def cell(kind, addr, batch, model_path, clients, seconds, pool):
    start_at = time.time() + 0.3 + 0.02 * clients
    jobs = [(kind, addr, batch, model_path, seconds, start_at)] * clients
    t0 = time.time()
    if clients == 1:
        lats = [client_loop(jobs[0])]
    else:
        lats = pool.map(client_loop, jobs)
    wall = max(time.time() - max(t0, start_at), 1e-9)
    allv = np.concatenate([np.asarray(v) for v in lats])
    return allv, sum(len(v) for v in lats) / wall


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", help="the generated test models (INSITU_TEST_MODELS)")
    ap.add_argument("--quick", action="store_true", help="a fraction of a second per cell: a smoke run")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    binary = os.environ.get("INSITU_BIN")
    if not binary:
        print("set INSITU_BIN to an insitu binary (release for real numbers)", file=sys.stderr)
        return 2
    from insitu.testing import ServeProcess, free_port

    # Client processes are forked before anything opens a connection or a thread.
    pool = mp.get_context("fork").Pool(32)
    model = Path(args.models) / "mlp.onnx"
    repo = Path(tempfile.mkdtemp(prefix="insitu-bench-kserve-"))
    (repo / "mlp" / "1").mkdir(parents=True)
    shutil.copy(model, repo / "mlp" / "1" / "model.onnx")
    grpc_port, http_port = free_port(), free_port()
    server = ServeProcess("--log", "warn", "--model-repository", str(repo), "--grpc-port", str(grpc_port),
                          "--http-port", str(http_port), "--metrics-port", "off", binary=binary)
    seconds = 0.15 if args.quick else 1.0
    rounds = 1 if args.quick else 3
    addrs = {"grpc": f"127.0.0.1:{grpc_port}", "http": f"127.0.0.1:{http_port}", "resp": server.tcp,
             "inproc": "", "raw": ""}
    names = {"grpc": "insitu gRPC (tritonclient)", "http": "insitu HTTP (tritonclient)",
             "resp": "insitu RESP tcp (insitu client infer)", "inproc": "insitu in process (Python package)",
             "raw": "raw ONNX Runtime (Python, in process)"}
    rows = []
    try:
        # The parent never opens a gRPC channel: gRPC's threads do not survive a fork.
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://{addrs['http']}/v2/models/mlp/ready", timeout=5)
                break
            except OSError:
                assert time.time() < deadline, "the MLP did not load"
                time.sleep(0.05)
        with pool:
            for batch in (1, 1024):
                for clients in (1, 32):
                    kinds = ["grpc", "http", "resp"] + (["inproc", "raw"] if clients == 1 else [])
                    got = {k: ([], 0.0) for k in kinds}
                    for _ in range(rounds):
                        for k in kinds:
                            lat, rate = cell(k, addrs[k], batch, str(model), clients, seconds / rounds, pool)
                            prev, prev_rate = got[k]
                            got[k] = (prev + [lat], prev_rate + rate / rounds)
                    for k in kinds:
                        lat = np.concatenate(got[k][0])
                        rows.append({
                            "section": "kserve", "workload": f"infer MLP 16-32-4 batch {batch}",
                            "contender": names[k], "clients": clients,
                            "p50_us": float(np.median(lat)), "p99_us": float(np.percentile(lat, 99)),
                            "p999_us": float(np.percentile(lat, 99.9)), "max_us": float(lat.max()),
                            "ops_per_s": got[k][1], "ops": int(len(lat)),
                        })
                        r = rows[-1]
                        print(f"kserve {r['workload']:<30} {r['contender']:<40} c={clients:<3} "
                              f"p50 {r['p50_us']:>9.1f} us  p99 {r['p99_us']:>9.1f} us  {r['ops_per_s']:>9.0f} ops/s")
    finally:
        server.stop()
        shutil.rmtree(repo, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
