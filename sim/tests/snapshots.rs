//! Replay logs under `insta`: two scenarios at two seeds without faults, and every
//! scenario under the chaos profile: the header, the first events, every world event (the
//! faults and what recovery did) and the footer. A change in scheduling order, in the
//! trace's encoding, in the fault model or in the core's behaviour shows up as a reviewable
//! diff. No wall time, path or toolchain version is in a log.

mod common;

use tina_sim::faults::Profile;
use tina_sim::run::{LogRequest, Outcome, RunConfig, run};

/// Header, first `EVENTS` event lines, and the footer of a run's replay log.
fn excerpt(scenario: &str, seed: u64, sets: &[&str]) -> String {
    excerpt_of(common::config(scenario, seed, sets))
}

/// The excerpt of a run under `chaos`: also every world event after the first ones.
fn chaos(scenario: &str, seed: u64, sets: &[&str]) -> String {
    excerpt_of(common::config_with_faults(scenario, seed, sets, Profile::Chaos, &[]))
}

fn excerpt_of(mut config: RunConfig) -> String {
    const EVENTS: usize = 40;
    config.log = LogRequest::Memory;
    let report = run(&config);
    assert_eq!(report.outcome, Outcome::Pass);
    let log = report.log.expect("an in-memory log");
    let lines: Vec<&str> = log.lines().collect();
    let body = lines.iter().position(|l| l.starts_with("# index")).expect("the column line") + 1;
    let footer = lines.iter().position(|l| *l == "# end").expect("the footer");
    let mut out: Vec<&str> = lines[..body].to_vec();
    out.extend(lines[body..footer.min(body + EVENTS)].iter());
    if footer > body + EVENTS {
        out.push("...");
        // The world events, so the fault timeline is reviewable (at most 60 of them).
        let world = lines[body + EVENTS..footer].iter().filter(|line| is_world_event(line));
        out.extend(world.take(60));
        out.push("...");
    }
    out.extend(lines[footer..].iter());
    out.join("\n") + "\n"
}

/// Whether a replay-log line is a world event (its place is a node, or its kind one of the
/// world's).
fn is_world_event(line: &str) -> bool {
    const WORLD: [&str; 16] = [
        "clock-skew",
        "clock-jump",
        "delay-tail",
        "delay-slow",
        "shard-stall",
        "isolate-crash",
        "init-failure",
        "shard-crash",
        "shard-restart",
        "shard-quarantine",
        "shard-revive",
        "node-crash",
        "node-restart",
        "buggify",
        "buggify-active",
        "phase",
    ];
    line.split(' ').nth(3).is_some_and(|kind| WORLD.contains(&kind))
}

#[test]
fn ping_pong_seed_1() {
    insta::assert_snapshot!(excerpt("ping-pong", 1, &["round_trips=100"]));
}

#[test]
fn ping_pong_seed_2() {
    insta::assert_snapshot!(excerpt("ping-pong", 2, &["round_trips=100"]));
}

#[test]
fn dispatcher_seed_1() {
    insta::assert_snapshot!(excerpt("dispatcher", 1, &["jobs=30"]));
}

#[test]
fn dispatcher_seed_2() {
    insta::assert_snapshot!(excerpt("dispatcher", 2, &["jobs=30"]));
}

#[test]
fn ping_pong_chaos_seed_1() {
    insta::assert_snapshot!(chaos("ping-pong", 1, &["round_trips=300"]));
}

#[test]
fn dispatcher_chaos_seed_1() {
    insta::assert_snapshot!(chaos("dispatcher", 1, &["jobs=300"]));
}

#[test]
fn timers_chaos_seed_1() {
    insta::assert_snapshot!(chaos("timers", 1, &["isolates=500", "spread=3s"]));
}

#[test]
fn bank_chaos_seed_1() {
    insta::assert_snapshot!(chaos("bank", 1, &[]));
}

#[test]
fn echo_seed_1() {
    insta::assert_snapshot!(excerpt("echo", 1, &["clients=2", "round_trips=5"]));
}

#[test]
fn echo_chaos_seed_1() {
    insta::assert_snapshot!(chaos("echo", 1, &["clients=2", "round_trips=20"]));
}

#[test]
fn kv_seed_1() {
    insta::assert_snapshot!(excerpt("kv", 1, &["clients=2", "ops=5", "keys=2"]));
}

#[test]
fn kv_chaos_seed_1() {
    insta::assert_snapshot!(chaos("kv", 1, &["clients=2", "ops=20"]));
}
