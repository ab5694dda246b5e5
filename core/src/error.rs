//! The one error type of insitu.
//!
//! Every failure carries a stable [`ErrorCode`] (shared by every binding: C status codes,
//! Fortran `ierr`, Python exception classes) and the exact text a RESP client sees after
//! the `-` of an error reply, e.g. `ERR invalid data type` or
//! `WRONGTYPE Operation against a key holding the wrong kind of value`. SmartRedis and
//! redis-py match on that text, so it is kept byte for byte as Redis/RedisAI wrote it.

use std::fmt;

/// Stable numeric error codes. The values never change once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorCode {
    /// A request was malformed or an argument was invalid.
    BadInput = 1,
    /// The key (tensor, dataset, model, ...) does not exist.
    NotFound = 2,
    /// The key holds a value of another kind.
    WrongType = 3,
    /// The store's memory limit would be exceeded.
    OutOfMemory = 4,
    /// A configured limit (frame size, dims, clients, ...) was exceeded.
    LimitExceeded = 5,
    /// An I/O error: a socket, a file.
    Io = 6,
    /// The peer broke the wire protocol.
    Protocol = 7,
    /// Authentication is required or failed.
    Auth = 8,
    /// An operation did not finish in the time allowed.
    Timeout = 9,
    /// The operation is not supported by this build or configuration.
    Unsupported = 10,
    /// The server replied with an error this client could not classify.
    Server = 11,
    /// A bug: an invariant did not hold. Please report it.
    Internal = 12,
}

impl ErrorCode {
    /// Every code, in numeric order (the bindings of other languages take their values
    /// from here).
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::BadInput,
        ErrorCode::NotFound,
        ErrorCode::WrongType,
        ErrorCode::OutOfMemory,
        ErrorCode::LimitExceeded,
        ErrorCode::Io,
        ErrorCode::Protocol,
        ErrorCode::Auth,
        ErrorCode::Timeout,
        ErrorCode::Unsupported,
        ErrorCode::Server,
        ErrorCode::Internal,
    ];

    /// A short stable name, e.g. `"BadInput"`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::BadInput => "BadInput",
            ErrorCode::NotFound => "NotFound",
            ErrorCode::WrongType => "WrongType",
            ErrorCode::OutOfMemory => "OutOfMemory",
            ErrorCode::LimitExceeded => "LimitExceeded",
            ErrorCode::Io => "Io",
            ErrorCode::Protocol => "Protocol",
            ErrorCode::Auth => "Auth",
            ErrorCode::Timeout => "Timeout",
            ErrorCode::Unsupported => "Unsupported",
            ErrorCode::Server => "Server",
            ErrorCode::Internal => "Internal",
        }
    }
}

/// An insitu error: a stable code and the full message (with its RESP prefix word).
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    text: String,
}

/// `Result` with insitu's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error whose wire text is `text` exactly (it must start with its prefix word,
    /// such as `ERR` or `WRONGTYPE`).
    pub fn new(code: ErrorCode, text: impl Into<String>) -> Self {
        Error {
            code,
            text: text.into(),
        }
    }

    /// An error whose wire text is `ERR <msg>`.
    pub fn err(code: ErrorCode, msg: impl AsRef<str>) -> Self {
        Error::new(code, format!("ERR {}", msg.as_ref()))
    }

    /// `ERR <msg>` with [`ErrorCode::BadInput`].
    pub fn bad_input(msg: impl AsRef<str>) -> Self {
        Error::err(ErrorCode::BadInput, msg)
    }

    /// `ERR <msg>` with [`ErrorCode::LimitExceeded`].
    pub fn limit(msg: impl AsRef<str>) -> Self {
        Error::err(ErrorCode::LimitExceeded, msg)
    }

    /// Redis' wrong-arity error, naming the command as the client typed it.
    pub fn arity(cmd: &[u8]) -> Self {
        Error::bad_input(format!(
            "wrong number of arguments for '{}' command",
            String::from_utf8_lossy(cmd)
        ))
    }

    /// Redis' wrong-type error.
    pub fn wrong_type() -> Self {
        Error::new(
            ErrorCode::WrongType,
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        )
    }

    /// Redis' out-of-memory error.
    pub fn oom() -> Self {
        Error::new(
            ErrorCode::OutOfMemory,
            "OOM command not allowed when used memory > 'maxmemory'.",
        )
    }

    /// Redis' syntax error.
    pub fn syntax() -> Self {
        Error::bad_input("syntax error")
    }

    /// Redis' error for a non-integer argument.
    pub fn not_integer() -> Self {
        Error::bad_input("value is not an integer or out of range")
    }

    /// `ERR no such key` (RENAME of a missing key).
    pub fn no_such_key() -> Self {
        Error::err(ErrorCode::NotFound, "no such key")
    }

    /// An I/O error, with context.
    pub fn io(context: impl AsRef<str>, e: &std::io::Error) -> Self {
        Error::err(ErrorCode::Io, format!("{}: {e}", context.as_ref()))
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The full text as sent on the wire after `-`, e.g. `ERR invalid data type`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text without its leading prefix word when that word is `ERR`
    /// (`invalid data type`); other prefixes (`WRONGTYPE`, `OOM`) are kept.
    pub fn message(&self) -> &str {
        self.text.strip_prefix("ERR ").unwrap_or(&self.text)
    }

    /// Classify an error text received from a server into a code.
    pub fn from_server_text(text: impl Into<String>) -> Self {
        let text = text.into();
        let code = classify(&text);
        Error { code, text }
    }
}

