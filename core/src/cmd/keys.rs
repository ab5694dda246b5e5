//! Generic key commands and the string, hash and list commands SmartRedis uses.

use bytes::Bytes;

use super::{arity, glob_match, int_arg};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::protocol::resp::Frame;
use crate::store::{Store, Value};

pub(super) fn exists(s: &Store, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 0)?;
    Ok(Frame::Integer(
        args[1..].iter().filter(|k| s.exists(k)).count() as i64,
    ))
}

pub(super) fn del(s: &Store, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 0)?;
    Ok(Frame::Integer(
        args[1..]
            .iter()
            .try_fold(0, |n, k| s.delete(k).map(|d| n + d as i64))?,
    ))
}

pub(super) fn key_type(s: &Store, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 2)?;
    let name = s.with(&args[1], |v| v.map_or("none", Value::type_name));
    Ok(Frame::simple(name))
}

pub(super) fn rename(s: &Store, args: &[Bytes]) -> Result<Frame> {
    arity(args, 3, 3)?;
    s.rename(&args[1], args[2].clone())?;
    Ok(Frame::ok())
}

pub(super) fn keys(s: &Store, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 2)?;
    let pat = &args[1];
    Ok(Frame::Array(
        s.keys()
            .into_iter()
            .filter(|k| glob_match(pat, k, false))
            .map(Frame::Bulk)
            .collect(),
    ))
}

/// `SCAN cursor [MATCH p] [COUNT n] [TYPE t]`. The cursor is the next shard to visit;
/// every key present for the whole scan is returned at least once, as Redis promises.
pub(super) fn scan(s: &Store, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 0)?;
    let cursor = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|c| c.parse::<u64>().ok())
        .ok_or_else(|| Error::bad_input("invalid cursor"))?;
    let (mut pattern, mut count, mut ty) = (None, 10usize, None);
    let mut i = 2;
    while i < args.len() {
        let opt = &args[i];
        let val = args.get(i + 1).ok_or_else(Error::syntax)?;
        if opt.eq_ignore_ascii_case(b"MATCH") {
            pattern = Some(val.clone());
        } else if opt.eq_ignore_ascii_case(b"COUNT") {
            count = usize::try_from(int_arg(val)?)
                .ok()
                .filter(|&c| c > 0)
                .ok_or_else(Error::syntax)?;
        } else if opt.eq_ignore_ascii_case(b"TYPE") {
            ty = Some(val.clone());
        } else {
            return Err(Error::syntax());
        }
        i += 2;
    }
    let mut shard = usize::try_from(cursor).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    while shard < s.shard_count() && out.len() < count {
        for k in s.shard_keys(shard) {
            if pattern.as_ref().is_some_and(|p| !glob_match(p, &k, false)) {
                continue;
            }
            if let Some(t) = &ty {
                let name = s.with(&k, |v| v.map_or("none", Value::type_name));
                if !t.eq_ignore_ascii_case(name.as_bytes()) {
                    continue;
                }
            }
            out.push(Frame::Bulk(k));
        }
        shard += 1;
    }
    let next = if shard >= s.shard_count() { 0 } else { shard };
    Ok(Frame::Array(vec![
        Frame::Bulk(Bytes::from(next.to_string())),
        Frame::Array(out),
    ]))
}

pub(super) fn set(s: &Store, args: &[Bytes]) -> Result<Frame> {
    arity(args, 3, 4)?;
    let (mut nx, mut xx) = (false, false);
    if let Some(opt) = args.get(3) {
        if opt.eq_ignore_ascii_case(b"NX") {
            nx = true;
        } else if opt.eq_ignore_ascii_case(b"XX") {
            xx = true;
        } else {
            return Err(Error::syntax());
        }
    }
    let present = s.exists(&args[1]);
    if (nx && present) || (xx && !present) {
        return Ok(Frame::Null);
    }
    s.set(args[1].clone(), Value::String(args[2].clone()))?;
    Ok(Frame::ok())
}

pub(super) fn get(s: &Store, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 2)?;
    s.with(&args[1], |v| match v {
        None => Ok(Frame::Null),
        Some(Value::String(b)) => Ok(Frame::Bulk(b.clone())),
        Some(_) => Err(Error::wrong_type()),
    })
}

fn with_hash<R>(
    s: &Store,
    key: &[u8],
    missing: R,
    f: impl FnOnce(&crate::store::HashFields) -> R,
) -> Result<R> {
    s.with(key, |v| match v {
        None => Ok(missing),
        Some(Value::Hash(h)) => Ok(f(h)),
        Some(_) => Err(Error::wrong_type()),
    })
}

