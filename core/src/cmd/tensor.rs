//! `AI.TENSORSET` and `AI.TENSORGET`, with RedisAI's argument grammar, replies and error
//! texts (shared/PROTOCOL.md).

use std::sync::Arc;

use bytes::Bytes;

use super::arity;
use crate::data::tensor::{checked_len, too_many_dims, DType, Tensor};
use crate::engine::{Engine, Session};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::limits::Limits;
use crate::protocol::resp::Frame;

fn invalid_value() -> Error {
    Error::bad_input("invalid value")
}

/// Parse `AI.TENSORSET key TYPE d1 .. dn [BLOB b | VALUES v ..]` (all of `args`, the
/// command name first) into the key and the tensor.
///
/// # Errors
/// RedisAI's errors for every malformed part, and the limit errors.
pub fn parse_tensorset(args: &[Bytes], limits: &Limits) -> Result<(Bytes, Tensor)> {
    arity(args, 4, 0)?;
    let key = args[1].clone();
    let dtype = DType::parse(&args[2]).ok_or_else(|| Error::bad_input("invalid data type"))?;
    let mut shape = Vec::new();
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        if a.eq_ignore_ascii_case(b"BLOB") || a.eq_ignore_ascii_case(b"VALUES") {
            break;
        }
        if shape.len() >= limits.max_dims {
            return Err(too_many_dims(limits.max_dims));
        }
        let d = std::str::from_utf8(a)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|&d| d > 0)
            .ok_or_else(|| Error::bad_input("invalid or negative value found in tensor shape"))?;
        shape.push(usize::try_from(d).map_err(|_| Error::limit("tensor dimension too large"))?);
        i += 1;
    }
    let (count, _) = checked_len(dtype, &shape, limits)?;
    let Some(fmt) = args.get(i) else {
        return Ok((key, Tensor::zeros(dtype, shape, limits)?));
    };
    let rest = &args[i + 1..];
    let tensor = if fmt.eq_ignore_ascii_case(b"BLOB") {
        if rest.len() != 1 {
            return Err(Error::bad_input(
                "a single binary string should come after the BLOB argument in 'AI.TENSORSET' command",
            ));
        }
        Tensor::from_peer(dtype, shape, rest[0].clone(), limits)?
    } else {
        if rest.len() != count {
            return Err(Error::bad_input(
                "wrong number of values was given in 'AI.TENSORSET' command",
            ));
        }
        Tensor::from_peer(dtype, shape, encode_values(dtype, rest)?, limits)?
    };
    Ok((key, tensor))
}

fn parse_num<T: std::str::FromStr>(v: &[u8]) -> Result<T> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(invalid_value)
}

fn parse_int<T: TryFrom<i64>>(v: &[u8]) -> Result<T> {
    T::try_from(parse_num::<i64>(v)?).map_err(|_| invalid_value())
}

/// Encode `VALUES` arguments as little-endian bytes of `dtype`.
fn encode_values(dtype: DType, values: &[Bytes]) -> Result<Bytes> {
    let mut out = Vec::with_capacity(values.len() * dtype.size().unwrap_or(8));
    for v in values {
        match dtype {
            DType::Float32 => out.extend((parse_num::<f64>(v)? as f32).to_le_bytes()),
            DType::Float64 => out.extend(parse_num::<f64>(v)?.to_le_bytes()),
            DType::Float16 => out.extend(half::f16::from_f64(parse_num::<f64>(v)?).to_le_bytes()),
            DType::BFloat16 => out.extend(half::bf16::from_f64(parse_num::<f64>(v)?).to_le_bytes()),
            DType::Int8 => out.extend(parse_int::<i8>(v)?.to_le_bytes()),
            DType::Int16 => out.extend(parse_int::<i16>(v)?.to_le_bytes()),
            DType::Int32 => out.extend(parse_int::<i32>(v)?.to_le_bytes()),
            DType::Int64 => out.extend(parse_int::<i64>(v)?.to_le_bytes()),
            DType::UInt8 => out.extend(parse_int::<u8>(v)?.to_le_bytes()),
            DType::UInt16 => out.extend(parse_int::<u16>(v)?.to_le_bytes()),
            DType::UInt32 => out.extend(parse_int::<u32>(v)?.to_le_bytes()),
            DType::UInt64 => out.extend(parse_num::<u64>(v)?.to_le_bytes()),
            // RedisAI: a BOOL value out of range in VALUES is an invalid value (in a
            // blob, "BOOL tensor elements must be 0 or 1").
            DType::Bool => match parse_num::<i64>(v)? {
                0 => out.push(0),
                1 => out.push(1),
                _ => return Err(invalid_value()),
            },
            // A C string each: a NUL may only end it (and is then not doubled).
            DType::String => {
                let body = v.strip_suffix(b"\0").unwrap_or(v);
                if body.contains(&0) {
                    return Err(Error::bad_input("C-string value contains null character"));
                }
                out.extend_from_slice(body);
                out.push(0);
            }
        }
    }
    Ok(Bytes::from(out))
}

