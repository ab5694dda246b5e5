//! The C ABI of insitu (`libinsitu.so` / `libinsitu.a`, header `include/insitu.h`).
//!
//! Conventions (every function):
//! - names are `insitu_<type>_<verb>`; handles are opaque pointers owned by the caller
//!   and released with their `_free` function (`_free(NULL)` does nothing);
//! - strings and buffers are passed as a pointer *and* a length (no NUL needed), inputs
//!   before outputs; outputs are written only on success;
//! - the result is an [`insitu_status`]; on failure the message is kept per thread and
//!   read with [`insitu_last_error_message`];
//! - no function panics across the boundary or terminates the process: a NULL argument,
//!   a wrong dtype, a missing key or an internal bug all come back as a status.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

pub mod cpp;

use std::cell::RefCell;
use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use insitu::dataset::{Dataset, MetaValue};
use insitu::server::{EmbeddedServer, ListenOptions};
use insitu::{Client, DType, Error, ErrorCode, ModelOptions, Tensor};

/// Status of every call. Values are stable.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum insitu_status {
    /// Success.
    Ok = 0,
    /// A malformed request or argument.
    BadInput = 1,
    /// The key does not exist.
    NotFound = 2,
    /// The key holds another kind of value.
    WrongType = 3,
    /// The memory limit would be exceeded.
    OutOfMemory = 4,
    /// A configured limit was exceeded.
    LimitExceeded = 5,
    /// A socket or file error.
    Io = 6,
    /// The peer broke the protocol.
    Protocol = 7,
    /// Authentication required or failed.
    Auth = 8,
    /// Timed out.
    Timeout = 9,
    /// Not supported by this build or server.
    Unsupported = 10,
    /// An unclassified server error.
    Server = 11,
    /// A bug in insitu.
    Internal = 12,
    /// A required pointer argument was NULL.
    NullArgument = 13,
    /// A text argument was not UTF-8.
    InvalidUtf8 = 14,
}

/// Element types (the same ids as the Rust `DType`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum insitu_dtype {
    /// 32-bit float.
    Float = 1,
    /// 64-bit float.
    Double = 2,
    /// int8
    Int8 = 3,
    /// int16
    Int16 = 4,
    /// int32
    Int32 = 5,
    /// int64
    Int64 = 6,
    /// uint8
    Uint8 = 7,
    /// uint16
    Uint16 = 8,
    /// bool, one byte 0 or 1.
    Bool = 9,
    /// NUL-terminated strings, concatenated.
    String = 10,
    /// IEEE half.
    Float16 = 11,
    /// bfloat16.
    Bfloat16 = 12,
    /// uint32
    Uint32 = 13,
    /// uint64
    Uint64 = 14,
}

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

/// A connection (or in-process engine) and its key prefixes.
pub struct insitu_client(Client);
/// A tensor owned by the library.
pub struct insitu_tensor(Tensor);
/// A dataset: tensors and metadata.
pub struct insitu_dataset(Dataset);
/// Datasets read from an aggregation list.
pub struct insitu_dataset_list(Vec<insitu_dataset>);
/// A server serving an in-process engine.
pub struct insitu_server(Option<EmbeddedServer>);

thread_local! {
    static LAST: RefCell<(insitu_status, String)> = const { RefCell::new((insitu_status::Ok, String::new())) };
}

