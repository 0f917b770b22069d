//! tina-scenarios: workloads for the simulator and the catalog that names them.
//!
//! A scenario says *what* to run: the nodes' `SystemSpec`s (shards, isolate types,
//! supervision trees), its named parameters with defaults and bounds, and the observers
//! that decide when the run has reached its goal or broken a property. It never drives the
//! clock; the simulator does. Isolate code here has no simulator-only branches.
//!
//! This crate depends on `tina` and `tina-checkers`.

use core::fmt;

use tina::SystemSpec;
use tina_checkers::Observer;

pub mod bank;
pub mod dispatcher;
pub mod ping_pong;
pub mod timers;

/// How a parameter's value is written and shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// A plain count.
    Count,
    /// A duration in nanoseconds, written `<integer><ns|us|ms|s|m|h>`.
    Duration,
}

/// A named parameter of a scenario (or of the simulator).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamSpec {
    /// The key for `--set KEY=VALUE`.
    pub name: &'static str,
    /// How the value is written.
    pub kind: ParamKind,
    /// The value when none is set.
    pub default: u64,
    /// The smallest value allowed.
    pub min: u64,
    /// The largest value allowed.
    pub max: u64,
    /// One line for `sim list`.
    pub description: &'static str,
}

/// Parameter values by name, in the order of their specs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    values: Vec<(&'static str, u64)>,
}

impl Params {
    /// Every parameter at its default.
    pub fn defaults(specs: &[ParamSpec]) -> Params {
        Params { values: specs.iter().map(|spec| (spec.name, spec.default)).collect() }
    }

    /// The value of `name`. Panics if the scenario asks for a parameter it did not declare
    /// (a bug in the scenario, not bad input).
    pub fn get(&self, name: &str) -> u64 {
        self.values
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| *value)
            .unwrap_or_else(|| panic!("scenario reads undeclared parameter `{name}`"))
    }

    /// Sets a declared parameter; returns false if `name` is not one.
    pub fn set(&mut self, name: &str, value: u64) -> bool {
        match self.values.iter_mut().find(|(key, _)| *key == name) {
            Some(entry) => {
                entry.1 = value;
                true
            }
            None => false,
        }
    }

    /// Name and value of each parameter, in declaration order.
    pub fn entries(&self) -> &[(&'static str, u64)] {
        &self.values
    }
}

/// Everything a run of a scenario needs.
pub struct Setup {
    /// One spec per node (node ids are positions).
    pub nodes: Vec<SystemSpec>,
    /// The goal and the scenario's own checkers.
    pub observers: Vec<Box<dyn Observer>>,
}

impl fmt::Debug for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setup")
            .field("nodes", &self.nodes.len())
            .field("observers", &self.observers.len())
            .finish()
    }
}

/// A workload the simulator can run by name.
pub trait Scenario: Sync {
    /// The catalog name (kebab-case).
    fn name(&self) -> &'static str;
    /// One line for `sim list`.
    fn description(&self) -> &'static str;
    /// Its parameters.
    fn params(&self) -> &'static [ParamSpec];
    /// Builds the nodes and observers for `params` (already checked against the specs).
    fn build(&self, params: &Params) -> Setup;
}

impl fmt::Debug for dyn Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every scenario, in a fixed order (a seed picks from it by index).
pub fn catalog() -> &'static [&'static dyn Scenario] {
    &[
        &ping_pong::PingPong,
        &dispatcher::DispatcherScenario,
        &timers::TimersScenario,
        &bank::BankScenario,
    ]
}

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static dyn Scenario> {
    catalog().iter().copied().find(|scenario| scenario.name() == name)
}
