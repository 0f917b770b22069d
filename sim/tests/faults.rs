//! The fault model end to end: shard crashes recover within their budget, then quarantine,
//! then revive; nodes crash and restart from their spec; clocks drift and jump per node;
//! the liveness phase heals; every fault kind fires under `chaos`, every scenario survives
//! it, and a run under faults is as deterministic as one without. Each test asserts the
//! events in the replay log and the counts in the report, not only the verdict.

mod common;

use core::time::Duration;

use tina::{
    Ctx, Effect, Event, GroupConfig, Isolate, Label, Level, Message, ShardId, Strategy, SystemSpec,
    TypeConfig,
};
use tina_checkers::{Observer, Stamp, Verdict, WorldEvent};
use tina_scenarios::{ParamSpec, Params, Scenario, Setup};
use tina_sim::config::Settings;
use tina_sim::faults::{FAULT_KINDS, FaultConfig, FaultCounts, FaultKind, Profile};
use tina_sim::run::{LogRequest, Outcome, RunConfig, RunReport, run};

/// Runs `config` with an in-memory log; returns the report and the log.
fn logged(mut config: RunConfig) -> (RunReport, String) {
    config.log = LogRequest::Memory;
    let mut report = run(&config);
    let log = report.log.take().expect("an in-memory log");
    (report, log)
}

/// Every event line of `log` with its true time and its node's time (the `@` after the
/// place, or the true time when the clocks agree).
fn times(log: &str) -> impl Iterator<Item = (&str, u64, u64)> {
    log.lines().filter(|l| l.as_bytes().first().is_some_and(u8::is_ascii_digit)).map(|line| {
        let mut fields = line.split(' ');
        let time: u64 = fields.nth(1).expect("a time").parse().expect("a number");
        let place = fields.next().expect("a place");
        let local =
            place.split_once('@').map_or(time, |(_, local)| local.parse().expect("a number"));
        (line, time, local)
    })
}

/// Lines of `log` whose event kind is `kind`.
fn count(log: &str, kind: &str) -> usize {
    log.lines().filter(|line| line.split(' ').nth(3) == Some(kind)).count()
}

/// A shard that crashes again and again restarts within its budget, is quarantined past
/// it, and the liveness phase revives it: every step is an event and a count, the crashed
/// isolates exit as `shard-crashed`, and the run still reaches its goal.
#[test]
fn shard_crashes_restart_within_budget_then_quarantine_then_revive() {
    let config = common::config_with_faults(
        "dispatcher",
        3,
        &["jobs=2000", "job_interval=1ms"],
        Profile::None,
        &[
            "shard_crash_every=40ms",
            "shard_restart_max=2",
            "shard_restart_window=1h",
            "safety_time=1s",
        ],
    );
    let (report, log) = logged(config);
    assert_eq!(report.outcome, Outcome::Pass, "{log}");
    let faults = report.faults;
    assert!(faults.of(tina_sim::faults::FaultKind::ShardCrash) >= 3, "{faults:?}");
    assert_eq!(
        count(&log, "shard-crash") as u64,
        faults.of(tina_sim::faults::FaultKind::ShardCrash)
    );
    assert_eq!(count(&log, "shard-restart") as u64, faults.shard_restarts);
    assert_eq!(count(&log, "shard-quarantine") as u64, faults.shard_quarantines);
    assert_eq!(count(&log, "shard-revive") as u64, faults.shard_revivals);
    // Two shards, two restarts each within the window, then quarantine; the liveness
    // phase revives every quarantined shard.
    assert!(faults.shard_quarantines >= 1, "{faults:?}");
    assert_eq!(faults.shard_revivals, faults.shard_quarantines, "{faults:?}");
    assert!(log.contains("kind=shard-crashed"), "crashed isolates exit as shard-crashed");
    assert!(log.contains(" phase phase=liveness"));
}

/// A node crash loses everything in the node and boots it again from its spec: its
/// isolates spawn anew (generations from 1), the checkers forget the node instead of
/// reporting its lost messages, and the run reaches its goal.
#[test]
fn node_crashes_and_restarts_from_its_spec() {
    let config = common::config_with_faults(
        "ping-pong",
        5,
        &["round_trips=300"],
        Profile::None,
        &["node_crash_every=400ms", "safety_time=2s"],
    );
    let (report, log) = logged(config);
    assert_eq!(report.outcome, Outcome::Pass, "{log}");
    let crashes = report.faults.of(tina_sim::faults::FaultKind::NodeCrash);
    assert!(crashes >= 1, "{:?}", report.faults);
    assert_eq!(count(&log, "node-crash") as u64, crashes);
    assert_eq!(count(&log, "node-restart") as u64, report.faults.node_restarts);
    // Each restart boots the two isolates again with generation 1.
    let restart = log.lines().position(|l| l.contains(" node-restart")).expect("a restart");
    let respawns: Vec<&str> = log
        .lines()
        .skip(restart)
        .filter(|l| l.split(' ').nth(3) == Some("spawn"))
        .take(2)
        .collect();
    assert_eq!(respawns.len(), 2, "{log}");
    assert!(respawns.iter().all(|l| l.ends_with("g1")), "{respawns:?}");
}

