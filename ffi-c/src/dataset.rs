//! Datasets (tensors plus metadata) and aggregation lists of datasets.

use std::ffi::{c_char, c_void};

use insitu::data::dataset::{Dataset, MetaValue};
use insitu::Error;

use crate::*;

/// Types of dataset metadata scalars.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum insitu_meta_type {
    /// double
    Double = 1,
    /// float
    Float = 2,
    /// int32_t
    Int32 = 3,
    /// int64_t
    Int64 = 4,
    /// uint32_t
    Uint32 = 5,
    /// uint64_t
    Uint64 = 6,
}

/// A dataset: tensors and metadata.
pub struct insitu_dataset(pub(crate) Dataset);
/// Datasets read from an aggregation list.
pub struct insitu_dataset_list(pub(crate) Vec<insitu_dataset>);

// ----- datasets -----

/// A new, empty dataset.
#[no_mangle]
pub unsafe extern "C" fn insitu_dataset_new(
    name: *const c_char,
    name_len: usize,
    out: *mut *mut insitu_dataset,
) -> insitu_status {
    call(|| {
        let n = text(name, name_len, "name")?;
        check_out(out, "out")?;
        put(
            out,
            Box::into_raw(Box::new(insitu_dataset(Dataset::new(n)))),
        );
        Ok(())
    })
}

/// A deep copy of a dataset (release both with insitu_dataset_free).
#[no_mangle]
pub unsafe extern "C" fn insitu_dataset_clone(
    dataset: *const insitu_dataset,
    out: *mut *mut insitu_dataset,
) -> insitu_status {
    call(|| {
        let d = obj(dataset, "dataset")?;
        check_out(out, "out")?;
        put(out, Box::into_raw(Box::new(insitu_dataset(d.0.clone()))));
        Ok(())
    })
}

/// Release a dataset. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn insitu_dataset_free(dataset: *mut insitu_dataset) {
    if !dataset.is_null() {
        drop(Box::from_raw(dataset));
    }
}

/// Add (or replace) a tensor of the dataset (copied from caller memory).
#[no_mangle]
pub unsafe extern "C" fn insitu_dataset_add_tensor(
    dataset: *mut insitu_dataset,
    name: *const c_char,
    name_len: usize,
    data: *const c_void,
    data_len: usize,
    dtype: insitu_dtype,
    dims: *const usize,
    ndims: usize,
) -> insitu_status {
    call(|| {
        let d = obj_mut(dataset, "dataset")?;
        let n = text(name, name_len, "name")?;
        let t = tensor_from(data, data_len, dtype, dims, ndims)?;
        d.0.add_tensor(n, t);
        Ok(())
    })
}

/// A tensor of the dataset, as a library-owned tensor (release with insitu_tensor_free).
#[no_mangle]
pub unsafe extern "C" fn insitu_dataset_get_tensor(
    dataset: *const insitu_dataset,
    name: *const c_char,
    name_len: usize,
    out: *mut *mut insitu_tensor,
) -> insitu_status {
    call(|| {
        let d = obj(dataset, "dataset")?;
        let n = text(name, name_len, "name")?;
        check_out(out, "out")?;
        let t = d.0.get_tensor(n)?.clone();
        put(out, Box::into_raw(Box::new(insitu_tensor(t))));
        Ok(())
    })
}

/// Add (or replace) a tensor of the dataset given in column-major (Fortran) order with
/// Fortran dims, stored row-major with the same dims (as insitu_client_put_tensor_fortran).
#[no_mangle]
pub unsafe extern "C" fn insitu_dataset_add_tensor_fortran(
    dataset: *mut insitu_dataset,
    name: *const c_char,
    name_len: usize,
    data: *const c_void,
    data_len: usize,
    dtype: insitu_dtype,
    dims: *const usize,
    ndims: usize,
) -> insitu_status {
    call(|| {
        let d = obj_mut(dataset, "dataset")?;
        let n = text(name, name_len, "name")?;
        let t = fortran_tensor_from(data, data_len, dtype, dims, ndims)?;
        d.0.add_tensor(n, t);
        Ok(())
    })
}

/// Copy a tensor of the dataset into caller memory (as insitu_client_unpack_tensor).
#[no_mangle]
pub unsafe extern "C" fn insitu_dataset_unpack_tensor(
    dataset: *const insitu_dataset,
    name: *const c_char,
    name_len: usize,
    dtype: insitu_dtype,
    buf: *mut c_void,
    buf_len: usize,
    dims: *mut usize,
    dims_cap: usize,
    ndims: *mut usize,
) -> insitu_status {
    dataset_unpack(
        dataset, name, name_len, dtype, buf, buf_len, dims, dims_cap, ndims, false,
    )
}

