//! Runs that shut down mid-workload (`--shutdown-at`): deterministic; kv drains and loses
//! nothing it acknowledged over seeds 1 to 200, with and without chaos; a store that
//! acknowledges before its fsync is caught by the durability check; a drain cut short
//! fails kv as liveness; every other scenario shuts down without failing; the options are
//! in `--help`, validated (exit 2) and carried by reproduce lines and seed files.

mod common;

use core::time::Duration;
use std::path::PathBuf;

use tina_scenarios::{catalog, find};
use tina_sim::cli::main_with;
use tina_sim::run::{Outcome, run};
use tina_sim::seedfile::{parse, replay_dir};
use tina_sim::world::{ShutdownOutcome, ShutdownPlan};
use tina_sim::{FailureClass, Profile, RunReport, SimError, Simulation};

/// Runs the command line and returns (exit code, stdout and stderr).
fn sim(args: &[&str]) -> (u8, String) {
    let args: Vec<String> =
        std::iter::once("sim").chain(args.iter().copied()).map(String::from).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = main_with(&args, catalog(), &mut out, &mut err);
    (code, String::from_utf8_lossy(&out).into_owned() + &String::from_utf8_lossy(&err))
}

fn drained(report: &RunReport) -> bool {
    let shards = report.shutdown.as_ref().expect("the run shut down");
    shards.iter().all(|shard| matches!(shard.outcome, ShutdownOutcome::Drained(_)))
}

/// kv shutting down at 700 ms (its clients are mid-workload then).
fn kv(profile: Profile) -> Simulation {
    Simulation::of(find("kv").expect("in the catalog"))
        .faults(profile)
        .shutdown_at(Duration::from_millis(700))
}

/// The same seed and shutdown give the same run, byte for byte: twice in one process with
/// `--check-determinism`, and as two separate runs (same trace hash); a shutdown changes
/// the run (another hash than the same seed without one).
#[test]
fn a_shutdown_run_is_deterministic() {
    for scenario in ["kv", "dispatcher", "echo"] {
        for seed in 1..=3 {
            let mut config = common::config(scenario, seed, &[]);
            config.faults = tina_sim::faults::FaultConfig::new(Profile::Chaos, seed);
            config.shutdown = Some(ShutdownPlan { at_ns: 300_000_000, drain_ns: 1_000_000_000 });
            let first = run(&config);
            let second = run(&config);
            assert_eq!(first.outcome, Outcome::Pass, "{scenario} seed {seed}");
            assert_eq!((first.trace, first.events), (second.trace, second.events));
            assert_eq!(first.shutdown, second.shutdown);
            config.check_determinism = true;
            let checked = run(&config);
            assert_eq!(checked.outcome, Outcome::Pass, "{:?}", checked.divergence);
            config.shutdown = None;
            config.check_determinism = false;
            assert_ne!(run(&config).trace, first.trace, "the shutdown is in the trace");
        }
    }
    let (code, out) = sim(&[
        "--seed",
        "7",
        "--scenario",
        "kv",
        "--faults",
        "chaos",
        "--shutdown-at",
        "500ms",
        "--check-determinism",
    ]);
    assert_eq!(code, 0, "{out}");
}

/// kv shuts down mid-workload on seeds 1 to 200 without faults and with chaos: every
/// shard drains (the run ends at its shutdown, well before the deadline) and no checker
/// objects, the durability and linearizability checks included.
#[test]
fn kv_drains_and_loses_nothing_acknowledged_on_seeds_1_to_200() {
    for profile in [Profile::None, Profile::Chaos] {
        let simulation = kv(profile);
        for seed in 1..=200 {
            let report = simulation.run(seed).expect("a valid setup");
            assert_eq!(report.outcome, Outcome::Pass, "{profile:?} seed {seed}");
            let shards = report.shutdown.as_ref().expect("the run shut down");
            assert_eq!(shards.len(), 4, "the store's node and three clients");
            for shard in shards {
                match shard.outcome {
                    ShutdownOutcome::Drained(report) => {
                        assert!(report.ended_at < report.deadline, "{profile:?} seed {seed}");
                    }
                    // A node crashed by chaos before the shutdown stays down.
                    ShutdownOutcome::Down => assert_eq!(profile, Profile::Chaos),
                    outcome => panic!("{profile:?} seed {seed}: {outcome:?}"),
                }
            }
            assert!(report.sim_time_ns < 700_000_000 + 1_000_000_000);
        }
    }
}

