"""insitu as a KServe v2 inference server, driven by Triton's own clients (tritonclient,
gRPC and HTTP, current release) and read by Prometheus' text-format parser: health,
metadata, configuration, inference (raw, typed contents, JSON, binary extension, streams,
system shared memory), the model repository (load/unload, poll), statistics and
/metrics, the way in from SmartRedis and back, and bad requests of every kind, each with
its exact error while the server keeps serving. Expected outputs come from onnxruntime
running the same ONNX file."""

import json
import queue
import shutil
import time
import urllib.request
from functools import partial
from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as tg
import tritonclient.http as th
import tritonclient.utils.shared_memory as shm
from prometheus_client.parser import text_string_to_metric_families
from smartredis import Client
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from conftest import Server
from insitu.testing import free_port

MLP_CONFIG = """
name: "mlp"
platform: "onnxruntime_onnx"
max_batch_size: 32
input [ { name: "x" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 4 ] } ]
dynamic_batching { preferred_batch_size: [ 8 ] max_queue_delay_microseconds: 2000 }
instance_group [ { count: 2 kind: KIND_CPU } ]
optimization { graph { level: 1 } }
"""


def reference(models_dir: Path, model: str, feeds: dict) -> list:
    return ort.InferenceSession(str(models_dir / f"{model}.onnx")).run(None, feeds)


def make_repository(root: Path, models_dir: Path, names=("mlp", "two_io", "int64", "conv")) -> Path:
    repo = root / "repo"
    for name in names:
        (repo / name / "1").mkdir(parents=True)
        shutil.copy(models_dir / f"{name}.onnx", repo / name / "1" / "model.onnx")
    (repo / "mlp" / "config.pbtxt").write_text(MLP_CONFIG)
    return repo


class KServer(Server):
    """An insitu server with its KServe front ends on free ports."""

    def __init__(self, *extra: str):
        self.grpc_port, self.http_port, self.metrics_port = free_port(), free_port(), free_port()
        super().__init__("--grpc-port", str(self.grpc_port), "--http-port", str(self.http_port),
                         "--metrics-port", str(self.metrics_port), *extra)
        self.grpc = tg.InferenceServerClient(f"127.0.0.1:{self.grpc_port}")
        self.http = th.InferenceServerClient(f"127.0.0.1:{self.http_port}")
        deadline = time.time() + 30
        while True:
            try:
                if self.grpc.is_server_ready():
                    break
            except InferenceServerException:
                pass
            assert time.time() < deadline, (self.dir / "server.log").read_text()
            time.sleep(0.05)

    def metrics(self) -> dict:
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).read().decode()
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = tuple(sorted(s.labels.items()))
                out[(s.name, labels)] = s.value
                # The parser names a counter's samples <family>_total; Triton's counters
                # are exposed without the suffix, so also key them by the family's name.
                out[(family.name, labels)] = s.value
        return out

    def still_serves(self, models_dir: Path):
        x = np.arange(32, dtype=np.float32).reshape(2, 16) / 32
        i = tg.InferInput("x", [2, 16], "FP32")
        i.set_data_from_numpy(x)
        got = self.grpc.infer("mlp", [i]).as_numpy("y")
        assert np.array_equal(got, reference(models_dir, "mlp", {"x": x})[0])


@pytest.fixture(scope="module")
def ks(tmp_path_factory, models_dir):
    repo = make_repository(tmp_path_factory.mktemp("kserve"), models_dir)
    s = KServer("--model-repository", str(repo), "--model-control-mode", "explicit",
                "--load-model", "mlp,two_io,int64", "--kserve-max-message", "1mb")
    yield s
    assert s.stop() == 0


