//! Shared-memory transfers over a Unix socket: a heap of memory blocks on the server
//! that clients on the node map.
//!
//! Large tensors live in *blocks*: one anonymous memory file (`memfd_create`) each, sized
//! to a class, allocated and mapped once (pre-faulted) and then reused, so no transfer
//! pays for fresh pages. A put writes once into a block the server lends the connection,
//! and the block becomes the stored value without another copy; a get answers with a
//! reference to the stored block, which the client maps and reads in place. A block stays
//! valid while any reader holds it: a delete or overwrite drops the store's reference
//! only. Blocks have no names: when every process that mapped one has closed it —
//! including by crashing — the kernel frees it, so nothing is left behind.
//!
//! Who may touch what:
//! - A block lent for a put belongs to the client process it was lent to (the peer of the
//!   Unix socket, `SO_PEERCRED`; the connection alone when that is unknown): its
//!   descriptor (read-write) goes to that process alone, which writes it before
//!   committing. When the stored value is freed and no reader holds it, the block goes
//!   back to the same process for its next put, on any of its connections (a process
//!   that connects again reuses its blocks: no fresh pages). When the process has exited,
//!   or has had no connection for a few seconds, its free blocks are destroyed — never
//!   handed to another process.
//! - A reader of a block another connection wrote gets a read-only descriptor of that
//!   block alone (a new open of the file, `O_RDONLY`): it cannot map it writable, and no
//!   mapping reaches beyond the block.
//! - Block and hold numbers a client sends are looked up among those issued to its own
//!   connection only.
//!
//! Protocol extension (plain RESP clients never see it):
//! - `INSITU.SHM` → `+OK` on a Unix socket connection of a server that supports it.
//! - `INSITU.SHM ALLOC nbytes` → `[block, capacity, dev, ino, fd]`: a block of at least
//!   `nbytes` lent to this connection for a put; `dev, ino` name its memory file, `fd` is
//!   1 when its read-write descriptor comes with the reply (the first time this
//!   connection sees the block), else the client maps it already.
//! - `AI.TENSORSET key TYPE d1..dn SHM block nbytes`: the tensor's bytes are at the start
//!   of the lent block, which becomes the stored value.
//! - `AI.TENSORGET key META SHM` → like `META BLOB`, except that a tensor of at least
//!   [`SHM_MIN`] bytes comes as `"shm", [block, offset, nbytes, hold, writable, dev, ino,
//!   fd]`: the block's descriptor (read-write, `writable` 1, for a block of the reader's
//!   own process, else read-only) comes with the reply when `fd` is 1. The bytes stay as
//!   they are until the client releases the hold.
//! - `INSITU.SHM FD block` → `[writable, dev, ino]` with the descriptor of a block lent to
//!   or held by this connection, again: the client keeps a bounded cache of mappings and
//!   asks when a reference names a block it no longer maps.
//!
//! A client keeps its mappings in one cache per process, keyed by the file's identity
//! (a live mapping keeps its inode from being reused), so a block is mapped once
//! whichever connection names it.
//! - `INSITU.SHM RELEASE hold...` → the number released. A client sends it (pipelined
//!   with its next command) when it has dropped its views; holds of a closed connection
//!   are released with it.
//! - `INSITU.SHM RETURN block...` → the number returned: lent blocks the client will not
//!   use (it keeps a few spare blocks, one per size class, lent ahead of its next puts:
//!   a put writes into its spare and sends the commit pipelined with the `ALLOC` of the
//!   next spare, one round trip).
//! - `INSITU.SHM SPARES` → `[[block, capacity, dev, ino, fd]...]`: the blocks the
//!   connection's process freed, lent to this connection as its first spares (at most
//!   [`MAX_SPARES`], one per size class). A client sends it pipelined with the
//!   `INSITU.SHM` handshake, so a process that connects again puts into its own blocks
//!   at once, without an `ALLOC` round trip.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use parking_lot::Mutex;

use crate::error::{Error, ErrorCode, Result};

/// Tensors at least this large travel through shared memory on a Unix socket.
pub const SHM_MIN: usize = 256 * 1024;

/// Most file descriptors one connection may have waiting (received, not yet used).
pub const MAX_PENDING_FDS: usize = 64;

/// Most blocks lent to one connection and not yet committed.
pub const MAX_LENT: usize = 16;

/// Most spare blocks a client keeps lent ahead of its puts (one per size class in use).
pub const MAX_SPARES: usize = 4;

/// Most holds one connection may keep (further gets come through the socket).
pub const MAX_HOLDS: usize = 4096;

/// Most free blocks a connection keeps for its next puts; beyond, blocks are destroyed.
const MAX_FREE: usize = 8;

fn shm_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::err(ErrorCode::Io, format!("shared memory: {what}: {e}"))
}

/// A shared mapping of a memory file, unmapped when dropped.
pub struct Mapping {
    map: memmap2::MmapRaw,
    writable: bool,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mapping({} bytes)", self.map.len())
    }
}

impl Mapping {
    /// Map `len` bytes of `f`, shared, with its page tables filled at once (one call
    /// instead of a fault per page on first touch).
    ///
    /// # Errors
    /// The kernel refuses the mapping (a read-only descriptor mapped writable, a file
    /// shorter than `len`).
    pub fn map(f: &File, len: usize, writable: bool) -> Result<Mapping> {
        let size = f.metadata().map_err(|e| shm_err("fstat", e))?.len();
        if len == 0 || size < len as u64 {
            return Err(Error::err(
                ErrorCode::Protocol,
                "shared memory: the block is smaller than announced",
            ));
        }
        let mut o = memmap2::MmapOptions::new();
        o.len(len).populate();
        let map = if writable {
            o.map_raw(f)
        } else {
            o.map_raw_read_only(f)
        }
        .map_err(|e| shm_err("mmap", e))?;
        Ok(Mapping { map, writable })
    }

