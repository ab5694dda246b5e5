//! The command table: one entry per command insitu serves, with what Redis' own table
//! (src/commands/*.json) records — arity, flags, key positions, group, summary — and, for
//! RedisAI's commands, what RedisAI registered (module commands: arity -1, its flags and
//! key positions). `COMMAND` (COUNT, LIST, INFO, DOCS, GETKEYS) answers from it, and the
//! transaction rules read its `no_multi` facts, so clients that introspect (redis-py's
//! cluster client, redis-cli's hints) see what the server does.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::dag::Kind as Dag;
use super::{
    admin, arity, cluster, config, connection, dag, keys, model, script, tensor, wait, Reply,
};
use crate::engine::{Engine, Session};
use crate::error::{Error, Result};
use crate::protocol::resp::Frame;

/// Runs a command: the engine, the client's connection state, the arguments (the name
/// first). Its reply is ready, or pending while the inference threads work.
pub type Handler = fn(&Arc<Engine>, &mut Session, &[Bytes]) -> Result<Reply>;

/// Which transaction lock the dispatcher holds while a command runs (`EXEC` holds it
/// exclusively, so a transaction's commands run with no data command in between).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lock {
    /// None: commands that do not touch the keyspace in steps a transaction must not
    /// see, or that manage transactions themselves.
    None,
    /// Shared: data commands.
    Shared,
    /// Exclusive: scripts, which run atomically as a transaction does.
    Exclusive,
}

/// Where a command's keys are.
#[derive(Clone, Copy)]
pub enum Keys {
    /// No keys.
    None,
    /// Arguments `first..=last` (negative `last`: counted from the end), every `step`.
    Range(i64, i64, i64),
    /// A count at this argument, that many keys right after it (Redis' `keynum` key
    /// specification, movable keys): `EVAL script numkeys key...`.
    KeyNum(usize),
    /// Found by reading the arguments (Redis' `movablekeys`): RedisAI's run commands.
    Movable(fn(&[Bytes]) -> Vec<usize>),
}

/// One command.
pub struct Spec {
    /// Lower-case name, as `COMMAND` reports it.
    pub name: &'static str,
    /// Redis' arity: `n` exactly n arguments (the name included), `-n` at least n.
    pub arity: i64,
    /// Redis' command flags (`write`, `readonly`, `denyoom`, `module`, `fast`...).
    pub flags: &'static [&'static str],
    /// Key positions.
    pub keys: Keys,
    /// Redis' command group (`string`, `connection`, `module`...).
    pub group: &'static str,
    /// One line saying what it does.
    pub summary: &'static str,
    /// Whether it is refused inside MULTI/EXEC with RedisAI's error (it would block).
    pub no_multi: bool,
    /// A container's subcommands (`CONFIG GET`...) with their arities; empty for a
    /// plain command.
    pub subcommands: &'static [Sub],
    /// Whether a client may send it again when its reply was lost (it may have run).
    pub retry: Retry,
    /// How long a client waits for its reply.
    pub reply_wait: ReplyWait,
    /// What runs it.
    pub run: Handler,
    /// The transaction lock held while it runs.
    pub lock: Lock,
}

/// Whether a command may be sent again after a lost reply.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Retry {
    /// Running it twice leaves what running it once does.
    Safe,
    /// Never: running it twice differs (`RENAME`, the transaction commands).
    Never,
    /// Only after a `DEL` of its key earlier in the same batch (a list push).
    AfterDel,
}

/// How long a client waits for a command's reply.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReplyWait {
    /// The client's per-attempt limit.
    Limited,
    /// As long as it takes: it runs models, whose time the client cannot know.
    Unlimited,
    /// The limit plus the milliseconds given by the argument at this position.
    PlusMillisAt(usize),
}

const fn spec(
    name: &'static str,
    arity: i64,
    flags: &'static [&'static str],
    keys: Keys,
    group: &'static str,
    summary: &'static str,
) -> Spec {
    Spec {
        name,
        arity,
        flags,
        keys,
        group,
        summary,
        no_multi: false,
        subcommands: &[],
        retry: Retry::Safe,
        reply_wait: ReplyWait::Limited,
        run: |_, _, a| Err(super::unknown_command(a)),
        lock: Lock::Shared,
    }
}

impl Spec {
    /// This entry, run by `h`.
    const fn run(self, h: Handler) -> Spec {
        Spec { run: h, ..self }
    }

    /// This entry, run by `h` without the transaction lock.
    const fn run_unlocked(self, h: Handler) -> Spec {
        Spec {
            run: h,
            lock: Lock::None,
            ..self
        }
    }

