"""The unmodified SmartRedis 0.6.1 client from PyPI against `insitu serve`, over TCP and
over the Unix socket (every test that takes `client` runs once per transport)."""

import os

import numpy as np
import pytest
from smartredis import Client, Dataset
from smartredis.error import RedisReplyError, RedisRuntimeError, RedisKeyError

from conftest import RespError

DTYPES = [np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16]
SHAPES = [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 2)]


def sample(dtype, shape, seed=0):
    """Every element distinct (within the type's range), extremes included."""
    n = int(np.prod(shape))
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.floating):
        a = rng.standard_normal(n).astype(dtype) * dtype(1000)
        a[0] = np.finfo(dtype).max
        if n > 1:
            a[1] = np.finfo(dtype).tiny
    else:
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, size=n, dtype=dtype, endpoint=True)
        a[0] = info.min
        if n > 1:
            a[1] = info.max
    return a.reshape(shape)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"rank{len(s)}")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_tensor_round_trip(client, dtype, shape):
    a = sample(dtype, shape, seed=len(shape))
    client.put_tensor("t", a)
    b = client.get_tensor("t")
    assert b.dtype == a.dtype
    assert b.shape == a.shape
    np.testing.assert_array_equal(b, a)
    assert a.tobytes() == b.tobytes()
    assert client.tensor_exists("t")
    assert client.key_exists("t")
    assert client.poll_tensor("t", 1, 1)
    client.copy_tensor("t", "t2")
    np.testing.assert_array_equal(client.get_tensor("t2"), a)
    client.rename_tensor("t2", "t3")
    assert not client.tensor_exists("t2")
    np.testing.assert_array_equal(client.get_tensor("t3"), a)
    client.delete_tensor("t3")
    assert not client.tensor_exists("t3")
    assert not client.poll_tensor("t3", 1, 2)


def test_missing_tensor_error_text(client):
    with pytest.raises(RedisReplyError) as e:
        client.get_tensor("missing")
    assert "ERR tensor key is empty or in a different shard" in str(e.value)
    assert not client.tensor_exists("missing")


def test_wrong_type_error_text(client):
    ds = Dataset("d")
    ds.add_meta_scalar("x", 1)
    client.put_dataset(ds)
    client.use_tensor_ensemble_prefix(False)
    with pytest.raises(RedisReplyError) as e:
        client.get_tensor("{d}.meta")
    assert "WRONGTYPE Operation against a key holding the wrong kind of value" in str(e.value)


def make_dataset(name, seed):
    ds = Dataset(name)
    ds.add_tensor("u", sample(np.float64, (4, 3), seed))
    ds.add_tensor("ids", sample(np.int64, (5,), seed))
    ds.add_meta_scalar("step", np.int64(seed))
    ds.add_meta_scalar("step", np.int64(seed + 1))
    ds.add_meta_scalar("rank", np.int32(-seed))
    ds.add_meta_scalar("dt", np.float64(0.125))
    ds.add_meta_scalar("cfl", np.float32(0.5))
    ds.add_meta_scalar("nx", np.uint32(4000000000))
    ds.add_meta_scalar("cells", np.uint64(2**63 + 5))
    ds.add_meta_string("who", f"member-{seed}")
    ds.add_meta_string("who", "")
    return ds


def assert_dataset(ds, seed):
    np.testing.assert_array_equal(ds.get_tensor("u"), sample(np.float64, (4, 3), seed))
    np.testing.assert_array_equal(ds.get_tensor("ids"), sample(np.int64, (5,), seed))
    np.testing.assert_array_equal(ds.get_meta_scalars("step"), [seed, seed + 1])
    assert ds.get_meta_scalars("step").dtype == np.int64
    np.testing.assert_array_equal(ds.get_meta_scalars("rank"), [-seed])
    assert ds.get_meta_scalars("rank").dtype == np.int32
    np.testing.assert_array_equal(ds.get_meta_scalars("dt"), [0.125])
    np.testing.assert_array_equal(ds.get_meta_scalars("cfl"), [0.5])
    assert ds.get_meta_scalars("cfl").dtype == np.float32
    np.testing.assert_array_equal(ds.get_meta_scalars("nx"), [4000000000])
    np.testing.assert_array_equal(ds.get_meta_scalars("cells"), [2**63 + 5])
    assert ds.get_meta_strings("who") == [f"member-{seed}", ""]
    assert sorted(ds.get_tensor_names()) == ["ids", "u"]


