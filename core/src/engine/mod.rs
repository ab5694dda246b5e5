//! The engine: the store plus configuration, statistics and persistence. Every operation of
//! insitu is a method on the engine or a command it executes; the server runs commands on
//! behalf of RESP connections, and in-process clients will call the same methods directly.

pub mod clients;
pub mod cluster;
mod ops;
pub mod settings;

pub use ops::{model_missing, tensor_missing, LoadedModel, Run, RunOptions, WaitFor};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::engine::clients::{ClientInfo, Clients};
use crate::error::{Error, ErrorCode, Result};
use crate::model::pool::InferencePool;
use crate::model::{Model, ModelConfig, Runner};
use crate::persistence::journal::{AofConfig, Journal};
use crate::persistence::snapshot;
use crate::protocol::limits::Limits;
use crate::store::{Store, Value};

/// Where `insitu serve` listens (the engine itself takes listeners from its caller).
#[derive(Debug, Clone)]
pub struct ListenConfig {
    /// TCP address to bind.
    pub bind: String,
    /// TCP port (0: a free one; `None`: no TCP listener).
    pub port: Option<u16>,
    /// Unix socket path (`None`: no Unix socket).
    pub unixsocket: Option<PathBuf>,
    /// Permissions of the Unix socket file.
    pub unixsocketperm: u32,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            bind: "127.0.0.1".into(),
            port: Some(6780),
            unixsocket: Some(PathBuf::from("/tmp/insitu.sock")),
            unixsocketperm: 0o700,
        }
    }
}

/// How an engine is set up. `Default` is what `insitu serve` uses without flags; every
/// field a user sets is a row of [`crate::engine::settings::SETTINGS`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Input limits.
    pub limits: Limits,
    /// Memory limit for stored data in bytes (`0` = unlimited).
    pub maxmemory: usize,
    /// Bytes of warm shared-memory blocks kept ready for clients' first transfers.
    pub shm_heap_reserve: usize,
    /// Most concurrent client connections.
    pub maxclients: usize,
    /// Password clients must send with `AUTH` (none: no authentication).
    pub requirepass: Option<String>,
    /// Directory of the snapshot file.
    pub dir: PathBuf,
    /// Snapshot file name inside `dir`.
    pub dbfilename: String,
    /// Append-only persistence (its directory lives under `dir`).
    pub aof: AofConfig,
    /// Where `insitu serve` listens.
    pub listen: ListenConfig,
    /// TCP port bound, reported by `INFO` (0 when not listening on TCP).
    pub port: u16,
    /// Model execution settings.
    pub models: ModelConfig,
    /// Present this server as a one-node Redis Cluster owning every slot, for clients in
    /// cluster mode (SmartRedis' default when `SR_DB_TYPE` is unset).
    pub cluster_enabled: bool,
    /// The IP `CLUSTER SLOTS` announces (default: `listen.bind`, or 127.0.0.1 for a
    /// wildcard address).
    pub cluster_announce_ip: Option<String>,
    /// How a cluster is formed and kept.
    pub cluster: ClusterConfig,
    /// The KServe v2 front ends (gRPC, HTTP, metrics) and the model repository.
    pub serving: ServingConfig,
    /// Log filter (tracing's env-filter syntax) of `insitu serve`.
    pub log: String,
    /// Redis parameters set with `CONFIG SET` that are stored and reported
    /// (`maxmemory-policy`...); only `busy-reply-threshold` (`lua-time-limit`, a script's
    /// time limit) takes effect. Absent ones read as Redis' defaults.
    pub redis_params: std::collections::BTreeMap<&'static str, String>,
}

/// Whether and where a KServe front end listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PortSetting {
    /// Triton's port when a model repository is given, else off.
    #[default]
    Auto,
    /// Not served.
    Off,
    /// This port (0: a free one, reported once bound).
    Port(u16),
}

