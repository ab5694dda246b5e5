"""Fixtures: a real `insitu serve` process, and unmodified SmartRedis clients talking to
it over TCP and over its Unix socket."""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from insitu.testing import ServeProcess, insitu_binary

ROOT = Path(__file__).resolve().parents[3]

os.environ["SR_DB_TYPE"] = "Standalone"
os.environ.setdefault("SR_LOG_LEVEL", "QUIET")
os.environ.setdefault("SR_LOG_FILE", os.devnull)


def pytest_terminal_summary(terminalreporter):
    """The releases of the clients and tools this run tested against, in every log (also
    with -q)."""
    from importlib.metadata import PackageNotFoundError, version
    found = []
    for pkg in ("redis", "valkey", "smartredis", "onnxruntime", "tritonclient", "grpcio", "prometheus-client"):
        try:
            found.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            found.append(f"{pkg} (not installed)")
    for tool in ("redis-cli", "redis-server"):
        path = shutil.which(tool)
        out = subprocess.run([path, "--version"], capture_output=True, text=True,
                             timeout=20).stdout.split() if path else []
        found.append(f"{tool} {next((w.removeprefix('v=') for w in out if w[:1].isdigit() or w.startswith('v=')), '(not installed)')}")
    terminalreporter.write_line("clients and tools under test: " + ", ".join(found))


def insitu_bin() -> str:
    return insitu_binary(ROOT)


class Server(ServeProcess):
    """An `insitu serve` process (insitu.testing.ServeProcess) with the binary under test."""

    def __init__(self, *extra: str, port: int | None = None):
        super().__init__(*extra, binary=insitu_bin(), port=port)


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The models core/tests/models/gen_models.py wrote (./dev.sh test generates them)."""
    d = os.environ.get("INSITU_TEST_MODELS")
    if not d or not (Path(d) / "manifest.json").exists():
        if os.environ.get("INSITU_REQUIRE_PYTHON"):
            pytest.fail("INSITU_TEST_MODELS is not set to a directory of generated models")
        pytest.skip("no generated models (run ./dev.sh test)")
    return Path(d)


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


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    """A real redis-server on a free loopback port, for side-by-side comparisons."""
    server_bin, cli_bin = shutil.which("redis-server"), shutil.which("redis-cli")
    if server_bin is None or cli_bin is None:
        pytest.skip("redis-server is not installed (./dev.sh test installs it)")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    d = tmp_path_factory.mktemp("redis")
    p = subprocess.Popen([server_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", str(d)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if subprocess.run([cli_bin, "-p", str(port), "PING"], capture_output=True,
                              timeout=5).stdout.strip() == b"PONG":
                break
        except subprocess.TimeoutExpired:
            pass
        time.sleep(0.05)
    else:
        p.kill()
        pytest.fail("redis-server did not start in 20 s")
    yield port
    p.terminate()
    p.wait(timeout=20)


class Wire(Raw):
    """A connection that returns each reply as the exact bytes the server sent (RESP2 or,
    after HELLO 3, RESP3), for byte-for-byte comparisons."""

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read(self):
        line = self._line()
        out = line + b"\r\n"
        kind, rest = line[:1], line[1:]
        if kind in b"$=!" and int(rest) >= 0:
            out += self._exact(int(rest) + 2)
        elif kind in b"*~>" and int(rest) > 0:
            out += b"".join(self.read() for _ in range(int(rest)))
        elif kind in b"%|":
            out += b"".join(self.read() for _ in range(2 * int(rest)))
        return out