/// Clocks are per node: offset and drifting from true time, jumping forward, never going
/// back. Timers are judged on the node's clock, so the timers scenario passes under skew and
/// jumps, and every event's node time is at or after the last one of its node.
#[test]
fn node_clocks_skew_drift_and_jump_but_never_go_back() {
    let config = common::config_with_faults(
        "timers",
        9,
        &["isolates=2000", "spread=3s", "shards=2"],
        Profile::None,
        &[
            "clock_offset_max=5s",
            "clock_drift_max=50000",
            "clock_jump_every=200ms",
            "clock_jump_max=300ms",
            "safety_time=2s",
        ],
    );
    let (report, log) = logged(config);
    assert_eq!(report.outcome, Outcome::Pass, "{log}");
    assert_eq!(report.faults.of(tina_sim::faults::FaultKind::ClockSkew), 1);
    assert!(report.faults.of(tina_sim::faults::FaultKind::ClockJump) >= 3);
    let mut last_local = 0u64;
    let mut differs = false;
    for (line, time, local) in times(&log) {
        assert!(local >= last_local, "the node clock went back at {line}");
        last_local = local;
        differs |= local != time;
    }
    assert!(differs, "the clock is skewed");
}

/// Without a budget a failed shard stays quarantined unless something revives it; an
/// operator isolate asking for it (`ctx.revive_shard`) does, again and again, and the run
/// goes on. Shard 1's only isolate fails its init and its root allows no restart, so the
/// shard fails at boot and at every revival.
#[test]
fn an_operator_isolate_revives_a_quarantined_shard() {
    static SCENARIO: Revival = Revival;
    let settings = Settings::new(&SCENARIO, &[]).expect("no parameters");
    let mut config = common::config("ping-pong", 11, &[]);
    config.scenario = tina_sim::run::ScenarioRef::Static(&SCENARIO);
    config.settings = settings;
    config.faults = FaultConfig::new(Profile::None, 11);
    for knob in ["shard_restart_max=0", "liveness_revive=0"] {
        config.faults.set(knob).expect("a valid knob");
    }
    let (report, log) = logged(config);
    assert_eq!(report.outcome, Outcome::Pass, "{log}");
    // The shard fails at boot, then at each of the operator's requests; the run reaches
    // its goal at the 40th, before that revival's failure quarantines the shard again.
    assert_eq!(report.faults.shard_quarantines, 40, "{log}");
    assert_eq!(report.faults.shard_revivals, 40, "{log}");
    assert_eq!(count(&log, "shard-revive"), 40);
    let quarantine =
        log.lines().position(|l| l.contains(" shard-quarantine")).expect("quarantined");
    let revive = log.lines().position(|l| l.contains(" shard-revive")).expect("revived");
    assert!(quarantine < revive);
}

/// Asks for shard 1 to be revived every 50 ms.
#[derive(Debug)]
struct Operator;

impl Isolate for Operator {
    type Args = ();
    fn init(_args: (), ctx: &mut Ctx<'_>) -> (Operator, Effect) {
        let _ = ctx.timer_set(Duration::from_millis(50), 0);
        (Operator, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if message.timer().is_some() {
            ctx.revive_shard(ShardId(1));
            ctx.log(Level::Info, TICK, []);
            let _ = ctx.timer_set(Duration::from_millis(50), 0);
        }
        Effect::Receive
    }
}

/// Fails its init on shard 1.
#[derive(Debug)]
struct Failing;

impl Isolate for Failing {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Failing, Effect) {
        (Failing, Effect::Crash(Label::new("revival: fails at init")))
    }
    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Receive
    }
}

const TICK: Label = Label::new("revival.tick");

/// An operator on shard 0, a failing isolate on shard 1; done once a revival happened and
/// the operator ticked 40 times (two seconds).
#[derive(Debug)]
struct Revival;

struct RevivalGoal {
    revived: bool,
    ticks: u64,
}

impl Observer for RevivalGoal {
    fn name(&self) -> &'static str {
        "revival.goal"
    }
    fn observe_world(&mut self, _stamp: &Stamp, event: &WorldEvent) -> Verdict {
        self.revived |= *event == WorldEvent::ShardRevive;
        Verdict::Continue
    }
    fn observe(&mut self, _stamp: &Stamp, event: &Event) -> Verdict {
        if matches!(event, Event::Log { tag, .. } if *tag == TICK) {
            self.ticks += 1;
        }
        if self.revived && self.ticks >= 40 { Verdict::Done } else { Verdict::Continue }
    }
}

