"""The current releases of redis-py and valkey-py, in RESP2 and in RESP3 (redis-py 8's
default: every connection opens with HELLO 3), against insitu: connection set-up,
tensors of every dtype (blobs and values), models, DAGs, transactions, hashes, CONFIG,
INFO, CLIENT and COMMAND. Model results are compared with onnxruntime's."""

import numpy as np
import onnxruntime
import pytest
import redis
import valkey

CLIENTS = {"redis-py": redis, "valkey-py": valkey}

DTYPES = {
    "FLOAT": np.float32, "DOUBLE": np.float64, "INT8": np.int8, "INT16": np.int16,
    "INT32": np.int32, "INT64": np.int64, "UINT8": np.uint8, "UINT16": np.uint16,
}


def test_versions_under_test():
    # Printed so a CI log says which releases ran (pytest -q shows it with -rA / on failure).
    print(f"redis-py {redis.__version__}, valkey-py {valkey.__version__}")
    assert int(redis.__version__.split(".")[0]) >= 8
    assert int(valkey.__version__.split(".")[0]) >= 6


@pytest.fixture(params=[(name, proto) for name in CLIENTS for proto in (2, 3)],
                ids=lambda p: f"{p[0]}-resp{p[1]}")
def r(request, server):
    name, proto = request.param
    c = CLIENTS[name].Redis(host="127.0.0.1", port=server.port, protocol=proto)
    c.flushall()
    yield c
    c.close()


@pytest.fixture(scope="module")
def models(models_dir):
    return models_dir


def test_connection_set_up(r):
    proto = r.connection_pool.connection_kwargs.get("protocol")
    assert r.ping() is True
    info = r.client_info()
    assert info["resp"] == str(proto)
    assert info["lib-name"] in ("redis-py", "valkey-py")
    assert info["lib-ver"] == CLIENTS[info["lib-name"]].__version__
    assert r.client_setname("sim-rank-0")
    assert r.client_getname() in ("sim-rank-0", b"sim-rank-0")
    ids = [c["id"] for c in r.client_list()]
    assert str(r.client_id()) in [str(i) for i in ids]
    assert r.info("server")["redis_version"] == "7.0.0"
    assert r.info("modules")["ai_RedisAI_version"] == "1.2.7"
    assert r.config_get("maxmemory") == {"maxmemory": "0"}
    assert r.config_set("lua-time-limit", 6000)
    assert r.config_get("lua-time-limit") == {"lua-time-limit": "6000"}
    assert r.config_set("lua-time-limit", 5000)
    assert r.command_count() > 40
    assert r.command_getkeys("AI.TENSORSET", "t", "FLOAT", "1") in ([b"t"], ["t"])


def test_plain_commands_and_transactions(r):
    assert r.set("k", b"v\x00w") and r.get("k") == b"v\x00w"
    assert r.get("missing") is None
    assert r.hset("h", mapping={"a": "1", "b": "2"}) == 2
    assert r.hgetall("h") == {b"a": b"1", b"b": b"2"}
    assert r.rpush("l", "x", "y") == 2 and r.lrange("l", 0, -1) == [b"x", b"y"]
    with r.pipeline() as p:
        p.set("a", "1").rpush("q", "x").get("a").hgetall("h")
        assert p.execute() == [True, 1, b"1", {b"a": b"1", b"b": b"2"}]


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_tensors_every_dtype(r, dtype):
    rng = np.random.default_rng(7)
    np_t = DTYPES[dtype]
    if np.issubdtype(np_t, np.floating):
        a = rng.standard_normal((3, 4)).astype(np_t)
    else:
        info = np.iinfo(np_t)
        a = rng.integers(info.min, info.max, (3, 4), dtype=np_t, endpoint=True)
    assert r.execute_command("AI.TENSORSET", "t", dtype, 3, 4, "BLOB", a.tobytes()) == b"OK"
    meta = r.execute_command("AI.TENSORGET", "t", "META", "BLOB")
    assert meta[:4] == [b"dtype", dtype.encode(), b"shape", [3, 4]]
    assert np.array_equal(np.frombuffer(meta[5], dtype=np_t).reshape(3, 4), a)
    values = r.execute_command("AI.TENSORGET", "t", "VALUES")
    if np.issubdtype(np_t, np.floating):
        # RESP2: %.17g text; RESP3: doubles. Both round-trip exactly.
        got = np.array([float(v) for v in values], dtype=np_t)
    else:
        got = np.array(values, dtype=np_t)
    assert np.array_equal(got.reshape(3, 4), a)
    assert r.execute_command("AI.TENSORSET", "v", dtype, 2, "VALUES", 1, 0) == b"OK"
    vals = r.execute_command("AI.TENSORGET", "v", "VALUES")
    assert [float(v) for v in vals] == [1.0, 0.0]


def test_models_and_dags(r, models):
    blob = (models / "mlp.onnx").read_bytes()
    sess = onnxruntime.InferenceSession(str(models / "mlp.onnx"))
    x = np.random.default_rng(3).standard_normal((5, 16)).astype(np.float32)
    want = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert r.execute_command("AI.MODELSTORE", "m", "ONNX", "CPU", "TAG", "v1", "BLOB", blob) == b"OK"
    meta = r.execute_command("AI.MODELGET", "m", "META")
    assert meta[:6] == [b"backend", b"ONNX", b"device", b"CPU", b"tag", b"v1"]
    r.execute_command("AI.TENSORSET", "x", "FLOAT", 5, 16, "BLOB", x.tobytes())
    assert r.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "x", "OUTPUTS", 1, "y") == b"OK"
    y = r.execute_command("AI.TENSORGET", "y", "BLOB")
    np.testing.assert_allclose(np.frombuffer(y, np.float32).reshape(want.shape), want, rtol=1e-5, atol=1e-6)
    # One round trip: put, run, get.
    dag = r.execute_command(
        "AI.DAGEXECUTE", "ROUTING", "x", "|>",
        "AI.TENSORSET", "in", "FLOAT", 5, 16, "BLOB", x.tobytes(), "|>",
        "AI.MODELEXECUTE", "m", "INPUTS", 1, "in", "OUTPUTS", 1, "out", "|>",
        "AI.TENSORGET", "out", "META", "BLOB")
    assert dag[0] == b"OK" and dag[1] == b"OK"
    assert dag[2][:4] == [b"dtype", b"FLOAT", b"shape", list(want.shape)]
    np.testing.assert_allclose(np.frombuffer(dag[2][5], np.float32).reshape(want.shape), want, rtol=1e-5, atol=1e-6)
    info = r.execute_command("AI.INFO", "m")
    info = dict(zip(info[::2], info[1::2]))
    assert info[b"calls"] == 2 and info[b"errors"] == 0
    assert r.execute_command("AI._MODELSCAN") == [[b"m", b"v1"]]
    # Errors keep RedisAI's text.
    with pytest.raises(redis.ResponseError if "redis" in type(r).__module__ else valkey.ResponseError) as e:
        r.execute_command("AI.MODELEXECUTE", "m", "INPUTS", 1, "nope", "OUTPUTS", 1, "y")
    assert str(e.value) == "tensor key is empty or in a different shard"
