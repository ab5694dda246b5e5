//! A client's socket to one server (TCP or Unix, RESP2 with the same frame codec the
//! server uses): commands, the retry policy, the reply limits the command table gives.
//!
//! Commands are argument vectors of [`Bytes`]: a tensor's payload is one shared `Bytes`,
//! written to a socket without a copy (vectored write) or handed to an in-process engine
//! as is. Replies are [`Frame`]s whose bulk payloads are slices of the read buffer.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use bytes::{Bytes, BytesMut};

use super::address::Address;
use crate::cmd::table::{self, ReplyWait, Retry};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::resp::{decode_reply, Frame, Output};

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

/// How a client rides out a broken connection or a server that restarts. The variables
/// and units are SmartRedis': after a connection breaks, a command is sent again on a new
/// connection, every `cmd_interval`, until `cmd_timeout` has passed; the first connection
/// is tried every `conn_interval` until `conn_timeout`. Only commands that may safely run
/// twice are sent again (`RPUSH`/`LPUSH` not after a `DEL` of the same list in the same
/// pipeline, and `RENAME`, are not: they fail with an error saying so, on a connection
/// that works again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How long to keep trying to connect (`INSITU_CONN_TIMEOUT` / `SR_CONN_TIMEOUT`,
    /// seconds; default 100).
    pub conn_timeout: Duration,
    /// Between connection attempts (`INSITU_CONN_INTERVAL` / `SR_CONN_INTERVAL`,
    /// milliseconds; default 100).
    pub conn_interval: Duration,
    /// How long to keep retrying a command whose connection broke (`INSITU_CMD_TIMEOUT` /
    /// `SR_CMD_TIMEOUT`, seconds; default 100).
    pub cmd_timeout: Duration,
    /// Between command attempts (`INSITU_CMD_INTERVAL` / `SR_CMD_INTERVAL`,
    /// milliseconds; default 100).
    pub cmd_interval: Duration,
    /// How long one attempt waits for its reply before the connection counts as broken
    /// (`INSITU_SOCKET_TIMEOUT` / `SR_SOCKET_TIMEOUT`, seconds; default 0: no limit). A
    /// server that hangs without closing then costs a retry, not a hung simulation.
    /// `INSITU.WAIT` gets its own timeout on top; model runs (`AI.MODELEXECUTE`,
    /// `AI.DAGEXECUTE`) are not limited: they take as long as the model takes.
    pub socket_timeout: Duration,
    /// How long a reply is busy-waited for before the thread sleeps until it comes
    /// (`INSITU_REPLY_SPIN_US`, microseconds; default 50, 0: never). On a node, a reply
    /// often comes within tens of microseconds, and a thread that sleeps for it pays a
    /// wake-up on each side (an inter-processor interrupt each, costly on virtual
    /// machines). The wait stops spinning on a connection whose replies keep coming
    /// later than this (a busy or oversubscribed node), and tries again now and then.
    pub reply_spin: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            conn_timeout: Duration::from_secs(100),
            conn_interval: Duration::from_millis(100),
            cmd_timeout: Duration::from_secs(100),
            cmd_interval: Duration::from_millis(100),
            socket_timeout: Duration::ZERO,
            reply_spin: Duration::from_micros(50),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry: errors come at once.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            conn_timeout: Duration::ZERO,
            conn_interval: Duration::ZERO,
            cmd_timeout: Duration::ZERO,
            cmd_interval: Duration::ZERO,
            socket_timeout: Duration::ZERO,
            reply_spin: RetryPolicy::default().reply_spin,
        }
    }

    /// The policy from the environment (`INSITU_*`, else SmartRedis' `SR_*`, else the
    /// defaults).
    ///
    /// # Errors
    /// A variable that is not a non-negative integer.
    pub fn from_env() -> Result<RetryPolicy> {
        RetryPolicy::from_vars(|k| std::env::var(k).ok())
    }

    /// The policy from variables looked up with `var`.
    ///
    /// # Errors
    /// A variable that is not a non-negative integer.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<RetryPolicy> {
        let d = RetryPolicy::default();
        let get = |name: &str, unit: Unit, default: Duration| -> Result<Duration> {
            for v in [format!("INSITU_{name}"), format!("SR_{name}")] {
                if let Some(text) = var(&v) {
                    let n: u64 = text.trim().parse().map_err(|_| {
                        Error::bad_input(format!(
                            "{v} must be a whole number of {}, not '{text}'",
                            unit.name()
                        ))
                    })?;
                    return Ok(unit.of(n));
                }
            }
            Ok(default)
        };
        Ok(RetryPolicy {
            conn_timeout: get("CONN_TIMEOUT", Unit::Secs, d.conn_timeout)?,
            conn_interval: get("CONN_INTERVAL", Unit::Millis, d.conn_interval)?,
            cmd_timeout: get("CMD_TIMEOUT", Unit::Secs, d.cmd_timeout)?,
            cmd_interval: get("CMD_INTERVAL", Unit::Millis, d.cmd_interval)?,
            socket_timeout: get("SOCKET_TIMEOUT", Unit::Secs, d.socket_timeout)?,
            // insitu's own (SmartRedis has no such variable; SR_REPLY_SPIN_US is read too).
            reply_spin: get("REPLY_SPIN_US", Unit::Micros, d.reply_spin)?,
        })
    }
}

