//! The lock-free plumbing of the production runtime: what a production backend needs
//! between shards on real threads, as small self-contained modules.
//!
//! - [`spsc`]: the bounded ring of one ordered pair of shards, published once per tick.
//! - `sync`: the facade every atomic and `UnsafeCell` here goes through, so that loom can
//!   model-check the ring (`RUSTFLAGS="--cfg loom" cargo test --release -p tina --lib
//!   prod::`); [`CachePadded`] comes from it.
//!
//! This is where the deterministic world ends: threads, atomics and `unsafe` (only in
//! `spsc` and the facade) live here, and nothing in the core (the scheduler, the shard)
//! imports from it. Only the production backend uses these modules: it builds, at boot,
//! one `spsc::channel` per ordered pair of shards and implements `Backend::send_remote`,
//! `flush_remote` and `receive_remote` with them (the module says how).

pub mod spsc;
mod sync;

pub use sync::{CACHE_LINE_PAIR_SIZE, CachePadded};
