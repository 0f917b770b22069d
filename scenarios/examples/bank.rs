//! `bank` on real threads: clients move money between accounts on every shard with
//! retried, deduplicated credits. The very isolates the simulator runs.
//!
//! `cargo run --release -p tina-scenarios --example bank [KEY=VALUE ...]`, for example
//! `transfers=100000`. Runs until every client has made its transfers (or SIGINT/SIGTERM),
//! stops, prints a summary.

use std::process::ExitCode;

mod common;

fn main() -> ExitCode {
    common::run_example("bank", "client")
}
