//! Clients: connecting, tensors by key, and the key prefixes of ensembles.

use std::ffi::{c_char, c_void};

use insitu::data::layout::transpose_into;
use insitu::{Client, DType, Error, Tensor};

use crate::*;

/// A connection (or in-process engine) and its key prefixes.
pub struct insitu_client(pub(crate) Client);

// ----- client -----

/// Connect to `address`: "inproc", "unix:///path", "tcp://host:port" or "host:port".
#[no_mangle]
pub unsafe extern "C" fn insitu_client_connect(
    address: *const c_char,
    address_len: usize,
    out: *mut *mut insitu_client,
) -> insitu_status {
    call(|| {
        let a = text(address, address_len, "address")?;
        check_out(out, "out")?;
        let c = Client::connect(a)?;
        put(out, Box::into_raw(Box::new(insitu_client(c))));
        Ok(())
    })
}

/// Connect to the address in SSDB (or INSITU_ADDRESS), with SSKEYIN/SSKEYOUT prefixes.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_from_env(out: *mut *mut insitu_client) -> insitu_status {
    call(|| {
        check_out(out, "out")?;
        let c = Client::from_env()?;
        put(out, Box::into_raw(Box::new(insitu_client(c))));
        Ok(())
    })
}

/// Close a client. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_free(client: *mut insitu_client) {
    if !client.is_null() {
        drop(Box::from_raw(client));
    }
}

/// Store a tensor (`data_len` bytes, row-major) under `name`.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_put_tensor(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    data: *const c_void,
    data_len: usize,
    dtype: insitu_dtype,
    dims: *const usize,
    ndims: usize,
) -> insitu_status {
    call(|| {
        let c = obj_mut(client, "client")?;
        let n = text(name, name_len, "name")?;
        // In process the store keeps the tensor: a copy. Through a socket the bytes are
        // copied out (into the socket or a shared-memory block) before the call returns:
        // the caller's memory is read in place.
        if c.0.engine().is_some() {
            let t = tensor_from(data, data_len, dtype, dims, ndims)?;
            return Ok(c.0.put_tensor(n, &t)?);
        }
        let t = tensor_borrowed(data, data_len, dtype, dims, ndims)?;
        let r = c.0.put_tensor(n, &t);
        drop(t);
        Ok(r?)
    })
}

/// Fetch a tensor into library-owned memory; release it with insitu_tensor_free. Over a
/// Unix socket a large tensor is a read-only view of the server's shared-memory block
/// (no copy): insitu_tensor_data points into it, and the block stays as it is — even if
/// the key is deleted or overwritten — until insitu_tensor_free releases it.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_get_tensor(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    out: *mut *mut insitu_tensor,
) -> insitu_status {
    call(|| {
        let c = obj_mut(client, "client")?;
        let n = text(name, name_len, "name")?;
        check_out(out, "out")?;
        let t = c.0.get_tensor(n)?;
        put(out, Box::into_raw(Box::new(insitu_tensor(t))));
        Ok(())
    })
}

/// Fetch a tensor into the caller's buffer, which must have the tensor's dtype and
/// exactly its byte size (one copy: over a Unix socket, straight from the server's
/// shared-memory block). Its dims are written to `dims` (room for `dims_cap`) and their
/// count to `ndims`.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_unpack_tensor(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    dtype: insitu_dtype,
    buf: *mut c_void,
    buf_len: usize,
    dims: *mut usize,
    dims_cap: usize,
    ndims: *mut usize,
) -> insitu_status {
    client_unpack(
        client, name, name_len, dtype, buf, buf_len, dims, dims_cap, ndims, false,
    )
}

/// The body of insitu_client_unpack_tensor(_fortran).
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn client_unpack(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    dtype: insitu_dtype,
    buf: *mut c_void,
    buf_len: usize,
    dims: *mut usize,
    dims_cap: usize,
    ndims: *mut usize,
    fortran: bool,
) -> insitu_status {
    call(|| {
        let c = obj_mut(client, "client")?;
        let n = text(name, name_len, "name")?;
        let want = unpack_args(dtype, buf, buf_len, dims, ndims)?;
        let t = c.0.get_tensor(n)?;
        unpack_into(&t, n, want, buf, buf_len, dims, dims_cap, ndims, fortran)
    })
}

/// The body of insitu_dataset_unpack_tensor(_fortran).
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn dataset_unpack(
    dataset: *const insitu_dataset,
    name: *const c_char,
    name_len: usize,
    dtype: insitu_dtype,
    buf: *mut c_void,
    buf_len: usize,
    dims: *mut usize,
    dims_cap: usize,
    ndims: *mut usize,
    fortran: bool,
) -> insitu_status {
    call(|| {
        let d = obj(dataset, "dataset")?;
        let n = text(name, name_len, "name")?;
        let want = unpack_args(dtype, buf, buf_len, dims, ndims)?;
        unpack_into(
            d.0.get_tensor(n)?,
            n,
            want,
            buf,
            buf_len,
            dims,
            dims_cap,
            ndims,
            fortran,
        )
    })
}

