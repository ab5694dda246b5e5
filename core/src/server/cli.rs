//! The `insitu` command line, shared by the `insitu` binary and the Python package's
//! `insitu` console script (so `pip install` gives the same command):
//!
//! - `insitu serve [--name value ...]`: one flag per row of the settings table
//!   (`crate::engine::settings::SETTINGS`), with the library's defaults.
//! - `insitu cluster start --nodes N [--port P] [--dir D] [serve flags]`: N local nodes of
//!   a fixed-layout cluster on ports P, P+1, ...; prints the `SSDB` for clients and serves
//!   until interrupted.
//! - redis-server's own command line, so a launcher written for redis-server (SmartSim's
//!   `REDIS_PATH`) starts insitu unchanged: `insitu [redis.conf] [--name value ...]
//!   [--loadmodule redisai.so [RedisAI options]]`. The config file's directives and the
//!   options are applied in order: settings insitu has take effect (port, bind, unixsocket,
//!   dir, cluster-enabled, cluster-config-file, maxmemory, requirepass, appendonly...),
//!   RedisAI's backend options map to the same settings as `AI.CONFIG`
//!   (THREADS_PER_QUEUE, INTRA_OP_PARALLELISM, INTER_OP_PARALLELISM, MODEL_CHUNK_SIZE),
//!   `logfile` writes the log there, and directives without a meaning here (save,
//!   io-threads, hz, ...) are logged and ignored.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command};

use crate::engine::settings::{find, find_ai, Kind, SETTINGS};
use crate::engine::{Engine, EngineConfig};
use crate::server::Listener;

/// `insitu serve`'s flags: one per setting, with the library's defaults; bools may also be
/// given bare (`--appendonly` means yes), and some read environment variables.
fn serve_args(cmd: Command) -> Command {
    let defaults = EngineConfig::default();
    SETTINGS.iter().fold(cmd, |cmd, s| {
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
    })
}

fn cli() -> Command {
    let serve = serve_args(Command::new("serve").about(
        "Run the server (RESP2/RESP3, Redis and RedisAI commands) on TCP and a Unix socket",
    ));
    let start = Command::new("start")
        .about("Start N local nodes of a cluster (ports P..P+N-1), print SSDB, serve until interrupted")
        .arg(
            Arg::new("nodes")
                .long("nodes")
                .value_parser(clap::value_parser!(u16).range(1..))
                .default_value("3")
                .help("How many nodes"),
        )
        .arg(
            Arg::new("base-port")
                .long("base-port")
                .value_parser(clap::value_parser!(u16).range(1..))
                .default_value("7000")
                .help("The first node's port; the others follow"),
        )
        .arg(
            Arg::new("host")
                .long("host")
                .default_value("127.0.0.1")
                .help("The address the nodes bind and announce"),
        )
        .arg(
            Arg::new("root")
                .long("root")
                .default_value(".")
                .help("Each node keeps its files in ROOT/node-<port>"),
        )
        .arg(
            Arg::new("serve")
                .num_args(0..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true)
                .help("More `insitu serve` flags for every node, after --"),
        );
    Command::new("insitu")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Couple running simulations with AI models")
        .after_help(
            "insitu also takes redis-server's command line (a redis.conf and --name value \
             options, --loadmodule for RedisAI), so a launcher written for redis-server \
             (SmartSim's REDIS_PATH) starts it unchanged.",
        )
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(serve)
        .subcommand(
            Command::new("smartsim")
                .about("Lay out a directory SmartSim takes as its database: export SMARTSIM_DEP_INSTALL_PATH=DIR")
                .long_about(
                    "Lay out DIR as SmartSim 0.8 expects its built dependencies: bin/insitu-server \
                     (this insitu, which takes redis-server's command line), bin/redis-cli (the \
                     redis-cli on PATH, which SmartSim runs to form a cluster) and lib/redisai.so \
                     (a marker: insitu serves RedisAI's commands itself). Then \
                     `export SMARTSIM_DEP_INSTALL_PATH=DIR` and SmartSim starts insitu where it \
                     started redis-server, with nothing else changed. (A SmartSim that was built \
                     with `smart build` needs only REDIS_PATH=DIR/bin/insitu-server.)",
                )
                .arg(Arg::new("dir").required(true).help("The directory to lay out")),
        )
        .subcommand(
            Command::new("cluster")
                .about("Run a cluster of insitu nodes")
                .subcommand_required(true)
                .subcommand(start),
        )
}

