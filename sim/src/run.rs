//! Running a scenario from a seed: boot the world, run it to a verdict or a limit, classify
//! the result, write the replay log, and, on request, run the seed again and compare.
//!
//! This module is what the `sim` binary and the tests call. It reads no clock and no
//! environment; the binary measures wall time around it.

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use std::sync::Arc;
use tina::{Counters, ShardFailure};
use tina_checkers::{FailureClass, Verdict};

use tina_checkers::EndView;
use tina_scenarios::{Goal, Scenario, SetupError};

use crate::chain::CausalChain;
use crate::chrome::ChromeTrace;
use crate::config::Settings;
use crate::faults::{FaultConfig, FaultCounts};
use crate::plant::{Bug, Mutator, Plant};
use crate::trace::{Divergence, LogOut, Names, Sink, Tape};
use crate::world::{
    Ending, Limits, ShardCounters, ShardShutdown, ShutdownOutcome, ShutdownPlan, World,
};

/// Where the replay log goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogRequest {
    /// No log: no text is formatted.
    None,
    /// Kept in memory and returned in the report.
    Memory,
    /// Written to a file.
    File(PathBuf),
}

/// A scenario to run: one of a catalog (a `'static` value), or one built at run time and
/// shared (a test's closure that captures its data).
#[derive(Clone)]
pub enum ScenarioRef {
    /// A catalog's scenario.
    Static(&'static dyn Scenario),
    /// A scenario owned here.
    Shared(Arc<dyn Scenario>),
}

impl core::ops::Deref for ScenarioRef {
    type Target = dyn Scenario;

    fn deref(&self) -> &(dyn Scenario + 'static) {
        match self {
            ScenarioRef::Static(scenario) => *scenario,
            ScenarioRef::Shared(scenario) => scenario.as_ref(),
        }
    }
}

impl From<&'static dyn Scenario> for ScenarioRef {
    fn from(scenario: &'static dyn Scenario) -> ScenarioRef {
        ScenarioRef::Static(scenario)
    }
}

impl core::fmt::Debug for ScenarioRef {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// One run to perform.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The root seed.
    pub seed: u64,
    /// The scenario.
    pub scenario: ScenarioRef,
    /// Its parameters and the simulator's.
    pub settings: Settings,
    /// When to give up.
    pub limits: Limits,
    /// Where the replay log goes.
    pub log: LogRequest,
    /// Where the Chrome trace goes (`--trace-out`), if anywhere.
    pub trace_out: Option<PathBuf>,
    /// Run the seed twice and compare every event.
    pub check_determinism: bool,
    /// A planted bug (its scenario settings are already in `settings`).
    pub plant: Option<&'static Plant>,
    /// Run the structural checkers (on unless their cost is being measured).
    pub checkers: bool,
    /// The faults to inject.
    pub faults: FaultConfig,
    /// Any dropped message fails the run (for protocols that promise no shedding).
    pub fail_on_drop: bool,
    /// Any isolate crash (or failed init) fails the run (for systems where a crash is a bug).
    pub fail_on_crash: bool,
    /// Shut the run down gracefully (`--shutdown-at`, `--shutdown-drain`): the run then ends
    /// with its shutdown, not at its goal (see `classify`).
    pub shutdown: Option<ShutdownPlan>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The scenario reached its goal and no property broke.
    Pass,
    /// It failed.
    Fail {
        /// The class (it decides the exit code).
        class: FailureClass,
        /// The observer that noticed, or `limit`, `quiescence`, `panic`, `determinism`.
        checker: String,
        /// One line.
        reason: String,
    },
    /// It could not start: the scenario's setup is unusable (no isolate, a goal nothing can
    /// declare). Bad input, not a failure of the system under test.
    Invalid(SetupError),
}

/// Everything a run produced.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// Pass or fail.
    pub outcome: Outcome,
    /// Trace events.
    pub events: u64,
    /// Virtual time at the end, in nanoseconds.
    pub sim_time_ns: u64,
    /// The trace hash.
    pub trace: u64,
    /// Each shard's counters, summed over its incarnations.
    pub counters: Vec<ShardCounters>,
    /// What the faults did.
    pub faults: FaultCounts,
    /// The `ctx.buggify` sites active in the run.
    pub buggify_sites: Vec<&'static str>,
    /// Shard failures (root escalations).
    pub shard_failures: Vec<ShardFailure>,
    /// Where a determinism check found the runs differ.
    pub divergence: Option<Divergence>,
    /// The replay log, for `LogRequest::Memory`.
    pub log: Option<String>,
    /// The index of the event at which a checker found a violation.
    pub violation_index: Option<u64>,
    /// Replay-log lines of the events up to and including the violation.
    pub last_events: Vec<String>,
    /// The chain of causes that led to the violating event, oldest first.
    pub causal_chain: CausalChain,
    /// How each shard's shutdown went, for a run that shut down (`None` otherwise, or when
    /// the run ended before its shutdown began).
    pub shutdown: Option<Vec<ShardShutdown>>,
}

