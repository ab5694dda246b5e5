//! Models: ONNX graphs stored under keys and executed by ONNX Runtime.
//!
//! A [`Model`] is a stored value like a tensor: its bytes plus RedisAI's metadata (backend,
//! device, tag, batching parameters). Execution goes through a [`runner::Runner`] per
//! model — a pool of ONNX Runtime sessions fed by a dynamic batcher — on dedicated
//! inference threads ([`pool::InferencePool`]), never on the async I/O threads. Replacing
//! a model under a key makes new calls use the new one while calls in flight finish on
//! the old one (they hold it by `Arc`).

pub mod onnx_check;
pub mod pool;
pub mod runner;
pub mod runtime;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::data::tensor::DType;
use crate::error::{Error, ErrorCode, Result};

pub use runner::Runner;

/// Model execution settings (RedisAI's load-time configs, settable with `AI.CONFIG`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    /// Inference worker threads (RedisAI's `THREADS_PER_QUEUE`); also the most sessions
    /// one model keeps.
    pub threads: usize,
    /// ONNX Runtime intra-op threads per session.
    pub intra_op_threads: usize,
    /// ONNX Runtime inter-op threads per session.
    pub inter_op_threads: usize,
    /// `AI.CONFIG GET MODEL_CHUNK_SIZE`: the chunk size clients split model blobs into.
    pub chunk_size: usize,
    /// Largest model, bytes.
    pub max_model_bytes: usize,
    /// Directory from which models may load external data files (none: refused).
    pub external_data_dir: Option<PathBuf>,
    /// A request to a model without batching whose run is predicted (from the model's
    /// own measured runs) to take at most this many microseconds runs on the connection's
    /// I/O thread instead of being handed to an inference thread and back, which costs
    /// more than such a run (0: always hand off).
    pub inline_max_us: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            intra_op_threads: 1,
            inter_op_threads: 1,
            chunk_size: 511 << 20,
            max_model_bytes: (2 << 30) - 1,
            external_data_dir: None,
            inline_max_us: 50,
        }
    }
}

/// Where a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// CPU (the index is accepted for RedisAI compatibility; there is one CPU device).
    Cpu(Option<u32>),
    /// CUDA GPU, optionally by index.
    Gpu(Option<u32>),
}

impl Device {
    /// Parse `CPU`, `GPU`, `CPU:n`, `GPU:n` (case-insensitive).
    ///
    /// # Errors
    /// `ERR Invalid DEVICE`.
    pub fn parse(s: &[u8]) -> Result<Device> {
        let s = String::from_utf8_lossy(s).to_ascii_uppercase();
        let (kind, idx) = match s.split_once(':') {
            // RedisAI: the id is digits only, at most five of them.
            Some((k, i))
                if !i.is_empty() && i.len() <= 5 && i.bytes().all(|c| c.is_ascii_digit()) =>
            {
                (
                    k.to_string(),
                    Some(i.parse::<u32>().map_err(|_| invalid_device())?),
                )
            }
            Some(_) => return Err(invalid_device()),
            None => (s.clone(), None),
        };
        match kind.as_str() {
            "CPU" => Ok(Device::Cpu(idx)),
            "GPU" => Ok(Device::Gpu(idx)),
            _ => Err(invalid_device()),
        }
    }
}

fn invalid_device() -> Error {
    Error::bad_input("Invalid DEVICE")
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu(None) => f.write_str("CPU"),
            Device::Cpu(Some(i)) => write!(f, "CPU:{i}"),
            Device::Gpu(None) => f.write_str("GPU"),
            Device::Gpu(Some(i)) => write!(f, "GPU:{i}"),
        }
    }
}

/// RedisAI's per-model metadata, as given at `AI.MODELSTORE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// Always `ONNX` in insitu.
    pub backend: String,
    /// The device.
    pub device: Device,
    /// Free-form tag.
    pub tag: Bytes,
    /// Dynamic batching: most rows per run (0: no batching).
    pub batchsize: usize,
    /// Dynamic batching: wait for at least this many rows (0: do not wait).
    pub minbatchsize: usize,
    /// Dynamic batching: wait at most this long (ms) for `minbatchsize` (0: no limit).
    pub minbatchtimeout: u64,
}

/// One input or output of a model, as the session declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoSpec {
    /// Name in the graph.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Dims; `-1` for a dynamic one.
    pub shape: Vec<i64>,
}