    /// This entry, run by `h` holding the transaction lock exclusively.
    const fn run_exclusive(self, h: Handler) -> Spec {
        Spec {
            run: h,
            lock: Lock::Exclusive,
            ..self
        }
    }
}

fn ready(r: Result<Frame>) -> Result<Reply> {
    r.map(Reply::Ready)
}

/// RedisAI's commands that run models through its queues: refused inside a
/// transaction, their replies awaited as long as the models take.
const fn runs_models(s: Spec) -> Spec {
    Spec {
        no_multi: true,
        reply_wait: ReplyWait::Unlimited,
        ..s
    }
}

/// `INSITU.WAIT timeout_ms ...`: refused inside a transaction, its reply awaited for its
/// own timeout on top of the client's limit.
const fn waits(s: Spec) -> Spec {
    Spec {
        no_multi: true,
        reply_wait: ReplyWait::PlusMillisAt(1),
        ..s
    }
}

/// A container of the subcommands `subs`.
const fn container(subs: &'static [Sub], s: Spec) -> Spec {
    Spec {
        subcommands: subs,
        ..s
    }
}

/// A list push: sent again only after a `DEL` of its list in the same batch.
const fn retried_after_del(s: Spec) -> Spec {
    Spec {
        retry: Retry::AfterDel,
        ..s
    }
}

/// Not sent again after a lost reply.
const fn never_retried(s: Spec) -> Spec {
    Spec {
        retry: Retry::Never,
        ..s
    }
}

const ONE: Keys = Keys::Range(1, 1, 1);
const ALL: Keys = Keys::Range(1, -1, 1);
const W: &[&str] = &["write", "denyoom", "module"];
const R: &[&str] = &["readonly", "module"];
const RUN: &[&str] = &["write", "denyoom", "module", "movablekeys"];
const RUN_RO: &[&str] = &["readonly", "module", "movablekeys"];
const CONN: &[&str] = &[
    "noscript",
    "loading",
    "stale",
    "fast",
    "no_auth",
    "allow_busy",
];

