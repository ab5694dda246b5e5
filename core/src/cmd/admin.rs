//! Connection and server administration commands: PING, AUTH, CLIENT, INFO, CONFIG, SAVE...

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::arity;
use crate::engine::{Engine, EngineConfig};
use crate::error::{Error, Result};
use crate::protocol::resp::Frame;

pub use super::connection::REDIS_COMPAT_VERSION;

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`: stop the server as a signal would (the
/// journal synced, connections finished), after a snapshot with `SAVE`. The client's
/// connection closes after the reply, as launchers that stop a database this way
/// (SmartSim's `redis-cli shutdown`) expect.
pub(super) fn shutdown(
    engine: &Engine,
    session: &mut crate::engine::Session,
    args: &[Bytes],
) -> Result<Frame> {
    let (mut save, mut nosave) = (false, false);
    for a in &args[1..] {
        match a.to_ascii_uppercase().as_slice() {
            b"SAVE" => save = true,
            b"NOSAVE" => nosave = true,
            b"NOW" | b"FORCE" => {}
            b"ABORT" => return Err(Error::bad_input("No shutdown in progress.")),
            _ => return Err(Error::syntax()),
        }
    }
    if save && nosave {
        return Err(Error::syntax());
    }
    if save {
        engine.save()?;
    }
    engine.request_shutdown();
    session.quit = true;
    Ok(Frame::ok())
}

pub(super) fn lastsave(engine: &Engine, args: &[Bytes]) -> Result<Frame> {
    arity(args, 1, 1)?;
    Ok(Frame::Integer(engine.last_save_time()))
}

pub(super) fn save(engine: &Engine, args: &[Bytes]) -> Result<Frame> {
    arity(args, 1, 1)?;
    if engine.bgsave_in_progress() {
        return Err(Error::bad_input("Background save already in progress"));
    }
    engine.save()?;
    Ok(Frame::ok())
}

pub(super) fn bgrewriteaof(engine: &Arc<Engine>, args: &[Bytes]) -> Result<Frame> {
    arity(args, 1, 1)?;
    engine.bgrewriteaof()?;
    Ok(Frame::simple(
        "Background append only file rewriting started",
    ))
}

pub(super) fn bgsave(engine: &Arc<Engine>, args: &[Bytes]) -> Result<Frame> {
    arity(args, 1, 2)?;
    engine.bgsave()?;
    Ok(Frame::simple("Background saving started"))
}

fn human(bytes: usize) -> String {
    let units = ["B", "K", "M", "G", "T"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.2}{}", units[u])
    }
}

/// The `INFO` sections, in Redis' order, with the fields clients and harnesses read.
fn info_section(engine: &Engine, name: &str, cfg: &EngineConfig) -> Option<String> {
    let st = &engine.stats;
    let mut s = String::new();
    let up = engine.uptime_secs();
    match name {
        "server" => {
            let _ = write!(
                s,
                "# Server\r\nredis_version:{REDIS_COMPAT_VERSION}\r\ninsitu_version:{}\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:{}\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{up}\r\nuptime_in_days:{}\r\n",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH,
                usize::BITS,
                std::process::id(),
                cfg.port,
                up / 86400
            );
        }
        "clients" => {
            let _ = write!(
                s,
                "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:0\r\n",
                st.connected_clients.load(Ordering::Relaxed),
                cfg.maxclients
            );
        }
        "memory" => {
            let used = engine.store().used_memory();
            let h = engine.heap().stats();
            let _ = write!(
                s,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nmaxmemory:{}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:noeviction\r\nshm_heap_blocks:{}\r\nshm_heap_bytes:{}\r\nshm_heap_idle_bytes:{}\r\nshm_heap_warm_bytes:{}\r\nshm_heap_holds:{}\r\n",
                human(used),
                cfg.maxmemory,
                human(cfg.maxmemory),
                h.blocks,
                h.bytes,
                h.idle_bytes,
                h.warm_bytes,
                h.holds
            );
        }
        "persistence" => {
            let _ = write!(
                s,
                "# Persistence\r\nloading:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\n",
                engine.changes_since_save(),
                engine.bgsave_in_progress() as u8,
                engine.last_save_time(),
                if engine.last_bgsave_ok() { "ok" } else { "err" }
            );
            let ok = |b: bool| if b { "ok" } else { "err" };
            match engine.journal() {
                Some(j) => {
                    let (size, base) = j.sizes();
                    let _ = write!(
                        s,
                        "aof_enabled:1\r\naof_rewrite_in_progress:{}\r\naof_last_bgrewrite_status:{}\r\naof_last_write_status:{}\r\naof_current_size:{size}\r\naof_base_size:{base}\r\n",
                        j.rewriting() as u8,
                        ok(j.last_rewrite_ok()),
                        ok(j.write_ok()),
                    );
                }
                None => s.push_str("aof_enabled:0\r\naof_rewrite_in_progress:0\r\n"),
            }
        }
        "stats" => {
            let _ = write!(
                s,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\ninsitu_inline_model_runs:{}\r\n",
                st.connections_received.load(Ordering::Relaxed),
                st.commands_processed.load(Ordering::Relaxed),
                st.net_input_bytes.load(Ordering::Relaxed),
                st.net_output_bytes.load(Ordering::Relaxed),
                st.rejected_connections.load(Ordering::Relaxed),
                st.inline_model_runs.load(Ordering::Relaxed)
            );
        }
        "replication" => s.push_str("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"),
        "modules" => {
            // RedisAI's sections and fields, in its order and with its names (Redis
            // prefixes a module's sections and fields with the module's name, `ai_`), so
            // tools and test suites that read them keep working.
            let ort = crate::model::runtime::loaded();
            let m = &cfg.models;
            let _ = write!(
                s,
                "# Modules\r\nmodule:name=ai,ver={},api=1,filters=0,usedby=[],using=[],options=[]\r\n\r\n# ai_versions\r\nai_RedisAI_version:1.2.7\r\nai_low_level_API_version:1\r\nai_rdb_version:4\r\n\r\n# ai_git\r\nai_git_sha:insitu-{}\r\n\r\n# ai_load_time_configs\r\nai_threads_per_queue:{}\r\nai_inter_op_parallelism:{}\r\nai_intra_op_parallelism:{}\r\nai_model_execution_timeout:0\r\nai_backend_memory_limit:0\r\n\r\n# ai_backends_info\r\n",
                super::connection::REDISAI_MODULE_VERSION,
                env!("CARGO_PKG_VERSION"),
                m.threads,
                m.inter_op_threads,
                m.intra_op_threads,
            );
            // As in RedisAI, the backend's fields appear once it is loaded.
            if let Some(r) = ort.as_ref() {
                let _ = write!(
                    s,
                    "ai_onnxruntime_version:{}\r\nai_onnxruntime_maximum_run_sessions_number:{}\r\n",
                    r.version, m.threads
                );
            }
            use crate::sys::{cpu_secs, Who};
            let ((ps, pu), (cs, cu), (ts, tu)) = (
                cpu_secs(Who::Process),
                cpu_secs(Who::Children),
                cpu_secs(Who::Thread),
            );
            let _ = write!(
                s,
                "\r\n# ai_cpu\r\nai_self_used_cpu_sys:{ps:.6}\r\nai_self_used_cpu_user:{pu:.6}\r\nai_children_used_cpu_sys:{cs:.6}\r\nai_children_used_cpu_user:{cu:.6}\r\nai_main_thread_used_cpu_sys:{ts:.6}\r\nai_main_thread_used_cpu_user:{tu:.6}\r\n",
            );
            // One line per inference thread; before the first model, the threads have
            // not started and used nothing.
            let threads = match engine.inference_pool_started() {
                true => engine
                    .inference_pool()
                    .map(|p| p.thread_cpu_secs())
                    .unwrap_or_default(),
                false => vec![Some(0.0); m.threads],
            };
            for (i, t) in threads.iter().enumerate() {
                let _ = match t {
                    Some(t) => write!(
                        s,
                        "ai_queue_CPU_bthread_n{}_used_cpu_total:{t:.6}\r\n",
                        i + 1
                    ),
                    None => write!(s, "ai_queue_CPU_bthread_n{}_used_cpu_total:N/A\r\n", i + 1),
                };
            }
        }
        "cluster" => {
            let _ = write!(
                s,
                "# Cluster\r\ncluster_enabled:{}\r\n",
                cfg.cluster_mode() as u8
            );
        }
        "keyspace" => {
            s.push_str("# Keyspace\r\n");
            let n = engine.store().len();
            if n > 0 {
                let _ = write!(s, "db0:keys={n},expires=0,avg_ttl=0\r\n");
            }
        }
        _ => return None,
    }
    Some(s)
}

const DEFAULT_SECTIONS: [&str; 8] = [
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cluster",
    "keyspace",
];

/// Every section, in output order (`INFO EVERYTHING`).
const ALL_SECTIONS: [&str; 9] = [
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cluster",
    "modules",
    "keyspace",
];

pub(super) fn info(engine: &Engine, args: &[Bytes]) -> Result<Frame> {
    let cfg = engine.config();
    let mut wanted: Vec<String> = args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    if wanted.iter().any(|w| w == "everything") {
        wanted = ALL_SECTIONS.iter().map(|s| s.to_string()).collect();
    } else if wanted.is_empty() || wanted.iter().any(|w| w == "all" || w == "default") {
        wanted.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string()));
    }
    let mut out = String::new();
    for name in ALL_SECTIONS {
        if wanted.iter().any(|w| w == name) {
            if let Some(sec) = info_section(engine, name, &cfg) {
                if !out.is_empty() {
                    out.push_str("\r\n");
                }
                out.push_str(&sec);
            }
        }
    }
    Ok(Frame::Verbatim(Bytes::from(out)))
}
