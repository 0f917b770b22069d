//! `Simulation`, the test API, as a user's crate sees it: the default goal, goals of the
//! user's own, bad input as typed errors, the drop and crash options, world plants in a
//! user's setup, and `check` over many seeds.

use core::time::Duration;

use tina::{Ctx, Effect, Handle, Isolate, Message, ShardId, SystemSpec, TypeConfig};
use tina_sim::{
    CheckFailure, FailureClass, Goal, Outcome, ParamKind, ParamSpec, Setup, SetupError, SimError,
    Simulation,
};

tina::payload! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    struct Number {
        value: u64,
    }
}

tina::spawn_args! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    struct SenderArgs {
        to: Handle,
        count: u64,
    }
}

/// Sends `count` numbers, then finishes on the next tick.
struct Sender;

impl Isolate for Sender {
    type Args = SenderArgs;
    fn init(args: SenderArgs, ctx: &mut Ctx<'_>) -> (Sender, Effect) {
        for value in 0..args.count {
            let _ = ctx.send(args.to, &Number { value });
        }
        (Sender, Effect::Yield)
    }
    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Done
    }
}

/// Finishes once it has `expect` numbers; asserts they come in order.
struct Counter {
    expect: u64,
    next: u64,
}

impl Isolate for Counter {
    type Args = u64;
    fn init(expect: u64, _ctx: &mut Ctx<'_>) -> (Counter, Effect) {
        (Counter { expect, next: 0 }, Effect::Receive)
    }
    fn handle(&mut self, message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        if let Ok(number) = message.decode::<Number>() {
            assert_eq!(number.value, self.next, "numbers arrive in order");
            self.next += 1;
        }
        if self.next == self.expect { Effect::Done } else { Effect::Receive }
    }
}

/// A sender on shard 0 and a counter on shard 1 expecting `expect` of `count` numbers,
/// with a mailbox of `mailbox`.
fn numbers(count: u64, expect: u64, mailbox: u32) -> Setup {
    let mut spec = SystemSpec::new(2);
    spec.register_payload::<Number>();
    let counter = spec.register::<Counter>(TypeConfig::new("counter").slots(1).mailbox(mailbox));
    let sender = spec.register::<Sender>(TypeConfig::new("sender").slots(1));
    let counter = spec.boot_child(ShardId(1), counter, expect);
    spec.boot_child(ShardId(0), sender, SenderArgs { to: counter, count });
    Setup::new(spec)
}

/// A run that goes quiet with every isolate finished passes with no goal declared.
#[test]
fn the_default_goal_is_every_isolate_finished() {
    let report = Simulation::new("numbers", |_| numbers(50, 50, 64)).run(1).expect("valid");
    assert!(report.passed(), "{:?}", report.outcome);
    assert_eq!(report.class(), None);
}

/// A run that goes quiet with an isolate still waiting fails as liveness, naming it.
#[test]
fn the_default_goal_names_what_is_still_alive() {
    let report = Simulation::new("numbers", |_| numbers(50, 51, 64)).run(1).expect("valid");
    let Outcome::Fail { class, reason, .. } = &report.outcome else { panic!("passed") };
    assert_eq!(*class, FailureClass::Liveness);
    assert!(reason.contains("1 isolates alive (1 counter on n0/s1)"), "{reason}");
}

/// A goal over the end state, and the setup's data captured by the closure.
#[test]
fn an_end_state_goal_and_captured_data() {
    let expect = 30;
    let waiting = Simulation::new("numbers", move |_| {
        // The counter waits for one more than it gets; the goal accepts it still alive.
        numbers(expect, expect + 1, 64).goal(Goal::EndState(Box::new(|view| {
            view.live_isolates() == 1 && view.nothing_in_flight()
        })))
    });
    assert!(waiting.run(2).expect("valid").passed());
    let strict = Simulation::new("numbers", move |_| {
        numbers(expect, expect + 1, 64)
            .goal(Goal::EndState(Box::new(|view| view.live_isolates() == 0)))
    });
    let report = strict.run(2).expect("valid");
    assert_eq!(report.class(), Some(FailureClass::Liveness));
}