/// Every command, in no particular order.
#[rustfmt::skip]
pub static COMMANDS: &[Spec] = &[
    spec("ping", -1, &["fast", "stale", "loading"], Keys::None, "connection", "Returns the server's liveliness response.").run(|_, _, a| ready(connection::ping(a))),
    spec("echo", 2, &["fast", "stale", "loading"], Keys::None, "connection", "Returns the given string.").run(|_, _, a| ready(connection::echo(a))),
    spec("hello", -1, CONN, Keys::None, "connection", "Handshakes with the server: protocol version, authentication, client name.").run(|e, s, a| ready(connection::hello(e, s, a))),
    spec("auth", -2, CONN, Keys::None, "connection", "Authenticates the connection.").run(|e, s, a| ready(connection::auth(e, s, a))),
    never_retried(spec("quit", -1, CONN, Keys::None, "connection", "Closes the connection.")).run(|_, s, _| { s.quit = true; ready(Ok(Frame::ok())) }),
    spec("select", 2, &["loading", "stale", "fast"], Keys::None, "connection", "Changes the selected database (only 0 exists).").run(|_, _, a| ready(connection::select(a))),
    container(CLIENT_SUBS, spec("client", -2, &["noscript", "loading", "stale"], Keys::None, "connection", "A container for client connection commands.")).run(|e, s, a| ready(connection::client(e, s, a))),
    spec("info", -1, &["loading", "stale"], Keys::None, "server", "Returns information and statistics about the server.").run(|e, _, a| ready(admin::info(e, a))),
    container(CONFIG_SUBS, spec("config", -2, &["admin", "noscript", "loading", "stale"], Keys::None, "server", "A container for server configuration commands.")).run(|e, _, a| ready(config::config(e, a))),
    container(COMMAND_SUBS, spec("command", -1, &["loading", "stale"], Keys::None, "server", "Returns detailed information about all commands.")).run(|_, _, a| ready(command(a))),
    spec("save", 1, &["admin", "noscript", "no_async_loading", "no_multi"], Keys::None, "server", "Synchronously saves the database to disk.").run(|e, _, a| ready(admin::save(e, a))),
    spec("bgsave", -1, &["admin", "noscript", "no_async_loading"], Keys::None, "server", "Asynchronously saves the database to disk.").run(|e, _, a| ready(admin::bgsave(e, a))),
    spec("bgrewriteaof", 1, &["admin", "noscript", "no_async_loading"], Keys::None, "server", "Asynchronously rewrites the append-only file.").run(|e, _, a| ready(admin::bgrewriteaof(e, a))),
    never_retried(spec("shutdown", -1, &["admin", "noscript", "loading", "stale", "no_multi", "allow_busy"], Keys::None, "server", "Synchronously saves the database(s) to disk and shuts down the Redis server.")).run(|e, s, a| ready(admin::shutdown(e, s, a))),
    spec("lastsave", 1, &["loading", "stale", "fast"], Keys::None, "server", "Returns the Unix timestamp of the last successful save.").run(|e, _, a| ready(admin::lastsave(e, a))),
    spec("dbsize", 1, &["readonly", "fast"], Keys::None, "server", "Returns the number of keys.").run(|e, _, a| ready(keys::dbsize(e.store(), a))),
    spec("flushdb", -1, &["write"], Keys::None, "server", "Removes all keys.").run(|e, _, a| ready(keys::flush(e.store(), a))),
    spec("flushall", -1, &["write"], Keys::None, "server", "Removes all keys.").run(|e, _, a| ready(keys::flush(e.store(), a))),
    container(CLUSTER_SUBS, spec("cluster", -2, &[], Keys::None, "cluster", "A container for Redis Cluster commands.")).run(|e, _, a| ready(cluster::cluster(e, a))),
    spec("readonly", 1, &["fast", "loading", "stale"], Keys::None, "cluster", "Enables read-only queries for a connection to a Redis Cluster replica node.").run(|e, _, _| ready(cluster::connection_mode(e))),
    spec("readwrite", 1, &["fast", "loading", "stale"], Keys::None, "cluster", "Enables read-write queries for a connection to a Redis Cluster replica node.").run(|e, _, _| ready(cluster::connection_mode(e))),
    spec("asking", 1, &["fast"], Keys::None, "cluster", "Signals that a cluster client is following an -ASK redirect.").run(|e, s, _| ready(cluster::asking(e, s))),
    never_retried(spec("insitu.gossip", 2, &["admin", "noscript", "no_multi", "loading", "stale"], Keys::None, "insitu", "Merges another cluster node's view into this node's and returns this node's.")).run(|e, _, a| ready(cluster::gossip(e, a))),
    never_retried(spec("multi", 1, &["noscript", "loading", "stale", "fast", "allow_busy"], Keys::None, "transactions", "Starts a transaction.")).run_unlocked(|_, s, a| ready(super::multi(s, a))),
    never_retried(spec("exec", 1, &["noscript", "loading", "stale", "skip_slowlog"], Keys::None, "transactions", "Executes all commands in a transaction.")).run_unlocked(|e, s, a| ready(super::exec(e, s, a))),
    never_retried(spec("discard", 1, &["noscript", "loading", "stale", "fast", "allow_busy"], Keys::None, "transactions", "Discards a transaction.")).run_unlocked(|_, s, a| ready(super::discard(s, a))),
    spec("exists", -2, &["readonly", "fast"], ALL, "generic", "Determines whether one or more keys exist.").run(|e, _, a| ready(keys::exists(e.store(), a))),
    spec("del", -2, &["write"], ALL, "generic", "Deletes one or more keys.").run(|e, _, a| ready(keys::del(e.store(), a))),
    spec("unlink", -2, &["write", "fast"], ALL, "generic", "Deletes one or more keys.").run(|e, _, a| ready(keys::del(e.store(), a))),
    spec("type", 2, &["readonly", "fast"], ONE, "generic", "Determines the type of value stored at a key.").run(|e, _, a| ready(keys::key_type(e.store(), a))),
    never_retried(spec("rename", 3, &["write"], Keys::Range(1, 2, 1), "generic", "Renames a key and overwrites the destination.")).run(|e, _, a| ready(keys::rename(e.store(), a))),
    spec("keys", 2, &["readonly"], Keys::None, "generic", "Returns all key names that match a pattern.").run(|e, _, a| ready(keys::keys(e.store(), a))),
    spec("scan", -2, &["readonly"], Keys::None, "generic", "Iterates over the key names in the database.").run(|e, _, a| ready(keys::scan(e.store(), a))),
    spec("set", -3, &["write", "denyoom"], ONE, "string", "Sets the string value of a key.").run(|e, _, a| ready(keys::set(e.store(), a))),
    spec("get", 2, &["readonly", "fast"], ONE, "string", "Returns the string value of a key.").run(|e, _, a| ready(keys::get(e.store(), a))),
    spec("hset", -4, &["write", "denyoom", "fast"], ONE, "hash", "Creates or modifies the value of a field in a hash.").run(|e, _, a| ready(keys::hset(e.store(), a, false))),
    spec("hmset", -4, &["write", "denyoom", "fast"], ONE, "hash", "Sets the values of multiple fields.").run(|e, _, a| ready(keys::hset(e.store(), a, true))),
    spec("hget", 3, &["readonly", "fast"], ONE, "hash", "Returns the value of a field in a hash.").run(|e, _, a| ready(keys::hget(e.store(), a))),
    spec("hgetall", 2, &["readonly"], ONE, "hash", "Returns all fields and values in a hash.").run(|e, _, a| ready(keys::hgetall(e.store(), a))),
    spec("hexists", 3, &["readonly", "fast"], ONE, "hash", "Determines whether a field exists in a hash.").run(|e, _, a| ready(keys::hexists(e.store(), a))),
    spec("hdel", -3, &["write", "fast"], ONE, "hash", "Deletes one or more fields and their values from a hash.").run(|e, _, a| ready(keys::hdel(e.store(), a))),
    spec("hlen", 2, &["readonly", "fast"], ONE, "hash", "Returns the number of fields in a hash.").run(|e, _, a| ready(keys::hlen(e.store(), a))),
    spec("hkeys", 2, &["readonly"], ONE, "hash", "Returns all fields in a hash.").run(|e, _, a| ready(keys::hkeys(e.store(), a))),
    spec("hvals", 2, &["readonly"], ONE, "hash", "Returns all values in a hash.").run(|e, _, a| ready(keys::hvals(e.store(), a))),
    retried_after_del(spec("rpush", -3, &["write", "denyoom", "fast"], ONE, "list", "Appends one or more elements to a list.")).run(|e, _, a| ready(keys::push(e.store(), a, false))),
    retried_after_del(spec("lpush", -3, &["write", "denyoom", "fast"], ONE, "list", "Prepends one or more elements to a list.")).run(|e, _, a| ready(keys::push(e.store(), a, true))),
    spec("lrange", 4, &["readonly"], ONE, "list", "Returns a range of elements from a list.").run(|e, _, a| ready(keys::lrange(e, a))),
    spec("llen", 2, &["readonly", "fast"], ONE, "list", "Returns the length of a list.").run(|e, _, a| ready(keys::llen(e, a))),
    spec("lindex", 3, &["readonly"], ONE, "list", "Returns an element from a list by its index.").run(|e, _, a| ready(keys::lindex(e.store(), a))),
    spec("ai.tensorset", -1, W, ONE, "module", "Stores a tensor.").run(|e, s, a| ready(tensor::tensorset(e, s, a))),
    spec("ai.tensorget", -1, R, ONE, "module", "Returns a tensor's metadata, blob or values.").run(|e, s, a| ready(tensor::tensorget(e, s, a))),
    spec("ai.modelstore", -1, W, ONE, "module", "Stores an ONNX model.").run_unlocked(|e, _, a| model::modelstore(e, a)),
    spec("ai.modelset", -1, W, ONE, "module", "Stores an ONNX model (deprecated: AI.MODELSTORE).").run_unlocked(|e, _, a| model::modelset(e, a).and_then(|a| model::modelstore(e, &a))),
    spec("ai.modelget", -1, R, ONE, "module", "Returns a model's metadata and blob.").run_unlocked(|e, _, a| ready(model::modelget(e, a))),
    spec("ai.modeldel", -1, &["write", "module"], ONE, "module", "Deletes a model.").run_unlocked(|e, _, a| ready(model::modeldel(e, a))),
    runs_models(spec("ai.modelexecute", -1, RUN, Keys::Movable(super::model::execute_keys), "module", "Runs a model on stored tensors.")).run_unlocked(|e, s, a| model::modelexecute(e, a, s.inline_inference)),
    runs_models(spec("ai.modelrun", -1, RUN, Keys::Movable(super::model::run_keys), "module", "Runs a model on stored tensors (deprecated: AI.MODELEXECUTE).")).run_unlocked(|e, s, a| model::modelrun(e, a).and_then(|a| model::modelexecute(e, &a, s.inline_inference))),
    spec("ai._modelscan", -1, R, Keys::None, "module", "Lists the stored models and their tags.").run_unlocked(|e, _, a| ready(model::modelscan(e, a))),
    spec("ai.info", -1, R, ONE, "module", "Returns a model's run statistics.").run_unlocked(|e, _, a| ready(model::info(e, a))),
    spec("ai.config", -1, &["write", "module"], Keys::None, "module", "Reads or sets RedisAI's settings.").run_unlocked(|e, _, a| ready(model::config(e, a))),
    runs_models(spec("ai.dagexecute", -1, RUN, Keys::Movable(super::dag::keys), "module", "Runs a DAG of tensor and model operations.")).run_unlocked(|e, s, a| dag::execute(e, a, Dag::Execute, s.inline_inference)),
    runs_models(spec("ai.dagexecute_ro", -1, RUN_RO, Keys::Movable(super::dag::keys), "module", "Runs a read-only DAG of tensor and model operations.")).run_unlocked(|e, s, a| dag::execute(e, a, Dag::ExecuteRo, s.inline_inference)),
    runs_models(spec("ai.dagrun", -1, RUN, Keys::Movable(super::dag::keys), "module", "Runs a DAG (deprecated: AI.DAGEXECUTE).")).run_unlocked(|e, s, a| dag::execute(e, a, Dag::Run, s.inline_inference)),
    runs_models(spec("ai.dagrun_ro", -1, RUN_RO, Keys::Movable(super::dag::keys), "module", "Runs a read-only DAG (deprecated: AI.DAGEXECUTE_RO).")).run_unlocked(|e, s, a| dag::execute(e, a, Dag::RunRo, s.inline_inference)),
    waits(spec("insitu.wait", -4, &["readonly", "blocking"], Keys::Movable(wait_keys), "insitu", "Waits until keys exist or a list reaches a length.")).run_unlocked(|e, _, a| wait::wait(e, a)),
    spec("eval", -3, &["noscript", "stale", "skip_monitor", "may_replicate", "no_mandatory_keys", "movablekeys"], Keys::KeyNum(2), "scripting", "Executes a server-side Lua script.").run_exclusive(|e, s, a| ready(script::eval(e, s, b"EVAL", a))),
    spec("evalsha", -3, &["noscript", "stale", "skip_monitor", "may_replicate", "no_mandatory_keys", "movablekeys"], Keys::KeyNum(2), "scripting", "Executes a server-side Lua script by SHA1 digest.").run_exclusive(|e, s, a| ready(script::eval(e, s, b"EVALSHA", a))),
    spec("eval_ro", -3, &["readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"], Keys::KeyNum(2), "scripting", "Executes a read-only server-side Lua script.").run_exclusive(|e, s, a| ready(script::eval(e, s, b"EVAL_RO", a))),
    spec("evalsha_ro", -3, &["readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"], Keys::KeyNum(2), "scripting", "Executes a read-only server-side Lua script by SHA1 digest.").run_exclusive(|e, s, a| ready(script::eval(e, s, b"EVALSHA_RO", a))),
    container(SCRIPT_SUBS, spec("script", -2, &["noscript"], Keys::None, "scripting", "A container for Lua scripts management commands.")).run(|e, _, a| ready(script::script(e, a))),
    spec("insitu.shm", -1, &["noscript", "fast"], Keys::None, "insitu", "Lends shared-memory blocks and releases holds (Unix sockets).").run(|e, s, a| ready(tensor::shm(e, s, a))),
];

