//! The simulator as a library: simulate your own isolates from your own crate and its
//! `cargo test`.
//!
//! A [`Simulation`] is a setup (a closure that builds the nodes' specs and observers, and
//! may capture any data) plus options with sensible defaults: seeds, limits, faults,
//! checkers, the replay log, and whether any dropped message fails the run. `run(seed)`
//! runs one seed and returns its [`RunReport`]; `check()` runs many seeds, spread over the
//! machine's cores, and on a failure panics with a message that says what broke, where the
//! failing run's replay log was written, and a `reproduce:` line for exactly that test and
//! seed (`TINA_SEED=N cargo test ...`).
//!
//! ```
//! use tina::{Ctx, Effect, Isolate, Message, ShardId, SystemSpec, TypeConfig};
//! use tina_scenarios::Setup;
//! use tina_sim::Simulation;
//!
//! /// Does nothing and finishes on its first turn (an `init` that returned `Done` would
//! /// be an init failure).
//! struct Once;
//! impl Isolate for Once {
//!     type Args = ();
//!     fn init(_: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
//!         (Once, Effect::Yield)
//!     }
//!     fn handle(&mut self, _m: &Message, _ctx: &mut Ctx<'_>) -> Effect {
//!         Effect::Done
//!     }
//! }
//!
//! let simulation = Simulation::new("once", |_params| {
//!     let mut spec = SystemSpec::new(1);
//!     let once = spec.register::<Once>(TypeConfig::new("once").slots(1));
//!     spec.boot_child(ShardId(0), once, ());
//!     // No goal declared: the default is every isolate finished and nothing in flight.
//!     Setup::new(spec)
//! })
//! .seeds(20);
//! let report = simulation.run(7).expect("a valid setup");
//! assert!(report.passed(), "{:?}", report.outcome);
//! assert_eq!((report.counter("exits_normal"), report.counter("init_failures")), (1, 0));
//! simulation.check(); // seeds 1 to 20 (TINA_SEEDS and TINA_SEED override)
//! ```
//!
//! This module reads the environment (`TINA_SEED`, `TINA_SEEDS`, and cargo's variables to
//! name the test) and spreads independent seeds over threads: each run is still one thread,
//! deterministic, and owns all its state.

use core::fmt;
use core::time::Duration;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tina_checkers::FailureClass;
use tina_scenarios::{ParamSpec, Params, Scenario, SetupError};

use crate::config::{ConfigError, Settings};
use crate::faults::{FaultConfig, KnobError, Profile};
use crate::plant::{Bug, Plant, PlantKind};
use crate::run::{LogRequest, Outcome, RunConfig, RunReport, ScenarioRef, run};
use crate::world::Limits;

/// Seeds `check` runs when neither the builder nor `TINA_SEEDS` says.
pub const SEEDS_DEFAULT: u64 = 100;

/// A parameter value for [`Simulation::set`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// A count.
    Count(u64),
    /// A duration.
    Duration(Duration),
}

impl From<u64> for Value {
    fn from(count: u64) -> Value {
        Value::Count(count)
    }
}

impl From<Duration> for Value {
    fn from(duration: Duration) -> Value {
        Value::Duration(duration)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Count(count) => write!(f, "{count}"),
            Value::Duration(duration) => write!(f, "{}ns", duration.as_nanos()),
        }
    }
}

/// A scenario made of a name, parameters and a closure.
struct FnScenario<F> {
    name: &'static str,
    params: &'static [ParamSpec],
    setup: F,
}

impl<F: Fn(&Params) -> tina_scenarios::Setup + Send + Sync> Scenario for FnScenario<F> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn description(&self) -> &'static str {
        "a simulation built by a closure"
    }

    fn params(&self) -> &'static [ParamSpec] {
        self.params
    }

    fn build(&self, params: &Params) -> tina_scenarios::Setup {
        (self.setup)(params)
    }
}

