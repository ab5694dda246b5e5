"""The Python side-by-side benchmark runs (a quick smoke run: it must not rot). It asserts
nothing about time: only that every workload ran for both contenders."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT, insitu_bin


def test_python_benchmark_smoke_run(tmp_path):
    out = tmp_path / "bench.json"
    env = dict(os.environ, INSITU_BIN=insitu_bin())
    r = subprocess.run([sys.executable, str(ROOT / "benches/python/bench_python.py"), "--quick",
                        "--json", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())
    names = [row["workload"] for row in rows]
    for size in ("1 KiB", "1 MiB", "16 MiB"):
        for mode in ("tcp", "unix", "inproc"):
            assert f"put+get {size} float32, {mode}" in names
    for batch in (1, 1024):
        for mode in ("tcp", "unix", "inproc"):
            assert f"infer MLP batch {batch}, {mode}" in names
    assert len(rows) == 15
    for row in rows:
        assert row["insitu_p50_us"] > 0 and row["peer_p50_us"] > 0
        assert row["insitu_p99_us"] >= row["insitu_p50_us"]
    assert "| put+get 16 MiB float32, unix |" in r.stdout
