//! `AI.DAGEXECUTE` / `AI.DAGEXECUTE_RO` (and the deprecated `AI.DAGRUN` /
//! `AI.DAGRUN_RO`): put inputs, run models, get outputs in one request. Tensors named in
//! the DAG live in a context private to the request; only `LOAD` reads the store and only
//! `PERSIST` writes it, so nothing is left behind. Parsing follows RedisAI's
//! (dag_parser.c, deprecated.c, dag_execute.c) check by check, with its texts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::model::{check_exec_arity, encode_modelexecute, parse_exec, timed_out};
use super::tensor::{
    decode_tensorget, encode_tensorset, parse_tensorset, tensor_reply, TensorFormat,
};
use super::{int_arg, Reply};
use crate::data::tensor::Tensor;
use crate::engine::{Engine, LoadedModel, RunOptions};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::resp::Frame;
use crate::store::Value;

enum Op {
    Set(Bytes, Tensor),
    Get(Bytes, TensorFormat),
    Run {
        model: LoadedModel,
        inputs: Vec<Bytes>,
        outputs: Vec<Bytes>,
    },
}

/// What a client sends to run model `key` on `inputs` without storing anything (the
/// in-process client's `infer` over the wire): `AI.DAGEXECUTE ROUTING key |> AI.TENSORSET
/// in0 ... |> AI.MODELEXECUTE key INPUTS n in0.. OUTPUTS m out0.. |> AI.TENSORGET out0
/// META BLOB ...`; [`decode_infer`] reads the reply.
pub fn encode_infer(key: &[u8], inputs: &[Tensor], outputs: usize) -> Vec<Bytes> {
    let ins: Vec<String> = (0..inputs.len()).map(|i| format!("in{i}")).collect();
    let outs: Vec<String> = (0..outputs).map(|i| format!("out{i}")).collect();
    let sep = || Bytes::from_static(b"|>");
    let mut args = vec![
        Bytes::from_static(b"AI.DAGEXECUTE"),
        Bytes::from_static(b"ROUTING"),
        Bytes::copy_from_slice(key),
    ];
    for (name, t) in ins.iter().zip(inputs) {
        args.push(sep());
        args.extend(encode_tensorset(name.as_bytes(), t));
    }
    args.push(sep());
    args.extend(encode_modelexecute(key, &ins, &outs));
    for name in &outs {
        args.push(sep());
        args.extend(
            [&b"AI.TENSORGET"[..], name.as_bytes(), b"META", b"BLOB"].map(Bytes::copy_from_slice),
        );
    }
    args
}

/// The output tensors in the reply to [`encode_infer`]'s DAG of `inputs` inputs.
///
/// # Errors
/// The error of the step that failed, `Timeout` for `TIMEDOUT`, `Protocol` for a reply of
/// another shape.
pub fn decode_infer(reply: Frame, inputs: usize) -> Result<Vec<Tensor>> {
    let items = match reply {
        Frame::Array(items) => items,
        Frame::Simple(s) if s.as_ref() == b"TIMEDOUT" => {
            return Err(Error::new(ErrorCode::Timeout, "TIMEDOUT"))
        }
        Frame::Error(e) => return Err(e),
        other => {
            return Err(Error::err(
                ErrorCode::Protocol,
                format!("unexpected reply to AI.DAGEXECUTE: {other:?}"),
            ))
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        if let Frame::Error(e) = item {
            return Err(e);
        }
        if i > inputs {
            out.push(decode_tensorget(item)?);
        }
    }
    Ok(out)
}

/// Which DAG command.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `AI.DAGEXECUTE`
    Execute,
    /// `AI.DAGEXECUTE_RO`
    ExecuteRo,
    /// `AI.DAGRUN` (deprecated)
    Run,
    /// `AI.DAGRUN_RO` (deprecated)
    RunRo,
}

impl Kind {
    fn read_only(self) -> bool {
        matches!(self, Kind::ExecuteRo | Kind::RunRo)
    }

    fn deprecated(self) -> bool {
        matches!(self, Kind::Run | Kind::RunRo)
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Execute => "AI.DAGEXECUTE",
            Kind::ExecuteRo => "AI.DAGEXECUTE_RO",
            Kind::Run => "AI.DAGRUN",
            Kind::RunRo => "AI.DAGRUN_RO",
        }
    }
}

/// An error text RedisAI sends without the `ERR ` prefix.
fn bare(text: impl Into<String>) -> Error {
    Error::new(ErrorCode::BadInput, text)
}