def test_health_metadata_and_config(ks):
    for c in (ks.grpc, ks.http):
        assert c.is_server_live() and c.is_server_ready()
        assert c.is_model_ready("mlp") and c.is_model_ready("mlp", "1")
        assert not c.is_model_ready("mlp", "2") and not c.is_model_ready("nope")
    meta = ks.http.get_server_metadata()
    assert meta["name"] == "insitu"
    assert {"binary_tensor_data", "system_shared_memory", "model_repository", "statistics"} <= set(meta["extensions"])
    g = ks.grpc.get_model_metadata("mlp", as_json=True)
    assert g == {"name": "mlp", "versions": ["1"], "platform": "onnxruntime_onnx",
                 "inputs": [{"name": "x", "datatype": "FP32", "shape": ["-1", "16"]}],
                 "outputs": [{"name": "y", "datatype": "FP32", "shape": ["-1", "4"]}]}
    h = ks.http.get_model_metadata("two_io")
    assert [(t["name"], t["datatype"], t["shape"]) for t in h["inputs"]] == [("a", "FP32", [-1, 8]), ("b", "FP32", [-1, 8])]
    assert [(t["name"], t["shape"]) for t in h["outputs"]] == [("sum", [-1, 8]), ("proj", [-1, 3])]
    cfg = ks.http.get_model_config("mlp")
    assert cfg["max_batch_size"] == 32
    assert cfg["input"] == [{"name": "x", "data_type": "TYPE_FP32", "dims": [16]}]
    assert cfg["output"] == [{"name": "y", "data_type": "TYPE_FP32", "dims": [4]}]
    assert cfg["dynamic_batching"] == {"preferred_batch_size": [8], "max_queue_delay_microseconds": 2000}
    assert cfg["instance_group"][0]["count"] == 2
    gc = ks.grpc.get_model_config("int64", as_json=True)["config"]
    assert gc.get("max_batch_size", 0) == 0 and gc["input"][0]["dims"] == ["-1", "5"]
    assert gc["input"][0]["data_type"] == "TYPE_INT64"


def test_infer_grpc_and_http_equal_onnxruntime(ks, models_dir):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 16)).astype(np.float32)
    want = reference(models_dir, "mlp", {"x": x})[0]
    i = tg.InferInput("x", [5, 16], "FP32")
    i.set_data_from_numpy(x)
    r = ks.grpc.infer("mlp", [i], request_id="req-7")
    assert r.get_response().id == "req-7" and r.get_response().model_version == "1"
    assert np.array_equal(r.as_numpy("y"), want)
    for binary_in in (True, False):
        for binary_out in (True, False):
            hi = th.InferInput("x", [5, 16], "FP32")
            hi.set_data_from_numpy(x, binary_data=binary_in)
            out = th.InferRequestedOutput("y", binary_data=binary_out)
            got = ks.http.infer("mlp", [hi], outputs=[out]).as_numpy("y")
            if binary_out:
                assert np.array_equal(got, want)
            else:  # JSON numbers: float32 printed and read back exactly
                assert np.array_equal(got.astype(np.float32), want)
    # Compressed both ways, as tritonclient offers.
    for algo in ("gzip", "deflate"):
        hi = th.InferInput("x", [5, 16], "FP32")
        hi.set_data_from_numpy(x)
        got = ks.http.infer("mlp", [hi], request_compression_algorithm=algo,
                            response_compression_algorithm=algo).as_numpy("y")
        assert np.array_equal(got, want), algo
    # Two inputs, one output asked for; integers.
    a, b = rng.standard_normal((3, 8)).astype(np.float32), rng.standard_normal((3, 8)).astype(np.float32)
    ins = [tg.InferInput("a", [3, 8], "FP32"), tg.InferInput("b", [3, 8], "FP32")]
    ins[0].set_data_from_numpy(a)
    ins[1].set_data_from_numpy(b)
    r = ks.grpc.infer("two_io", ins, outputs=[tg.InferRequestedOutput("proj")])
    assert [o.name for o in r.get_response().outputs] == ["proj"]
    assert np.array_equal(r.as_numpy("proj"), reference(models_dir, "two_io", {"a": a, "b": b})[1])
    n = np.arange(-10, 5, dtype=np.int64).reshape(3, 5) * 1_000_000_007
    hi = th.InferInput("i", [3, 5], "INT64")
    hi.set_data_from_numpy(n, binary_data=False)
    assert np.array_equal(ks.http.infer("int64", [hi]).as_numpy("o"), reference(models_dir, "int64", {"i": n})[0])