/// Input a simulation cannot run with, with what to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimError {
    /// A parameter the scenario does not declare, or a value out of its range.
    Param(ConfigError),
    /// A fault knob or profile that does not exist or does not fit.
    Faults(KnobError),
    /// The setup cannot run (no isolate, a goal nothing can declare).
    Setup(SetupError),
    /// A plant tied to another scenario.
    Plant(String),
    /// An environment variable that is not what it must be.
    Env {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it must be.
        expected: &'static str,
    },
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Param(error) => write!(f, "{error}"),
            SimError::Faults(error) => write!(f, "{error}"),
            SimError::Setup(error) => write!(f, "{error}"),
            SimError::Plant(text) => f.write_str(text),
            SimError::Env { name, value, expected } => {
                write!(f, "the environment variable {name}={value:?} must be {expected}")
            }
        }
    }
}

impl std::error::Error for SimError {}

/// A simulation of a setup, with options; runs one seed (`run`) or many (`check`).
#[derive(Clone, Debug)]
pub struct Simulation {
    scenario: ScenarioRef,
    sets: Vec<String>,
    profile: Profile,
    fault_sets: Vec<String>,
    limits: Limits,
    checkers: bool,
    log: bool,
    fail_on_drop: bool,
    fail_on_crash: bool,
    plant: Option<&'static Plant>,
    seeds: u64,
    shutdown_at: Option<u64>,
    shutdown_drain: Option<u64>,
}

