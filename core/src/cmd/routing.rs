//! Cluster routing: which node serves a command, from the keys the command table names.
//! The dispatcher and scripts' calls ask [`route`] before running a keyed command in
//! cluster mode; the client computes the same slot ([`super::table::Spec::slot`]).

use bytes::Bytes;

use super::table::Spec;
use crate::engine::cluster::{ClusterState, Route};
use crate::engine::Engine;
use crate::error::{Error, ErrorCode, Result};

/// RedisAI's commands on a model itself, which `ASKING` lets a client send to any node:
/// insitu's clients store a model on every shard, so that a run finds it beside its
/// inputs wherever they live.
const MODEL_COMMANDS: [&str; 5] = [
    "ai.modelstore",
    "ai.modelset",
    "ai.modeldel",
    "ai.modelget",
    "ai.info",
];

/// Whether this node serves a command in cluster mode: its keys in one slot this node
/// owns. A key that holds a model on this node counts as this node's whatever its slot
/// (models live on every shard), and after `ASKING` a command on a model is served
/// here. `Ok(slot)` when it is served; `MOVED`, `CROSSSLOT` or `CLUSTERDOWN` otherwise.
///
/// # Errors
/// The redirection or refusal, with Redis' text.
pub(super) fn route(
    engine: &Engine,
    cluster: &ClusterState,
    spec: &Spec,
    args: &[Bytes],
    asking: bool,
) -> Result<Option<u16>> {
    if asking && MODEL_COMMANDS.contains(&spec.name) {
        return Ok(None);
    }
    let slot = spec.slot_skipping(args, |k| engine.holds_model(k))?;
    let Some(slot) = slot else {
        return Ok(None);
    };
    match cluster.route(slot) {
        Route::Here => Ok(Some(slot)),
        // A cluster client follows MOVED before its user sees it.
        Route::Moved(s, addr) => Err(Error::new(ErrorCode::Server, format!("MOVED {s} {addr}"))),
        Route::Unserved => Err(Error::new(
            ErrorCode::Io,
            "CLUSTERDOWN Hash slot not served",
        )),
    }
}
