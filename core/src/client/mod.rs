//! The native client: tensors, datasets, aggregation lists, models and ensemble prefixes,
//! with one API whatever the coupling — the engine in this process (`inproc`), a server
//! on this node (`unix:///path`) or across the network (`host:port`). It speaks the same
//! RedisAI protocol as SmartRedis, so it works against `insitu serve` (and Redis +
//! RedisAI) and interoperates with SmartRedis programs key for key.
//!
//! In process, tensors, models, runs, inference and waits are the engine's typed
//! operations ([`Engine::put_tensor`], [`Engine::run_model`], [`Engine::infer`], ...): a
//! tensor put hands over its buffer, a get returns the stored one, nothing is copied or
//! serialized. Over a socket each operation is the command its family's file in
//! `crate::cmd` encodes (an argument vector of shared [`Bytes`]), and the reply is decoded
//! there too; the rest (datasets, lists, administration) is a command in process as well.
//! Polls wait on the server (`INSITU.WAIT`) instead of sleeping, falling back to
//! SmartRedis' sleep loop against servers that lack the extension.

mod address;
mod cluster;
mod conn;
mod keys;
mod mappings;
mod remote;

use std::sync::{Arc, OnceLock};
use std::thread::sleep;
use std::time::Duration;

use bytes::Bytes;

pub use address::Address;
pub use keys::KeyPrefixes;
pub use remote::{Arg, Cmd, RetryPolicy};

pub use crate::cmd::ModelOptions;
use crate::data::dataset::{Dataset, ACK_FIELD};
use crate::data::tensor::{Element, Tensor};
use crate::engine::{Engine, EngineConfig, RunOptions, WaitFor};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::resp::Frame;
use crate::server::{EmbeddedServer, ListenOptions};
use conn::{Conn, Inproc};
use remote::Remote;

/// The engine `inproc` clients of this process share, created on first use.
pub fn process_engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| Arc::new(Engine::new(EngineConfig::default())))
        .clone()
}

/// A connection to an insitu (or Redis + RedisAI) server.
pub struct Client {
    con: Conn,
    address: Address,
    keys: KeyPrefixes,
    /// Input and output names per model key, for `infer`.
    model_io: std::collections::HashMap<String, (Vec<String>, Vec<String>)>,
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

fn unexpected(what: &str, v: &Frame) -> Error {
    Error::err(
        ErrorCode::Protocol,
        format!("unexpected reply to {what}: {v:?}"),
    )
}

fn bulk(v: Frame, what: &str) -> Result<Bytes> {
    match v {
        Frame::Bulk(b) | Frame::Simple(b) => Ok(b),
        other => Err(unexpected(what, &other)),
    }
}

fn int(v: &Frame, what: &str) -> Result<i64> {
    match v {
        Frame::Integer(i) => Ok(*i),
        other => Err(unexpected(what, other)),
    }
}

fn array(v: Frame, what: &str) -> Result<Vec<Frame>> {
    match v {
        Frame::Array(a) => Ok(a),
        other => Err(unexpected(what, &other)),
    }
}

/// An error reply inside a pipeline or DAG result becomes `Err`.
fn ok_frame(f: Frame) -> Result<Frame> {
    match f {
        Frame::Error(e) => Err(e),
        f => Ok(f),
    }
}

fn decode_pairs(v: Frame) -> Result<Vec<(Bytes, Bytes)>> {
    let items = array(v, "HGETALL")?;
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((bulk(k, "HGETALL")?, bulk(v, "HGETALL")?));
    }
    Ok(out)
}

