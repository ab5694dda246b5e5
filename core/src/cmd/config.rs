//! `CONFIG GET / SET / RESETSTAT / REWRITE / HELP`, from one table of parameters.
//!
//! insitu's own settings are read from and written to the engine's configuration (and
//! take effect at once: limits, memory, timeouts, journal rewrites). The Redis parameters
//! that clients, test suites and tools set or read (`lua-time-limit`, `maxmemory-policy`,
//! `notify-keyspace-events`, the encoding thresholds...) are accepted with Redis 7's
//! validation and defaults, stored and reported; `busy-reply-threshold` (`lua-time-limit`)
//! bounds how long a Lua script runs (see `script.rs`), the others have no effect here (no
//! eviction, no encodings), and saying OK to them keeps programs that set them working. Patterns match as Redis matches them (glob, case-insensitive), and an
//! alias (`lua-time-limit` for `busy-reply-threshold`) reads and writes the same value.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{arity, glob_match};
use crate::engine::{Engine, EngineConfig};
use crate::error::{Error, Result};
use crate::resp::Frame;

/// What a parameter's value may be (Redis' validation).
#[derive(Clone, Copy)]
enum Kind {
    /// A size or count: a number with an optional k/kb/m/mb/g/gb suffix.
    Size,
    /// A signed integer within the range.
    Int(i64, i64),
    /// `yes` or `no`.
    Bool,
    /// One of the words.
    Enum(&'static [&'static str]),
    /// Any text.
    Text,
}