    /// The mapping's size in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the mapping has no bytes (never: sizes are checked).
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Copy `data` to offset 0.
    ///
    /// # Errors
    /// A read-only mapping, or `data` does not fit.
    pub fn write(&self, data: &[u8]) -> Result<()> {
        if !self.writable || data.len() > self.len() {
            return Err(Error::limit(
                "the tensor does not fit its shared memory block",
            ));
        }
        // Safety: the mapping is writable and at least `data.len()` bytes long; memory
        // files are mapped for their whole size and never shrink (only this process's
        // heap resizes them, before mapping).
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.map.as_mut_ptr(), data.len());
        }
        Ok(())
    }

    /// `len` bytes at `offset`, shared without a copy; `owner` keeps whatever must live
    /// as long as the bytes (the mapping, a hold).
    ///
    /// # Errors
    /// The range leaves the mapping.
    pub fn view<O: Send + 'static>(
        self: &Arc<Self>,
        offset: usize,
        len: usize,
        owner: O,
    ) -> Result<Bytes> {
        if offset.checked_add(len).is_none_or(|end| end > self.len()) {
            return Err(Error::err(
                ErrorCode::Protocol,
                "shared memory: the range leaves the block",
            ));
        }
        Ok(Bytes::from_owner(View {
            map: self.clone(),
            offset,
            len,
            _owner: owner,
        }))
    }

    fn addr(&self) -> usize {
        self.map.as_ptr() as usize
    }
}

/// Bytes of a mapping, kept mapped (and held) while they live.
struct View<O> {
    map: Arc<Mapping>,
    offset: usize,
    len: usize,
    _owner: O,
}

impl<O> AsRef<[u8]> for View<O> {
    fn as_ref(&self) -> &[u8] {
        // Safety: `offset + len` lies within the mapping (checked in `view`), which stays
        // mapped while `self.map` lives. The bytes do not change while a view exists: a
        // block is written only by the connection it is lent to, before it is committed
        // or after every view of it is gone.
        unsafe { std::slice::from_raw_parts(self.map.map.as_ptr().add(self.offset), self.len) }
    }
}

/// The size class of a block for `len` bytes: at most a quarter more than asked, so a
/// freed block serves the next put of about the same size.
pub fn class_of(len: usize) -> usize {
    let len = len.max(SHM_MIN);
    let p = len.checked_next_power_of_two().unwrap_or(len);
    let step = (p / 8).max(64 << 10);
    len.div_ceil(step).saturating_mul(step)
}

/// A block's memory: its file and the server's mapping.
struct BlockMem {
    id: u64,
    /// The file's identity (device, inode): a client's key for its mapping.
    key: (u64, u64),
    file: File,
    /// A read-only open of the file, made when another process first reads the block.
    read_only: std::sync::OnceLock<File>,
    map: Arc<Mapping>,
}

impl BlockMem {
    fn cap(&self) -> usize {
        self.map.len()
    }
}

/// Counters of the heap, for `INFO memory` and `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
pub struct HeapStats {
    /// Blocks alive (stored, held, lent, free or warm).
    pub blocks: usize,
    /// Their bytes.
    pub bytes: usize,
    /// Bytes of blocks that hold no value: lent, free, or warm.
    pub idle_bytes: usize,
    /// Bytes of warm blocks (pre-faulted, never lent), ready for new connections.
    pub warm_bytes: usize,
    /// Holds readers keep.
    pub holds: usize,
}

/// The server's heap of shared-memory blocks. Bounded by `maxmemory` (with the store's
/// data) and keeping at most `reserve` bytes of warm blocks.
pub struct Heap {
    me: Weak<Heap>,
    next_id: AtomicU64,
    blocks: AtomicUsize,
    bytes: AtomicUsize,
    idle: AtomicUsize,
    holds: AtomicUsize,
    reserve: AtomicUsize,
    maxmemory: AtomicUsize,
    warm: Mutex<Vec<BlockMem>>,
    warm_bytes: AtomicUsize,
    /// Stored blocks by the address of the server's mapping, to find the block a stored
    /// tensor's bytes lie in.
    index: Mutex<BTreeMap<usize, Weak<Block>>>,
    /// Client processes' owners, by pid.
    owners: Mutex<HashMap<u32, Arc<Owner>>>,
    /// The heap's background thread: makes warm blocks and unmaps destroyed ones, off
    /// the connections' threads.
    worker: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
}

/// Work for the heap's background thread.
enum Job {
    /// Make a warm block of this class, if the reserve has room.
    Warm(usize),
    /// Unmap and close a destroyed block (freeing its pages takes a while).
    Drop(BlockMem),
    /// Close the owners of processes that are gone (also done each second).
    Sweep,
}

impl std::fmt::Debug for Heap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Heap({:?})", self.stats())
    }
}

impl Heap {
    /// An empty heap keeping up to `reserve` bytes of warm blocks.
    pub fn new(reserve: usize) -> Arc<Heap> {
        Arc::new_cyclic(|me| Heap {
            me: me.clone(),
            next_id: AtomicU64::new(1),
            blocks: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            holds: AtomicUsize::new(0),
            reserve: AtomicUsize::new(reserve),
            maxmemory: AtomicUsize::new(0),
            warm: Mutex::new(Vec::new()),
            warm_bytes: AtomicUsize::new(0),
            index: Mutex::new(BTreeMap::new()),
            owners: Mutex::new(HashMap::new()),
            worker: Mutex::new(None),
        })
    }

    /// Change the bounds: `maxmemory` (0: none) and the warm reserve (warm blocks beyond
    /// it are destroyed now).
    pub fn set_limits(&self, maxmemory: usize, reserve: usize) {
        self.maxmemory.store(maxmemory, Ordering::Relaxed);
        self.reserve.store(reserve, Ordering::Relaxed);
        self.trim_warm(reserve);
    }

    /// The heap's counters.
    pub fn stats(&self) -> HeapStats {
        HeapStats {
            blocks: self.blocks.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            idle_bytes: self.idle.load(Ordering::Relaxed),
            warm_bytes: self.warm_bytes.load(Ordering::Relaxed),
            holds: self.holds.load(Ordering::Relaxed),
        }
    }

