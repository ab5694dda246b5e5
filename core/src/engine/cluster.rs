//! This node's view of a Redis Cluster: the nodes it knows and which of them owns each of
//! the 16384 hash slots.
//!
//! A view is formed two ways. With Redis' own tool (`redis-cli --cluster create`): each
//! node is given its slots (`CLUSTER ADDSLOTS`), a config epoch (`CLUSTER
//! SET-CONFIG-EPOCH`) and told to meet another (`CLUSTER MEET`); the nodes then exchange
//! their views (`INSITU.GOSSIP`, over the nodes' own RESP ports) until every node's
//! `CLUSTER NODES` agrees. Or statically, for batch jobs: every node derives the same view
//! from the list of node addresses ([`ClusterState::fixed`]).
//!
//! A node's record is changed only by the node itself (its slots, its epoch); each change
//! bumps the record's version, and when views merge the higher version wins. Two nodes
//! claiming one slot: the higher config epoch owns it, as in Redis. There is no failover
//! and no resharding while running: a node that stops answering is flagged `fail?` after
//! `cluster-node-timeout`, and its slots stay its own.
//!
//! The view is saved to `cluster-config-file` (Redis' `nodes.conf` format) after every
//! change and read back at start, so a restarted node keeps its id, its slots and the
//! nodes it knew.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;

use crate::error::{Error, ErrorCode, Result};

/// Hash slots in a cluster.
pub const SLOTS: usize = 16384;
const NOBODY: u16 = u16::MAX;

/// The hash slot of a key (CRC16/XMODEM of the key, or of its `{hash tag}`, mod 16384),
/// as Redis Cluster and its clients compute it.
pub fn key_slot(key: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in hash_tag(key) {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % SLOTS as u16
}

/// What a key's slot is computed from: the text between its first `{` and the next `}`
/// when that is not empty, else the whole key (Redis Cluster's hash tags).
pub fn hash_tag(key: &[u8]) -> &[u8] {
    key.iter()
        .position(|&c| c == b'{')
        .and_then(|a| {
            key[a + 1..]
                .iter()
                .position(|&c| c == b'}')
                .filter(|&len| len > 0)
                .map(|len| &key[a + 1..a + 1 + len])
        })
        .unwrap_or(key)
}

/// One node of the cluster, as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// 40 hex digits.
    pub id: String,
    /// The address clients reach it at.
    pub ip: String,
    /// Its client (RESP) port.
    pub port: u16,
    /// Its cluster bus port as Redis would announce it (port + 10000); insitu's nodes
    /// talk over their client ports.
    pub bus_port: u16,
    /// Its config epoch: the higher one owns a slot two nodes claim.
    pub config_epoch: u64,
    /// Bumped by the node each time it changes its own record.
    pub version: u64,
    /// The slot ranges it claims, ascending.
    pub slots: Vec<(u16, u16)>,
}

impl Node {
    fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }
}

/// Where a request for a slot goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This node owns it.
    Here,
    /// Another node does: `MOVED slot ip:port`.
    Moved(u16, String),
    /// No node does: `CLUSTERDOWN`.
    Unserved,
}

struct View {
    me: usize,
    nodes: Vec<Node>,
    /// For each slot, the index in `nodes` of its owner (`NOBODY`: unassigned).
    owner: Vec<u16>,
    current_epoch: u64,
    /// Addresses told to `CLUSTER MEET` whose node id is not known yet (handshake).
    meets: Vec<(String, u16)>,
    /// When each node (by id) last answered a gossip exchange.
    last_seen: std::collections::HashMap<String, Instant>,
    /// When the gossip links were first tried: a node never seen is failing after the
    /// node timeout from then.
    started: Instant,
}

impl View {
    /// A view of `nodes`, this node at `me`, slot owners computed from their claims.
    fn new(me: usize, nodes: Vec<Node>, current_epoch: u64) -> View {
        let mut v = View {
            me,
            nodes,
            owner: vec![NOBODY; SLOTS],
            current_epoch,
            meets: vec![],
            last_seen: Default::default(),
            started: Instant::now(),
        };
        v.recompute();
        v
    }

    fn recompute(&mut self) {
        self.owner.iter_mut().for_each(|o| *o = NOBODY);
        for (i, n) in self.nodes.iter().enumerate() {
            for &(lo, hi) in &n.slots {
                for s in lo..=hi.min(SLOTS as u16 - 1) {
                    let o = &mut self.owner[s as usize];
                    if *o == NOBODY || self.nodes[*o as usize].config_epoch < n.config_epoch {
                        *o = i as u16;
                    }
                }
            }
        }
        self.current_epoch = self
            .nodes
            .iter()
            .map(|n| n.config_epoch)
            .max()
            .unwrap_or(0)
            .max(self.current_epoch);
    }

