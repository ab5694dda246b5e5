//! Append-only persistence: every change to the store is appended to a journal before its
//! reply leaves the server, so a crash of the server process loses no acknowledged write,
//! and a crash of the machine at most the last second of writes (`appendfsync everysec`).
//!
//! The layout follows Redis 7's multi-part AOF. A directory (`appendonlydir` under `dir`)
//! holds a manifest, one base file and one or more incremental files:
//!
//! ```text
//! appendonlydir/insitu.aof.manifest   "insitu-aof 1", then "base <file>" and "incr <file>" lines
//! appendonlydir/insitu.aof.3.base     a snapshot (the format of `persist`)
//! appendonlydir/insitu.aof.3.incr     magic, then one record per change
//! ```
//!
//! A record is a `u64` length, a CRC-32 of the body and the body: an operation byte and
//! its operands — SET (a whole key and value, in the snapshot's entry encoding), DEL,
//! RENAME, CLEAR, HSET, HDEL, PUSH. Records are appended while the changed key's shard is
//! locked, so the journal's order is the order the store applied them in.
//!
//! A rewrite compacts the journal: with every shard locked for a moment, the current
//! incremental file is closed and a new one opened (the manifest names both), then the
//! store's contents are written as the new base in the background, and the manifest
//! switched to the new base and incremental file; a crash at any point leaves a manifest
//! whose files hold every write. Rewrites start on `BGREWRITEAOF` or when the journal has
//! grown by `auto-aof-rewrite-percentage` since the last one.
//!
//! On start the base is loaded and the incremental files replayed. A record cut short at
//! the end of the last file (the process died mid-write: its reply was never sent) is
//! dropped and the file truncated, with a warning; a damaged record anywhere else stops
//! the start with an error naming the file and offset.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::error::{Error, ErrorCode, Result};
use crate::persistence::snapshot;
use crate::store::{Change, ChangeSink, Store};

/// When the journal is flushed to the disk (`appendfsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Before every reply that follows a write: nothing acknowledged is ever lost.
    Always,
    /// Once a second: a machine crash loses at most the last second (the default).
    EverySec,
    /// Left to the operating system.
    No,
}

impl FsyncPolicy {
    /// Parse `always`, `everysec` or `no`.
    pub fn parse(s: &str) -> Option<FsyncPolicy> {
        match s.to_ascii_lowercase().as_str() {
            "always" => Some(FsyncPolicy::Always),
            "everysec" => Some(FsyncPolicy::EverySec),
            "no" => Some(FsyncPolicy::No),
            _ => None,
        }
    }

    /// The name `CONFIG GET appendfsync` shows.
    pub fn name(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::EverySec => "everysec",
            FsyncPolicy::No => "no",
        }
    }

    fn from_u8(v: u8) -> FsyncPolicy {
        match v {
            0 => FsyncPolicy::Always,
            2 => FsyncPolicy::No,
            _ => FsyncPolicy::EverySec,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            FsyncPolicy::Always => 0,
            FsyncPolicy::EverySec => 1,
            FsyncPolicy::No => 2,
        }
    }
}

/// Append-only persistence settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AofConfig {
    /// Journal every change (`appendonly`).
    pub enabled: bool,
    /// When to fsync (`appendfsync`).
    pub fsync: FsyncPolicy,
    /// The directory under `dir` holding the files (`appenddirname`): a plain name.
    pub dirname: String,
    /// The files' common name (`appendfilename`): a plain name.
    pub filename: String,
    /// Rewrite when the journal has grown by this percentage since the last rewrite
    /// (0: never automatically).
    pub rewrite_percentage: usize,
    /// ...and is at least this many bytes.
    pub rewrite_min_size: usize,
}

impl Default for AofConfig {
    fn default() -> Self {
        AofConfig {
            enabled: false,
            fsync: FsyncPolicy::EverySec,
            dirname: "appendonlydir".into(),
            filename: "insitu.aof".into(),
            rewrite_percentage: 100,
            rewrite_min_size: 64 << 20,
        }
    }
}

