//! RedisAI's model commands: AI.CONFIG, AI.MODELSTORE, AI.MODELGET, AI.MODELDEL,
//! AI.MODELEXECUTE, AI.INFO, AI._MODELSCAN; the TorchScript commands answer that they are
//! not supported.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::oneshot;

use super::{arity, dag, int_arg, Reply};
use crate::engine::{Engine, Session};
use crate::error::{Error, ErrorCode, Result};
use crate::model::runner::{run_checked, RunResult, StatsSink};
use crate::model::{runtime, unsupported_backend, Device, Model, ModelSpec, ModelStats, Runner};
use crate::resp::Frame;
use crate::store::Value;
use crate::tensor::Tensor;

impl StatsSink for Model {
    fn stats(&self) -> &ModelStats {
        &self.stats
    }
}

/// Commands of this module, or `None` for others.
pub(super) fn dispatch(
    engine: &Arc<Engine>,
    session: &Session,
    name: &[u8],
    args: &[Bytes],
) -> Option<Result<Reply>> {
    let inline = session.inline_inference;
    let ready = |r: Result<Frame>| r.map(Reply::Ready);
    Some(match name {
        b"AI.CONFIG" => ready(config(engine, args)),
        b"AI.MODELSTORE" => modelstore(engine, args),
        b"AI.MODELGET" => ready(modelget(engine, args)),
        b"AI.MODELDEL" => ready(modeldel(engine, args)),
        b"AI.MODELEXECUTE" => modelexecute(engine, args, inline),
        b"AI.INFO" => ready(info(engine, args)),
        b"AI._MODELSCAN" => ready(modelscan(engine, args)),
        b"AI.DAGEXECUTE" => dag::execute(engine, args, false, inline),
        b"AI.DAGEXECUTE_RO" => dag::execute(engine, args, true, inline),
        b"AI.SCRIPTSET" | b"AI.SCRIPTSTORE" | b"AI.SCRIPTGET" | b"AI.SCRIPTDEL"
        | b"AI.SCRIPTRUN" | b"AI.SCRIPTEXECUTE" | b"AI._SCRIPTSCAN" => Err(Error::err(
            ErrorCode::Unsupported,
            "TorchScript is not supported by insitu (it needs the Torch backend): express the computation as an ONNX model and use AI.MODELSTORE / AI.MODELEXECUTE",
        )),
        b"AI.MODELSET" | b"AI.MODELRUN" => Err(Error::err(
            ErrorCode::Unsupported,
            "this deprecated RedisAI command is not supported: use AI.MODELSTORE / AI.MODELEXECUTE",
        )),
        _ => return None,
    })
}

fn model_missing() -> Error {
    Error::err(ErrorCode::NotFound, "model key is empty")
}

/// The model stored under `key`.
pub(super) fn get_model(engine: &Engine, key: &[u8]) -> Result<Arc<Model>> {
    engine.store().with(key, |v| match v {
        Some(Value::Model(m)) => Ok(m.clone()),
        Some(_) => Err(Error::wrong_type()),
        None => Err(model_missing()),
    })
}

fn batch_arg(v: Option<&Bytes>, what: &str) -> Result<usize> {
    let bad = || Error::bad_input(format!("Invalid argument for {what}"));
    let v = v.ok_or_else(bad)?;
    usize::try_from(int_arg(v).map_err(|_| bad())?).map_err(|_| bad())
}

