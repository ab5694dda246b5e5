"""Fixtures: a real `insitu serve` process, and unmodified SmartRedis clients talking to
it over TCP and over its Unix socket."""

import os
import socket
from pathlib import Path

import pytest
from insitu.testing import ServeProcess, insitu_binary

ROOT = Path(__file__).resolve().parents[3]

os.environ["SR_DB_TYPE"] = "Standalone"
os.environ.setdefault("SR_LOG_LEVEL", "QUIET")
os.environ.setdefault("SR_LOG_FILE", os.devnull)


def insitu_bin() -> str:
    return insitu_binary(ROOT)


class Server(ServeProcess):
    """An `insitu serve` process (insitu.testing.ServeProcess) with the binary under test."""

    def __init__(self, *extra: str):
        super().__init__(*extra, binary=insitu_bin())


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    assert s.stop() == 0, "server did not shut down cleanly on SIGTERM"


@pytest.fixture(params=["tcp", "unix"])
def address(request, server):
    return server.tcp if request.param == "tcp" else server.unix


@pytest.fixture
def client(address, server):
    from smartredis import Client
    Raw(server.port).cmd("FLUSHALL")
    return Client(address=address, cluster=False)


class Raw:
    """A minimal RESP2 connection for error paths the SmartRedis client checks itself
    before sending."""

    def __init__(self, port: int):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self.read()

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.s.recv(65536)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if kind == b"*":
            return [self.read() for _ in range(int(rest))]
        raise ValueError(line)


class RespError(str):
    pass


@pytest.fixture
def raw(server):
    r = Raw(server.port)
    r.cmd("FLUSHALL")
    return r