/// The unit of a policy variable.
#[derive(Clone, Copy)]
enum Unit {
    Secs,
    Millis,
    Micros,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Secs => "seconds",
            Unit::Millis => "milliseconds",
            Unit::Micros => "microseconds",
        }
    }

    fn of(self, n: u64) -> Duration {
        match self {
            Unit::Secs => Duration::from_secs(n),
            Unit::Millis => Duration::from_millis(n),
            Unit::Micros => Duration::from_micros(n),
        }
    }
}

/// Whether `cmds`, sent once and perhaps applied, may be sent again: every command
/// leaves the same state when run twice, or (a list push) follows a `DEL` of its list in
/// the same batch.
fn retry_safe(cmds: &[Cmd]) -> bool {
    let mut deleted: Vec<&[u8]> = Vec::new();
    cmds.iter().all(|c| {
        let Some(spec) = c.0.first().and_then(|n| table::lookup(n)) else {
            return true;
        };
        if spec.name == "del" || spec.name == "unlink" {
            deleted.extend(c.0[1..].iter().map(|k| k.as_ref()));
        }
        match spec.retry {
            Retry::Safe => true,
            Retry::Never => false,
            Retry::AfterDel => c.0.get(1).is_some_and(|k| deleted.contains(&k.as_ref())),
        }
    })
}

/// How long `cmds` may wait for their replies given a per-attempt `limit` (`None`: no
/// limit), as the command table says: a wait's own timeout is added, model runs are not
/// limited.
fn reply_limit(cmds: &[Cmd], limit: Duration) -> Option<Duration> {
    if limit.is_zero() {
        return None;
    }
    let mut extra = Duration::ZERO;
    for c in cmds {
        let Some(spec) = c.0.first().and_then(|n| table::lookup(n)) else {
            continue;
        };
        match spec.reply_wait {
            ReplyWait::Limited => {}
            ReplyWait::Unlimited => return None,
            ReplyWait::PlusMillisAt(i) => {
                let ms =
                    c.0.get(i)
                        .and_then(|a| std::str::from_utf8(a).ok())
                        .and_then(|a| a.parse::<u64>().ok())
                        .unwrap_or(0);
                extra += Duration::from_millis(ms);
            }
        }
    }
    Some(limit + extra)
}

fn names(cmds: &[Cmd]) -> String {
    let mut v: Vec<String> = cmds
        .iter()
        .filter_map(|c| c.0.first())
        .map(|n| String::from_utf8_lossy(n).to_ascii_uppercase())
        .collect();
    v.dedup();
    v.join("+")
}

pub(super) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        }
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}

/// A RESP connection to a server.
pub(crate) struct Remote {
    pub(super) addr: Address,
    pub(crate) policy: RetryPolicy,
    /// The password of the last successful `AUTH`, sent again on a new connection.
    pub(crate) password: Option<Bytes>,
    /// An exchange failed midway: the stream may hold a late reply or half a request,
    /// so it is replaced before it is used again.
    broken: bool,
    /// How long the commands sent last may wait for a reply (`None`: no limit).
    read_limit: Option<Duration>,
    pub(super) stream: Stream,
    rbuf: BytesMut,
    out: Output,
    /// Whether the server takes shared-memory transfers on this connection.
    pub(crate) shm: bool,
    /// Blocks lent to this connection, not yet written: their descriptors (mapped, or
    /// found in the process's mappings, when a put uses them).
    pub(super) lent: HashMap<u64, LentBlock>,
    /// Spare blocks lent ahead of the next puts: (size class, block), at most
    /// [`crate::protocol::shm::MAX_SPARES`], newest last.
    pub(super) spares: Vec<(usize, u64)>,
    /// Spare blocks given back with the next command.
    pub(super) returned: Vec<u64>,
    /// Size classes this connection has put before (a spare is lent ahead only for
    /// those: a connection that puts once does not pay for a second block).
    pub(super) classes: Vec<usize>,
    /// Descriptors that came with replies, in order (blocks the replies name).
    pub(super) fds: VecDeque<OwnedFd>,
    /// Holds whose views are gone, released with the next command.
    pub(super) released: Arc<Mutex<Vec<u64>>>,
    /// Replies still to come for releases sent ahead of commands (read and dropped).
    skip: usize,
    /// Whether replies are busy-waited for now.
    spin: Spin,
}

