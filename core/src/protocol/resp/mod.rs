//! RESP, the Redis wire protocol (RESP2 and RESP3): frames, their encoding, and parsers
//! for requests and replies.
//!
//! A reply is built once as a [`Frame`] and encoded in the protocol the connection chose
//! with `HELLO`: the RESP3-only kinds (maps, sets, doubles, booleans, verbatim strings)
//! fall back to their RESP2 forms exactly as Redis 7 writes them, so a client that never
//! sends `HELLO 3` sees RESP2 bytes only.
//!
//! Requests are parsed incrementally by [`RequestParser`]: each argument is taken out of
//! the read buffer once, large arguments without a copy, and a request over a limit is
//! answered with an error and skipped (its bytes discarded as they arrive) so the
//! connection stays usable. Replies are encoded into an [`Output`] that keeps large bulk
//! payloads as references to the stored bytes, written to the socket without a copy.

mod parser;

pub use parser::{decode_reply, parse_reply, Request, RequestParser};

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::Error;

/// Bulk strings at least this long are passed by reference, not copied, on both the read
/// and the write path. Smaller ones are copied: that is cheaper than a refcount, and a
/// small key must not pin a large read buffer in memory.
pub const ZERO_COPY_MIN: usize = 16 * 1024;

/// The protocol a connection speaks (`HELLO 2` / `HELLO 3`); RESP2 until it says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, what every client speaks before `HELLO 3`.
    #[default]
    Resp2,
    /// RESP3 (Redis 6+).
    Resp3,
}

impl Protocol {
    /// The version number (`2` or `3`), as `HELLO` reports it.
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// A RESP frame. The RESP3 kinds encode as their RESP2 equivalents on a RESP2 connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `+text`
    Simple(Bytes),
    /// `-text`: an error with its code. On the wire only the text travels (it includes
    /// its prefix word, e.g. `ERR`); a reply read from a server gets its code from the
    /// text (`Error::from_server_text`), one made in process keeps the code it has.
    Error(Error),
    /// `:n`
    Integer(i64),
    /// `$len bytes`
    Bulk(Bytes),
    /// `$-1`
    Null,
    /// `*-1`
    NullArray,
    /// `*n ...`
    Array(Vec<Frame>),
    /// `%n k v ...` (RESP3); a flat array of key, value, key, value... in RESP2.
    Map(Vec<(Frame, Frame)>),
    /// `~n ...` (RESP3); an array in RESP2.
    Set(Vec<Frame>),
    /// `,1.5` (RESP3); a bulk string (`%.17g`, as Redis 7.0 and RedisAI wrote it) in RESP2.
    Double(f64),
    /// `#t` / `#f` (RESP3); the integer 1 / 0 in RESP2.
    Boolean(bool),
    /// `=len txt:...` (RESP3, a verbatim text string); a bulk string in RESP2.
    Verbatim(Bytes),
}

impl Frame {
    /// `+OK`
    pub fn ok() -> Frame {
        Frame::Simple(Bytes::from_static(b"OK"))
    }

    /// A simple string from static text.
    pub fn simple(s: &'static str) -> Frame {
        Frame::Simple(Bytes::from_static(s.as_bytes()))
    }

    /// A bulk string copied from text.
    pub fn bulk_str(s: &str) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    /// A bulk string from static text.
    pub fn bulk_static(s: &'static str) -> Frame {
        Frame::Bulk(Bytes::from_static(s.as_bytes()))
    }

    /// The frame of an error.
    pub fn error(e: &Error) -> Frame {
        Frame::Error(e.clone())
    }

    /// Encode into `out` as RESP2.
    pub fn encode(&self, out: &mut Output) {
        self.encode_as(out, Protocol::Resp2);
    }

