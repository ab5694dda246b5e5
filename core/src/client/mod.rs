//! The native Rust client: tensors, datasets, aggregation lists and ensemble prefixes over
//! TCP or a Unix socket, speaking the same RedisAI protocol as SmartRedis, so it works
//! against `insitu serve` and interoperates with SmartRedis programs key for key.
//!
//! Built on the `redis` crate's connection (RESP framing, pipelining); the command
//! vocabulary and key layout are SmartRedis'.

mod address;
mod keys;

use std::thread::sleep;
use std::time::Duration;

use bytes::Bytes;

pub use address::Address;
pub use keys::KeyPrefixes;

use crate::dataset::{Dataset, ACK_FIELD};
use crate::error::{Error, ErrorCode, Result};
use crate::tensor::{DType, Element, Tensor};

/// A connection to an insitu (or Redis + RedisAI) server.
pub struct Client {
    con: redis::Connection,
    address: Address,
    keys: KeyPrefixes,
    /// Input and output names per model key, for `infer`.
    model_io: std::collections::HashMap<String, (Vec<String>, Vec<String>)>,
}

/// How to store a model ([`Client::set_model`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelOptions {
    /// `ONNX` (the only backend insitu runs).
    pub backend: String,
    /// `CPU`, `GPU`, `CPU:n`, `GPU:n`.
    pub device: String,
    /// Free-form tag.
    pub tag: String,
    /// Dynamic batching: most rows per run (0: off).
    pub batch_size: usize,
    /// Dynamic batching: wait for this many rows.
    pub min_batch_size: usize,
    /// Dynamic batching: wait at most this long, ms.
    pub min_batch_timeout_ms: u64,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            backend: "ONNX".into(),
            device: "CPU".into(),
            tag: String::new(),
            batch_size: 0,
            min_batch_size: 0,
            min_batch_timeout_ms: 0,
        }
    }
}

/// A model's run statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelInfo {
    /// Microseconds in ONNX Runtime.
    pub duration_us: u64,
    /// Rows processed.
    pub samples: u64,
    /// Requests.
    pub calls: u64,
    /// Failed requests.
    pub errors: u64,
    /// ONNX Runtime runs (fewer than calls when batched).
    pub runs: u64,
}

fn conv(e: redis::RedisError) -> Error {
    if let Some(code) = e.code() {
        let detail = e.detail().unwrap_or("");
        return Error::from_server_text(if detail.is_empty() {
            code.to_string()
        } else {
            format!("{code} {detail}")
        });
    }
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        return Error::err(ErrorCode::Io, e.to_string());
    }
    if e.is_timeout() {
        return Error::err(ErrorCode::Timeout, e.to_string());
    }
    Error::err(ErrorCode::Protocol, e.to_string())
}

fn unexpected(what: &str, v: &redis::Value) -> Error {
    Error::err(
        ErrorCode::Protocol,
        format!("unexpected reply to {what}: {v:?}"),
    )
}

fn bulk(v: redis::Value, what: &str) -> Result<Vec<u8>> {
    match v {
        redis::Value::BulkString(b) => Ok(b),
        redis::Value::SimpleString(s) => Ok(s.into_bytes()),
        other => Err(unexpected(what, &other)),
    }
}

fn int(v: &redis::Value, what: &str) -> Result<i64> {
    match v {
        redis::Value::Int(i) => Ok(*i),
        other => Err(unexpected(what, other)),
    }
}

