"""How many times a tensor's bytes are copied, measured by allocations: the native
module counts every byte it allocates (insitu._native._allocated_bytes), tracemalloc every
numpy buffer. 64 MiB tensors make one copy plainly visible against the noise."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import insitu
from insitu import _native

MIB = 1 << 20
SIZE = 64 * MIB
SLACK = 1 * MIB  # bookkeeping: keys, shapes, replies


def measure(f):
    """(native bytes allocated, numpy bytes allocated at peak) while f runs, and its result."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base_py = tracemalloc.get_traced_memory()[0]
    n0 = _native._allocated_bytes()
    out = f()
    n1 = _native._allocated_bytes()
    peak = tracemalloc.get_traced_memory()[1] - base_py
    tracemalloc.stop()
    return n1 - n0, peak, out


@pytest.fixture
def big():
    a = np.arange(SIZE // 4, dtype=np.float32)
    return a.reshape(1024, -1)


@pytest.fixture
def inproc():
    with insitu.Client("inproc", key_in=[], key_out="") as c:
        c.flush_db()
        yield c


def test_inproc_put_copies_once_into_the_store(inproc, big):
    native, py, _ = measure(lambda: inproc.put_tensor("big", big))
    assert SIZE <= native < SIZE + SLACK  # the stored copy, nothing else
    assert py < SLACK
    big[0, 0] = -1  # the store holds its own copy
    assert inproc.get_tensor("big", copy=False)[0, 0] == 0


def test_inproc_put_of_a_fortran_array_copies_once(inproc, big):
    f = np.asfortranarray(big)
    native, py, _ = measure(lambda: inproc.put_tensor("f", f))
    # numpy's C-order copy is private to the call, so the store keeps it as it is.
    assert native < SLACK
    assert SIZE <= py < SIZE + SLACK
    assert np.array_equal(inproc.get_tensor("f", copy=False), big)


def test_inproc_get_copies_once_into_the_numpy_array(inproc, big):
    inproc.put_tensor("big", big)
    native, py, got = measure(lambda: inproc.get_tensor("big"))
    assert native < SLACK
    assert SIZE <= py < SIZE + SLACK  # the returned array itself
    assert got.flags.writeable and got.flags.owndata
    assert not np.shares_memory(got, inproc.get_tensor("big", copy=False))
    assert np.array_equal(got, big)


def test_inproc_get_without_copy_makes_none(inproc, big):
    inproc.put_tensor("big", big)
    native, py, view = measure(lambda: inproc.get_tensor("big", copy=False))
    assert native < SLACK and py < SLACK
    assert not view.flags.writeable
    again = inproc.get_tensor("big", copy=False)
    assert np.shares_memory(view, again)  # both view the stored bytes
    assert np.array_equal(view, big)
    with pytest.raises(ValueError):
        view[0, 0] = 1.0


def test_put_over_a_socket_borrows_the_array(serve, big):
    with insitu.Client(serve.tcp, key_in=[], key_out="") as c:
        native, py, _ = measure(lambda: c.put_tensor("big", big))
        assert native < SLACK and py < SLACK  # written to the socket from the array itself
        got = c.get_tensor("big")
        assert np.array_equal(got, big)


def test_infer_borrows_its_inputs(inproc):
    from conftest import mlp_model
    model, ref = mlp_model(n_in=4096, n_hidden=4, n_out=2)
    inproc.set_model("wide", model)
    x = np.random.default_rng(0).standard_normal((1024, 4096)).astype(np.float32)  # 16 MiB
    inproc.infer("wide", x)  # warm up: session creation allocates
    native, py, out = measure(lambda: inproc.infer("wide", x))
    assert native < 4 * MIB  # the input is not copied (it is 16 MiB)
    np.testing.assert_allclose(out["y"], ref(x), rtol=1e-3, atol=1e-3)
