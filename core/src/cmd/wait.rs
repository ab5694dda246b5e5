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
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::resp::Frame;
use crate::store::Value;

/// The longest wait one command may ask for (one day).
const MAX_WAIT_MS: u64 = 24 * 3600 * 1000;

enum Cond {
    Exists,
    HExists(Bytes),
    Len(std::cmp::Ordering, bool, usize),
}

impl Cond {
    fn holds(&self, v: Option<&Value>) -> bool {
        match (self, v) {
            (Cond::Exists, v) => v.is_some(),
            (Cond::HExists(f), Some(Value::Hash(h))) => h.contains_key(f),
            (Cond::HExists(_), _) => false,
            (Cond::Len(ord, or_equal, n), v) => {
                let len = match v {
                    Some(Value::List(l)) => l.len(),
                    _ => 0,
                };
                len.cmp(n) == *ord || (*or_equal && len == *n)
            }
        }
    }
}

/// Key positions: the one key waited on.
pub(super) fn keys(args: &[Bytes]) -> Vec<usize> {
    (3..args.len().min(4)).collect()
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
    let kind = args[2].to_ascii_uppercase();
    let cond = match (kind.as_slice(), args.len()) {
        (b"EXISTS", 4) => Cond::Exists,
        (b"HEXISTS", 5) => Cond::HExists(args[4].clone()),
        (b"LLEN", 6) => {
            let n = usize::try_from(int_arg(&args[5])?).map_err(|_| Error::not_integer())?;
            match args[4].to_ascii_uppercase().as_slice() {
                b"EQ" => Cond::Len(std::cmp::Ordering::Equal, true, n),
                b"GE" => Cond::Len(std::cmp::Ordering::Greater, true, n),
                b"LE" => Cond::Len(std::cmp::Ordering::Less, true, n),
                _ => return Err(Error::syntax()),
            }
        }
        _ => return Err(Error::syntax()),
    };
    // Answer at once when it already holds (or no wait was asked for): no task, no timer.
    let now = engine.store().with(&key, |v| cond.holds(v));
    if now || ms == 0 {
        return Ok(Reply::Ready(Frame::Integer(now as i64)));
    }
    let engine = engine.clone();
    Ok(Reply::Pending(Box::pin(async move {
        let ok = engine
            .store()
            .wait_for(&key, Duration::from_millis(ms), |v| cond.holds(v))
            .await;
        Frame::Integer(ok as i64)
    })))
}
