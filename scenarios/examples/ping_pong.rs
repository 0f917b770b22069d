//! `ping-pong` on real threads: the very isolates the simulator runs, one pinned thread
//! per shard, shards talking through lock-free rings.
//!
//! `cargo run --release -p tina-scenarios --example ping_pong [KEY=VALUE ...]`, with the
//! scenario's parameters (`sim list`), for example `round_trips=1000000`. Runs until the
//! pinger has played every round (or SIGINT/SIGTERM), stops, prints a summary.

use std::process::ExitCode;

mod common;

fn main() -> ExitCode {
    common::run_example("ping-pong", "pinger")
}
