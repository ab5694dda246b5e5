"""insitu: couple running simulations with AI models.

A tensor store and ONNX inference engine, in this process (``Client("inproc")``), in a
server on this node (``unix:///path``) or across the network (``host:port``), with one
API. Speaks the RedisAI wire protocol: SmartRedis clients and ``insitu`` share data.

>>> import numpy as np, insitu
>>> c = insitu.Client("inproc")
>>> c.put_tensor("u", np.arange(6, dtype=np.float32).reshape(2, 3))
>>> c.get_tensor("u")
array([[0., 1., 2.],
       [3., 4., 5.]], dtype=float32)
"""

from __future__ import annotations

import glob
import importlib.util
import os


def _find_onnxruntime() -> None:
    """Tell the engine where this interpreter's ``onnxruntime`` package is (found without
    importing it), for when neither ``ORT_DYLIB_PATH`` nor the build's recorded path
    names an ONNX Runtime library."""
    if os.environ.get("ORT_DYLIB_PATH") or os.environ.get("INSITU_ORT_PACKAGE_DIR"):
        return
    try:
        spec = importlib.util.find_spec("onnxruntime")
    except (ImportError, ValueError):
        return
    for d in (spec.submodule_search_locations or []) if spec else []:
        if glob.glob(os.path.join(d, "capi", "libonnxruntime.so.*")):
            os.environ["INSITU_ORT_PACKAGE_DIR"] = d
            return


_find_onnxruntime()

from . import errors  # noqa: E402
from ._native import Client, Dataset, Server, __version__  # noqa: E402
from .data import DataStream  # noqa: E402
from .errors import (  # noqa: E402
    Auth,
    BadInput,
    Error,
    Internal,
    Io,
    LimitExceeded,
    NotFound,
    OutOfMemory,
    Protocol,
    ServerError,
    Timeout,
    Unsupported,
    WrongType,
)

__all__ = [
    "Client",
    "Dataset",
    "Server",
    "DataStream",
    "errors",
    "Error",
    "BadInput",
    "NotFound",
    "WrongType",
    "OutOfMemory",
    "LimitExceeded",
    "Io",
    "Protocol",
    "Auth",
    "Timeout",
    "Unsupported",
    "ServerError",
    "Internal",
    "__version__",
]