def test_typed_contents_and_raw_over_the_plain_grpc_stub(ks, models_dir):
    """ModelInfer with InferTensorContents (what non-Triton KServe clients send)."""
    stub = service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(f"127.0.0.1:{ks.grpc_port}"))
    x = (np.arange(16, dtype=np.float32) / 7).reshape(1, 16)
    req = service_pb2.ModelInferRequest(model_name="mlp")
    t = req.inputs.add(name="x", datatype="FP32", shape=[1, 16])
    t.contents.fp32_contents.extend(x.ravel().tolist())
    resp = stub.ModelInfer(req)
    assert resp.outputs[0].name == "y" and list(resp.outputs[0].shape) == [1, 4]
    got = np.frombuffer(resp.raw_output_contents[0], dtype=np.float32).reshape(1, 4)
    assert np.array_equal(got, reference(models_dir, "mlp", {"x": x})[0])
    # INT64 typed contents.
    n = np.array([[1, -2, 3, -4, 5]], dtype=np.int64)
    req = service_pb2.ModelInferRequest(model_name="int64")
    t = req.inputs.add(name="i", datatype="INT64", shape=[1, 5])
    t.contents.int64_contents.extend(n.ravel().tolist())
    resp = stub.ModelInfer(req)
    assert np.array_equal(np.frombuffer(resp.raw_output_contents[0], dtype=np.int64).reshape(1, 5),
                          reference(models_dir, "int64", {"i": n})[0])
    # Too few elements.
    req = service_pb2.ModelInferRequest(model_name="mlp")
    t = req.inputs.add(name="x", datatype="FP32", shape=[1, 16])
    t.contents.fp32_contents.extend([1.0] * 15)
    with pytest.raises(grpc.RpcError) as e:
        stub.ModelInfer(req)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == "unexpected number of elements for input 'x': expected 16, got 15"


def test_stream_infer(ks, models_dir):
    results = queue.Queue()
    ks.grpc.start_stream(callback=lambda result, error: results.put((result, error)))
    try:
        xs = [np.full((1, 16), k, dtype=np.float32) for k in range(4)]
        for k, x in enumerate(xs):
            i = tg.InferInput("x", [1, 16], "FP32")
            i.set_data_from_numpy(x)
            ks.grpc.async_stream_infer("mlp", [i], request_id=str(k))
        bad = tg.InferInput("x", [1, 16], "FP64")
        bad.set_data_from_numpy(np.zeros((1, 16)))
        ks.grpc.async_stream_infer("mlp", [bad], request_id="bad")
        got = {}
        for _ in range(5):
            result, error = results.get(timeout=20)
            if error is not None:
                got["bad"] = str(error)
            else:
                got[result.get_response().id] = result.as_numpy("y")
    finally:
        ks.grpc.stop_stream()
    for k, x in enumerate(xs):
        assert np.array_equal(got[str(k)], reference(models_dir, "mlp", {"x": x})[0])
    assert got["bad"] == "unexpected datatype FP64 for inference input 'x', expecting FP32"


