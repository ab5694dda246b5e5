"""Type stubs of insitu's native module (re-exported by ``insitu``)."""

from __future__ import annotations

from os import PathLike
from typing import Any, Mapping, Sequence, Union

import numpy as np
import numpy.typing as npt

__version__: str
#: The stable error codes by name (``{"BadInput": 1, ...}``), from the Rust enum.
ERROR_CODES: dict[str, int]

ArrayLike = npt.ArrayLike
Names = Union[str, Sequence[str]]

def _allocated_bytes() -> int:
    """Bytes the native module allocated since it was loaded (a diagnostic for tests)."""

class TensorBuffer:
    """A tensor's bytes exposed through the buffer protocol (what ``get_tensor`` views)."""

class Dataset:
    """Tensors and metadata stored and fetched as one unit (SmartRedis ``Dataset``).

    Arrays are copied in when added; later changes to them do not change the dataset.
    """

    def __init__(self, name: str) -> None: ...
    @property
    def name(self) -> str:
        """The dataset's name."""
    def add_tensor(self, name: str, data: ArrayLike) -> None:
        """Add (or replace) a tensor."""
    def get_tensor(self, name: str, copy: bool = True) -> np.ndarray:
        """A tensor as a numpy array (``copy=False``: a read-only view). Raises NotFound."""
    def get_tensor_names(self) -> list[str]: ...
    def get_tensor_type(self, name: str) -> str:
        """The insitu dtype name: FLOAT, DOUBLE, INT8 ... UINT64, BOOL, STRING, FLOAT16, BFLOAT16."""
    def get_tensor_dims(self, name: str) -> list[int]: ...
    def add_meta_scalar(self, name: str, data: int | float | np.number) -> None:
        """Append a scalar to a field: int is int64, float is float64, numpy scalars keep
        their type (float32/64, int32/64, uint32/64). Raises BadInput on a type change."""
    def add_meta_string(self, name: str, data: str | bytes) -> None:
        """Append a string (str is stored as UTF-8)."""
    def get_meta_scalars(self, name: str) -> np.ndarray:
        """A scalar field as a 1-D array of its type."""
    def get_meta_strings(self, name: str) -> list[str | bytes]:
        """A string field: str where UTF-8, bytes where not."""
    def get_metadata_field_names(self) -> list[str]: ...
    def get_metadata_field_type(self, name: str) -> str:
        """float64, float32, int64, int32, uint64, uint32 or string."""

