//! `sim sweep`: many seeds over every core, a part of them per machine, and `sim sweep
//! merge` to combine the parts.
//!
//! Each run is the same single-threaded deterministic run as `sim --seed N` (the same
//! `Shape` builds its `RunConfig`); threads only hand out whole runs, by an atomic counter
//! over the run indices, and the calling thread reports them in seed order whatever order
//! they finish in. So the output is deterministic apart from wall times, and does not
//! depend on `--jobs`. This module is outside the deterministic core: it reads the wall
//! clock (marked, in `wall_clock`) and starts threads (`std::thread::scope`).
//!
//! Cost per run does not grow with the number of runs: results wait in a reorder window of
//! at most `REORDER_WINDOW` runs (a worker that runs ahead waits for the slowest), the
//! summary keeps a count and a few seeds per failure group, JSON lines and seed files are
//! written as runs are reported, and progress updates are O(1).
//!
//! Not here: scheduling across machines. `--partition I/N` and `merge` are what a batch
//! engine (a Kubernetes Indexed Job, a Slurm array, a CI matrix) needs; we write no
//! scheduler.

pub mod merge;
pub mod progress;
pub mod range;
pub mod summary;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use tina_scenarios::Scenario;

use crate::cli::{Choice, Io, ReplayArgs, RunFlags, Shape, report_json};
use crate::config::{Settings, pick_scenario};
use crate::json::Json;
use crate::run::{Outcome, run};
use crate::sweep::progress::{Progress, ProgressMode, duration_ns};
use crate::sweep::range::{Partition, SeedRange};
use crate::sweep::summary::{RunBrief, Summary};

/// Runs that may finish ahead of the oldest unreported one. It bounds the memory of a
/// sweep (each waiting run holds its JSON line, a few kilobytes) whatever one slow seed
/// does; workers that reach it wait.
pub const REORDER_WINDOW: u64 = 4_096;
/// The most threads `--jobs` takes.
pub const JOBS_MAX: usize = 1_024;
/// The most runs one sweep (or part) performs: far beyond any useful sweep, and far enough
/// below 2^64 that the shared run counter, which each worker moves once past the end,
/// cannot wrap.
pub const RUNS_MAX: u64 = 1 << 62;
/// How often the reporting thread wakes while no run finishes, to keep progress lines
/// coming.
const WAKE_INTERVAL: Duration = Duration::from_secs(1);

const _: () = assert!(JOBS_MAX as u64 <= u64::MAX - RUNS_MAX);
const _: () = assert!(REORDER_WINDOW >= JOBS_MAX as u64, "every worker can hold a run");

pub(crate) const SWEEP_HELP: &str = "\
Each seed runs exactly as `sim --seed N` with the same flags would: same scenario pick, same
faults, same result. Output is in seed order (then in --scenario order) whatever --jobs is.

Seed ranges: A..B runs A up to but not including B, A..=B runs A to B inclusive (decimal or
0x hex). --partition I/N runs the seeds whose index in the range is I-1 modulo N, so N
machines can each run one part; `sim sweep merge` combines their --json outputs into the
summary one unpartitioned sweep prints, and refuses parts of different sweeps, parts given
twice and missing parts.

Output: with --json, stdout has one JSON object per run (what `sim --json` prints for that
run, with \"type\":\"run\") and a last line with \"type\":\"summary\" (the sweep's identity, its
part, counts, failure groups, wall times); human lines go to stderr. Without it, stdout
has the summary: runs, passes, failures grouped by class, checker and scenario with their
smallest seeds, and wall times. --out DIR writes each failing run as a seed file,
sweep-SCENARIO-SEED.seed, ready to copy into seeds/.

Exit codes:
  0   every run passed
  1   at least one run failed (any class; the summary says which)
  2   invalid arguments or configuration (also: an unwritable --out, a seed whose faults do
      not validate, and for merge: unreadable files, parts of different sweeps, parts given
      twice or missing)
  12  the sweep itself crashed (a panic outside the world)

Examples:
  sim sweep --scenario bank --seeds 1..10001
  sim sweep --scenario bank,kv --faults chaos --seeds 1..=500 --out found/
  sim sweep --seeds 1..1001 --partition 2/4 --json > part-2.jsonl
  sim sweep merge part-1.jsonl part-2.jsonl part-3.jsonl part-4.jsonl";

