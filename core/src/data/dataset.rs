//! Datasets: named groups of tensors plus metadata, stored in SmartRedis' layout so a
//! dataset written by insitu is read by SmartRedis and the reverse.
//!
//! A dataset `ds` (with optional ensemble prefix `p`) lives under the hash tag `p.{ds}`:
//! its metadata hash is `p.{ds}.meta`, each tensor `p.{ds}.<name>`. Metadata fields are
//! little-endian binary: one type byte (DOUBLE=1 FLOAT=2 INT32=3 INT64=4 UINT32=5 UINT64=6
//! STRING=7) then the raw values for scalars, or for strings an 8-byte length and the
//! bytes of each. The tensor names are the string field `.tensor_names`; the field
//! `.COMPLETE` (value `1`) marks a dataset whose writes have all been applied.

use bytes::Bytes;

use crate::data::tensor::Tensor;
use crate::error::{Error, ErrorCode, Result};

/// The metadata field that lists the tensors.
pub const TENSOR_NAMES_FIELD: &str = ".tensor_names";
/// The metadata field that acknowledges a complete dataset.
pub const ACK_FIELD: &str = ".COMPLETE";

/// The values of one metadata field.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// DOUBLE scalars.
    F64(Vec<f64>),
    /// FLOAT scalars.
    F32(Vec<f32>),
    /// INT32 scalars.
    I32(Vec<i32>),
    /// INT64 scalars.
    I64(Vec<i64>),
    /// UINT32 scalars.
    U32(Vec<u32>),
    /// UINT64 scalars.
    U64(Vec<u64>),
    /// Strings (arbitrary bytes).
    Strings(Vec<Bytes>),
}

/// A scalar type that can be stored as dataset metadata.
pub trait MetaScalar: Copy + Sized {
    /// Wrap values in the matching [`MetaValue`].
    fn wrap(v: Vec<Self>) -> MetaValue;
    /// Borrow the values when `m` holds this type.
    fn unwrap(m: &MetaValue) -> Option<&[Self]>;
}

macro_rules! meta_scalar {
    ($($t:ty => $v:ident),*) => {$(
        impl MetaScalar for $t {
            fn wrap(v: Vec<Self>) -> MetaValue { MetaValue::$v(v) }
            fn unwrap(m: &MetaValue) -> Option<&[Self]> {
                match m { MetaValue::$v(v) => Some(v), _ => None }
            }
        }
    )*};
}
meta_scalar!(f64 => F64, f32 => F32, i32 => I32, i64 => I64, u32 => U32, u64 => U64);

impl MetaValue {
    /// The number of values (scalars or strings) in the field.
    pub fn len(&self) -> usize {
        match self {
            MetaValue::F64(v) => v.len(),
            MetaValue::F32(v) => v.len(),
            MetaValue::I32(v) => v.len(),
            MetaValue::I64(v) => v.len(),
            MetaValue::U32(v) => v.len(),
            MetaValue::U64(v) => v.len(),
            MetaValue::Strings(v) => v.len(),
        }
    }

    /// Whether the field holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The SmartRedis type id.
    pub fn type_id(&self) -> u8 {
        match self {
            MetaValue::F64(_) => 1,
            MetaValue::F32(_) => 2,
            MetaValue::I32(_) => 3,
            MetaValue::I64(_) => 4,
            MetaValue::U32(_) => 5,
            MetaValue::U64(_) => 6,
            MetaValue::Strings(_) => 7,
        }
    }

    /// Encode as SmartRedis does.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.type_id()];
        match self {
            MetaValue::F64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
            MetaValue::F32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
            MetaValue::I32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
            MetaValue::I64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
            MetaValue::U32(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
            MetaValue::U64(v) => v.iter().for_each(|x| out.extend(x.to_le_bytes())),
            MetaValue::Strings(v) => {
                for s in v {
                    out.extend((s.len() as u64).to_le_bytes());
                    out.extend_from_slice(s);
                }
            }
        }
        out
    }