/// Typed parameters: declared with bounds, set by name, read by the setup; an unknown
/// name or a value out of range is an error that says what to fix.
#[test]
fn typed_parameters() {
    const PARAMS: &[ParamSpec] = &[
        ParamSpec {
            name: "count",
            kind: ParamKind::Count,
            default: 10,
            min: 1,
            max: 1_000,
            description: "numbers to send",
        },
        ParamSpec {
            name: "pause",
            kind: ParamKind::Duration,
            default: 0,
            min: 0,
            max: 1_000_000_000,
            description: "unused here",
        },
    ];
    let simulation = Simulation::with_params("numbers", PARAMS, |params| {
        let _ = params.duration("pause");
        numbers(params.get("count"), params.get("count"), 256)
    });
    let report = simulation.clone().set("count", 200).set("pause", Duration::from_millis(5)).run(1);
    assert!(report.expect("valid").passed());
    let error = simulation.clone().set("colour", 1).run(1).expect_err("unknown");
    assert!(matches!(error, SimError::Param(_)), "{error:?}");
    assert!(error.to_string().contains("colour"), "{error}");
    let error = simulation.set("count", 5_000).run(1).expect_err("out of range");
    assert!(error.to_string().contains("count"), "{error}");
}

/// A setup that cannot run is a typed error with what to fix, never a panic.
#[test]
fn bad_setups_are_typed_errors() {
    let empty = Simulation::new("empty", |_| Setup::nodes(Vec::new()));
    assert_eq!(empty.run(1).expect_err("no node"), SimError::Setup(SetupError::NoNode));

    let idle = Simulation::new("idle", |_| Setup::new(SystemSpec::new(1)));
    let error = idle.run(1).expect_err("no isolate");
    assert_eq!(error, SimError::Setup(SetupError::NoIsolate { node: 0 }));
    assert!(error.to_string().contains("spec.boot_child"), "{error}");

    let unobserved = Simulation::new("unobserved", |_| numbers(5, 5, 8).goal(Goal::Observed));
    let error = unobserved.run(1).expect_err("no observer");
    assert_eq!(error, SimError::Setup(SetupError::NoObserver));
    // check() says so before any seed runs.
    let CheckFailure::Input(error) = unobserved.seeds(5).try_check().expect_err("bad input") else {
        panic!("a seed ran");
    };
    assert_eq!(error, SimError::Setup(SetupError::NoObserver));

    let error = Simulation::new("numbers", |_| numbers(5, 5, 8))
        .fault("no_such_knob=1")
        .run(1)
        .expect_err("unknown knob");
    assert!(matches!(error, SimError::Faults(_)), "{error:?}");
    let error = Simulation::new("numbers", |_| numbers(5, 5, 8)).plant("nope").expect_err("plant");
    assert!(error.to_string().contains("unknown plant"), "{error}");
}

/// A full mailbox drops silently as far as the goal goes; with `fail_on_drop` the run fails
/// as correctness at the first drop, naming it.
#[test]
fn fail_on_drop_names_the_first_drop() {
    let shedding = Simulation::new("numbers", |_| numbers(100, 40, 4));
    let report = shedding.run(1).expect("valid");
    assert!(report.total_counters().iter().any(|(name, n)| *name == "mailbox_full" && *n > 0));
    let report = shedding.fail_on_drop(true).run(1).expect("valid");
    let Outcome::Fail { class, checker, reason } = &report.outcome else { panic!("passed") };
    assert_eq!((*class, checker.as_str()), (FailureClass::Correctness, "drops"));
    assert!(reason.contains("(mailbox-full), and this run allows no drop"), "{reason}");
}

/// An assertion in an isolate is a contained crash; with `fail_on_crash` it fails the run.
#[test]
fn fail_on_crash_catches_an_isolate_assertion() {
    // The sender's numbers overflow the counter's mailbox, so the counter sees a gap.
    let gap = Simulation::new("numbers", |_| numbers(100, 100, 4)).fail_on_crash(true);
    let report = gap.run(1).expect("valid");
    let Outcome::Fail { class, checker, reason } = &report.outcome else { panic!("passed") };
    assert_eq!((*class, checker.as_str()), (FailureClass::Correctness, "crashes"));
    assert!(reason.contains("ended crashed"), "{reason}");
}