impl Simulation {
    /// A simulation named `name` (in reports and replay logs) whose every run builds its
    /// setup with `setup`, given the parameters (see `params` and `set`). The closure may
    /// capture data; it runs once per run, so observers start fresh.
    ///
    /// Defaults: no fault (`Profile::None`; see `faults`), the structural checkers on, a
    /// simulated hour and 100 million events at most, no replay log kept, drops allowed,
    /// `SEEDS_DEFAULT` seeds for `check`.
    pub fn new<F>(name: &'static str, setup: F) -> Simulation
    where
        F: Fn(&Params) -> tina_scenarios::Setup + Send + Sync + 'static,
    {
        let scenario = FnScenario { name, params: &[], setup };
        Simulation::of_ref(ScenarioRef::Shared(Arc::new(scenario)))
    }

    /// A simulation of a catalog's scenario.
    pub fn of(scenario: &'static dyn Scenario) -> Simulation {
        Simulation::of_ref(ScenarioRef::Static(scenario))
    }

    /// A simulation named `name` with declared parameters (`ParamSpec`s: name, kind,
    /// default, bounds), set with `set` and read by `setup` through `Params`.
    pub fn with_params<F>(name: &'static str, params: &'static [ParamSpec], setup: F) -> Simulation
    where
        F: Fn(&Params) -> tina_scenarios::Setup + Send + Sync + 'static,
    {
        let scenario = FnScenario { name, params, setup };
        Simulation::of_ref(ScenarioRef::Shared(Arc::new(scenario)))
    }

    fn of_ref(scenario: ScenarioRef) -> Simulation {
        Simulation {
            scenario,
            sets: Vec::new(),
            profile: Profile::None,
            fault_sets: Vec::new(),
            limits: Limits { time_max_ns: 3_600_000_000_000, events_max: 100_000_000 },
            checkers: true,
            log: false,
            fail_on_drop: false,
            fail_on_crash: false,
            plant: None,
            seeds: SEEDS_DEFAULT,
            shutdown_at: None,
            shutdown_drain: None,
        }
    }

    /// Sets a parameter of the scenario (declared with `with_params`) or of the simulator
    /// (`dispatch_cost`, `net_delay_min`, `net_delay_max`, `transport_capacity`). Checked
    /// when the simulation runs: an unknown key or a value out of range is a `SimError`.
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Simulation {
        self.sets.push(format!("{key}={}", value.into()));
        self
    }

    /// The fault profile (`Profile::None` unless set).
    pub fn faults(mut self, profile: Profile) -> Simulation {
        self.profile = profile;
        self
    }

    /// Sets one fault knob, `NAME=VALUE` as `sim --fault` takes it, after the profile.
    pub fn fault(mut self, knob: &str) -> Simulation {
        self.fault_sets.push(knob.to_string());
        self
    }

    /// The virtual time limit (a run that reaches it before its goal fails as liveness).
    pub fn time_max(mut self, time_max: Duration) -> Simulation {
        self.limits.time_max_ns = u64::try_from(time_max.as_nanos()).unwrap_or(u64::MAX);
        self
    }

    /// The trace event limit.
    pub fn events_max(mut self, events_max: u64) -> Simulation {
        self.limits.events_max = events_max;
        self
    }

    /// Whether the structural checkers judge the runs (on by default).
    pub fn checkers(mut self, on: bool) -> Simulation {
        self.checkers = on;
        self
    }

    /// Whether `run` keeps the replay log in its report (off by default; `check` writes the
    /// log of a failing seed to a file either way).
    pub fn keep_log(mut self, on: bool) -> Simulation {
        self.log = on;
        self
    }

    /// Whether any dropped message fails the run as a correctness failure naming the drop
    /// (off by default: tina sheds load by design; switch it on for protocols that promise
    /// no shedding). Every drop counts, including those a crash causes (messages to the
    /// old incarnation, to a down shard, or queued when it stopped), since production
    /// loses them too: with crash faults on, expect this option to fail the run.
    pub fn fail_on_drop(mut self, on: bool) -> Simulation {
        self.fail_on_drop = on;
        self
    }

    /// Whether any isolate crash (or failed `init`) fails the run as a correctness failure
    /// naming the isolate and its reason (off by default: supervisors restart crashed
    /// isolates by design; switch it on when every crash is a bug, for example isolates
    /// that `assert!` their invariants, whose panics are contained as crashes).
    pub fn fail_on_crash(mut self, on: bool) -> Simulation {
        self.fail_on_crash = on;
        self
    }

    /// Switches on a world or trace plant (a planted bug of the simulator or the core, see
    /// `sim list`), to see a checker catch it in this simulation.
    pub fn plant(mut self, name: &str) -> Result<Simulation, SimError> {
        let plant = crate::plant::find(name)
            .ok_or_else(|| SimError::Plant(format!("unknown plant {name:?}")))?;
        if plant.kind() == PlantKind::Scenario {
            return Err(SimError::Plant(format!(
                "plant {name} is a bug in the catalog's scenario {}, not a world or trace plant",
                plant.scenario
            )));
        }
        self.plant = Some(plant);
        Ok(self)
    }

    /// Shuts every run down gracefully at `at` (virtual time), as `sim --shutdown-at` does:
    /// faults stop, every shard begins its shutdown (each isolate gets a `Tag::SHUTDOWN`
    /// message), the world runs on through the drain (`shutdown_drain`, one second unless
    /// set), and the run ends when every shard has drained or its deadline passed. Such a
    /// run passes when no checker objects (the setup's goal is not required) and, if the
    /// setup promises it (`Setup::drains_on_shutdown`), every shard drained;
    /// `RunReport::shutdown` says how each shard's shutdown went. Checked when the
    /// simulation runs: a time at or past the time limit is a `SimError`.
    pub fn shutdown_at(mut self, at: Duration) -> Simulation {
        self.shutdown_at = Some(u64::try_from(at.as_nanos()).unwrap_or(u64::MAX));
        self
    }

    /// How long the shards may drain after `shutdown_at` (on each node's clock) before
    /// what is still alive is torn down; one second unless set, at most an hour.
    pub fn shutdown_drain(mut self, drain: Duration) -> Simulation {
        self.shutdown_drain = Some(u64::try_from(drain.as_nanos()).unwrap_or(u64::MAX));
        self
    }

    /// How many seeds `check` runs (1 to n), unless `TINA_SEEDS` or `TINA_SEED` says.
    pub fn seeds(mut self, count: u64) -> Simulation {
        self.seeds = count;
        self
    }

    /// The simulation's name.
    pub fn name(&self) -> &'static str {
        self.scenario.name()
    }

