//! Tensors as KServe v2 carries them: datatype names, raw little-endian bytes (`BYTES`
//! elements each after a 4-byte little-endian length), gRPC's typed contents and HTTP's
//! JSON arrays, to and from insitu's [`Tensor`].

use bytes::{Bytes, BytesMut};
use half::{bf16, f16};
use serde_json::Value as Json;

use super::proto::InferTensorContents;
use super::status::{invalid, KsError, KsResult};
use crate::data::tensor::{DType, Tensor};

/// Every KServe datatype insitu tensors hold, with its dtype.
const DATATYPES: [(&str, DType); 14] = [
    ("BOOL", DType::Bool),
    ("UINT8", DType::UInt8),
    ("UINT16", DType::UInt16),
    ("UINT32", DType::UInt32),
    ("UINT64", DType::UInt64),
    ("INT8", DType::Int8),
    ("INT16", DType::Int16),
    ("INT32", DType::Int32),
    ("INT64", DType::Int64),
    ("FP16", DType::Float16),
    ("FP32", DType::Float32),
    ("FP64", DType::Float64),
    ("BYTES", DType::String),
    ("BF16", DType::BFloat16),
];

/// The KServe name of a dtype (`FP32`...).
pub fn datatype(d: DType) -> &'static str {
    DATATYPES
        .iter()
        .find(|(_, t)| *t == d)
        .map(|(n, _)| *n)
        .unwrap_or("BYTES")
}

/// The dtype a KServe datatype names.
///
/// # Errors
/// An unknown name.
pub fn dtype(name: &str, input: &str) -> KsResult<DType> {
    DATATYPES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| invalid(format!("invalid datatype '{name}' for input '{input}'")))
}

/// Triton's config name of a dtype (`TYPE_FP32`...), as `DataType`'s value.
pub fn config_type(d: DType) -> i32 {
    match d {
        DType::Bool => 1,
        DType::UInt8 => 2,
        DType::UInt16 => 3,
        DType::UInt32 => 4,
        DType::UInt64 => 5,
        DType::Int8 => 6,
        DType::Int16 => 7,
        DType::Int32 => 8,
        DType::Int64 => 9,
        DType::Float16 => 10,
        DType::Float32 => 11,
        DType::Float64 => 12,
        DType::String => 13,
        DType::BFloat16 => 14,
    }
}

/// The name of a config `DataType` value (`TYPE_FP32`), as Triton's JSON shows it.
pub fn config_type_name(v: i32) -> &'static str {
    const NAMES: [&str; 15] = [
        "TYPE_INVALID",
        "TYPE_BOOL",
        "TYPE_UINT8",
        "TYPE_UINT16",
        "TYPE_UINT32",
        "TYPE_UINT64",
        "TYPE_INT8",
        "TYPE_INT16",
        "TYPE_INT32",
        "TYPE_INT64",
        "TYPE_FP16",
        "TYPE_FP32",
        "TYPE_FP64",
        "TYPE_STRING",
        "TYPE_BF16",
    ];
    usize::try_from(v)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("TYPE_INVALID")
}

/// A tensor from its raw bytes as KServe sends them (`BYTES`: length-prefixed elements).
///
/// # Errors
/// A byte count that does not fit the shape (Triton's text), malformed `BYTES`.
pub fn from_raw(dtype: DType, shape: &[usize], raw: Bytes, input: &str) -> KsResult<Tensor> {
    if dtype == DType::String {
        let elements = split_bytes_elements(&raw, input)?;
        return Ok(Tensor::from_strings(shape.to_vec(), &elements)?);
    }
    let count = element_count(shape, input)?;
    let expected = count.saturating_mul(dtype.size().unwrap_or(1));
    if raw.len() != expected {
        return Err(invalid(format!(
            "input byte size mismatch for input '{input}': expected {expected}, got {}",
            raw.len()
        )));
    }
    Ok(Tensor::new(dtype, shape, raw)?)
}

/// The element count of `shape`, overflow-checked.
fn element_count(shape: &[usize], input: &str) -> KsResult<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| invalid(format!("shape of input '{input}' is too large")))
}