@pytest.mark.parametrize("proto", ["grpc", "http"])
def test_system_shared_memory_infer(ks, models_dir, proto):
    mod = tg if proto == "grpc" else th
    c = ks.grpc if proto == "grpc" else ks.http
    x = np.random.default_rng(3).standard_normal((4, 16)).astype(np.float32)
    key_in, key_out = f"/insitu_test_in_{proto}", f"/insitu_test_out_{proto}"
    h_in = shm.create_shared_memory_region("in_" + proto, key_in, x.nbytes + 64)
    h_out = shm.create_shared_memory_region("out_" + proto, key_out, 4 * 4 * 4)
    try:
        shm.set_shared_memory_region(h_in, [x], offset=64)
        c.unregister_system_shared_memory()
        c.register_system_shared_memory("in_" + proto, key_in, x.nbytes + 64)
        c.register_system_shared_memory("out_" + proto, key_out, 64)
        status = c.get_system_shared_memory_status()
        if proto == "http":
            assert sorted((s["name"], s["key"], int(s["byte_size"])) for s in status) == [
                ("in_http", key_in, x.nbytes + 64), ("out_http", key_out, 64)]
        else:
            assert sorted(status.regions) == ["in_grpc", "out_grpc"]
            assert status.regions["in_grpc"].byte_size == x.nbytes + 64
        i = mod.InferInput("x", [4, 16], "FP32")
        i.set_shared_memory("in_" + proto, x.nbytes, offset=64)
        o = mod.InferRequestedOutput("y")
        o.set_shared_memory("out_" + proto, 64)
        r = c.infer("mlp", [i], outputs=[o])
        out = r.get_output("y")
        assert out is not None
        got = shm.get_contents_as_numpy(h_out, np.float32, [4, 4])
        assert np.array_equal(got, reference(models_dir, "mlp", {"x": x})[0])
        assert ks.metrics()[("insitu_kserve_shm_region_bytes", ())] == x.nbytes + 64 + 64
        # Out of bounds: the input range passes the region's end.
        i.set_shared_memory("in_" + proto, x.nbytes, offset=128)
        with pytest.raises(InferenceServerException) as e:
            c.infer("mlp", [i], outputs=[o])
        assert e.value.message() == (f"Invalid offset + byte size for shared memory region: 'in_{proto}' "
                                     f"(128 + {x.nbytes} bytes; the region has {x.nbytes + 64})")
        # An output region too small for the result.
        i.set_shared_memory("in_" + proto, x.nbytes, offset=64)
        o.set_shared_memory("out_" + proto, 32)
        with pytest.raises(InferenceServerException) as e:
            c.infer("mlp", [i], outputs=[o])
        assert e.value.message() == ("shared memory size specified with the request for output 'y' "
                                     "should be at least 64 bytes to hold the results")
        # A region that is not registered; one beyond the object; a key that does not exist.
        i.set_shared_memory("nope", 16)
        with pytest.raises(InferenceServerException) as e:
            c.infer("mlp", [i])
        assert e.value.message() == "Unable to find system shared memory region: 'nope'"
        with pytest.raises(InferenceServerException) as e:
            c.register_system_shared_memory("big", key_out, 65)
        assert e.value.message() == "Invalid offset + byte size for shared memory region: 'big' (0 + 65 bytes; the object has 64)"
        with pytest.raises(InferenceServerException) as e:
            c.register_system_shared_memory("in_" + proto, key_in, 8)
        assert e.value.message() == f"shared memory region 'in_{proto}' already in registration"
        with pytest.raises(InferenceServerException) as e:
            c.register_system_shared_memory("ghost", "/insitu_no_such_region", 8)
        assert e.value.message().startswith("Unable to open shared memory region: '/insitu_no_such_region'")
        # The client shrinks its object after registering it: a clear error, no fault.
        import os
        fd = os.open(f"/dev/shm{key_out}", os.O_RDWR)
        try:
            os.ftruncate(fd, 16)
        finally:
            os.close(fd)
        i.set_shared_memory("in_" + proto, x.nbytes, offset=64)
        o.set_shared_memory("out_" + proto, 64)
        with pytest.raises(InferenceServerException) as e:
            c.infer("mlp", [i], outputs=[o])
        assert e.value.message() == (f"shared memory region 'out_{proto}' is smaller than when it was "
                                     "registered (its object was truncated)")
        c.unregister_system_shared_memory("out_" + proto)
        c.register_system_shared_memory("small_" + proto, key_out, 16)
        i = mod.InferInput("x", [4, 16], "FP32")
        i.set_shared_memory("small_" + proto, 16)
        fd = os.open(f"/dev/shm{key_out}", os.O_RDWR)
        try:
            os.ftruncate(fd, 4)
        finally:
            os.close(fd)
        with pytest.raises(InferenceServerException) as e:
            c.infer("mlp", [i])
        assert e.value.message() == (f"shared memory region 'small_{proto}' is smaller than when it was "
                                     "registered (its object was truncated)")
        ks.still_serves(models_dir)
        c.unregister_system_shared_memory("in_" + proto)
        with pytest.raises(InferenceServerException) as e:
            c.get_system_shared_memory_status("in_" + proto)
        assert e.value.message() == f"Unable to find system shared memory region: 'in_{proto}'"
        c.unregister_system_shared_memory()
        ks.still_serves(models_dir)
    finally:
        shm.destroy_shared_memory_region(h_in)
        shm.destroy_shared_memory_region(h_out)


