//! How a client reaches an engine: over a socket (TCP or Unix, RESP2 with the same frame
//! codec the server uses), or directly in process.
//!
//! Commands are argument vectors of [`Bytes`]: a tensor's payload is one shared `Bytes`,
//! written to a socket without a copy (vectored write) or handed to an in-process engine
//! as is. Replies are [`Frame`]s whose bulk payloads are slices of the read buffer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::address::Address;
use crate::cmd::Reply;
use crate::engine::{Engine, Session};
use crate::error::{Error, ErrorCode, Result};
use crate::resp::{decode_reply, Frame, Output};

/// A command under construction.
#[derive(Debug, Clone, Default)]
pub struct Cmd(pub(crate) Vec<Bytes>);

/// Values that can be command arguments.
pub trait Arg {
    /// As bytes (shared, not copied, for `Bytes`).
    fn into_arg(self) -> Bytes;
}

impl Arg for Bytes {
    fn into_arg(self) -> Bytes {
        self
    }
}
impl Arg for &Bytes {
    fn into_arg(self) -> Bytes {
        self.clone()
    }
}
impl Arg for &str {
    fn into_arg(self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}
impl Arg for &String {
    fn into_arg(self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}
impl Arg for String {
    fn into_arg(self) -> Bytes {
        Bytes::from(self)
    }
}
impl Arg for &[u8] {
    fn into_arg(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}
macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl Arg for $t {
            fn into_arg(self) -> Bytes {
                Bytes::from(self.to_string())
            }
        }
    )*};
}
int_arg!(usize, u64, i64, u32, i32);

impl Cmd {
    /// A command named `name`.
    pub fn new(name: &'static str) -> Cmd {
        Cmd(vec![Bytes::from_static(name.as_bytes())])
    }

    /// Append an argument.
    pub fn arg(&mut self, a: impl Arg) -> &mut Cmd {
        self.0.push(a.into_arg());
        self
    }

