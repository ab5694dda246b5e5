//! Shared-memory transfers over a Unix socket.
//!
//! A large tensor does not travel through the socket: its bytes are written once into an
//! anonymous memory file (`memfd_create`), sealed against any further change, and the
//! file descriptor is passed alongside the command (`SCM_RIGHTS`); the receiver maps it
//! read-only and keeps the mapping as the tensor's bytes. Only a small descriptor
//! (`... SHM <nbytes>`) goes through the socket. Such a file has no name: when both
//! sides have closed it — including by crashing — the kernel frees it, so no segment can
//! be left behind.
//!
//! Protocol extension (plain RESP clients never see it):
//! - `INSITU.SHM` → `+OK` on a Unix socket connection of a server that supports it.
//! - `AI.TENSORSET key TYPE d1..dn SHM nbytes`, with the sealed memfd attached to the
//!   command's bytes.
//! - `AI.TENSORGET key META SHM` → like `META BLOB`, except that a tensor of at least
//!   [`SHM_MIN`] bytes comes as `"shm", nbytes` with its sealed memfd attached to the
//!   reply; smaller ones come as `"blob", bytes`.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{IoSlice, IoSliceMut, Write};
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

const SEALS: SealFlag = SealFlag::F_SEAL_WRITE
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_SEAL);

/// A sealed anonymous memory file holding `data`.
///
/// # Errors
/// The kernel refuses the file (no memory, no memfd support).
pub fn segment_from(data: &[u8]) -> Result<OwnedFd> {
    let fd = memfd_create(
        "insitu-tensor",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(|e| shm_err("memfd_create", e))?;
    let mut f = File::from(fd);
    f.write_all(data).map_err(|e| shm_err("write", e))?;
    fcntl(&f, FcntlArg::F_ADD_SEALS(SEALS)).map_err(|e| shm_err("seal", e))?;
    Ok(OwnedFd::from(f))
}

/// Map a received segment read-only, after checking that it is sealed against writes and
/// resizing and holds exactly `len` bytes. The mapping becomes the returned bytes.
///
/// # Errors
/// An unsealed segment, a size mismatch, or a mapping failure.
pub fn map_sealed(fd: OwnedFd, len: usize) -> Result<Bytes> {
    let seals = fcntl(fd.as_fd(), FcntlArg::F_GET_SEALS).map_err(|_| {
        Error::bad_input("the attached file descriptor is not a sealed memory file")
    })?;
    let needed = SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SHRINK;
    if !SealFlag::from_bits_truncate(seals).contains(needed) {
        return Err(Error::bad_input(
            "shared memory segment must be sealed (F_SEAL_WRITE, F_SEAL_GROW, F_SEAL_SHRINK)",
        ));
    }
    let file = File::from(fd);
    let size = file.metadata().map_err(|e| shm_err("fstat", e))?.len();
    if size != len as u64 {
        return Err(Error::bad_input(
            "data length does not match tensor shape and type",
        ));
    }
    if len == 0 {
        return Ok(Bytes::new());
    }
    // Safety: the segment is sealed against writes and size changes (checked above), so
    // the mapped bytes can never change or vanish while mapped, which is what `Mmap`
    // requires.
    let map = unsafe { memmap2::MmapOptions::new().len(len).populate().map(&file) }
        .map_err(|e| shm_err("mmap", e))?;
    Ok(Bytes::from_owner(map))
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
    fn segments_round_trip_and_must_be_sealed() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let fd = segment_from(&data).unwrap();
        let b = map_sealed(fd, data.len()).unwrap();
        assert_eq!(b.as_ref(), &data[..]);
        let fd = segment_from(&data).unwrap();
        assert_eq!(
            map_sealed(fd, 5).unwrap_err().text(),
            "ERR data length does not match tensor shape and type"
        );
        let unsealed = memfd_create("x", MFdFlags::MFD_CLOEXEC).unwrap();
        assert_eq!(
            map_sealed(unsealed, 0).unwrap_err().text(),
            "ERR shared memory segment must be sealed (F_SEAL_WRITE, F_SEAL_GROW, F_SEAL_SHRINK)"
        );
        let not_memfd = File::open("/dev/null").unwrap();
        assert!(map_sealed(OwnedFd::from(not_memfd), 0).is_err());
    }

    #[test]
    fn descriptors_travel_with_the_bytes() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let seg = segment_from(b"hello").unwrap();
        let n = send_with_fds(raw(&a), &[IoSlice::new(b"cmd")], &[raw(&seg)]).unwrap();
        assert_eq!(n, 3);
        let mut buf = [0u8; 16];
        let mut fds = VecDeque::new();
        let n = recv_with_fds(raw(&b), &mut buf, &mut fds).unwrap();
        assert_eq!(&buf[..n], b"cmd");
        assert_eq!(fds.len(), 1);
        let got = map_sealed(fds.pop_front().unwrap(), 5).unwrap();
        assert_eq!(got.as_ref(), b"hello");
    }
}
