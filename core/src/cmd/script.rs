//! Lua scripts as Redis 7 runs them: `EVAL`, `EVALSHA`, `EVAL_RO`, `EVALSHA_RO` and
//! `SCRIPT LOAD | EXISTS | FLUSH | KILL | HELP`.
//!
//! A script is Lua 5.1 (what Redis embeds) with `KEYS`, `ARGV` and the `redis` library
//! (`call`, `pcall`, `error_reply`, `status_reply`, `sha1hex`, `log`, `setresp`); globals
//! are read-only and reading an undefined one is an error, as in Redis 7. Replies convert
//! between Lua and RESP by Redis' rules, and errors read as Redis writes them (`... script:
//! <sha>, on @user_script:<line>.`). A script runs atomically: the caller holds the
//! transaction lock, as for `EXEC`. RedisAI's run commands are refused inside with
//! RedisAI's text, and commands Redis refuses in scripts (`noscript`) are refused too.
//!
//! Bounded where Redis is not: a script stops with an error once it has run for
//! `busy-reply-threshold` (`lua-time-limit`) milliseconds, where Redis would answer BUSY
//! to every other client until `SCRIPT KILL`; its Lua heap is capped; the cache of
//! scripts holds at most [`MAX_SCRIPTS`] bodies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::{
    HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value as Lv, Variadic, VmState,
};

use super::arity;
use crate::engine::{Engine, Session};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::resp::{Frame, Protocol};

/// Most script bodies kept for `EVALSHA`. `EVAL` of a new script beyond it still runs
/// (uncached); `SCRIPT LOAD` is refused until `SCRIPT FLUSH`.
pub const MAX_SCRIPTS: usize = 10_000;
/// Lua heap of one script.
const MEMORY_LIMIT: usize = 256 << 20;
/// Deepest nesting of tables in a script's reply.
const MAX_DEPTH: usize = 1000;
/// Chunk name of the library code run before each script (skipped when reporting where
/// an error happened).
const PRELUDE_NAME: &str = "=insitu";

/// The hex SHA1 of `body`, as `EVALSHA` names scripts.
fn sha1_hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

/// `EVAL*`: the caller holds the transaction lock exclusively.
pub(super) fn eval(
    engine: &Arc<Engine>,
    session: &mut Session,
    name: &[u8],
    args: &[Bytes],
) -> Result<Frame> {
    arity(args, 3, usize::MAX)?;
    let by_sha = name.starts_with(b"EVALSHA");
    let read_only = name.ends_with(b"_RO");
    let numkeys: i64 = std::str::from_utf8(&args[2])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(Error::not_integer)?;
    if numkeys < 0 {
        return Err(Error::bad_input("Number of keys can't be negative"));
    }
    let rest = &args[3..];
    if numkeys as u64 > rest.len() as u64 {
        return Err(Error::bad_input(
            "Number of keys can't be greater than number of args",
        ));
    }
    let (keys, argv) = rest.split_at(numkeys as usize);
    let (sha, body) = if by_sha {
        let sha = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        let body = engine.scripts().lock().get(&sha).cloned();
        match body {
            Some(b) => (sha, b),
            None => {
                return Err(Error::new(
                    ErrorCode::NotFound,
                    "NOSCRIPT No matching script. Please use EVAL.",
                ))
            }
        }
    } else {
        let body = args[1].clone();
        let sha = sha1_hex(&body);
        let mut cache = engine.scripts().lock();
        if cache.len() < MAX_SCRIPTS {
            cache.entry(sha.clone()).or_insert_with(|| body.clone());
        }
        (sha, body)
    };
    // CONFIG validated it as a non-negative integer; its default is CONFIG's too.
    let limit = engine
        .with_config(|c| super::config::param(c, "busy-reply-threshold"))
        .parse::<u64>()
        .unwrap_or(u64::MAX);
    run(
        engine,
        session,
        &body,
        &sha,
        keys,
        argv,
        read_only,
        Duration::from_millis(limit),
    )
}

