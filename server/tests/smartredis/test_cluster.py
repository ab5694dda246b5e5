"""A three-node Redis Cluster of insitu processes on loopback, formed both ways: the
fixed layout (`--cluster-nodes`) and Redis' own tool (`redis-cli --cluster create` on
nodes started with `--cluster-enabled yes`). Used unchanged by SmartRedis in its default
Clustered mode (tensors, datasets, aggregation lists, models, ensembles), by redis-py's
RedisCluster and by the insitu package; `redis-cli --cluster check` reports every slot
covered; a node killed mid-run is a clear error while the other shards keep serving."""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from insitu.testing import free_port
from smartredis import Client, Dataset

from conftest import Raw, Server


def redis_cli(*args, timeout=60):
    return subprocess.run(["redis-cli", *args], capture_output=True, text=True, timeout=timeout)


def start_cluster(kind):
    ports = [free_port() for _ in range(3)]
    addrs = [f"127.0.0.1:{p}" for p in ports]
    if kind == "fixed":
        return [Server("--cluster-nodes", ",".join(addrs), port=p) for p in ports]
    if not shutil.which("redis-cli"):
        if os.environ.get("CI"):
            pytest.fail("redis-cli is not installed")
        pytest.skip("redis-cli is not installed")
    nodes = [Server("--cluster-enabled", "yes", port=p) for p in ports]
    out = redis_cli("--cluster", "create", *addrs, "--cluster-replicas", "0", "--cluster-yes")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[OK] All nodes agree about slots configuration." in out.stdout, out.stdout
    assert "[OK] All 16384 slots covered." in out.stdout, out.stdout
    return nodes


@pytest.fixture(scope="module", params=["fixed", "redis-cli"])
def cluster(request):
    nodes = start_cluster(request.param)
    yield nodes
    for n in nodes:
        if n.proc.poll() is None:
            assert n.stop() == 0


@pytest.fixture
def sr(cluster, monkeypatch):
    monkeypatch.delenv("SR_DB_TYPE", raising=False)  # SmartRedis' default: Clustered
    monkeypatch.setenv("SSDB", cluster[1].tcp)
    for n in cluster:
        Raw(n.port).cmd("FLUSHALL")
    return Client(logger_name="cluster")


def keys_per_node(cluster):
    return [Raw(n.port).cmd("DBSIZE") for n in cluster]


def test_redis_cli_check_reports_every_slot_covered(cluster):
    out = redis_cli("--cluster", "check", cluster[2].tcp, timeout=30)
    assert out.returncode == 0, out.stdout
    assert "[OK] All nodes agree about slots configuration." in out.stdout
    assert "[OK] All 16384 slots covered." in out.stdout
    slots = Raw(cluster[0].port).cmd("CLUSTER", "SLOTS")
    assert sorted((lo, hi) for lo, hi, *_ in slots) == [(0, 5460), (5461, 10922), (10923, 16383)] \
        or sorted((lo, hi) for lo, hi, *_ in slots) == [(0, 5460), (5461, 10921), (10922, 16383)]
    assert {int(node[1]) for _, _, node in slots} == {n.port for n in cluster}
    assert Raw(cluster[0].port).cmd("CLUSTER", "INFO").startswith(b"cluster_state:ok\r\n")


def test_smartredis_tensors_spread_over_every_shard(sr, cluster):
    arrays = {f"field{i}": np.arange(i + 1, dtype=np.float64) * 0.5 for i in range(60)}
    for k, a in arrays.items():
        sr.put_tensor(k, a)
    for k, a in arrays.items():
        np.testing.assert_array_equal(sr.get_tensor(k), a)
    counts = keys_per_node(cluster)
    assert sum(counts) == 60 and min(counts) > 5, counts
    sr.rename_tensor("field3", "moved3")
    np.testing.assert_array_equal(sr.get_tensor("moved3"), arrays["field3"])
    assert not sr.tensor_exists("field3")
    sr.copy_tensor("field4", "copied4")
    np.testing.assert_array_equal(sr.get_tensor("copied4"), arrays["field4"])
    assert sr.poll_tensor("field9", 10, 5)


def test_smartredis_datasets_and_lists_across_shards(sr, cluster):
    for j in range(8):
        ds = Dataset(f"step{j}")
        ds.add_tensor("u", np.full((2, 3), j, dtype=np.float32))
        ds.add_meta_scalar("time", np.float64(j * 0.1))
        ds.add_meta_string("tag", f"t{j}")
        sr.put_dataset(ds)
        sr.append_to_list("steps", ds)
    assert sr.get_list_length("steps") == 8
    assert sr.poll_list_length("steps", 8, 10, 10)
    got = sr.get_datasets_from_list("steps")
    assert [int(d.get_tensor("u")[0, 0]) for d in got] == list(range(8))
    assert [d.get_meta_strings("tag")[0] for d in got] == [f"t{j}" for j in range(8)]
    part = sr.get_dataset_list_range("steps", 2, 4)
    assert [int(d.get_tensor("u")[0, 0]) for d in part] == [2, 3, 4]
    # The datasets live on several shards, not only on the list's.
    assert sum(1 for c in keys_per_node(cluster) if c > 0) >= 2
    sr.rename_dataset("step0", "first")
    assert sr.dataset_exists("first") and not sr.dataset_exists("step0")


