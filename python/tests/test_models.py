"""Models through insitu.Client in every mode: store, run on stored tensors, infer on
arrays, statistics, batching, and every error, compared with onnxruntime in Python."""

from __future__ import annotations

import threading

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
    assert str(e.value) == "ERR input 'x' of the model expects FLOAT, got DOUBLE"
    with pytest.raises(insitu.BadInput) as e:
        client.infer("mlp", np.zeros((1, 5), np.float32))
    assert str(e.value) == "ERR input 'x' of the model expects shape [-1, 4], got [1, 5]"
    with pytest.raises(insitu.NotFound) as e:
        client.run_model("mlp", "missing", "y")
    assert str(e.value) == "ERR tensor key is empty or in a different shard"
    np.testing.assert_allclose(  # still serving
        client.infer("mlp", np.zeros((1, 4), np.float32))["y"],
        mlp_model()[1](np.zeros((1, 4), np.float32)), rtol=1e-5, atol=1e-6)