/// `LOAD n k..` / `PERSIST n k..` at `args[i]`: RedisAI's checks, the keys, and the
/// position after them. `each` sees every key in order (LOAD reads the tensor there).
fn key_list(
    args: &[Bytes],
    i: usize,
    what: &str,
    mut each: impl FnMut(&Bytes) -> Result<()>,
) -> Result<(Vec<Bytes>, usize)> {
    if args.len() - i < 3 {
        return Err(Error::bad_input(format!(
            "missing arguments after {what} keyword in DAG command"
        )));
    }
    let n = int_arg(&args[i + 1])
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            Error::bad_input(format!(
                "invalid or negative value found in number of keys to {what}"
            ))
        })? as usize;
    let keys: Vec<Bytes> = args[i + 2..].iter().take(n).cloned().collect();
    for k in &keys {
        each(k)?;
    }
    if keys.len() != n {
        return Err(Error::bad_input(if what == "LOAD" {
            "number of keys to LOAD into DAG does not match the number of given arguments"
        } else {
            "number of keys to PERSIST after DAG execution does not match the number of given arguments"
        }));
    }
    Ok((keys, i + 2 + n))
}

fn parse_op(engine: &Engine, op: &[Bytes], kind: Kind) -> Result<Op> {
    let name = op
        .first()
        .map(|n| n.to_ascii_uppercase())
        .unwrap_or_default();
    let limits = engine.with_config(|c| c.limits.clone());
    match name.as_slice() {
        b"AI.TENSORSET" => {
            if op.len() < 4 {
                return Err(bare("wrong number of arguments for 'AI.TENSORSET' command"));
            }
            let (k, t) = parse_tensorset(op, &limits)?;
            Ok(Op::Set(k, t))
        }
        b"AI.TENSORGET" => {
            if !(2..=4).contains(&op.len()) {
                return Err(bare("wrong number of arguments for 'AI.TENSORGET' command"));
            }
            Ok(Op::Get(op[1].clone(), TensorFormat::parse(&op[2..])?))
        }
        b"AI.MODELEXECUTE" if !kind.deprecated() => {
            check_exec_arity(op)?;
            let model = engine.model(&op[1])?;
            let exec = parse_exec(&op[2..], &model.runner)?;
            Ok(Op::Run {
                model,
                inputs: exec.inputs,
                outputs: exec.outputs,
            })
        }
        b"AI.MODELRUN" if kind.deprecated() => {
            let exec = super::model::modelrun(engine, op)?;
            if exec.iter().any(|a| a.eq_ignore_ascii_case(b"TIMEOUT")) {
                return Err(Error::bad_input("TIMEOUT not allowed within a DAG command"));
            }
            let model = engine.model(&op[1])?;
            let exec = parse_exec(&exec[2..], &model.runner)?;
            Ok(Op::Run {
                model,
                inputs: exec.inputs,
                outputs: exec.outputs,
            })
        }
        b"AI.SCRIPTEXECUTE" if kind == Kind::ExecuteRo => Err(Error::bad_input(
            "AI.SCRIPTEXECUTE command cannot be specified in a read-only DAG",
        )),
        b"AI.SCRIPTEXECUTE" | b"AI.SCRIPTRUN"
            if kind.deprecated() == (name.as_slice() == b"AI.SCRIPTRUN") =>
        {
            Err(super::model::torchscript_unsupported())
        }
        b"AI.MODELRUN" | b"AI.SCRIPTRUN" => Err(bare(format!(
            "Deprecated {} cannot be used in AI.DAGEXECUTE command",
            String::from_utf8_lossy(&name)
        ))),
        b"AI.MODELEXECUTE" | b"AI.SCRIPTEXECUTE" => Err(bare(format!(
            "{} cannot be used in a deprecated AI.DAGRUN command",
            String::from_utf8_lossy(&name)
        ))),
        _ => Err(bare("Unsupported command within DAG")),
    }
}

