"""The SmartRedis side of the cross-client test (core/tests/smartredis_interop.rs).

    smartredis_peer.py write ADDRESS   # SmartRedis writes under prefix "sr"
    smartredis_peer.py read ADDRESS    # SmartRedis reads what insitu wrote under "rs"

Exits non-zero, printing the mismatch, when a value differs."""

import os
import sys

os.environ["SR_DB_TYPE"] = "Standalone"
os.environ.setdefault("SR_LOG_LEVEL", "QUIET")
os.environ.setdefault("SR_LOG_FILE", os.devnull)

import numpy as np  # noqa: E402
from smartredis import Client, Dataset  # noqa: E402

DTYPES = {"FLOAT": np.float32, "DOUBLE": np.float64, "INT8": np.int8, "INT16": np.int16,
          "INT32": np.int32, "INT64": np.int64, "UINT8": np.uint8, "UINT16": np.uint16}


def values(name, dtype):
    """The tensor both sides agree on: 2x3x4, element i = (i*37 % 200) - 100 (unsigned:
    i*37 % 200), scaled by 0.5 for floats."""
    i = np.arange(24)
    v = i * 37 % 200 - (0 if np.issubdtype(dtype, np.unsignedinteger) else 100)
    if np.issubdtype(dtype, np.floating):
        return (v * 0.5).astype(dtype).reshape(2, 3, 4)
    return v.astype(dtype).reshape(2, 3, 4)


def dataset(name, k):
    ds = Dataset(name)
    ds.add_tensor("x", values("x", np.float64) + k)
    ds.add_meta_scalar("step", np.int64(k))
    ds.add_meta_scalar("dt", np.float64(0.5 * k))
    ds.add_meta_scalar("n", np.int32(-k))
    ds.add_meta_scalar("f", np.float32(1.5))
    ds.add_meta_string("label", f"sample-{k}")
    return ds


def check_dataset(ds, k):
    np.testing.assert_array_equal(ds.get_tensor("x"), values("x", np.float64) + k)
    assert list(ds.get_meta_scalars("step")) == [k], ds.get_meta_scalars("step")
    assert list(ds.get_meta_scalars("dt")) == [0.5 * k]
    assert list(ds.get_meta_scalars("n")) == [-k]
    assert list(ds.get_meta_scalars("f")) == [1.5]
    assert ds.get_meta_strings("label") == [f"sample-{k}"], ds.get_meta_strings("label")


def main():
    mode, address = sys.argv[1], sys.argv[2]
    if mode == "write":
        os.environ["SSKEYOUT"] = "sr"
        c = Client(address=address, cluster=False)
        for name, dt in DTYPES.items():
            c.put_tensor(f"t_{name}", values(name, dt))
        for k in range(3):
            ds = dataset(f"ds{k}", k)
            c.put_dataset(ds)
            c.append_to_list("samples", ds)
    else:
        os.environ["SSKEYIN"] = "rs"
        c = Client(address=address, cluster=False)
        for name, dt in DTYPES.items():
            t = c.get_tensor(f"t_{name}")
            assert t.dtype == dt, (name, t.dtype)
            np.testing.assert_array_equal(t, values(name, dt))
        for k in range(3):
            check_dataset(c.get_dataset(f"ds{k}"), k)
        got = c.get_datasets_from_list("samples")
        assert [d.get_name() for d in got] == ["ds0", "ds1", "ds2"]
        for k, d in enumerate(got):
            check_dataset(d, k)
    print(f"smartredis {mode}: ok")


if __name__ == "__main__":
    main()
