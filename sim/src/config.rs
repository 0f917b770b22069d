//! Parsing of the simulator's inputs: seeds, durations, `--set KEY=VALUE`, and the
//! simulator's own parameters. Every error is a typed value whose message says what to fix.
//!
//! This module does not run anything.

use core::fmt;

use tina_scenarios::{ParamKind, ParamSpec, Params, Scenario};

use crate::prng::{StreamOverrideError, StreamOverrides};
use crate::world::{ShutdownPlan, WorldConfig};

/// `--shutdown-drain`'s default: one second of each node's clock.
pub const SHUTDOWN_DRAIN_DEFAULT_NS: u64 = 1_000_000_000;
/// The longest drain `--shutdown-drain` takes: one hour.
pub const SHUTDOWN_DRAIN_MAX_NS: u64 = 3_600_000_000_000;

/// The simulator's own parameters, settable with `--set` like a scenario's.
pub const SIM_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "dispatch_cost",
        kind: ParamKind::Duration,
        default: 1_000,
        min: 0,
        max: 1_000_000_000,
        description: "virtual time each handler call costs",
    },
    ParamSpec {
        name: "net_delay_min",
        kind: ParamKind::Duration,
        default: 1_000_000,
        min: 0,
        max: 3_600_000_000_000,
        description: "smallest cross-shard message delay",
    },
    ParamSpec {
        name: "net_delay_max",
        kind: ParamKind::Duration,
        default: 10_000_000,
        min: 0,
        max: 3_600_000_000_000,
        description: "largest cross-shard message delay (inclusive)",
    },
    ParamSpec {
        name: "transport_capacity",
        kind: ParamKind::Count,
        default: 1024,
        min: 1,
        max: 1 << 20,
        description: "messages in flight per ordered shard pair",
    },
];

