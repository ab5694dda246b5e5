//! numpy arrays in and out of [`Tensor`]s, with as few copies as the semantics allow.
//!
//! In: an array's bytes are *borrowed* (no copy) when the tensor is needed only for the
//! call — a put over a socket, an inference — and copied once when the tensor is kept (an
//! in-process put, a dataset). A non-contiguous, Fortran-ordered or byte-swapped array is
//! first made C-contiguous by numpy; that copy is private, so it is then borrowed, never
//! copied again. Out: a tensor becomes a numpy array viewing its bytes through
//! [`TensorBuffer`]; `copy=True` (the default) gives a writable array, which costs one copy
//! unless the bytes are the caller's alone (a reply read from a socket, a model output).

use std::ffi::c_int;

use bytes::{Bytes, BytesMut};
use insitu::{DType, Tensor};
use numpy::npyffi::{
    npy_intp, NpyTypes, PyArrayObject, NPY_ARRAY_ALIGNED, NPY_ARRAY_C_CONTIGUOUS,
    NPY_ARRAY_WRITEABLE, PY_ARRAY_API,
};
use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyBufferError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList, PyString};
use pyo3::{ffi, IntoPyObjectExt};

use crate::{bad_input, IntoPy};

/// Copies larger than this release the GIL.
const DETACH_BYTES: usize = 1 << 20;

/// Copy `n` bytes from `src` to `dst`, with the GIL released when the copy is large.
///
/// # Safety
/// `src` is valid for reading and `dst` for writing `n` bytes, for the whole call, and
/// they do not overlap (other Python threads may run meanwhile: the memory must not be
/// freed by them).
unsafe fn copy_bytes(py: Python<'_>, src: *const u8, dst: *mut u8, n: usize) {
    let (src, dst) = (src as usize, dst as usize);
    // SAFETY: as the caller promises.
    let copy =
        move || unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, n) };
    if n >= DETACH_BYTES {
        py.detach(copy);
    } else {
        copy();
    }
}

/// What a call does with the tensor it makes from an array.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Needed only during the call: the array's memory is borrowed.
    Call,
    /// Kept after the call (stored in process, added to a dataset): copied once.
    Keep,
}

fn numpy(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static NP: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    NP.get_or_try_init(py, || py.import("numpy").map(Bound::unbind))
        .map(|m| m.bind(py))
}

/// The insitu dtype of a numpy dtype, `None` for strings (handled apart).
fn dtype_of(arr: &Bound<'_, PyUntypedArray>) -> PyResult<Option<DType>> {
    let d = arr.dtype();
    let size = d.itemsize();
    let t = match (d.kind(), size) {
        (b'f', 2) => DType::Float16,
        (b'f', 4) => DType::Float32,
        (b'f', 8) => DType::Float64,
        (b'i', 1) => DType::Int8,
        (b'i', 2) => DType::Int16,
        (b'i', 4) => DType::Int32,
        (b'i', 8) => DType::Int64,
        (b'u', 1) => DType::UInt8,
        (b'u', 2) => DType::UInt16,
        (b'u', 4) => DType::UInt32,
        (b'u', 8) => DType::UInt64,
        (b'b', 1) => DType::Bool,
        (b'S' | b'U' | b'O', _) => return Ok(None),
        _ => {
            let name: String = d.getattr("name")?.extract()?;
            if name == "bfloat16" && size == 2 {
                return Ok(Some(DType::BFloat16));
            }
            return Err(bad_input(format!(
                "numpy dtype {name} has no insitu tensor type (supported: float16, bfloat16, \
                 float32, float64, int8, int16, int32, int64, uint8, uint16, uint32, uint64, \
                 bool, and str/bytes)"
            )));
        }
    };
    Ok(Some(t))
}