/// Parse `AI.MODELSTORE key backend device [TAG t] [BATCHSIZE n [MINBATCHSIZE m
/// [MINBATCHTIMEOUT ms]]] BLOB chunk...` into the key, spec and the chunks.
fn parse_modelstore(args: &[Bytes]) -> Result<(Bytes, ModelSpec, Vec<Bytes>)> {
    arity(args, 4, 0)?;
    let key = args[1].clone();
    if !args[2].eq_ignore_ascii_case(b"ONNX") {
        return Err(unsupported_backend(&args[2]));
    }
    let device = Device::parse(&args[3])?;
    let mut spec = ModelSpec {
        backend: "ONNX".into(),
        device,
        tag: Bytes::new(),
        batchsize: 0,
        minbatchsize: 0,
        minbatchtimeout: 0,
    };
    let (mut has_batch, mut has_min) = (false, false);
    let mut i = 4;
    while i < args.len() {
        let a = args[i].to_ascii_uppercase();
        match a.as_slice() {
            b"TAG" => {
                spec.tag = args
                    .get(i + 1)
                    .cloned()
                    .ok_or_else(|| Error::bad_input("Invalid argument for TAG"))?;
                i += 2;
            }
            b"BATCHSIZE" => {
                spec.batchsize = batch_arg(args.get(i + 1), "BATCHSIZE")?;
                has_batch = true;
                i += 2;
            }
            b"MINBATCHSIZE" => {
                if !has_batch {
                    return Err(Error::bad_input("MINBATCHSIZE specified without BATCHSIZE"));
                }
                spec.minbatchsize = batch_arg(args.get(i + 1), "MINBATCHSIZE")?;
                has_min = true;
                i += 2;
            }
            b"MINBATCHTIMEOUT" => {
                if !has_min {
                    return Err(Error::bad_input(
                        "MINBATCHTIMEOUT specified without MINBATCHSIZE",
                    ));
                }
                spec.minbatchtimeout = batch_arg(args.get(i + 1), "MINBATCHTIMEOUT")? as u64;
                i += 2;
            }
            b"INPUTS" | b"OUTPUTS" => {
                return Err(Error::bad_input(format!(
                    "{} argument should not be specified for this backend",
                    String::from_utf8_lossy(&a)
                )));
            }
            b"BLOB" => {
                let chunks = args[i + 1..].to_vec();
                if chunks.is_empty() {
                    return Err(Error::bad_input(
                        "Insufficient arguments, missing model BLOB",
                    ));
                }
                return Ok((key, spec, chunks));
            }
            _ => return Err(Error::bad_input("Invalid argument, expected BLOB")),
        }
    }
    Err(Error::bad_input(
        "Insufficient arguments, missing model BLOB",
    ))
}

fn modelstore(engine: &Arc<Engine>, args: &[Bytes]) -> Result<Reply> {
    let (key, spec, chunks) = parse_modelstore(args)?;
    let blob = if chunks.len() == 1 {
        chunks.into_iter().next().unwrap_or_default()
    } else {
        let mut b = BytesMut::with_capacity(chunks.iter().map(|c| c.len()).sum());
        for c in &chunks {
            b.extend_from_slice(c);
        }
        b.freeze()
    };
    let wrong_type = engine.store().with(
        &key,
        |v| matches!(v, Some(v) if !matches!(v, Value::Model(_))),
    );
    if wrong_type {
        return Err(Error::wrong_type());
    }
    // Creating a session parses and optimises the graph: do it on an inference thread.
    let pool = engine.inference_pool()?;
    let cfg = engine.config().models;
    let (tx, rx) = oneshot::channel();
    let (b2, s2, p2) = (blob.clone(), spec.clone(), pool.clone());
    pool.submit(move || {
        let _ = tx.send(Runner::new(&b2, &s2, &cfg, &p2));
    });
    let engine = engine.clone();
    Ok(Reply::Pending(Box::pin(async move {
        let runner = match rx.await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Frame::error(&e),
            Err(_) => {
                return Frame::error(&Error::err(
                    ErrorCode::Internal,
                    "inference threads stopped",
                ))
            }
        };
        let model = Model::with_runner(spec, blob, Arc::new(runner));
        match engine.store().set(key, Value::Model(Arc::new(model))) {
            Ok(()) => Frame::ok(),
            Err(e) => Frame::error(&e),
        }
    })))
}

fn names(specs: &[crate::model::IoSpec]) -> Frame {
    Frame::Array(specs.iter().map(|s| Frame::bulk_str(&s.name)).collect())
}