impl PortSetting {
    /// The port to bind, given Triton's default for this front end and whether a model
    /// repository was given (`None`: off).
    pub fn resolve(self, triton_default: u16, repository: bool) -> Option<u16> {
        match self {
            PortSetting::Auto => repository.then_some(triton_default),
            PortSetting::Off => None,
            PortSetting::Port(p) => Some(p),
        }
    }
}

/// How the model repository's models are loaded (Triton's `--model-control-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModelControl {
    /// Every model at start; no loads or unloads through the API.
    #[default]
    None,
    /// At start, then the repository is scanned for added, changed and removed models.
    Poll,
    /// Only what `load-model` names at start; then loads and unloads through the API.
    Explicit,
}

/// The KServe v2 front ends (`--grpc-port`, `--http-port`, `--metrics-port`) and the
/// model repository they serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingConfig {
    /// gRPC (`inference.GRPCInferenceService`); Triton's port is 8001.
    pub grpc_port: PortSetting,
    /// HTTP/REST; Triton's port is 8000.
    pub http_port: PortSetting,
    /// Prometheus `/metrics`; Triton's port is 8002.
    pub metrics_port: PortSetting,
    /// `DIR/<model>/<version>/model.onnx` (+ `config.pbtxt`), loaded as models.
    pub model_repository: Option<PathBuf>,
    /// How repository models are loaded.
    pub model_control: ModelControl,
    /// Seconds between repository scans in poll mode.
    pub repository_poll_secs: u64,
    /// Models loaded at start in explicit mode (`*`: all).
    pub load_models: Vec<String>,
    /// Largest gRPC message or HTTP body accepted, in bytes.
    pub max_message_bytes: usize,
    /// Most system shared-memory regions registered at once.
    pub max_shm_regions: usize,
}

impl Default for ServingConfig {
    fn default() -> Self {
        ServingConfig {
            grpc_port: PortSetting::Auto,
            http_port: PortSetting::Auto,
            metrics_port: PortSetting::Auto,
            model_repository: None,
            model_control: ModelControl::None,
            repository_poll_secs: 15,
            load_models: Vec::new(),
            max_message_bytes: 256 << 20,
            max_shm_regions: 256,
        }
    }
}

/// Cluster settings (cluster mode only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Where the cluster view is saved, under `dir` (Redis' `cluster-config-file`).
    pub config_file: String,
    /// A node that has not answered for this long is flagged failing (ms).
    pub node_timeout_ms: u64,
    /// A fixed layout: every node's `host:port`, comma-separated, in rank order (empty:
    /// formed with `redis-cli --cluster create`).
    pub nodes: String,
    /// This node's rank in `nodes` (`None`: from SLURM_PROCID, OMPI_COMM_WORLD_RANK,
    /// PMI_RANK or PMIX_RANK, else the entry with this node's address).
    pub rank: Option<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            config_file: "nodes.conf".into(),
            node_timeout_ms: 15_000,
            nodes: String::new(),
            rank: None,
        }
    }
}

impl EngineConfig {
    /// Whether this server is a Redis Cluster node (`cluster-enabled`, or a fixed layout
    /// in `cluster-nodes`).
    pub fn cluster_mode(&self) -> bool {
        self.cluster_enabled || !self.cluster.nodes.is_empty()
    }

    /// The address `CLUSTER SLOTS` announces for this node, when cluster mode is on.
    pub fn cluster_address(&self) -> Option<(String, u16)> {
        self.cluster_mode().then(|| {
            let ip = self.cluster_announce_ip.clone().unwrap_or_else(|| {
                match self.listen.bind.split_whitespace().next().unwrap_or("") {
                    "0.0.0.0" | "::" | "*" | "" => "127.0.0.1".to_string(),
                    b => b.to_string(),
                }
            });
            (ip, self.port)
        })
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            limits: Limits::default(),
            maxmemory: 0,
            shm_heap_reserve: 256 << 20,
            maxclients: 10_000,
            requirepass: None,
            dir: PathBuf::from("."),
            dbfilename: "insitu.snapshot".into(),
            aof: AofConfig::default(),
            listen: ListenConfig::default(),
            port: 0,
            models: ModelConfig::default(),
            cluster_enabled: false,
            cluster_announce_ip: None,
            cluster: ClusterConfig::default(),
            serving: ServingConfig::default(),
            log: "info,ort=warn".into(),
            redis_params: Default::default(),
        }
    }
}

