//! How a client reaches an engine: in process (the engine's typed operations, and its
//! commands), over a socket to one server ([`Remote`]), or to every node of a cluster
//! ([`super::cluster::Cluster`]).

use std::sync::Arc;

use bytes::Bytes;

use super::remote::{Cmd, Remote, RetryPolicy, Stream};
use crate::cmd::Reply;
use crate::engine::{Engine, Run, Session};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::resp::Frame;
use crate::protocol::shm::MAX_SPARES;
use std::os::fd::OwnedFd;

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

    /// The result of an engine operation, waiting here for one that was queued.
    pub(crate) fn finish<T>(&self, run: Run<T>) -> Result<T> {
        match run {
            Run::Done(r) => r,
            Run::Queued(f) => self.rt.block_on(f),
        }
    }

    /// Wait here for `f` (an engine wait).
    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    fn call(&mut self, cmd: Cmd) -> Frame {
        let f = match crate::cmd::execute(&self.engine, &mut self.session, cmd.0) {
            Reply::Ready(f) => f,
            Reply::Pending(fut) => self.rt.block_on(fut),
        };
        f.for_protocol(self.session.client.protocol())
    }
}

/// A client's connection.
pub(crate) enum Conn {
    Remote(Box<Remote>),
    Inproc(Box<Inproc>),
    Cluster(Box<super::cluster::Cluster>),
}

fn check(f: Frame) -> Result<Frame> {
    match f {
        Frame::Error(e) => Err(e),
        f => Ok(f),
    }
}

impl Conn {
    /// The engine of an in-process connection, for its typed operations.
    pub(crate) fn inproc(&self) -> Option<&Inproc> {
        match self {
            Conn::Inproc(i) => Some(i),
            Conn::Remote(_) | Conn::Cluster(_) => None,
        }
    }

    /// Run one command; an error reply becomes `Err`. A broken connection is replaced
    /// and the command sent again as the retry policy says.
    pub(crate) fn call(&mut self, cmd: Cmd) -> Result<Frame> {
        match self {
            Conn::Remote(r) => {
                let cmds = std::slice::from_ref(&cmd);
                let f = r
                    .exchange_retrying(cmds)?
                    .pop()
                    .ok_or_else(|| Error::err(ErrorCode::Internal, "no reply to a command"))?;
                if self.became_cluster(&f)? {
                    return self.call(cmd);
                }
                let f = check(f)?;
                if let Conn::Remote(r) = self {
                    if cmd.0.len() == 2 && cmd.0[0].eq_ignore_ascii_case(b"AUTH") {
                        r.password = Some(cmd.0[1].clone());
                    }
                }
                Ok(f)
            }
            Conn::Inproc(i) => check(i.call(cmd)),
            Conn::Cluster(c) => check(c.call(&cmd)?),
        }
    }