/// `sim sweep`'s arguments.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = SWEEP_HELP
)]
pub(crate) struct SweepArgs {
    #[command(subcommand)]
    command: Option<SweepCommand>,
    /// Scenarios to run, comma-separated; every seed runs in each. Absent: each seed picks
    /// its scenario as `sim --seed N` does (or the plant's).
    #[arg(long, value_delimiter = ',', value_name = "NAME[,NAME...]")]
    scenario: Vec<String>,
    /// Seeds to run: A..B (A up to but not including B) or A..=B (inclusive).
    #[arg(long, value_name = "RANGE", value_parser = SeedRange::parse, required = true)]
    seeds: Option<SeedRange>,
    /// Run only part I of N (1 <= I <= N): the seeds whose index in the range is I-1 mod N.
    #[arg(long, value_name = "I/N", value_parser = Partition::parse)]
    partition: Option<Partition>,
    /// Threads that run seeds [default: the machine's available parallelism].
    #[arg(long, value_name = "N", value_parser = parse_jobs)]
    jobs: Option<usize>,
    /// Write each failing run as DIR/sweep-SCENARIO-SEED.seed (DIR is created if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Progress on stderr: a bar on a terminal (auto), else a line each tenth or 10 s.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = ProgressMode::Auto)]
    progress: ProgressMode,
    #[command(flatten)]
    run: RunFlags,
}

#[derive(Debug, Subcommand)]
enum SweepCommand {
    /// Combine the --json outputs of a partitioned sweep's parts into the summary one
    /// unpartitioned sweep prints (with --json: its summary line).
    Merge {
        /// The parts' JSON lines files, in any order.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

fn parse_jobs(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(jobs) if (1..=JOBS_MAX).contains(&jobs) => Ok(jobs),
        _ => Err(format!(
            "write a number of threads from 1 to {JOBS_MAX} (leave --jobs out to use every core)"
        )),
    }
}

/// Runs `sim sweep` or `sim sweep merge`; returns the exit code.
pub(crate) fn main(args: &SweepArgs, io: &mut Io<'_>) -> u8 {
    match &args.command {
        Some(SweepCommand::Merge { files }) => merge::main(files, io),
        None => sweep(args, io),
    }
}

/// Everything fixed before the first run: what to run, in which order, and how to report.
struct Plan<'f> {
    shape: Shape<'f>,
    range: SeedRange,
    partition: Partition,
    /// Each scenario a run may use with its settings: the named ones in order, or (when
    /// seeds pick) the whole catalog in catalog order.
    scenarios: Vec<(&'static dyn Scenario, Settings)>,
    /// The catalog's names, for a seed's pick (empty when scenarios are named).
    pick_names: Vec<&'static str>,
    /// Runs per seed: the named scenarios, or one.
    per_seed: u64,
    /// Runs in this part.
    runs: u64,
    /// What a merge checks that parts share.
    identity: Json,
    replay: ReplayArgs,
}

impl<'f> Plan<'f> {
    fn new(args: &'f SweepArgs, catalog: &[&'static dyn Scenario]) -> Result<Plan<'f>, String> {
        let Some(range) = args.seeds else {
            return Err("give --seeds A..B or A..=B".to_string());
        };
        let partition = args.partition.unwrap_or(Partition::WHOLE);
        let shape = Shape::resolve(&args.run, &args.scenario, catalog)?;
        let (candidates, pick_names): (Vec<&'static dyn Scenario>, Vec<&'static str>) =
            match &shape.choice {
                Choice::Named(scenarios) => (scenarios.clone(), Vec::new()),
                Choice::Picked => (catalog.to_vec(), catalog.iter().map(|s| s.name()).collect()),
            };
        let mut scenarios = Vec::with_capacity(candidates.len());
        for scenario in candidates {
            let settings = shape.settings(scenario).map_err(|error| {
                if pick_names.is_empty() {
                    error.to_string()
                } else {
                    format!(
                        "{error} (without --scenario a seed may pick any scenario of the catalog, so every --set must fit each; name the scenarios with --scenario)"
                    )
                }
            })?;
            // An unusable setup shows here, before any thread starts, not once per seed.
            if let Some(problem) = scenario.build(&settings.scenario).problem() {
                return Err(format!("scenario {}: {problem}", scenario.name()));
            }
            scenarios.push((scenario, settings));
        }
        let per_seed = if pick_names.is_empty() { scenarios.len() as u64 } else { 1 };
        let seeds = partition.seed_count(range);
        let runs = seeds.checked_mul(per_seed).filter(|&runs| runs <= RUNS_MAX).ok_or_else(|| {
            format!(
                "{seeds} seeds times {per_seed} scenarios is more than the {RUNS_MAX} runs a sweep performs; narrow --seeds or use --partition"
            )
        })?;
        if seeds > 0 {
            shape.faults(partition.seed(range, 0)).map_err(|error| error.to_string())?;
        }
        let identity = identity(&shape, range, &pick_names);
        let replay = shape.replay_args();
        Ok(Plan {
            shape,
            range,
            partition,
            scenarios,
            pick_names,
            per_seed,
            runs,
            identity,
            replay,
        })
    }

    /// The seed and the scenario (an index into `scenarios`) of run `index`.
    fn run_at(&self, index: u64) -> (u64, usize) {
        debug_assert!(index < self.runs);
        let seed = self.partition.seed(self.range, index / self.per_seed);
        let at = if self.pick_names.is_empty() {
            // Below per_seed, the count of named scenarios.
            (index % self.per_seed) as usize
        } else {
            pick_scenario(seed, &self.pick_names)
        };
        (seed, at)
    }

    /// Performs run `index`: builds its config exactly as a plain run would, runs it, and
    /// renders its JSON line if asked.
    fn perform(&self, index: u64, json: bool) -> Finished {
        let (seed, at) = self.run_at(index);
        let (scenario, settings) = &self.scenarios[at];
        let faults = match self.shape.faults(seed) {
            Ok(faults) => faults,
            Err(error) => {
                let problem = format!("seed {seed}: {error}");
                return Finished { index, seed, at, result: Err(problem), wall_ns: 0, line: None };
            }
        };
        let config = self.shape.config(seed, *scenario, settings.clone(), faults);
        let started = wall_clock();
        let report = run(&config);
        let wall = started.elapsed();
        let line = json.then(|| {
            let mut line = report_json(&config, &report, wall);
            if let Json::Object(entries) = &mut line {
                entries.insert(0, ("type".to_string(), Json::string("run")));
            }
            line.render()
        });
        let result = match report.outcome {
            Outcome::Invalid(problem) => Err(format!("scenario {}: {problem}", scenario.name())),
            outcome => Ok(outcome),
        };
        Finished { index, seed, at, result, wall_ns: duration_ns(wall), line }
    }
}