/// Decode a `AI.TENSORGET key META BLOB` reply.
fn decode_tensor(v: redis::Value) -> Result<Tensor> {
    let redis::Value::Array(items) = v else {
        return Err(unexpected("AI.TENSORGET", &v));
    };
    let what = "AI.TENSORGET";
    let mut it = items.into_iter();
    let mut next = || {
        it.next()
            .ok_or_else(|| Error::err(ErrorCode::Protocol, "short AI.TENSORGET reply"))
    };
    let _ = next()?;
    let dtype_name = bulk(next()?, what)?;
    let dtype = DType::parse(&dtype_name).ok_or_else(|| {
        Error::err(
            ErrorCode::Protocol,
            format!("unknown dtype {:?}", String::from_utf8_lossy(&dtype_name)),
        )
    })?;
    let _ = next()?;
    let shape = match next()? {
        redis::Value::Array(dims) => dims
            .iter()
            .map(|d| {
                int(d, what).and_then(|d| {
                    usize::try_from(d).map_err(|_| Error::err(ErrorCode::Protocol, "negative dim"))
                })
            })
            .collect::<Result<Vec<usize>>>()?,
        other => return Err(unexpected(what, &other)),
    };
    let _ = next()?;
    let data = bulk(next()?, what)?;
    let limits = crate::config::Limits {
        max_dims: usize::MAX,
        max_tensor_bytes: usize::MAX,
        ..Default::default()
    };
    Tensor::new(dtype, shape, Bytes::from(data), &limits)
}

fn decode_pairs(v: redis::Value) -> Result<Vec<(Bytes, Bytes)>> {
    let redis::Value::Array(items) = v else {
        return Err(unexpected("HGETALL", &v));
    };
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((
            Bytes::from(bulk(k, "HGETALL")?),
            Bytes::from(bulk(v, "HGETALL")?),
        ));
    }
    Ok(out)
}

impl Client {
    /// Connect to `address` (`host:port`, `tcp://host:port`, `unix:///path`), with ensemble
    /// prefixes from `SSKEYIN` / `SSKEYOUT`.
    ///
    /// # Errors
    /// An invalid address, or the server cannot be reached.
    pub fn connect(address: &str) -> Result<Client> {
        Client::connect_to(Address::parse(address)?, KeyPrefixes::from_env()?)
    }

    /// Connect to the address in `SSDB` (or `INSITU_ADDRESS`).
    ///
    /// # Errors
    /// No address set, or the server cannot be reached.
    pub fn from_env() -> Result<Client> {
        Client::connect_to(Address::from_env()?, KeyPrefixes::from_env()?)
    }

    /// Connect to a parsed address with explicit prefixes.
    ///
    /// # Errors
    /// The server cannot be reached or does not answer `PING`.
    pub fn connect_to(address: Address, keys: KeyPrefixes) -> Result<Client> {
        let ctx = |e: redis::RedisError| {
            Error::err(
                ErrorCode::Io,
                format!("cannot connect to {address}: {}", conv(e).message()),
            )
        };
        let client = redis::Client::open(address.redis_url()).map_err(ctx)?;
        let mut con = client.get_connection().map_err(ctx)?;
        redis::cmd("PING")
            .query::<redis::Value>(&mut con)
            .map_err(ctx)?;
        Ok(Client {
            con,
            address,
            keys,
            model_io: Default::default(),
        })
    }

    /// The address this client is connected to.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Authenticate (`AUTH password`).
    ///
    /// # Errors
    /// A wrong password.
    pub fn auth(&mut self, password: &str) -> Result<()> {
        self.query(redis::cmd("AUTH").arg(password)).map(|_| ())
    }

    fn query(&mut self, cmd: &redis::Cmd) -> Result<redis::Value> {
        cmd.query::<redis::Value>(&mut self.con).map_err(conv)
    }

    fn pipeline(&mut self, p: &redis::Pipeline) -> Result<Vec<redis::Value>> {
        p.query::<Vec<redis::Value>>(&mut self.con).map_err(conv)
    }

    /// Send any command and return the raw reply (for admin commands and extensions).
    ///
    /// # Errors
    /// The server's error reply.
    pub fn command<A: redis::ToRedisArgs>(&mut self, args: &[A]) -> Result<redis::Value> {
        let mut c = redis::Cmd::new();
        for a in args {
            c.arg(a);
        }
        self.query(&c)
    }

    /// The key prefixes in use.
    pub fn prefixes(&mut self) -> &mut KeyPrefixes {
        &mut self.keys
    }

    /// Read from another ensemble member's keys (one of `SSKEYIN`).
    ///
    /// # Errors
    /// When `source` is not among the `SSKEYIN` prefixes.
    pub fn set_data_source(&mut self, source: &str) -> Result<()> {
        self.keys.set_data_source(source)
    }

    // ----- tensors -----

