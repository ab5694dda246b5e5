"""redis-cli against insitu, in RESP2 and with -3 (RESP3): what it prints for plain
commands is what it prints for a real redis-server (run side by side), and RedisAI's
commands print as RedisAI's did."""

import shutil
import subprocess

import pytest


CLI = shutil.which("redis-cli")

pytestmark = pytest.mark.skipif(CLI is None, reason="redis-cli is not installed (./dev.sh test installs it)")


def cli(port, *args, proto=2):
    extra = ["-3"] if proto == 3 else []
    out = subprocess.run([CLI, "-p", str(port), "--no-raw", *extra, *args],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    return out.stdout


PLAIN = [
    ["PING"],
    ["ECHO", "hi"],
    ["SET", "k", "v"],
    ["GET", "k"],
    ["GET", "missing"],
    ["HSET", "h", "f", "1"],
    ["HGETALL", "h"],
    ["HGETALL", "none"],
    ["HSET", "h", "g", "2", "e", "3"],
    ["HKEYS", "h"],
    ["HVALS", "h"],
    ["HKEYS", "none"],
    ["HVALS", "none"],
    ["hkeys"],
    ["hkeys", "h", "extra"],
    ["HEXISTS", "h", "f"],
    ["RPUSH", "l", "a", "b"],
    ["LRANGE", "l", "0", "-1"],
    ["LINDEX", "l", "9"],
    ["EXISTS", "k", "h", "l", "x"],
    ["CONFIG", "GET", "maxmemory"],
    ["CONFIG", "GET", "lua-time-limit"],
    ["CONFIG", "SET", "lua-time-limit", "6000"],
    ["CONFIG", "GET", "busy-reply-threshold"],
    ["CONFIG", "SET", "no-such-thing", "1"],
    ["CLIENT", "SETNAME", "cli"],
    ["CLIENT", "GETNAME"],
    ["CLIENT", "NO-EVICT", "on"],
    ["SELECT", "0"],
    ["TYPE", "h"],
    ["DEL", "k", "h", "l"],
    ["NOSUCH", "arg"],
    # Subcommands' arity, named as Redis 7 names them.
    ["CONFIG", "GET"],
    ["CONFIG", "SET", "maxmemory"],
    ["CLIENT", "SETNAME"],
    ["CLIENT", "GETNAME", "x"],
    ["CLIENT", "KILL"],
    ["CONFIG", "RESETSTAT", "x"],
    ["COMMAND", "COUNT", "x"],
    ["SCRIPT", "LOAD"],
    ["CLIENT", "NOSUCH"],
    ["HELLO", "4"],
]
# Known differences, kept deliberately: SELECT n > 0 (insitu has one database), the
# command name in arity errors (insitu quotes it as typed, as RedisAI's module commands
# and insitu's earlier releases did; Redis 7 lower-cases its own).


@pytest.mark.parametrize("proto", [2, 3])
def test_plain_commands_print_as_for_redis_server(server, redis_port, proto):
    for port in (server.port, redis_port):
        cli(port, "FLUSHALL")
        cli(port, "CONFIG", "SET", "lua-time-limit", "5000")
    for args in PLAIN:
        assert cli(server.port, *args, proto=proto) == cli(redis_port, *args, proto=proto), args
    cli(server.port, "CONFIG", "SET", "lua-time-limit", "5000")
    cli(redis_port, "CONFIG", "SET", "lua-time-limit", "5000")


def test_redisai_commands(server):
    cli(server.port, "FLUSHALL")
    assert cli(server.port, "AI.TENSORSET", "t", "FLOAT", "2", "VALUES", "1", "2.5") == "OK\n"
    meta = '1) "dtype"\n2) "FLOAT"\n3) "shape"\n4) 1) (integer) 2\n5) "values"\n'
    assert cli(server.port, "AI.TENSORGET", "t", "META", "VALUES") == meta + '6) 1) "1"\n   2) "2.5"\n'
    # RESP3: the values are doubles, as RedisAI's RedisModule_ReplyWithDouble gives them.
    assert cli(server.port, "AI.TENSORGET", "t", "META", "VALUES", proto=3) == \
        meta + "6) 1) (double) 1\n   2) (double) 2.5\n"
    assert cli(server.port, "AI.TENSORGET", "nope", "META") == \
        "(error) ERR tensor key is empty or in a different shard\n"
    assert cli(server.port, "AI.CONFIG", "GET", "MODEL_CHUNK_SIZE") == "(integer) 535822336\n"
    hello = cli(server.port, "HELLO", "3", proto=3)
    assert hello.startswith('1# "server" => "redis"\n2# "version" => "7.0.0"\n3# "proto" => (integer) 3\n'), hello
    assert hello.endswith('7# "modules" => \n   1) 1# "name" => "ai"\n      2# "ver" => (integer) 10207\n'
                          '      3# "path" => "insitu"\n      4# "args" => (empty array)\n'), hello