/// A block lent to this connection: its file's identity, and its descriptor when it
/// came with the loan.
pub(super) struct LentBlock {
    pub(super) key: (u64, u64),
    pub(super) fd: Option<OwnedFd>,
}

/// Releases its hold when the last view of a shared-memory block is dropped.
pub(super) struct Release {
    pub(super) hold: u64,
    pub(super) to: Arc<Mutex<Vec<u64>>>,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.to.lock().push(self.hold);
    }
}

/// Wait until `fd` has bytes to read (or is closed), at most `limit`: `TimedOut` after.
///
/// A reply is waited for with `poll(2)` before it is read, not in a blocking `recvmsg`:
/// on a Unix socket the server reading the *request* signals writability to this side,
/// which wakes a thread blocked in `recvmsg` (and goes back to sleep) once per round
/// trip; poll's waiters are woken only for what they wait for.
fn wait_readable(fd: RawFd, limit: Option<Duration>, spin: &mut Spin) -> std::io::Result<()> {
    if spin.now() {
        let until = Instant::now() + spin.budget;
        let came = loop {
            if ready_now(fd)? {
                break true;
            }
            if Instant::now() >= until {
                break false;
            }
            std::hint::spin_loop();
        };
        spin.record(came);
        if came {
            return Ok(());
        }
    }
    let deadline = limit.map(|d| Instant::now() + d);
    loop {
        let ms = match deadline {
            None => -1,
            Some(t) => {
                let left = t.saturating_duration_since(Instant::now());
                // Rounded up: a wait of 0 ms would not wait at all.
                i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
            }
        };
        match poll_in(fd, ms) {
            Ok(true) => return Ok(()),
            Ok(false) => return Err(std::io::ErrorKind::TimedOut.into()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Whether `fd` has bytes to read (or is closed) right now.
fn ready_now(fd: RawFd) -> std::io::Result<bool> {
    match poll_in(fd, 0) {
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(false),
        r => r,
    }
}

/// `poll(2)` for input on `fd`, at most `ms` milliseconds (-1: no limit): whether it came.
fn poll_in(fd: RawFd, ms: i32) -> std::io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    match unsafe { libc::poll(&raw mut p, 1, ms) } {
        0 => Ok(false),
        n if n > 0 => Ok(true),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// When a connection busy-waits for its replies ([`RetryPolicy::reply_spin`]): while
/// they come within the budget; after [`Spin::GIVE_UP`] misses in a row it sleeps for
/// the next [`Spin::PAUSE`] replies, then tries again.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spin {
    budget: Duration,
    misses: u32,
    paused: u32,
}

impl Spin {
    const GIVE_UP: u32 = 4;
    const PAUSE: u32 = 256;

    pub(super) fn new(budget: Duration) -> Spin {
        Spin {
            budget,
            misses: 0,
            paused: 0,
        }
    }

    /// Whether to spin for the next reply.
    fn now(&mut self) -> bool {
        if self.budget.is_zero() {
            return false;
        }
        if self.paused > 0 {
            self.paused -= 1;
            return false;
        }
        true
    }

    fn record(&mut self, came: bool) {
        if came {
            self.misses = 0;
        } else {
            self.misses += 1;
            if self.misses >= Spin::GIVE_UP {
                self.misses = 0;
                self.paused = Spin::PAUSE;
            }
        }
    }
}

fn io_err(context: &str, e: std::io::Error) -> Error {
    Error::err(ErrorCode::Io, format!("{context}: {e}"))
}

impl Remote {
    fn open(addr: &Address) -> Result<Stream> {
        let ctx = |e: std::io::Error| io_err(&format!("cannot connect to {addr}"), e);
        Ok(match addr {
            Address::Tcp(h, p) => {
                let s = TcpStream::connect((h.as_str(), *p)).map_err(ctx)?;
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }
            Address::Unix(p) => Stream::Unix(UnixStream::connect(p).map_err(ctx)?),
            Address::Inproc | Address::Cluster(_) => {
                return Err(Error::err(
                    ErrorCode::Internal,
                    format!("{addr} is not one socket address"),
                ))
            }
        })
    }

    /// Connect, trying every `conn_interval` until `conn_timeout` (a server that starts
    /// after its clients is waited for).
    pub(crate) fn connect(addr: &Address, policy: RetryPolicy) -> Result<Remote> {
        let deadline = Instant::now() + policy.conn_timeout;
        let stream = loop {
            match Remote::open(addr) {
                Ok(s) => break s,
                Err(e) if matches!(addr, Address::Inproc) => return Err(e),
                Err(e) => {
                    let now = Instant::now();
                    if now >= deadline {
                        if policy.conn_timeout.is_zero() {
                            return Err(e);
                        }
                        return Err(Error::err(
                            ErrorCode::Io,
                            format!(
                                "{} (gave up after {} s: INSITU_CONN_TIMEOUT)",
                                e.message(),
                                policy.conn_timeout.as_secs()
                            ),
                        ));
                    }
                    std::thread::sleep(policy.conn_interval.min(deadline - now));
                }
            }
        };
        Ok(Remote {
            addr: addr.clone(),
            policy,
            password: None,
            broken: false,
            read_limit: None,
            stream,
            rbuf: BytesMut::with_capacity(64 * 1024),
            out: Output::default(),
            shm: false,
            lent: HashMap::new(),
            spares: Vec::new(),
            returned: Vec::new(),
            classes: Vec::new(),
            fds: VecDeque::new(),
            released: Arc::default(),
            skip: 0,
            spin: Spin::new(policy.reply_spin),
        })
    }

    /// Change how broken connections are ridden out and replies waited for.
    pub(crate) fn set_policy(&mut self, policy: RetryPolicy) {
        self.policy = policy;
        self.spin = Spin::new(policy.reply_spin);
    }

    /// A new connection in place of a broken one, with the old one's state: `AUTH`, and
    /// shared memory. The old connection's blocks and holds ended with it (views still
    /// alive keep their mappings; their releases are not sent).
    fn reconnect(&mut self) -> Result<()> {
        self.stream = Remote::open(&self.addr)?;
        self.broken = false;
        self.read_limit = None;
        self.rbuf.clear();
        self.out = Output::default();
        self.lent.clear();
        self.spares.clear();
        self.returned.clear();
        self.fds.clear();
        self.skip = 0;
        self.released = Arc::default();
        if let Some(p) = self.password.clone() {
            self.write(&[Cmd::new("AUTH").with(p)], &[])?;
            if let Frame::Error(e) = self.read()? {
                return Err(e);
            }
        }
        if self.shm {
            self.start_shm()?;
        }
        Ok(())
    }

    /// The shared-memory handshake (`INSITU.SHM`), pipelined with `INSITU.SHM SPARES`:
    /// the blocks this process freed come back as the connection's first spares, so its
    /// first puts need no `ALLOC` round trip. Sets and returns whether the server takes
    /// shared memory on this connection.
    pub(super) fn start_shm(&mut self) -> Result<bool> {
        self.write(
            &[
                Cmd::new("INSITU.SHM"),
                Cmd::new("INSITU.SHM").with("SPARES"),
            ],
            &[],
        )?;
        self.shm = matches!(self.read()?, Frame::Simple(_));
        // A server without shared memory refuses both (no descriptors come).
        if let (true, Frame::Array(loans)) = (self.shm, self.read()?) {
            for loan in &loans {
                let (block, cap) = self.take_loan(loan)?;
                self.keep_spare(crate::protocol::shm::class_of(cap), block);
            }
        }
        Ok(self.shm)
    }

    /// Keep a block lent ahead of the next put of its size class; the oldest spare
    /// beyond [`crate::protocol::shm::MAX_SPARES`] goes back to the server with the
    /// next command.
    pub(super) fn keep_spare(&mut self, class: usize, block: u64) {
        self.spares.push((class, block));
        if self.spares.len() > crate::protocol::shm::MAX_SPARES {
            let (_, old) = self.spares.remove(0);
            self.returned.push(old);
        }
    }

    /// Note the block a loan (`[block, capacity, dev, ino, fd]`, as `INSITU.SHM ALLOC`
    /// and `SPARES` answer) lends: its descriptor is kept until a put writes it. Returns
    /// the block and its capacity.
    pub(super) fn take_loan(&mut self, loan: &Frame) -> Result<(u64, usize)> {
        let items = super::conn::ints(loan, "INSITU.SHM ALLOC")?;
        let [block, cap, dev, ino, fd] = items.as_slice() else {
            return Err(super::conn::bad_reply("INSITU.SHM ALLOC"));
        };
        let (block, cap) = (*block as u64, *cap as usize);
        let fd = if *fd == 1 {
            Some(self.next_fd()?)
        } else {
            None
        };
        let key = (*dev as u64, *ino as u64);
        self.lent.insert(block, LentBlock { key, fd });
        Ok((block, cap))
    }

    /// Ready the connection for `cmds`: a broken one replaced, the reply timeout the
    /// commands allow noted (the reads wait at most that long: [`wait_readable`]).
    fn prepare(&mut self, cmds: &[Cmd]) -> Result<()> {
        if self.broken {
            self.reconnect()?;
        }
        self.read_limit = reply_limit(cmds, self.policy.socket_timeout);
        Ok(())
    }

    /// Write `cmds` and read their replies, each attempt within the policy's
    /// `socket_timeout`. A connection left broken by an earlier failure is replaced
    /// first (one attempt).
    fn exchange(&mut self, cmds: &[Cmd]) -> Result<Vec<Frame>> {
        self.prepare(cmds)?;
        let r = self
            .write(cmds, &[])
            .and_then(|()| (0..cmds.len()).map(|_| self.read()).collect());
        if matches!(&r, Err(e) if e.code() == ErrorCode::Io) {
            self.broken = true;
        }
        r
    }

    /// Write `cmds` without reading their replies (a cluster pipeline writes to every
    /// node before it reads): [`Remote::receive`] reads them.
    pub(crate) fn send(&mut self, cmds: &[Cmd]) -> Result<()> {
        self.prepare(cmds)?;
        let r = self.write(cmds, &[]);
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    /// The replies to the `n` commands [`Remote::send`] wrote.
    pub(crate) fn receive(&mut self, n: usize) -> Result<Vec<Frame>> {
        let r = (0..n).map(|_| self.read()).collect();
        if matches!(&r, Err(e) if e.code() == ErrorCode::Io) {
            self.broken = true;
        }
        r
    }

    /// [`Remote::exchange`], riding out a broken connection as the policy says.
    pub(crate) fn exchange_retrying(&mut self, cmds: &[Cmd]) -> Result<Vec<Frame>> {
        let first = match self.exchange(cmds) {
            Err(e) if e.code() == ErrorCode::Io && !self.policy.cmd_timeout.is_zero() => e,
            r => return r,
        };
        let what = names(cmds);
        let safe = retry_safe(cmds);
        let deadline = Instant::now() + self.policy.cmd_timeout;
        let mut last = first;
        loop {
            match self.reconnect() {
                Ok(()) if !safe => {
                    return Err(Error::err(
                        ErrorCode::Io,
                        format!(
                            "the connection to {} broke during {what} ({}); reconnected, but {what} was not sent again: it may have been applied already",
                            self.addr,
                            last.message()
                        ),
                    ))
                }
                Ok(()) => match self.exchange(cmds) {
                    Err(e) if e.code() == ErrorCode::Io => last = e,
                    r => return r,
                },
                Err(e) if e.code() == ErrorCode::Io => last = e,
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::err(
                    ErrorCode::Io,
                    format!(
                        "{what} failed: the server at {} did not answer again within {} s (INSITU_CMD_TIMEOUT); last error: {}",
                        self.addr,
                        self.policy.cmd_timeout.as_secs(),
                        last.message()
                    ),
                ));
            }
            std::thread::sleep(self.policy.cmd_interval.min(deadline - now));
        }
    }

    pub(super) fn write(&mut self, cmds: &[Cmd], fds: &[OwnedFd]) -> Result<()> {
        // Holds whose views are gone go ahead of the commands (their reply is dropped).
        let released: Vec<u64> = std::mem::take(&mut *self.released.lock());
        if !released.is_empty() {
            let mut c = Cmd::new("INSITU.SHM");
            c.arg("RELEASE");
            for h in released {
                c.arg(h);
            }
            Frame::Array(c.0.into_iter().map(Frame::Bulk).collect()).encode(&mut self.out);
            self.skip += 1;
        }
        if !self.returned.is_empty() {
            let mut c = Cmd::new("INSITU.SHM");
            c.arg("RETURN");
            for b in std::mem::take(&mut self.returned) {
                c.arg(b);
            }
            Frame::Array(c.0.into_iter().map(Frame::Bulk).collect()).encode(&mut self.out);
            self.skip += 1;
        }
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
            let slices = crate::protocol::resp::io_slices(&chunks);
            let n = crate::protocol::shm::send_with_fds(u.as_raw_fd(), &slices, &raws)
                .map_err(|e| io_err("write", e))?;
            crate::protocol::resp::advance_chunks(&mut chunks, &mut first, n);
        }
        let io = self.stream.writer();
        while first < chunks.len() {
            let slices = crate::protocol::resp::io_slices(&chunks[first..]);
            let n = io.write_vectored(&slices).map_err(|e| io_err("write", e))?;
            if n == 0 {
                return Err(io_err("write", std::io::ErrorKind::WriteZero.into()));
            }
            crate::protocol::resp::advance_chunks(&mut chunks, &mut first, n);
        }
        Ok(())
    }

    /// The descriptor the last reply brought (`INSITU.SHM FD`: every earlier reply's
    /// descriptors arrived before it).
    pub(super) fn last_fd(&mut self) -> Result<OwnedFd> {
        self.fds.pop_back().ok_or_else(|| {
            Error::err(
                ErrorCode::Protocol,
                "shared memory: the reply's descriptor did not arrive",
            )
        })
    }

    /// The next descriptor that came with the replies.
    pub(super) fn next_fd(&mut self) -> Result<OwnedFd> {
        self.fds.pop_front().ok_or_else(|| {
            Error::err(
                ErrorCode::Protocol,
                "shared memory: the reply's descriptor did not arrive",
            )
        })
    }

    pub(super) fn read(&mut self) -> Result<Frame> {
        loop {
            if let Some(f) = decode_reply(&mut self.rbuf)? {
                if self.skip > 0 {
                    self.skip -= 1;
                    continue;
                }
                return Ok(f);
            }
            // Read straight into the buffer; the read size grows with the pending reply
            // so a large tensor takes few reads. Descriptors may come with the bytes
            // (shared-memory blocks).
            let want = (64 * 1024).max(self.rbuf.len());
            let fd = self.stream.as_raw_fd();
            let r = wait_readable(fd, self.read_limit, &mut self.spin).and_then(|()| {
                crate::protocol::shm::recv_appending(fd, &mut self.rbuf, want, &mut self.fds)
            });
            let n = match r {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Err(Error::err(
                        ErrorCode::Io,
                        format!(
                            "no reply from {} within {} s (INSITU_SOCKET_TIMEOUT)",
                            self.addr,
                            self.read_limit.unwrap_or_default().as_secs()
                        ),
                    ));
                }
                Err(e) => return Err(io_err("read", e)),
            };
            if n == 0 {
                return Err(Error::err(ErrorCode::Io, "connection closed by the server"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spinning_stops_after_misses_in_a_row_and_comes_back() {
        let mut s = Spin::new(Duration::from_micros(50));
        for _ in 0..10 {
            assert!(s.now());
            s.record(true);
        }
        // A hit resets the count of misses.
        for _ in 0..Spin::GIVE_UP - 1 {
            assert!(s.now());
            s.record(false);
        }
        s.record(true);
        for _ in 0..Spin::GIVE_UP {
            assert!(s.now());
            s.record(false);
        }
        for _ in 0..Spin::PAUSE {
            assert!(!s.now(), "paused after {} misses", Spin::GIVE_UP);
        }
        assert!(s.now(), "tried again after the pause");
        assert!(!Spin::new(Duration::ZERO).now(), "0 never spins");
    }

    #[test]
    fn a_reply_is_waited_for_within_the_limit() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut spin = Spin::new(Duration::from_micros(50));
        let t0 = Instant::now();
        let e =
            wait_readable(a.as_raw_fd(), Some(Duration::from_millis(30)), &mut spin).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert!(t0.elapsed() >= Duration::from_millis(30));
        b.write_all(b"+OK\r\n").unwrap();
        wait_readable(a.as_raw_fd(), Some(Duration::from_millis(30)), &mut spin).unwrap();
        drop(b);
        // A closed peer counts as readable (the read then says so).
        let mut buf = BytesMut::new();
        let mut fds = VecDeque::new();
        let n = crate::protocol::shm::recv_appending(a.as_raw_fd(), &mut buf, 64, &mut fds);
        assert_eq!(n.unwrap(), 5);
        wait_readable(a.as_raw_fd(), None, &mut spin).unwrap();
    }
}