fn wait_keys(args: &[Bytes]) -> Vec<usize> {
    super::wait::keys(args)
}

/// A subcommand of a container command (`CONFIG GET`, `CLIENT SETNAME`...).
pub struct Sub {
    /// The subcommand's lower-case name.
    pub name: &'static str,
    /// Redis' arity, counting the container's name and the subcommand's.
    pub arity: i64,
}

const fn sub(name: &'static str, arity: i64) -> Sub {
    Sub { name, arity }
}

// The subcommands served, with Redis 7's arities: a wrong count is refused before the
// command runs, naming it as Redis does (`'config|get'`).
#[rustfmt::skip]
const CLIENT_SUBS: &[Sub] = &[
    sub("caching", 3), sub("getname", 2), sub("getredir", 2), sub("help", 2), sub("id", 2),
    sub("info", 2), sub("kill", -3), sub("list", -2), sub("no-evict", 3), sub("no-touch", 3),
    sub("pause", -3), sub("reply", 3), sub("setinfo", 4), sub("setname", 3),
    sub("tracking", -3), sub("trackinginfo", 2), sub("unpause", 2),
];
#[rustfmt::skip]
const CONFIG_SUBS: &[Sub] = &[
    sub("get", -3), sub("set", -4), sub("resetstat", 2), sub("rewrite", 2), sub("help", 2),
];
#[rustfmt::skip]
const CLUSTER_SUBS: &[Sub] = &[
    sub("addslots", -3), sub("addslotsrange", -4), sub("bumpepoch", 2),
    sub("count-failure-reports", 3), sub("countkeysinslot", 3), sub("delslots", -3),
    sub("delslotsrange", -4), sub("failover", -2), sub("flushslots", 2), sub("forget", 3),
    sub("getkeysinslot", 4), sub("help", 2), sub("info", 2), sub("keyslot", 3),
    sub("links", 2), sub("meet", -4), sub("myid", 2), sub("myshardid", 2), sub("nodes", 2),
    sub("replicas", 3), sub("replicate", 3), sub("reset", -2), sub("saveconfig", 2),
    sub("set-config-epoch", 3), sub("setslot", -4), sub("shards", 2), sub("slaves", 3),
    sub("slots", 2),
];
#[rustfmt::skip]
const COMMAND_SUBS: &[Sub] = &[
    sub("count", 2), sub("docs", -2), sub("getkeys", -3), sub("help", 2), sub("info", -2),
    sub("list", -2),
];
#[rustfmt::skip]
const SCRIPT_SUBS: &[Sub] = &[
    sub("exists", -3), sub("flush", -2), sub("help", 2), sub("kill", 2), sub("load", 3),
];