enum Fail {
    Null(&'static str),
    Utf8(&'static str),
    Err(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Err(e)
    }
}

fn status_of(code: ErrorCode) -> insitu_status {
    match code {
        ErrorCode::BadInput => insitu_status::BadInput,
        ErrorCode::NotFound => insitu_status::NotFound,
        ErrorCode::WrongType => insitu_status::WrongType,
        ErrorCode::OutOfMemory => insitu_status::OutOfMemory,
        ErrorCode::LimitExceeded => insitu_status::LimitExceeded,
        ErrorCode::Io => insitu_status::Io,
        ErrorCode::Protocol => insitu_status::Protocol,
        ErrorCode::Auth => insitu_status::Auth,
        ErrorCode::Timeout => insitu_status::Timeout,
        ErrorCode::Unsupported => insitu_status::Unsupported,
        ErrorCode::Server => insitu_status::Server,
        ErrorCode::Internal => insitu_status::Internal,
    }
}

fn record(status: insitu_status, msg: String) -> insitu_status {
    LAST.with(|l| *l.borrow_mut() = (status, msg));
    status
}

/// The panic boundary: run `f`, turn failures and panics into a status and message.
fn call(f: impl FnOnce() -> Result<(), Fail>) -> insitu_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => record(insitu_status::Ok, String::new()),
        Ok(Err(Fail::Null(what))) => record(
            insitu_status::NullArgument,
            format!("{what} must not be NULL"),
        ),
        Ok(Err(Fail::Utf8(what))) => record(
            insitu_status::InvalidUtf8,
            format!("{what} is not valid UTF-8"),
        ),
        Ok(Err(Fail::Err(e))) => record(status_of(e.code()), e.text().to_string()),
        Err(_) => record(
            insitu_status::Internal,
            "internal error: a panic was caught at the C boundary (please report it)".into(),
        ),
    }
}

unsafe fn text<'a>(p: *const c_char, len: usize, what: &'static str) -> Result<&'a str, Fail> {
    if p.is_null() {
        return Err(Fail::Null(what));
    }
    let b = std::slice::from_raw_parts(p.cast::<u8>(), len);
    std::str::from_utf8(b).map_err(|_| Fail::Utf8(what))
}

unsafe fn slice<'a, T>(p: *const T, len: usize, what: &'static str) -> Result<&'a [T], Fail> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Fail::Null(what));
    }
    Ok(std::slice::from_raw_parts(p, len))
}

unsafe fn obj<'a, T>(p: *const T, what: &'static str) -> Result<&'a T, Fail> {
    p.as_ref().ok_or(Fail::Null(what))
}

unsafe fn obj_mut<'a, T>(p: *mut T, what: &'static str) -> Result<&'a mut T, Fail> {
    p.as_mut().ok_or(Fail::Null(what))
}

unsafe fn put<T>(out: *mut T, v: T) {
    // Checked non-NULL by the caller before any work.
    out.write(v);
}

fn check_out<T>(out: *mut T, what: &'static str) -> Result<(), Fail> {
    if out.is_null() {
        Err(Fail::Null(what))
    } else {
        Ok(())
    }
}

fn dtype(d: insitu_dtype) -> Result<DType, Fail> {
    DType::from_id(d as u8).ok_or_else(|| Fail::Err(Error::bad_input("invalid data type")))
}

fn c_dtype(d: DType) -> insitu_dtype {
    match d {
        DType::Float32 => insitu_dtype::Float,
        DType::Float64 => insitu_dtype::Double,
        DType::Int8 => insitu_dtype::Int8,
        DType::Int16 => insitu_dtype::Int16,
        DType::Int32 => insitu_dtype::Int32,
        DType::Int64 => insitu_dtype::Int64,
        DType::UInt8 => insitu_dtype::Uint8,
        DType::UInt16 => insitu_dtype::Uint16,
        DType::Bool => insitu_dtype::Bool,
        DType::String => insitu_dtype::String,
        DType::Float16 => insitu_dtype::Float16,
        DType::BFloat16 => insitu_dtype::Bfloat16,
        DType::UInt32 => insitu_dtype::Uint32,
        DType::UInt64 => insitu_dtype::Uint64,
    }
}

