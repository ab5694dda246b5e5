//! The clients connected to a server: what `CLIENT LIST`, `CLIENT INFO` and `CLIENT KILL`
//! report and act on, and the per-connection facts `HELLO` and `CLIENT SETNAME/SETINFO`
//! set (name, library, protocol).
//!
//! Each connection registers one [`ClientInfo`] for its life; a session without a
//! connection (an in-process client) has one too, unregistered, so the commands work the
//! same way for it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::protocol::resp::Protocol;

/// Facts about one client that commands change.
#[derive(Debug, Default, Clone)]
pub struct ClientMeta {
    /// `CLIENT SETNAME` / `HELLO ... SETNAME`.
    pub name: Option<Bytes>,
    /// `CLIENT SETINFO LIB-NAME`.
    pub lib_name: Option<String>,
    /// `CLIENT SETINFO LIB-VER`.
    pub lib_ver: Option<String>,
    /// The last command run, lower case (`client|list` for subcommands, as Redis writes).
    pub last_cmd: String,
    /// `CLIENT NO-EVICT on`.
    pub no_evict: bool,
    /// `CLIENT NO-TOUCH on`.
    pub no_touch: bool,
    /// Commands queued since `MULTI` (`None`: not in a transaction).
    pub multi: Option<usize>,
}

/// One client.
#[derive(Debug)]
pub struct ClientInfo {
    /// `CLIENT ID`.
    pub id: u64,
    /// The peer's address (`ip:port`, or `path:0` for a Unix socket, as Redis writes it).
    pub addr: String,
    /// The local address the client connected to.
    pub laddr: String,
    /// Whether it came through a Unix socket.
    pub unix: bool,
    created: Instant,
    /// Milliseconds after `created` of the last command.
    last_active_ms: AtomicU64,
    meta: Mutex<ClientMeta>,
    resp3: AtomicBool,
    killed: AtomicBool,
    kill: tokio::sync::Notify,
}

impl ClientInfo {
    /// A client with `id` at `addr` (local address `laddr`).
    pub fn new(id: u64, addr: String, laddr: String, unix: bool) -> ClientInfo {
        ClientInfo {
            id,
            addr,
            laddr,
            unix,
            created: Instant::now(),
            last_active_ms: AtomicU64::new(0),
            meta: Mutex::new(ClientMeta::default()),
            resp3: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            kill: tokio::sync::Notify::new(),
        }
    }

    /// The protocol the client chose with `HELLO` (RESP2 until then); replies are
    /// encoded in it.
    pub fn protocol(&self) -> Protocol {
        if self.resp3.load(Ordering::Relaxed) {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        }
    }

    /// Switch protocols (`HELLO`).
    pub fn set_protocol(&self, p: Protocol) {
        self.resp3.store(p == Protocol::Resp3, Ordering::Relaxed);
    }

    /// Read the facts commands set.
    pub fn meta(&self) -> ClientMeta {
        self.meta.lock().clone()
    }

    /// Change the facts commands set.
    pub fn update<R>(&self, f: impl FnOnce(&mut ClientMeta) -> R) -> R {
        f(&mut self.meta.lock())
    }

    /// Note that a command named `cmd` (any case) runs now.
    pub fn touch(&self, cmd: &[u8]) {
        let ms = self.created.elapsed().as_millis() as u64;
        self.last_active_ms.store(ms, Ordering::Relaxed);
        let mut m = self.meta.lock();
        if !m.last_cmd.as_bytes().eq_ignore_ascii_case(cmd) {
            m.last_cmd.clear();
            m.last_cmd
                .extend(cmd.iter().map(|&c| char::from(c.to_ascii_lowercase())));
        }
    }

    /// Ask the connection to close (`CLIENT KILL`).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.kill.notify_one();
    }

    /// Whether `CLIENT KILL` named this client.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Completes when `CLIENT KILL` names this client.
    pub async fn killed(&self) {
        if self.is_killed() {
            return;
        }
        self.kill.notified().await;
    }

    /// Seconds since the connection was made.
    pub fn age_secs(&self) -> u64 {
        self.created.elapsed().as_secs()
    }

    /// Seconds since the last command.
    pub fn idle_secs(&self) -> u64 {
        let now = self.created.elapsed().as_millis() as u64;
        now.saturating_sub(self.last_active_ms.load(Ordering::Relaxed)) / 1000
    }

    /// The `CLIENT LIST` / `CLIENT INFO` line (Redis 7.2's fields, in its order).
    pub fn line(&self) -> String {
        let m = self.meta();
        let name = m
            .name
            .as_ref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        let mut flags = String::new();
        if m.multi.is_some() {
            flags.push('x');
        }
        if self.unix {
            flags.push('U');
        }
        if m.no_evict {
            flags.push('e');
        }
        if m.no_touch {
            flags.push('T');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let mut s = String::new();
        let _ = writeln!(
            s,
            "id={} addr={} laddr={} fd=-1 name={name} age={} idle={} flags={flags} db=0 sub=0 psub=0 ssub=0 multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.age_secs(),
            self.idle_secs(),
            m.multi.map_or(-1, |n| n as i64),
            if m.last_cmd.is_empty() { "NULL" } else { &m.last_cmd },
            self.protocol().version(),
            m.lib_name.unwrap_or_default(),
            m.lib_ver.unwrap_or_default(),
        );
        s
    }
}

/// The registry of connected clients.
#[derive(Default)]
pub struct Clients {
    map: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
}

impl Clients {
    /// Register a connection's client; it is listed until [`Clients::remove`].
    pub fn add(&self, c: Arc<ClientInfo>) {
        self.map.lock().insert(c.id, c);
    }

    /// Forget a client whose connection closed.
    pub fn remove(&self, id: u64) {
        self.map.lock().remove(&id);
    }

    /// Every connected client, in id order.
    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        self.map.lock().values().cloned().collect()
    }
}