/// Events shown before a violation.
pub const LAST_EVENTS: u64 = 12;

impl RunReport {
    /// Every shard's counters summed.
    pub fn total_counters(&self) -> Vec<(&'static str, u64)> {
        let mut total: Vec<(&'static str, u64)> = Counters::default().entries().to_vec();
        for shard in &self.counters {
            for (sum, (_, value)) in total.iter_mut().zip(&shard.entries) {
                sum.1 += value;
            }
        }
        total
    }

    /// The counts the `counters:` line shows: drops by reason, crashes, restarts and
    /// escalations, and every fault and recovery step, each only if non-zero.
    pub fn notable_counters(&self) -> Vec<(String, u64)> {
        const NOTABLE: [&str; 14] = [
            "mailbox_full",
            "pool_exhausted",
            "stale_handle",
            "ring_full",
            "dropped_on_exit",
            "late_replies",
            "shard_down",
            "spawn_failed",
            "crashes",
            "init_failures",
            "panics",
            "restarts",
            "escalations",
            "shard_failures",
        ];
        let mut notable: Vec<(String, u64)> = self
            .total_counters()
            .into_iter()
            .filter(|(name, value)| *value > 0 && NOTABLE.contains(name))
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        notable.extend(
            self.faults
                .entries()
                .into_iter()
                .filter(|(_, value)| *value > 0)
                .map(|(name, value)| (format!("fault.{name}"), value)),
        );
        notable.extend(
            self.faults
                .recovery()
                .into_iter()
                .filter(|(_, value)| *value > 0)
                .map(|(name, value)| (format!("recovery.{name}"), value)),
        );
        notable
    }
}

/// Runs `config`: once, or twice with a comparison when `check_determinism` is set. A panic
/// that escapes the world (a broken core invariant) is reported as class crash.
pub fn run(config: &RunConfig) -> RunReport {
    let mut report = run_checked(config);
    if let Some(index) = report.violation_index {
        let (lines, chain) = replay_failure(config, index);
        report.last_events = lines;
        report.causal_chain = chain;
    }
    report
}

/// What a run writes besides its report.
#[derive(Clone, Copy, Debug)]
struct Outputs<'a> {
    log: &'a LogRequest,
    trace_out: Option<&'a Path>,
    /// Keep the last events and their causes, for the violation's causal chain.
    causes: bool,
}

impl Outputs<'_> {
    /// Nothing but the report.
    const NONE: Outputs<'static> =
        Outputs { log: &LogRequest::None, trace_out: None, causes: false };
}

/// The replay-log lines of the events up to `index` and the causal chain of the event at
/// `index`, from a second run of the same seed (deterministic, so it sees the same events;
/// nothing is formatted or indexed on passing runs).
fn replay_failure(config: &RunConfig, index: u64) -> (Vec<String>, CausalChain) {
    let tape =
        Tape::Window { from: index.saturating_sub(LAST_EVENTS - 1), to: index, lines: Vec::new() };
    let outputs = Outputs { causes: true, ..Outputs::NONE };
    match run_once(config, outputs, tape) {
        (report, Tape::Window { lines, .. }) => (lines, report.causal_chain),
        (report, _) => (Vec::new(), report.causal_chain),
    }
}

fn run_checked(config: &RunConfig) -> RunReport {
    let outputs =
        Outputs { log: &config.log, trace_out: config.trace_out.as_deref(), causes: false };
    if !config.check_determinism {
        return run_once(config, outputs, Tape::Off).0;
    }
    let (mut first, tape) = run_once(config, outputs, Tape::Record(Vec::new()));
    if matches!(first.outcome, Outcome::Fail { class: FailureClass::Crash, .. }) {
        return first;
    }
    let Tape::Record(recording) = tape else { unreachable!("the first run records") };
    let (second, _) = run_once(config, Outputs::NONE, Tape::Compare(recording));
    if let Some(divergence) = second.divergence.clone() {
        first.outcome = Outcome::Fail {
            class: FailureClass::Nondeterminism,
            checker: "determinism".to_string(),
            reason: format!("the second run differs from event {} on", divergence.index),
        };
        first.divergence = Some(divergence);
    }
    first
}