def test_repository_load_unload_and_index(ks, models_dir):
    index = {m["name"]: m for m in ks.http.get_model_repository_index()}
    assert index["mlp"]["state"] == "READY" and index["mlp"]["version"] == "1"
    assert index["conv"]["state"] == "UNAVAILABLE"  # in the repository, not loaded (explicit)
    assert not ks.grpc.is_model_ready("conv")
    ks.http.load_model("conv")  # from the repository directory
    assert ks.grpc.is_model_ready("conv")
    img = np.random.default_rng(5).standard_normal((2, 1, 8, 8)).astype(np.float32)
    i = tg.InferInput("img", [2, 1, 8, 8], "FP32")
    i.set_data_from_numpy(img)
    assert np.array_equal(ks.grpc.infer("conv", [i]).as_numpy("out"), reference(models_dir, "conv", {"img": img})[0])
    # A model given in the load request itself (Triton's file: override), version 3.
    onnx = (models_dir / "mlp.onnx").read_bytes()
    ks.grpc.load_model("pushed", config=json.dumps({"max_batch_size": 16}), files={"file:3/model.onnx": onnx})
    assert ks.grpc.get_model_metadata("pushed", as_json=True)["versions"] == ["3"]
    assert ks.grpc.is_model_ready("pushed", "3") and not ks.grpc.is_model_ready("pushed", "1")
    ks.grpc.unload_model("pushed")
    assert not ks.grpc.is_model_ready("pushed")
    ks.grpc.unload_model("conv")
    i = tg.InferInput("img", [2, 1, 8, 8], "FP32")
    i.set_data_from_numpy(img)
    with pytest.raises(InferenceServerException) as e:
        ks.grpc.infer("conv", [i])
    assert e.value.status() == "StatusCode.UNAVAILABLE"
    assert e.value.message() == "Request for unknown model: 'conv' is not found"
    index = {m["name"]: m for m in ks.grpc.get_model_repository_index(as_json=True)["models"]}
    assert index["conv"]["state"] == "UNAVAILABLE" and index["conv"]["reason"] == "unloaded"
    # Loads that fail: not ONNX, no such model; the server keeps serving.
    with pytest.raises(InferenceServerException) as e:
        ks.grpc.load_model("junk", config="{}", files={"file:1/model.onnx": b"not onnx"})
    assert e.value.message().startswith("failed to load 'junk': ")
    with pytest.raises(InferenceServerException) as e:
        ks.http.load_model("absent")
    assert e.value.message().startswith("failed to load 'absent': no directory ")
    ks.still_serves(models_dir)