/// Build a tensor from caller memory (one copy into a library buffer).
unsafe fn tensor_from(
    data: *const c_void,
    data_len: usize,
    dt: insitu_dtype,
    dims: *const usize,
    ndims: usize,
) -> Result<Tensor, Fail> {
    let dt = dtype(dt)?;
    let dims = slice(dims, ndims, "dims")?;
    let bytes = slice(data.cast::<u8>(), data_len, "data")?;
    let limits = insitu::Limits {
        max_dims: usize::MAX,
        max_tensor_bytes: usize::MAX,
        ..Default::default()
    };
    Ok(Tensor::new(
        dt,
        dims,
        bytes::Bytes::copy_from_slice(bytes),
        &limits,
    )?)
}

/// Reorder column-major elements (Fortran order, dims `dims`) into row-major order for
/// the same dims, or back (`to_row` false), for elements of `esz` bytes, from `src`
/// into `out` (both the same length, the product of `dims` times `esz`; anything else
/// leaves `out` untouched).
///
/// Reversing the axes is, for each index of the middle axes, a 2-D transpose between
/// the first and the last axis; that transpose runs in cache-sized tiles, with the
/// element moved as a fixed-size array for the common element sizes.
fn transpose_into(src: &[u8], out: &mut [u8], dims: &[usize], esz: usize, to_row: bool) {
    let n = dims
        .iter()
        .try_fold(esz, |acc, &d| acc.checked_mul(d))
        .unwrap_or(usize::MAX);
    if n == 0 || src.len() != n || out.len() != n {
        return;
    }
    fn fixed<const E: usize>(s: &[u8], o: &mut [u8], dims: &[usize], to_row: bool) {
        // E is a constant here, so each copy compiles to one load and store.
        let mut mv = |to: usize, from: usize| {
            o[to * E..(to + 1) * E].copy_from_slice(&s[from * E..(from + 1) * E])
        };
        if to_row {
            for_each_pair(dims, &mut mv);
        } else {
            for_each_pair(dims, |r, f| mv(f, r));
        }
    }
    match esz {
        1 => fixed::<1>(src, out, dims, to_row),
        2 => fixed::<2>(src, out, dims, to_row),
        4 => fixed::<4>(src, out, dims, to_row),
        8 => fixed::<8>(src, out, dims, to_row),
        16 => fixed::<16>(src, out, dims, to_row),
        _ => for_each_pair(dims, |r, f| {
            let (from, to) = if to_row { (f, r) } else { (r, f) };
            out[to * esz..(to + 1) * esz].copy_from_slice(&src[from * esz..(from + 1) * esz]);
        }),
    }
}

#[cfg(test)]
fn transpose(src: &[u8], dims: &[usize], esz: usize, to_row: bool) -> Vec<u8> {
    let mut out = vec![0u8; src.len()];
    transpose_into(src, &mut out, dims, esz, to_row);
    out
}

