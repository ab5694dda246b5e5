"""Datasets, aggregation lists and ensemble prefixes in every mode."""

from __future__ import annotations

import numpy as np
import pytest

import insitu
from conftest import address_of


def make_dataset(name, k=0):
    ds = insitu.Dataset(name)
    ds.add_tensor("x", np.arange(6, dtype=np.float64).reshape(2, 3) + k)
    ds.add_tensor("i", np.array([k, -k], dtype=np.int32))
    ds.add_meta_scalar("step", k)
    ds.add_meta_scalar("dt", 0.5)
    ds.add_meta_scalar("f32", np.float32(1.25))
    ds.add_meta_scalar("u64", np.uint64(2**63 + 5))
    ds.add_meta_scalar("i32", np.int32(-7))
    ds.add_meta_scalar("u32", np.uint32(7))
    ds.add_meta_string("tag", "run-β")
    ds.add_meta_string("tag", "second")
    return ds


def check_dataset(ds, name, k=0):
    assert ds.name == name
    assert sorted(ds.get_tensor_names()) == ["i", "x"]
    x = ds.get_tensor("x")
    assert x.dtype == np.float64 and x.tobytes() == (np.arange(6.0).reshape(2, 3) + k).tobytes()
    assert ds.get_tensor("i").tolist() == [k, -k]
    assert ds.get_tensor_type("x") == "DOUBLE" and ds.get_tensor_dims("x") == [2, 3]
    for field, dtype, values in [("step", np.int64, [k]), ("dt", np.float64, [0.5]),
                                 ("f32", np.float32, [1.25]), ("u64", np.uint64, [2**63 + 5]),
                                 ("i32", np.int32, [-7]), ("u32", np.uint32, [7])]:
        v = ds.get_meta_scalars(field)
        assert v.dtype == dtype and v.tolist() == values, field
        assert ds.get_metadata_field_type(field) == np.dtype(dtype).name
    assert ds.get_meta_strings("tag") == ["run-β", "second"]
    assert ds.get_metadata_field_type("tag") == "string"
    assert sorted(ds.get_metadata_field_names()) == sorted(
        ["step", "dt", "f32", "u64", "i32", "u32", "tag"])


def test_dataset_round_trip_and_operations(client):
    client.put_dataset(make_dataset("d", 3))
    assert client.dataset_exists("d")
    check_dataset(client.get_dataset("d"), "d", 3)
    client.copy_dataset("d", "d2")
    check_dataset(client.get_dataset("d2"), "d2", 3)
    client.rename_dataset("d2", "d3")
    assert not client.dataset_exists("d2")
    check_dataset(client.get_dataset("d3"), "d3", 3)
    client.delete_dataset("d3")
    assert not client.dataset_exists("d3")
    assert client.poll_dataset("d", 10, 2) is True
    assert client.poll_dataset("gone", 10, 2) is False
    with pytest.raises(insitu.NotFound):
        client.get_dataset("gone")


def test_dataset_is_a_snapshot_of_the_arrays():
    a = np.ones(4, np.float32)
    ds = insitu.Dataset("snap")
    ds.add_tensor("a", a)
    a[:] = 7
    assert ds.get_tensor("a").tolist() == [1, 1, 1, 1]