def test_statistics_and_metrics_agree(ks, models_dir):
    before = ks.grpc.get_inference_statistics("two_io", as_json=True)["model_stats"][0]
    a = np.ones((2, 8), dtype=np.float32)
    for _ in range(3):
        ins = [th.InferInput("a", [2, 8], "FP32"), th.InferInput("b", [2, 8], "FP32")]
        ins[0].set_data_from_numpy(a)
        ins[1].set_data_from_numpy(a)
        ks.http.infer("two_io", ins)
    s = ks.http.get_inference_statistics("two_io")["model_stats"][0]
    assert s["name"] == "two_io" and s["version"] == "1"
    assert s["inference_count"] == int(before.get("inference_count", 0)) + 6
    assert s["execution_count"] == int(before.get("execution_count", 0)) + 3
    success = s["inference_stats"]["success"]["count"]
    assert success == int(before["inference_stats"]["success"].get("count", 0)) + 3
    assert s["inference_stats"]["compute_infer"]["ns"] > 0 and s["last_inference"] > 0
    m = ks.metrics()
    labels = (("model", "two_io"), ("version", "1"))
    assert m[("nv_inference_request_success", labels)] == success
    assert m[("nv_inference_count", labels)] == s["inference_count"]
    assert m[("nv_inference_exec_count", labels)] == s["execution_count"]
    assert m[("nv_inference_compute_infer_duration_us", labels)] == s["inference_stats"]["compute_infer"]["ns"] // 1000
    assert m[("insitu_models", ())] >= 3 and m[("insitu_keys", ())] >= 3
    for name in ("insitu_used_memory_bytes", "insitu_connected_clients", "insitu_commands_processed_total",
                 "insitu_journal_enabled", "insitu_uptime_seconds"):
        assert (name, ()) in m
    # A RESP client on the Unix socket puts large tensors into the shared-memory heap.
    import insitu
    c = insitu.Client(ks.unix)
    c.put_tensor("big", np.zeros(1 << 18, dtype=np.float32))
    assert ks.metrics()[("insitu_shm_heap_bytes", ())] >= 1 << 20
    assert ks.metrics()[("insitu_shm_heap_holds", ())] == 0
    c.close()
    for path in ("v2/health/live", "v2/health/ready"):
        assert urllib.request.urlopen(f"http://127.0.0.1:{ks.metrics_port}/{path}", timeout=10).status == 200


def test_smartredis_model_runs_over_grpc_and_the_reverse(ks, models_dir):
    sr = Client(address=ks.tcp, cluster=False)
    x = np.random.default_rng(11).standard_normal((3, 16)).astype(np.float32)
    want = reference(models_dir, "mlp", {"x": x})[0]
    # SmartRedis stores a model; tritonclient runs it.
    sr.set_model_from_file("sr_mlp", str(models_dir / "mlp.onnx"), "ONNX", device="CPU")
    i = tg.InferInput("x", [3, 16], "FP32")
    i.set_data_from_numpy(x)
    assert np.array_equal(ks.grpc.infer("sr_mlp", [i]).as_numpy("y"), want)
    # tritonclient loads a model; SmartRedis runs it.
    ks.grpc.load_model("kv_mlp", config="{}", files={"file:1/model.onnx": (models_dir / "mlp.onnx").read_bytes()})
    sr.put_tensor("kv_in", x)
    sr.run_model("kv_mlp", ["kv_in"], ["kv_out"])
    assert np.array_equal(sr.get_tensor("kv_out"), want)
    # Tensors: a simulation's stored tensor in, the output stored for it (tensor_key).
    stub = service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(f"127.0.0.1:{ks.grpc_port}"))
    req = service_pb2.ModelInferRequest(model_name="mlp")
    req.inputs.add(name="x").parameters["tensor_key"].string_param = "kv_in"
    req.outputs.add(name="y").parameters["tensor_key"].string_param = "from_grpc"
    resp = stub.ModelInfer(req)
    assert np.array_equal(np.frombuffer(resp.raw_output_contents[0], dtype=np.float32).reshape(3, 4), want)
    assert np.array_equal(sr.get_tensor("from_grpc"), want)
    ks.grpc.unload_model("kv_mlp")