/// The echo server drains: its listeners close, each connection answers the echo in hand
/// and closes, the clients close and end; every shard of every node drains, over TCP and
/// UDP, with and without chaos, whenever the shutdown comes.
#[test]
fn echo_drains_on_seeds_1_to_100() {
    for profile in [Profile::None, Profile::Chaos] {
        for at_ms in [50, 300] {
            let simulation = Simulation::of(find("echo").expect("in the catalog"))
                .faults(profile)
                .shutdown_at(Duration::from_millis(at_ms));
            for seed in 1..=100 {
                let report = simulation.run(seed).expect("a valid setup");
                let what = format!("{profile:?} at {at_ms}ms seed {seed}");
                assert_eq!(report.outcome, Outcome::Pass, "{what}");
                let shards = report.shutdown.as_ref().expect("the run shut down");
                for shard in shards {
                    match shard.outcome {
                        ShutdownOutcome::Drained(_) => {}
                        ShutdownOutcome::Down => assert_eq!(profile, Profile::Chaos, "{what}"),
                        outcome => panic!("{what}: {outcome:?}"),
                    }
                }
            }
        }
    }
}

/// A store that acknowledges a put before its fsync, on a disk whose fsyncs mostly fail,
/// leaves acknowledged puts out of the durable log when the run shuts down: the
/// durability check catches it on most seeds. The same seeds with a correct store pass.
#[test]
fn an_acknowledged_put_lost_by_the_shutdown_is_caught() {
    let simulation = |bug: u64| {
        Simulation::of(find("kv").expect("in the catalog"))
            .set("ack_before_fsync", bug)
            .fault("disk_fsync_failure_probability=9/10")
            .fault("safety_time=10s")
            .shutdown_at(Duration::from_millis(500))
    };
    let (buggy, correct) = (simulation(1), simulation(0));
    let mut caught = 0;
    for seed in 1..=30 {
        let report = buggy.run(seed).expect("a valid setup");
        if let Outcome::Fail { class, checker, reason } = &report.outcome {
            assert_eq!((*class, checker.as_str()), (FailureClass::Correctness, "kv.durable"));
            assert!(reason.contains("not in the log's durable contents"), "{reason}");
            caught += 1;
        }
        let report = correct.run(seed).expect("a valid setup");
        assert_eq!(report.outcome, Outcome::Pass, "seed {seed}");
        assert!(drained(&report), "seed {seed}");
    }
    assert!(caught >= 20, "caught on {caught} of 30 seeds");
    let (code, out) = sim(&[
        "--seed",
        "1",
        "--scenario",
        "kv",
        "--faults",
        "none",
        "--set",
        "ack_before_fsync=1",
        "--fault",
        "disk_fsync_failure_probability=9/10",
        "--fault",
        "safety_time=10s",
        "--shutdown-at",
        "500ms",
    ]);
    assert_eq!(code, 10, "{out}");
    assert!(out.contains("violation at event") && out.contains("(kv.durable)"), "{out}");
    assert!(out.contains("--shutdown-at 500ms"), "the reproduce line shuts down too: {out}");
}

/// kv promises to drain: a drain too short for it (zero) tears its isolates down at the
/// deadline, and the run fails as liveness, naming the shards.
#[test]
fn kv_fails_when_its_drain_is_cut_short() {
    let report = kv(Profile::None).shutdown_drain(Duration::ZERO).run(1).expect("a valid setup");
    let Outcome::Fail { class, checker, reason } = &report.outcome else {
        panic!("{:?}", report.outcome)
    };
    assert_eq!((*class, checker.as_str()), (FailureClass::Liveness, "shutdown"));
    assert!(reason.contains("did not finish") && reason.contains("n0/s0"), "{reason}");
    let shards = report.shutdown.expect("the run shut down");
    assert!(matches!(shards[0].outcome, ShutdownOutcome::Forced(r) if r.remaining_isolates > 0));
}

/// Every other scenario shuts down without failing, whether its isolates end on the notice
/// (the dispatcher) or are torn down at the deadline (the others); the run ends with the
/// shutdown either way, and says how each shard's went.
#[test]
fn every_scenario_shuts_down_without_failing() {
    for scenario in catalog() {
        for profile in [Profile::None, Profile::Chaos] {
            for seed in 1..=3 {
                let report = Simulation::of(*scenario)
                    .faults(profile)
                    .shutdown_at(Duration::from_millis(50))
                    .shutdown_drain(Duration::from_millis(200))
                    .run(seed)
                    .expect("a valid setup");
                let name = scenario.name();
                assert_eq!(report.outcome, Outcome::Pass, "{name} {profile:?} seed {seed}");
                let shards = report.shutdown.as_ref().expect("the run shut down");
                assert!(
                    shards.iter().all(|s| !matches!(s.outcome, ShutdownOutcome::Unfinished)),
                    "{name}: {shards:?}"
                );
                assert!(report.sim_time_ns <= 250_000_000 + 1_000_000, "{name}");
                if name == "dispatcher" || name == "kv" {
                    assert!(drained(&report), "{name} {profile:?} seed {seed}: {shards:?}");
                }
            }
        }
    }
}

