//! RedisAI's model commands: AI.CONFIG, AI.MODELSTORE, AI.MODELGET, AI.MODELDEL,
//! AI.MODELEXECUTE, AI.INFO, AI._MODELSCAN; the TorchScript commands answer that they are
//! not supported.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::{arity, int_arg, Reply};
use crate::engine::settings;
use crate::engine::{Engine, Run, RunOptions};
use crate::error::{Error, ErrorCode, Result};
use crate::model::runner::check_count;
use crate::model::{runtime, unsupported_backend, Device, ModelSpec, Runner};
use crate::protocol::resp::Frame;
use crate::store::Value;

/// Whether `name` (any case) is one of RedisAI's TorchScript commands.
pub(super) fn is_torchscript(name: &[u8]) -> bool {
    matches!(
        name.to_ascii_uppercase().as_slice(),
        b"AI.SCRIPTSET"
            | b"AI.SCRIPTSTORE"
            | b"AI.SCRIPTGET"
            | b"AI.SCRIPTDEL"
            | b"AI.SCRIPTRUN"
            | b"AI.SCRIPTEXECUTE"
            | b"AI._SCRIPTSCAN"
    )
}

/// The answer to every TorchScript command.
pub(super) fn torchscript_unsupported() -> Error {
    Error::err(
        ErrorCode::Unsupported,
        "TorchScript is not supported by insitu (it needs the Torch backend): express the computation as an ONNX model and use AI.MODELSTORE / AI.MODELEXECUTE",
    )
}

fn batch_arg(v: Option<&Bytes>, what: &str) -> Result<usize> {
    let bad = || Error::bad_input(format!("Invalid argument for {what}"));
    let v = v.ok_or_else(bad)?;
    usize::try_from(int_arg(v).map_err(|_| bad())?).map_err(|_| bad())
}

/// How to store a model (`Client::set_model`, [`encode_modelstore`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelOptions {
    /// `ONNX` (the only backend insitu runs).
    pub backend: String,
    /// `CPU`, `GPU`, `CPU:n`, `GPU:n`.
    pub device: String,
    /// Free-form tag.
    pub tag: String,
    /// Dynamic batching: most rows per run (0: off).
    pub batch_size: usize,
    /// Dynamic batching: wait for this many rows.
    pub min_batch_size: usize,
    /// Dynamic batching: wait at most this long, ms.
    pub min_batch_timeout_ms: u64,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            backend: "ONNX".into(),
            device: "CPU".into(),
            tag: String::new(),
            batch_size: 0,
            min_batch_size: 0,
            min_batch_timeout_ms: 0,
        }
    }
}

/// What a client sends to store `blob` under `key`: `AI.MODELSTORE key backend device
/// [TAG t] [BATCHSIZE n [MINBATCHSIZE m [MINBATCHTIMEOUT ms]]] BLOB chunk...`, the blob
/// in `chunk`-byte pieces (the server's `MODEL_CHUNK_SIZE`), shared, not copied
/// ([`parse_modelstore`] reads it back).
pub fn encode_modelstore(
    key: &[u8],
    opts: &ModelOptions,
    blob: &Bytes,
    chunk: usize,
) -> Vec<Bytes> {
    let text = |s: &str| Bytes::copy_from_slice(s.as_bytes());
    let mut args = vec![
        Bytes::from_static(b"AI.MODELSTORE"),
        Bytes::copy_from_slice(key),
        text(&opts.backend),
        text(&opts.device),
    ];
    if !opts.tag.is_empty() {
        args.extend([Bytes::from_static(b"TAG"), text(&opts.tag)]);
    }
    if opts.batch_size > 0 {
        args.extend([
            Bytes::from_static(b"BATCHSIZE"),
            text(&opts.batch_size.to_string()),
        ]);
        if opts.min_batch_size > 0 {
            args.extend([
                Bytes::from_static(b"MINBATCHSIZE"),
                text(&opts.min_batch_size.to_string()),
            ]);
            if opts.min_batch_timeout_ms > 0 {
                args.extend([
                    Bytes::from_static(b"MINBATCHTIMEOUT"),
                    text(&opts.min_batch_timeout_ms.to_string()),
                ]);
            }
        }
    }
    args.push(Bytes::from_static(b"BLOB"));
    let chunk = chunk.max(1);
    if blob.is_empty() {
        args.push(Bytes::new());
    }
    let mut at = 0;
    while at < blob.len() {
        let end = (at + chunk).min(blob.len());
        args.push(blob.slice(at..end));
        at = end;
    }
    args
}