/// Copy a tensor of the dataset into a column-major (Fortran) buffer (as
/// insitu_client_unpack_tensor_fortran).
#[no_mangle]
pub unsafe extern "C" fn insitu_dataset_unpack_tensor_fortran(
    dataset: *const insitu_dataset,
    name: *const c_char,
    name_len: usize,
    dtype: insitu_dtype,
    buf: *mut c_void,
    buf_len: usize,
    dims: *mut usize,
    dims_cap: usize,
    ndims: *mut usize,
) -> insitu_status {
    dataset_unpack(
        dataset, name, name_len, dtype, buf, buf_len, dims, dims_cap, ndims, true,
    )
}

/// Append one scalar (of `type`, read from `value`) to a metadata field.
#[no_mangle]
pub unsafe extern "C" fn insitu_dataset_add_meta_scalar(
    dataset: *mut insitu_dataset,
    name: *const c_char,
    name_len: usize,
    r#type: insitu_meta_type,
    value: *const c_void,
) -> insitu_status {
    call(|| {
        let d = obj_mut(dataset, "dataset")?;
        let n = text(name, name_len, "name")?;
        if value.is_null() {
            return Err(Fail::Null("value"));
        }
        match r#type {
            insitu_meta_type::Double => {
                d.0.add_meta_scalar(n, value.cast::<f64>().read_unaligned())?
            }
            insitu_meta_type::Float => {
                d.0.add_meta_scalar(n, value.cast::<f32>().read_unaligned())?
            }
            insitu_meta_type::Int32 => {
                d.0.add_meta_scalar(n, value.cast::<i32>().read_unaligned())?
            }
            insitu_meta_type::Int64 => {
                d.0.add_meta_scalar(n, value.cast::<i64>().read_unaligned())?
            }
            insitu_meta_type::Uint32 => {
                d.0.add_meta_scalar(n, value.cast::<u32>().read_unaligned())?
            }
            insitu_meta_type::Uint64 => {
                d.0.add_meta_scalar(n, value.cast::<u64>().read_unaligned())?
            }
        }
        Ok(())
    })
}

/// Append a string to a metadata field.
#[no_mangle]
pub unsafe extern "C" fn insitu_dataset_add_meta_string(
    dataset: *mut insitu_dataset,
    name: *const c_char,
    name_len: usize,
    value: *const c_char,
    value_len: usize,
) -> insitu_status {
    call(|| {
        let d = obj_mut(dataset, "dataset")?;
        let n = text(name, name_len, "name")?;
        let v = slice(value.cast::<u8>(), value_len, "value")?;
        Ok(d.0.add_meta_string(n, v)?)
    })
}

/// Copy the scalars of a metadata field into `buf` (room for `cap` values of `type`);
/// their count goes to `count`. The field must hold `type`.
#[no_mangle]
pub unsafe extern "C" fn insitu_dataset_get_meta_scalars(
    dataset: *const insitu_dataset,
    name: *const c_char,
    name_len: usize,
    r#type: insitu_meta_type,
    buf: *mut c_void,
    cap: usize,
    count: *mut usize,
) -> insitu_status {
    call(|| {
        let d = obj(dataset, "dataset")?;
        let n = text(name, name_len, "name")?;
        check_out(count, "count")?;
        let m = d.0.meta(n)?;
        let (bytes, len): (Vec<u8>, usize) = match (r#type, m) {
            (insitu_meta_type::Double, MetaValue::F64(v)) => {
                (v.iter().flat_map(|x| x.to_ne_bytes()).collect(), v.len())
            }
            (insitu_meta_type::Float, MetaValue::F32(v)) => {
                (v.iter().flat_map(|x| x.to_ne_bytes()).collect(), v.len())
            }
            (insitu_meta_type::Int32, MetaValue::I32(v)) => {
                (v.iter().flat_map(|x| x.to_ne_bytes()).collect(), v.len())
            }
            (insitu_meta_type::Int64, MetaValue::I64(v)) => {
                (v.iter().flat_map(|x| x.to_ne_bytes()).collect(), v.len())
            }
            (insitu_meta_type::Uint32, MetaValue::U32(v)) => {
                (v.iter().flat_map(|x| x.to_ne_bytes()).collect(), v.len())
            }
            (insitu_meta_type::Uint64, MetaValue::U64(v)) => {
                (v.iter().flat_map(|x| x.to_ne_bytes()).collect(), v.len())
            }
            _ => {
                return Err(
                    Error::bad_input(format!("metadata field '{n}' holds another type")).into(),
                )
            }
        };
        if len > cap {
            return Err(Error::bad_input(format!(
                "metadata field '{n}' has {len} values but the buffer holds {cap}"
            ))
            .into());
        }
        if len > 0 {
            if buf.is_null() {
                return Err(Fail::Null("buf"));
            }
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), bytes.len());
        }
        put(count, len);
        Ok(())
    })
}