/// The numpy dtype for an insitu dtype, made once per dtype.
fn np_dtype<'py>(py: Python<'py>, dtype: DType) -> PyResult<Bound<'py, PyAny>> {
    static CACHE: [PyOnceLock<Py<PyAny>>; 15] = [const { PyOnceLock::new() }; 15];
    let slot = &CACHE[usize::from(dtype.id()).min(14)];
    slot.get_or_try_init(py, || make_np_dtype(py, dtype).map(Bound::unbind))
        .map(|d| d.bind(py).clone())
}

/// The numpy dtype for an insitu dtype (`bfloat16` needs the `ml_dtypes` package).
fn make_np_dtype<'py>(py: Python<'py>, dtype: DType) -> PyResult<Bound<'py, PyAny>> {
    let name = match dtype {
        DType::Float32 => "float32",
        DType::Float64 => "float64",
        DType::Float16 => "float16",
        DType::Int8 => "int8",
        DType::Int16 => "int16",
        DType::Int32 => "int32",
        DType::Int64 => "int64",
        DType::UInt8 => "uint8",
        DType::UInt16 => "uint16",
        DType::UInt32 => "uint32",
        DType::UInt64 => "uint64",
        DType::Bool => "bool",
        DType::BFloat16 => {
            let t = py
                .import("ml_dtypes")
                .and_then(|m| m.getattr("bfloat16"))
                .map_err(|_| {
                    crate::to_py(insitu::Error::err(
                        insitu::ErrorCode::Unsupported,
                        "BFLOAT16 tensors need the ml_dtypes package (pip install ml_dtypes)",
                    ))
                })?;
            return numpy(py)?.getattr("dtype")?.call1((t,));
        }
        DType::String => "object",
    };
    numpy(py)?.getattr("dtype")?.call1((name,))
}

/// An array's bytes, kept alive by a reference to the array (see [`Use::Call`]).
struct Borrowed {
    ptr: *const u8,
    len: usize,
    _owner: Py<PyAny>,
}

// SAFETY: the pointer is into a numpy buffer the owner reference keeps alive; it is only
// read. (Another Python thread writing the array during the call races as it would with
// any buffer handed to native code with the GIL released.)
unsafe impl Send for Borrowed {}

impl AsRef<[u8]> for Borrowed {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: ptr/len describe the live buffer of `_owner` (checked on creation).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// Bytes copied into 16-byte-aligned memory (what a model input needs).
struct Aligned {
    words: Vec<u128>,
    len: usize,
}

impl AsRef<[u8]> for Aligned {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `words` holds at least `len` initialized bytes.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }
}

fn copy_aligned(py: Python<'_>, src: &[u8]) -> Bytes {
    // Not zero-filled first: that would be a second pass over the memory.
    let n_words = src.len().div_ceil(16);
    let mut words: Vec<u128> = Vec::with_capacity(n_words);
    let dst = words.as_mut_ptr().cast::<u8>();
    let n = src.len();
    // SAFETY: dst has room for n_words * 16 >= n bytes; src is valid for n bytes while
    // the caller holds the array; the regions do not overlap. The tail past n is zeroed,
    // so every word is initialised before set_len.
    unsafe {
        copy_bytes(py, src.as_ptr(), dst, n);
        std::ptr::write_bytes(dst.add(n), 0, n_words * 16 - n);
    }
    // SAFETY: all n_words words were written above.
    unsafe { words.set_len(n_words) };
    Bytes::from_owner(Aligned { words, len: n })
}