def test_timeouts_answer_in_time(ks, models_dir):
    """A run still waiting for its batch when the request's timeout (the `timeout`
    parameter, or the gRPC deadline) passes answers DEADLINE_EXCEEDED, not after the
    batch's delay."""
    onnx = (models_dir / "mlp.onnx").read_bytes()
    slow = {"max_batch_size": 32, "dynamic_batching": {"preferred_batch_size": [8],
                                                       "max_queue_delay_microseconds": 5_000_000}}
    ks.grpc.load_model("waits", config=json.dumps(slow), files={"file:1/model.onnx": onnx})
    i = tg.InferInput("x", [1, 16], "FP32")
    i.set_data_from_numpy(np.zeros((1, 16), dtype=np.float32))
    # Without the deadline the run would succeed once the 5 s delay passed.
    with pytest.raises(InferenceServerException) as e:
        ks.grpc.infer("waits", [i], timeout=200_000)
    assert (e.value.status(), e.value.message()) == ("StatusCode.DEADLINE_EXCEEDED", "Request timeout expired")
    hi = th.InferInput("x", [1, 16], "FP32")
    hi.set_data_from_numpy(np.zeros((1, 16), dtype=np.float32))
    with pytest.raises(InferenceServerException) as e:
        ks.http.infer("waits", [hi], timeout=200_000)
    assert (e.value.status(), e.value.message()) == ("504", "Request timeout expired")
    ks.grpc.unload_model("waits")
    ks.still_serves(models_dir)