    /// The run configuration of `seed`.
    fn config(&self, seed: u64, log: LogRequest) -> Result<RunConfig, SimError> {
        let settings = Settings::new(&*self.scenario, &self.sets).map_err(SimError::Param)?;
        let mut faults = FaultConfig::new(self.profile, seed);
        for set in self.plant.map_or(&[][..], |plant| plant.faults) {
            faults.set(set).map_err(SimError::Faults)?;
        }
        for set in &self.fault_sets {
            faults.set(set).map_err(SimError::Faults)?;
        }
        faults.validate().map_err(SimError::Faults)?;
        let shutdown = crate::config::shutdown_plan(
            self.shutdown_at,
            self.shutdown_drain,
            self.limits.time_max_ns,
        )
        .map_err(SimError::Param)?;
        Ok(RunConfig {
            seed,
            scenario: self.scenario.clone(),
            settings,
            limits: self.limits,
            log,
            trace_out: None,
            check_determinism: self
                .plant
                .is_some_and(|plant| plant.class == FailureClass::Nondeterminism),
            plant: self.plant,
            checkers: self.checkers,
            faults,
            fail_on_drop: self.fail_on_drop,
            fail_on_crash: self.fail_on_crash,
            shutdown,
        })
    }

    /// Runs `seed` once. A setup that cannot run, or bad parameters or knobs, are a
    /// `SimError`; everything else (pass, or a failure of any class) is in the report.
    pub fn run(&self, seed: u64) -> Result<RunReport, SimError> {
        let log = if self.log { LogRequest::Memory } else { LogRequest::None };
        self.run_with(seed, log)
    }

    fn run_with(&self, seed: u64, log: LogRequest) -> Result<RunReport, SimError> {
        let report = run(&self.config(seed, log)?);
        match report.outcome {
            Outcome::Invalid(problem) => Err(SimError::Setup(problem)),
            _ => Ok(report),
        }
    }

    /// Runs the seeds (`TINA_SEED=N`: exactly seed N; else `TINA_SEEDS=COUNT` or the
    /// builder's count: seeds 1 to COUNT) over the machine's cores, and panics if one fails,
    /// with the failing run's result, the events up to a violation, its trace hash, the
    /// path of its replay log (under the target directory, `tina/`) and a `reproduce:` line
    /// for this test and seed. For `#[test]` functions; `try_check` returns the failure.
    pub fn check(&self) -> Summary {
        match self.try_check() {
            Ok(summary) => summary,
            Err(failure) => panic!("{failure}"),
        }
    }

    /// `check` without the panic.
    pub fn try_check(&self) -> Result<Summary, CheckFailure> {
        let test = TestId::current();
        let seeds = match seeds_from_env(self.seeds) {
            Ok(seeds) => seeds,
            Err(error) => return Err(CheckFailure::Input(error)),
        };
        // Bad input shows on the first seed, before any thread starts: the settings and
        // knobs, and the setup they build.
        let config = self.config(seeds.first, LogRequest::None).map_err(CheckFailure::Input)?;
        if let Some(problem) = self.scenario.build(&config.settings.scenario).problem() {
            return Err(CheckFailure::Input(SimError::Setup(problem)));
        }
        let failures = match self.run_seeds(&seeds) {
            Ok(failures) => failures,
            Err(error) => return Err(CheckFailure::Input(error)),
        };
        let Some((seed, report)) = failures.into_iter().min_by_key(|(seed, _)| *seed) else {
            return Ok(Summary { seeds: seeds.count, first: seeds.first });
        };
        let failed = seeds.failed_count;
        let log_path = log_path(&test, self.name(), seed);
        let written = log_path.as_ref().and_then(|path| {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            self.run_with(seed, LogRequest::File(path.clone())).ok().map(|_| path.clone())
        });
        Err(CheckFailure::Seed(Box::new(SeedFailure {
            name: self.name(),
            seed,
            seeds: seeds.count,
            failed: failed.load(Ordering::Relaxed),
            report,
            log: written,
            reproduce: test.reproduce(seed),
        })))
    }