/// What a client sends to run model `key` on stored tensors: `AI.MODELEXECUTE key
/// INPUTS n in... OUTPUTS m out...` ([`parse_exec`] reads it back).
pub fn encode_modelexecute<S: AsRef<str>>(key: &[u8], inputs: &[S], outputs: &[S]) -> Vec<Bytes> {
    let mut args = Vec::with_capacity(inputs.len() + outputs.len() + 6);
    args.push(Bytes::from_static(b"AI.MODELEXECUTE"));
    args.push(Bytes::copy_from_slice(key));
    for (word, keys) in [("INPUTS", inputs), ("OUTPUTS", outputs)] {
        args.push(Bytes::from_static(word.as_bytes()));
        args.push(Bytes::from(keys.len().to_string()));
        args.extend(
            keys.iter()
                .map(|k| Bytes::copy_from_slice(k.as_ref().as_bytes())),
        );
    }
    args
}

/// The request [`encode_modelstore`] would send, read back as the server reads it (the
/// same checks and texts): the key, the model's spec and its bytes. The in-process
/// client stores models through this.
///
/// # Errors
/// Options the server would refuse (backend, device, batching rules).
pub fn modelstore_request(
    key: &[u8],
    opts: &ModelOptions,
    blob: &Bytes,
) -> Result<(Bytes, ModelSpec, Bytes)> {
    let args = encode_modelstore(key, opts, blob, blob.len().max(1));
    let (key, spec, mut chunks) = parse_modelstore(&args)?;
    Ok((key, spec, chunks.pop().unwrap_or_default()))
}