fn need_unix(session: &Session) -> Result<()> {
    if session.unix {
        Ok(())
    } else {
        Err(Error::bad_input(
            "shared memory transfers need a Unix socket connection",
        ))
    }
}

/// The connection's use of the shared-memory heap, made on first use.
fn shm_conn<'a>(
    engine: &Engine,
    session: &'a mut Session,
) -> Result<&'a mut crate::protocol::shm::ShmConn> {
    need_unix(session)?;
    let pid = session.peer_pid;
    Ok(session
        .shm
        .get_or_insert_with(|| crate::protocol::shm::ShmConn::new(engine.heap(), pid)))
}

fn usize_arg(b: &[u8], what: &str) -> Result<usize> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .ok_or_else(|| Error::bad_input(format!("invalid {what}")))
}

fn u64_arg(b: &[u8], what: &str) -> Result<u64> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| Error::bad_input(format!("invalid {what}")))
}

fn u64_args(args: &[Bytes], what: &str) -> Result<Vec<u64>> {
    args.iter().map(|a| u64_arg(a, what)).collect()
}

fn ints(v: impl IntoIterator<Item = u64>) -> Vec<Frame> {
    v.into_iter()
        .map(|i| Frame::Integer(i64::try_from(i).unwrap_or(i64::MAX)))
        .collect()
}

/// `[block, capacity, dev, ino, fd]`: a loan as `ALLOC` and `SPARES` answer it.
fn loan_frame(loan: &crate::protocol::shm::Loan) -> Frame {
    Frame::Array(ints([
        loan.block,
        loan.cap as u64,
        loan.key.0,
        loan.key.1,
        u64::from(loan.fd),
    ]))
}

/// `INSITU.SHM` (capability check), `INSITU.SHM ALLOC nbytes` (lend a block for a put;
/// its descriptor comes with the reply when new to the client), `INSITU.SHM SPARES`
/// (the process's free blocks lent ahead of the first puts), `INSITU.SHM RELEASE
/// hold...` (the client dropped its views), `INSITU.SHM RETURN block...` (lent blocks
/// it will not use) and `INSITU.SHM FD block` (a block's descriptor again). See [`crate::protocol::shm`].
pub(super) fn shm(engine: &Engine, session: &mut Session, args: &[Bytes]) -> Result<Frame> {
    arity(args, 1, 0)?;
    need_unix(session)?;
    let Some(sub) = args.get(1) else {
        // The handshake: the connection joins its process's side of the heap now (the
        // peer's identity is read once, here, not at its first transfer).
        shm_conn(engine, session)?;
        return Ok(Frame::ok());
    };
    if sub.eq_ignore_ascii_case(b"ALLOC") && args.len() == 3 {
        let len = usize_arg(&args[2], "block size")?;
        let limits = engine.with_config(|c| c.limits.clone());
        if len == 0 || len > limits.max_tensor_bytes {
            return Err(Error::limit(format!(
                "a shared memory block of {len} bytes is outside 1..{} (max-tensor-bytes)",
                limits.max_tensor_bytes
            )));
        }
        let used = engine.store().used_memory();
        let loan = shm_conn(engine, session)?.lend(len, used)?;
        return Ok(loan_frame(&loan));
    }
    if sub.eq_ignore_ascii_case(b"SPARES") && args.len() == 2 {
        let loans = shm_conn(engine, session)?.lend_free()?;
        return Ok(Frame::Array(loans.iter().map(loan_frame).collect()));
    }
    if sub.eq_ignore_ascii_case(b"RELEASE") && args.len() >= 3 {
        let holds = u64_args(&args[2..], "hold")?;
        let n = shm_conn(engine, session)?.release(holds);
        return Ok(Frame::Integer(n as i64));
    }
    if sub.eq_ignore_ascii_case(b"FD") && args.len() == 3 {
        let block = u64_arg(&args[2], "shared memory block")?;
        let (writable, key) = shm_conn(engine, session)?.resend(block)?;
        return Ok(Frame::Array(ints([u64::from(writable), key.0, key.1])));
    }
    if sub.eq_ignore_ascii_case(b"RETURN") && args.len() >= 3 {
        let blocks = u64_args(&args[2..], "shared memory block")?;
        let n = shm_conn(engine, session)?.give_back(blocks);
        return Ok(Frame::Integer(n as i64));
    }
    Err(Error::syntax())
}