/// Check that `name` (a setting's value) is a plain file name: files are only ever written
/// inside the configured directory.
///
/// # Errors
/// Empty, `.`/`..`, or containing a path separator or NUL.
pub fn check_plain_name(setting: &str, name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(Error::bad_input(format!(
            "{setting} must be a plain file name, not '{name}'"
        )));
    }
    Ok(())
}

const OP_SET: u8 = 1;
const OP_DEL: u8 = 2;
const OP_RENAME: u8 = 3;
const OP_CLEAR: u8 = 4;
const OP_HSET: u8 = 5;
const OP_HDEL: u8 = 6;
const OP_PUSH: u8 = 7;

const INCR_MAGIC: &[u8; 8] = b"INSITUJ1";
const MANIFEST_HEADER: &str = "insitu-aof 1";
/// Records are gathered in memory up to this size, then written.
const BUF_LIMIT: usize = 1 << 20;
/// Payloads at least this large are written from where they are, not copied first.
const DIRECT_TAIL: usize = 1 << 20;

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u64).to_le_bytes());
    out.extend_from_slice(b);
}

fn put_list(out: &mut Vec<u8>, items: &[Bytes]) {
    out.extend_from_slice(&(items.len() as u64).to_le_bytes());
    for i in items {
        put_bytes(out, i);
    }
}

/// Append `op`'s body to `out`; returns the bytes that follow it (see
/// [`snapshot::encode_entry`]).
fn encode<'v>(out: &mut Vec<u8>, op: &Change<'v>) -> &'v [u8] {
    match *op {
        Change::Set(k, v) => {
            out.push(OP_SET);
            snapshot::encode_entry(out, k, v)
        }
        Change::Del(k) => {
            out.push(OP_DEL);
            put_bytes(out, k);
            &[]
        }
        Change::Rename(a, b) => {
            out.push(OP_RENAME);
            put_bytes(out, a);
            put_bytes(out, b);
            &[]
        }
        Change::Clear => {
            out.push(OP_CLEAR);
            &[]
        }
        Change::HSet(k, pairs) => {
            out.push(OP_HSET);
            put_bytes(out, k);
            put_list(out, pairs);
            &[]
        }
        Change::HDel(k, fields) => {
            out.push(OP_HDEL);
            put_bytes(out, k);
            put_list(out, fields);
            &[]
        }
        Change::Push(k, front, items) => {
            out.push(OP_PUSH);
            put_bytes(out, k);
            out.push(front as u8);
            put_list(out, items);
            &[]
        }
    }
}

/// Why a record could not be replayed.
enum ReplayError {
    /// The bytes do not decode: the file is damaged.
    Decode(String),
    /// The store refused the change (it contradicts what came before).
    Apply(Error),
}

impl From<String> for ReplayError {
    fn from(s: String) -> Self {
        ReplayError::Decode(s)
    }
}

/// Decode one record body and apply it to `store`.
fn apply(store: &Store, body: &[u8]) -> std::result::Result<(), ReplayError> {
    let mut r = snapshot::Reader::new(body);
    let io = |e: std::io::Error| e.to_string();
    let list = |r: &mut snapshot::Reader<&[u8]>| -> std::result::Result<Vec<Bytes>, String> {
        let n = r.count().map_err(io)?;
        let mut v = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            v.push(r.bytes().map_err(io)?);
        }
        Ok(v)
    };
    let applied = match r.u8().map_err(io)? {
        OP_SET => {
            let kind = r.u8().map_err(io)?;
            let (k, v) = r.read_entry(kind)?;
            store.set(k, v)
        }
        OP_DEL => store.delete(&r.bytes().map_err(io)?).map(|_| ()),
        OP_RENAME => {
            let a = r.bytes().map_err(io)?;
            let b = r.bytes().map_err(io)?;
            store.rename(&a, b)
        }
        OP_CLEAR => store.clear(),
        OP_HSET => {
            let k = r.bytes().map_err(io)?;
            let pairs = list(&mut r)?;
            if pairs.len() % 2 != 0 {
                return Err(ReplayError::Decode(
                    "HSET with an odd number of fields and values".into(),
                ));
            }
            store.hset(&k, &pairs).map(|_| ())
        }
        OP_HDEL => {
            let k = r.bytes().map_err(io)?;
            let fields = list(&mut r)?;
            store.hdel(&k, &fields).map(|_| ())
        }
        OP_PUSH => {
            let k = r.bytes().map_err(io)?;
            let front = r.u8().map_err(io)? != 0;
            let items = list(&mut r)?;
            store.push(&k, &items, front).map(|_| ())
        }
        op => return Err(format!("unknown operation {op}").into()),
    };
    applied.map_err(ReplayError::Apply)
}

