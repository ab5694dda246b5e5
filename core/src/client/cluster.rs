//! A client of a Redis Cluster: the slot map read with `CLUSTER SLOTS`, one connection per
//! node, every command sent to the node that owns its keys' slot (the keys found by the
//! command table, as the server finds them), `MOVED` followed (and the map read again),
//! and pipelines split per node: every node's share is written before any reply is read,
//! so the nodes work on them at the same time.
//!
//! The `redis` crate's cluster client is the reference for this routing; it is not used
//! because insitu's client needs what it does not give: its own connections (shared
//! memory, retry policy, reply limits per command from the command table) under one
//! synchronous API that C, Fortran and Python call, and the slot of RedisAI's commands
//! (movable keys), which it reads from the first key only.

use std::collections::HashMap;

use bytes::Bytes;

use super::address::Address;
use super::remote::{Cmd, Remote, RetryPolicy};
use crate::cmd::table;
use crate::engine::cluster::{hash_tag, key_slot, SLOTS};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::resp::Frame;

const NOBODY: u16 = u16::MAX;
/// Redirections followed for one command before giving up.
const MAX_REDIRECTS: usize = 5;

/// The slot a command's keys hash to (`None`: no keys), from the command table.
///
/// # Errors
/// `CROSSSLOT` for keys of several slots (not sent: the server would refuse it).
pub fn slot_of(args: &[Bytes]) -> Result<Option<u16>> {
    let Some(spec) = args.first().and_then(|n| table::lookup(n)) else {
        return Ok(None);
    };
    spec.slot(args)
}

/// A connection to every node of a cluster.
pub(crate) struct Cluster {
    seeds: Vec<Address>,
    policy: RetryPolicy,
    /// For each slot, its node's index in `nodes`.
    owner: Vec<u16>,
    nodes: Vec<Address>,
    links: HashMap<Address, Remote>,
    password: Option<Bytes>,
}

fn moved(e: &Error) -> Option<(u16, Address)> {
    let rest = e.text().strip_prefix("MOVED ")?;
    let (slot, addr) = rest.split_once(' ')?;
    Some((slot.parse().ok()?, Address::parse(addr).ok()?))
}

fn node_address(entry: &Frame) -> Option<Address> {
    let Frame::Array(n) = entry else { return None };
    let ip = match n.first()? {
        Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        _ => return None,
    };
    let port = match n.get(1)? {
        Frame::Integer(p) => u16::try_from(*p).ok()?,
        _ => return None,
    };
    Some(Address::Tcp(ip, port))
}

impl Cluster {
    /// Connect to the first reachable of `seeds` and read the slot map. `Ok(Err(link))`
    /// when that server is not a cluster node (a standalone server: talk to it over
    /// `link`), or asks for a password first and `SR_DB_TYPE` does not say Clustered (the
    /// map is read after `AUTH` when it does).
    pub(crate) fn connect(
        seeds: Vec<Address>,
        policy: RetryPolicy,
        password: Option<Bytes>,
    ) -> Result<std::result::Result<Cluster, Box<Remote>>> {
        let clustered = seeds.len() > 1
            || std::env::var("SR_DB_TYPE")
                .is_ok_and(|t| t.trim().eq_ignore_ascii_case("clustered"));
        let mut c = Cluster {
            seeds,
            policy,
            owner: vec![NOBODY; SLOTS],
            nodes: Vec::new(),
            links: HashMap::new(),
            password,
        };
        let standalone = |mut c: Cluster| {
            let first = c.seeds.first().cloned();
            first
                .and_then(|f| c.links.remove(&f))
                .map(|l| Ok(Err(Box::new(l))))
                .unwrap_or_else(|| Err(Error::err(ErrorCode::Io, "no connection")))
        };
        match c.refresh() {
            Ok(()) => Ok(Ok(c)),
            Err(e) if e.text().contains("cluster support disabled") => standalone(c),
            Err(e) if e.code() == ErrorCode::Auth && !clustered => standalone(c),
            Err(e) if e.code() == ErrorCode::Auth => Ok(Ok(c)),
            Err(e) => Err(e),
        }
    }

    fn link(&mut self, node: &Address) -> Result<&mut Remote> {
        if !self.links.contains_key(node) {
            let mut r = Remote::connect(node, self.policy)?;
            if let Some(p) = self.password.clone() {
                let f = r.exchange_retrying(&[Cmd::new("AUTH").with(p.clone())])?;
                if let Some(Frame::Error(e)) = f.into_iter().next() {
                    return Err(e);
                }
                r.password = Some(p);
            }
            self.links.insert(node.clone(), r);
        }
        self.links
            .get_mut(node)
            .ok_or_else(|| Error::err(ErrorCode::Internal, "no link to a cluster node"))
    }