/// `... SHM block nbytes` at the end of a TENSORSET: the bytes are at the start of a
/// block lent to this connection, which becomes the value. Returns the arguments with
/// `BLOB <bytes>` in its place (a view of the block, not a copy), so the ordinary parser
/// validates them and the journal records them.
fn resolve_shm(
    args: &[Bytes],
    session: &mut Session,
    limits: &Limits,
) -> Result<Option<Vec<Bytes>>> {
    let n = args.len();
    if n < 7 || !args[n - 3].eq_ignore_ascii_case(b"SHM") {
        return Ok(None);
    }
    need_unix(session)?;
    let block = u64_arg(&args[n - 2], "shared memory block")?;
    let len = usize_arg(&args[n - 1], "SHM length")?;
    if len > limits.max_tensor_bytes {
        return Err(Error::limit(format!(
            "tensor of {len} bytes exceeds the limit of {} bytes",
            limits.max_tensor_bytes
        )));
    }
    let conn = session.shm.as_mut().ok_or_else(|| {
        Error::bad_input(format!(
            "shared memory block {block} is not lent to this connection"
        ))
    })?;
    let data = conn.take(block, len)?;
    let mut out = args[..n - 3].to_vec();
    out.push(Bytes::from_static(b"BLOB"));
    out.push(data);
    Ok(Some(out))
}

pub(super) fn tensorset(
    engine: &Arc<Engine>,
    session: &mut Session,
    args: &[Bytes],
) -> Result<Frame> {
    arity(args, 4, 0)?;
    // RedisAI opens the key before reading the arguments: a key of another type is
    // refused first, whatever follows.
    // (Checked again, atomically with the write, at the end.)
    if engine.holds_other_than_tensor(&args[1]) {
        return Err(Error::wrong_type());
    }
    let limits = engine.with_config(|c| c.limits.clone());
    let shm_args = resolve_shm(args, session, &limits)?;
    let (key, tensor) = parse_tensorset(shm_args.as_deref().unwrap_or(args), &limits)?;
    engine.put_tensor(key, tensor)?;
    Ok(Frame::ok())
}

/// What `AI.TENSORGET` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorFormat {
    /// Include dtype and shape.
    pub meta: bool,
    /// Include the data: `Some(true)` as a blob, `Some(false)` as values, `None` not at all.
    pub blob: Option<bool>,
    /// Large blobs may come as a shared memory segment (`SHM`, Unix sockets only).
    pub shm: bool,
}