/// Parse `AI.MODELSTORE key backend device [TAG t] [BATCHSIZE n [MINBATCHSIZE m
/// [MINBATCHTIMEOUT ms]]] BLOB chunk...` into the key, spec and the chunks.
fn parse_modelstore(args: &[Bytes]) -> Result<(Bytes, ModelSpec, Vec<Bytes>)> {
    arity(args, 6, 0)?;
    let key = args[1].clone();
    // RedisAI's backends are all known names, checked argument by argument as RedisAI
    // did; only a complete, valid request for a backend other than ONNX is then refused
    // as unsupported here.
    let backend = args[2].to_ascii_uppercase();
    if !matches!(backend.as_slice(), b"ONNX" | b"TF" | b"TFLITE" | b"TORCH") {
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
            b"INPUTS" | b"OUTPUTS" if backend != b"TF" => {
                return Err(Error::bad_input(format!(
                    "{} argument should not be specified for this backend",
                    String::from_utf8_lossy(&a)
                )));
            }
            b"INPUTS" | b"OUTPUTS" => return Err(unsupported_backend(&args[2])),
            b"BLOB" => {
                let chunks = args[i + 1..].to_vec();
                if chunks.is_empty() {
                    return Err(Error::bad_input(
                        "Insufficient arguments, missing model BLOB",
                    ));
                }
                if backend != b"ONNX" {
                    return Err(unsupported_backend(&args[2]));
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

/// The deprecated `AI.MODELSET key backend device [TAG t] [BATCHSIZE n [MINBATCHSIZE m
/// [MINBATCHTIMEOUT ms]]] [INPUTS i.. OUTPUTS o..] BLOB chunk..`, checked as RedisAI
/// checked it (deprecated.c), as the `AI.MODELSTORE` arguments it stands for.
pub(super) fn modelset(_engine: &Engine, args: &[Bytes]) -> Result<Vec<Bytes>> {
    if args.len() < 4 {
        return Err(Error::arity(&args[0]));
    }
    let backend = args[2].to_ascii_uppercase();
    if !matches!(backend.as_slice(), b"ONNX" | b"TF" | b"TFLITE" | b"TORCH") {
        return Err(Error::bad_input("unsupported backend"));
    }
    let device = &args[3];
    const KEYWORDS: [&[u8]; 7] = [
        b"INPUTS",
        b"OUTPUTS",
        b"TAG",
        b"BATCHSIZE",
        b"MINBATCHSIZE",
        b"MINBATCHTIMEOUT",
        b"BLOB",
    ];
    if device.len() > 10 || KEYWORDS.iter().any(|k| device.eq_ignore_ascii_case(k)) {
        return Err(Error::bad_input("Invalid DEVICE"));
    }
    let mut out: Vec<Bytes> = vec![
        Bytes::from_static(b"AI.MODELSTORE"),
        args[1].clone(),
        args[2].clone(),
        args[3].clone(),
    ];
    let mut i = 4;
    let at = |i: usize, word: &[u8]| args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(word));
    let number = |i: usize, what: &str| -> Result<u64> {
        args.get(i)
            .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
            .ok_or_else(|| Error::bad_input(format!("Invalid argument for {what}")))
    };
    if at(i, b"TAG") {
        out.extend(args.get(i..i + 2).unwrap_or(&args[i..]).iter().cloned());
        i += 2;
    }
    let (mut batch, mut minbatch) = (0, 0);
    if at(i, b"BATCHSIZE") {
        if backend == b"TFLITE" {
            return Err(Error::bad_input(
                "Auto-batching not supported by the TFLITE backend",
            ));
        }
        batch = number(i + 1, "BATCHSIZE")?;
        out.extend([args[i].clone(), args[i + 1].clone()]);
        i += 2;
    }
    if at(i, b"MINBATCHSIZE") {
        if batch == 0 {
            return Err(Error::bad_input("MINBATCHSIZE specified without BATCHSIZE"));
        }
        minbatch = number(i + 1, "MINBATCHSIZE")?;
        out.extend([args[i].clone(), args[i + 1].clone()]);
        i += 2;
    }
    if at(i, b"MINBATCHTIMEOUT") {
        if batch == 0 {
            return Err(Error::bad_input(
                "MINBATCHTIMEOUT specified without BATCHSIZE",
            ));
        }
        if minbatch == 0 {
            return Err(Error::bad_input(
                "MINBATCHTIMEOUT specified without MINBATCHSIZE",
            ));
        }
        number(i + 1, "MINBATCHTIMEOUT")?;
        out.extend([args[i].clone(), args[i + 1].clone()]);
        i += 2;
    }
    let missing_blob = || Error::bad_input("Insufficient arguments, missing model BLOB");
    if i >= args.len() {
        return Err(missing_blob());
    }
    let blob_at = args[i..]
        .iter()
        .position(|a| a.eq_ignore_ascii_case(b"BLOB"))
        .map(|p| i + p);
    // INPUTS/OUTPUTS name a TF graph's tensors; other backends' models name their own.
    let options = &args[i..blob_at.unwrap_or(args.len())];
    if backend == b"TF" {
        if options.is_empty() {
            return Err(Error::bad_input(
                "Insufficient arguments, INPUTS and OUTPUTS not specified",
            ));
        }
        if !options[0].eq_ignore_ascii_case(b"INPUTS") {
            return Err(Error::bad_input("INPUTS not specified"));
        }
        if !options.iter().any(|a| a.eq_ignore_ascii_case(b"OUTPUTS")) {
            return Err(Error::bad_input("OUTPUTS not specified"));
        }
    }
    match blob_at {
        Some(b) if b + 1 < args.len() => {
            out.push(Bytes::from_static(b"BLOB"));
            out.extend(args[b + 1..].iter().cloned());
            Ok(out)
        }
        _ => Err(missing_blob()),
    }
}

/// The deprecated `AI.MODELRUN key [TIMEOUT ms] INPUTS i.. OUTPUTS o..`, checked as
/// RedisAI checked it (deprecated.c), as the `AI.MODELEXECUTE` arguments it stands for.
pub(super) fn modelrun(engine: &Engine, args: &[Bytes]) -> Result<Vec<Bytes>> {
    if args.len() < 6 {
        return Err(Error::bad_input(
            "wrong number of arguments for 'AI.MODELRUN' command",
        ));
    }
    let runner = engine.model(&args[1])?.runner;
    let mut i = 2;
    let mut timeout = None;
    if args[i].eq_ignore_ascii_case(b"TIMEOUT") {
        let ms = args
            .get(i + 1)
            .and_then(|v| int_arg(v).ok())
            .filter(|&ms| ms > 0)
            .ok_or_else(|| Error::bad_input("Invalid value for TIMEOUT"))?;
        timeout = Some(ms);
        i += 2;
    }
    if !args
        .get(i)
        .is_some_and(|a| a.eq_ignore_ascii_case(b"INPUTS"))
    {
        return Err(Error::bad_input("INPUTS not specified"));
    }
    let rest = &args[i + 1..];
    let split = rest.iter().position(|a| a.eq_ignore_ascii_case(b"OUTPUTS"));
    let (ins, outs) = match split {
        Some(p) => (&rest[..p], &rest[p + 1..]),
        None => (rest, &rest[rest.len()..]),
    };
    check_count("INPUTS", ins.len(), runner.inputs().len())?;
    check_count("OUTPUTS", outs.len(), runner.outputs().len())?;
    let mut out = vec![Bytes::from_static(b"AI.MODELEXECUTE"), args[1].clone()];
    out.push(Bytes::from_static(b"INPUTS"));
    out.push(Bytes::from(ins.len().to_string()));
    out.extend(ins.iter().cloned());
    out.push(Bytes::from_static(b"OUTPUTS"));
    out.push(Bytes::from(outs.len().to_string()));
    out.extend(outs.iter().cloned());
    if let Some(ms) = timeout {
        out.push(Bytes::from_static(b"TIMEOUT"));
        out.push(Bytes::from(ms.to_string()));
    }
    Ok(out)
}

pub(super) fn modelstore(engine: &Arc<Engine>, args: &[Bytes]) -> Result<Reply> {
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
    run_reply(engine.store_model(key, spec, blob)?)
}

fn names(specs: &[crate::model::IoSpec]) -> Frame {
    Frame::Array(specs.iter().map(|s| Frame::bulk_str(&s.name)).collect())
}

pub(super) fn modelget(engine: &Engine, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 4)?;
    let m = engine.stored_model(&args[1])?;
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

pub(super) fn modeldel(engine: &Engine, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 2)?;
    engine.stored_model(&args[1])?;
    engine.store().delete(&args[1])?;
    Ok(Frame::ok())
}

/// The keys of a MODELEXECUTE: inputs, outputs, timeout.
pub(super) struct ExecArgs {
    pub inputs: Vec<Bytes>,
    pub outputs: Vec<Bytes>,
    pub timeout: Option<Duration>,
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

/// RedisAI's arity rule for `AI.MODELEXECUTE` (also as a DAG op): at least 8 arguments,
/// reported with this text however the command was typed.
pub(super) fn check_exec_arity(args: &[Bytes]) -> Result<()> {
    if args.len() < 8 {
        return Err(Error::bad_input(
            "wrong number of arguments for 'AI.MODELEXECUTE' command",
        ));
    }
    Ok(())
}

/// A positive count after `INPUTS` / `OUTPUTS`, with RedisAI's errors.
fn exec_count(v: Option<&Bytes>, what: &str, cap: &str) -> Result<usize> {
    let n = v
        .and_then(|v| int_arg(v).ok())
        .ok_or_else(|| Error::bad_input(format!("Invalid argument for {what}")))?;
    if n <= 0 {
        return Err(Error::bad_input(format!(
            "{cap} count must be a positive integer"
        )));
    }
    Ok(n as usize)
}

/// Parse `INPUTS n k.. OUTPUTS m k.. [TIMEOUT ms]` (from `args[0]`) against a runner,
/// check by check in RedisAI's order with its texts (model_commands_parser.c).
pub(super) fn parse_exec(args: &[Bytes], runner: &Runner) -> Result<ExecArgs> {
    if !args
        .first()
        .is_some_and(|a| a.eq_ignore_ascii_case(b"INPUTS"))
    {
        return Err(Error::bad_input("INPUTS not specified"));
    }
    let n_in = exec_count(args.get(1), "input_count", "Input")?;
    check_count("INPUTS", n_in, runner.inputs().len())?;
    let keys_missing = |what: &str| {
        Error::bad_input(format!(
            "number of {what} keys to AI.MODELEXECUTE command does not match the number of given arguments"
        ))
    };
    let inputs = args
        .get(2..2 + n_in)
        .ok_or_else(|| keys_missing("input"))?
        .to_vec();
    let mut pos = 2 + n_in;
    if !args
        .get(pos)
        .is_some_and(|a| a.eq_ignore_ascii_case(b"OUTPUTS"))
    {
        return Err(Error::bad_input("OUTPUTS not specified"));
    }
    let n_out = exec_count(args.get(pos + 1), "output_count", "Output")?;
    check_count("OUTPUTS", n_out, runner.outputs().len())?;
    pos += 2;
    let outputs = args
        .get(pos..pos + n_out)
        .ok_or_else(|| keys_missing("output"))?
        .to_vec();
    pos += n_out;
    let invalid = |a: &Bytes| {
        Error::new(
            ErrorCode::BadInput,
            format!("Invalid argument: {}", String::from_utf8_lossy(a)),
        )
    };
    let timeout = match &args[pos..] {
        [] => None,
        [t, rest @ ..] if t.eq_ignore_ascii_case(b"TIMEOUT") => {
            let Some((v, rest)) = rest.split_first() else {
                return Err(Error::bad_input("No value provided for TIMEOUT"));
            };
            let ms = int_arg(v)
                .ok()
                .filter(|&ms| ms > 0)
                .ok_or_else(|| Error::bad_input("Invalid value for TIMEOUT"))?;
            if let Some(extra) = rest.first() {
                return Err(invalid(extra));
            }
            Some(Duration::from_millis(ms as u64))
        }
        [other, ..] => return Err(invalid(other)),
    };
    Ok(ExecArgs {
        inputs,
        outputs,
        timeout,
    })
}

/// The reply for a finished run: `TIMEDOUT` is a simple string, not an error.
pub(super) fn timed_out(e: &Error) -> bool {
    e.code() == ErrorCode::Timeout && e.text() == "TIMEDOUT"
}

/// The reply of a model run: `OK`, or `TIMEDOUT` as a simple string (not an error).
pub(super) fn run_reply(r: Run<()>) -> Result<Reply> {
    match r {
        Run::Done(r) => r.map(|()| Reply::Ready(Frame::ok())),
        Run::Queued(f) => Ok(Reply::Pending(Box::pin(async move {
            match f.await {
                Ok(()) => Frame::ok(),
                Err(e) if timed_out(&e) => Frame::simple("TIMEDOUT"),
                Err(e) => Frame::error(&e),
            }
        }))),
    }
}

pub(super) fn modelexecute(engine: &Arc<Engine>, args: &[Bytes], inline: bool) -> Result<Reply> {
    check_exec_arity(args)?;
    let loaded = engine.model(&args[1])?;
    let exec = parse_exec(&args[2..], &loaded.runner)?;
    let opts = RunOptions {
        deadline: exec.timeout.map(|t| Instant::now() + t),
        inline,
    };
    run_reply(engine.run_model(&loaded, &exec.inputs, &exec.outputs, opts)?)
}

pub(super) fn info(engine: &Engine, args: &[Bytes]) -> Result<Frame> {
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

pub(super) fn modelscan(engine: &Engine, args: &[Bytes]) -> Result<Frame> {
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

/// `AI.CONFIG`: RedisAI's subcommands with its checks and texts (LOADBACKEND,
/// BACKENDSPATH, MODEL_CHUNK_SIZE, GET), and insitu's run-time settings of the same kind
/// (INTRA_OP_PARALLELISM, INTER_OP_PARALLELISM, THREADS_PER_QUEUE before the first model).
pub(super) fn config(engine: &Engine, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 0)?;
    let sub = args[1].to_ascii_uppercase();
    let arg = args.get(2);
    match sub.as_slice() {
        b"GET" => {
            let Some(name) = arg else {
                return Err(Error::arity(&args[0]));
            };
            if name.eq_ignore_ascii_case(b"BACKENDSPATH") {
                return Ok(runtime::loaded().map_or(Frame::Null, |r| {
                    Frame::bulk_str(&r.path.display().to_string())
                }));
            }
            // RedisAI's names for insitu's settings (all counts).
            return Ok(match settings::find_ai(name) {
                Some(s) => engine.with_config(|c| {
                    (s.get)(c)
                        .parse::<i64>()
                        .map_or(Frame::Null, Frame::Integer)
                }),
                None => Frame::Null,
            });
        }
        b"LOADBACKEND" => {
            if args.len() < 4 {
                return Err(Error::arity(&args[0]));
            }
            let backend = args[2].to_ascii_uppercase();
            match backend.as_slice() {
                // The path is not used: loading a library named by a client would let any
                // client run code in the server. ONNX Runtime is found as the operator set
                // up (ORT_DYLIB_PATH, ...); this only makes sure it is loaded.
                b"ONNX" => {
                    runtime::runtime().map_err(|_| Error::bad_input("error loading backend"))?;
                }
                b"TF" | b"TFLITE" | b"TORCH" => {
                    return Err(Error::bad_input("error loading backend"))
                }
                _ => return Err(Error::bad_input("unsupported backend")),
            }
        }
        b"BACKENDSPATH" => {
            if arg.is_none() {
                return Err(Error::bad_input("BACKENDSPATH: missing path argument"));
            }
        }
        name if settings::find_ai(name).is_some() => {
            let setting = settings::find_ai(name)
                .ok_or_else(|| Error::bad_input("unsupported subcommand"))?;
            let name = String::from_utf8_lossy(&sub).into_owned();
            // RedisAI's texts (MODEL_CHUNK_SIZE had its own words).
            let (missing, invalid) = if name == "MODEL_CHUNK_SIZE" {
                ("missing chunk size", "invalid chunk size")
            } else {
                ("missing value", "invalid value")
            };
            let Some(v) = arg else {
                return Err(Error::bad_input(format!("{name}: {missing}")));
            };
            let n = int_arg(v)
                .ok()
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n > 0)
                .ok_or_else(|| Error::bad_input(format!("{name}: {invalid}")))?;
            if name == "THREADS_PER_QUEUE" && engine.inference_pool_started() {
                return Err(Error::bad_input(
                    "THREADS_PER_QUEUE can only be set before the first model is stored",
                ));
            }
            let mut cfg = engine.config();
            setting
                .apply(&mut cfg, &n.to_string())
                .map_err(|e| Error::bad_input(format!("{name}: {}", e.message())))?;
            engine.update_config(|c| *c = cfg);
        }
        _ => return Err(Error::bad_input("unsupported subcommand")),
    }
    Ok(Frame::ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_client_encodes_the_server_parses() {
        let opts = ModelOptions {
            tag: "v2".into(),
            batch_size: 8,
            min_batch_size: 2,
            min_batch_timeout_ms: 5,
            ..ModelOptions::default()
        };
        let blob = Bytes::from((0..10u8).collect::<Vec<_>>());
        let args = encode_modelstore(b"m", &opts, &blob, 4);
        let (key, spec, chunks) = parse_modelstore(&args).unwrap();
        assert_eq!(key.as_ref(), b"m");
        assert_eq!(
            (
                spec.tag.as_ref(),
                spec.batchsize,
                spec.minbatchsize,
                spec.minbatchtimeout
            ),
            (&b"v2"[..], 8, 2, 5)
        );
        assert_eq!(
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>(),
            vec![4, 4, 2]
        );
        assert_eq!(chunks.concat(), blob.to_vec());

        let args = encode_modelexecute(b"m", &["a", "b"], &["y"]);
        check_exec_arity(&args).unwrap();
        assert_eq!(execute_keys(&args), vec![1, 4, 5, 8]);
        assert_eq!(
            args,
            [
                "AI.MODELEXECUTE",
                "m",
                "INPUTS",
                "2",
                "a",
                "b",
                "OUTPUTS",
                "1",
                "y"
            ]
            .map(|s| Bytes::from_static(s.as_bytes()))
        );
    }
}
