//! The `sim` command line: parse arguments, run, print, choose the exit code.
//!
//! `main_with` takes the arguments, the scenario catalog and two writers, so tests drive
//! the command line exactly as a user does, without spawning a process. The only reads of
//! the wall clock (to print `wall=`) and of OS entropy (to draw a seed when none is given)
//! in the simulator are here, each marked.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use tina_checkers::FailureClass;
use tina_scenarios::{ParamKind, ParamSpec, Scenario};

use crate::chain::causal_chain_lines;
use crate::config::{
    ConfigError, SIM_PARAMS, Settings, format_value, parse_duration, parse_seed, pick_scenario,
};
use crate::faults::knobs::{PROFILES, profile_value};
use crate::faults::{FAULT_KINDS, FaultConfig, KNOBS, Profile};
use crate::json::Json;
use crate::plant::{PLANTS, Plant, PlantKind};

use crate::run::{LogRequest, Outcome, RunConfig, RunReport, run};
use crate::world::Limits;

const EXIT_CODES: &str = "\
Exit codes:
  0   pass: the scenario reached its goal and no checker objected
  2   invalid arguments or configuration
  10  correctness failure: a checker saw a property violated
  11  liveness failure: quiescence, --time-max, --events-max or liveness_time before the goal
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
  sim list --json";

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
    /// Set a scenario or simulator parameter, e.g. --set round_trips=500 --set dispatch_cost=2us.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Fault profile: none, default, chaos or swarm. Absent: swarm when --scenario is absent
    /// too, else default.
    #[arg(long, value_name = "PROFILE")]
    faults: Option<String>,
    /// Set one fault knob (after the profile), e.g. --fault shard_crash_every=500ms.
    #[arg(long = "fault", value_name = "NAME=VALUE")]
    fault_sets: Vec<String>,
    /// Stop with a liveness failure past this virtual time: <integer><ns|us|ms|s|m|h>.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1h")]
    time_max: u64,
    /// Stop with a liveness failure after this many trace events.
    #[arg(long, value_name = "N", default_value_t = 100_000_000)]
    events_max: u64,
    /// Write the canonical replay log to PATH.
    #[arg(long, value_name = "PATH")]
    log: Option<PathBuf>,
    /// Write the run as a Chrome trace to FILE (JSON; open it in ui.perfetto.dev or
    /// chrome://tracing): a process per node, a thread per shard, a slice per handler
    /// call, flows from each send, timer or I/O to the handler it wakes, instants for
    /// faults, crashes and restarts; virtual time
    #[arg(long, value_name = "FILE")]
    trace_out: Option<PathBuf>,
    /// Run the seed twice in this process and report the first diverging event.
    #[arg(long)]
    check_determinism: bool,
    /// Switch on a planted bug (see `sim list`): it picks its scenario and settings; a world
    /// or trace plant also runs in the scenario --scenario names.
    #[arg(long, value_name = "NAME")]
    plant: Option<String>,
    /// Skip the structural checkers (only to measure what they cost; the scenario's own
    /// goal still judges the run).
    #[arg(long)]
    no_checkers: bool,
    /// Fail the run (correctness) at the first dropped message, for protocols that promise
    /// no shedding; the failure names the drop. Drops a crash causes count too, so use it
    /// with fault profiles without crashes
    #[arg(long)]
    fail_on_drop: bool,
    /// Fail the run (correctness) at the first isolate that crashes or fails its init, for
    /// systems where every crash is a bug (isolates that assert their invariants); crashes
    /// the fault model injects are excused
    #[arg(long)]
    fail_on_crash: bool,
    /// Print one JSON object on stdout (human lines go to stderr).
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the scenarios, their parameters and the simulator's parameters.
    List,
}

/// Where the command writes, and which scenarios it knows.
struct Io<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    catalog: &'a [&'static dyn Scenario],
    json: bool,
    /// The name the program was started with, for the reproduce line.
    program: String,
}