def test_datasets(client):
    client.put_dataset(make_dataset("ds", 3))
    assert client.dataset_exists("ds")
    assert client.poll_dataset("ds", 1, 1)
    assert client.key_exists("{ds}.meta")
    assert_dataset(client.get_dataset("ds"), 3)
    client.copy_dataset("ds", "ds2")
    assert_dataset(client.get_dataset("ds2"), 3)
    client.rename_dataset("ds2", "ds3")
    assert not client.dataset_exists("ds2")
    assert_dataset(client.get_dataset("ds3"), 3)
    client.delete_dataset("ds3")
    assert not client.dataset_exists("ds3")
    assert not client.key_exists("{ds3}.u")
    with pytest.raises(RedisKeyError) as e:
        client.get_dataset("ds3")
    assert 'The requested DataSet, "ds3", does not exist.' in str(e.value)


def test_aggregation_lists(client):
    for i in range(5):
        ds = make_dataset(f"d{i}", i)
        client.put_dataset(ds)
        client.append_to_list("samples", ds)
    assert client.get_list_length("samples") == 5
    assert client.poll_list_length("samples", 5, 1, 1)
    assert not client.poll_list_length("samples", 4, 1, 1)
    assert client.poll_list_length_gte("samples", 3, 1, 1)
    assert client.poll_list_length_lte("samples", 5, 1, 1)
    all_ds = client.get_datasets_from_list("samples")
    assert [d.get_name() for d in all_ds] == [f"d{i}" for i in range(5)]
    for i, d in enumerate(all_ds):
        assert_dataset(d, i)
    mid = client.get_dataset_list_range("samples", 1, 2)
    assert [d.get_name() for d in mid] == ["d1", "d2"]
    tail = client.get_dataset_list_range("samples", -2, -1)
    assert [d.get_name() for d in tail] == ["d3", "d4"]
    client.copy_list("samples", "copy")
    assert client.get_list_length("copy") == 5
    client.rename_list("copy", "moved")
    assert client.get_list_length("copy") == 0
    assert client.get_list_length("moved") == 5
    client.delete_list("moved")
    assert client.get_list_length("moved") == 0


@pytest.fixture
def ensemble_env():
    saved = {k: os.environ.get(k) for k in ("SSKEYIN", "SSKEYOUT")}
    yield os.environ
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_ensemble_prefixes(address, server, ensemble_env):
    from conftest import Raw
    Raw(server.port).cmd("FLUSHALL")
    members = []
    for m in ("sim0", "sim1"):
        ensemble_env.pop("SSKEYIN", None)
        ensemble_env["SSKEYOUT"] = m
        c = Client(address=address, cluster=False)
        c.put_tensor("field", np.full(3, int(m[-1]), dtype=np.int32))
        ds = make_dataset("ds", int(m[-1]))
        c.put_dataset(ds)
        c.append_to_list("all", ds)
        members.append(c)
    ensemble_env.pop("SSKEYOUT", None)
    ensemble_env["SSKEYIN"] = "sim0,sim1"
    reader = Client(address=address, cluster=False)
    assert reader.key_exists("sim0.field") and reader.key_exists("sim1.{ds}.meta")
    assert not reader.key_exists("field")
    np.testing.assert_array_equal(reader.get_tensor("field"), [0, 0, 0])
    reader.set_data_source("sim1")
    np.testing.assert_array_equal(reader.get_tensor("field"), [1, 1, 1])
    assert_dataset(reader.get_dataset("ds"), 1)
    assert reader.get_list_length("all") == 1
    assert reader.get_datasets_from_list("all")[0].get_name() == "ds"
    reader.use_tensor_ensemble_prefix(False)
    assert not reader.tensor_exists("field")
    reader.use_list_ensemble_prefix(False)
    assert reader.get_list_length("sim0.all") == 1
    with pytest.raises(RedisRuntimeError):
        reader.set_data_source("sim9")