/// The sweep's identity, which every part's summary line records and `merge` compares:
/// everything that decides which runs a sweep performs and how each is judged (not
/// `--jobs`, which changes neither).
fn identity(shape: &Shape<'_>, range: SeedRange, pick_names: &[&'static str]) -> Json {
    let strings = |items: &[String]| Json::Array(items.iter().map(Json::string).collect());
    let (scenarios, catalog) = match &shape.choice {
        Choice::Named(scenarios) => {
            (Json::Array(scenarios.iter().map(|s| Json::string(s.name())).collect()), Json::Null)
        }
        Choice::Picked => {
            (Json::Null, Json::Array(pick_names.iter().map(|&n| Json::string(n)).collect()))
        }
    };
    let flags = shape.flags;
    Json::object([
        ("version", Json::string(env!("CARGO_PKG_VERSION"))),
        ("scenarios", scenarios),
        ("catalog", catalog),
        (
            "seeds",
            Json::object([
                ("first", Json::Number(range.first)),
                ("last", Json::Number(range.last())),
                ("count", Json::Number(range.count)),
            ]),
        ),
        ("sets", strings(&flags.sets)),
        ("faults", Json::string(shape.profile.name())),
        ("fault_sets", strings(&flags.fault_sets)),
        ("plant", flags.plant.as_ref().map_or(Json::Null, Json::string)),
        ("time_max_ns", Json::Number(flags.time_max)),
        ("events_max", Json::Number(flags.events_max)),
        ("check_determinism", Json::Bool(flags.check_determinism)),
        ("checkers", Json::Bool(!flags.no_checkers)),
        ("fail_on_drop", Json::Bool(flags.fail_on_drop)),
        ("fail_on_crash", Json::Bool(flags.fail_on_crash)),
    ])
}

/// One performed run, on its way to the reporting thread.
struct Finished {
    index: u64,
    seed: u64,
    /// Its scenario: an index into `Plan::scenarios`.
    at: usize,
    /// How it ended, or why it could not run (bad input at this seed).
    result: Result<Outcome, String>,
    wall_ns: u64,
    /// Its JSON line, with `--json`.
    line: Option<String>,
}

impl Finished {
    fn failed(&self) -> bool {
        !matches!(self.result, Ok(Outcome::Pass))
    }
}

#[expect(clippy::disallowed_methods, reason = "a sweep reports wall times and paces progress")]
fn wall_clock() -> Instant {
    Instant::now()
}

