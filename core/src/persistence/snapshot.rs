//! Snapshots: every key and value written to one file, and read back at start.
//!
//! Format (all integers little-endian): the magic `INSITUDB`, a `u32` version, then one
//! record per key — a `u8` kind, the key, the value — then the kind byte `0xFF` and a
//! CRC-32 of everything before it. Byte strings are a `u64` length and the bytes. A
//! tensor is its dtype id (`u8`), rank (`u32`), each dim (`u64`) and its bytes; a hash a
//! `u64` count of field/value pairs; a list a `u64` count of items; a model its backend,
//! device and tag (byte strings), batch size, min batch size and min batch timeout
//! (`u64` each) and its ONNX bytes. The file is written
//! to a temporary name, synced, and renamed over the old one, so a crash mid-save leaves
//! the previous snapshot intact.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use bytes::Bytes;

use crate::data::tensor::{DType, Tensor};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{Device, Model, ModelSpec};
use crate::store::Value;

const MAGIC: &[u8; 8] = b"INSITUDB";
const VERSION: u32 = 1;
const KIND_TENSOR: u8 = 1;
const KIND_STRING: u8 = 2;
const KIND_HASH: u8 = 3;
const KIND_LIST: u8 = 4;
const KIND_MODEL: u8 = 5;
const KIND_END: u8 = 0xFF;

struct Crc<W> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Crc<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
}

fn put_bytes(w: &mut Vec<u8>, b: &[u8]) {
    w.extend_from_slice(&(b.len() as u64).to_le_bytes());
    w.extend_from_slice(b);
}

/// Append the record of `key` and `value` (kind byte, key, value) to `out`, all but the
/// value's last byte string, whose length is written and whose bytes are returned: a
/// tensor's data, a string, a model's ONNX bytes are written from where they are, not
/// copied into `out`. Shared by snapshots and the append-only file.
pub(crate) fn encode_entry<'v>(out: &mut Vec<u8>, key: &[u8], value: &'v Value) -> &'v [u8] {
    let tail_of = |out: &mut Vec<u8>, tail: &'v [u8]| {
        out.extend_from_slice(&(tail.len() as u64).to_le_bytes());
        tail
    };
    match value {
        Value::Tensor(t) => {
            out.push(KIND_TENSOR);
            put_bytes(out, key);
            out.push(t.dtype().id());
            out.extend_from_slice(&(t.shape().len() as u32).to_le_bytes());
            for &d in t.shape() {
                out.extend_from_slice(&(d as u64).to_le_bytes());
            }
            tail_of(out, t.data())
        }
        Value::String(s) => {
            out.push(KIND_STRING);
            put_bytes(out, key);
            tail_of(out, s)
        }
        Value::Hash(h) => {
            out.push(KIND_HASH);
            put_bytes(out, key);
            out.extend_from_slice(&(h.len() as u64).to_le_bytes());
            for (f, v) in h {
                put_bytes(out, f);
                put_bytes(out, v);
            }
            &[]
        }
        Value::Model(m) => {
            out.push(KIND_MODEL);
            put_bytes(out, key);
            put_bytes(out, m.spec.backend.as_bytes());
            put_bytes(out, m.spec.device.to_string().as_bytes());
            put_bytes(out, &m.spec.tag);
            for n in [
                m.spec.batchsize as u64,
                m.spec.minbatchsize as u64,
                m.spec.minbatchtimeout,
            ] {
                out.extend_from_slice(&n.to_le_bytes());
            }
            tail_of(out, &m.blob)
        }
        Value::List(l) => {
            out.push(KIND_LIST);
            put_bytes(out, key);
            out.extend_from_slice(&(l.len() as u64).to_le_bytes());
            for i in l {
                put_bytes(out, i);
            }
            &[]
        }
    }
}