def test_bad_requests_get_clear_errors_and_the_server_keeps_serving(ks, models_dir):
    def err(fn):
        with pytest.raises(InferenceServerException) as e:
            fn()
        return e.value

    x = np.zeros((1, 16), dtype=np.float64)
    i = tg.InferInput("x", [1, 16], "FP64")
    i.set_data_from_numpy(x)
    e = err(lambda: ks.grpc.infer("mlp", [i]))
    assert e.status() == "StatusCode.INVALID_ARGUMENT"
    assert e.message() == "unexpected datatype FP64 for inference input 'x', expecting FP32"
    i = tg.InferInput("x", [1, 8], "FP32")
    i.set_data_from_numpy(np.zeros((1, 8), dtype=np.float32))
    assert err(lambda: ks.grpc.infer("mlp", [i])).message() == \
        "unexpected shape for input 'x' for model 'mlp'. Expected [-1,16], got [1,8]"
    i = tg.InferInput("q", [1, 16], "FP32")
    i.set_data_from_numpy(np.zeros((1, 16), dtype=np.float32))
    assert err(lambda: ks.grpc.infer("mlp", [i])).message() == "unexpected inference input 'q' for model 'mlp'"
    a = tg.InferInput("a", [1, 8], "FP32")
    a.set_data_from_numpy(np.zeros((1, 8), dtype=np.float32))
    assert err(lambda: ks.grpc.infer("two_io", [a])).message() == \
        "expected 2 inputs but got 1 inputs for model 'two_io'; missing input(s) ['b']"
    i = tg.InferInput("x", [1, 16], "FP32")
    i.set_data_from_numpy(np.zeros((1, 16), dtype=np.float32))
    assert err(lambda: ks.grpc.infer("mlp", [i], outputs=[tg.InferRequestedOutput("z")])).message() == \
        "unexpected inference output 'z' for model 'mlp'"
    # The repository's config says max_batch_size 32.
    i33 = tg.InferInput("x", [33, 16], "FP32")
    i33.set_data_from_numpy(np.zeros((33, 16), dtype=np.float32))
    assert err(lambda: ks.grpc.infer("mlp", [i33])).message() == \
        "inference request batch-size must be <= 32 for 'mlp'"
    e = err(lambda: ks.grpc.infer("ghost", [i]))
    assert (e.status(), e.message()) == ("StatusCode.UNAVAILABLE", "Request for unknown model: 'ghost' is not found")
    assert err(lambda: ks.http.infer("mlp", [th.InferInput("x", [1, 16], "FP32").set_data_from_numpy(
        np.zeros((1, 16), dtype=np.float32))], model_version="9")).message() == \
        "Request for unknown model: 'mlp' version 9 is not found"
    # Oversized: the server was started with --kserve-max-message 1mb.
    big = np.zeros((20000, 16), dtype=np.float32)
    i = tg.InferInput("x", list(big.shape), "FP32")
    i.set_data_from_numpy(big)
    e = err(lambda: ks.grpc.infer("mlp", [i]))
    assert e.status() == "StatusCode.OUT_OF_RANGE"
    assert e.message() == ("Error, decoded message length too large: found 1280026 bytes, "
                           "the limit is: 1048576 bytes")
    hi = th.InferInput("x", list(big.shape), "FP32")
    hi.set_data_from_numpy(big)
    e = err(lambda: ks.http.infer("mlp", [hi]))
    assert e.status() == "413"
    # Raw HTTP: malformed JSON, binary data that does not fit, an unknown path.
    def post(path, body, headers=None):
        req = urllib.request.Request(f"http://127.0.0.1:{ks.http_port}/{path}", data=body,
                                     headers=headers or {}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as he:
            return he.code, he.read()
    code, body = post("v2/models/mlp/infer", b"{not json")
    assert code == 400 and json.loads(body)["error"].startswith("malformed JSON in the request body: ")
    head = json.dumps({"inputs": [{"name": "x", "shape": [1, 16], "datatype": "FP32",
                                   "parameters": {"binary_data_size": 64}}]}).encode()
    code, body = post("v2/models/mlp/infer", head + b"\0" * 32, {"Inference-Header-Content-Length": str(len(head))})
    assert code == 400 and json.loads(body) == {
        "error": "input 'x': binary_data_size 64 is beyond the 32 bytes left in the body"}
    code, body = post("v2/models/mlp/infer", head + b"\0" * 64, {"Inference-Header-Content-Length": "99999"})
    assert code == 400 and json.loads(body) == {
        "error": "Inference-Header-Content-Length is not a length within the body"}
    code, body = post("v2/nothing", b"")
    assert code == 404
    ks.still_serves(models_dir)


def test_control_mode_none_refuses_loads_and_poll_follows_the_directory(tmp_path, models_dir):
    repo = make_repository(tmp_path, models_dir, names=("mlp",))
    s = KServer("--model-repository", str(repo))  # Triton's default mode: none
    try:
        assert s.grpc.is_model_ready("mlp")
        with pytest.raises(InferenceServerException) as e:
            s.grpc.load_model("mlp")
        assert e.value.message() == "explicit model load / unload is not allowed if polling is enabled"
    finally:
        assert s.stop() == 0
    s = KServer("--model-repository", str(repo), "--model-control-mode", "poll", "--repository-poll-secs", "1")
    try:
        assert s.grpc.is_model_ready("mlp") and not s.grpc.is_model_ready("conv")
        (repo / "conv" / "1").mkdir(parents=True)
        shutil.copy(models_dir / "conv.onnx", repo / "conv" / "1" / "model.onnx")
        deadline = time.time() + 15
        while not s.grpc.is_model_ready("conv"):
            assert time.time() < deadline, "poll did not load the new model"
            time.sleep(0.2)
        shutil.rmtree(repo / "mlp")
        while s.grpc.is_model_ready("mlp"):
            assert time.time() < deadline, "poll did not unload the removed model"
            time.sleep(0.2)
    finally:
        assert s.stop() == 0