    fn trim_warm(&self, keep: usize) {
        let mut gone = Vec::new();
        {
            let mut w = self.warm.lock();
            while self.warm_bytes.load(Ordering::Relaxed) > keep {
                let Some(b) = w.pop() else { break };
                self.warm_bytes.fetch_sub(b.cap(), Ordering::Relaxed);
                gone.push(b);
            }
        }
        for b in gone {
            self.destroy(b);
        }
    }

    /// A new block of `cap` bytes: a sealed-size memory file, its pages allocated now and
    /// mapped by the server.
    fn create(&self, cap: usize) -> Result<BlockMem> {
        let fd = memfd_create(
            "insitu-block",
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )
        .map_err(|e| shm_err("memfd_create", e))?;
        let file = File::from(fd);
        file.set_len(cap as u64)
            .map_err(|e| shm_err("ftruncate", e))?;
        // Pages allocated (and zeroed) here, once: later transfers reuse them.
        nix::fcntl::fallocate(&file, nix::fcntl::FallocateFlags::empty(), 0, cap as i64)
            .map_err(|e| shm_err("fallocate", e))?;
        let seals = nix::fcntl::SealFlag::F_SEAL_GROW
            | nix::fcntl::SealFlag::F_SEAL_SHRINK
            | nix::fcntl::SealFlag::F_SEAL_SEAL;
        nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_ADD_SEALS(seals))
            .map_err(|e| shm_err("seal", e))?;
        let map = Arc::new(Mapping::map(&file, cap, true)?);
        let key = {
            use std::os::unix::fs::MetadataExt;
            let m = file.metadata().map_err(|e| shm_err("fstat", e))?;
            (m.dev(), m.ino())
        };
        self.blocks.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(cap, Ordering::Relaxed);
        self.idle.fetch_add(cap, Ordering::Relaxed);
        Ok(BlockMem {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            key,
            file,
            read_only: std::sync::OnceLock::new(),
            map,
        })
    }

    fn destroy(&self, b: BlockMem) {
        self.blocks.fetch_sub(1, Ordering::Relaxed);
        self.bytes.fetch_sub(b.cap(), Ordering::Relaxed);
        self.idle.fetch_sub(b.cap(), Ordering::Relaxed);
        if let Err(job) = self.send(Job::Drop(b)) {
            drop(job);
        }
    }

    /// Hand `job` to the background thread (started on first use); the job back when
    /// there is no thread.
    fn send(&self, job: Job) -> std::result::Result<(), Job> {
        let mut tx = self.worker.lock();
        if tx.is_none() {
            let (t, rx) = std::sync::mpsc::channel::<Job>();
            let heap = self.me.clone();
            let spawned = std::thread::Builder::new()
                .name("insitu-shm-heap".into())
                .spawn(move || loop {
                    // Each second at least: close the owners of processes that are gone.
                    let job = match rx.recv_timeout(std::time::Duration::from_secs(1)) {
                        Ok(job) => Some(job),
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                    };
                    match job {
                        Some(Job::Drop(b)) => drop(b),
                        Some(Job::Warm(cap)) => match heap.upgrade() {
                            Some(h) => h.make_warm(cap),
                            None => return,
                        },
                        Some(Job::Sweep) | None => match heap.upgrade() {
                            Some(h) => h.sweep(),
                            None => return,
                        },
                    }
                });
            if spawned.is_err() {
                return Err(job);
            }
            *tx = Some(t);
        }
        match tx.as_ref() {
            Some(t) => t.send(job).map_err(|e| e.0),
            None => Err(job),
        }
    }

    /// A block of class `cap` for a connection's first use of it: a warm one when there
    /// is one (refilled in the background), else a new one. `used` is the store's data,
    /// counted against `maxmemory` with the heap's idle blocks.
    fn fresh(&self, cap: usize, used: usize) -> Result<BlockMem> {
        let warm = {
            let mut w = self.warm.lock();
            w.iter()
                .position(|b| b.cap() == cap)
                .map(|i| w.swap_remove(i))
        };
        let b = match warm {
            Some(b) => {
                self.warm_bytes.fetch_sub(cap, Ordering::Relaxed);
                b
            }
            None => {
                let max = self.maxmemory.load(Ordering::Relaxed);
                if max > 0 {
                    self.trim_warm(0);
                    if used + self.idle.load(Ordering::Relaxed) + cap > max {
                        return Err(Error::oom());
                    }
                }
                self.create(cap)?
            }
        };
        self.refill(cap);
        Ok(b)
    }

    /// Make a warm block of class `cap` in the background, if the reserve has room.
    fn refill(&self, cap: usize) {
        let reserve = self.reserve.load(Ordering::Relaxed);
        if self.warm_bytes.load(Ordering::Relaxed) + cap <= reserve {
            let _ = self.send(Job::Warm(cap));
        }
    }

    fn make_warm(&self, cap: usize) {
        let reserve = self.reserve.load(Ordering::Relaxed);
        let max = self.maxmemory.load(Ordering::Relaxed);
        if self.warm_bytes.load(Ordering::Relaxed) + cap > reserve
            || (max > 0 && self.bytes.load(Ordering::Relaxed) + cap > max)
        {
            return;
        }
        match self.create(cap) {
            Ok(b) => {
                self.warm_bytes.fetch_add(cap, Ordering::Relaxed);
                self.warm.lock().push(b);
            }
            Err(e) => tracing::debug!("no warm shared memory block: {e}"),
        }
    }

    /// The owner for a connection from process `pid` (one per process; a connection of
    /// its own when the process is unknown).
    fn join(self: &Arc<Self>, pid: Option<u32>) -> Arc<Owner> {
        let process = pid.and_then(process_of);
        let owner = match process {
            None => Arc::new(Owner::new(self, None)),
            Some((pid, start)) => {
                let mut owners = self.owners.lock();
                match owners.get(&pid) {
                    Some(o) if o.process == Some((pid, start)) => o.clone(),
                    _ => {
                        let o = Arc::new(Owner::new(self, process));
                        if let Some(stale) = owners.insert(pid, o.clone()) {
                            stale.close();
                        }
                        o
                    }
                }
            }
        };
        owner.conns.fetch_add(1, Ordering::AcqRel);
        *owner.idle_since.lock() = None;
        owner
    }

    /// A connection of `owner` closed.
    fn leave(&self, owner: &Arc<Owner>) {
        if owner.conns.fetch_sub(1, Ordering::AcqRel) == 1 {
            if owner.process.is_none() {
                owner.close();
                return;
            }
            *owner.idle_since.lock() = Some(std::time::Instant::now());
            // Start the background thread, which sweeps idle owners each second.
            let _ = self.send(Job::Sweep);
        }
    }

    /// Close the owners whose process is gone, or idle past [`OWNER_GRACE`].
    fn sweep(&self) {
        let mut closed = Vec::new();
        self.owners.lock().retain(|_, o| {
            let idle = o.conns.load(Ordering::Acquire) == 0;
            let expired = idle
                && o.idle_since
                    .lock()
                    .is_none_or(|t| t.elapsed() > OWNER_GRACE);
            let dead = o.process.and_then(|(pid, _)| process_of(pid)) != o.process;
            if idle && (expired || dead) {
                closed.push(o.clone());
                false
            } else {
                true
            }
        });
        for o in closed {
            o.close();
        }
    }

    /// The stored block `data` lies in, and the offset of `data` in it.
    fn find(&self, data: &[u8]) -> Option<(Arc<Block>, usize)> {
        let p = data.as_ptr() as usize;
        let idx = self.index.lock();
        let (start, w) = idx.range(..=p).next_back()?;
        let b = w.upgrade()?;
        let off = p - start;
        (off + data.len() <= b.map.len()).then_some((b, off))
    }
}