/// The engine's configuration from the flags given (the others keep their defaults).
fn config_from(m: &ArgMatches) -> Result<EngineConfig, String> {
    let mut config = EngineConfig::default();
    for s in SETTINGS {
        if m.value_source(s.name) == Some(ValueSource::DefaultValue) {
            continue;
        }
        if let Some(v) = m.get_one::<String>(s.name) {
            apply(&mut config, s.name, v)?;
        }
    }
    Ok(config)
}

fn apply(config: &mut EngineConfig, name: &str, v: &str) -> Result<(), String> {
    let s = find(name).ok_or_else(|| format!("unknown setting {name}"))?;
    // The command line has always also taken true/false, on/off and 1/0 for a bool
    // (CONFIG SET takes Redis' yes/no only).
    let v = match (s.kind, v.to_ascii_lowercase().as_str()) {
        (Kind::Bool, "true" | "on" | "1") => "yes",
        (Kind::Bool, "false" | "off" | "0") => "no",
        _ => v,
    };
    s.apply(config, v)
        .map_err(|e| format!("--{}: {}", s.name, e.message()))
}

/// Whether `args` (the program name first) is redis-server's command line rather than
/// insitu's: a config file or `--name` options where insitu takes a subcommand.
fn is_redis_command_line(args: &[OsString]) -> bool {
    let Some(first) = args.get(1).and_then(|a| a.to_str()) else {
        return false;
    };
    if matches!(
        first,
        "serve" | "cluster" | "smartsim" | "help" | "-h" | "--help" | "-V" | "--version"
    ) {
        return false;
    }
    first.starts_with("--") || first.ends_with(".conf") || std::path::Path::new(first).is_file()
}

/// Directives (name, values) of a redis.conf: one per line, `#` comments, values split
/// on spaces with double quotes kept together, as redis-server reads them.
fn conf_directives(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut any = false;
        for c in line.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    any = true;
                }
                ' ' | '\t' if !quoted => {
                    if any || !cur.is_empty() {
                        words.push(std::mem::take(&mut cur));
                    }
                    any = false;
                }
                c => cur.push(c),
            }
        }
        if any || !cur.is_empty() {
            words.push(cur);
        }
        if let Some((name, values)) = words.split_first() {
            out.push((name.to_ascii_lowercase(), values.to_vec()));
        }
    }
    out
}

/// Directives from redis-server options: `--name v1 v2 --other ...`.
fn option_directives(args: &[String]) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for a in args {
        match a.strip_prefix("--") {
            Some(name) if !name.is_empty() => out.push((name.to_ascii_lowercase(), vec![])),
            _ => match out.last_mut() {
                Some((_, values)) => values.push(a.clone()),
                None => {
                    return Err(format!(
                        "unexpected argument '{a}' (options are --name value)"
                    ))
                }
            },
        }
    }
    Ok(out)
}

/// redis-server directives without a meaning here, taken without a word.
const REDIS_ONLY: &[&str] = &[
    "save",
    "io-threads",
    "io-threads-do-reads",
    "hz",
    "dynamic-hz",
    "tcp-backlog",
    "tcp-keepalive",
    "daemonize",
    "supervised",
    "pidfile",
    "loglevel",
    "databases",
    "always-show-logo",
    "set-proc-title",
    "proc-title-template",
    "protected-mode",
    "stop-writes-on-bgsave-error",
    "rdbcompression",
    "rdbchecksum",
    "rdb-del-sync-files",
    "bind-source-addr",
    "oom-score-adj",
    "oom-score-adj-values",
    "disable-thp",
    "activerehashing",
    "jemalloc-bg-thread",
    "lazyfree-lazy-eviction",
    "lazyfree-lazy-expire",
    "lazyfree-lazy-server-del",
    "replica-lazy-flush",
    "lazyfree-lazy-user-del",
    "lazyfree-lazy-user-flush",
    "no-appendfsync-on-rewrite",
    "aof-load-truncated",
    "aof-use-rdb-preamble",
    "aof-timestamp-enabled",
    "aof-rewrite-incremental-fsync",
    "rdb-save-incremental-fsync",
    "slowlog-log-slower-than",
    "slowlog-max-len",
    "latency-monitor-threshold",
    "notify-keyspace-events",
    "hash-max-listpack-entries",
    "hash-max-listpack-value",
    "list-max-listpack-size",
    "list-compress-depth",
    "set-max-intset-entries",
    "zset-max-listpack-entries",
    "zset-max-listpack-value",
    "hll-sparse-max-bytes",
    "stream-node-max-bytes",
    "stream-node-max-entries",
    "client-output-buffer-limit",
    "replica-serve-stale-data",
    "replica-read-only",
    "repl-diskless-sync",
    "repl-diskless-sync-delay",
    "repl-diskless-sync-max-replicas",
    "repl-diskless-load",
    "repl-disable-tcp-nodelay",
    "replica-priority",
    "acllog-max-len",
    "cluster-require-full-coverage",
    "cluster-allow-reads-when-down",
    "lua-time-limit",
    "busy-reply-threshold",
    "maxmemory-policy",
    "auto-aof-rewrite-percentage",
    "auto-aof-rewrite-min-size",
    "enable-debug-command",
    "enable-module-command",
];

