//! Prometheus `/metrics`: Triton's `nv_inference_*` counters per model and version (from
//! the statistics every model keeps, whichever protocol ran it: RESP, gRPC, HTTP or in
//! process) and insitu's own `insitu_*` figures (keys, memory, connections, commands,
//! shared memory, persistence). Values are read at scrape time into a fresh registry, so
//! a counter is the model's own total, never a second count kept beside it.

use std::sync::atomic::Ordering;

use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use super::repository::version_of;
use super::service::Kserve;

/// Triton's per-model counters: name, help, and how each is read from the statistics.
type Read = fn(&crate::model::ModelStats) -> u64;
const MODEL_COUNTERS: [(&str, &str, Read); 7] = [
    (
        "nv_inference_request_success",
        "Number of successful inference requests, all batch sizes",
        |s| {
            s.calls
                .load(Ordering::Relaxed)
                .saturating_sub(s.errors.load(Ordering::Relaxed))
        },
    ),
    (
        "nv_inference_request_failure",
        "Number of failed inference requests, all batch sizes",
        |s| s.errors.load(Ordering::Relaxed),
    ),
    (
        "nv_inference_count",
        "Number of inferences performed (rows; a batch of n counts n)",
        |s| s.samples.load(Ordering::Relaxed),
    ),
    (
        "nv_inference_exec_count",
        "Number of model executions performed (requests batched together run once)",
        |s| s.runs.load(Ordering::Relaxed),
    ),
    (
        "nv_inference_request_duration_us",
        "Cumulative inference request duration in microseconds (queue and compute)",
        |s| s.success_us.load(Ordering::Relaxed) + s.fail_us.load(Ordering::Relaxed),
    ),
    (
        "nv_inference_queue_duration_us",
        "Cumulative inference queuing duration in microseconds",
        |s| s.queue_us.load(Ordering::Relaxed),
    ),
    (
        "nv_inference_compute_infer_duration_us",
        "Cumulative compute inference duration in microseconds",
        |s| s.duration_us.load(Ordering::Relaxed),
    ),
];

fn gauge(r: &Registry, name: &str, help: &str, v: i64) -> prometheus::Result<()> {
    let g = IntGauge::new(name, help)?;
    g.set(v);
    r.register(Box::new(g))
}

fn counter(r: &Registry, name: &str, help: &str, v: u64) -> prometheus::Result<()> {
    let c = prometheus::IntCounter::new(name, help)?;
    c.inc_by(v);
    r.register(Box::new(c))
}

fn gather(k: &Kserve) -> prometheus::Result<Registry> {
    let r = Registry::new();
    let models = k.engine.models();
    for (name, help, read) in MODEL_COUNTERS {
        let c = IntCounterVec::new(Opts::new(name, help), &["model", "version"])?;
        for (key, m) in &models {
            let model = String::from_utf8_lossy(key);
            c.with_label_values(&[model.as_ref(), version_of(m).as_str()])
                .inc_by(read(&m.stats));
        }
        r.register(Box::new(c))?;
    }
    let pending = IntGaugeVec::new(
        Opts::new(
            "nv_inference_pending_request_count",
            "Instantaneous number of requests waiting in the model's batch queue",
        ),
        &["model", "version"],
    )?;
    for (key, m) in &models {
        let queued = m.loaded_runner().map(|r| r.queued()).unwrap_or(0);
        pending
            .with_label_values(&[
                String::from_utf8_lossy(key).as_ref(),
                version_of(m).as_str(),
            ])
            .set(queued as i64);
    }
    r.register(Box::new(pending))?;

    let e = &k.engine;
    let st = &e.stats;
    let store = e.store();
    gauge(&r, "insitu_keys", "Keys stored", store.len() as i64)?;
    gauge(&r, "insitu_models", "Models stored", models.len() as i64)?;
    gauge(
        &r,
        "insitu_used_memory_bytes",
        "Bytes held by stored values",
        store.used_memory() as i64,
    )?;
    gauge(
        &r,
        "insitu_maxmemory_bytes",
        "The maxmemory limit (0: none)",
        store.memory_limit() as i64,
    )?;
    gauge(
        &r,
        "insitu_connected_clients",
        "RESP client connections open",
        st.connected_clients.load(Ordering::Relaxed) as i64,
    )?;
    counter(
        &r,
        "insitu_connections_received_total",
        "RESP connections accepted since start",
        st.connections_received.load(Ordering::Relaxed),
    )?;
    counter(
        &r,
        "insitu_commands_processed_total",
        "RESP commands executed since start (rate() gives commands/s)",
        st.commands_processed.load(Ordering::Relaxed),
    )?;
    counter(
        &r,
        "insitu_net_input_bytes_total",
        "Bytes read from RESP client sockets",
        st.net_input_bytes.load(Ordering::Relaxed),
    )?;
    counter(
        &r,
        "insitu_net_output_bytes_total",
        "Bytes written to RESP client sockets",
        st.net_output_bytes.load(Ordering::Relaxed),
    )?;
    let heap = e.heap().stats();
    gauge(
        &r,
        "insitu_shm_heap_bytes",
        "Bytes of the shared-memory heap's blocks (RESP clients on the Unix socket)",
        heap.bytes as i64,
    )?;
    gauge(
        &r,
        "insitu_shm_heap_holds",
        "Views of shared-memory blocks readers hold",
        heap.holds as i64,
    )?;
    gauge(
        &r,
        "insitu_kserve_shm_region_bytes",
        "Bytes of system shared memory registered by KServe clients",
        k.regions.total_bytes() as i64,
    )?;
    gauge(
        &r,
        "insitu_journal_enabled",
        "1 when append-only persistence is on",
        e.journal().is_some() as i64,
    )?;
    gauge(
        &r,
        "insitu_changes_since_save",
        "Writes since the last snapshot",
        e.changes_since_save() as i64,
    )?;
    gauge(
        &r,
        "insitu_last_save_time_seconds",
        "When the last snapshot was written (Unix time)",
        e.last_save_time(),
    )?;
    gauge(
        &r,
        "insitu_uptime_seconds",
        "Seconds since the server started",
        e.uptime_secs() as i64,
    )?;
    Ok(r)
}

/// The metrics in Prometheus' text format.
///
/// # Errors
/// A metric the registry refuses (a bug: the names are fixed).
pub fn render(k: &Kserve) -> Result<String, String> {
    let r = gather(k).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&r.gather(), &mut out)
        .map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}