/// A tensor from any array-like (numpy array, list, scalar, anything `numpy.asarray`
/// takes). See the module documentation for when it copies.
///
/// # Errors
/// A dtype insitu has no tensor type for, strings with NUL bytes, an empty dimension.
pub fn tensor_from_py(py: Python<'_>, obj: &Bound<'_, PyAny>, use_: Use) -> PyResult<Tensor> {
    let np = numpy(py)?;
    let (mut arr, mut private) = match obj.cast::<PyUntypedArray>() {
        Ok(a) => (a.clone(), false),
        Err(_) => {
            let a = np.call_method1("asarray", (obj,))?;
            let a = a.cast_into::<PyUntypedArray>()?;
            let owns = owns_data(&a);
            (a, owns)
        }
    };
    let Some(dtype) = dtype_of(&arr)? else {
        return strings_tensor(&arr);
    };
    let swapped = {
        let b = arr.dtype().byteorder();
        b == b'>' && cfg!(target_endian = "little") || b == b'<' && cfg!(target_endian = "big")
    };
    if !arr.is_c_contiguous() || swapped {
        let native = arr.dtype().call_method1("newbyteorder", ("=",))?;
        let kw = pyo3::types::PyDict::new(py);
        kw.set_item("dtype", native)?;
        arr = np
            .call_method("ascontiguousarray", (&arr,), Some(&kw))?
            .cast_into::<PyUntypedArray>()?;
        private = true;
    }
    let shape = arr.shape().to_vec();
    let len = arr.len() * arr.dtype().itemsize();
    // SAFETY: a C-contiguous array's data pointer is valid for len bytes.
    let ptr = unsafe { (*arr.as_array_ptr()).fields.data as *const u8 };
    let data = if private || use_ == Use::Call || len == 0 {
        Bytes::from_owner(Borrowed {
            ptr,
            len,
            _owner: arr.clone().into_any().unbind(),
        })
    } else {
        // SAFETY: as above; the array is alive for this call.
        copy_aligned(py, unsafe { std::slice::from_raw_parts(ptr, len) })
    };
    Tensor::new(dtype, shape, data).py_err()
}

fn owns_data(a: &Bound<'_, PyUntypedArray>) -> bool {
    // SAFETY: reading the flags of a live array.
    unsafe { (*a.as_array_ptr()).fields.flags & numpy::npyffi::NPY_ARRAY_OWNDATA != 0 }
}

/// A `STRING` tensor from an array of `str`, `bytes`, or objects holding either
/// (str is encoded as UTF-8).
fn strings_tensor(arr: &Bound<'_, PyUntypedArray>) -> PyResult<Tensor> {
    let shape = arr.shape().to_vec();
    let flat = arr.call_method0("ravel")?.call_method0("tolist")?;
    let items = flat.cast::<PyList>()?;
    let mut strings: Vec<Vec<u8>> = Vec::with_capacity(items.len());
    for it in items.iter() {
        if let Ok(s) = it.cast::<PyString>() {
            strings.push(s.to_str()?.as_bytes().to_vec());
        } else if let Ok(b) = it.cast::<PyBytes>() {
            strings.push(b.as_bytes().to_vec());
        } else {
            return Err(bad_input(format!(
                "a STRING tensor holds str or bytes, not {}",
                it.get_type().name()?
            )));
        }
    }
    Tensor::from_strings(shape, &strings).py_err()
}

/// A tensor's bytes exposed to Python through the buffer protocol: read-only while they
/// may be shared (with the store, a shared-memory block), writable when they are this
/// object's alone.
#[pyclass(frozen, module = "insitu._native")]
pub struct TensorBuffer {
    ptr: usize,
    len: usize,
    writable: bool,
    _keep: Keep,
}

enum Keep {
    Shared(#[allow(dead_code)] Bytes),
    Owned(#[allow(dead_code)] BytesMut),
}

impl TensorBuffer {
    fn new(data: Bytes, align: usize) -> TensorBuffer {
        let aligned = data.as_ptr() as usize % align.max(1) == 0;
        match data.try_into_mut() {
            Ok(mut m) if aligned => TensorBuffer {
                ptr: m.as_mut_ptr() as usize,
                len: m.len(),
                writable: true,
                _keep: Keep::Owned(m),
            },
            Ok(m) => TensorBuffer::shared(m.freeze()),
            Err(b) => TensorBuffer::shared(b),
        }
    }

    fn shared(b: Bytes) -> TensorBuffer {
        TensorBuffer {
            ptr: b.as_ptr() as usize,
            len: b.len(),
            writable: false,
            _keep: Keep::Shared(b),
        }
    }
}

#[pymethods]
impl TensorBuffer {
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let me = slf.get();
        if !me.writable && flags & ffi::PyBUF_WRITABLE != 0 {
            return Err(PyBufferError::new_err("the tensor's memory is read-only"));
        }
        let len = isize::try_from(me.len).map_err(|_| PyBufferError::new_err("too large"))?;
        // SAFETY: ptr/len describe memory `_keep` holds for as long as this object lives,
        // and the view holds a reference to it.
        let rc = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                me.ptr as *mut std::ffi::c_void,
                len,
                c_int::from(!me.writable),
                flags,
            )
        };
        if rc != 0 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}

