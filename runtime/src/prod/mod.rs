//! The lock-free plumbing of the production runtime: what a production backend needs
//! between shards on real threads, as small self-contained modules.
//!
//! - [`spsc`]: the bounded ring of one ordered pair of shards, published once per tick.
//! - [`park`]: parking an idle shard on its eventfd and waking it, with no lost wake-up
//!   (Linux).
//! - [`clock`]: the monotonic clock behind `Backend::now`.
//! - `sync`: the facade every atomic and `UnsafeCell` here goes through, so that loom can
//!   model-check the ring and the parker (`RUSTFLAGS="--cfg loom" cargo test --release -p
//!   tina --lib prod::`); [`CachePadded`] comes from it.
//!
//! This is where the deterministic world ends: threads, atomics, `unsafe` (only in
//! `spsc` and the facade) and syscalls live here, and nothing in the core (the scheduler,
//! the shard) imports from it. Only the production backend uses these modules: it builds,
//! at boot, one `spsc::channel` per ordered pair of shards and one `park::Parker` per
//! shard, and implements `Backend::send_remote`, `flush_remote`, `receive_remote`, `park`
//! and `now` with them (each module says how).

pub mod clock;
#[cfg(any(target_os = "linux", all(loom, test)))]
pub mod park;
pub mod spsc;
mod sync;

pub use sync::{CACHE_LINE_PAIR_SIZE, CachePadded};
