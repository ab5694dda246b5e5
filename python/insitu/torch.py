"""PyTorch adapter for :class:`insitu.DataStream` (torch is optional: import this module
only where it is installed).

:class:`TorchDataStream` is a ``torch.utils.data.IterableDataset``: give it to a
``DataLoader`` (with ``batch_size=None``: the stream batches) and it shards the data over
``torch.distributed`` ranks *and* ``DataLoader`` workers, each worker opening its own
connection::

    from insitu.torch import TorchDataStream
    ds = TorchDataStream("unix:///tmp/insitu.sock", "samples", fields=("x", "y"),
                         batch_size=64, shuffle_window=1024)
    for x, y in torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2):
        ...
"""

from __future__ import annotations

from typing import Any, Iterator

try:
    import torch
    from torch.utils.data import IterableDataset, get_worker_info
except ImportError as e:  # pragma: no cover - exercised where torch is absent
    raise ImportError(
        "insitu.torch needs PyTorch (pip install torch); insitu.DataStream yields numpy "
        "arrays without it"
    ) from e

from .data import DataStream

__all__ = ["TorchDataStream", "as_torch"]


def as_torch(batch: Any) -> Any:
    """A batch of numpy arrays (tuple or dict) as torch tensors, sharing their memory."""
    if isinstance(batch, dict):
        return {k: torch.from_numpy(v) for k, v in batch.items()}
    return tuple(torch.from_numpy(v) for v in batch)


class TorchDataStream(IterableDataset):
    """A :class:`DataStream` as a torch ``IterableDataset`` yielding torch tensors.

    ``rank`` / ``world_size`` default to ``torch.distributed``'s when it is initialised;
    each ``DataLoader`` worker then takes its own share of that replica's samples.
    Other keyword arguments are :class:`DataStream`'s.
    """

    def __init__(self, address: str | None, list_name: str, **kwargs: Any) -> None:
        super().__init__()
        self.address = address
        self.list_name = list_name
        self.kwargs = kwargs
        self.epoch = 0

    def _shard(self) -> tuple[int, int]:
        rank = self.kwargs.get("rank")
        world = self.kwargs.get("world_size")
        if rank is None or world is None:
            dist = torch.distributed
            if dist.is_available() and dist.is_initialized():
                rank, world = dist.get_rank(), dist.get_world_size()
            else:
                rank, world = 0, 1
        info = get_worker_info()
        if info is not None:
            rank, world = rank * info.num_workers + info.id, world * info.num_workers
        return rank, world

    def __iter__(self) -> Iterator[Any]:
        rank, world = self._shard()
        kwargs = {k: v for k, v in self.kwargs.items() if k not in ("rank", "world_size")}
        with DataStream(self.address, self.list_name, rank=rank, world_size=world, **kwargs) as s:
            s.epoch = self.epoch
            self.epoch += 1
            for batch in s:
                yield as_torch(batch)