/// Call `visit(r, f)` once for every element of an array of dims `dims`, where `r` is
/// its row-major position and `f` its column-major one, in an order that keeps both
/// reads and writes within cache-sized tiles.
fn for_each_pair(dims: &[usize], mut visit: impl FnMut(usize, usize)) {
    const TILE: usize = 16;
    let nd = dims.len();
    if nd <= 1 {
        (0..dims.first().copied().unwrap_or(1)).for_each(|i| visit(i, i));
        return;
    }
    let (first, last) = (dims[0], dims[nd - 1]);
    // Column-major stride of the last axis; row-major stride of the first.
    let f_last: usize = dims[..nd - 1].iter().product();
    let r_first: usize = dims[1..].iter().product();
    let middle = &dims[1..nd - 1];
    let mut idx = vec![0usize; middle.len()];
    loop {
        // Offsets of this middle index: column-major strides grow from axis 1 (after
        // the first axis), row-major strides grow from axis nd-2 (before the last).
        let (mut base_f, mut base_r) = (0usize, 0usize);
        let mut fs = first;
        for (i, d) in idx.iter().zip(middle) {
            base_f += i * fs;
            fs *= d;
        }
        let mut rs = last;
        for (i, d) in idx.iter().zip(middle).rev() {
            base_r += i * rs;
            rs *= d;
        }
        for i0 in (0..first).step_by(TILE) {
            for il in (0..last).step_by(TILE) {
                for b in il..(il + TILE).min(last) {
                    for a in i0..(i0 + TILE).min(first) {
                        visit(base_r + a * r_first + b, base_f + a + b * f_last);
                    }
                }
            }
        }
        // Next middle index, row-major (last middle axis fastest).
        let mut k = middle.len();
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            idx[k] += 1;
            if idx[k] < middle[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

// ----- errors -----

/// The status of the last call on this thread.
#[no_mangle]
pub extern "C" fn insitu_last_error_code() -> insitu_status {
    LAST.with(|l| l.borrow().0)
}

/// Copy the last error message of this thread into `buf` (NUL-terminated, truncated to
/// `cap - 1` bytes); returns the message's full length. Empty after a success.
#[no_mangle]
pub unsafe extern "C" fn insitu_last_error_message(buf: *mut c_char, cap: usize) -> usize {
    LAST.with(|l| {
        let l = l.borrow();
        let msg = l.1.as_bytes();
        if !buf.is_null() && cap > 0 {
            let n = msg.len().min(cap - 1);
            std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
        msg.len()
    })
}

/// A static, NUL-terminated name for a status, e.g. "NotFound".
#[no_mangle]
pub extern "C" fn insitu_status_name(status: insitu_status) -> *const c_char {
    let s: &'static [u8] = match status {
        insitu_status::Ok => b"Ok\0",
        insitu_status::BadInput => b"BadInput\0",
        insitu_status::NotFound => b"NotFound\0",
        insitu_status::WrongType => b"WrongType\0",
        insitu_status::OutOfMemory => b"OutOfMemory\0",
        insitu_status::LimitExceeded => b"LimitExceeded\0",
        insitu_status::Io => b"Io\0",
        insitu_status::Protocol => b"Protocol\0",
        insitu_status::Auth => b"Auth\0",
        insitu_status::Timeout => b"Timeout\0",
        insitu_status::Unsupported => b"Unsupported\0",
        insitu_status::Server => b"Server\0",
        insitu_status::Internal => b"Internal\0",
        insitu_status::NullArgument => b"NullArgument\0",
        insitu_status::InvalidUtf8 => b"InvalidUtf8\0",
    };
    s.as_ptr().cast()
}

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
        let t = tensor_from(data, data_len, dtype, dims, ndims)?;
        Ok(c.0.put_tensor(n, &t)?)
    })
}

