//! tina-sim: the deterministic simulator.
//!
//! It owns how a scenario runs: the world of nodes and shards (`world`), the `SimBackend`
//! each shard sees (`backend`), each node's clock (`clock`), the faults it injects and their
//! knobs (`faults`), the PRNG tree (`prng`), the trace, its hash and the replay log
//! (`trace`), what caused each event (`links`) and a violation's causal chain (`chain`),
//! the Chrome trace of `--trace-out` (`chrome`), the inputs (`config`), one run and the
//! determinism check (`run`), many seeds over threads and machines (`sweep`), fuzz inputs
//! (`fuzz`), shrinking a failure (`shrink`), and the `sim` binary. This crate depends on
//! `tina`, `tina-checkers` and `tina-scenarios`; the scenario catalog lives there.

pub mod backend;
pub mod chain;
pub mod chrome;
pub mod cli;
pub mod clock;
pub mod config;
pub mod disk;
pub mod faults;
pub mod fuzz;
pub mod json;
pub mod links;
pub mod net;
pub mod plant;
pub mod prng;
pub mod run;
pub mod seedfile;
pub mod shrink;
pub mod simulation;
pub mod sweep;
pub mod trace;
pub mod world;

pub use faults::Profile;
pub use run::{Outcome, RunReport};
pub use simulation::{CheckFailure, SeedFailure, SimError, Simulation, Summary, Value};
// What a user's setup, goal and observers are made of, so that a user's crate needs only
// `tina` and `tina-sim`.
pub use tina_checkers::{
    EndView, EventKinds, FailureClass, Observer, Stamp, Verdict, Violation, WorldEvent, violated,
};
pub use tina_scenarios::{Goal, ParamKind, ParamSpec, Params, Scenario, Setup, SetupError};

/// The README's examples, compiled and run as doctests of this crate (which sees `tina`
/// and `tina-sim` as a user's crate does) so they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