/// Where a parameter's value lives.
#[derive(Clone, Copy)]
enum Place {
    /// In the engine's configuration: how to read it and how to set it (`None`: read-only).
    Engine {
        get: fn(&EngineConfig) -> String,
        set: Option<fn(&mut EngineConfig, &str) -> Result<()>>,
    },
    /// Stored and reported; `mutable: false` for start-time settings Redis refuses to
    /// change (`can't set immutable config`).
    Stored {
        default: &'static str,
        mutable: bool,
    },
    /// Another name for a parameter (`lua-time-limit` -> `busy-reply-threshold`).
    Alias(&'static str),
}

struct Param {
    name: &'static str,
    kind: Kind,
    place: Place,
}

fn size(v: &str) -> Result<usize> {
    parse_size(v.as_bytes())
        .ok_or_else(|| Error::bad_input("argument couldn't be parsed into an integer"))
}

fn positive(v: &str) -> Result<usize> {
    match size(v)? {
        0 => Err(Error::bad_input("argument must be greater than 0")),
        n => Ok(n),
    }
}

const fn engine(
    name: &'static str,
    kind: Kind,
    get: fn(&EngineConfig) -> String,
    set: Option<fn(&mut EngineConfig, &str) -> Result<()>>,
) -> Param {
    Param {
        name,
        kind,
        place: Place::Engine { get, set },
    }
}

const fn stored(name: &'static str, kind: Kind, default: &'static str) -> Param {
    Param {
        name,
        kind,
        place: Place::Stored {
            default,
            mutable: true,
        },
    }
}

const fn fixed(name: &'static str, default: &'static str) -> Param {
    Param {
        name,
        kind: Kind::Text,
        place: Place::Stored {
            default,
            mutable: false,
        },
    }
}

const fn alias(name: &'static str, of: &'static str) -> Param {
    Param {
        name,
        kind: Kind::Text,
        place: Place::Alias(of),
    }
}

const YES_NO: Kind = Kind::Bool;
const INT: Kind = Kind::Int(i64::MIN, i64::MAX);
const NONNEG: Kind = Kind::Int(0, i64::MAX);

/// Every parameter, in the order `CONFIG GET *` lists them.
#[rustfmt::skip]
const PARAMS: &[Param] = &[
    // insitu's settings, applied.
    engine("maxmemory", Kind::Size, |c| c.maxmemory.to_string(), Some(|c, v| { c.maxmemory = size(v)?; Ok(()) })),
    engine("maxclients", Kind::Size, |c| c.maxclients.to_string(), Some(|c, v| { c.maxclients = positive(v)?; Ok(()) })),
    engine("proto-max-bulk-len", Kind::Size, |c| c.limits.max_bulk_len.to_string(), Some(|c, v| { c.limits.max_bulk_len = positive(v)?; Ok(()) })),
    engine("max-array-len", Kind::Size, |c| c.limits.max_array_len.to_string(), Some(|c, v| { c.limits.max_array_len = positive(v)?; Ok(()) })),
    engine("max-tensor-dims", Kind::Size, |c| c.limits.max_dims.to_string(), Some(|c, v| { c.limits.max_dims = positive(v)?; Ok(()) })),
    engine("max-tensor-bytes", Kind::Size, |c| c.limits.max_tensor_bytes.to_string(), Some(|c, v| { c.limits.max_tensor_bytes = positive(v)?; Ok(()) })),
    engine("timeout", Kind::Size, |c| c.limits.idle_timeout_secs.to_string(), Some(|c, v| { c.limits.idle_timeout_secs = size(v)? as u64; Ok(()) })),
    engine("client-output-timeout", Kind::Size, |c| c.limits.output_timeout_secs.to_string(), Some(|c, v| { c.limits.output_timeout_secs = size(v)? as u64; Ok(()) })),
    engine("requirepass", Kind::Text, |c| c.requirepass.clone().unwrap_or_default(), Some(|c, v| { c.requirepass = (!v.is_empty()).then(|| v.to_string()); Ok(()) })),
    engine("dir", Kind::Text, |c| c.dir.display().to_string(), None),
    engine("dbfilename", Kind::Text, |c| c.dbfilename.clone(), None),
    engine("save", Kind::Text, |_| String::new(), None),
    engine("appendonly", Kind::Bool, |c| if c.aof.enabled { "yes" } else { "no" }.into(), None),
    engine("appendfsync", Kind::Text, |c| c.aof.fsync.name().into(), None),
    engine("appenddirname", Kind::Text, |c| c.aof.dirname.clone(), None),
    engine("appendfilename", Kind::Text, |c| c.aof.filename.clone(), None),
    engine("auto-aof-rewrite-percentage", Kind::Size, |c| c.aof.rewrite_percentage.to_string(), Some(|c, v| { c.aof.rewrite_percentage = size(v)?; Ok(()) })),
    engine("auto-aof-rewrite-min-size", Kind::Size, |c| c.aof.rewrite_min_size.to_string(), Some(|c, v| { c.aof.rewrite_min_size = size(v)?; Ok(()) })),
    engine("port", Kind::Text, |c| c.port.to_string(), None),
    engine("cluster-enabled", Kind::Bool, |c| if c.cluster.is_some() { "yes" } else { "no" }.into(), None),
    engine("databases", Kind::Text, |_| "1".into(), None),
    // Redis' parameters: accepted, stored and reported.
    stored("busy-reply-threshold", NONNEG, "5000"),
    alias("lua-time-limit", "busy-reply-threshold"),
    stored("maxmemory-policy", Kind::Enum(&["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction"]), "noeviction"),
    stored("maxmemory-samples", Kind::Int(1, 64), "5"),
    stored("maxmemory-eviction-tenacity", Kind::Int(0, 100), "10"),
    stored("loglevel", Kind::Enum(&["debug", "verbose", "notice", "warning", "nothing"]), "notice"),
    stored("notify-keyspace-events", Kind::Text, ""),
    stored("protected-mode", YES_NO, "yes"),
    stored("tcp-keepalive", NONNEG, "300"),
    stored("hz", Kind::Int(0, 500), "10"),
    stored("dynamic-hz", YES_NO, "yes"),
    stored("slowlog-log-slower-than", INT, "10000"),
    stored("slowlog-max-len", NONNEG, "128"),
    stored("latency-monitor-threshold", NONNEG, "0"),
    stored("latency-tracking", YES_NO, "yes"),
    stored("lazyfree-lazy-eviction", YES_NO, "no"),
    stored("lazyfree-lazy-expire", YES_NO, "no"),
    stored("lazyfree-lazy-server-del", YES_NO, "no"),
    stored("lazyfree-lazy-user-del", YES_NO, "no"),
    stored("lazyfree-lazy-user-flush", YES_NO, "no"),
    stored("activerehashing", YES_NO, "yes"),
    stored("activedefrag", YES_NO, "no"),
    stored("hash-max-listpack-entries", Kind::Size, "128"),
    alias("hash-max-ziplist-entries", "hash-max-listpack-entries"),
    stored("hash-max-listpack-value", Kind::Size, "64"),
    alias("hash-max-ziplist-value", "hash-max-listpack-value"),
    stored("list-max-listpack-size", INT, "-2"),
    alias("list-max-ziplist-size", "list-max-listpack-size"),
    stored("list-compress-depth", NONNEG, "0"),
    stored("set-max-intset-entries", Kind::Size, "512"),
    stored("zset-max-listpack-entries", Kind::Size, "128"),
    alias("zset-max-ziplist-entries", "zset-max-listpack-entries"),
    stored("zset-max-listpack-value", Kind::Size, "64"),
    alias("zset-max-ziplist-value", "zset-max-listpack-value"),
    stored("stream-node-max-bytes", Kind::Size, "4096"),
    stored("stream-node-max-entries", NONNEG, "100"),
    stored("client-output-buffer-limit", Kind::Text, "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"),
    stored("client-query-buffer-limit", Kind::Size, "1073741824"),
    stored("rdbcompression", YES_NO, "yes"),
    stored("rdbchecksum", YES_NO, "yes"),
    stored("stop-writes-on-bgsave-error", YES_NO, "yes"),
    stored("lfu-log-factor", NONNEG, "10"),
    stored("lfu-decay-time", NONNEG, "1"),
    stored("replica-read-only", YES_NO, "yes"),
    alias("slave-read-only", "replica-read-only"),
    stored("min-replicas-to-write", NONNEG, "0"),
    alias("min-slaves-to-write", "min-replicas-to-write"),
    stored("cluster-node-timeout", NONNEG, "15000"),
    stored("cluster-require-full-coverage", YES_NO, "yes"),
    stored("cluster-allow-reads-when-down", YES_NO, "no"),
    stored("lua-replicate-commands", YES_NO, "yes"),
    stored("jemalloc-bg-thread", YES_NO, "yes"),
    fixed("daemonize", "no"),
    fixed("io-threads", "1"),
    fixed("tcp-backlog", "511"),
    fixed("supervised", "no"),
    fixed("enable-debug-command", "no"),
    fixed("enable-module-command", "no"),
];

fn find(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| p.name == name)
}

