"""Lua scripts (EVAL, EVALSHA, their _RO forms, SCRIPT): every reply is byte for byte what
a real redis-server sends for the same commands, in RESP2 and RESP3, run side by side; and
RedisAI's commands inside scripts and transactions answer as RedisAI answered."""

import pytest
import redis

from conftest import Wire


def sha(body: str) -> str:
    import hashlib
    return hashlib.sha1(body.encode()).hexdigest()


# Each case: commands sent in order on one connection after FLUSHALL and SCRIPT FLUSH.
CASES = [
    # Lua values to RESP, as Redis converts them.
    [["EVAL", "return 1", "0"]],
    [["EVAL", "return 3.99", "0"]],
    [["EVAL", "return -3.5", "0"]],
    [["EVAL", "return 2^53", "0"]],
    [["EVAL", "return 'hello'", "0"]],
    [["EVAL", "return true", "0"]],
    [["EVAL", "return false", "0"]],
    [["EVAL", "return nil", "0"]],
    [["EVAL", "return {1, 2, {3, 'x'}, nil, 5}", "0"]],
    [["EVAL", "return {1.5, 2.9, -0.5}", "0"]],
    [["EVAL", "return {}", "0"]],
    [["EVAL", "return {err = 'boom'}", "0"]],
    [["EVAL", "return {ok = 'fine'}", "0"]],
    [["EVAL", "return redis.error_reply('My Error')", "0"]],
    [["EVAL", "return redis.status_reply('FINE')", "0"]],
    [["EVAL", "return tostring(1/0) .. tostring(-1/0)", "0"]],
    [["EVAL", "return string.format('%d-%s-%5.2f', 5, 'x', 3.14159)", "0"]],
    [["EVAL", "return {math.floor(2.7), math.max(3, 9), string.rep('ab', 3)}", "0"]],
    [["EVAL", "return table.concat({'a', 'b', 'c'}, '-')", "0"]],
    [["EVAL", "return redis.sha1hex('')", "0"]],
    [["EVAL", "return redis.sha1hex('insitu')", "0"]],
    [["EVAL", "return {redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING}", "0"]],
    [["EVAL", "redis.log(redis.LOG_WARNING, 'from a script'); return 1", "0"]],
    # KEYS and ARGV.
    [["EVAL", "return KEYS[1] .. ARGV[1]", "1", "k", "a"]],
    [["EVAL", "return {#KEYS, #ARGV}", "2", "a", "b", "c"]],
    [["EVAL", "return {KEYS, ARGV}", "1", "k", "x", "y"]],
    # redis.call and redis.pcall, and their replies in Lua.
    [["EVAL", "return redis.call('SET', KEYS[1], ARGV[1])", "1", "k", "v"],
     ["EVAL", "return redis.call('GET', KEYS[1])", "1", "k"],
     ["GET", "k"]],
    [["EVAL", "return redis.call('GET', 'missing')", "0"]],
    [["EVAL", "return type(redis.call('GET', 'missing'))", "0"]],
    [["EVAL", "return redis.call('PING')", "0"]],
    [["EVAL", "return redis.call('PING').ok", "0"]],
    [["HSET", "h", "f1", "1", "f2", "two"],
     ["EVAL", "return redis.call('HGETALL', 'h')", "0"],
     ["EVAL", "return redis.call('HGET', 'h', 'f2')", "0"],
     ["EVAL", "return redis.call('EXISTS', 'h', 'nope')", "0"]],
    [["RPUSH", "l", "a", "b", "c"],
     ["EVAL", "return redis.call('LRANGE', KEYS[1], 0, -1)", "1", "l"],
     ["EVAL", "return redis.call('LLEN', KEYS[1]) + 10", "1", "l"]],
    [["EVAL", "redis.call('SET', 'n', '1'); return redis.call('GET', 'n') + 1", "0"],
     ["EVAL", "return redis.call('DEL', 'n', 'other')", "0"]],
    [["SET", "s", "text"], ["EVAL", "return redis.call('HGET', 's', 'f')", "0"]],
    [["SET", "s", "text"], ["EVAL", "return redis.pcall('HGET', 's', 'f')", "0"]],
    [["EVAL", "return redis.call('SET', 'k', 'v', 'BAD')", "0"]],
    [["EVAL", "return redis.call('NOSUCH')", "0"]],
    [["EVAL", "return redis.pcall('NOSUCH')", "0"]],
    [["EVAL", "return type(redis.pcall('NOSUCH'))", "0"]],
    [["EVAL", "return redis.pcall('NOSUCH').err", "0"]],
    [["EVAL", "return redis.call('GET')", "0"]],
    [["EVAL", "return redis.pcall('SET', 'k')", "0"]],
    [["EVAL", "return redis.call()", "0"]],
    [["EVAL", "return redis.call('GET', {})", "0"]],
    [["EVAL", "return redis.call('EVAL', 'return 1', 0)", "0"]],
    [["EVAL", "return redis.call('MULTI')", "0"]],
    [["EVAL", "local ok, e = pcall(redis.call, 'NOSUCH'); return e", "0"]],
    [["EVAL", "local ok, e = pcall(function() redis.call('NOSUCH') end); return {tostring(ok), e}", "0"]],
    [["EVAL", "return pcall(function() error('x') end)", "0"]],
    # Errors raised by the script, and where they happened.
    [["EVAL", "error('custom')", "0"]],
    [["EVAL", "error({err = 'tbl'})", "0"]],
    [["EVAL", "local a = 1\nlocal b = 2\nerror('line three')", "0"]],
    [["EVAL", "local a = 1\nreturn redis.call('NOSUCH')", "0"]],
    [["EVAL", "return +", "0"]],
    [["EVAL", "return undefined_global", "0"]],
    [["EVAL", "x = 1", "0"]],
    # Arguments.
    [["EVAL", "return 1", "5", "a"]],
    [["EVAL", "return 1", "-1"]],
    [["EVAL", "return 1", "x"]],
    [["eval", "return 1"]],
    [["evalsha", "x"]],
    [["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"]],
    [["EVALSHA", "short", "0"]],
    # The script cache.
    [["SCRIPT", "LOAD", "return 'loaded'"],
     ["EVALSHA", sha("return 'loaded'"), "0"],
     ["EVALSHA", sha("return 'loaded'").upper(), "0"],
     ["SCRIPT", "EXISTS", sha("return 'loaded'"), "ffff"],
     ["SCRIPT", "FLUSH"],
     ["SCRIPT", "EXISTS", sha("return 'loaded'")],
     ["EVALSHA", sha("return 'loaded'"), "0"]],
    [["EVAL", "return 'cached by EVAL'", "0"],
     ["EVALSHA", sha("return 'cached by EVAL'"), "0"],
     ["EVALSHA_RO", sha("return 'cached by EVAL'"), "0"]],
    [["SCRIPT", "LOAD", "return +"]],
    [["SCRIPT", "FLUSH", "SYNC"], ["SCRIPT", "FLUSH", "ASYNC"], ["SCRIPT", "FLUSH", "BAD"]],
    [["SCRIPT", "KILL"]],
    [["SCRIPT", "NOSUCH"]],
    [["SCRIPT", "LOAD"]],
    [["SCRIPT", "KILL", "x"]],
    [["SCRIPT", "EXISTS"]],
    [["SCRIPT", "FLUSH", "SYNC", "x"]],
    [["script"]],
    # Read-only scripts.
    [["EVAL_RO", "return redis.call('SET', 'a', 'b')", "0"]],
    [["EVAL_RO", "return redis.pcall('SET', 'a', 'b')", "0"]],
    [["SET", "a", "b"], ["EVAL_RO", "return redis.call('GET', 'a')", "0"]],
    # Scripts in transactions.
    [["MULTI"], ["EVAL", "return redis.call('SET', 'k', 'in multi')", "0"],
     ["EVAL", "return redis.call('GET', 'k')", "0"], ["EXEC"]],
    [["MULTI"], ["EVAL", "return redis.call('NOSUCH')", "0"], ["SET", "after", "1"], ["EXEC"],
     ["GET", "after"]],
]


