"""insitu.DataStream: many producers, data-parallel replicas, epochs, shuffling, batching,
waiting for data."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import insitu
from conftest import address_of

PRODUCERS = 3
PER_PRODUCER = 100


def produce(addr, p, n, pause=0.001, list_name="samples"):
    with insitu.Client(addr, key_out=f"sim_{p}") as c:
        for i in range(n):
            ds = insitu.Dataset(f"sample_{i}")
            ds.add_tensor("x", np.array([p, i, p * 1000 + i], np.int64))
            ds.add_tensor("y", np.full((2,), p * 1000 + i, np.float32))
            c.put_dataset(ds)
            c.append_to_list(list_name, ds)
            time.sleep(pause)


@pytest.mark.parametrize("mode", ["inproc", "serve-unix", "serve-tcp"])
def test_every_sample_exactly_once_per_epoch_across_replicas(mode, request):
    addr = address_of(mode, request)
    with insitu.Client(addr, key_in=[], key_out="") as c:
        c.flush_db()
    streams = [
        insitu.DataStream(addr, "samples", sources=[f"sim_{p}" for p in range(PRODUCERS)],
                          fields=("x", "y"), batch_size=8, shuffle_window=32, seed=7,
                          rank=r, world_size=2, timeout=1.0)
        for r in range(2)
    ]
    seen = {}  # (epoch, rank) -> ids in order

    def consume(r, epoch):
        ids = []
        for x, y in streams[r]:
            assert x.dtype == np.int64 and x.shape[1:] == (3,) and x.shape[0] <= 8
            assert y.dtype == np.float32 and y.shape == (x.shape[0], 2)
            np.testing.assert_array_equal(y[:, 0], x[:, 2].astype(np.float32))
            ids.extend(int(v) for v in x[:, 2])
        seen[(epoch, r)] = ids

    # Epoch 0 streams while the producers write; epoch 1 replays what is stored.
    producers = [threading.Thread(target=produce, args=(addr, p, PER_PRODUCER)) for p in range(PRODUCERS)]
    consumers = [threading.Thread(target=consume, args=(r, 0)) for r in range(2)]
    for t in consumers + producers:
        t.start()
    for t in producers + consumers:
        t.join(120)
    for r in range(2):
        consume(r, 1)

    everything = {p * 1000 + i for p in range(PRODUCERS) for i in range(PER_PRODUCER)}
    for epoch in range(2):
        a, b = seen[(epoch, 0)], seen[(epoch, 1)]
        assert len(a) == len(set(a)) and len(b) == len(set(b)), "a sample came twice"
        assert not set(a) & set(b), "a sample reached both replicas"
        assert set(a) | set(b) == everything, "a sample was missed"
        assert abs(len(a) - len(b)) <= PRODUCERS
    # Shuffled within the window, differently each epoch, the same shard each epoch.
    assert seen[(1, 0)] != sorted(seen[(1, 0)], key=lambda v: (v % 1000, v // 1000))
    assert set(seen[(0, 0)]) == set(seen[(1, 0)]) and seen[(0, 0)] != seen[(1, 0)]
    assert streams[0].epoch == 2


def test_one_source_dict_batches_rows_and_drop_last(client):
    for i in range(5):
        ds = insitu.Dataset(f"d{i}")
        ds.add_tensor("a", np.full((3, 2), i, np.float64))  # three rows per dataset
        ds.add_tensor("b", np.arange(3, dtype=np.int32) + 10 * i)
        client.put_dataset(ds)
        client.append_to_list("rows", ds)
    with insitu.DataStream(client, "rows", sources=[], batch_size=4, timeout=0.05) as s:
        batches = list(s)
    assert [sorted(b) for b in batches] == [["a", "b"]] * 2
    assert [b["a"].shape for b in batches] == [(4, 3, 2)] + [(1, 3, 2)]
    with insitu.DataStream(client, "rows", sources=[], batch_size=4, timeout=0.05,
                           split_rows=True, drop_last=True, fields=("b", "a")) as s:
        batches = list(s)
    assert len(batches) == 3  # 15 rows: three batches of four, the last three dropped
    b, a = batches[0]
    assert b.tolist() == [0, 1, 2, 10] and a.shape == (4, 2)
    assert a[:, 0].tolist() == [0, 0, 0, 1]


def test_waiting_for_data_and_timeouts(client):
    s = insitu.DataStream(client, "late", sources=[], batch_size=2, timeout=0.2)
    t0 = time.monotonic()
    with pytest.raises(insitu.Timeout) as e:
        list(s)
    assert time.monotonic() - t0 >= 0.2
    assert str(e.value) == "ERR no data in list 'late' of sources [None] within 0.2 s"
    assert isinstance(e.value, TimeoutError)
    with pytest.raises(insitu.Timeout) as e:
        s.wait_for(1, timeout=0.05)
    assert str(e.value) == "ERR the lists 'late' hold 0 datasets, not 1, after 0.05 s"

    addr = client.address

    def late_producer():
        time.sleep(0.3)
        with insitu.Client(addr, key_in=[], key_out="") as c:
            for i in range(3):
                ds = insitu.Dataset(f"l{i}")
                ds.add_tensor("v", np.array([i], np.int16))
                c.put_dataset(ds)
                c.append_to_list("late", ds)

    th = threading.Thread(target=late_producer)
    th.start()
    s.timeout = 5.0
    s.wait_for(3)
    th.join()
    s.timeout = 0.05
    got = [b["v"].ravel().tolist() for b in s]
    assert got == [[0, 1], [2]]
    s.close()


def test_argument_errors():
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        insitu.DataStream("inproc", "l", batch_size=0)
    with pytest.raises(ValueError, match=r"rank must be in \[0, world_size\): rank=2, world_size=2"):
        insitu.DataStream("inproc", "l", rank=2, world_size=2)


def test_torch_adapter_yields_tensors(client):
    torch = pytest.importorskip("torch")
    from insitu.torch import TorchDataStream
    for i in range(4):
        ds = insitu.Dataset(f"t{i}")
        ds.add_tensor("x", np.full(3, i, np.float32))
        client.put_dataset(ds)
        client.append_to_list("tl", ds)
    ds = TorchDataStream(client.address, "tl", sources=[], fields=("x",), batch_size=2, timeout=0.05)
    batches = [x for (x,) in torch.utils.data.DataLoader(ds, batch_size=None)]
    assert [b.tolist() for b in batches] == [[[0.0] * 3, [1.0] * 3], [[2.0] * 3, [3.0] * 3]]