/// The value of `p` (an alias reads its target).
fn value(p: &Param, cfg: &EngineConfig) -> String {
    match p.place {
        Place::Engine { get, .. } => get(cfg),
        Place::Stored { default, .. } => cfg
            .redis_params
            .get(p.name)
            .cloned()
            .unwrap_or_else(|| default.to_string()),
        Place::Alias(of) => find(of).map(|t| value(t, cfg)).unwrap_or_default(),
    }
}

/// Check `v` against `kind`, Redis' way; the value to store (bools and enums lower case,
/// sizes as plain numbers of bytes).
fn validate(kind: Kind, v: &str) -> Result<String> {
    match kind {
        Kind::Text => Ok(v.to_string()),
        Kind::Size => size(v).map(|n| n.to_string()),
        Kind::Int(lo, hi) => {
            let n: i64 = v
                .parse()
                .map_err(|_| Error::bad_input("argument couldn't be parsed into an integer"))?;
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

/// Apply `v` to `p` in `cfg` (validated).
fn apply(p: &Param, cfg: &mut EngineConfig, v: &str) -> Result<()> {
    let failed = |why: &str| {
        Error::bad_input(format!(
            "CONFIG SET failed (possibly related to argument '{}') - {why}",
            p.name
        ))
    };
    match p.place {
        Place::Alias(of) => match find(of) {
            Some(t) => apply(t, cfg, v).map_err(|e| {
                Error::bad_input(
                    e.message()
                        .replace(&format!("'{of}'"), &format!("'{}'", p.name)),
                )
            }),
            None => Err(failed("unknown alias")),
        },
        Place::Engine { set: None, .. } => Err(failed("can't set protected config")),
        Place::Stored { mutable: false, .. } => Err(failed("can't set immutable config")),
        Place::Engine { set: Some(set), .. } => {
            validate(p.kind, v).map_err(|e| failed(e.message()))?;
            set(cfg, v).map_err(|e| failed(e.message()))
        }
        Place::Stored { .. } => {
            let v = validate(p.kind, v).map_err(|e| failed(e.message()))?;
            cfg.redis_params.insert(p.name, v);
            Ok(())
        }
    }
}

pub(super) fn config(engine: &Engine, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 0)?;
    let sub = args[1].to_ascii_uppercase();
    match sub.as_slice() {
        b"GET" => {
            arity(args, 3, 0)?;
            let cfg = engine.config();
            let out = PARAMS
                .iter()
                .filter(|p| {
                    args[2..]
                        .iter()
                        .any(|pat| glob_match(pat, p.name.as_bytes(), true))
                })
                .map(|p| {
                    (
                        Frame::bulk_static(p.name),
                        Frame::Bulk(Bytes::from(value(p, &cfg))),
                    )
                })
                .collect();
            Ok(Frame::Map(out))
        }
        b"SET" => {
            if args.len() < 4 || args.len() % 2 != 0 {
                return Err(Error::arity(&args[0]));
            }
            // Apply every pair to a copy first, so a bad pair changes nothing.
            let mut cfg = engine.config();
            let mut seen = Vec::new();
            for pair in args[2..].chunks_exact(2) {
                let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
                let Some(p) = find(&name) else {
                    return Err(Error::bad_input(format!(
                        "Unknown option or number of arguments for CONFIG SET - '{name}'"
                    )));
                };
                if seen.contains(&p.name) {
                    return Err(Error::bad_input(format!(
                        "CONFIG SET failed (possibly related to argument '{name}') - duplicate parameter"
                    )));
                }
                seen.push(p.name);
                apply(p, &mut cfg, &String::from_utf8_lossy(&pair[1]))?;
            }
            engine.update_config(|c| *c = cfg);
            Ok(Frame::ok())
        }
        b"RESETSTAT" => {
            arity(args, 2, 2)?;
            let st = &engine.stats;
            st.commands_processed.store(0, Ordering::Relaxed);
            st.connections_received.store(0, Ordering::Relaxed);
            st.rejected_connections.store(0, Ordering::Relaxed);
            Ok(Frame::ok())
        }
        b"REWRITE" => Err(Error::bad_input(
            "The server is running without a config file",
        )),
        b"HELP" => Ok(Frame::Array(
            [
                "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
                "REWRITE",
                "    Rewrite the configuration file.",
                "HELP",
                "    Print this help.",
            ]
            .iter()
            .map(|l| Frame::simple(l))
            .collect(),
        )),
        _ => Err(Error::bad_input(format!(
            "unknown subcommand '{}'. Try CONFIG HELP.",
            String::from_utf8_lossy(&args[1])
        ))),
    }
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
    fn names_are_unique_and_aliases_point_at_parameters() {
        let mut seen = std::collections::HashSet::new();
        for p in PARAMS {
            assert!(seen.insert(p.name), "{} twice", p.name);
            if let Place::Alias(of) = p.place {
                assert!(matches!(
                    find(of).map(|t| t.place),
                    Some(Place::Stored { .. })
                ));
            }
        }
    }
}