/// Write `entries` to `path` atomically.
///
/// # Errors
/// I/O errors, naming the path.
pub fn save(path: &Path, entries: &[(Bytes, Value)]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let ctx = |e: std::io::Error| Error::io(format!("cannot write snapshot {}", tmp.display()), &e);
    let file = File::create(&tmp).map_err(ctx)?;
    let mut w = Crc {
        inner: BufWriter::with_capacity(1 << 20, file),
        crc: crc32fast::Hasher::new(),
    };
    let result = (|| -> std::io::Result<()> {
        w.write_all(MAGIC)?;
        w.write_all(&VERSION.to_le_bytes())?;
        let mut head = Vec::with_capacity(256);
        for (k, v) in entries {
            head.clear();
            let tail = encode_entry(&mut head, k, v);
            w.write_all(&head)?;
            w.write_all(tail)?;
        }
        w.write_all(&[KIND_END])?;
        let crc = w.crc.clone().finalize();
        w.inner.write_all(&crc.to_le_bytes())?;
        let file = w.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(ctx(e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(format!("cannot rename snapshot to {}", path.display()), &e)
    })?;
    sync_dir(path);
    Ok(())
}

/// Make a rename or a new file in `path`'s directory durable (best effort).
pub(crate) fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// The most bytes one length field may claim before we call the file corrupt (guards the
/// allocation; a snapshot holds nothing larger than the largest tensor we accept).
const MAX_FIELD: u64 = 1 << 40;

pub(crate) struct Reader<R: Read> {
    inner: R,
}

impl<R: Read> Reader<R> {
    pub(crate) fn new(inner: R) -> Reader<R> {
        Reader { inner }
    }
    pub(crate) fn u8(&mut self) -> std::io::Result<u8> {
        let mut b = [0u8; 1];
        self.inner.read_exact(&mut b)?;
        Ok(b[0])
    }
    fn u32(&mut self) -> std::io::Result<u32> {
        let mut b = [0u8; 4];
        self.inner.read_exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> std::io::Result<u64> {
        let mut b = [0u8; 8];
        self.inner.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    pub(crate) fn bytes(&mut self) -> std::io::Result<Bytes> {
        let n = self.u64()?;
        if n > MAX_FIELD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("length field of {n} bytes"),
            ));
        }
        let mut v = Vec::new();
        (&mut self.inner).take(n).read_to_end(&mut v)?;
        if v.len() as u64 != n {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(Bytes::from(v))
    }
    pub(crate) fn count(&mut self) -> std::io::Result<usize> {
        let n = self.u64()?;
        if n > MAX_FIELD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("count of {n}"),
            ));
        }
        Ok(n as usize)
    }

    /// Read one entry's key and value after its kind byte `kind` (see [`encode_entry`]).
    pub(crate) fn read_entry(&mut self, kind: u8) -> std::result::Result<(Bytes, Value), String> {
        let ioe = |e: std::io::Error| e.to_string();
        let key = self.bytes().map_err(ioe)?;
        let value = match kind {
            KIND_TENSOR => {
                let id = self.u8().map_err(ioe)?;
                let dtype = DType::from_id(id).ok_or_else(|| format!("dtype id {id}"))?;
                let rank = self.u32().map_err(ioe)? as usize;
                if rank > 1024 {
                    return Err(format!("tensor rank {rank}"));
                }
                let mut shape = Vec::with_capacity(rank);
                for _ in 0..rank {
                    shape.push(
                        usize::try_from(self.u64().map_err(ioe)?).map_err(|_| "dim".to_string())?,
                    );
                }
                let data = self.bytes().map_err(ioe)?;
                Value::Tensor(
                    Tensor::new(dtype, shape, data).map_err(|e| format!("tensor {key:?}: {e}"))?,
                )
            }
            KIND_STRING => Value::String(self.bytes().map_err(ioe)?),
            KIND_HASH => {
                let n = self.count().map_err(ioe)?;
                let mut h = crate::store::HashFields::new();
                for _ in 0..n {
                    let f = self.bytes().map_err(ioe)?;
                    let v = self.bytes().map_err(ioe)?;
                    h.insert(f, v);
                }
                Value::Hash(h)
            }
            KIND_LIST => {
                let n = self.count().map_err(ioe)?;
                let mut l = VecDeque::new();
                for _ in 0..n {
                    l.push_back(self.bytes().map_err(ioe)?);
                }
                Value::List(l)
            }
            KIND_MODEL => {
                let backend = String::from_utf8_lossy(&self.bytes().map_err(ioe)?).into_owned();
                let device = Device::parse(&self.bytes().map_err(ioe)?)
                    .map_err(|_| format!("model {key:?}: bad device"))?;
                let tag = self.bytes().map_err(ioe)?;
                let batchsize = self.count().map_err(ioe)?;
                let minbatchsize = self.count().map_err(ioe)?;
                let minbatchtimeout = self.u64().map_err(ioe)?;
                let blob = self.bytes().map_err(ioe)?;
                let spec = ModelSpec {
                    backend,
                    device,
                    tag,
                    batchsize,
                    minbatchsize,
                    minbatchtimeout,
                };
                Value::Model(std::sync::Arc::new(Model::unloaded(spec, blob)))
            }
            k => return Err(format!("unknown record kind {k}")),
        };
        Ok((key, value))
    }
}

