//! The `sim` command line as a user meets it: output lines, exit codes, JSON, bad input,
//! and a deliberately nondeterministic isolate caught by `--check-determinism`.

use std::sync::atomic::{AtomicU64, Ordering};

use tina::{Ctx, Effect, Event, Isolate, Label, Level, Message, ShardId, SystemSpec, TypeConfig};
use tina_checkers::{Observer, Stamp, Verdict};
use tina_scenarios::{ParamSpec, Params, Scenario, Setup, catalog};
use tina_sim::cli::main_with;

/// Runs the command line and returns (exit code, stdout, stderr).
fn sim(args: &[&str], scenarios: &[&'static dyn Scenario]) -> (u8, String, String) {
    let args: Vec<String> =
        std::iter::once("sim").chain(args.iter().copied()).map(String::from).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = main_with(&args, scenarios, &mut out, &mut err);
    (code, String::from_utf8(out).expect("utf-8"), String::from_utf8(err).expect("utf-8"))
}

fn run(args: &[&str]) -> (u8, String, String) {
    sim(args, catalog())
}

/// The value of `key=` in the `result:` line.
fn field<'a>(output: &'a str, key: &str) -> &'a str {
    let line = output.lines().find(|l| l.starts_with("result:")).expect("a result line");
    let start = line.find(&format!("{key}=")).expect("the field") + key.len() + 1;
    line[start..].split(' ').next().expect("a value")
}

/// `sim --seed 42` passes with the documented first and last lines; the same seed gives the
/// same trace, another seed another trace.
#[test]
fn seed_42_passes_and_reproduces() {
    let (code, out, _) = run(&["--seed", "42"]);
    assert_eq!(code, 0, "{out}");
    let first = out.lines().next().expect("a first line");
    assert!(first.starts_with("seed=42 scenario="), "{first}");
    let last = out.lines().last().expect("a last line");
    assert!(last.starts_with("result: pass events="), "{last}");
    for key in ["events", "sim_time", "wall", "trace"] {
        assert!(!field(&out, key).is_empty());
    }
    let (_, again, _) = run(&["--seed", "0x2a"]);
    assert_eq!(field(&out, "trace"), field(&again, "trace"), "hex and decimal seeds are one seed");
    assert!(again.starts_with("seed=42 "), "seeds print in decimal");
    let scenario = first.split(' ').nth(1).expect("scenario=");
    let name = scenario.trim_start_matches("scenario=");
    let (_, other, _) = run(&["--seed", "43", "--scenario", name]);
    assert_ne!(field(&out, "trace"), field(&other, "trace"));
}