/// A numpy array of `t`'s elements: a view of its bytes when that is safe (`copy=False`
/// gives a read-only view of shared bytes), else one copy.
///
/// # Errors
/// `BFLOAT16` without `ml_dtypes`; numpy errors.
pub fn tensor_to_py<'py>(py: Python<'py>, t: Tensor, copy: bool) -> PyResult<Bound<'py, PyAny>> {
    let (dtype, shape, data) = t.into_parts();
    if dtype == DType::String {
        let np = numpy(py)?;
        let t = Tensor::new(dtype, &shape, data).py_err()?;
        let items: Vec<Bound<'py, PyBytes>> = t
            .strings()
            .py_err()?
            .into_iter()
            .map(|s| PyBytes::new(py, s))
            .collect();
        let kw = pyo3::types::PyDict::new(py);
        kw.set_item("dtype", "object")?;
        let flat = np.call_method("empty", (items.len(),), Some(&kw))?;
        for (i, s) in items.into_iter().enumerate() {
            flat.set_item(i, s)?;
        }
        return flat.call_method1("reshape", (shape,));
    }
    let descr = np_dtype(py, dtype)?.cast_into::<PyArrayDescr>()?;
    let size = dtype.size().unwrap_or(1);
    let buf = TensorBuffer::new(data, size);
    if copy && !buf.writable {
        // One copy into a new array (made by numpy's C API: no Python calls).
        let arr = new_array(py, &descr, &shape, None)?;
        // SAFETY: a new C-ordered array of `shape` and this dtype holds exactly the
        // tensor's bytes (`Tensor` checks its length against its shape and dtype).
        unsafe {
            let dst = (*arr.as_ptr().cast::<PyArrayObject>())
                .fields
                .data
                .cast::<u8>();
            copy_bytes(py, buf.ptr as *const u8, dst, buf.len);
        }
        return Ok(arr);
    }
    let (ptr, writable) = (buf.ptr, buf.writable);
    let base = Bound::new(py, buf)?.into_any();
    new_array(py, &descr, &shape, Some((ptr, writable, base)))
}

/// A C-ordered numpy array of `descr` and `shape`: over `ptr` (writable or not) kept
/// alive by `base`, or newly allocated when `over` is `None`.
fn new_array<'py>(
    py: Python<'py>,
    descr: &Bound<'py, PyArrayDescr>,
    shape: &[usize],
    over: Option<(usize, bool, Bound<'py, PyAny>)>,
) -> PyResult<Bound<'py, PyAny>> {
    let mut dims = shape
        .iter()
        .map(|&d| npy_intp::try_from(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad_input("a tensor dimension too large for numpy"))?;
    let nd = c_int::try_from(dims.len()).map_err(|_| bad_input("too many tensor dimensions"))?;
    let (data, flags) = match &over {
        None => (std::ptr::null_mut(), 0),
        Some((ptr, writable, _)) => {
            let align = descr.alignment().max(1);
            let mut flags = NPY_ARRAY_C_CONTIGUOUS;
            if ptr % align == 0 {
                flags |= NPY_ARRAY_ALIGNED;
            }
            if *writable {
                flags |= NPY_ARRAY_WRITEABLE;
            }
            (*ptr as *mut std::ffi::c_void, flags)
        }
    };
    // SAFETY: numpy's documented constructor; it takes (steals) the reference to the
    // descriptor passed in; dims outlive the call; data (when given) is valid for the
    // array's bytes while `base`, set below, lives.
    let arr = unsafe {
        let subtype = numpy::npyffi::get_type_object(py, NpyTypes::PyArray_Type);
        let raw = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            subtype,
            descr.clone().into_ptr().cast(),
            nd,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            data,
            flags,
            std::ptr::null_mut(),
        );
        Bound::from_owned_ptr_or_err(py, raw)?
    };
    if let Some((_, _, base)) = over {
        // SAFETY: a new array without a base; SetBaseObject takes (steals) the reference.
        let rc =
            unsafe { PY_ARRAY_API.PyArray_SetBaseObject(py, arr.as_ptr().cast(), base.into_ptr()) };
        if rc != 0 {
            return Err(PyErr::fetch(py));
        }
    }
    Ok(arr)
}