fn arity_fits(arity: i64, n: usize) -> bool {
    let n = n as i64;
    if arity >= 0 {
        n == arity
    } else {
        n >= -arity
    }
}

/// Slots of the name index: a power of two over four times the commands, so that a
/// probe rarely meets another name.
const INDEX_SLOTS: usize = 512;

/// FNV-1a of `name` upper-cased: cheap for names of a few bytes, and case-insensitive.
fn name_hash(name: &[u8]) -> usize {
    name.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b.to_ascii_uppercase())).wrapping_mul(0x100_0000_01b3)
    }) as usize
}

/// The entry of `name` (any case). Every command goes through here, so it is an
/// open-addressing index built once: one short hash and, nearly always, one comparison.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    static INDEX: OnceLock<Vec<Option<&'static Spec>>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut slots = vec![None; INDEX_SLOTS];
        for s in COMMANDS {
            let mut i = name_hash(s.name.as_bytes()) % INDEX_SLOTS;
            while slots[i].is_some() {
                i = (i + 1) % INDEX_SLOTS;
            }
            slots[i] = Some(s);
        }
        slots
    });
    let mut i = name_hash(name) % INDEX_SLOTS;
    while let Some(s) = index[i] {
        if s.name.as_bytes().eq_ignore_ascii_case(name) {
            return Some(s);
        }
        i = (i + 1) % INDEX_SLOTS;
    }
    None
}

