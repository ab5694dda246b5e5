//! Commands: parsing of arguments and execution against the engine, one module per family.
//!
//! Every command returns a `Result<Frame>`; an `Err` becomes the RESP error reply with the
//! error's exact text. Nothing here panics on input.

mod admin;
mod cluster;
mod config;
mod connection;
mod dag;
mod keys;
mod model;
mod routing;
mod script;
pub mod table;
mod tensor;
mod wait;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use crate::engine::{Engine, Session};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::resp::Frame;

pub use dag::{decode_infer, encode_infer};
pub use model::{encode_modelexecute, encode_modelstore, modelstore_request, ModelOptions};
pub use tensor::{decode_tensorget, encode_tensorset, parse_tensorset, tensor_reply, TensorFormat};
pub use wait::encode_wait;

/// Longest command name we look up; longer names are unknown by definition.
const MAX_NAME: usize = 32;

/// A command's reply: ready now, or computed by the inference threads.
pub enum Reply {
    /// The reply frame.
    Ready(Frame),
    /// A future that yields the reply frame (await it on any tokio runtime).
    Pending(Pin<Box<dyn Future<Output = Frame> + Send>>),
}

impl From<Frame> for Reply {
    fn from(f: Frame) -> Self {
        Reply::Ready(f)
    }
}

impl Reply {
    /// The reply frame, awaiting it if pending.
    pub async fn resolve(self) -> Frame {
        match self {
            Reply::Ready(f) => f,
            Reply::Pending(fut) => fut.await,
        }
    }

    /// The reply frame, blocking this thread until it is ready. Only for replies computed
    /// on other threads (the inference pool), which need nothing from this one.
    fn wait(self) -> Frame {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let mut fut = match self {
            Reply::Ready(f) => return f,
            Reply::Pending(fut) => fut,
        };
        let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = std::task::Context::from_waker(&waker);
        loop {
            if let std::task::Poll::Ready(f) = fut.as_mut().poll(&mut cx) {
                return f;
            }
            std::thread::park();
        }
    }
}

/// Execute one command (its name first) against `engine` for the client whose
/// connection state is `session`. The reply is ready at once for data commands; model
/// execution and DAGs reply with a future that completes when the inference threads are
/// done. Never panics on input; every failure is an error frame.
pub fn execute(engine: &Arc<Engine>, session: &mut Session, args: Vec<Bytes>) -> Reply {
    engine.count_command();
    match dispatch(engine, session, &args) {
        Ok(r) => r,
        Err(e) => Reply::Ready(Frame::error(&e)),
    }
}

fn dispatch(engine: &Arc<Engine>, session: &mut Session, args: &[Bytes]) -> Result<Reply> {
    let Some(raw) = args.first() else {
        return Err(Error::bad_input("empty command"));
    };
    if raw.len() > MAX_NAME {
        return Err(unknown_command(args));
    }
    let mut buf = [0u8; MAX_NAME];
    for (d, s) in buf.iter_mut().zip(raw.iter()) {
        *d = s.to_ascii_uppercase();
    }
    let name = &buf[..raw.len()];
    session.client.touch(name);
    if !session.authenticated && !matches!(name, b"AUTH" | b"QUIT" | b"HELLO") {
        return Err(Error::new(
            ErrorCode::Auth,
            "NOAUTH Authentication required.",
        ));
    }
    // The table says what runs each command, with which lock, and its arity (RedisAI's
    // commands, arity -1, check their own arguments with RedisAI's texts).
    let spec = table::lookup(name);
    if let Some(Err(e)) = spec.map(|s| s.check_arity(args)) {
        // As in Redis, a wrong argument count inside MULTI makes EXEC abort.
        if session.multi.is_some() {
            session.multi_failed = true;
        }
        return Err(e);
    }
    // In cluster mode a keyed command runs on the node that owns its keys' slot; the
    // others answer MOVED (CROSSSLOT for keys of several slots), as Redis Cluster does.
    if let (Some(cluster), Some(spec)) = (engine.cluster(), spec) {
        let asking = std::mem::take(&mut session.asking);
        let routed = routing::route(engine, cluster, spec, args, asking).and_then(|slot| {
            // A transaction's commands must all hash to one slot.
            match (session.multi.is_some(), slot, session.multi_slot) {
                (true, Some(s), Some(t)) if s != t => Err(table::crossslot()),
                (true, Some(s), _) => {
                    session.multi_slot = Some(s);
                    Ok(())
                }
                _ => Ok(()),
            }
        });
        if let Err(e) = routed {
            if session.multi.is_some() && !matches!(name, b"MULTI" | b"EXEC" | b"DISCARD") {
                session.multi_failed = true;
            }
            return Err(e);
        }
    }
    if !matches!(name, b"MULTI" | b"EXEC" | b"DISCARD") {
        if let Some(queued) = session.multi.as_mut() {
            // Inside MULTI: queue, as Redis does. RedisAI's commands are queued too; those
            // that would block (model runs, DAGs, waits) answer RedisAI's error at EXEC.
            if name == b"WATCH" {
                return Err(Error::bad_input("WATCH inside MULTI is not allowed"));
            }
            // As in Redis, an unknown command is refused now (a wrong argument count was,
            // above) and makes EXEC abort.
            if spec.is_none() {
                session.multi_failed = true;
                return Err(unknown_command(args));
            }
            queued.push(args.to_vec());
            session.client.update(|m| m.multi = Some(queued.len()));
            return Ok(Reply::Ready(Frame::simple("QUEUED")));
        }
    }
    let Some(spec) = spec else {
        return Err(not_served(args));
    };
    let lock = engine.transaction_lock();
    let _shared = (spec.lock == table::Lock::Shared).then(|| lock.read());
    let _exclusive = (spec.lock == table::Lock::Exclusive).then(|| lock.write());
    (spec.run)(engine, session, args)
}