/// Copy `t` into a caller's C-contiguous array of the same dtype and element count.
///
/// # Errors
/// A non-contiguous or read-only output, another dtype or element count.
pub fn copy_into(py: Python<'_>, t: &Tensor, out: &Bound<'_, PyAny>, name: &str) -> PyResult<()> {
    let arr = out
        .cast::<PyUntypedArray>()
        .map_err(|_| bad_input("unpack_tensor needs a numpy array to fill"))?;
    let want = dtype_of(arr)?;
    if want != Some(t.dtype()) {
        let have: String = arr.dtype().getattr("name")?.extract()?;
        return Err(bad_input(format!(
            "tensor '{name}' has dtype {} but the array holds {have}",
            t.dtype()
        )));
    }
    if arr.len() != t.len() {
        return Err(bad_input(format!(
            "tensor '{name}' has {} elements but the array holds {}",
            t.len(),
            arr.len()
        )));
    }
    // SAFETY: reading the flags of a live array.
    let writeable =
        unsafe { (*arr.as_array_ptr()).fields.flags & numpy::npyffi::NPY_ARRAY_WRITEABLE != 0 };
    if !arr.is_c_contiguous() || !writeable {
        return Err(bad_input(
            "unpack_tensor needs a writable C-contiguous array",
        ));
    }
    let n = t.data().len();
    // SAFETY: a C-contiguous array of the same dtype and count holds exactly n bytes.
    unsafe {
        let dst = (*arr.as_array_ptr()).fields.data.cast::<u8>();
        copy_bytes(py, t.data().as_ptr(), dst, n);
    }
    Ok(())
}

/// A Python object for a RESP reply (`command`): bytes, int, float, bool, None, list,
/// set, dict; errors raise.
pub fn frame_to_py<'py>(
    py: Python<'py>,
    f: insitu::protocol::resp::Frame,
) -> PyResult<Bound<'py, PyAny>> {
    use insitu::protocol::resp::Frame;
    Ok(match f {
        Frame::Simple(b) | Frame::Bulk(b) | Frame::Verbatim(b) => PyBytes::new(py, &b).into_any(),
        Frame::Double(d) => d.into_bound_py_any(py)?,
        Frame::Boolean(b) => b.into_bound_py_any(py)?,
        Frame::Set(items) => {
            let set = pyo3::types::PySet::empty(py)?;
            for it in items {
                set.add(frame_to_py(py, it)?)?;
            }
            set.into_any()
        }
        Frame::Map(pairs) => {
            let dict = pyo3::types::PyDict::new(py);
            for (k, v) in pairs {
                dict.set_item(frame_to_py(py, k)?, frame_to_py(py, v)?)?;
            }
            dict.into_any()
        }
        Frame::Integer(i) => i.into_bound_py_any(py)?,
        Frame::Null | Frame::NullArray => py.None().into_bound(py),
        Frame::Error(e) => return Err(crate::to_py(e)),
        Frame::Array(items) => {
            let list = PyList::empty(py);
            for it in items {
                list.append(frame_to_py(py, it)?)?;
            }
            list.into_any()
        }
    })
}
