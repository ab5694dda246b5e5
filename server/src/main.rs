//! `insitu`: the server binary. It parses arguments, sets up logging, binds the listeners
//! and hands them to `insitu::server::run`; everything else lives in the library.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use insitu::aof::{AofConfig, FsyncPolicy};
use insitu::config::Limits;
use insitu::model::ModelConfig;
use insitu::server::Listener;
use insitu::{Engine, EngineConfig};

/// Large tensors are allocated and freed at a high rate; the system allocator returns
/// them to the kernel each time (mmap/munmap and page faults on every put), mimalloc
/// keeps and reuses them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "insitu",
    version,
    about = "Couple running simulations with AI models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (RESP2 + RedisAI commands) on TCP and a Unix socket.
    Serve(ServeArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// TCP address to bind; loopback by default. Use 0.0.0.0 to accept remote clients.
    #[arg(long, default_value = "127.0.0.1", env = "INSITU_BIND")]
    bind: String,
    /// TCP port (0: pick a free port; "none": no TCP listener).
    #[arg(long, default_value = "6780", env = "INSITU_PORT")]
    port: String,
    /// Unix socket path ("none": no Unix socket).
    #[arg(long, default_value = "/tmp/insitu.sock", env = "INSITU_UNIXSOCKET")]
    unixsocket: String,
    /// Permissions of the Unix socket file (octal).
    #[arg(long, default_value = "700")]
    unixsocketperm: String,
    /// Require clients to AUTH with this password.
    #[arg(long, env = "INSITU_REQUIREPASS")]
    requirepass: Option<String>,
    /// Memory limit for stored data, e.g. 4gb (0: unlimited).
    #[arg(long, default_value = "0")]
    maxmemory: String,
    /// Most concurrent client connections.
    #[arg(long, default_value_t = 10_000)]
    maxclients: usize,
    /// Close a client idle for this many seconds (0: never; simulations often sit idle
    /// between steps).
    #[arg(long, default_value_t = 0)]
    timeout: u64,
    /// Close a client that reads none of its pending replies for this many seconds
    /// (0: never).
    #[arg(long, default_value_t = 60)]
    client_output_timeout: u64,
    /// Directory of the snapshot file (SAVE writes there; start loads from there).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Snapshot file name inside --dir.
    #[arg(long, default_value = "insitu.snapshot")]
    dbfilename: String,
    /// Journal every write to append-only files (yes/no): a crash of the server loses no
    /// acknowledged write, a crash of the machine at most the last second of them.
    #[arg(long, default_value = "no")]
    appendonly: String,
    /// When the journal is synced to disk: always (before each reply), everysec, no.
    #[arg(long, default_value = "everysec")]
    appendfsync: String,
    /// Directory of the append-only files, inside --dir.
    #[arg(long, default_value = "appendonlydir")]
    appenddirname: String,
    /// Common name of the append-only files.
    #[arg(long, default_value = "insitu.aof")]
    appendfilename: String,
    /// Rewrite the journal when it has grown by this percentage since the last rewrite
    /// (0: only on BGREWRITEAOF).
    #[arg(long, default_value_t = 100)]
    auto_aof_rewrite_percentage: usize,
    /// ...and is at least this large.
    #[arg(long, default_value = "64mb")]
    auto_aof_rewrite_min_size: String,
    /// Largest single argument, bytes (e.g. 512mb).
    #[arg(long, default_value = "512mb")]
    proto_max_bulk_len: String,
    /// Most arguments in one command.
    #[arg(long, default_value_t = 4 << 20)]
    max_array_len: usize,
    /// Most dimensions of one tensor.
    #[arg(long, default_value_t = 16)]
    max_tensor_dims: usize,
    /// Largest tensor, bytes (e.g. 512mb).
    #[arg(long, default_value = "512mb")]
    max_tensor_bytes: String,
    /// Inference worker threads (RedisAI's THREADS_PER_QUEUE; default: the core count).
    #[arg(long)]
    threads_per_queue: Option<usize>,
    /// Run a request on the connection's thread when the model's measured cost for it is
    /// at most this many microseconds (0: always on the inference threads).
    #[arg(long, default_value_t = 50)]
    inline_inference_us: u64,
    /// ONNX Runtime intra-op threads per session.
    #[arg(long, default_value_t = 1)]
    intra_op_threads: usize,
    /// ONNX Runtime inter-op threads per session.
    #[arg(long, default_value_t = 1)]
    inter_op_threads: usize,
    /// Largest model, bytes (e.g. 1gb).
    #[arg(long, default_value = "2047mb")]
    max_model_bytes: String,
    /// Directory models may read external data files from (default: refused).
    #[arg(long)]
    model_external_data_dir: Option<PathBuf>,
    /// Present this server as a one-node Redis Cluster owning all slots, for clients in
    /// cluster mode (SmartRedis' default when SR_DB_TYPE is unset).
    #[arg(long)]
    cluster_enabled: bool,
    /// The IP that CLUSTER SLOTS announces (default: --bind, or 127.0.0.1 for 0.0.0.0).
    #[arg(long)]
    cluster_announce_ip: Option<String>,
    /// Log filter (tracing's env-filter syntax), e.g. info or insitu=debug.
    #[arg(long, default_value = "info", env = "INSITU_LOG")]
    log: String,
}

