//! Shared-memory transfers over a Unix socket.
//!
//! Each connection may attach one *arena*: an anonymous memory file (`memfd_create`)
//! the client creates, seals against resizing, maps, and passes to the server once
//! (`SCM_RIGHTS`); both sides keep it mapped. A large tensor then crosses as one copy
//! into the arena and one copy out of it — no socket transfer, and no fresh pages per
//! transfer (allocating and zeroing new pages costs more than the copy itself). Only a
//! small descriptor (`... SHM <nbytes>`) goes through the socket. The arena has no name:
//! when both sides have closed it — including by crashing — the kernel frees it, so no
//! segment can be left behind.
//!
//! Protocol extension (plain RESP clients never see it):
//! - `INSITU.SHM` → `+OK` on a Unix socket connection of a server that supports it.
//! - `INSITU.SHM ATTACH nbytes`, with the arena's descriptor attached: use it for this
//!   connection's transfers (replacing any earlier arena).
//! - `AI.TENSORSET key TYPE d1..dn SHM nbytes`: the tensor's bytes are at the start of
//!   the arena.
//! - `AI.TENSORGET key META SHM` → like `META BLOB`, except that a tensor of at least
//!   [`SHM_MIN`] bytes that fits the arena is written to its start and comes as
//!   `"shm", nbytes`; others come as `"blob", bytes`.
//!
//! One arena serves one request at a time, which is how a connection is used: a client
//! copies a reply's tensor out before it sends its next command.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use bytes::Bytes;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

use crate::error::{Error, ErrorCode, Result};

/// Tensors at least this large travel through shared memory on a Unix socket.
pub const SHM_MIN: usize = 256 * 1024;

/// Most file descriptors one connection may have waiting (received, not yet used).
pub const MAX_PENDING_FDS: usize = 64;

fn shm_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::err(ErrorCode::Io, format!("shared memory: {what}: {e}"))
}

/// Bytes of shared-memory arenas this process has mapped now (`/metrics`).
static MAPPED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Bytes of shared-memory arenas mapped by this process now (a server: its clients'
/// arenas; a client: its own).
pub fn mapped_bytes() -> usize {
    MAPPED.load(std::sync::atomic::Ordering::Relaxed)
}

/// A shared arena, mapped read-write by both ends of a connection.
pub struct Arena {
    map: memmap2::MmapRaw,
    fd: OwnedFd,
}

impl Drop for Arena {
    fn drop(&mut self) {
        MAPPED.fetch_sub(self.map.len(), std::sync::atomic::Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Arena({} bytes)", self.map.len())
    }
}

const ARENA_SEALS: SealFlag = SealFlag::F_SEAL_GROW
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_SEAL);

impl Arena {
    /// Create an arena of `len` bytes (client side). Pages are allocated on first use and
    /// then reused by every transfer.
    ///
    /// # Errors
    /// The kernel refuses the file or the mapping.
    pub fn create(len: usize) -> Result<Arena> {
        let fd = memfd_create(
            "insitu-arena",
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )
        .map_err(|e| shm_err("memfd_create", e))?;
        let f = File::from(fd);
        f.set_len(len as u64).map_err(|e| shm_err("ftruncate", e))?;
        fcntl(&f, FcntlArg::F_ADD_SEALS(ARENA_SEALS)).map_err(|e| shm_err("seal", e))?;
        Arena::map(f, len)
    }

    /// Map `len` bytes of `f` shared and read-write.
    fn map(f: File, len: usize) -> Result<Arena> {
        let map = memmap2::MmapOptions::new()
            .len(len)
            .map_raw(&f)
            .map_err(|e| shm_err("mmap", e))?;
        MAPPED.fetch_add(len, std::sync::atomic::Ordering::Relaxed);
        Ok(Arena {
            map,
            fd: OwnedFd::from(f),
        })
    }

    /// Map an arena received from a client (server side), after checking that it can
    /// neither shrink nor grow (a shrunk mapping would fault on access) and holds
    /// exactly `len` bytes.
    ///
    /// # Errors
    /// An unsealed or wrongly sized file, or a mapping failure.
    pub fn attach(fd: OwnedFd, len: usize) -> Result<Arena> {
        let seals = fcntl(fd.as_fd(), FcntlArg::F_GET_SEALS).map_err(|_| {
            Error::bad_input("the attached file descriptor is not a sealed memory file")
        })?;
        let needed = SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SHRINK;
        if !SealFlag::from_bits_truncate(seals).contains(needed) {
            return Err(Error::bad_input(
                "a shared memory arena must be sealed against resizing (F_SEAL_GROW, F_SEAL_SHRINK)",
            ));
        }
        let f = File::from(fd);
        let size = f.metadata().map_err(|e| shm_err("fstat", e))?.len();
        if size != len as u64 || len == 0 {
            return Err(Error::bad_input("the arena's size does not match ATTACH"));
        }
        Arena::map(f, len)
    }

    /// The arena's size in bytes.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the arena has no bytes (never: sizes are checked).
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// The descriptor to pass to the server.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Copy `data` to the start of the arena.
    ///
    /// # Errors
    /// When `data` does not fit.
    pub fn write(&self, data: &[u8]) -> Result<()> {
        if data.len() > self.len() {
            return Err(Error::limit("tensor larger than the shared memory arena"));
        }
        // Safety: the mapping is `len` bytes and cannot shrink (sealed), and `data` fits.
        // The peer only touches the arena while we wait for its reply.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.map.as_mut_ptr(), data.len());
        }
        Ok(())
    }

    /// The first `len` bytes of the arena as shared bytes, without a copy. The arena must
    /// not be written while the returned bytes (or any clone of them) live: a client
    /// checks [`std::sync::Arc::strong_count`] before each transfer and attaches a fresh
    /// arena instead when views are still held.
    ///
    /// # Errors
    /// When `len` exceeds the arena.
    pub fn view(self: &std::sync::Arc<Self>, len: usize) -> Result<Bytes> {
        if len > self.len() {
            return Err(Error::bad_input(
                "SHM length exceeds the shared memory arena",
            ));
        }
        Ok(Bytes::from_owner(ArenaView {
            arena: self.clone(),
            len,
        }))
    }

    /// Copy the first `len` bytes of the arena out.
    ///
    /// # Errors
    /// When `len` exceeds the arena.
    pub fn read(&self, len: usize) -> Result<Bytes> {
        if len > self.len() {
            return Err(Error::bad_input(
                "SHM length exceeds the shared memory arena",
            ));
        }
        let mut v = Vec::with_capacity(len);
        // Safety: as in `write`; `v` has capacity `len` and every byte is written before
        // `set_len`.
        unsafe {
            std::ptr::copy_nonoverlapping(self.map.as_ptr(), v.as_mut_ptr(), len);
            v.set_len(len);
        }
        Ok(Bytes::from(v))
    }
}