fn sweep(args: &SweepArgs, io: &mut Io<'_>) -> u8 {
    let started = wall_clock();
    let plan = match Plan::new(args, io.catalog) {
        Ok(plan) => plan,
        Err(message) => return io.invalid(&message),
    };
    if let Some(dir) = &args.out
        && let Err(error) = std::fs::create_dir_all(dir)
    {
        return io.invalid(&format!("--out {}: cannot create it: {error}", dir.display()));
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .clamp(1, JOBS_MAX)
        .min(usize::try_from(plan.runs).unwrap_or(usize::MAX).max(1));
    let scenarios = match &plan.shape.choice {
        Choice::Named(scenarios) => {
            scenarios.iter().map(|s| s.name()).collect::<Vec<_>>().join(",")
        }
        Choice::Picked => "picked by each seed".to_string(),
    };
    let threads = if jobs == 1 { "thread" } else { "threads" };
    io.say(&format!(
        "sweep: scenario={scenarios} seeds={} part {}: {} runs on {jobs} {threads}, faults {}",
        plan.range,
        plan.partition,
        plan.runs,
        plan.shape.profile.name()
    ));
    let mut report = Report {
        plan: &plan,
        summary: Summary::default(),
        out: args.out.clone(),
        out_error: None,
        seed_files: 0,
    };
    let mut progress = Progress::new(args.progress, plan.runs, started);
    let ended = execute(&plan, jobs, io, &mut report, &mut progress);
    progress.finish();
    if let Err(problem) = ended {
        return io.invalid(&problem);
    }
    let elapsed_ns = duration_ns(started.elapsed());
    for line in report.summary.lines(elapsed_ns, "") {
        io.say(&line);
    }
    if let Some(dir) = &report.out {
        io.say(&format!("seed files: {} written to {}", report.seed_files, dir.display()));
    }
    if io.json {
        let line = report.summary.json(&plan.identity, plan.partition, elapsed_ns);
        let _ = writeln!(io.out, "{}", line.render());
    }
    if let Some(problem) = report.out_error {
        return io.invalid(&problem);
    }
    if report.summary.failed > 0 { 1 } else { 0 }
}

/// What the reporting thread accumulates.
struct Report<'p, 'f> {
    plan: &'p Plan<'f>,
    summary: Summary,
    out: Option<PathBuf>,
    /// The first seed file that could not be written; later ones are not tried.
    out_error: Option<String>,
    seed_files: u64,
}

impl Report<'_, '_> {
    /// Reports one run, in seed order: its JSON line, the summary, its seed file.
    fn report(&mut self, finished: Finished, io: &mut Io<'_>) -> Result<(), String> {
        let outcome = finished.result?;
        let scenario = self.plan.scenarios[finished.at].0.name();
        if let Some(line) = &finished.line {
            let _ = writeln!(io.out, "{line}");
        }
        let failure = match &outcome {
            Outcome::Fail { class, checker, .. } => Some((class.name(), checker.as_str())),
            Outcome::Pass | Outcome::Invalid(_) => None,
        };
        self.summary.add(RunBrief {
            seed: finished.seed,
            scenario,
            failure,
            wall_ns: finished.wall_ns,
        });
        if let (Some(dir), Outcome::Fail { class, checker, reason }, None) =
            (&self.out, &outcome, &self.out_error)
        {
            let (name, text) = seed_file(
                &self.plan.replay,
                finished.seed,
                scenario,
                class.name(),
                checker,
                reason,
            );
            let path = dir.join(name);
            match std::fs::write(&path, text) {
                Ok(()) => self.seed_files += 1,
                Err(error) => {
                    self.out_error =
                        Some(format!("--out: cannot write {}: {error}", path.display()))
                }
            }
        }
        Ok(())
    }
}

/// The seed file of a failing run: named to be copied into `seeds/` as it is, expecting
/// the class it failed with, and replaying with every flag the sweep ran it with.
pub(crate) fn seed_file(
    replay: &ReplayArgs,
    seed: u64,
    scenario: &str,
    class: &str,
    checker: &str,
    reason: &str,
) -> (String, String) {
    let mut text = String::from(
        "# Found by `sim sweep`. Copy it into seeds/; once the bug is fixed, say in `why` what\n\
         # went wrong and set `expect` to the outcome the fix gives (usually pass).\n",
    );
    let file = crate::seedfile::SeedFile {
        why: format!("{class} failure, checker {checker}: {reason}"),
        seed: seed.to_string(),
        scenario: Some(scenario.to_string()),
        sets: replay.sets.clone(),
        flags: replay.before.iter().chain(&replay.after).cloned().collect(),
        expect: crate::seedfile::parse_expect(class).flatten(),
    };
    text.push_str(&file.render());
    (format!("sweep-{scenario}-{seed}.seed"), text)
}

/// What the workers and the reporting thread share.
struct Shared {
    /// The next run index to hand out.
    next: AtomicU64,
    /// Set when the sweep stops early (bad input at a seed, or a panic): workers take no
    /// further run.
    stopped: AtomicBool,
    /// Runs reported so far (all below it are done).
    reported: Mutex<u64>,
    /// Signalled when `reported` grows or the sweep stops.
    moved: Condvar,
}

impl Shared {
    fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        // Taking the lock orders the store before any waiter's next check.
        drop(self.reported.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        self.moved.notify_all();
    }

    /// Waits until run `index` is inside the reorder window; false if the sweep stopped.
    fn wait_for_room(&self, index: u64) -> bool {
        let mut reported = self.reported.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Each wake-up follows a report or a stop; the run below the window is in progress
        // on another worker, so this ends.
        while index >= *reported + REORDER_WINDOW && !self.stopped.load(Ordering::Relaxed) {
            reported = self.moved.wait(reported).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        !self.stopped.load(Ordering::Relaxed)
    }

    fn advance(&self, reported: u64) {
        *self.reported.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = reported;
        self.moved.notify_all();
    }
}

/// Stops the sweep if its thread unwinds, so no worker waits for a run that will never be
/// reported.
struct StopOnPanic<'s>(&'s Shared);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop();
        }
    }
}