/// The options are in `--help`; bad values are typed errors with exit 2; the human line,
/// the JSON object and the replay log say how the shutdown went; a plain run's output has
/// no shutdown in it.
#[test]
fn the_options_are_documented_validated_and_reported() {
    let (code, help) = sim(&["--help"]);
    assert_eq!(code, 0);
    assert!(help.contains("--shutdown-at <DURATION>"), "{help}");
    assert!(help.contains("--shutdown-drain <DURATION>"), "{help}");
    let base = ["--seed", "1", "--scenario", "kv", "--faults", "none"];
    for (bad, expected) in [
        (&["--shutdown-at", "soon"][..], "invalid duration \"soon\""),
        (&["--shutdown-at", "100ms", "--shutdown-drain", "1.5s"][..], "invalid duration"),
        (&["--shutdown-drain", "1s"][..], "--shutdown-drain needs --shutdown-at"),
        (&["--shutdown-at", "2h"][..], "is not before --time-max 1h"),
        (&["--shutdown-at", "1s", "--shutdown-drain", "2h"][..], "is too long; use at most 1h"),
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(bad);
        let (code, out) = sim(&args);
        assert_eq!(code, 2, "{bad:?}: {out}");
        assert!(out.contains(expected), "{bad:?}: {out}");
    }
    let sweep = ["sweep", "--progress", "off", "--scenario", "kv", "--seeds", "1..2"];
    let (code, out) = sim(&[&sweep[..], &["--shutdown-at", "1h"]].concat());
    assert_eq!(code, 2, "a sweep checks them too: {out}");

    let (code, out) = sim(&[&base[..], &["--shutdown-at", "300ms", "--json"]].concat());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("shutdown: 4 of 4 shards drained: n0/s0=drained@"), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(out.lines().find(|l| l.starts_with('{')).expect("a JSON line"))
            .expect("JSON");
    assert_eq!(json["shutdown"]["drained"], 4);
    assert_eq!(json["shutdown"]["forced"], 0);
    assert_eq!(json["shutdown"]["shards"][0]["outcome"], "drained");
    let (_, plain) = sim(&[&base[..], &["--json"]].concat());
    assert!(
        !plain.contains("\"shutdown\":") && !plain.contains("shutdown: "),
        "a plain run says nothing of a shutdown: {plain}"
    );

    let mut config = common::config("kv", 1, &[]);
    config.shutdown = Some(ShutdownPlan { at_ns: 300_000_000, drain_ns: 250_000_000 });
    config.log = tina_sim::run::LogRequest::Memory;
    let log = run(&config).log.expect("a log");
    assert!(log.contains("\nshutdown at=300ms drain=250ms\n"), "the header: {log}");
    assert!(log.contains(" n0/* shutdown drain=250000000\n"), "the world's event: {log}");
    assert!(log.contains(" n0/s0 shutdown-begin deadline="), "{log}");
    assert!(log.contains(" n0/s0 shutdown-drained\n"), "{log}");
    assert!(log.contains("\nshutdown n0/s0=drained@"), "the footer: {log}");
}

/// A sweep's failing runs become seed files that carry the shutdown, and replay to the
/// same failure.
#[test]
fn seed_files_carry_the_shutdown() {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("tina-shutdown-seeds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out_dir = dir.to_str().expect("a UTF-8 path");
    let (code, out) = sim(&[
        "sweep",
        "--progress",
        "off",
        "--scenario",
        "kv",
        "--seeds",
        "1..4",
        "--faults",
        "none",
        "--shutdown-at",
        "700ms",
        "--shutdown-drain",
        "0",
        "--out",
        out_dir,
    ]);
    assert_eq!(code, 1, "{out}");
    let replays = replay_dir(&dir, catalog()).expect("the seed files");
    assert_eq!(replays.len(), 3);
    for replay in &replays {
        assert!(replay.matched(), "{}: {}", replay.file, replay.output);
        assert_eq!(replay.code, 11);
        let text = std::fs::read_to_string(dir.join(&replay.file)).expect("the file");
        let file = parse(&replay.file, &text).expect("it parses");
        let flags = file.flags.join(" ");
        assert!(flags.contains("--shutdown-at 700ms --shutdown-drain 0ns"), "{flags}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The test API validates the shutdown before any seed runs.
#[test]
fn the_test_api_rejects_a_shutdown_past_the_time_limit() {
    let simulation =
        kv(Profile::None).time_max(Duration::from_millis(500)).shutdown_drain(Duration::ZERO);
    match simulation.run(1) {
        Err(SimError::Param(error)) => {
            assert!(error.to_string().contains("not before --time-max"), "{error}")
        }
        other => panic!("{other:?}"),
    }
}