/// Copy string `index` of a metadata field into `buf` (NUL-terminated, room for `cap`
/// bytes including the NUL); its length goes to `len`, also when it does not fit (the
/// call then fails and `buf` is left as it was). The number of strings is
/// insitu_dataset_get_meta_string_count.
#[no_mangle]
pub unsafe extern "C" fn insitu_dataset_get_meta_string(
    dataset: *const insitu_dataset,
    name: *const c_char,
    name_len: usize,
    index: usize,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> insitu_status {
    call(|| {
        let d = obj(dataset, "dataset")?;
        let n = text(name, name_len, "name")?;
        check_out(len, "len")?;
        let strings = d.0.get_meta_strings(n)?;
        let s = strings.get(index).ok_or_else(|| {
            Error::bad_input(format!(
                "metadata field '{n}' has {} strings, no index {index}",
                strings.len()
            ))
        })?;
        if s.len() + 1 > cap {
            put(len, s.len());
            return Err(Error::bad_input(format!(
                "string of {} bytes does not fit a buffer of {cap}",
                s.len()
            ))
            .into());
        }
        if buf.is_null() {
            return Err(Fail::Null("buf"));
        }
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), s.len());
        *buf.add(s.len()) = 0;
        put(len, s.len());
        Ok(())
    })
}

/// The number of values (scalars or strings) in a metadata field.
#[no_mangle]
pub unsafe extern "C" fn insitu_dataset_get_meta_count(
    dataset: *const insitu_dataset,
    name: *const c_char,
    name_len: usize,
    count: *mut usize,
) -> insitu_status {
    call(|| {
        let d = obj(dataset, "dataset")?;
        let n = text(name, name_len, "name")?;
        check_out(count, "count")?;
        put(count, d.0.meta(n)?.len());
        Ok(())
    })
}

/// The number of strings in a metadata field.
#[no_mangle]
pub unsafe extern "C" fn insitu_dataset_get_meta_string_count(
    dataset: *const insitu_dataset,
    name: *const c_char,
    name_len: usize,
    count: *mut usize,
) -> insitu_status {
    call(|| {
        let d = obj(dataset, "dataset")?;
        let n = text(name, name_len, "name")?;
        check_out(count, "count")?;
        let c = d.0.get_meta_strings(n)?.len();
        put(count, c);
        Ok(())
    })
}

/// Store a dataset.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_put_dataset(
    client: *mut insitu_client,
    dataset: *const insitu_dataset,
) -> insitu_status {
    call(|| {
        let c = obj_mut(client, "client")?;
        let d = obj(dataset, "dataset")?;
        Ok(c.0.put_dataset(&d.0)?)
    })
}

/// Fetch a dataset (release with insitu_dataset_free).
#[no_mangle]
pub unsafe extern "C" fn insitu_client_get_dataset(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    out: *mut *mut insitu_dataset,
) -> insitu_status {
    call(|| {
        let c = obj_mut(client, "client")?;
        let n = text(name, name_len, "name")?;
        check_out(out, "out")?;
        let d = c.0.get_dataset(n)?;
        put(out, Box::into_raw(Box::new(insitu_dataset(d))));
        Ok(())
    })
}

/// Delete a dataset and its tensors.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_delete_dataset(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
) -> insitu_status {
    on_name(client, name, name_len, |c, n| c.delete_dataset(n))
}

/// Whether a complete dataset exists.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_dataset_exists(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    out: *mut bool,
) -> insitu_status {
    ask_name(client, name, name_len, out, |c, n| c.dataset_exists(n))
}

/// Wait up to interval_ms * tries for a complete dataset.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_poll_dataset(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    interval_ms: u64,
    tries: u32,
    out: *mut bool,
) -> insitu_status {
    ask_name(client, name, name_len, out, |c, n| {
        c.poll_dataset(n, interval_ms, tries)
    })
}

