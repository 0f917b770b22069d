//! The `sim` command line: parse arguments, run, print, choose the exit code.
//!
//! `main_with` takes the arguments, the scenario catalog and two writers, so tests drive
//! the command line exactly as a user does, without spawning a process. The only reads of
//! the wall clock (to print `wall=`) and of OS entropy (to draw a seed when none is given)
//! in the simulator are here, each marked.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use tina_checkers::FailureClass;
use tina_scenarios::{ParamKind, ParamSpec, Scenario};

use crate::chain::causal_chain_lines;
use crate::config::{
    ConfigError, SHUTDOWN_DRAIN_DEFAULT_NS, SIM_PARAMS, Settings, format_duration, format_value,
    parse_duration, parse_seed, pick_scenario, shutdown_plan,
};
use crate::faults::knobs::{PROFILES, profile_value};
use crate::faults::{FAULT_KINDS, FaultConfig, KNOBS, Profile};
use crate::json::Json;
use crate::plant::{PLANTS, Plant, PlantKind};

use crate::run::{LogRequest, Outcome, RunConfig, RunReport, run, shutdown_line};
use crate::world::{Limits, ShutdownOutcome, ShutdownPlan};

const EXIT_CODES: &str = "\
Exit codes:
  0   pass: the scenario reached its goal and no checker objected
  2   invalid arguments or configuration
  10  correctness failure: a checker saw a property violated
  11  liveness failure: quiescence, --time-max, --events-max or liveness_time before the goal
      (with --shutdown-at: a limit before the shutdown finished, or a shard torn down at its
      deadline in a scenario that promises to drain)
  12  crash: the framework broke (a panic outside an isolate)
  13  nondeterminism: --check-determinism saw two runs of one seed differ

Faults: --faults none|default|chaos|swarm picks a profile, --fault NAME=VALUE sets one knob
(`sim list` shows every knob and its value in each profile). Without --scenario and --faults
the profile is swarm: the seed picks which fault kinds are on. With --scenario alone it is
default. With faults on, a run has a safety phase (faults injected for safety_time) and then
a liveness phase (faults stop, crashed shards and nodes recover) in which the goal must be
reached within liveness_time.

Examples:
  sim --seed 42
  sim --seed 7 --scenario bank --faults chaos
  sim --seed 3 --scenario dispatcher --faults none --fault shard_crash_every=200ms
  sim --seed 0x2a --scenario dispatcher --set jobs=500 --set crash_every=5
  sim --seed 7 --scenario ping-pong --log run.log --check-determinism
  sim --seed 1 --scenario dispatcher --trace-out run.json
  sim --seed 7 --scenario kv --faults chaos --shutdown-at 700ms --shutdown-drain 500ms
  sim list --json
  sim sweep --scenario bank --seeds 1..10001     (see `sim sweep --help`)";

/// Run one deterministic simulation: same seed, same run, byte for byte.
#[derive(Debug, Parser)]
#[command(name = "sim", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Root seed, decimal or 0x hex (printed in decimal). Drawn from OS entropy if absent.
    #[arg(long, value_parser = parse_seed)]
    seed: Option<u64>,
    /// Scenario to run (see `sim list`). Picked by the seed if absent.
    #[arg(long)]
    scenario: Option<String>,
    #[command(flatten)]
    run: RunFlags,
    /// Write the canonical replay log to PATH.
    #[arg(long, value_name = "PATH")]
    log: Option<PathBuf>,
    /// Write the run as a Chrome trace to FILE (JSON; open it in ui.perfetto.dev or
    /// chrome://tracing): a process per node, a thread per shard, a slice per handler
    /// call, flows from each send, timer or I/O to the handler it wakes, instants for
    /// faults, crashes and restarts; virtual time
    #[arg(long, value_name = "FILE")]
    trace_out: Option<PathBuf>,
    /// Replay a fuzz artifact (a file `cargo fuzz run scenarios` wrote) and print it as a
    /// seed file: seed, scenario, settings and stream overrides. With --plant, decode it as
    /// the fuzzer did with that plant on (TINA_FUZZ_PLANT).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["seed", "scenario", "sets", "faults", "fault_sets", "streams"]
    )]
    fuzz_input: Option<PathBuf>,
    /// When the run fails, shrink it (as `sim shrink` does) and print the smallest
    /// reproduction as a seed file.
    #[arg(long)]
    shrink: bool,
    /// Print one JSON object on stdout (human lines go to stderr).
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the scenarios, their parameters and the simulator's parameters.
    List,
    /// Run a range of seeds over every core (or one part of it, for one machine of many)
    /// and summarise them; `sim sweep merge` combines the parts.
    Sweep(Box<crate::sweep::SweepArgs>),
    /// Shrink a failing run: find a smaller run that fails with the same class from the
    /// same checker (fault kinds off, a shorter safety phase, shorter delays, a smaller
    /// workload, fewer stream overrides) and print it as a seed file.
    ///
    /// Give the run as a seed file (--seed-file) or as its flags after `--`:
    ///   sim shrink --seed-file seeds/plant-kv-stale-cache.seed
    ///   sim shrink -- --seed 7 --scenario kv --faults chaos --set ack_before_fsync=1
    #[command(verbatim_doc_comment)]
    Shrink(ShrinkArgs),
}

/// `sim shrink`'s own flags.
#[derive(Debug, Args)]
struct ShrinkArgs {
    /// The failing run, as a seed file.
    #[arg(long, value_name = "FILE")]
    seed_file: Option<PathBuf>,
    /// Most runs to try (the failing run included).
    #[arg(long, value_name = "N", default_value_t = crate::shrink::SHRINK_RUNS_MAX)]
    max_runs: u32,
    /// Most wall time to spend: <integer><ns|us|ms|s|m|h>.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    max_time: u64,
    /// Also write the smallest reproduction's seed file to FILE.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The failing run's flags (after `--`), as a plain run takes them.
    #[arg(last = true, value_name = "RUN FLAGS")]
    run: Vec<String>,
}