    /// Read the slot map again, from the first node (known nodes, then seeds) that
    /// answers `CLUSTER SLOTS`.
    pub(crate) fn refresh(&mut self) -> Result<()> {
        let mut tried: Vec<Address> = self.nodes.clone();
        tried.extend(self.seeds.iter().cloned());
        tried.dedup();
        let mut last = Error::err(ErrorCode::Io, "no cluster node to ask for the slot map");
        for node in tried {
            let reply = self
                .link(&node)
                .and_then(|r| r.exchange_retrying(&[Cmd::new("CLUSTER").with("SLOTS")]));
            let reply = match reply {
                Ok(mut f) => f.pop(),
                Err(e) => {
                    self.links.remove(&node);
                    last = e;
                    continue;
                }
            };
            match reply {
                Some(Frame::Error(e)) => return Err(e),
                Some(Frame::Array(ranges)) => {
                    let mut owner = vec![NOBODY; SLOTS];
                    let mut nodes: Vec<Address> = Vec::new();
                    for r in &ranges {
                        let Frame::Array(r) = r else { continue };
                        let (Some(Frame::Integer(lo)), Some(Frame::Integer(hi)), Some(n)) =
                            (r.first(), r.get(1), r.get(2))
                        else {
                            continue;
                        };
                        let Some(addr) = node_address(n) else {
                            continue;
                        };
                        let i = match nodes.iter().position(|a| *a == addr) {
                            Some(i) => i,
                            None => {
                                nodes.push(addr);
                                nodes.len() - 1
                            }
                        };
                        for s in (*lo).max(0)..=(*hi).min(SLOTS as i64 - 1) {
                            owner[s as usize] = i as u16;
                        }
                    }
                    if nodes.is_empty() {
                        return Err(Error::err(
                            ErrorCode::Io,
                            format!(
                                "the cluster at {node} serves no slots (CLUSTER SLOTS is empty)"
                            ),
                        ));
                    }
                    self.owner = owner;
                    self.nodes = nodes;
                    self.links
                        .retain(|a, _| self.nodes.contains(a) || self.seeds.contains(a));
                    return Ok(());
                }
                _ => {
                    last = Error::err(
                        ErrorCode::Protocol,
                        format!("{node} answered CLUSTER SLOTS with no slot map"),
                    );
                }
            }
        }
        Err(last)
    }

    /// The node that owns `slot`.
    pub(crate) fn node_of_slot(&self, slot: u16) -> Result<Address> {
        match self.owner.get(slot as usize) {
            Some(&i) if i != NOBODY => Ok(self.nodes[i as usize].clone()),
            _ => Err(Error::new(
                ErrorCode::Io,
                "CLUSTERDOWN Hash slot not served",
            )),
        }
    }

    fn node_for(&self, args: &[Bytes]) -> Result<Address> {
        match slot_of(args)? {
            Some(s) => self.node_of_slot(s),
            None => self
                .nodes
                .first()
                .cloned()
                .ok_or_else(|| Error::err(ErrorCode::Io, "no cluster node")),
        }
    }

    /// Commands on one node, in one round trip; a node that cannot be reached is named.
    pub(crate) fn exchange_on(&mut self, node: &Address, cmds: &[Cmd]) -> Result<Vec<Frame>> {
        let r = self.link(node).and_then(|l| l.exchange_retrying(cmds));
        r.map_err(|e| {
            if e.code() == ErrorCode::Io {
                self.links.remove(node);
                Error::err(
                    ErrorCode::Io,
                    format!("cluster node {node} is unreachable: {}", e.message()),
                )
            } else {
                e
            }
        })
    }

    /// Run one command where its keys live, following `MOVED`; an error reply stays a
    /// reply (`Frame::Error`).
    pub(crate) fn call(&mut self, cmd: &Cmd) -> Result<Frame> {
        if cmd.0.len() == 2 && cmd.0[0].eq_ignore_ascii_case(b"AUTH") {
            // Every connection, present and future, authenticates; then the map is read
            // (a password-protected cluster answers CLUSTER SLOTS only after AUTH).
            let password = cmd.0[1].clone();
            for seed in self.seeds.clone() {
                self.link(&seed)?;
            }
            self.authenticate_all(&password)?;
            self.password = Some(password);
            self.refresh()?;
            return Ok(Frame::ok());
        }
        let mut node = self.node_for(&cmd.0)?;
        for _ in 0..=MAX_REDIRECTS {
            let f = self
                .exchange_on(&node, std::slice::from_ref(cmd))?
                .pop()
                .ok_or_else(|| Error::err(ErrorCode::Internal, "no reply to a command"))?;
            match &f {
                Frame::Error(e) => match moved(e) {
                    Some((_, to)) => {
                        // The map changed: read it again, go where we were sent.
                        let _ = self.refresh();
                        node = to;
                    }
                    None => return Ok(f),
                },
                _ => return Ok(f),
            }
        }
        Err(Error::err(
            ErrorCode::Io,
            format!("the cluster redirected a command more than {MAX_REDIRECTS} times"),
        ))
    }

    fn authenticate_all(&mut self, password: &Bytes) -> Result<()> {
        let auth = Cmd::new("AUTH").with(password.clone());
        for (addr, r) in self.links.iter_mut() {
            if let Some(Frame::Error(e)) = r.exchange_retrying(std::slice::from_ref(&auth))?.pop() {
                return Err(Error::err(
                    ErrorCode::Auth,
                    format!("{addr}: {}", e.message()),
                ));
            }
            r.password = Some(password.clone());
        }
        Ok(())
    }