/// What a redis-server command line asks for.
struct RedisLine {
    config: EngineConfig,
    logfile: Option<PathBuf>,
    /// Options taken without effect, logged once logging is set up.
    ignored: Vec<String>,
}

/// The configuration a redis-server command line asks for, and the log file it names.
fn config_from_redis(args: &[OsString]) -> Result<RedisLine, String> {
    let mut args: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| {
            a.to_str()
                .map(str::to_string)
                .ok_or_else(|| format!("argument {a:?} is not UTF-8"))
        })
        .collect::<Result<_, _>>()?;
    let mut directives = Vec::new();
    if args.first().is_some_and(|a| !a.starts_with("--")) {
        let file = args.remove(0);
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read the config file {file}: {e}"))?;
        directives.extend(conf_directives(&text));
    }
    directives.extend(option_directives(&args)?);
    // redis-server's defaults where they differ from insitu serve's: port 6379, no Unix
    // socket unless asked for.
    let mut config = EngineConfig::default();
    config.listen.port = Some(6379);
    config.listen.unixsocket = None;
    let mut logfile = None;
    let mut ignored = Vec::new();
    for (name, values) in directives {
        let joined = values.join(" ");
        match name.as_str() {
            "loadmodule" => {
                // RedisAI's options after its path: NAME value pairs.
                for pair in values.get(1..).unwrap_or_default().chunks(2) {
                    let [k, v] = pair else {
                        return Err(format!("--loadmodule: option {} has no value", pair[0]));
                    };
                    match find_ai(k.as_bytes()) {
                        Some(s) => apply(&mut config, s.name, v)?,
                        None => ignored.push(format!(
                            "RedisAI option {k} {v} ignored: it has no meaning in insitu"
                        )),
                    }
                }
            }
            "logfile" => logfile = (!joined.is_empty()).then(|| PathBuf::from(joined)),
            "bind" => apply(&mut config, "bind", &joined)?,
            n if find(n).is_some() => apply(&mut config, n, &joined)?,
            n if REDIS_ONLY.contains(&n) => {}
            n => ignored.push(format!(
                "redis-server option {n} ignored: insitu has no such setting"
            )),
        }
    }
    Ok(RedisLine {
        config,
        logfile,
        ignored,
    })
}

fn init_logging(filter: &str, logfile: Option<&PathBuf>) -> Result<(), String> {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).map_err(|e| format!("--log: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let r = match logfile {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))?;
            builder
                .with_writer(std::sync::Mutex::new(file))
                .with_ansi(false)
                .try_init()
        }
        None => builder
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
    // Already set up (the Python console script in a process that logs): keep it.
    let _ = r;
    Ok(())
}

