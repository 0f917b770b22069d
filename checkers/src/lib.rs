//! tina-checkers: pure checks over tina event histories and read-only state views.
//!
//! A checker consumes the `tina::Event` stream of a run (and, at the end, read-only views
//! of shard state) and reports the first violation of a property. It never mutates the
//! system under test. This crate depends on `tina` only.
//!
//! The structural checkers arrive with the simulator; for now the crate only fixes its
//! place in the dependency graph.
