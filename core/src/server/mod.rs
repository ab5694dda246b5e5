//! The RESP server loop: accept connections on any number of TCP and Unix listeners, and
//! serve each one until it closes or shutdown is signalled.
//!
//! [`run`] is the seam the `insitu` binary, the tests and any process that embeds the
//! engine share: hand it bound listeners and a future that completes on shutdown. On
//! shutdown the listeners stop accepting, every connection finishes the requests it has
//! already read, flushes its replies and closes, and `run` returns once all are gone.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use bytes::{Bytes, BytesMut};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{broadcast, mpsc};

use crate::engine::Engine;
use crate::protocol::resp::{Frame, Output, Request, RequestParser};

pub mod cli;
mod gossip;

/// Read buffer size per connection; grows for large arguments.
const READ_CHUNK: usize = 64 * 1024;
/// Replies waiting beyond this are flushed before more requests are executed, so a client
/// that pipelines without reading cannot make the server buffer without bound.
const MAX_PENDING_OUTPUT: usize = 1 << 20;

/// A bound listener.
pub enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix-domain socket listener and its path (removed when the server stops).
    Unix(UnixListener, PathBuf),
}

/// Serve `engine` on `listeners` until `shutdown` completes.
///
/// # Errors
/// Only errors that stop the whole server; per-connection errors are logged and end that
/// connection alone.
pub async fn run(
    engine: Arc<Engine>,
    listeners: Vec<Listener>,
    shutdown: impl Future,
) -> std::io::Result<()> {
    // A cluster node (cluster-enabled or cluster-nodes) takes its view now that its port
    // is known, and gossips it with the nodes it knows while it serves.
    if engine.with_config(|c| c.cluster_mode()) && engine.cluster().is_none() {
        let state = engine
            .cluster_from_settings()
            .map_err(|e| std::io::Error::other(e.message().to_string()))?;
        tracing::info!(
            "cluster node {} ({} node(s) known)",
            state.my_id(),
            state.known_nodes()
        );
        engine
            .start_cluster(state)
            .map_err(|e| std::io::Error::other(e.message().to_string()))?;
    }
    let (notify_shutdown, _) = broadcast::channel::<()>(1);
    if engine.cluster().is_some() {
        tokio::spawn(gossip::run(engine.clone(), notify_shutdown.subscribe()));
    }
    // Each connection holds a sender; when all are dropped, every connection is done.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let mut accept_tasks = Vec::new();
    let mut unix_paths = Vec::new();
    for l in listeners {
        let engine = engine.clone();
        let mut stop = notify_shutdown.subscribe();
        let shutdown_tx = notify_shutdown.clone();
        let done = done_tx.clone();
        if let Listener::Unix(_, p) = &l {
            unix_paths.push(p.clone());
        }
        accept_tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.recv() => break,
                    r = accept(&l) => match r {
                        Ok(conn) => spawn_connection(&engine, conn, &shutdown_tx, &done),
                        Err(e) => {
                            // Out of file descriptors and the like: back off, keep serving.
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                    },
                }
            }
        }));
    }
    // A signal (the caller's future) or a client's SHUTDOWN.
    tokio::select! {
        _ = shutdown => {}
        _ = engine.shutdown_requested() => tracing::info!("SHUTDOWN received"),
    }
    tracing::info!("shutting down: finishing open connections");
    let _ = notify_shutdown.send(());
    for t in accept_tasks {
        let _ = t.await;
    }
    drop(done_tx);
    let _ = done_rx.recv().await;
    for p in unix_paths {
        let _ = std::fs::remove_file(p);
    }
    engine.journal_sync();
    Ok(())
}

enum Conn {
    Tcp(tokio::net::TcpStream),
    /// Registered for readability only. tokio's `UnixStream` registers for both, and a
    /// Unix socket signals writability each time the client drains a reply: an extra
    /// wake-up of this thread per request (one context switch and ~20% of the server's
    /// CPU per PING, measured). Writability is waited for only when a write would block,
    /// through a second descriptor registered for that ([`write_unix`]).
    Unix {
        sock: AsyncFd<std::os::unix::net::UnixStream>,
        /// The peer's process (`SO_PEERCRED`), when known.
        pid: Option<u32>,
    },
}