/// The flags that shape a run, shared by a plain run and `sim sweep`: every one of them is
/// part of what a seed means, so a reproduce line or a seed file repeats them
/// (`Shape::replay_args`).
#[derive(Debug, Args)]
pub(crate) struct RunFlags {
    /// Set a scenario or simulator parameter, e.g. --set round_trips=500 --set dispatch_cost=2us.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) sets: Vec<String>,
    /// Fault profile: none, default, chaos or swarm. Absent: swarm when --scenario is absent
    /// too, else default.
    #[arg(long, value_name = "PROFILE")]
    pub(crate) faults: Option<String>,
    /// Set one fault knob (after the profile), e.g. --fault shard_crash_every=500ms.
    #[arg(long = "fault", value_name = "NAME=VALUE")]
    pub(crate) fault_sets: Vec<String>,
    /// Perturb one decision stream: SITE=VALUE (a u64), e.g. --stream scheduler.pick=7.
    /// Only that site's draws change; the fuzzer steers runs this way, and its artifacts
    /// replay as a seed plus these (see `--fuzz-input`). Sites: `sim list`.
    #[arg(long = "stream", value_name = "SITE=VALUE")]
    pub(crate) streams: Vec<String>,
    /// Stop with a liveness failure past this virtual time: <integer><ns|us|ms|s|m|h>.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1h")]
    pub(crate) time_max: u64,
    /// Stop with a liveness failure after this many trace events.
    #[arg(long, value_name = "N", default_value_t = EVENTS_MAX_DEFAULT)]
    pub(crate) events_max: u64,
    /// Run the seed twice in this process and report the first diverging event.
    #[arg(long)]
    pub(crate) check_determinism: bool,
    /// Switch on a planted bug (see `sim list`): it picks its scenario and settings; a world
    /// or trace plant also runs in the scenario --scenario names.
    #[arg(long, value_name = "NAME")]
    pub(crate) plant: Option<String>,
    /// Skip the structural checkers (only to measure what they cost; the scenario's own
    /// goal still judges the run).
    #[arg(long)]
    pub(crate) no_checkers: bool,
    /// Fail the run (correctness) at the first dropped message, for protocols that promise
    /// no shedding; the failure names the drop. Drops a crash causes count too, so use it
    /// with fault profiles without crashes
    #[arg(long)]
    pub(crate) fail_on_drop: bool,
    /// Fail the run (correctness) at the first isolate that crashes or fails its init, for
    /// systems where every crash is a bug (isolates that assert their invariants); crashes
    /// the fault model injects are excused
    #[arg(long)]
    pub(crate) fail_on_crash: bool,
    /// Shut the run down gracefully at this virtual time: <integer><ns|us|ms|s|m|h>. Fault
    /// injection stops (nothing down comes back), every shard that is up begins its
    /// shutdown (each isolate gets a shutdown message; no spawn, no restart), and the world
    /// runs on through the drain; the run ends when every shard has drained or its deadline
    /// passed. It passes if no checker objects (the scenario's goal is not required) and,
    /// for a scenario that promises to drain (kv), if every shard drained
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) shutdown_at: Option<u64>,
    /// How long the shards may drain after --shutdown-at, on each node's clock, before what
    /// is still alive is torn down: <integer><ns|us|ms|s|m|h> [default: 1s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) shutdown_drain: Option<u64>,
}

impl RunFlags {
    /// Whether every flag is at its default (none was given).
    fn is_default(&self) -> bool {
        let RunFlags {
            sets,
            faults,
            fault_sets,
            streams,
            time_max,
            events_max,
            check_determinism,
            plant,
            no_checkers,
            fail_on_drop,
            fail_on_crash,
            shutdown_at,
            shutdown_drain,
        } = self;
        sets.is_empty()
            && faults.is_none()
            && fault_sets.is_empty()
            && streams.is_empty()
            && *time_max == TIME_MAX_DEFAULT_NS
            && *events_max == EVENTS_MAX_DEFAULT
            && !check_determinism
            && plant.is_none()
            && !no_checkers
            && !fail_on_drop
            && !fail_on_crash
            && shutdown_at.is_none()
            && shutdown_drain.is_none()
    }
}

/// `--time-max`'s default, one simulated hour, in nanoseconds.
const TIME_MAX_DEFAULT_NS: u64 = 3_600_000_000_000;
/// `--events-max`'s default.
const EVENTS_MAX_DEFAULT: u64 = 100_000_000;

/// Where the command writes, and which scenarios it knows.
pub(crate) struct Io<'a> {
    pub(crate) out: &'a mut dyn Write,
    pub(crate) err: &'a mut dyn Write,
    pub(crate) catalog: &'a [&'static dyn Scenario],
    pub(crate) json: bool,
    /// The name the program was started with, for the reproduce line.
    pub(crate) program: String,
}

impl Io<'_> {
    /// A human line: to stdout, or to stderr when stdout carries JSON. Output errors (a
    /// closed pipe) are ignored: the exit code still tells the result.
    pub(crate) fn say(&mut self, line: &str) {
        let target: &mut dyn Write = if self.json { &mut *self.err } else { &mut *self.out };
        let _ = writeln!(target, "{line}");
    }

    pub(crate) fn invalid(&mut self, error: &dyn std::fmt::Display) -> u8 {
        let _ = writeln!(self.err, "error: {error}");
        2
    }
}