    /// Decode a field value.
    ///
    /// # Errors
    /// An unknown type id, or a length that does not fit the type.
    pub fn decode(b: &[u8]) -> Result<MetaValue> {
        let bad = |why: &str| {
            Error::err(
                ErrorCode::BadInput,
                format!("malformed dataset metadata field: {why}"),
            )
        };
        let (&id, body) = b.split_first().ok_or_else(|| bad("empty"))?;
        fn scalars<const N: usize, T>(
            body: &[u8],
            f: fn([u8; N]) -> T,
        ) -> std::result::Result<Vec<T>, ()> {
            if body.len() % N != 0 {
                return Err(());
            }
            Ok(body
                .chunks_exact(N)
                .map(|c| {
                    let mut a = [0u8; N];
                    a.copy_from_slice(c);
                    f(a)
                })
                .collect())
        }
        let len_err = |_| bad("length is not a multiple of the value size");
        Ok(match id {
            1 => MetaValue::F64(scalars(body, f64::from_le_bytes).map_err(len_err)?),
            2 => MetaValue::F32(scalars(body, f32::from_le_bytes).map_err(len_err)?),
            3 => MetaValue::I32(scalars(body, i32::from_le_bytes).map_err(len_err)?),
            4 => MetaValue::I64(scalars(body, i64::from_le_bytes).map_err(len_err)?),
            5 => MetaValue::U32(scalars(body, u32::from_le_bytes).map_err(len_err)?),
            6 => MetaValue::U64(scalars(body, u64::from_le_bytes).map_err(len_err)?),
            7 => {
                let mut out = Vec::new();
                let mut rest = body;
                while !rest.is_empty() {
                    if rest.len() < 8 {
                        return Err(bad("truncated string length"));
                    }
                    let (len, tail) = rest.split_at(8);
                    let mut a = [0u8; 8];
                    a.copy_from_slice(len);
                    let n = usize::try_from(u64::from_le_bytes(a))
                        .ok()
                        .filter(|&n| n <= tail.len())
                        .ok_or_else(|| bad("string longer than the field"))?;
                    out.push(Bytes::copy_from_slice(&tail[..n]));
                    rest = &tail[n..];
                }
                MetaValue::Strings(out)
            }
            other => return Err(bad(&format!("unknown type id {other}"))),
        })
    }
}

/// A dataset: a name, tensors in insertion order, and metadata fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dataset {
    name: String,
    tensors: Vec<(String, Tensor)>,
    meta: Vec<(String, MetaValue)>,
}

/// SmartRedis' error for a dataset that is not there.
pub fn dataset_missing(name: &str) -> Error {
    Error::err(
        ErrorCode::NotFound,
        format!("The requested DataSet, \"{name}\", does not exist."),
    )
}

impl Dataset {
    /// An empty dataset.
    pub fn new(name: impl Into<String>) -> Dataset {
        Dataset {
            name: name.into(),
            ..Default::default()
        }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Rename (used when copying).
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// Add (or replace) a tensor.
    pub fn add_tensor(&mut self, name: impl Into<String>, tensor: Tensor) {
        let name = name.into();
        match self.tensors.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = tensor,
            None => self.tensors.push((name, tensor)),
        }
    }

