//! Tensors: a dtype, a shape and refcounted row-major little-endian bytes.
//!
//! The bytes are a [`bytes::Bytes`], so the store, the wire encoder and every client share
//! one buffer: storing a tensor received from a socket, or handing it back to a reader,
//! never copies the payload.

use std::fmt;

use bytes::Bytes;
use ndarray::{ArrayBase, ArrayD, ArrayViewD, Data, Dimension, IxDyn};

use crate::error::{Error, Result};
use crate::protocol::limits::Limits;

#[cfg(target_endian = "big")]
compile_error!("insitu stores tensors little-endian and supports little-endian targets only");

/// Element types: RedisAI's set plus FLOAT16, BFLOAT16, UINT32 and UINT64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DType {
    /// 32-bit IEEE float (`FLOAT`).
    Float32 = 1,
    /// 64-bit IEEE float (`DOUBLE`).
    Float64 = 2,
    /// `INT8`
    Int8 = 3,
    /// `INT16`
    Int16 = 4,
    /// `INT32`
    Int32 = 5,
    /// `INT64`
    Int64 = 6,
    /// `UINT8`
    UInt8 = 7,
    /// `UINT16`
    UInt16 = 8,
    /// One byte per element, 0 or 1 (`BOOL`).
    Bool = 9,
    /// NUL-terminated byte strings, concatenated (`STRING`).
    String = 10,
    /// IEEE half precision (`FLOAT16`).
    Float16 = 11,
    /// bfloat16 (`BFLOAT16`).
    BFloat16 = 12,
    /// `UINT32`
    UInt32 = 13,
    /// `UINT64`
    UInt64 = 14,
}

impl DType {
    /// Every dtype, in id order.
    pub const ALL: [DType; 14] = [
        DType::Float32,
        DType::Float64,
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::UInt8,
        DType::UInt16,
        DType::Bool,
        DType::String,
        DType::Float16,
        DType::BFloat16,
        DType::UInt32,
        DType::UInt64,
    ];

    /// The RedisAI wire name, e.g. `FLOAT`.
    pub fn name(self) -> &'static str {
        match self {
            DType::Float32 => "FLOAT",
            DType::Float64 => "DOUBLE",
            DType::Int8 => "INT8",
            DType::Int16 => "INT16",
            DType::Int32 => "INT32",
            DType::Int64 => "INT64",
            DType::UInt8 => "UINT8",
            DType::UInt16 => "UINT16",
            DType::Bool => "BOOL",
            DType::String => "STRING",
            DType::Float16 => "FLOAT16",
            DType::BFloat16 => "BFLOAT16",
            DType::UInt32 => "UINT32",
            DType::UInt64 => "UINT64",
        }
    }

    /// Parse a wire name, case-insensitively.
    pub fn parse(name: &[u8]) -> Option<DType> {
        DType::ALL
            .into_iter()
            .find(|d| d.name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// The stable numeric id (used in snapshots and by the C ABI).
    pub fn id(self) -> u8 {
        self as u8
    }

    /// The dtype with the given id.
    pub fn from_id(id: u8) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.id() == id)
    }

    /// Bytes per element, or `None` for the variable-length `STRING`.
    pub fn size(self) -> Option<usize> {
        Some(match self {
            DType::Int8 | DType::UInt8 | DType::Bool => 1,
            DType::Int16 | DType::UInt16 | DType::Float16 | DType::BFloat16 => 2,
            DType::Float32 | DType::Int32 | DType::UInt32 => 4,
            DType::Float64 | DType::Int64 | DType::UInt64 => 8,
            DType::String => return None,
        })
    }

    /// Whether elements are floating point.
    pub fn is_float(self) -> bool {
        matches!(
            self,
            DType::Float32 | DType::Float64 | DType::Float16 | DType::BFloat16
        )
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Rust element type with a tensor dtype.
pub trait Element: Copy + Send + Sync + 'static {
    /// The matching dtype.
    const DTYPE: DType;
    /// The elements' little-endian bytes, without a copy.
    fn as_bytes(s: &[Self]) -> &[u8];
    /// A view of `b` as elements, when aligned and (for `bool`) valid.
    fn try_view(b: &[u8]) -> Option<&[Self]>;
}