    fn me(&self) -> &Node {
        &self.nodes[self.me]
    }

    fn me_mut(&mut self) -> &mut Node {
        let me = self.me;
        let n = &mut self.nodes[me];
        n.version = next_version(n.version);
        n
    }

    /// The slots this node owns, as ranges.
    fn owned_ranges(&self, node: usize) -> Vec<(u16, u16)> {
        let mut out: Vec<(u16, u16)> = Vec::new();
        for (s, &o) in self.owner.iter().enumerate() {
            if o as usize != node || o == NOBODY {
                continue;
            }
            let s = s as u16;
            match out.last_mut() {
                Some((_, hi)) if *hi + 1 == s => *hi = s,
                _ => out.push((s, s)),
            }
        }
        out
    }

    fn set_own_slots(&mut self, slots: &[bool]) {
        let mut ranges: Vec<(u16, u16)> = Vec::new();
        for (s, &mine) in slots.iter().enumerate() {
            if !mine {
                continue;
            }
            let s = s as u16;
            match ranges.last_mut() {
                Some((_, hi)) if *hi + 1 == s => *hi = s,
                _ => ranges.push((s, s)),
            }
        }
        self.me_mut().slots = ranges;
        self.recompute();
    }

    fn own_slot_set(&self) -> Vec<bool> {
        let mut set = vec![false; SLOTS];
        for &(lo, hi) in &self.me().slots {
            for s in lo..=hi {
                set[s as usize] = true;
            }
        }
        set
    }
}

/// A version newer than `old`: the wall clock in ms, so a restarted node's records are
/// newer than what others kept of it.
fn next_version(old: u64) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    now.max(old + 1)
}

fn ranges_text(slots: &[(u16, u16)]) -> String {
    let mut s = String::new();
    for &(lo, hi) in slots {
        if lo == hi {
            let _ = write!(s, " {lo}");
        } else {
            let _ = write!(s, " {lo}-{hi}");
        }
    }
    s
}

fn parse_ranges<'a>(words: impl Iterator<Item = &'a str>) -> Option<Vec<(u16, u16)>> {
    let mut out = Vec::new();
    for w in words {
        if w.starts_with('[') {
            continue; // a migrating/importing slot: never set by insitu
        }
        let (lo, hi) = match w.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let s = w.parse().ok()?;
                (s, s)
            }
        };
        if lo > hi || hi as usize >= SLOTS {
            return None;
        }
        out.push((lo, hi));
    }
    Some(out)
}

/// A node id for a static layout: the same on every node for the same address.
fn fixed_id(ip: &str, port: u16) -> String {
    let a = sha1_smol::Sha1::from(format!("insitu fixed node {ip}:{port}"))
        .digest()
        .to_string();
    a[..40].to_string()
}

/// One node and the slots it owns (`CLUSTER SHARDS`).
#[derive(Debug, Clone)]
pub struct Shard {
    /// The node.
    pub node: Node,
    /// The slot ranges it owns.
    pub slots: Vec<(u16, u16)>,
    /// Whether it has not answered for `cluster-node-timeout`.
    pub failing: bool,
}

/// The nodes of a fixed layout: `host:port` entries separated by commas or spaces (a host
/// name is resolved now: the cluster announces addresses).
///
/// # Errors
/// An entry without a port, or a host that does not resolve.
pub fn parse_node_list(list: &str) -> Result<Vec<(String, u16)>> {
    use std::net::ToSocketAddrs;
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
        .map(|e| {
            let bad = || {
                Error::bad_input(format!(
                    "cluster node '{e}' is not host:port (e.g. 10.0.0.7:6780)"
                ))
            };
            let (host, port) = e.rsplit_once(':').ok_or_else(bad)?;
            let port: u16 = port.parse().ok().filter(|&p| p > 0).ok_or_else(bad)?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.parse::<std::net::IpAddr>().is_ok() {
                return Ok((host.to_string(), port));
            }
            let addr = (host, port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.find(|a| a.is_ipv4()))
                .ok_or_else(|| {
                    Error::bad_input(format!("cluster node '{e}': cannot resolve {host}"))
                })?;
            Ok((addr.ip().to_string(), port))
        })
        .collect()
}

