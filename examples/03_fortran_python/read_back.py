"""Read what main.f90 put, with the unmodified SmartRedis client, and check indexing."""
import os
import sys

import numpy as np

os.environ.setdefault("SR_DB_TYPE", "Standalone")
os.environ.setdefault("SR_LOG_LEVEL", "QUIET")
from smartredis import Client  # noqa: E402

c = Client(address=sys.argv[1], cluster=False)
a = c.get_tensor("a")
assert a.shape == (3, 4, 2), a.shape
for i in range(3):
    for j in range(4):
        for k in range(2):
            want = 100.0 * (i + 1) + 10.0 * (j + 1) + (k + 1)
            assert a[i, j, k] == want, (i, j, k, a[i, j, k], want)
np.testing.assert_array_equal(c.get_tensor("ids"), [1, 4, 9, 16, 25])
raw = c.get_tensor("a_raw")  # contiguous layout: the same bytes, dims reversed
assert raw.shape == (2, 4, 3)
np.testing.assert_array_equal(raw, a.transpose(2, 1, 0))
# Datasets: SmartRedis reads them, and the aggregation list, as its own.
assert c.get_list_length("snapshots") == 2
for k, ds in enumerate(c.get_datasets_from_list("snapshots"), start=1):
    assert ds.get_name() == f"snapshot_{k}", ds.get_name()
    np.testing.assert_array_equal(ds.get_tensor("field"), a[:, :, k - 1])
    np.testing.assert_array_equal(ds.get_meta_scalars("time"), [0.5 * k])
    assert ds.get_meta_scalars("time").dtype == np.float64
    np.testing.assert_array_equal(ds.get_meta_scalars("step"), [k])
    assert ds.get_meta_scalars("step").dtype == np.int32
    assert ds.get_meta_strings("units") == ["K"]
print("example 03: Fortran datasets and list read by SmartRedis: OK")
print("example 03: Python sees a(i,j,k) at arr[i-1,j-1,k-1]: OK")