/// The whole `sim` command line over `catalog`, for a user's own binary:
///
/// ```no_run
/// use std::process::ExitCode;
/// use tina_scenarios::Scenario;
///
/// // The project's catalog here; a user's crate lists its own `&'static` scenarios.
/// fn main() -> ExitCode {
///     tina_sim::cli::main(tina_scenarios::catalog())
/// }
/// ```
///
/// It reads the process's arguments and writes to its standard streams; its `reproduce:`
/// line names the binary that is running (see `program_command`).
pub fn main(catalog: &[&'static dyn Scenario]) -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let code = main_with(&args, catalog, &mut std::io::stdout(), &mut std::io::stderr());
    std::process::ExitCode::from(code)
}

/// Runs the command line `args` (the first is the program name) against `catalog`, writing
/// to `out` and `err`; returns the exit code. A panic outside the world is class crash.
pub fn main_with(
    args: &[String],
    catalog: &[&'static dyn Scenario],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let target: &mut dyn Write = if error.use_stderr() { err } else { out };
            let _ = write!(target, "{}", error.render());
            return u8::try_from(error.exit_code()).unwrap_or(2);
        }
    };
    let program = args.first().cloned().unwrap_or_else(|| "sim".to_string());
    let mut io = Io { out, err, catalog, json: cli.json, program };
    // Flags before `sweep` are the plain run's and would be silently ignored.
    let run_flags_given = cli.seed.is_some()
        || cli.scenario.is_some()
        || cli.log.is_some()
        || cli.trace_out.is_some()
        || !cli.run.is_default();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        match cli.command {
        Some(Command::List) => list(&mut io),
        Some(Command::Sweep(_)) if run_flags_given => io.invalid(
            &"flags before `sweep` belong to a single run; write them after it: sim sweep --seeds A..B [FLAGS]",
        ),
        Some(Command::Sweep(args)) => crate::sweep::main(&args, &mut io),
        Some(Command::Shrink(ref args)) => shrink_command(args, &mut io),
        None if cli.fuzz_input.is_some() => fuzz_replay(&cli, &mut io),
        None => simulate(&cli, &mut io),
    }
    }));
    outcome.unwrap_or_else(|_| {
        io.say("result: fail (crash) the simulator panicked outside the world");
        12
    })
}

fn list(io: &mut Io<'_>) -> u8 {
    if io.json {
        let scenarios = io
            .catalog
            .iter()
            .map(|s| {
                Json::object([
                    ("name", Json::string(s.name())),
                    ("description", Json::string(s.description())),
                    ("parameters", params_json(s.params())),
                ])
            })
            .collect();
        let plants = usable_plants(io.catalog)
            .map(|p| {
                Json::object([
                    ("name", Json::string(p.name)),
                    ("kind", Json::string(p.kind().name())),
                    ("scenario", Json::string(p.scenario)),
                    ("checker", Json::string(p.checker)),
                    ("class", Json::string(p.class.name())),
                    ("seed", Json::Number(p.seed)),
                    ("fault_profile", Json::string(p.profile.name())),
                    ("faults", Json::Array(p.faults.iter().map(|f| Json::string(*f)).collect())),
                    ("description", Json::string(p.description)),
                ])
            })
            .collect();
        let faults = FAULT_KINDS
            .iter()
            .map(|kind| {
                Json::object([
                    ("name", Json::string(kind.name())),
                    ("description", Json::string(kind.description())),
                ])
            })
            .collect();
        let knobs = KNOBS
            .iter()
            .map(|knob| {
                let mut entries = vec![
                    ("name", Json::string(knob.name)),
                    ("fault", knob.switch.map_or(Json::Null, |kind| Json::string(kind.name()))),
                    ("description", Json::string(knob.description)),
                ];
                for profile in PROFILES {
                    entries.push((profile.name(), Json::string(profile_value(knob, profile))));
                }
                Json::object(entries)
            })
            .collect();
        let all = Json::object([
            ("scenarios", Json::Array(scenarios)),
            ("simulator", params_json(SIM_PARAMS)),
            ("faults", Json::Array(faults)),
            ("knobs", Json::Array(knobs)),
            ("plants", Json::Array(plants)),
            ("sites", Json::Array(crate::prng::SITES.iter().map(|s| Json::string(*s)).collect())),
        ]);
        let _ = writeln!(io.out, "{}", all.render());
        return 0;
    }
    let _ = writeln!(io.out, "scenarios:");
    for scenario in io.catalog {
        let _ = writeln!(io.out, "  {:<12} {}", scenario.name(), scenario.description());
        print_params(io.out, scenario.params());
    }
    let _ = writeln!(io.out, "simulator parameters (any scenario):");
    print_params(io.out, SIM_PARAMS);
    let _ = writeln!(io.out, "fault kinds (counted in --json's faults object):");
    for kind in FAULT_KINDS {
        let _ = writeln!(io.out, "  {:<18} {}", kind.name(), kind.description());
    }
    let _ = writeln!(
        io.out,
        "fault knobs (--fault NAME=VALUE) and their values in each profile (--faults PROFILE):"
    );
    let _ = writeln!(
        io.out,
        "  {:<30} {:>9} {:>9} {:>9} {:>9}",
        "", "none", "default", "chaos", "swarm"
    );
    for knob in KNOBS {
        let values: Vec<String> = PROFILES.iter().map(|&p| profile_value(&knob, p)).collect();
        let _ = writeln!(
            io.out,
            "  {:<30} {:>9} {:>9} {:>9} {:>9}  {}",
            knob.name, values[0], values[1], values[2], values[3], knob.description
        );
    }
    let _ = writeln!(
        io.out,
        "plants (--plant NAME; each must trip its checker; world and trace plants run with any --scenario):"
    );
    for p in usable_plants(io.catalog) {
        let _ = writeln!(
            io.out,
            "  {:<22} {:<9} {:<11} -> {} ({}), caught with --seed {}: {}",
            p.name,
            p.kind().name(),
            p.scenario,
            p.checker,
            p.class.name(),
            p.seed,
            p.description
        );
    }
    let _ = writeln!(
        io.out,
        "decision sites (--stream SITE=VALUE perturbs one site's draws):\n  {}\n  net.link.<{}>.to-<node>",
        crate::prng::SITES.join(" "),
        crate::prng::LINK_DECISIONS.join("|")
    );
    let _ = writeln!(io.out, "structural checkers (on for every run):");
    for (name, what) in tina_checkers::STRUCTURAL {
        let _ = writeln!(io.out, "  {name:<12} {what}");
    }
    0
}