macro_rules! pod_element {
    ($($t:ty => $d:ident),* $(,)?) => {$(
        impl Element for $t {
            const DTYPE: DType = DType::$d;
            fn as_bytes(s: &[Self]) -> &[u8] {
                bytemuck::cast_slice(s)
            }
            fn try_view(b: &[u8]) -> Option<&[Self]> {
                bytemuck::try_cast_slice(b).ok()
            }
        }
    )*};
}

pod_element!(
    f32 => Float32, f64 => Float64, i8 => Int8, i16 => Int16, i32 => Int32, i64 => Int64,
    u8 => UInt8, u16 => UInt16, u32 => UInt32, u64 => UInt64,
    half::f16 => Float16, half::bf16 => BFloat16,
);

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    fn as_bytes(s: &[Self]) -> &[u8] {
        bytemuck::cast_slice(s)
    }
    fn try_view(b: &[u8]) -> Option<&[Self]> {
        bytemuck::checked::try_cast_slice(b).ok()
    }
}

/// Owns a `Vec<T>` and shows it as bytes, so a `Vec` becomes a `Bytes` without a copy.
struct VecOwner<T: Element>(Vec<T>);

impl<T: Element> AsRef<[u8]> for VecOwner<T> {
    fn as_ref(&self) -> &[u8] {
        T::as_bytes(&self.0)
    }
}

/// A shape; up to four dims without a heap allocation (cloning a tensor is then free of
/// allocations, which matters on the in-process inference path).
pub type Shape = smallvec::SmallVec<[usize; 4]>;

/// A tensor: dtype, shape, and its row-major little-endian bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Tensor {
    dtype: DType,
    shape: Shape,
    data: Bytes,
}

/// The error for a tensor of more dims than `max` (counted as they are read, so it says
/// "more than").
pub fn too_many_dims(max: usize) -> Error {
    Error::limit(format!(
        "tensor has more than {max} dims, which exceeds the limit of {max}"
    ))
}

/// The number of elements of `shape` and the byte length for `dtype`, with every limit
/// checked and overflow reported rather than wrapped. For `STRING` the byte length is
/// `None` (it depends on the strings).
pub fn checked_len(
    dtype: DType,
    shape: &[usize],
    limits: &Limits,
) -> Result<(usize, Option<usize>)> {
    if shape.len() > limits.max_dims {
        return Err(Error::limit(format!(
            "tensor has {} dims, which exceeds the limit of {}",
            shape.len(),
            limits.max_dims
        )));
    }
    let too_large = || {
        Error::limit(format!(
            "tensor too large: shape {shape:?} of {dtype} exceeds the limit of {} bytes",
            limits.max_tensor_bytes
        ))
    };
    let mut count: usize = 1;
    for &d in shape {
        if d == 0 {
            return Err(Error::bad_input(
                "invalid or negative value found in tensor shape",
            ));
        }
        count = count.checked_mul(d).ok_or_else(too_large)?;
    }
    let bytes = match dtype.size() {
        Some(s) => {
            let b = count.checked_mul(s).ok_or_else(too_large)?;
            if b > limits.max_tensor_bytes {
                return Err(too_large());
            }
            Some(b)
        }
        None => {
            if count > limits.max_tensor_bytes {
                return Err(too_large());
            }
            None
        }
    };
    Ok((count, bytes))
}

fn len_mismatch() -> Error {
    Error::bad_input("data length does not match tensor shape and type")
}

/// No limits: for tensors made in this process (from a model's outputs, the caller's
/// memory, a file the operator gave), which a peer's limits do not concern.
const NO_LIMITS: Limits = Limits {
    max_bulk_len: usize::MAX,
    max_array_len: usize::MAX,
    max_inline_len: usize::MAX,
    max_dims: usize::MAX,
    max_tensor_bytes: usize::MAX,
    idle_timeout_secs: 0,
    output_timeout_secs: 0,
};