/// A bad input, with what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A seed that is not a decimal or `0x` hexadecimal u64.
    Seed(String),
    /// A duration not of the form `<integer><ns|us|ms|s|m|h>`.
    Duration(String),
    /// A count that is not a non-negative integer.
    Count(String),
    /// `--set` without `=`.
    SetSyntax(String),
    /// A parameter neither the scenario nor the simulator has.
    UnknownParam {
        /// The key given.
        key: String,
        /// The scenario.
        scenario: &'static str,
        /// Every valid key.
        valid: Vec<&'static str>,
    },
    /// A value outside a parameter's bounds.
    OutOfRange {
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
        /// The smallest allowed.
        min: String,
        /// The largest allowed.
        max: String,
    },
    /// A scenario name that is not in the catalog.
    UnknownScenario {
        /// The name given.
        name: String,
        /// Every scenario.
        valid: Vec<&'static str>,
    },
    /// `net_delay_min` above `net_delay_max`.
    DelayRange,
    /// `--stream` not of the form `SITE=VALUE` with a u64 value.
    StreamSyntax(String),
    /// A `--stream` the PRNG tree cannot take.
    Stream(StreamOverrideError),
    /// `--shutdown-at` at or past `--time-max`: the run would stop before it shuts down.
    ShutdownPastTimeMax {
        /// `--shutdown-at`, as nanoseconds.
        at_ns: u64,
        /// `--time-max`, as nanoseconds.
        time_max_ns: u64,
    },
    /// `--shutdown-drain` above `SHUTDOWN_DRAIN_MAX_NS`.
    ShutdownDrainTooLong(u64),
    /// `--shutdown-drain` without `--shutdown-at`.
    ShutdownDrainAlone,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Seed(text) => {
                write!(
                    f,
                    "invalid seed {text:?}: write a u64 in decimal (42) or hexadecimal (0x2a)"
                )
            }
            ConfigError::Duration(text) => write!(
                f,
                "invalid duration {text:?}: write an integer and a unit, one of ns, us, ms, s, m, h (for example 250ms)"
            ),
            ConfigError::Count(text) => {
                write!(f, "invalid count {text:?}: write a non-negative integer")
            }
            ConfigError::SetSyntax(text) => {
                write!(
                    f,
                    "invalid --set {text:?}: write KEY=VALUE, for example --set round_trips=500"
                )
            }
            ConfigError::UnknownParam { key, scenario, valid } => write!(
                f,
                "unknown parameter {key:?} for scenario {scenario}; valid parameters: {}",
                valid.join(", ")
            ),
            ConfigError::OutOfRange { key, value, min, max } => {
                write!(f, "{key}={value} is out of range; use {min} to {max}")
            }
            ConfigError::UnknownScenario { name, valid } => {
                write!(f, "unknown scenario {name:?}; valid scenarios: {}", valid.join(", "))
            }
            ConfigError::DelayRange => {
                write!(f, "net_delay_min is above net_delay_max; make min <= max")
            }
            ConfigError::StreamSyntax(text) => write!(
                f,
                "invalid --stream {text:?}: write SITE=VALUE with a u64 value, for example --stream scheduler.pick=7"
            ),
            ConfigError::Stream(error) => write!(f, "invalid --stream: {error}"),
            ConfigError::ShutdownPastTimeMax { at_ns, time_max_ns } => write!(
                f,
                "--shutdown-at {} is not before --time-max {}: shut down earlier, or raise --time-max",
                format_duration(*at_ns),
                format_duration(*time_max_ns)
            ),
            ConfigError::ShutdownDrainTooLong(drain_ns) => write!(
                f,
                "--shutdown-drain {} is too long; use at most {}",
                format_duration(*drain_ns),
                format_duration(SHUTDOWN_DRAIN_MAX_NS)
            ),
            ConfigError::ShutdownDrainAlone => {
                write!(f, "--shutdown-drain needs --shutdown-at: say when the run shuts down")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// The shutdown of a run that shuts down at `at_ns` (if given) with a drain of `drain_ns`
/// (if given: else `SHUTDOWN_DRAIN_DEFAULT_NS`), checked against the run's `time_max_ns`.
pub fn shutdown_plan(
    at_ns: Option<u64>,
    drain_ns: Option<u64>,
    time_max_ns: u64,
) -> Result<Option<ShutdownPlan>, ConfigError> {
    let Some(at_ns) = at_ns else {
        return match drain_ns {
            Some(_) => Err(ConfigError::ShutdownDrainAlone),
            None => Ok(None),
        };
    };
    let drain_ns = drain_ns.unwrap_or(SHUTDOWN_DRAIN_DEFAULT_NS);
    if drain_ns > SHUTDOWN_DRAIN_MAX_NS {
        return Err(ConfigError::ShutdownDrainTooLong(drain_ns));
    }
    if at_ns >= time_max_ns {
        return Err(ConfigError::ShutdownPastTimeMax { at_ns, time_max_ns });
    }
    Ok(Some(ShutdownPlan { at_ns, drain_ns }))
}

/// The scenario a bare seed runs: the index in `names` whose SplitMix64 of (seed, FNV-1a of
/// the name) is highest (rendezvous hashing). Adding a scenario to a catalog moves only the
/// seeds that now pick it (about one in the new count), and neither the catalog's order
/// nor the other scenarios change a seed's pick. Panics on an empty catalog.
pub fn pick_scenario(seed: u64, names: &[&str]) -> usize {
    assert!(!names.is_empty(), "a seed picks from at least one scenario");
    let score = |name: &str| {
        let mut z = (seed ^ tina::fnv1a_64(name.as_bytes())).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    // Ties (a 2^-64 chance) go to the first; names are distinct in a catalog.
    (0..names.len()).max_by_key(|&at| (score(names[at]), core::cmp::Reverse(at))).unwrap_or(0)
}

/// Parses a seed: decimal, or hexadecimal after `0x`.
pub fn parse_seed(text: &str) -> Result<u64, ConfigError> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u64::from_str_radix(hex, 16)
        }
        Some(_) => return Err(ConfigError::Seed(text.to_string())),
        None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text.parse::<u64>(),
        None => return Err(ConfigError::Seed(text.to_string())),
    };
    parsed.map_err(|_| ConfigError::Seed(text.to_string()))
}