/// Bad input exits 2 with a message that says what is valid.
#[test]
fn bad_input_exits_2() {
    let cases: [(&[&str], &str); 8] = [
        (&["--seed", "forty-two"], "write a u64 in decimal (42) or hexadecimal (0x2a)"),
        (&["--seed", "0x"], "invalid seed"),
        (
            &["--seed", "1", "--scenario", "nope"],
            "valid scenarios: ping-pong, dispatcher, timers, bank",
        ),
        (
            &["--seed", "1", "--scenario", "ping-pong", "--set", "speed=9"],
            "valid parameters: round_trips",
        ),
        (&["--seed", "1", "--set", "round_trips"], "write KEY=VALUE"),
        (
            &["--seed", "1", "--scenario", "ping-pong", "--set", "round_trips=0"],
            "out of range; use 1 to",
        ),
        (&["--seed", "1", "--time-max", "10"], "one of ns, us, ms, s, m, h"),
        (&["--frobnicate"], "unexpected argument '--frobnicate'"),
    ];
    for (args, message) in cases {
        let (code, out, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

/// `--help` documents the exit codes and exits 0.
#[test]
fn help_lists_exit_codes() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for line in [
        "10  correctness",
        "11  liveness",
        "12  crash",
        "13  nondeterminism",
        "--check-determinism",
        "--trace-out <FILE>",
    ] {
        assert!(out.contains(line), "{line}");
    }
}

/// The lines under `causal chain (N events):`, without their indent (notes in parentheses
/// left out); empty without that heading. Checks N.
fn causal_chain(output: &str) -> Vec<String> {
    let mut lines = output.lines().skip_while(|line| !line.starts_with("causal chain ("));
    let Some(heading) = lines.next() else { return Vec::new() };
    let chain: Vec<String> = lines
        .take_while(|line| line.starts_with("  "))
        .map(|line| line.trim_start().to_string())
        .filter(|line| !line.starts_with('('))
        .collect();
    assert_eq!(heading, format!("causal chain ({} events):", chain.len()));
    chain
}

/// The index of the violating event (`violation at event N`).
fn violation_index(output: &str) -> &str {
    let line = output.lines().find(|l| l.starts_with("violation at event ")).expect("a violation");
    line["violation at event ".len()..].split(' ').next().expect("an index")
}

/// The value of `key=` in a replay-log line.
fn log_field<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line.find(&format!(" {key}=")).expect("the field") + key.len() + 2;
    line[start..].split(' ').next().expect("a value")
}

/// A failure ends with the causal chain of its violation, oldest first, in the replay
/// log's line format: it ends at the violating event and holds its cause (the send of a
/// late reply, the setting of an early timer), and `--json` carries the same lines. A
/// violation found at the end of a run, after every event, has no chain.
#[test]
fn failures_show_their_causal_chain() {
    let (code, out, _) = run(&["--seed", "1", "--plant", "late-reply"]);
    assert_eq!(code, 10, "{out}");
    let chain = causal_chain(&out);
    assert!((2..=20).contains(&chain.len()), "{out}");
    let last = chain.last().expect("a link");
    assert!(last.starts_with(&format!("{} ", violation_index(&out))), "{out}");
    assert!(last.contains(" enqueue ") && last.ends_with(" reply"), "{last}");
    let id = log_field(last, "id");
    assert!(chain.iter().any(|l| l.contains(&format!(" send id={id} "))), "its send: {out}");
    let indices: Vec<u64> = chain
        .iter()
        .map(|l| l.split(' ').next().and_then(|i| i.parse().ok()).expect("an index"))
        .collect();
    assert!(indices.windows(2).all(|pair| pair[0] < pair[1]), "oldest first: {out}");
    let at_chain = out.find("causal chain (").expect("a chain");
    assert!(at_chain > out.find("events up to it:").expect("the last events"), "{out}");

    let (_, json, err) = run(&["--seed", "1", "--plant", "late-reply", "--json"]);
    let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(value["causal_chain"], serde_json::json!(causal_chain(&err)));

    let (code, out, _) = run(&["--seed", "1", "--plant", "early-timer"]);
    assert_eq!(code, 10, "{out}");
    let chain = causal_chain(&out);
    let last = chain.last().expect("a link");
    assert!(last.starts_with(&format!("{} ", violation_index(&out))), "{out}");
    assert!(last.contains(" timer-fire "), "{last}");
    let timer = log_field(last, "timer");
    assert!(
        chain.iter().any(|l| l.contains(" timer-set ") && l.contains(&format!(" timer={timer} "))),
        "the timer's setting: {out}"
    );

    let (code, out, _) = run(&["--seed", "1", "--plant", "lose-message"]);
    assert_eq!(code, 10, "{out}");
    assert!(causal_chain(&out).is_empty() && out.contains("events up to it:"), "{out}");
}

/// With `--json`, stdout is exactly one JSON object with the documented keys; `sim list
/// --json` is one object with a `scenarios` array.
#[test]
fn json_output_parses() {
    let (code, out, err) =
        run(&["--seed", "9", "--scenario", "ping-pong", "--set", "round_trips=5", "--json"]);
    assert_eq!(code, 0);
    assert!(err.starts_with("seed=9 "), "human lines go to stderr");
    let value: serde_json::Value = serde_json::from_str(&out).expect("stdout is one JSON value");
    for key in [
        "seed",
        "scenario",
        "parameters",
        "result",
        "class",
        "events",
        "sim_time_ns",
        "wall_ns",
        "trace",
        "counters",
    ] {
        assert!(value.get(key).is_some(), "{key}");
    }
    assert_eq!(value["result"], "pass");
    assert_eq!(value["parameters"]["round_trips"], "5");
    assert_eq!(value["counters"]["delivered"], 10);

    let (code, out, _) = run(&["list", "--json"]);
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&out).expect("one JSON value");
    let names: Vec<&str> =
        list["scenarios"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    let catalog_names: Vec<&str> = catalog().iter().map(|s| s.name()).collect();
    assert_eq!(names, catalog_names);
    assert_eq!(list["scenarios"][0]["parameters"][0]["default"], 1000);
}

/// Limits end a run as a liveness failure (exit 11) with a reproduce line.
#[test]
fn limits_are_liveness_failures() {
    let (code, out, _) = run(&["--seed", "5", "--scenario", "ping-pong", "--events-max", "50"]);
    assert_eq!(code, 11, "{out}");
    assert!(out.contains(
        "reproduce: cargo run --release --bin sim -- --seed 5 --scenario ping-pong --faults default --events-max 50"
    ));
    assert!(out.lines().last().unwrap().starts_with("result: fail (liveness) "), "{out}");
    // The limit is checked between ticks: the tick that crosses it finishes.
    let events: u64 = field(&out, "events").parse().expect("a count");
    assert!((50..60).contains(&events), "{out}");
    let (code, out, _) = run(&["--seed", "5", "--scenario", "dispatcher", "--time-max", "100ms"]);
    assert_eq!(code, 11, "{out}");
    assert!(out.contains("time-max (100ms) reached before the goal"), "{out}");
}

/// Kept across runs in one process: exactly the kind of state the determinism check exists
/// to catch.
static RUNS: AtomicU64 = AtomicU64::new(0);

const SEEN: Label = Label::new("leaky.seen");

/// Logs how many times any `Leaky` was built in this process.
#[derive(Debug)]
struct Leaky;

impl Isolate for Leaky {
    type Args = ();
    fn init(_args: (), ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let runs = RUNS.fetch_add(1, Ordering::Relaxed);
        ctx.log(Level::Info, SEEN, [runs]);
        (Leaky, Effect::Done)
    }
    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Receive
    }
}

