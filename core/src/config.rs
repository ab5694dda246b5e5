//! Limits on what a peer may send and store.
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 << 20,
            max_array_len: 4 << 20,
            max_inline_len: 64 << 10,
            max_dims: 16,
            max_tensor_bytes: 512 << 20,
        }
    }
}
