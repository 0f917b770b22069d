//! The production runtime's pieces that face the operating system: memory, CPU time, core
//! affinity and signals, each self-contained and usable on its own.
//!
//! Not a backend and not the scheduler: these modules read `/proc` and `/sys`, pin threads
//! and handle signals for a runtime that runs shards on real threads. They are the one
//! place in this crate that makes system calls (besides the I/O region's allocation), and
//! Linux-only where they must be.

#[cfg(target_os = "linux")]
pub mod affinity;
#[cfg(target_os = "linux")]
pub mod cpu;
pub mod memory;
#[cfg(target_os = "linux")]
pub mod signals;