/// Per-model run statistics: RedisAI's `AI.INFO` fields, and what KServe's statistics and
/// Triton's metrics add (time queued, time per request, the last request's time).
#[derive(Debug, Default)]
pub struct ModelStats {
    /// Microseconds spent in ONNX Runtime, summed over runs.
    pub duration_us: AtomicU64,
    /// Rows (dim 0) processed, summed over requests.
    pub samples: AtomicU64,
    /// Requests served.
    pub calls: AtomicU64,
    /// Requests that failed.
    pub errors: AtomicU64,
    /// ONNX Runtime runs (lower than `calls` when requests were batched).
    pub runs: AtomicU64,
    /// Microseconds requests waited in the batch queue before their run began.
    pub queue_us: AtomicU64,
    /// Microseconds from queueing to outputs, summed over requests that succeeded.
    pub success_us: AtomicU64,
    /// The same for requests that failed.
    pub fail_us: AtomicU64,
    /// When the last request finished, in milliseconds since the Unix epoch (0: never).
    pub last_ms: AtomicU64,
}

impl ModelStats {
    /// Zero every counter (`AI.INFO key RESETSTAT`).
    pub fn reset(&self) {
        for c in [
            &self.duration_us,
            &self.samples,
            &self.calls,
            &self.errors,
            &self.runs,
            &self.queue_us,
            &self.success_us,
            &self.fail_us,
            &self.last_ms,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Count one run of the model (one ONNX Runtime call, for one request or a batch).
    pub fn record_run(&self, took: std::time::Duration) {
        self.duration_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        self.runs.fetch_add(1, Ordering::Relaxed);
    }

    /// Count one finished request of `rows` rows (`ok`: it succeeded), which waited
    /// `queued` before its run and took `total` from queueing to its outputs.
    pub fn record_request(
        &self,
        rows: usize,
        ok: bool,
        queued: std::time::Duration,
        total: std::time::Duration,
    ) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.queue_us
            .fetch_add(queued.as_micros() as u64, Ordering::Relaxed);
        let micros = total.as_micros() as u64;
        if ok {
            self.samples.fetch_add(rows as u64, Ordering::Relaxed);
            self.success_us.fetch_add(micros, Ordering::Relaxed);
        } else {
            self.errors.fetch_add(1, Ordering::Relaxed);
            self.fail_us.fetch_add(micros, Ordering::Relaxed);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.last_ms.store(now, Ordering::Relaxed);
    }
}

/// A stored model.
pub struct Model {
    /// Metadata given at store time.
    pub spec: ModelSpec,
    /// The ONNX bytes.
    pub blob: Bytes,
    /// Run statistics.
    pub stats: ModelStats,
    runner: Mutex<Option<Arc<Runner>>>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Model({:?}, {} bytes)", self.spec, self.blob.len())
    }
}

impl PartialEq for Model {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec && self.blob == other.blob
    }
}

impl Model {
    /// A model whose sessions are created on first use (e.g. loaded from a snapshot).
    pub fn unloaded(spec: ModelSpec, blob: Bytes) -> Model {
        Model {
            spec,
            blob,
            stats: ModelStats::default(),
            runner: Mutex::new(None),
        }
    }

    /// A model with its runner already created (and so validated).
    pub fn with_runner(spec: ModelSpec, blob: Bytes, runner: Arc<Runner>) -> Model {
        Model {
            spec,
            blob,
            stats: ModelStats::default(),
            runner: Mutex::new(Some(runner)),
        }
    }

    /// The runner, created now if needed.
    ///
    /// # Errors
    /// ONNX Runtime missing, or the model cannot be loaded.
    pub fn runner(
        &self,
        pool: &Arc<pool::InferencePool>,
        cfg: &ModelConfig,
    ) -> Result<Arc<Runner>> {
        let mut slot = self.runner.lock();
        if let Some(r) = slot.as_ref() {
            return Ok(r.clone());
        }
        let r = Arc::new(Runner::new(&self.blob, &self.spec, cfg, pool)?);
        *slot = Some(r.clone());
        Ok(r)
    }

    /// The runner if it exists already.
    pub fn loaded_runner(&self) -> Option<Arc<Runner>> {
        self.runner.lock().clone()
    }
}

/// The error for backends insitu does not run.
pub fn unsupported_backend(name: &[u8]) -> Error {
    let n = String::from_utf8_lossy(name).to_ascii_uppercase();
    match n.as_str() {
        "TF" | "TFLITE" | "TORCH" => Error::err(
            ErrorCode::Unsupported,
            format!(
                "backend {n} is not supported by insitu: export the model to ONNX (tf2onnx, torch.onnx.export) and store it with backend ONNX"
            ),
        ),
        _ => Error::err(ErrorCode::BadInput, "unsupported backend"),
    }
}