/// The plants that can run over `catalog`: world and trace plants always, a scenario plant
/// if the catalog has its scenario.
fn usable_plants(catalog: &[&'static dyn Scenario]) -> impl Iterator<Item = &'static Plant> {
    PLANTS.iter().filter(|plant| {
        plant.kind() != PlantKind::Scenario || catalog.iter().any(|s| s.name() == plant.scenario)
    })
}

fn print_params(out: &mut dyn Write, params: &[ParamSpec]) {
    for p in params {
        let range = format!("{}..={}", format_value(p.kind, p.min), format_value(p.kind, p.max));
        let setting = format!("{}={}", p.name, format_value(p.kind, p.default));
        let _ = writeln!(out, "      {setting:<26} {} ({range})", p.description);
    }
}

fn params_json(params: &[ParamSpec]) -> Json {
    let kind = |k: ParamKind| if k == ParamKind::Count { "count" } else { "duration" };
    Json::Array(
        params
            .iter()
            .map(|p| {
                Json::object([
                    ("name", Json::string(p.name)),
                    ("kind", Json::string(kind(p.kind))),
                    ("default", Json::Number(p.default)),
                    ("min", Json::Number(p.min)),
                    ("max", Json::Number(p.max)),
                    ("description", Json::string(p.description)),
                ])
            })
            .collect(),
    )
}

fn simulate(cli: &Cli, io: &mut Io<'_>) -> u8 {
    let seed = cli.seed.unwrap_or_else(entropy_seed);
    let named: Vec<String> = cli.scenario.iter().cloned().collect();
    let shape = match Shape::resolve(&cli.run, &named, io.catalog) {
        Ok(shape) => shape,
        Err(message) => return io.invalid(&message),
    };
    let scenario = shape.scenario_of(seed, 0, io.catalog);
    let settings = match shape.settings(scenario) {
        Ok(settings) => settings,
        Err(error) => return io.invalid(&error),
    };
    let faults = match shape.faults(seed) {
        Ok(faults) => faults,
        Err(error) => return io.invalid(&error),
    };
    if let Some(path) = &cli.trace_out
        && let Err(error) = std::fs::File::create(path)
    {
        return io.invalid(&format!("--trace-out {}: cannot write it: {error}", path.display()));
    }
    let header = settings.describe(scenario).join(" ");
    io.say(&format!("seed={seed} scenario={} {header}", scenario.name()));
    io.say(&faults_line(&faults));
    let mut config = shape.config(seed, scenario, settings, faults);
    config.log = cli.log.clone().map_or(LogRequest::None, LogRequest::File);
    config.trace_out = cli.trace_out.clone();
    let (report, wall) = timed(|| run(&config));
    let code = report_result(&shape, io, &config, &report, wall);
    if cli.shrink && (10..=13).contains(&code) {
        let budget = ShrinkArgs {
            seed_file: None,
            max_runs: crate::shrink::SHRINK_RUNS_MAX,
            max_time: u64::try_from(crate::shrink::SHRINK_TIME_MAX.as_nanos()).unwrap_or(u64::MAX),
            out: None,
            run: Vec::new(),
        };
        let _ = shrink_and_report(&budget, candidate(&shape, seed, scenario), io);
    }
    code
}

/// `--fuzz-input FILE`: decodes the artifact as the fuzz target does, runs it through this
/// command line, then prints the equivalent seed file.
fn fuzz_replay(cli: &Cli, io: &mut Io<'_>) -> u8 {
    let Some(path) = &cli.fuzz_input else { return simulate(cli, io) };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) => {
            return io.invalid(&format!("cannot read fuzz input {}: {error}", path.display()));
        }
    };
    let plant = match cli.run.plant.as_deref().map(|name| (name, crate::plant::find(name))) {
        None => None,
        Some((_, Some(plant))) => Some(plant),
        Some((name, None)) => {
            let valid: Vec<&str> = PLANTS.iter().map(|p| p.name).collect();
            return io
                .invalid(&format!("unknown plant {name:?}; valid plants: {}", valid.join(", ")));
        }
    };
    let case = match crate::fuzz::FuzzCase::from_bytes(&bytes, io.catalog, plant) {
        Ok(case) => case,
        Err(error) => return io.invalid(&format!("{}: {error}", path.display())),
    };
    let mut args = vec![io.program.clone()];
    args.extend(case.args());
    args.extend(passed_through(cli));
    let code = {
        let (out, err) = (&mut *io.out, &mut *io.err);
        main_with(&args, io.catalog, out, err)
    };
    let expect = match code {
        0 => "pass",
        10 => FailureClass::Correctness.name(),
        11 => FailureClass::Liveness.name(),
        12 => FailureClass::Crash.name(),
        13 => FailureClass::Nondeterminism.name(),
        _ => return code,
    };
    let name = path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let why = format!("fuzz input {name}");
    let file = case.seed_file(&why, expect);
    io.say(&format!("equivalent seed file (save it in seeds/ to keep it):\n{}", file.trim_end()));
    code
}

/// The flags of `cli` that shape output or limits but not the run's decisions, for a run
/// made from other arguments (a fuzz input).
fn passed_through(cli: &Cli) -> Vec<String> {
    let flags = &cli.run;
    let mut args = Vec::new();
    if flags.time_max != TIME_MAX_DEFAULT_NS {
        args.extend(["--time-max".to_string(), format_duration(flags.time_max)]);
    }
    if flags.events_max != EVENTS_MAX_DEFAULT {
        args.extend(["--events-max".to_string(), flags.events_max.to_string()]);
    }
    if let Some(log) = &cli.log {
        args.extend(["--log".to_string(), log.display().to_string()]);
    }
    if let Some(trace) = &cli.trace_out {
        args.extend(["--trace-out".to_string(), trace.display().to_string()]);
    }
    for (on, flag) in [
        (flags.check_determinism, "--check-determinism"),
        (flags.no_checkers, "--no-checkers"),
        (flags.fail_on_drop, "--fail-on-drop"),
        (flags.fail_on_crash, "--fail-on-crash"),
        (cli.json, "--json"),
    ] {
        if on {
            args.push(flag.to_string());
        }
    }
    args
}

