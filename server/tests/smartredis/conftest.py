"""Fixtures: a real `insitu serve` process, and unmodified SmartRedis clients talking to
it over TCP and over its Unix socket."""

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

os.environ["SR_DB_TYPE"] = "Standalone"
os.environ.setdefault("SR_LOG_LEVEL", "QUIET")
os.environ.setdefault("SR_LOG_FILE", os.devnull)


def insitu_bin() -> str:
    if os.environ.get("INSITU_BIN"):
        return os.environ["INSITU_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    path = target / "debug" / "insitu"
    if not path.exists():
        raise RuntimeError(f"{path} not built: run `cargo build` (or set INSITU_BIN)")
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """An `insitu serve` process on a free TCP port and a private Unix socket."""

    def __init__(self, *extra: str):
        self.dir = Path(tempfile.mkdtemp(prefix="insitu-py-"))
        self.port = free_port()
        self.sock = self.dir / "s.sock"
        self.log = open(self.dir / "server.log", "wb")
        self.proc = subprocess.Popen(
            [insitu_bin(), "serve", "--port", str(self.port), "--unixsocket", str(self.sock),
             "--dir", str(self.dir), *extra],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                if self.sock.exists():
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("server did not start: " + (self.dir / "server.log").read_text())
            time.sleep(0.02)

    @property
    def tcp(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def unix(self) -> str:
        return f"unix://{self.sock}"

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.log.close()
        return code


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