/// `BYTES` elements from their serialized form (each after a 4-byte little-endian length).
fn split_bytes_elements<'a>(mut raw: &'a [u8], input: &str) -> KsResult<Vec<&'a [u8]>> {
    let mut out = Vec::new();
    while !raw.is_empty() {
        let bad = || invalid(format!("malformed BYTES data for input '{input}'"));
        let len_bytes: [u8; 4] = raw
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        let len = u32::from_le_bytes(len_bytes) as usize;
        let element = raw.get(4..4 + len).ok_or_else(bad)?;
        out.push(element);
        raw = &raw[4 + len..];
    }
    Ok(out)
}

/// A tensor's raw bytes as KServe sends them: the stored bytes themselves (shared, not
/// copied), or for `BYTES` each element after its 4-byte length.
///
/// # Errors
/// None in practice (a stored `STRING` tensor is well formed).
pub fn to_raw(t: &Tensor) -> KsResult<Bytes> {
    if t.dtype() != DType::String {
        return Ok(t.data().clone());
    }
    let strings = t.strings()?;
    let mut out = BytesMut::with_capacity(t.data().len() + 4 * strings.len());
    for s in strings {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s);
    }
    Ok(out.freeze())
}

fn count_mismatch(input: &str, got: usize, want: usize) -> KsError {
    invalid(format!(
        "unexpected number of elements for input '{input}': expected {want}, got {got}"
    ))
}

fn narrow<S: Copy, T: TryFrom<S> + bytemuck::Pod>(
    values: &[S],
    input: &str,
    name: &str,
) -> KsResult<Vec<u8>> {
    let mut out = Vec::with_capacity(values.len() * std::mem::size_of::<T>());
    for &v in values {
        let t = T::try_from(v).map_err(|_| {
            invalid(format!(
                "a value of input '{input}' is out of range for {name}"
            ))
        })?;
        out.extend_from_slice(bytemuck::bytes_of(&t));
    }
    Ok(out)
}

/// A tensor from gRPC's typed contents (the field that matches its datatype).
///
/// # Errors
/// The element count does not fit the shape, a value out of the datatype's range, or a
/// datatype typed contents cannot carry (FP16, BF16: send raw_input_contents).
pub fn from_contents(
    dtype: DType,
    shape: &[usize],
    c: &InferTensorContents,
    input: &str,
) -> KsResult<Tensor> {
    let want = element_count(shape, input)?;
    let name = datatype(dtype);
    let check = |got: usize| {
        if got == want {
            Ok(())
        } else {
            Err(count_mismatch(input, got, want))
        }
    };
    let bytes: Vec<u8> = match dtype {
        DType::Bool => {
            check(c.bool_contents.len())?;
            c.bool_contents.iter().map(|&b| b as u8).collect()
        }
        DType::Int8 => {
            check(c.int_contents.len())?;
            narrow::<i32, i8>(&c.int_contents, input, name)?
        }
        DType::Int16 => {
            check(c.int_contents.len())?;
            narrow::<i32, i16>(&c.int_contents, input, name)?
        }
        DType::Int32 => {
            check(c.int_contents.len())?;
            bytemuck::cast_slice(&c.int_contents).to_vec()
        }
        DType::Int64 => {
            check(c.int64_contents.len())?;
            bytemuck::cast_slice(&c.int64_contents).to_vec()
        }
        DType::UInt8 => {
            check(c.uint_contents.len())?;
            narrow::<u32, u8>(&c.uint_contents, input, name)?
        }
        DType::UInt16 => {
            check(c.uint_contents.len())?;
            narrow::<u32, u16>(&c.uint_contents, input, name)?
        }
        DType::UInt32 => {
            check(c.uint_contents.len())?;
            bytemuck::cast_slice(&c.uint_contents).to_vec()
        }
        DType::UInt64 => {
            check(c.uint64_contents.len())?;
            bytemuck::cast_slice(&c.uint64_contents).to_vec()
        }
        DType::Float32 => {
            check(c.fp32_contents.len())?;
            bytemuck::cast_slice(&c.fp32_contents).to_vec()
        }
        DType::Float64 => {
            check(c.fp64_contents.len())?;
            bytemuck::cast_slice(&c.fp64_contents).to_vec()
        }
        DType::String => {
            check(c.bytes_contents.len())?;
            return Ok(Tensor::from_strings(shape.to_vec(), &c.bytes_contents)?);
        }
        DType::Float16 | DType::BFloat16 => {
            return Err(invalid(format!(
                "input '{input}': {name} has no typed contents field; send it in raw_input_contents"
            )))
        }
    };
    Ok(Tensor::new(dtype, shape, Bytes::from(bytes))?)
}

