//! Shrinking a failing run: `sim shrink` (and `sim --shrink` on a failure) looks for a
//! smaller run that fails the same way, the same failure class from the same checker, and
//! prints it as a seed file.
//!
//! A run is its command line, so a candidate is one too ([`Candidate`]), and each is judged
//! by running it through the command line. In each pass the shrinker tries, in order:
//! no fault profile at all; each fault kind that injected something, switched off; a
//! shorter safety phase (the faults after the cut are never drawn) and liveness phase;
//! shorter delays (the
//! fault knobs that bound a delay, and the simulator's `net_delay_max`); each count
//! parameter of the scenario lowered (to its minimum, else halved); each stream override
//! removed. A change is kept when the run still fails the same way. Passes repeat until
//! one changes nothing or the budget (runs, wall time) is spent. The first candidate that
//! fails the same way is always kept, so the result is never larger than the start.

use std::io::Write;
use std::time::Duration;

use tina_scenarios::{ParamKind, Scenario};

use crate::config::{Settings, format_duration, format_value};
use crate::faults::knobs::{K, KNOBS, KnobKind};
use crate::faults::{FAULT_KINDS, FaultConfig, Profile};
use crate::plant::Plant;

/// Most runs one shrink tries, unless told otherwise.
pub const SHRINK_RUNS_MAX: u32 = 300;
/// Most wall time one shrink takes, unless told otherwise.
pub const SHRINK_TIME_MAX: Duration = Duration::from_secs(60);
/// Shortest safety or liveness phase the shrinker tries.
const PHASE_TIME_MIN_NS: u64 = 10_000_000;
/// Fault knobs that bound a delay; the shrinker halves them.
const DELAY_KNOBS: [K; 10] = [
    K::DelayTailMax,
    K::DelaySlowMax,
    K::ShardStallMax,
    K::ClockJumpMax,
    K::DiskLatencyMax,
    K::NetDelayTailMax,
    K::NetUdpReorderDelayMax,
    K::NetPartitionMax,
    K::NetClogMax,
    K::ShardRestartDelayMax,
];

/// One run, as the command line gives it.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The root seed.
    pub seed: u64,
    /// The scenario.
    pub scenario: &'static dyn Scenario,
    /// The fault profile.
    pub profile: Profile,
    /// A planted bug.
    pub plant: Option<&'static Plant>,
    /// `--set KEY=VALUE`s, later ones winning.
    pub sets: Vec<String>,
    /// `--fault NAME=VALUE`s, later ones winning.
    pub faults: Vec<String>,
    /// `--stream SITE=VALUE`s.
    pub streams: Vec<String>,
    /// Other flags, kept as they are (limits, `--fail-on-drop`, ...).
    pub flags: Vec<String>,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Candidate) -> bool {
        self.args() == other.args()
    }
}

impl Eq for Candidate {}

impl Candidate {
    /// The `sim` arguments (without the program name).
    pub fn args(&self) -> Vec<String> {
        self.seed_file_of("", "pass").args()
    }

    /// The candidate as a seed file.
    pub fn seed_file(&self, why: &str, expect: &str) -> String {
        self.seed_file_of(why, expect).render()
    }

    /// The candidate as a seed file's fields: seed, scenario, sets, and every other flag
    /// (the profile always, then plant, faults, streams and the rest).
    fn seed_file_of(&self, why: &str, expect: &str) -> crate::seedfile::SeedFile {
        let mut flags = vec!["--faults".to_string(), self.profile.name().to_string()];
        if let Some(plant) = self.plant {
            flags.extend(["--plant".to_string(), plant.name.to_string()]);
        }
        for (flag, values) in [("--fault", &self.faults), ("--stream", &self.streams)] {
            for value in values {
                flags.extend([flag.to_string(), value.clone()]);
            }
        }
        flags.extend(self.flags.iter().cloned());
        crate::seedfile::SeedFile {
            why: why.to_string(),
            seed: self.seed.to_string(),
            scenario: Some(self.scenario.name().to_string()),
            sets: self.sets.clone(),
            flags,
            expect: crate::seedfile::parse_expect(expect).flatten(),
        }
    }