/// Run the `insitu` command line (`args`: the program name first). Never exits the
/// process: the caller turns the code into its exit status.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let result = if is_redis_command_line(&args) {
        config_from_redis(&args)
            .and_then(|line| serve(line.config, line.logfile.as_ref(), &line.ignored))
    } else {
        match cli().try_get_matches_from(&args) {
            Err(e) => {
                let _ = e.print();
                return if e.use_stderr() {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            Ok(m) => match m.subcommand() {
                Some(("serve", m)) => config_from(m).and_then(|c| serve(c, None, &[])),
                Some(("smartsim", m)) => smartsim_layout(&args[0], m),
                Some(("cluster", m)) => match m.subcommand() {
                    Some(("start", m)) => cluster_start(&args[0], m),
                    _ => Err("unknown cluster command (try insitu cluster --help)".into()),
                },
                _ => Err("unknown command (try insitu --help)".to_string()),
            },
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("insitu: {e}");
            ExitCode::FAILURE
        }
    }
}

/// This program's path: the binary, or the console script a Python interpreter runs.
fn this_program(program: &OsString) -> PathBuf {
    std::env::current_exe()
        .ok()
        .filter(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with("insitu"))
        })
        .unwrap_or_else(|| {
            let p = PathBuf::from(program);
            std::fs::canonicalize(&p).unwrap_or(p)
        })
}

/// `insitu smartsim DIR`: the layout SmartSim 0.8 reads through SMARTSIM_DEP_INSTALL_PATH.
fn smartsim_layout(program: &OsString, m: &ArgMatches) -> Result<(), String> {
    let dir = PathBuf::from(m.get_one::<String>("dir").cloned().unwrap_or_default());
    let (bin, lib) = (dir.join("bin"), dir.join("lib"));
    for d in [&bin, &lib] {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    let link = |target: &std::path::Path, at: PathBuf| -> Result<(), String> {
        let _ = std::fs::remove_file(&at);
        std::os::unix::fs::symlink(target, &at)
            .map_err(|e| format!("cannot link {} to {}: {e}", at.display(), target.display()))
    };
    let exe = this_program(program);
    link(&exe, bin.join("insitu-server"))?;
    let cli = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("redis-cli"))
        .find(|p| p.is_file())
        .ok_or("redis-cli is not on PATH: SmartSim runs it to form a cluster (apt-get install redis-tools)")?;
    link(&cli, bin.join("redis-cli"))?;
    std::fs::write(
        lib.join("redisai.so"),
        "insitu serves RedisAI's commands itself: this file only tells SmartSim that RedisAI is there.\n",
    )
    .map_err(|e| format!("cannot write {}: {e}", lib.display()))?;
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    println!("export SMARTSIM_DEP_INSTALL_PATH={}", dir.display());
    println!(
        "export REDIS_PATH={}",
        dir.join("bin/insitu-server").display()
    );
    Ok(())
}