/// `SCRIPT LOAD | EXISTS | FLUSH | KILL | HELP`.
pub(super) fn script(engine: &Arc<Engine>, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, usize::MAX)?;
    let sub = args[1].to_ascii_uppercase();
    // The table checked the arity of the subcommands served (`script|load`).
    if !matches!(
        sub.as_slice(),
        b"LOAD" | b"EXISTS" | b"FLUSH" | b"KILL" | b"HELP"
    ) {
        return Err(Error::bad_input(format!(
            "unknown subcommand '{}'. Try SCRIPT HELP.",
            String::from_utf8_lossy(&args[1])
        )));
    }
    match sub.as_slice() {
        b"LOAD" => {
            let body = args[2].clone();
            // Compiled (not run) so that a broken script is refused now, as Redis does.
            compile_check(&body)?;
            let sha = sha1_hex(&body);
            let mut cache = engine.scripts().lock();
            if !cache.contains_key(&sha) {
                if cache.len() >= MAX_SCRIPTS {
                    return Err(Error::limit(format!(
                        "the script cache is full ({MAX_SCRIPTS} scripts): SCRIPT FLUSH empties it"
                    )));
                }
                cache.insert(sha.clone(), body);
            }
            Ok(Frame::bulk_str(&sha))
        }
        b"EXISTS" => {
            let cache = engine.scripts().lock();
            Ok(Frame::Array(
                args[2..]
                    .iter()
                    .map(|s| {
                        let sha = String::from_utf8_lossy(s).to_ascii_lowercase();
                        Frame::Integer(cache.contains_key(&sha) as i64)
                    })
                    .collect(),
            ))
        }
        b"FLUSH" => {
            let mode_ok = match &args[2..] {
                [] => true,
                [m] => m.eq_ignore_ascii_case(b"ASYNC") || m.eq_ignore_ascii_case(b"SYNC"),
                _ => false,
            };
            if !mode_ok {
                return Err(Error::bad_input(
                    "SCRIPT FLUSH only support SYNC|ASYNC option",
                ));
            }
            engine.scripts().lock().clear();
            Ok(Frame::ok())
        }
        // Scripts run atomically on the caller's connection and stop themselves at the
        // time limit, so there is never one to kill from another connection.
        b"KILL" => Err(Error::new(
            ErrorCode::BadInput,
            "NOTBUSY No scripts in execution right now.",
        )),
        _ => Ok(Frame::Array(
            [
                "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "EXISTS <sha1> [<sha1> ...]",
                "    Return information about the existence of the scripts in the script cache.",
                "FLUSH [ASYNC|SYNC]",
                "    Flush the Lua scripts cache.",
                "KILL",
                "    Kill the currently executing Lua script.",
                "LOAD <script>",
                "    Load a script into the scripts cache without executing it.",
                "HELP",
                "    Print this help.",
            ]
            .iter()
            .map(|l| Frame::Simple(Bytes::from_static(l.as_bytes())))
            .collect(),
        )),
    }
}

/// A Lua state with Redis' libraries (base without file access, table, string, math).
fn new_lua() -> Result<Lua> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::default(),
    )
    .map_err(internal)?;
    lua.set_memory_limit(MEMORY_LIMIT).map_err(internal)?;
    let g = lua.globals();
    for name in ["dofile", "loadfile"] {
        g.raw_set(name, Lv::Nil).map_err(internal)?;
    }
    Ok(lua)
}

fn internal(e: mlua::Error) -> Error {
    Error::err(ErrorCode::Internal, format!("Lua: {e}"))
}

/// The compile error of `body`, in Redis' words, or `Ok` when it compiles.
fn compile_check(body: &[u8]) -> Result<()> {
    let lua = new_lua()?;
    compile(&lua, body, None).map(|_| ())
}

fn compile(lua: &Lua, body: &[u8], env: Option<Table>) -> Result<mlua::Function> {
    let mut chunk = lua.load(body).set_name("@user_script");
    if let Some(env) = env {
        chunk = chunk.set_environment(env);
    }
    chunk.into_function().map_err(|e| {
        let msg = match &e {
            mlua::Error::SyntaxError { message, .. } => message.clone(),
            other => other.to_string(),
        };
        Error::bad_input(format!("Error compiling script (new function): {msg}"))
    })
}

/// The library code run before a script: `pcall` gives the text of an error table (what
/// `redis.call` raises) as Redis 7's does, and the script's environment reads the
/// globals but writes none, reading an undefined one being an error (Redis 7's rules).
const PRELUDE: &str = r#"
local G, raw_pcall = _G, pcall
local function as_string(ok, ...)
  if not ok then
    local e = ...
    if type(e) == 'table' and type(e.err) == 'string' then return false, e.err end
  end
  return ok, ...
