"""SmartSim 0.8 starts insitu as its database, unchanged: `insitu smartsim` lays out the
directory SmartSim's `smart build` would (bin/insitu-server, bin/redis-cli,
lib/redisai.so) in SmartSim's own installation, and an experiment (in SmartSim's
virtualenv, .venv-smartsim) launches a standalone Orchestrator and a colocated database
with the local launcher, SmartRedis puts tensors and a dataset and runs an ONNX model
through each, and SmartSim stops them (its `redis-cli shutdown`). The outputs equal
onnxruntime's."""

import os
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from conftest import ROOT, insitu_bin

VENV = ROOT / ".venv-smartsim"


def test_smartsim_launches_insitu_as_its_database(models_dir, tmp_path):
    python = VENV / "bin" / "python"
    if not python.exists():
        if os.environ.get("CI") or os.environ.get("INSITU_REQUIRE_PYTHON"):
            pytest.fail(f"{VENV} is missing: ./dev.sh setup creates it")
        pytest.skip(f"{VENV} is missing (./dev.sh setup creates it)")
    core = subprocess.run(
        [str(python), "-c", "import os, smartsim; print(os.path.join(os.path.dirname(smartsim.__file__), '_core'))"],
        capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    layout = subprocess.run([insitu_bin(), "smartsim", core], capture_output=True, text=True, timeout=30)
    assert layout.returncode == 0, layout.stderr
    assert f"export SMARTSIM_DEP_INSTALL_PATH={core}" in layout.stdout
    version = subprocess.run([str(python), "-c", "import smartsim; print(smartsim.__version__)"],
                             capture_output=True, text=True, timeout=60).stdout.strip()
    print("smartsim", version)
    model = models_dir / "mlp.onnx"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SR_", "SSDB", "SSKEY"))}
    # SmartSim's telemetry monitor outlives the experiment by its cooldown (90 s): off.
    env["SMARTSIM_FLAG_TELEMETRY"] = "0"
    log = tmp_path / "experiment.log"
    with open(log, "w") as f:
        run = subprocess.run([str(python), str(ROOT / "server/tests/smartsim/experiment.py"),
                              str(tmp_path / "exp"), str(model)],
                             stdout=f, stderr=subprocess.STDOUT, timeout=300, env=env, cwd=tmp_path)
    out = log.read_text()
    assert run.returncode == 0, out
    assert "orchestrator: tensors, dataset and model ok" in out, out
    assert "colocated app: SmartSimStatus.STATUS_COMPLETED" in out, out
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    want = sess.run(None, {name: np.ones((4, 16), dtype=np.float32)})[0]
    np.testing.assert_allclose(np.load(tmp_path / "exp" / "orchestrator_y.npy"), want, rtol=1e-5, atol=1e-6)
    x = np.arange(16, dtype=np.float32).reshape(1, 16) / 16
    want = sess.run(None, {name: x})[0]
    np.testing.assert_allclose(np.load(tmp_path / "exp" / "colocated_y.npy"), want, rtol=1e-5, atol=1e-6)
    # SmartSim stopped the database it started.
    left = subprocess.run(["pgrep", "-f", f"{core}/config/redis.conf"], capture_output=True, text=True)
    assert left.stdout.strip() == "", left.stdout
