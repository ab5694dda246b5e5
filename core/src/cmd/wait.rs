//! `INSITU.WAIT timeout_ms <condition>`: block until a condition on a key holds, woken by
//! the write that makes it true (no polling), or until the timeout. Replies `:1` when it
//! holds, `:0` on timeout. Conditions, mirroring SmartRedis' polls:
//!
//! - `EXISTS key` (poll_key, poll_tensor, poll_model)
//! - `HEXISTS key field` (poll_dataset: the `.COMPLETE` field)
//! - `LLEN key EQ|GE|LE n` (poll_list_length and its gte/lte variants)

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{arity, int_arg, Reply};
use crate::engine::{Engine, WaitFor};
use crate::error::{Error, Result};
use crate::protocol::resp::Frame;

/// The longest wait one command may ask for (one day).
const MAX_WAIT_MS: u64 = 24 * 3600 * 1000;

/// Key positions: the one key waited on.
pub(super) fn keys(args: &[Bytes]) -> Vec<usize> {
    (3..args.len().min(4)).collect()
}

/// The condition: `EXISTS key`, `HEXISTS key field` or `LLEN key EQ|GE|LE n`.
fn parse_cond(args: &[Bytes]) -> Result<WaitFor> {
    let kind = args[0].to_ascii_uppercase();
    Ok(match (kind.as_slice(), args.len()) {
        (b"EXISTS", 2) => WaitFor::Exists,
        (b"HEXISTS", 3) => WaitFor::HashField(args[2].clone()),
        (b"LLEN", 4) => {
            let n = usize::try_from(int_arg(&args[3])?).map_err(|_| Error::not_integer())?;
            match args[2].to_ascii_uppercase().as_slice() {
                b"EQ" => WaitFor::ListLen(n),
                b"GE" => WaitFor::ListLenAtLeast(n),
                b"LE" => WaitFor::ListLenAtMost(n),
                _ => return Err(Error::syntax()),
            }
        }
        _ => return Err(Error::syntax()),
    })
}

/// What a client sends to wait up to `ms` for `cond` on `key` ([`parse_cond`] reads it).
pub fn encode_wait(ms: u64, key: &[u8], cond: &WaitFor) -> Vec<Bytes> {
    let mut out = vec![
        Bytes::from_static(b"INSITU.WAIT"),
        Bytes::from(ms.to_string()),
    ];
    let (word, tail): (&'static [u8], Vec<Bytes>) = match cond {
        WaitFor::Exists => (b"EXISTS", vec![]),
        WaitFor::HashField(f) => (b"HEXISTS", vec![f.clone()]),
        WaitFor::ListLen(n) => (
            b"LLEN",
            vec![Bytes::from_static(b"EQ"), Bytes::from(n.to_string())],
        ),
        WaitFor::ListLenAtLeast(n) => (
            b"LLEN",
            vec![Bytes::from_static(b"GE"), Bytes::from(n.to_string())],
        ),
        WaitFor::ListLenAtMost(n) => (
            b"LLEN",
            vec![Bytes::from_static(b"LE"), Bytes::from(n.to_string())],
        ),
    };
    out.push(Bytes::from_static(word));
    out.push(Bytes::copy_from_slice(key));
    out.extend(tail);
    out
}

pub(super) fn wait(engine: &Arc<Engine>, args: &[Bytes]) -> Result<Reply> {
    arity(args, 4, 6)?;
    let ms = u64::try_from(int_arg(&args[1])?)
        .ok()
        .filter(|&ms| ms <= MAX_WAIT_MS)
        .ok_or_else(|| {
            Error::bad_input(format!("timeout must be between 0 and {MAX_WAIT_MS} ms"))
        })?;
    let key = args[3].clone();
    let cond = parse_cond(&args[2..])?;
    // Answer at once when it already holds (or no wait was asked for): no task, no timer.
    let now = engine.holds(&key, &cond);
    if now || ms == 0 {
        return Ok(Reply::Ready(Frame::Integer(now as i64)));
    }
    let engine = engine.clone();
    Ok(Reply::Pending(Box::pin(async move {
        let ok = engine
            .wait_until(&key, &cond, Duration::from_millis(ms))
            .await;
        Frame::Integer(ok as i64)
    })))
}