impl Tensor {
    /// A tensor from its parts, checking the byte length against shape and dtype (the
    /// element count overflow-checked) and, for `BOOL` / `STRING`, the element encoding.
    /// For what a peer sent, [`Tensor::from_peer`] also applies the limits.
    ///
    /// # Errors
    /// `ERR data length does not match tensor shape and type`, and the encoding errors.
    pub fn new(dtype: DType, shape: impl AsRef<[usize]>, data: Bytes) -> Result<Tensor> {
        Tensor::from_peer(dtype, shape, data, &NO_LIMITS)
    }

    /// Check a tensor built in this process against the limits a peer's would meet
    /// (dims, bytes), so every way in stores the same.
    ///
    /// # Errors
    /// `LimitExceeded`, with the texts of the wire path.
    pub fn check_limits(&self, limits: &Limits) -> Result<()> {
        if self.shape.len() > limits.max_dims {
            return Err(too_many_dims(limits.max_dims));
        }
        checked_len(self.dtype, &self.shape, limits)?;
        if self.data.len() > limits.max_tensor_bytes {
            return Err(Error::limit(format!(
                "tensor too large: {} bytes exceed the limit of {} bytes",
                self.data.len(),
                limits.max_tensor_bytes
            )));
        }
        Ok(())
    }

    /// [`Tensor::new`] for a tensor a peer sent: its dims and bytes within `limits`.
    ///
    /// # Errors
    /// As [`Tensor::new`], and the limit errors of [`checked_len`].
    pub fn from_peer(
        dtype: DType,
        shape: impl AsRef<[usize]>,
        data: Bytes,
        limits: &Limits,
    ) -> Result<Tensor> {
        let shape = shape.as_ref();
        let (count, bytes) = checked_len(dtype, shape, limits)?;
        match bytes {
            Some(b) if b != data.len() => return Err(len_mismatch()),
            Some(_) => {}
            None => {
                if data.len() > limits.max_tensor_bytes {
                    return Err(len_mismatch());
                }
                let nuls = data.iter().filter(|&&c| c == 0).count();
                if nuls != count || data.last().is_some_and(|&c| c != 0) {
                    return Err(Error::bad_input(
                        "Number of string elements in data blob does not match tensor length",
                    ));
                }
            }
        }
        if dtype == DType::Bool && data.iter().any(|&c| c > 1) {
            return Err(Error::bad_input("BOOL tensor elements must be 0 or 1"));
        }
        Ok(Tensor {
            dtype,
            shape: Shape::from_slice(shape),
            data,
        })
    }

    /// A zero-filled tensor (`AI.TENSORSET` without BLOB or VALUES). For `STRING` every
    /// element is the empty string.
    pub fn zeros(dtype: DType, shape: Vec<usize>, limits: &Limits) -> Result<Tensor> {
        let (count, bytes) = checked_len(dtype, &shape, limits)?;
        let n = bytes.unwrap_or(count);
        Ok(Tensor {
            dtype,
            shape: Shape::from_slice(&shape),
            data: Bytes::from(vec![0u8; n]),
        })
    }

    /// A tensor taking ownership of `data` without copying it.
    ///
    /// # Errors
    /// When `shape`'s element count differs from `data.len()`, or a limit is exceeded.
    pub fn from_vec<T: Element>(shape: Vec<usize>, data: Vec<T>) -> Result<Tensor> {
        Tensor::with_shape(&shape, data)
    }

    /// [`Tensor::from_vec`] with the shape given as a slice (no allocation for it).
    ///
    /// # Errors
    /// As [`Tensor::from_vec`].
    pub fn with_shape<T: Element>(shape: &[usize], data: Vec<T>) -> Result<Tensor> {
        let (count, _) = checked_len(T::DTYPE, shape, &NO_LIMITS)?;
        if count != data.len() {
            return Err(len_mismatch());
        }
        Ok(Tensor {
            dtype: T::DTYPE,
            shape: Shape::from_slice(shape),
            data: Bytes::from_owner(VecOwner(data)),
        })
    }

    /// A tensor holding a copy of `a`'s elements in logical (row-major) order, whatever
    /// `a`'s memory layout.
    pub fn from_array<T, S, D>(a: &ArrayBase<S, D>) -> Tensor
    where
        T: Element,
        S: Data<Elem = T>,
        D: Dimension,
    {
        let shape = Shape::from_slice(a.shape());
        let data: Vec<T> = match a.as_slice() {
            Some(s) => s.to_vec(),
            None => a.iter().copied().collect(),
        };
        Tensor {
            dtype: T::DTYPE,
            shape,
            data: Bytes::from_owner(VecOwner(data)),
        }
    }