/// The launcher variables that give a process its rank, in the order they are read.
pub const RANK_VARS: [&str; 4] = [
    "SLURM_PROCID",
    "OMPI_COMM_WORLD_RANK",
    "PMI_RANK",
    "PMIX_RANK",
];

/// This node's rank in a fixed layout: `rank` when given (a number), else the first of
/// [`RANK_VARS`] that is set, else the entry whose port is this node's and whose host is
/// this node's address or a loopback one.
///
/// # Errors
/// A rank that is not a number or not in the list, or no way to find it.
pub fn find_rank(
    nodes: &[(String, u16)],
    rank: Option<&str>,
    ip: &str,
    port: u16,
) -> Result<usize> {
    let from = |what: &str, v: &str| -> Result<usize> {
        let r: usize = v
            .trim()
            .parse()
            .map_err(|_| Error::bad_input(format!("{what} is '{v}', not a rank")))?;
        if r >= nodes.len() {
            return Err(Error::bad_input(format!(
                "{what} is {r}, but cluster-nodes lists {} node(s)",
                nodes.len()
            )));
        }
        Ok(r)
    };
    if let Some(r) = rank.filter(|r| !r.is_empty() && *r != "auto") {
        return from("cluster-rank", r);
    }
    for var in RANK_VARS {
        if let Ok(v) = std::env::var(var) {
            return from(var, &v);
        }
    }
    let local = |h: &str| h == ip || h.starts_with("127.") || h == "::1" || h == "0.0.0.0";
    let mine: Vec<usize> = nodes
        .iter()
        .enumerate()
        .filter(|(_, (h, p))| *p == port && local(h))
        .map(|(i, _)| i)
        .collect();
    match mine.as_slice() {
        [r] => Ok(*r),
        _ => Err(Error::bad_input(format!(
            "cannot tell this node's rank among cluster-nodes ({} entries match port {port} here): set cluster-rank, or run under srun/mpirun",
            mine.len()
        ))),
    }
}

/// This node's cluster view (cluster mode only).
pub struct ClusterState {
    view: RwLock<View>,
    config_file: Option<PathBuf>,
    node_timeout: Duration,
}

impl ClusterState {
    /// A node that knows only itself and owns no slot, or the view saved in
    /// `config_file` when it exists (its id and slots; `ip`/`port` update its address).
    ///
    /// # Errors
    /// A config file that cannot be read or parsed (Redis refuses to start on one too).
    pub fn new(
        id: &str,
        ip: &str,
        port: u16,
        config_file: Option<PathBuf>,
        node_timeout: Duration,
    ) -> Result<ClusterState> {
        let view = match config_file.as_deref().filter(|p| p.exists()) {
            Some(path) => load_config(path, ip, port)?,
            None => View::new(
                0,
                vec![Node {
                    id: id.to_string(),
                    ip: ip.to_string(),
                    port,
                    bus_port: port.wrapping_add(10000),
                    config_epoch: 0,
                    version: next_version(0),
                    slots: vec![],
                }],
                0,
            ),
        };
        ClusterState::with_view(view, config_file, node_timeout)
    }

    /// The state holding `view`, saved once to `config_file`.
    fn with_view(
        view: View,
        config_file: Option<PathBuf>,
        node_timeout: Duration,
    ) -> Result<ClusterState> {
        let state = ClusterState {
            view: RwLock::new(view),
            config_file,
            node_timeout,
        };
        state.save_config()?;
        Ok(state)
    }

    /// The view every node of a fixed layout derives alike: `nodes` in rank order, this
    /// node at `rank`, the slots split into equal consecutive ranges.
    ///
    /// # Errors
    /// An empty list, a rank outside it, or more nodes than slots.
    pub fn fixed(
        nodes: &[(String, u16)],
        rank: usize,
        config_file: Option<PathBuf>,
        node_timeout: Duration,
    ) -> Result<ClusterState> {
        if nodes.is_empty() || nodes.len() > SLOTS {
            return Err(Error::bad_input(format!(
                "a cluster needs between 1 and {SLOTS} nodes, not {}",
                nodes.len()
            )));
        }
        if rank >= nodes.len() {
            return Err(Error::bad_input(format!(
                "rank {rank} is not among the {} cluster nodes",
                nodes.len()
            )));
        }
        let n = nodes.len();
        let list = nodes
            .iter()
            .enumerate()
            .map(|(i, (ip, port))| Node {
                id: fixed_id(ip, *port),
                ip: ip.clone(),
                port: *port,
                bus_port: port.wrapping_add(10000),
                config_epoch: i as u64 + 1,
                version: 1,
                slots: vec![((i * SLOTS / n) as u16, ((i + 1) * SLOTS / n - 1) as u16)],
            })
            .collect();
        ClusterState::with_view(View::new(rank, list, n as u64), config_file, node_timeout)
    }