fn size(name: &str, v: &str) -> Result<usize, String> {
    insitu::cmd::parse_size(v.as_bytes())
        .ok_or_else(|| format!("--{name}: cannot parse size '{v}'"))
}

fn yes_no(name: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err(format!("--{name}: expected yes or no, not '{v}'")),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(a) => match serve(a) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("insitu: {e}");
                std::process::ExitCode::FAILURE
            }
        },
    }
}

fn serve(a: ServeArgs) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&a.log).map_err(|e| format!("--log: {e}"))?,
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let limits = Limits {
        max_bulk_len: size("proto-max-bulk-len", &a.proto_max_bulk_len)?,
        max_array_len: a.max_array_len,
        max_dims: a.max_tensor_dims,
        max_tensor_bytes: size("max-tensor-bytes", &a.max_tensor_bytes)?,
        idle_timeout_secs: a.timeout,
        output_timeout_secs: a.client_output_timeout,
        ..Limits::default()
    };
    let perm = u32::from_str_radix(&a.unixsocketperm, 8)
        .map_err(|_| format!("--unixsocketperm: not octal: {}", a.unixsocketperm))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("insitu-io")
        .build()
        .map_err(|e| format!("cannot start runtime: {e}"))?;
    rt.block_on(async move {
        let mut listeners = Vec::new();
        let mut port = 0u16;
        if a.port != "none" {
            let p: u16 = a
                .port
                .parse()
                .map_err(|_| format!("--port: not a port: {}", a.port))?;
            let tcp = tokio::net::TcpListener::bind((a.bind.as_str(), p))
                .await
                .map_err(|e| format!("cannot listen on {}:{p}: {e}", a.bind))?;
            let local = tcp.local_addr().map_err(|e| e.to_string())?;
            port = local.port();
            tracing::info!("listening on tcp://{local}");
            listeners.push(Listener::Tcp(tcp));
        }
        if a.unixsocket != "none" {
            let path = PathBuf::from(&a.unixsocket);
            let l = insitu::server::bind_unix(&path, perm).map_err(|e| e.to_string())?;
            tracing::info!("listening on unix://{}", path.display());
            listeners.push(l);
        }
        if listeners.is_empty() {
            return Err("nothing to listen on: both --port and --unixsocket are none".to_string());
        }
        let config = EngineConfig {
            limits,
            maxmemory: size("maxmemory", &a.maxmemory)?,
            maxclients: a.maxclients,
            requirepass: a.requirepass,
            dir: a.dir,
            dbfilename: a.dbfilename,
            aof: AofConfig {
                enabled: yes_no("appendonly", &a.appendonly)?,
                fsync: FsyncPolicy::parse(&a.appendfsync).ok_or_else(|| {
                    format!(
                        "--appendfsync: expected always, everysec or no, not '{}'",
                        a.appendfsync
                    )
                })?,
                dirname: a.appenddirname,
                filename: a.appendfilename,
                rewrite_percentage: a.auto_aof_rewrite_percentage,
                rewrite_min_size: size("auto-aof-rewrite-min-size", &a.auto_aof_rewrite_min_size)?,
            },
            port,
            cluster: a.cluster_enabled.then(|| {
                let ip = a
                    .cluster_announce_ip
                    .clone()
                    .unwrap_or_else(|| match a.bind.as_str() {
                        "0.0.0.0" | "::" => "127.0.0.1".to_string(),
                        b => b.to_string(),
                    });
                (ip, port)
            }),
            models: ModelConfig {
                threads: a
                    .threads_per_queue
                    .unwrap_or(ModelConfig::default().threads)
                    .max(1),
                intra_op_threads: a.intra_op_threads.max(1),
                inline_max_us: a.inline_inference_us,
                inter_op_threads: a.inter_op_threads.max(1),
                max_model_bytes: size("max-model-bytes", &a.max_model_bytes)?,
                external_data_dir: a.model_external_data_dir,
                ..ModelConfig::default()
            },
            ..EngineConfig::default()
        };
        let aof = config.aof.clone();
        for (flag, name) in [
            ("--appenddirname", &aof.dirname),
            ("--appendfilename", &aof.filename),
        ] {
            insitu::aof::check_plain_name(flag, name).map_err(|e| e.message().to_string())?;
        }
        let engine = Arc::new(Engine::new(config));
        let loaded = engine
            .load_persistence()
            .map_err(|e| format!("{e} (move the file away to start empty)"))?;
        if aof.enabled {
            tracing::info!(
                "append-only persistence on ({}, appendfsync {}): {loaded} keys and records loaded",
                engine.aof_dir().display(),
                aof.fsync.name()
            );
        } else if loaded > 0 {
            tracing::info!(
                "loaded {loaded} keys from {}",
                engine.snapshot_path().display()
            );
        }
        insitu::server::run(engine, listeners, shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("signal received");
}