/// The manifest: which files hold the data, in order.
#[derive(Debug, Clone, Default, PartialEq)]
struct Manifest {
    base: Option<String>,
    incrs: Vec<String>,
}

impl Manifest {
    fn read(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), &e))?;
        let bad = |what: &str| {
            Error::err(
                ErrorCode::Io,
                format!("append-only manifest {} is corrupt: {what}", path.display()),
            )
        };
        let mut lines = text.lines();
        if lines.next() != Some(MANIFEST_HEADER) {
            return Err(bad("missing header"));
        }
        let mut m = Manifest::default();
        for line in lines.filter(|l| !l.is_empty()) {
            let (kind, name) = line.split_once(' ').ok_or_else(|| bad(line))?;
            check_plain_name("a manifest entry", name).map_err(|_| bad(line))?;
            match kind {
                "base" if m.base.is_none() && m.incrs.is_empty() => m.base = Some(name.into()),
                "incr" => m.incrs.push(name.into()),
                _ => return Err(bad(line)),
            }
        }
        Ok(m)
    }

    fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut text = format!("{MANIFEST_HEADER}\n");
        if let Some(b) = &self.base {
            text.push_str(&format!("base {b}\n"));
        }
        for i in &self.incrs {
            text.push_str(&format!("incr {i}\n"));
        }
        let tmp = path.with_extension("manifest.tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        snapshot::sync_dir(path);
        Ok(())
    }

    /// The sequence number in a file name `<name>.<n>.base|incr`.
    fn seq_of(name: &str) -> u64 {
        name.rsplit('.')
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    fn last_seq(&self) -> u64 {
        self.base
            .iter()
            .chain(&self.incrs)
            .map(|n| Manifest::seq_of(n))
            .max()
            .unwrap_or(0)
    }
}

struct Inner {
    manifest: Manifest,
    /// The incremental file records go to.
    file: Arc<File>,
    /// Its length: every byte before it is a whole record, written.
    written: u64,
    /// Records not yet written.
    buf: Vec<u8>,
    /// Written since the last fsync.
    unsynced: bool,
    /// Bytes of the base and every incremental file but the current one.
    other_bytes: u64,
    /// The total size right after the last rewrite.
    base_size: u64,
    seq: u64,
}

/// The journal of a store. Created by [`Journal::open`], attached as the store's
/// [`ChangeSink`] (`Store::set_change_sink`).
pub struct Journal {
    dir: PathBuf,
    name: String,
    inner: Mutex<Inner>,
    policy: AtomicU8,
    /// The last write failed: the store refuses changes until a write succeeds.
    failed: AtomicBool,
    error: Mutex<Option<String>>,
    rewriting: AtomicBool,
    last_rewrite_ok: AtomicBool,
    /// No automatic rewrite before this, after one failed (e.g. a full disk).
    rewrite_backoff: Mutex<Option<std::time::Instant>>,
    /// Records wait in the buffer (lets replies skip the lock when none do).
    pending: AtomicBool,
}

fn open_incr(path: &Path, create: bool) -> std::io::Result<(File, u64)> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(create)
        .open(path)?;
    if create {
        f.write_all(INCR_MAGIC)?;
        f.sync_all()?;
        snapshot::sync_dir(path);
    }
    let len = f.seek(SeekFrom::End(0))?;
    Ok((f, len))
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

impl ChangeSink for Journal {
    /// The error that stops writes, if the last write to the journal failed.
    fn check(&self) -> Result<()> {
        if !self.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        let e = self.error.lock().clone().unwrap_or_default();
        Err(Error::new(
            ErrorCode::Io,
            format!("MISCONF Errors writing to the AOF file: {e}"),
        ))
    }

