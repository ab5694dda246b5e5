//! Limits on what a peer may send and store, and how long a connection may sit idle.
//!
//! Every size a client controls is bounded here, so a bad or hostile request costs an
//! error reply, never the server's memory. All limits are configurable (CLI flags,
//! `CONFIG SET`) and checked before any allocation of the size a peer asked for.

/// Input limits. `Default` gives the values `insitu serve` starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk string (one argument), bytes. Redis' `proto-max-bulk-len`.
    pub max_bulk_len: usize,
    /// Most elements in one command array (arguments of one command).
    pub max_array_len: usize,
    /// Most bytes of one inline (non-RESP) command line.
    pub max_inline_len: usize,
    /// Most dimensions of one tensor.
    pub max_dims: usize,
    /// Largest tensor payload, bytes (shape x dtype size, checked for overflow).
    pub max_tensor_bytes: usize,
    /// Close a connection that sends nothing for this many seconds while no command of
    /// its own is running (0: never). Redis' `timeout`.
    pub idle_timeout_secs: u64,
    /// Close a connection whose replies wait this many seconds without the client reading
    /// any of them (0: never). A client that does not read its replies stops being read
    /// from once 1 MiB of them is pending, so its memory is bounded either way; this
    /// frees the connection (and the tensors its replies hold) from a client that is
    /// gone or stuck.
    pub output_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 << 20,
            max_array_len: 4 << 20,
            max_inline_len: 64 << 10,
            max_dims: 16,
            max_tensor_bytes: 512 << 20,
            idle_timeout_secs: 0,
            output_timeout_secs: 60,
        }
    }
}