impl TensorFormat {
    /// Parse the format arguments (after the key).
    ///
    /// # Errors
    /// `ERR unsupported data format`, `ERR both BLOB and VALUES specified`.
    pub fn parse(args: &[Bytes]) -> Result<TensorFormat> {
        if args.is_empty() {
            return Ok(TensorFormat {
                meta: true,
                blob: Some(true),
                shm: false,
            });
        }
        let mut f = TensorFormat {
            meta: false,
            blob: None,
            shm: false,
        };
        for a in args {
            if a.eq_ignore_ascii_case(b"META") {
                f.meta = true;
            } else if a.eq_ignore_ascii_case(b"BLOB")
                || a.eq_ignore_ascii_case(b"VALUES")
                || a.eq_ignore_ascii_case(b"SHM")
            {
                f.shm |= a.eq_ignore_ascii_case(b"SHM");
                let blob = !a.eq_ignore_ascii_case(b"VALUES");
                if f.blob.is_some_and(|b| b != blob) {
                    return Err(Error::bad_input("both BLOB and VALUES specified"));
                }
                f.blob = Some(blob);
            } else {
                return Err(Error::bad_input("unsupported data format"));
            }
        }
        Ok(f)
    }
}

/// What a client sends to store `t` under `key`: `AI.TENSORSET key dtype dims... BLOB
/// data` ([`parse_tensorset`] reads it back; the data is shared, not copied).
pub fn encode_tensorset(key: &[u8], t: &Tensor) -> Vec<Bytes> {
    let mut args = Vec::with_capacity(t.shape().len() + 5);
    args.push(Bytes::from_static(b"AI.TENSORSET"));
    args.push(Bytes::copy_from_slice(key));
    args.push(Bytes::from_static(t.dtype().name().as_bytes()));
    args.extend(t.shape().iter().map(|d| Bytes::from(d.to_string())));
    args.push(Bytes::from_static(b"BLOB"));
    args.push(t.data().clone());
    args
}

/// The tensor in an `AI.TENSORGET key META BLOB` reply ([`tensor_reply`] wrote it; the
/// blob is not copied).
///
/// # Errors
/// The error the reply carries, or `Protocol` for a reply of another shape.
pub fn decode_tensorget(reply: Frame) -> Result<Tensor> {
    let bad = |why: &str| Error::err(ErrorCode::Protocol, format!("AI.TENSORGET reply: {why}"));
    let items = match reply {
        Frame::Error(e) => return Err(e),
        Frame::Array(items) if items.len() == 6 => items,
        other => return Err(bad(&format!("unexpected {other:?}"))),
    };
    let mut it = items.into_iter().skip(1).step_by(2);
    let (Some(Frame::Bulk(dtype)), Some(Frame::Array(dims)), Some(Frame::Bulk(data))) =
        (it.next(), it.next(), it.next())
    else {
        return Err(bad("not dtype, shape and blob"));
    };
    let dtype = DType::parse(&dtype).ok_or_else(|| {
        bad(&format!(
            "unknown dtype {:?}",
            String::from_utf8_lossy(&dtype)
        ))
    })?;
    let shape = dims
        .iter()
        .map(|d| match d {
            Frame::Integer(d) => usize::try_from(*d).map_err(|_| bad("negative dim")),
            _ => Err(bad("a dim is not an integer")),
        })
        .collect::<Result<Vec<usize>>>()?;
    Tensor::new(dtype, shape, data)
}

/// The reply for a tensor in `format` (RedisAI's layout, read by position by SmartRedis).
pub fn tensor_reply(t: &Tensor, format: TensorFormat) -> Frame {
    let data = match format.blob {
        Some(true) => Some(Frame::Bulk(t.data().clone())),
        Some(false) => Some(Frame::Array(values(t))),
        None => None,
    };
    if !format.meta {
        return data.unwrap_or(Frame::Array(vec![]));
    }
    let mut items = vec![
        Frame::bulk_static("dtype"),
        Frame::bulk_static(t.dtype().name()),
        Frame::bulk_static("shape"),
        Frame::Array(
            t.shape()
                .iter()
                .map(|&d| Frame::Integer(d as i64))
                .collect(),
        ),
    ];
    if let Some(d) = data {
        items.push(Frame::bulk_static(if format.blob == Some(true) {
            "blob"
        } else {
            "values"
        }));
        items.push(d);
    }
    Frame::Array(items)
}

