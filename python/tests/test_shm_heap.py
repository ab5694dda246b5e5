"""The shared-memory heap (Unix socket): large tensors live in blocks the server hands
out; a get is a view of the stored block. Readers keep their data across deletes and
overwrites, dead processes (readers, writers, the server) leave no memory behind, and a
client reaches only the blocks it was given, read-only unless it wrote them."""

from __future__ import annotations

import mmap
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import insitu
from conftest import ServeProcess

MIB = 1 << 20


def info_memory(c) -> dict:
    text = c.command("INFO", "memory").decode()
    return {k: v for k, v in (line.split(":", 1) for line in text.splitlines() if ":" in line)}


def wait_for(cond, what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def pattern(n: int, seed: int) -> np.ndarray:
    return (np.arange(n, dtype=np.float32) * 0.5 + seed).astype(np.float32)


def run_child(code: str, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


# ---- a raw RESP client that receives descriptors -------------------------------------

def encode(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Raw:
    """RESP over a Unix socket, keeping the descriptors that come with replies."""

    def __init__(self, path: str):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(10)
        self.s.connect(path)
        self.buf = b""
        self.fds: list[int] = []

    def _fill(self):
        data, fds, _, _ = socket.recv_fds(self.s, 1 << 20, 16)
        if not data:
            raise ConnectionError("closed")
        self.buf += data
        self.fds += fds

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            while len(self.buf) < n + 2:
                self._fill()
            v, self.buf = self.buf[:n], self.buf[n + 2:]
            return v
        if kind == b"*":
            return [self._reply() for _ in range(int(rest))]
        raise AssertionError(f"unexpected reply {line!r}")

    def call(self, *args):
        self.s.sendall(encode(*args))
        return self._reply()

    def close(self):
        for fd in self.fds:
            os.close(fd)
        self.s.close()


# ---- readers keep their data ----------------------------------------------------------

def test_views_survive_delete_and_overwrite(serve):
    n = 4 * MIB // 4
    a = pattern(n, 1)
    with insitu.Client(serve.unix, key_in=[], key_out="") as w, \
            insitu.Client(serve.unix, key_in=[], key_out="") as r:
        assert w.shared_memory and r.shared_memory
        w.put_tensor("hk", a)
        view = r.get_tensor("hk", copy=False)
        mine = w.get_tensor("hk", copy=False)
        assert not view.flags.writeable and not mine.flags.writeable
        with pytest.raises(ValueError):
            view[0] = 7
        # Overwrite and delete, many times, with tensors of the same size: the freed
        # blocks are reused for the new values, but not the ones the views hold.
        for i in range(12):
            w.put_tensor("hk", pattern(n, 100 + i))
            w.put_tensor(f"other{i % 3}", pattern(n, 200 + i))
            if i % 4 == 3:
                w.delete_tensor("hk")
        assert np.array_equal(view, a)
        assert np.array_equal(mine, a)
        assert int(info_memory(w)["shm_heap_holds"]) >= 2
        del view, mine
        # The holds go with the next command of each connection.
        r.command("PING")
        w.command("PING")
        assert int(info_memory(w)["shm_heap_holds"]) == 0
        w.put_tensor("hk", a)
        assert np.array_equal(r.get_tensor("hk"), a)
        for k in ("hk", "other0", "other1", "other2"):
            w.delete_tensor(k)


def test_get_copy_is_writable_and_put_get_is_exact_every_dtype(serve):
    with insitu.Client(serve.unix, key_in=[], key_out="") as c:
        rng = np.random.default_rng(3)
        for dt in (np.float32, np.float64, np.int8, np.uint16, np.int64, np.bool_):
            a = (rng.standard_normal(300_000) * 100).astype(dt).reshape(100, 3000)
            c.put_tensor("x", a)
            got = c.get_tensor("x")
            assert got.dtype == a.dtype and got.shape == a.shape
            assert np.array_equal(got, a)
            got[0, 0] = 1  # a copy is the caller's own
            assert np.array_equal(c.get_tensor("x", copy=False), a)
        c.delete_tensor("x")


def test_datasets_and_models_read_blocks_in_place(serve, tmp_path):
    x = pattern(MIB // 4, 5).reshape(256, 1024)
    with insitu.Client(serve.unix, key_in=[], key_out="") as c:
        ds = insitu.Dataset("shmds")
        ds.add_tensor("x", x)
        ds.add_tensor("small", np.arange(4, dtype=np.int32))
        c.put_dataset(ds)
        back = c.get_dataset("shmds")
        assert np.array_equal(back.get_tensor("x"), x)
        assert np.array_equal(back.get_tensor("small"), np.arange(4, dtype=np.int32))
        c.delete_dataset("shmds")


# ---- nothing left behind ---------------------------------------------------------------

READER = """
import sys, time, numpy as np, insitu
c = insitu.Client(sys.argv[1], key_in=[], key_out="")
v = c.get_tensor(sys.argv[2], copy=False)
assert v.sum() == v.sum()
print("ready", flush=True)
time.sleep(60)
"""


def test_a_killed_reader_releases_its_holds(serve):
    with insitu.Client(serve.unix, key_in=[], key_out="") as w:
        w.put_tensor("rk", pattern(4 * MIB // 4, 2))
        base = int(info_memory(w)["shm_heap_holds"])
        p = run_child(READER, serve.unix, "rk")
        try:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
            assert int(info_memory(w)["shm_heap_holds"]) == base + 1
            p.send_signal(signal.SIGKILL)
            p.wait(10)
        finally:
            p.kill()
        wait_for(lambda: int(info_memory(w)["shm_heap_holds"]) == base, "the holds to go")
        # With the hold gone, a delete frees the block (back to the writer's free list).
        before = info_memory(w)
        w.delete_tensor("rk")
        after = info_memory(w)
        assert int(after["shm_heap_idle_bytes"]) > int(before["shm_heap_idle_bytes"])


WRITER = """
import sys, numpy as np, insitu
c = insitu.Client(sys.argv[1], key_in=[], key_out="")
for i in range(3):
    c.put_tensor(f"{sys.argv[2]}{i}", np.full(8 << 20, i, np.float32))
print("ready", flush=True)
import time; time.sleep(60)
"""


def test_a_killed_writer_leaves_only_its_stored_values():
    # A server of its own: this process then has no blocks in it (a process's free
    # blocks stay while it has a connection, and lent to that connection as spares).
    srv = ServeProcess()

    def held(c) -> int:
        """Bytes of blocks that are not warm: stored, lent, free or held."""
        m = info_memory(c)
        return int(m["shm_heap_bytes"]) - int(m["shm_heap_warm_bytes"])

    try:
        with insitu.Client(srv.unix, key_in=[], key_out="") as c:
            p = run_child(WRITER, srv.unix, "wk")
            try:
                assert p.stdout.readline().strip() == "ready", p.stderr.read()
                p.send_signal(signal.SIGKILL)
                p.wait(10)
            finally:
                p.kill()
            # Its spare and free blocks go once the server sees the process gone.
            stored = 3 * (32 << 20)
            wait_for(lambda: held(c) == stored, "the dead writer's free blocks to go")
            for i in range(3):
                assert np.array_equal(c.get_tensor(f"wk{i}"), np.full(8 << 20, i, np.float32))
                c.delete_tensor(f"wk{i}")
            # Its stored blocks go with their values: nothing of it is left.
            wait_for(lambda: held(c) == 0, "the dead writer's blocks to go")
    finally:
        assert srv.stop() == 0


HOLDER = """
import sys, os, signal, time, numpy as np, insitu
c = insitu.Client(sys.argv[1], key_in=[], key_out="")
a = np.full(16 << 20, 3, np.float32)
c.put_tensor("sk", a)
v = c.get_tensor("sk", copy=False)
print("ready", flush=True)
sys.stdin.readline()   # the server is killed meanwhile
assert np.array_equal(v, a), "a view outlives the server"
print("ok", flush=True)
"""


def shmem_kib() -> int:
    for line in open("/proc/meminfo"):
        if line.startswith("Shmem:"):
            return int(line.split()[1])
    raise AssertionError("no Shmem in /proc/meminfo")


def test_killing_the_server_leaves_no_memory(tmp_path):
    before = shmem_kib()
    srv = ServeProcess()
    p = run_child(HOLDER, srv.unix, stdin=subprocess.PIPE)
    try:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
        grown = shmem_kib() - before
        assert grown >= 60 << 10, f"64 MiB in shared memory, Shmem grew {grown} KiB"
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
        out, err = p.communicate("go\n", timeout=30)
        assert out.split() == ["ok"], err
        assert p.returncode == 0, err
    finally:
        p.kill()
        srv.proc.kill()
    # Nothing names the blocks: with both processes gone, the kernel freed them.
    wait_for(lambda: shmem_kib() - before < 16 << 10, "the blocks' memory to be freed")
    assert not [f for f in os.listdir("/dev/shm") if "insitu" in f]


# ---- isolation ---------------------------------------------------------------------------

PUTTER = """
import sys, numpy as np, insitu
c = insitu.Client(sys.argv[1], key_in=[], key_out="")
c.put_tensor("iso", np.arange(1 << 18, dtype=np.float32))
"""


def test_a_client_reaches_only_what_it_was_given(serve):
    # Another process writes the tensor; this one reads it over a raw connection.
    p = run_child(PUTTER, serve.unix)
    assert p.wait(60) == 0, p.stderr.read()
    data = np.arange(1 << 18, dtype=np.float32)
    r = Raw(str(serve.sock))
    try:
        assert r.call("INSITU.SHM") == "OK"
        reply = r.call("AI.TENSORGET", "iso", "META", "SHM")
        assert reply[:4] == [b"dtype", b"FLOAT", b"shape", [1 << 18]]
        assert reply[4] == b"shm"
        block, offset, n, hold, writable, dev, ino, sent = reply[5]
        assert (offset, n, writable, sent) == (0, MIB, 0, 1)
        assert len(r.fds) == 1
        fd = r.fds[0]
        # A read-only descriptor of that block alone.
        assert (os.fstat(fd).st_size, os.fstat(fd).st_dev, os.fstat(fd).st_ino) == (MIB, dev, ino)
        import fcntl
        assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY
        with pytest.raises(PermissionError):
            mmap.mmap(fd, MIB, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        with pytest.raises(OSError):
            os.write(fd, b"x")
        m = mmap.mmap(fd, MIB, mmap.MAP_SHARED, mmap.PROT_READ)
        assert np.array_equal(np.frombuffer(m, np.float32), data)
        m.close()
        # The connection has the descriptor: the next reference comes without one, and
        # it can be asked for again (read-only still).
        again = r.call("AI.TENSORGET", "iso", "META", "SHM")[5]
        assert again[0] == block and again[3] != hold and again[7] == 0 and len(r.fds) == 1
        assert r.call("INSITU.SHM", "FD", block) == [0, dev, ino]
        assert len(r.fds) == 2
        assert fcntl.fcntl(r.fds[1], fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY
        assert r.call("INSITU.SHM", "RELEASE", again[3]) == 1
        # Blocks and holds are looked up among this connection's own.
        other = Raw(str(serve.sock))
        try:
            assert other.call("INSITU.SHM") == "OK"
            assert other.call("INSITU.SHM", "RELEASE", hold) == 0
            lent = other.call("INSITU.SHM", "ALLOC", MIB)
            assert lent[1] == MIB and lent[4] == 1 and len(other.fds) == 1
            err = r.call("INSITU.SHM", "FD", lent[0])
            assert str(err) == f"ERR shared memory block {lent[0]} is neither lent to nor held by this connection"
            err = r.call("AI.TENSORSET", "x", "FLOAT", 4, "SHM", lent[0], 16)
            assert str(err) == f"ERR shared memory block {lent[0]} is not lent to this connection"
            err = r.call("AI.TENSORSET", "x", "FLOAT", 4, "SHM", block, 16)
            assert str(err) == f"ERR shared memory block {block} is not lent to this connection"
            # The lender may commit it, within its size.
            err = other.call("AI.TENSORSET", "x", "FLOAT", 4, "SHM", lent[0], MIB + 1)
            assert str(err) == f"ERR SHM length {MIB + 1} exceeds the block's {MIB} bytes"
            assert other.call("AI.TENSORSET", "x", "FLOAT", 4, "SHM", lent[0], 16) == "OK"
            assert other.call("DEL", "x") == 1
        finally:
            other.close()
        assert r.call("INSITU.SHM", "RELEASE", hold) == 1
        assert r.call("INSITU.SHM", "RELEASE", hold) == 0
        # Bad block arguments are errors and the connection goes on.
        assert str(r.call("INSITU.SHM", "ALLOC", "-5")) == "ERR invalid block size"
        assert str(r.call("INSITU.SHM", "RELEASE", "x")) == "ERR invalid hold"
        assert str(r.call("INSITU.SHM", "BOGUS")) == "ERR syntax error"
        assert r.call("PING") == "PONG"
    finally:
        r.close()
        c = insitu.Client(serve.unix, key_in=[], key_out="")
        c.delete_tensor("iso")
        c.close()


def test_the_heap_is_bounded_by_maxmemory():
    srv = ServeProcess("--maxmemory", "40mb")
    try:
        with insitu.Client(srv.unix, key_in=[], key_out="") as c:
            c.put_tensor("a", np.zeros(8 << 20, np.float32))
            with pytest.raises(insitu.OutOfMemory) as e:
                c.put_tensor("b", np.zeros(8 << 20, np.float32))
            assert str(e.value) == "OOM command not allowed when used memory > 'maxmemory'."
            assert np.array_equal(c.get_tensor("a"), np.zeros(8 << 20, np.float32))
    finally:
        assert srv.stop() == 0


def serve_in(directory, *extra: str) -> subprocess.Popen:
    """`insitu serve` on a Unix socket in `directory` (its --dir), up and answering."""
    from conftest import insitu_bin
    sock = directory / "s.sock"
    p = subprocess.Popen([insitu_bin(), "serve", "--port", "none", "--unixsocket", str(sock),
                          "--dir", str(directory), *extra],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: sock.exists() or p.poll() is not None, "the server to listen", 30)
    assert p.poll() is None, "insitu serve exited"
    return p


def stop(p: subprocess.Popen) -> None:
    p.send_signal(signal.SIGTERM)
    assert p.wait(30) == 0


def test_block_values_survive_journal_and_snapshot_restarts(tmp_path):
    a = pattern(2 * MIB // 4, 9)
    b = pattern(MIB // 4, 11)
    for extra in (("--appendonly", "yes"), ()):
        d = tmp_path / ("aof" if extra else "rdb")
        d.mkdir()
        p = serve_in(d, *extra)
        try:
            with insitu.Client(f"unix://{d / 's.sock'}", key_in=[], key_out="") as c:
                assert c.shared_memory
                c.put_tensor("ja", a)
                c.put_tensor("jb", b)
                c.put_tensor("jb", a)  # overwrites, from recycled blocks
                c.put_tensor("jb", b)
                if not extra:
                    assert c.command("SAVE") == b"OK"
        finally:
            stop(p)
        p = serve_in(d, *extra)
        try:
            with insitu.Client(f"unix://{d / 's.sock'}", key_in=[], key_out="") as c:
                assert np.array_equal(c.get_tensor("ja"), a)
                assert np.array_equal(c.get_tensor("jb"), b)
        finally:
            stop(p)
