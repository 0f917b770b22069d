//! `dispatcher` on real threads: a dispatcher calls workers that crash every nth job;
//! supervisors restart them. The very isolates the simulator runs.
//!
//! `cargo run --release -p tina-scenarios --example dispatcher [KEY=VALUE ...]`, for
//! example `jobs=1000000000 job_interval=1ms` to keep it running until SIGINT. Runs until
//! the dispatcher has handed out every job (or SIGINT/SIGTERM), stops, prints a summary.

use std::process::ExitCode;

mod common;

fn main() -> ExitCode {
    common::run_example("dispatcher", "dispatcher")
}