/// The elements of a JSON `data` array (nested arrays are flattened, row-major).
fn flatten<'a>(v: &'a Json, out: &mut Vec<&'a Json>) {
    match v {
        Json::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other),
    }
}

/// A tensor from HTTP's JSON `data` (a flat or nested array of numbers, booleans or
/// strings).
///
/// # Errors
/// The element count does not fit the shape, or an element is not of the datatype.
pub fn from_json(dtype: DType, shape: &[usize], data: &Json, input: &str) -> KsResult<Tensor> {
    let mut elements = Vec::new();
    flatten(data, &mut elements);
    let want = element_count(shape, input)?;
    if elements.len() != want {
        return Err(count_mismatch(input, elements.len(), want));
    }
    let name = datatype(dtype);
    let bad = || invalid(format!("a value of input '{input}' is not of type {name}"));
    if dtype == DType::String {
        let strings = elements
            .iter()
            .map(|e| e.as_str().map(str::as_bytes).ok_or_else(bad))
            .collect::<KsResult<Vec<_>>>()?;
        return Ok(Tensor::from_strings(shape.to_vec(), &strings)?);
    }
    let mut out = Vec::with_capacity(want * dtype.size().unwrap_or(1));
    for e in elements {
        macro_rules! int {
            ($t:ty) => {{
                let v = e
                    .as_i64()
                    .and_then(|v| <$t>::try_from(v).ok())
                    .or_else(|| e.as_u64().and_then(|v| <$t>::try_from(v).ok()))
                    .ok_or_else(bad)?;
                out.extend_from_slice(&v.to_le_bytes());
            }};
        }
        match dtype {
            DType::Bool => out.push(e.as_bool().ok_or_else(bad)? as u8),
            DType::Int8 => int!(i8),
            DType::Int16 => int!(i16),
            DType::Int32 => int!(i32),
            DType::Int64 => int!(i64),
            DType::UInt8 => int!(u8),
            DType::UInt16 => int!(u16),
            DType::UInt32 => int!(u32),
            DType::UInt64 => int!(u64),
            DType::Float32 => {
                out.extend_from_slice(&(e.as_f64().ok_or_else(bad)? as f32).to_le_bytes())
            }
            DType::Float64 => out.extend_from_slice(&e.as_f64().ok_or_else(bad)?.to_le_bytes()),
            DType::Float16 => {
                out.extend_from_slice(&f16::from_f64(e.as_f64().ok_or_else(bad)?).to_le_bytes())
            }
            DType::BFloat16 => {
                out.extend_from_slice(&bf16::from_f64(e.as_f64().ok_or_else(bad)?).to_le_bytes())
            }
            DType::String => return Err(bad()),
        }
    }
    Ok(Tensor::new(dtype, shape, Bytes::from(out))?)
}