/// `sim shrink`: reads the run (a seed file or flags), shrinks it, prints the result.
fn shrink_command(args: &ShrinkArgs, io: &mut Io<'_>) -> u8 {
    let flags: Vec<String> = match (&args.seed_file, args.run.is_empty()) {
        (Some(_), false) => {
            return io.invalid(
                &"give the run either as --seed-file FILE or as flags after --, not both",
            );
        }
        (None, true) => {
            return io.invalid(
                &"give the failing run: sim shrink --seed-file FILE, or sim shrink -- --seed N --scenario NAME ...",
            );
        }
        (None, false) => args.run.clone(),
        (Some(path), true) => {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(error) => {
                    return io
                        .invalid(&format!("cannot read seed file {}: {error}", path.display()));
                }
            };
            match crate::seedfile::parse(&path.display().to_string(), &text) {
                Ok(file) => {
                    if let Some(name) = &file.scenario
                        && !io.catalog.iter().any(|s| s.name() == name)
                    {
                        let valid: Vec<&str> = io.catalog.iter().map(|s| s.name()).collect();
                        return io.invalid(&format!(
                            "{}: the seed file is for scenario {name}, which this catalog does not have (it has {})",
                            path.display(),
                            valid.join(", ")
                        ));
                    }
                    file.args()
                }
                Err(error) => return io.invalid(&error),
            }
        }
    };
    let mut argv = vec![io.program.clone()];
    argv.extend(flags);
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) if cli.command.is_none() && cli.fuzz_input.is_none() => cli,
        Ok(_) => {
            return io.invalid(&"the run to shrink is a plain run: no subcommand, no --fuzz-input");
        }
        Err(error) => return io.invalid(&format!("the run to shrink: {}", error.render())),
    };
    let plant_seed = cli.run.plant.as_deref().and_then(crate::plant::find).map(|p| p.seed);
    let Some(seed) = cli.seed.or(plant_seed) else {
        return io.invalid(&"the run to shrink needs its --seed");
    };
    let named: Vec<String> = cli.scenario.iter().cloned().collect();
    let shape = match Shape::resolve(&cli.run, &named, io.catalog) {
        Ok(shape) => shape,
        Err(message) => return io.invalid(&message),
    };
    let scenario = shape.scenario_of(seed, 0, io.catalog);
    shrink_and_report(args, candidate(&shape, seed, scenario), io)
}

/// The run of `seed` in `scenario` with `shape`'s flags, as the shrinker's first candidate.
fn candidate(
    shape: &Shape<'_>,
    seed: u64,
    scenario: &'static dyn Scenario,
) -> crate::shrink::Candidate {
    let flags = shape.flags;
    crate::shrink::Candidate {
        seed,
        scenario,
        profile: shape.profile,
        plant: shape.plant,
        sets: flags.sets.clone(),
        faults: flags.fault_sets.clone(),
        streams: flags.streams.clone(),
        flags: shape.replay_args().after,
    }
}

/// Shrinks `start` within the budget `args` gives and prints the report.
#[expect(clippy::disallowed_methods, reason = "the shrink budget is wall time, read by the CLI")]
fn shrink_and_report(args: &ShrinkArgs, start: crate::shrink::Candidate, io: &mut Io<'_>) -> u8 {
    let began = Instant::now();
    let max_time = Duration::from_nanos(args.max_time);
    let out_of_time = || began.elapsed() >= max_time;
    let budget = crate::shrink::Budget { runs_max: args.max_runs, out_of_time: &out_of_time };
    let shrunk = match crate::shrink::shrink(start, io.catalog, &budget) {
        Ok(shrunk) => shrunk,
        Err(error) => return io.invalid(&error),
    };
    let mut text = Vec::new();
    crate::shrink::report(&mut text, &shrunk, &io.program);
    let text = String::from_utf8_lossy(&text);
    io.say(text.trim_end());
    io.say(&format!("shrink: {} runs in {:.1}s", shrunk.runs, began.elapsed().as_secs_f64()));
    if let Some(path) = &args.out {
        let (class, checker) = shrunk.verdict.failure.clone().unwrap_or_default();
        let why = format!(
            "shrunk: {class} from {checker}, {} events (from {})",
            shrunk.verdict.events, shrunk.events_before
        );
        if let Err(error) = std::fs::write(path, shrunk.best.seed_file(&why, &class)) {
            return io.invalid(&format!("cannot write {}: {error}", path.display()));
        }
    }
    0
}

/// Which scenarios the flags run: the ones `--scenario` names (in its order), or the one a
/// plant implies, or, with neither, the one each seed picks from the whole catalog.
#[derive(Debug)]
pub(crate) enum Choice {
    /// These, for every seed.
    Named(Vec<&'static dyn Scenario>),
    /// The catalog's scenario each seed picks (`pick_scenario`).
    Picked,
}

/// The run-shaping flags resolved and checked before any seed is known: the plant, the
/// scenarios, the fault profile. A plain run and a sweep build their `RunConfig`s from it,
/// so both judge a seed identically and write the same reproduce arguments.
#[derive(Debug)]
pub(crate) struct Shape<'f> {
    /// The flags as given.
    pub(crate) flags: &'f RunFlags,
    /// The planted bug, if any.
    pub(crate) plant: Option<&'static Plant>,
    /// The scenarios.
    pub(crate) choice: Choice,
    /// The fault profile: `--faults`, else the plant's, else swarm without `--scenario`
    /// and default with it.
    pub(crate) profile: Profile,
    /// The graceful shutdown (`--shutdown-at`, `--shutdown-drain`), checked.
    pub(crate) shutdown: Option<ShutdownPlan>,
}

