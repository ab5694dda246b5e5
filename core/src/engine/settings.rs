//! insitu's settings, each defined once: its name, the kind of value it takes, whether it
//! may change while the server runs, its help text, and how it reads from and writes to
//! [`EngineConfig`]. The command line of `insitu serve` is generated from this table
//! (one `--name value` flag per setting, its default read from `EngineConfig::default()`),
//! `CONFIG GET/SET` answer from it, and RedisAI's `AI.CONFIG` names map onto it.
//!
//! Sizes take Redis' grammar ([`parse_size`]: `kb`/`mb`/`gb` are 1024-based, `k`/`m`/`g`
//! 1000-based), as `CONFIG SET maxmemory 1gb` does in Redis. No size-parsing crate reads
//! them that way (they treat `k` and `kb` alike), so the twelve lines stay here.

use std::path::PathBuf;

use crate::engine::{EngineConfig, ModelControl, PortSetting};
use crate::error::{Error, Result};
use crate::persistence::journal::FsyncPolicy;

/// What a setting's value may be (Redis' validation).
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// A size or count: a number with an optional k/kb/m/mb/g/gb suffix.
    Size,
    /// A signed integer within the range.
    Int(i64, i64),
    /// `yes` or `no`.
    Bool,
    /// One of the words.
    Enum(&'static [&'static str]),
    /// Any text (checked by the setting itself).
    Text,
}

impl Kind {
    /// How the command line's help names the value.
    pub fn value_name(self) -> &'static str {
        match self {
            Kind::Size => "SIZE",
            Kind::Int(..) => "N",
            Kind::Bool => "yes|no",
            Kind::Enum(_) => "WORD",
            Kind::Text => "TEXT",
        }
    }

    /// Check `v` Redis' way; the value to apply (bools and enums lower case, sizes as
    /// plain numbers of bytes).
    ///
    /// # Errors
    /// Redis' reason (`argument must be 'yes' or 'no'`...).
    pub fn validate(self, v: &str) -> Result<String> {
        match self {
            Kind::Text => Ok(v.to_string()),
            Kind::Size => size(v).map(|n| n.to_string()),
            Kind::Int(lo, hi) => {
                let n: i64 = v.parse().map_err(|_| not_integer())?;
                if n < lo || n > hi {
                    return Err(Error::bad_input(format!(
                        "argument must be between {lo} and {hi} inclusive"
                    )));
                }
                Ok(n.to_string())
            }
            Kind::Bool => match v.to_ascii_lowercase().as_str() {
                b @ ("yes" | "no") => Ok(b.to_string()),
                _ => Err(Error::bad_input("argument must be 'yes' or 'no'")),
            },
            Kind::Enum(words) => {
                let lower = v.to_ascii_lowercase();
                if words.contains(&lower.as_str()) {
                    Ok(lower)
                } else {
                    Err(Error::bad_input(format!(
                        "argument(s) must be one of the following: {}",
                        words.join(", ")
                    )))
                }
            }
        }
    }
}

/// When a setting may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// At start and with `CONFIG SET` (it takes effect at once).
    Runtime,
    /// At start only (`CONFIG SET` answers Redis' `can't set protected config`).
    Start,
}

/// One setting.
pub struct Setting {
    /// Lower-case, dash-separated: the command-line flag (`--maxmemory`) and the
    /// `CONFIG` name.
    pub name: &'static str,
    /// What its value may be.
    pub kind: Kind,
    /// When it may change.
    pub change: Change,
    /// RedisAI's `AI.CONFIG` name for it, if RedisAI had one.
    pub ai_config: Option<&'static str>,
    /// An environment variable the command line also reads it from.
    pub env: Option<&'static str>,
    /// One or two sentences for `insitu serve --help`.
    pub help: &'static str,
    /// Its current value, as `CONFIG GET` reports it.
    pub get: fn(&EngineConfig) -> String,
    /// Apply a value that passed `kind`'s check.
    pub set: fn(&mut EngineConfig, &str) -> Result<()>,
}