/// A tensor's elements as a flat JSON array (HTTP's `data` when binary output is not
/// asked for). Floats that JSON cannot hold (NaN, infinities) become `null`.
///
/// # Errors
/// None in practice.
pub fn to_json(t: &Tensor) -> KsResult<Json> {
    let d = t.data();
    fn each<const N: usize>(d: &[u8], f: impl Fn([u8; N]) -> Json) -> Vec<Json> {
        d.chunks_exact(N)
            .map(|c| f(c.try_into().unwrap_or([0; N])))
            .collect()
    }
    let items = match t.dtype() {
        DType::Bool => d.iter().map(|&b| Json::Bool(b != 0)).collect(),
        DType::UInt8 => d.iter().map(|&b| Json::from(b)).collect(),
        DType::Int8 => d.iter().map(|&b| Json::from(b as i8)).collect(),
        DType::UInt16 => each(d, |b| Json::from(u16::from_le_bytes(b))),
        DType::Int16 => each(d, |b| Json::from(i16::from_le_bytes(b))),
        DType::UInt32 => each(d, |b| Json::from(u32::from_le_bytes(b))),
        DType::Int32 => each(d, |b| Json::from(i32::from_le_bytes(b))),
        DType::UInt64 => each(d, |b| Json::from(u64::from_le_bytes(b))),
        DType::Int64 => each(d, |b| Json::from(i64::from_le_bytes(b))),
        DType::Float32 => each(d, |b| Json::from(f32::from_le_bytes(b) as f64)),
        DType::Float64 => each(d, |b| Json::from(f64::from_le_bytes(b))),
        DType::Float16 => each(d, |b| Json::from(f16::from_le_bytes(b).to_f64())),
        DType::BFloat16 => each(d, |b| Json::from(bf16::from_le_bytes(b).to_f64())),
        DType::String => t
            .strings()?
            .into_iter()
            .map(|s| Json::from(String::from_utf8_lossy(s).into_owned()))
            .collect(),
    };
    Ok(Json::Array(items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_elements_round_trip_through_strings() {
        let t = Tensor::from_strings(vec![2], &[b"ab".as_slice(), b"".as_slice()]).unwrap();
        let raw = to_raw(&t).unwrap();
        assert_eq!(&raw[..], &[2, 0, 0, 0, b'a', b'b', 0, 0, 0, 0]);
        let back = from_raw(DType::String, &[2], raw, "x").unwrap();
        assert_eq!(back, t);
        let e = from_raw(
            DType::String,
            &[1],
            Bytes::from_static(&[9, 0, 0, 0, b'a']),
            "x",
        )
        .unwrap_err();
        assert_eq!(e.message, "malformed BYTES data for input 'x'");
    }

    #[test]
    fn raw_size_and_typed_contents_are_checked() {
        let e = from_raw(DType::Float32, &[2, 2], Bytes::from(vec![0u8; 12]), "in").unwrap_err();
        assert_eq!(
            e.message,
            "input byte size mismatch for input 'in': expected 16, got 12"
        );
        let c = InferTensorContents {
            int_contents: vec![1, -2, 300],
            ..Default::default()
        };
        let e = from_contents(DType::Int8, &[3], &c, "in").unwrap_err();
        assert_eq!(e.message, "a value of input 'in' is out of range for INT8");
        let t = from_contents(DType::Int16, &[3], &c, "in").unwrap();
        assert_eq!(t.to_vec::<i16>().unwrap(), vec![1, -2, 300]);
        let e = from_contents(DType::Int32, &[2], &c, "in").unwrap_err();
        assert_eq!(
            e.message,
            "unexpected number of elements for input 'in': expected 2, got 3"
        );
    }

    #[test]
    fn json_data_nested_or_flat() {
        let j: Json = serde_json::from_str("[[1.5, 2], [3, -4]]").unwrap();
        let t = from_json(DType::Float32, &[2, 2], &j, "in").unwrap();
        assert_eq!(t.to_vec::<f32>().unwrap(), vec![1.5, 2.0, 3.0, -4.0]);
        assert_eq!(
            to_json(&t).unwrap(),
            serde_json::json!([1.5, 2.0, 3.0, -4.0])
        );
        let e = from_json(DType::UInt8, &[1], &serde_json::json!([256]), "in").unwrap_err();
        assert_eq!(e.message, "a value of input 'in' is not of type UINT8");
        let b = from_json(DType::Bool, &[2], &serde_json::json!([true, false]), "in").unwrap();
        assert_eq!(to_json(&b).unwrap(), serde_json::json!([true, false]));
    }
}