pub(super) fn hset(s: &Store, args: &[Bytes], legacy: bool) -> Result<Frame> {
    if args.len() < 4 || args.len() % 2 != 0 {
        return Err(Error::arity(&args[0]));
    }
    let added = s.hset(&args[1], &args[2..])?;
    Ok(if legacy {
        Frame::ok()
    } else {
        Frame::Integer(added as i64)
    })
}

pub(super) fn hget(s: &Store, args: &[Bytes]) -> Result<Frame> {
    arity(args, 3, 3)?;
    with_hash(s, &args[1], Frame::Null, |h| {
        h.get(&args[2])
            .map_or(Frame::Null, |v| Frame::Bulk(v.clone()))
    })
}

pub(super) fn hgetall(s: &Store, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 2)?;
    with_hash(s, &args[1], Frame::Map(vec![]), |h| {
        Frame::Map(
            h.iter()
                .map(|(k, v)| (Frame::Bulk(k.clone()), Frame::Bulk(v.clone())))
                .collect(),
        )
    })
}

/// `HKEYS key`: the fields of a hash, in the order they were set (the table checked the
/// arity).
pub(super) fn hkeys(s: &Store, args: &[Bytes]) -> Result<Frame> {
    with_hash(s, &args[1], Frame::Array(vec![]), |h| {
        Frame::Array(h.keys().map(|k| Frame::Bulk(k.clone())).collect())
    })
}

/// `HVALS key`: the values of a hash, in the order their fields were set.
pub(super) fn hvals(s: &Store, args: &[Bytes]) -> Result<Frame> {
    with_hash(s, &args[1], Frame::Array(vec![]), |h| {
        Frame::Array(h.values().map(|v| Frame::Bulk(v.clone())).collect())
    })
}

pub(super) fn hexists(s: &Store, args: &[Bytes]) -> Result<Frame> {
    arity(args, 3, 3)?;
    with_hash(s, &args[1], Frame::Integer(0), |h| {
        Frame::Integer(h.contains_key(&args[2]) as i64)
    })
}

pub(super) fn hlen(s: &Store, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 2)?;
    with_hash(s, &args[1], Frame::Integer(0), |h| {
        Frame::Integer(h.len() as i64)
    })
}

pub(super) fn hdel(s: &Store, args: &[Bytes]) -> Result<Frame> {
    arity(args, 3, 0)?;
    let n = s.hdel(&args[1], &args[2..])?;
    Ok(Frame::Integer(n as i64))
}

pub(super) fn push(s: &Store, args: &[Bytes], front: bool) -> Result<Frame> {
    arity(args, 3, 0)?;
    let len = s.push(&args[1], &args[2..], front)?;
    Ok(Frame::Integer(len as i64))
}

fn with_list<R>(
    s: &Store,
    key: &[u8],
    missing: R,
    f: impl FnOnce(&std::collections::VecDeque<Bytes>) -> R,
) -> Result<R> {
    s.with(key, |v| match v {
        None => Ok(missing),
        Some(Value::List(l)) => Ok(f(l)),
        Some(_) => Err(Error::wrong_type()),
    })
}

pub(super) fn lrange(e: &Engine, args: &[Bytes]) -> Result<Frame> {
    arity(args, 4, 4)?;
    let (start, stop) = (int_arg(&args[2])?, int_arg(&args[3])?);
    let items = e.list_range(&args[1], start, stop)?;
    Ok(Frame::Array(items.into_iter().map(Frame::Bulk).collect()))
}

pub(super) fn llen(e: &Engine, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 2)?;
    Ok(Frame::Integer(e.list_len(&args[1])? as i64))
}

/// Resolve a Redis list index (negative counts from the end) against `len`.
fn resolve(i: i64, len: usize) -> i64 {
    if i < 0 {
        len as i64 + i
    } else {
        i
    }
}

pub(super) fn lindex(s: &Store, args: &[Bytes]) -> Result<Frame> {
    arity(args, 3, 3)?;
    let i = int_arg(&args[2])?;
    with_list(s, &args[1], Frame::Null, |l| {
        let i = resolve(i, l.len());
        usize::try_from(i)
            .ok()
            .and_then(|i| l.get(i))
            .map_or(Frame::Null, |v| Frame::Bulk(v.clone()))
    })
}

pub(super) fn dbsize(s: &Store, args: &[Bytes]) -> Result<Frame> {
    arity(args, 1, 1)?;
    Ok(Frame::Integer(s.len() as i64))
}

/// `FLUSHDB` / `FLUSHALL [ASYNC | SYNC]` (one database: the same).
pub(super) fn flush(s: &Store, args: &[Bytes]) -> Result<Frame> {
    arity(args, 1, 2)?;
    if let Some(mode) = args.get(1) {
        if !mode.eq_ignore_ascii_case(b"ASYNC") && !mode.eq_ignore_ascii_case(b"SYNC") {
            return Err(Error::syntax());
        }
    }
    s.clear()?;
    Ok(Frame::ok())
}