impl Io<'_> {
    /// A human line: to stdout, or to stderr when stdout carries JSON. Output errors (a
    /// closed pipe) are ignored: the exit code still tells the result.
    fn say(&mut self, line: &str) {
        let target: &mut dyn Write = if self.json { &mut *self.err } else { &mut *self.out };
        let _ = writeln!(target, "{line}");
    }

    fn invalid(&mut self, error: &dyn std::fmt::Display) -> u8 {
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
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match cli.command {
        Some(Command::List) => list(&mut io),
        None => simulate(&cli, &mut io),
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
    let plant = match &cli.plant {
        None => None,
        Some(name) => match crate::plant::find(name) {
            Some(plant) => Some(plant),
            None => {
                let valid: Vec<&str> = PLANTS.iter().map(|p| p.name).collect();
                return io.invalid(&format!(
                    "unknown plant {name:?}; valid plants: {}",
                    valid.join(", ")
                ));
            }
        },
    };
    // A scenario plant is a bug in one scenario's isolates; world and trace plants are bugs
    // of the simulator and the core, and run with any scenario.
    if let (Some(plant), Some(name)) = (plant, &cli.scenario)
        && plant.kind() == PlantKind::Scenario
        && plant.scenario != name
    {
        return io.invalid(&format!(
            "plant {} is a bug in scenario {}; drop --scenario or use --scenario {}",
            plant.name, plant.scenario, plant.scenario
        ));
    }
    if let Some(plant) = plant
        && plant.kind() == PlantKind::Scenario
        && !io.catalog.iter().any(|s| s.name() == plant.scenario)
    {
        let usable: Vec<&str> = usable_plants(io.catalog).map(|p| p.name).collect();
        return io.invalid(&format!(
            "plant {} is a bug in scenario {}, which this catalog does not have; plants that run with any scenario: {}",
            plant.name,
            plant.scenario,
            usable.join(", ")
        ));
    }
    let wanted = cli.scenario.as_deref().or(plant.map(|p| p.scenario));
    let scenario = match wanted {
        Some(name) => match io.catalog.iter().copied().find(|s| s.name() == name) {
            Some(scenario) => scenario,
            None if cli.scenario.is_none() => {
                return io.invalid(&format!(
                    "plant {} runs scenario {name} unless told otherwise, and this catalog has none; give --scenario NAME",
                    cli.plant.as_deref().unwrap_or_default()
                ));
            }
            None => {
                let valid = io.catalog.iter().map(|s| s.name()).collect();
                return io.invalid(&ConfigError::UnknownScenario { name: name.to_string(), valid });
            }
        },
        None => {
            if io.catalog.is_empty() {
                return io.invalid(&"the catalog has no scenario to run");
            }
            let names: Vec<&str> = io.catalog.iter().map(|s| s.name()).collect();
            io.catalog[pick_scenario(seed, &names)]
        }
    };
    // The plant's settings size its own scenario; with another, only the user's apply.
    let mut sets: Vec<String> =
        plant.filter(|p| p.scenario == scenario.name()).map_or_else(Vec::new, |p| p.settings());
    sets.extend(cli.sets.iter().cloned());
    let settings = match Settings::new(scenario, &sets) {
        Ok(settings) => settings,
        Err(error) => return io.invalid(&error),
    };
    let profile_name = cli.faults.as_deref().or(plant.map(|p| p.profile.name())).unwrap_or(
        if cli.scenario.is_none() { Profile::Swarm.name() } else { Profile::Default.name() },
    );
    let faults = match fault_config(
        profile_name,
        seed,
        plant.map_or(&[][..], |p| p.faults),
        &cli.fault_sets,
    ) {
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
    let config = RunConfig {
        seed,
        scenario: scenario.into(),
        settings,
        limits: Limits { time_max_ns: cli.time_max, events_max: cli.events_max },
        log: cli.log.clone().map_or(LogRequest::None, LogRequest::File),
        trace_out: cli.trace_out.clone(),
        check_determinism: cli.check_determinism
            || plant.is_some_and(|p| p.class == FailureClass::Nondeterminism),
        plant,
        checkers: !cli.no_checkers,
        faults,
        fail_on_drop: cli.fail_on_drop,
        fail_on_crash: cli.fail_on_crash,
    };
    let (report, wall) = timed(|| run(&config));
    report_result(cli, io, seed, &config, &report, wall)
}

/// The faults of a run: the profile, then the plant's knobs, then the user's `--fault`s,
/// checked together.
fn fault_config(
    profile: &str,
    seed: u64,
    plant_sets: &[&str],
    sets: &[String],
) -> Result<FaultConfig, crate::faults::KnobError> {
    let mut faults = FaultConfig::new(Profile::parse(profile)?, seed);
    for set in plant_sets {
        faults.set(set)?;
    }
    for set in sets {
        faults.set(set)?;
    }
    faults.validate()?;
    Ok(faults)
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
    cli: &Cli,
    io: &mut Io<'_>,
    seed: u64,
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
            let command = reproduce(cli, &io.program, seed, scenario, &config.faults);
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
    if cli.json {
        let _ = writeln!(io.out, "{}", report_json(seed, scenario, config, report, wall).render());
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
fn reproduce(
    cli: &Cli,
    program: &str,
    seed: u64,
    scenario: &dyn Scenario,
    faults: &FaultConfig,
) -> String {
    let mut command = format!(
        "{} --seed {seed} --scenario {} --faults {}",
        program_command(program),
        scenario.name(),
        faults.profile.name()
    );
    if let Some(plant) = &cli.plant {
        command.push_str(&format!(" --plant {plant}"));
    }
    for set in &cli.fault_sets {
        command.push_str(&format!(" --fault {set}"));
    }
    // Writing to a String cannot fail; `push_str` keeps it simple.
    for set in &cli.sets {
        command.push_str(&format!(" --set {set}"));
    }
    if cli.time_max != 3_600_000_000_000 {
        command.push_str(&format!(" --time-max {}", crate::config::format_duration(cli.time_max)));
    }
    if cli.events_max != 100_000_000 {
        command.push_str(&format!(" --events-max {}", cli.events_max));
    }
    if cli.check_determinism {
        command.push_str(" --check-determinism");
    }
    if cli.no_checkers {
        command.push_str(" --no-checkers");
    }
    if cli.fail_on_drop {
        command.push_str(" --fail-on-drop");
    }
    if cli.fail_on_crash {
        command.push_str(" --fail-on-crash");
    }
    command
}

fn report_json(
    seed: u64,
    scenario: &dyn Scenario,
    config: &RunConfig,
    report: &RunReport,
    wall: Duration,
) -> Json {
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
    Json::object([
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
    ])
}