impl Spec {
    /// Whether `n` arguments (the name included) fit the arity.
    pub fn arity_ok(&self, n: usize) -> bool {
        arity_fits(self.arity, n)
    }

    /// Redis' arity check of `args` (this command's, the name first), and of the
    /// subcommand's for a container: the error names the command as typed, a
    /// subcommand as Redis 7 does (`'config|get'`). Unknown subcommands pass (the
    /// command answers them).
    ///
    /// # Errors
    /// `ERR wrong number of arguments for '...' command`.
    pub fn check_arity(&self, args: &[Bytes]) -> Result<()> {
        if !self.arity_ok(args.len()) {
            return Err(Error::arity(&args[0]));
        }
        let Some(name) = args.get(1).filter(|_| !self.subcommands.is_empty()) else {
            return Ok(());
        };
        let found = self
            .subcommands
            .iter()
            .find(|s| s.name.as_bytes().eq_ignore_ascii_case(name));
        match found {
            Some(s) if !arity_fits(s.arity, args.len()) => Err(Error::bad_input(format!(
                "wrong number of arguments for '{}|{}' command",
                self.name, s.name
            ))),
            _ => Ok(()),
        }
    }

    /// The slot this command's keys hash to, when it names any: `None` for a keyless
    /// command (cluster routing: the server's and the client's).
    ///
    /// # Errors
    /// `CROSSSLOT Keys in request don't hash to the same slot`.
    pub fn slot(&self, args: &[Bytes]) -> Result<Option<u16>> {
        self.slot_skipping(args, |_| false)
    }

    /// [`Spec::slot`], leaving out the keys `skip` says are served wherever they are
    /// (the server: keys holding a model on this node).
    ///
    /// # Errors
    /// `CROSSSLOT Keys in request don't hash to the same slot`.
    pub fn slot_skipping(
        &self,
        args: &[Bytes],
        skip: impl Fn(&[u8]) -> bool,
    ) -> Result<Option<u16>> {
        let mut slot = None;
        for i in self.key_positions(args) {
            if skip(&args[i]) {
                continue;
            }
            let s = crate::engine::cluster::key_slot(&args[i]);
            if *slot.get_or_insert(s) != s {
                return Err(crossslot());
            }
        }
        Ok(slot)
    }

