//! Replay logs of each scenario at two seeds, under `insta`: the header, the first events
//! and the footer. A change in scheduling order, in the trace's encoding or in the core's
//! behaviour shows up as a reviewable diff. No wall time, path or toolchain version is in a
//! log.

mod common;

use tina_sim::run::{LogRequest, Outcome, run};

/// Header, first `EVENTS` event lines, and the footer of a run's replay log.
fn excerpt(scenario: &str, seed: u64, sets: &[&str]) -> String {
    const EVENTS: usize = 40;
    let mut config = common::config(scenario, seed, sets);
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
    }
    out.extend(lines[footer..].iter());
    out.join("\n") + "\n"
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