struct LeakyGoal;

impl Observer for LeakyGoal {
    fn name(&self) -> &'static str {
        "leaky.goal"
    }
    fn observe(&mut self, _stamp: &Stamp, event: &Event) -> Verdict {
        if matches!(event, Event::Exit { .. }) { Verdict::Done } else { Verdict::Continue }
    }
}

struct LeakyScenario;

impl Scenario for LeakyScenario {
    fn name(&self) -> &'static str {
        "leaky"
    }
    fn description(&self) -> &'static str {
        "an isolate that keeps a counter in a static"
    }
    fn params(&self) -> &'static [ParamSpec] {
        &[]
    }
    fn build(&self, _params: &Params) -> Setup {
        let mut spec = SystemSpec::new(1);
        let leaky = spec.register::<Leaky>(TypeConfig::new("leaky").slots(1));
        spec.boot_child(ShardId(0), leaky, ());
        Setup::new(spec).observer(LeakyGoal).goal(tina_scenarios::Goal::Observed)
    }
}

/// A nondeterministic isolate passes a single run but fails `--check-determinism` with exit
/// 13, printing the index and both versions of the first diverging event.
#[test]
fn nondeterminism_is_reported_with_exit_13() {
    let scenarios: &[&'static dyn Scenario] = &[&LeakyScenario];
    let (code, _, _) = sim(&["--seed", "1", "--scenario", "leaky", "--faults", "none"], scenarios);
    assert_eq!(code, 0, "one run cannot see the leak");
    let (code, out, _) = sim(
        &["--seed", "1", "--scenario", "leaky", "--faults", "none", "--check-determinism"],
        scenarios,
    );
    assert_eq!(code, 13, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("first divergence at event 1:"))
        .expect("the divergence");
    assert!(
        lines[at + 1].starts_with("  run 1: 1 0 n0/s0 log ")
            && lines[at + 1].contains("tag=leaky.seen"),
        "{out}"
    );
    assert!(lines[at + 2].starts_with("  run 2: 1 0 n0/s0 log "), "{out}");
    assert_ne!(lines[at + 1][9..], lines[at + 2][9..], "the two versions differ");
    assert!(out.contains("--check-determinism"), "the reproduce line keeps the flag");
    assert!(lines.last().unwrap().starts_with("result: fail (nondeterminism)"), "{out}");
}

/// A bare `--seed` runs a swarm configuration and says which fault kinds the seed turned
/// on; `--scenario` alone runs the default profile; `--faults` names any profile.
#[test]
fn the_fault_profile_is_printed() {
    let (code, out, _) = run(&["--seed", "42"]);
    assert_eq!(code, 0, "{out}");
    let faults = out.lines().nth(1).expect("a second line");
    assert!(faults.starts_with("faults: swarm "), "{faults}");
    let (_, out, _) = run(&["--seed", "1", "--scenario", "ping-pong", "--set", "round_trips=20"]);
    assert!(out.lines().nth(1).is_some_and(|l| l.starts_with("faults: default ")), "{out}");
    let (_, out, _) = run(&[
        "--seed",
        "1",
        "--scenario",
        "ping-pong",
        "--set",
        "round_trips=20",
        "--faults",
        "none",
    ]);
    assert!(out.lines().nth(1) == Some("faults: none off"), "{out}");
}

/// Bad fault input exits 2 naming what is valid: an unknown profile or knob, a probability
/// above one, an inverted range, and a configuration whose liveness phase could never end.
#[test]
fn bad_fault_input_exits_2() {
    let base = ["--seed", "1", "--scenario", "bank"];
    let cases: [(&[&str], &str); 6] = [
        (&["--faults", "mild"], "valid profiles: none, default, chaos, swarm"),
        (&["--fault", "shard_crash_often=1s"], "valid knobs: delay_tail_probability"),
        (&["--fault", "init_failure_probability=1.5"], "a probability from 0 to 1"),
        (&["--fault", "delay_slow_min=1s"], "delay_slow_min is above delay_slow_max"),
        (&["--fault", "shard_crash_every"], "write NAME=VALUE"),
        (
            &[
                "--faults",
                "chaos",
                "--fault",
                "shard_restart_max=0",
                "--fault",
                "liveness_revive=0",
            ],
            "can never pass",
        ),
    ];
    for (args, expected) in cases {
        let all: Vec<&str> = base.iter().chain(args).copied().collect();
        let (code, out, err) = run(&all);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

/// `--json` has one count per fault kind, every kind present; `sim list --json` names every
/// fault kind and every knob with its value per profile; a run that injected anything prints
/// a `counters:` line before its result.
#[test]
fn faults_in_json_and_counters() {
    let (code, out, err) = run(&[
        "--seed",
        "2",
        "--scenario",
        "dispatcher",
        "--faults",
        "chaos",
        "--set",
        "jobs=100",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let faults = summary["faults"].as_object().expect("a faults object");
    for kind in tina_sim::faults::FAULT_KINDS {
        assert!(
            faults.get(kind.name()).is_some_and(|v| v.is_u64()),
            "{} in {faults:?}",
            kind.name()
        );
    }
    assert_eq!(summary["fault_profile"], "chaos");
    let counters = err.lines().find(|l| l.starts_with("counters: ")).expect("a counters line");
    assert!(counters.contains("fault."), "{counters}");
    let (code, out, _) = run(&["list", "--json"]);
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let kinds = list["faults"].as_array().expect("a faults array");
    assert_eq!(kinds.len(), tina_sim::faults::FAULT_KINDS.len());
    let knobs = list["knobs"].as_array().expect("a knobs array");
    assert_eq!(knobs.len(), tina_sim::faults::KNOBS.len());
    for knob in knobs {
        for profile in ["none", "default", "chaos", "swarm"] {
            assert!(knob[profile].is_string(), "{profile} in {knob}");
        }
    }
}

/// The benchmark shapes of `echo` (bench/compare-sim.sh): UDP only and TCP only, 64-byte
/// messages, one client against one server shard; the largest packets under chaos; and a
/// size outside the bounds refused with what to use.
#[test]
fn echo_runs_udp_only_tcp_only_and_any_packet_size() {
    let shape = |udp: &str, size: &str| {
        let (udp, size) = (format!("udp={udp}"), format!("size={size}"));
        let args = [
            "--seed",
            "1",
            "--scenario",
            "echo",
            "--faults",
            "none",
            "--set",
            "clients=1",
            "--set",
            "server_shards=1",
            "--set",
            "chaos=0",
            "--set",
            "round_trips=300",
            "--set",
        ];
        let mut args: Vec<&str> = args.to_vec();
        args.extend([udp.as_str(), "--set", size.as_str()]);
        let (code, out, err) = run(&args);
        assert_eq!(code, 0, "udp={udp} size={size}: {out}{err}");
    };
    shape("2", "64");
    shape("0", "64");
    for (udp, seed) in [("0", "3"), ("1", "4"), ("2", "5")] {
        let args = ["--seed", seed, "--scenario", "echo", "--faults", "chaos", "--set"];
        let mut args: Vec<&str> = args.to_vec();
        let udp = format!("udp={udp}");
        args.extend([udp.as_str(), "--set", "size=256"]);
        let (code, out, err) = run(&args);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
    }
    let (code, _, err) = run(&["--seed", "1", "--scenario", "echo", "--set", "size=8"]);
    assert_eq!(code, 2);
    assert!(err.contains("size=8 is out of range; use 16 to 256"), "{err}");
}