    /// The positions of the keys in `args` (the command name is position 0).
    pub fn key_positions(&self, args: &[Bytes]) -> Vec<usize> {
        match self.keys {
            Keys::None => vec![],
            Keys::Movable(f) => f(args),
            Keys::KeyNum(at) => {
                let n = args
                    .get(at)
                    .and_then(|a| std::str::from_utf8(a).ok())
                    .and_then(|s| s.parse::<usize>().ok())
                    .unwrap_or(0);
                (at + 1..args.len()).take(n).collect()
            }
            Keys::Range(first, last, step) => {
                let n = args.len() as i64;
                let last = if last < 0 { n + last } else { last.min(n - 1) };
                (first..=last)
                    .step_by(step.max(1) as usize)
                    .filter(|&i| i >= 1 && i < n)
                    .map(|i| i as usize)
                    .collect()
            }
        }
    }

    /// `COMMAND INFO`'s entry: name, arity, flags, first key, last key, step, ACL
    /// categories, tips, key specifications, subcommands (Redis 7's ten fields).
    fn info(&self) -> Frame {
        let (first, last, step) = match self.keys {
            Keys::None => (0, 0, 0),
            Keys::Range(f, l, s) => (f, l, s),
            // Module commands registered with getkeys-api report the model key.
            Keys::Movable(_) => (1, 1, 1),
            // Redis reports no fixed range for keynum commands (EVAL: 0 0 0).
            Keys::KeyNum(_) => (0, 0, 0),
        };
        let categories: Vec<Frame> = self
            .flags
            .iter()
            .filter_map(|f| match *f {
                "write" => Some("@write"),
                "readonly" => Some("@read"),
                "fast" => Some("@fast"),
                "admin" => Some("@admin"),
                "blocking" => Some("@blocking"),
                _ => None,
            })
            .chain(self.flags.iter().all(|f| *f != "fast").then_some("@slow"))
            .map(Frame::simple)
            .collect();
        Frame::Array(vec![
            Frame::bulk_static(self.name),
            Frame::Integer(self.arity),
            Frame::Set(self.flags.iter().map(|f| Frame::simple(f)).collect()),
            Frame::Integer(first),
            Frame::Integer(last),
            Frame::Integer(step),
            Frame::Set(categories),
            Frame::Array(vec![]),
            Frame::Array(vec![]),
            Frame::Array(vec![]),
        ])
    }

    /// `COMMAND DOCS`'s entry.
    fn docs(&self) -> Frame {
        Frame::map([
            ("summary", Frame::bulk_static(self.summary)),
            ("since", Frame::bulk_static("1.0.0")),
            ("group", Frame::bulk_static(self.group)),
        ])
    }
}

/// `COMMAND [COUNT | LIST | INFO name... | DOCS name... | GETKEYS cmd args...]`.
pub(super) fn command(args: &[Bytes]) -> Result<Frame> {
    let Some(sub) = args.get(1) else {
        return Ok(Frame::Array(COMMANDS.iter().map(Spec::info).collect()));
    };
    match sub.to_ascii_uppercase().as_slice() {
        b"COUNT" => {
            arity(args, 2, 2)?;
            Ok(Frame::Integer(COMMANDS.len() as i64))
        }
        b"LIST" => Ok(Frame::Array(
            COMMANDS
                .iter()
                .map(|s| Frame::bulk_static(s.name))
                .collect(),
        )),
        b"INFO" => Ok(Frame::Array(if args.len() == 2 {
            COMMANDS.iter().map(Spec::info).collect()
        } else {
            args[2..]
                .iter()
                .map(|n| lookup(n).map_or(Frame::NullArray, Spec::info))
                .collect()
        })),
        b"DOCS" => {
            let pick: Vec<&Spec> = if args.len() == 2 {
                COMMANDS.iter().collect()
            } else {
                args[2..].iter().filter_map(|n| lookup(n)).collect()
            };
            Ok(Frame::Map(
                pick.into_iter()
                    .map(|s| (Frame::bulk_static(s.name), s.docs()))
                    .collect(),
            ))
        }
        b"GETKEYS" => {
            arity(args, 3, 0)?;
            let cmd = &args[2..];
            let Some(spec) = lookup(&cmd[0]) else {
                return Err(Error::bad_input("Invalid command specified"));
            };
            if !spec.arity_ok(cmd.len()) {
                return Err(Error::bad_input(
                    "Invalid number of arguments specified for command",
                ));
            }
            let keys = spec.key_positions(cmd);
            if keys.is_empty() {
                return Err(Error::bad_input("The command has no key arguments"));
            }
            Ok(Frame::Array(
                keys.into_iter()
                    .map(|i| Frame::Bulk(cmd[i].clone()))
                    .collect(),
            ))
        }
        b"HELP" => Ok(Frame::Array(
            [
                "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "(no subcommand)",
                "    Return details about all commands.",
                "COUNT",
                "    Return the total number of commands in this server.",
                "LIST",
                "    Return a list of all commands in this server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple commands.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple commands.",
                "GETKEYS <full-command>",
                "    Return the keys from a full command.",
                "HELP",
                "    Print this help.",
            ]
            .iter()
            .map(|l| Frame::simple(l))
            .collect(),
        )),
        _ => Err(Error::bad_input(format!(
            "unknown subcommand '{}'. Try COMMAND HELP.",
            String::from_utf8_lossy(sub)
        ))),
    }
}

