//! The boundary every call crosses: its status, the per-thread last error, the panic
//! guard, and the checks of pointers and strings the caller passes.

use std::cell::RefCell;
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use insitu::{Error, ErrorCode};

/// Status of every call. Values are stable.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum insitu_status {
    /// Success.
    Ok = 0,
    /// A malformed request or argument.
    BadInput = 1,
    /// The key does not exist.
    NotFound = 2,
    /// The key holds another kind of value.
    WrongType = 3,
    /// The memory limit would be exceeded.
    OutOfMemory = 4,
    /// A configured limit was exceeded.
    LimitExceeded = 5,
    /// A socket or file error.
    Io = 6,
    /// The peer broke the protocol.
    Protocol = 7,
    /// Authentication required or failed.
    Auth = 8,
    /// Timed out.
    Timeout = 9,
    /// Not supported by this build or server.
    Unsupported = 10,
    /// An unclassified server error.
    Server = 11,
    /// A bug in insitu.
    Internal = 12,
    /// A required pointer argument was NULL.
    NullArgument = 13,
    /// A text argument was not UTF-8.
    InvalidUtf8 = 14,
}

thread_local! {
    static LAST: RefCell<(insitu_status, String)> = const { RefCell::new((insitu_status::Ok, String::new())) };
}

pub(crate) enum Fail {
    Null(&'static str),
    Utf8(&'static str),
    Err(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Err(e)
    }
}

pub(crate) fn status_of(code: ErrorCode) -> insitu_status {
    match code {
        ErrorCode::BadInput => insitu_status::BadInput,
        ErrorCode::NotFound => insitu_status::NotFound,
        ErrorCode::WrongType => insitu_status::WrongType,
        ErrorCode::OutOfMemory => insitu_status::OutOfMemory,
        ErrorCode::LimitExceeded => insitu_status::LimitExceeded,
        ErrorCode::Io => insitu_status::Io,
        ErrorCode::Protocol => insitu_status::Protocol,
        ErrorCode::Auth => insitu_status::Auth,
        ErrorCode::Timeout => insitu_status::Timeout,
        ErrorCode::Unsupported => insitu_status::Unsupported,
        ErrorCode::Server => insitu_status::Server,
        ErrorCode::Internal => insitu_status::Internal,
    }
}

pub(crate) fn record(status: insitu_status, msg: String) -> insitu_status {
    LAST.with(|l| *l.borrow_mut() = (status, msg));
    status
}

/// The panic boundary: run `f`, turn failures and panics into a status and message.
pub(crate) fn call(f: impl FnOnce() -> Result<(), Fail>) -> insitu_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => record(insitu_status::Ok, String::new()),
        Ok(Err(Fail::Null(what))) => record(
            insitu_status::NullArgument,
            format!("{what} must not be NULL"),
        ),
        Ok(Err(Fail::Utf8(what))) => record(
            insitu_status::InvalidUtf8,
            format!("{what} is not valid UTF-8"),
        ),
        Ok(Err(Fail::Err(e))) => record(status_of(e.code()), e.text().to_string()),
        Err(_) => record(
            insitu_status::Internal,
            "internal error: a panic was caught at the C boundary (please report it)".into(),
        ),
    }
}

pub(crate) unsafe fn text<'a>(
    p: *const c_char,
    len: usize,
    what: &'static str,
) -> Result<&'a str, Fail> {
    if p.is_null() {
        return Err(Fail::Null(what));
    }
    let b = std::slice::from_raw_parts(p.cast::<u8>(), len);
    std::str::from_utf8(b).map_err(|_| Fail::Utf8(what))
}

pub(crate) unsafe fn slice<'a, T>(
    p: *const T,
    len: usize,
    what: &'static str,
) -> Result<&'a [T], Fail> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Fail::Null(what));
    }
    Ok(std::slice::from_raw_parts(p, len))
}

pub(crate) unsafe fn obj<'a, T>(p: *const T, what: &'static str) -> Result<&'a T, Fail> {
    p.as_ref().ok_or(Fail::Null(what))
}

pub(crate) unsafe fn obj_mut<'a, T>(p: *mut T, what: &'static str) -> Result<&'a mut T, Fail> {
    p.as_mut().ok_or(Fail::Null(what))
}

pub(crate) unsafe fn put<T>(out: *mut T, v: T) {
    // Checked non-NULL by the caller before any work.
    out.write(v);
}

pub(crate) fn check_out<T>(out: *mut T, what: &'static str) -> Result<(), Fail> {
    if out.is_null() {
        Err(Fail::Null(what))
    } else {
        Ok(())
    }
}

// ----- errors -----

/// The status of the last call on this thread.
#[no_mangle]
pub extern "C" fn insitu_last_error_code() -> insitu_status {
    LAST.with(|l| l.borrow().0)
}

/// Copy the last error message of this thread into `buf` (NUL-terminated, truncated to
/// `cap - 1` bytes); returns the message's full length. Empty after a success.
#[no_mangle]
pub unsafe extern "C" fn insitu_last_error_message(buf: *mut c_char, cap: usize) -> usize {
    LAST.with(|l| {
        let l = l.borrow();
        let msg = l.1.as_bytes();
        if !buf.is_null() && cap > 0 {
            let n = msg.len().min(cap - 1);
            std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
        msg.len()
    })
}

/// A static, NUL-terminated name for a status, e.g. "NotFound".
#[no_mangle]
pub extern "C" fn insitu_status_name(status: insitu_status) -> *const c_char {
    let s: &'static [u8] = match status {
        insitu_status::Ok => b"Ok\0",
        insitu_status::BadInput => b"BadInput\0",
        insitu_status::NotFound => b"NotFound\0",
        insitu_status::WrongType => b"WrongType\0",
        insitu_status::OutOfMemory => b"OutOfMemory\0",
        insitu_status::LimitExceeded => b"LimitExceeded\0",
        insitu_status::Io => b"Io\0",
        insitu_status::Protocol => b"Protocol\0",
        insitu_status::Auth => b"Auth\0",
        insitu_status::Timeout => b"Timeout\0",
        insitu_status::Unsupported => b"Unsupported\0",
        insitu_status::Server => b"Server\0",
        insitu_status::Internal => b"Internal\0",
        insitu_status::NullArgument => b"NullArgument\0",
        insitu_status::InvalidUtf8 => b"InvalidUtf8\0",
    };
    s.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::{status_of, ErrorCode};

    #[test]
    fn every_error_code_keeps_its_number_as_a_status() {
        for c in ErrorCode::ALL {
            assert_eq!(status_of(c) as u32, c as u32, "{}", c.name());
        }
    }
}
