//! Fuzz inputs: bytes that become one run (a scenario, its parameters, a fault profile, a
//! seed and per-site decision streams), for `cargo fuzz run scenarios` and for
//! `sim --fuzz-input FILE`, which replays an artifact and prints it as a seed file.
//!
//! A fuzzer that feeds its bytes into one global random generator learns nothing: change
//! one byte and every later decision of the run changes. Here the bytes are read in fixed
//! fields, through `arbitrary`, and each field decides one thing: a byte of a parameter's
//! field changes that parameter, a byte of a stream override changes that one decision
//! site's draws (see [`crate::prng::StreamOverrides`]), and every other site draws as
//! before. That is what lets coverage guidance climb.
//!
//! A case is turned into `sim` arguments ([`FuzzCase::args`]) and run through the command
//! line itself, so a fuzz crash, `sim --fuzz-input` and the printed seed file are one run.
//!
//! ```
//! use tina_sim::fuzz::FuzzCase;
//!
//! let bytes = [7u8; 64];
//! let case = FuzzCase::from_bytes(&bytes, tina_scenarios::catalog(), None).unwrap();
//! assert!(case.args().contains(&"--seed".to_string()));
//! // The same bytes, the same case.
//! assert_eq!(case, FuzzCase::from_bytes(&bytes, tina_scenarios::catalog(), None).unwrap());
//! ```

use core::fmt;

use arbitrary::Unstructured;
use tina_scenarios::{ParamKind, Scenario};

use crate::config::format_value;
use crate::faults::Profile;
use crate::faults::knobs::PROFILES;
use crate::plant::{Plant, PlantKind};
use crate::prng::{LINK_DECISIONS, SITES};

/// Fewest bytes a fuzz input must have: the scenario, the seed and the profile.
pub const FUZZ_INPUT_BYTES_MIN: usize = 10;
/// Most decision streams one input overrides.
pub const FUZZ_STREAMS_MAX: usize = 8;
/// Largest value the fuzzer gives a count parameter whose default is larger (a run of
/// `timers` with its default 100,000 isolates takes a tenth of a second; the fuzzer wants
/// thousands of runs a minute).
pub const FUZZ_COUNT_MAX: u64 = 1_000;
/// Link sites are offered for the links to nodes below this (the catalog's scenarios have
/// a handful of nodes).
pub const FUZZ_LINK_NODES: u16 = 4;

/// One run, decoded from fuzz bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuzzCase {
    /// The root seed.
    pub seed: u64,
    /// The scenario's name.
    pub scenario: &'static str,
    /// The fault profile (`None` with a plant: the plant's own).
    pub profile: Option<Profile>,
    /// `KEY=VALUE` scenario parameters.
    pub sets: Vec<String>,
    /// `SITE=VALUE` stream overrides.
    pub streams: Vec<String>,
    /// A planted bug the run switches on.
    pub plant: Option<&'static str>,
}

/// Why bytes are not a fuzz input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FuzzInputError {
    /// No bytes at all.
    Empty,
    /// Fewer bytes than the fields every input has.
    TooShort {
        /// Bytes given.
        len: usize,
    },
    /// The catalog has no scenario to run.
    NoScenario,
    /// The plant's scenario is not in the catalog.
    PlantScenario {
        /// The plant.
        plant: &'static str,
        /// Its scenario.
        scenario: &'static str,
    },
}

impl fmt::Display for FuzzInputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FuzzInputError::Empty => {
                write!(
                    f,
                    "the fuzz input is empty: give a file the fuzzer wrote (an artifact or a corpus entry)"
                )
            }
            FuzzInputError::TooShort { len } => write!(
                f,
                "the fuzz input has {len} bytes; an input has at least {FUZZ_INPUT_BYTES_MIN} (scenario, seed, profile): is it a fuzz artifact?"
            ),
            FuzzInputError::NoScenario => write!(f, "the catalog has no scenario to fuzz"),
            FuzzInputError::PlantScenario { plant, scenario } => {
                write!(
                    f,
                    "plant {plant} runs scenario {scenario}, which this catalog does not have"
                )
            }
        }
    }
}