/// Map a server's error text to a code. The texts are those of PROTOCOL.md and Redis.
fn classify(text: &str) -> ErrorCode {
    let word = text.split(' ').next().unwrap_or("");
    match word {
        "WRONGTYPE" => return ErrorCode::WrongType,
        "OOM" => return ErrorCode::OutOfMemory,
        "NOAUTH" | "WRONGPASS" => return ErrorCode::Auth,
        "CROSSSLOT" => return ErrorCode::BadInput,
        "CLUSTERDOWN" | "TRYAGAIN" => return ErrorCode::Io,
        _ => {}
    }
    let msg = text.strip_prefix("ERR ").unwrap_or(text);
    if msg.starts_with("tensor key is empty")
        || msg.starts_with("no such key")
        || msg.starts_with("model key is empty")
        || msg.starts_with("cannot find run info")
    {
        ErrorCode::NotFound
    } else if msg.starts_with("Protocol error") {
        ErrorCode::Protocol
    } else if msg.starts_with("max number of clients")
        || msg.contains("exceeds the limit")
        || msg.contains("too large")
    {
        ErrorCode::LimitExceeded
    } else if msg.starts_with("unknown command")
        || msg.contains("not supported")
        || msg.starts_with("ONNX Runtime (>= 1.31) not found")
        || msg.starts_with("GPU requested but")
    {
        ErrorCode::Unsupported
    } else if msg.starts_with("TIMEDOUT") || text == "TIMEDOUT" {
        ErrorCode::Timeout
    } else if word == "ERR" {
        ErrorCode::BadInput
    } else {
        ErrorCode::Server
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({}: {:?})", self.code.name(), self.text)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::err(ErrorCode::Io, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_code_once_in_order() {
        // A new variant fails to compile here until it is placed, and then until ALL
        // holds it.
        let position = |c: ErrorCode| match c {
            ErrorCode::BadInput => 0,
            ErrorCode::NotFound => 1,
            ErrorCode::WrongType => 2,
            ErrorCode::OutOfMemory => 3,
            ErrorCode::LimitExceeded => 4,
            ErrorCode::Io => 5,
            ErrorCode::Protocol => 6,
            ErrorCode::Auth => 7,
            ErrorCode::Timeout => 8,
            ErrorCode::Unsupported => 9,
            ErrorCode::Server => 10,
            ErrorCode::Internal => 11,
        };
        for (i, c) in ErrorCode::ALL.into_iter().enumerate() {
            assert_eq!(position(c), i);
            assert_eq!(c as u32, i as u32 + 1);
        }
    }

    #[test]
    fn server_texts_round_trip_to_codes() {
        let (wt, oom) = (Error::wrong_type(), Error::oom());
        let cases = [
            ("ERR invalid data type", ErrorCode::BadInput),
            (wt.text(), ErrorCode::WrongType),
            (oom.text(), ErrorCode::OutOfMemory),
            (
                "ERR tensor key is empty or in a different shard",
                ErrorCode::NotFound,
            ),
            ("NOAUTH Authentication required.", ErrorCode::Auth),
            (
                "ERR max number of clients reached",
                ErrorCode::LimitExceeded,
            ),
            ("BUSY something", ErrorCode::Server),
            (
                "ERR backend TORCH is not supported by insitu: export the model to ONNX",
                ErrorCode::Unsupported,
            ),
        ];
        for (text, code) in cases {
            let e = Error::from_server_text(text);
            assert_eq!(e.code(), code, "{text}");
            assert_eq!(e.text(), text);
        }
        assert_eq!(
            Error::arity(b"AI.TensorSet").text(),
            "ERR wrong number of arguments for 'AI.TensorSet' command"
        );
        assert_eq!(Error::bad_input("x").message(), "x");
        assert_eq!(Error::wrong_type().message(), Error::wrong_type().text());
    }
}
