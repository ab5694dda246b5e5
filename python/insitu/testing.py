"""Helpers for tests that need a real ``insitu serve`` process (insitu's own test suites
use them; so can a workflow's)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["ServeProcess", "free_port", "insitu_binary"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def insitu_binary(checkout: str | Path | None = None) -> str:
    """The ``insitu`` executable to test: ``INSITU_BIN``; else, given a source checkout,
    its debug build (under ``CARGO_TARGET_DIR`` or ``checkout/target``); else ``insitu``
    on ``PATH``."""
    if os.environ.get("INSITU_BIN"):
        return os.environ["INSITU_BIN"]
    if checkout is not None:
        target = Path(os.environ.get("CARGO_TARGET_DIR", Path(checkout) / "target"))
        path = target / "debug" / "insitu"
        if not path.exists():
            raise RuntimeError(f"{path} not built: run `cargo build` (or set INSITU_BIN)")
        return str(path)
    found = shutil.which("insitu")
    if not found:
        raise RuntimeError("no insitu binary: set INSITU_BIN or put insitu on PATH")
    return found


class ServeProcess:
    """An ``insitu serve`` process on a free loopback port and a private Unix socket, in a
    fresh directory (its ``--dir``, holding the socket, snapshots and ``server.log``).

    ``binary``: the ``insitu`` executable (default: ``INSITU_BIN``, else ``insitu`` on
    ``PATH``); ``extra``: more ``serve`` options; ``port``: the TCP port (default: a free
    one). Waits until both listeners accept.
    """

    def __init__(self, *extra: str, binary: str | None = None, timeout: float = 30,
                 port: int | None = None) -> None:
        binary = binary or insitu_binary()
        self.dir = Path(tempfile.mkdtemp(prefix="insitu-serve-"))
        self.port = port or free_port()
        self.sock = self.dir / "s.sock"
        self.log = open(self.dir / "server.log", "wb")
        self.proc = subprocess.Popen(
            [binary, "serve", "--port", str(self.port), "--unixsocket", str(self.sock),
             "--dir", str(self.dir), *extra],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                if self.sock.exists():
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.proc.kill()
                raise RuntimeError("insitu serve did not start: " + (self.dir / "server.log").read_text())
            time.sleep(0.02)

    @property
    def tcp(self) -> str:
        """``127.0.0.1:port``"""
        return f"127.0.0.1:{self.port}"

    @property
    def unix(self) -> str:
        """``unix:///path``"""
        return f"unix://{self.sock}"

    def stop(self) -> int:
        """SIGTERM, wait, and return the exit status (0 after a clean shutdown)."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.log.close()
        return code

    def __enter__(self) -> "ServeProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.stop()