/// Check an unpack's arguments; the dtype the buffer holds.
pub(crate) unsafe fn unpack_args(
    dtype: insitu_dtype,
    buf: *mut c_void,
    buf_len: usize,
    dims: *mut usize,
    ndims: *mut usize,
) -> Result<DType, Fail> {
    let want = self::dtype(dtype)?;
    if buf.is_null() && buf_len > 0 {
        return Err(Fail::Null("buf"));
    }
    check_out(dims, "dims")?;
    check_out(ndims, "ndims")?;
    Ok(want)
}

/// Check `t` against the caller's buffer (dtype, byte count, room for its dims) and copy
/// it in: as it is, or reordered to column-major when `fortran`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn unpack_into(
    t: &Tensor,
    n: &str,
    want: DType,
    buf: *mut c_void,
    buf_len: usize,
    dims: *mut usize,
    dims_cap: usize,
    ndims: *mut usize,
    fortran: bool,
) -> Result<(), Fail> {
    if t.dtype() != want {
        return Err(Error::bad_input(format!(
            "tensor '{n}' has dtype {} but the buffer holds {want}",
            t.dtype()
        ))
        .into());
    }
    if t.data().len() != buf_len {
        return Err(Error::bad_input(format!(
            "tensor '{n}' has {} bytes but the buffer holds {buf_len}",
            t.data().len()
        ))
        .into());
    }
    if t.shape().len() > dims_cap {
        return Err(Error::bad_input(format!(
            "tensor '{n}' has {} dims but dims holds {dims_cap}",
            t.shape().len()
        ))
        .into());
    }
    if buf_len > 0 {
        let out = std::slice::from_raw_parts_mut(buf.cast::<u8>(), buf_len);
        if fortran {
            let esz = t
                .dtype()
                .size()
                .ok_or_else(|| Error::bad_input("STRING tensors have no Fortran layout"))?;
            transpose_into(t.data(), out, t.shape(), esz, false);
        } else {
            out.copy_from_slice(t.data());
        }
    }
    std::ptr::copy_nonoverlapping(t.shape().as_ptr(), dims, t.shape().len());
    put(ndims, t.shape().len());
    Ok(())
}

/// A row-major tensor from a column-major (Fortran) array: transposed straight from the
/// caller's memory into the tensor's buffer, one pass, no intermediate copy. A size that
/// does not match the dims is left for Tensor::new to report.
pub(crate) unsafe fn fortran_tensor_from(
    data: *const c_void,
    data_len: usize,
    dtype: insitu_dtype,
    dims: *const usize,
    ndims: usize,
) -> Result<Tensor, Fail> {
    let dt = self::dtype(dtype)?;
    let esz = dt
        .size()
        .ok_or_else(|| Error::bad_input("STRING tensors have no Fortran layout"))?;
    let shape = slice(dims, ndims, "dims")?;
    let src = slice(data.cast::<u8>(), data_len, "data")?;
    let mut row = vec![0u8; src.len()];
    transpose_into(src, &mut row, shape, esz, true);
    Ok(Tensor::new(dt, shape, bytes::Bytes::from(row))?)
}

/// Store a tensor given in column-major (Fortran) order with Fortran dims: it is stored
/// row-major with the same dims, so element `a(i,j)` is `t[i-1][j-1]` in C and Python.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_put_tensor_fortran(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    data: *const c_void,
    data_len: usize,
    dtype: insitu_dtype,
    dims: *const usize,
    ndims: usize,
) -> insitu_status {
    call(|| {
        let c = obj_mut(client, "client")?;
        let n = text(name, name_len, "name")?;
        let t = fortran_tensor_from(data, data_len, dtype, dims, ndims)?;
        Ok(c.0.put_tensor(n, &t)?)
    })
}

/// Fetch a tensor into a column-major (Fortran) buffer: the tensor's dims become the
/// array's dims, element `t[i-1][j-1]` lands in `a(i,j)`.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_unpack_tensor_fortran(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    dtype: insitu_dtype,
    buf: *mut c_void,
    buf_len: usize,
    dims: *mut usize,
    dims_cap: usize,
    ndims: *mut usize,
) -> insitu_status {
    client_unpack(
        client, name, name_len, dtype, buf, buf_len, dims, dims_cap, ndims, true,
    )
}

/// The body of a C function acting on one named key: `f(client, name)`.
pub(crate) unsafe fn on_name(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    f: impl FnOnce(&mut Client, &str) -> insitu::Result<()>,
) -> insitu_status {
    call(|| {
        let c = &mut obj_mut(client, "client")?.0;
        let n = text(name, name_len, "name")?;
        Ok(f(c, n)?)
    })
}