impl std::error::Error for FuzzInputError {}

/// Every site a fuzz input may override, in a fixed order (an input names one by index).
pub fn fuzz_sites() -> Vec<String> {
    let mut sites: Vec<String> = SITES.iter().map(|s| s.to_string()).collect();
    for to in 0..FUZZ_LINK_NODES {
        for decision in LINK_DECISIONS {
            sites.push(format!("net.link.{decision}.to-{to}"));
        }
    }
    sites
}

impl FuzzCase {
    /// Decodes `bytes` over `catalog`. With a plant, the scenario is the plant's and the
    /// plant's fault profile and knobs apply; the input still picks the seed, the other
    /// parameters and the streams.
    pub fn from_bytes(
        bytes: &[u8],
        catalog: &[&'static dyn Scenario],
        plant: Option<&'static Plant>,
    ) -> Result<FuzzCase, FuzzInputError> {
        if bytes.is_empty() {
            return Err(FuzzInputError::Empty);
        }
        if bytes.len() < FUZZ_INPUT_BYTES_MIN {
            return Err(FuzzInputError::TooShort { len: bytes.len() });
        }
        if catalog.is_empty() {
            return Err(FuzzInputError::NoScenario);
        }
        let mut u = Unstructured::new(bytes);
        // Each field has a fixed width, so a byte changes one decision. The length checks
        // above make these first reads succeed; later fields default when bytes run out.
        let pick = u.int_in_range(0..=u8::MAX).unwrap_or(0);
        let seed = u64::from_le_bytes(u.arbitrary().unwrap_or([0; 8]));
        let profile_pick = u.int_in_range(0..=u8::MAX).unwrap_or(0);
        let scenario = match plant {
            Some(plant) if plant.kind() == PlantKind::Scenario => {
                catalog.iter().copied().find(|s| s.name() == plant.scenario).ok_or(
                    FuzzInputError::PlantScenario { plant: plant.name, scenario: plant.scenario },
                )?
            }
            _ => catalog[usize::from(pick) % catalog.len()],
        };
        let profile = match plant {
            Some(_) => None,
            None => Some(PROFILES[usize::from(profile_pick) % PROFILES.len()]),
        };
        // The plant's own settings stay as the plant sets them.
        let plant_keys: Vec<String> = plant.map_or_else(Vec::new, |p| {
            p.settings().iter().filter_map(|s| s.split_once('=')).map(|(k, _)| k.into()).collect()
        });
        let mut sets = Vec::new();
        for spec in scenario.params() {
            // Each parameter: one byte says whether to change it, eight say to what.
            let change: u8 = u.arbitrary().unwrap_or(0);
            let raw: u64 = u.arbitrary().unwrap_or(0);
            if plant_keys.iter().any(|k| k == spec.name) {
                continue;
            }
            // Between a quarter of the default and the default (a count at most
            // FUZZ_COUNT_MAX): smaller workloads run faster, so the fuzzer tries more of
            // them, and a parameter whose non-default value is a planted bug (a switch with
            // default 1, a window with default 0) keeps its default.
            let mut hi = spec.default.clamp(spec.min, spec.max);
            if spec.kind == ParamKind::Count && hi > FUZZ_COUNT_MAX {
                hi = FUZZ_COUNT_MAX.max(spec.min);
            }
            let lo = hi.div_ceil(4).clamp(spec.min, hi);
            let value = if change & 1 == 0 { hi } else { lo + raw % (hi - lo + 1) };
            if value != spec.default {
                sets.push(format!("{}={}", spec.name, format_value(spec.kind, value)));
            }
        }
        let sites = fuzz_sites();
        let mut streams: Vec<String> = Vec::new();
        let mut used: Vec<usize> = Vec::new();
        for _ in 0..FUZZ_STREAMS_MAX {
            // Each slot: one byte picks a site (or none), eight give its value.
            let site: u8 = u.arbitrary().unwrap_or(u8::MAX);
            let value: u64 = u.arbitrary().unwrap_or(0);
            let index = usize::from(site);
            if index >= sites.len() || used.contains(&index) {
                continue;
            }
            used.push(index);
            streams.push(format!("{}={value}", sites[index]));
        }
        Ok(FuzzCase {
            seed,
            scenario: scenario.name(),
            profile,
            sets,
            streams,
            plant: plant.map(|p| p.name),
        })
    }

    /// The `sim` arguments (without the program name) that run this case.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["--seed".to_string(), self.seed.to_string()];
        args.extend(["--scenario".to_string(), self.scenario.to_string()]);
        args.extend(self.flags());
        for set in &self.sets {
            args.extend(["--set".to_string(), set.clone()]);
        }
        args
    }

