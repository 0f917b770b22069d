//! tina-sim: the deterministic simulator.
//!
//! It owns how a scenario runs: the world of nodes and shards, the `SimBackend`, faults, the
//! PRNG tree, the replay log and the `sim` binary. This crate depends on `tina`,
//! `tina-checkers` and `tina-scenarios`.

pub mod prng;