/// The error for a command the table does not have: RedisAI's TorchScript commands say
/// why, anything else is Redis' unknown command.
fn not_served(args: &[Bytes]) -> Error {
    if model::is_torchscript(&args[0]) {
        model::torchscript_unsupported()
    } else {
        unknown_command(args)
    }
}

fn multi(session: &mut Session, args: &[Bytes]) -> Result<Frame> {
    arity(args, 1, 1)?;
    if session.multi.is_some() {
        return Err(Error::bad_input("MULTI calls can not be nested"));
    }
    session.multi = Some(Vec::new());
    session.multi_failed = false;
    session.multi_slot = None;
    session.client.update(|m| m.multi = Some(0));
    Ok(Frame::ok())
}

fn discard(session: &mut Session, args: &[Bytes]) -> Result<Frame> {
    arity(args, 1, 1)?;
    if session.multi.take().is_none() {
        return Err(Error::bad_input("DISCARD without MULTI"));
    }
    session.client.update(|m| m.multi = None);
    Ok(Frame::ok())
}

fn exec(engine: &Arc<Engine>, session: &mut Session, args: &[Bytes]) -> Result<Frame> {
    arity(args, 1, 1)?;
    let Some(queued) = session.multi.take() else {
        return Err(Error::bad_input("EXEC without MULTI"));
    };
    session.client.update(|m| m.multi = None);
    if std::mem::take(&mut session.multi_failed) {
        return Err(Error::new(
            ErrorCode::BadInput,
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    let _exclusive = engine.transaction_lock().write();
    let mut replies = Vec::with_capacity(queued.len());
    for args in queued {
        let reply = match table::lookup(&args[0]) {
            Some(spec) => run_atomically(engine, session, spec, &args),
            None => Err(not_served(&args)),
        };
        replies.push(reply.unwrap_or_else(|e| Frame::error(&e)));
    }
    Ok(Frame::Array(replies))
}

/// A command called by a Lua script (the caller holding the transaction lock
/// exclusively), checked first as Redis checks a script's calls, with its texts.
fn run_from_script(
    engine: &Arc<Engine>,
    session: &mut Session,
    args: &[Bytes],
    read_only: bool,
) -> Result<Frame> {
    let refuse = |text: &str| Err(Error::new(ErrorCode::BadInput, text));
    let Some(spec) = table::lookup(&args[0]) else {
        return refuse("ERR Unknown Redis command called from script");
    };
    if spec.flags.contains(&"noscript") {
        return refuse("ERR This Redis command is not allowed from script");
    }
    if spec.check_arity(args).is_err() {
        return refuse("ERR Wrong number of args calling Redis command from script");
    }
    if read_only && spec.flags.contains(&"write") {
        return refuse("ERR Write commands are not allowed from read-only scripts.");
    }
    if let Some(cluster) = engine.cluster() {
        match routing::route(engine, cluster, spec, args, false) {
            Ok(_) => {}
            Err(e) if e.text().starts_with("CROSSSLOT") => return Err(e),
            Err(_) => {
                return refuse("ERR Script attempted to access a non local key in a cluster node")
            }
        }
    }
    run_atomically(engine, session, spec, args)
}

/// One command of a transaction or a script, the caller holding the transaction lock
/// exclusively.
fn run_atomically(
    engine: &Arc<Engine>,
    session: &mut Session,
    spec: &table::Spec,
    args: &[Bytes],
) -> Result<Frame> {
    if spec.no_multi {
        return Err(Error::bad_input(
            "Cannot run RedisAI command within a transaction or a LUA script",
        ));
    }
    // Storing a model builds its session on an inference thread; a transaction runs as
    // one step, so its EXEC waits for it, as RedisAI's MODELSTORE did.
    (spec.run)(engine, session, args).map(Reply::wait)
}

/// Redis' unknown-command error, quoting the command and the start of its arguments.
fn unknown_command(args: &[Bytes]) -> Error {
    let name = args.first().map(|a| lossy(a, 128)).unwrap_or_default();
    let mut list = String::new();
    for a in args.iter().skip(1) {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        list.push_str(&format!("'{}' ", lossy(a, room)));
    }
    Error::err(
        ErrorCode::Unsupported,
        format!("unknown command '{name}', with args beginning with: {list}"),
    )
}

/// At most `max` bytes of `b` as text.
fn lossy(b: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&b[..b.len().min(max)]).into_owned()
}

/// Check `min <= args.len() <= max` (`max == 0`: no upper bound).
fn arity(args: &[Bytes], min: usize, max: usize) -> Result<()> {
    if args.len() < min || (max != 0 && args.len() > max) {
        return Err(Error::arity(args.first().map_or(&b""[..], |a| a)));
    }
    Ok(())
}

/// Parse a decimal integer argument.
fn int_arg(b: &[u8]) -> Result<i64> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(Error::not_integer)
}

/// Glob-style matching as Redis' `KEYS` / `CONFIG GET` use it: `*`, `?`, `[...]`
/// (with `^` negation and ranges) and `\` escapes.
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut i) = (0usize, 0usize);
    // Backtracking point for the last `*`: (pattern index after it, string index).
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        let mut matched = false;
        let mut next_p = p;
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p + 1, i));
                    p += 1;
                    continue;
                }
                b'?' => {
                    matched = true;
                    next_p = p + 1;
                }
                b'[' => {
                    if let Some((ok, end)) = class_match(pattern, p, s[i], nocase) {
                        matched = ok;
                        next_p = end;
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    matched = eq(pattern[p + 1], s[i]);
                    next_p = p + 2;
                }
                c => {
                    matched = eq(c, s[i]);
                    next_p = p + 1;
                }
            }
        }
        if matched {
            p = next_p;
            i += 1;
        } else if let Some((sp, si)) = star {
            p = sp;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Match one `[...]` class starting at `pattern[p] == '['`: whether `c` matches, and the
/// index after the class. `None` for an unterminated class (matches nothing).
fn class_match(pattern: &[u8], p: usize, c: u8, nocase: bool) -> Option<(bool, usize)> {
    let norm = |x: u8| if nocase { x.to_ascii_lowercase() } else { x };
    let c = norm(c);
    let mut j = p + 1;
    let negate = pattern.get(j) == Some(&b'^');
    if negate {
        j += 1;
    }
    let mut hit = false;
    while j < pattern.len() && pattern[j] != b']' {
        if pattern[j] == b'\\' && j + 1 < pattern.len() {
            hit |= norm(pattern[j + 1]) == c;
            j += 2;
        } else if j + 2 < pattern.len() && pattern[j + 1] == b'-' && pattern[j + 2] != b']' {
            let (mut lo, mut hi) = (norm(pattern[j]), norm(pattern[j + 2]));
            if lo > hi {
                std::mem::swap(&mut lo, &mut hi);
            }
            hit |= lo <= c && c <= hi;
            j += 3;
        } else {
            hit |= norm(pattern[j]) == c;
            j += 1;
        }
    }
    if j >= pattern.len() {
        return None;
    }
    Some((hit != negate, j + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_redis() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "anything", true),
            ("h?llo", "hello", true),
            ("h*llo", "heeeello", true),
            ("h[ae]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("sim0.*", "sim0.{ds}.meta", true),
            ("sim0.*", "sim1.x", false),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("*.meta", "x.meta.y", false),
            ("", "", true),
            ("[", "[", false),
        ];
        for &(p, s, want) in cases {
            assert_eq!(
                glob_match(p.as_bytes(), s.as_bytes(), false),
                want,
                "{p} {s}"
            );
        }
        assert!(glob_match(b"MAXMEM*", b"maxmemory", true));
    }

    #[test]
    fn unknown_command_text_matches_redis() {
        let args: Vec<Bytes> = ["FOO", "a", "b"].iter().map(|s| Bytes::from(*s)).collect();
        assert_eq!(
            unknown_command(&args).text(),
            "ERR unknown command 'FOO', with args beginning with: 'a' 'b' "
        );
    }
}