const UNITS: [(&str, u64); 6] = [
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses `<integer><ns|us|ms|s|m|h>` (or a bare `0`) into nanoseconds.
pub fn parse_duration(text: &str) -> Result<u64, ConfigError> {
    let error = || ConfigError::Duration(text.to_string());
    if text == "0" {
        // Zero needs no unit.
        return Ok(0);
    }
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    if number.is_empty() {
        return Err(error());
    }
    let scale =
        UNITS.iter().find(|(name, _)| *name == unit).map(|(_, scale)| *scale).ok_or_else(error)?;
    number.parse::<u64>().ok().and_then(|n| n.checked_mul(scale)).ok_or_else(error)
}

/// Writes nanoseconds in the largest unit that divides them exactly (`1ms`, `1500us`).
pub fn format_duration(nanos: u64) -> String {
    if nanos == 0 {
        return "0ns".to_string();
    }
    let (unit, scale) = UNITS
        .iter()
        .rev()
        .find(|(_, scale)| nanos.is_multiple_of(*scale))
        .copied()
        .unwrap_or(("ns", 1));
    format!("{}{unit}", nanos / scale)
}

fn parse_count(text: &str) -> Result<u64, ConfigError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigError::Count(text.to_string()));
    }
    text.parse::<u64>().map_err(|_| ConfigError::Count(text.to_string()))
}

/// A value as written for its kind.
pub fn format_value(kind: ParamKind, value: u64) -> String {
    match kind {
        ParamKind::Count => value.to_string(),
        ParamKind::Duration => format_duration(value),
    }
}

/// The scenario's and the simulator's parameter values after `--set`s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The scenario's parameters.
    pub scenario: Params,
    /// The simulator's parameters (`SIM_PARAMS`).
    pub sim: Params,
    /// Decision streams perturbed (`--stream SITE=VALUE`), as given.
    pub streams: Vec<(String, u64)>,
    /// The same, ready for the PRNG tree.
    pub overrides: StreamOverrides,
}

impl Settings {
    /// Defaults, then each `KEY=VALUE` in order.
    pub fn new(scenario: &dyn Scenario, sets: &[String]) -> Result<Settings, ConfigError> {
        let mut settings = Settings {
            scenario: Params::defaults(scenario.params()),
            sim: Params::defaults(SIM_PARAMS),
            streams: Vec::new(),
            overrides: StreamOverrides::NONE,
        };
        for set in sets {
            let (key, value) =
                set.split_once('=').ok_or_else(|| ConfigError::SetSyntax(set.clone()))?;
            let spec = scenario
                .params()
                .iter()
                .chain(SIM_PARAMS)
                .find(|spec| spec.name == key)
                .ok_or_else(|| ConfigError::UnknownParam {
                    key: key.to_string(),
                    scenario: scenario.name(),
                    valid: scenario
                        .params()
                        .iter()
                        .chain(SIM_PARAMS)
                        .map(|spec| spec.name)
                        .collect(),
                })?;
            let parsed = match spec.kind {
                ParamKind::Count => parse_count(value)?,
                ParamKind::Duration => parse_duration(value)?,
            };
            if parsed < spec.min || parsed > spec.max {
                return Err(ConfigError::OutOfRange {
                    key: spec.name,
                    value: value.to_string(),
                    min: format_value(spec.kind, spec.min),
                    max: format_value(spec.kind, spec.max),
                });
            }
            let _ = settings.scenario.set(spec.name, parsed) || settings.sim.set(spec.name, parsed);
        }
        if settings.sim.get("net_delay_min") > settings.sim.get("net_delay_max") {
            return Err(ConfigError::DelayRange);
        }
        Ok(settings)
    }

    /// The world's configuration.
    pub fn world(&self) -> WorldConfig {
        WorldConfig {
            dispatch_cost_ns: self.sim.get("dispatch_cost"),
            net_delay_min_ns: self.sim.get("net_delay_min"),
            net_delay_max_ns: self.sim.get("net_delay_max"),
            // Bounded by the parameter's maximum of 2^20.
            transport_capacity: self.sim.get("transport_capacity") as u32,
            faults: crate::faults::FaultConfig::new(crate::faults::Profile::None, 0),
            bug: None,
            streams: self.overrides,
            shutdown: None,
        }
    }

    /// Overrides the decision stream of a site, from `SITE=VALUE` (`--stream`; the value
    /// decimal or 0x hex).
    pub fn stream(&mut self, text: &str) -> Result<(), ConfigError> {
        let (site, value) =
            text.split_once('=').ok_or_else(|| ConfigError::StreamSyntax(text.to_string()))?;
        let value = parse_seed(value).map_err(|_| ConfigError::StreamSyntax(text.to_string()))?;
        self.overrides.add(site, value).map_err(ConfigError::Stream)?;
        self.streams.push((site.to_string(), value));
        Ok(())
    }

