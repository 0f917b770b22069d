//! tina-scenarios: workloads for the simulator and the catalog that names them.
//!
//! A scenario says what to run (node and shard layout, workload isolates, fault profile,
//! scenario checkers); it never drives the clock. This crate depends on `tina` and
//! `tina-checkers`.
//!
//! The catalog arrives with the simulator; for now the crate only fixes its place in the
//! dependency graph.