impl Conn {
    /// Read what is available into `buf`; on a Unix socket, file descriptors that came
    /// along are queued in `fds`. Returns the bytes read (0: closed).
    async fn read_in(
        &mut self,
        buf: &mut BytesMut,
        fds: &mut VecDeque<OwnedFd>,
    ) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read_buf(buf).await,
            Conn::Unix { sock, .. } => loop {
                let mut ready = sock.readable().await?;
                // Capped so a large pending argument is read in pieces of at most 1 MiB.
                let want = (buf.capacity() - buf.len()).clamp(4096, 1 << 20);
                if let Ok(r) = ready
                    .try_io(|s| crate::protocol::shm::recv_appending(s.as_raw_fd(), buf, want, fds))
                {
                    return r;
                }
            },
        }
    }

    /// The peer's and the local address, as `CLIENT LIST` writes them (`ip:port`, or
    /// `path:0` for a Unix socket).
    fn addresses(&self) -> (String, String) {
        match self {
            Conn::Tcp(s) => {
                let show = |a: std::io::Result<std::net::SocketAddr>| {
                    a.map(|a| a.to_string()).unwrap_or_default()
                };
                (show(s.peer_addr()), show(s.local_addr()))
            }
            Conn::Unix { sock, .. } => {
                let path = sock
                    .get_ref()
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
                    .unwrap_or_default();
                (format!("{path}:0"), format!("{path}:0"))
            }
        }
    }

    /// Write `chunks`, giving up when the peer takes none of them for `stall`. The
    /// descriptors `fds` (Unix sockets: shared-memory blocks the replies name) travel
    /// with the first bytes, so they arrive no later than the replies that need them.
    async fn write_out(
        &mut self,
        chunks: Vec<Bytes>,
        stall: Option<std::time::Duration>,
        fds: Vec<OwnedFd>,
    ) -> std::io::Result<()> {
        match self {
            Conn::Tcp(s) => write_chunks(s, chunks, stall).await,
            Conn::Unix { sock, .. } => write_unix(sock, chunks, stall, &fds).await,
        }
    }
}

/// Write all `chunks` on a Unix socket, `fds` with the first bytes; each write must make
/// progress within `stall`. Writability is waited for through a duplicate descriptor
/// registered for it while this write waits (see [`Conn::Unix`]).
async fn write_unix(
    sock: &AsyncFd<std::os::unix::net::UnixStream>,
    mut chunks: Vec<Bytes>,
    stall: Option<std::time::Duration>,
    fds: &[OwnedFd],
) -> std::io::Result<()> {
    let raw = sock.as_raw_fd();
    let mut raws: Vec<std::os::fd::RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let mut waiter: Option<AsyncFd<OwnedFd>> = None;
    let mut first = 0;
    while first < chunks.len() {
        let slices = crate::protocol::resp::io_slices(&chunks[first..]);
        match crate::protocol::shm::send_with_fds(raw, &slices, &raws) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                raws.clear();
                crate::protocol::resp::advance_chunks(&mut chunks, &mut first, n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let w = match &mut waiter {
                    Some(w) => w,
                    None => waiter.insert(register(
                        sock.get_ref().as_fd().try_clone_to_owned()?,
                        Interest::WRITABLE,
                    )?),
                };
                let wait = async { w.writable().await.map(|mut g| g.clear_ready()) };
                match stall {
                    None => wait.await?,
                    Some(d) => tokio::time::timeout(d, wait)
                        .await
                        .map_err(|_| stalled(d))??,
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `fd` registered with the runtime for `interest` only.
fn register<T: AsRawFd>(fd: T, interest: Interest) -> std::io::Result<AsyncFd<T>> {
    // SAFETY: `fd` (a socket or a descriptor, owned) keeps its descriptor open and
    // unchanged for as long as the AsyncFd holds it.
    Ok(unsafe { AsyncFd::register_with_interest(fd, interest) }?)
}

fn stalled(d: std::time::Duration) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "client read none of its replies for {} s (client-output-timeout)",
            d.as_secs()
        ),
    )
}

async fn accept(l: &Listener) -> std::io::Result<Conn> {
    match l {
        Listener::Tcp(t) => {
            let (s, _) = t.accept().await?;
            let _ = s.set_nodelay(true);
            Ok(Conn::Tcp(s))
        }
        Listener::Unix(u, _) => {
            let s = u.accept().await?.0;
            let pid = s
                .peer_cred()
                .ok()
                .and_then(|c| c.pid())
                .and_then(|p| u32::try_from(p).ok());
            let sock = register(s.into_std()?, Interest::READABLE)?;
            Ok(Conn::Unix { sock, pid })
        }
    }
}

fn spawn_connection(
    engine: &Arc<Engine>,
    conn: Conn,
    shutdown: &broadcast::Sender<()>,
    done: &mpsc::Sender<()>,
) {
    let stats = &engine.stats;
    stats.connections_received.fetch_add(1, Ordering::Relaxed);
    let max = engine.with_config(|c| c.maxclients);
    let prev = stats.connected_clients.fetch_add(1, Ordering::AcqRel);
    let engine = engine.clone();
    if prev >= max {
        stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let msg = b"-ERR max number of clients reached\r\n";
            match conn {
                Conn::Tcp(mut s) => {
                    let _ = s.write_all(msg).await;
                }
                Conn::Unix { sock, .. } => {
                    let _ = write_unix(&sock, vec![Bytes::from_static(msg)], None, &[]).await;
                }
            }
            engine
                .stats
                .connected_clients
                .fetch_sub(1, Ordering::AcqRel);
        });
        return;
    }
    let stop = shutdown.subscribe();
    let done = done.clone();
    tokio::spawn(async move {
        let r = serve(&engine, conn, stop).await;
        if let Err(e) = r {
            tracing::debug!("connection ended: {e}");
        }
        engine
            .stats
            .connected_clients
            .fetch_sub(1, Ordering::AcqRel);
        drop(done);
    });
}