def run_case(port: int, proto: int, case) -> list:
    w = Wire(port)
    if proto == 3:
        w.cmd("HELLO", "3")
    w.cmd("FLUSHALL")
    w.cmd("SCRIPT", "FLUSH")
    replies = [w.cmd(*c) for c in case]
    w.s.close()
    return replies


@pytest.mark.parametrize("proto", [2, 3])
def test_scripts_answer_as_redis_server_does(server, redis_port, proto):
    for case in CASES:
        assert run_case(server.port, proto, case) == run_case(redis_port, proto, case), case


def test_script_help_lists_the_subcommands_served(raw):
    lines = raw.cmd("SCRIPT", "HELP")
    assert lines[0] == "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    assert [l.split()[0] for l in lines[1:] if not l.startswith(" ")] == \
        ["EXISTS", "FLUSH", "KILL", "LOAD", "HELP"]


def test_redisai_commands_in_scripts_and_transactions(raw, models_dir):
    """RedisAI refused its run commands inside MULTI and Lua (tests/flow/tests_common.py
    test_lua_multi); tensor commands were allowed."""
    ok = raw.cmd("AI.MODELSTORE", "m", "ONNX", "CPU", "BLOB", (models_dir / "mlp.onnx").read_bytes())
    assert ok == "OK"
    assert raw.cmd("AI.TENSORSET", "x", "FLOAT", "1", "2", "VALUES", "1", "2") == "OK"
    text = "Cannot run RedisAI command within a transaction or a LUA script"
    for cmd in ("AI.MODELEXECUTE", "AI.DAGEXECUTE", "AI.DAGEXECUTE_RO", "AI.MODELRUN", "AI.DAGRUN",
                "AI.DAGRUN_RO"):
        reply = raw.cmd("EVAL", f"return redis.pcall('{cmd}', 'm', 'INPUTS', 1, 'x', 'OUTPUTS', 1, 'y')", "0")
        assert reply == "ERR " + text, (cmd, reply)
    reply = raw.cmd("EVAL", "return redis.call('AI.MODELEXECUTE', 'm', 'INPUTS', 1, 'x', 'OUTPUTS', 1, 'y')", "0")
    assert reply.startswith(f"ERR {text} script: "), reply
    assert raw.cmd("EXISTS", "y") == 0
    # Tensor commands work inside a script, and a script's writes stay.
    reply = raw.cmd("EVAL", "redis.call('AI.TENSORSET', KEYS[1], 'INT32', 2, 'VALUES', ARGV[1], ARGV[2]); "
                    "return redis.call('AI.TENSORGET', KEYS[1], 'VALUES')", "1", "t", "7", "-3")
    assert reply == [7, -3]
    assert raw.cmd("AI.TENSORGET", "t", "META") == [b"dtype", b"INT32", b"shape", [2]]
    # Inside MULTI a run command is queued and answers the same error in EXEC's reply; the
    # other commands of the transaction run.
    assert raw.cmd("MULTI") == "OK"
    assert raw.cmd("AI.MODELEXECUTE", "m", "INPUTS", "1", "x", "OUTPUTS", "1", "y") == "QUEUED"
    assert raw.cmd("SET", "after", "1") == "QUEUED"
    assert raw.cmd("EXEC") == ["ERR " + text, "OK"]
    # A script run in a transaction is refused the same way.
    assert raw.cmd("MULTI") == "OK"
    assert raw.cmd("EVAL", "return redis.pcall('AI.MODELEXECUTE', 'm', 'INPUTS', 1, 'x', 'OUTPUTS', 1, 'y')",
                   "0") == "QUEUED"
    assert raw.cmd("EXEC") == ["ERR " + text]
    assert raw.cmd("EXISTS", "y") == 0


