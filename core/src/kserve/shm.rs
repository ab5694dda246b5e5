//! KServe's system shared-memory extension: clients register POSIX shared-memory
//! objects they own (`shm_open` names) as named regions, then name a region, offset and
//! size instead of sending an input's bytes or receiving an output's. The server opens
//! each object once, at registration, and reads inputs from it and writes outputs into it
//! through that descriptor (`pread`/`pwrite`: one copy each, at memory speed), never
//! through a mapping: a POSIX shared-memory object cannot be sealed against shrinking (as
//! the RESP transport's memfd blocks are), and a mapped page past a shrunk object's end
//! would fault the server (SIGBUS); a read past it is a short read, reported as an error.
//! Every offset and size is checked against the region; the number of regions is bounded
//! (`kserve-max-shm-regions`). As with Triton, a client must not write a region while a
//! request that reads it is in flight.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use nix::fcntl::OFlag;
use nix::sys::mman::shm_open;
use nix::sys::stat::Mode;
use parking_lot::Mutex;

use super::status::{invalid, KsError, KsResult};

/// One registered region.
pub struct Region {
    /// The name it was registered under.
    pub name: String,
    /// The shared-memory object (`/name`, as `shm_open` takes it).
    pub key: String,
    /// Where the region starts in the object.
    pub offset: u64,
    /// The region's size.
    pub byte_size: u64,
    file: File,
}

fn shrunk(name: &str) -> KsError {
    invalid(format!(
        "shared memory region '{name}' is smaller than when it was registered (its object was truncated)"
    ))
}

/// The registered regions.
#[derive(Default)]
pub struct Regions {
    map: Mutex<BTreeMap<String, Arc<Region>>>,
}

fn find_error(name: &str) -> KsError {
    invalid(format!(
        "Unable to find system shared memory region: '{name}'"
    ))
}

impl Regions {
    /// Register `byte_size` bytes at `offset` of the shared-memory object `key` as
    /// region `name`.
    ///
    /// # Errors
    /// A name already registered, too many regions, an object that cannot be opened, or
    /// a range beyond the object's end.
    pub fn register(
        &self,
        name: &str,
        key: &str,
        offset: u64,
        byte_size: u64,
        max_regions: usize,
    ) -> KsResult<()> {
        if name.is_empty() {
            return Err(invalid("a shared memory region needs a name"));
        }
        {
            let map = self.map.lock();
            if map.contains_key(name) {
                return Err(invalid(format!(
                    "shared memory region '{name}' already in registration"
                )));
            }
            if map.len() >= max_regions {
                return Err(invalid(format!(
                    "too many shared memory regions registered (kserve-max-shm-regions is {max_regions})"
                )));
            }
        }
        let open_error = |why: String| {
            invalid(format!(
                "Unable to open shared memory region: '{key}': {why}"
            ))
        };
        let name_ok = key.len() > 1
            && key.len() <= 255
            && key.starts_with('/')
            && !key[1..].contains('/')
            && !key.contains('\0');
        if !name_ok {
            return Err(open_error(
                "a key is '/' followed by a name without '/'".into(),
            ));
        }
        let fd =
            shm_open(key, OFlag::O_RDWR, Mode::empty()).map_err(|e| open_error(e.desc().into()))?;
        let file = File::from(fd);
        let size = file
            .metadata()
            .map_err(|e| open_error(e.to_string()))?
            .len();
        if byte_size == 0 || offset.checked_add(byte_size).is_none_or(|end| end > size) {
            return Err(invalid(format!(
                "Invalid offset + byte size for shared memory region: '{name}' ({offset} + {byte_size} bytes; the object has {size})"
            )));
        }
        usize::try_from(byte_size).map_err(|_| open_error("too large".into()))?;
        let region = Arc::new(Region {
            name: name.to_string(),
            key: key.to_string(),
            offset,
            byte_size,
            file,
        });
        let mut map = self.map.lock();
        if map.contains_key(name) {
            return Err(invalid(format!(
                "shared memory region '{name}' already in registration"
            )));
        }
        map.insert(name.to_string(), region);
        Ok(())
    }

    /// Unregister region `name`, or every region for an empty name. Requests in flight
    /// keep what they mapped.
    pub fn unregister(&self, name: &str) {
        let mut map = self.map.lock();
        if name.is_empty() {
            map.clear();
        } else {
            map.remove(name);
        }
    }

    /// The regions registered (just `name`'s when it is not empty).
    ///
    /// # Errors
    /// `name` is not registered.
    pub fn status(&self, name: &str) -> KsResult<Vec<Arc<Region>>> {
        let map = self.map.lock();
        if name.is_empty() {
            return Ok(map.values().cloned().collect());
        }
        map.get(name)
            .cloned()
            .map(|r| vec![r])
            .ok_or_else(|| find_error(name))
    }

    /// Bytes registered in all regions (for `/metrics`).
    pub fn total_bytes(&self) -> u64 {
        self.map.lock().values().map(|r| r.byte_size).sum()
    }

    fn range(&self, name: &str, offset: u64, size: u64) -> KsResult<(Arc<Region>, usize, usize)> {
        let region = self
            .map
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| find_error(name))?;
        match offset.checked_add(size) {
            Some(end) if end <= region.byte_size => Ok((region, offset as usize, size as usize)),
            _ => Err(invalid(format!(
                "Invalid offset + byte size for shared memory region: '{name}' ({offset} + {size} bytes; the region has {})",
                region.byte_size
            ))),
        }
    }

    /// `size` bytes at `offset` of region `name`.
    ///
    /// # Errors
    /// An unknown region, a range beyond its end, an object shrunk since registration.
    pub fn read(&self, name: &str, offset: u64, size: u64) -> KsResult<Bytes> {
        let (region, start, len) = self.range(name, offset, size)?;
        let mut buf = vec![0u8; len];
        region
            .file
            .read_exact_at(&mut buf, region.offset + start as u64)
            .map_err(|_| shrunk(name))?;
        Ok(Bytes::from(buf))
    }

    /// Write `data` at `offset` of region `name`, within `size` bytes.
    ///
    /// # Errors
    /// An unknown region, a range beyond its end, or `data` larger than `size` (Triton's
    /// text).
    pub fn write(
        &self,
        name: &str,
        offset: u64,
        size: u64,
        data: &[u8],
        output: &str,
    ) -> KsResult<()> {
        let (region, start, len) = self.range(name, offset, size)?;
        if data.len() > len {
            return Err(invalid(format!(
                "shared memory size specified with the request for output '{output}' should be at least {} bytes to hold the results",
                data.len()
            )));
        }
        // The object must still hold the range: pwrite past its end would grow it.
        let end = region.offset + (start + data.len()) as u64;
        match region.file.metadata() {
            Ok(m) if m.len() >= end => {}
            _ => return Err(shrunk(name)),
        }
        region
            .file
            .write_all_at(data, region.offset + start as u64)
            .map_err(|e| invalid(format!("shared memory region '{name}': {e}")))
    }
}