    /// A tensor by name.
    ///
    /// # Errors
    /// `NotFound` when the dataset has no such tensor.
    pub fn get_tensor(&self, name: &str) -> Result<&Tensor> {
        self.tensors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| {
                Error::err(
                    ErrorCode::NotFound,
                    format!("dataset '{}' has no tensor '{name}'", self.name),
                )
            })
    }

    /// Tensor names in insertion order.
    pub fn tensor_names(&self) -> Vec<&str> {
        self.tensors.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The tensors in insertion order.
    pub fn tensors(&self) -> &[(String, Tensor)] {
        &self.tensors
    }

    fn field_mut(&mut self, name: &str, empty: MetaValue) -> &mut MetaValue {
        let i = match self.meta.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                self.meta.push((name.to_string(), empty));
                self.meta.len() - 1
            }
        };
        &mut self.meta[i].1
    }

    fn check_field_name(name: &str) -> Result<()> {
        if name.is_empty() || name.starts_with('.') {
            return Err(Error::bad_input(format!(
                "invalid metadata field name '{name}': names must be non-empty and not start with '.'"
            )));
        }
        Ok(())
    }

    /// Append a scalar to a metadata field (created on first use).
    ///
    /// # Errors
    /// When the field already holds another type, or the name is reserved.
    pub fn add_meta_scalar<T: MetaScalar>(&mut self, name: &str, value: T) -> Result<()> {
        Dataset::check_field_name(name)?;
        let f = self.field_mut(name, T::wrap(Vec::new()));
        if T::unwrap(f).is_none() {
            return Err(Error::bad_input(format!(
                "metadata field '{name}' holds another type"
            )));
        }
        let mut v = T::unwrap(f).map(|s| s.to_vec()).unwrap_or_default();
        v.push(value);
        *f = T::wrap(v);
        Ok(())
    }

    /// Append a string to a metadata field (created on first use).
    ///
    /// # Errors
    /// When the field already holds scalars, or the name is reserved.
    pub fn add_meta_string(&mut self, name: &str, value: impl AsRef<[u8]>) -> Result<()> {
        Dataset::check_field_name(name)?;
        match self.field_mut(name, MetaValue::Strings(Vec::new())) {
            MetaValue::Strings(v) => {
                v.push(Bytes::copy_from_slice(value.as_ref()));
                Ok(())
            }
            _ => Err(Error::bad_input(format!(
                "metadata field '{name}' holds another type"
            ))),
        }
    }

    /// A metadata field.
    ///
    /// # Errors
    /// `NotFound` when absent.
    pub fn meta(&self, name: &str) -> Result<&MetaValue> {
        self.meta
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| {
                Error::err(
                    ErrorCode::NotFound,
                    format!("dataset '{}' has no metadata field '{name}'", self.name),
                )
            })
    }

    /// The scalars of a field.
    ///
    /// # Errors
    /// `NotFound`, or a field of another type.
    pub fn get_meta_scalars<T: MetaScalar>(&self, name: &str) -> Result<&[T]> {
        T::unwrap(self.meta(name)?)
            .ok_or_else(|| Error::bad_input(format!("metadata field '{name}' holds another type")))
    }

    /// The strings of a field.
    ///
    /// # Errors
    /// `NotFound`, or a field of scalars.
    pub fn get_meta_strings(&self, name: &str) -> Result<&[Bytes]> {
        match self.meta(name)? {
            MetaValue::Strings(v) => Ok(v),
            _ => Err(Error::bad_input(format!(
                "metadata field '{name}' holds another type"
            ))),
        }
    }

    /// Names of the user metadata fields.
    pub fn meta_field_names(&self) -> Vec<&str> {
        self.meta.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The metadata hash to store ([`Dataset::encode_meta`]), refusing a dataset with
    /// nothing in it (what every way of storing one checks first).
    ///
    /// # Errors
    /// `BadInput` for a dataset without tensors or metadata.
    pub fn meta_to_store(&self) -> Result<Vec<(Bytes, Bytes)>> {
        let meta = self.encode_meta();
        if meta.is_empty() {
            return Err(Error::bad_input(format!(
                "dataset '{}' has no tensors and no metadata: nothing to store",
                self.name
            )));
        }
        Ok(meta)
    }

    /// The metadata hash as field/value pairs, `.tensor_names` included, ready for
    /// `HMSET`.
    pub fn encode_meta(&self) -> Vec<(Bytes, Bytes)> {
        let mut out: Vec<(Bytes, Bytes)> = self
            .meta
            .iter()
            .map(|(n, v)| (Bytes::from(n.clone()), Bytes::from(v.encode())))
            .collect();
        if !self.tensors.is_empty() {
            let names = MetaValue::Strings(
                self.tensors
                    .iter()
                    .map(|(n, _)| Bytes::from(n.clone()))
                    .collect(),
            );
            out.push((
                Bytes::from_static(TENSOR_NAMES_FIELD.as_bytes()),
                Bytes::from(names.encode()),
            ));
        }
        out
    }

    /// Rebuild metadata from a hash (as `HGETALL` returns it); returns the tensor names
    /// to fetch. The `.COMPLETE` field is skipped.
    ///
    /// # Errors
    /// A malformed field.
    pub fn decode_meta(&mut self, pairs: &[(Bytes, Bytes)]) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for (f, v) in pairs {
            let field = String::from_utf8_lossy(f).into_owned();
            if field == ACK_FIELD {
                continue;
            }
            let value = MetaValue::decode(v)?;
            if field == TENSOR_NAMES_FIELD {
                if let MetaValue::Strings(s) = value {
                    names = s
                        .iter()
                        .map(|n| String::from_utf8_lossy(n).into_owned())
                        .collect();
                }
                continue;
            }
            self.meta.push((field, value));
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_matches_smartredis() {
        assert_eq!(
            MetaValue::I64(vec![7]).encode(),
            b"\x04\x07\x00\x00\x00\x00\x00\x00\x00"
        );
        assert_eq!(
            MetaValue::Strings(vec![Bytes::from_static(b"ab")]).encode(),
            b"\x07\x02\x00\x00\x00\x00\x00\x00\x00ab"
        );
        for v in [
            MetaValue::F64(vec![1.5, -2.0]),
            MetaValue::F32(vec![3.5]),
            MetaValue::I32(vec![-1, 2]),
            MetaValue::U32(vec![u32::MAX]),
            MetaValue::U64(vec![u64::MAX, 0]),
            MetaValue::Strings(vec![Bytes::from_static(b""), Bytes::from_static(b"xyz")]),
        ] {
            assert_eq!(MetaValue::decode(&v.encode()).unwrap(), v);
        }
        assert!(MetaValue::decode(b"\x04\x01\x02").is_err());
        assert!(MetaValue::decode(b"\x07\xff\x00\x00\x00\x00\x00\x00\x00ab").is_err());
        assert!(MetaValue::decode(b"\x09").is_err());
        assert!(MetaValue::decode(b"").is_err());
    }

    #[test]
    fn metadata_accumulates_and_types_are_kept() {
        let mut d = Dataset::new("ds");
        d.add_meta_scalar("step", 1i64).unwrap();
        d.add_meta_scalar("step", 2i64).unwrap();
        d.add_meta_string("who", "sim").unwrap();
        assert!(d.add_meta_scalar("step", 1.0f64).is_err());
        assert!(d.add_meta_scalar(".tensor_names", 1i64).is_err());
        assert_eq!(d.get_meta_scalars::<i64>("step").unwrap(), &[1, 2]);
        d.add_tensor("u", Tensor::from_vec(vec![1], vec![1u8]).unwrap());
        let enc = d.encode_meta();
        let mut back = Dataset::new("ds");
        let names = back.decode_meta(&enc).unwrap();
        assert_eq!(names, vec!["u"]);
        assert_eq!(
            back.get_meta_strings("who").unwrap(),
            &[Bytes::from_static(b"sim")]
        );
        assert_eq!(back.meta_field_names(), vec!["step", "who"]);
    }
}