    /// Encode into `out` in `proto`.
    pub fn encode_as(&self, out: &mut Output, proto: Protocol) {
        let resp3 = proto == Protocol::Resp3;
        match self {
            Frame::Simple(s) => {
                out.buf.put_u8(b'+');
                put_line_safe(&mut out.buf, s);
            }
            Frame::Error(e) => {
                out.buf.put_u8(b'-');
                put_line_safe(&mut out.buf, e.text().as_bytes());
            }
            Frame::Integer(i) => {
                out.buf.put_u8(b':');
                put_int(&mut out.buf, *i);
            }
            Frame::Bulk(b) => {
                out.buf.put_u8(b'$');
                put_int(&mut out.buf, b.len() as i64);
                if b.len() >= ZERO_COPY_MIN {
                    out.push_shared(b.clone());
                } else {
                    out.buf.extend_from_slice(b);
                }
                out.buf.extend_from_slice(b"\r\n");
            }
            Frame::Null | Frame::NullArray if resp3 => out.buf.extend_from_slice(b"_\r\n"),
            Frame::Null => out.buf.extend_from_slice(b"$-1\r\n"),
            Frame::NullArray => out.buf.extend_from_slice(b"*-1\r\n"),
            Frame::Array(items) => {
                out.buf.put_u8(b'*');
                put_int(&mut out.buf, items.len() as i64);
                for i in items {
                    i.encode_as(out, proto);
                }
            }
            Frame::Set(items) => {
                out.buf.put_u8(if resp3 { b'~' } else { b'*' });
                put_int(&mut out.buf, items.len() as i64);
                for i in items {
                    i.encode_as(out, proto);
                }
            }
            Frame::Map(pairs) => {
                if resp3 {
                    out.buf.put_u8(b'%');
                    put_int(&mut out.buf, pairs.len() as i64);
                } else {
                    out.buf.put_u8(b'*');
                    put_int(&mut out.buf, 2 * pairs.len() as i64);
                }
                for (k, v) in pairs {
                    k.encode_as(out, proto);
                    v.encode_as(out, proto);
                }
            }
            Frame::Double(d) => {
                let text = format_g17(*d);
                if resp3 {
                    out.buf.put_u8(b',');
                    out.buf.extend_from_slice(text.as_bytes());
                    out.buf.extend_from_slice(b"\r\n");
                } else {
                    Frame::Bulk(Bytes::from(text)).encode_as(out, proto);
                }
            }
            Frame::Boolean(b) => {
                if resp3 {
                    out.buf
                        .extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" });
                } else {
                    Frame::Integer(i64::from(*b)).encode_as(out, proto);
                }
            }
            Frame::Verbatim(text) => {
                if resp3 {
                    out.buf.put_u8(b'=');
                    put_int(&mut out.buf, text.len() as i64 + 4);
                    out.buf.extend_from_slice(b"txt:");
                    out.buf.extend_from_slice(text);
                    out.buf.extend_from_slice(b"\r\n");
                } else {
                    Frame::Bulk(text.clone()).encode_as(out, proto);
                }
            }
        }
    }

    /// Encode into a fresh contiguous buffer as RESP2 (for tests and small messages).
    pub fn to_bytes(&self) -> Bytes {
        self.to_bytes_as(Protocol::Resp2)
    }

    /// Encode into a fresh contiguous buffer in `proto`.
    pub fn to_bytes_as(&self, proto: Protocol) -> Bytes {
        let mut out = Output::default();
        self.encode_as(&mut out, proto);
        out.concat()
    }

    /// The frame as a client of `proto` receives it: on RESP2 the RESP3 kinds become their
    /// RESP2 forms (what [`Frame::encode_as`] writes), so in-process callers see the same
    /// replies as a socket client.
    pub fn for_protocol(self, proto: Protocol) -> Frame {
        if proto == Protocol::Resp3 {
            return self;
        }
        match self {
            Frame::Array(items) => {
                Frame::Array(items.into_iter().map(|f| f.for_protocol(proto)).collect())
            }
            Frame::Set(items) => {
                Frame::Array(items.into_iter().map(|f| f.for_protocol(proto)).collect())
            }
            Frame::Map(pairs) => Frame::Array(
                pairs
                    .into_iter()
                    .flat_map(|(k, v)| [k.for_protocol(proto), v.for_protocol(proto)])
                    .collect(),
            ),
            Frame::Double(d) => Frame::Bulk(Bytes::from(format_g17(d))),
            Frame::Boolean(b) => Frame::Integer(i64::from(b)),
            Frame::Verbatim(b) => Frame::Bulk(b),
            f => f,
        }
    }