impl<'f> Shape<'f> {
    /// Resolves `flags` with the scenario names given (none: the plant's, or the seed's
    /// pick). Every error is a message saying what to fix.
    pub(crate) fn resolve(
        flags: &'f RunFlags,
        named: &[String],
        catalog: &[&'static dyn Scenario],
    ) -> Result<Shape<'f>, String> {
        let plant = resolve_plant(flags.plant.as_deref(), named, catalog)?;
        let choice = if let Some(first) = named.first() {
            let mut scenarios: Vec<&'static dyn Scenario> = Vec::with_capacity(named.len());
            for name in named {
                let Some(scenario) = catalog.iter().copied().find(|s| s.name() == name) else {
                    let valid = catalog.iter().map(|s| s.name()).collect();
                    let error = ConfigError::UnknownScenario { name: name.clone(), valid };
                    return Err(error.to_string());
                };
                if scenarios.iter().any(|s| s.name() == name) {
                    return Err(format!("scenario {name} is named twice; name each once"));
                }
                scenarios.push(scenario);
            }
            debug_assert_eq!(scenarios[0].name(), first);
            Choice::Named(scenarios)
        } else if let Some(plant) = plant {
            match catalog.iter().copied().find(|s| s.name() == plant.scenario) {
                Some(scenario) => Choice::Named(vec![scenario]),
                None => {
                    return Err(format!(
                        "plant {} runs scenario {} unless told otherwise, and this catalog has none; give --scenario NAME",
                        plant.name, plant.scenario
                    ));
                }
            }
        } else if catalog.is_empty() {
            return Err("the catalog has no scenario to run".to_string());
        } else {
            Choice::Picked
        };
        let profile_name = flags.faults.as_deref().or(plant.map(|p| p.profile.name())).unwrap_or(
            if named.is_empty() { Profile::Swarm.name() } else { Profile::Default.name() },
        );
        let profile = Profile::parse(profile_name).map_err(|error| error.to_string())?;
        let shutdown = shutdown_plan(flags.shutdown_at, flags.shutdown_drain, flags.time_max)
            .map_err(|error| error.to_string())?;
        Ok(Shape { flags, plant, choice, profile, shutdown })
    }

    /// The scenario of `seed`: the `at`-th named one, or the seed's pick from `catalog`.
    pub(crate) fn scenario_of(
        &self,
        seed: u64,
        at: usize,
        catalog: &[&'static dyn Scenario],
    ) -> &'static dyn Scenario {
        match &self.choice {
            Choice::Named(scenarios) => scenarios[at],
            Choice::Picked => {
                let names: Vec<&str> = catalog.iter().map(|s| s.name()).collect();
                catalog[pick_scenario(seed, &names)]
            }
        }
    }

    /// The parameters of `scenario`: the plant's settings when it is the plant's own
    /// scenario (with another, only the user's apply), then every `--set`.
    pub(crate) fn settings(&self, scenario: &dyn Scenario) -> Result<Settings, ConfigError> {
        let mut sets: Vec<String> = self
            .plant
            .filter(|p| p.scenario == scenario.name())
            .map_or_else(Vec::new, |p| p.settings());
        sets.extend(self.flags.sets.iter().cloned());
        let mut settings = Settings::new(scenario, &sets)?;
        for stream in &self.flags.streams {
            settings.stream(stream)?;
        }
        Ok(settings)
    }

    /// The faults of `seed`: the profile (for swarm, the seed's draw), then the plant's
    /// knobs, then the user's `--fault`s, checked together.
    pub(crate) fn faults(&self, seed: u64) -> Result<FaultConfig, crate::faults::KnobError> {
        let mut faults = FaultConfig::new(self.profile, seed);
        for set in self.plant.map_or(&[][..], |p| p.faults) {
            faults.set(set)?;
        }
        for set in &self.flags.fault_sets {
            faults.set(set)?;
        }
        faults.validate()?;
        Ok(faults)
    }

    /// The run of `seed` in `scenario` (no replay log).
    pub(crate) fn config(
        &self,
        seed: u64,
        scenario: &'static dyn Scenario,
        settings: Settings,
        faults: FaultConfig,
    ) -> RunConfig {
        let flags = self.flags;
        RunConfig {
            seed,
            scenario: scenario.into(),
            settings,
            limits: Limits { time_max_ns: flags.time_max, events_max: flags.events_max },
            log: LogRequest::None,
            trace_out: None,
            check_determinism: flags.check_determinism
                || self.plant.is_some_and(|p| p.class == FailureClass::Nondeterminism),
            plant: self.plant,
            checkers: !flags.no_checkers,
            faults,
            fail_on_drop: flags.fail_on_drop,
            fail_on_crash: flags.fail_on_crash,
            shutdown: self.shutdown,
        }
    }

    /// The arguments besides `--seed` and `--scenario` that replay a run of this shape:
    /// the `--set`s, and every other flag (the profile always, since a run with
    /// `--scenario` defaults to another one than a run without).
    pub(crate) fn replay_args(&self) -> ReplayArgs {
        let flags = self.flags;
        let mut other = vec!["--faults".to_string(), self.profile.name().to_string()];
        if let Some(plant) = &flags.plant {
            other.extend(["--plant".to_string(), plant.clone()]);
        }
        for set in &flags.fault_sets {
            other.extend(["--fault".to_string(), set.clone()]);
        }
        for stream in &flags.streams {
            other.extend(["--stream".to_string(), stream.clone()]);
        }
        let mut tail = Vec::new();
        if flags.time_max != TIME_MAX_DEFAULT_NS {
            tail.extend(["--time-max".to_string(), format_duration(flags.time_max)]);
        }
        if flags.events_max != EVENTS_MAX_DEFAULT {
            tail.extend(["--events-max".to_string(), flags.events_max.to_string()]);
        }
        if let Some(plan) = self.shutdown {
            tail.extend(["--shutdown-at".to_string(), format_duration(plan.at_ns)]);
            if plan.drain_ns != SHUTDOWN_DRAIN_DEFAULT_NS {
                tail.extend(["--shutdown-drain".to_string(), format_duration(plan.drain_ns)]);
            }
        }
        let switches = [
            (flags.check_determinism, "--check-determinism"),
            (flags.no_checkers, "--no-checkers"),
            (flags.fail_on_drop, "--fail-on-drop"),
            (flags.fail_on_crash, "--fail-on-crash"),
        ];
        tail.extend(switches.iter().filter(|(on, _)| *on).map(|(_, flag)| flag.to_string()));
        ReplayArgs { sets: flags.sets.clone(), before: other, after: tail }
    }
}