def test_smartredis_models_on_every_shard(sr, cluster, models_dir):
    model = str(models_dir / "mlp.onnx")
    sr.set_model_from_file("mlp", model, "ONNX", "CPU")
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    rng = np.random.default_rng(7)
    for i in range(6):
        x = rng.standard_normal((3, 16)).astype(np.float32)
        sr.put_tensor(f"in{i}", x)
        sr.run_model("mlp", [f"in{i}"], [f"out{i}"])
        np.testing.assert_allclose(sr.get_tensor(f"out{i}"), sess.run(None, {name: x})[0],
                                   rtol=1e-5, atol=1e-6)
    assert sr.model_exists("mlp")


def test_smartredis_ensembles_across_shards(cluster, monkeypatch):
    monkeypatch.delenv("SR_DB_TYPE", raising=False)
    monkeypatch.setenv("SSDB", cluster[0].tcp)
    monkeypatch.setenv("SSKEYOUT", "member0")
    producer = Client(logger_name="producer")
    monkeypatch.setenv("SSKEYOUT", "member1")
    monkeypatch.setenv("SSKEYIN", "member0,member1")
    consumer = Client(logger_name="consumer")
    consumer.set_data_source("member0")
    for i in range(10):
        producer.put_tensor(f"x{i}", np.full(4, i, dtype=np.int32))
    for i in range(10):
        np.testing.assert_array_equal(consumer.get_tensor(f"x{i}"), np.full(4, i, dtype=np.int32))


def test_redis_py_cluster_client(cluster):
    from redis.cluster import RedisCluster
    rc = RedisCluster(host="127.0.0.1", port=cluster[0].port)
    for i in range(100):
        rc.set(f"k{i}", i)
    assert [int(rc.get(f"k{i}")) for i in range(100)] == list(range(100))
    rc.execute_command("AI.TENSORSET", "{job}.x", "FLOAT", 2, "VALUES", 1.5, 2.5)
    # RESP3 (redis-py's default): float values come as doubles.
    assert rc.execute_command("AI.TENSORGET", "{job}.x", "VALUES") == [1.5, 2.5]
    assert len(rc.cluster_nodes()) == 3
    rc.close()


def test_the_insitu_package_routes_across_shards(cluster, models_dir):
    import insitu
    c = insitu.Client(",".join(n.tcp for n in cluster))
    for i in range(30):
        c.put_tensor(f"p{i}", np.full(3, i, dtype=np.int64))
    assert all((c.get_tensor(f"p{i}") == i).all() for i in range(30))
    c.set_model_from_file("mlp", str(models_dir / "mlp.onnx"))
    x = np.ones((2, 16), dtype=np.float32)
    want = next(iter(c.infer("mlp", [x]).values()))
    c.put_tensor("{a}.x", x)
    c.run_model("mlp", ["{a}.x"], ["{a}.y"])
    np.testing.assert_array_equal(c.get_tensor("{a}.y"), want)
    c.put_tensor("plain-x", x)
    c.run_model("mlp", ["plain-x"], ["plain-y"])
    np.testing.assert_array_equal(c.get_tensor("plain-y"), want)


def test_a_killed_node_is_a_clear_error_and_the_others_keep_serving(monkeypatch):
    nodes = start_cluster("fixed")
    try:
        monkeypatch.delenv("SR_DB_TYPE", raising=False)
        monkeypatch.setenv("SSDB", nodes[0].tcp)
        # Short budgets: the test must fail in seconds, not sit out SmartRedis' defaults.
        for var, v in (("SR_CONN_TIMEOUT", "1"), ("SR_CMD_TIMEOUT", "1"),
                       ("SR_CMD_INTERVAL", "100"), ("SR_CONN_INTERVAL", "100")):
            monkeypatch.setenv(var, v)
        c = Client(logger_name="killed")
        for i in range(30):
            c.put_tensor(f"k{i}", np.full(2, i))
        nodes[2].proc.kill()
        nodes[2].proc.wait()
        ok, failed = 0, 0
        for i in range(30):
            try:
                np.testing.assert_array_equal(c.get_tensor(f"k{i}"), np.full(2, i))
                ok += 1
            except RuntimeError as e:
                failed += 1
        assert ok > 0 and failed > 0, (ok, failed)
        # Nothing acknowledged on the living shards was lost.
        assert sum(Raw(n.port).cmd("DBSIZE") for n in nodes[:2]) == ok
    finally:
        for n in nodes[:2]:
            n.stop()


def test_a_data_stream_reads_lists_whose_datasets_live_on_other_shards(cluster):
    import insitu
    address = ",".join(n.tcp for n in cluster)
    for n in cluster:
        Raw(n.port).cmd("FLUSHALL")
    producer = insitu.Client(address, key_out="sim_0")
    for i in range(24):
        ds = insitu.Dataset(f"sample{i}")
        ds.add_tensor("x", np.full(3, i, dtype=np.float32))
        ds.add_tensor("y", np.array([i], dtype=np.int64))
        producer.put_dataset(ds)
        producer.append_to_list("samples", ds)
    stream = insitu.DataStream(address, "samples", sources=["sim_0"], fields=("x", "y"),
                               batch_size=8, timeout=0.5)
    seen = []
    for x, y in stream:
        assert x.shape == (8, 3) and y.shape == (8, 1)
        assert (x[:, 0] == y[:, 0]).all()
        seen.extend(int(v) for v in y[:, 0])
    assert sorted(seen) == list(range(24))
    # The samples' datasets are spread over the shards, the list on one.
    assert sum(1 for k in keys_per_node(cluster) if k > 0) >= 2
