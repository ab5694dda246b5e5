//! Incremental RESP parsers: requests (server side) and replies (client side, tests).

use bytes::{Buf, Bytes, BytesMut};

use super::{Frame, ZERO_COPY_MIN};
use crate::error::{Error, ErrorCode, Result};
use crate::protocol::limits::Limits;

/// The longest header line (`*123\r\n`, `$123\r\n`) we wait for before calling it garbage.
const MAX_HEADER: usize = 32;
/// How deep a reply may nest before the parser refuses it.
const MAX_REPLY_DEPTH: usize = 32;

/// One request taken off the wire.
#[derive(Debug, PartialEq)]
pub enum Request {
    /// A command and its arguments.
    Command(Vec<Bytes>),
    /// A request refused for exceeding a limit; its bytes have been skipped and the
    /// connection can go on. Reply with the error.
    Rejected(Error),
}

enum State {
    Idle,
    Array {
        remaining: usize,
        args: Vec<Bytes>,
    },
    Discard {
        items: usize,
        bytes: usize,
        error: Error,
    },
}

/// A resumable request parser: feed it the connection's read buffer as bytes arrive.
/// Arguments already parsed are kept between calls, so a long request arriving in many
/// pieces is parsed once, not once per piece.
pub struct RequestParser {
    limits: Limits,
    state: State,
}

fn protocol(msg: &str) -> Error {
    Error::err(ErrorCode::Protocol, format!("Protocol error: {msg}"))
}

/// Find `\r\n` in the first `max` bytes; `Ok(None)` if not there yet.
fn line_end(buf: &[u8], max: usize) -> Result<Option<usize>> {
    let window = &buf[..buf.len().min(max)];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(p) => Ok(Some(p)),
        None if buf.len() >= max => Err(protocol("header line too long")),
        None => Ok(None),
    }
}

fn parse_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Parse a `<prefix><int>\r\n` header at the start of `buf`: `Ok(None)` if incomplete,
/// else the integer and the header length.
fn header(buf: &[u8], what: &str) -> Result<Option<(i64, usize)>> {
    let Some(end) = line_end(buf, MAX_HEADER)? else {
        return Ok(None);
    };
    let n = parse_int(&buf[1..end]).ok_or_else(|| protocol(&format!("invalid {what} length")))?;
    Ok(Some((n, end + 2)))
}

/// Parse a `$<len>\r\n` header at the start of `buf`: `Ok(None)` if incomplete.
fn bulk_header(buf: &[u8]) -> Result<Option<(usize, usize)>> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != b'$' {
        return Err(protocol(&format!(
            "expected '$', got '{}'",
            char::from(first).escape_default()
        )));
    }
    let Some((len, hl)) = header(buf, "bulk")? else {
        return Ok(None);
    };
    let len = usize::try_from(len).map_err(|_| protocol("invalid bulk length"))?;
    Ok(Some((len, hl)))
}

