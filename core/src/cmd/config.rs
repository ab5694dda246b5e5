//! `CONFIG GET / SET / RESETSTAT / REWRITE / HELP`.
//!
//! insitu's own settings come from their one table (`crate::engine::settings`): read from and
//! written to the engine's configuration, taking effect at once where they may change
//! while running. The Redis parameters that clients, test suites and tools set or read
//! (`lua-time-limit`, `maxmemory-policy`, `notify-keyspace-events`, the encoding
//! thresholds...) are accepted with Redis 7's validation and defaults, stored and
//! reported; `busy-reply-threshold` (`lua-time-limit`) bounds how long a Lua script runs
//! (see `script.rs`), the others have no effect here (no eviction, no encodings), and
//! saying OK to them keeps programs that set them working. Patterns match as Redis
//! matches them (glob, case-insensitive), and an alias (`lua-time-limit` for
//! `busy-reply-threshold`) reads and writes the same value.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{arity, glob_match};
use crate::engine::settings::{self, Change, Kind, Setting, SETTINGS};
use crate::engine::{Engine, EngineConfig};
use crate::error::{Error, Result};
use crate::protocol::resp::Frame;

/// A Redis parameter that is not one of insitu's settings.
#[derive(Clone, Copy)]
enum Place {
    /// Stored and reported; `mutable: false` for start-time settings Redis refuses to
    /// change (`can't set immutable config`).
    Stored {
        default: &'static str,
        mutable: bool,
    },
    /// Another name for a parameter (`lua-time-limit` -> `busy-reply-threshold`).
    Alias(&'static str),
    /// A fixed value that describes this server, not to be set (`can't set protected
    /// config`).
    Protected(&'static str),
}

struct Param {
    name: &'static str,
    kind: Kind,
    place: Place,
}

/// A name `CONFIG` knows: one of insitu's settings or one of Redis' parameters.
#[derive(Clone, Copy)]
enum Known {
    Setting(&'static Setting),
    Redis(&'static Param),
}

impl Known {
    fn name(self) -> &'static str {
        match self {
            Known::Setting(s) => s.name,
            Known::Redis(p) => p.name,
        }
    }
}

/// Every name, in the order `CONFIG GET *` lists them: insitu's settings, then Redis'.
fn all() -> impl Iterator<Item = Known> {
    SETTINGS
        .iter()
        .map(Known::Setting)
        .chain(PARAMS.iter().map(Known::Redis))
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

const fn protected(name: &'static str, value: &'static str) -> Param {
    Param {
        name,
        kind: Kind::Text,
        place: Place::Protected(value),
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

/// Redis' parameters that are not insitu settings, in the order `CONFIG GET *` lists them
/// (after the settings).
#[rustfmt::skip]
const PARAMS: &[Param] = &[
    protected("save", ""),
    protected("databases", "1"),
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

fn find(name: &str) -> Option<Known> {
    settings::find(name)
        .map(Known::Setting)
        .or_else(|| PARAMS.iter().find(|p| p.name == name).map(Known::Redis))
}

/// The value of the parameter or setting `name` as `CONFIG GET` reports it (empty for
/// an unknown name).
pub(super) fn param(cfg: &EngineConfig, name: &str) -> String {
    find(name).map(|k| value(k, cfg)).unwrap_or_default()
}

/// The value of `k` (an alias reads its target).
fn value(k: Known, cfg: &EngineConfig) -> String {
    match k {
        Known::Setting(s) => (s.get)(cfg),
        Known::Redis(p) => match p.place {
            Place::Stored { default, .. } => cfg
                .redis_params
                .get(p.name)
                .cloned()
                .unwrap_or_else(|| default.to_string()),
            Place::Alias(of) => find(of).map(|t| value(t, cfg)).unwrap_or_default(),
            Place::Protected(v) => v.to_string(),
        },
    }
}

/// Apply `v` to `k` in `cfg` (validated), with Redis' texts.
fn apply(k: Known, cfg: &mut EngineConfig, v: &str) -> Result<()> {
    let failed = |why: &str| {
        Error::bad_input(format!(
            "CONFIG SET failed (possibly related to argument '{}') - {why}",
            k.name()
        ))
    };
    match k {
        Known::Setting(s) if s.change == Change::Start => Err(failed("can't set protected config")),
        Known::Setting(s) => s.apply(cfg, v).map_err(|e| failed(e.message())),
        Known::Redis(p) => match p.place {
            Place::Alias(of) => match find(of) {
                Some(t) => apply(t, cfg, v).map_err(|e| {
                    Error::bad_input(
                        e.message()
                            .replace(&format!("'{of}'"), &format!("'{}'", p.name)),
                    )
                }),
                None => Err(failed("unknown alias")),
            },
            Place::Protected(_) => Err(failed("can't set protected config")),
            Place::Stored { mutable: false, .. } => Err(failed("can't set immutable config")),
            Place::Stored { .. } => {
                let v = p.kind.validate(v).map_err(|e| failed(e.message()))?;
                cfg.redis_params.insert(p.name, v);
                Ok(())
            }
        },
    }
}

pub(super) fn config(engine: &Engine, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 0)?;
    let sub = args[1].to_ascii_uppercase();
    match sub.as_slice() {
        b"GET" => {
            arity(args, 3, 0)?;
            let cfg = engine.config();
            let out = all()
                .filter(|k| {
                    args[2..]
                        .iter()
                        .any(|pat| glob_match(pat, k.name().as_bytes(), true))
                })
                .map(|k| {
                    (
                        Frame::bulk_static(k.name()),
                        Frame::Bulk(Bytes::from(value(k, &cfg))),
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
                if seen.contains(&p.name()) {
                    return Err(Error::bad_input(format!(
                        "CONFIG SET failed (possibly related to argument '{name}') - duplicate parameter"
                    )));
                }
                seen.push(p.name());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_aliases_point_at_parameters() {
        let mut seen = std::collections::HashSet::new();
        for k in all() {
            assert!(seen.insert(k.name()), "{} twice", k.name());
        }
        for p in PARAMS {
            if let Place::Alias(of) = p.place {
                assert!(matches!(
                    find(of),
                    Some(Known::Redis(Param {
                        place: Place::Stored { .. },
                        ..
                    }))
                ));
            }
        }
    }
}
