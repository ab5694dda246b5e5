//! Connection commands, as Redis 7 answers them: HELLO (protocol choice, AUTH, SETNAME),
//! AUTH, PING, ECHO, SELECT and CLIENT (ID, SETNAME, GETNAME, SETINFO, INFO, LIST, KILL,
//! NO-EVICT, NO-TOUCH, TRACKING, REPLY, PAUSE, UNPAUSE, HELP).

use bytes::Bytes;

use super::{arity, int_arg};
use crate::engine::clients::ClientInfo;
use crate::engine::{Engine, Session};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::resp::{Frame, Protocol};

/// The Redis version reported to clients that check it.
pub const REDIS_COMPAT_VERSION: &str = "7.0.0";

/// RedisAI's module version, as `MODULE LIST`, `HELLO` and `INFO MODULES` report it.
pub const REDISAI_MODULE_VERSION: i64 = 10207;

pub(super) fn ping(args: &[Bytes]) -> Result<Frame> {
    arity(args, 1, 2)?;
    Ok(match args.get(1) {
        Some(m) => Frame::Bulk(m.clone()),
        None => Frame::simple("PONG"),
    })
}

pub(super) fn echo(args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 2)?;
    Ok(Frame::Bulk(args[1].clone()))
}

pub(super) fn select(args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 2)?;
    match int_arg(&args[1]) {
        Ok(0) => Ok(Frame::ok()),
        Ok(_) => Err(Error::bad_input("DB index is out of range")),
        Err(e) => Err(e),
    }
}

fn wrongpass() -> Error {
    Error::new(
        ErrorCode::Auth,
        "WRONGPASS invalid username-password pair or user is disabled.",
    )
}

/// Check `user` (the default user when absent) and `given` against `requirepass`. With no
/// password set, the default user accepts any password (`nopass`), as in Redis.
fn check_password(engine: &Engine, user: Option<&Bytes>, given: &[u8]) -> Result<()> {
    if user.is_some_and(|u| u.as_ref() != b"default") {
        return Err(wrongpass());
    }
    match engine.with_config(|c| c.requirepass.clone()) {
        Some(pass) if !constant_time_eq(given, pass.as_bytes()) => Err(wrongpass()),
        _ => Ok(()),
    }
}