    /// A tensor of `STRING` elements.
    ///
    /// # Errors
    /// When a string contains a NUL byte or the count does not match `shape`.
    pub fn from_strings<S: AsRef<[u8]>>(shape: Vec<usize>, strings: &[S]) -> Result<Tensor> {
        let mut data = Vec::new();
        for s in strings {
            if s.as_ref().contains(&0) {
                return Err(Error::bad_input(
                    "STRING tensor elements must not contain NUL bytes",
                ));
            }
            data.extend_from_slice(s.as_ref());
            data.push(0);
        }
        Tensor::new(DType::String, shape, Bytes::from(data))
    }

    /// The dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The shape (every dim > 0).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no elements (never true: dims are > 0).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw bytes (row-major, little-endian).
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// Split into dtype, shape and bytes.
    pub fn into_parts(self) -> (DType, Vec<usize>, Bytes) {
        (self.dtype, self.shape.to_vec(), self.data)
    }

    fn check_dtype<T: Element>(&self) -> Result<()> {
        if T::DTYPE != self.dtype {
            return Err(Error::bad_input(format!(
                "tensor has dtype {} but {} was requested",
                self.dtype,
                T::DTYPE
            )));
        }
        Ok(())
    }

    /// A view of the elements without a copy, when the bytes are suitably aligned.
    ///
    /// # Errors
    /// Wrong dtype, or bytes not aligned for `T` (use [`Tensor::to_array`] then).
    pub fn view<T: Element>(&self) -> Result<ArrayViewD<'_, T>> {
        self.check_dtype::<T>()?;
        let s = T::try_view(&self.data)
            .ok_or_else(|| Error::bad_input("tensor bytes are not aligned for a view"))?;
        ArrayViewD::from_shape(IxDyn(&self.shape), s)
            .map_err(|e| Error::bad_input(format!("tensor shape: {e}")))
    }

    /// The elements copied into an owned array.
    ///
    /// # Errors
    /// Wrong dtype.
    pub fn to_array<T: Element>(&self) -> Result<ArrayD<T>> {
        self.check_dtype::<T>()?;
        let v = self.to_vec::<T>()?;
        ArrayD::from_shape_vec(IxDyn(&self.shape), v)
            .map_err(|e| Error::bad_input(format!("tensor shape: {e}")))
    }

    /// The elements copied into a `Vec` in row-major order.
    ///
    /// # Errors
    /// Wrong dtype.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        self.check_dtype::<T>()?;
        if let Some(s) = T::try_view(&self.data) {
            return Ok(s.to_vec());
        }
        // Unaligned: copy into an aligned buffer first.
        let size = std::mem::size_of::<T>();
        let mut out: Vec<T> = Vec::with_capacity(self.data.len() / size);
        for chunk in self.data.chunks_exact(size) {
            let mut tmp = [0u8; 8];
            tmp[..size].copy_from_slice(chunk);
            let v = T::try_view(&tmp[..size])
                .and_then(|s| s.first().copied())
                .ok_or_else(|| Error::bad_input("tensor bytes are not valid for this dtype"))?;
            out.push(v);
        }
        Ok(out)
    }

    /// Copy the elements into `out` (which must hold exactly [`Tensor::len`] of them).
    ///
    /// # Errors
    /// Wrong dtype or length.
    pub fn copy_to<T: Element>(&self, out: &mut [T]) -> Result<()> {
        self.check_dtype::<T>()?;
        if out.len() != self.len() {
            return Err(Error::bad_input(format!(
                "tensor has {} elements but the buffer holds {}",
                self.len(),
                out.len()
            )));
        }
        match T::try_view(&self.data) {
            Some(s) => out.copy_from_slice(s),
            None => out.copy_from_slice(&self.to_vec::<T>()?),
        }
        Ok(())
    }

    /// The elements of a `STRING` tensor.
    ///
    /// # Errors
    /// When the tensor is not `STRING`.
    pub fn strings(&self) -> Result<Vec<&[u8]>> {
        if self.dtype != DType::String {
            return Err(Error::bad_input(format!(
                "tensor has dtype {} but STRING was requested",
                self.dtype
            )));
        }
        let d = self.data.strip_suffix(&[0]).unwrap_or(&self.data);
        Ok(d.split(|&c| c == 0).collect())
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor({} {:?}, {} bytes)",
            self.dtype,
            self.shape,
            self.data.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, ShapeBuilder};

    #[test]
    fn dtype_names_parse_case_insensitively() {
        for d in DType::ALL {
            assert_eq!(DType::parse(d.name().as_bytes()), Some(d));
            assert_eq!(DType::parse(d.name().to_lowercase().as_bytes()), Some(d));
            assert_eq!(DType::from_id(d.id()), Some(d));
        }
        assert_eq!(DType::parse(b"FLOAT32"), None);
    }

    #[test]
    fn checked_len_rejects_overflow_zero_and_limits() {
        let l = Limits::default();
        assert_eq!(
            checked_len(DType::Float32, &[usize::MAX, 2], &l)
                .unwrap_err()
                .code(),
            crate::ErrorCode::LimitExceeded
        );
        assert_eq!(
            checked_len(DType::Float32, &[0], &l).unwrap_err().text(),
            "ERR invalid or negative value found in tensor shape"
        );
        assert_eq!(
            checked_len(DType::Int16, &[3, 4], &l).unwrap(),
            (12, Some(24))
        );
        let e = checked_len(DType::Int8, &[1; 17], &l).unwrap_err();
        assert_eq!(
            e.text(),
            "ERR tensor has 17 dims, which exceeds the limit of 16"
        );
    }

    #[test]
    fn arrays_round_trip_in_logical_order() {
        let a = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
        let t = Tensor::from_array(&a);
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.to_array::<f32>().unwrap(), a.clone().into_dyn());
        // A Fortran-ordered array gives the same logical tensor.
        let f = ndarray::Array2::from_shape_vec((2, 3).f(), vec![1.0f32, 4.0, 2.0, 5.0, 3.0, 6.0])
            .unwrap();
        assert_eq!(Tensor::from_array(&f), t);
        assert!(t.to_array::<f64>().is_err());
        let v = Tensor::from_vec(vec![2], vec![true, false]).unwrap();
        assert_eq!(v.data().as_ref(), &[1, 0]);
        assert_eq!(
            v.view::<bool>()
                .unwrap()
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            vec![true, false]
        );
    }

    #[test]
    fn new_validates_length_bool_and_strings() {
        // A peer's tensor is held to the limits; one made here is not.
        let dims17 = vec![1usize; 17];
        assert_eq!(
            Tensor::from_peer(
                DType::UInt8,
                &dims17,
                Bytes::from_static(&[7]),
                &Limits::default()
            )
            .unwrap_err()
            .text(),
            "ERR tensor has 17 dims, which exceeds the limit of 16"
        );
        assert_eq!(
            Tensor::new(DType::UInt8, &dims17, Bytes::from_static(&[7]))
                .unwrap()
                .shape()
                .len(),
            17
        );
        let e = Tensor::new(DType::Float32, vec![2], Bytes::from_static(&[0; 7])).unwrap_err();
        assert_eq!(
            e.text(),
            "ERR data length does not match tensor shape and type"
        );
        let e = Tensor::new(DType::Bool, vec![2], Bytes::from_static(&[0, 2])).unwrap_err();
        assert_eq!(e.text(), "ERR BOOL tensor elements must be 0 or 1");
        let s = Tensor::from_strings(vec![2], &["ab", ""]).unwrap();
        assert_eq!(s.data().as_ref(), b"ab\0\0");
        assert_eq!(s.strings().unwrap(), vec![&b"ab"[..], &b""[..]]);
        assert!(Tensor::new(DType::String, vec![2], Bytes::from_static(b"ab\0c")).is_err());
    }

    #[test]
    fn unaligned_bytes_still_convert() {
        let raw = Bytes::from(vec![0u8, 0, 0, 128, 63, 0, 0, 0, 64]);
        let t = Tensor::new(DType::Float32, vec![2], raw.slice(1..)).unwrap();
        assert_eq!(t.to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
    }
}