impl RequestParser {
    /// A parser enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        RequestParser {
            limits,
            state: State::Idle,
        }
    }

    /// Replace the limits (takes effect for the next request).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Whether the parser is between requests.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// Take the next complete request out of `buf`; `Ok(None)` when more bytes are needed
    /// (then `buf` has been given the capacity the pending argument needs).
    ///
    /// # Errors
    /// A `Protocol error` when the stream cannot be understood; the connection must then
    /// be closed after replying, since the request boundaries are lost.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Request>> {
        loop {
            match &mut self.state {
                State::Idle => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    if buf[0] != b'*' {
                        return self.inline(buf);
                    }
                    let Some((n, hl)) = header(buf, "multibulk")? else {
                        return Ok(None);
                    };
                    buf.advance(hl);
                    if n <= 0 {
                        continue; // Redis ignores empty and null arrays.
                    }
                    let n = n as usize;
                    if n > self.limits.max_array_len {
                        self.state = State::Discard {
                            items: n,
                            bytes: 0,
                            error: Error::limit(format!(
                                "command of {n} arguments exceeds the limit of {} (max-array-len)",
                                self.limits.max_array_len
                            )),
                        };
                        continue;
                    }
                    self.state = State::Array {
                        remaining: n,
                        args: Vec::with_capacity(n.min(1024)),
                    };
                }
                State::Array { remaining, args } => {
                    if *remaining == 0 {
                        let args = std::mem::take(args);
                        self.state = State::Idle;
                        return Ok(Some(Request::Command(args)));
                    }
                    let Some((len, hl)) = bulk_header(buf)? else {
                        return Ok(None);
                    };
                    if len > self.limits.max_bulk_len {
                        buf.advance(hl);
                        let error = Error::limit(format!(
                            "argument of {len} bytes exceeds the limit of {} bytes (proto-max-bulk-len)",
                            self.limits.max_bulk_len
                        ));
                        self.state = State::Discard {
                            items: *remaining - 1,
                            bytes: len + 2,
                            error,
                        };
                        continue;
                    }
                    let total = hl + len + 2;
                    if buf.len() < total {
                        buf.reserve(total - buf.len());
                        return Ok(None);
                    }
                    if &buf[hl + len..total] != b"\r\n" {
                        return Err(protocol("bulk string not terminated by CRLF"));
                    }
                    buf.advance(hl);
                    let arg = if len >= ZERO_COPY_MIN {
                        buf.split_to(len).freeze()
                    } else {
                        let a = Bytes::copy_from_slice(&buf[..len]);
                        buf.advance(len);
                        a
                    };
                    buf.advance(2);
                    args.push(arg);
                    *remaining -= 1;
                }
                State::Discard {
                    items,
                    bytes,
                    error,
                } => {
                    if *bytes > 0 {
                        let n = (*bytes).min(buf.len());
                        buf.advance(n);
                        *bytes -= n;
                        if *bytes > 0 {
                            return Ok(None);
                        }
                    }
                    if *items == 0 {
                        let error = error.clone();
                        self.state = State::Idle;
                        return Ok(Some(Request::Rejected(error)));
                    }
                    let Some((len, hl)) = bulk_header(buf)? else {
                        return Ok(None);
                    };
                    buf.advance(hl);
                    *bytes = len + 2;
                    *items -= 1;
                }
            }
        }
    }

    /// An inline command: one line of space-separated words (what `telnet` sends).
    fn inline(&mut self, buf: &mut BytesMut) -> Result<Option<Request>> {
        let max = self.limits.max_inline_len;
        let Some(end) = buf[..buf.len().min(max)].iter().position(|&c| c == b'\n') else {
            if buf.len() >= max {
                return Err(protocol("too big inline request"));
            }
            return Ok(None);
        };
        let line = buf.split_to(end + 1);
        let line = line.strip_suffix(b"\n").unwrap_or(&line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let args: Vec<Bytes> = line
            .split(|c| c.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .map(Bytes::copy_from_slice)
            .collect();
        if args.is_empty() {
            return self.next(buf);
        }
        Ok(Some(Request::Command(args)))
    }
}

/// Parse one complete reply frame from the start of `buf`: `Ok(None)` if incomplete, else
/// the frame and the bytes it used. Copies `buf`; clients use [`decode_reply`].
///
/// # Errors
/// A `Protocol error` for malformed input or nesting deeper than 32.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Frame, usize)>> {
    let Some(n) = check_at(buf, 0)? else {
        return Ok(None);
    };
    let mut b = Bytes::copy_from_slice(&buf[..n]);
    Ok(Some((take_frame(&mut b)?, n)))
}

/// Take one complete reply frame off the front of `buf`, without copying bulk payloads
/// (they become slices of the read buffer); `Ok(None)` when more bytes are needed.
///
/// # Errors
/// A `Protocol error` for malformed input or nesting deeper than 32.
pub fn decode_reply(buf: &mut BytesMut) -> Result<Option<Frame>> {
    let Some(n) = check_at(buf, 0)? else {
        return Ok(None);
    };
    let mut b = buf.split_to(n).freeze();
    take_frame(&mut b).map(Some)
}

/// The header line at the start of `buf`: its type byte, the text after it, and the
/// bytes it spans; `None` if incomplete.
fn reply_line(buf: &[u8]) -> Result<Option<(u8, &[u8], usize)>> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    if end == 0 {
        return Err(protocol("empty reply line"));
    }
    Ok(Some((buf[0], &buf[1..end], end + 2)))
}