def test_dataset_errors():
    ds = insitu.Dataset("e")
    with pytest.raises(insitu.NotFound) as e:
        ds.get_tensor("nope")
    assert str(e.value) == "ERR dataset 'e' has no tensor 'nope'"
    with pytest.raises(insitu.NotFound) as e:
        ds.get_meta_scalars("nope")
    assert str(e.value) == "ERR dataset 'e' has no metadata field 'nope'"
    ds.add_meta_scalar("n", 1)
    with pytest.raises(insitu.BadInput) as e:
        ds.add_meta_scalar("n", 1.5)
    assert str(e.value) == "ERR metadata field 'n' holds another type"
    with pytest.raises(insitu.BadInput) as e:
        ds.add_meta_scalar("b", True)
    assert str(e.value) == "ERR metadata scalars are numbers, not bool"
    with pytest.raises(insitu.BadInput) as e:
        ds.add_meta_scalar("c", np.int8(1))
    assert str(e.value) == ("ERR metadata scalars are float32, float64, int32, int64, uint32 "
                            "or uint64, not int8")
    with pytest.raises(insitu.BadInput) as e:
        ds.get_meta_strings("n")
    assert str(e.value) == "ERR metadata field 'n' holds another type"
    with pytest.raises(insitu.BadInput) as e:
        ds.add_meta_scalar(".hidden", 1)
    assert str(e.value).startswith("ERR invalid metadata field name '.hidden'")


def test_aggregation_lists(client):
    for k in range(5):
        ds = make_dataset(f"s{k}", k)
        client.put_dataset(ds)
        client.append_to_list("agg", ds)
    assert client.get_list_length("agg") == 5
    got = client.get_datasets_from_list("agg")
    for k, ds in enumerate(got):
        check_dataset(ds, f"s{k}", k)
    mid = client.get_dataset_list_range("agg", 1, 3)
    assert [d.name for d in mid] == ["s1", "s2", "s3"]
    assert [d.name for d in client.get_dataset_list_range("agg", -2, -1)] == ["s3", "s4"]
    assert client.poll_list_length("agg", 5, 10, 2) is True
    assert client.poll_list_length_gte("agg", 4, 10, 2) is True
    assert client.poll_list_length_lte("agg", 5, 10, 2) is True
    assert client.poll_list_length("agg", 6, 10, 2) is False
    client.copy_list("agg", "agg2")
    assert client.get_list_length("agg2") == 5
    client.rename_list("agg2", "agg3")
    assert client.get_list_length("agg2") == 0
    assert client.get_list_length("agg3") == 5
    client.delete_list("agg3")
    assert client.get_list_length("agg3") == 0
    with pytest.raises(insitu.NotFound) as e:
        client.copy_list("agg3", "x")
    assert str(e.value) == "ERR list 'agg3' does not exist"


def test_ensemble_prefixes(mode, request):
    addr = address_of(mode, request)
    with insitu.Client(addr, key_in=[], key_out="") as plain:
        plain.flush_db()
    with insitu.Client(addr, key_out="sim_0") as p0, insitu.Client(addr, key_out="sim_1") as p1:
        p0.put_tensor("u", np.full(2, 0, np.int16))
        p1.put_tensor("u", np.full(2, 1, np.int16))
        for p, k in ((p0, 0), (p1, 1)):
            ds = make_dataset("d", k)
            p.put_dataset(ds)
            p.append_to_list("l", ds)
        p0.use_model_ensemble_prefix(True)
        p0.set_model("m", __import__("conftest").two_io_model())
    with insitu.Client(addr, key_in=["sim_0", "sim_1"], key_out="") as r:
        assert r.get_tensor("u").tolist() == [0, 0]
        r.set_data_source("sim_1")
        assert r.get_tensor("u").tolist() == [1, 1]
        check_dataset(r.get_datasets_from_list("l")[0], "d", 1)
        with pytest.raises(insitu.BadInput) as e:
            r.set_data_source("sim_9")
        assert str(e.value) == ("ERR Client error: data source sim_9 could not be found during "
                                "client initialization")
        r.use_tensor_ensemble_prefix(False)
        assert r.get_tensor("sim_0.u").tolist() == [0, 0]
        r.set_data_source("sim_0")
        assert not r.model_exists("m")
        r.use_model_ensemble_prefix(True)
        assert r.model_exists("m")
        r.use_list_ensemble_prefix(False)
        assert r.get_list_length("sim_0.l") == 1
        assert r.dataset_exists("d")
        r.use_dataset_ensemble_prefix(False)
        assert not r.dataset_exists("d")