    fn tensorset_cmd(key: &str, t: &Tensor) -> redis::Cmd {
        let mut c = redis::cmd("AI.TENSORSET");
        c.arg(key).arg(t.dtype().name());
        for d in t.shape() {
            c.arg(*d);
        }
        c.arg("BLOB").arg(t.data().as_ref());
        c
    }

    /// Store a tensor under `name` (prefixed with `SSKEYOUT` when set).
    ///
    /// # Errors
    /// The server's error (limits, memory).
    pub fn put_tensor(&mut self, name: &str, tensor: &Tensor) -> Result<()> {
        let key = self.keys.tensor_key(name, false);
        self.query(&Client::tensorset_cmd(&key, tensor)).map(|_| ())
    }

    fn get_tensor_key(&mut self, key: &str) -> Result<Tensor> {
        decode_tensor(self.query(redis::cmd("AI.TENSORGET").arg(key).arg("META").arg("BLOB"))?)
    }

    /// Fetch a tensor.
    ///
    /// # Errors
    /// `NotFound` (`ERR tensor key is empty or in a different shard`), `WrongType`.
    pub fn get_tensor(&mut self, name: &str) -> Result<Tensor> {
        let key = self.keys.tensor_key(name, true);
        self.get_tensor_key(&key)
    }

    /// Fetch a tensor into a caller's buffer, which must have the tensor's dtype and
    /// element count. Returns the tensor's shape.
    ///
    /// # Errors
    /// Missing tensor, or a buffer of another dtype or length.
    pub fn unpack_tensor<T: Element>(&mut self, name: &str, out: &mut [T]) -> Result<Vec<usize>> {
        let t = self.get_tensor(name)?;
        if t.dtype() != T::DTYPE {
            return Err(Error::bad_input(format!(
                "tensor '{name}' has dtype {} but the buffer holds {}",
                t.dtype(),
                T::DTYPE
            )));
        }
        if t.len() != out.len() {
            return Err(Error::bad_input(format!(
                "tensor '{name}' has {} elements but the buffer holds {}",
                t.len(),
                out.len()
            )));
        }
        out.copy_from_slice(&t.to_vec::<T>()?);
        Ok(t.shape().to_vec())
    }

    /// Delete a tensor.
    ///
    /// # Errors
    /// `NotFound` when it does not exist.
    pub fn delete_tensor(&mut self, name: &str) -> Result<()> {
        let key = self.keys.tensor_key(name, true);
        self.delete_key(&key)
    }

    fn delete_key(&mut self, key: &str) -> Result<()> {
        let n = int(&self.query(redis::cmd("DEL").arg(key))?, "DEL")?;
        if n == 0 {
            return Err(Error::err(
                ErrorCode::NotFound,
                format!("key '{key}' does not exist"),
            ));
        }
        Ok(())
    }

    /// Whether a tensor exists.
    ///
    /// # Errors
    /// Connection errors.
    pub fn tensor_exists(&mut self, name: &str) -> Result<bool> {
        let key = self.keys.tensor_key(name, true);
        self.key_exists(&key)
    }

    /// Whether a key exists (no prefix is applied).
    ///
    /// # Errors
    /// Connection errors.
    pub fn key_exists(&mut self, key: &str) -> Result<bool> {
        Ok(int(&self.query(redis::cmd("EXISTS").arg(key))?, "EXISTS")? > 0)
    }

    fn poll(
        &mut self,
        interval_ms: u64,
        tries: u32,
        mut f: impl FnMut(&mut Client) -> Result<bool>,
    ) -> Result<bool> {
        for i in 0..tries {
            if f(self)? {
                return Ok(true);
            }
            if i + 1 < tries {
                sleep(Duration::from_millis(interval_ms));
            }
        }
        Ok(false)
    }

    /// Check for a tensor up to `tries` times, `interval_ms` apart.
    ///
    /// # Errors
    /// Connection errors.
    pub fn poll_tensor(&mut self, name: &str, interval_ms: u64, tries: u32) -> Result<bool> {
        self.poll(interval_ms, tries, |c| c.tensor_exists(name))
    }