/// A key as bytes, borrowed when it was.
fn cow_bytes(c: std::borrow::Cow<'_, str>) -> std::borrow::Cow<'_, [u8]> {
    match c {
        std::borrow::Cow::Borrowed(s) => std::borrow::Cow::Borrowed(s.as_bytes()),
        std::borrow::Cow::Owned(s) => std::borrow::Cow::Owned(s.into_bytes()),
    }
}

/// The `AI.TENSORSET` command for a tensor (its bytes shared, not copied).
fn tensorset(key: &str, t: &Tensor) -> Cmd {
    Cmd(crate::cmd::encode_tensorset(key.as_bytes(), t))
}

impl Client {
    /// Connect to `address` — `inproc` (this process' engine), `unix:///path`,
    /// `tcp://host:port` or `host:port` — with ensemble prefixes from `SSKEYIN` /
    /// `SSKEYOUT`.
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

    /// Connect to a parsed address with explicit prefixes, riding out broken connections
    /// as the environment says (see [`RetryPolicy::from_env`]).
    ///
    /// # Errors
    /// The server cannot be reached or does not answer `PING`.
    pub fn connect_to(address: Address, keys: KeyPrefixes) -> Result<Client> {
        Client::connect_with(address, keys, RetryPolicy::from_env()?)
    }

    /// Connect with an explicit retry policy ([`RetryPolicy::none`]: fail at once).
    ///
    /// # Errors
    /// The server cannot be reached within the policy's `conn_timeout`, or does not
    /// answer `PING`.
    pub fn connect_with(
        address: Address,
        keys: KeyPrefixes,
        policy: RetryPolicy,
    ) -> Result<Client> {
        let con = match &address {
            Address::Inproc => Conn::Inproc(Box::new(Inproc::new(process_engine())?)),
            // A cluster's nodes: read the slot map and route by slot (a server that turns
            // out not to be a cluster node is used as it is).
            a if a.is_cluster() => {
                let seeds = match a {
                    Address::Cluster(nodes) => nodes.clone(),
                    a => vec![a.clone()],
                };
                let connected = cluster::Cluster::connect(seeds, policy, None).map_err(|e| {
                    if e.code() == ErrorCode::Io && !e.message().starts_with("cannot connect") {
                        Error::err(
                            ErrorCode::Io,
                            format!("cannot connect to {a}: {}", e.message()),
                        )
                    } else {
                        e
                    }
                })?;
                match connected {
                    Ok(c) => Conn::Cluster(Box::new(c)),
                    Err(link) => Conn::Remote(link),
                }
            }
            Address::Cluster(nodes) => {
                let first = nodes.first().cloned().unwrap_or(Address::Inproc);
                Conn::Remote(Box::new(Remote::connect(&first, policy)?))
            }
            a => Conn::Remote(Box::new(Remote::connect(a, policy)?)),
        };
        let mut c = Client {
            con,
            address,
            keys,
            model_io: Default::default(),
        };
        match c.con.call(Cmd::new("PING")) {
            Ok(_) => {
                // On a Unix socket, large tensors go through shared memory when the server
                // takes it (INSITU_SHM=0 turns it off).
                if std::env::var("INSITU_SHM").map_or(true, |v| v != "0") {
                    c.con.set_shm(true)?;
                }
            }
            // A server with a password answers NOAUTH: connected, authenticate next.
            Err(e) if e.code() == ErrorCode::Auth => {}
            Err(e) => {
                return Err(Error::err(
                    ErrorCode::Io,
                    format!("cannot connect to {}: {}", c.address, e.message()),
                ))
            }
        }
        Ok(c)
    }

    /// A client of `engine`, in this process (no socket, no serialization).
    ///
    /// # Errors
    /// When the client's small runtime for waits cannot start.
    pub fn inproc(engine: Arc<Engine>) -> Result<Client> {
        Ok(Client {
            con: Conn::Inproc(Box::new(Inproc::new(engine)?)),
            address: Address::Inproc,
            keys: KeyPrefixes::from_env()?,
            model_io: Default::default(),
        })
    }

    /// Change how this client rides out broken connections and server restarts.
    pub fn set_retry_policy(&mut self, policy: RetryPolicy) {
        self.con.set_retry_policy(policy);
    }

    /// The address this client is connected to.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The engine of an in-process client.
    pub fn engine(&self) -> Option<&Arc<Engine>> {
        match &self.con {
            Conn::Inproc(i) => Some(&i.engine),
            Conn::Remote(_) | Conn::Cluster(_) => None,
        }
    }

    /// Serve this in-process client's engine on a Unix socket and/or TCP, so other
    /// processes (trainers, analysis) see the same data and models. Stops when the
    /// returned server is stopped or dropped.
    ///
    /// # Errors
    /// Not an in-process client, or binding fails.
    pub fn start_server(&self, opts: ListenOptions) -> Result<EmbeddedServer> {
        let engine = self
            .engine()
            .ok_or_else(|| Error::bad_input("only an inproc client has an engine to serve"))?;
        EmbeddedServer::start(engine.clone(), opts)
            .map_err(|e| Error::io("cannot start the embedded server", &e))
    }

    /// Authenticate (`AUTH password`).
    ///
    /// # Errors
    /// A wrong password.
    pub fn auth(&mut self, password: &str) -> Result<()> {
        self.con.call(Cmd::new("AUTH").with(password))?;
        if std::env::var("INSITU_SHM").map_or(true, |v| v != "0") {
            self.con.set_shm(true)?;
        }
        Ok(())
    }

    /// Use shared memory for large tensors on a Unix socket (on by default when the
    /// server supports it). Returns whether it is in use.
    ///
    /// # Errors
    /// Connection errors.
    pub fn set_shared_memory(&mut self, on: bool) -> Result<bool> {
        self.con.set_shm(on)
    }

    /// Whether large tensors travel through shared memory on this connection.
    pub fn shared_memory(&self) -> bool {
        self.con.shm()
    }

    fn call(&mut self, cmd: Cmd) -> Result<Frame> {
        self.con.call(cmd)
    }

    /// Send any command and return the raw reply (for admin commands and extensions).
    ///
    /// # Errors
    /// The server's error reply.
    pub fn command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Frame> {
        let Some((name, rest)) = args.split_first() else {
            return Err(Error::bad_input("empty command"));
        };
        let mut c = Cmd(vec![Bytes::copy_from_slice(name.as_ref())]);
        for a in rest {
            c.arg(a.as_ref());
        }
        self.call(c)
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

    /// Store a tensor under `name` (prefixed with `SSKEYOUT` when set). In process the
    /// tensor's buffer is shared with the store, not copied.
    ///
    /// # Errors
    /// The server's error (limits, memory).
    pub fn put_tensor(&mut self, name: &str, tensor: &Tensor) -> Result<()> {
        let key = self.keys.tensor_key(name, false);
        if let Some(i) = self.con.inproc() {
            return i.engine.put_tensor(key, tensor.clone());
        }
        // A connection replaced between a loan and its commit lost the loan: the whole
        // put is made again on the new one.
        let len = tensor.data().len();
        if !(self.con.shm() && len >= crate::protocol::shm::SHM_MIN) {
            return self.call(tensorset(&key, tensor)).map(|_| ());
        }
        let mut again = true;
        loop {
            let c = self.tensorset_cmd(&key, tensor)?;
            if !self.con.wants_spare(len) {
                match self.call(c) {
                    Err(e) if again && lost_loan(&e) => {
                        again = false;
                        continue;
                    }
                    r => return r.map(|_| ()),
                }
            }
            // The commit goes with the loan of the next put's block: one round trip.
            let mut replies = self
                .con
                .pipeline(vec![c, conn::shm_alloc(len)])?
                .into_iter();
            let (Some(set), Some(loan)) = (replies.next(), replies.next()) else {
                return Err(Error::err(
                    ErrorCode::Protocol,
                    "AI.TENSORSET: missing reply",
                ));
            };
            if let Frame::Error(e) = &loan {
                tracing::debug!("no spare shared memory block: {}", e.text());
            } else {
                let block = self.con.take_loan(&loan)?;
                self.con.keep_spare(len, block)?;
            }
            match set {
                Frame::Error(e) if again && lost_loan(&e) => again = false,
                Frame::Error(e) => return Err(e),
                _ => return Ok(()),
            }
        }
    }

    fn get_tensor_key(&mut self, key: &str) -> Result<Tensor> {
        if let Some(i) = self.con.inproc() {
            return i.engine.get_tensor(key.as_bytes());
        }
        if !self.con.shm() {
            return crate::cmd::decode_tensorget(
                self.call(Cmd::new("AI.TENSORGET").with(key).with("META").with("BLOB"))?,
            );
        }
        let reply = self.call(Cmd::new("AI.TENSORGET").with(key).with("META").with("SHM"))?;
        self.decode_shm_get(reply)
    }

    /// The format a get asks for: `SHM` (large tensors as views of shared memory) when
    /// this connection uses it, else `BLOB`.
    fn get_format(&self) -> &'static str {
        if self.con.shm() {
            "SHM"
        } else {
            "BLOB"
        }
    }

    /// Decode an `AI.TENSORGET key META SHM|BLOB` reply: a large tensor in shared memory
    /// comes as a view of the block that holds it (no copy). Replies must be decoded in
    /// order (descriptors arrive in order).
    fn decode_shm_get(&mut self, reply: Frame) -> Result<Tensor> {
        let mut items = array(reply, "AI.TENSORGET")?;
        if items.len() == 6 && matches!(&items[4], Frame::Bulk(b) if b.as_ref() == b"shm") {
            let view = self.con.shm_view(&items[5])?;
            items[4] = Frame::bulk_static("blob");
            items[5] = Frame::Bulk(view);
        }
        crate::cmd::decode_tensorget(Frame::Array(items))
    }

    /// `AI.TENSORSET` for `key`: large tensors written into a block the server lends
    /// (one copy), when this connection uses shared memory.
    fn tensorset_cmd(&mut self, key: &str, tensor: &Tensor) -> Result<Cmd> {
        if !(self.con.shm() && tensor.data().len() >= crate::protocol::shm::SHM_MIN) {
            return Ok(tensorset(key, tensor));
        }
        let block = self.con.shm_block(tensor.data().len())?;
        self.con.shm_write(block, tensor.data())?;
        let mut c = Cmd::new("AI.TENSORSET");
        c.arg(key).arg(tensor.dtype().name());
        for d in tensor.shape() {
            c.arg(*d);
        }
        c.arg("SHM").arg(block).arg(tensor.data().len());
        Ok(c)
    }

    /// Fetch a tensor. In process it shares the stored buffer (no copy).
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
        t.copy_to(out)?;
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
        let existed = match self.con.inproc() {
            Some(i) => i.engine.delete(key.as_bytes())?,
            None => int(&self.call(Cmd::new("DEL").with(key))?, "DEL")? > 0,
        };
        if !existed {
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
        if let Some(i) = self.con.inproc() {
            return Ok(i.engine.exists(key.as_bytes()));
        }
        Ok(int(&self.call(Cmd::new("EXISTS").with(key))?, "EXISTS")? > 0)
    }

    /// Wait on the server until `cond` holds for `key` (`INSITU.WAIT`; in process, on the
    /// engine), for at most `interval_ms * tries` ms — the time SmartRedis' poll would
    /// take. Against a server without the extension, poll like SmartRedis with `check`.
    fn wait(
        &mut self,
        key: &str,
        cond: WaitFor,
        interval_ms: u64,
        tries: u32,
        mut check: impl FnMut(&mut Client) -> Result<bool>,
    ) -> Result<bool> {
        let total = interval_ms.saturating_mul(u64::from(tries));
        if let Some(i) = self.con.inproc() {
            let key = Bytes::copy_from_slice(key.as_bytes());
            let timeout = Duration::from_millis(total);
            return Ok(i.block_on(i.engine.wait_until(&key, &cond, timeout)));
        }
        let c = Cmd(crate::cmd::encode_wait(total, key.as_bytes(), &cond));
        match self.call(c) {
            Ok(f) => Ok(int(&f, "INSITU.WAIT")? == 1),
            Err(e) if e.code() == ErrorCode::Unsupported => {
                for i in 0..tries {
                    if check(self)? {
                        return Ok(true);
                    }
                    if i + 1 < tries {
                        sleep(Duration::from_millis(interval_ms));
                    }
                }
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Wait for a tensor, up to `tries * interval_ms` ms. Waits on the server: the call
    /// returns as soon as the tensor is put.
    ///
    /// # Errors
    /// Connection errors.
    pub fn poll_tensor(&mut self, name: &str, interval_ms: u64, tries: u32) -> Result<bool> {
        let key = self.keys.tensor_key(name, true);
        self.poll_key(&key, interval_ms, tries)
    }

    /// Wait for a key (unprefixed), up to `tries * interval_ms` ms.
    ///
    /// # Errors
    /// Connection errors.
    pub fn poll_key(&mut self, key: &str, interval_ms: u64, tries: u32) -> Result<bool> {
        let k = key.to_string();
        self.wait(key, WaitFor::Exists, interval_ms, tries, move |c| {
            c.key_exists(&k)
        })
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
        let cmd = Cmd::new("RENAME").with(&from).with(&to);
        // In a cluster, a tensor moves between slots as a copy and a delete (RENAME
        // takes keys of one slot).
        if self.con.cluster().is_some() && cluster::slot_of(&cmd.0).is_err() {
            let t = self.get_tensor_key(&from)?;
            self.call(tensorset(&to, &t))?;
            return self.delete_key(&from);
        }
        self.call(cmd).map(|_| ())
    }

    // ----- datasets -----

    /// Store a dataset in SmartRedis' layout, in one pipeline.
    ///
    /// # Errors
    /// An empty dataset, or the server's error.
    pub fn put_dataset(&mut self, ds: &Dataset) -> Result<()> {
        let base = self.keys.dataset_key(ds.name(), false);
        if let Some(i) = self.con.inproc() {
            return i.engine.put_dataset(&base, ds);
        }
        let meta = ds.meta_to_store()?;
        let meta_key = format!("{base}.meta");
        let mut cmds = vec![Cmd::new("DEL").with(&meta_key)];
        let mut hm = Cmd::new("HMSET").with(&meta_key);
        for (f, v) in meta {
            hm.arg(f).arg(v);
        }
        cmds.push(hm);
        let mut again = self.con.shm();
        loop {
            let mut all = cmds.clone();
            for (name, t) in ds.tensors() {
                all.push(self.tensorset_cmd(&format!("{base}.{name}"), t)?);
            }
            all.push(Cmd::new("HSET").with(&meta_key).with(ACK_FIELD).with("1"));
            let replies = self.con.pipeline(all)?;
            if again
                && replies
                    .iter()
                    .any(|f| matches!(f, Frame::Error(e) if lost_loan(e)))
            {
                again = false;
                continue;
            }
            for f in replies {
                ok_frame(f)?;
            }
            return Ok(());
        }
    }

    /// A dataset's metadata and tensor names, from the hash at `base.meta`.
    fn read_dataset_meta(&mut self, name: &str, base: &str) -> Result<(Dataset, Vec<String>)> {
        let pairs = decode_pairs(self.call(Cmd::new("HGETALL").with(format!("{base}.meta")))?)?;
        if pairs.is_empty() {
            return Err(crate::data::dataset::dataset_missing(name));
        }
        let mut ds = Dataset::new(name);
        let names = ds.decode_meta(&pairs)?;
        Ok((ds, names))
    }

    fn read_dataset(&mut self, name: &str, base: &str) -> Result<Dataset> {
        if let Some(i) = self.con.inproc() {
            return i.engine.get_dataset(name, base);
        }
        let (mut ds, names) = self.read_dataset_meta(name, base)?;
        let format = self.get_format();
        let cmds = names
            .iter()
            .map(|t| {
                Cmd::new("AI.TENSORGET")
                    .with(format!("{base}.{t}"))
                    .with("META")
                    .with(format)
            })
            .collect();
        for (t, v) in names.iter().zip(self.con.pipeline(cmds)?) {
            ds.add_tensor(t.clone(), self.decode_shm_get(v)?);
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
            &self.call(Cmd::new("HEXISTS").with(meta).with(ACK_FIELD))?,
            "HEXISTS",
        )? == 1)
    }

    /// Wait for a complete dataset, up to `tries * interval_ms` ms, on the server.
    ///
    /// # Errors
    /// Connection errors.
    pub fn poll_dataset(&mut self, name: &str, interval_ms: u64, tries: u32) -> Result<bool> {
        let meta = format!("{}.meta", self.keys.dataset_key(name, true));
        let n = name.to_string();
        let cond = WaitFor::HashField(Bytes::from_static(ACK_FIELD.as_bytes()));
        self.wait(&meta, cond, interval_ms, tries, move |c| {
            c.dataset_exists(&n)
        })
    }

    /// Delete a dataset: its metadata and every tensor.
    ///
    /// # Errors
    /// `NotFound` when it does not exist.
    pub fn delete_dataset(&mut self, name: &str) -> Result<()> {
        let base = self.keys.dataset_key(name, true);
        let (_, names) = self.read_dataset_meta(name, &base)?;
        let mut c = Cmd::new("DEL").with(format!("{base}.meta"));
        for t in names {
            c.arg(format!("{base}.{t}"));
        }
        self.call(c).map(|_| ())
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
        if let Some(i) = self.con.inproc() {
            return i
                .engine
                .push_list(key.as_bytes(), &[Bytes::from(entry)])
                .map(|_| ());
        }
        self.call(Cmd::new("RPUSH").with(key).with(entry))
            .map(|_| ())
    }

    /// The number of datasets in a list.
    ///
    /// # Errors
    /// `WrongType` when the key is not a list.
    pub fn get_list_length(&mut self, list: &str) -> Result<usize> {
        let key = self.keys.list_key(list, true);
        if let Some(i) = self.con.inproc() {
            return i.engine.list_len(key.as_bytes());
        }
        let n = int(&self.call(Cmd::new("LLEN").with(key))?, "LLEN")?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn poll_len(
        &mut self,
        list: &str,
        cond: WaitFor,
        interval_ms: u64,
        tries: u32,
    ) -> Result<bool> {
        let key = self.keys.list_key(list, true);
        let l = list.to_string();
        let check = cond.clone();
        self.wait(&key, cond, interval_ms, tries, move |c| {
            Ok(check.met_by_list_len(c.get_list_length(&l)?))
        })
    }

    /// Wait until a list has exactly `len` entries (SmartRedis' `poll_list_length`).
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
        self.poll_len(list, WaitFor::ListLen(len), interval_ms, tries)
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
        self.poll_len(list, WaitFor::ListLenAtLeast(len), interval_ms, tries)
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
        self.poll_len(list, WaitFor::ListLenAtMost(len), interval_ms, tries)
    }

    fn list_entries(&mut self, key: &str, start: i64, end: i64) -> Result<Vec<Bytes>> {
        if let Some(i) = self.con.inproc() {
            return i.engine.list_range(key.as_bytes(), start, end);
        }
        array(
            self.call(Cmd::new("LRANGE").with(key).with(start).with(end))?,
            "LRANGE",
        )?
        .into_iter()
        .map(|e| bulk(e, "LRANGE"))
        .collect()
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
        let entries = self.list_entries(&key, start, end)?;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let base = String::from_utf8_lossy(&e).into_owned();
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
        self.call(Cmd::new("DEL").with(key)).map(|_| ())
    }

    /// Copy a list's entries to another list (replacing it).
    ///
    /// # Errors
    /// `NotFound` when the source is empty or missing.
    pub fn copy_list(&mut self, src: &str, dst: &str) -> Result<()> {
        let from = self.keys.list_key(src, true);
        let to = self.keys.list_key(dst, false);
        let entries = self.list_entries(&from, 0, -1)?;
        if entries.is_empty() {
            return Err(Error::err(
                ErrorCode::NotFound,
                format!("list '{src}' does not exist"),
            ));
        }
        let mut push = Cmd::new("RPUSH").with(&to);
        for e in entries {
            push.arg(e);
        }
        for f in self.con.pipeline(vec![Cmd::new("DEL").with(&to), push])? {
            ok_frame(f)?;
        }
        Ok(())
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
        if let Some(i) = self.con.inproc() {
            let key = self.keys.model_key(name, false);
            let blob = Bytes::copy_from_slice(model);
            let (k, spec, blob) = crate::cmd::modelstore_request(key.as_bytes(), opts, &blob)?;
            i.finish(i.engine.store_model(k, spec, blob)?)?;
            self.model_io.remove(&key);
            return Ok(());
        }
        let chunk = match self.call(Cmd::new("AI.CONFIG").with("GET").with("MODEL_CHUNK_SIZE"))? {
            Frame::Integer(n) if n > 0 => n as usize,
            _ => model.len().max(1),
        };
        let key = self.keys.model_key(name, false);
        let c = Cmd(crate::cmd::encode_modelstore(
            key.as_bytes(),
            opts,
            &Bytes::copy_from_slice(model),
            chunk,
        ));
        // On every shard of a cluster (ASKING: here, whatever the key's slot), so that a
        // run finds the model beside its inputs wherever they live.
        self.on_every_node(c, true)?;
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
        bulk(
            self.call(Cmd::new("AI.MODELGET").with(key).with("BLOB"))?,
            "AI.MODELGET",
        )
    }

    /// Delete a model.
    ///
    /// # Errors
    /// `NotFound` (`ERR model key is empty`).
    pub fn delete_model(&mut self, name: &str) -> Result<()> {
        let key = self.keys.model_key(name, true);
        self.model_io.remove(&key);
        let del = Cmd::new("AI.MODELDEL").with(key);
        match self.con.cluster() {
            // From every shard; an error where it was stored is the answer.
            Some(cl) => {
                let mut first_err = None;
                let mut deleted = false;
                for replies in cl.on_every_node(&[Cmd::new("ASKING"), del])? {
                    match replies.into_iter().nth(1) {
                        Some(Frame::Error(e)) => first_err = first_err.or(Some(e)),
                        Some(_) => deleted = true,
                        None => {}
                    }
                }
                match (deleted, first_err) {
                    (false, Some(e)) => Err(e),
                    _ => Ok(()),
                }
            }
            None => self.call(del).map(|_| ()),
        }
    }

    /// Whether a model exists.
    ///
    /// # Errors
    /// Connection errors.
    pub fn model_exists(&mut self, name: &str) -> Result<bool> {
        let key = self.keys.model_key(name, true);
        self.key_exists(&key)
    }

    /// Wait for a model, up to `tries * interval_ms` ms, on the server.
    ///
    /// # Errors
    /// Connection errors.
    pub fn poll_model(&mut self, name: &str, interval_ms: u64, tries: u32) -> Result<bool> {
        let key = self.keys.model_key(name, true);
        self.poll_key(&key, interval_ms, tries)
    }

    /// Run a model on stored tensors, storing its outputs (`AI.MODELEXECUTE`). Tensor
    /// names are prefixed like any tensor. In process, a model without batching runs on
    /// the calling thread.
    ///
    /// # Errors
    /// Missing model or inputs, inputs that do not fit the model, `Timeout`.
    pub fn run_model(&mut self, name: &str, inputs: &[&str], outputs: &[&str]) -> Result<()> {
        if let Some(i) = self.con.inproc() {
            let k = &self.keys;
            let mut keys: Vec<std::borrow::Cow<'_, [u8]>> =
                Vec::with_capacity(inputs.len() + outputs.len());
            keys.extend(inputs.iter().map(|i| cow_bytes(k.tensor_key_cow(i, true))));
            keys.extend(
                outputs
                    .iter()
                    .map(|o| cow_bytes(k.tensor_key_cow(o, false))),
            );
            let (ins, outs) = keys.split_at(inputs.len());
            let loaded = i.engine.model(k.model_key_cow(name, true).as_bytes())?;
            let opts = RunOptions {
                deadline: None,
                inline: true,
            };
            return i.finish(i.engine.run_model(&loaded, ins, outs, opts)?);
        }
        let key = self.keys.model_key(name, true);
        let ins: Vec<String> = inputs
            .iter()
            .map(|i| self.keys.tensor_key(i, true))
            .collect();
        let outs: Vec<String> = outputs
            .iter()
            .map(|o| self.keys.tensor_key(o, false))
            .collect();
        if self.con.cluster().is_some() {
            return self.run_model_in_cluster(&key, &ins, &outs);
        }
        let c = Cmd(crate::cmd::encode_modelexecute(key.as_bytes(), &ins, &outs));
        match self.call(c)? {
            Frame::Simple(s) if s.as_ref() == b"TIMEDOUT" => {
                Err(Error::new(ErrorCode::Timeout, "TIMEDOUT"))
            }
            _ => Ok(()),
        }
    }

    /// `run_model` in a cluster: the model is on every shard, so the run goes to the node
    /// of the inputs' slot. When the inputs and outputs do not all share one slot (no
    /// common hash tag), the other inputs are copied beside the first under temporary
    /// keys of its slot, the run writes its outputs there too, and they are moved to
    /// their keys after.
    fn run_model_in_cluster(&mut self, model: &str, ins: &[String], outs: &[String]) -> Result<()> {
        let timed_out = |f: &Frame| matches!(f, Frame::Simple(s) if s.as_ref() == b"TIMEDOUT");
        let slots: Vec<u16> = ins
            .iter()
            .chain(outs)
            .map(|k| crate::engine::cluster::key_slot(k.as_bytes()))
            .collect();
        let Some(&home) = slots.first() else {
            return Err(Error::bad_input("a model run needs inputs"));
        };
        let run_on = |c: &mut Client, ins: &[String], outs: &[String]| -> Result<()> {
            let cmd = Cmd(crate::cmd::encode_modelexecute(model.as_bytes(), ins, outs));
            let Some(cl) = c.con.cluster() else {
                return Err(Error::err(ErrorCode::Internal, "not a cluster connection"));
            };
            let node = cl.node_of_slot(home)?;
            let f = cl
                .exchange_on(&node, std::slice::from_ref(&cmd))?
                .pop()
                .ok_or_else(|| Error::err(ErrorCode::Internal, "no reply to a command"))?;
            match f {
                Frame::Error(e) => Err(e),
                f if timed_out(&f) => Err(Error::new(ErrorCode::Timeout, "TIMEDOUT")),
                _ => Ok(()),
            }
        };
        if slots.iter().all(|&s| s == home) {
            return run_on(self, ins, outs);
        }
        let beside = |i: usize, what: &str| -> Result<String> {
            cluster::key_beside(ins[0].as_bytes(), &format!(".insitu.{what}.{i}.{}", std::process::id()))
                .map(|k| String::from_utf8_lossy(&k).into_owned())
                .ok_or_else(|| {
                    Error::bad_input(format!(
                        "the inputs and outputs of run_model hash to several cluster slots and '{}' cannot serve as a hash tag: give them a common {{tag}}",
                        ins[0]
                    ))
                })
        };
        let mut temps = Vec::new();
        let mut run_ins = vec![ins[0].clone()];
        for (i, k) in ins.iter().enumerate().skip(1) {
            if crate::engine::cluster::key_slot(k.as_bytes()) == home {
                run_ins.push(k.clone());
                continue;
            }
            let t = self.get_tensor_key(k)?;
            let tmp = beside(i, "in")?;
            self.call(tensorset(&tmp, &t))?;
            temps.push(tmp.clone());
            run_ins.push(tmp);
        }
        let run_outs: Vec<String> = outs
            .iter()
            .enumerate()
            .map(|(i, k)| {
                if crate::engine::cluster::key_slot(k.as_bytes()) == home {
                    Ok(k.clone())
                } else {
                    beside(i, "out")
                }
            })
            .collect::<Result<_>>()?;
        let r = run_on(self, &run_ins, &run_outs).and_then(|()| {
            for (tmp, real) in run_outs.iter().zip(outs) {
                if tmp != real {
                    let t = self.get_tensor_key(tmp)?;
                    self.call(tensorset(real, &t))?;
                    temps.push(tmp.clone());
                }
            }
            Ok(())
        });
        for t in temps {
            let _ = self.call(Cmd::new("DEL").with(t));
        }
        r
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
        let items = array(
            self.call(Cmd::new("AI.MODELGET").with(&key).with("META"))?,
            "AI.MODELGET",
        )?;
        let mut io = (Vec::new(), Vec::new());
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let k = bulk(k, "AI.MODELGET")?;
            let names = |v: Frame| -> Result<Vec<String>> {
                array(v, "AI.MODELGET")?
                    .into_iter()
                    .map(|n| {
                        bulk(n, "AI.MODELGET").map(|b| String::from_utf8_lossy(&b).into_owned())
                    })
                    .collect()
            };
            match k.as_ref() {
                b"inputs" => io.0 = names(v)?,
                b"outputs" => io.1 = names(v)?,
                _ => {}
            }
        }
        self.model_io.insert(key, io.clone());
        Ok(io)
    }

    /// Run a model on `inputs` and return its outputs in one round trip
    /// (`AI.DAGEXECUTE`): nothing is stored.
    ///
    /// # Errors
    /// Missing model, inputs that do not fit it, `Timeout`.
    pub fn infer(&mut self, name: &str, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let key = self.keys.model_key(name, true);
        if let Some(i) = self.con.inproc() {
            let loaded = i.engine.model(key.as_bytes())?;
            let opts = RunOptions {
                deadline: None,
                inline: true,
            };
            return i.finish(i.engine.infer(&loaded, inputs.into(), opts)?);
        }
        let (_, outs) = self.model_io(name)?;
        let c = Cmd(crate::cmd::encode_infer(key.as_bytes(), inputs, outs.len()));
        crate::cmd::decode_infer(self.call(c)?, inputs.len())
    }

    /// A model's run statistics (`AI.INFO`).
    ///
    /// # Errors
    /// `NotFound` when no such model.
    pub fn model_info(&mut self, name: &str) -> Result<ModelInfo> {
        let key = self.keys.model_key(name, true);
        let items = array(self.call(Cmd::new("AI.INFO").with(key))?, "AI.INFO")?;
        let mut info = ModelInfo::default();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let n = if let Frame::Integer(n) = v {
                n.max(0) as u64
            } else {
                0
            };
            match bulk(k, "AI.INFO")?.as_ref() {
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
        self.call(Cmd::new("AI.INFO").with(key).with("RESETSTAT"))
            .map(|_| ())
    }

    // ----- server -----

    /// `INFO [section]` parsed into `(section, key, value)` triples.
    ///
    /// # Errors
    /// Connection errors.
    pub fn info(&mut self, section: &str) -> Result<Vec<(String, String, String)>> {
        let text = bulk(self.call(Cmd::new("INFO").with(section))?, "INFO")?;
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

    /// Remove every key.
    ///
    /// # Errors
    /// Connection errors.
    pub fn flush_db(&mut self) -> Result<()> {
        self.on_every_node(Cmd::new("FLUSHDB"), false)
    }

    /// Run a command on the server, or on every node of a cluster (after `ASKING` with
    /// `asking`: served there whatever its key's slot); the first error reply is the
    /// answer.
    fn on_every_node(&mut self, cmd: Cmd, asking: bool) -> Result<()> {
        match self.con.cluster() {
            Some(c) => {
                let cmds = if asking {
                    vec![Cmd::new("ASKING"), cmd]
                } else {
                    vec![cmd]
                };
                for replies in c.on_every_node(&cmds)? {
                    for f in replies {
                        ok_frame(f)?;
                    }
                }
                Ok(())
            }
            None => self.call(cmd).map(|_| ()),
        }
    }

    /// Write a snapshot (`SAVE`).
    ///
    /// # Errors
    /// The server's I/O error.
    pub fn save(&mut self) -> Result<()> {
        self.on_every_node(Cmd::new("SAVE"), false)
    }
}

/// The error of a commit naming a block its connection no longer has (the connection
/// was replaced after the loan).
fn lost_loan(e: &Error) -> bool {
    e.text().ends_with("is not lent to this connection")
}