/// Counters reported by `INFO`.
#[derive(Default)]
pub struct Stats {
    /// Connections accepted since start.
    pub connections_received: AtomicU64,
    /// Connections refused at the `maxclients` limit.
    pub rejected_connections: AtomicU64,
    /// Connections open now.
    pub connected_clients: AtomicUsize,
    /// Commands executed since start.
    pub commands_processed: AtomicU64,
    /// Client ids handed out.
    pub next_client_id: AtomicU64,
    /// Bytes read from client sockets.
    pub net_input_bytes: AtomicU64,
    /// Bytes written to client sockets.
    pub net_output_bytes: AtomicU64,
    /// Model runs done on a connection's I/O thread (see `ModelConfig::inline_max_us`).
    pub inline_model_runs: AtomicU64,
}

/// The engine. Share it as `Arc<Engine>`.
pub struct Engine {
    store: Store,
    config: RwLock<EngineConfig>,
    /// Bumped whenever limits change, so connections re-read them cheaply.
    limits_generation: AtomicU64,
    /// Connection and command counters.
    pub stats: Stats,
    started: Instant,
    last_save: AtomicI64,
    changes_at_last_save: AtomicU64,
    save_lock: Mutex<()>,
    bgsave_in_progress: AtomicBool,
    last_bgsave_ok: AtomicBool,
    pool: Mutex<Option<Arc<InferencePool>>>,
    txn: RwLock<()>,
    /// The id this node takes when it enters cluster mode without a saved one: 40 hex
    /// digits, random per start.
    node_id: String,
    /// The connected clients (`CLIENT LIST`, `CLIENT KILL`).
    pub clients: Clients,
    /// Lua script bodies by the lower-case hex SHA1 of their text (`EVALSHA`, `SCRIPT
    /// LOAD`).
    scripts: Mutex<HashMap<String, Bytes>>,
    /// The append-only journal, once persistence is loaded with it on.
    journal: std::sync::OnceLock<Arc<crate::persistence::journal::Journal>>,
    /// Shared-memory blocks that hold large tensors for clients on this node.
    heap: Arc<crate::protocol::shm::Heap>,
    /// The cluster view, in cluster mode.
    cluster: std::sync::OnceLock<cluster::ClusterState>,
    /// Set by `SHUTDOWN`: the server serving this engine stops.
    shutdown: tokio::sync::watch::Sender<bool>,
}

/// A fresh node id: 40 random hex digits.
pub fn new_node_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    (0..3)
        .map(|i| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(i);
            format!("{:016x}", h.finish())
        })
        .collect::<String>()[..40]
        .to_string()
}