class Client:
    """A connection to insitu (or Redis + RedisAI).

    ``address``: ``"inproc"`` (this process' engine: no socket, no copies on get with
    ``copy=False``), ``"unix:///path"``, ``"tcp://host:port"`` or ``"host:port"``; ``None``
    takes ``SSDB`` (then ``INSITU_ADDRESS``). ``key_in`` / ``key_out`` are the ensemble
    prefixes (default ``SSKEYIN`` / ``SSKEYOUT``). ``shared_memory`` turns shared-memory
    transfers over a Unix socket on or off. ``password`` sends ``AUTH`` on connect.

    Every method releases the GIL while it waits on the server or a model. Errors raise
    the classes of :mod:`insitu.errors` with the server's message verbatim.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        key_in: Names | None = None,
        key_out: str | None = None,
        shared_memory: bool | None = None,
        password: str | None = None,
    ) -> None: ...
    @property
    def address(self) -> str: ...
    @property
    def shared_memory(self) -> bool: ...
    def close(self) -> None:
        """Close the connection; later calls raise ``insitu.Io``. Idempotent."""
    def __enter__(self) -> Client: ...
    def __exit__(self, *args: object) -> None: ...
    def auth(self, password: str) -> None: ...
    def command(self, *args: str | bytes | int | float) -> Any:
        """Send any command; the reply as bytes, int, None or (nested) lists."""

    # tensors
    def put_tensor(self, name: str, data: ArrayLike) -> None:
        """Store an array of any supported dtype and memory order (read back row-major,
        ``a[i, j]`` as written). In process the array is copied once, into the store;
        over a socket it is sent from the array's own memory."""
    def get_tensor(self, name: str, copy: bool = True) -> np.ndarray:
        """Fetch a tensor. ``copy=True``: a writable array of its own; ``copy=False``: a
        read-only view of the stored bytes where that is possible (no copy in process).
        STRING tensors come back as object arrays of bytes."""
    def unpack_tensor(self, name: str, out: np.ndarray) -> None:
        """Fetch into ``out``, a writable C-contiguous array of the tensor's dtype and size."""
    def delete_tensor(self, name: str) -> None: ...
    def copy_tensor(self, src_name: str, dest_name: str) -> None: ...
    def rename_tensor(self, old_name: str, new_name: str) -> None: ...
    def tensor_exists(self, name: str) -> bool: ...
    def key_exists(self, key: str) -> bool: ...
    def poll_tensor(self, name: str, poll_frequency_ms: int, num_tries: int) -> bool:
        """Wait up to ``num_tries * poll_frequency_ms`` for the tensor; wakes on the put."""
    def poll_key(self, key: str, poll_frequency_ms: int, num_tries: int) -> bool: ...

    # datasets
    def put_dataset(self, dataset: Dataset) -> None: ...
    def get_dataset(self, name: str) -> Dataset: ...
    def delete_dataset(self, name: str) -> None: ...
    def copy_dataset(self, src_name: str, dest_name: str) -> None: ...
    def rename_dataset(self, old_name: str, new_name: str) -> None: ...
    def dataset_exists(self, name: str) -> bool: ...
    def poll_dataset(self, name: str, poll_frequency_ms: int, num_tries: int) -> bool: ...

    # aggregation lists
    def append_to_list(self, list_name: str, dataset: Dataset) -> None:
        """Append a dataset, already stored with ``put_dataset``, to a list."""
    def get_list_length(self, list_name: str) -> int: ...
    def poll_list_length(self, list_name: str, list_length: int, poll_frequency_ms: int, num_tries: int) -> bool: ...
    def poll_list_length_gte(self, list_name: str, list_length: int, poll_frequency_ms: int, num_tries: int) -> bool: ...
    def poll_list_length_lte(self, list_name: str, list_length: int, poll_frequency_ms: int, num_tries: int) -> bool: ...
    def get_datasets_from_list(self, list_name: str) -> list[Dataset]: ...
    def get_dataset_list_range(self, list_name: str, start_index: int, end_index: int) -> list[Dataset]:
        """Datasets ``start_index..=end_index``; negative indices count from the end."""
    def delete_list(self, list_name: str) -> None: ...
    def copy_list(self, src_name: str, dest_name: str) -> None: ...
    def rename_list(self, src_name: str, dest_name: str) -> None: ...

    # models
    def set_model(
        self,
        name: str,
        model: bytes,
        backend: str = "ONNX",
        device: str = "CPU",
        batch_size: int = 0,
        min_batch_size: int = 0,
        min_batch_timeout: int = 0,
        tag: str = "",
    ) -> None:
        """Store an ONNX model. ``batch_size > 0`` merges concurrent requests along axis 0
        (waiting for ``min_batch_size`` rows at most ``min_batch_timeout`` ms)."""
    def set_model_from_file(
        self,
        name: str,
        model_file: str | PathLike[str],
        backend: str = "ONNX",
        device: str = "CPU",
        batch_size: int = 0,
        min_batch_size: int = 0,
        min_batch_timeout: int = 0,
        tag: str = "",
    ) -> None: ...
    def get_model(self, name: str) -> bytes: ...
    def delete_model(self, name: str) -> None: ...
    def model_exists(self, name: str) -> bool: ...
    def poll_model(self, name: str, poll_frequency_ms: int, num_tries: int) -> bool: ...
    def run_model(self, name: str, inputs: Names, outputs: Names) -> None:
        """Run a model on stored tensors and store its outputs (``AI.MODELEXECUTE``)."""
    def model_io(self, name: str) -> tuple[list[str], list[str]]:
        """The model's input and output names, in order."""
    def infer(
        self,
        name: str,
        inputs: Mapping[str, ArrayLike] | Sequence[ArrayLike] | ArrayLike,
        copy: bool = True,
    ) -> dict[str, np.ndarray]:
        """Run a model on arrays (by input name, in input order, or one array) and return
        its outputs by name; nothing is stored. Inputs are not copied."""
    def model_info(self, name: str) -> dict[str, int]:
        """duration (us), samples, calls, errors, runs."""
    def reset_model_info(self, name: str) -> None: ...

    # ensemble prefixes
    def set_data_source(self, source_id: str) -> None: ...
    def use_tensor_ensemble_prefix(self, use_prefix: bool) -> None: ...
    def use_dataset_ensemble_prefix(self, use_prefix: bool) -> None: ...
    def use_list_ensemble_prefix(self, use_prefix: bool) -> None: ...
    def use_model_ensemble_prefix(self, use_prefix: bool) -> None: ...

    # server
    def info(self, section: str = "everything") -> dict[str, dict[str, str]]:
        """``INFO`` as ``{section: {key: value}}``."""
    def flush_db(self) -> None: ...
    def save(self) -> None: ...
    def config_get(self, pattern: str) -> dict[str, str]: ...
    def config_set(self, name: str, value: str) -> None: ...

class Server:
    """This process' engine (the one ``Client("inproc")`` uses) served over TCP and/or a
    Unix socket. ``port=0`` picks a free port, ``port=None`` serves no TCP; the Unix
    socket is owner-only unless ``unix_mode`` says otherwise. A context manager."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = 0,
        unix_socket: str | PathLike[str] | None = None,
        unix_mode: int | None = None,
    ) -> None: ...
    @property
    def address(self) -> str | None:
        """``host:port`` of the TCP listener."""
    @property
    def port(self) -> int | None: ...
    @property
    def unix_address(self) -> str | None:
        """``unix:///path`` of the Unix socket."""
    @property
    def running(self) -> bool: ...
    def stop(self) -> None:
        """Stop accepting, finish the requests already read, close. Idempotent."""
    def __enter__(self) -> Server: ...
    def __exit__(self, *args: object) -> None: ...
