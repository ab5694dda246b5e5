//! The shared-memory blocks this process has mapped, shared by all its connections: a
//! block the server names again (the next put into a recycled block, another get of the
//! same tensor, a new connection of this process) is not mapped again. Keyed by the
//! memory file's identity (device and inode): a mapping keeps its file alive, so the key
//! cannot come to name another file while the entry exists.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;

use crate::error::{Error, ErrorCode, Result};
use crate::protocol::shm::Mapping;

/// Most mappings kept for reuse.
const MAX_ENTRIES: usize = 64;
/// Most bytes of mappings kept for reuse that nothing else uses.
const MAX_IDLE_BYTES: usize = 1 << 30;

#[derive(Default)]
struct Cache {
    maps: HashMap<(u64, u64), Entry>,
    uses: u64,
}

struct Entry {
    map: Arc<Mapping>,
    writable: bool,
    used: u64,
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Mutex::default);

/// A mapping of the block `fd` names: at least `len` bytes, writable when asked (the
/// descriptor must then be read-write). Reuses this process's mapping of the same file.
///
/// # Errors
/// The descriptor is not a file of at least `len` bytes, or the mapping fails.
pub(crate) fn map(fd: OwnedFd, len: usize, writable: bool) -> Result<Arc<Mapping>> {
    let f = std::fs::File::from(fd);
    let meta = f
        .metadata()
        .map_err(|e| Error::err(ErrorCode::Io, format!("shared memory: fstat: {e}")))?;
    let size = usize::try_from(meta.len()).unwrap_or(0);
    if size < len || size == 0 {
        return Err(Error::err(
            ErrorCode::Protocol,
            "shared memory: the block is smaller than the reply says",
        ));
    }
    let key = (meta.dev(), meta.ino());
    let mut c = CACHE.lock();
    c.uses += 1;
    let now = c.uses;
    if let Some(e) = c.maps.get_mut(&key) {
        if (e.writable || !writable) && e.map.len() == size {
            e.used = now;
            return Ok(e.map.clone());
        }
    }
    let map = Arc::new(Mapping::map(&f, size, writable)?);
    c.maps.insert(
        key,
        Entry {
            map: map.clone(),
            writable,
            used: now,
        },
    );
    trim(&mut c);
    Ok(map)
}

/// This process's mapping of the file `key`, when it has one of at least `len` bytes
/// (writable when asked).
pub(crate) fn lookup(key: (u64, u64), len: usize, writable: bool) -> Option<Arc<Mapping>> {
    let mut c = CACHE.lock();
    c.uses += 1;
    let now = c.uses;
    let e = c.maps.get_mut(&key)?;
    if (e.writable || !writable) && e.map.len() >= len {
        e.used = now;
        Some(e.map.clone())
    } else {
        None
    }
}

/// Forget the least recently used mappings beyond the bounds (those still viewed stay
/// mapped through their views).
fn trim(c: &mut Cache) {
    loop {
        let idle: usize = c
            .maps
            .values()
            .filter(|e| Arc::strong_count(&e.map) == 1)
            .map(|e| e.map.len())
            .sum();
        if c.maps.len() <= MAX_ENTRIES && idle <= MAX_IDLE_BYTES {
            return;
        }
        let oldest = c.maps.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| *k);
        match oldest {
            Some(k) => {
                c.maps.remove(&k);
            }
            None => return,
        }
    }
}