    /// Append `op`. Called with the changed key's shard locked, after the change.
    fn record(&self, op: Change<'_>) {
        let mut g = self.inner.lock();
        let start = g.buf.len();
        g.buf.extend_from_slice(&[0u8; 12]);
        let tail = encode(&mut g.buf, &op);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&g.buf[start + 12..]);
        crc.update(tail);
        let len = (g.buf.len() - start - 12 + tail.len()) as u64;
        g.buf[start..start + 8].copy_from_slice(&len.to_le_bytes());
        g.buf[start + 8..start + 12].copy_from_slice(&crc.finalize().to_le_bytes());
        if tail.len() >= DIRECT_TAIL && !self.failed.load(Ordering::Relaxed) {
            self.write_out(&mut g, tail);
        } else {
            g.buf.extend_from_slice(tail);
            self.pending.store(true, Ordering::Release);
            if g.buf.len() >= BUF_LIMIT {
                self.write_out(&mut g, &[]);
            }
        }
    }
}

impl Journal {
    fn manifest_path(dir: &Path, name: &str) -> PathBuf {
        dir.join(format!("{name}.manifest"))
    }

    /// Open the journal in `dir`, loading what it holds into `store` (which must be
    /// empty). Without a manifest, a new journal is started; the store's current contents
    /// (e.g. a snapshot loaded before) are written as its base.
    ///
    /// # Errors
    /// Files that cannot be read or written; a damaged manifest, base or record other than
    /// a last record cut short.
    pub fn open(dir: &Path, config: &AofConfig, store: &Store) -> Result<(Arc<Journal>, usize)> {
        check_plain_name("appenddirname", &config.dirname)?;
        check_plain_name("appendfilename", &config.filename)?;
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), &e))?;
        let name = config.filename.clone();
        let mpath = Journal::manifest_path(dir, &name);
        let fresh = !mpath.exists();
        let manifest = if fresh {
            Manifest::default()
        } else {
            Manifest::read(&mpath)?
        };
        let mut loaded = 0;
        if let Some(base) = &manifest.base {
            for (k, v) in snapshot::load(&dir.join(base))? {
                store.set(k, v)?;
                loaded += 1;
            }
        }
        for (i, incr) in manifest.incrs.iter().enumerate() {
            let last = i + 1 == manifest.incrs.len();
            loaded += replay(&dir.join(incr), store, last)?;
        }
        let mut manifest = manifest;
        let seq = manifest.last_seq().max(1);
        let current = match manifest.incrs.last() {
            Some(n) => n.clone(),
            None => {
                let n = format!("{name}.{seq}.incr");
                manifest.incrs.push(n.clone());
                n
            }
        };
        let cpath = dir.join(&current);
        let (file, written) = open_incr(&cpath, !cpath.exists())
            .map_err(|e| Error::io(format!("cannot open {}", cpath.display()), &e))?;
        manifest
            .write(&mpath)
            .map_err(|e| Error::io(format!("cannot write {}", mpath.display()), &e))?;
        let other_bytes: u64 = manifest
            .base
            .iter()
            .chain(&manifest.incrs[..manifest.incrs.len() - 1])
            .map(|n| file_len(&dir.join(n)))
            .sum();
        let j = Arc::new(Journal {
            dir: dir.to_path_buf(),
            name,
            inner: Mutex::new(Inner {
                manifest,
                file: Arc::new(file),
                written,
                buf: Vec::new(),
                unsynced: false,
                other_bytes,
                base_size: other_bytes + written,
                seq,
            }),
            policy: AtomicU8::new(config.fsync.to_u8()),
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
            rewriting: AtomicBool::new(false),
            last_rewrite_ok: AtomicBool::new(true),
            rewrite_backoff: Mutex::new(None),
            pending: AtomicBool::new(false),
        });
        if fresh && !store.is_empty() {
            // Data from a snapshot: make it the journal's base now.
            j.rewrite(store)?;
        }
        Ok((j, loaded))
    }

    /// The fsync policy.
    pub fn policy(&self) -> FsyncPolicy {
        FsyncPolicy::from_u8(self.policy.load(Ordering::Relaxed))
    }

    /// Change the fsync policy.
    pub fn set_policy(&self, p: FsyncPolicy) {
        self.policy.store(p.to_u8(), Ordering::Relaxed);
    }

    /// Write the gathered records and `tail` (the end of the last one). On failure the
    /// file is cut back to its last whole record and the bytes kept for the next try.
    fn write_out(&self, g: &mut Inner, tail: &[u8]) -> bool {
        if g.buf.is_empty() && tail.is_empty() {
            return true;
        }
        let file = g.file.clone();
        let r = (|| -> std::io::Result<()> {
            let mut f = &*file;
            let mut parts = [&g.buf[..], tail];
            let mut first = 0;
            while first < parts.len() {
                let slices: Vec<std::io::IoSlice<'_>> = parts[first..]
                    .iter()
                    .map(|p| std::io::IoSlice::new(p))
                    .collect();
                let n = f.write_vectored(&slices)?;
                if n == 0 {
                    return Err(std::io::ErrorKind::WriteZero.into());
                }
                let mut n = n;
                while first < parts.len() && n >= parts[first].len() {
                    n -= parts[first].len();
                    first += 1;
                }
                if first < parts.len() {
                    parts[first] = &parts[first][n..];
                }
            }
            Ok(())
        })();
        match r {
            Ok(()) => {
                g.written += (g.buf.len() + tail.len()) as u64;
                g.buf.clear();
                self.pending.store(false, Ordering::Release);
                g.unsynced = true;
                if self.failed.swap(false, Ordering::AcqRel) {
                    tracing::warn!("append-only file writable again");
                }
                true
            }
            Err(e) => {
                let _ = file.set_len(g.written);
                let _ = (&*file).seek(SeekFrom::End(0));
                g.buf.extend_from_slice(tail);
                self.pending.store(true, Ordering::Release);
                if !self.failed.swap(true, Ordering::AcqRel) {
                    tracing::error!("cannot write the append-only file: {e}; refusing writes");
                }
                *self.error.lock() = Some(e.to_string());
                false
            }
        }
    }

    /// Make every record so far reach the file (and the disk, with `appendfsync
    /// always`) before replies that follow it are sent.
    ///
    /// # Errors
    /// With `always`, when the records cannot be written or synced: the replies must not
    /// be sent. Other policies keep the records for the next try and refuse new writes.
    pub fn flush_for_reply(&self) -> Result<()> {
        let policy = self.policy();
        // The flag is set under the lock by the writer before its command returns, so a
        // reply that acknowledges a write always sees it.
        if policy != FsyncPolicy::Always && !self.pending.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut g = self.inner.lock();
        let ok = self.write_out(&mut g, &[]);
        if policy != FsyncPolicy::Always {
            return Ok(());
        }
        if !ok {
            return self.check();
        }
        if g.unsynced {
            g.file
                .sync_data()
                .map_err(|e| Error::io("cannot fsync the append-only file", &e))?;
            g.unsynced = false;
        }
        Ok(())
    }

    /// The once-a-second work: write what is gathered, fsync (`everysec`), and start a
    /// rewrite when the journal has grown enough. Returns whether a rewrite is due.
    pub fn tick(&self, cfg: &AofConfig) -> bool {
        let (file, sync) = {
            let mut g = self.inner.lock();
            self.write_out(&mut g, &[]);
            let sync = g.unsynced && self.policy() == FsyncPolicy::EverySec;
            if sync {
                g.unsynced = false;
            }
            (g.file.clone(), sync)
        };
        if sync {
            if let Err(e) = file.sync_data() {
                tracing::error!("cannot fsync the append-only file: {e}");
            }
        }
        if self
            .rewrite_backoff
            .lock()
            .is_some_and(|t| std::time::Instant::now() < t)
        {
            return false;
        }
        let (size, base) = self.sizes();
        cfg.rewrite_percentage > 0
            && size >= cfg.rewrite_min_size as u64
            && size.saturating_sub(base) * 100 >= base.max(1) * cfg.rewrite_percentage as u64
            && !self.rewriting.load(Ordering::Acquire)
    }

    /// The journal's total size and its size right after the last rewrite, bytes.
    pub fn sizes(&self) -> (u64, u64) {
        let g = self.inner.lock();
        (g.other_bytes + g.written + g.buf.len() as u64, g.base_size)
    }

    /// Whether a rewrite runs now.
    pub fn rewriting(&self) -> bool {
        self.rewriting.load(Ordering::Acquire)
    }

    /// Whether the last rewrite succeeded.
    pub fn last_rewrite_ok(&self) -> bool {
        self.last_rewrite_ok.load(Ordering::Relaxed)
    }

    /// Whether the last write to the journal succeeded.
    pub fn write_ok(&self) -> bool {
        !self.failed.load(Ordering::Acquire)
    }

    /// Claim the right to rewrite (one at a time).
    ///
    /// # Errors
    /// When a rewrite runs already.
    pub fn begin_rewrite(&self) -> Result<()> {
        if self.rewriting.swap(true, Ordering::AcqRel) {
            return Err(Error::bad_input(
                "Background append only file rewriting already in progress",
            ));
        }
        Ok(())
    }

    /// Compact the journal into a new base holding `store`'s contents. Claims the rewrite
    /// itself unless [`Journal::begin_rewrite`] was called.
    ///
    /// # Errors
    /// Files that cannot be written; the journal then goes on with its current files.
    pub fn rewrite(&self, store: &Store) -> Result<()> {
        let _ = self.rewriting.swap(true, Ordering::AcqRel);
        let r = self.rewrite_claimed(store);
        self.last_rewrite_ok.store(r.is_ok(), Ordering::Relaxed);
        self.rewriting.store(false, Ordering::Release);
        if let Err(e) = &r {
            tracing::error!("append-only file rewrite failed: {e}; next automatic try in 60 s");
            *self.rewrite_backoff.lock() =
                Some(std::time::Instant::now() + std::time::Duration::from_secs(60));
        }
        r
    }

    fn rewrite_claimed(&self, store: &Store) -> Result<()> {
        let mpath = Journal::manifest_path(&self.dir, &self.name);
        // 0. Most of the current file reaches the disk first, outside the freeze, so the
        //    fsync under it (which orders the old file before the new one) is short.
        let file = {
            let mut g = self.inner.lock();
            self.write_out(&mut g, &[]);
            g.file.clone()
        };
        let _ = file.sync_data();
        // 1. With every shard locked (no change in flight): close the current
        //    incremental file and start the next one.
        let (entries, seq, new_incr) = store.freeze(|entries| -> Result<_> {
            let mut g = self.inner.lock();
            if !self.write_out(&mut g, &[]) {
                return Err(self.check().err().unwrap_or_else(|| {
                    Error::err(ErrorCode::Io, "cannot write the append-only file")
                }));
            }
            g.file
                .sync_data()
                .map_err(|e| Error::io("cannot fsync the append-only file", &e))?;
            let seq = g.seq + 1;
            let incr = format!("{}.{seq}.incr", self.name);
            let path = self.dir.join(&incr);
            let (file, written) = open_incr(&path, true)
                .map_err(|e| Error::io(format!("cannot create {}", path.display()), &e))?;
            let mut m = g.manifest.clone();
            m.incrs.push(incr.clone());
            m.write(&mpath)
                .map_err(|e| Error::io(format!("cannot write {}", mpath.display()), &e))?;
            g.other_bytes += g.written;
            g.manifest = m;
            g.file = Arc::new(file);
            g.written = written;
            g.unsynced = false;
            g.seq = seq;
            Ok((entries, seq, incr))
        })?;
        // 2. The new base, from the frozen contents, while writes go on.
        let base = format!("{}.{seq}.base", self.name);
        snapshot::save(&self.dir.join(&base), &entries)?;
        drop(entries);
        // 3. Switch the manifest to the new base and the new incremental file.
        let old = {
            let mut g = self.inner.lock();
            let old = g.manifest.clone();
            let m = Manifest {
                base: Some(base.clone()),
                incrs: vec![new_incr],
            };
            m.write(&mpath)
                .map_err(|e| Error::io(format!("cannot write {}", mpath.display()), &e))?;
            g.manifest = m;
            g.other_bytes = file_len(&self.dir.join(&base));
            g.base_size = g.other_bytes + g.written;
            old
        };
        for f in old.base.iter().chain(&old.incrs) {
            if *f != base && old.incrs.last() != Some(f) {
                let _ = std::fs::remove_file(self.dir.join(f));
            }
        }
        Ok(())
    }
}

