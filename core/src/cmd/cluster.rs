//! Redis Cluster's commands: `CLUSTER INFO / MYID / MYSHARDID / NODES / SLOTS / SHARDS /
//! KEYSLOT / COUNTKEYSINSLOT / GETKEYSINSLOT` (what clients read), `ADDSLOTS /
//! ADDSLOTSRANGE / DELSLOTS / DELSLOTSRANGE / FLUSHSLOTS / SET-CONFIG-EPOCH / BUMPEPOCH /
//! MEET / FORGET / RESET / SAVECONFIG` (what `redis-cli --cluster create` and `check` send),
//! `READONLY / READWRITE / ASKING`, and `INSITU.GOSSIP` (nodes exchanging their views),
//! with Redis 7's texts; and the routing every keyed command passes in cluster mode
//! (`MOVED`, `CROSSSLOT`, `CLUSTERDOWN`), from the keys the command table names.

use bytes::Bytes;

use super::{arity, int_arg};
use crate::engine::cluster::{key_slot, ClusterState, SLOTS};
use crate::engine::Engine;
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::resp::Frame;

fn disabled() -> Error {
    Error::bad_input("This instance has cluster support disabled")
}

fn state(engine: &Engine) -> Result<&ClusterState> {
    engine.cluster().ok_or_else(disabled)
}

/// A slot number, or Redis' `Invalid slot` (COUNTKEYSINSLOT, GETKEYSINSLOT).
fn slot_or_invalid(b: &[u8]) -> Result<u16> {
    slot_arg(b).map_err(|_| Error::bad_input("Invalid slot"))
}

fn slot_arg(b: &[u8]) -> Result<u16> {
    int_arg(b)
        .ok()
        .and_then(|s| u16::try_from(s).ok())
        .filter(|&s| (s as usize) < SLOTS)
        .ok_or_else(|| Error::bad_input("Invalid or out of range slot"))
}