/// Key positions of a DAG: the `LOAD` and `PERSIST` keys, the `ROUTING` tag and the
/// models its ops run.
pub(super) fn keys(args: &[Bytes]) -> Vec<usize> {
    let mut keys = Vec::new();
    let mut i = 1;
    while i < args.len() && args[i].as_ref() != b"|>" {
        let a = &args[i];
        if a.eq_ignore_ascii_case(b"LOAD") || a.eq_ignore_ascii_case(b"PERSIST") {
            let n = args
                .get(i + 1)
                .and_then(|n| int_arg(n).ok())
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0);
            let end = i.saturating_add(2).saturating_add(n).min(args.len());
            keys.extend(i + 2..end);
            i = end;
        } else if a.eq_ignore_ascii_case(b"ROUTING") {
            keys.extend(i + 1..(i + 2).min(args.len()));
            i += 2;
        } else {
            i += 1;
        }
    }
    for (j, a) in args.iter().enumerate().skip(i) {
        let run =
            a.eq_ignore_ascii_case(b"AI.MODELEXECUTE") || a.eq_ignore_ascii_case(b"AI.MODELRUN");
        if run && args.get(j - 1).is_some_and(|p| p.as_ref() == b"|>") && j + 1 < args.len() {
            keys.push(j + 1);
        }
    }
    keys
}