end
pcall = function(...) return as_string(raw_pcall(...)) end
local env = setmetatable({}, {
  __index = function(_, name)
    local v = rawget(G, name)
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
    end
    return v
  end,
  __newindex = function() error("Attempt to modify a readonly table", 2) end,
  __metatable = false,
})
return env
"#;

#[allow(clippy::too_many_arguments)]
fn run(
    engine: &Arc<Engine>,
    session: &mut Session,
    body: &[u8],
    sha: &str,
    keys: &[Bytes],
    argv: &[Bytes],
    read_only: bool,
    limit: Duration,
) -> Result<Frame> {
    let lua = new_lua()?;
    let g = lua.globals();
    let strings = |items: &[Bytes]| -> mlua::Result<Table> {
        let t = lua.create_table_with_capacity(items.len(), 0)?;
        for (i, a) in items.iter().enumerate() {
            t.raw_set(i + 1, lua.create_string(a)?)?;
        }
        Ok(t)
    };
    g.raw_set("KEYS", strings(keys).map_err(internal)?)
        .map_err(internal)?;
    g.raw_set("ARGV", strings(argv).map_err(internal)?)
        .map_err(internal)?;
    let redis = redis_library(&lua).map_err(internal)?;
    g.raw_set("redis", &redis).map_err(internal)?;

    let started = Instant::now();
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(10_000),
        move |_, _| {
            if started.elapsed() > limit {
                Err(mlua::Error::runtime(format!(
                    "Script killed: it ran longer than busy-reply-threshold ({} ms)",
                    limit.as_millis()
                )))
            } else {
                Ok(VmState::Continue)
            }
        },
    )
    .map_err(internal)?;

    let session = std::cell::RefCell::new(session);
    let reply = lua.scope(|scope| {
        // One command runner for both: `call` raises the error `pcall` returns. Both are
        // C functions to Lua, so an error's line is the script's, as in Redis.
        let pcall = scope.create_function(|lua, args: Variadic<Lv>| {
            let mut session = session
                .try_borrow_mut()
                .map_err(|_| mlua::Error::RecursiveMutCallback)?;
            match command_from_script(lua, engine, &mut session, read_only, &args)? {
                Ok(v) => Ok(v),
                Err(text) => {
                    let t = lua.create_table()?;
                    t.set("err", text)?;
                    Ok(Lv::Table(t))
                }
            }
        })?;
        lua.set_named_registry_value(&PCALL_KEY.to_string_lossy(), &pcall)?;
        redis.raw_set("pcall", pcall)?;
        // SAFETY: `redis_call` follows the Lua C API contract (see there).
        redis.raw_set("call", unsafe { lua.create_c_function(redis_call) }?)?;
        let env: Table = lua.load(PRELUDE).set_name(PRELUDE_NAME).eval()?;
        let f = match compile(&lua, body, Some(env)) {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        let handled = std::rc::Rc::new(std::cell::Cell::new(false));
        let handler = {
            let (sha, handled) = (sha.to_string(), handled.clone());
            lua.create_function(move |lua, err: Lv| {
                handled.set(true);
                error_handler(lua, err, &sha)
            })?
        };
        let xpcall: mlua::Function = g.raw_get("xpcall")?;
        let mut out: MultiValue = xpcall.call((f, handler))?;
        let ok = matches!(out.pop_front(), Some(Lv::Boolean(true)));
        let first = out.pop_front().unwrap_or(Lv::Nil);
        if !ok && !handled.get() {
            // Lua 5.1 skips the handler when an allocation fails.
            return Ok(Err(Error::limit(format!(
                "Script used more than its {} MiB of Lua memory script: {sha}",
                MEMORY_LIMIT >> 20
            ))));
        }
        if !ok {
            let text = match &first {
                Lv::String(s) => s.to_string_lossy(),
                other => format!("{other:?}"),
            };
            return Ok(Err(Error::new(ErrorCode::BadInput, text)));
        }
        Ok(Ok(to_frame(&first, 0)?))
    });
    match reply {
        Ok(r) => r,
        Err(e) => Err(Error::bad_input(format!("Error running script: {e}"))),
    }
}

