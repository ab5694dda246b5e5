"""Render the comparison harness' results (benches/src/bin/compare.rs) as BENCHMARKS.md
and PNG plots.

    python benches/report.py RESULTS.json OUT.md PLOTS_DIR [--command "./dev.sh compare"]

OUT.md gets the tables, PLOTS_DIR the PNG plots it links (relative to OUT.md). Every figure is shown next to its peer with
the ratio; every target is marked met or missed, and a missed target carries the
profile-backed analysis recorded for it in benches/analysis.md (a section per target,
headed by the target's name), or says plainly that none is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent

# For each section: the peer each contender is compared with, and what the ratio means.
PEERS = {
    "put_get": ("redis-server tcp SET+GET", "throughput vs redis-server (higher is better)"),
    "inference": ("raw ONNX Runtime (in process)", "latency vs raw ONNX Runtime (lower is better)"),
    "redis_benchmark": (None, "throughput vs the redis-server row of the same clients (higher is better)"),
    "persistence": (None, "throughput vs redis-server with appendonly, same clients (higher is better)"),
    "batching": ("raw ONNX Runtime batch 32 (rows/s)", "rows/s vs raw ONNX Runtime at batch 32"),
    "tail": ("redis-server SET+GET", "p99 vs redis-server's p99 (lower is better)"),
    "kserve": ("raw ONNX Runtime (Python, in process)", "latency (p50) vs raw onnxruntime called from Python at the same batch (lower is better); compare ops/s between rows of the same clients"),
    "shm": (None, "speed vs copies of the same bytes in the same language: the copies' p50 / insitu's p50 (higher is better; 1.0x = as fast as the copies)"),
    "cluster": ("insitu standalone node", "throughput vs one standalone insitu node, same clients (the 3 nodes share this machine's 2 cores)"),
}

TITLES = {
    "put_get": "put+get round trips (float32), side by side",
    "inference": "Inference in process and through the server",
    "redis_benchmark": "Through the server with redis-benchmark",
    "persistence": "Writes with append-only persistence (appendfsync everysec)",
    "batching": "Dynamic batching: 32 concurrent batch-1 requesters",
    "tail": "Tail latency: 256 concurrent clients",
    "cluster": "A 3-node cluster against one node (loopback, one machine)",
    "kserve": "KServe v2: gRPC and HTTP (tritonclient) beside RESP, in process and raw ONNX Runtime",
    "shm": "Node-local transfers: the shared-memory heap beside memory copies",
}


def analyses() -> dict[str, str]:
    """Sections of benches/analysis.md by heading."""
    path = HERE / "analysis.md"
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    name = None
    for line in path.read_text().splitlines():
        m = re.match(r"^## (.+)$", line)
        if m:
            name = m.group(1).strip()
            out[name] = ""
        elif name is not None:
            out[name] += line + "\n"
    return {k: v.strip() for k, v in out.items()}


def fmt(v: float, unit: str = "") -> str:
    if v is None or v != v:  # NaN (null in JSON)
        return "-"
    if unit == "ops":
        return f"{v:,.0f}"
    return f"{v:,.1f}" if v < 1000 else f"{v:,.0f}"


def peer_row(rows, r):
    section = r["section"]
    peer, _ = PEERS[section]
    same = [x for x in rows if x["section"] == section and x["workload"] == r["workload"]]
    if section in ("redis_benchmark", "persistence"):
        want = None
        if "TENSORSET" in r["contender"]:
            want = "redis-server SET"
        elif "TENSORGET" in r["contender"]:
            want = "redis-server GET"
        elif "MODELEXECUTE" in r["contender"]:
            want = "redis-server SET 1 KiB"
        elif "DAGEXECUTE" in r["contender"]:
            want = "redis-server PING"
        cands = [x for x in same if x["contender"] == want and x["clients"] == r["clients"]]
    elif section in ("inference", "batching", "kserve"):
        cands = [x for x in same if x["contender"] == peer]
    elif section == "shm":
        cands = [x for x in same if x["contender"].startswith("memory copy")]
    else:
        cands = [x for x in same if x["contender"] == peer and x["clients"] == r["clients"]]
    return cands[0] if cands else None


def ratio(section, r, p):
    if p is None or r is p:
        return ""
    keys = ("p50_us",) if section in ("inference", "kserve") else ("p99_us",) if section == "tail" else ("ops_per_s",)
    if any(not r.get(k) or not p.get(k) for k in keys):
        return "-"  # a rate the run could not time (null in the results)
    if section in ("inference", "kserve"):
        return f"{r['p50_us'] / p['p50_us']:.2f}x"
    if section == "shm":
        return f"{p['p50_us'] / r['p50_us']:.2f}x"
    if section == "tail":
        return f"{r['p99_us'] / p['p99_us']:.2f}x"
    return f"{r['ops_per_s'] / p['ops_per_s']:.2f}x"


def versus_redisai(rows, r) -> str:
    """insitu's rate over RedisAI's for the same command, workload and clients."""
    if not r["contender"].startswith("insitu "):
        return ""
    want = "RedisAI " + r["contender"][len("insitu "):]
    peer = [x for x in rows if x["section"] == r["section"] and x["workload"] == r["workload"]
            and x["clients"] == r["clients"] and x["contender"] == want]
    if not peer or not peer[0]["ops_per_s"] or not r["ops_per_s"]:
        return ""
    return f"{r['ops_per_s'] / peer[0]['ops_per_s']:.2f}x"


def tables(doc) -> list[str]:
    rows = doc["rows"]
    lines = []
    for section in ["put_get", "shm", "inference", "redis_benchmark", "persistence", "batching", "tail", "cluster",
                    "kserve"]:
        sec = [r for r in rows if r["section"] == section]
        if not sec:
            continue
        vs_rai = section == "redis_benchmark"
        ratio_line = f"Ratio: {PEERS[section][1]}." + (
            " vs RedisAI: insitu's throughput / RedisAI's, same command, workload and clients "
            "(higher is better)." if vs_rai else "")
        lines += [f"## {TITLES[section]}", "", ratio_line, ""]
        lines += ["| workload | contender | clients | p50 us | p99 us | p99.9 us | max us | ops/s | ratio |"
                  + (" vs RedisAI |" if vs_rai else ""),
                  "|---|---|---|---|---|---|---|---|---|" + ("---|" if vs_rai else "")]
        for r in sec:
            p = peer_row(rows, r)
            lines.append(
                f"| {r['workload']} | {r['contender']} | {r['clients']} | {fmt(r['p50_us'])} | "
                f"{fmt(r['p99_us'])} | {fmt(r.get('p999_us', float('nan')))} | "
                f"{fmt(r.get('max_us', float('nan')))} | {fmt(r['ops_per_s'], 'ops')} | {ratio(section, r, p)} |"
                + (f" {versus_redisai(rows, r)} |" if vs_rai else ""))
        lines.append("")
        if vs_rai:
            lines += [doc.get("redisai_note", "No RedisAI rows in this run."), ""]
        if section == "persistence":
            lines += ["Both servers journal every write before its reply and fsync once a second "
                      "(insitu: `--appendonly yes`, redis-server: `--appendonly yes`); a kill -9 "
                      "loses no acknowledged write on either.", ""]
        if section == "cluster":
            lines += [n + "\n" for n in doc.get("cluster_notes", [])]
        if section == "kserve":
            lines += ["Every protocol runs the same model on the same server (`insitu serve "
                      "--model-repository`, the MLP without batching). gRPC and HTTP are driven by "
                      "tritonclient, Triton's Python client, whose own cost per call (building and "
                      "parsing protobuf or JSON, gevent, HTTP/2 framing in grpcio) dominates at batch 1: "
                      "the server answers each gRPC call with one read and one write (seen with "
                      "strace). RESP is the insitu Python client's infer (one round trip); "
                      "32 clients are 32 processes on this machine's cores.", ""]
        if section == "put_get":
            lines += ["Memory-copy rows copy the tensor's bytes once; a put+get moves them twice. "
                      "`insitu unix+shm` keeps tensors of 256 KiB and more in the server's "
                      "shared-memory heap: a put copies once into a block the server lends, a get "
                      "maps the stored block; only descriptors go through the socket.", ""]
        if section == "shm":
            lines += ["Each row: the same bytes through insitu and through plain copies in the same "
                      "language, interleaved in one run. `put+get()` copies once in (into the block the "
                      "server lends) and once out (into a new writable numpy array); "
                      "`put+get(copy=False)` copies once (the get is a read-only view of the stored "
                      "block); `first use` is the first put+get of a new connection (connecting not "
                      "timed). C unpacks into the caller's buffer, Fortran gets into its array "
                      "(`layout=1`, no transpose).", ""]
            lines += [n + "\n" for n in doc.get("shm_notes", [])]
    for note in doc.get("kserve_notes", []):
        lines += [note, ""]
    return lines


def plots(doc, pdir: Path, md_dir: Path) -> list[str]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ["(matplotlib is not installed: no plots)", ""]
    pdir.mkdir(parents=True, exist_ok=True)
    rows = [r for r in doc["rows"] if r["section"] == "put_get"]
    sizes = ["1 KiB", "64 KiB", "1 MiB", "16 MiB"]
    contenders = sorted({r["contender"] for r in rows})
    made = []
    for clients in (1, 32):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for c in contenders:
            ys = []
            for s in sizes:
                m = [r for r in rows if r["contender"] == c and r["clients"] == clients
                     and r["workload"] == f"put+get {s} float32"]
                ys.append(m[0]["p50_us"] if m else float("nan"))
            ax.plot(sizes, ys, marker="o", label=c)
        ax.set_yscale("log")
        ax.set_xlabel("tensor size")
        ax.set_ylabel("p50 latency per put+get (us, log)")
        ax.set_title(f"put+get latency vs size, {clients} client(s)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        name = f"latency_vs_size_{clients}c.png"
        fig.tight_layout()
        fig.savefig(pdir / name, dpi=110)
        plt.close(fig)
        made.append(name)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for c in contenders:
        xs, ys = [], []
        for clients in (1, 32):
            m = [r for r in rows if r["contender"] == c and r["clients"] == clients
                 and r["workload"] == "put+get 1 KiB float32"]
            if m:
                xs.append(clients)
                ys.append(m[0]["ops_per_s"])
        ax.plot(xs, ys, marker="o", label=c)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("put+get round trips per second (log)")
    ax.set_title("throughput vs clients, 1 KiB")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(pdir / "throughput_vs_clients_1kib.png", dpi=110)
    plt.close(fig)
    made.append("throughput_vs_clients_1kib.png")
    rel = os.path.relpath(pdir, md_dir)
    return [f"![{m}]({rel}/{m})" for m in made] + [""]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("out_md")
    ap.add_argument("plots_dir")
    ap.add_argument("--command", default="./dev.sh compare")
    args = ap.parse_args()
    doc = json.loads(Path(args.results).read_text())
    out_md = Path(args.out_md)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    m = doc["machine"]
    notes = analyses()
    lines = [
        "# insitu benchmarks, side by side",
        "",
        f"Generated by `{args.command}` ({'QUICK SMOKE RUN: not a measurement' if doc['quick'] else 'full run'}, "
        f"{doc['seconds']:.0f} s; {doc['cell_seconds']:g} s per cell, tail {doc['tail_seconds']:g} s). "
        "Every peer runs in the same run on the same machine: insitu serve and redis-server as separate "
        "processes on loopback, the clients in one harness process; ratios compare rows of one run, "
        "which is what survives this machine's noise.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']:.0f} GiB, Linux {m['kernel']}; "
        f"{m['redis_server']}; ONNX Runtime {m['onnxruntime']}.",
        "",
        "## Targets",
        "",
        "| target | measured | goal | status |",
        "|---|---|---|---|",
    ]
    for t in doc["targets"]:
        status = "not measured" if t["value"] is None else "met" if t["met"] else "**missed**"
        value = "-" if t["value"] is None else f"{t['value']:.3f}x"
        lines.append(f"| {t['name']} | {value} ({t['detail']}) | {t['goal']} | {status} |")
    lines.append("")
    missed = [t for t in doc["targets"] if not t["met"] and t["value"] is not None]
    if missed:
        lines += ["### Why the missed targets are missed", ""]
        for t in missed:
            lines += [f"#### {t['name']}", "", notes.get(t["name"], "No analysis recorded yet."), ""]
    lines += tables(doc)
    lines += ["## Plots", ""] + plots(doc, Path(args.plots_dir), out_md.parent)
    out_md.write_text("\n".join(lines))
    print(f"wrote {out_md}")


if __name__ == "__main__":
    main()