/// A crash the fault model injects is not the isolate's: `fail_on_crash` lets it pass, so
/// a chaos run of a crash-tolerant scenario passes with the option on.
#[test]
fn fail_on_crash_excuses_injected_crashes() {
    let ping_pong = tina_scenarios::find("ping-pong").expect("in the catalog");
    let simulation = Simulation::of(ping_pong).faults(tina_sim::Profile::Chaos).fail_on_crash(true);
    let mut injected = 0;
    for seed in 1..=5 {
        let report = simulation.run(seed).expect("valid");
        assert!(report.passed(), "seed {seed}: {:?}", report.outcome);
        injected += report.faults.of(tina_sim::faults::FaultKind::IsolateCrash)
            + report.faults.of(tina_sim::faults::FaultKind::InitFailure);
    }
    assert!(injected > 0, "chaos injected no isolate crash in 5 seeds");
}

/// A world plant (a bug in the simulated transport) runs with the user's setup and the
/// structural checkers catch it.
#[test]
fn a_world_plant_is_caught_in_a_user_setup() {
    let simulation = Simulation::new("numbers", |_| numbers(50, 50, 64));
    for (plant, checker) in [("lose-message", "accounting"), ("duplicate-delivery", "accounting")] {
        let report = simulation.clone().plant(plant).expect("a world plant").run(1).expect("valid");
        let Outcome::Fail { checker: caught, .. } = &report.outcome else {
            panic!("{plant} went unnoticed");
        };
        assert_eq!(caught, checker, "{plant}");
    }
    let error = simulation.plant("bank-no-dedup").expect_err("a scenario plant");
    assert!(error.to_string().contains("not a world or trace plant"), "{error}");
}

/// `check` runs every seed and reports the smallest failing one with its log and a
/// reproduce line; a run is the same whichever thread ran it.
#[test]
fn check_reports_the_smallest_failing_seed() {
    let summary = Simulation::new("numbers", |_| numbers(20, 20, 64)).seeds(40).check();
    assert_eq!(summary.seeds, 40);

    // Fails on every seed: the counter waits for one number too many.
    let failing = Simulation::new("numbers", |_| numbers(20, 21, 64)).seeds(40);
    let CheckFailure::Seed(failure) = failing.try_check().expect_err("fails") else {
        panic!("bad input");
    };
    assert_eq!((failure.seed, failure.failed, failure.seeds), (1, 40, 40));
    assert_eq!(failure.report.trace, failing.run(1).expect("valid").trace);
    let text = failure.to_string();
    assert!(text.contains("result: fail (liveness) goal: the system went quiet"), "{text}");
    assert!(
        text.contains(
            "reproduce: TINA_SEED=1 cargo test -p tina-sim --test simulation check_reports_the_smallest_failing_seed -- --exact"
        ),
        "{text}"
    );
    let log = failure.log.as_ref().expect("a log");
    assert!(log.ends_with("tina/check_reports_the_smallest_failing_seed-seed-1.log"), "{log:?}");
    let written = std::fs::read_to_string(log).expect("the log");
    assert!(written.contains(&format!("{:016x}", failure.report.trace)));
}

/// The same seed gives the same run, and the report's log is kept when asked.
#[test]
fn runs_are_deterministic_and_keep_their_log() {
    let simulation = Simulation::new("numbers", |_| numbers(30, 30, 8)).keep_log(true);
    let (first, second) = (simulation.run(9).expect("valid"), simulation.run(9).expect("valid"));
    assert_eq!(first.trace, second.trace);
    assert_eq!(first.log, second.log);
    assert!(first.log.as_deref().is_some_and(|log| log.contains("scenario=numbers")));
    assert_ne!(simulation.run(10).expect("valid").trace, first.trace);
}