fn values(t: &Tensor) -> Vec<Frame> {
    fn each<const N: usize>(d: &[u8], f: impl Fn([u8; N]) -> Frame) -> Vec<Frame> {
        d.chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                f(a)
            })
            .collect()
    }
    let float = Frame::Double;
    let d = t.data();
    match t.dtype() {
        DType::Float32 => each::<4>(d, |b| float(f32::from_le_bytes(b) as f64)),
        DType::Float64 => each::<8>(d, |b| float(f64::from_le_bytes(b))),
        DType::Float16 => each::<2>(d, |b| float(half::f16::from_le_bytes(b).to_f64())),
        DType::BFloat16 => each::<2>(d, |b| float(half::bf16::from_le_bytes(b).to_f64())),
        DType::Int8 => each::<1>(d, |b| Frame::Integer(i8::from_le_bytes(b) as i64)),
        DType::Int16 => each::<2>(d, |b| Frame::Integer(i16::from_le_bytes(b) as i64)),
        DType::Int32 => each::<4>(d, |b| Frame::Integer(i32::from_le_bytes(b) as i64)),
        DType::Int64 => each::<8>(d, |b| Frame::Integer(i64::from_le_bytes(b))),
        DType::UInt8 | DType::Bool => each::<1>(d, |b| Frame::Integer(b[0] as i64)),
        DType::UInt16 => each::<2>(d, |b| Frame::Integer(u16::from_le_bytes(b) as i64)),
        DType::UInt32 => each::<4>(d, |b| Frame::Integer(u32::from_le_bytes(b) as i64)),
        DType::UInt64 => each::<8>(d, |b| {
            let v = u64::from_le_bytes(b);
            match i64::try_from(v) {
                Ok(i) => Frame::Integer(i),
                Err(_) => Frame::Bulk(Bytes::from(v.to_string())),
            }
        }),
        DType::String => t
            .strings()
            .unwrap_or_default()
            .into_iter()
            .map(|s| Frame::Bulk(Bytes::copy_from_slice(s)))
            .collect(),
    }
}

