//! The production runtime: the same `Scheduler` the simulator drives, on real threads.
//!
//! The lock-free plumbing between shards:
//! - [`spsc`]: the bounded ring of one ordered pair of shards, published once per tick.
//! - [`park`]: parking an idle shard on its eventfd and waking it, with no lost wake-up
//!   (Linux).
//! - [`clock`]: the monotonic clock behind `Backend::now`.
//! - `sync`: the facade every atomic and `UnsafeCell` here goes through, so that loom can
//!   model-check the ring and the parker (`RUSTFLAGS="--cfg loom" cargo test --release -p
//!   tina --lib prod::`); [`CachePadded`] comes from it.
//!
//! The pieces that face the operating system, each usable on its own: [`memory`] (what a
//! spec needs against what the machine can give), [`cpu`] (a process's CPU time),
//! [`affinity`] (a core per shard), [`signals`] (opt-in SIGINT/SIGTERM) and [`io`] (each
//! shard's I/O driver: io_uring, or epoll where io_uring is unavailable). [`fatal`]
//! catches a fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE) on a shard thread: it
//! quarantines the shard when isolate code faulted, else aborts with a clear line, and its
//! watchdog aborts on a shard that stopped ticking.
//!
//! This is where the deterministic world ends: threads, atomics, `unsafe` (only in `spsc`,
//! the facade, `fatal::sys`, and the system calls of `signals`, `memory` and `cpu`) and
//! syscalls live here, and nothing in the core (the scheduler, the shard) imports from it.

#[cfg(target_os = "linux")]
pub mod affinity;
pub mod clock;
#[cfg(target_os = "linux")]
pub mod cpu;
#[cfg(all(target_os = "linux", not(loom)))]
pub mod fatal;
pub mod io;
pub mod memory;
#[cfg(any(target_os = "linux", all(loom, test)))]
pub mod park;
#[cfg(all(target_os = "linux", not(loom)))]
mod runtime;
#[cfg(target_os = "linux")]
pub mod signals;
pub mod spsc;
mod sync;

#[cfg(all(target_os = "linux", not(loom)))]
pub use io::{IoDriverChoice, IoDriverKind, IoReport};
#[cfg(all(target_os = "linux", not(loom)))]
pub use runtime::{
    InjectError, Injector, REPORT_EVERY_TICKS, Runtime, RuntimeConfig, RuntimeError, ShardReport,
    Summary, WAIT_POLL,
};
#[cfg(target_os = "linux")]
pub use signals::Ended;
pub use sync::{CACHE_LINE_PAIR_SIZE, CachePadded};
