"""Streaming training data: batches from the datasets running simulations append to lists.

A simulation (or each member of an ensemble) stores one dataset per sample and appends it
to an aggregation list — ``client.put_dataset(ds); client.append_to_list("samples", ds)``
— and a trainer iterates::

    stream = insitu.DataStream("unix:///tmp/insitu.sock", "samples",
                               sources=["sim_0", "sim_1"], fields=("x", "y"),
                               batch_size=32, shuffle_window=256,
                               rank=rank, world_size=world_size, timeout=30)
    for epoch in range(10):
        for x, y in stream:          # numpy arrays of shape (32, ...)
            ...

Samples are the datasets of the lists (or, with ``split_rows=True``, the rows along axis 0
of each dataset's tensors). One pass of ``for ... in stream`` is an epoch: it yields every
sample already in the lists, then every sample appended while it runs, and ends once it
has waited ``timeout`` seconds without new data. Each sample belongs to exactly one
data-parallel replica (``rank`` of ``world_size``), so in an epoch the replicas together
see every sample exactly once. Shuffling draws from a window of ``shuffle_window``
samples, seeded by ``seed``, the epoch and the rank.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any, Iterator, Sequence

import numpy as np

from ._native import Client
from .errors import Timeout

__all__ = ["DataStream"]


class DataStream:
    """Batches of samples from aggregation lists filled by one or many producers.

    Parameters
    ----------
    client:
        An :class:`insitu.Client`, or an address for one (``None``: ``SSDB``). The stream
        opens its own connection to the same address, so it can be used from another
        thread or a ``DataLoader`` worker.
    list_name:
        The aggregation list the producers append to.
    sources:
        Ensemble members whose lists to read (their ``SSKEYOUT`` prefixes): the list of
        member ``p`` is ``p.<list_name>``. Default: the members in ``SSKEYIN``, or the
        unprefixed list when it is unset.
    fields:
        Tensor names to yield, as a tuple per batch; ``None`` yields a dict of every
        tensor of the dataset.
    batch_size:
        Samples per batch, stacked along a new axis 0.
    shuffle_window:
        Draw each sample at random from a window of this many (0: stream order).
    rank, world_size:
        This replica and the number of data-parallel replicas sharing the data.
    timeout:
        Seconds to wait for new data once every sample in the lists was read; the epoch
        ends when none comes. An epoch that finds no sample at all raises
        :class:`insitu.Timeout`.
    split_rows:
        Treat axis 0 of each dataset's tensors as rows, each row one sample.
    drop_last:
        Drop a last batch smaller than ``batch_size``.
    """

    def __init__(
        self,
        client: Client | str | None,
        list_name: str,
        *,
        sources: Sequence[str] | None = None,
        fields: Sequence[str] | None = None,
        batch_size: int = 1,
        shuffle_window: int = 0,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        timeout: float = 10.0,
        poll_interval: float = 0.01,
        split_rows: bool = False,
        drop_last: bool = False,
        chunk: int = 64,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size): rank={rank}, world_size={world_size}")
        if shuffle_window < 0 or timeout < 0 or poll_interval <= 0 or chunk < 1:
            raise ValueError("shuffle_window and timeout must be >= 0, poll_interval and chunk > 0")
        address = client.address if isinstance(client, Client) else client
        if sources is None:
            env = os.environ.get("SSKEYIN", "")
            sources = [s for s in env.split(",") if s]
        self.sources: list[str | None] = list(sources) if sources else [None]
        prefixed = [s for s in self.sources if s is not None]
        self._client = Client(address, key_in=prefixed, key_out="")
        if not prefixed:
            self._client.use_list_ensemble_prefix(False)
        self.list_name = list_name
        self.fields = tuple(fields) if fields is not None else None
        self.batch_size = batch_size
        self.shuffle_window = shuffle_window
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.split_rows = split_rows
        self.drop_last = drop_last
        self.chunk = chunk
        self.epoch = 0

    # ----- reading the lists -----

    def _select(self, source: str | None) -> None:
        if source is not None:
            self._client.set_data_source(source)

    def lengths(self) -> list[int]:
        """The current length of each source's list."""
        out = []
        for s in self.sources:
            self._select(s)
            out.append(self._client.get_list_length(self.list_name))
        return out

    def wait_for(self, total: int, timeout: float | None = None) -> None:
        """Block until the lists hold at least ``total`` datasets together."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while sum(self.lengths()) < total:
            if time.monotonic() >= deadline:
                raise Timeout(
                    f"ERR the lists '{self.list_name}' hold {sum(self.lengths())} datasets, "
                    f"not {total}, after {timeout if timeout is not None else self.timeout} s"
                )
            time.sleep(self.poll_interval)

    def _mine(self, source_index: int, i: int) -> bool:
        return (i + source_index) % self.world_size == self.rank

    def _fetch(self, si: int, start: int, end: int) -> list[Any]:
        """This replica's datasets among entries ``start..end`` (exclusive) of source si."""
        self._select(self.sources[si])
        if self.world_size == 1:
            out = []
            for a in range(start, end, self.chunk):
                b = min(end, a + self.chunk)
                out.extend(self._client.get_dataset_list_range(self.list_name, a, b - 1))
            return out
        return [
            self._client.get_dataset_list_range(self.list_name, i, i)[0]
            for i in range(start, end)
            if self._mine(si, i)
        ]

    def _datasets(self) -> Iterator[Any]:
        """Every dataset of this replica's shard: those listed now, then new ones until
        ``timeout`` passes without any."""
        read = [0] * len(self.sources)
        found = False
        idle_since = time.monotonic()
        while True:
            lengths = self.lengths()
            progressed = False
            for si, n in enumerate(lengths):
                if n > read[si]:
                    for ds in self._fetch(si, read[si], n):
                        found = True
                        yield ds
                    read[si] = n
                    progressed = True
            if progressed:
                idle_since = time.monotonic()
                continue
            if time.monotonic() - idle_since >= self.timeout:
                if not found and sum(lengths) == 0:
                    raise Timeout(
                        f"ERR no data in list '{self.list_name}' of sources "
                        f"{self.sources} within {self.timeout} s"
                    )
                return
            time.sleep(self.poll_interval)

    # ----- samples and batches -----

    def _samples(self) -> Iterator[Any]:
        for ds in self._datasets():
            names = self.fields if self.fields is not None else tuple(ds.get_tensor_names())
            arrays = [ds.get_tensor(n) for n in names]
            if not self.split_rows:
                yield names, arrays
                continue
            rows = {a.shape[0] if a.ndim else 1 for a in arrays}
            if len(rows) != 1:
                raise ValueError(
                    f"dataset '{ds.name}': split_rows needs one row count, got {sorted(rows)}"
                )
            for r in range(rows.pop()):
                yield names, [a[r] for a in arrays]

    def _shuffled(self, samples: Iterator[Any]) -> Iterator[Any]:
        if self.shuffle_window <= 1:
            yield from samples
            return
        rng = random.Random(hash((self.seed, self.epoch, self.rank)))
        window: list[Any] = []
        for s in samples:
            if len(window) < self.shuffle_window:
                window.append(s)
                continue
            j = rng.randrange(len(window))
            window[j], s = s, window[j]
            yield s
        rng.shuffle(window)
        yield from window

    def _batch(self, items: list[Any]) -> Any:
        names = items[0][0]
        for n, _ in items:
            if n != names:
                raise ValueError(f"samples with different tensors in one batch: {names} and {n}")
        stacked = [np.stack([a[k] for _, a in items]) for k in range(len(names))]
        if self.fields is not None:
            return tuple(stacked)
        return dict(zip(names, stacked))

    def __iter__(self) -> Iterator[Any]:
        epoch_samples = self._shuffled(self._samples())
        batch: list[Any] = []
        try:
            for s in epoch_samples:
                batch.append(s)
                if len(batch) == self.batch_size:
                    yield self._batch(batch)
                    batch = []
            if batch and not self.drop_last:
                yield self._batch(batch)
        finally:
            self.epoch += 1

    def close(self) -> None:
        """Close the stream's connection."""
        self._client.close()

    def __enter__(self) -> "DataStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"insitu.DataStream(list={self.list_name!r}, sources={self.sources}, "
            f"batch_size={self.batch_size}, rank={self.rank}/{self.world_size}, epoch={self.epoch})"
        )
