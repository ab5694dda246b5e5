"""Fixtures: insitu served every way a Python user meets it — this process' engine
(``inproc``), the same engine served by ``insitu.Server`` over TCP and a Unix socket, and
a separate ``insitu serve`` process over TCP and its Unix socket — plus small ONNX models
built with the ``onnx`` package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import insitu
from insitu.testing import ServeProcess as _ServeProcess
from insitu.testing import insitu_binary
from insitu.testing import free_port  # noqa: F401 - used by the tests

ROOT = Path(__file__).resolve().parents[2]


def insitu_bin() -> str:
    return insitu_binary(ROOT)


class ServeProcess(_ServeProcess):
    """``insitu.testing.ServeProcess`` with the binary the test suite built."""

    def __init__(self, *extra: str) -> None:
        super().__init__(*extra, binary=insitu_bin())


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
