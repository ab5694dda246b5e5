"""Tensors through insitu.Client in every mode: every dtype, rank and memory order, every
element compared; the key operations; unpack into caller arrays."""

from __future__ import annotations

import threading
import time

import ml_dtypes
import numpy as np
import pytest

import insitu

NUMERIC = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
           np.uint8, np.uint16, np.uint32, np.uint64]


def sample(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    return (rng.standard_normal(shape) * 1000).astype(dtype)


def same(a, b):
    assert a.dtype == b.dtype
    assert a.shape == b.shape
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", NUMERIC + [np.bool_, ml_dtypes.bfloat16])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 5)])
def test_put_get_every_dtype_and_rank(client, dtype, shape):
    a = sample(np.float32, shape).astype(dtype) if dtype == ml_dtypes.bfloat16 else sample(dtype, shape)
    client.put_tensor("t", a)
    got = client.get_tensor("t")
    same(got, a)
    assert got.flags.writeable and got.flags.c_contiguous
    got[...] = got  # writable, owned by the caller
    view = client.get_tensor("t", copy=False)
    same(view, a)


@pytest.mark.parametrize("order", ["C", "F", "strided", "transposed", "byteswapped", "list"])
@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.uint16])
def test_every_memory_order_reads_back_logically(client, order, dtype):
    base = sample(dtype, (6, 8), seed=3)
    a = {
        "C": base,
        "F": np.asfortranarray(base),
        "strided": base[::2, 1::3],
        "transposed": base.T,
        "byteswapped": base.astype(base.dtype.newbyteorder(">")),
        "list": base.tolist(),
    }[order]
    client.put_tensor("o", a)
    want = np.asarray(a).astype(dtype) if order == "list" else np.ascontiguousarray(a).astype(dtype)
    if order == "list":
        want = base.astype(np.int64 if np.issubdtype(dtype, np.integer) else np.float64)
    same(client.get_tensor("o"), want)


def test_put_does_not_alias_the_callers_array(client):
    a = np.arange(10, dtype=np.float32)
    client.put_tensor("a", a)
    a[:] = -1
    same(client.get_tensor("a"), np.arange(10, dtype=np.float32))


def test_strings(client):
    s = np.array([["alpha", "β"], ["", "x" * 300]])
    client.put_tensor("s", s)
    got = client.get_tensor("s")
    assert got.dtype == object and got.shape == (2, 2)
    assert got.tolist() == [[b"alpha", "β".encode()], [b"", b"x" * 300]]
    client.put_tensor("b", np.array([b"a", b"bc"], dtype=object))
    assert client.get_tensor("b").tolist() == [b"a", b"bc"]


def test_unpack_tensor_fills_the_callers_array(client):
    a = sample(np.float32, (4, 5))
    client.put_tensor("u", a)
    out = np.zeros((4, 5), np.float32)
    assert client.unpack_tensor("u", out) is None
    same(out, a)
    flat = np.zeros(20, np.float32)
    client.unpack_tensor("u", flat)
    same(flat, a.ravel())
    with pytest.raises(insitu.BadInput) as e:
        client.unpack_tensor("u", np.zeros(20, np.float64))
    assert str(e.value) == "ERR tensor 'u' has dtype FLOAT but the array holds float64"
    with pytest.raises(insitu.BadInput) as e:
        client.unpack_tensor("u", np.zeros(19, np.float32))
    assert str(e.value) == "ERR tensor 'u' has 20 elements but the array holds 19"
    with pytest.raises(insitu.BadInput) as e:
        client.unpack_tensor("u", np.zeros((5, 4), np.float32).T)
    assert str(e.value) == "ERR unpack_tensor needs a writable C-contiguous array"
    with pytest.raises(insitu.NotFound):
        client.unpack_tensor("missing", out)