/// `insitu cluster start`: N `insitu serve` processes of one fixed layout.
fn cluster_start(program: &OsString, m: &ArgMatches) -> Result<(), String> {
    let n = *m.get_one::<u16>("nodes").unwrap_or(&3);
    let base = *m.get_one::<u16>("base-port").unwrap_or(&7000);
    let host = m.get_one::<String>("host").cloned().unwrap_or_default();
    let root = PathBuf::from(m.get_one::<String>("root").cloned().unwrap_or_default());
    let extra: Vec<String> = m
        .get_many::<String>("serve")
        .map(|v| v.cloned().collect())
        .unwrap_or_default();
    let ports: Vec<u16> = (0..n)
        .map(|i| base.checked_add(i).ok_or("ports beyond 65535"))
        .collect::<Result<_, _>>()?;
    let list = ports
        .iter()
        .map(|p| format!("{host}:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    // The binary: this program, or the console script a Python interpreter runs.
    let exe = this_program(program);
    let mut children = Vec::new();
    for (rank, port) in ports.iter().enumerate() {
        let dir = root.join(format!("node-{port}"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let child = std::process::Command::new(&exe)
            .args(["serve", "--port", &port.to_string(), "--bind", &host])
            .args(["--unixsocket", "none", "--cluster-nodes", &list])
            .args(["--cluster-rank", &rank.to_string(), "--dir"])
            .arg(&dir)
            .args(&extra)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        children.push(child);
    }
    println!("SSDB={list}");
    // SIGINT/SIGTERM to the launcher stops every node (a terminal's Ctrl-C reaches them
    // all anyway; `kill` or a batch system's signal reaches only this process).
    let pids: Vec<i32> = children.iter().map(|c| c.id() as i32).collect();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(shutdown_signal());
        for pid in pids {
            // SAFETY: kill(2) on our own children's pids; no memory is touched.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    });
    let mut failed = false;
    for mut c in children {
        failed |= !c.wait().map(|s| s.success()).unwrap_or(false);
    }
    if failed {
        return Err("a node stopped with an error".into());
    }
    Ok(())
}

fn serve(
    mut config: EngineConfig,
    logfile: Option<&PathBuf>,
    ignored: &[String],
) -> Result<(), String> {
    init_logging(&config.log.clone(), logfile)?;
    for note in ignored {
        tracing::warn!("{note}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("insitu-io")
        .build()
        .map_err(|e| format!("cannot start runtime: {e}"))?;
    rt.block_on(async move {
        let listen = config.listen.clone();
        let mut listeners = Vec::new();
        if let Some(p) = listen.port {
            // Every address of `bind` (redis-server takes several).
            let mut bound_port = p;
            for addr in listen.bind.split_whitespace() {
                let tcp = tokio::net::TcpListener::bind((addr, bound_port))
                    .await
                    .map_err(|e| format!("cannot listen on {addr}:{bound_port}: {e}"))?;
                let local = tcp.local_addr().map_err(|e| e.to_string())?;
                bound_port = local.port();
                tracing::info!("listening on tcp://{local}");
                listeners.push(Listener::Tcp(tcp));
            }
            config.port = bound_port;
        }
        if let Some(path) = &listen.unixsocket {
            let l =
                crate::server::bind_unix(path, listen.unixsocketperm).map_err(|e| e.to_string())?;
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
        // The KServe front ends (gRPC, HTTP, metrics) and the model repository, on the
        // same engine; stopped once the RESP server has finished.
        let frontends = crate::kserve::Frontends::start(engine.clone())
            .await
            .map_err(|e| e.to_string())?;
        let served = crate::server::run(engine, listeners, shutdown_signal())
            .await
            .map_err(|e| e.to_string());
        frontends.stop().await;
        served
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
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
    tracing::info!("signal received");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn smartsim_s_command_line_is_redis_server_s() {
        let dir = std::env::temp_dir().join(format!("insitu-cli-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let conf = dir.join("redis.conf");
        std::fs::write(
            &conf,
            "# SmartSim's redis.conf, abridged\nprotected-mode no\nport 6379\nsave \"\"\nmaxclients 50000\nio-threads 4\nappendonly no\nlogfile \"\"\ndir ./\n",
        )
        .expect("conf");
        let args = os(&[
            "/opt/insitu",
            conf.to_str().expect("utf8"),
            "--loadmodule",
            "/opt/redisai.so",
            "THREADS_PER_QUEUE",
            "2",
            "INTER_OP_PARALLELISM",
            "1",
            "INTRA_OP_PARALLELISM",
            "3",
            "--port",
            "6399",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes-orc_0.conf",
            "--bind",
            "127.0.0.1",
            "127.0.0.2",
            "--bind-source-addr",
            "127.0.0.1",
        ]);
        assert!(is_redis_command_line(&args));
        let line = config_from_redis(&args).expect("parsed");
        let (c, logfile) = (line.config, line.logfile);
        assert!(line.ignored.is_empty(), "{:?}", line.ignored);
        assert_eq!(c.listen.port, Some(6399));
        assert_eq!(c.listen.bind, "127.0.0.1 127.0.0.2");
        assert_eq!(c.listen.unixsocket, None);
        assert!(c.cluster_enabled);
        assert_eq!(c.cluster.config_file, "nodes-orc_0.conf");
        assert_eq!(c.maxclients, 50000);
        assert_eq!(
            (
                c.models.threads,
                c.models.inter_op_threads,
                c.models.intra_op_threads
            ),
            (2, 1, 3)
        );
        assert_eq!(logfile, None);
        assert_eq!(
            c.cluster_address().map(|a| a.0),
            Some("127.0.0.1".to_string())
        );
        let _ = std::fs::remove_dir_all(dir);
        assert!(!is_redis_command_line(&os(&["insitu", "serve"])));
        assert!(!is_redis_command_line(&os(&["insitu", "--help"])));
        assert!(is_redis_command_line(&os(&["insitu", "--port", "7000"])));
        assert_eq!(
            config_from_redis(&os(&["insitu", "--port", "x"])).err(),
            Some("--port: not a port: x".to_string())
        );
        assert_eq!(
            conf_directives("proc-title-template \"{title} {listen-addr}\"\nsave \"\"\n"),
            vec![
                (
                    "proc-title-template".to_string(),
                    vec!["{title} {listen-addr}".to_string()]
                ),
                ("save".to_string(), vec!["".to_string()]),
            ]
        );
    }
}