    /// The settings the run uses: the plant's (for its own scenario), then the sets.
    fn settings(&self) -> Option<Settings> {
        // As a run does: the plant's settings size its own scenario only.
        let mut sets = self
            .plant
            .filter(|p| p.scenario == self.scenario.name())
            .map_or_else(Vec::new, |p| p.settings());
        sets.extend(self.sets.iter().cloned());
        Settings::new(self.scenario, &sets).ok()
    }

    /// The fault knobs the run uses.
    fn fault_config(&self) -> Option<FaultConfig> {
        let mut faults = FaultConfig::new(self.profile, self.seed);
        for set in self.plant.map_or(&[][..], |p| p.faults) {
            faults.set(set).ok()?;
        }
        for set in &self.faults {
            faults.set(set).ok()?;
        }
        Some(faults)
    }

    /// The keys the plant's bug switch uses (never changed: that would remove the bug).
    fn switch_keys(&self) -> Vec<String> {
        self.plant.map_or_else(Vec::new, |p| match p.bug {
            crate::plant::Bug::Scenario(switch) => {
                switch.split_once('=').map(|(key, _)| vec![key.to_string()]).unwrap_or_default()
            }
            _ => Vec::new(),
        })
    }
}

/// `KEY=VALUE` in `list`, replacing any earlier value of `KEY`.
fn with_assignment(list: &[String], key: &str, value: &str) -> Vec<String> {
    let mut list: Vec<String> =
        list.iter().filter(|s| s.split_once('=').is_none_or(|(k, _)| k != key)).cloned().collect();
    list.push(format!("{key}={value}"));
    list
}

/// How one run ended, as the shrinker needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The exit code.
    pub code: u8,
    /// The failure class and checker, for a failure.
    pub failure: Option<(String, String)>,
    /// Trace events.
    pub events: u64,
    /// Injections by fault kind (only those that injected).
    pub faults: Vec<(String, u64)>,
}

/// Runs `args` through the command line over `catalog` and reads its JSON report.
pub fn judge(args: &[String], catalog: &[&'static dyn Scenario]) -> Verdict {
    let mut argv = vec!["sim".to_string()];
    argv.extend(args.iter().cloned());
    argv.push("--json".to_string());
    let (mut out, mut err) = (Vec::new(), std::io::sink());
    let code = crate::cli::main_with(&argv, catalog, &mut out, &mut err);
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap_or_default();
    let text = |key: &str| json.get(key).and_then(|v| v.as_str()).map(str::to_string);
    let failure = match (text("class"), text("checker")) {
        (Some(class), Some(checker)) if code != 0 => Some((class, checker)),
        _ => None,
    };
    let faults = json
        .get("faults")
        .and_then(|f| f.as_object())
        .map(|f| {
            f.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                .filter(|(_, n)| *n > 0)
                .collect()
        })
        .unwrap_or_default();
    Verdict {
        code,
        failure,
        events: json.get("events").and_then(|v| v.as_u64()).unwrap_or(0),
        faults,
    }
}

/// What a shrink did.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smallest candidate found that fails the same way.
    pub best: Candidate,
    /// Its verdict.
    pub verdict: Verdict,
    /// The starting run's events.
    pub events_before: u64,
    /// Runs tried (the first included).
    pub runs: u32,
    /// Each kept change, in order, as one line.
    pub steps: Vec<String>,
}

/// Why a run cannot be shrunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShrinkError {
    /// It passes: there is no failure to keep.
    Passes,
    /// It does not run (exit 2): the arguments are wrong.
    Invalid,
}

impl core::fmt::Display for ShrinkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ShrinkError::Passes => write!(f, "the run passes: only a failing run can be shrunk"),
            ShrinkError::Invalid => {
                write!(f, "the run is invalid (exit 2): fix its arguments first")
            }
        }
    }
}

impl std::error::Error for ShrinkError {}

/// The shrinker's budget and its clock (the caller's: the core reads no wall clock).
pub struct Budget<'a> {
    /// Most runs.
    pub runs_max: u32,
    /// Whether the wall-time budget is spent.
    pub out_of_time: &'a dyn Fn() -> bool,
}

impl core::fmt::Debug for Budget<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Budget").field("runs_max", &self.runs_max).finish_non_exhaustive()
    }
}