/// The length of the complete frame at the start of `buf`, or `None` if incomplete.
fn check_at(buf: &[u8], depth: usize) -> Result<Option<usize>> {
    if depth > MAX_REPLY_DEPTH {
        return Err(protocol("reply nested too deeply"));
    }
    let Some((kind, line, used)) = reply_line(buf)? else {
        return Ok(None);
    };
    match kind {
        b'+' | b'-' | b'_' | b',' | b'#' => Ok(Some(used)),
        b':' => parse_int(line)
            .map(|_| Some(used))
            .ok_or_else(|| protocol("invalid integer")),
        b'$' | b'=' => {
            let n = parse_int(line).ok_or_else(|| protocol("invalid bulk length"))?;
            if n < 0 {
                return Ok(Some(used));
            }
            let total = used + n as usize + 2;
            Ok((buf.len() >= total).then_some(total))
        }
        b'*' | b'~' | b'%' => {
            let n = parse_int(line).ok_or_else(|| protocol("invalid multibulk length"))?;
            let items = if kind == b'%' {
                n.max(0).saturating_mul(2)
            } else {
                n.max(0)
            };
            let mut at = used;
            for _ in 0..items {
                match check_at(&buf[at..], depth + 1)? {
                    Some(u) => at += u,
                    None => return Ok(None),
                }
            }
            Ok(Some(at))
        }
        c => Err(protocol(&format!(
            "unexpected reply type '{}'",
            char::from(c).escape_default()
        ))),
    }
}

