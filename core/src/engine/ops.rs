//! The engine's typed operations: what a command does once its arguments are read.
//!
//! Tensors are put and got, models stored, looked up, run on stored tensors or on given
//! ones, and a key waited on, by these methods and nothing else: the RESP command
//! handlers (`crate::cmd`) parse their arguments into these calls and format what they
//! return, the in-process client calls them directly, and the KServe front ends will call
//! the same. Each answers the errors RedisAI answers (texts and codes), so every way in
//! behaves alike.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::Engine;
use crate::data::dataset::{dataset_missing, Dataset, ACK_FIELD};
use crate::data::tensor::Tensor;
use crate::error::{Error, ErrorCode, Result};
use crate::model::runner::{check_count, run_checked, RunResult, StatsSink};
use crate::model::{Model, ModelSpec, ModelStats, Runner};
use crate::store::Value;

impl StatsSink for Model {
    fn stats(&self) -> &ModelStats {
        &self.stats
    }
}

/// An operation the engine accepted: finished on the calling thread, or handed to the
/// inference threads (a model's load or run) and finished when awaited.
pub enum Run<T> {
    /// Done already.
    Done(Result<T>),
    /// Running elsewhere: await it (from a Tokio runtime; it needs its timer for
    /// deadlines).
    Queued(Pin<Box<dyn Future<Output = Result<T>> + Send>>),
}

impl<T> Run<T> {
    /// The operation's result, once it has finished.
    pub async fn finish(self) -> Result<T> {
        match self {
            Run::Done(r) => r,
            Run::Queued(f) => f.await,
        }
    }
}

/// How a run is carried out.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Give up (with `Timeout`, text `TIMEDOUT`) when the run has not finished by then.
    pub deadline: Option<Instant>,
    /// The caller is in this process and may be blocked by the run: a model without
    /// batching runs on the caller's thread.
    pub inline: bool,
}

/// A stored model with its runner (its ONNX Runtime sessions, created on first use).
#[derive(Clone)]
pub struct LoadedModel {
    /// The stored model: spec, ONNX bytes, statistics.
    pub model: Arc<Model>,
    /// Its sessions, inputs and outputs.
    pub runner: Arc<Runner>,
}

/// A condition on one key to wait for ([`Engine::wait_until`]), mirroring SmartRedis'
/// polls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitFor {
    /// The key exists (poll_key, poll_tensor, poll_model).
    Exists,
    /// The key is a hash with this field (poll_dataset: the `.COMPLETE` field).
    HashField(Bytes),
    /// The key's list length is `n` (poll_list_length; a missing key is an empty list).
    ListLen(usize),
    /// The list length is at least `n` (poll_list_length_gte).
    ListLenAtLeast(usize),
    /// The list length is at most `n` (poll_list_length_lte).
    ListLenAtMost(usize),
}

impl WaitFor {
    fn holds(&self, v: Option<&Value>) -> bool {
        match self {
            WaitFor::Exists => v.is_some(),
            WaitFor::HashField(f) => matches!(v, Some(Value::Hash(h)) if h.contains_key(f)),
            _ => self.met_by_list_len(match v {
                Some(Value::List(l)) => l.len(),
                _ => 0,
            }),
        }
    }

    /// Whether a list of `len` entries meets a list-length condition (false for the
    /// others).
    pub fn met_by_list_len(&self, len: usize) -> bool {
        match self {
            WaitFor::ListLen(n) => len == *n,
            WaitFor::ListLenAtLeast(n) => len >= *n,
            WaitFor::ListLenAtMost(n) => len <= *n,
            WaitFor::Exists | WaitFor::HashField(_) => false,
        }
    }
}

/// The error for a missing tensor, as RedisAI words it.
pub fn tensor_missing() -> Error {
    Error::err(
        ErrorCode::NotFound,
        "tensor key is empty or in a different shard",
    )
}