fn run_once(config: &RunConfig, outputs: Outputs<'_>, tape: Tape) -> (RunReport, Tape) {
    let attempt = panic::catch_unwind(AssertUnwindSafe(|| run_world(config, outputs, tape)));
    attempt.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic with a non-string payload".to_string());
        let report = RunReport {
            outcome: Outcome::Fail {
                class: FailureClass::Crash,
                checker: "panic".to_string(),
                reason: message,
            },
            events: 0,
            sim_time_ns: 0,
            trace: 0,
            counters: Vec::new(),
            faults: FaultCounts::default(),
            buggify_sites: Vec::new(),
            shard_failures: Vec::new(),
            divergence: None,
            log: None,
            violation_index: None,
            last_events: Vec::new(),
            causal_chain: CausalChain::default(),
            shutdown: None,
        };
        (report, Tape::Off)
    })
}

fn open_log(request: &LogRequest) -> Result<Option<LogOut>, String> {
    match request {
        LogRequest::None => Ok(None),
        LogRequest::Memory => Ok(Some(LogOut::memory())),
        LogRequest::File(path) => LogOut::file(path).map(Some),
    }
}

/// The replay log's header: what the run was, and what only the run itself could tell
/// (the buggify sites it activated). Written ahead of the events when the log is finished.
fn header(config: &RunConfig, report: &RunReport) -> Vec<String> {
    let mut lines = vec![
        "# tina replay log v2".to_string(),
        format!("seed={}", config.seed),
        format!("scenario={}", config.scenario.name()),
    ];
    lines.extend(
        config.settings.describe(&*config.scenario).into_iter().map(|p| format!("param {p}")),
    );
    lines.push(format!("faults={}", config.faults.profile.name()));
    if !config.faults.swarm.is_empty() {
        let picks: Vec<String> = config
            .faults
            .swarm
            .iter()
            .map(|(kind, scale)| format!("{}{scale}", kind.name()))
            .collect();
        lines.push(format!("swarm {}", picks.join(" ")));
    }
    lines.extend(config.faults.describe().into_iter().map(|knob| format!("fault {knob}")));
    let sites = if report.buggify_sites.is_empty() {
        "-".to_string()
    } else {
        report.buggify_sites.join(",")
    };
    lines.push(format!("buggify {sites}"));
    if let Some(plan) = config.shutdown {
        lines.push(format!(
            "shutdown at={} drain={}",
            crate::config::format_duration(plan.at_ns),
            crate::config::format_duration(plan.drain_ns)
        ));
    }
    lines.push("# index time_ns node/shard[@node_time_ns] kind fields".to_string());
    lines
}