    /// Append an argument (by value, for chains).
    pub fn with(mut self, a: impl Arg) -> Cmd {
        self.0.push(a.into_arg());
        self
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn io(&mut self) -> &mut dyn ReadWrite {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// A RESP connection to a server.
pub(crate) struct Remote {
    stream: Stream,
    rbuf: BytesMut,
    out: Output,
    /// Whether the server takes shared-memory transfers on this connection.
    pub(crate) shm: bool,
    /// The arena shared with the server (attached when shared memory is on).
    arena: Option<Arc<crate::shm::Arena>>,
}

/// The arena's size when shared memory is turned on; it grows to fit larger tensors.
const ARENA_DEFAULT: usize = 64 << 20;

fn io_err(context: &str, e: std::io::Error) -> Error {
    Error::err(ErrorCode::Io, format!("{context}: {e}"))
}

impl Remote {
    pub(crate) fn connect(addr: &Address) -> Result<Remote> {
        let ctx = |e: std::io::Error| io_err(&format!("cannot connect to {addr}"), e);
        let stream = match addr {
            Address::Tcp(h, p) => {
                let s = TcpStream::connect((h.as_str(), *p)).map_err(ctx)?;
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }
            Address::Unix(p) => Stream::Unix(UnixStream::connect(p).map_err(ctx)?),
            Address::Inproc => {
                return Err(Error::err(
                    ErrorCode::Internal,
                    "inproc is not a socket address",
                ))
            }
        };
        Ok(Remote {
            stream,
            rbuf: BytesMut::with_capacity(64 * 1024),
            out: Output::default(),
            shm: false,
            arena: None,
        })
    }

    fn write(&mut self, cmds: &[Cmd], fds: &[OwnedFd]) -> Result<()> {
        for c in cmds {
            Frame::Array(c.0.iter().map(|a| Frame::Bulk(a.clone())).collect())
                .encode(&mut self.out);
        }
        let mut chunks = self.out.take_chunks();
        let mut first = 0;
        if !fds.is_empty() {
            // The descriptors travel with the first bytes of the command.
            let Stream::Unix(u) = &self.stream else {
                return Err(Error::bad_input(
                    "shared memory transfers need a Unix socket",
                ));
            };
            let raws: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
            let slices = crate::resp::io_slices(&chunks);
            let n = crate::shm::send_with_fds(u.as_raw_fd(), &slices, &raws)
                .map_err(|e| io_err("write", e))?;
            crate::resp::advance_chunks(&mut chunks, &mut first, n);
        }
        let io = self.stream.io();
        while first < chunks.len() {
            let slices = crate::resp::io_slices(&chunks[first..]);
            let n = io.write_vectored(&slices).map_err(|e| io_err("write", e))?;
            if n == 0 {
                return Err(io_err("write", std::io::ErrorKind::WriteZero.into()));
            }
            crate::resp::advance_chunks(&mut chunks, &mut first, n);
        }
        Ok(())
    }

    /// Create an arena of `size` bytes and hand it to the server for this connection.
    fn attach_arena(&mut self, size: usize) -> Result<()> {
        let arena = crate::shm::Arena::create(size)?;
        let fd = arena.fd().try_clone().map_err(|e| io_err("dup", e))?;
        self.write(&[Cmd::new("INSITU.SHM").with("ATTACH").with(size)], &[fd])?;
        match self.read()? {
            Frame::Error(e) => Err(Error::from_server_text(e)),
            _ => {
                self.arena = Some(Arc::new(arena));
                Ok(())
            }
        }
    }

    fn read(&mut self) -> Result<Frame> {
        loop {
            if let Some(f) = decode_reply(&mut self.rbuf)? {
                return Ok(f);
            }
            // Read straight into the buffer (zero-filled first: safe code only); the read
            // size grows with the pending reply so a large tensor takes few reads.
            let len = self.rbuf.len();
            let want = (64 * 1024).max(len);
            self.rbuf.resize(len + want, 0);
            let r = self.stream.io().read(&mut self.rbuf[len..]);
            let n = match r {
                Ok(n) => n,
                Err(e) => {
                    self.rbuf.truncate(len);
                    return Err(io_err("read", e));
                }
            };
            self.rbuf.truncate(len + n);
            if n == 0 {
                return Err(Error::err(ErrorCode::Io, "connection closed by the server"));
            }
        }
    }
}

/// An engine in this process, reached without a socket.
pub(crate) struct Inproc {
    pub(crate) engine: Arc<Engine>,
    session: Session,
    rt: tokio::runtime::Runtime,
}

impl Inproc {
    pub(crate) fn new(engine: Arc<Engine>) -> Result<Inproc> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| Error::io("cannot start the in-process client runtime", &e))?;
        let mut session = engine.new_session();
        session.inline_inference = true;
        session.authenticated = true;
        Ok(Inproc {
            engine,
            session,
            rt,
        })
    }

    fn call(&mut self, cmd: Cmd) -> Frame {
        match self.engine.execute(&mut self.session, cmd.0) {
            Reply::Ready(f) => f,
            Reply::Pending(fut) => self.rt.block_on(fut),
        }
    }
}

/// A client's connection.
pub(crate) enum Conn {
    Remote(Box<Remote>),
    Inproc(Box<Inproc>),
}

fn check(f: Frame) -> Result<Frame> {
    match f {
        Frame::Error(e) => Err(Error::from_server_text(e)),
        f => Ok(f),
    }
}

impl Conn {
    /// Run one command; an error reply becomes `Err`.
    pub(crate) fn call(&mut self, cmd: Cmd) -> Result<Frame> {
        self.call_with_fds(cmd, &[])
    }

    /// Run one command with file descriptors attached (shared memory, Unix only).
    pub(crate) fn call_with_fds(&mut self, cmd: Cmd, fds: &[OwnedFd]) -> Result<Frame> {
        match self {
            Conn::Remote(r) => {
                r.write(std::slice::from_ref(&cmd), fds)?;
                check(r.read()?)
            }
            Conn::Inproc(i) => check(i.call(cmd)),
        }
    }