impl Drop for Journal {
    /// The last records reach the file (and the disk) when the store goes away without
    /// a server shutdown (an engine in a process that ends).
    fn drop(&mut self) {
        let mut g = self.inner.lock();
        if self.write_out(&mut g, &[]) && g.unsynced {
            let _ = g.file.sync_data();
        }
    }
}

/// Replay the incremental file at `path` into `store`; returns the records applied. A
/// record cut short at the end of the `last` file is dropped and the file truncated.
fn replay(path: &Path, store: &Store, last: bool) -> Result<usize> {
    let corrupt = |at: u64, what: &str| {
        Error::err(
            ErrorCode::Io,
            format!(
                "append-only file {} is corrupt at byte {at}: {what}",
                path.display()
            ),
        )
    };
    let file =
        File::open(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), &e))?;
    let size = file
        .metadata()
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), &e))?
        .len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0u8; 8];
    if r.read_exact(&mut magic).is_err() || &magic != INCR_MAGIC {
        return Err(corrupt(0, "not an insitu append-only file (bad magic)"));
    }
    let mut at = INCR_MAGIC.len() as u64;
    let mut n = 0;
    let cut = |at: u64, what: &str| -> Result<usize> {
        if !last {
            return Err(corrupt(at, what));
        }
        tracing::warn!(
            "append-only file {} ends with an incomplete record at byte {at} ({what}); \
             dropping it (its reply was never sent)",
            path.display()
        );
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(at))
            .map_err(|e| Error::io(format!("cannot truncate {}", path.display()), &e))?;
        Ok(0)
    };
    loop {
        if at == size {
            return Ok(n);
        }
        let mut head = [0u8; 12];
        if r.read_exact(&mut head).is_err() {
            return cut(at, "truncated header").map(|_| n);
        }
        let len = u64::from_le_bytes(head[..8].try_into().unwrap_or_default());
        let crc = u32::from_le_bytes(head[8..].try_into().unwrap_or_default());
        // The header was read whole, so `at + 12 <= size`; a length is checked against
        // what is left before any sum that could overflow.
        let left = size.saturating_sub(at + 12);
        if len > left {
            return cut(at, "truncated record").map(|_| n);
        }
        if len == 0 {
            return Err(corrupt(at, "empty record"));
        }
        let mut body = vec![0u8; len as usize];
        if r.read_exact(&mut body).is_err() {
            return cut(at, "truncated record").map(|_| n);
        }
        if crc32fast::hash(&body) != crc {
            if len == left {
                return cut(at, "checksum mismatch in the last record").map(|_| n);
            }
            return Err(corrupt(at, "checksum mismatch"));
        }
        match apply(store, &body) {
            Ok(()) => {}
            Err(ReplayError::Decode(e)) => return Err(corrupt(at, &e)),
            Err(ReplayError::Apply(e)) => {
                return Err(Error::err(
                    ErrorCode::Io,
                    format!(
                        "cannot replay append-only file {} at byte {at}: {}",
                        path.display(),
                        e.message()
                    ),
                ))
            }
        }
        n += 1;
        at += 12 + len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Value;

    #[test]
    fn a_failed_write_refuses_changes_until_the_journal_is_writable_again() {
        let dir = std::env::temp_dir().join(format!("insitu-aof-full-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::new(0);
        let cfg = AofConfig {
            enabled: true,
            fsync: FsyncPolicy::Always,
            ..AofConfig::default()
        };
        let (j, _) = Journal::open(&dir, &cfg, &store).unwrap();
        store.set_change_sink(j.clone());
        store
            .set(Bytes::from_static(b"a"), Value::String("1".into()))
            .unwrap();
        j.flush_for_reply().unwrap();
        // The disk fills up: the next write fails, and with it the reply.
        let good = std::mem::replace(
            &mut j.inner.lock().file,
            Arc::new(OpenOptions::new().write(true).open("/dev/full").unwrap()),
        );
        store
            .set(Bytes::from_static(b"b"), Value::String("2".into()))
            .unwrap();
        let e = j.flush_for_reply().unwrap_err();
        let text = "MISCONF Errors writing to the AOF file: No space left on device (os error 28)";
        assert_eq!(e.text(), text);
        assert!(!j.write_ok());
        // Every kind of change is refused, nothing changes.
        let refused = [
            store
                .set(Bytes::from_static(b"c"), Value::String("3".into()))
                .unwrap_err(),
            store.delete(b"a").unwrap_err(),
            store.rename(b"a", Bytes::from_static(b"z")).unwrap_err(),
            store.clear().unwrap_err(),
            store
                .hset(b"h", &[Bytes::from_static(b"f"), Bytes::new()])
                .unwrap_err(),
            store.push(b"l", &[Bytes::new()], false).unwrap_err(),
        ];
        for e in refused {
            assert_eq!(e.text(), text);
        }
        assert_eq!(store.len(), 2);
        // Space again: the kept records are written, changes are taken again.
        j.inner.lock().file = good;
        assert!(!j.tick(&cfg));
        assert!(j.write_ok());
        store
            .set(Bytes::from_static(b"c"), Value::String("3".into()))
            .unwrap();
        j.flush_for_reply().unwrap();
        let again = Store::new(0);
        let (_, n) = Journal::open(&dir, &cfg, &again).unwrap();
        assert_eq!(n, 3, "a, b and c, each once");
        assert_eq!(again.snapshot().len(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A journal directory whose one incremental file holds `records` after the magic.
    fn journal_dir(tag: &str, records: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("insitu-aof-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("insitu.aof.manifest"),
            "insitu-aof 1\nincr insitu.aof.1.incr\n",
        )
        .unwrap();
        let mut incr = INCR_MAGIC.to_vec();
        incr.extend_from_slice(records);
        std::fs::write(dir.join("insitu.aof.1.incr"), &incr).unwrap();
        dir
    }

    fn record(op: Change<'_>) -> Vec<u8> {
        let mut body = Vec::new();
        let tail = encode(&mut body, &op);
        body.extend_from_slice(tail);
        let mut out = (body.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn a_record_the_store_refuses_stops_the_start_and_says_so() {
        let first = record(Change::Set(b"k", &Value::String("v".into())));
        let mut records = first.clone();
        records.extend_from_slice(&record(Change::HSet(
            b"k",
            &[Bytes::from_static(b"f"), Bytes::new()],
        )));
        records.extend_from_slice(&record(Change::Del(b"k")));
        let dir = journal_dir("apply", &records);
        let e = Journal::open(&dir, &AofConfig::default(), &Store::new(0))
            .err()
            .unwrap();
        assert_eq!(
            e.text(),
            format!(
                "ERR cannot replay append-only file {} at byte {}: WRONGTYPE Operation against a key holding the wrong kind of value",
                dir.join("insitu.aof.1.incr").display(),
                8 + first.len()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_record_claiming_more_bytes_than_there_are_is_cut_not_allocated() {
        // Found by the persisted_files fuzz target: a length near u64::MAX overflowed the
        // bounds check.
        let mut records = vec![0xff; 8];
        records.extend_from_slice(&[0; 4]);
        records.extend_from_slice(b"tail");
        let dir = journal_dir("len", &records);
        let store = Store::new(0);
        let (_, n) = Journal::open(&dir, &AofConfig::default(), &store).unwrap();
        assert_eq!(n, 0);
        assert_eq!(
            std::fs::read(dir.join("insitu.aof.1.incr")).unwrap(),
            INCR_MAGIC,
            "cut back to the last whole record"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