/// Shrinks `start` over `catalog` within `budget`.
pub fn shrink(
    start: Candidate,
    catalog: &[&'static dyn Scenario],
    budget: &Budget<'_>,
) -> Result<Shrunk, ShrinkError> {
    let first = judge(&start.args(), catalog);
    let target = match (&first.failure, first.code) {
        (_, 2) => return Err(ShrinkError::Invalid),
        (Some(failure), _) => failure.clone(),
        (None, _) => return Err(ShrinkError::Passes),
    };
    let mut state = State {
        catalog,
        budget,
        target,
        runs: 1,
        steps: Vec::new(),
        events_before: first.events,
        best: start,
        verdict: first,
    };
    loop {
        let runs_before = state.steps.len();
        state.pass();
        if state.steps.len() == runs_before || state.spent() {
            break;
        }
    }
    Ok(Shrunk {
        best: state.best,
        verdict: state.verdict,
        events_before: state.events_before,
        runs: state.runs,
        steps: state.steps,
    })
}

/// When a candidate that still fails is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keep {
    /// At no more events: it removes something (a profile, a fault kind, a stream, part of
    /// the workload).
    Simpler,
    /// At fewer events only: it turns a knob down.
    Smaller,
}

struct State<'a> {
    catalog: &'a [&'static dyn Scenario],
    budget: &'a Budget<'a>,
    target: (String, String),
    runs: u32,
    steps: Vec<String>,
    events_before: u64,
    best: Candidate,
    verdict: Verdict,
}