    /// Whether this node knows a node with this id (itself included).
    pub fn knows(&self, id: &str) -> bool {
        self.view.read().nodes.iter().any(|n| n.id == id)
    }

    /// This node's id.
    pub fn my_id(&self) -> String {
        self.view.read().me().id.clone()
    }

    /// Where a request for `slot` goes.
    pub fn route(&self, slot: u16) -> Route {
        let v = self.view.read();
        match v.owner.get(slot as usize).copied() {
            Some(o) if o as usize == v.me => Route::Here,
            Some(NOBODY) | None => Route::Unserved,
            Some(o) => Route::Moved(slot, v.nodes[o as usize].addr()),
        }
    }

    /// Whether this node owns `slot`.
    pub fn owns(&self, slot: u16) -> bool {
        self.route(slot) == Route::Here
    }

    /// Write the view to `cluster-config-file` (`CLUSTER SAVECONFIG`; every change does).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save_config(&self) -> Result<()> {
        let Some(path) = &self.config_file else {
            return Ok(());
        };
        let text = {
            let v = self.view.read();
            let mut t = self.nodes_text_of(&v);
            let _ = writeln!(t, "vars currentEpoch {} lastVoteEpoch 0", v.current_epoch);
            t
        };
        let tmp = path.with_extension("tmp-insitu");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| {
                Error::io(
                    format!("cannot write the cluster config file {}", path.display()),
                    &e,
                )
            })
    }

    /// Give this node `slots` (`CLUSTER ADDSLOTS` / `ADDSLOTSRANGE`), with Redis' checks.
    ///
    /// # Errors
    /// `ERR Slot n is already busy`, `ERR Slot n specified multiple times`.
    pub fn add_slots(&self, slots: &[u16]) -> Result<()> {
        self.change_own_slots(slots, true)
    }

    /// Take `slots` from this node (`CLUSTER DELSLOTS` / `DELSLOTSRANGE`).
    ///
    /// # Errors
    /// `ERR Slot n is already unassigned`, `ERR Slot n specified multiple times`.
    pub fn del_slots(&self, slots: &[u16]) -> Result<()> {
        self.change_own_slots(slots, false)
    }

    /// Add (`add`) or remove `slots` from this node's own, after checking every one as
    /// Redis does: unassigned to add, assigned to remove, none named twice.
    fn change_own_slots(&self, slots: &[u16], add: bool) -> Result<()> {
        {
            let mut v = self.view.write();
            let mut seen = vec![false; SLOTS];
            for &s in slots {
                match (add, v.owner[s as usize] == NOBODY) {
                    (true, false) => {
                        return Err(Error::bad_input(format!("Slot {s} is already busy")))
                    }
                    (false, true) => {
                        return Err(Error::bad_input(format!("Slot {s} is already unassigned")))
                    }
                    _ => {}
                }
                if std::mem::replace(&mut seen[s as usize], true) {
                    return Err(Error::bad_input(format!(
                        "Slot {s} specified multiple times"
                    )));
                }
            }
            let mut own = v.own_slot_set();
            for &s in slots {
                own[s as usize] = add;
            }
            v.set_own_slots(&own);
        }
        self.save_config()
    }

    /// Drop every slot of this node (`CLUSTER FLUSHSLOTS`).
    ///
    /// # Errors
    /// The config file cannot be written.
    pub fn flush_slots(&self) -> Result<()> {
        self.view.write().set_own_slots(&vec![false; SLOTS]);
        self.save_config()
    }

    /// `CLUSTER SET-CONFIG-EPOCH`, allowed only on a node that knows no other, once.
    ///
    /// # Errors
    /// Redis' texts for a node that knows others or has an epoch already.
    pub fn set_config_epoch(&self, epoch: u64) -> Result<()> {
        {
            let mut v = self.view.write();
            if v.nodes.len() > 1 {
                return Err(Error::bad_input(
                    "The user can assign a config epoch only when the node does not know any other node.",
                ));
            }
            if v.me().config_epoch != 0 {
                return Err(Error::bad_input("Node config epoch is already non-zero"));
            }
            v.me_mut().config_epoch = epoch;
            v.current_epoch = v.current_epoch.max(epoch);
            v.recompute();
        }
        self.save_config()
    }

    /// `CLUSTER BUMPEPOCH`: a config epoch above every other; `BUMPED` or `STILL`.
    ///
    /// # Errors
    /// The config file cannot be written.
    pub fn bump_epoch(&self) -> Result<(bool, u64)> {
        let r = {
            let mut v = self.view.write();
            let max_other = v
                .nodes
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != v.me)
                .map(|(_, n)| n.config_epoch)
                .max()
                .unwrap_or(0);
            let mine = v.me().config_epoch;
            if mine == 0 || mine <= max_other {
                let e = v.current_epoch + 1;
                v.me_mut().config_epoch = e;
                v.current_epoch = e;
                v.recompute();
                (true, e)
            } else {
                (false, mine)
            }
        };
        self.save_config()?;
        Ok(r)
    }

    /// `CLUSTER MEET ip port`: greet that node at the next gossip round.
    pub fn meet(&self, ip: &str, port: u16) {
        let mut v = self.view.write();
        let known = v.nodes.iter().any(|n| n.ip == ip && n.port == port)
            || v.meets.iter().any(|(i, p)| i == ip && *p == port);
        if !known {
            v.meets.push((ip.to_string(), port));
        }
    }

    /// `CLUSTER FORGET id`.
    ///
    /// # Errors
    /// Redis' texts for this node's own id and an unknown one.
    pub fn forget(&self, id: &str) -> Result<()> {
        {
            let mut v = self.view.write();
            if v.me().id == id {
                return Err(Error::bad_input(
                    "I tried hard but I can't forget myself...",
                ));
            }
            let Some(i) = v.nodes.iter().position(|n| n.id == id) else {
                return Err(Error::bad_input(format!("Unknown node {id}")));
            };
            v.nodes.remove(i);
            if i < v.me {
                v.me -= 1;
            }
            v.recompute();
        }
        self.save_config()
    }

    /// `CLUSTER RESET`: forget every other node and this node's slots; `hard` also takes
    /// a new id (`new_id`) and zeroes the epochs.
    ///
    /// # Errors
    /// The config file cannot be written.
    pub fn reset(&self, hard: bool, new_id: &str) -> Result<()> {
        {
            let mut v = self.view.write();
            let me = v.me().clone();
            v.nodes = vec![me];
            v.me = 0;
            v.meets.clear();
            let n = v.me_mut();
            n.slots.clear();
            if hard {
                n.id = new_id.to_string();
                n.config_epoch = 0;
            }
            if hard {
                v.current_epoch = 0;
            }
            v.recompute();
        }
        self.save_config()
    }

    /// The addresses gossip talks to: every other node, and those met but not yet known.
    pub fn peers(&self) -> Vec<(Option<String>, String, u16)> {
        let v = self.view.read();
        let mut out: Vec<(Option<String>, String, u16)> = v
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != v.me)
            .map(|(_, n)| (Some(n.id.clone()), n.ip.clone(), n.port))
            .collect();
        out.extend(v.meets.iter().map(|(ip, p)| (None, ip.clone(), *p)));
        out
    }

    /// Record that the node `id` answered a gossip exchange.
    pub fn seen(&self, id: &str) {
        self.view
            .write()
            .last_seen
            .insert(id.to_string(), Instant::now());
    }

    fn failing(&self, v: &View, id: &str) -> bool {
        let since = v.last_seen.get(id).copied().unwrap_or(v.started);
        since.elapsed() > self.node_timeout
    }

    /// This node's view for another node: a first line `insitu-gossip 1 <current
    /// epoch>`, then one line per node: `id ip port bus_port config_epoch version slots...`.
    pub fn gossip(&self) -> String {
        let v = self.view.read();
        let mut t = format!("insitu-gossip 1 {}\n", v.current_epoch);
        for n in &v.nodes {
            let _ = writeln!(
                t,
                "{} {} {} {} {} {}{}",
                n.id,
                n.ip,
                n.port,
                n.bus_port,
                n.config_epoch,
                n.version,
                ranges_text(&n.slots)
            );
        }
        t
    }

    /// Merge another node's view (its [`ClusterState::gossip`]) into this one: nodes not
    /// known are added, newer records replace older ones, this node's own record stays
    /// its own. Returns the id of the node that sent it (its first record).
    ///
    /// # Errors
    /// A malformed view (nothing is merged).
    pub fn merge(&self, text: &str) -> Result<String> {
        let bad = || Error::bad_input("malformed cluster gossip");
        let mut lines = text.lines();
        let head: Vec<&str> = lines.next().ok_or_else(bad)?.split(' ').collect();
        if head.len() != 3 || head[0] != "insitu-gossip" || head[1] != "1" {
            return Err(bad());
        }
        let epoch: u64 = head[2].parse().map_err(|_| bad())?;
        let mut nodes = Vec::new();
        for line in lines {
            let mut w = line.split(' ');
            let mut next = || w.next().ok_or_else(bad);
            let id = next()?.to_string();
            if id.len() != 40 || !id.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad());
            }
            let ip = next()?.to_string();
            let port = next()?.parse().map_err(|_| bad())?;
            let bus_port = next()?.parse().map_err(|_| bad())?;
            let config_epoch = next()?.parse().map_err(|_| bad())?;
            let version = next()?.parse().map_err(|_| bad())?;
            let slots = parse_ranges(w).ok_or_else(bad)?;
            nodes.push(Node {
                id,
                ip,
                port,
                bus_port,
                config_epoch,
                version,
                slots,
            });
        }
        let sender = nodes.first().map(|n| n.id.clone()).ok_or_else(bad)?;
        let changed = {
            let mut v = self.view.write();
            let mut changed = false;
            for n in nodes {
                if n.id == v.me().id {
                    continue;
                }
                v.meets.retain(|(ip, p)| !(*ip == n.ip && *p == n.port));
                match v.nodes.iter().position(|k| k.id == n.id) {
                    Some(i) if v.nodes[i].version < n.version => {
                        v.nodes[i] = n;
                        changed = true;
                    }
                    Some(_) => {}
                    None => {
                        // A node at the address of one known under another id has
                        // restarted with a new identity: the newer record wins.
                        if let Some(i) = v
                            .nodes
                            .iter()
                            .position(|k| k.ip == n.ip && k.port == n.port)
                        {
                            if i == v.me || v.nodes[i].version >= n.version {
                                continue;
                            }
                            v.nodes.remove(i);
                            if i < v.me {
                                v.me -= 1;
                            }
                        }
                        v.nodes.push(n);
                        changed = true;
                    }
                }
            }
            if epoch > v.current_epoch {
                v.current_epoch = epoch;
                changed = true;
            }
            if changed {
                v.recompute();
            }
            changed
        };
        if changed {
            self.save_config()?;
        }
        Ok(sender)
    }

    fn nodes_text_of(&self, v: &View) -> String {
        let mut t = String::new();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        for (i, n) in v.nodes.iter().enumerate() {
            let mut flags = if i == v.me { "myself,master" } else { "master" }.to_string();
            if i != v.me && self.failing(v, &n.id) {
                flags.push_str(",fail?");
            }
            let link = if i == v.me || !self.failing(v, &n.id) {
                "connected"
            } else {
                "disconnected"
            };
            let _ = writeln!(
                t,
                "{} {}:{}@{} {flags} - 0 {} {} {link}{}",
                n.id,
                n.ip,
                n.port,
                n.bus_port,
                if i == v.me { 0 } else { now_ms },
                n.config_epoch,
                ranges_text(&v.owned_ranges(i))
            );
        }
        t
    }

    /// `CLUSTER NODES`.
    pub fn nodes_text(&self) -> String {
        self.nodes_text_of(&self.view.read())
    }

    /// Every node serving slots, with its ranges, in slot order: `CLUSTER SLOTS`.
    pub fn slot_ranges(&self) -> Vec<(u16, u16, Node)> {
        let v = self.view.read();
        let mut out = Vec::new();
        for (i, n) in v.nodes.iter().enumerate() {
            for (lo, hi) in v.owned_ranges(i) {
                out.push((lo, hi, n.clone()));
            }
        }
        out.sort_by_key(|(lo, _, _)| *lo);
        out
    }

    /// Every node with its owned ranges, this node first: `CLUSTER SHARDS`.
    pub fn shards(&self) -> Vec<Shard> {
        let v = self.view.read();
        let mut out: Vec<_> = v
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| Shard {
                node: n.clone(),
                slots: v.owned_ranges(i),
                failing: self.failing(&v, &n.id) && i != v.me,
            })
            .collect();
        out.rotate_left(v.me);
        out
    }

    /// `CLUSTER INFO`'s text.
    pub fn info_text(&self) -> String {
        let v = self.view.read();
        let assigned = v.owner.iter().filter(|&&o| o != NOBODY).count();
        let size = (0..v.nodes.len())
            .filter(|&i| v.owner.iter().any(|&o| o as usize == i && o != NOBODY))
            .count();
        let failing = (0..v.nodes.len())
            .filter(|&i| i != v.me && self.failing(&v, &v.nodes[i].id))
            .count();
        format!(
            "cluster_state:{}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{assigned}\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{}\r\ncluster_size:{size}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\ncluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\ncluster_nodes_failing:{failing}\r\n",
            if assigned == SLOTS { "ok" } else { "fail" },
            v.nodes.len() + v.meets.len(),
            v.current_epoch,
            v.me().config_epoch,
        )
    }

    /// The number of nodes this node knows (itself included).
    pub fn known_nodes(&self) -> usize {
        let v = self.view.read();
        v.nodes.len() + v.meets.len()
    }
}