/// Write all `chunks` with vectored writes (header, payload and trailer in one syscall).
/// Each write must make progress within `stall`, else the peer is not reading: error.
async fn write_chunks<S: AsyncWrite + Unpin>(
    stream: &mut S,
    mut chunks: Vec<Bytes>,
    stall: Option<std::time::Duration>,
) -> std::io::Result<()> {
    let mut first = 0;
    while first < chunks.len() {
        let slices = crate::protocol::resp::io_slices(&chunks[first..]);
        let n = match stall {
            None => stream.write_vectored(&slices).await?,
            Some(d) => match tokio::time::timeout(d, stream.write_vectored(&slices)).await {
                Ok(r) => r?,
                Err(_) => return Err(stalled(d)),
            },
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        crate::protocol::resp::advance_chunks(&mut chunks, &mut first, n);
    }
    Ok(())
}

/// Per-connection timeouts, from the limits (refreshed when they change).
#[derive(Clone, Copy)]
struct Timeouts {
    idle: Option<std::time::Duration>,
    stall: Option<std::time::Duration>,
}

impl Timeouts {
    fn of(l: &crate::protocol::limits::Limits) -> Timeouts {
        let d = |s: u64| (s > 0).then(|| std::time::Duration::from_secs(s));
        Timeouts {
            idle: d(l.idle_timeout_secs),
            stall: d(l.output_timeout_secs),
        }
    }
}

async fn flush(
    conn: &mut Conn,
    out: &mut Output,
    engine: &Engine,
    t: Timeouts,
    session: &mut crate::engine::Session,
) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    // Writes reach the journal before the replies that acknowledge them leave.
    if let Err(e) = engine.journal_flush() {
        tracing::error!("closing a connection without its replies: {e}");
        return Err(std::io::Error::other(e.to_string()));
    }
    engine
        .stats
        .net_output_bytes
        .fetch_add(out.len() as u64, Ordering::Relaxed);
    let fds = session
        .shm
        .as_mut()
        .map(|c| std::mem::take(&mut c.fds_out))
        .unwrap_or_default();
    conn.write_out(out.take_chunks(), t.stall, fds).await
}

/// Serve one connection: read, execute every complete request, write the replies.
async fn serve(
    engine: &Arc<Engine>,
    mut conn: Conn,
    mut stop: broadcast::Receiver<()>,
) -> std::io::Result<()> {
    let mut session = engine.new_session();
    session.unix = matches!(conn, Conn::Unix { .. });
    if let Conn::Unix { pid, .. } = &conn {
        session.peer_pid = *pid;
    }
    let (addr, laddr) = conn.addresses();
    session.client = Arc::new(crate::engine::clients::ClientInfo::new(
        session.client.id,
        addr,
        laddr,
        session.unix,
    ));
    engine.clients.add(session.client.clone());
    let client = session.client.clone();
    let r = serve_session(engine, &mut conn, &mut session, &mut stop).await;
    engine.clients.remove(client.id);
    r
}