/// A client process's side of the heap (or one connection's, when the peer's process
/// is unknown), shared with its blocks, which come back to it when freed while it lives.
/// Blocks are only ever lent to connections of the process they were first lent to: that
/// process has had their descriptors, no other has.
struct Owner {
    heap: Weak<Heap>,
    /// The peer process (pid and start time) when known.
    process: Option<(u32, u64)>,
    open: AtomicBool,
    /// Open connections of the process (under the heap's owners lock).
    conns: AtomicUsize,
    /// When its last connection closed.
    idle_since: Mutex<Option<std::time::Instant>>,
    free: Mutex<Vec<BlockMem>>,
}

/// How long a process's free blocks wait for its next connection.
const OWNER_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

impl Owner {
    fn new(heap: &Arc<Heap>, process: Option<(u32, u64)>) -> Owner {
        Owner {
            heap: Arc::downgrade(heap),
            process,
            open: AtomicBool::new(true),
            conns: AtomicUsize::new(0),
            idle_since: Mutex::new(None),
            free: Mutex::new(Vec::new()),
        }
    }

    fn destroy(&self, b: BlockMem) {
        if let Some(h) = self.heap.upgrade() {
            h.destroy(b);
        }
    }

    /// Take `b` back for a later put, or destroy it when the process is gone or keeps
    /// enough free blocks.
    fn give_back(&self, b: BlockMem) {
        if !self.open.load(Ordering::Acquire) {
            self.destroy(b);
            return;
        }
        let old = {
            let mut free = self.free.lock();
            free.push(b);
            (free.len() > MAX_FREE).then(|| free.remove(0))
        };
        if let Some(old) = old {
            self.destroy(old);
        }
    }

    /// No connection of the process will come back: destroy its free blocks (blocks
    /// still holding values are destroyed when freed).
    fn close(&self) {
        self.open.store(false, Ordering::Release);
        let free: Vec<BlockMem> = std::mem::take(&mut *self.free.lock());
        for b in free {
            self.destroy(b);
        }
    }
}

/// A process's identity: its pid and start time (a pid can be reused, the pair cannot).
fn process_of(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime), counting after the command name's closing parenthesis.
    let start = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()?;
    Some((pid, start))
}

/// A block holding a value (stored, or copied for a reader). Dropped when the store and
/// every reader are done with it: it then goes back to its connection, or is destroyed.
struct Block {
    mem: Option<BlockMem>,
    map: Arc<Mapping>,
    id: u64,
    owner: Weak<Owner>,
    heap: Arc<Heap>,
}

impl Drop for Block {
    fn drop(&mut self) {
        self.heap.index.lock().remove(&self.map.addr());
        let Some(mem) = self.mem.take() else { return };
        self.heap.idle.fetch_add(mem.cap(), Ordering::Relaxed);
        match self.owner.upgrade() {
            Some(o) => o.give_back(mem),
            None => self.heap.destroy(mem),
        }
    }
}

/// A hold's bookkeeping: counted while it lives.
struct Held(Arc<Heap>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.holds.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A block reference for a get reply (the block's descriptor goes with it).
#[derive(Debug)]
pub struct Shared {
    /// The block.
    pub block: u64,
    /// Where the bytes start in it.
    pub offset: usize,
    /// How many.
    pub len: usize,
    /// The hold to release.
    pub hold: u64,
    /// Whether the descriptor is read-write (a block of the reader's own process).
    pub writable: bool,
    /// The block's file (device, inode): the client's key for its mapping.
    pub key: (u64, u64),
    /// Whether its descriptor comes with the reply (the first reference on this
    /// connection).
    pub fd: bool,
}

/// A block lent for a put (its read-write descriptor goes with the reply the first time
/// this connection sees the block).
#[derive(Debug)]
pub struct Loan {
    /// The block.
    pub block: u64,
    /// Its size.
    pub cap: usize,
    /// The block's file (device, inode).
    pub key: (u64, u64),
    /// Whether its descriptor comes with the reply.
    pub fd: bool,
}

/// Most blocks a connection remembers sending descriptors of (beyond, it forgets them
/// all: the next references carry their descriptors again).
const MAX_KNOWN: usize = 4096;

/// One connection's use of the heap: blocks lent to it, holds it keeps, descriptors to
/// send with its next replies.
pub struct ShmConn {
    heap: Arc<Heap>,
    owner: Arc<Owner>,
    /// Blocks whose descriptor went to this connection's client.
    sent: std::collections::HashSet<u64>,
    lent: HashMap<u64, BlockMem>,
    /// Holds: the bytes held, their count, the block they lie in.
    holds: HashMap<u64, (Bytes, Held, u64)>,
    next_hold: u64,
    /// Descriptors to send with the replies written so far, in order.
    pub fds_out: Vec<OwnedFd>,
}

impl std::fmt::Debug for ShmConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ShmConn({} lent, {} holds)",
            self.lent.len(),
            self.holds.len()
        )
    }
}

