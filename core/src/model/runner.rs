//! A model's execution: a pool of ONNX Runtime sessions and a dynamic batcher.
//!
//! Requests queue per model. A worker of the [`InferencePool`] takes the next batch:
//! requests whose inputs agree on every dim but the first, concatenated along dim 0 up to
//! `BATCHSIZE` rows; with `MINBATCHSIZE` it waits (on a condition variable, woken by each
//! arrival and by the deadline — no polling) until enough rows are queued or
//! `MINBATCHTIMEOUT` passes. One run, outputs sliced back per request. A request that
//! does not fit the model fails on its own before it can spoil a batch.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, TensorElementType, ValueType};
use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use super::pool::InferencePool;
use super::{onnx_check, runtime, Device, IoSpec, ModelConfig, ModelSpec, ModelStats};
use crate::data::tensor::{DType, Element, Tensor};
use crate::error::{Error, ErrorCode, Result};

/// What a request gets back.
pub type RunResult = Result<Vec<Tensor>>;

/// A queued request.
struct Request {
    inputs: Vec<Tensor>,
    rows: usize,
    deadline: Option<Instant>,
    enqueued: Instant,
    reply: oneshot::Sender<RunResult>,
    stats: Arc<dyn StatsSink>,
}

/// Where a request's statistics go (the model it was sent to).
pub trait StatsSink: Send + Sync {
    /// The model's statistics.
    fn stats(&self) -> &ModelStats;
}

struct Pending {
    queue: VecDeque<Request>,
    scheduled: bool,
}

/// The sessions and batch queue of one model.
pub struct Runner {
    inputs: Vec<IoSpec>,
    outputs: Vec<IoSpec>,
    batchsize: usize,
    minbatchsize: usize,
    minbatchtimeout: Duration,
    sessions: Mutex<Vec<Session>>,
    max_sessions: usize,
    created: Mutex<usize>,
    session_free: Condvar,
    blob: Bytes,
    device: Device,
    cfg: ModelConfig,
    pending: Mutex<Pending>,
    arrived: Condvar,
    pool: Arc<InferencePool>,
}

/// ONNX Runtime's reason, each line break a space as Redis writes an error reply (what
/// RedisAI's users read), so every transport, in-process included, gives the same text.
fn ort_err(e: ort::Error) -> Error {
    Error::bad_input(e.to_string().replace(['\r', '\n'], " "))
}

fn dtype_of(t: TensorElementType) -> Option<DType> {
    Some(match t {
        TensorElementType::Float32 => DType::Float32,
        TensorElementType::Float64 => DType::Float64,
        TensorElementType::Int8 => DType::Int8,
        TensorElementType::Int16 => DType::Int16,
        TensorElementType::Int32 => DType::Int32,
        TensorElementType::Int64 => DType::Int64,
        TensorElementType::Uint8 => DType::UInt8,
        TensorElementType::Uint16 => DType::UInt16,
        TensorElementType::Uint32 => DType::UInt32,
        TensorElementType::Uint64 => DType::UInt64,
        TensorElementType::Bool => DType::Bool,
        TensorElementType::String => DType::String,
        TensorElementType::Float16 => DType::Float16,
        TensorElementType::Bfloat16 => DType::BFloat16,
        _ => return None,
    })
}

fn io_spec(name: &str, ty: &ValueType, what: &str) -> Result<IoSpec> {
    match ty {
        ValueType::Tensor { ty, shape, .. } => {
            let dtype = dtype_of(*ty).ok_or_else(|| {
                Error::err(
                    ErrorCode::Unsupported,
                    format!(
                        "{what} '{name}' has element type {ty:?}, which insitu tensors cannot hold"
                    ),
                )
            })?;
            Ok(IoSpec {
                name: name.to_string(),
                dtype,
                shape: shape.iter().copied().collect(),
            })
        }
        // scikit-learn classifiers' default ZipMap output: per row a map from class to
        // probability. It comes back as a [rows, classes] tensor of the map's value type,
        // classes in ascending order (what `options={'zipmap': False}` would have given).
        ValueType::Sequence(inner) if what == "output" && zipmap_value(inner).is_some() => {
            Ok(IoSpec {
                name: name.to_string(),
                dtype: zipmap_value(inner).unwrap_or(DType::Float32),
                shape: vec![-1, -1],
            })
        }
        other => {
            let kind = match other {
                ValueType::Sequence(_) => "a sequence",
                ValueType::Map { .. } => "a map",
                ValueType::Optional(_) => "an optional",
                ValueType::Tensor { .. } => "a tensor",
            };
            Err(Error::err(
                ErrorCode::Unsupported,
                format!(
                    "{what} '{name}' of the model is {kind}, not a tensor: insitu exchanges tensors only (for scikit-learn classifiers export with options={{'zipmap': False}})"
                ),
            ))
        }
    }
}