/// The arguments that replay a run, apart from its seed and scenario; a reproduce line
/// writes them in the order `before`, `--set`s, `after`, and a seed file puts the `--set`s
/// on `set:` lines and the rest on its `flags:` line.
#[derive(Clone, Debug)]
pub(crate) struct ReplayArgs {
    /// `KEY=VALUE` of each `--set`.
    pub(crate) sets: Vec<String>,
    /// `--faults`, `--plant` and `--fault` flags with their values.
    pub(crate) before: Vec<String>,
    /// Limits and switches.
    pub(crate) after: Vec<String>,
}

/// The plant `--plant` names, checked against the scenarios named and the catalog.
fn resolve_plant(
    name: Option<&str>,
    named: &[String],
    catalog: &[&'static dyn Scenario],
) -> Result<Option<&'static Plant>, String> {
    let Some(name) = name else { return Ok(None) };
    let Some(plant) = crate::plant::find(name) else {
        let valid: Vec<&str> = PLANTS.iter().map(|p| p.name).collect();
        return Err(format!("unknown plant {name:?}; valid plants: {}", valid.join(", ")));
    };
    if plant.kind() != PlantKind::Scenario {
        return Ok(Some(plant));
    }
    // A scenario plant is a bug in one scenario's isolates; world and trace plants are bugs
    // of the simulator and the core, and run with any scenario.
    if named.iter().any(|n| n != plant.scenario) {
        return Err(format!(
            "plant {} is a bug in scenario {}; drop --scenario or use --scenario {}",
            plant.name, plant.scenario, plant.scenario
        ));
    }
    if !catalog.iter().any(|s| s.name() == plant.scenario) {
        let usable: Vec<&str> = usable_plants(catalog).map(|p| p.name).collect();
        return Err(format!(
            "plant {} is a bug in scenario {}, which this catalog does not have; plants that run with any scenario: {}",
            plant.name,
            plant.scenario,
            usable.join(", ")
        ));
    }
    Ok(Some(plant))
}

/// `faults: PROFILE kinds...`: which fault kinds are on (for swarm, with the seed's scale).
fn faults_line(faults: &FaultConfig) -> String {
    let kinds: Vec<String> = if faults.profile == Profile::Swarm {
        faults.swarm.iter().map(|(kind, scale)| format!("{}({scale})", kind.name())).collect()
    } else {
        faults.kinds_on().into_iter().map(str::to_string).collect()
    };
    let on = if kinds.is_empty() { "off".to_string() } else { kinds.join(" ") };
    format!("faults: {} {on}", faults.profile.name())
}

#[expect(clippy::disallowed_methods, reason = "the sim binary prints the wall time of a run")]
fn timed<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = work();
    (value, start.elapsed())
}

#[expect(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the command line is the one place a seed is drawn from OS entropy"
)]
fn entropy_seed() -> u64 {
    use std::hash::BuildHasher;
    // std seeds each RandomState from OS entropy; hashing a constant exposes it.
    std::collections::hash_map::RandomState::new().hash_one(0x7469_6e61u64)
}

fn report_result(
    shape: &Shape<'_>,
    io: &mut Io<'_>,
    config: &RunConfig,
    report: &RunReport,
    wall: Duration,
) -> u8 {
    let scenario = &*config.scenario;
    let stats = format!(
        "events={} sim_time={} wall={}ms trace={:016x}",
        report.events,
        report.sim_time_ns,
        wall.as_millis(),
        report.trace
    );
    let notable = report.notable_counters();
    if !notable.is_empty() {
        let fields: Vec<String> = notable.iter().map(|(k, v)| format!("{k}={v}")).collect();
        io.say(&format!("counters: {}", fields.join(" ")));
    }
    if let Some(shards) = &report.shutdown {
        let drained =
            shards.iter().filter(|s| matches!(s.outcome, ShutdownOutcome::Drained(_))).count();
        io.say(&format!(
            "shutdown: {drained} of {} shards drained: {}",
            shards.len(),
            shutdown_line(shards)
        ));
    }
    let code = match &report.outcome {
        Outcome::Pass => {
            io.say(&format!("result: pass {stats}"));
            0
        }
        Outcome::Fail { class, checker, reason } => {
            if let Some(divergence) = &report.divergence {
                io.say(&format!("first divergence at event {}:", divergence.index));
                io.say(&format!("  run 1: {}", divergence.first.as_deref().unwrap_or("(ended)")));
                io.say(&format!("  run 2: {}", divergence.second.as_deref().unwrap_or("(ended)")));
            }
            if let Some(index) = report.violation_index {
                io.say(&format!("violation at event {index} ({checker}): {reason}"));
                io.say("events up to it:");
                for line in &report.last_events {
                    io.say(&format!("  {line}"));
                }
                for line in causal_chain_lines(&report.causal_chain) {
                    io.say(&line);
                }
            }
            let command = reproduce(shape, &io.program, config.seed, scenario);
            io.say(&format!("reproduce: {command}"));
            io.say(&format!("result: fail ({class}) {stats} {checker}: {reason}"));
            exit_code(*class)
        }
        Outcome::Invalid(problem) => {
            io.say(&format!("result: invalid scenario {}: {problem}", scenario.name()));
            let _ = writeln!(io.err, "error: scenario {}: {problem}", scenario.name());
            2
        }
    };
    if io.json {
        let _ = writeln!(io.out, "{}", report_json(config, report, wall).render());
    }
    code
}

/// The exit code of a failure class.
pub fn exit_code(class: FailureClass) -> u8 {
    match class {
        FailureClass::Correctness => 10,
        FailureClass::Liveness => 11,
        FailureClass::Crash => 12,
        FailureClass::Nondeterminism => 13,
    }
}