/// Seconds since the Unix epoch.
pub fn unix_time() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Per-connection state.
#[derive(Debug)]
pub struct Session {
    /// The client: id, name, protocol... (`CLIENT`, `HELLO`); listed by `CLIENT LIST`
    /// while its connection is open.
    pub client: Arc<ClientInfo>,
    /// Whether `AUTH` succeeded (or no password is set).
    pub authenticated: bool,
    /// Set by `QUIT`: close after the reply.
    pub quit: bool,
    /// Run inference on the calling thread when a model does not batch (in-process
    /// clients); server connections never do, their threads serve I/O.
    pub inline_inference: bool,
    /// Whether the connection is a Unix socket (shared-memory transfers possible).
    pub unix: bool,
    /// The peer process on a Unix socket (`SO_PEERCRED`), when known.
    pub peer_pid: Option<u32>,
    /// File descriptors received with the connection's bytes, in order (shared memory).
    pub fds_in: std::collections::VecDeque<std::os::fd::OwnedFd>,
    /// The connection's use of the shared-memory heap (Unix sockets, after `INSITU.SHM`).
    pub shm: Option<crate::protocol::shm::ShmConn>,
    /// Commands queued since `MULTI`.
    pub multi: Option<Vec<Vec<Bytes>>>,
    /// A command was refused while queueing: `EXEC` will abort.
    pub multi_failed: bool,
    /// In cluster mode, the slot of the keys of the commands queued since `MULTI`.
    pub multi_slot: Option<u16>,
    /// `ASKING` was the previous command (cluster mode).
    pub asking: bool,
}

impl Engine {
    /// An engine with `config`. Does not load a snapshot: see [`Engine::load_snapshot`].
    pub fn new(config: EngineConfig) -> Engine {
        let heap = crate::protocol::shm::Heap::new(config.shm_heap_reserve);
        heap.set_limits(config.maxmemory, config.shm_heap_reserve);
        Engine {
            store: Store::new(config.maxmemory),
            config: RwLock::new(config),
            limits_generation: AtomicU64::new(0),
            stats: Stats::default(),
            started: Instant::now(),
            last_save: AtomicI64::new(unix_time()),
            changes_at_last_save: AtomicU64::new(0),
            save_lock: Mutex::new(()),
            bgsave_in_progress: AtomicBool::new(false),
            last_bgsave_ok: AtomicBool::new(true),
            pool: Mutex::new(None),
            txn: RwLock::new(()),
            node_id: new_node_id(),
            cluster: std::sync::OnceLock::new(),
            shutdown: tokio::sync::watch::Sender::new(false),
            clients: Clients::default(),
            scripts: Mutex::default(),
            journal: std::sync::OnceLock::new(),
            heap,
        }
    }

