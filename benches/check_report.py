"""Check a comparison report (the smoke run of `./dev.sh test`): every section, every
target with a status, every plot a PNG. Nothing about time.

    python benches/check_report.py DIR      (DIR holds BENCHMARKS.md and plots/)
"""

import sys
from pathlib import Path

MODELS = ["MLP 16-32-4", "MLP 256-1024-256", "CNN 1x28x28"]
BATCHES = [1, 32]
TARGETS = [
    "tcp 1 KiB put/get, 1 client(s) vs redis-server",
    "tcp 1 KiB put/get, 32 client(s) vs redis-server",
    "tcp 1 KiB put/get pipelined -P 16, 32 clients vs redis-server",
    "tcp 1 MiB put+get, 1 client(s) vs redis-server",
    "tcp 1 MiB put+get, 32 client(s) vs redis-server",
    "tcp 16 MiB put+get, 1 client(s) vs redis-server",
    "tcp 16 MiB put+get, 32 client(s) vs redis-server",
    "unix + shared memory 16 MiB put+get vs memory-copy bandwidth",
    *[f"inproc {call} {model} batch {batch} vs raw ONNX Runtime (latency)"
      for model in MODELS for batch in BATCHES for call in ("run_model", "infer")],
    "AI.MODELEXECUTE 1 client vs redis-server SET",
    "AI.DAGEXECUTE 32 clients vs redis-server PING",
    "AI.DAGEXECUTE 32 clients vs RedisAI",
    "AI.MODELEXECUTE 32 clients vs RedisAI",
    "tcp 1 KiB writes with append-only persistence, 32 clients vs redis-server",
    "tcp 64 KiB writes with append-only persistence, 32 clients vs redis-server",
    "batching: 32 batch-1 requesters, rows/s with vs without batching",
    "batching: rows/s vs raw ONNX Runtime at batch 32",
    "tail latency at 256 clients: p99 / p50",
    "cluster put+get 1 KiB, 1 client: latency vs one standalone node",
    "node-local put+get() 16 MiB float32 (Python) vs two memory copies",
    "node-local first use: put+get() 16 MiB float32 on a new connection (Python) vs two memory copies",
    "node-local put+get() 1 MiB float32 (Python) vs two memory copies",
    "node-local first use: put+get() 1 MiB float32 on a new connection (Python) vs two memory copies",
    "node-local put+unpack 16 MiB float64 (C) vs two memory copies",
    "node-local put+unpack 1 MiB float64 (C) vs two memory copies",
    "node-local put+get 16 MiB float64 (Fortran) vs two memory copies",
    "node-local put+get 1 MiB float64 (Fortran) vs two memory copies",
]
SECTIONS = ["## Targets", "## put+get round trips", "## Inference in process",
            "## Through the server with redis-benchmark", "## Dynamic batching",
            "## Writes with append-only persistence", "## Tail latency",
            "## A 3-node cluster against one node", "## KServe v2",
            "## Node-local transfers", "## Plots"]
PLOTS = ["latency_vs_size_1c.png", "latency_vs_size_32c.png", "throughput_vs_clients_1kib.png"]


def main() -> int:
    d = Path(sys.argv[1])
    md = (d / "BENCHMARKS.md").read_text()
    problems = [f"missing section {s!r}" for s in SECTIONS if s not in md]
    for t in TARGETS:
        rows = [line for line in md.splitlines() if line.startswith(f"| {t} |")]
        if len(rows) != 1 or not rows[0].endswith(("| met |", "| **missed** |", "| not measured |")):
            problems.append(f"target {t!r}: {rows}")
    for contender in ("insitu inproc", "insitu unix+shm", "insitu tcp", "redis-server tcp SET+GET",
                      "memory copy (1x size)"):
        for size in ("1 KiB", "64 KiB", "1 MiB", "16 MiB"):
            for clients in (1, 32):
                if f"| put+get {size} float32 | {contender} | {clients} |" not in md:
                    problems.append(f"no row put+get {size} {contender} {clients} clients")
    for model in MODELS:
        for batch in BATCHES:
            for contender in ("raw ONNX Runtime (in process)", "insitu inproc run_model", "insitu inproc infer",
                              "insitu unix run_model", "insitu tcp infer"):
                if f"| {model} batch {batch} | {contender} | 1 |" not in md:
                    problems.append(f"no inference row {model} batch {batch} {contender}")
            for clients in (1, 32):
                if f"| {model} batch {batch} | insitu AI.MODELEXECUTE | {clients} |" not in md:
                    problems.append(f"no redis-benchmark row {model} batch {batch} {clients} clients")
    for proto in ("insitu gRPC (tritonclient)", "insitu HTTP (tritonclient)", "insitu RESP tcp (insitu client infer)"):
        for batch in (1, 1024):
            for clients in (1, 32):
                if f"| infer MLP 16-32-4 batch {batch} | {proto} | {clients} |" not in md:
                    problems.append(f"no KServe row {proto} batch {batch} {clients} clients")
    for p in PLOTS:
        f = d / "plots" / p
        if not f.exists() or f.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
            problems.append(f"plot {p} missing or not a PNG")
        if f"(plots/{p})" not in md:
            problems.append(f"plot {p} not linked")
    for p in problems:
        print("check_report:", p)
    if not problems:
        print(f"check_report: {d / 'BENCHMARKS.md'}: {len(TARGETS)} targets, every section and plot")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
