//! `AI.DAGEXECUTE` / `AI.DAGEXECUTE_RO`: put inputs, run models, get outputs in one
//! request. Tensors named in the DAG live in a context private to the request; only
//! `LOAD` reads the store and only `PERSIST` writes it, so nothing is left behind.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::model::{get_model, parse_exec, run_model, runs_here, timed_out};
use super::tensor::{parse_tensorset, tensor_reply, TensorFormat};
use super::{arity, int_arg, Reply};
use crate::engine::Engine;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{Model, Runner};
use crate::resp::Frame;
use crate::store::Value;
use crate::tensor::Tensor;

enum Op {
    Set(Bytes, Tensor),
    Get(Bytes, TensorFormat),
    Run {
        model: Arc<Model>,
        runner: Arc<Runner>,
        inputs: Vec<Bytes>,
        outputs: Vec<Bytes>,
    },
}

fn keys_after(args: &[Bytes], i: usize, what: &str) -> Result<(Vec<Bytes>, usize)> {
    let bad = || Error::bad_input(format!("Invalid argument for {what}"));
    let n = args
        .get(i + 1)
        .ok_or_else(bad)
        .and_then(|v| int_arg(v).map_err(|_| bad()))?;
    let n = usize::try_from(n).ok().filter(|&n| n > 0).ok_or_else(bad)?;
    let keys = args.get(i + 2..i + 2 + n).ok_or_else(bad)?.to_vec();
    Ok((keys, i + 2 + n))
}

fn parse_op(engine: &Engine, op: &[Bytes]) -> Result<Op> {
    let name = op
        .first()
        .map(|n| n.to_ascii_uppercase())
        .unwrap_or_default();
    let limits = engine.with_config(|c| c.limits.clone());
    match name.as_slice() {
        b"AI.TENSORSET" => {
            let (k, t) = parse_tensorset(op, &limits)?;
            Ok(Op::Set(k, t))
        }
        b"AI.TENSORGET" => {
            arity(op, 2, 4)?;
            Ok(Op::Get(op[1].clone(), TensorFormat::parse(&op[2..])?))
        }
        b"AI.MODELEXECUTE" => {
            arity(op, 2, 0)?;
            let model = get_model(engine, &op[1])?;
            let runner = engine.model_runner(&model)?;
            let exec = parse_exec(&op[2..], &runner)?;
            Ok(Op::Run {
                model,
                runner,
                inputs: exec.inputs,
                outputs: exec.outputs,
            })
        }
        _ => Err(Error::bad_input(format!(
            "unsupported command within DAG: '{}'",
            String::from_utf8_lossy(op.first().map_or(&b""[..], |b| b))
        ))),
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
    read_only: bool,
    inline: bool,
) -> Result<Reply> {
    arity(args, 2, 0)?;
    let (mut load, mut persist, mut routing) = (Vec::new(), Vec::new(), false);
    let mut timeout = None;
    let mut i = 1;
    while i < args.len() && args[i].as_ref() != b"|>" {
        let a = args[i].to_ascii_uppercase();
        match a.as_slice() {
            b"LOAD" => {
                let (k, next) = keys_after(args, i, "LOAD")?;
                load.extend(k);
                i = next;
            }
            b"PERSIST" => {
                if read_only {
                    return Err(Error::bad_input(
                        "PERSIST cannot be specified in a read-only DAG",
                    ));
                }
                let (k, next) = keys_after(args, i, "PERSIST")?;
                persist.extend(k);
                i = next;
            }
            b"ROUTING" => {
                args.get(i + 1)
                    .ok_or_else(|| Error::bad_input("Invalid argument for ROUTING"))?;
                routing = true;
                i += 2;
            }
            b"TIMEOUT" => {
                let v = args
                    .get(i + 1)
                    .ok_or_else(|| Error::bad_input("No value provided for TIMEOUT"))?;
                let ms = int_arg(v)
                    .ok()
                    .filter(|&ms| ms > 0)
                    .ok_or_else(|| Error::bad_input("Invalid value for TIMEOUT"))?;
                timeout = Some(Duration::from_millis(ms as u64));
                i += 2;
            }
            _ => return Err(Error::bad_input("Invalid DAG command")),
        }
    }
    if load.is_empty() && persist.is_empty() && !routing {
        return Err(Error::bad_input(
            "AI.DAGEXECUTE and AI.DAGEXECUTE_RO commands must contain at least one out of ROUTING, LOAD, PERSIST keywords",
        ));
    }
    let ops_args: Vec<&[Bytes]> = args[i..]
        .split(|a| a.as_ref() == b"|>")
        .filter(|op| !op.is_empty())
        .collect();
    if ops_args.is_empty() {
        return Err(Error::bad_input("DAG is empty"));
    }
    let mut context: HashMap<Bytes, Tensor> = HashMap::new();
    for k in &load {
        let t = engine.store().with(k, |v| match v {
            Some(Value::Tensor(t)) => Ok(t.clone()),
            Some(_) => Err(Error::wrong_type()),
            None => Err(Error::err(
                ErrorCode::NotFound,
                "tensor key is empty or in a different shard",
            )),
        })?;
        context.insert(k.clone(), t);
    }
    // Parse every op before running any, so a malformed DAG changes nothing.
    let ops = ops_args
        .into_iter()
        .map(|op| parse_op(engine, op))
        .collect::<Result<Vec<Op>>>()?;
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
                    runner,
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
                            let here = runs_here(&engine, &model, &ins, inline);
                            match run_model(runner, model, ins, deadline, here).await {
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