pub(super) fn execute(
    engine: &Arc<Engine>,
    args: &[Bytes],
    kind: Kind,
    inline: bool,
) -> Result<Reply> {
    let read_only = kind.read_only();
    let min = if kind.deprecated() { 4 } else { 6 };
    if args.len() < min {
        return Err(Error::bad_input(if kind.deprecated() {
            format!("wrong number of arguments for '{}' command", kind.name())
        } else {
            format!("missing arguments for '{}' command", kind.name())
        }));
    }
    let mut context: HashMap<Bytes, Tensor> = HashMap::new();
    let (mut load, mut persist, mut routing) = (None, None::<Vec<Bytes>>, false);
    let mut timeout = None;
    let mut ops_args: Vec<&[Bytes]> = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let a = &args[i];
        let before_ops = ops_args.is_empty();
        if before_ops && load.is_none() && a.eq_ignore_ascii_case(b"LOAD") {
            let (keys, next) = key_list(args, i, "LOAD", |k| {
                let t = engine.get_tensor(k)?;
                context.insert(k.clone(), t);
                Ok(())
            })?;
            load = Some(keys);
            i = next;
        } else if before_ops && persist.is_none() && a.eq_ignore_ascii_case(b"PERSIST") {
            if read_only {
                return Err(Error::bad_input(
                    "PERSIST cannot be specified in a read-only DAG",
                ));
            }
            let mut seen: Vec<Bytes> = Vec::new();
            let (keys, next) = key_list(args, i, "PERSIST", |k| {
                if seen.contains(k) {
                    return Err(Error::bad_input("PERSIST keys must be unique"));
                }
                seen.push(k.clone());
                Ok(())
            })?;
            persist = Some(keys);
            i = next;
        } else if before_ops && !routing && a.eq_ignore_ascii_case(b"ROUTING") {
            if i + 1 >= args.len() {
                return Err(Error::bad_input("Missing ROUTING value"));
            }
            routing = true;
            i += 2;
        } else if before_ops && timeout.is_none() && a.eq_ignore_ascii_case(b"TIMEOUT") {
            let v = args
                .get(i + 1)
                .ok_or_else(|| Error::bad_input("No value provided for TIMEOUT"))?;
            let ms = int_arg(v)
                .ok()
                .filter(|&ms| ms > 0)
                .ok_or_else(|| Error::bad_input("Invalid value for TIMEOUT"))?;
            timeout = Some(Duration::from_millis(ms as u64));
            i += 2;
        } else if a.as_ref() == b"|>" && i + 1 < args.len() {
            let start = i + 1;
            let end = args[start..]
                .iter()
                .position(|x| x.as_ref() == b"|>")
                .map_or(args.len(), |p| start + p);
            ops_args.push(&args[start..end]);
            i = end;
        } else {
            return Err(Error::bad_input(format!(
                "Invalid DAG command. Unexpected argument:  {}",
                String::from_utf8_lossy(a)
            )));
        }
    }
    if !kind.deprecated() && load.is_none() && persist.is_none() && !routing {
        return Err(Error::bad_input(
            "AI.DAGEXECUTE and AI.DAGEXECUTE_RO commands must contain at least one out of ROUTING, LOAD, PERSIST keywords",
        ));
    }
    if ops_args.is_empty() {
        return Err(Error::bad_input("DAG is empty"));
    }
    // Parse every op before running any, so a malformed DAG changes nothing.
    let ops = ops_args
        .into_iter()
        .map(|op| parse_op(engine, op, kind))
        .collect::<Result<Vec<Op>>>()?;
    // Every key an op reads must come from LOAD or an earlier op, and every PERSIST key
    // from some op (RedisAI's MapTensorsKeysToIndices / ValidatePersistKeys).
    let mut known: std::collections::HashSet<&Bytes> = context.keys().collect();
    for op in &ops {
        let (reads, writes): (Vec<&Bytes>, Vec<&Bytes>) = match op {
            Op::Set(k, _) => (vec![], vec![k]),
            Op::Get(k, _) => (vec![k], vec![]),
            Op::Run {
                inputs, outputs, ..
            } => (inputs.iter().collect(), outputs.iter().collect()),
        };
        if reads.iter().any(|k| !known.contains(k)) {
            return Err(Error::bad_input("INPUT key cannot be found in DAG"));
        }
        known.extend(writes);
    }
    let persist = persist.unwrap_or_default();
    if persist.iter().any(|k| !known.contains(k)) {
        return Err(Error::bad_input("PERSIST key cannot be found in DAG"));
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    let engine = engine.clone();
    Ok(Reply::Pending(Box::pin(async move {
        let mut replies = Vec::with_capacity(ops.len());
        let mut failed = false;
        for op in ops {
            if failed {
                replies.push(Frame::simple("NA"));
                continue;
            }
            let r = match op {
                Op::Set(k, t) => {
                    context.insert(k, t);
                    Ok(Frame::ok())
                }
                Op::Get(k, fmt) => match context.get(&k) {
                    Some(t) => Ok(tensor_reply(t, fmt)),
                    None => Err(Error::err(
                        ErrorCode::NotFound,
                        "tensor key is empty or in a different shard",
                    )),
                },
                Op::Run {
                    model,
                    inputs,
                    outputs,
                } => {
                    let ins: Result<Vec<Tensor>> = inputs
                        .iter()
                        .map(|k| {
                            context.get(k).cloned().ok_or_else(|| {
                                Error::err(ErrorCode::NotFound, "INPUT key cannot be found in DAG")
                            })
                        })
                        .collect();
                    match ins {
                        Err(e) => Err(e),
                        Ok(ins) => {
                            let opts = RunOptions { deadline, inline };
                            let run = engine.infer(&model, ins.into(), opts);
                            match async { run?.finish().await }.await {
                                Ok(outs) => {
                                    context.extend(outputs.into_iter().zip(outs));
                                    Ok(Frame::ok())
                                }
                                Err(e) if timed_out(&e) => return Frame::simple("TIMEDOUT"),
                                Err(e) => Err(e),
                            }
                        }
                    }
                }
            };
            match r {
                Ok(f) => replies.push(f),
                Err(e) => {
                    failed = true;
                    replies.push(Frame::error(&e));
                }
            }
        }
        if !failed {
            for k in persist {
                if let Some(t) = context.remove(&k) {
                    if let Err(e) = engine.store().set(k, Value::Tensor(t)) {
                        return Frame::error(&e);
                    }
                }
            }
        }
        Frame::Array(replies)
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infer_encodes_one_dag_and_reads_its_outputs_back() {
        let x = Tensor::from_vec(vec![2], vec![1i32, 2]).unwrap();
        let args = encode_infer(b"m", std::slice::from_ref(&x), 1);
        let text: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into())
            .collect();
        assert_eq!(
            text[..11].join(" "),
            "AI.DAGEXECUTE ROUTING m |> AI.TENSORSET in0 INT32 2 BLOB \u{1}\0\0\0\u{2}\0\0\0 |>"
        );
        assert_eq!(
            text[11..].join(" "),
            "AI.MODELEXECUTE m INPUTS 1 in0 OUTPUTS 1 out0 |> AI.TENSORGET out0 META BLOB"
        );
        // The model key is found where the cluster would look for it.
        assert_eq!(keys(&args), vec![2, 12]);
        let y = Tensor::from_vec(vec![1], vec![0.5f32]).unwrap();
        let meta_blob =
            TensorFormat::parse(&[Bytes::from_static(b"META"), Bytes::from_static(b"BLOB")])
                .unwrap();
        let reply = Frame::Array(vec![Frame::ok(), Frame::ok(), tensor_reply(&y, meta_blob)]);
        assert_eq!(decode_infer(reply, 1).unwrap(), vec![y]);
        let failed = Frame::Array(vec![Frame::ok(), Frame::error(&Error::bad_input("boom"))]);
        assert_eq!(decode_infer(failed, 1).unwrap_err().text(), "ERR boom");
        assert_eq!(
            decode_infer(Frame::simple("TIMEDOUT"), 1)
                .unwrap_err()
                .code(),
            ErrorCode::Timeout
        );
    }
}