impl Drop for ShmConn {
    fn drop(&mut self) {
        for (_, b) in self.lent.drain() {
            self.owner.give_back(b);
        }
        self.holds.clear();
        self.heap.leave(&self.owner);
    }
}

impl ShmConn {
    /// A connection's state on `heap`; `pid`: the peer process (`SO_PEERCRED`).
    pub fn new(heap: &Arc<Heap>, pid: Option<u32>) -> ShmConn {
        ShmConn {
            heap: heap.clone(),
            owner: heap.join(pid),
            sent: std::collections::HashSet::new(),
            lent: HashMap::new(),
            holds: HashMap::new(),
            next_hold: 1,
            fds_out: Vec::new(),
        }
    }

    fn heap(&self) -> &Arc<Heap> {
        &self.heap
    }

    /// Queue a descriptor of `b` for the client unless this connection sent one before
    /// (`always`: send it anyway); read-write for a block of the client's own process,
    /// else read-only. Whether one was queued.
    fn send_fd(&mut self, b: &BlockMem, mine: bool, always: bool) -> Result<bool> {
        if !always && self.sent.contains(&b.id) {
            return Ok(false);
        }
        if self.fds_out.len() >= MAX_PENDING_FDS {
            return Err(Error::limit("too many shared memory blocks in flight"));
        }
        let f = if mine {
            b.file.try_clone().map_err(|e| shm_err("dup", e))?
        } else {
            read_only(b)?
        };
        self.fds_out.push(OwnedFd::from(f));
        if self.sent.len() >= MAX_KNOWN {
            self.sent.clear();
        }
        self.sent.insert(b.id);
        Ok(true)
    }

    /// A block of the owner for `len` bytes: a free one of its class, else a fresh one;
    /// whether its descriptor was queued in `fds_out`.
    fn block_for(&mut self, len: usize, used: usize) -> Result<(BlockMem, bool)> {
        let cap = class_of(len);
        let mine = {
            let mut free = self.owner.free.lock();
            free.iter()
                .position(|b| b.cap() == cap)
                .map(|i| free.swap_remove(i))
        };
        let b = match mine {
            Some(b) => b,
            None => self.heap().fresh(cap, used)?,
        };
        match self.send_fd(&b, true, false) {
            Ok(fd) => Ok((b, fd)),
            Err(e) => {
                self.owner.give_back(b);
                Err(e)
            }
        }
    }

    /// `INSITU.SHM FD block`: the descriptor of a block lent to this connection or held
    /// by it, again (the client no longer maps it). Returns whether it is read-write and
    /// the file's identity.
    ///
    /// # Errors
    /// A block neither lent to nor held by this connection.
    pub fn resend(&mut self, id: u64) -> Result<(bool, (u64, u64))> {
        let missing = || {
            Error::bad_input(format!(
                "shared memory block {id} is neither lent to nor held by this connection"
            ))
        };
        if let Some(b) = self.lent.remove(&id) {
            let r = self.send_fd(&b, true, true).map(|_| (true, b.key));
            self.lent.insert(id, b);
            return r;
        }
        let bytes = self
            .holds
            .values()
            .find(|(_, _, block)| *block == id)
            .map(|(b, _, _)| b.clone())
            .ok_or_else(missing)?;
        let (block, _) = self.heap().find(&bytes).ok_or_else(missing)?;
        let mem = block.mem.as_ref().ok_or_else(missing)?;
        let mine = block.owner.as_ptr() == Arc::as_ptr(&self.owner);
        self.send_fd(mem, mine, true)?;
        Ok((mine, mem.key))
    }

    /// `INSITU.SHM ALLOC len`: lend a block for a put. `used`: the store's data bytes.
    ///
    /// # Errors
    /// Too many blocks lent, or `maxmemory`.
    pub fn lend(&mut self, len: usize, used: usize) -> Result<Loan> {
        if self.lent.len() >= MAX_LENT {
            return Err(Error::limit(format!(
                "too many shared memory blocks lent to this connection (at most {MAX_LENT})"
            )));
        }
        let (b, fd) = self.block_for(len, used)?;
        let loan = Loan {
            block: b.id,
            cap: b.cap(),
            key: b.key,
            fd,
        };
        self.lent.insert(b.id, b);
        Ok(loan)
    }

    fn value(&self, b: BlockMem, len: usize) -> Result<Bytes> {
        let heap = self.heap().clone();
        heap.idle.fetch_sub(b.cap(), Ordering::Relaxed);
        let map = b.map.clone();
        let block = Arc::new(Block {
            id: b.id,
            map: map.clone(),
            mem: Some(b),
            owner: Arc::downgrade(&self.owner),
            heap: heap.clone(),
        });
        heap.index.lock().insert(map.addr(), Arc::downgrade(&block));
        map.view(0, len, block)
    }