    /// Check for a key (unprefixed) up to `tries` times, `interval_ms` apart.
    ///
    /// # Errors
    /// Connection errors.
    pub fn poll_key(&mut self, key: &str, interval_ms: u64, tries: u32) -> Result<bool> {
        self.poll(interval_ms, tries, |c| c.key_exists(key))
    }

    /// Copy a tensor (read with the get prefix, written with the put prefix).
    ///
    /// # Errors
    /// `NotFound` for a missing source.
    pub fn copy_tensor(&mut self, src: &str, dst: &str) -> Result<()> {
        let t = self.get_tensor(src)?;
        self.put_tensor(dst, &t)
    }

    /// Rename a tensor.
    ///
    /// # Errors
    /// `NotFound` (`ERR no such key`) for a missing source.
    pub fn rename_tensor(&mut self, old: &str, new: &str) -> Result<()> {
        let from = self.keys.tensor_key(old, true);
        let to = self.keys.tensor_key(new, false);
        self.query(redis::cmd("RENAME").arg(from).arg(to))
            .map(|_| ())
    }

    // ----- datasets -----

    /// Store a dataset in SmartRedis' layout, in one pipeline.
    ///
    /// # Errors
    /// An empty dataset, or the server's error.
    pub fn put_dataset(&mut self, ds: &Dataset) -> Result<()> {
        let base = self.keys.dataset_key(ds.name(), false);
        self.put_dataset_at(&base, ds)
    }

    fn put_dataset_at(&mut self, base: &str, ds: &Dataset) -> Result<()> {
        let meta = ds.encode_meta();
        if meta.is_empty() {
            return Err(Error::bad_input(format!(
                "dataset '{}' has no tensors and no metadata: nothing to store",
                ds.name()
            )));
        }
        let meta_key = format!("{base}.meta");
        let mut p = redis::pipe();
        p.cmd("DEL").arg(&meta_key);
        let hm = p.cmd("HMSET").arg(&meta_key);
        for (f, v) in &meta {
            hm.arg(f.as_ref()).arg(v.as_ref());
        }
        for (name, t) in ds.tensors() {
            p.add_command(Client::tensorset_cmd(&format!("{base}.{name}"), t));
        }
        p.cmd("HSET").arg(&meta_key).arg(ACK_FIELD).arg("1");
        self.pipeline(&p).map(|_| ())
    }

    fn read_dataset(&mut self, name: &str, base: &str) -> Result<Dataset> {
        let (mut ds, names) = self.read_dataset_meta(name, base)?;
        if !names.is_empty() {
            let mut p = redis::pipe();
            for t in &names {
                p.cmd("AI.TENSORGET")
                    .arg(format!("{base}.{t}"))
                    .arg("META")
                    .arg("BLOB");
            }
            for (t, v) in names.iter().zip(self.pipeline(&p)?) {
                ds.add_tensor(t.clone(), decode_tensor(v)?);
            }
        }
        Ok(ds)
    }

    /// Fetch a dataset.
    ///
    /// # Errors
    /// `NotFound` when it does not exist.
    pub fn get_dataset(&mut self, name: &str) -> Result<Dataset> {
        let base = self.keys.dataset_key(name, true);
        self.read_dataset(name, &base)
    }

    /// Whether a dataset exists and is complete.
    ///
    /// # Errors
    /// Connection errors.
    pub fn dataset_exists(&mut self, name: &str) -> Result<bool> {
        let meta = format!("{}.meta", self.keys.dataset_key(name, true));
        Ok(int(
            &self.query(redis::cmd("HEXISTS").arg(meta).arg(ACK_FIELD))?,
            "HEXISTS",
        )? == 1)
    }

    /// Check for a complete dataset up to `tries` times, `interval_ms` apart.
    ///
    /// # Errors
    /// Connection errors.
    pub fn poll_dataset(&mut self, name: &str, interval_ms: u64, tries: u32) -> Result<bool> {
        self.poll(interval_ms, tries, |c| c.dataset_exists(name))
    }