/// Read every entry of the snapshot at `path`.
///
/// # Errors
/// I/O errors and corruption (bad magic, version, CRC, or a value that does not decode),
/// naming the path.
pub fn load(path: &Path) -> Result<Vec<(Bytes, Value)>> {
    let corrupt = |what: String| {
        Error::err(
            ErrorCode::Io,
            format!("snapshot {} is corrupt: {what}", path.display()),
        )
    };
    let file = File::open(path)
        .map_err(|e| Error::io(format!("cannot read snapshot {}", path.display()), &e))?;
    let mut r = Reader::new(Crc {
        inner: BufReader::with_capacity(1 << 20, file),
        crc: crc32fast::Hasher::new(),
    });
    let io = |e: std::io::Error| corrupt(e.to_string());
    let mut magic = [0u8; 8];
    r.inner.read_exact(&mut magic).map_err(io)?;
    if &magic != MAGIC {
        return Err(corrupt("not an insitu snapshot (bad magic)".into()));
    }
    let version = r.u32().map_err(io)?;
    if version != VERSION {
        return Err(corrupt(format!("unsupported version {version}")));
    }
    let mut out = Vec::new();
    loop {
        let kind = r.u8().map_err(io)?;
        if kind == KIND_END {
            break;
        }
        out.push(r.read_entry(kind).map_err(corrupt)?);
    }
    let expected = r.inner.crc.clone().finalize();
    let mut b = [0u8; 4];
    r.inner.inner.read_exact(&mut b).map_err(io)?;
    if u32::from_le_bytes(b) != expected {
        return Err(corrupt("checksum mismatch".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption_detected() {
        let dir = std::env::temp_dir().join(format!("insitu-persist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db");
        let t = Tensor::from_vec(vec![2, 2], vec![1.5f64, -2.0, 3.25, 4.0]).unwrap();
        let mut h = crate::store::HashFields::new();
        h.insert(Bytes::from_static(b"f"), Bytes::from_static(b"\x00\xff"));
        let entries = vec![
            (Bytes::from_static(b"t"), Value::Tensor(t)),
            (
                Bytes::from_static(b"s"),
                Value::String(Bytes::from_static(b"v")),
            ),
            (Bytes::from_static(b"h"), Value::Hash(h)),
            (
                Bytes::from_static(b"l"),
                Value::List(VecDeque::from(vec![Bytes::from_static(b"a")])),
            ),
        ];
        save(&path, &entries).unwrap();
        assert_eq!(load(&path).unwrap(), entries);
        let mut raw = std::fs::read(&path).unwrap();
        let mid = raw.len() / 2;
        raw[mid] ^= 1;
        std::fs::write(&path, &raw).unwrap();
        let e = load(&path).unwrap_err();
        assert!(e.text().contains("is corrupt"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