    /// `INSITU.SHM SPARES`: the process's free blocks lent to this connection ahead of
    /// its first puts, newest first, one per size class, at most [`MAX_SPARES`] (and
    /// within [`MAX_LENT`]). Never fresh blocks: a connection that does not put takes
    /// nothing the process would not keep anyway.
    ///
    /// # Errors
    /// Descriptors (the blocks not lent go back to the process).
    pub fn lend_free(&mut self) -> Result<Vec<Loan>> {
        let room = MAX_SPARES.min(MAX_LENT.saturating_sub(self.lent.len()));
        let mut taken: Vec<BlockMem> = Vec::new();
        {
            let mut free = self.owner.free.lock();
            let mut i = free.len();
            while i > 0 && taken.len() < room {
                i -= 1;
                if taken.iter().all(|b| b.cap() != free[i].cap()) {
                    taken.push(free.remove(i));
                }
            }
        }
        let mut loans = Vec::with_capacity(taken.len());
        let mut taken = taken.into_iter();
        for b in taken.by_ref() {
            match self.send_fd(&b, true, false) {
                Ok(fd) => {
                    loans.push(Loan {
                        block: b.id,
                        cap: b.cap(),
                        key: b.key,
                        fd,
                    });
                    self.lent.insert(b.id, b);
                }
                Err(e) => {
                    self.owner.give_back(b);
                    taken.for_each(|b| self.owner.give_back(b));
                    return Err(e);
                }
            }
        }
        Ok(loans)
    }

    /// The first `len` bytes of lent block `id`, which becomes a value (the put's commit).
    ///
    /// # Errors
    /// A block not lent to this connection, or `len` beyond it.
    pub fn take(&mut self, id: u64, len: usize) -> Result<Bytes> {
        let b = self.lent.remove(&id).ok_or_else(|| {
            Error::bad_input(format!(
                "shared memory block {id} is not lent to this connection"
            ))
        })?;
        if len > b.cap() {
            let cap = b.cap();
            self.lent.insert(id, b);
            return Err(Error::bad_input(format!(
                "SHM length {len} exceeds the block's {cap} bytes"
            )));
        }
        self.value(b, len)
    }

    /// Share `data` (a stored tensor's bytes) with the client in place: the block it
    /// lies in, or a copy in a block of the client's process. `None` when this connection
    /// holds too much already (the bytes then go through the socket).
    ///
    /// # Errors
    /// Memory for the copy (`maxmemory`) or descriptors.
    pub fn share(&mut self, data: &Bytes, used: usize) -> Result<Option<Shared>> {
        if self.holds.len() >= MAX_HOLDS || self.fds_out.len() >= MAX_PENDING_FDS {
            return Ok(None);
        }
        let (view, block, offset, writable, key, fd) = match self.heap().find(data) {
            Some((b, off)) => {
                let mem = b
                    .mem
                    .as_ref()
                    .ok_or_else(|| Error::err(ErrorCode::Internal, "a block without memory"))?;
                // The writer's own process gets the descriptor it wrote through; any
                // other a read-only one.
                let mine = b.owner.as_ptr() == Arc::as_ptr(&self.owner);
                let fd = self.send_fd(mem, mine, false)?;
                (data.clone(), b.id, off, mine, mem.key, fd)
            }
            None => {
                let (b, fd) = self.block_for(data.len(), used)?;
                let (id, key) = (b.id, b.key);
                b.map.write(data)?;
                let view = self.value(b, data.len())?;
                (view, id, 0, true, key, fd)
            }
        };
        let hold = self.next_hold;
        self.next_hold += 1;
        let heap = self.heap().clone();
        heap.holds.fetch_add(1, Ordering::Relaxed);
        self.holds.insert(hold, (view, Held(heap), block));
        Ok(Some(Shared {
            block,
            offset,
            len: data.len(),
            hold,
            writable,
            key,
            fd,
        }))
    }

    /// Give lent blocks back unused (the client keeps fewer spare blocks); returns how
    /// many of them were lent to this connection.
    pub fn give_back(&mut self, blocks: impl IntoIterator<Item = u64>) -> usize {
        let mut n = 0;
        for id in blocks {
            if let Some(b) = self.lent.remove(&id) {
                self.owner.give_back(b);
                n += 1;
            }
        }
        n
    }

    /// Release holds; returns how many of them this connection had.
    pub fn release(&mut self, holds: impl IntoIterator<Item = u64>) -> usize {
        holds
            .into_iter()
            .filter(|h| self.holds.remove(h).is_some())
            .count()
    }
}

/// A read-only descriptor of block `b`: a new open of its file (`O_RDONLY`, made once),
/// so a reader cannot map it writable nor write through it.
fn read_only(b: &BlockMem) -> Result<File> {
    let ro = match b.read_only.get() {
        Some(f) => f,
        None => {
            let path = format!("/proc/self/fd/{}", b.file.as_raw_fd());
            let f = std::fs::OpenOptions::new()
                .read(true)
                .open(&path)
                .map_err(|e| shm_err("reopen read-only", e))?;
            b.read_only.get_or_init(|| f)
        }
    };
    ro.try_clone().map_err(|e| shm_err("dup", e))
}