fn run_world(config: &RunConfig, outputs: Outputs<'_>, tape: Tape) -> (RunReport, Tape) {
    let setup = config.scenario.build(&config.settings.scenario);
    if let Some(problem) = setup.problem() {
        return (invalid(problem), Tape::Off);
    }
    let tina_scenarios::Setup { nodes, mut observers, goal, drains_on_shutdown } = setup;
    if config.fail_on_drop {
        observers.push(Box::new(tina_checkers::drops::NoDrops));
    }
    if config.fail_on_crash {
        observers.push(Box::new(tina_checkers::crashes::NoCrashes::default()));
    }
    let names = Names::new(&nodes);
    // For a goal that fails: which isolate types are still alive.
    let type_names: Vec<Vec<&'static str>> = nodes
        .iter()
        .map(|spec| (0..spec.type_count()).filter_map(|at| spec.type_name(at)).collect())
        .collect();
    let mut world_config = config.settings.world();
    let chrome = match outputs.trace_out {
        None => None,
        Some(path) => {
            let about = chrome_about(config, &world_config);
            let cost = world_config.dispatch_cost_ns;
            match ChromeTrace::create(path, &nodes, names.clone(), cost, &about) {
                Ok(trace) => Some(trace),
                Err(reason) => return (failed_before_start(reason), Tape::Off),
            }
        }
    };
    let log_out = match open_log(outputs.log) {
        Ok(out) => out,
        Err(reason) => return (failed_before_start(reason), Tape::Off),
    };
    let mut sink = Sink::new(observers, names, log_out, tape);
    if config.checkers {
        sink = sink.with_structural();
    }
    if outputs.causes {
        sink = sink.with_causes();
    }
    if config.shutdown.is_some() {
        sink = sink.run_past_done();
    }
    if let Some(chrome) = chrome {
        sink = sink.with_chrome(chrome);
    }
    world_config.faults = config.faults.clone();
    world_config.shutdown = config.shutdown;
    match config.plant.map(|plant| plant.bug) {
        Some(Bug::World(bug)) => world_config.bug = Some(bug),
        Some(Bug::Trace(bug)) => sink.plant(Mutator::new(bug)),
        Some(Bug::Scenario(_)) | None => {}
    }
    let mut world = match World::boot(nodes, world_config, config.seed, sink) {
        Ok(world) => world,
        Err(error) => {
            return (
                failed_before_start(format!("the scenario's spec does not boot: {error}")),
                Tape::Off,
            );
        }
    };
    let ending = world.run(config.limits);
    let sim_time_ns = world.now_ns();
    let counters = world.counters();
    let faults = world.fault_counts();
    let buggify_sites = world.buggify_sites();
    let shard_failures = world.failures();
    let shutdown = world.shutdown_outcomes();
    let view = world.end_view(ending == Ending::Quiescent);
    let accounting = world.net_accounting();
    let mut sink = world.into_sink();
    // End-of-run properties hold whether the goal was reached or a limit hit; after a
    // violation or a divergence there is nothing more to learn.
    sink.finish_observers(&view);
    sink.finish_compare();
    let mut outcome = match (config.shutdown, &shutdown) {
        (Some(plan), Some(shards)) => {
            classify_shutdown(ending, &sink, config, plan, drains_on_shutdown, shards)
        }
        _ => classify(ending, &sink, config, &goal, &view, &type_names),
    };
    if let (Outcome::Pass, Err(reason)) = (&outcome, accounting) {
        // Every byte the network took is delivered, buffered, in flight or dropped for a
        // named reason; a run that loses one silently fails, whatever its goal said.
        outcome = Outcome::Fail {
            class: FailureClass::Correctness,
            checker: "net.accounting".to_string(),
            reason,
        };
    }
    let mut report = RunReport {
        outcome,
        events: sink.events(),
        sim_time_ns,
        trace: sink.hash(),
        counters,
        faults,
        buggify_sites,
        shard_failures,
        divergence: sink.divergence().cloned(),
        log: None,
        violation_index: sink.violation().and(sink.violation_index()),
        last_events: Vec::new(),
        causal_chain: CausalChain::default(),
        shutdown,
    };
    if let Some(index) = report.violation_index {
        report.causal_chain = sink.causal_chain(index);
    }
    if let Some(chrome) = sink.take_chrome()
        && let Err(error) = chrome.finish()
    {
        report.outcome = Outcome::Fail {
            class: FailureClass::Crash,
            checker: "trace-out".to_string(),
            reason: format!("writing the Chrome trace failed: {error}"),
        };
    }
    if let Some(mut out) = sink.take_log() {
        write_footer(&mut out, &report);
        match out.finish(&header(config, &report)) {
            Ok(text) => report.log = text,
            Err(error) => {
                report.outcome = Outcome::Fail {
                    class: FailureClass::Crash,
                    checker: "log".to_string(),
                    reason: format!("writing the replay log failed: {error}"),
                }
            }
        }
    }
    (report, sink.take_tape())
}

fn failed_before_start(reason: String) -> RunReport {
    RunReport {
        outcome: Outcome::Fail { class: FailureClass::Crash, checker: "setup".to_string(), reason },
        events: 0,
        sim_time_ns: 0,
        trace: 0,
        counters: Vec::new(),
        faults: FaultCounts::default(),
        buggify_sites: Vec::new(),
        shard_failures: Vec::new(),
        divergence: None,
        log: None,
        violation_index: None,
        last_events: Vec::new(),
        causal_chain: CausalChain::default(),
        shutdown: None,
    }
}

/// What a Chrome trace says about its run (its `otherData`).
fn chrome_about(
    config: &RunConfig,
    world: &crate::world::WorldConfig,
) -> Vec<(&'static str, String)> {
    vec![
        ("seed", config.seed.to_string()),
        ("scenario", config.scenario.name().to_string()),
        ("parameters", config.settings.describe(&*config.scenario).join(" ")),
        ("faults", config.faults.profile.name().to_string()),
        ("dispatch_cost_ns", world.dispatch_cost_ns.to_string()),
        ("time", "virtual true time of the simulated world".to_string()),
    ]
}