/// Redis' error for keys of several slots in one request.
pub fn crossslot() -> Error {
    Error::new(
        crate::error::ErrorCode::BadInput,
        "CROSSSLOT Keys in request don't hash to the same slot",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<Bytes> {
        s.iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect()
    }

    #[test]
    fn every_name_is_lower_case_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for s in COMMANDS {
            assert_eq!(s.name, s.name.to_ascii_lowercase());
            assert!(seen.insert(s.name), "{} twice", s.name);
        }
    }

    #[test]
    fn key_positions_follow_the_table() {
        let k = |a: &[&str]| lookup(a[0].as_bytes()).unwrap().key_positions(&args(a));
        assert_eq!(k(&["DEL", "a", "b", "c"]), vec![1, 2, 3]);
        assert_eq!(k(&["rename", "a", "b"]), vec![1, 2]);
        assert_eq!(k(&["GET", "a"]), vec![1]);
        assert_eq!(k(&["PING"]), Vec::<usize>::new());
    }

    #[test]
    fn what_a_client_may_do_with_each_command_is_in_the_table() {
        let spec = |n: &str| lookup(n.as_bytes()).unwrap();
        for run in [
            "AI.MODELEXECUTE",
            "AI.MODELRUN",
            "AI.DAGEXECUTE",
            "AI.DAGEXECUTE_RO",
            "AI.DAGRUN",
            "AI.DAGRUN_RO",
        ] {
            assert_eq!(spec(run).reply_wait, ReplyWait::Unlimited, "{run}");
            assert!(spec(run).no_multi, "{run}");
        }
        assert_eq!(spec("insitu.wait").reply_wait, ReplyWait::PlusMillisAt(1));
        for never in ["RENAME", "MULTI", "EXEC", "DISCARD", "QUIT"] {
            assert_eq!(spec(never).retry, Retry::Never, "{never}");
        }
        assert_eq!(spec("RPUSH").retry, Retry::AfterDel);
        assert_eq!(spec("LPUSH").retry, Retry::AfterDel);
        assert_eq!(spec("AI.TENSORSET").retry, Retry::Safe);
        assert_eq!(spec("AI.TENSORSET").reply_wait, ReplyWait::Limited);
    }

    #[test]
    fn subcommands_have_their_own_arity() {
        let config = lookup(b"config").unwrap();
        assert!(config.check_arity(&args(&["CONFIG", "GET", "x"])).is_ok());
        assert_eq!(
            config
                .check_arity(&args(&["CONFIG", "GET"]))
                .unwrap_err()
                .text(),
            "ERR wrong number of arguments for 'config|get' command"
        );
        assert_eq!(
            config.check_arity(&args(&["CONFIG"])).unwrap_err().text(),
            "ERR wrong number of arguments for 'CONFIG' command"
        );
        // Unknown subcommands are the command's to answer.
        assert!(config.check_arity(&args(&["CONFIG", "NOSUCH"])).is_ok());
        // Each container has its subcommands, named once.
        for c in ["client", "config", "cluster", "command", "script"] {
            let subs = lookup(c.as_bytes()).unwrap().subcommands;
            assert!(!subs.is_empty(), "{c}");
            let names: std::collections::HashSet<_> = subs.iter().map(|s| s.name).collect();
            assert_eq!(names.len(), subs.len(), "{c}");
        }
    }
}