/// Send `bufs` on a Unix socket with `fds` attached; returns the bytes written.
///
/// # Errors
/// The socket's error (`WouldBlock` on a non-blocking socket that is full).
pub fn send_with_fds(sock: RawFd, bufs: &[IoSlice<'_>], fds: &[RawFd]) -> std::io::Result<usize> {
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    sendmsg::<()>(sock, bufs, cmsgs, MsgFlags::MSG_NOSIGNAL, None).map_err(std::io::Error::from)
}

/// Receive up to `want` bytes from a socket, appended to `buf` (room reserved first),
/// queueing any file descriptors that came along (closing those beyond
/// [`MAX_PENDING_FDS`]); returns the bytes read.
///
/// The bytes land in `buf`'s spare capacity as they are: nothing is zero-filled first
/// (zeroing a 64 KiB read buffer cost more than the read of a small request). This is
/// `recvmsg(2)` called directly, because nix's takes initialised slices only.
///
/// # Errors
/// The socket's error (`WouldBlock` when nothing is there on a non-blocking socket or
/// within `SO_RCVTIMEO`).
pub fn recv_appending(
    sock: RawFd,
    buf: &mut bytes::BytesMut,
    want: usize,
    fds: &mut VecDeque<OwnedFd>,
) -> std::io::Result<usize> {
    buf.reserve(want);
    let spare = buf.spare_capacity_mut();
    let mut iov = libc::iovec {
        iov_base: spare.as_mut_ptr().cast(),
        iov_len: want.min(spare.len()),
    };
    // Room for 8 descriptors' control message, aligned as cmsghdr needs.
    let mut space = [0u64; 8];
    // SAFETY: a zeroed msghdr is a valid empty one; the fields set point at live locals.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = space.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&space) as _;
    // SAFETY: the iovec describes `buf`'s spare capacity, the control buffer `space`;
    // the kernel writes at most their lengths.
    let n = unsafe { libc::recvmsg(sock, &raw mut msg, libc::MSG_CMSG_CLOEXEC) };
    let Ok(n) = usize::try_from(n) else {
        return Err(std::io::Error::last_os_error());
    };
    // SAFETY: the kernel initialised the first n bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    // SAFETY: walking the control messages the kernel wrote into `space`, with the
    // macros made for it; SCM_RIGHTS data is an array of descriptors now ours.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&raw const msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c);
                let bytes = (*c).cmsg_len as usize - (data as usize - c as usize);
                for i in 0..bytes / std::mem::size_of::<RawFd>() {
                    let raw = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    let fd = OwnedFd::from_raw_fd(raw);
                    if fds.len() < MAX_PENDING_FDS {
                        fds.push_back(fd);
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&raw const msg, c);
        }
    }
    Ok(n)
}