impl Setting {
    /// Check `v` and apply it to `cfg`.
    ///
    /// # Errors
    /// Why the value is refused (without the setting's name).
    pub fn apply(&self, cfg: &mut EngineConfig, v: &str) -> Result<()> {
        let v = self.kind.validate(v)?;
        (self.set)(cfg, &v)
    }
}

fn not_integer() -> Error {
    Error::bad_input("argument couldn't be parsed into an integer")
}

fn size(v: &str) -> Result<usize> {
    parse_size(v.as_bytes()).ok_or_else(not_integer)
}

fn positive(v: &str) -> Result<usize> {
    match size(v)? {
        0 => Err(Error::bad_input("argument must be greater than 0")),
        n => Ok(n),
    }
}

fn yes(v: &str) -> bool {
    v == "yes"
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

fn optional(v: &str) -> Option<String> {
    (!v.is_empty() && v != "none").then(|| v.to_string())
}

/// Parse a size as Redis does: a number with an optional `kb`/`mb`/`gb` (1024-based) or
/// `k`/`m`/`g` (1000-based) suffix.
pub fn parse_size(b: &[u8]) -> Option<usize> {
    let s = std::str::from_utf8(b).ok()?.to_ascii_lowercase();
    let (num, mul) = [
        ("kb", 1usize << 10),
        ("mb", 1 << 20),
        ("gb", 1 << 30),
        ("k", 1000),
        ("m", 1_000_000),
        ("g", 1_000_000_000),
        ("b", 1),
    ]
    .iter()
    .find_map(|(suf, m)| s.strip_suffix(suf).map(|n| (n.to_string(), *m)))
    .unwrap_or((s.clone(), 1));
    num.parse::<usize>().ok()?.checked_mul(mul)
}

#[allow(clippy::too_many_arguments)]
const fn setting(
    name: &'static str,
    kind: Kind,
    change: Change,
    help: &'static str,
    get: fn(&EngineConfig) -> String,
    set: fn(&mut EngineConfig, &str) -> Result<()>,
) -> Setting {
    Setting {
        name,
        kind,
        change,
        ai_config: None,
        env: None,
        help,
        get,
        set,
    }
}

const fn env(var: &'static str, s: Setting) -> Setting {
    Setting {
        env: Some(var),
        ..s
    }
}

const fn ai(name: &'static str, s: Setting) -> Setting {
    Setting {
        ai_config: Some(name),
        ..s
    }
}

use Change::{Runtime, Start};

/// A KServe front end's port setting: `auto` (Triton's port when a model repository is
/// given, else off), `off`, or a port (0: a free one).
macro_rules! port_setting {
    ($name:literal, $triton:literal, $what:literal, $field:ident) => {
        setting(
            $name,
            Kind::Text,
            Start,
            concat!(
                "Port of ",
                $what,
                ": a number (0: a free one), off, or auto (Triton's ",
                $triton,
                " when model-repository is given, else off)."
            ),
            |c| match c.serving.$field {
                PortSetting::Auto => "auto".into(),
                PortSetting::Off => "off".into(),
                PortSetting::Port(p) => p.to_string(),
            },
            |c, v| {
                c.serving.$field = match v.to_ascii_lowercase().as_str() {
                    "auto" | "" => PortSetting::Auto,
                    "off" | "none" | "no" => PortSetting::Off,
                    p => PortSetting::Port(
                        p.parse()
                            .map_err(|_| Error::bad_input(format!("not a port: {p}")))?,
                    ),
                };
                Ok(())
            },
        )
    };
}

/// Every setting, in the order `insitu serve --help` and `CONFIG GET *` list them.
#[rustfmt::skip]
pub static SETTINGS: &[Setting] = &[
    // Listening.
    env("INSITU_BIND", setting("bind", Kind::Text, Start,
        "TCP address to bind; loopback by default. Use 0.0.0.0 to accept remote clients.",
        |c| c.listen.bind.clone(), |c, v| { c.listen.bind = v.to_string(); Ok(()) })),
    env("INSITU_PORT", setting("port", Kind::Text, Start,
        "TCP port (0: pick a free port; none: no TCP listener). CONFIG GET reports the port bound.",
        |c| match (c.port, c.listen.port) {
            (0, None) => "none".into(),
            (0, Some(p)) => p.to_string(),
            (bound, _) => bound.to_string(),
        },
        |c, v| {
            c.listen.port = match v {
                "none" => None,
                p => Some(p.parse().map_err(|_| Error::bad_input(format!("not a port: {p}")))?),
            };
            c.port = 0;
            Ok(())
        })),
    env("INSITU_UNIXSOCKET", setting("unixsocket", Kind::Text, Start,
        "Unix socket path (none: no Unix socket).",
        |c| c.listen.unixsocket.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        |c, v| { c.listen.unixsocket = optional(v).map(PathBuf::from); Ok(()) })),
    setting("unixsocketperm", Kind::Text, Start,
        "Permissions of the Unix socket file (octal).",
        |c| format!("{:o}", c.listen.unixsocketperm),
        |c, v| {
            c.listen.unixsocketperm = u32::from_str_radix(v, 8)
                .map_err(|_| Error::bad_input(format!("not octal: {v}")))?;
            Ok(())
        }),
    env("INSITU_REQUIREPASS", setting("requirepass", Kind::Text, Runtime,
        "Require clients to AUTH with this password.",
        |c| c.requirepass.clone().unwrap_or_default(),
        |c, v| { c.requirepass = (!v.is_empty()).then(|| v.to_string()); Ok(()) })),
    // Memory and clients.
    setting("maxmemory", Kind::Size, Runtime, "Memory limit for stored data, e.g. 4gb (0: unlimited).",
        |c| c.maxmemory.to_string(), |c, v| { c.maxmemory = size(v)?; Ok(()) }),
    setting("shm-heap-reserve", Kind::Size, Runtime,
        "Bytes of pre-faulted shared-memory blocks kept ready for Unix-socket clients' first transfers (0: none).",
        |c| c.shm_heap_reserve.to_string(), |c, v| { c.shm_heap_reserve = size(v)?; Ok(()) }),
    setting("maxclients", Kind::Size, Runtime, "Most concurrent client connections.",
        |c| c.maxclients.to_string(), |c, v| { c.maxclients = positive(v)?; Ok(()) }),
    setting("timeout", Kind::Size, Runtime,
        "Close a client idle for this many seconds (0: never; simulations often sit idle between steps).",
        |c| c.limits.idle_timeout_secs.to_string(), |c, v| { c.limits.idle_timeout_secs = size(v)? as u64; Ok(()) }),
    setting("client-output-timeout", Kind::Size, Runtime,
        "Close a client that reads none of its pending replies for this many seconds (0: never).",
        |c| c.limits.output_timeout_secs.to_string(), |c, v| { c.limits.output_timeout_secs = size(v)? as u64; Ok(()) }),
    // Input limits.
    setting("proto-max-bulk-len", Kind::Size, Runtime, "Largest single argument, bytes (e.g. 512mb).",
        |c| c.limits.max_bulk_len.to_string(), |c, v| { c.limits.max_bulk_len = positive(v)?; Ok(()) }),
    setting("max-array-len", Kind::Size, Runtime, "Most arguments in one command.",
        |c| c.limits.max_array_len.to_string(), |c, v| { c.limits.max_array_len = positive(v)?; Ok(()) }),
    setting("max-tensor-dims", Kind::Size, Runtime, "Most dimensions of one tensor.",
        |c| c.limits.max_dims.to_string(), |c, v| { c.limits.max_dims = positive(v)?; Ok(()) }),
    setting("max-tensor-bytes", Kind::Size, Runtime, "Largest tensor, bytes (e.g. 512mb).",
        |c| c.limits.max_tensor_bytes.to_string(), |c, v| { c.limits.max_tensor_bytes = positive(v)?; Ok(()) }),
    // Persistence.
    setting("dir", Kind::Text, Start, "Directory of the snapshot file (SAVE writes there; start loads from there).",
        |c| c.dir.display().to_string(), |c, v| { c.dir = PathBuf::from(v); Ok(()) }),
    setting("dbfilename", Kind::Text, Start, "Snapshot file name inside --dir.",
        |c| c.dbfilename.clone(),
        |c, v| { crate::persistence::journal::check_plain_name("it", v)?; c.dbfilename = v.to_string(); Ok(()) }),
    setting("appendonly", Kind::Bool, Start,
        "Journal every write to append-only files: a crash of the server loses no acknowledged write, a crash of the machine at most the last second of them.",
        |c| yes_no(c.aof.enabled), |c, v| { c.aof.enabled = yes(v); Ok(()) }),
    setting("appendfsync", Kind::Enum(&["always", "everysec", "no"]), Start,
        "When the journal is synced to disk: always (before each reply), everysec, no.",
        |c| c.aof.fsync.name().into(),
        |c, v| { c.aof.fsync = FsyncPolicy::parse(v).ok_or_else(|| Error::bad_input("invalid fsync policy"))?; Ok(()) }),
    setting("appenddirname", Kind::Text, Start, "Directory of the append-only files, inside --dir.",
        |c| c.aof.dirname.clone(),
        |c, v| { crate::persistence::journal::check_plain_name("it", v)?; c.aof.dirname = v.to_string(); Ok(()) }),
    setting("appendfilename", Kind::Text, Start, "Common name of the append-only files.",
        |c| c.aof.filename.clone(),
        |c, v| { crate::persistence::journal::check_plain_name("it", v)?; c.aof.filename = v.to_string(); Ok(()) }),
    setting("auto-aof-rewrite-percentage", Kind::Size, Runtime,
        "Rewrite the journal when it has grown by this percentage since the last rewrite (0: only on BGREWRITEAOF).",
        |c| c.aof.rewrite_percentage.to_string(), |c, v| { c.aof.rewrite_percentage = size(v)?; Ok(()) }),
    setting("auto-aof-rewrite-min-size", Kind::Size, Runtime, "...and is at least this large.",
        |c| c.aof.rewrite_min_size.to_string(), |c, v| { c.aof.rewrite_min_size = size(v)?; Ok(()) }),
    // Models.
    ai("THREADS_PER_QUEUE", setting("threads-per-queue", Kind::Size, Start,
        "Inference worker threads (RedisAI's THREADS_PER_QUEUE; default: the core count).",
        |c| c.models.threads.to_string(), |c, v| { c.models.threads = positive(v)?; Ok(()) })),
    ai("INTRA_OP_PARALLELISM", setting("intra-op-threads", Kind::Size, Runtime, "ONNX Runtime intra-op threads per session.",
        |c| c.models.intra_op_threads.to_string(), |c, v| { c.models.intra_op_threads = positive(v)?; Ok(()) })),
    ai("INTER_OP_PARALLELISM", setting("inter-op-threads", Kind::Size, Runtime, "ONNX Runtime inter-op threads per session.",
        |c| c.models.inter_op_threads.to_string(), |c, v| { c.models.inter_op_threads = positive(v)?; Ok(()) })),
    setting("inline-inference-us", Kind::Size, Runtime,
        "Run a request on the connection's thread when the model's measured cost for it is at most this many microseconds (0: always on the inference threads).",
        |c| c.models.inline_max_us.to_string(), |c, v| { c.models.inline_max_us = size(v)? as u64; Ok(()) }),
    ai("MODEL_CHUNK_SIZE", setting("model-chunk-size", Kind::Size, Runtime,
        "The size clients split model blobs into (RedisAI's MODEL_CHUNK_SIZE).",
        |c| c.models.chunk_size.to_string(), |c, v| { c.models.chunk_size = positive(v)?; Ok(()) })),
    setting("max-model-bytes", Kind::Size, Start, "Largest model, bytes (e.g. 1gb).",
        |c| c.models.max_model_bytes.to_string(), |c, v| { c.models.max_model_bytes = positive(v)?; Ok(()) }),
    setting("model-external-data-dir", Kind::Text, Start,
        "Directory models may read external data files from (default: refused).",
        |c| c.models.external_data_dir.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        |c, v| { c.models.external_data_dir = optional(v).map(PathBuf::from); Ok(()) }),
    // Cluster.
    setting("cluster-enabled", Kind::Bool, Start,
        "Run as a Redis Cluster node: it owns the hash slots it is given (redis-cli --cluster create, or --cluster-nodes) and redirects keys of other slots (MOVED).",
        |c| yes_no(c.cluster_enabled), |c, v| { c.cluster_enabled = yes(v); Ok(()) }),
    setting("cluster-nodes", Kind::Text, Start,
        "A fixed cluster: every node's host:port, comma-separated, in rank order (implies cluster-enabled). Each node takes an equal share of the slots; 'self' makes a one-node cluster owning every slot.",
        |c| c.cluster.nodes.clone(), |c, v| { c.cluster.nodes = v.to_string(); Ok(()) }),
    setting("cluster-rank", Kind::Text, Start,
        "This node's rank in cluster-nodes (default: SLURM_PROCID, OMPI_COMM_WORLD_RANK, PMI_RANK or PMIX_RANK, else the entry with this node's address and port).",
        |c| c.cluster.rank.clone().unwrap_or_default(), |c, v| { c.cluster.rank = optional(v); Ok(()) }),
    setting("cluster-config-file", Kind::Text, Start,
        "Where a cluster node saves its view (id, slots, the nodes it knows), under dir; read back at start.",
        |c| c.cluster.config_file.clone(), |c, v| { c.cluster.config_file = v.to_string(); Ok(()) }),
    setting("cluster-node-timeout", Kind::Size, Start,
        "Milliseconds after which a node that does not answer is flagged failing.",
        |c| c.cluster.node_timeout_ms.to_string(), |c, v| { c.cluster.node_timeout_ms = positive(v)? as u64; Ok(()) }),
    setting("cluster-announce-ip", Kind::Text, Start,
        "The IP that CLUSTER SLOTS announces (default: --bind, or 127.0.0.1 for 0.0.0.0).",
        |c| c.cluster_announce_ip.clone().unwrap_or_default(),
        |c, v| { c.cluster_announce_ip = optional(v); Ok(()) }),
    // The KServe v2 front ends and the model repository.
    port_setting!("grpc-port", "8001", "gRPC (KServe v2, inference.GRPCInferenceService)", grpc_port),
    port_setting!("http-port", "8000", "HTTP/REST (KServe v2, with the binary tensor data extension)", http_port),
    port_setting!("metrics-port", "8002", "Prometheus /metrics (Triton's nv_inference_* and insitu's own)", metrics_port),
    setting("model-repository", Kind::Text, Start,
        "A Triton model repository: DIR/<model>/<version>/model.onnx, with an optional DIR/<model>/config.pbtxt (max_batch_size, dynamic_batching, instance_group). Its models are stored under their names, as AI.MODELSTORE would.",
        |c| c.serving.model_repository.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        |c, v| { c.serving.model_repository = optional(v).map(PathBuf::from); Ok(()) }),
    setting("model-control-mode", Kind::Enum(&["none", "poll", "explicit"]), Start,
        "How repository models load, as Triton's option: none (all at start, fixed), poll (rescanned every repository-poll-secs), explicit (load-model at start, then the load/unload API).",
        |c| match c.serving.model_control { ModelControl::None => "none", ModelControl::Poll => "poll", ModelControl::Explicit => "explicit" }.into(),
        |c, v| { c.serving.model_control = match v { "poll" => ModelControl::Poll, "explicit" => ModelControl::Explicit, _ => ModelControl::None }; Ok(()) }),
    setting("repository-poll-secs", Kind::Int(1, 86_400), Start,
        "Seconds between scans of the model repository in poll mode.",
        |c| c.serving.repository_poll_secs.to_string(),
        |c, v| { c.serving.repository_poll_secs = v.parse().map_err(|_| not_integer())?; Ok(()) }),
    setting("load-model", Kind::Text, Start,
        "Explicit mode: the repository models loaded at start, comma-separated ('*': all).",
        |c| c.serving.load_models.join(","),
        |c, v| { c.serving.load_models = v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(); Ok(()) }),
    setting("kserve-max-message", Kind::Size, Start,
        "Largest gRPC message or HTTP body the KServe front ends accept (bytes).",
        |c| c.serving.max_message_bytes.to_string(), |c, v| { c.serving.max_message_bytes = positive(v)?; Ok(()) }),
    setting("kserve-max-shm-regions", Kind::Int(0, 65_536), Start,
        "Most system shared-memory regions clients may register at once.",
        |c| c.serving.max_shm_regions.to_string(),
        |c, v| { c.serving.max_shm_regions = v.parse().map_err(|_| not_integer())?; Ok(()) }),
    // Logging.
    env("INSITU_LOG", setting("log", Kind::Text, Start,
        "Log filter (tracing's env-filter syntax), e.g. info or insitu=debug.",
        |c| c.log.clone(), |c, v| { c.log = v.to_string(); Ok(()) })),
];

/// The setting named `name` (lower case, as the table spells it).
pub fn find(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// The setting RedisAI's `AI.CONFIG` calls `name` (any case).
pub fn find_ai(name: &[u8]) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| {
        s.ai_config
            .is_some_and(|a| a.as_bytes().eq_ignore_ascii_case(name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_redis() {
        assert_eq!(parse_size(b"100"), Some(100));
        assert_eq!(parse_size(b"1kb"), Some(1024));
        assert_eq!(parse_size(b"2MB"), Some(2 << 20));
        assert_eq!(parse_size(b"1g"), Some(1_000_000_000));
        assert_eq!(parse_size(b"x"), None);
        assert_eq!(parse_size(b"-1"), None);
    }

    #[test]
    fn every_setting_reads_back_what_it_was_set_to() {
        let mut seen = std::collections::HashSet::new();
        for s in SETTINGS {
            assert!(seen.insert(s.name), "{} twice", s.name);
            assert_eq!(s.name, s.name.to_ascii_lowercase());
            // The default survives a round trip through its own text.
            let mut c = EngineConfig::default();
            let d = (s.get)(&c);
            s.apply(&mut c, &d)
                .unwrap_or_else(|e| panic!("{}: {d}: {e}", s.name));
            assert_eq!((s.get)(&c), d, "{}", s.name);
        }
        let mut c = EngineConfig::default();
        find("maxmemory").unwrap().apply(&mut c, "1gb").unwrap();
        assert_eq!(c.maxmemory, 1 << 30);
        find("appendonly").unwrap().apply(&mut c, "YES").unwrap();
        assert!(c.aof.enabled);
        assert_eq!(
            find("appendonly")
                .unwrap()
                .apply(&mut c, "maybe")
                .unwrap_err()
                .text(),
            "ERR argument must be 'yes' or 'no'"
        );
        assert_eq!(
            find_ai(b"threads_per_queue").unwrap().name,
            "threads-per-queue"
        );
    }
}
