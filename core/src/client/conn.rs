//! How a client reaches an engine: in process (the engine's typed operations, and its
//! commands), over a socket to one server ([`Remote`]), or to every node of a cluster
//! ([`super::cluster::Cluster`]).

use std::sync::Arc;

use bytes::Bytes;

use super::remote::{Cmd, Remote, RetryPolicy, Stream, ARENA_DEFAULT};
use crate::cmd::Reply;
use crate::engine::{Engine, Run, Session};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::resp::Frame;

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
            Conn::Remote(r) => r.policy = policy,
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
    fn ready_arena(&mut self, len: usize) -> Result<Arc<crate::protocol::shm::Arena>> {
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
            Conn::Inproc(_) | Conn::Cluster(_) => return Ok(()),
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
            Conn::Inproc(_) | Conn::Cluster(_) => Err(Error::err(
                ErrorCode::Internal,
                "no shared memory on this connection",
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