/// The slots of `ADDSLOTS s...` or `ADDSLOTSRANGE lo hi...`.
fn slots_of(args: &[Bytes], ranges: bool) -> Result<Vec<u16>> {
    if !ranges {
        return args.iter().map(|a| slot_arg(a)).collect();
    }
    if args.len() % 2 != 0 {
        return Err(Error::arity(b"cluster|addslotsrange"));
    }
    let mut out = Vec::new();
    for pair in args.chunks(2) {
        let (lo, hi) = (slot_arg(&pair[0])?, slot_arg(&pair[1])?);
        if lo > hi {
            return Err(Error::bad_input(format!(
                "start slot number {lo} is greater than end slot number {hi}"
            )));
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

fn node_entry(ip: &str, port: u16, id: &str) -> Frame {
    Frame::Array(vec![
        Frame::bulk_str(ip),
        Frame::Integer(i64::from(port)),
        Frame::bulk_str(id),
    ])
}

/// `CLUSTER ...`.
pub(super) fn cluster(engine: &Engine, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 0)?;
    let sub = args[1].to_ascii_uppercase();
    if sub.as_slice() == b"HELP" {
        return Ok(Frame::Array(
            HELP.iter().map(|l| Frame::simple(l)).collect(),
        ));
    }
    if sub.as_slice() == b"KEYSLOT" {
        // Redis answers KEYSLOT in cluster mode only too.
        state(engine)?;
        return Ok(Frame::Integer(i64::from(key_slot(&args[2]))));
    }
    let c = state(engine)?;
    let rest = &args[2..];
    match sub.as_slice() {
        b"INFO" => Ok(Frame::Verbatim(Bytes::from(c.info_text()))),
        b"MYID" => Ok(Frame::bulk_str(&c.my_id())),
        b"MYSHARDID" => Ok(Frame::bulk_str(&c.my_id())),
        b"NODES" => Ok(Frame::Verbatim(Bytes::from(c.nodes_text()))),
        b"SLOTS" => Ok(Frame::Array(
            c.slot_ranges()
                .into_iter()
                .map(|(lo, hi, n)| {
                    Frame::Array(vec![
                        Frame::Integer(i64::from(lo)),
                        Frame::Integer(i64::from(hi)),
                        node_entry(&n.ip, n.port, &n.id),
                    ])
                })
                .collect(),
        )),
        b"SHARDS" => Ok(Frame::Array(
            c.shards()
                .into_iter()
                .map(|shard| {
                    let (n, failing) = (&shard.node, shard.failing);
                    let slots = shard
                        .slots
                        .iter()
                        .flat_map(|&(lo, hi)| {
                            [Frame::Integer(i64::from(lo)), Frame::Integer(i64::from(hi))]
                        })
                        .collect();
                    let node = Frame::Map(vec![
                        (Frame::bulk_static("id"), Frame::bulk_str(&n.id)),
                        (Frame::bulk_static("port"), Frame::Integer(i64::from(n.port))),
                        (Frame::bulk_static("ip"), Frame::bulk_str(&n.ip)),
                        (Frame::bulk_static("endpoint"), Frame::bulk_str(&n.ip)),
                        (Frame::bulk_static("role"), Frame::bulk_static("master")),
                        (Frame::bulk_static("replication-offset"), Frame::Integer(0)),
                        (
                            Frame::bulk_static("health"),
                            Frame::bulk_static(if failing { "fail" } else { "online" }),
                        ),
                    ]);
                    Frame::Map(vec![
                        (Frame::bulk_static("slots"), Frame::Array(slots)),
                        (Frame::bulk_static("nodes"), Frame::Array(vec![node])),
                    ])
                })
                .collect(),
        )),
        b"COUNTKEYSINSLOT" => {
            let s = slot_or_invalid(&rest[0])?;
            let n = engine
                .store()
                .keys()
                .iter()
                .filter(|k| key_slot(k) == s)
                .count();
            Ok(Frame::Integer(n as i64))
        }
        b"GETKEYSINSLOT" => {
            let s = slot_or_invalid(&rest[0])?;
            let max = int_arg(&rest[1])
                .ok()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| Error::bad_input("Invalid number of keys"))?;
            let mut keys: Vec<Bytes> = engine
                .store()
                .keys()
                .into_iter()
                .filter(|k| key_slot(k) == s)
                .collect();
            keys.sort();
            keys.truncate(max);
            Ok(Frame::Array(keys.into_iter().map(Frame::Bulk).collect()))
        }
        b"ADDSLOTS" | b"ADDSLOTSRANGE" => {
            c.add_slots(&slots_of(rest, sub.as_slice() == b"ADDSLOTSRANGE")?)?;
            Ok(Frame::ok())
        }
        b"DELSLOTS" | b"DELSLOTSRANGE" => {
            c.del_slots(&slots_of(rest, sub.as_slice() == b"DELSLOTSRANGE")?)?;
            Ok(Frame::ok())
        }
        b"FLUSHSLOTS" => {
            if !engine.store().is_empty() {
                return Err(Error::bad_input(
                    "DB must be empty to perform CLUSTER FLUSHSLOTS.",
                ));
            }
            c.flush_slots()?;
            Ok(Frame::ok())
        }
        b"SET-CONFIG-EPOCH" => {
            let e = int_arg(&rest[0])
                .ok()
                .and_then(|e| u64::try_from(e).ok())
                .ok_or_else(|| {
                    Error::bad_input(format!(
                        "Invalid config epoch specified: {}",
                        String::from_utf8_lossy(&rest[0])
                    ))
                })?;
            c.set_config_epoch(e)?;
            Ok(Frame::ok())
        }
        b"BUMPEPOCH" => {
            let (bumped, e) = c.bump_epoch()?;
            Ok(Frame::Simple(Bytes::from(format!(
                "{} {e}",
                if bumped { "BUMPED" } else { "STILL" }
            ))))
        }
        b"MEET" => {
            let ip = String::from_utf8_lossy(&rest[0]).into_owned();
            let port = int_arg(&rest[1])
                .ok()
                .and_then(|p| u16::try_from(p).ok())
                .filter(|&p| p > 0)
                .ok_or_else(|| {
                    Error::bad_input(format!(
                        "Invalid base port specified: {}",
                        String::from_utf8_lossy(&rest[1])
                    ))
                })?;
            if ip.parse::<std::net::IpAddr>().is_err() {
                return Err(Error::bad_input(format!(
                    "Invalid node address specified: {ip}:{port}"
                )));
            }
            c.meet(&ip, port);
            Ok(Frame::ok())
        }
        b"FORGET" => {
            c.forget(&String::from_utf8_lossy(&rest[0]))?;
            Ok(Frame::ok())
        }
        b"RESET" => {
            let hard = match rest.first().map(|a| a.to_ascii_uppercase()) {
                None => false,
                Some(a) if a.as_slice() == b"SOFT" => false,
                Some(a) if a.as_slice() == b"HARD" => true,
                Some(_) => return Err(Error::syntax()),
            };
            if !engine.store().is_empty() {
                return Err(Error::bad_input(
                    "CLUSTER RESET can't be called with master nodes containing keys",
                ));
            }
            c.reset(hard, &crate::engine::new_node_id())?;
            Ok(Frame::ok())
        }
        b"SAVECONFIG" => {
            c.save_config()?;
            Ok(Frame::ok())
        }
        b"REPLICAS" | b"SLAVES" => {
            let id = String::from_utf8_lossy(&rest[0]).into_owned();
            if !c.knows(&id) {
                return Err(Error::bad_input(format!("Unknown node {id}")));
            }
            Ok(Frame::Array(vec![]))
        }
        b"COUNT-FAILURE-REPORTS" => Ok(Frame::Integer(0)),
        b"LINKS" => Ok(Frame::Array(vec![])),
        b"REPLICATE" | b"FAILOVER" | b"SETSLOT" => Err(Error::err(
            ErrorCode::Unsupported,
            format!(
                "CLUSTER {} is not supported by insitu: a cluster's layout is fixed while it runs (no replicas, failover or resharding)",
                String::from_utf8_lossy(&sub)
            ),
        )),
        _ => Err(Error::bad_input(format!(
            "unknown subcommand '{}'. Try CLUSTER HELP.",
            String::from_utf8_lossy(&args[1])
        ))),
    }
}

/// `READONLY`, `READWRITE`: accepted in cluster mode (insitu has no replicas, so they
/// change nothing).
pub(super) fn connection_mode(engine: &Engine) -> Result<Frame> {
    state(engine)?;
    Ok(Frame::ok())
}

/// `ASKING`: the next command is served here if it is a command on a model (there is
/// no slot migration to ask about otherwise).
pub(super) fn asking(engine: &Engine, session: &mut crate::engine::Session) -> Result<Frame> {
    state(engine)?;
    session.asking = true;
    Ok(Frame::ok())
}

/// `INSITU.GOSSIP view`: merge another node's view; reply with this node's.
pub(super) fn gossip(engine: &Engine, args: &[Bytes]) -> Result<Frame> {
    let c = state(engine)?;
    let text =
        std::str::from_utf8(&args[1]).map_err(|_| Error::bad_input("malformed cluster gossip"))?;
    let from = c.merge(text)?;
    c.seen(&from);
    Ok(Frame::Bulk(Bytes::from(c.gossip())))
}

const HELP: &[&str] = &[
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ADDSLOTS <slot> [<slot> ...]",
    "    Assign slots to current node.",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Assign slots which are between <start-slot> and <end-slot> to current node.",
    "BUMPEPOCH",
    "    Advance the cluster config epoch.",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "DELSLOTS <slot> [<slot> ...]",
    "    Delete slots information from current node.",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Delete slots information which are between <start-slot> and <end-slot>.",
    "FLUSHSLOTS",
    "    Delete current node own slots information.",
    "FORGET <node-id>",
    "    Remove a node from the cluster.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MEET <ip> <port> [<bus-port>]",
    "    Connect nodes into a working cluster.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "RESET [HARD|SOFT]",
    "    Reset current node (default: soft).",
    "SET-CONFIG-EPOCH <epoch>",
    "    Set config epoch of current node.",
    "SAVECONFIG",
    "    Force saving cluster configuration on disk.",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "HELP",
    "    Print this help.",
];
