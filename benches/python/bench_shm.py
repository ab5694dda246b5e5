"""Node-local transfers at memory speed: put+get through the Python package over a Unix
socket (the shared-memory heap) next to numpy copies of the same bytes, in one run; then
C and Fortran put + unpack next to two memcpys (benches/fortran/bench_shm.c, .f90).

    python benches/python/bench_shm.py [--quick] [--json OUT.json] [--native DIR]

Needs INSITU_BIN (a release `insitu` binary). `--native DIR`: where
benches/fortran/build_shm.sh put `bench_shm_c` and `bench_shm_f` (skipped when absent).
Rows:
- `put+get()`: one copy in (into the block the server lends), one out (into a writable
  numpy array) — next to two numpy copies.
- `put+get(copy=False)`: one copy in, the get a read-only view of the stored block — next
  to one numpy copy.
- `first use`: the same put+get() as the first transfer of a new connection (connecting
  is not timed) — next to two numpy copies.
Contenders run interleaved, round after round, so machine noise hits them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import insitu  # noqa: E402
from insitu.testing import ServeProcess  # noqa: E402


def timed(f, ops: int) -> list[float]:
    out = []
    for _ in range(ops):
        t0 = time.perf_counter_ns()
        f()
        out.append((time.perf_counter_ns() - t0) / 1000)
    return out


def summary(v: list[float]) -> tuple[float, float]:
    return float(np.median(v)), float(np.percentile(v, 99))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a few ops each: a smoke run")
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--native", help="directory holding bench_shm_c and bench_shm_f")
    args = ap.parse_args()
    binary = os.environ.get("INSITU_BIN")
    if not binary:
        print("set INSITU_BIN to an insitu binary (release for real numbers)", file=sys.stderr)
        return 2
    rounds = 3 if args.quick else 7
    server = ServeProcess("--log", "warn", binary=binary)
    rows = []
    try:
        c = insitu.Client(server.unix, key_in=[], key_out="")
        assert c.shared_memory, "the Unix socket client uses shared memory"
        for label, nbytes in (("1 MiB", 1 << 20), ("16 MiB", 16 << 20)):
            ops = max(3, (40 if args.quick else 400) * (1 << 20) // nbytes)
            a = np.random.default_rng(1).standard_normal(nbytes // 4).astype(np.float32)
            o1, o2 = np.empty_like(a), np.empty_like(a)

            def put_get():
                c.put_tensor("t", a)
                return c.get_tensor("t")

            def put_view():
                c.put_tensor("t", a)
                return c.get_tensor("t", copy=False)

            def two_copies():
                np.copyto(o1, a)
                np.copyto(o2, o1)

            def one_copy():
                np.copyto(o1, a)

            def first_use() -> float:
                """A new connection's first put+get (connecting and closing not timed)."""
                f = insitu.Client(server.unix, key_in=[], key_out="")
                t0 = time.perf_counter_ns()
                f.put_tensor("f", a)
                f.get_tensor("f")
                us = (time.perf_counter_ns() - t0) / 1000
                f.close()
                return us

            names = ("put+get()", "numpy copy x2", "put+get(copy=False)", "numpy copy x1",
                     "first use put+get()", "numpy copy x2 (first use)")
            lat = {k: [] for k in names}
            for f in (put_get, put_view, two_copies):  # warm up
                for _ in range(3):
                    f()
            for _ in range(rounds):
                lat["put+get()"] += timed(put_get, ops)
                lat["numpy copy x2"] += timed(two_copies, ops)
                lat["put+get(copy=False)"] += timed(put_view, ops)
                lat["numpy copy x1"] += timed(one_copy, ops)
                n_first = max(2, ops // 4)
                lat["first use put+get()"] += [first_use() for _ in range(n_first)]
                lat["numpy copy x2 (first use)"] += timed(two_copies, n_first)
                # Check the bytes, every element, once per round.
                assert np.array_equal(put_get(), a) and np.array_equal(put_view(), a)
            s = {k: summary(v) for k, v in lat.items()}
            rows.append((f"put+get() {label} float32 (Python)", s["put+get()"],
                         "memory copy x2 (numpy)", s["numpy copy x2"]))
            rows.append((f"put+get(copy=False) {label} float32 (Python)", s["put+get(copy=False)"],
                         "memory copy x1 (numpy)", s["numpy copy x1"]))
            rows.append((f"first use: put+get() {label} float32 on a new connection (Python)",
                         s["first use put+get()"], "memory copy x2 (numpy)", s["numpy copy x2 (first use)"]))
        c.close()
        if args.native:
            for lang, exe in (("C", "bench_shm_c"), ("Fortran", "bench_shm_f")):
                path = Path(args.native) / exe
                if not path.exists():
                    print(f"{path} is missing: no {lang} rows", file=sys.stderr)
                    continue
                out = subprocess.run([str(path), str(server.sock), "3" if args.quick else "41"],
                                     check=True, capture_output=True, text=True, timeout=600).stdout
                # Lines: "<size label> <insitu p50> <insitu p99> <memcpy p50> <memcpy p99>"
                for line in out.splitlines():
                    size, mib, a50, a99, b50, b99 = line.split()
                    what, peer = (("put+unpack", "memory copy x2 (memcpy)") if lang == "C"
                                  else ("put+get", "memory copy x2 (array assignment)"))
                    rows.append((f"{what} {size} {mib} float64 ({lang})", (float(a50), float(a99)),
                                 peer, (float(b50), float(b99))))
    finally:
        server.stop()

    lines = [f"# node-local transfers ({'quick smoke run' if args.quick else 'full run'})", "",
             "| workload | insitu p50 / p99 (us) | peer | peer p50 / p99 (us) | ratio (peer p50 / insitu p50) |",
             "|---|---|---|---|---|"]
    for name, (a50, a99), peer, (b50, b99) in rows:
        lines.append(f"| {name} | {a50:.1f} / {a99:.1f} | {peer} | {b50:.1f} / {b99:.1f} | {b50 / a50:.2f}x |")
    print("\n".join(lines))
    if args.json:
        # The comparison harness' row format (section "shm"): insitu and its peer per workload.
        out = []
        for name, (a50, a99), peer, (b50, b99) in rows:
            for contender, p50, p99 in (("insitu unix+shm", a50, a99), (peer, b50, b99)):
                out.append({"section": "shm", "workload": name, "contender": contender, "clients": 1,
                            "p50_us": p50, "p99_us": p99, "ops_per_s": 1e6 / p50})
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