    /// Whether large tensors go through shared memory on this connection.
    pub(crate) fn shm(&self) -> bool {
        matches!(self, Conn::Remote(r) if r.shm)
    }

    /// Turn shared-memory transfers on (when the server takes them) or off.
    pub(crate) fn set_shm(&mut self, on: bool) -> Result<bool> {
        let Conn::Remote(r) = self else {
            return Ok(false);
        };
        r.shm = false;
        if on && matches!(r.stream, Stream::Unix(_)) {
            r.write(&[Cmd::new("INSITU.SHM")], &[])?;
            if matches!(r.read()?, Frame::Simple(_)) {
                let size = r.arena.as_ref().map_or(ARENA_DEFAULT, |a| a.len());
                r.attach_arena(size)?;
                r.shm = true;
            }
        }
        Ok(r.shm)
    }

    /// The arena, made ready for the next transfer of `len` bytes: big enough, and not
    /// viewed by any tensor still alive (else a fresh one is attached; the old one lives
    /// on with its views).
    fn ready_arena(&mut self, len: usize) -> Result<Arc<crate::shm::Arena>> {
        let Conn::Remote(r) = self else {
            return Err(Error::err(
                ErrorCode::Internal,
                "no shared memory in process",
            ));
        };
        let size = match &r.arena {
            Some(a) if a.len() >= len && Arc::strong_count(a) == 1 => return Ok(a.clone()),
            Some(a) => a.len().max(len.next_power_of_two()),
            None => ARENA_DEFAULT.max(len.next_power_of_two()),
        };
        r.attach_arena(size)?;
        r.arena
            .clone()
            .ok_or_else(|| Error::err(ErrorCode::Internal, "no shared memory arena"))
    }

    /// Put `data` at the start of the shared arena.
    pub(crate) fn shm_write(&mut self, data: &[u8]) -> Result<()> {
        self.ready_arena(data.len())?.write(data)
    }

    /// Make the arena ready for a reply of up to `len` bytes (before a shared-memory get).
    pub(crate) fn shm_prepare_read(&mut self) -> Result<()> {
        let len = match self {
            Conn::Remote(r) => r.arena.as_ref().map_or(0, |a| a.len()),
            Conn::Inproc(_) => return Ok(()),
        };
        self.ready_arena(len).map(|_| ())
    }

    /// The first `len` bytes of the arena, shared (not copied) until the next transfer.
    pub(crate) fn shm_read(&mut self, len: usize) -> Result<Bytes> {
        match self {
            Conn::Remote(r) => match &r.arena {
                Some(a) => a.view(len),
                None => Err(Error::err(ErrorCode::Protocol, "no shared memory arena")),
            },
            Conn::Inproc(_) => Err(Error::err(
                ErrorCode::Internal,
                "no shared memory in process",
            )),
        }
    }

    /// Make sure the arena can hold `len` bytes (so the next transfer of that size uses it).
    pub(crate) fn shm_reserve(&mut self, len: usize) -> Result<()> {
        if let Conn::Remote(r) = self {
            if r.shm && r.arena.as_ref().is_none_or(|a| a.len() < len) {
                let size = len.next_power_of_two().max(ARENA_DEFAULT);
                r.attach_arena(size)?;
            }
        }
        Ok(())
    }

    /// Run commands in one round trip; error replies stay in the result, in place.
    pub(crate) fn pipeline(&mut self, cmds: Vec<Cmd>) -> Result<Vec<Frame>> {
        match self {
            Conn::Remote(r) => {
                r.write(&cmds, &[])?;
                (0..cmds.len()).map(|_| r.read()).collect()
            }
            Conn::Inproc(i) => Ok(cmds.into_iter().map(|c| i.call(c)).collect()),
        }
    }
}
