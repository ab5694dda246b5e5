"""SmartRedis 0.6.1 stores and runs every generated ONNX model through insitu; results
match Python onnxruntime's (1e-5 for floats, exact for integers)."""

import json

import numpy as np
import pytest
from smartredis.error import RedisReplyError

DTYPES = {"FLOAT": np.float32, "DOUBLE": np.float64, "INT64": np.int64, "INT32": np.int32}
MODELS = ["mlp", "mlp_wide", "two_io", "int64", "ml", "conv", "bad_batch",
          "unknown_rank", "symbolic_dims", "optional_input", "zipmap"]


@pytest.fixture(scope="module")
def models(models_dir):
    return models_dir, json.loads((models_dir / "manifest.json").read_text())


def load(d, e):
    return np.fromfile(d / e["file"], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])


def check(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    if np.issubdtype(want.dtype, np.floating):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", MODELS)
def test_store_and_run_every_model(client, models, name):
    d, manifest = models
    path = d / manifest[name]["file"]
    client.set_model_from_file(name, str(path), "ONNX", "CPU")
    assert client.model_exists(name)
    assert client.poll_model(name, 1, 1)
    assert client.get_model(name) == path.read_bytes()
    for k, case in enumerate(manifest[name]["cases"]):
        ins = [f"{name}.{k}.in{i}" for i in range(len(case["inputs"]))]
        outs = [f"{name}.{k}.out{i}" for i in range(len(case["outputs"]))]
        for key, e in zip(ins, case["inputs"]):
            client.put_tensor(key, load(d, e))
        client.run_model(name, ins, outs)
        for key, e in zip(outs, case["outputs"]):
            check(client.get_tensor(key), load(d, e))
    client.delete_model(name)
    assert not client.model_exists(name)


def test_model_from_bytes_with_batching_and_info(client, models, address):
    d, manifest = models
    blob = (d / "mlp.onnx").read_bytes()
    client.set_model("mlp", blob, "ONNX", "CPU", batch_size=8, min_batch_size=1, min_batch_timeout=5, tag="v2")
    case = manifest["mlp"]["cases"][1]
    client.put_tensor("x", load(d, case["inputs"][0]))
    client.run_model("mlp", ["x"], ["y"])
    check(client.get_tensor("y"), load(d, case["outputs"][0]))
    info = client.get_ai_info([address], "mlp")[0]
    assert info["key"] == "mlp" and info["type"] == "MODEL" and info["backend"] == "ONNX"
    assert info["calls"] == "1" and info["samples"] == "3" and info["errors"] == "0"
    assert info["tag"] == "v2"


def test_run_errors_pass_through(client, models):
    d, _ = models
    client.set_model_from_file("mlp", str(d / "mlp.onnx"), "ONNX", "CPU")
    client.put_tensor("bad", np.zeros((1, 15), dtype=np.float32))
    with pytest.raises(RedisReplyError) as e:
        client.run_model("mlp", ["bad"], ["y"])
    # ONNX Runtime's own reason, as RedisAI passed it on.
    assert ("ERR Got invalid dimensions for input: x for the following indices  index: 1 Got: 15 "
            "Expected: 16  Please fix either the inputs/outputs or the model.") in str(e.value)
    with pytest.raises(RedisReplyError) as e:
        client.run_model("mlp", ["absent"], ["y"])
    assert "ERR tensor key is empty or in a different shard" in str(e.value)
    with pytest.raises(RedisReplyError) as e:
        client.set_model("junk", b"\x08\x01garbage", "ONNX", "CPU")
    assert "ERR " in str(e.value)
    assert not client.model_exists("junk")