impl Scenario for Revival {
    fn name(&self) -> &'static str {
        "revival"
    }
    fn description(&self) -> &'static str {
        "an operator revives a quarantined shard"
    }
    fn params(&self) -> &'static [ParamSpec] {
        &[]
    }
    fn build(&self, _params: &Params) -> Setup {
        let mut spec = SystemSpec::new(2);
        let operator = spec.register::<Operator>(TypeConfig::new("operator").slots(1));
        let failing = spec.register::<Failing>(TypeConfig::new("failing").slots(1));
        // No restart allowed: the first failure escalates, and the shard fails.
        let root = spec.root(ShardId(1));
        spec.configure(
            root,
            GroupConfig::new(Strategy::OneForOne).intensity(0, Duration::from_secs(1)),
        );
        spec.boot_child(ShardId(0), operator, ());
        spec.boot_child(ShardId(1), failing, ());
        Setup::new(spec)
            .observer(RevivalGoal { revived: false, ticks: 0 })
            .goal(tina_scenarios::Goal::Observed)
    }
}

/// The chaos profile: every scenario reaches its goal with no false alarm, and across
/// these runs every fault kind fires at least once.
#[test]
fn every_scenario_survives_chaos_and_every_fault_kind_fires() {
    let runs: [(&str, &[&str]); 4] = [
        ("ping-pong", &["round_trips=200"]),
        ("dispatcher", &["jobs=200"]),
        ("timers", &["isolates=2000", "spread=3s"]),
        ("bank", &[]),
    ];
    let mut total = FaultCounts::default();
    for (scenario, sets) in runs {
        for seed in 1..=6 {
            let config = common::config_with_faults(scenario, seed, sets, Profile::Chaos, &[]);
            let report = run(&config);
            assert_eq!(
                report.outcome,
                Outcome::Pass,
                "{scenario} seed {seed}: {:?}",
                report.outcome
            );
            for kind in FAULT_KINDS {
                total.injected[kind as usize] += report.faults.of(kind);
            }
        }
    }
    // The disk's and the network's faults need scenarios that use them: `disk_io.rs` and
    // `net_io.rs` prove them.
    let node_kind =
        |kind: &FaultKind| !kind.name().starts_with("disk-") && !kind.name().starts_with("net-");
    for kind in FAULT_KINDS.into_iter().filter(node_kind) {
        assert!(total.of(kind) > 0, "{} never fired: {total:?}", kind.name());
    }
}

/// Faults come from the seed alone: a chaos run gives the same trace twice in one process.
#[test]
fn chaos_runs_are_deterministic() {
    for scenario in ["ping-pong", "dispatcher", "bank"] {
        for seed in [1, 2] {
            let mut config = common::config_with_faults(scenario, seed, &[], Profile::Chaos, &[]);
            config.check_determinism = true;
            let report = run(&config);
            assert!(report.divergence.is_none(), "{scenario} seed {seed}: {:?}", report.divergence);
        }
    }
}

/// A finished run is not a liveness failure: answered calls leave no deadline behind, so
/// the bank's long timeout does not hold time past its last event.
#[test]
fn answered_calls_do_not_hold_time() {
    let mut config = common::config("bank", 1, &["timeout=10s"]);
    config.limits.time_max_ns = 5_000_000_000;
    let report = run(&config);
    assert_eq!(report.outcome, Outcome::Pass);
    assert!(report.sim_time_ns < 5_000_000_000);
}

/// The accounting checker judges runs that end at their goal, not only quiet ones: a
/// message lost on the way is caught on the dispatcher, whose goal is reached mid-run.
#[test]
fn a_lost_message_is_caught_at_the_goal() {
    let plant = tina_sim::plant::find("lose-message").expect("a plant");
    for seed in 1..=5 {
        let mut config = common::config("dispatcher", seed, &["jobs=50"]);
        config.plant = Some(plant);
        let report = run(&config);
        match report.outcome {
            Outcome::Fail { checker, .. } => assert_eq!(checker, "accounting", "seed {seed}"),
            Outcome::Pass => panic!("seed {seed}: the lost message went unnoticed"),
            Outcome::Invalid(problem) => panic!("seed {seed}: {problem}"),
        }
    }
}

/// Under chaos, the trace's true time and the node's clock never go back from one event to
/// the next: world events are stamped where and when the world applies them, like the
/// tick's own events.
#[test]
fn the_trace_never_goes_back_in_time_under_chaos() {
    for scenario in ["ping-pong", "bank"] {
        let config = common::config_with_faults(scenario, 4, &[], Profile::Chaos, &[]);
        let (report, log) = logged(config);
        assert_eq!(report.outcome, Outcome::Pass);
        let (mut last_time, mut last_local) = (0u64, 0u64);
        for (line, time, local) in times(&log) {
            assert!(time >= last_time && local >= last_local, "{scenario}: back in time at {line}");
            (last_time, last_local) = (time, local);
        }
        assert!(log.contains(" delay-tail ") || log.contains(" delay-slow "), "{scenario}");
    }
}
