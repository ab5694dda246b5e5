//! `insitu`: the server binary. It parses arguments, sets up logging, binds the listeners
//! and hands them to `insitu::server::run`; everything else lives in the library.

use std::sync::Arc;

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command};
use insitu::engine::settings::{Kind, SETTINGS};
use insitu::server::Listener;
use insitu::{Engine, EngineConfig};

/// Large tensors are allocated and freed at a high rate; the system allocator returns
/// them to the kernel each time (mmap/munmap and page faults on every put), mimalloc
/// keeps and reuses them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The command line: `insitu serve` takes one `--name value` flag per row of insitu's
/// settings table (`insitu::engine::settings::SETTINGS`), with the library's defaults; bools
/// may also be given bare (`--appendonly` means yes), and some read environment
/// variables (`INSITU_PORT`...).
fn cli() -> Command {
    let defaults = EngineConfig::default();
    let serve = SETTINGS.iter().fold(
        Command::new("serve").about(
            "Run the server (RESP2/RESP3, Redis and RedisAI commands) on TCP and a Unix socket",
        ),
        |cmd, s| {
            let mut arg = Arg::new(s.name)
                .long(s.name)
                .value_name(s.kind.value_name())
                .help(s.help);
            let default = (s.get)(&defaults);
            if !default.is_empty() {
                // Built once per process: the few bytes of each default live as long.
                arg = arg.default_value(&*Box::leak(default.into_boxed_str()));
            }
            if let Some(var) = s.env {
                arg = arg.env(var);
            }
            if matches!(s.kind, Kind::Bool) {
                arg = arg.num_args(0..=1).default_missing_value("yes");
            }
            cmd.arg(arg)
        },
    );
    Command::new("insitu")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Couple running simulations with AI models")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(serve)
}

/// The engine's configuration from the flags given (the others keep their defaults).
fn config_from(m: &ArgMatches) -> Result<EngineConfig, String> {
    let mut config = EngineConfig::default();
    for s in SETTINGS {
        if m.value_source(s.name) == Some(ValueSource::DefaultValue) {
            continue;
        }
        if let Some(v) = m.get_one::<String>(s.name) {
            // The command line has always also taken true/false, on/off and 1/0 for a
            // bool (CONFIG SET takes Redis' yes/no only).
            let v = match (s.kind, v.to_ascii_lowercase().as_str()) {
                (Kind::Bool, "true" | "on" | "1") => "yes",
                (Kind::Bool, "false" | "off" | "0") => "no",
                _ => v.as_str(),
            };
            s.apply(&mut config, v)
                .map_err(|e| format!("--{}: {}", s.name, e.message()))?;
        }
    }
    Ok(config)
}

fn main() -> std::process::ExitCode {
    let matches = cli().get_matches();
    let result = match matches.subcommand() {
        Some(("serve", m)) => config_from(m).and_then(serve),
        _ => Err("unknown command (try insitu --help)".to_string()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("insitu: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn serve(mut config: EngineConfig) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&config.log)
                .map_err(|e| format!("--log: {e}"))?,
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("insitu-io")
        .build()
        .map_err(|e| format!("cannot start runtime: {e}"))?;
    rt.block_on(async move {
        let listen = config.listen.clone();
        let mut listeners = Vec::new();
        if let Some(p) = listen.port {
            let tcp = tokio::net::TcpListener::bind((listen.bind.as_str(), p))
                .await
                .map_err(|e| format!("cannot listen on {}:{p}: {e}", listen.bind))?;
            let local = tcp.local_addr().map_err(|e| e.to_string())?;
            config.port = local.port();
            tracing::info!("listening on tcp://{local}");
            listeners.push(Listener::Tcp(tcp));
        }
        if let Some(path) = &listen.unixsocket {
            let l = insitu::server::bind_unix(path, listen.unixsocketperm)
                .map_err(|e| e.to_string())?;
            tracing::info!("listening on unix://{}", path.display());
            listeners.push(l);
        }
        if listeners.is_empty() {
            return Err("nothing to listen on: both --port and --unixsocket are none".to_string());
        }
        let aof = config.aof.clone();
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