/// The error for a missing model, as RedisAI words it.
pub fn model_missing() -> Error {
    Error::err(ErrorCode::NotFound, "model key is empty")
}

fn threads_stopped() -> Error {
    Error::err(ErrorCode::Internal, "inference threads stopped")
}

/// Runs of a model measured before its cost is trusted for running inline.
const INLINE_AFTER_RUNS: u64 = 16;

/// Run a model on the calling thread, with the same checks and statistics as a queued
/// request.
fn run_inline(runner: &Runner, model: &Model, inputs: &[Tensor]) -> RunResult {
    runner.check(inputs)?;
    let started = Instant::now();
    let r = run_checked(runner, inputs);
    let took = started.elapsed();
    let rows = inputs
        .first()
        .and_then(|t| t.shape().first().copied())
        .unwrap_or(1);
    model.stats.record_run(took);
    model
        .stats
        .record_request(rows, r.is_ok(), Duration::ZERO, took);
    r
}

/// Submit inputs to a model's queue and wait (asynchronously) for its outputs, or the
/// deadline. The inputs have been checked against the model.
fn run_queued(
    loaded: LoadedModel,
    inputs: Vec<Tensor>,
    deadline: Option<Instant>,
) -> Result<Pin<Box<dyn Future<Output = RunResult> + Send>>> {
    let rx = loaded.runner.submit(inputs, deadline, loaded.model)?;
    Ok(Box::pin(async move {
        match deadline {
            Some(d) => match tokio::time::timeout_at(d.into(), rx).await {
                Ok(r) => r.map_err(|_| threads_stopped())?,
                Err(_) => Err(Error::new(ErrorCode::Timeout, "TIMEDOUT")),
            },
            None => rx.await.map_err(|_| threads_stopped())?,
        }
    }))
}

impl Engine {
    // ----- tensors -----

    /// Store a tensor under `key`, replacing a tensor there (any other kind of value:
    /// `WRONGTYPE`, checked atomically with the write). The tensor's bytes are shared,
    /// not copied. The tensor meets the limits a peer's would (`max-tensor-dims`,
    /// `max-tensor-bytes`).
    ///
    /// # Errors
    /// `LimitExceeded`, `WrongType`, `OutOfMemory` (maxmemory), a read-only replica's
    /// refusal.
    pub fn put_tensor(&self, key: impl Into<Bytes>, tensor: Tensor) -> Result<()> {
        tensor.check_limits(&self.config.read().limits)?;
        self.store()
            .set_same_kind(key.into(), Value::Tensor(tensor))
    }

    /// The tensor under `key` (sharing the stored bytes).
    ///
    /// # Errors
    /// `NotFound` (`tensor key is empty or in a different shard`), `WrongType`.
    pub fn get_tensor(&self, key: &[u8]) -> Result<Tensor> {
        self.store().with(key, |v| match v {
            Some(Value::Tensor(t)) => Ok(t.clone()),
            Some(_) => Err(Error::wrong_type()),
            None => Err(tensor_missing()),
        })
    }

    /// Whether `key` exists (any kind of value).
    pub fn exists(&self, key: &[u8]) -> bool {
        self.store().exists(key)
    }

