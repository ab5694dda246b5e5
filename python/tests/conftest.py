"""Fixtures: insitu served every way a Python user meets it — this process' engine
(``inproc``), the same engine served by ``insitu.Server`` over TCP and a Unix socket, and
a separate ``insitu serve`` process over TCP and its Unix socket — plus small ONNX models
built with the ``onnx`` package."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import insitu

ROOT = Path(__file__).resolve().parents[2]


def insitu_bin() -> str:
    if os.environ.get("INSITU_BIN"):
        return os.environ["INSITU_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    path = target / "debug" / "insitu"
    if not path.exists():
        raise RuntimeError(f"{path} not built: run `cargo build` (or set INSITU_BIN)")
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """An ``insitu serve`` process on a free TCP port and a private Unix socket."""

    def __init__(self, *extra: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="insitu-pyapi-"))
        self.port = free_port()
        self.sock = self.dir / "s.sock"
        self.log = open(self.dir / "server.log", "wb")
        self.proc = subprocess.Popen(
            [insitu_bin(), "serve", "--port", str(self.port), "--unixsocket", str(self.sock),
             "--dir", str(self.dir), *extra],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                if self.sock.exists():
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("server did not start: " + (self.dir / "server.log").read_text())
            time.sleep(0.02)

    @property
    def tcp(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def unix(self) -> str:
        return f"unix://{self.sock}"

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.log.close()
        return code


@pytest.fixture(scope="session")
def serve():
    s = ServeProcess()
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="session")
def embedded(tmp_path_factory):
    sock = tmp_path_factory.mktemp("emb") / "e.sock"
    with insitu.Server(port=0, unix_socket=str(sock)) as s:
        yield s


MODES = ["inproc", "embedded-tcp", "embedded-unix", "serve-tcp", "serve-unix"]


def address_of(mode: str, request) -> str:
    if mode == "inproc":
        return "inproc"
    if mode.startswith("embedded"):
        s = request.getfixturevalue("embedded")
        return s.address if mode.endswith("tcp") else s.unix_address
    s = request.getfixturevalue("serve")
    return s.tcp if mode.endswith("tcp") else s.unix


@pytest.fixture(params=MODES)
def mode(request) -> str:
    return request.param


@pytest.fixture
def client(mode, request):
    with insitu.Client(address_of(mode, request), key_in=[], key_out="") as c:
        c.flush_db()
        yield c


# ----- models -----

def mlp_model(n_in: int = 4, n_hidden: int = 8, n_out: int = 3, seed: int = 0):
    """A dynamic-batch MLP y = relu(x W1 + b1) W2 + b2 as ONNX bytes, with its weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((n_in, n_hidden)).astype(np.float32)
    b1 = rng.standard_normal(n_hidden).astype(np.float32)
    w2 = rng.standard_normal((n_hidden, n_out)).astype(np.float32)
    b2 = rng.standard_normal(n_out).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h0"]),
         helper.make_node("Add", ["h0", "b1"], ["h1"]),
         helper.make_node("Relu", ["h1"], ["h"]),
         helper.make_node("MatMul", ["h", "w2"], ["y0"]),
         helper.make_node("Add", ["y0", "b2"], ["y"])],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", n_out])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)

    def ref(x):
        return np.maximum(x @ w1 + b1, 0) @ w2 + b2

    return m.SerializeToString(), ref


def two_io_model():
    """Inputs a (n,2) float32 and b (n,2) float32; outputs s = a + b and p = a * b."""
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Mul", ["a", "b"], ["p"])],
        "two_io",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", 2]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, ["n", 2])],
        [helper.make_tensor_value_info("s", TensorProto.FLOAT, ["n", 2]),
         helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n", 2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m.SerializeToString()