/// How to run this binary again, from the name it was started with (`args[0]`): `cargo
/// run --bin NAME --` for a binary in a cargo target directory or given by name alone
/// (`--release` unless it was a debug build), else the path as given.
pub fn program_command(program: &str) -> String {
    let path = std::path::Path::new(program);
    let name = path.file_stem().and_then(|stem| stem.to_str()).unwrap_or(program);
    let parent = path.parent().and_then(|dir| dir.file_name()).and_then(|dir| dir.to_str());
    let in_target = path.parent().and_then(|dir| dir.parent()).and_then(|dir| dir.file_name())
        == Some(std::ffi::OsStr::new("target"));
    match parent {
        None | Some("") => format!("cargo run --release --bin {name} --"),
        Some("debug") if in_target => format!("cargo run --bin {name} --"),
        Some(_) if in_target => format!("cargo run --release --bin {name} --"),
        Some(_) => program.to_string(),
    }
}

/// The command that replays this run: seed, scenario and every flag that changes the run.
fn reproduce(shape: &Shape<'_>, program: &str, seed: u64, scenario: &dyn Scenario) -> String {
    let replay = shape.replay_args();
    let mut command =
        format!("{} --seed {seed} --scenario {}", program_command(program), scenario.name());
    let sets = replay.sets.iter().flat_map(|set| ["--set", set.as_str()]);
    for arg in replay
        .before
        .iter()
        .map(String::as_str)
        .chain(sets)
        .chain(replay.after.iter().map(String::as_str))
    {
        command.push(' ');
        command.push_str(arg);
    }
    command
}

/// The JSON object of one run, as `--json` prints it (a sweep prints one per run).
pub(crate) fn report_json(config: &RunConfig, report: &RunReport, wall: Duration) -> Json {
    let (seed, scenario) = (config.seed, &*config.scenario);
    let parameters = config
        .settings
        .describe(scenario)
        .into_iter()
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((&pair, ""));
            (key.to_string(), Json::string(value))
        })
        .collect();
    let (result, class, checker, reason) = match &report.outcome {
        Outcome::Pass => ("pass", Json::Null, Json::Null, Json::Null),
        Outcome::Fail { class, checker, reason } => (
            "fail",
            Json::string(class.name()),
            Json::string(checker.clone()),
            Json::string(reason.clone()),
        ),
        Outcome::Invalid(problem) => {
            ("invalid", Json::Null, Json::Null, Json::string(problem.to_string()))
        }
    };
    let counts = |entries: &[(&'static str, u64)]| {
        Json::Object(entries.iter().map(|&(k, v)| (k.to_string(), Json::Number(v))).collect())
    };
    let counters = counts(&report.total_counters());
    let faults = counts(&report.faults.entries());
    let recovery = counts(&report.faults.recovery());
    let swarm = config
        .faults
        .swarm
        .iter()
        .map(|(kind, scale)| (kind.name().to_string(), Json::string(*scale)))
        .collect();
    let divergence = report.divergence.as_ref().map_or(Json::Null, |d| {
        Json::object([
            ("index", Json::Number(d.index)),
            ("first", d.first.clone().map_or(Json::Null, Json::String)),
            ("second", d.second.clone().map_or(Json::Null, Json::String)),
        ])
    });
    let mut fields = vec![
        ("seed", Json::Number(seed)),
        ("scenario", Json::string(scenario.name())),
        ("parameters", Json::Object(parameters)),
        ("result", Json::string(result)),
        ("class", class),
        ("checker", checker),
        ("reason", reason),
        ("events", Json::Number(report.events)),
        ("sim_time_ns", Json::Number(report.sim_time_ns)),
        ("wall_ns", Json::Number(u64::try_from(wall.as_nanos()).unwrap_or(u64::MAX))),
        ("trace", Json::string(format!("{:016x}", report.trace))),
        ("counters", counters),
        ("fault_profile", Json::string(config.faults.profile.name())),
        ("swarm", Json::Object(swarm)),
        ("faults", faults),
        ("recovery", recovery),
        ("buggify", Json::Array(report.buggify_sites.iter().map(|s| Json::string(*s)).collect())),
        ("divergence", divergence),
        ("causal_chain", Json::Array(report.causal_chain.lines.iter().map(Json::string).collect())),
    ];
    // Only a run that shut down has the key: other runs' objects stay as they were.
    if let Some(shards) = report.shutdown.as_deref() {
        fields.push(("shutdown", shutdown_json(shards)));
    }
    Json::object(fields)
}

/// A run's shutdown as JSON: counts by outcome and one object per shard.
fn shutdown_json(shards: &[crate::world::ShardShutdown]) -> Json {
    let count = |name: &str| {
        Json::Number(shards.iter().filter(|s| s.outcome.name() == name).count() as u64)
    };
    let entries = shards
        .iter()
        .map(|shard| {
            let (ended, left) = match shard.outcome {
                ShutdownOutcome::Drained(report) | ShutdownOutcome::Forced(report) => (
                    Json::Number(report.ended_at.as_nanos()),
                    Json::Number(u64::from(report.remaining_isolates)),
                ),
                ShutdownOutcome::Down | ShutdownOutcome::Unfinished => (Json::Null, Json::Null),
            };
            Json::object([
                ("node", Json::Number(u64::from(shard.node))),
                ("shard", Json::Number(u64::from(shard.shard.0))),
                ("outcome", Json::string(shard.outcome.name())),
                ("ended_ns", ended),
                ("remaining", left),
            ])
        })
        .collect();
    Json::object([
        ("drained", count("drained")),
        ("forced", count("forced")),
        ("down", count("down")),
        ("unfinished", count("unfinished")),
        ("shards", Json::Array(entries)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reproduce line leaves out a limit at its default, so the constants must be the
    /// defaults clap applies.
    #[test]
    fn limit_defaults_match_the_flags() {
        let cli = Cli::try_parse_from(["sim"]).expect("no arguments are valid");
        assert_eq!(cli.run.time_max, TIME_MAX_DEFAULT_NS);
        assert_eq!(cli.run.events_max, EVENTS_MAX_DEFAULT);
        assert_eq!(parse_duration("1h"), Ok(TIME_MAX_DEFAULT_NS));
    }
}