    /// The flags besides seed, scenario and settings: profile, plant, streams.
    fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if let Some(profile) = self.profile {
            flags.extend(["--faults".to_string(), profile.name().to_string()]);
        }
        if let Some(plant) = self.plant {
            flags.extend(["--plant".to_string(), plant.to_string()]);
        }
        for stream in &self.streams {
            flags.extend(["--stream".to_string(), stream.clone()]);
        }
        flags
    }

    /// The case as a seed file (see [`crate::seedfile`]), expecting `expect` (`pass` or a
    /// failure class name).
    pub fn seed_file(&self, why: &str, expect: &str) -> String {
        crate::seedfile::SeedFile {
            why: why.to_string(),
            seed: self.seed.to_string(),
            scenario: Some(self.scenario.to_string()),
            sets: self.sets.clone(),
            flags: self.flags(),
            expect: crate::seedfile::parse_expect(expect).flatten(),
        }
        .render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_inputs_are_refused_with_what_is_wrong() {
        let catalog = tina_scenarios::catalog();
        assert_eq!(FuzzCase::from_bytes(&[], catalog, None), Err(FuzzInputError::Empty));
        assert_eq!(
            FuzzCase::from_bytes(&[1, 2, 3], catalog, None),
            Err(FuzzInputError::TooShort { len: 3 })
        );
        assert_eq!(FuzzCase::from_bytes(&[0; 16], &[], None), Err(FuzzInputError::NoScenario));
    }

    #[test]
    fn one_byte_of_a_stream_slot_changes_that_stream_only() {
        let catalog = tina_scenarios::catalog();
        let mut bytes = vec![0u8; 400];
        // Scenario 4, the chaos profile, and every later byte zero: no parameter changes,
        // and every stream slot names site 0 (the first slot wins, the rest repeat it).
        bytes[0] = 4;
        bytes[9] = 2;
        let base = FuzzCase::from_bytes(&bytes, catalog, None).unwrap();
        let params = catalog[4].params().len();
        let slot = FUZZ_INPUT_BYTES_MIN + params * 9 + 9; // the second slot's site byte
        bytes[slot] = 3;
        let changed = FuzzCase::from_bytes(&bytes, catalog, None).unwrap();
        assert_eq!(base.seed, changed.seed);
        assert_eq!(base.sets, changed.sets);
        assert_eq!(base.profile, changed.profile);
        assert_eq!(base.streams.len() + 1, changed.streams.len(), "{changed:?}");
        assert_eq!(base.streams[0], changed.streams[0]);
    }

    #[test]
    fn a_plant_fixes_the_scenario_and_keeps_its_switch() {
        let catalog = tina_scenarios::catalog();
        let plant = crate::plant::find("kv-stale-cache").unwrap();
        let case = FuzzCase::from_bytes(&[0xff; 200], catalog, Some(plant)).unwrap();
        assert_eq!(case.scenario, "kv");
        assert_eq!(case.profile, None);
        assert!(case.sets.iter().all(|s| !s.starts_with("stale_cache=") && !s.starts_with("ops=")));
        let text = case.seed_file("found by the fuzzer", "correctness");
        let parsed = crate::seedfile::parse("case.seed", &text).unwrap();
        let mut args = parsed.args();
        args.sort();
        let mut expected = case.args();
        expected.sort();
        assert_eq!(args, expected);
    }
}