/// `redis.*` but `call` and `pcall`, which borrow the connection and are added per run.
fn redis_library(lua: &Lua) -> mlua::Result<Table> {
    let redis = lua.create_table()?;
    redis.set(
        "error_reply",
        lua.create_function(|lua, msg: mlua::String| {
            let msg = msg.to_string_lossy();
            let msg = msg.strip_prefix('-').unwrap_or(&msg);
            // Redis keeps a message that names its error code ("WRONGTYPE ...") and
            // gives one without a code "ERR".
            let text = if msg.contains(' ') {
                msg.to_string()
            } else {
                format!("ERR {msg}")
            };
            let t = lua.create_table()?;
            t.set("err", text)?;
            Ok(t)
        })?,
    )?;
    redis.set(
        "status_reply",
        lua.create_function(|lua, msg: mlua::String| {
            let t = lua.create_table()?;
            t.set("ok", msg)?;
            Ok(t)
        })?,
    )?;
    redis.set(
        "sha1hex",
        lua.create_function(|_, s: mlua::String| Ok(sha1_hex(&s.as_bytes())))?,
    )?;
    redis.set(
        "log",
        lua.create_function(|_, (level, msg): (i64, mlua::String)| {
            let msg = msg.to_string_lossy();
            match level {
                0 => tracing::debug!(target: "script", "{msg}"),
                1 | 2 => tracing::info!(target: "script", "{msg}"),
                _ => tracing::warn!(target: "script", "{msg}"),
            }
            Ok(())
        })?,
    )?;
    for (name, level) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
    ] {
        redis.set(name, level)?;
    }
    redis.set(
        "setresp",
        lua.create_function(|_, v: i64| match v {
            2 => Ok(()),
            3 => Err(mlua::Error::runtime(
                "insitu gives scripts RESP2 replies: redis.setresp(3) is not supported",
            )),
            _ => Err(mlua::Error::runtime("RESP version must be 2 or 3")),
        })?,
    )?;
    Ok(redis)
}

/// Where the error was raised, and its text, as Redis 7 reports it: an error table's
/// `err` as it is, any other value as `ERR <value>`, then `script: <sha>, on
/// <source>:<line>.` for the script line that raised it.
fn error_handler(lua: &Lua, err: Lv, sha: &str) -> mlua::Result<String> {
    let msg = match &err {
        Lv::Table(t) => match t.raw_get::<Lv>("err")? {
            Lv::String(s) => s.to_string_lossy(),
            _ => "ERR unknown error".to_string(),
        },
        Lv::String(s) => format!("ERR {}", s.to_string_lossy()),
        Lv::Error(e) => format!("ERR {}", error_text(e)),
        other => format!(
            "ERR {}",
            lua.coerce_string(other.clone())?
                .map_or_else(|| other.type_name().to_string(), |s| s.to_string_lossy(),)
        ),
    };
    // Level 0 is this handler; the first Lua frame of the script above it is where.
    for level in 1..32 {
        let Some(frame) = lua.inspect_stack(level, |d| {
            let src = d.source();
            (
                src.what,
                src.source.map(|s| s.to_string()),
                d.current_line(),
            )
        }) else {
            break;
        };
        match frame {
            ("C", ..) => continue,
            (_, Some(src), _) if src == PRELUDE_NAME => continue,
            (_, Some(src), Some(line)) => {
                return Ok(format!("{msg} script: {sha}, on {src}:{line}."));
            }
            _ => break,
        }
    }
    Ok(msg)
}

/// Registry key of `redis.pcall` for [`redis_call`].
const PCALL_KEY: &std::ffi::CStr = c"insitu.pcall";

/// `redis.call`: `redis.pcall`, raising the `{err = text}` table it returns for an error
/// reply. A C function, as in Redis, so that the error's line is the script's even in
/// `return redis.call(...)` (a Lua function there would be a tail call, its frame gone).
///
/// SAFETY (for Lua): it holds no Rust value with a destructor across `lua_call` and
/// `lua_error`, which leave by `longjmp`; the stack needs the two slots Lua guarantees.
unsafe extern "C-unwind" fn redis_call(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    let nargs = ffi::lua_gettop(state);
    ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, PCALL_KEY.as_ptr());
    ffi::lua_insert(state, 1);
    ffi::lua_call(state, nargs, 1);
    if ffi::lua_type(state, -1) == ffi::LUA_TTABLE {
        ffi::lua_getfield(state, -1, c"err".as_ptr());
        let is_error = ffi::lua_type(state, -1) == ffi::LUA_TSTRING;
        ffi::lua_settop(state, -2);
        if is_error {
            ffi::lua_error(state);
        }
    }
    1
}

/// The message of an error raised in Rust (a hook, a library function), without mlua's
/// traceback.
fn error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => error_text(cause),
        mlua::Error::MemoryError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// A command called by a script: its reply as a Lua value, or its error's text.