async fn serve_session(
    engine: &Arc<Engine>,
    conn: &mut Conn,
    session: &mut crate::engine::Session,
    stop: &mut broadcast::Receiver<()>,
) -> std::io::Result<()> {
    let conn = &mut *conn;
    let (limits, mut generation) = engine.limits();
    let mut t = Timeouts::of(&limits);
    let mut parser = RequestParser::new(limits);
    let client = session.client.clone();
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut out = Output::default();
    // One shutdown future for the connection's life, polled by every wait below: made
    // afresh per read it would join and leave the shared channel's waiter list (a lock
    // all connections share) on every request.
    let stopped = stop.recv();
    tokio::pin!(stopped);
    loop {
        loop {
            if parser.is_idle() {
                let g = engine.limits_generation();
                if g != generation {
                    let (l, g) = engine.limits();
                    t = Timeouts::of(&l);
                    parser.set_limits(l);
                    generation = g;
                }
            }
            match parser.next(&mut buf) {
                Ok(Some(Request::Command(args))) => {
                    tracing::trace!(cmd = %String::from_utf8_lossy(&args[0]), "command");
                    let reply = match crate::cmd::execute(engine, session, args) {
                        crate::cmd::Reply::Ready(f) => f,
                        crate::cmd::Reply::Pending(fut) => {
                            // Waits and model runs give way to shutdown.
                            tokio::select! {
                                f = fut => f,
                                _ = &mut stopped => return flush(conn, &mut out, engine, t, session).await,
                                _ = client.killed() => return Ok(()),
                            }
                        }
                    };
                    reply.encode_as(&mut out, client.protocol());
                    if session.quit || client.is_killed() {
                        return flush(conn, &mut out, engine, t, session).await;
                    }
                }
                Ok(Some(Request::Rejected(e))) => Frame::error(&e).encode(&mut out),
                Ok(None) => break,
                Err(e) => {
                    // The stream cannot be re-synchronised: reply, then close.
                    Frame::error(&e).encode(&mut out);
                    flush(conn, &mut out, engine, t, session).await?;
                    return Ok(());
                }
            }
            if out.len() >= MAX_PENDING_OUTPUT {
                flush(conn, &mut out, engine, t, session).await?;
            }
        }
        flush(conn, &mut out, engine, t, session).await?;
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(READ_CHUNK);
        }
        let idle = async {
            match t.idle {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = conn.read_in(&mut buf, &mut session.fds_in) => {
                let n = r?;
                if n == 0 {
                    return Ok(());
                }
                engine.stats.net_input_bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            _ = idle => {
                tracing::debug!("closing an idle client (timeout)");
                return Ok(());
            }
            _ = client.killed() => return Ok(()),
            _ = &mut stopped => return Ok(()),
        }
    }
}

/// Bind a Unix-domain socket at `path` with permissions `mode` (e.g. `0o700`: owner
/// only). A stale socket file left by a crashed server is replaced; a live one (a server
/// answers on it) or any other kind of file is an error.
///
/// # Errors
/// The path is in use, or binding fails.
pub fn bind_unix(path: &std::path::Path, mode: u32) -> std::io::Result<Listener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("a server is already listening on {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let l = UnixListener::bind(path).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {}: {e}", path.display()),
        )
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(Listener::Unix(l, path.to_path_buf()))
}

/// Where an embedded server listens.
#[derive(Debug, Clone, Default)]
pub struct ListenOptions {
    /// TCP address to bind, e.g. `127.0.0.1:0` (port 0: any free port).
    pub tcp: Option<std::net::SocketAddr>,
    /// Unix socket path.
    pub unix: Option<PathBuf>,
    /// Permissions of the Unix socket file (`0o700` when `None`).
    pub unix_mode: Option<u32>,
}

/// A server running on its own threads inside this process, serving an engine this
/// process may also use directly. Stops (gracefully) on [`EmbeddedServer::stop`] or drop.
pub struct EmbeddedServer {
    tcp: Option<std::net::SocketAddr>,
    unix: Option<PathBuf>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl EmbeddedServer {
    /// Bind as `opts` says and start serving `engine` on a dedicated runtime.
    ///
    /// # Errors
    /// Nothing to listen on, or binding fails.
    pub fn start(engine: Arc<Engine>, opts: ListenOptions) -> std::io::Result<EmbeddedServer> {
        if opts.tcp.is_none() && opts.unix.is_none() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "nothing to listen on: give a TCP address or a Unix socket path",
            ));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("insitu-embedded")
            .build()?;
        let (listeners, tcp) = rt.block_on(async {
            let mut listeners = Vec::new();
            let mut tcp = None;
            if let Some(addr) = opts.tcp {
                let l = TcpListener::bind(addr).await?;
                tcp = Some(l.local_addr()?);
                listeners.push(Listener::Tcp(l));
            }
            if let Some(p) = &opts.unix {
                listeners.push(bind_unix(p, opts.unix_mode.unwrap_or(0o700))?);
            }
            Ok::<_, std::io::Error>((listeners, tcp))
        })?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("insitu-server".into())
            .spawn(move || {
                rt.block_on(run(engine, listeners, async {
                    let _ = rx.await;
                }))
            })?;
        Ok(EmbeddedServer {
            tcp,
            unix: opts.unix,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// The bound TCP address (with the actual port when 0 was asked for).
    pub fn tcp_addr(&self) -> Option<std::net::SocketAddr> {
        self.tcp
    }

    /// The Unix socket path.
    pub fn unix_path(&self) -> Option<&std::path::Path> {
        self.unix.as_deref()
    }

    /// Stop accepting, let open connections finish their requests, and wait for them.
    ///
    /// # Errors
    /// An error that ended the server loop.
    pub fn stop(mut self) -> std::io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> std::io::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("server thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for EmbeddedServer {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