/// Read a `nodes.conf`: the `myself` line gives this node's id and slots (its address is
/// taken from the current settings), the other lines the nodes it knew.
fn load_config(path: &Path, ip: &str, port: u16) -> Result<View> {
    let bad = |why: &str| {
        Error::err(
            ErrorCode::BadInput,
            format!("cluster config file {} is invalid: {why}", path.display()),
        )
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::io(
            format!("cannot read the cluster config file {}", path.display()),
            &e,
        )
    })?;
    let mut nodes = Vec::new();
    let mut me = None;
    let mut current_epoch = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let w: Vec<&str> = line.split(' ').collect();
        if w[0] == "vars" {
            for pair in w[1..].chunks(2) {
                if let [k, v] = pair {
                    if *k == "currentEpoch" {
                        current_epoch = v.parse().map_err(|_| bad("currentEpoch"))?;
                    }
                }
            }
            continue;
        }
        if w.len() < 8 {
            return Err(bad("a node line has fewer than 8 fields"));
        }
        let (addr, _) = w[1].split_once(',').unwrap_or((w[1], ""));
        let (hostport, bus) = addr.split_once('@').ok_or_else(|| bad("an address"))?;
        let (h, p) = hostport.rsplit_once(':').ok_or_else(|| bad("an address"))?;
        let myself = w[2].split(',').any(|f| f == "myself");
        let slots = parse_ranges(w[8..].iter().copied()).ok_or_else(|| bad("slots"))?;
        let node = Node {
            id: w[0].to_string(),
            ip: if myself {
                ip.to_string()
            } else {
                h.to_string()
            },
            port: if myself {
                port
            } else {
                p.parse().map_err(|_| bad("a port"))?
            },
            bus_port: if myself {
                port.wrapping_add(10000)
            } else {
                bus.parse().map_err(|_| bad("a bus port"))?
            },
            config_epoch: w[6].parse().map_err(|_| bad("a config epoch"))?,
            version: if myself { next_version(0) } else { 0 },
            slots,
        };
        if myself {
            me = Some(nodes.len());
        }
        nodes.push(node);
    }
    let me = me.ok_or_else(|| bad("no line for myself"))?;
    Ok(View::new(me, nodes, current_epoch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_slots_match_redis() {
        // Values from Redis' CLUSTER KEYSLOT.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        // An empty first tag means the whole key; only the first tag counts.
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        // CRC16/XMODEM check value of "123456789" is 0x31C3 (< 16384).
        assert_eq!(key_slot(b"123456789"), 0x31C3);
    }

    fn node(id: char, port: u16) -> ClusterState {
        let id: String = std::iter::repeat_n(id, 40).collect();
        ClusterState::new(&id, "127.0.0.1", port, None, Duration::from_secs(15)).expect("node")
    }

    #[test]
    fn views_merge_until_every_node_agrees() {
        let (a, b, c) = (node('a', 7001), node('b', 7002), node('c', 7003));
        a.add_slots(&(0..5461).collect::<Vec<_>>()).expect("a");
        b.add_slots(&(5461..10923).collect::<Vec<_>>()).expect("b");
        c.add_slots(&(10923..16384).collect::<Vec<_>>()).expect("c");
        for (i, n) in [&a, &b, &c].iter().enumerate() {
            n.set_config_epoch(i as u64 + 1).expect("epoch");
        }
        b.meet("127.0.0.1", 7001);
        c.meet("127.0.0.1", 7001);
        assert_eq!(b.peers(), vec![(None, "127.0.0.1".to_string(), 7001)]);
        // b greets a: a learns b from the request, b learns a from the reply.
        assert_eq!(a.merge(&b.gossip()).expect("a<-b"), b.my_id());
        b.merge(&a.gossip()).expect("b<-a");
        assert!(b.peers().iter().all(|(id, _, _)| id.is_some()));
        a.merge(&c.gossip()).expect("a<-c");
        c.merge(&a.gossip()).expect("c<-a");
        b.merge(&a.gossip()).expect("b<-a again");
        let strip = |t: String| -> Vec<String> {
            let mut l: Vec<String> = t
                .lines()
                .map(|l| {
                    let w: Vec<&str> = l.split(' ').collect();
                    format!("{} {}", w[0], w[8..].join(" "))
                })
                .collect();
            l.sort();
            l
        };
        assert_eq!(strip(a.nodes_text()), strip(b.nodes_text()));
        assert_eq!(strip(a.nodes_text()), strip(c.nodes_text()));
        assert_eq!(a.known_nodes(), 3);
        assert!(a
            .info_text()
            .starts_with("cluster_state:ok\r\ncluster_slots_assigned:16384\r\n"));
        assert_eq!(a.route(0), Route::Here);
        assert_eq!(a.route(5461), Route::Moved(5461, "127.0.0.1:7002".into()));
        assert_eq!(c.route(100), Route::Moved(100, "127.0.0.1:7001".into()));
        assert_eq!(
            a.add_slots(&[10]).expect_err("busy").text(),
            "ERR Slot 10 is already busy"
        );
        assert_eq!(
            a.set_config_epoch(9).expect_err("knows others").text(),
            "ERR The user can assign a config epoch only when the node does not know any other node."
        );
    }

    #[test]
    fn a_fixed_layout_is_the_same_on_every_node() {
        let nodes: Vec<(String, u16)> =
            (0..3).map(|i| ("10.0.0.1".to_string(), 6380 + i)).collect();
        let views: Vec<ClusterState> = (0..3)
            .map(|r| ClusterState::fixed(&nodes, r, None, Duration::from_secs(15)).expect("fixed"))
            .collect();
        let ranges: Vec<(u16, u16)> = views[0]
            .slot_ranges()
            .iter()
            .map(|(lo, hi, _)| (*lo, *hi))
            .collect();
        assert_eq!(ranges, vec![(0, 5460), (5461, 10921), (10922, 16383)]);
        for (r, v) in views.iter().enumerate() {
            assert_eq!(
                v.slot_ranges()
                    .iter()
                    .map(|(_, _, n)| n.id.clone())
                    .collect::<Vec<_>>(),
                views[0]
                    .slot_ranges()
                    .iter()
                    .map(|(_, _, n)| n.id.clone())
                    .collect::<Vec<_>>()
            );
            assert!(v.owns(ranges[r].0) && v.owns(ranges[r].1));
        }
        assert!(ClusterState::fixed(&nodes, 3, None, Duration::from_secs(1)).is_err());
    }

    #[test]
    fn the_config_file_brings_back_identity_and_slots() {
        let dir = std::env::temp_dir().join(format!("insitu-cluster-conf-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("nodes.conf");
        let _ = std::fs::remove_file(&path);
        let at = |id: &str| {
            ClusterState::new(
                id,
                "127.0.0.1",
                7010,
                Some(path.clone()),
                Duration::from_secs(15),
            )
        };
        let id: String = std::iter::repeat_n('d', 40).collect();
        let s = at(&id).expect("new");
        s.add_slots(&[1, 2, 3, 100]).expect("add");
        s.set_config_epoch(4).expect("epoch");
        let other: String = std::iter::repeat_n('e', 40).collect();
        let back = at(&other).expect("load");
        assert_eq!(back.my_id(), id);
        assert!(
            back.nodes_text().ends_with(" 4 connected 1-3 100\n"),
            "{}",
            back.nodes_text()
        );
        assert!(std::fs::read_to_string(&path)
            .expect("file")
            .contains("vars currentEpoch 4 lastVoteEpoch 0"));
        std::fs::write(&path, "garbage\n").expect("write");
        assert!(at(&other).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn malformed_gossip_changes_nothing() {
        let a = node('a', 7001);
        for bad in [
            "",
            "hello",
            "insitu-gossip 1 x\n",
            "insitu-gossip 1 0\nshort 1 2\n",
            "insitu-gossip 1 0\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb 127.0.0.1 1 2 3 4 99999\n",
        ] {
            assert!(a.merge(bad).is_err(), "{bad:?}");
        }
        assert_eq!(a.known_nodes(), 1);
    }
}