fn new_session(blob: &[u8], device: Device, cfg: &ModelConfig) -> Result<Session> {
    let rt = runtime::runtime()?;
    let mut b = Session::builder(&rt.env)
        .map_err(ort_err)?
        .with_intra_threads(cfg.intra_op_threads.max(1))
        .map_err(|e| ort_err(e.into()))?
        .with_inter_threads(cfg.inter_op_threads.max(1))
        .map_err(|e| ort_err(e.into()))?;
    if let Some(dir) = &cfg.external_data_dir {
        b = b
            .with_config_entry(
                "session.model_external_initializers_file_folder_path",
                dir.to_string_lossy(),
            )
            .map_err(|e| ort_err(e.into()))?;
    }
    if let Device::Gpu(idx) = device {
        let ep = ort::ep::CUDA::default()
            .with_device_id(idx.unwrap_or(0) as i32)
            .build()
            .error_on_failure();
        b = b.with_execution_providers([ep]).map_err(|e| {
            Error::err(
                ErrorCode::Unsupported,
                format!("GPU requested but the CUDA execution provider is not available: {e} (install the onnxruntime-gpu build of ONNX Runtime and CUDA, or store the model on CPU)"),
            )
        })?;
    }
    b.commit_from_memory(blob).map_err(ort_err)
}

/// Check a model's bytes before ONNX Runtime parses them: size, and external data files.
fn precheck(blob: &[u8], cfg: &ModelConfig) -> Result<()> {
    if blob.len() > cfg.max_model_bytes {
        return Err(Error::limit(format!(
            "model of {} bytes exceeds the limit of {} bytes",
            blob.len(),
            cfg.max_model_bytes
        )));
    }
    let files = onnx_check::external_data_files(blob)
        .map_err(|e| Error::bad_input(format!("model is not a valid ONNX file: {e}")))?;
    if files.is_empty() {
        return Ok(());
    }
    let Some(dir) = &cfg.external_data_dir else {
        return Err(Error::err(
            ErrorCode::Unsupported,
            format!(
                "model refers to external data file(s) {files:?}; reading external data is disabled (start the server with --model-external-data-dir DIR to allow files from DIR)"
            ),
        ));
    };
    for f in &files {
        if !onnx_check::is_contained(f) {
            return Err(Error::bad_input(format!(
                "model refers to external data file '{f}' outside the allowed directory {}",
                dir.display()
            )));
        }
    }
    Ok(())
}

impl Runner {
    /// Create the first session (validating the model) and read its inputs and outputs.
    ///
    /// # Errors
    /// ONNX Runtime missing, a malformed model, non-tensor outputs, external data not
    /// allowed, no CUDA for a GPU model.
    pub fn new(
        blob: &Bytes,
        spec: &ModelSpec,
        cfg: &ModelConfig,
        pool: &Arc<InferencePool>,
    ) -> Result<Runner> {
        precheck(blob, cfg)?;
        let session = new_session(blob, spec.device, cfg)?;
        let inputs = session
            .inputs()
            .iter()
            .map(|o| io_spec(o.name(), o.dtype(), "input"))
            .collect::<Result<Vec<_>>>()?;
        let outputs = session
            .outputs()
            .iter()
            .map(|o| io_spec(o.name(), o.dtype(), "output"))
            .collect::<Result<Vec<_>>>()?;
        Ok(Runner {
            inputs,
            outputs,
            batchsize: spec.batchsize,
            minbatchsize: spec.minbatchsize,
            minbatchtimeout: Duration::from_millis(spec.minbatchtimeout),
            sessions: Mutex::new(vec![session]),
            max_sessions: cfg.threads.max(1),
            created: Mutex::new(1),
            session_free: Condvar::new(),
            blob: blob.clone(),
            device: spec.device,
            cfg: cfg.clone(),
            pending: Mutex::new(Pending {
                queue: VecDeque::new(),
                scheduled: false,
            }),
            arrived: Condvar::new(),
            pool: pool.clone(),
        })
    }

