//! How both front ends report an error: a gRPC status code (HTTP maps it to a status)
//! and a message, with Triton's texts where Triton has one.

use crate::error::{Error, ErrorCode};

/// An error as both front ends report it: a gRPC status code (HTTP maps it to a status)
/// and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KsError {
    /// The gRPC code.
    pub code: tonic::Code,
    /// What went wrong.
    pub message: String,
}

/// `Result` with [`KsError`].
pub type KsResult<T> = std::result::Result<T, KsError>;

/// An invalid request (gRPC INVALID_ARGUMENT, HTTP 400).
pub fn invalid(message: impl Into<String>) -> KsError {
    KsError {
        code: tonic::Code::InvalidArgument,
        message: message.into(),
    }
}

/// Triton's error for a model it does not serve (UNAVAILABLE).
pub fn unknown_model(name: &str, version: &str) -> KsError {
    KsError {
        code: tonic::Code::Unavailable,
        message: if version.is_empty() {
            format!("Request for unknown model: '{name}' is not found")
        } else {
            format!("Request for unknown model: '{name}' version {version} is not found")
        },
    }
}

impl From<Error> for KsError {
    fn from(e: Error) -> KsError {
        let code = match e.code() {
            ErrorCode::BadInput | ErrorCode::WrongType | ErrorCode::Protocol => {
                tonic::Code::InvalidArgument
            }
            ErrorCode::NotFound => tonic::Code::NotFound,
            ErrorCode::OutOfMemory | ErrorCode::LimitExceeded => tonic::Code::ResourceExhausted,
            ErrorCode::Timeout => tonic::Code::DeadlineExceeded,
            ErrorCode::Unsupported => tonic::Code::Unimplemented,
            ErrorCode::Auth => tonic::Code::PermissionDenied,
            ErrorCode::Io | ErrorCode::Server => tonic::Code::Unavailable,
            ErrorCode::Internal => tonic::Code::Internal,
        };
        // A run past its deadline: Triton's words rather than RedisAI's `TIMEDOUT`.
        let message = if e.code() == ErrorCode::Timeout {
            "Request timeout expired".to_string()
        } else {
            e.message().to_string()
        };
        KsError { code, message }
    }
}