/// Bytes at the start of an arena, kept mapped while they live.
struct ArenaView {
    arena: std::sync::Arc<Arena>,
    len: usize,
}

impl AsRef<[u8]> for ArenaView {
    fn as_ref(&self) -> &[u8] {
        // Safety: the mapping is at least `len` bytes (checked in `view`), cannot shrink
        // (sealed) and stays mapped while `self.arena` lives; by protocol nothing writes
        // the arena while a view of it exists (the client switches arenas instead).
        unsafe { std::slice::from_raw_parts(self.arena.map.as_ptr(), self.len) }
    }
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

/// Receive into `buf` from a Unix socket, queueing any file descriptors that came along
/// (closing those beyond [`MAX_PENDING_FDS`]); returns the bytes read.
///
/// # Errors
/// The socket's error.
pub fn recv_with_fds(
    sock: RawFd,
    buf: &mut [u8],
    fds: &mut VecDeque<OwnedFd>,
) -> std::io::Result<usize> {
    let mut space = nix::cmsg_space!([RawFd; 8]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(std::io::Error::from)?;
    let n = msg.bytes;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(received) = c {
                for raw in received {
                    // Safety: SCM_RIGHTS hands us new descriptors that nothing else owns.
                    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
                    if fds.len() < MAX_PENDING_FDS {
                        fds.push_back(fd);
                    }
                }
            }
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

    #[test]
    fn arenas_carry_bytes_both_ways_and_must_be_sealed() {
        let a = Arena::create(1 << 20).unwrap();
        let dup = a.fd().try_clone().unwrap();
        let b = Arena::attach(dup, 1 << 20).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        a.write(&data).unwrap();
        assert_eq!(b.read(data.len()).unwrap().as_ref(), &data[..]);
        b.write(b"reply").unwrap();
        assert_eq!(a.read(5).unwrap().as_ref(), b"reply");
        assert!(a.write(&vec![0u8; 2 << 20]).is_err());
        assert!(b.read((1 << 20) + 1).is_err());
        let dup = a.fd().try_clone().unwrap();
        assert_eq!(
            Arena::attach(dup, 4096).unwrap_err().text(),
            "ERR the arena's size does not match ATTACH"
        );
        let unsealed = memfd_create("x", MFdFlags::MFD_CLOEXEC).unwrap();
        assert_eq!(
            Arena::attach(unsealed, 1).unwrap_err().text(),
            "ERR a shared memory arena must be sealed against resizing (F_SEAL_GROW, F_SEAL_SHRINK)"
        );
    }

    #[test]
    fn descriptors_travel_with_the_bytes() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let arena = Arena::create(4096).unwrap();
        arena.write(b"hello").unwrap();
        let n = send_with_fds(raw(&a), &[IoSlice::new(b"cmd")], &[raw(arena.fd())]).unwrap();
        assert_eq!(n, 3);
        let mut buf = [0u8; 16];
        let mut fds = VecDeque::new();
        let n = recv_with_fds(raw(&b), &mut buf, &mut fds).unwrap();
        assert_eq!(&buf[..n], b"cmd");
        assert_eq!(fds.len(), 1);
        let got = Arena::attach(fds.pop_front().unwrap(), 4096).unwrap();
        assert_eq!(got.read(5).unwrap().as_ref(), b"hello");
    }
}