    /// Runs every seed, spread over threads; returns the failures.
    fn run_seeds(&self, seeds: &Seeds) -> Result<Vec<(u64, RunReport)>, SimError> {
        let next = AtomicU64::new(0);
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(usize::try_from(seeds.count).unwrap_or(usize::MAX))
            .max(1);
        let worker = || -> Result<Vec<(u64, RunReport)>, SimError> {
            let mut failures = Vec::new();
            // Bounded by the seed count: each iteration takes one seed.
            loop {
                let at = next.fetch_add(1, Ordering::Relaxed);
                if at >= seeds.count {
                    return Ok(failures);
                }
                let seed = seeds.first + at;
                // A setup that is unusable only at some seeds stops every worker.
                let report = self.run_with(seed, LogRequest::None).inspect_err(|_| {
                    next.store(seeds.count, Ordering::Relaxed);
                })?;
                if !report.passed() {
                    seeds.failed_count.fetch_add(1, Ordering::Relaxed);
                    failures.push((seed, report));
                }
            }
        };
        if threads == 1 {
            return worker();
        }
        std::thread::scope(|scope| {
            // Independent runs, each deterministic and single-threaded: the threads only
            // share the seed counter.
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
            let mut failures = Vec::new();
            for handle in handles {
                // A worker panics only if the simulator itself does: pass it on.
                match handle.join() {
                    Ok(result) => failures.extend(result?),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            Ok(failures)
        })
    }
}

impl RunReport {
    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Pass
    }

    /// One core counter (`sent`, `delivered`, `mailbox_full`, `exits_normal`, `crashes`,
    /// ...: the names of `tina::Counters::entries`) summed over every shard of every node;
    /// 0 for a name that is not a counter.
    pub fn counter(&self, name: &str) -> u64 {
        self.counters
            .iter()
            .flat_map(|shard| shard.entries.iter())
            .filter(|(entry, _)| *entry == name)
            .map(|(_, value)| value)
            .sum()
    }

    /// The failure class, if the run failed.
    pub fn class(&self) -> Option<FailureClass> {
        match &self.outcome {
            Outcome::Fail { class, .. } => Some(*class),
            Outcome::Pass | Outcome::Invalid(_) => None,
        }
    }
}

/// What `check` ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// The first seed.
    pub first: u64,
}

/// Why `check` failed.
#[derive(Debug)]
pub enum CheckFailure {
    /// Bad input: no seed ran.
    Input(SimError),
    /// A seed failed (the smallest failing one is reported).
    Seed(Box<SeedFailure>),
}

/// A failing seed of `check`, with all it takes to look at it again.
#[derive(Debug)]
pub struct SeedFailure {
    /// The simulation.
    pub name: &'static str,
    /// The failing seed (the smallest that failed).
    pub seed: u64,
    /// Seeds run.
    pub seeds: u64,
    /// Seeds that failed.
    pub failed: u64,
    /// The failing run.
    pub report: RunReport,
    /// Where its replay log was written, if it could be.
    pub log: Option<PathBuf>,
    /// The command that runs exactly this test and seed again.
    pub reproduce: String,
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckFailure::Input(error) => write!(f, "tina: the simulation cannot run: {error}"),
            CheckFailure::Seed(failure) => write!(f, "{failure}"),
        }
    }
}