def test_key_operations(client):
    a = sample(np.int64, (3,))
    client.put_tensor("k", a)
    assert client.tensor_exists("k") and client.key_exists("k")
    client.copy_tensor("k", "k2")
    same(client.get_tensor("k2"), a)
    client.rename_tensor("k2", "k3")
    assert not client.tensor_exists("k2")
    same(client.get_tensor("k3"), a)
    client.delete_tensor("k3")
    assert not client.tensor_exists("k3")
    with pytest.raises(insitu.NotFound) as e:
        client.get_tensor("k3")
    assert str(e.value) == "ERR tensor key is empty or in a different shard"
    assert e.value.code == 2 and isinstance(e.value, LookupError)


def test_poll_tensor_wakes_on_the_put_and_releases_the_gil(client, mode, request):
    from conftest import address_of
    other = insitu.Client(address_of(mode, request), key_in=[], key_out="")
    done = {}

    def waiter():
        t0 = time.monotonic()
        done["found"] = client.poll_tensor("late", 2000, 1)
        done["dt"] = time.monotonic() - t0

    th = threading.Thread(target=waiter)
    th.start()
    # The waiter holds no GIL while it waits: this thread keeps running Python.
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 0.2:
        n += 1
    other.put_tensor("late", np.ones(3, np.float32))
    th.join(5)
    assert done["found"] is True and done["dt"] < 1.5
    assert n > 1000
    assert client.poll_tensor("never", 10, 3) is False
    other.close()


def test_errors_have_their_classes_and_exact_text(client):
    with pytest.raises(insitu.BadInput) as e:
        client.put_tensor("c", np.zeros(3, np.complex64))
    assert str(e.value).startswith("ERR numpy dtype complex64 has no insitu tensor type")
    with pytest.raises(insitu.BadInput) as e:
        client.put_tensor("z", np.zeros((2, 0), np.float32))
    assert str(e.value) == "ERR invalid or negative value found in tensor shape"
    with pytest.raises(insitu.BadInput) as e:
        client.put_tensor("o", np.array([1, "a"], dtype=object))
    assert str(e.value) == "ERR a STRING tensor holds str or bytes, not int"
    client.command("RPUSH", "lst", "x")
    with pytest.raises(insitu.WrongType) as e:
        client.get_tensor("lst")
    assert str(e.value) == "WRONGTYPE Operation against a key holding the wrong kind of value"
    assert isinstance(e.value, TypeError)
    dims = client.config_get("max-tensor-dims")["max-tensor-dims"]
    client.config_set("max-tensor-dims", "3")
    try:
        with pytest.raises(insitu.LimitExceeded) as e:
            client.put_tensor("d", np.zeros((1, 1, 1, 1), np.float32))
        assert str(e.value) == "ERR tensor has more than 3 dims, which exceeds the limit of 3"
    finally:
        client.config_set("max-tensor-dims", dims)
    client.config_set("maxmemory", "1000")
    try:
        client.put_tensor("keep", np.arange(4, dtype=np.float32))
        with pytest.raises(insitu.OutOfMemory) as e:
            client.put_tensor("big", np.zeros(100_000, np.float32))
        assert str(e.value) == "OOM command not allowed when used memory > 'maxmemory'."
        assert isinstance(e.value, MemoryError)
    finally:
        client.config_set("maxmemory", "0")
    same(client.get_tensor("keep"), np.arange(4, dtype=np.float32))
    assert not client.tensor_exists("big")
    client.close()
    with pytest.raises(insitu.Io) as e:
        client.get_tensor("keep")
    assert str(e.value) == "ERR the client is closed"


def test_command_passes_anything_through(client):
    assert client.command("PING") == b"PONG"
    client.put_tensor("x", np.ones(2, np.float32))
    assert client.command("EXISTS", "x") == 1
    assert client.command("GET", "nothing") is None
    meta = client.command("AI.TENSORGET", "x", "META")
    assert meta == [b"dtype", b"FLOAT", b"shape", [2]]
    with pytest.raises(insitu.Unsupported) as e:
        client.command("NOSUCHCOMMAND")
    assert str(e.value) == "ERR unknown command 'NOSUCHCOMMAND', with args beginning with: "