    /// The shared-memory heap (Unix-socket clients' large tensors).
    pub fn heap(&self) -> &Arc<crate::protocol::shm::Heap> {
        &self.heap
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A copy of the configuration.
    pub fn config(&self) -> EngineConfig {
        self.config.read().clone()
    }

    /// Run `f` on the configuration under its lock (for cheap reads of one field).
    pub fn with_config<R>(&self, f: impl FnOnce(&EngineConfig) -> R) -> R {
        f(&self.config.read())
    }

    /// Change the configuration.
    pub fn update_config(&self, f: impl FnOnce(&mut EngineConfig)) {
        let mut c = self.config.write();
        f(&mut c);
        self.store.set_memory_limit(c.maxmemory);
        self.heap.set_limits(c.maxmemory, c.shm_heap_reserve);
        self.limits_generation.fetch_add(1, Ordering::Release);
    }

    /// The current limits and their generation number.
    pub fn limits(&self) -> (Limits, u64) {
        let g = self.limits_generation.load(Ordering::Acquire);
        (self.config.read().limits.clone(), g)
    }

    /// The generation of the limits: changes whenever they do.
    pub fn limits_generation(&self) -> u64 {
        self.limits_generation.load(Ordering::Acquire)
    }

    /// Seconds since the engine started.
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// A new session for a connection.
    pub fn new_session(&self) -> Session {
        Session {
            client: Arc::new(ClientInfo::new(
                self.stats.next_client_id.fetch_add(1, Ordering::Relaxed) + 1,
                String::new(),
                String::new(),
                false,
            )),
            authenticated: self.config.read().requirepass.is_none(),
            quit: false,
            inline_inference: false,
            unix: false,
            peer_pid: None,
            fds_in: Default::default(),
            shm: None,
            multi: None,
            multi_failed: false,
            multi_slot: None,
            asking: false,
        }
    }

    /// Count one command in `INFO stats` (`total_commands_processed`).
    pub(crate) fn count_command(&self) {
        self.stats
            .commands_processed
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Ask the server serving this engine to stop (`SHUTDOWN`), as a signal would.
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Completes once [`Engine::request_shutdown`] has been called.
    pub async fn shutdown_requested(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|&stop| stop).await;
    }

    /// The cluster view, in cluster mode.
    pub fn cluster(&self) -> Option<&cluster::ClusterState> {
        self.cluster.get()
    }

    /// Enter cluster mode with `state`: from now on keyed commands are routed by their
    /// slot. Once per engine.
    ///
    /// # Errors
    /// When the engine is in cluster mode already.
    pub fn start_cluster(&self, state: cluster::ClusterState) -> Result<()> {
        self.cluster
            .set(state)
            .map_err(|_| Error::err(ErrorCode::Internal, "cluster mode started twice"))
    }

    /// The cluster view the settings describe: a fixed layout from `cluster-nodes` (this
    /// node's rank from `cluster-rank`, the launcher's environment or its own address), or
    /// the one saved in `cluster-config-file` (a node that knows only itself when there is
    /// none), addressed as `cluster-announce-ip` and the bound port.
    ///
    /// # Errors
    /// A rank that cannot be found, a malformed node list or config file.
    pub fn cluster_from_settings(&self) -> Result<cluster::ClusterState> {
        let cfg = self.config();
        let (ip, port) = cfg
            .cluster_address()
            .unwrap_or_else(|| ("127.0.0.1".to_string(), cfg.port));
        let file =
            (!cfg.cluster.config_file.is_empty()).then(|| cfg.dir.join(&cfg.cluster.config_file));
        let timeout = std::time::Duration::from_millis(cfg.cluster.node_timeout_ms);
        if cfg.cluster.nodes.is_empty() {
            return cluster::ClusterState::new(&self.node_id, &ip, port, file, timeout);
        }
        // `self`: a one-node cluster owning every slot.
        if cfg.cluster.nodes.trim() == "self" {
            return cluster::ClusterState::fixed(&[(ip, port)], 0, file, timeout);
        }
        let nodes = cluster::parse_node_list(&cfg.cluster.nodes)?;
        let rank = cluster::find_rank(&nodes, cfg.cluster.rank.as_deref(), &ip, port)?;
        cluster::ClusterState::fixed(&nodes, rank, file, timeout)
    }

    /// Data commands hold this shared; `EXEC` holds it exclusively.
    pub fn transaction_lock(&self) -> &RwLock<()> {
        &self.txn
    }

    /// The append-only journal, when persistence is on.
    pub fn journal(&self) -> Option<&Arc<crate::persistence::journal::Journal>> {
        self.journal.get()
    }

    /// The cache of Lua scripts.
    pub(crate) fn scripts(&self) -> &Mutex<HashMap<String, Bytes>> {
        &self.scripts
    }

    /// The inference threads, started on first use.
    ///
    /// # Errors
    /// When the threads cannot be spawned.
    pub fn inference_pool(&self) -> Result<Arc<InferencePool>> {
        let mut slot = self.pool.lock();
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let n = self.config.read().models.threads;
        let p = Arc::new(
            InferencePool::new(n).map_err(|e| Error::io("cannot start inference threads", &e))?,
        );
        *slot = Some(p.clone());
        Ok(p)
    }

    /// Whether the inference threads have been started.
    pub fn inference_pool_started(&self) -> bool {
        self.pool.lock().is_some()
    }

    /// The runner of a stored model (sessions created on first use).
    ///
    /// # Errors
    /// ONNX Runtime missing, or the model cannot be loaded.
    pub fn model_runner(&self, model: &Model) -> Result<Arc<Runner>> {
        if let Some(r) = model.loaded_runner() {
            return Ok(r);
        }
        let pool = self.inference_pool()?;
        let cfg = self.config.read().models.clone();
        model.runner(&pool, &cfg)
    }

    /// The path of the snapshot file.
    pub fn snapshot_path(&self) -> PathBuf {
        let c = self.config.read();
        c.dir.join(&c.dbfilename)
    }

    /// Load the snapshot file when it exists; returns the number of keys loaded.
    ///
    /// # Errors
    /// When the file exists but cannot be read or is corrupt: the caller should refuse
    /// to start rather than run empty and overwrite it at the next `SAVE`.
    pub fn load_snapshot(&self) -> Result<usize> {
        let path = self.snapshot_path();
        if !path.exists() {
            return Ok(0);
        }
        let entries = snapshot::load(&path)?;
        let n = entries.len();
        self.loading(|| {
            for (k, v) in entries {
                self.store.set(k, v)?;
            }
            Ok(())
        })?;
        self.warm_models();
        self.changes_at_last_save
            .store(self.store.write_count(), Ordering::Relaxed);
        Ok(n)
    }

    /// Run `f` (a load from disk) with the memory limit lifted: what was stored comes
    /// back even when `maxmemory` is now lower (writes then fail with `OOM` until memory
    /// is freed, as Redis does).
    fn loading<R>(&self, f: impl FnOnce() -> Result<R>) -> Result<R> {
        let limit = self.config.read().maxmemory;
        self.store.set_memory_limit(0);
        let r = f();
        self.store.set_memory_limit(limit);
        let used = self.store.used_memory();
        if limit != 0 && used > limit {
            tracing::warn!(
                "loaded {used} bytes, above maxmemory {limit}: writes fail with OOM until memory is freed"
            );
        }
        r
    }

    /// Load models' sessions now, so the first request does not pay for it and a model
    /// that cannot run is reported at start.
    fn warm_models(&self) {
        for (k, v) in self.store.snapshot() {
            if let Value::Model(m) = &v {
                if let Err(e) = self.model_runner(m) {
                    tracing::warn!(
                        "model {} restored but cannot run yet: {e}",
                        String::from_utf8_lossy(&k)
                    );
                }
            }
        }
    }

    /// The directory of the append-only files.
    pub fn aof_dir(&self) -> PathBuf {
        let c = self.config.read();
        c.dir.join(&c.aof.dirname)
    }

    /// Restore what the server held before it stopped, and start journaling when
    /// append-only persistence is on: from the append-only files when they exist (the
    /// snapshot is then ignored, as Redis does), else from the snapshot, which with
    /// `appendonly` on becomes the journal's first base. Returns the keys (or journal
    /// records) loaded. Call once, before serving.
    ///
    /// # Errors
    /// Files that exist but cannot be read or are damaged: the caller should refuse to
    /// start rather than run empty.
    pub fn load_persistence(self: &Arc<Self>) -> Result<usize> {
        let aof = self.config.read().aof.clone();
        if !aof.enabled {
            return self.load_snapshot();
        }
        let dir = self.aof_dir();
        let mut loaded = 0;
        if !dir.join(format!("{}.manifest", aof.filename)).exists() {
            loaded = self.load_snapshot()?;
        }
        let (journal, replayed) = self.loading(|| Journal::open(&dir, &aof, &self.store))?;
        self.store.set_change_sink(journal.clone());
        let _ = self.journal.set(journal);
        self.warm_models();
        self.changes_at_last_save
            .store(self.store.write_count(), Ordering::Relaxed);
        self.start_journal_thread();
        Ok(loaded + replayed)
    }

    /// The once-a-second journal work (write, fsync, automatic rewrite) on its own
    /// thread, for as long as the engine lives.
    fn start_journal_thread(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("insitu-aof".into())
            .spawn(move || loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
                let Some(engine) = weak.upgrade() else {
                    return;
                };
                let Some(j) = engine.journal() else {
                    return;
                };
                let cfg = engine.config.read().aof.clone();
                let due = j.tick(&cfg);
                if due && j.begin_rewrite().is_ok() {
                    tracing::info!("append-only file grew: rewriting it");
                    let _ = j.rewrite(&engine.store);
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the append-only file thread: {e}");
        }
    }

    /// Make the journal's records durable as the fsync policy asks, before replies that
    /// acknowledge them are sent (the server calls this before every write to a client).
    ///
    /// # Errors
    /// With `appendfsync always`, when the journal cannot be written: the replies must
    /// not be sent.
    pub fn journal_flush(&self) -> Result<()> {
        match self.journal() {
            Some(j) => j.flush_for_reply(),
            None => Ok(()),
        }
    }

    /// Write and fsync everything journaled (at shutdown).
    pub fn journal_sync(&self) {
        if let Some(j) = self.journal() {
            let p = j.policy();
            j.set_policy(crate::persistence::journal::FsyncPolicy::Always);
            if let Err(e) = j.flush_for_reply() {
                tracing::error!("append-only file not synced at shutdown: {e}");
            }
            j.set_policy(p);
        }
    }

    /// Start compacting the journal in the background (`BGREWRITEAOF`).
    ///
    /// # Errors
    /// Append-only persistence is off, or a rewrite runs already.
    pub fn bgrewriteaof(self: &Arc<Self>) -> Result<()> {
        let Some(j) = self.journal().cloned() else {
            return Err(Error::bad_input(
                "append-only persistence is off (start the server with --appendonly yes)",
            ));
        };
        j.begin_rewrite()?;
        let me = self.clone();
        std::thread::Builder::new()
            .name("insitu-aof-rewrite".into())
            .spawn(move || {
                let _ = j.rewrite(&me.store);
            })
            .map_err(|e| Error::io("cannot start the append-only file rewrite", &e))?;
        Ok(())
    }

    /// Write the snapshot now (`SAVE`).
    ///
    /// # Errors
    /// I/O errors, with the path.
    pub fn save(&self) -> Result<()> {
        let _guard = self.save_lock.lock();
        let writes = self.store.write_count();
        let entries = self.store.snapshot();
        snapshot::save(&self.snapshot_path(), &entries)?;
        self.last_save.store(unix_time(), Ordering::Relaxed);
        self.changes_at_last_save.store(writes, Ordering::Relaxed);
        Ok(())
    }

    /// Start a snapshot in a background thread (`BGSAVE`).
    ///
    /// # Errors
    /// When one is already running.
    pub fn bgsave(self: &Arc<Self>) -> Result<()> {
        if self.bgsave_in_progress.swap(true, Ordering::AcqRel) {
            return Err(Error::err(
                ErrorCode::BadInput,
                "Background save already in progress",
            ));
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("insitu-bgsave".into())
            .spawn(move || {
                let r = me.save();
                if let Err(e) = &r {
                    tracing::error!("background save failed: {e}");
                }
                me.last_bgsave_ok.store(r.is_ok(), Ordering::Relaxed);
                me.bgsave_in_progress.store(false, Ordering::Release);
            });
        if let Err(e) = spawned {
            self.bgsave_in_progress.store(false, Ordering::Release);
            return Err(Error::io("cannot start background save", &e));
        }
        Ok(())
    }

    /// Unix time of the last successful save (or of start).
    pub fn last_save_time(&self) -> i64 {
        self.last_save.load(Ordering::Relaxed)
    }

    /// Writes since the last save.
    pub fn changes_since_save(&self) -> u64 {
        self.store
            .write_count()
            .saturating_sub(self.changes_at_last_save.load(Ordering::Relaxed))
    }

    /// Whether a background save runs now.
    pub fn bgsave_in_progress(&self) -> bool {
        self.bgsave_in_progress.load(Ordering::Acquire)
    }

    /// Whether the last background save succeeded.
    pub fn last_bgsave_ok(&self) -> bool {
        self.last_bgsave_ok.load(Ordering::Relaxed)
    }
}
