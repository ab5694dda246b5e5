"""SmartRedis in its default (Clustered) mode against `insitu serve --cluster-nodes self`,
a one-node Redis Cluster owning every slot."""

import os
from pathlib import Path

import numpy as np
import pytest
from smartredis import Client, Dataset

from conftest import Raw, Server


@pytest.fixture(scope="module")
def cluster_server():
    s = Server("--cluster-nodes", "self")
    yield s
    assert s.stop() == 0


@pytest.fixture
def cluster_client(cluster_server, monkeypatch):
    monkeypatch.delenv("SR_DB_TYPE", raising=False)  # SmartRedis' default: Clustered
    monkeypatch.setenv("SSDB", cluster_server.tcp)
    Raw(cluster_server.port).cmd("FLUSHALL")
    return Client(logger_name="cluster-test")


def test_cluster_commands(cluster_server):
    r = Raw(cluster_server.port)
    slots = r.cmd("CLUSTER", "SLOTS")
    assert len(slots) == 1
    lo, hi, (ip, port, node_id) = slots[0]
    assert (lo, hi, ip, port) == (0, 16383, b"127.0.0.1", cluster_server.port)
    assert len(node_id) == 40
    assert b"cluster_state:ok" in r.cmd("CLUSTER", "INFO")
    assert r.cmd("CLUSTER", "KEYSLOT", "foo") == 12182
    assert r.cmd("CLUSTER", "MYID") == node_id


def test_smartredis_default_mode_works(cluster_client, cluster_server):
    c = cluster_client
    a = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    c.put_tensor("a", a)
    np.testing.assert_array_equal(c.get_tensor("a"), a)
    ds = Dataset("ds")
    ds.add_tensor("u", a.astype(np.float64))
    ds.add_meta_scalar("step", np.int64(3))
    c.put_dataset(ds)
    c.append_to_list("l", ds)
    got = c.get_datasets_from_list("l")[0]
    np.testing.assert_array_equal(got.get_tensor("u"), a.astype(np.float64))
    assert list(got.get_meta_scalars("step")) == [3]
    models = os.environ.get("INSITU_TEST_MODELS")
    if models and (Path(models) / "mlp.onnx").exists():
        c.set_model_from_file("mlp", str(Path(models) / "mlp.onnx"), "ONNX", "CPU")
        c.put_tensor("x", np.ones((2, 16), dtype=np.float32))
        c.run_model("mlp", ["x"], ["y"])
        assert c.get_tensor("y").shape == (2, 4)
        assert c.model_exists("mlp")
    info = c.get_db_cluster_info([cluster_server.tcp])[0]
    assert info["cluster_state"] == "ok" and info["cluster_known_nodes"] == "1"
