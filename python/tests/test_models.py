"""Models through insitu.Client in every mode: store, run on stored tensors, infer on
arrays, statistics, batching, and every error, compared with onnxruntime in Python."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import insitu
from conftest import address_of, mlp_model, two_io_model


def test_set_get_run_infer_mlp(client, tmp_path):
    model, ref = mlp_model()
    client.set_model("mlp", model, tag="v1")
    assert client.model_exists("mlp") and client.poll_model("mlp", 10, 1)
    assert client.get_model("mlp") == model
    assert client.model_io("mlp") == (["x"], ["y"])
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    want = ort.InferenceSession(model).run(None, {"x": x})[0]
    np.testing.assert_allclose(want, ref(x), rtol=1e-5, atol=1e-5)

    client.put_tensor("x", x)
    client.run_model("mlp", "x", "y")
    y = client.get_tensor("y")
    assert y.dtype == np.float32 and y.shape == (5, 3)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)

    keys_before = client.command("DBSIZE")
    for inputs in ({"x": x}, [x], (x,), x, {"x": np.asfortranarray(x)}):
        out = client.infer("mlp", inputs)
        assert list(out) == ["y"]
        np.testing.assert_allclose(out["y"], want, rtol=1e-5, atol=1e-6)
        assert out["y"].flags.writeable
    assert client.command("DBSIZE") == keys_before  # infer stores nothing

    path = tmp_path / "mlp.onnx"
    path.write_bytes(model)
    client.set_model_from_file("mlp2", str(path))
    np.testing.assert_allclose(client.infer("mlp2", x)["y"], want, rtol=1e-5, atol=1e-6)

    info = client.model_info("mlp")
    assert info["calls"] == 6 and info["samples"] == 30 and info["errors"] == 0
    client.reset_model_info("mlp")
    assert client.model_info("mlp")["calls"] == 0
    client.delete_model("mlp")
    assert not client.model_exists("mlp")


def test_two_inputs_two_outputs(client):
    client.set_model("two", two_io_model())
    a = np.array([[1, 2], [3, 4]], np.float32)
    b = np.array([[10, 20], [30, 40]], np.float32)
    out = client.infer("two", {"b": b, "a": a})
    assert list(out) == ["s", "p"]
    assert out["s"].tolist() == (a + b).tolist() and out["p"].tolist() == (a * b).tolist()
    client.put_tensor("a", a)
    client.put_tensor("b", np.asfortranarray(b))
    client.run_model("two", ["a", "b"], ["s", "p"])
    assert client.get_tensor("p").tolist() == (a * b).tolist()


def test_batching_merges_concurrent_requests(mode, request):
    addr = address_of(mode, request)
    model, ref = mlp_model(seed=4)
    with insitu.Client(addr, key_in=[], key_out="") as c:
        c.flush_db()
        c.set_model("b", model, batch_size=8, min_batch_size=4, min_batch_timeout=50)
    results, errors = {}, []

    def worker(k):
        try:
            with insitu.Client(addr, key_in=[], key_out="") as c:
                for j in range(5):
                    x = np.full((1, 4), k + j / 10, np.float32)
                    results[(k, j)] = (x, c.infer("b", x)["y"])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(results) == 40
    for x, y in results.values():
        np.testing.assert_allclose(y, ref(x), rtol=1e-5, atol=1e-5)
    with insitu.Client(addr, key_in=[], key_out="") as c:
        info = c.model_info("b")
    assert info["calls"] == 40 and info["samples"] == 40 and info["errors"] == 0
    assert info["runs"] < 40  # threads ran concurrently (GIL released) and were merged


def test_model_errors(client):
    with pytest.raises(insitu.BadInput) as e:
        client.set_model("bad", b"not a model")
    assert str(e.value) == "ERR model is not a valid ONNX file: unsupported protobuf wire type 6"
    assert not client.model_exists("bad")
    with pytest.raises(insitu.Unsupported) as e:
        client.set_model("tf", b"x", backend="TF")
    assert str(e.value) == ("ERR backend TF is not supported by insitu: export the model to "
                            "ONNX (tf2onnx, torch.onnx.export) and store it with backend ONNX")
    with pytest.raises(insitu.NotFound) as e:
        client.infer("nomodel", np.zeros((1, 4), np.float32))
    assert str(e.value) == "ERR model key is empty"
    client.set_model("mlp", mlp_model()[0])
    with pytest.raises(insitu.BadInput) as e:
        client.infer("mlp", {"z": np.zeros((1, 4), np.float32)})
    assert str(e.value) == "ERR model 'mlp' has no input 'z' (inputs: x)"
    with pytest.raises(insitu.BadInput) as e:
        client.infer("mlp", {})
    assert str(e.value) == "ERR missing input 'x' of model 'mlp'"
    with pytest.raises(insitu.BadInput) as e:
        client.infer("mlp", np.zeros((1, 4), np.float64))
    # ONNX Runtime's own reason, as RedisAI passed it on.
    assert str(e.value) == ("ERR Unexpected input data type. Actual: (tensor(double)) , "
                            "expected: (tensor(float))")
    with pytest.raises(insitu.BadInput) as e:
        client.infer("mlp", np.zeros((1, 5), np.float32))
    assert str(e.value) == ("ERR Got invalid dimensions for input: x for the following indices "
                            " index: 1 Got: 5 Expected: 4  Please fix either the inputs/outputs or the model.")
    with pytest.raises(insitu.NotFound) as e:
        client.run_model("mlp", "missing", "y")
    assert str(e.value) == "ERR tensor key is empty or in a different shard"
    np.testing.assert_allclose(  # still serving
        client.infer("mlp", np.zeros((1, 4), np.float32))["y"],
        mlp_model()[1](np.zeros((1, 4), np.float32)), rtol=1e-5, atol=1e-6)


# ----- models of any declared shape, and a ZipMap classifier -----

GENERATED = ["unknown_rank", "symbolic_dims", "optional_input", "zipmap"]
DTYPES = {"FLOAT": np.float32, "INT64": np.int64}


@pytest.fixture(scope="module")
def generated():
    """core/tests/models/gen_models.py's models and onnxruntime's outputs for them."""
    d = os.environ.get("INSITU_TEST_MODELS")
    if not d or not (Path(d) / "manifest.json").exists():
        if os.environ.get("INSITU_REQUIRE_PYTHON"):
            pytest.fail("INSITU_TEST_MODELS is not set to a directory of generated models")
        pytest.skip("no generated models (run ./dev.sh test)")
    return Path(d), json.loads((Path(d) / "manifest.json").read_text())


@pytest.mark.parametrize("name", GENERATED)
def test_models_of_any_declared_shape_match_onnxruntime(client, generated, name):
    """Unknown rank, symbolic dims, an input with a default, and ZipMap probabilities (a
    [rows, classes] array, classes ascending): stored and run, and inferred on arrays."""
    d, manifest = generated

    def load(e):
        return np.fromfile(d / e["file"], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])

    def same(got, want):
        assert got.dtype == want.dtype and got.shape == want.shape
        if want.dtype == np.int64:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    client.set_model_from_file(name, str(d / manifest[name]["file"]))
    sess = ort.InferenceSession(str(d / manifest[name]["file"]), providers=["CPUExecutionProvider"])
    assert client.model_io(name) == ([i.name for i in sess.get_inputs()], [o.name for o in sess.get_outputs()])
    for k, case in enumerate(manifest[name]["cases"]):
        ins = [load(e) for e in case["inputs"]]
        wants = [load(e) for e in case["outputs"]]
        keys_in = [f"{name}.{k}.in{i}" for i in range(len(ins))]
        keys_out = [f"{name}.{k}.out{i}" for i in range(len(wants))]
        for key, x in zip(keys_in, ins):
            client.put_tensor(key, x)
        client.run_model(name, keys_in, keys_out)
        for key, want in zip(keys_out, wants):
            same(client.get_tensor(key), want)
        got = client.infer(name, ins)
        assert len(got) == len(wants)
        for g, want in zip(got.values(), wants):
            same(g, want)
