//! Helpers shared by the simulator's tests.
#![allow(dead_code, reason = "each test binary uses a different part of this module")]

use tina_scenarios::{Scenario, find};
use tina_sim::config::Settings;
use tina_sim::faults::{FaultConfig, Profile};
use tina_sim::run::{LogRequest, RunConfig, RunReport, run};
use tina_sim::world::Limits;

/// Generous limits for tests.
pub const LIMITS: Limits = Limits { time_max_ns: 3_600_000_000_000, events_max: 10_000_000 };

/// The configuration of one run of a catalog scenario.
pub fn config(scenario: &str, seed: u64, sets: &[&str]) -> RunConfig {
    let scenario: &'static dyn Scenario = find(scenario).expect("in the catalog");
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let settings = Settings::new(scenario, &sets).expect("valid settings");
    RunConfig {
        seed,
        scenario: scenario.into(),
        settings,
        limits: LIMITS,
        log: LogRequest::None,
        trace_out: None,
        check_determinism: false,
        plant: None,
        checkers: true,
        faults: FaultConfig::new(Profile::None, seed),
        fail_on_drop: false,
        fail_on_crash: false,
        shutdown: None,
    }
}

/// The configuration of one run of a catalog scenario under a fault profile, with knobs.
pub fn config_with_faults(
    scenario: &str,
    seed: u64,
    sets: &[&str],
    profile: Profile,
    knobs: &[&str],
) -> RunConfig {
    let mut config = config(scenario, seed, sets);
    config.faults = FaultConfig::new(profile, seed);
    for knob in knobs {
        config.faults.set(knob).expect("a valid knob");
    }
    config.faults.validate().expect("a valid fault configuration");
    config
}

/// Runs a catalog scenario.
pub fn run_scenario(scenario: &str, seed: u64, sets: &[&str]) -> RunReport {
    run(&config(scenario, seed, sets))
}