    /// `key=value` for every parameter, scenario's first, as written on a command line.
    pub fn describe(&self, scenario: &dyn Scenario) -> Vec<String> {
        let line = |specs: &[ParamSpec], params: &Params| -> Vec<String> {
            specs
                .iter()
                .map(|spec| {
                    format!("{}={}", spec.name, format_value(spec.kind, params.get(spec.name)))
                })
                .collect()
        };
        let mut all = line(scenario.params(), &self.scenario);
        all.extend(line(SIM_PARAMS, &self.sim));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seeds and durations parse exactly as documented, and reject everything else.
    #[test]
    fn parsers() {
        assert_eq!(parse_seed("42"), Ok(42));
        assert_eq!(parse_seed("0x2a"), Ok(42));
        assert_eq!(parse_seed("18446744073709551615"), Ok(u64::MAX));
        for bad in ["", "-1", "0x", "0xg", "1e3", "18446744073709551616", " 1"] {
            assert_eq!(parse_seed(bad), Err(ConfigError::Seed(bad.to_string())), "{bad:?}");
        }
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        assert_eq!(parse_duration("1h"), Ok(3_600_000_000_000));
        assert_eq!(parse_duration("0ns"), Ok(0));
        assert_eq!(parse_duration("0"), Ok(0));
        for bad in ["", "ms", "10", "1.5s", "10 ms", "5d", "99999999999h"] {
            assert_eq!(parse_duration(bad), Err(ConfigError::Duration(bad.to_string())), "{bad:?}");
        }
        assert_eq!(format_duration(1_500_000), "1500us");
        assert_eq!(format_duration(60_000_000_000), "1m");
    }

    /// Rendezvous picking: adding a fifth scenario to a catalog of four moves about a fifth
    /// of 10,000 seeds, all of them to the new scenario, and the catalog's order does not
    /// matter.
    #[test]
    fn adding_a_scenario_moves_about_a_fifth_of_the_seeds() {
        let four = ["ping-pong", "dispatcher", "timers", "bank"];
        let five = ["ping-pong", "dispatcher", "timers", "bank", "echo"];
        let reversed = ["bank", "timers", "dispatcher", "ping-pong"];
        let mut moved = 0;
        for seed in 0..10_000u64 {
            let before = four[pick_scenario(seed, &four)];
            let after = five[pick_scenario(seed, &five)];
            assert_eq!(before, reversed[pick_scenario(seed, &reversed)], "order must not matter");
            if before != after {
                assert_eq!(after, "echo", "a seed moves only to the new scenario");
                moved += 1;
            }
        }
        assert!((1_700..2_300).contains(&moved), "{moved} of 10,000 seeds moved");
        let counts = four
            .map(|name| (0..10_000u64).filter(|&s| four[pick_scenario(s, &four)] == name).count());
        assert!(counts.iter().all(|&c| (2_200..2_800).contains(&c)), "{counts:?}");
    }

    /// `--set` reaches both namespaces and reports unknown keys with the valid ones.
    #[test]
    fn sets() {
        let scenario = tina_scenarios::find("ping-pong").expect("in the catalog");
        let sets = ["round_trips=5".to_string(), "dispatch_cost=2us".to_string()];
        let settings = Settings::new(scenario, &sets).expect("valid");
        assert_eq!(settings.scenario.get("round_trips"), 5);
        assert_eq!(settings.world().dispatch_cost_ns, 2_000);
        let error = Settings::new(scenario, &["rounds=5".to_string()]).expect_err("unknown");
        assert!(
            error.to_string().contains("valid parameters: round_trips, retry, dispatch_cost"),
            "{error}"
        );
        let error = Settings::new(scenario, &["round_trips=0".to_string()]).expect_err("range");
        assert_eq!(error.to_string(), "round_trips=0 is out of range; use 1 to 1099511627776");
        let error =
            Settings::new(scenario, &["net_delay_min=20ms".to_string()]).expect_err("order");
        assert_eq!(error, ConfigError::DelayRange);
    }
}