fn classify(
    ending: Ending,
    sink: &Sink,
    config: &RunConfig,
    goal: &Goal,
    view: &EndView,
    type_names: &[Vec<&'static str>],
) -> Outcome {
    let limits = config.limits;
    if let Some(divergence) = sink.divergence() {
        return Outcome::Fail {
            class: FailureClass::Nondeterminism,
            checker: "determinism".to_string(),
            reason: format!("the second run differs from event {} on", divergence.index),
        };
    }
    match (sink.verdict(), ending) {
        (Verdict::Violated(violation), _) => Outcome::Fail {
            class: violation.class,
            checker: violation.checker.to_string(),
            reason: violation.explanation.clone(),
        },
        (Verdict::Done, _) => Outcome::Pass,
        (Verdict::Continue, Ending::Quiescent) if goal_met(goal, view) => Outcome::Pass,
        (Verdict::Continue, ending) => {
            let reason = match ending {
                Ending::Quiescent => quiet_reason(goal, view, type_names),
                Ending::TimeMax => {
                    format!(
                        "time-max ({}) reached before the goal",
                        crate::config::format_duration(limits.time_max_ns)
                    )
                }
                Ending::EventsMax => {
                    format!("events-max ({}) reached before the goal", limits.events_max)
                }
                Ending::LivenessBound => format!(
                    "the goal was not reached within liveness_time ({}) after the faults stopped",
                    crate::config::format_duration(
                        config.faults.nanos(crate::faults::K::LivenessTime)
                    )
                ),
                Ending::Stopped => "stopped without a verdict".to_string(),
                Ending::ShutDown => "the run shut down before the goal".to_string(),
            };
            Outcome::Fail { class: FailureClass::Liveness, checker: "goal".to_string(), reason }
        }
    }
}

/// The outcome of a run that shut down (its shutdown began). Its goal is the shutdown's,
/// not the scenario's: the scenario's goal may or may not have been reached by then (an
/// observer's `Done` did not stop the run), and a goal an observer would only declare at
/// quiescence is not asked for. It passes when no checker objected and the run reached the
/// end of its shutdown (every shard drained, or torn down at its deadline); a setup that
/// promises to drain (`Setup::drains_on_shutdown`) also fails, as liveness (checker
/// `shutdown`), if a shard was torn down at its deadline. End-of-run checkers judge it as
/// any run (a scenario's durability check, for one, sees the disks as the shutdown left
/// them).
fn classify_shutdown(
    ending: Ending,
    sink: &Sink,
    config: &RunConfig,
    plan: ShutdownPlan,
    drains: bool,
    shards: &[ShardShutdown],
) -> Outcome {
    if let Some(divergence) = sink.divergence() {
        return Outcome::Fail {
            class: FailureClass::Nondeterminism,
            checker: "determinism".to_string(),
            reason: format!("the second run differs from event {} on", divergence.index),
        };
    }
    if let Verdict::Violated(violation) = sink.verdict() {
        return Outcome::Fail {
            class: violation.class,
            checker: violation.checker.to_string(),
            reason: violation.explanation.clone(),
        };
    }
    let liveness = |reason: String| Outcome::Fail {
        class: FailureClass::Liveness,
        checker: "shutdown".to_string(),
        reason,
    };
    if ending != Ending::ShutDown {
        let what = match ending {
            Ending::TimeMax => format!(
                "time-max ({}) reached",
                crate::config::format_duration(config.limits.time_max_ns)
            ),
            Ending::EventsMax => format!("events-max ({}) reached", config.limits.events_max),
            _ => "the run stopped".to_string(),
        };
        return liveness(format!(
            "{what} before every shard finished its shutdown (drain {})",
            crate::config::format_duration(plan.drain_ns)
        ));
    }
    let forced: Vec<String> = shards
        .iter()
        .filter_map(|shard| match shard.outcome {
            ShutdownOutcome::Forced(report) => Some(format!(
                "n{}/s{} ({} of {} isolates left)",
                shard.node, shard.shard.0, report.remaining_isolates, report.isolates_at_start
            )),
            _ => None,
        })
        .collect();
    if drains && !forced.is_empty() {
        return liveness(format!(
            "the drain ({}) did not finish: torn down at the deadline: {}",
            crate::config::format_duration(plan.drain_ns),
            forced.join(", ")
        ));
    }
    Outcome::Pass
}

/// Whether the end-state goal holds for a run that went quiet.
fn goal_met(goal: &Goal, view: &EndView) -> bool {
    match goal {
        Goal::AllFinished => view.all_finished(),
        Goal::Observed => false,
        Goal::EndState(predicate) => predicate(view),
    }
}

/// Why a run that went quiet did not reach its goal.
fn quiet_reason(goal: &Goal, view: &EndView, type_names: &[Vec<&'static str>]) -> String {
    match goal {
        Goal::AllFinished => format!(
            "the system went quiet with {} isolates alive{}, {} messages in transit, {} queued, {} calls in progress and {} I/O operations outstanding; the goal is every isolate finished and nothing in flight",
            view.live_isolates(),
            alive(view, type_names),
            view.in_transit.len(),
            view.queued.len(),
            view.calls.len(),
            view.io.len()
        ),
        Goal::Observed => "the system went quiet before reaching the scenario's goal".to_string(),
        Goal::EndState(_) => {
            "the system went quiet and the end-state goal does not hold".to_string()
        }
    }
}

/// The isolates alive at the end, by type and shard: ` (2 transform on n0/s1, 1 sink on
/// n0/s0)`, at most `ALIVE_SHOWN` entries; empty if none.
fn alive(view: &EndView, type_names: &[Vec<&'static str>]) -> String {
    const ALIVE_SHOWN: usize = 8;
    let entries: Vec<String> = view
        .shards
        .iter()
        .flat_map(|shard| {
            shard.live.iter().enumerate().filter(|(_, count)| **count > 0).map(
                move |(at, count)| {
                    let name = type_names
                        .get(usize::from(shard.node))
                        .and_then(|types| types.get(at))
                        .copied()
                        .unwrap_or("?");
                    format!("{count} {name} on n{}/s{}", shard.node, shard.shard.0)
                },
            )
        })
        .collect();
    if entries.is_empty() {
        return String::new();
    }
    let more = entries.len().saturating_sub(ALIVE_SHOWN);
    let mut shown = entries.into_iter().take(ALIVE_SHOWN).collect::<Vec<_>>().join(", ");
    if more > 0 {
        shown.push_str(&format!(" and {more} more"));
    }
    format!(" ({shown})")
}

/// The report of a run whose setup cannot run.
fn invalid(problem: SetupError) -> RunReport {
    RunReport { outcome: Outcome::Invalid(problem), ..failed_before_start(String::new()) }
}

fn write_footer(out: &mut LogOut, report: &RunReport) {
    out.line("# end");
    let result = match &report.outcome {
        Outcome::Pass => "pass".to_string(),
        Outcome::Fail { class, checker, reason } => format!("fail ({class}) {checker}: {reason}"),
        Outcome::Invalid(problem) => format!("invalid: {problem}"),
    };
    out.line(&format!("result={result}"));
    out.line(&format!("events={}", report.events));
    out.line(&format!("sim_time_ns={}", report.sim_time_ns));
    for ShardCounters { node, shard, entries } in &report.counters {
        let fields: Vec<String> =
            entries.iter().filter(|(_, v)| *v != 0).map(|(k, v)| format!("{k}={v}")).collect();
        out.line(&format!("counters n{node}/s{} {}", shard.0, fields.join(" ")));
    }
    let faults: Vec<String> = report
        .faults
        .entries()
        .into_iter()
        .chain(report.faults.recovery())
        .filter(|(_, v)| *v != 0)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    out.line(&format!(
        "faults {}",
        if faults.is_empty() { "-".to_string() } else { faults.join(" ") }
    ));
    if let Some(shards) = &report.shutdown {
        out.line(&format!("shutdown {}", shutdown_line(shards)));
    }
    out.line(&format!("trace={:016x}", report.trace));
}

/// Each shard's shutdown as `n0/s0=drained@2013000000ns` (when, on its node's clock),
/// `n1/s0=forced(2)` (isolates left at the deadline), `n2/s0=down`.
pub fn shutdown_line(shards: &[ShardShutdown]) -> String {
    let entries: Vec<String> = shards
        .iter()
        .map(|shard| {
            let place = format!("n{}/s{}", shard.node, shard.shard.0);
            match shard.outcome {
                ShutdownOutcome::Drained(report) => {
                    format!("{place}=drained@{}", report.ended_at)
                }
                ShutdownOutcome::Forced(report) => {
                    format!("{place}=forced({})", report.remaining_isolates)
                }
                outcome => format!("{place}={}", outcome.name()),
            }
        })
        .collect();
    entries.join(" ")
}