fn modelget(engine: &Engine, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 4)?;
    let m = get_model(engine, &args[1])?;
    let (mut meta, mut blob) = (false, false);
    for a in &args[2..] {
        if a.eq_ignore_ascii_case(b"META") {
            meta = true;
        } else if a.eq_ignore_ascii_case(b"BLOB") {
            blob = true;
        } else {
            return Err(Error::bad_input("unsupported data format"));
        }
    }
    if !meta && !blob {
        meta = true;
        blob = true;
    }
    if !meta {
        return Ok(Frame::Bulk(m.blob.clone()));
    }
    let runner = engine.model_runner(&m).ok();
    let (ins, outs) = match &runner {
        Some(r) => (names(r.inputs()), names(r.outputs())),
        None => (Frame::Array(vec![]), Frame::Array(vec![])),
    };
    let mut items = vec![
        Frame::bulk_static("backend"),
        Frame::bulk_str(&m.spec.backend),
        Frame::bulk_static("device"),
        Frame::bulk_str(&m.spec.device.to_string()),
        Frame::bulk_static("tag"),
        Frame::Bulk(m.spec.tag.clone()),
        Frame::bulk_static("batchsize"),
        Frame::Integer(m.spec.batchsize as i64),
        Frame::bulk_static("minbatchsize"),
        Frame::Integer(m.spec.minbatchsize as i64),
        Frame::bulk_static("inputs"),
        ins,
        Frame::bulk_static("outputs"),
        outs,
        Frame::bulk_static("minbatchtimeout"),
        Frame::Integer(m.spec.minbatchtimeout as i64),
    ];
    if blob {
        items.push(Frame::bulk_static("blob"));
        items.push(Frame::Bulk(m.blob.clone()));
    }
    Ok(Frame::Array(items))
}

fn modeldel(engine: &Engine, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 2)?;
    get_model(engine, &args[1])?;
    engine.store().delete(&args[1])?;
    Ok(Frame::ok())
}

/// The keys of a MODELEXECUTE: inputs, outputs, timeout.
pub(super) struct ExecArgs {
    pub inputs: Vec<Bytes>,
    pub outputs: Vec<Bytes>,
    pub timeout: Option<Duration>,
}

fn count(v: Option<&Bytes>, what: &str, cap: &str) -> Result<usize> {
    let v = v.ok_or_else(|| Error::bad_input(format!("Invalid argument for {what}")))?;
    let n = int_arg(v).map_err(|_| Error::bad_input(format!("Invalid argument for {what}")))?;
    if n <= 0 {
        return Err(Error::bad_input(format!(
            "{cap} count must be a positive integer"
        )));
    }
    usize::try_from(n).map_err(|_| Error::bad_input(format!("Invalid argument for {what}")))
}

/// Parse `<KW> n k1 .. kn` at the start of `args` (KW is `INPUTS` or `OUTPUTS`), checking
/// `n` against the model's `expected` count; returns the keys and what follows.
fn key_list<'a>(args: &'a [Bytes], kw: &str, expected: usize) -> Result<(Vec<Bytes>, &'a [Bytes])> {
    if !args
        .first()
        .is_some_and(|a| a.eq_ignore_ascii_case(kw.as_bytes()))
    {
        return Err(Error::bad_input(format!("{kw} not specified")));
    }
    let (what, cap) = if kw == "INPUTS" {
        ("input_count", "Input")
    } else {
        ("output_count", "Output")
    };
    let n = count(args.get(1), what, cap)?;
    let keys = args
        .get(2..2 + n)
        .ok_or_else(|| Error::bad_input(format!("Invalid argument for {what}")))?
        .to_vec();
    check_count(kw, n, expected)?;
    Ok((keys, &args[2 + n..]))
}

/// RedisAI's error when a command names more or fewer keys than the model has.
fn check_count(kw: &str, n: usize, expected: usize) -> Result<()> {
    if n != expected {
        return Err(Error::new(
            ErrorCode::BadInput,
            format!("Number of keys given as {kw} here does not match model definition"),
        ));
    }
    Ok(())
}

/// `AI.MODELEXECUTE` for an in-process caller, without building or parsing arguments:
/// the same lookups, checks, errors and statistics. A batched model goes through its
/// batcher (`None` is returned and the caller sends the command instead).
pub fn run_model_inproc<K: AsRef<[u8]>>(
    engine: &Engine,
    model_key: &[u8],
    inputs: &[K],
    outputs: &[K],
) -> Option<Result<()>> {
    let model = match get_model(engine, model_key) {
        Ok(m) => m,
        Err(e) => return Some(Err(e)),
    };
    if model.spec.batchsize > 0 {
        return None;
    }
    Some((|| {
        let runner = engine.model_runner(&model)?;
        check_count("INPUTS", inputs.len(), runner.inputs().len())?;
        check_count("OUTPUTS", outputs.len(), runner.outputs().len())?;
        let ins = inputs
            .iter()
            .map(|k| load_tensor(engine, k.as_ref()))
            .collect::<Result<smallvec::SmallVec<[Tensor; 4]>>>()?;
        let outs = run_inline(&runner, &model, &ins)?;
        for (k, t) in outputs.iter().zip(outs) {
            engine.store().set_borrowed(k.as_ref(), Value::Tensor(t))?;
        }
        Ok(())
    })())
}