/// Decode a frame known to be complete (checked by [`check_at`]) off the front of `b`.
fn take_frame(b: &mut Bytes) -> Result<Frame> {
    let (kind, line, used) = reply_line(b)?.ok_or_else(|| protocol("truncated reply"))?;
    let text = String::from_utf8_lossy(line).into_owned();
    let int = parse_int(line);
    let simple = Bytes::copy_from_slice(line);
    let line = simple.clone();
    let line = &line[..];
    b.advance(used);
    Ok(match kind {
        b'+' => Frame::Simple(simple),
        b'-' => Frame::Error(crate::error::Error::from_server_text(text)),
        b':' => Frame::Integer(int.ok_or_else(|| protocol("invalid integer"))?),
        b'$' => {
            let n = int.ok_or_else(|| protocol("invalid bulk length"))?;
            if n < 0 {
                return Ok(Frame::Null);
            }
            let n = n as usize;
            if b.len() < n + 2 {
                return Err(protocol("truncated bulk"));
            }
            let data = b.split_to(n);
            b.advance(2);
            Frame::Bulk(data)
        }
        b'*' | b'~' => {
            let n = int.ok_or_else(|| protocol("invalid multibulk length"))?;
            if n < 0 {
                return Ok(Frame::NullArray);
            }
            let mut items = Vec::with_capacity((n as usize).min(1024));
            for _ in 0..n {
                items.push(take_frame(b)?);
            }
            if kind == b'~' {
                Frame::Set(items)
            } else {
                Frame::Array(items)
            }
        }
        b'%' => {
            let n = int.ok_or_else(|| protocol("invalid map length"))?;
            let mut pairs = Vec::with_capacity((n.max(0) as usize).min(1024));
            for _ in 0..n {
                let k = take_frame(b)?;
                pairs.push((k, take_frame(b)?));
            }
            Frame::Map(pairs)
        }
        b'_' => Frame::Null,
        b'#' => match line {
            b"t" => Frame::Boolean(true),
            b"f" => Frame::Boolean(false),
            _ => return Err(protocol("invalid boolean")),
        },
        b',' => Frame::Double(
            std::str::from_utf8(line)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| protocol("invalid double"))?,
        ),
        b'=' => {
            let n = int.ok_or_else(|| protocol("invalid verbatim length"))?;
            let n = usize::try_from(n).map_err(|_| protocol("invalid verbatim length"))?;
            if n < 4 || b.len() < n + 2 {
                return Err(protocol("truncated verbatim string"));
            }
            let mut data = b.split_to(n);
            b.advance(2);
            data.advance(4);
            Frame::Verbatim(data)
        }
        c => {
            return Err(protocol(&format!(
                "unexpected reply type '{}'",
                char::from(c).escape_default()
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(args: &[&str]) -> Request {
        Request::Command(
            args.iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect(),
        )
    }

    fn small_limits() -> Limits {
        Limits {
            max_bulk_len: 8,
            max_array_len: 3,
            max_inline_len: 16,
            ..Limits::default()
        }
    }

    #[test]
    fn parses_byte_by_byte_and_pipelined() {
        let wire = b"*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\nPING\r\n*1\r\n$4\r\nPING\r\n";
        let mut p = RequestParser::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in wire.iter() {
            buf.extend_from_slice(&[b]);
            while let Some(r) = p.next(&mut buf).unwrap() {
                got.push(r);
            }
        }
        assert_eq!(
            got,
            vec![cmd(&["ECHO", "abc"]), cmd(&["PING"]), cmd(&["PING"])]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn oversize_requests_are_skipped_and_rejected() {
        let mut p = RequestParser::new(small_limits());
        let mut buf = BytesMut::from(
            &b"*2\r\n$3\r\nSET\r\n$9\r\n123456789\r\n*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n*1\r\n$4\r\nPING\r\n"[..],
        );
        let r = p.next(&mut buf).unwrap().unwrap();
        assert_eq!(
            r,
            Request::Rejected(Error::limit(
                "argument of 9 bytes exceeds the limit of 8 bytes (proto-max-bulk-len)"
            ))
        );
        let r = p.next(&mut buf).unwrap().unwrap();
        assert_eq!(
            r,
            Request::Rejected(Error::limit(
                "command of 4 arguments exceeds the limit of 3 (max-array-len)"
            ))
        );
        assert_eq!(p.next(&mut buf).unwrap().unwrap(), cmd(&["PING"]));
    }

    #[test]
    fn malformed_streams_are_protocol_errors() {
        for wire in [
            &b"*x\r\n"[..],
            b"*1\r\n+PING\r\n",
            b"*1\r\n$-1\r\n",
            b"*1\r\n$4\r\nPINGxx",
            b"*1\r\n$99999999999999999999999\r\n",
            b"*111111111111111111111111111111111111\r\n",
            b"this is a very long inline command without newline",
        ] {
            let mut p = RequestParser::new(small_limits());
            let mut buf = BytesMut::from(wire);
            let e = p.next(&mut buf).unwrap_err();
            assert_eq!(
                e.code(),
                ErrorCode::Protocol,
                "{:?}",
                String::from_utf8_lossy(wire)
            );
            assert!(e.text().starts_with("ERR Protocol error: "));
        }
    }

    #[test]
    fn large_arguments_are_not_copied() {
        let payload = vec![5u8; ZERO_COPY_MIN];
        let mut buf = BytesMut::new();
        buf.extend_from_slice(format!("*1\r\n${}\r\n", payload.len()).as_bytes());
        buf.extend_from_slice(&payload);
        buf.extend_from_slice(b"\r\n");
        let base = buf.as_ptr() as usize;
        let mut p = RequestParser::new(Limits::default());
        let Some(Request::Command(args)) = p.next(&mut buf).unwrap() else {
            panic!("expected a command")
        };
        let at = args[0].as_ptr() as usize;
        assert!(at > base && at < base + 32, "argument was copied");
    }

    #[test]
    fn replies_parse() {
        let (f, n) = parse_reply(b"*3\r\n$1\r\na\r\n:5\r\n*1\r\n$-1\r\nrest")
            .unwrap()
            .unwrap();
        assert_eq!(n, 24);
        assert_eq!(
            f,
            Frame::Array(vec![
                Frame::bulk_static("a"),
                Frame::Integer(5),
                Frame::Array(vec![Frame::Null])
            ])
        );
        assert_eq!(parse_reply(b"$5\r\nab").unwrap(), None);
        assert!(parse_reply(b"\r\n").is_err());
        assert!(parse_reply(b"*1\r\n\r\n").is_err());
    }
}
