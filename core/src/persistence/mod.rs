//! Persistence: the [`snapshot`] file format (every key and value, written atomically)
//! and the append-only [`journal`] (every change before its reply leaves, Redis 7's
//! multi-part AOF layout). The journal implements the store's
//! [`ChangeSink`](crate::store::ChangeSink) and both replay into a
//! [`Store`](crate::store::Store) at start; the store knows neither.

pub mod journal;
pub mod snapshot;