/// The raw descriptor of anything that has one.
pub fn raw(fd: &impl AsRawFd) -> RawFd {
    fd.as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(fd: &OwnedFd) -> File {
        File::from(fd.try_clone().unwrap())
    }

    #[test]
    fn size_classes_waste_at_most_a_quarter() {
        assert_eq!(class_of(1), SHM_MIN);
        assert_eq!(class_of(SHM_MIN), SHM_MIN);
        assert_eq!(class_of(1 << 20), 1 << 20);
        assert_eq!(class_of((1 << 20) + 1), (1 << 20) + (256 << 10));
        assert_eq!(class_of(3 << 20), 3 << 20);
        assert_eq!(class_of(16 << 20), 16 << 20);
        for len in [300_000usize, 5_000_000, 17 << 20, 100_000_000] {
            let c = class_of(len);
            assert!(c >= len && c - len <= len / 4 + (64 << 10), "{len} -> {c}");
        }
        // A block's capacity is its own class (a client files a lent block by it).
        for len in (1..2000).map(|i| i * 37_813) {
            assert_eq!(class_of(class_of(len)), class_of(len), "{len}");
        }
    }

    #[test]
    fn a_put_writes_once_and_the_block_comes_back_to_its_process() {
        let heap = Heap::new(0);
        let mut conn = ShmConn::new(&heap, None);
        let loan = conn.lend(300_000, 0).unwrap();
        assert_eq!(loan.cap, class_of(300_000));
        let fd = conn.fds_out.pop().unwrap();
        // The client maps the descriptor read-write and writes the tensor once.
        let client = Mapping::map(&file_of(&fd), loan.cap, true).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        client.write(&data).unwrap();
        let value = conn.take(loan.block, data.len()).unwrap();
        assert_eq!(value.as_ref(), &data[..]);
        assert_eq!(heap.stats().blocks, 1);
        assert_eq!(heap.stats().idle_bytes, 0);
        // Not lent twice, and the length must fit.
        assert_eq!(
            conn.take(loan.block, 4).unwrap_err().text(),
            format!(
                "ERR shared memory block {} is not lent to this connection",
                loan.block
            )
        );
        // A get of the stored value shares the same block (the writer's own process:
        // read-write) and holds it.
        let shared = conn.share(&value, 0).unwrap().unwrap();
        assert_eq!(
            (shared.block, shared.offset, shared.len, shared.writable),
            (loan.block, 0, data.len(), true)
        );
        assert_eq!(heap.stats().holds, 1);
        drop(value); // the store lets go (a delete): the hold keeps the block
        assert_eq!(heap.stats().idle_bytes, 0);
        assert_eq!(conn.release([shared.hold, shared.hold]), 1);
        assert_eq!(heap.stats().holds, 0);
        // Freed: back to the connection's process for its next put, same block.
        assert_eq!(heap.stats().idle_bytes, loan.cap);
        let again = conn.lend(290_000, 0).unwrap();
        assert_eq!(again.block, loan.block);
        assert_eq!(conn.give_back([again.block, 999]), 1);
        drop(conn);
        // The connection's process is unknown: its blocks go with it.
        assert_eq!(heap.stats().blocks, 0);
    }

    #[test]
    fn other_processes_read_through_a_read_only_descriptor_of_that_block_alone() {
        let heap = Heap::new(0);
        let mut writer = ShmConn::new(&heap, None);
        let mut reader = ShmConn::new(&heap, None);
        let loan = writer.lend(SHM_MIN, 0).unwrap();
        let wfd = writer.fds_out.pop().unwrap();
        Mapping::map(&file_of(&wfd), loan.cap, true)
            .unwrap()
            .write(b"hello")
            .unwrap();
        let value = writer.take(loan.block, SHM_MIN).unwrap();
        let shared = reader.share(&value, 0).unwrap().unwrap();
        assert!(!shared.writable);
        let rfd = reader.fds_out.pop().unwrap();
        let f = file_of(&rfd);
        assert_eq!(f.metadata().unwrap().len(), loan.cap as u64);
        let flags = nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert_eq!(
            nix::fcntl::OFlag::from_bits_truncate(flags) & nix::fcntl::OFlag::O_ACCMODE,
            nix::fcntl::OFlag::O_RDONLY
        );
        assert!(Mapping::map(&f, loan.cap, true).is_err(), "not writable");
        let ro = Arc::new(Mapping::map(&f, loan.cap, false).unwrap());
        assert!(ro.write(b"x").is_err());
        assert_eq!(&ro.view(0, 5, ()).unwrap()[..], b"hello");
        // Holds and loans are per connection.
        assert_eq!(writer.release([shared.hold]), 0);
        assert!(reader.take(loan.block, 1).is_err());
        // Bytes that are not in a block are copied into one of the reader's own.
        let plain = Bytes::from(vec![7u8; SHM_MIN]);
        let copy = reader.share(&plain, 0).unwrap().unwrap();
        assert!(copy.writable);
        assert_ne!(copy.block, loan.block);
        let cfd = reader.fds_out.pop().unwrap();
        let m = Arc::new(Mapping::map(&file_of(&cfd), SHM_MIN, false).unwrap());
        assert_eq!(&m.view(0, SHM_MIN, ()).unwrap()[..], &plain[..]);
        assert!(m.view(1, SHM_MIN, ()).is_err(), "a range past the block");
    }

    #[test]
    fn a_process_keeps_its_free_blocks_across_connections() {
        let heap = Heap::new(1 << 30);
        let me = Some(std::process::id());
        let mut a = ShmConn::new(&heap, me);
        let loan = a.lend(SHM_MIN, 0).unwrap();
        drop(a); // the loan comes back to the process's free blocks
        let mut b = ShmConn::new(&heap, me);
        assert_eq!(b.lend(SHM_MIN, 0).unwrap().block, loan.block);
        assert_eq!(b.fds_out.len(), 1, "its descriptor comes again");
        drop(b);
        // A process that is gone (or away too long) loses its free blocks.
        heap.owners
            .lock()
            .values()
            .for_each(|o| *o.idle_since.lock() = Some(std::time::Instant::now() - 2 * OWNER_GRACE));
        heap.sweep();
        assert!(heap.owners.lock().is_empty());
    }

    #[test]
    fn a_new_connection_is_lent_its_process_free_blocks_as_spares() {
        let heap = Heap::new(0);
        let me = Some(std::process::id());
        let mut a = ShmConn::new(&heap, me);
        // Five blocks of two classes, given back: the process's free blocks.
        let small: Vec<u64> = (0..3).map(|_| a.lend(SHM_MIN, 0).unwrap().block).collect();
        let large: Vec<u64> = (0..2).map(|_| a.lend(1 << 20, 0).unwrap().block).collect();
        assert_eq!(a.give_back(small.iter().chain(&large).copied()), 5);
        let blocks = heap.stats().blocks;
        let mut b = ShmConn::new(&heap, me);
        let loans = b.lend_free().unwrap();
        // One per class, the newest of each, each with its descriptor; nothing new made.
        let got: Vec<(u64, usize, bool)> = loans.iter().map(|l| (l.block, l.cap, l.fd)).collect();
        assert_eq!(
            got,
            vec![(large[1], 1 << 20, true), (small[2], SHM_MIN, true)]
        );
        assert_eq!(b.fds_out.len(), 2);
        assert_eq!(heap.stats().blocks, blocks);
        // Lent: the connection can commit into them, and the rest stay free.
        let value = b.take(large[1], 1 << 20).unwrap();
        assert_eq!(value.len(), 1 << 20);
        assert_eq!(a.owner.free.lock().len(), 3);
        // Again: the next of each class, until none is left.
        let blocks_of = |loans: Vec<Loan>| loans.iter().map(|l| l.block).collect::<Vec<_>>();
        assert_eq!(blocks_of(b.lend_free().unwrap()), vec![large[0], small[1]]);
        assert_eq!(blocks_of(b.lend_free().unwrap()), vec![small[0]]);
        assert!(b.lend_free().unwrap().is_empty());
        // At most MAX_SPARES at once, whatever the number of classes.
        let sizes = [SHM_MIN, 2 * SHM_MIN, 4 * SHM_MIN, 8 * SHM_MIN, 16 * SHM_MIN];
        let mixed: Vec<u64> = sizes.iter().map(|n| a.lend(*n, 0).unwrap().block).collect();
        assert_eq!(a.give_back(mixed.iter().copied()), 5);
        let mut c = ShmConn::new(&heap, me);
        assert_eq!(c.lend_free().unwrap().len(), MAX_SPARES);
        // Nothing for a connection whose process has no free blocks.
        let blocks = heap.stats().blocks;
        let mut other = ShmConn::new(&heap, None);
        assert!(other.lend_free().unwrap().is_empty());
        assert_eq!(heap.stats().blocks, blocks);
        drop(value);
    }

    #[test]
    fn maxmemory_bounds_the_heap() {
        let heap = Heap::new(0);
        heap.set_limits(SHM_MIN * 2, 0);
        let mut c = ShmConn::new(&heap, None);
        c.lend(SHM_MIN, 0).unwrap();
        assert_eq!(
            c.lend(SHM_MIN, SHM_MIN).unwrap_err().text(),
            "OOM command not allowed when used memory > 'maxmemory'."
        );
        for _ in 1..MAX_LENT {
            heap.set_limits(0, 0);
            c.lend(SHM_MIN, 0).unwrap();
        }
        assert_eq!(
            c.lend(SHM_MIN, 0).unwrap_err().text(),
            format!(
                "ERR too many shared memory blocks lent to this connection (at most {MAX_LENT})"
            )
        );
    }

    #[test]
    fn descriptors_travel_with_the_bytes() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let heap = Heap::new(0);
        let mut c = ShmConn::new(&heap, None);
        c.lend(SHM_MIN, 0).unwrap();
        let fd = c.fds_out.pop().unwrap();
        let n = send_with_fds(raw(&a), &[IoSlice::new(b"cmd")], &[raw(&fd)]).unwrap();
        assert_eq!(n, 3);
        let mut buf = bytes::BytesMut::from(&b"pending "[..]);
        let mut fds = VecDeque::new();
        let n = recv_appending(raw(&b), &mut buf, 16, &mut fds).unwrap();
        assert_eq!(n, 3);
        assert_eq!(&buf[..], b"pending cmd");
        assert_eq!(fds.len(), 1);
        let got = file_of(&fds.pop_front().unwrap());
        assert_eq!(got.metadata().unwrap().len(), SHM_MIN as u64);
    }
}