/// Fetch a tensor into library-owned memory; release it with insitu_tensor_free.
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
/// exactly its byte size. Its dims are written to `dims` (room for `dims_cap`) and their
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
unsafe fn client_unpack(
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
unsafe fn dataset_unpack(
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
unsafe fn unpack_args(
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
unsafe fn unpack_into(
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
unsafe fn fortran_tensor_from(
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
    let limits = insitu::Limits {
        max_dims: usize::MAX,
        max_tensor_bytes: usize::MAX,
        ..Default::default()
    };
    Ok(Tensor::new(dt, shape, bytes::Bytes::from(row), &limits)?)
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
unsafe fn on_name(
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
unsafe fn ask_name(
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
unsafe fn on_pair(
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

// ----- tensors -----

/// A library-owned tensor from caller memory (for insitu_client_infer inputs).
#[no_mangle]
pub unsafe extern "C" fn insitu_tensor_new(
    data: *const c_void,
    data_len: usize,
    dtype: insitu_dtype,
    dims: *const usize,
    ndims: usize,
    out: *mut *mut insitu_tensor,
) -> insitu_status {
    call(|| {
        check_out(out, "out")?;
        let t = tensor_from(data, data_len, dtype, dims, ndims)?;
        put(out, Box::into_raw(Box::new(insitu_tensor(t))));
        Ok(())
    })
}

/// Release a tensor. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn insitu_tensor_free(tensor: *mut insitu_tensor) {
    if !tensor.is_null() {
        drop(Box::from_raw(tensor));
    }
}

/// The tensor's dtype (INSITU_DTYPE_FLOAT for NULL).
#[no_mangle]
pub unsafe extern "C" fn insitu_tensor_dtype(tensor: *const insitu_tensor) -> insitu_dtype {
    tensor
        .as_ref()
        .map_or(insitu_dtype::Float, |t| c_dtype(t.0.dtype()))
}

/// The number of dims (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn insitu_tensor_ndims(tensor: *const insitu_tensor) -> usize {
    tensor.as_ref().map_or(0, |t| t.0.shape().len())
}

/// The dims, valid while the tensor lives (NULL for NULL).
#[no_mangle]
pub unsafe extern "C" fn insitu_tensor_dims(tensor: *const insitu_tensor) -> *const usize {
    tensor
        .as_ref()
        .map_or(std::ptr::null(), |t| t.0.shape().as_ptr())
}

/// The bytes, valid while the tensor lives (NULL for NULL).
#[no_mangle]
pub unsafe extern "C" fn insitu_tensor_data(tensor: *const insitu_tensor) -> *const c_void {
    tensor
        .as_ref()
        .map_or(std::ptr::null(), |t| t.0.data().as_ptr().cast())
}

/// The byte length (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn insitu_tensor_nbytes(tensor: *const insitu_tensor) -> usize {
    tensor.as_ref().map_or(0, |t| t.0.data().len())
}

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

// ----- models -----

fn model_options(
    device: &str,
    batch_size: usize,
    min_batch_size: usize,
    min_batch_timeout_ms: u64,
) -> ModelOptions {
    ModelOptions {
        device: device.to_string(),
        batch_size,
        min_batch_size,
        min_batch_timeout_ms,
        ..ModelOptions::default()
    }
}

/// Store an ONNX model from memory. `device`: "CPU", "GPU", "CPU:n", "GPU:n".
#[no_mangle]
pub unsafe extern "C" fn insitu_client_set_model(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    model: *const c_void,
    model_len: usize,
    device: *const c_char,
    device_len: usize,
    batch_size: usize,
    min_batch_size: usize,
    min_batch_timeout_ms: u64,
) -> insitu_status {
    call(|| {
        let c = obj_mut(client, "client")?;
        let n = text(name, name_len, "name")?;
        let m = slice(model.cast::<u8>(), model_len, "model")?;
        let dev = text(device, device_len, "device")?;
        Ok(c.0.set_model(
            n,
            m,
            &model_options(dev, batch_size, min_batch_size, min_batch_timeout_ms),
        )?)
    })
}

/// Store an ONNX model from a file.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_set_model_from_file(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    path: *const c_char,
    path_len: usize,
    device: *const c_char,
    device_len: usize,
    batch_size: usize,
    min_batch_size: usize,
    min_batch_timeout_ms: u64,
) -> insitu_status {
    call(|| {
        let c = obj_mut(client, "client")?;
        let n = text(name, name_len, "name")?;
        let p = text(path, path_len, "path")?;
        let dev = text(device, device_len, "device")?;
        Ok(c.0.set_model_from_file(
            n,
            p,
            &model_options(dev, batch_size, min_batch_size, min_batch_timeout_ms),
        )?)
    })
}

unsafe fn names<'a>(
    ptrs: *const *const c_char,
    lens: *const usize,
    n: usize,
    what: &'static str,
) -> Result<Vec<&'a str>, Fail> {
    let ptrs = slice(ptrs, n, what)?;
    let lens = slice(lens, n, what)?;
    ptrs.iter()
        .zip(lens)
        .map(|(&p, &l)| text(p, l, what))
        .collect()
}

/// Run a model on stored tensors, storing its outputs.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_run_model(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    inputs: *const *const c_char,
    input_lens: *const usize,
    n_inputs: usize,
    outputs: *const *const c_char,
    output_lens: *const usize,
    n_outputs: usize,
) -> insitu_status {
    call(|| {
        let c = obj_mut(client, "client")?;
        let n = text(name, name_len, "name")?;
        let ins = names(inputs, input_lens, n_inputs, "inputs")?;
        let outs = names(outputs, output_lens, n_outputs, "outputs")?;
        Ok(c.0.run_model(n, &ins, &outs)?)
    })
}

/// Run a model on tensors and get its outputs in one round trip; nothing is stored.
/// Writes up to `outputs_cap` library-owned tensors to `outputs` and their count to
/// `n_outputs` (release each with insitu_tensor_free).
#[no_mangle]
pub unsafe extern "C" fn insitu_client_infer(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    inputs: *const *const insitu_tensor,
    n_inputs: usize,
    outputs: *mut *mut insitu_tensor,
    outputs_cap: usize,
    n_outputs: *mut usize,
) -> insitu_status {
    call(|| {
        let c = obj_mut(client, "client")?;
        let n = text(name, name_len, "name")?;
        let ins = slice(inputs, n_inputs, "inputs")?;
        check_out(n_outputs, "n_outputs")?;
        let mut tensors = Vec::with_capacity(ins.len());
        for &t in ins {
            tensors.push(obj(t, "inputs")?.0.clone());
        }
        let outs = c.0.infer(n, &tensors)?;
        if outs.len() > outputs_cap {
            return Err(Error::bad_input(format!(
                "the model has {} outputs but outputs holds {outputs_cap}",
                outs.len()
            ))
            .into());
        }
        if !outs.is_empty() && outputs.is_null() {
            return Err(Fail::Null("outputs"));
        }
        let count = outs.len();
        for (i, t) in outs.into_iter().enumerate() {
            outputs
                .add(i)
                .write(Box::into_raw(Box::new(insitu_tensor(t))));
        }
        put(n_outputs, count);
        Ok(())
    })
}

/// Delete a model.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_delete_model(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
) -> insitu_status {
    on_name(client, name, name_len, |c, n| c.delete_model(n))
}

