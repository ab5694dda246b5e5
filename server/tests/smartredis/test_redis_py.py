"""redis-py, the most common Python Redis client, against insitu: plain commands and
its default pipelines (MULTI/EXEC transactions)."""

import pytest
import redis


@pytest.fixture
def r(server):
    c = redis.Redis(host="127.0.0.1", port=server.port)
    c.flushall()
    return c


def test_plain_commands(r):
    assert r.ping()
    assert r.set("k", b"v\x00w")
    assert r.get("k") == b"v\x00w"
    assert r.hset("h", mapping={"a": "1", "b": "2"}) == 2
    assert r.hgetall("h") == {b"a": b"1", b"b": b"2"}
    assert r.rpush("l", "x", "y", "z") == 3
    assert r.lrange("l", 0, -1) == [b"x", b"y", b"z"]
    assert r.dbsize() == 3
    assert sorted(r.keys("*")) == [b"h", b"k", b"l"]
    assert r.type("h") == b"hash"
    assert r.delete("k", "nope") == 1
    assert r.config_get("maxmemory") == {"maxmemory": "0"}
    assert "rdb_last_save_time" in r.info("persistence")


def test_transaction_pipeline_is_atomic_and_ordered(r):
    with r.pipeline() as p:  # transaction=True: MULTI ... EXEC
        p.set("a", "1")
        p.rpush("q", "x")
        p.get("a")
        p.llen("q")
        assert p.execute() == [True, 1, b"1", 1]
    with r.pipeline(transaction=False) as p:
        p.get("a")
        p.lpush("q", "w")
        assert p.execute() == [b"1", 2]


def test_errors_inside_a_transaction(r):
    r.set("s", "1")
    with r.pipeline() as p:
        p.rpush("s", "x")  # wrong type: fails at EXEC, the rest still runs
        p.set("t", "2")
        with pytest.raises(redis.ResponseError) as e:
            p.execute()
        assert "WRONGTYPE Operation against a key holding the wrong kind of value" in str(e.value)
    assert r.get("t") == b"2"
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("AI.TENSORGET", "x", "META")
    assert str(e.value) == "tensor key is empty or in a different shard"
    # RedisAI's rule: tensor commands run inside a transaction; model runs answer its error.
    with r.pipeline() as p:
        p.set("u", "3")
        p.execute_command("AI.TENSORSET", "x", "FLOAT", "1")
        p.execute_command("AI.MODELEXECUTE", "m", "INPUTS", "1", "x", "OUTPUTS", "1", "y")
        with pytest.raises(redis.ResponseError) as e:
            p.execute()
        assert "Cannot run RedisAI command within a transaction or a LUA script" in str(e.value)
    assert r.exists("u", "x") == 2, "the rest of the transaction ran"
    with r.pipeline() as p:
        p.set("v", "3")
        p.execute_command("NOSUCHCOMMAND")
        with pytest.raises(redis.ResponseError) as e:
            p.execute()
        assert str(e.value).startswith("Command # 2 (NOSUCHCOMMAND) of pipeline caused error")
    assert r.exists("v") == 0, "the aborted transaction changed nothing"