impl State<'_> {
    fn spent(&self) -> bool {
        self.runs >= self.budget.runs_max || (self.budget.out_of_time)()
    }

    /// Runs `candidate`; keeps it if it fails the same way and is no larger (`Simpler`: it
    /// removes something, so equal size will do) or smaller (`Smaller`: a knob turned
    /// down must pay for its line in the seed file).
    fn try_keep(&mut self, candidate: Candidate, step: String, keep: Keep) -> bool {
        if self.spent() || candidate == self.best {
            return false;
        }
        self.runs += 1;
        let verdict = judge(&candidate.args(), self.catalog);
        let size_ok = match keep {
            Keep::Simpler => verdict.events <= self.verdict.events,
            Keep::Smaller => verdict.events < self.verdict.events,
        };
        if verdict.failure.as_ref() != Some(&self.target) || !size_ok {
            return false;
        }
        self.steps.push(format!("{step} (events {} -> {})", self.verdict.events, verdict.events));
        self.best = candidate;
        self.verdict = verdict;
        true
    }

    fn pass(&mut self) {
        self.no_profile();
        self.fault_kinds_off();
        self.shorter_phases();
        self.shorter_delays();
        self.smaller_workload();
        self.fewer_streams();
    }

    fn no_profile(&mut self) {
        if self.best.profile == Profile::None {
            return;
        }
        let from = self.best.profile.name();
        let candidate =
            Candidate { profile: Profile::None, faults: Vec::new(), ..self.best.clone() };
        self.try_keep(candidate, format!("fault profile {from} -> none"), Keep::Simpler);
    }

    fn fault_kinds_off(&mut self) {
        let injected: Vec<String> = self.verdict.faults.iter().map(|(k, _)| k.clone()).collect();
        for kind in injected {
            let switch = FAULT_KINDS
                .iter()
                .find(|k| k.name() == kind)
                .and_then(|&k| KNOBS.iter().find(|knob| knob.switch == Some(k)));
            let Some(knob) = switch else { continue };
            let faults = with_assignment(&self.best.faults, knob.name, "0");
            let candidate = Candidate { faults, ..self.best.clone() };
            self.try_keep(candidate, format!("fault {kind} off"), Keep::Simpler);
        }
    }

    /// Halves the safety phase (the faults after the cut are never drawn), then the
    /// liveness phase (a liveness failure ends sooner).
    fn shorter_phases(&mut self) {
        self.shorter_phase(K::SafetyTime);
        self.shorter_phase(K::LivenessTime);
    }

    fn shorter_phase(&mut self, knob: K) {
        for _ in 0..16 {
            let Some(config) = self.best.fault_config() else { return };
            if !config.any_on() {
                return;
            }
            let now = config.nanos(knob);
            let half = now / 2;
            if half < PHASE_TIME_MIN_NS {
                return;
            }
            let name = KNOBS[knob as usize].name;
            let faults = with_assignment(&self.best.faults, name, &format_duration(half));
            let candidate = Candidate { faults, ..self.best.clone() };
            let step = format!("{name} {} -> {}", format_duration(now), format_duration(half));
            if !self.try_keep(candidate, step, Keep::Smaller) {
                return;
            }
        }
    }

    fn shorter_delays(&mut self) {
        for knob in DELAY_KNOBS {
            let Some(config) = self.best.fault_config() else { return };
            let spec = &KNOBS[knob as usize];
            debug_assert_eq!(spec.kind, KnobKind::Duration);
            let now = config.nanos(knob);
            if now == 0 {
                continue;
            }
            let half = now / 2;
            let faults = with_assignment(&self.best.faults, spec.name, &format_duration(half));
            let candidate = Candidate { faults, ..self.best.clone() };
            let step =
                format!("{} {} -> {}", spec.name, format_duration(now), format_duration(half));
            self.try_keep(candidate, step, Keep::Smaller);
        }
        let Some(settings) = self.best.settings() else { return };
        let (min, max) = (settings.sim.get("net_delay_min"), settings.sim.get("net_delay_max"));
        if max > min {
            for to in [min, min + (max - min) / 2] {
                let sets = with_assignment(&self.best.sets, "net_delay_max", &format_duration(to));
                let candidate = Candidate { sets, ..self.best.clone() };
                let step =
                    format!("net_delay_max {} -> {}", format_duration(max), format_duration(to));
                if self.try_keep(candidate, step, Keep::Smaller) {
                    break;
                }
            }
        }
    }

    fn smaller_workload(&mut self) {
        let switches = self.best.switch_keys();
        for spec in self.best.scenario.params() {
            if spec.kind != ParamKind::Count || switches.iter().any(|k| k == spec.name) {
                continue;
            }
            for _ in 0..32 {
                let Some(settings) = self.best.settings() else { return };
                let now = settings.scenario.get(spec.name);
                if now <= spec.min {
                    break;
                }
                let mut kept = false;
                // The smallest first; a value near the current one last, since the smaller
                // ones change more of the run and more often lose the failure.
                let span = now - spec.min;
                let mut tried: Vec<u64> = Vec::new();
                for to in
                    [spec.min, spec.min + span / 4, spec.min + span / 2, now - span.div_ceil(4)]
                {
                    if to >= now || tried.contains(&to) {
                        continue;
                    }
                    tried.push(to);
                    let value = format_value(spec.kind, to);
                    let sets = with_assignment(&self.best.sets, spec.name, &value);
                    let candidate = Candidate { sets, ..self.best.clone() };
                    let step = format!("{} {now} -> {value}", spec.name);
                    if self.try_keep(candidate, step, Keep::Simpler) {
                        kept = true;
                        break;
                    }
                }
                if !kept {
                    break;
                }
            }
        }
    }

    fn fewer_streams(&mut self) {
        let mut index = 0;
        while index < self.best.streams.len() {
            let mut streams = self.best.streams.clone();
            let removed = streams.remove(index);
            let candidate = Candidate { streams, ..self.best.clone() };
            if !self.try_keep(candidate, format!("stream {removed} removed"), Keep::Simpler) {
                index += 1;
            }
        }
    }
}

/// Prints a shrink's report to `out`: what it removed, the seed file, a reproduce line.
pub fn report(out: &mut dyn Write, shrunk: &Shrunk, program: &str) {
    let (before, after) = (shrunk.events_before, shrunk.verdict.events);
    let removed =
        if before == 0 { 0.0 } else { 100.0 * (before - after.min(before)) as f64 / before as f64 };
    let (class, checker) = shrunk.verdict.failure.clone().unwrap_or_default();
    let _ = writeln!(out, "shrink: {class} ({checker}) kept through {} runs", shrunk.runs);
    for step in &shrunk.steps {
        let _ = writeln!(out, "  kept: {step}");
    }
    let _ = writeln!(out, "shrink: events {before} -> {after} ({removed:.1}% removed)");
    let why = format!("shrunk: {class} from {checker}, {after} events (from {before})");
    let _ = writeln!(out, "smallest reproduction (seed file):");
    let _ = write!(out, "{}", shrunk.best.seed_file(&why, &class));
    let _ = writeln!(
        out,
        "reproduce: {} {}",
        crate::cli::program_command(program),
        shrunk.best.args().join(" ")
    );
}
