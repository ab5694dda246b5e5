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

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use bytes::Bytes;

use crate::config::Limits;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{Device, Model, ModelSpec};
use crate::store::Value;
use crate::tensor::{DType, Tensor};

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

fn put_bytes(w: &mut impl Write, b: &[u8]) -> std::io::Result<()> {
    w.write_all(&(b.len() as u64).to_le_bytes())?;
    w.write_all(b)
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
        for (k, v) in entries {
            match v {
                Value::Tensor(t) => {
                    w.write_all(&[KIND_TENSOR])?;
                    put_bytes(&mut w, k)?;
                    w.write_all(&[t.dtype().id()])?;
                    w.write_all(&(t.shape().len() as u32).to_le_bytes())?;
                    for &d in t.shape() {
                        w.write_all(&(d as u64).to_le_bytes())?;
                    }
                    put_bytes(&mut w, t.data())?;
                }
                Value::String(s) => {
                    w.write_all(&[KIND_STRING])?;
                    put_bytes(&mut w, k)?;
                    put_bytes(&mut w, s)?;
                }
                Value::Hash(h) => {
                    w.write_all(&[KIND_HASH])?;
                    put_bytes(&mut w, k)?;
                    w.write_all(&(h.len() as u64).to_le_bytes())?;
                    for (f, v) in h {
                        put_bytes(&mut w, f)?;
                        put_bytes(&mut w, v)?;
                    }
                }
                Value::Model(m) => {
                    w.write_all(&[KIND_MODEL])?;
                    put_bytes(&mut w, k)?;
                    put_bytes(&mut w, m.spec.backend.as_bytes())?;
                    put_bytes(&mut w, m.spec.device.to_string().as_bytes())?;
                    put_bytes(&mut w, &m.spec.tag)?;
                    for n in [
                        m.spec.batchsize as u64,
                        m.spec.minbatchsize as u64,
                        m.spec.minbatchtimeout,
                    ] {
                        w.write_all(&n.to_le_bytes())?;
                    }
                    put_bytes(&mut w, &m.blob)?;
                }
                Value::List(l) => {
                    w.write_all(&[KIND_LIST])?;
                    put_bytes(&mut w, k)?;
                    w.write_all(&(l.len() as u64).to_le_bytes())?;
                    for i in l {
                        put_bytes(&mut w, i)?;
                    }
                }
            }
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
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// The most bytes one length field may claim before we call the file corrupt (guards the
/// allocation; a snapshot holds nothing larger than the largest tensor we accept).
const MAX_FIELD: u64 = 1 << 40;

struct Reader<R: Read> {
    inner: Crc<R>,
}

impl<R: Read> Reader<R> {
    fn u8(&mut self) -> std::io::Result<u8> {
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
    fn bytes(&mut self) -> std::io::Result<Bytes> {
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
    fn count(&mut self) -> std::io::Result<usize> {
        let n = self.u64()?;
        if n > MAX_FIELD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("count of {n}"),
            ));
        }
        Ok(n as usize)
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
    let mut r = Reader {
        inner: Crc {
            inner: BufReader::with_capacity(1 << 20, file),
            crc: crc32fast::Hasher::new(),
        },
    };
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
    let unlimited = Limits {
        max_dims: usize::MAX,
        max_tensor_bytes: usize::MAX,
        ..Limits::default()
    };
    let mut out = Vec::new();
    loop {
        let kind = r.u8().map_err(io)?;
        if kind == KIND_END {
            break;
        }
        let key = r.bytes().map_err(io)?;
        let value = match kind {
            KIND_TENSOR => {
                let id = r.u8().map_err(io)?;
                let dtype = DType::from_id(id).ok_or_else(|| corrupt(format!("dtype id {id}")))?;
                let rank = r.u32().map_err(io)? as usize;
                if rank > 1024 {
                    return Err(corrupt(format!("tensor rank {rank}")));
                }
                let mut shape = Vec::with_capacity(rank);
                for _ in 0..rank {
                    shape.push(
                        usize::try_from(r.u64().map_err(io)?).map_err(|_| corrupt("dim".into()))?,
                    );
                }
                let data = r.bytes().map_err(io)?;
                Value::Tensor(
                    Tensor::new(dtype, shape, data, &unlimited)
                        .map_err(|e| corrupt(format!("tensor {:?}: {e}", key)))?,
                )
            }
            KIND_STRING => Value::String(r.bytes().map_err(io)?),
            KIND_HASH => {
                let n = r.count().map_err(io)?;
                let mut h = HashMap::new();
                for _ in 0..n {
                    let f = r.bytes().map_err(io)?;
                    let v = r.bytes().map_err(io)?;
                    h.insert(f, v);
                }
                Value::Hash(h)
            }
            KIND_LIST => {
                let n = r.count().map_err(io)?;
                let mut l = VecDeque::new();
                for _ in 0..n {
                    l.push_back(r.bytes().map_err(io)?);
                }
                Value::List(l)
            }
            KIND_MODEL => {
                let backend = String::from_utf8_lossy(&r.bytes().map_err(io)?).into_owned();
                let device = Device::parse(&r.bytes().map_err(io)?)
                    .map_err(|_| corrupt(format!("model {key:?}: bad device")))?;
                let tag = r.bytes().map_err(io)?;
                let batchsize = r.count().map_err(io)?;
                let minbatchsize = r.count().map_err(io)?;
                let minbatchtimeout = r.u64().map_err(io)?;
                let blob = r.bytes().map_err(io)?;
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
            k => return Err(corrupt(format!("unknown record kind {k}"))),
        };
        out.push((key, value));
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
        let mut h = HashMap::new();
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