/// Run a model on given tensors for an in-process caller (the `infer` path): nothing is
/// stored. `None` for a batched model (the caller uses a DAG so requests can merge).
pub fn infer_inproc(engine: &Engine, model_key: &[u8], inputs: &[Tensor]) -> Option<RunResult> {
    let model = match get_model(engine, model_key) {
        Ok(m) => m,
        Err(e) => return Some(Err(e)),
    };
    if model.spec.batchsize > 0 {
        return None;
    }
    Some(
        engine
            .model_runner(&model)
            .and_then(|r| run_inline(&r, &model, inputs)),
    )
}

/// Key positions of `AI.MODELEXECUTE key INPUTS n k.. OUTPUTS m k.. [TIMEOUT ms]`: the
/// model, its inputs and its outputs (as far as the arguments go).
pub(super) fn execute_keys(args: &[Bytes]) -> Vec<usize> {
    let mut keys: Vec<usize> = (1..args.len().min(2)).collect();
    let mut i = 2;
    for word in ["INPUTS", "OUTPUTS"] {
        let n = match (args.get(i), args.get(i + 1)) {
            (Some(w), Some(n)) if w.eq_ignore_ascii_case(word.as_bytes()) => {
                int_arg(n).ok().and_then(|n| usize::try_from(n).ok())
            }
            _ => None,
        };
        let Some(n) = n else { break };
        let end = i.saturating_add(2).saturating_add(n).min(args.len());
        keys.extend(i + 2..end);
        i = end;
    }
    keys
}

/// Key positions of the deprecated `AI.MODELRUN key INPUTS k.. OUTPUTS k..`.
pub(super) fn run_keys(args: &[Bytes]) -> Vec<usize> {
    let mut keys: Vec<usize> = (1..args.len().min(2)).collect();
    let mut in_list = false;
    for (i, a) in args.iter().enumerate().skip(2) {
        if a.eq_ignore_ascii_case(b"INPUTS") || a.eq_ignore_ascii_case(b"OUTPUTS") {
            in_list = true;
        } else if in_list {
            keys.push(i);
        }
    }
    keys
}

/// Parse `INPUTS n k.. OUTPUTS m k.. [TIMEOUT ms]` (from `args[0]`) against a runner.
pub(super) fn parse_exec(args: &[Bytes], runner: &Runner) -> Result<ExecArgs> {
    let (inputs, rest) = key_list(args, "INPUTS", runner.inputs().len())?;
    let (outputs, rest) = key_list(rest, "OUTPUTS", runner.outputs().len())?;
    let timeout = match rest {
        [] => None,
        [t] if t.eq_ignore_ascii_case(b"TIMEOUT") => {
            return Err(Error::bad_input("No value provided for TIMEOUT"))
        }
        [t, v] if t.eq_ignore_ascii_case(b"TIMEOUT") => {
            let ms = int_arg(v)
                .ok()
                .filter(|&ms| ms > 0)
                .ok_or_else(|| Error::bad_input("Invalid value for TIMEOUT"))?;
            Some(Duration::from_millis(ms as u64))
        }
        _ => return Err(Error::syntax()),
    };
    Ok(ExecArgs {
        inputs,
        outputs,
        timeout,
    })
}