fn command_from_script(
    lua: &Lua,
    engine: &Arc<Engine>,
    session: &mut Session,
    read_only: bool,
    args: &[Lv],
) -> mlua::Result<std::result::Result<Lv, String>> {
    let fail = |text: &str| Ok(Err(text.to_string()));
    if args.is_empty() {
        return fail("ERR Please specify at least one argument for this redis lib call");
    }
    let mut argv = Vec::with_capacity(args.len());
    for a in args {
        match a {
            Lv::String(s) => argv.push(Bytes::copy_from_slice(&s.as_bytes())),
            Lv::Integer(i) => argv.push(Bytes::from(i.to_string())),
            Lv::Number(n) => argv.push(Bytes::from(lua_number_text(*n))),
            _ => return fail("ERR Lua redis lib command arguments must be strings or integers"),
        }
    }
    match super::run_from_script(engine, session, &argv, read_only) {
        Err(e) => Ok(Err(e.text().to_string())),
        Ok(Frame::Error(e)) => Ok(Err(e.text().to_string())),
        Ok(reply) => to_lua(lua, reply.for_protocol(Protocol::Resp2)).map(Ok),
    }
}

/// A Lua number as Redis passes it to a command (`%.17g`).
fn lua_number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e17 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// A RESP2 reply as Redis gives it to Lua.
fn to_lua(lua: &Lua, f: Frame) -> mlua::Result<Lv> {
    Ok(match f {
        Frame::Integer(i) => Lv::Integer(i),
        Frame::Bulk(b) | Frame::Verbatim(b) => Lv::String(lua.create_string(&b)?),
        Frame::Null | Frame::NullArray => Lv::Boolean(false),
        Frame::Simple(s) => {
            let t = lua.create_table()?;
            t.set("ok", lua.create_string(&s)?)?;
            Lv::Table(t)
        }
        Frame::Error(e) => {
            let t = lua.create_table()?;
            t.set("err", e.text())?;
            Lv::Table(t)
        }
        Frame::Array(items) | Frame::Set(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.into_iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            Lv::Table(t)
        }
        // RESP2 forms of the rest (for_protocol already turned them into these).
        Frame::Map(pairs) => {
            let t = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (i, (k, v)) in pairs.into_iter().enumerate() {
                t.raw_set(2 * i + 1, to_lua(lua, k)?)?;
                t.raw_set(2 * i + 2, to_lua(lua, v)?)?;
            }
            Lv::Table(t)
        }
        Frame::Double(d) => Lv::String(lua.create_string(format!("{d}"))?),
        Frame::Boolean(b) => Lv::Integer(b as i64),
    })
}

/// A script's return value as Redis replies it: numbers truncated to integers, `true` as
/// 1, `false` and `nil` as a null, `{err=...}` an error, `{ok=...}` a status, other
/// tables an array of their elements up to the first `nil`.
fn to_frame(v: &Lv, depth: usize) -> mlua::Result<Frame> {
    if depth > MAX_DEPTH {
        return Err(mlua::Error::runtime("reached lua stack limit"));
    }
    Ok(match v {
        Lv::Nil | Lv::Boolean(false) => Frame::Null,
        Lv::Boolean(true) => Frame::Integer(1),
        Lv::Integer(i) => Frame::Integer(*i),
        // C's cast of an out-of-range double, which Redis does, gives i64::MIN.
        Lv::Number(n) if n.is_finite() && n.abs() < 9.2e18 => Frame::Integer(n.trunc() as i64),
        Lv::Number(_) => Frame::Integer(i64::MIN),
        Lv::String(s) => Frame::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Lv::Table(t) => {
            if let Lv::String(e) = t.raw_get::<Lv>("err")? {
                // A script's own error reply: its code read from its text, as a client's.
                return Ok(Frame::Error(Error::from_server_text(e.to_string_lossy())));
            }
            if let Lv::String(s) = t.raw_get::<Lv>("ok")? {
                return Ok(Frame::Simple(Bytes::copy_from_slice(&s.as_bytes())));
            }
            let mut items = Vec::new();
            for i in 1.. {
                let item: Lv = t.raw_get(i)?;
                if item.is_nil() {
                    break;
                }
                items.push(to_frame(&item, depth + 1)?);
            }
            Frame::Array(items)
        }
        _ => Frame::Null,
    })
}