/// Whether a model exists.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_model_exists(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    out: *mut bool,
) -> insitu_status {
    ask_name(client, name, name_len, out, |c, n| c.model_exists(n))
}

/// Wait up to interval_ms * tries for a model.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_poll_model(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    interval_ms: u64,
    tries: u32,
    out: *mut bool,
) -> insitu_status {
    ask_name(client, name, name_len, out, |c, n| {
        c.poll_model(n, interval_ms, tries)
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

// ----- embedded server -----

/// Serve an inproc client's engine on a Unix socket and/or TCP ("host:port", port 0 for
/// any free port); pass a NULL pointer to skip either.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_start_server(
    client: *mut insitu_client,
    unix_path: *const c_char,
    unix_path_len: usize,
    tcp_address: *const c_char,
    tcp_address_len: usize,
    out: *mut *mut insitu_server,
) -> insitu_status {
    call(|| {
        let c = obj_mut(client, "client")?;
        check_out(out, "out")?;
        let unix = if unix_path.is_null() {
            None
        } else {
            Some(text(unix_path, unix_path_len, "unix_path")?.into())
        };
        let tcp = if tcp_address.is_null() {
            None
        } else {
            let a = text(tcp_address, tcp_address_len, "tcp_address")?;
            Some(a.parse().map_err(|_| {
                Error::bad_input(format!("invalid TCP address '{a}' (expected ip:port)"))
            })?)
        };
        let s = c.0.start_server(ListenOptions {
            tcp,
            unix,
            unix_mode: None,
        })?;
        put(out, Box::into_raw(Box::new(insitu_server(Some(s)))));
        Ok(())
    })
}

/// The TCP port the server listens on (0 when none, or for NULL).
#[no_mangle]
pub unsafe extern "C" fn insitu_server_tcp_port(server: *const insitu_server) -> u16 {
    server
        .as_ref()
        .and_then(|s| s.0.as_ref())
        .and_then(|s| s.tcp_addr())
        .map_or(0, |a| a.port())
}

/// Stop the server (finishing requests in flight) and release it. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn insitu_server_free(server: *mut insitu_server) -> insitu_status {
    if server.is_null() {
        return insitu_status::Ok;
    }
    let mut s = Box::from_raw(server);
    call(|| match s.0.take() {
        Some(srv) => srv
            .stop()
            .map_err(|e| Fail::Err(Error::io("stopping the server", &e))),
        None => Ok(()),
    })
}

#[cfg(test)]
mod tests {
    use super::{status_of, transpose, ErrorCode};

    #[test]
    fn every_error_code_keeps_its_number_as_a_status() {
        for c in ErrorCode::ALL {
            assert_eq!(status_of(c) as u32, c as u32, "{}", c.name());
        }
    }

    #[test]
    fn transpose_round_trips_and_matches_fortran_indexing() {
        // a(2,3) in Fortran order: a(i,j) = 10*i + j.
        let dims = [2usize, 3];
        let col: Vec<u8> = [11u8, 21, 12, 22, 13, 23].to_vec();
        let row = transpose(&col, &dims, 1, true);
        assert_eq!(row, vec![11, 12, 13, 21, 22, 23]); // t[i-1][j-1] == a(i,j)
        assert_eq!(transpose(&row, &dims, 1, false), col);
        let dims3 = [2usize, 3, 4];
        let src: Vec<u8> = (0..24u32).flat_map(|v| (v as u16).to_le_bytes()).collect();
        assert_eq!(
            transpose(&transpose(&src, &dims3, 2, true), &dims3, 2, false),
            src
        );
    }

    /// Element by element, the definition: walk row-major order, compute each
    /// element's column-major position.
    fn reference(src: &[u8], dims: &[usize], esz: usize, to_row: bool) -> Vec<u8> {
        let n: usize = dims.iter().product();
        let mut out = vec![0u8; src.len()];
        let mut fstride = vec![1usize; dims.len()];
        for k in 1..dims.len() {
            fstride[k] = fstride[k - 1] * dims[k - 1];
        }
        let mut idx = vec![0usize; dims.len()];
        for r in 0..n {
            let f: usize = idx.iter().zip(&fstride).map(|(i, s)| i * s).sum();
            let (from, to) = if to_row { (f, r) } else { (r, f) };
            out[to * esz..(to + 1) * esz].copy_from_slice(&src[from * esz..(from + 1) * esz]);
            for k in (0..dims.len()).rev() {
                idx[k] += 1;
                if idx[k] < dims[k] {
                    break;
                }
                idx[k] = 0;
            }
        }
        out
    }

    #[test]
    fn tiled_transpose_equals_the_definition_for_every_shape_and_size() {
        let shapes: [&[usize]; 9] = [
            &[7],
            &[1, 1],
            &[33, 65],
            &[64, 32],
            &[5, 1, 70],
            &[3, 4, 5, 6],
            &[2, 3, 2, 3, 2, 3, 2],
            &[40, 3, 41],
            &[1, 100, 1],
        ];
        for dims in shapes {
            for esz in [1usize, 2, 3, 4, 8, 16] {
                let n: usize = dims.iter().product();
                let src: Vec<u8> = (0..n * esz).map(|i| (i * 7 + i / 251) as u8).collect();
                for to_row in [true, false] {
                    assert_eq!(
                        transpose(&src, dims, esz, to_row),
                        reference(&src, dims, esz, to_row),
                        "dims {dims:?} esz {esz} to_row {to_row}"
                    );
                }
            }
        }
    }
}