    /// Delete a dataset: its metadata and every tensor.
    ///
    /// # Errors
    /// `NotFound` when it does not exist.
    pub fn delete_dataset(&mut self, name: &str) -> Result<()> {
        let base = self.keys.dataset_key(name, true);
        let ds = self.read_dataset_meta(name, &base)?;
        let mut c = redis::cmd("DEL");
        c.arg(format!("{base}.meta"));
        for t in ds.1 {
            c.arg(format!("{base}.{t}"));
        }
        self.query(&c).map(|_| ())
    }

    /// A dataset's metadata and tensor names, from the hash at `base.meta`.
    fn read_dataset_meta(&mut self, name: &str, base: &str) -> Result<(Dataset, Vec<String>)> {
        let pairs = decode_pairs(self.query(redis::cmd("HGETALL").arg(format!("{base}.meta")))?)?;
        if pairs.is_empty() {
            return Err(Error::err(
                ErrorCode::NotFound,
                format!("The requested DataSet, \"{name}\", does not exist."),
            ));
        }
        let mut ds = Dataset::new(name);
        let names = ds.decode_meta(&pairs)?;
        Ok((ds, names))
    }

    /// Copy a dataset to a new name.
    ///
    /// # Errors
    /// `NotFound` for a missing source.
    pub fn copy_dataset(&mut self, src: &str, dst: &str) -> Result<()> {
        let mut ds = self.get_dataset(src)?;
        ds.set_name(dst);
        self.put_dataset(&ds)
    }

    /// Rename a dataset (copy, then delete the source).
    ///
    /// # Errors
    /// `NotFound` for a missing source.
    pub fn rename_dataset(&mut self, old: &str, new: &str) -> Result<()> {
        self.copy_dataset(old, new)?;
        self.delete_dataset(old)
    }

    // ----- aggregation lists -----

    /// Append a dataset (already stored with [`Client::put_dataset`]) to a list.
    ///
    /// # Errors
    /// The server's error.
    pub fn append_to_list(&mut self, list: &str, ds: &Dataset) -> Result<()> {
        let key = self.keys.list_key(list, false);
        let entry = self.keys.dataset_key(ds.name(), false);
        self.query(redis::cmd("RPUSH").arg(key).arg(entry))
            .map(|_| ())
    }