/// The body of a C function asking a yes/no question about one named key, answered
/// into `out` (written only on success).
pub(crate) unsafe fn ask_name(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    out: *mut bool,
    f: impl FnOnce(&mut Client, &str) -> insitu::Result<bool>,
) -> insitu_status {
    call(|| {
        let c = &mut obj_mut(client, "client")?.0;
        let n = text(name, name_len, "name")?;
        check_out(out, "out")?;
        let v = f(c, n)?;
        put(out, v);
        Ok(())
    })
}

/// The body of a C function from one named key to another (copy, rename).
pub(crate) unsafe fn on_pair(
    client: *mut insitu_client,
    src: *const c_char,
    src_len: usize,
    dst: *const c_char,
    dst_len: usize,
    f: impl FnOnce(&mut Client, &str, &str) -> insitu::Result<()>,
) -> insitu_status {
    call(|| {
        let c = &mut obj_mut(client, "client")?.0;
        let a = text(src, src_len, "src")?;
        let b = text(dst, dst_len, "dst")?;
        Ok(f(c, a, b)?)
    })
}

/// Delete a tensor.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_delete_tensor(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
) -> insitu_status {
    on_name(client, name, name_len, |c, n| c.delete_tensor(n))
}

/// Whether a tensor exists.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_tensor_exists(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    out: *mut bool,
) -> insitu_status {
    ask_name(client, name, name_len, out, |c, n| c.tensor_exists(n))
}

/// Whether a key exists (no prefix applied).
#[no_mangle]
pub unsafe extern "C" fn insitu_client_key_exists(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    out: *mut bool,
) -> insitu_status {
    ask_name(client, name, name_len, out, |c, n| c.key_exists(n))
}

/// Wait up to interval_ms * tries for a tensor.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_poll_tensor(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    interval_ms: u64,
    tries: u32,
    out: *mut bool,
) -> insitu_status {
    ask_name(client, name, name_len, out, |c, n| {
        c.poll_tensor(n, interval_ms, tries)
    })
}

/// Wait up to interval_ms * tries for a key (no prefix applied).
#[no_mangle]
pub unsafe extern "C" fn insitu_client_poll_key(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    interval_ms: u64,
    tries: u32,
    out: *mut bool,
) -> insitu_status {
    ask_name(client, name, name_len, out, |c, n| {
        c.poll_key(n, interval_ms, tries)
    })
}

/// Copy a tensor.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_copy_tensor(
    client: *mut insitu_client,
    src: *const c_char,
    src_len: usize,
    dst: *const c_char,
    dst_len: usize,
) -> insitu_status {
    on_pair(client, src, src_len, dst, dst_len, |c, a, b| {
        c.copy_tensor(a, b)
    })
}

/// Rename a tensor.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_rename_tensor(
    client: *mut insitu_client,
    src: *const c_char,
    src_len: usize,
    dst: *const c_char,
    dst_len: usize,
) -> insitu_status {
    on_pair(client, src, src_len, dst, dst_len, |c, a, b| {
        c.rename_tensor(a, b)
    })
}

// ----- prefixes -----

/// Read from another ensemble member's keys (one of SSKEYIN).
#[no_mangle]
pub unsafe extern "C" fn insitu_client_set_data_source(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
) -> insitu_status {
    on_name(client, name, name_len, |c, n| c.set_data_source(n))
}

/// Prefix tensor keys (default on).
#[no_mangle]
pub unsafe extern "C" fn insitu_client_use_tensor_prefix(
    client: *mut insitu_client,
    on: bool,
) -> insitu_status {
    call(|| {
        obj_mut(client, "client")?.0.prefixes().tensors = on;
        Ok(())
    })
}

/// Prefix dataset keys (default on).
#[no_mangle]
pub unsafe extern "C" fn insitu_client_use_dataset_prefix(
    client: *mut insitu_client,
    on: bool,
) -> insitu_status {
    call(|| {
        obj_mut(client, "client")?.0.prefixes().datasets = on;
        Ok(())
    })
}

/// Prefix list keys (default on).
#[no_mangle]
pub unsafe extern "C" fn insitu_client_use_list_prefix(
    client: *mut insitu_client,
    on: bool,
) -> insitu_status {
    call(|| {
        obj_mut(client, "client")?.0.prefixes().lists = on;
        Ok(())
    })
}

/// Prefix model keys (default off).
#[no_mangle]
pub unsafe extern "C" fn insitu_client_use_model_prefix(
    client: *mut insitu_client,
    on: bool,
) -> insitu_status {
    call(|| {
        obj_mut(client, "client")?.0.prefixes().models = on;
        Ok(())
    })
}