/// Runs every run of `plan` on `jobs` threads, reporting each in index order on this
/// thread. Bad input found at a seed stops the sweep and is returned.
fn execute(
    plan: &Plan<'_>,
    jobs: usize,
    io: &mut Io<'_>,
    report: &mut Report<'_, '_>,
    progress: &mut Progress,
) -> Result<(), String> {
    let shared = Shared {
        next: AtomicU64::new(0),
        stopped: AtomicBool::new(false),
        reported: Mutex::new(0),
        moved: Condvar::new(),
    };
    let json = io.json;
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::channel::<Finished>();
        for _ in 0..jobs {
            let sender = sender.clone();
            let shared = &shared;
            // Whole independent runs, each single-threaded and deterministic: the threads
            // share only the run counter and the reorder window.
            scope.spawn(move || work(plan, shared, &sender, json));
        }
        drop(sender);
        let _guard = StopOnPanic(&shared);
        let result = collect(plan, &shared, &receiver, io, report, progress);
        // Whether it ended or stopped early, no worker may wait for what will not come.
        shared.stop();
        result
    })
}

fn work(plan: &Plan<'_>, shared: &Shared, sender: &Sender<Finished>, json: bool) {
    let _guard = StopOnPanic(shared);
    // Bounded by the runs: each iteration takes a new index.
    loop {
        if shared.stopped.load(Ordering::Relaxed) {
            return;
        }
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        if index >= plan.runs || !shared.wait_for_room(index) {
            return;
        }
        if sender.send(plan.perform(index, json)).is_err() {
            return;
        }
    }
}

/// Receives finished runs and reports them in index order.
fn collect(
    plan: &Plan<'_>,
    shared: &Shared,
    receiver: &Receiver<Finished>,
    io: &mut Io<'_>,
    report: &mut Report<'_, '_>,
    progress: &mut Progress,
) -> Result<(), String> {
    let mut waiting: BTreeMap<u64, Finished> = BTreeMap::new();
    let (mut reported, mut received, mut failed) = (0u64, 0u64, 0u64);
    // Each iteration receives a run or waits WAKE_INTERVAL: bounded by the runs and the
    // time they take.
    while reported < plan.runs {
        let finished = match receiver.recv_timeout(WAKE_INTERVAL) {
            Ok(finished) => finished,
            Err(RecvTimeoutError::Timeout) => {
                progress.update(received, failed, wall_clock(), io.err);
                continue;
            }
            // Every worker is gone before every run came: one panicked, and the scope
            // passes its panic on.
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        received += 1;
        failed += u64::from(finished.failed());
        progress.update(received, failed, wall_clock(), io.err);
        debug_assert!(finished.index >= reported && finished.index < reported + REORDER_WINDOW);
        waiting.insert(finished.index, finished);
        let before = reported;
        while let Some(next) = waiting.remove(&reported) {
            report.report(next, io)?;
            reported += 1;
        }
        if reported != before {
            shared.advance(reported);
        }
    }
    debug_assert!(waiting.is_empty());
    Ok(())
}