    /// The number of datasets in a list.
    ///
    /// # Errors
    /// `WrongType` when the key is not a list.
    pub fn get_list_length(&mut self, list: &str) -> Result<usize> {
        let key = self.keys.list_key(list, true);
        let n = int(&self.query(redis::cmd("LLEN").arg(key))?, "LLEN")?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Wait until a list has exactly `len` entries, checking up to `tries` times
    /// (SmartRedis' `poll_list_length`).
    ///
    /// # Errors
    /// Connection errors.
    pub fn poll_list_length(
        &mut self,
        list: &str,
        len: usize,
        interval_ms: u64,
        tries: u32,
    ) -> Result<bool> {
        self.poll(interval_ms, tries, |c| Ok(c.get_list_length(list)? == len))
    }

    /// Wait until a list has at least `len` entries.
    ///
    /// # Errors
    /// Connection errors.
    pub fn poll_list_length_gte(
        &mut self,
        list: &str,
        len: usize,
        interval_ms: u64,
        tries: u32,
    ) -> Result<bool> {
        self.poll(interval_ms, tries, |c| Ok(c.get_list_length(list)? >= len))
    }

    /// Wait until a list has at most `len` entries.
    ///
    /// # Errors
    /// Connection errors.
    pub fn poll_list_length_lte(
        &mut self,
        list: &str,
        len: usize,
        interval_ms: u64,
        tries: u32,
    ) -> Result<bool> {
        self.poll(interval_ms, tries, |c| Ok(c.get_list_length(list)? <= len))
    }

    /// The datasets of a list from `start` to `end` inclusive (negative counts from the end).
    ///
    /// # Errors
    /// A listed dataset that cannot be read.
    pub fn get_dataset_list_range(
        &mut self,
        list: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<Dataset>> {
        let key = self.keys.list_key(list, true);
        let redis::Value::Array(entries) =
            self.query(redis::cmd("LRANGE").arg(key).arg(start).arg(end))?
        else {
            return Err(Error::err(
                ErrorCode::Protocol,
                "unexpected reply to LRANGE",
            ));
        };
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let base = String::from_utf8_lossy(&bulk(e, "LRANGE")?).into_owned();
            let name = KeyPrefixes::dataset_name_of(&base);
            out.push(self.read_dataset(&name, &base)?);
        }
        Ok(out)
    }

    /// Every dataset of a list.
    ///
    /// # Errors
    /// A listed dataset that cannot be read.
    pub fn get_datasets_from_list(&mut self, list: &str) -> Result<Vec<Dataset>> {
        self.get_dataset_list_range(list, 0, -1)
    }

    /// Delete a list (not the datasets it names).
    ///
    /// # Errors
    /// Connection errors.
    pub fn delete_list(&mut self, list: &str) -> Result<()> {
        let key = self.keys.list_key(list, true);
        self.query(redis::cmd("DEL").arg(key)).map(|_| ())
    }

    /// Copy a list's entries to another list (replacing it).
    ///
    /// # Errors
    /// `NotFound` when the source is empty or missing.
    pub fn copy_list(&mut self, src: &str, dst: &str) -> Result<()> {
        let from = self.keys.list_key(src, true);
        let to = self.keys.list_key(dst, false);
        let redis::Value::Array(entries) =
            self.query(redis::cmd("LRANGE").arg(&from).arg(0).arg(-1))?
        else {
            return Err(Error::err(
                ErrorCode::Protocol,
                "unexpected reply to LRANGE",
            ));
        };
        if entries.is_empty() {
            return Err(Error::err(
                ErrorCode::NotFound,
                format!("list '{src}' does not exist"),
            ));
        }
        let mut p = redis::pipe();
        p.cmd("DEL").arg(&to);
        let push = p.cmd("RPUSH").arg(&to);
        for e in entries {
            push.arg(bulk(e, "LRANGE")?);
        }
        self.pipeline(&p).map(|_| ())
    }

    /// Rename a list.
    ///
    /// # Errors
    /// `NotFound` when the source is empty or missing.
    pub fn rename_list(&mut self, old: &str, new: &str) -> Result<()> {
        self.copy_list(old, new)?;
        self.delete_list(old)
    }

    // ----- models -----

    /// Store an ONNX model, sent in chunks of the server's `MODEL_CHUNK_SIZE`.
    ///
    /// # Errors
    /// The server's error: malformed model, unsupported backend or device, limits.
    pub fn set_model(&mut self, name: &str, model: &[u8], opts: &ModelOptions) -> Result<()> {
        let chunk = match self.query(redis::cmd("AI.CONFIG").arg("GET").arg("MODEL_CHUNK_SIZE"))? {
            redis::Value::Int(n) if n > 0 => n as usize,
            _ => model.len().max(1),
        };
        let key = self.keys.model_key(name, false);
        let mut c = redis::cmd("AI.MODELSTORE");
        c.arg(&key).arg(&opts.backend).arg(&opts.device);
        if !opts.tag.is_empty() {
            c.arg("TAG").arg(&opts.tag);
        }
        if opts.batch_size > 0 {
            c.arg("BATCHSIZE").arg(opts.batch_size);
            if opts.min_batch_size > 0 {
                c.arg("MINBATCHSIZE").arg(opts.min_batch_size);
                if opts.min_batch_timeout_ms > 0 {
                    c.arg("MINBATCHTIMEOUT").arg(opts.min_batch_timeout_ms);
                }
            }
        }
        c.arg("BLOB");
        for part in model.chunks(chunk) {
            c.arg(part);
        }
        self.query(&c)?;
        self.model_io.remove(&key);
        Ok(())
    }

    /// Store an ONNX model from a file.
    ///
    /// # Errors
    /// The file cannot be read, or [`Client::set_model`]'s errors.
    pub fn set_model_from_file(
        &mut self,
        name: &str,
        path: impl AsRef<std::path::Path>,
        opts: &ModelOptions,
    ) -> Result<()> {
        let p = path.as_ref();
        let bytes = std::fs::read(p)
            .map_err(|e| Error::io(format!("cannot read model {}", p.display()), &e))?;
        self.set_model(name, &bytes, opts)
    }

    /// A stored model's bytes.
    ///
    /// # Errors
    /// `NotFound` (`ERR model key is empty`).
    pub fn get_model(&mut self, name: &str) -> Result<Bytes> {
        let key = self.keys.model_key(name, true);
        Ok(Bytes::from(bulk(
            self.query(redis::cmd("AI.MODELGET").arg(key).arg("BLOB"))?,
            "AI.MODELGET",
        )?))
    }

    /// Delete a model.
    ///
    /// # Errors
    /// `NotFound` (`ERR model key is empty`).
    pub fn delete_model(&mut self, name: &str) -> Result<()> {
        let key = self.keys.model_key(name, true);
        self.model_io.remove(&key);
        self.query(redis::cmd("AI.MODELDEL").arg(key)).map(|_| ())
    }

    /// Whether a model exists.
    ///
    /// # Errors
    /// Connection errors.
    pub fn model_exists(&mut self, name: &str) -> Result<bool> {
        let key = self.keys.model_key(name, true);
        self.key_exists(&key)
    }

    /// Check for a model up to `tries` times, `interval_ms` apart.
    ///
    /// # Errors
    /// Connection errors.
    pub fn poll_model(&mut self, name: &str, interval_ms: u64, tries: u32) -> Result<bool> {
        self.poll(interval_ms, tries, |c| c.model_exists(name))
    }

    /// Run a model on stored tensors, storing its outputs (`AI.MODELEXECUTE`). Tensor
    /// names are prefixed like any tensor.
    ///
    /// # Errors
    /// Missing model or inputs, inputs that do not fit the model, `Timeout`.
    pub fn run_model(&mut self, name: &str, inputs: &[&str], outputs: &[&str]) -> Result<()> {
        let key = self.keys.model_key(name, true);
        let mut c = redis::cmd("AI.MODELEXECUTE");
        c.arg(key).arg("INPUTS").arg(inputs.len());
        for i in inputs {
            c.arg(self.keys.tensor_key(i, true));
        }
        c.arg("OUTPUTS").arg(outputs.len());
        for o in outputs {
            c.arg(self.keys.tensor_key(o, false));
        }
        match self.query(&c)? {
            redis::Value::SimpleString(s) if s == "TIMEDOUT" => {
                Err(Error::new(ErrorCode::Timeout, "TIMEDOUT"))
            }
            _ => Ok(()),
        }
    }

    /// A model's input and output names (cached per model).
    ///
    /// # Errors
    /// `NotFound` for a missing model.
    pub fn model_io(&mut self, name: &str) -> Result<(Vec<String>, Vec<String>)> {
        let key = self.keys.model_key(name, true);
        if let Some(io) = self.model_io.get(&key) {
            return Ok(io.clone());
        }
        let reply = self.query(redis::cmd("AI.MODELGET").arg(&key).arg("META"))?;
        let redis::Value::Array(items) = reply else {
            return Err(Error::err(
                ErrorCode::Protocol,
                "unexpected reply to AI.MODELGET META",
            ));
        };
        let mut io = (Vec::new(), Vec::new());
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let k = bulk(k, "AI.MODELGET")?;
            let names = || -> Result<Vec<String>> {
                match &v {
                    redis::Value::Array(a) => a
                        .iter()
                        .map(|n| {
                            bulk(n.clone(), "AI.MODELGET")
                                .map(|b| String::from_utf8_lossy(&b).into_owned())
                        })
                        .collect(),
                    _ => Ok(Vec::new()),
                }
            };
            match k.as_slice() {
                b"inputs" => io.0 = names()?,
                b"outputs" => io.1 = names()?,
                _ => {}
            }
        }
        self.model_io.insert(key, io.clone());
        Ok(io)
    }

