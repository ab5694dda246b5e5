//! Tensors: element types, tensors owned by the library, and building one from caller
//! memory.

use std::ffi::c_void;

use insitu::{DType, Error, Tensor};

use crate::*;

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

/// A tensor owned by the library.
pub struct insitu_tensor(pub(crate) Tensor);

pub(crate) fn dtype(d: insitu_dtype) -> Result<DType, Fail> {
    DType::from_id(d as u8).ok_or_else(|| Fail::Err(Error::bad_input("invalid data type")))
}

pub(crate) fn c_dtype(d: DType) -> insitu_dtype {
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
pub(crate) unsafe fn tensor_from(
    data: *const c_void,
    data_len: usize,
    dt: insitu_dtype,
    dims: *const usize,
    ndims: usize,
) -> Result<Tensor, Fail> {
    tensor_with(
        data,
        data_len,
        dt,
        dims,
        ndims,
        bytes::Bytes::copy_from_slice,
    )
}

/// A tensor viewing caller memory without a copy, for a call that does not keep it (a
/// put over a socket copies the bytes out before it returns).
///
/// # Safety
/// `data` must stay valid and unchanged until the tensor and every clone of it are
/// dropped, which the caller guarantees by dropping them before it returns.
pub(crate) unsafe fn tensor_borrowed(
    data: *const c_void,
    data_len: usize,
    dt: insitu_dtype,
    dims: *const usize,
    ndims: usize,
) -> Result<Tensor, Fail> {
    tensor_with(data, data_len, dt, dims, ndims, |b| {
        bytes::Bytes::from_owner(Borrowed {
            ptr: b.as_ptr(),
            len: b.len(),
        })
    })
}

/// A tensor of the caller's dtype, dims and bytes, its buffer made by `buffer`.
unsafe fn tensor_with(
    data: *const c_void,
    data_len: usize,
    dt: insitu_dtype,
    dims: *const usize,
    ndims: usize,
    buffer: impl FnOnce(&[u8]) -> bytes::Bytes,
) -> Result<Tensor, Fail> {
    let dt = dtype(dt)?;
    let dims = slice(dims, ndims, "dims")?;
    let bytes = slice(data.cast::<u8>(), data_len, "data")?;
    Ok(Tensor::new(dt, dims, buffer(bytes))?)
}

/// Caller memory seen for the length of one call.
struct Borrowed {
    ptr: *const u8,
    len: usize,
}

// Safety: the memory is only read, within the call that made the view.
unsafe impl Send for Borrowed {}
unsafe impl Sync for Borrowed {}

impl AsRef<[u8]> for Borrowed {
    fn as_ref(&self) -> &[u8] {
        // Safety: see `tensor_borrowed`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
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