    /// Run commands, each where its keys live: every node's share is written before any
    /// reply is read. Replies come back in order; error replies stay in place.
    pub(crate) fn pipeline(&mut self, cmds: Vec<Cmd>) -> Result<Vec<Frame>> {
        let mut groups: Vec<(Address, Vec<usize>)> = Vec::new();
        for (i, c) in cmds.iter().enumerate() {
            let node = self.node_for(&c.0)?;
            match groups.iter_mut().find(|(a, _)| *a == node) {
                Some((_, v)) => v.push(i),
                None => groups.push((node, vec![i])),
            }
        }
        if groups.len() == 1 {
            let node = groups[0].0.clone();
            let mut replies = self.exchange_on(&node, &cmds)?;
            self.follow_moved(&cmds, &mut replies)?;
            return Ok(replies);
        }
        // Write every node's share, then read each node's replies.
        let mut written = Vec::with_capacity(groups.len());
        for (node, idx) in &groups {
            let share: Vec<Cmd> = idx.iter().map(|&i| cmds[i].clone()).collect();
            let sent = self.link(node).and_then(|l| l.send(&share));
            written.push((node.clone(), share, sent.is_ok()));
        }
        let mut replies: Vec<Option<Frame>> = vec![None; cmds.len()];
        for ((node, share, sent), (_, idx)) in written.into_iter().zip(&groups) {
            let got = if sent {
                self.link(&node).and_then(|l| l.receive(share.len()))
            } else {
                Err(Error::err(ErrorCode::Io, "not sent"))
            };
            // A failed node's share is sent again on its own, as the retry policy says.
            let got = match got {
                Ok(f) => f,
                Err(_) => {
                    self.links.remove(&node);
                    self.exchange_on(&node, &share)?
                }
            };
            for (&i, f) in idx.iter().zip(got) {
                replies[i] = Some(f);
            }
        }
        let mut replies: Vec<Frame> = replies
            .into_iter()
            .map(|f| {
                f.unwrap_or_else(|| Frame::error(&Error::err(ErrorCode::Internal, "no reply")))
            })
            .collect();
        self.follow_moved(&cmds, &mut replies)?;
        Ok(replies)
    }

    /// Send again, one by one, the commands a node answered with `MOVED`.
    fn follow_moved(&mut self, cmds: &[Cmd], replies: &mut [Frame]) -> Result<()> {
        let again: Vec<usize> = replies
            .iter()
            .enumerate()
            .filter(|(_, f)| matches!(f, Frame::Error(e) if moved(e).is_some()))
            .map(|(i, _)| i)
            .collect();
        if again.is_empty() {
            return Ok(());
        }
        let _ = self.refresh();
        for i in again {
            replies[i] = self.call(&cmds[i])?;
        }
        Ok(())
    }

    /// Run `cmds` on every node serving slots (a model stored or deleted on every shard).
    /// The first error reply, if any, is returned after all nodes have been asked.
    pub(crate) fn on_every_node(&mut self, cmds: &[Cmd]) -> Result<Vec<Vec<Frame>>> {
        let nodes = self.nodes.clone();
        nodes.iter().map(|n| self.exchange_on(n, cmds)).collect()
    }

    /// Change the retry policy of every connection, present and future.
    pub(crate) fn set_retry_policy(&mut self, policy: RetryPolicy) {
        for r in self.links.values_mut() {
            r.set_policy(policy);
        }
        self.policy = policy;
    }
}

/// A key in the same slot as `key`: `{tag}.suffix`, or `None` when `key` has no tag and
/// cannot be used as one (it holds a brace).
pub(crate) fn key_beside(key: &[u8], suffix: &str) -> Option<Vec<u8>> {
    let tag = hash_tag(key);
    if tag.contains(&b'}') || tag.contains(&b'{') {
        return None;
    }
    let mut k = Vec::with_capacity(tag.len() + suffix.len() + 3);
    k.push(b'{');
    k.extend_from_slice(tag);
    k.push(b'}');
    k.extend_from_slice(suffix.as_bytes());
    (key_slot(&k) == key_slot(key)).then_some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_beside_land_in_the_same_slot() {
        for key in [&b"plain"[..], b"{tag}.x", b"a.{b}.c", b"{}odd", b"x}y"] {
            if let Some(k) = key_beside(key, ".insitu.tmp.0") {
                assert_eq!(
                    key_slot(&k),
                    key_slot(key),
                    "{}",
                    String::from_utf8_lossy(key)
                );
            }
        }
        assert_eq!(
            key_beside(b"plain", ".t").as_deref(),
            Some(&b"{plain}.t"[..])
        );
        assert_eq!(
            key_beside(b"{tag}.x", ".t").as_deref(),
            Some(&b"{tag}.t"[..])
        );
    }

    #[test]
    fn moved_replies_are_read() {
        let e = Error::from_server_text("MOVED 3999 127.0.0.1:6381");
        assert_eq!(
            moved(&e),
            Some((3999, Address::Tcp("127.0.0.1".into(), 6381)))
        );
        assert_eq!(moved(&Error::from_server_text("ERR x")), None);
    }
}