def test_a_script_past_its_time_limit_stops_and_the_server_serves_on(server, raw):
    raw.cmd("CONFIG", "SET", "lua-time-limit", "50")
    try:
        reply = raw.cmd("EVAL", "local i = 0 while true do i = i + 1 end", "0")
        assert reply.startswith("ERR Script killed: it ran longer than busy-reply-threshold (50 ms)"), reply
        assert raw.cmd("EVAL", "redis.call('SET', 'k', 'v') while true do end", "0").startswith("ERR Script killed")
        # What ran before the limit stays, as in Redis (scripts are not rolled back).
        assert raw.cmd("GET", "k") == b"v"
        assert raw.cmd("PING") == "PONG"
        assert raw.cmd("SCRIPT", "KILL") == "NOTBUSY No scripts in execution right now."
    finally:
        raw.cmd("CONFIG", "SET", "lua-time-limit", "5000")


def test_a_script_cannot_exhaust_memory(raw):
    reply = raw.cmd("EVAL", "local t = {} for i = 1, 1e6 do t[i] = string.rep('x', 1048576) .. i end", "0")
    body = "local t = {} for i = 1, 1e6 do t[i] = string.rep('x', 1048576) .. i end"
    assert reply == f"ERR Script used more than its 256 MiB of Lua memory script: {sha(body)}"
    assert raw.cmd("PING") == "PONG"


@pytest.mark.parametrize("proto", [2, 3])
def test_redis_py_register_script(server, proto):
    """redis-py's Script runs EVALSHA and falls back to EVAL on NOSCRIPT."""
    r = redis.Redis(host="127.0.0.1", port=server.port, protocol=proto)
    r.flushall()
    r.script_flush()
    push = r.register_script("return redis.call('RPUSH', KEYS[1], ARGV[1])")
    assert push(keys=["l"], args=[5]) == 1
    assert push(keys=["l"], args=[2]) == 2
    assert r.script_exists(push.sha) == [True]
    r.script_flush()
    assert r.script_exists(push.sha) == [False]
    assert push(keys=["l"], args=[1]) == 3
    assert r.lrange("l", 0, -1) == [b"5", b"2", b"1"]
    assert r.eval("return {1, 'two', {3}}", 0) == [1, b"two", [3]]
    with pytest.raises(redis.ResponseError, match="^user_script:1: Script attempted to access nonexistent global variable 'nope' script: "):
        r.eval("return nope", 0)
    r.close()