    /// A map reply from text keys.
    pub fn map<I>(pairs: I) -> Frame
    where
        I: IntoIterator<Item = (&'static str, Frame)>,
    {
        Frame::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Frame::bulk_static(k), v))
                .collect(),
        )
    }

    /// A command frame: an array of bulk strings.
    pub fn command<I, A>(args: I) -> Frame
    where
        I: IntoIterator<Item = A>,
        A: Into<Bytes>,
    {
        Frame::Array(args.into_iter().map(|a| Frame::Bulk(a.into())).collect())
    }
}

fn put_int(buf: &mut BytesMut, i: i64) {
    let mut b = itoa_buf(i);
    buf.extend_from_slice(b.as_bytes_mut());
    buf.extend_from_slice(b"\r\n");
}

/// Simple strings and errors cannot carry CR or LF: replace them (as Redis does).
fn put_line_safe(buf: &mut BytesMut, s: &[u8]) {
    for &c in s {
        buf.put_u8(if c == b'\r' || c == b'\n' { b' ' } else { c });
    }
    buf.extend_from_slice(b"\r\n");
}

struct IntBuf {
    bytes: [u8; 20],
    start: usize,
}

impl IntBuf {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

fn itoa_buf(i: i64) -> IntBuf {
    let mut bytes = [0u8; 20];
    let mut pos = bytes.len();
    let neg = i < 0;
    let mut n = i.unsigned_abs();
    loop {
        pos -= 1;
        bytes[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if neg {
        pos -= 1;
        bytes[pos] = b'-';
    }
    IntBuf { bytes, start: pos }
}

/// Encoded replies waiting to be written: small pieces copied into one buffer, large bulk
/// payloads kept as shared references in between.
#[derive(Default)]
pub struct Output {
    buf: BytesMut,
    chunks: Vec<Bytes>,
    len: usize,
}

impl Output {
    fn push_shared(&mut self, b: Bytes) {
        if !self.buf.is_empty() {
            let head = self.buf.split().freeze();
            self.len += head.len();
            self.chunks.push(head);
        }
        self.len += b.len();
        self.chunks.push(b);
    }

    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.len + self.buf.len()
    }

    /// Whether nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Take the pending pieces in order, leaving the output empty.
    pub fn take_chunks(&mut self) -> Vec<Bytes> {
        if !self.buf.is_empty() {
            let tail = self.buf.split().freeze();
            self.chunks.push(tail);
        }
        self.len = 0;
        std::mem::take(&mut self.chunks)
    }

    /// Everything pending as one buffer (copies; for tests and small messages).
    pub fn concat(&mut self) -> Bytes {
        let chunks = self.take_chunks();
        if chunks.len() == 1 {
            return chunks.into_iter().next().unwrap_or_default();
        }
        let mut b = BytesMut::with_capacity(chunks.iter().map(|c| c.len()).sum());
        for c in chunks {
            b.extend_from_slice(&c);
        }
        b.freeze()
    }
}

/// After a vectored write of `n` bytes starting at `chunks[*first]`, move `*first` past
/// the chunks written completely and trim the one written in part.
pub fn advance_chunks(chunks: &mut [Bytes], first: &mut usize, mut n: usize) {
    while n > 0 && *first < chunks.len() {
        let len = chunks[*first].len();
        if n >= len {
            n -= len;
            *first += 1;
        } else {
            let rest = chunks[*first].split_off(n);
            chunks[*first] = rest;
            n = 0;
        }
    }
}

/// Up to 64 slices of `chunks` for one vectored write.
pub fn io_slices(chunks: &[Bytes]) -> Vec<std::io::IoSlice<'_>> {
    chunks
        .iter()
        .take(64)
        .map(|c| std::io::IoSlice::new(c))
        .collect()
}

/// Format a double as C's `printf("%.17g")` does (RedisAI's VALUES reply for floats).
pub fn format_g17(v: f64) -> String {
    if v.is_nan() {
        return if v.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    const P: i32 = 17;
    let sci = format!("{:.*e}", (P - 1) as usize, v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..P).contains(&exp) {
        let m = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (P - 1 - exp).max(0) as usize;
        trim_fraction(&format!("{v:.decimals$}")).to_string()
    }
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g17_matches_printf() {
        let cases = [
            (0.1f32 as f64, "0.10000000149011612"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (1e20, "1e+20"),
            (1.5e-7, "1.4999999999999999e-07"),
            (123456789.0, "123456789"),
            (0.0001, "0.0001"),
            (f64::INFINITY, "inf"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
        ];
        for (v, s) in cases {
            assert_eq!(format_g17(v), s, "{v}");
        }
    }

    #[test]
    fn an_error_keeps_its_code_in_process_and_its_text_on_the_wire() {
        let e = Error::limit("the script cache is full (10000 scripts)");
        let f = Frame::error(&e);
        assert!(
            matches!(&f, Frame::Error(x) if x.code() == crate::error::ErrorCode::LimitExceeded)
        );
        let mut out = Output::default();
        f.encode(&mut out);
        let wire = out.concat().to_vec();
        assert_eq!(wire, b"-ERR the script cache is full (10000 scripts)\r\n");
        // Read back from the wire, only the text is there to classify.
        let (back, _) = parser::parse_reply(&wire).unwrap().unwrap();
        assert!(matches!(&back, Frame::Error(x) if x.text() == e.text()));
    }

    #[test]
    fn encodes_every_kind() {
        let f = Frame::Array(vec![
            Frame::ok(),
            Frame::Error(Error::from_server_text("ERR bad\r\nthing")),
            Frame::Integer(-42),
            Frame::Integer(0),
            Frame::Integer(i64::MIN),
            Frame::bulk_static("hi"),
            Frame::Null,
            Frame::NullArray,
            Frame::Array(vec![]),
        ]);
        assert_eq!(
            f.to_bytes().as_ref(),
            b"*9\r\n+OK\r\n-ERR bad  thing\r\n:-42\r\n:0\r\n:-9223372036854775808\r\n$2\r\nhi\r\n$-1\r\n*-1\r\n*0\r\n"
        );
    }

    #[test]
    fn resp3_kinds_fall_back_to_their_resp2_forms() {
        let f = Frame::Array(vec![
            Frame::map([("a", Frame::Integer(1)), ("b", Frame::Double(1.5))]),
            Frame::Set(vec![Frame::bulk_static("x")]),
            Frame::Boolean(true),
            Frame::Boolean(false),
            Frame::Verbatim(Bytes::from_static(b"k:v\r\n")),
            Frame::Null,
            Frame::NullArray,
            Frame::Double(0.1f32 as f64),
            Frame::Double(f64::INFINITY),
        ]);
        assert_eq!(
            f.to_bytes().as_ref(),
            &b"*9\r\n*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n$3\r\n1.5\r\n*1\r\n$1\r\nx\r\n:1\r\n:0\r\n$5\r\nk:v\r\n\r\n$-1\r\n*-1\r\n$19\r\n0.10000000149011612\r\n$3\r\ninf\r\n"[..]
        );
        assert_eq!(
            f.to_bytes_as(Protocol::Resp3).as_ref(),
            &b"*9\r\n%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n,1.5\r\n~1\r\n$1\r\nx\r\n#t\r\n#f\r\n=9\r\ntxt:k:v\r\n\r\n_\r\n_\r\n,0.10000000149011612\r\n,inf\r\n"[..]
        );
    }

    #[test]
    fn large_bulks_are_shared_not_copied() {
        let big = Bytes::from(vec![9u8; ZERO_COPY_MIN]);
        let mut out = Output::default();
        Frame::Array(vec![Frame::Bulk(big.clone()), Frame::ok()]).encode(&mut out);
        let chunks = out.take_chunks();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[1].as_ptr(), big.as_ptr());
        assert_eq!(
            chunks[0].as_ref(),
            format!("*2\r\n${}\r\n", ZERO_COPY_MIN).as_bytes()
        );
        assert_eq!(chunks[2].as_ref(), b"\r\n+OK\r\n");
    }
}