/// Run a model on the calling thread (in-process clients, models without batching),
/// with the same checks and statistics as a queued request.
pub(super) fn run_inline(runner: &Runner, model: &Model, inputs: &[Tensor]) -> RunResult {
    runner.check(inputs)?;
    let started = Instant::now();
    let r = run_checked(runner, inputs);
    let s = &model.stats;
    s.duration_us
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    s.runs.fetch_add(1, Ordering::Relaxed);
    s.calls.fetch_add(1, Ordering::Relaxed);
    match &r {
        Ok(_) => {
            let rows = inputs
                .first()
                .and_then(|t| t.shape().first().copied())
                .unwrap_or(1);
            s.samples.fetch_add(rows as u64, Ordering::Relaxed);
        }
        Err(_) => {
            s.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
    r
}

/// Runs of a model measured before its cost is trusted for running inline.
const INLINE_AFTER_RUNS: u64 = 16;

/// Whether this request runs on the calling thread: always for in-process callers
/// (`inline`); for a connection, when the model has no batching, was measured over at
/// least [`INLINE_AFTER_RUNS`] runs, and its cost per row times this request's rows is
/// within `ModelConfig::inline_max_us` (such runs are counted in `INFO stats`). A hand-off
/// to an inference thread and back costs two to three context switches (tens of
/// microseconds on small machines); a run that costs less is cheaper done right away, and
/// one that costs more never blocks the I/O thread.
pub(super) fn runs_here(engine: &Engine, model: &Model, inputs: &[Tensor], inline: bool) -> bool {
    if inline {
        return true;
    }
    let max_us = engine.with_config(|c| c.models.inline_max_us);
    if max_us == 0 || model.spec.batchsize > 0 {
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
        engine
            .stats
            .inline_model_runs
            .fetch_add(1, Ordering::Relaxed);
    }
    here
}

/// Submit inputs to a model and wait (asynchronously) for its outputs, or the deadline.
/// With `inline` (in-process callers) a model without batching runs right here.
pub(super) async fn run_model(
    runner: Arc<Runner>,
    model: Arc<Model>,
    inputs: Vec<Tensor>,
    deadline: Option<Instant>,
    inline: bool,
) -> RunResult {
    if inline && model.spec.batchsize == 0 {
        return run_inline(&runner, &model, &inputs);
    }
    let rx = runner.submit(inputs, deadline, model)?;
    let gone = || Error::err(ErrorCode::Internal, "inference threads stopped");
    match deadline {
        Some(d) => match tokio::time::timeout_at(d.into(), rx).await {
            Ok(r) => r.map_err(|_| gone())?,
            Err(_) => Err(Error::new(ErrorCode::Timeout, "TIMEDOUT")),
        },
        None => rx.await.map_err(|_| gone())?,
    }
}

/// Load input tensors from the store.
pub(super) fn load_tensors(engine: &Engine, keys: &[Bytes]) -> Result<Vec<Tensor>> {
    keys.iter().map(|k| load_tensor(engine, k)).collect()
}

/// The tensor under `key`.
fn load_tensor(engine: &Engine, key: &[u8]) -> Result<Tensor> {
    engine.store().with(key, |v| match v {
        Some(Value::Tensor(t)) => Ok(t.clone()),
        Some(_) => Err(Error::wrong_type()),
        None => Err(Error::err(
            ErrorCode::NotFound,
            "tensor key is empty or in a different shard",
        )),
    })
}

/// The reply for a finished run: `TIMEDOUT` is a simple string, not an error.
pub(super) fn timed_out(e: &Error) -> bool {
    e.code() == ErrorCode::Timeout && e.text() == "TIMEDOUT"
}

fn store_outputs(engine: &Engine, keys: Vec<Bytes>, outs: Vec<Tensor>) -> Frame {
    for (k, t) in keys.into_iter().zip(outs) {
        if let Err(e) = engine.store().set(k, Value::Tensor(t)) {
            return Frame::error(&e);
        }
    }
    Frame::ok()
}

fn modelexecute(engine: &Arc<Engine>, args: &[Bytes], inline: bool) -> Result<Reply> {
    arity(args, 2, 0)?;
    let model = get_model(engine, &args[1])?;
    let runner = engine.model_runner(&model)?;
    let exec = parse_exec(&args[2..], &runner)?;
    let inputs = load_tensors(engine, &exec.inputs)?;
    if model.spec.batchsize == 0 && runs_here(engine, &model, &inputs, inline) {
        let outs = run_inline(&runner, &model, &inputs)?;
        return Ok(Reply::Ready(store_outputs(engine, exec.outputs, outs)));
    }
    runner.check(&inputs)?;
    let deadline = exec.timeout.map(|t| Instant::now() + t);
    let engine = engine.clone();
    Ok(Reply::Pending(Box::pin(async move {
        match run_model(runner, model, inputs, deadline, false).await {
            Ok(outs) => store_outputs(&engine, exec.outputs, outs),
            Err(e) if timed_out(&e) => Frame::simple("TIMEDOUT"),
            Err(e) => Frame::error(&e),
        }
    })))
}

fn info(engine: &Engine, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 3)?;
    let m = engine.store().with(&args[1], |v| match v {
        Some(Value::Model(m)) => Some(m.clone()),
        _ => None,
    });
    let Some(m) = m else {
        return Err(Error::err(
            ErrorCode::NotFound,
            "cannot find run info for key",
        ));
    };
    if let Some(opt) = args.get(2) {
        if !opt.eq_ignore_ascii_case(b"RESETSTAT") {
            return Err(Error::bad_input("unsupported argument, expected RESETSTAT"));
        }
        m.stats.reset();
        return Ok(Frame::ok());
    }
    let s = &m.stats;
    let n = |c: &std::sync::atomic::AtomicU64| Frame::Integer(c.load(Ordering::Relaxed) as i64);
    Ok(Frame::Array(vec![
        Frame::bulk_static("key"),
        Frame::Bulk(args[1].clone()),
        Frame::bulk_static("type"),
        Frame::bulk_static("MODEL"),
        Frame::bulk_static("backend"),
        Frame::bulk_str(&m.spec.backend),
        Frame::bulk_static("device"),
        Frame::bulk_str(&m.spec.device.to_string()),
        Frame::bulk_static("tag"),
        Frame::Bulk(m.spec.tag.clone()),
        Frame::bulk_static("duration"),
        n(&s.duration_us),
        Frame::bulk_static("samples"),
        n(&s.samples),
        Frame::bulk_static("calls"),
        n(&s.calls),
        Frame::bulk_static("errors"),
        n(&s.errors),
        Frame::bulk_static("runs"),
        n(&s.runs),
    ]))
}

fn modelscan(engine: &Engine, args: &[Bytes]) -> Result<Frame> {
    arity(args, 1, 1)?;
    let mut out = Vec::new();
    for (k, v) in engine.store().snapshot() {
        if let Value::Model(m) = v {
            out.push(Frame::Array(vec![
                Frame::Bulk(k),
                Frame::Bulk(m.spec.tag.clone()),
            ]));
        }
    }
    Ok(Frame::Array(out))
}

fn config(engine: &Engine, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 0)?;
    let sub = args[1].to_ascii_uppercase();
    if sub == b"GET" {
        arity(args, 3, 3)?;
        let c = engine.config().models;
        return Ok(match args[2].to_ascii_uppercase().as_slice() {
            b"MODEL_CHUNK_SIZE" => Frame::Integer(c.chunk_size as i64),
            b"THREADS_PER_QUEUE" => Frame::Integer(c.threads as i64),
            b"INTRA_OP_PARALLELISM" => Frame::Integer(c.intra_op_threads as i64),
            b"INTER_OP_PARALLELISM" => Frame::Integer(c.inter_op_threads as i64),
            b"BACKENDSPATH" => runtime::loaded().map_or(Frame::Null, |r| {
                Frame::bulk_str(&r.path.display().to_string())
            }),
            _ => Frame::Null,
        });
    }
    let value = || -> Result<usize> {
        let v = args.get(2).ok_or_else(|| Error::arity(&args[0]))?;
        usize::try_from(int_arg(v)?)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                Error::bad_input(format!(
                    "Invalid value for {}",
                    String::from_utf8_lossy(&sub)
                ))
            })
    };
    match sub.as_slice() {
        b"MODEL_CHUNK_SIZE" => {
            let n = value()?;
            engine.update_config(|c| c.models.chunk_size = n);
        }
        b"INTRA_OP_PARALLELISM" => {
            let n = value()?;
            engine.update_config(|c| c.models.intra_op_threads = n);
        }
        b"INTER_OP_PARALLELISM" => {
            let n = value()?;
            engine.update_config(|c| c.models.inter_op_threads = n);
        }
        b"THREADS_PER_QUEUE" => {
            let n = value()?;
            if engine.inference_pool_started() {
                return Err(Error::bad_input(
                    "THREADS_PER_QUEUE can only be set before the first model is stored",
                ));
            }
            engine.update_config(|c| c.models.threads = n);
        }
        b"LOADBACKEND" => {
            arity(args, 4, 4)?;
            if !args[2].eq_ignore_ascii_case(b"ONNX") {
                return Err(unsupported_backend(&args[2]));
            }
            // The path is not used: loading a library named by a client would let any
            // client run code in the server. ONNX Runtime is found as the operator set up
            // (ORT_DYLIB_PATH, ...); this only makes sure it is loaded.
            runtime::runtime()?;
        }
        b"BACKENDSPATH" => {
            arity(args, 3, 3)?;
        }
        _ => return Err(Error::bad_input("unsupported subcommand")),
    }
    Ok(Frame::ok())
}
