"""A SmartSim 0.8 experiment against insitu, run in SmartSim's own virtualenv (SmartSim
pins protobuf 3, the other suites' onnx needs a newer one). SmartSim finds insitu through
SMARTSIM_DEP_INSTALL_PATH (laid out by `insitu smartsim DIR`), starts it as it starts
redis-server, and SmartRedis uses it:

- a standalone Orchestrator (local launcher), used by a SmartRedis client in this
  process: tensors, a dataset, an ONNX model stored and run;
- a colocated database beside a model (SmartSim's colocated entrypoint starts insitu
  with a TCP port), the model's script putting, running and reading back through it.

Usage: experiment.py WORKDIR MODEL.onnx. Prints one line per check; exits non-zero on the
first failure."""

import os
import sys
import socket
from pathlib import Path

import numpy as np
from smartredis import Client, Dataset
from smartsim import Experiment
from smartsim.status import SmartSimStatus


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


COLOCATED_APP = '''
import sys
import numpy as np
from smartredis import Client
c = Client(logger_name="colocated-app")
x = np.arange(16, dtype=np.float32).reshape(1, 16) / 16
c.put_tensor("x", x)
c.set_model_from_file("mlp", sys.argv[1], "ONNX", "CPU")
c.run_model("mlp", ["x"], ["y"])
y = c.get_tensor("y")
np.save(sys.argv[2], y)
print("colocated app: y", y.shape, flush=True)
'''


def main() -> int:
    work, model = Path(sys.argv[1]), sys.argv[2]
    work.mkdir(parents=True, exist_ok=True)
    exp = Experiment("insitu-smartsim", exp_path=str(work), launcher="local")

    # A standalone database, as SmartSim starts redis-server.
    db = exp.create_database(port=free_port(), interface="lo")
    exp.start(db)
    try:
        address = db.get_address()[0]
        print("orchestrator at", address, flush=True)
        os.environ["SR_DB_TYPE"] = "Standalone"
        c = Client(address=address, cluster=False, logger_name="driver")
        a = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
        c.put_tensor("a", a)
        assert (c.get_tensor("a") == a).all()
        ds = Dataset("ds")
        ds.add_tensor("u", a.astype(np.float32))
        ds.add_meta_scalar("step", np.int64(3))
        c.put_dataset(ds)
        got = c.get_dataset("ds")
        assert (got.get_tensor("u") == a.astype(np.float32)).all()
        c.set_model_from_file("mlp", model, "ONNX", "CPU")
        x = np.ones((4, 16), dtype=np.float32)
        c.put_tensor("x", x)
        c.run_model("mlp", ["x"], ["y"])
        y = c.get_tensor("y")
        np.save(work / "orchestrator_y.npy", y)
        print("orchestrator: tensors, dataset and model ok; y", y.shape, flush=True)
        info = c.get_db_node_info([address])[0]
        print("orchestrator server:", info["Server"]["redis_version"], flush=True)
    finally:
        exp.stop(db)
    print("orchestrator stopped:", exp.get_status(db)[0], flush=True)

    # A colocated database beside an application.
    app_script = work / "app.py"
    app_script.write_text(COLOCATED_APP)
    rs = exp.create_run_settings(exe=sys.executable,
                                 exe_args=[str(app_script), model, str(work / "colocated_y.npy")])
    app = exp.create_model("app", rs)
    app.colocate_db_tcp(port=free_port(), ifname="lo", db_cpus=1)
    exp.start(app, block=True)
    status = exp.get_status(app)[0]
    print("colocated app:", status, flush=True)
    if status != SmartSimStatus.STATUS_COMPLETED:
        out = sorted(work.rglob("app*.out")) + sorted(work.rglob("app*.err"))
        for f in out:
            print(f"--- {f}\n{f.read_text()}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
