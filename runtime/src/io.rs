//! I/O operation types carried by `Effect::Io`.
//!
//! Provisional: the scheduler does not yet interpret I/O (it reports the isolate as crashed
//! with `crash::EFFECT_UNSUPPORTED`). The full set of operations, shard-owned buffers and
//! typed completions arrive with the I/O seam of the backend.

/// One I/O operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoOp {
    /// Close a descriptor held by the shard.
    Close {
        /// The shard-owned descriptor handle.
        fd: u32,
    },
}