pub(super) fn auth(engine: &Engine, session: &mut Session, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 3)?;
    if args.len() == 2 && engine.with_config(|c| c.requirepass.is_none()) {
        return Err(Error::err(
            ErrorCode::Auth,
            "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ));
    }
    let (user, given) = match args.len() {
        3 => (Some(&args[1]), &args[2]),
        _ => (None, &args[1]),
    };
    check_password(engine, user, given)?;
    session.authenticated = true;
    Ok(Frame::ok())
}

/// Compare without an early exit, so the time taken does not reveal the matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`: Redis 7.0's checks in its order,
/// then the server's description as a map (a flat array on RESP2).
pub(super) fn hello(engine: &Engine, session: &mut Session, args: &[Bytes]) -> Result<Frame> {
    let mut version = None;
    if let Some(v) = args.get(1) {
        let v = int_arg(v)
            .map_err(|_| Error::bad_input("Protocol version is not an integer or out of range"))?;
        version = Some(match v {
            2 => Protocol::Resp2,
            3 => Protocol::Resp3,
            _ => {
                return Err(Error::new(
                    ErrorCode::Unsupported,
                    "NOPROTO unsupported protocol version",
                ))
            }
        });
    }
    let (mut creds, mut name) = (None, None);
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if args[i].eq_ignore_ascii_case(b"AUTH") && more >= 2 {
            creds = Some((&args[i + 1], &args[i + 2]));
            i += 3;
        } else if args[i].eq_ignore_ascii_case(b"SETNAME") && more >= 1 {
            name = Some(&args[i + 1]);
            i += 2;
        } else {
            return Err(Error::bad_input(format!(
                "Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            )));
        }
    }
    if let Some((user, pass)) = creds {
        check_password(engine, Some(user), pass)?;
        session.authenticated = true;
    }
    if !session.authenticated {
        return Err(Error::new(
            ErrorCode::Auth,
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ));
    }
    if let Some(n) = name {
        set_name(&session.client, n)?;
    }
    if let Some(v) = version {
        session.client.set_protocol(v);
    }
    let cluster = engine.with_config(|c| c.cluster_mode());
    Ok(Frame::map([
        ("server", Frame::bulk_static("redis")),
        ("version", Frame::bulk_static(REDIS_COMPAT_VERSION)),
        ("proto", Frame::Integer(session.client.protocol().version())),
        ("id", Frame::Integer(session.client.id as i64)),
        (
            "mode",
            Frame::bulk_static(if cluster { "cluster" } else { "standalone" }),
        ),
        ("role", Frame::bulk_static("master")),
        ("modules", Frame::Array(vec![redisai_module()])),
    ]))
}

/// RedisAI as a loaded module (`HELLO`'s and `MODULE LIST`'s entry): clients that look for
/// the `ai` module find it.
pub(super) fn redisai_module() -> Frame {
    Frame::map([
        ("name", Frame::bulk_static("ai")),
        ("ver", Frame::Integer(REDISAI_MODULE_VERSION)),
        ("path", Frame::bulk_static("insitu")),
        ("args", Frame::Array(vec![])),
    ])
}

fn set_name(client: &ClientInfo, name: &Bytes) -> Result<()> {
    if name.iter().any(|&c| c <= b' ' || c > b'~') {
        return Err(Error::bad_input(
            "Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    client.update(|m| m.name = (!name.is_empty()).then(|| name.clone()));
    Ok(())
}

fn on_off(args: &[Bytes]) -> Result<bool> {
    arity(args, 3, 3)?;
    if args[2].eq_ignore_ascii_case(b"ON") {
        Ok(true)
    } else if args[2].eq_ignore_ascii_case(b"OFF") {
        Ok(false)
    } else {
        Err(Error::syntax())
    }
}

const CLIENT_HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "    * ID <client-id>",
    "      Kill connections by client id.",
    "    * MAXAGE <maxage>",
    "      Kill connections older than the specified age.",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "    * ID <client-id> [<client-id> ...]",
    "      Return clients of specified IDs only.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Will not touch LRU/LFU stats when this mode is on.",
    "TRACKING (ON|OFF)",
    "    Client-side caching: insitu refuses ON (no invalidation messages are sent).",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "HELP",
    "    Print this help.",
];

fn check_type(t: &[u8]) -> Result<bool> {
    let t = t.to_ascii_lowercase();
    match t.as_slice() {
        b"normal" => Ok(true),
        b"master" | b"replica" | b"slave" | b"pubsub" => Ok(false),
        _ => Err(Error::bad_input(format!(
            "Unknown client type '{}'",
            String::from_utf8_lossy(&t)
        ))),
    }
}

pub(super) fn client(engine: &Engine, session: &mut Session, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 0)?;
    let me = &session.client;
    let sub = args[1].to_ascii_uppercase();
    match sub.as_slice() {
        b"SETNAME" => {
            arity(args, 3, 3)?;
            set_name(me, &args[2])?;
            Ok(Frame::ok())
        }
        b"GETNAME" => {
            arity(args, 2, 2)?;
            Ok(me.meta().name.map_or(Frame::Null, Frame::Bulk))
        }
        b"ID" => {
            arity(args, 2, 2)?;
            Ok(Frame::Integer(me.id as i64))
        }
        b"SETINFO" => {
            arity(args, 4, 4)?;
            let attr = args[2].to_ascii_uppercase();
            let value = &args[3];
            let field = match attr.as_slice() {
                b"LIB-NAME" => "lib-name",
                b"LIB-VER" => "lib-ver",
                _ => {
                    return Err(Error::bad_input(format!(
                        "Unrecognized option '{}'",
                        String::from_utf8_lossy(&args[2])
                    )))
                }
            };
            if value.iter().any(|c| !(b'!'..=b'~').contains(c)) {
                return Err(Error::bad_input(format!(
                    "{field} cannot contain spaces, newlines or special characters."
                )));
            }
            let v = (!value.is_empty()).then(|| String::from_utf8_lossy(value).into_owned());
            me.update(|m| match field {
                "lib-name" => m.lib_name = v,
                _ => m.lib_ver = v,
            });
            Ok(Frame::ok())
        }
        b"INFO" => {
            arity(args, 2, 2)?;
            Ok(Frame::Verbatim(Bytes::from(me.line())))
        }
        b"LIST" => {
            let mut ids: Option<Vec<u64>> = None;
            let mut normal = true;
            let mut i = 2;
            while i < args.len() {
                if args[i].eq_ignore_ascii_case(b"TYPE") && i + 1 < args.len() {
                    normal = check_type(&args[i + 1])?;
                    i += 2;
                } else if args[i].eq_ignore_ascii_case(b"ID") && i + 1 < args.len() {
                    let mut list = Vec::new();
                    for a in &args[i + 1..] {
                        match int_arg(a) {
                            Ok(id) if id > 0 => list.push(id as u64),
                            _ => return Err(Error::bad_input("Invalid client ID")),
                        }
                    }
                    ids = Some(list);
                    i = args.len();
                } else {
                    return Err(Error::syntax());
                }
            }
            let mut out = String::new();
            if normal {
                let mut listed = engine.clients.all();
                if !listed.iter().any(|c| c.id == me.id) {
                    listed.push(me.clone());
                }
                for c in listed {
                    if ids.as_ref().is_none_or(|ids| ids.contains(&c.id)) {
                        out.push_str(&c.line());
                    }
                }
            }
            Ok(Frame::Verbatim(Bytes::from(out)))
        }
        b"KILL" => client_kill(engine, me, args),
        b"NO-EVICT" => {
            let on = on_off(args)?;
            me.update(|m| m.no_evict = on);
            Ok(Frame::ok())
        }
        b"NO-TOUCH" => {
            let on = on_off(args)?;
            me.update(|m| m.no_touch = on);
            Ok(Frame::ok())
        }
        b"TRACKING" => {
            arity(args, 3, 0)?;
            if on_off(&args[..3])? {
                // Tracking needs invalidation messages on every write of a key a client
                // read; a client told OK would serve stale data from its cache.
                return Err(Error::new(
                    ErrorCode::Unsupported,
                    "ERR CLIENT TRACKING is not supported by this server (no client-side caching invalidations are sent)",
                ));
            }
            Ok(Frame::ok())
        }
        b"GETREDIR" => {
            arity(args, 2, 2)?;
            Ok(Frame::Integer(-1))
        }
        b"TRACKINGINFO" => {
            arity(args, 2, 2)?;
            Ok(Frame::map([
                ("flags", Frame::Set(vec![Frame::bulk_static("off")])),
                ("redirect", Frame::Integer(-1)),
                ("prefixes", Frame::Array(vec![])),
            ]))
        }
        b"REPLY" => {
            arity(args, 3, 3)?;
            if args[2].eq_ignore_ascii_case(b"ON") {
                Ok(Frame::ok())
            } else if args[2].eq_ignore_ascii_case(b"OFF") || args[2].eq_ignore_ascii_case(b"SKIP")
            {
                Err(Error::new(
                    ErrorCode::Unsupported,
                    "ERR CLIENT REPLY OFF|SKIP is not supported by this server",
                ))
            } else {
                Err(Error::syntax())
            }
        }
        b"UNPAUSE" => {
            arity(args, 2, 2)?;
            Ok(Frame::ok())
        }
        b"PAUSE" => Err(Error::new(
            ErrorCode::Unsupported,
            "ERR CLIENT PAUSE is not supported by this server",
        )),
        b"HELP" => Ok(Frame::Array(
            CLIENT_HELP.iter().map(|l| Frame::simple(l)).collect(),
        )),
        _ => Err(Error::bad_input(format!(
            "unknown subcommand '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1])
        ))),
    }
}

/// `CLIENT KILL addr` (old form: OK or an error) and `CLIENT KILL <filter> <value> ...`
/// (new form: how many were killed). The caller's own connection is closed after its
/// reply, as in Redis.
fn client_kill(engine: &Engine, me: &ClientInfo, args: &[Bytes]) -> Result<Frame> {
    arity(args, 3, 0)?;
    let all = engine.clients.all();
    if args.len() == 3 {
        let addr = String::from_utf8_lossy(&args[2]);
        return match all.iter().find(|c| c.addr == addr) {
            Some(c) => {
                c.kill();
                Ok(Frame::ok())
            }
            None => Err(Error::bad_input("No such client")),
        };
    }
    if args.len() % 2 != 0 {
        return Err(Error::syntax());
    }
    let (mut id, mut addr, mut laddr, mut user, mut maxage) = (None, None, None, None, None);
    let (mut normal, mut skipme) = (true, true);
    for pair in args[2..].chunks_exact(2) {
        let (opt, v) = (pair[0].to_ascii_uppercase(), &pair[1]);
        match opt.as_slice() {
            b"ID" => match int_arg(v) {
                Ok(n) if n > 0 => id = Some(n as u64),
                _ => return Err(Error::bad_input("client-id should be greater than 0")),
            },
            b"ADDR" => addr = Some(String::from_utf8_lossy(v).into_owned()),
            b"LADDR" => laddr = Some(String::from_utf8_lossy(v).into_owned()),
            b"USER" => user = Some(v.clone()),
            b"TYPE" => normal = check_type(v)?,
            b"MAXAGE" => maxage = Some(int_arg(v)?),
            b"SKIPME" => {
                skipme = if v.eq_ignore_ascii_case(b"YES") {
                    true
                } else if v.eq_ignore_ascii_case(b"NO") {
                    false
                } else {
                    return Err(Error::syntax());
                }
            }
            _ => return Err(Error::syntax()),
        }
    }
    if let Some(u) = &user {
        if u.as_ref() != b"default" {
            return Err(Error::bad_input(format!(
                "No such user '{}'",
                String::from_utf8_lossy(u)
            )));
        }
    }
    let mut killed = 0;
    for c in all {
        let hit = normal
            && id.is_none_or(|i| c.id == i)
            && addr.as_ref().is_none_or(|a| &c.addr == a)
            && laddr.as_ref().is_none_or(|a| &c.laddr == a)
            && maxage.is_none_or(|m| c.age_secs() as i64 >= m)
            && !(skipme && c.id == me.id);
        if hit {
            c.kill();
            killed += 1;
        }
    }
    Ok(Frame::Integer(killed))
}