impl fmt::Display for SeedFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = &self.report;
        writeln!(
            f,
            "tina: simulation `{}` failed at seed {} ({} of {} seeds failed; the smallest is shown)",
            self.name, self.seed, self.failed, self.seeds
        )?;
        match &report.outcome {
            Outcome::Fail { class, checker, reason } => {
                writeln!(f, "result: fail ({class}) {checker}: {reason}")?
            }
            Outcome::Pass => writeln!(f, "result: pass")?,
            Outcome::Invalid(problem) => writeln!(f, "result: invalid: {problem}")?,
        }
        if let Some(index) = report.violation_index {
            writeln!(f, "violation at event {index}; events up to it:")?;
            for line in &report.last_events {
                writeln!(f, "  {line}")?;
            }
            for line in crate::chain::causal_chain_lines(&report.causal_chain) {
                writeln!(f, "{line}")?;
            }
        }
        writeln!(
            f,
            "events={} sim_time={} trace={:016x}",
            report.events, report.sim_time_ns, report.trace
        )?;
        match &self.log {
            Some(path) => writeln!(f, "replay log: {}", path.display())?,
            None => writeln!(f, "replay log: not written")?,
        }
        write!(f, "reproduce: {}", self.reproduce)
    }
}

/// The seeds `check` runs.
#[derive(Debug)]
struct Seeds {
    first: u64,
    count: u64,
    failed_count: AtomicU64,
}

/// One environment variable, if set. The simulator reads no other ambient setting.
#[expect(
    clippy::disallowed_methods,
    reason = "check() takes its seed and seed count from the test's environment, by design"
)]
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `TINA_SEED=N` (exactly seed N), else `TINA_SEEDS=COUNT`, else `default` seeds from 1.
fn seeds_from_env(default: u64) -> Result<Seeds, SimError> {
    seeds_from(env, default)
}

/// `seeds_from_env` over any source of variables.
fn seeds_from(var: impl Fn(&str) -> Option<String>, default: u64) -> Result<Seeds, SimError> {
    if let Some(text) = var("TINA_SEED") {
        let seed = crate::config::parse_seed(text.trim()).map_err(|_| SimError::Env {
            name: "TINA_SEED",
            value: text.clone(),
            expected: "a seed in decimal (42) or hexadecimal (0x2a)",
        })?;
        return Ok(Seeds { first: seed, count: 1, failed_count: AtomicU64::new(0) });
    }
    let count = match var("TINA_SEEDS") {
        Some(text) => {
            text.trim().parse::<u64>().ok().filter(|&count| count >= 1).ok_or(SimError::Env {
                name: "TINA_SEEDS",
                value: text.clone(),
                expected: "a count of seeds, at least 1",
            })?
        }
        None => default.max(1),
    };
    Ok(Seeds { first: 1, count, failed_count: AtomicU64::new(0) })
}

/// The test that is running, as cargo names it, for reproduce lines and log paths.
#[derive(Clone, Debug)]
struct TestId {
    /// The package (`CARGO_PKG_NAME`, set by cargo when it runs tests).
    package: Option<String>,
    /// `--test NAME` or `--lib`, from the test binary's name.
    target: Option<String>,
    /// The test function's path (libtest names each test's thread after it).
    test: Option<String>,
    /// Where logs go: `CARGO_TARGET_DIR`, else the package's `target`.
    target_dir: PathBuf,
}