/// Copy a dataset.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_copy_dataset(
    client: *mut insitu_client,
    src: *const c_char,
    src_len: usize,
    dst: *const c_char,
    dst_len: usize,
) -> insitu_status {
    on_pair(client, src, src_len, dst, dst_len, |c, a, b| {
        c.copy_dataset(a, b)
    })
}

/// Rename a dataset.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_rename_dataset(
    client: *mut insitu_client,
    src: *const c_char,
    src_len: usize,
    dst: *const c_char,
    dst_len: usize,
) -> insitu_status {
    on_pair(client, src, src_len, dst, dst_len, |c, a, b| {
        c.rename_dataset(a, b)
    })
}

// ----- aggregation lists -----

/// Append a (stored) dataset to a list.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_append_to_list(
    client: *mut insitu_client,
    list: *const c_char,
    list_len: usize,
    dataset: *const insitu_dataset,
) -> insitu_status {
    call(|| {
        let c = obj_mut(client, "client")?;
        let l = text(list, list_len, "list")?;
        let d = obj(dataset, "dataset")?;
        Ok(c.0.append_to_list(l, &d.0)?)
    })
}

/// The number of datasets in a list.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_get_list_length(
    client: *mut insitu_client,
    list: *const c_char,
    list_len: usize,
    out: *mut usize,
) -> insitu_status {
    call(|| {
        let c = obj_mut(client, "client")?;
        let l = text(list, list_len, "list")?;
        check_out(out, "out")?;
        let n = c.0.get_list_length(l)?;
        put(out, n);
        Ok(())
    })
}

/// Wait until a list has exactly `length` entries, up to interval_ms * tries.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_poll_list_length(
    client: *mut insitu_client,
    list: *const c_char,
    list_len: usize,
    length: usize,
    interval_ms: u64,
    tries: u32,
    out: *mut bool,
) -> insitu_status {
    call(|| {
        let c = obj_mut(client, "client")?;
        let l = text(list, list_len, "list")?;
        check_out(out, "out")?;
        let ok = c.0.poll_list_length(l, length, interval_ms, tries)?;
        put(out, ok);
        Ok(())
    })
}

/// The datasets of a list from `start` to `end` inclusive (negative: from the end).
#[no_mangle]
pub unsafe extern "C" fn insitu_client_get_dataset_list_range(
    client: *mut insitu_client,
    list: *const c_char,
    list_len: usize,
    start: i64,
    end: i64,
    out: *mut *mut insitu_dataset_list,
) -> insitu_status {
    call(|| {
        let c = obj_mut(client, "client")?;
        let l = text(list, list_len, "list")?;
        check_out(out, "out")?;
        let v = c.0.get_dataset_list_range(l, start, end)?;
        put(
            out,
            Box::into_raw(Box::new(insitu_dataset_list(
                v.into_iter().map(insitu_dataset).collect(),
            ))),
        );
        Ok(())
    })
}

/// The number of datasets (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn insitu_dataset_list_len(list: *const insitu_dataset_list) -> usize {
    list.as_ref().map_or(0, |l| l.0.len())
}

/// Dataset `index`, valid while the list lives (NULL when out of range or for NULL).
#[no_mangle]
pub unsafe extern "C" fn insitu_dataset_list_get(
    list: *const insitu_dataset_list,
    index: usize,
) -> *const insitu_dataset {
    list.as_ref()
        .and_then(|l| l.0.get(index))
        .map_or(std::ptr::null(), |d| d as *const insitu_dataset)
}

/// Release a list of datasets. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn insitu_dataset_list_free(list: *mut insitu_dataset_list) {
    if !list.is_null() {
        drop(Box::from_raw(list));
    }
}

/// Delete a list (not its datasets).
#[no_mangle]
pub unsafe extern "C" fn insitu_client_delete_list(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
) -> insitu_status {
    on_name(client, name, name_len, |c, n| c.delete_list(n))
}

/// Copy a list.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_copy_list(
    client: *mut insitu_client,
    src: *const c_char,
    src_len: usize,
    dst: *const c_char,
    dst_len: usize,
) -> insitu_status {
    on_pair(client, src, src_len, dst, dst_len, |c, a, b| {
        c.copy_list(a, b)
    })
}

/// Rename a list.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_rename_list(
    client: *mut insitu_client,
    src: *const c_char,
    src_len: usize,
    dst: *const c_char,
    dst_len: usize,
) -> insitu_status {
    on_pair(client, src, src_len, dst, dst_len, |c, a, b| {
        c.rename_list(a, b)
    })
}