    /// After a reply `MOVED` on a connection to one server: that server is a cluster
    /// node, so this connection becomes a cluster connection (slot map read, commands
    /// routed from now on). Whether it did.
    fn became_cluster(&mut self, reply: &Frame) -> Result<bool> {
        let Conn::Remote(r) = self else {
            return Ok(false);
        };
        if !matches!(reply, Frame::Error(e) if e.text().starts_with("MOVED ")) {
            return Ok(false);
        }
        let (seed, policy, password) = (r.addr.clone(), r.policy, r.password.clone());
        match super::cluster::Cluster::connect(vec![seed], policy, password)? {
            Ok(c) => {
                *self = Conn::Cluster(Box::new(c));
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    /// The cluster connection, in cluster mode.
    pub(crate) fn cluster(&mut self) -> Option<&mut super::cluster::Cluster> {
        match self {
            Conn::Cluster(c) => Some(c),
            _ => None,
        }
    }

    /// Change how broken connections are ridden out (no effect in process).
    pub(crate) fn set_retry_policy(&mut self, policy: RetryPolicy) {
        match self {
            Conn::Remote(r) => r.set_policy(policy),
            Conn::Cluster(c) => c.set_retry_policy(policy),
            Conn::Inproc(_) => {}
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
            r.start_shm()?;
        }
        Ok(r.shm)
    }

    fn remote(&mut self) -> Result<&mut Remote> {
        match self {
            Conn::Remote(r) => Ok(r),
            Conn::Inproc(_) | Conn::Cluster(_) => Err(Error::err(
                ErrorCode::Internal,
                "no shared memory on this connection",
            )),
        }
    }

    /// A block lent for a put of `len` bytes: the connection's spare of that size class,
    /// else one lent now (a round trip).
    pub(crate) fn shm_block(&mut self, len: usize) -> Result<u64> {
        let class = crate::protocol::shm::class_of(len);
        let r = self.remote()?;
        if let Some(i) = r.spares.iter().position(|(c, _)| *c == class) {
            return Ok(r.spares.remove(i).1);
        }
        let reply = self.call(shm_alloc(len))?;
        self.take_loan(&reply)
    }

    /// Note the block an `INSITU.SHM ALLOC` reply lends (its descriptor kept until a put
    /// writes it); returns its number.
    pub(crate) fn take_loan(&mut self, reply: &Frame) -> Result<u64> {
        self.remote()?.take_loan(reply).map(|(block, _)| block)
    }

    /// The mapping of `block` (file `key`): from the descriptor that came, from this
    /// process's mappings, or — when it mapped the block once but no longer does — from
    /// its descriptor asked for again (a round trip).
    fn block_mapping(
        &mut self,
        block: u64,
        key: (u64, u64),
        fd: Option<OwnedFd>,
        len: usize,
        writable: bool,
    ) -> Result<Arc<crate::protocol::shm::Mapping>> {
        if let Some(fd) = fd {
            return super::mappings::map(fd, len, writable);
        }
        if let Some(m) = super::mappings::lookup(key, len, writable) {
            return Ok(m);
        }
        let reply = self.call(Cmd::new("INSITU.SHM").with("FD").with(block))?;
        let items = ints(&reply, "INSITU.SHM FD")?;
        let [w, _, _] = items.as_slice() else {
            return Err(bad_reply("INSITU.SHM FD"));
        };
        if writable && *w != 1 {
            return Err(bad_reply("INSITU.SHM FD"));
        }
        let fd = self.remote()?.last_fd()?;
        super::mappings::map(fd, len, writable)
    }

    /// Whether a put of `len` bytes should have the next put's block lent ahead: from
    /// the second put of its size class on.
    pub(crate) fn wants_spare(&mut self, len: usize) -> bool {
        let class = crate::protocol::shm::class_of(len);
        let Ok(r) = self.remote() else { return false };
        if r.classes.contains(&class) {
            return true;
        }
        if r.classes.len() >= 2 * MAX_SPARES {
            r.classes.remove(0);
        }
        r.classes.push(class);
        false
    }

    /// Keep a block lent ahead of the next put of `len` bytes (a spare beyond
    /// [`MAX_SPARES`] goes back to the server with the next command).
    pub(crate) fn keep_spare(&mut self, len: usize, block: u64) -> Result<()> {
        let class = crate::protocol::shm::class_of(len);
        self.remote()?.keep_spare(class, block);
        Ok(())
    }

    /// Write `data` at the start of lent block `block`.
    pub(crate) fn shm_write(&mut self, block: u64, data: &[u8]) -> Result<()> {
        let lent =
            self.remote()?.lent.remove(&block).ok_or_else(|| {
                Error::err(ErrorCode::Protocol, "shared memory: a block not lent")
            })?;
        self.block_mapping(block, lent.key, lent.fd, data.len(), true)?
            .write(data)
    }

    /// The bytes a get's `"shm", [block, offset, nbytes, hold, writable, dev, ino, fd]`
    /// names, viewed in place; the hold is released when the last view is dropped.
    pub(crate) fn shm_view(&mut self, spec: &Frame) -> Result<Bytes> {
        let r = self.remote()?;
        let items = ints(spec, "AI.TENSORGET")?;
        let [block, offset, len, hold, writable, dev, ino, fd] = items.as_slice() else {
            return Err(bad_reply("AI.TENSORGET"));
        };
        let release = super::remote::Release {
            hold: *hold as u64,
            to: r.released.clone(),
        };
        let fd = if *fd == 1 { Some(r.next_fd()?) } else { None };
        let (offset, len) = (as_usize(*offset)?, as_usize(*len)?);
        let end = offset
            .checked_add(len)
            .ok_or_else(|| bad_reply("AI.TENSORGET"))?;
        let key = (*dev as u64, *ino as u64);
        let map = self.block_mapping(*block as u64, key, fd, end, *writable == 1)?;
        map.view(offset, len, release)
    }

    /// Run commands in one round trip; error replies stay in the result, in place. A
    /// broken connection is replaced and the batch sent again when that is safe.
    pub(crate) fn pipeline(&mut self, cmds: Vec<Cmd>) -> Result<Vec<Frame>> {
        let mut replies = match self {
            Conn::Remote(r) => r.exchange_retrying(&cmds)?,
            Conn::Inproc(i) => return Ok(cmds.into_iter().map(|c| i.call(c)).collect()),
            Conn::Cluster(c) => return c.pipeline(cmds),
        };
        // A cluster node redirected some: route those from now on.
        if let Some(first) = replies
            .iter()
            .find(|f| matches!(f, Frame::Error(e) if e.text().starts_with("MOVED ")))
            .cloned()
        {
            if self.became_cluster(&first)? {
                if let Conn::Cluster(c) = self {
                    for (i, f) in replies.iter_mut().enumerate() {
                        if matches!(f, Frame::Error(e) if e.text().starts_with("MOVED ")) {
                            *f = c.call(&cmds[i])?;
                        }
                    }
                }
            }
        }
        Ok(replies)
    }
}

/// The integers of an array reply.
pub(super) fn ints(f: &Frame, what: &str) -> Result<Vec<i64>> {
    match f {
        Frame::Array(items) => items
            .iter()
            .map(|i| match i {
                Frame::Integer(n) if *n >= 0 => Ok(*n),
                _ => Err(bad_reply(what)),
            })
            .collect(),
        _ => Err(bad_reply(what)),
    }
}

fn as_usize(n: i64) -> Result<usize> {
    usize::try_from(n).map_err(|_| bad_reply("shared memory"))
}

pub(super) fn bad_reply(what: &str) -> Error {
    Error::err(ErrorCode::Protocol, format!("{what}: unexpected reply"))
}

/// `INSITU.SHM ALLOC len`.
pub(crate) fn shm_alloc(len: usize) -> Cmd {
    Cmd::new("INSITU.SHM").with("ALLOC").with(len)
}