    /// Run a model on `inputs` and return its outputs in one round trip
    /// (`AI.DAGEXECUTE`): nothing is stored on the server.
    ///
    /// # Errors
    /// Missing model, inputs that do not fit it, `Timeout`.
    pub fn infer(&mut self, name: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let (_, outs) = self.model_io(name)?;
        let key = self.keys.model_key(name, true);
        let mut c = redis::cmd("AI.DAGEXECUTE");
        c.arg("ROUTING").arg(&key);
        for (i, t) in inputs.iter().enumerate() {
            c.arg("|>")
                .arg("AI.TENSORSET")
                .arg(format!("in{i}"))
                .arg(t.dtype().name());
            for d in t.shape() {
                c.arg(*d);
            }
            c.arg("BLOB").arg(t.data().as_ref());
        }
        c.arg("|>")
            .arg("AI.MODELEXECUTE")
            .arg(&key)
            .arg("INPUTS")
            .arg(inputs.len());
        for i in 0..inputs.len() {
            c.arg(format!("in{i}"));
        }
        c.arg("OUTPUTS").arg(outs.len());
        for i in 0..outs.len() {
            c.arg(format!("out{i}"));
        }
        for i in 0..outs.len() {
            c.arg("|>")
                .arg("AI.TENSORGET")
                .arg(format!("out{i}"))
                .arg("META")
                .arg("BLOB");
        }
        let reply = self.query(&c)?;
        let items = match reply {
            redis::Value::Array(items) => items,
            redis::Value::SimpleString(s) if s == "TIMEDOUT" => {
                return Err(Error::new(ErrorCode::Timeout, "TIMEDOUT"))
            }
            other => return Err(unexpected("AI.DAGEXECUTE", &other)),
        };
        let mut out = Vec::with_capacity(outs.len());
        for (i, item) in items.into_iter().enumerate() {
            match item {
                redis::Value::ServerError(e) => {
                    return Err(Error::from_server_text(format!(
                        "{} {}",
                        e.code(),
                        e.details().unwrap_or("")
                    )))
                }
                v if i > inputs.len() => out.push(decode_tensor(v)?),
                _ => {}
            }
        }
        Ok(out)
    }