def test_admin_calls(client, address):
    info = client.get_db_node_info([address])[0]
    assert int(info["Persistence"]["rdb_last_save_time"]) > 1_700_000_000
    assert info["Persistence"]["rdb_bgsave_in_progress"] == "0"
    assert client.config_get("maxmemory", address) == {"maxmemory": "0"}
    client.config_set("maxmemory", "1gb", address)
    assert client.config_get("maxmemory", address) == {"maxmemory": str(1 << 30)}
    client.config_set("maxmemory", "0", address)
    with pytest.raises(RedisRuntimeError):
        client.config_set("no-such-option", "1", address)
    client.put_tensor("k", np.arange(3))
    client.save([address])
    client.flush_db([address])
    assert not client.tensor_exists("k")


def test_cluster_info_is_an_error_in_standalone_mode(raw):
    assert raw.cmd("CLUSTER", "INFO") == "ERR This instance has cluster support disabled"


# Error paths of PROTOCOL.md that the SmartRedis client never sends (it validates its
# arguments first) are checked on the wire, with the exact text.
TENSOR_ERRORS = [
    (["AI.TENSORSET", "k", "FLOAT"], "ERR wrong number of arguments for 'AI.TENSORSET' command"),
    (["AI.TENSORSET", "k", "FLOAT16X", "1"], "ERR invalid data type"),
    (["AI.TENSORSET", "k", "FLOAT", "0"], "ERR invalid or negative value found in tensor shape"),
    (["AI.TENSORSET", "k", "FLOAT", "-3"], "ERR invalid or negative value found in tensor shape"),
    (["AI.TENSORSET", "k", "FLOAT", "x"], "ERR invalid or negative value found in tensor shape"),
    (["AI.TENSORSET", "k", "FLOAT", "2", "BLOB", b"\0" * 7], "ERR data length does not match tensor shape and type"),
    (["AI.TENSORSET", "k", "INT8", "2", "VALUES", "1"], "ERR wrong number of values was given in 'AI.TENSORSET' command"),
    (["AI.TENSORSET", "k", "INT8", "1", "BLOB", "a", "b"],
     "ERR a single binary string should come after the BLOB argument in 'AI.TENSORSET' command"),
    (["AI.TENSORSET", "k", "INT8", "1", "VALUES", "abc"], "ERR invalid value"),
    (["AI.TENSORSET", "k", "BOOL", "1", "VALUES", "3"], "ERR invalid value"),
    (["AI.TENSORGET", "nope", "META", "BLOB"], "ERR tensor key is empty or in a different shard"),
    (["AI.TENSORGET", "t", "JSON"], "ERR unsupported data format"),
    (["AI.TENSORGET", "t", "BLOB", "VALUES"], "ERR both BLOB and VALUES specified"),
    (["AI.TENSORGET", "h"], "WRONGTYPE Operation against a key holding the wrong kind of value"),
]


@pytest.mark.parametrize("args,text", TENSOR_ERRORS, ids=[t for _, t in TENSOR_ERRORS])
def test_tensor_error_paths_on_the_wire(raw, args, text):
    assert raw.cmd("AI.TENSORSET", "t", "FLOAT", "1", "VALUES", "1") == "OK"
    assert raw.cmd("HSET", "h", "f", "v") == 1
    reply = raw.cmd(*args)
    assert isinstance(reply, RespError) and reply == text
    assert raw.cmd("EXISTS", "k") == 0
    assert raw.cmd("PING") == "PONG"


def test_values_reply_matches_redisai(raw):
    assert raw.cmd("AI.TENSORSET", "v", "DOUBLE", "3", "VALUES", "0.1", "-2", "1e300") == "OK"
    assert raw.cmd("AI.TENSORGET", "v", "META", "VALUES") == [
        b"dtype", b"DOUBLE", b"shape", [3], b"values", [b"0.10000000000000001", b"-2", b"1.0000000000000001e+300"]]