    /// The model's inputs.
    pub fn inputs(&self) -> &[IoSpec] {
        &self.inputs
    }

    /// Requests waiting in the batch queue.
    pub fn queued(&self) -> usize {
        self.pending.lock().queue.len()
    }

    /// The most runs of this model at once (its sessions).
    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    /// The model's outputs.
    pub fn outputs(&self) -> &[IoSpec] {
        &self.outputs
    }

    /// Check a request against the model: input count, dtypes, ranks, fixed dims.
    ///
    /// # Errors
    /// RedisAI's count message, or one naming the input and what it expects.
    pub fn check(&self, inputs: &[Tensor]) -> Result<()> {
        check_count("INPUTS", inputs.len(), self.inputs.len())?;
        // Shapes and element types are ONNX Runtime's to judge: it knows what the graph
        // accepts (unknown ranks, symbolic and partly known dims, optional inputs) and says
        // why it refuses, and that reason is passed on as RedisAI passed it. What is
        // checked here is what batching needs: requests merged along dim 0 must agree on
        // it across inputs, or one request would spoil a batch.
        if self.batchsize > 0 {
            let mut rows = None;
            for t in inputs {
                let r = t.shape().first().copied().unwrap_or(1);
                if *rows.get_or_insert(r) != r {
                    return Err(Error::bad_input(
                        "inputs of a batched model must agree on dim 0",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Queue a request; the receiver gets the outputs (in the model's output order).
    ///
    /// # Errors
    /// The request does not fit the model.
    pub fn submit(
        self: &Arc<Self>,
        inputs: Vec<Tensor>,
        deadline: Option<Instant>,
        stats: Arc<dyn StatsSink>,
    ) -> Result<oneshot::Receiver<RunResult>> {
        self.check(&inputs)?;
        let rows = inputs
            .first()
            .and_then(|t| t.shape().first().copied())
            .unwrap_or(1);
        let (tx, rx) = oneshot::channel();
        let mut p = self.pending.lock();
        p.queue.push_back(Request {
            inputs,
            rows,
            deadline,
            enqueued: Instant::now(),
            reply: tx,
            stats,
        });
        if !p.scheduled {
            p.scheduled = true;
            drop(p);
            self.schedule();
        } else {
            drop(p);
            self.arrived.notify_all();
        }
        Ok(rx)
    }

    fn schedule(self: &Arc<Self>) {
        let me = self.clone();
        self.pool.submit(move || me.process());
    }

    /// Whether `r` can join a batch whose first request is `first`.
    fn compatible(first: &Request, r: &Request) -> bool {
        first
            .inputs
            .iter()
            .zip(&r.inputs)
            .all(|(a, b)| a.dtype() == b.dtype() && a.shape().get(1..) == b.shape().get(1..))
    }

    /// Take the next batch off the queue, waiting for `MINBATCHSIZE` when asked to.
    fn next_batch(self: &Arc<Self>) -> Vec<Request> {
        let mut p = self.pending.lock();
        loop {
            let now = Instant::now();
            // Requests whose TIMEOUT passed while queued are answered, not run.
            let mut i = 0;
            while i < p.queue.len() {
                if p.queue[i].deadline.is_some_and(|d| d <= now) {
                    if let Some(r) = p.queue.remove(i) {
                        let _ = r.reply.send(Err(timed_out()));
                    }
                } else {
                    i += 1;
                }
            }
            let Some(first) = p.queue.front() else {
                p.scheduled = false;
                return Vec::new();
            };
            let mut picked = vec![0usize];
            let mut rows = first.rows;
            if self.batchsize > 0 {
                for (j, r) in p.queue.iter().enumerate().skip(1) {
                    if rows + r.rows <= self.batchsize && Runner::compatible(first, r) {
                        picked.push(j);
                        rows += r.rows;
                    }
                }
            }
            if self.minbatchsize > 0 && rows < self.minbatchsize {
                let batch_deadline = (!self.minbatchtimeout.is_zero())
                    .then(|| first.enqueued + self.minbatchtimeout);
                let request_deadline = p.queue.iter().filter_map(|r| r.deadline).min();
                let wake = match (batch_deadline, request_deadline) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let expired = batch_deadline.is_some_and(|d| d <= now);
                if !expired {
                    match wake {
                        Some(w) => {
                            self.arrived.wait_until(&mut p, w);
                        }
                        None => self.arrived.wait(&mut p),
                    }
                    continue;
                }
            }
            let mut batch = Vec::with_capacity(picked.len());
            for (k, j) in picked.into_iter().enumerate() {
                if let Some(r) = p.queue.remove(j - k) {
                    batch.push(r);
                }
            }
            if p.queue.is_empty() {
                p.scheduled = false;
            } else {
                drop(p);
                self.schedule();
            }
            return batch;
        }
    }

    /// Run the next batch (a pool job).
    fn process(self: &Arc<Self>) {
        let batch = self.next_batch();
        if batch.is_empty() {
            return;
        }
        let total: usize = batch.iter().map(|r| r.rows).sum();
        let started = Instant::now();
        let result = self.run_batch(&batch, total);
        let ran = started.elapsed();
        if let Some(first) = batch.first() {
            first.stats.stats().record_run(ran);
        }
        let finished = Instant::now();
        let record = |r: &Request, ok: bool| {
            r.stats.stats().record_request(
                r.rows,
                ok,
                started.saturating_duration_since(r.enqueued),
                finished.saturating_duration_since(r.enqueued),
            );
        };
        match result {
            Ok(per_request) => {
                for (r, outs) in batch.into_iter().zip(per_request) {
                    record(&r, true);
                    let _ = r.reply.send(Ok(outs));
                }
            }
            Err(e) => {
                for r in batch {
                    record(&r, false);
                    let _ = r.reply.send(Err(e.clone()));
                }
            }
        }
    }

    fn take_session(&self) -> Result<Session> {
        loop {
            if let Some(s) = self.sessions.lock().pop() {
                return Ok(s);
            }
            let mut created = self.created.lock();
            if *created < self.max_sessions {
                *created += 1;
                drop(created);
                return new_session(&self.blob, self.device, &self.cfg).inspect_err(|_| {
                    *self.created.lock() -= 1;
                });
            }
            // Every session is busy: wait for one to come back.
            let mut free = self.sessions.lock();
            if free.is_empty() {
                drop(created);
                self.session_free
                    .wait_for(&mut free, Duration::from_millis(100));
            }
        }
    }

    fn put_session(&self, s: Session) {
        self.sessions.lock().push(s);
        self.session_free.notify_one();
    }

    /// Concatenate, run once, slice back.
    fn run_batch(&self, batch: &[Request], total: usize) -> Result<Vec<Vec<Tensor>>> {
        let inputs: Vec<Tensor> = if batch.len() == 1 {
            batch[0].inputs.clone()
        } else {
            (0..self.inputs.len())
                .map(|i| concat(batch.iter().map(|r| &r.inputs[i]), total))
                .collect::<Result<_>>()?
        };
        let mut session = self.take_session()?;
        let out = run_session(&mut session, &self.inputs, &inputs, &self.outputs);
        self.put_session(session);
        let outputs = out?;
        if self.batchsize == 0 {
            return Ok(vec![outputs]);
        }
        for o in &outputs {
            if o.shape().first().copied() != Some(total) {
                return Err(Error::bad_input(
                    "Model did not generate the expected batch size",
                ));
            }
        }
        let mut per_request = Vec::with_capacity(batch.len());
        let mut row = 0;
        for r in batch {
            per_request.push(
                outputs
                    .iter()
                    .map(|o| slice_rows(o, row, r.rows, total))
                    .collect::<Result<Vec<_>>>()?,
            );
            row += r.rows;
        }
        Ok(per_request)
    }
}

fn timed_out() -> Error {
    Error::new(ErrorCode::Timeout, "TIMEDOUT")
}

/// Concatenate tensors along dim 0.
fn concat<'a>(parts: impl Iterator<Item = &'a Tensor>, total: usize) -> Result<Tensor> {
    let parts: Vec<&Tensor> = parts.collect();
    let first = parts
        .first()
        .ok_or_else(|| Error::err(ErrorCode::Internal, "empty batch"))?;
    let mut shape = first.shape().to_vec();
    if let Some(d) = shape.first_mut() {
        *d = total;
    }
    let mut buf = BytesMut::with_capacity(parts.iter().map(|t| t.data().len()).sum());
    for p in &parts {
        buf.extend_from_slice(p.data());
    }
    Tensor::new(first.dtype(), shape, buf.freeze())
}

/// Rows `start..start+n` of a tensor whose dim 0 is `total`, sharing its bytes.
fn slice_rows(t: &Tensor, start: usize, n: usize, total: usize) -> Result<Tensor> {
    if t.dtype() == DType::String {
        let strings = t.strings()?;
        let per = strings.len() / total.max(1);
        let mut shape = t.shape().to_vec();
        shape[0] = n;
        return Tensor::from_strings(shape, &strings[start * per..(start + n) * per]);
    }
    let row_bytes = t.data().len() / total.max(1);
    let mut shape = t.shape().to_vec();
    if let Some(d) = shape.first_mut() {
        *d = n;
    }
    Tensor::new(
        t.dtype(),
        shape,
        t.data().slice(start * row_bytes..(start + n) * row_bytes),
    )
}

macro_rules! by_dtype {
    ($dtype:expr, $t:ident => $body:expr, string => $sbody:expr) => {
        match $dtype {
            DType::Float32 => {
                type $t = f32;
                $body
            }
            DType::Float64 => {
                type $t = f64;
                $body
            }
            DType::Int8 => {
                type $t = i8;
                $body
            }
            DType::Int16 => {
                type $t = i16;
                $body
            }
            DType::Int32 => {
                type $t = i32;
                $body
            }
            DType::Int64 => {
                type $t = i64;
                $body
            }
            DType::UInt8 => {
                type $t = u8;
                $body
            }
            DType::UInt16 => {
                type $t = u16;
                $body
            }
            DType::UInt32 => {
                type $t = u32;
                $body
            }
            DType::UInt64 => {
                type $t = u64;
                $body
            }
            DType::Bool => {
                type $t = bool;
                $body
            }
            DType::Float16 => {
                type $t = half::f16;
                $body
            }
            DType::BFloat16 => {
                type $t = half::bf16;
                $body
            }
            DType::String => $sbody,
        }
    };
}

/// An ONNX Runtime input for `t`: a view of its bytes when they are aligned for the
/// element type (no copy), else an aligned copy.
fn to_ort(t: &Tensor) -> Result<SessionInputValue<'_>> {
    let dims = || -> Vec<i64> { t.shape().iter().map(|&d| d as i64).collect() };
    by_dtype!(t.dtype(), T => {
        match <T as Element>::try_view(t.data()) {
            Some(view) => Ok(ort::value::TensorRef::from_array_view((t.shape(), view)).map_err(ort_err)?.into()),
            None => {
                let data: Vec<T> = t.to_vec::<T>()?;
                Ok(ort::value::Tensor::from_array((dims(), data)).map_err(ort_err)?.into_dyn().into())
            }
        }
    }, string => {
        let strings: Vec<String> = t.strings()?.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect();
        Ok(ort::value::Tensor::from_string_array((dims(), strings.as_slice())).map_err(ort_err)?.into_dyn().into())
    })
}

/// The value type of a ZipMap-style output (a sequence of maps from int64 or string keys
/// to float or double), or `None` for any other sequence.
fn zipmap_value(inner: &ValueType) -> Option<DType> {
    match inner {
        ValueType::Map {
            key: TensorElementType::Int64 | TensorElementType::String,
            value: v @ (TensorElementType::Float32 | TensorElementType::Float64),
        } => dtype_of(*v),
        _ => None,
    }
}

/// A sequence of maps (one per row, class -> value) as a [rows, classes] tensor, classes
/// in ascending key order. Every row must have the same classes.
fn from_zipmap(v: &DynValue, spec: &IoSpec) -> Result<Tensor> {
    use ort::value::{DynMapValueType, DynSequenceValueType};
    let bad = |why: &str| {
        Error::err(
            ErrorCode::Unsupported,
            format!("output '{}': {why}", spec.name),
        )
    };
    let seq = v
        .view()
        .downcast::<DynSequenceValueType>()
        .map_err(ort_err)?
        .try_extract_sequence::<DynMapValueType>()
        .map_err(ort_err)?;
    let rows = seq.len();
    let mut data: Vec<u8> = Vec::new();
    let mut classes = None;
    for m in &seq {
        let ValueType::Map { key, value } = m.dtype() else {
            return Err(bad("a sequence element is not a map"));
        };
        macro_rules! row {
            ($k:ty, $v:ty) => {{
                let mut pairs: Vec<($k, $v)> =
                    m.try_extract_key_values::<$k, $v>().map_err(ort_err)?;
                pairs.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
                let keys: Vec<String> = pairs.iter().map(|(k, _)| k.to_string()).collect();
                match &classes {
                    None => classes = Some(keys),
                    Some(c) if *c == keys => {}
                    Some(_) => return Err(bad("rows have different classes")),
                }
                for (_, v) in pairs {
                    data.extend_from_slice(&v.to_le_bytes());
                }
            }};
        }
        match (key, value) {
            (TensorElementType::Int64, TensorElementType::Float32) => row!(i64, f32),
            (TensorElementType::Int64, TensorElementType::Float64) => row!(i64, f64),
            (TensorElementType::String, TensorElementType::Float32) => row!(String, f32),
            (TensorElementType::String, TensorElementType::Float64) => row!(String, f64),
            _ => return Err(bad("a map of unsupported key or value type")),
        }
    }
    let width = classes.map_or(0, |c| c.len());
    Tensor::new(spec.dtype, [rows, width], Bytes::from(data))
}

fn from_ort(v: &DynValue, spec: &IoSpec) -> Result<Tensor> {
    if matches!(v.dtype(), ValueType::Sequence(_)) {
        return from_zipmap(v, spec);
    }
    let ValueType::Tensor { ty, .. } = v.dtype() else {
        return Err(Error::err(
            ErrorCode::Unsupported,
            format!("output '{}' is not a tensor", spec.name),
        ));
    };
    let dtype = dtype_of(*ty).ok_or_else(|| {
        Error::err(
            ErrorCode::Unsupported,
            format!("output '{}' has element type {ty:?}", spec.name),
        )
    })?;
    by_dtype!(dtype, T => {
        let (shape, data) = v.try_extract_tensor::<T>().map_err(ort_err)?;
        let shape: crate::data::tensor::Shape = shape.iter().map(|&d| d.max(0) as usize).collect();
        // One copy out of ONNX Runtime's buffer, into a plain byte vector (no extra owner).
        let bytes = Bytes::from(<T as Element>::as_bytes(data).to_vec());
        Tensor::new(dtype, &shape, bytes)
    }, string => {
        let (shape, data) = v.try_extract_strings().map_err(ort_err)?;
        let shape: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
        Tensor::from_strings(shape, &data)
    })
}

/// One ONNX Runtime run: inputs in the model's order, outputs copied out in its order.
fn run_session(
    session: &mut Session,
    in_specs: &[IoSpec],
    inputs: &[Tensor],
    out_specs: &[IoSpec],
) -> Result<Vec<Tensor>> {
    // Inputs are positional, in the model's order (checked against `in_specs`).
    debug_assert_eq!(in_specs.len(), inputs.len());
    let values = inputs
        .iter()
        .map(to_ort)
        .collect::<Result<smallvec::SmallVec<[SessionInputValue<'_>; 4]>>>()?;
    let outputs = session.run(&values[..]).map_err(ort_err)?;
    out_specs
        .iter()
        .map(|spec| {
            let v = outputs.get(&spec.name).ok_or_else(|| {
                Error::err(
                    ErrorCode::Internal,
                    format!("ONNX Runtime returned no output '{}'", spec.name),
                )
            })?;
            from_ort(v, spec)
        })
        .collect()
}

/// Run a model once, outside the batcher (for raw-runtime comparisons and tools).
///
/// # Errors
/// As for a request.
pub fn run_direct(runner: &Runner, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
    runner.check(inputs)?;
    run_checked(runner, inputs)
}

/// RedisAI's error when a run names more or fewer tensors than the model has (`what`:
/// `INPUTS` or `OUTPUTS`).
///
/// # Errors
/// `BadInput` when `n` is not `expected`.
pub fn check_count(what: &str, n: usize, expected: usize) -> Result<()> {
    if n != expected {
        return Err(Error::new(
            ErrorCode::BadInput,
            format!("Number of keys given as {what} here does not match model definition"),
        ));
    }
    Ok(())
}

/// [`run_direct`] for inputs already checked with [`Runner::check`].
///
/// # Errors
/// ONNX Runtime's.
pub fn run_checked(runner: &Runner, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
    let mut session = runner.take_session()?;
    let out = run_session(&mut session, &runner.inputs, inputs, &runner.outputs);
    runner.put_session(session);
    out
}