    /// A model's run statistics (`AI.INFO`).
    ///
    /// # Errors
    /// `NotFound` when no such model.
    pub fn model_info(&mut self, name: &str) -> Result<ModelInfo> {
        let key = self.keys.model_key(name, true);
        let redis::Value::Array(items) = self.query(redis::cmd("AI.INFO").arg(key))? else {
            return Err(Error::err(
                ErrorCode::Protocol,
                "unexpected reply to AI.INFO",
            ));
        };
        let mut info = ModelInfo::default();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let n = if let redis::Value::Int(n) = v {
                n.max(0) as u64
            } else {
                0
            };
            match bulk(k, "AI.INFO")?.as_slice() {
                b"duration" => info.duration_us = n,
                b"samples" => info.samples = n,
                b"calls" => info.calls = n,
                b"errors" => info.errors = n,
                b"runs" => info.runs = n,
                _ => {}
            }
        }
        Ok(info)
    }

    /// Zero a model's statistics.
    ///
    /// # Errors
    /// `NotFound` when no such model.
    pub fn reset_model_info(&mut self, name: &str) -> Result<()> {
        let key = self.keys.model_key(name, true);
        self.query(redis::cmd("AI.INFO").arg(key).arg("RESETSTAT"))
            .map(|_| ())
    }

    // ----- server -----

    /// `INFO [section]` parsed into `(section, key, value)` triples.
    ///
    /// # Errors
    /// Connection errors.
    pub fn info(&mut self, section: &str) -> Result<Vec<(String, String, String)>> {
        let text = bulk(self.query(redis::cmd("INFO").arg(section))?, "INFO")?;
        let mut out = Vec::new();
        let mut current = String::new();
        for line in String::from_utf8_lossy(&text).lines() {
            if let Some(s) = line.strip_prefix("# ") {
                current = s.trim().to_string();
            } else if let Some((k, v)) = line.split_once(':') {
                out.push((current.clone(), k.to_string(), v.trim().to_string()));
            }
        }
        Ok(out)
    }

    /// Remove every key on the server.
    ///
    /// # Errors
    /// Connection errors.
    pub fn flush_db(&mut self) -> Result<()> {
        self.query(&redis::cmd("FLUSHDB")).map(|_| ())
    }

    /// Write a snapshot on the server (`SAVE`).
    ///
    /// # Errors
    /// The server's I/O error.
    pub fn save(&mut self) -> Result<()> {
        self.query(&redis::cmd("SAVE")).map(|_| ())
    }
}