impl TestId {
    fn current() -> TestId {
        let package = env("CARGO_PKG_NAME");
        let test = std::thread::current().name().filter(|name| *name != "main").map(str::to_string);
        let exe = std::env::current_exe().ok();
        let exe_target_dir = exe.as_deref().and_then(|exe| {
            let deps = exe.parent()?;
            (deps.file_name()? == "deps").then(|| deps.parent()?.parent().map(PathBuf::from))?
        });
        let binary = exe.as_deref().and_then(|exe| {
            let stem = exe.file_stem()?.to_str()?.to_string();
            // Cargo names test binaries `<target>-<hash>`.
            Some(stem.rsplit_once('-').map_or(stem.clone(), |(target, _)| target.to_string()))
        });
        // `--test NAME` for an integration test, `--lib` for the library's unit tests; where
        // the binary's name fits both (a `tests/NAME.rs` named like the package) or
        // neither, no target: the exact test name alone finds the test.
        let manifest = env("CARGO_MANIFEST_DIR").map(PathBuf::from);
        let target = binary.and_then(|binary| {
            let tests = manifest.as_ref().map(|dir| dir.join("tests"));
            let integration = tests.is_some_and(|tests| {
                tests.join(format!("{binary}.rs")).is_file()
                    || tests.join(&binary).join("main.rs").is_file()
            });
            let is_lib = package.as_deref().is_some_and(|p| p.replace('-', "_") == binary);
            match (integration, is_lib) {
                (true, false) => Some(format!("--test {binary}")),
                (false, true) => Some("--lib".to_string()),
                _ => None,
            }
        });
        // A test binary lives in `<target>/<profile>/deps/`; a `CARGO_TARGET_DIR` wins.
        let target_dir = env("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .or(exe_target_dir)
            .unwrap_or_else(|| PathBuf::from("target"));
        TestId { package, target, test, target_dir }
    }

    fn reproduce(&self, seed: u64) -> String {
        let mut command = format!("TINA_SEED={seed} cargo test");
        if let Some(package) = &self.package {
            command.push_str(&format!(" -p {package}"));
        }
        if let Some(target) = &self.target {
            command.push_str(&format!(" {target}"));
        }
        if let Some(test) = &self.test {
            command.push_str(&format!(" {test} -- --exact"));
        }
        command
    }
}

/// Where the replay log of a failing seed goes: `<target>/tina/<test or name>-seed-<N>.log`.
fn log_path(test: &TestId, name: &str, seed: u64) -> Option<PathBuf> {
    let stem: String = test
        .test
        .as_deref()
        .unwrap_or(name)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect();
    Some(test.target_dir.join("tina").join(format!("{stem}-seed-{seed}.log")))
}

/// The world and trace plants (those that run with any scenario).
pub fn world_plants() -> impl Iterator<Item = &'static Plant> {
    crate::plant::PLANTS.iter().filter(|plant| !matches!(plant.bug, Bug::Scenario(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// `TINA_SEED` wins over `TINA_SEEDS`, which wins over the builder's count; a value
    /// that is not a number is an error naming the variable and what it must be.
    #[test]
    fn seeds_come_from_the_environment() {
        let seeds = seeds_from(vars(&[]), 50).expect("valid");
        assert_eq!((seeds.first, seeds.count), (1, 50));
        let seeds = seeds_from(vars(&[("TINA_SEEDS", "7")]), 50).expect("valid");
        assert_eq!((seeds.first, seeds.count), (1, 7));
        let seeds =
            seeds_from(vars(&[("TINA_SEEDS", "7"), ("TINA_SEED", "0x2a")]), 50).expect("valid");
        assert_eq!((seeds.first, seeds.count), (42, 1));
        for (name, value) in
            [("TINA_SEEDS", "many"), ("TINA_SEEDS", "0"), ("TINA_SEED", "-1"), ("TINA_SEED", "")]
        {
            let error = seeds_from(vars(&[(name, value)]), 50).expect_err(value);
            let text = error.to_string();
            assert!(text.starts_with(&format!("the environment variable {name}=")), "{text}");
            assert!(text.contains("must be"), "{text}");
        }
    }

    /// The reproduce line names the package, the test target and the test, and runs it
    /// exactly.
    #[test]
    fn reproduce_lines() {
        let test = TestId {
            package: Some("my-crate".to_string()),
            target: Some("--test flows".to_string()),
            test: Some("pipeline_holds".to_string()),
            target_dir: PathBuf::from("target"),
        };
        assert_eq!(
            test.reproduce(9),
            "TINA_SEED=9 cargo test -p my-crate --test flows pipeline_holds -- --exact"
        );
        let path = log_path(&test, "pipeline", 9).expect("a path");
        assert_eq!(path, PathBuf::from("target/tina/pipeline_holds-seed-9.log"));
    }
}