pub(super) fn tensorget(engine: &Engine, session: &mut Session, args: &[Bytes]) -> Result<Frame> {
    arity(args, 2, 4)?;
    let tensor = engine.get_tensor(&args[1])?;
    let format = TensorFormat::parse(&args[2..])?;
    if format.shm {
        need_unix(session)?;
        if format.meta && tensor.data().len() >= crate::protocol::shm::SHM_MIN {
            let used = engine.store().used_memory();
            if let Some(sh) = shm_conn(engine, session)?.share(tensor.data(), used)? {
                let mut f = tensor_reply(
                    &tensor,
                    TensorFormat {
                        blob: None,
                        ..format
                    },
                );
                if let Frame::Array(items) = &mut f {
                    items.push(Frame::bulk_static("shm"));
                    items.push(Frame::Array(ints([
                        sh.block,
                        sh.offset as u64,
                        sh.len as u64,
                        sh.hold,
                        u64::from(sh.writable),
                        sh.key.0,
                        sh.key.1,
                        u64::from(sh.fd),
                    ])));
                }
                return Ok(f);
            }
        }
    }
    Ok(tensor_reply(&tensor, format))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_client_encodes_the_server_parses_and_back() {
        let t = Tensor::from_vec(vec![2, 3], vec![1.5f32, -2.0, 0.0, 4.25, 5.0, -6.5]).unwrap();
        let args = encode_tensorset(b"k", &t);
        let (key, parsed) = parse_tensorset(&args, &Limits::default()).unwrap();
        assert_eq!((key.as_ref(), &parsed), (&b"k"[..], &t));
        let reply = tensor_reply(
            &t,
            TensorFormat::parse(&[Bytes::from_static(b"META"), Bytes::from_static(b"BLOB")])
                .unwrap(),
        );
        assert_eq!(decode_tensorget(reply).unwrap(), t);
        assert_eq!(
            decode_tensorget(Frame::Integer(1)).unwrap_err().text(),
            "ERR AI.TENSORGET reply: unexpected Integer(1)"
        );
    }

    fn args(s: &[&str]) -> Vec<Bytes> {
        s.iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect()
    }

    fn err(s: &[&str]) -> String {
        parse_tensorset(&args(s), &Limits::default())
            .unwrap_err()
            .text()
            .to_string()
    }

    #[test]
    fn tensorset_errors_match_redisai() {
        assert_eq!(
            err(&["AI.TENSORSET", "k", "FLOAT"]),
            "ERR wrong number of arguments for 'AI.TENSORSET' command"
        );
        assert_eq!(
            err(&["AI.TENSORSET", "k", "FLOAT32", "1"]),
            "ERR invalid data type"
        );
        for d in ["0", "-1", "x", "1.5"] {
            assert_eq!(
                err(&["AI.TENSORSET", "k", "FLOAT", d]),
                "ERR invalid or negative value found in tensor shape"
            );
        }
        assert_eq!(
            err(&["AI.TENSORSET", "k", "FLOAT", "2", "VALUES", "1"]),
            "ERR wrong number of values was given in 'AI.TENSORSET' command"
        );
        assert_eq!(
            err(&["AI.TENSORSET", "k", "FLOAT", "2", "BLOB", "a", "b"]),
            "ERR a single binary string should come after the BLOB argument in 'AI.TENSORSET' command"
        );
        assert_eq!(
            err(&["AI.TENSORSET", "k", "FLOAT", "2", "BLOB", "abc"]),
            "ERR data length does not match tensor shape and type"
        );
        assert_eq!(
            err(&["AI.TENSORSET", "k", "INT8", "1", "VALUES", "300"]),
            "ERR invalid value"
        );
        assert_eq!(
            err(&["AI.TENSORSET", "k", "INT8", "1", "VALUES", "z"]),
            "ERR invalid value"
        );
        // RedisAI: out of range in VALUES is an invalid value; in a blob, its own text.
        assert_eq!(
            err(&["AI.TENSORSET", "k", "BOOL", "1", "VALUES", "2"]),
            "ERR invalid value"
        );
        assert_eq!(
            err(&[
                "AI.TENSORSET",
                "k",
                "STRING",
                "2",
                "VALUES",
                "ok",
                "in\0side"
            ]),
            "ERR C-string value contains null character"
        );
        assert_eq!(
            err(&[
                "AI.TENSORSET",
                "k",
                "STRING",
                "2",
                "BLOB",
                "one\0two\0three\0"
            ]),
            "ERR Number of string elements in data blob does not match tensor length"
        );
    }

    #[test]
    fn values_round_trip_through_replies() {
        let (_, t) = parse_tensorset(
            &args(&["AI.TENSORSET", "k", "float", "2", "VALUES", "0.1", "-3"]),
            &Limits::default(),
        )
        .unwrap();
        let f = tensor_reply(&t, TensorFormat::parse(&args(&["META", "VALUES"])).unwrap());
        assert_eq!(
            f,
            Frame::Array(vec![
                Frame::bulk_static("dtype"),
                Frame::bulk_static("FLOAT"),
                Frame::bulk_static("shape"),
                Frame::Array(vec![Frame::Integer(2)]),
                Frame::bulk_static("values"),
                Frame::Array(vec![Frame::Double(0.1f32 as f64), Frame::Double(-3.0)]),
            ])
        );
        // RESP2: bulk strings in %.17g, as RedisAI wrote them; RESP3: doubles.
        let values = &f.to_bytes()[57..];
        assert_eq!(
            values,
            &b"*2\r\n$19\r\n0.10000000149011612\r\n$2\r\n-3\r\n"[..]
        );
        let values = &f.to_bytes_as(crate::protocol::resp::Protocol::Resp3)[57..];
        assert_eq!(values, &b"*2\r\n,0.10000000149011612\r\n,-3\r\n"[..]);
        let (_, z) = parse_tensorset(
            &args(&["AI.TENSORSET", "k", "INT16", "2", "3"]),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(z.data().as_ref(), &[0u8; 12]);
        assert_eq!(
            TensorFormat::parse(&args(&["BLOB", "VALUES"]))
                .unwrap_err()
                .text(),
            "ERR both BLOB and VALUES specified"
        );
        assert_eq!(
            TensorFormat::parse(&args(&["JSON"])).unwrap_err().text(),
            "ERR unsupported data format"
        );
    }
}