    /// Delete `key` (any kind of value); whether it existed.
    ///
    /// # Errors
    /// A read-only replica's refusal.
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        self.store().delete(key)
    }

    /// Whether `key` holds a value of another kind than a tensor (RedisAI refuses such a
    /// key before reading a TENSORSET's other arguments).
    pub fn holds_other_than_tensor(&self, key: &[u8]) -> bool {
        self.holds_other_kind(key, |v| matches!(v, Value::Tensor(_)))
    }

    /// Whether `key` holds a value that is not of the kind `same` accepts.
    fn holds_other_kind(&self, key: &[u8], same: impl Fn(&Value) -> bool) -> bool {
        self.store().with(key, |v| matches!(v, Some(v) if !same(v)))
    }

    // ----- models -----

    /// Whether `key` holds a model here.
    pub fn holds_model(&self, key: &[u8]) -> bool {
        self.store()
            .with(key, |v| matches!(v, Some(Value::Model(_))))
    }

    /// The model stored under `key`, without creating its sessions.
    ///
    /// # Errors
    /// `NotFound` (`model key is empty`), `WrongType`.
    pub fn stored_model(&self, key: &[u8]) -> Result<Arc<Model>> {
        self.store().with(key, |v| match v {
            Some(Value::Model(m)) => Ok(m.clone()),
            Some(_) => Err(Error::wrong_type()),
            None => Err(model_missing()),
        })
    }

    /// Every stored model, by key.
    pub fn models(&self) -> Vec<(Bytes, Arc<Model>)> {
        self.store().pick(|k, v| match v {
            Value::Model(m) => Some((k.clone(), m.clone())),
            _ => None,
        })
    }

    /// The model stored under `key`, with its runner (sessions created now if the model
    /// was loaded from a snapshot and not run since).
    ///
    /// # Errors
    /// `NotFound`, `WrongType`, ONNX Runtime missing or the model unloadable.
    pub fn model(&self, key: &[u8]) -> Result<LoadedModel> {
        let model = self.stored_model(key)?;
        let runner = self.model_runner(&model)?;
        Ok(LoadedModel { model, runner })
    }

    /// Store a model: its sessions are created (the graph parsed and optimised) on an
    /// inference thread, and the model replaces a model under `key` once they are. A
    /// model that does not load stores nothing.
    ///
    /// # Errors
    /// `WrongType` for a key of another kind; the returned run fails when ONNX Runtime
    /// refuses the model.
    pub fn store_model(
        self: &Arc<Self>,
        key: Bytes,
        spec: ModelSpec,
        onnx: Bytes,
    ) -> Result<Run<()>> {
        self.store_model_with(key, spec, onnx, None)
    }

    /// [`Engine::store_model`] with at most `sessions` concurrent runs of this model
    /// (Triton's instance count; `None`: the `threads` setting).
    ///
    /// # Errors
    /// As [`Engine::store_model`].
    pub fn store_model_with(
        self: &Arc<Self>,
        key: Bytes,
        spec: ModelSpec,
        onnx: Bytes,
        sessions: Option<usize>,
    ) -> Result<Run<()>> {
        if self.holds_other_kind(&key, |v| matches!(v, Value::Model(_))) {
            return Err(Error::wrong_type());
        }
        let pool = self.inference_pool()?;
        let mut cfg = self.config().models;
        if let Some(n) = sessions {
            cfg.threads = n.max(1);
        }
        let (tx, rx) = oneshot::channel();
        let (b2, s2, p2) = (onnx.clone(), spec.clone(), pool.clone());
        pool.submit(move || {
            let _ = tx.send(Runner::new(&b2, &s2, &cfg, &p2));
        });
        let engine = self.clone();
        Ok(Run::Queued(Box::pin(async move {
            let runner = rx.await.map_err(|_| threads_stopped())??;
            let model = Model::with_runner(spec, onnx, Arc::new(runner));
            engine
                .store()
                .set_same_kind(key, Value::Model(Arc::new(model)))
        })))
    }

    /// Whether this run happens on the calling thread: always for in-process callers
    /// (`inline`) of a model without batching; for a connection, when the model has no
    /// batching, was measured over at least [`INLINE_AFTER_RUNS`] runs, and its cost per
    /// row times this request's rows is within `ModelConfig::inline_max_us` (such runs are
    /// counted in `INFO stats`). A hand-off to an inference thread and back costs two to
    /// three context switches (tens of microseconds on small machines); a run that costs
    /// less is cheaper done right away, and one that costs more never blocks the I/O
    /// thread.
    fn runs_here(&self, model: &Model, inputs: &[Tensor], inline: bool) -> bool {
        if model.spec.batchsize > 0 {
            return false;
        }
        if inline {
            return true;
        }
        let max_us = self.with_config(|c| c.models.inline_max_us);
        if max_us == 0 {
            return false;
        }
        let s = &model.stats;
        let runs = s.runs.load(Ordering::Relaxed);
        let samples = s.samples.load(Ordering::Relaxed);
        if runs < INLINE_AFTER_RUNS || samples == 0 {
            return false;
        }
        let rows = inputs
            .first()
            .and_then(|t| t.shape().first().copied())
            .unwrap_or(1) as u64;
        let predicted = s.duration_us.load(Ordering::Relaxed).saturating_mul(rows) / samples;
        // Runs shorter than a microsecond are recorded as 0 us: count them as 1.
        let here = predicted.max(1) <= max_us;
        if here {
            self.stats.inline_model_runs.fetch_add(1, Ordering::Relaxed);
        }
        here
    }

    /// Run a model on given tensors and return its outputs; nothing is stored. A model
    /// with batching merges this request with others in its queue.
    ///
    /// # Errors
    /// Inputs that do not fit the model (count, batch dims: RedisAI's texts); the run's
    /// own failure (ONNX Runtime's reason for a dtype or shape it refuses) or `TIMEDOUT` come from the returned run.
    pub fn infer(
        &self,
        loaded: &LoadedModel,
        inputs: Cow<'_, [Tensor]>,
        opts: RunOptions,
    ) -> Result<Run<Vec<Tensor>>> {
        if self.runs_here(&loaded.model, &inputs, opts.inline) {
            return Ok(Run::Done(run_inline(
                &loaded.runner,
                &loaded.model,
                &inputs,
            )));
        }
        Ok(Run::Queued(run_queued(
            loaded.clone(),
            inputs.into_owned(),
            opts.deadline,
        )?))
    }

    /// Run a model on stored tensors and store its outputs (`AI.MODELEXECUTE`).
    ///
    /// # Errors
    /// Wrong input or output counts, missing inputs, inputs that do not fit the model;
    /// the run's own failure, `TIMEDOUT` or a failed store of an output come from the
    /// returned run.
    pub fn run_model<K: AsRef<[u8]>>(
        self: &Arc<Self>,
        loaded: &LoadedModel,
        inputs: &[K],
        outputs: &[K],
        opts: RunOptions,
    ) -> Result<Run<()>> {
        check_count("INPUTS", inputs.len(), loaded.runner.inputs().len())?;
        check_count("OUTPUTS", outputs.len(), loaded.runner.outputs().len())?;
        let ins = inputs
            .iter()
            .map(|k| self.get_tensor(k.as_ref()))
            .collect::<Result<Vec<Tensor>>>()?;
        if self.runs_here(&loaded.model, &ins, opts.inline) {
            let r = run_inline(&loaded.runner, &loaded.model, &ins).and_then(|outs| {
                for (k, t) in outputs.iter().zip(outs) {
                    self.store().set_borrowed(k.as_ref(), Value::Tensor(t))?;
                }
                Ok(())
            });
            return Ok(Run::Done(r));
        }
        let run = run_queued(loaded.clone(), ins, opts.deadline)?;
        let keys: Vec<Bytes> = outputs
            .iter()
            .map(|k| Bytes::copy_from_slice(k.as_ref()))
            .collect();
        let engine = self.clone();
        Ok(Run::Queued(Box::pin(async move {
            let outs = run.await?;
            for (k, t) in keys.into_iter().zip(outs) {
                engine.store().set(k, Value::Tensor(t))?;
            }
            Ok(())
        })))
    }

    // ----- lists -----

    /// The entries `start..=stop` of the list at `key`, with Redis' index rules
    /// (negative counts from the end, out-of-range clamped); a missing key is empty.
    ///
    /// # Errors
    /// `WrongType`.
    pub fn list_range(&self, key: &[u8], start: i64, stop: i64) -> Result<Vec<Bytes>> {
        self.store().with(key, |v| match v {
            None => Ok(Vec::new()),
            Some(Value::List(l)) => {
                let len = l.len() as i64;
                let from = |i: i64| if i < 0 { len + i } else { i };
                let (start, stop) = (from(start).max(0), from(stop).min(len - 1));
                if start > stop || start >= len {
                    return Ok(Vec::new());
                }
                Ok(l.range(start as usize..=stop as usize).cloned().collect())
            }
            Some(_) => Err(Error::wrong_type()),
        })
    }

    /// The length of the list at `key` (0 when missing).
    ///
    /// # Errors
    /// `WrongType`.
    pub fn list_len(&self, key: &[u8]) -> Result<usize> {
        self.store().with(key, |v| match v {
            None => Ok(0),
            Some(Value::List(l)) => Ok(l.len()),
            Some(_) => Err(Error::wrong_type()),
        })
    }

    /// Append `items` to the list at `key` (`RPUSH`); its new length.
    ///
    /// # Errors
    /// `WrongType`, `OutOfMemory`.
    pub fn push_list(&self, key: &[u8], items: &[Bytes]) -> Result<usize> {
        self.store().push(key, items, false)
    }

    // ----- datasets -----

    /// Store a dataset under `base` in SmartRedis' layout (`base.meta` hash, a tensor
    /// `base.<name>` each, the `.COMPLETE` field set last, so a reader polling for it sees
    /// the whole dataset), replacing a dataset there.
    ///
    /// # Errors
    /// An empty dataset; the tensors' limits, `WrongType`, `OutOfMemory`.
    pub fn put_dataset(&self, base: &str, ds: &Dataset) -> Result<()> {
        let meta = ds.meta_to_store()?;
        let meta_key = format!("{base}.meta");
        self.store().delete(meta_key.as_bytes())?;
        let pairs: Vec<Bytes> = meta.into_iter().flat_map(|(f, v)| [f, v]).collect();
        self.store().hset(meta_key.as_bytes(), &pairs)?;
        for (name, t) in ds.tensors() {
            self.put_tensor(format!("{base}.{name}"), t.clone())?;
        }
        self.store().hset(
            meta_key.as_bytes(),
            &[
                Bytes::from_static(ACK_FIELD.as_bytes()),
                Bytes::from_static(b"1"),
            ],
        )?;
        Ok(())
    }

    /// The dataset stored under `base` (named `name`): its metadata and tensors.
    ///
    /// # Errors
    /// `NotFound` (SmartRedis' text) when there is none; a tensor it lists that is gone.
    pub fn get_dataset(&self, name: &str, base: &str) -> Result<Dataset> {
        let pairs: Vec<(Bytes, Bytes)> =
            self.store()
                .with(format!("{base}.meta").as_bytes(), |v| match v {
                    Some(Value::Hash(h)) => {
                        Ok(h.iter().map(|(f, v)| (f.clone(), v.clone())).collect())
                    }
                    Some(_) => Err(Error::wrong_type()),
                    None => Ok(Vec::new()),
                })?;
        if pairs.is_empty() {
            return Err(dataset_missing(name));
        }
        let mut ds = Dataset::new(name);
        for t in ds.decode_meta(&pairs)? {
            let tensor = self.get_tensor(format!("{base}.{t}").as_bytes())?;
            ds.add_tensor(t, tensor);
        }
        Ok(ds)
    }

    // ----- waits -----

    /// Whether `cond` holds for `key` now.
    pub fn holds(&self, key: &[u8], cond: &WaitFor) -> bool {
        self.store().with(key, |v| cond.holds(v))
    }

    /// Wait until `cond` holds for `key`, woken by the write that makes it true (no
    /// polling), or until `timeout`; whether it holds.
    pub async fn wait_until(&self, key: &Bytes, cond: &WaitFor, timeout: Duration) -> bool {
        if self.holds(key, cond) {
            return true;
        }
        if timeout.is_zero() {
            return false;
        }
        self.store().wait_for(key, timeout, |v| cond.holds(v)).await
    }
}
