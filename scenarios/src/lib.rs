//! tina-scenarios: workloads for the simulator and the catalog that names them.
//!
//! A scenario says *what* to run: the nodes' `SystemSpec`s (shards, isolate types,
//! supervision trees), its named parameters with defaults and bounds, and the observers
//! that decide when the run has reached its goal or broken a property. It never drives the
//! clock; the simulator does. Isolate code here has no simulator-only branches.
//!
//! This crate depends on `tina` and `tina-checkers`.

use core::fmt;
use core::time::Duration;

use tina::{GroupConfig, ShardId, Strategy, SystemSpec};
use tina_checkers::{EndView, Observer};

pub mod bank;
pub mod dispatcher;
pub mod echo;
pub mod kv;
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

    /// The value of the duration parameter `name` (see `get`).
    pub fn duration(&self, name: &str) -> Duration {
        Duration::from_nanos(self.get(name))
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

/// When a run has reached its goal. Whatever the goal, a run also passes as soon as an
/// observer says `Verdict::Done`, and fails at the first violation.
pub enum Goal {
    /// The system went quiet with every isolate finished and nothing in flight (no message
    /// in transit or queued, no call in progress, no I/O outstanding). The default: a
    /// pipeline that ran to its end passes without declaring anything.
    AllFinished,
    /// Only an observer can declare the goal (`Verdict::Done`); quiescence without it is a
    /// liveness failure. The catalog's scenarios use this.
    Observed,
    /// A predicate over the system as the run left it, asked when the run goes quiet.
    EndState(Box<dyn Fn(&EndView) -> bool + Send + Sync>),
}

impl fmt::Debug for Goal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Goal::AllFinished => "AllFinished",
            Goal::Observed => "Observed",
            Goal::EndState(_) => "EndState",
        })
    }
}

/// Everything a run of a scenario needs.
pub struct Setup {
    /// One spec per node (node ids are positions).
    pub nodes: Vec<SystemSpec>,
    /// The scenario's own checkers, and any observer that declares the goal.
    pub observers: Vec<Box<dyn Observer>>,
    /// When the run has reached its goal.
    pub goal: Goal,
    /// Whether every isolate ends by itself when its shard shuts down (on its
    /// `Tag::SHUTDOWN` message, within the drain): then a run that shuts down (`sim
    /// --shutdown-at`) in which a shard is torn down at its deadline fails as liveness.
    /// False by default: a forced stop is reported, not judged.
    pub drains_on_shutdown: bool,
}

impl Setup {
    /// One node running `spec`, no observer, the default goal (`Goal::AllFinished`).
    pub fn new(spec: SystemSpec) -> Setup {
        Setup::nodes(vec![spec])
    }

    /// Several nodes (node ids are positions), no observer, the default goal.
    pub fn nodes(nodes: Vec<SystemSpec>) -> Setup {
        Setup { nodes, observers: Vec::new(), goal: Goal::AllFinished, drains_on_shutdown: false }
    }

    /// Adds an observer (a property to check, or a goal to declare).
    pub fn observer(mut self, observer: impl Observer + 'static) -> Setup {
        self.observers.push(Box::new(observer));
        self
    }

    /// Sets the goal.
    pub fn goal(mut self, goal: Goal) -> Setup {
        self.goal = goal;
        self
    }

    /// Promises that every isolate ends by itself within the drain when its shard shuts
    /// down (see `drains_on_shutdown`).
    pub fn drains_on_shutdown(mut self) -> Setup {
        self.drains_on_shutdown = true;
        self
    }

    /// What is wrong with this setup before it runs, if anything: no node, a node that
    /// starts no isolate at all, or a goal only an observer can declare with no observer.
    pub fn problem(&self) -> Option<SetupError> {
        if self.nodes.is_empty() {
            return Some(SetupError::NoNode);
        }
        if self.nodes.len() > NODE_COUNT_MAX {
            return Some(SetupError::TooManyNodes { count: self.nodes.len() });
        }
        if let Some(node) = self.nodes.iter().position(|spec| spec.static_child_count() == 0) {
            return Some(SetupError::NoIsolate { node });
        }
        if matches!(self.goal, Goal::Observed) && self.observers.is_empty() {
            return Some(SetupError::NoObserver);
        }
        None
    }
}

impl fmt::Debug for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setup")
            .field("nodes", &self.nodes.len())
            .field("observers", &self.observers.len())
            .field("goal", &self.goal)
            .field("drains_on_shutdown", &self.drains_on_shutdown)
            .finish()
    }
}

/// A setup that cannot run, with what to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// The setup has no node.
    NoNode,
    /// A node starts no isolate (no `boot_child` or `add_child`), so nothing would happen.
    NoIsolate {
        /// The node.
        node: usize,
    },
    /// The goal is `Goal::Observed` but no observer could ever declare it.
    NoObserver,
    /// More nodes than a world holds (each node has an address on the virtual network).
    TooManyNodes {
        /// Nodes asked for.
        count: usize,
    },
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::NoNode => {
                write!(f, "the setup has no node: give it at least one SystemSpec")
            }
            SetupError::NoIsolate { node } => write!(
                f,
                "node {node} starts no isolate: add one with spec.boot_child or spec.add_child"
            ),
            SetupError::TooManyNodes { count } => {
                write!(f, "the setup has {count} nodes; a world holds at most {NODE_COUNT_MAX}")
            }
            SetupError::NoObserver => write!(
                f,
                "the goal is Goal::Observed but no observer can declare it: add an observer that returns Verdict::Done, or use Goal::AllFinished"
            ),
        }
    }
}

impl std::error::Error for SetupError {}

/// Makes the root group of `shard` bear the restarts injected crashes cause: one for one,
/// escalating only on a storm (100 restarts within a second).
pub(crate) fn storm_tolerant_root(spec: &mut SystemSpec, shard: ShardId) {
    let root = spec.root(shard);
    let config = GroupConfig::new(Strategy::OneForOne).intensity(100, Duration::from_secs(1));
    spec.configure(root, config);
}

/// A client node: one shard with a few small I/O buffers and a storm-tolerant root.
pub(crate) fn client_node() -> SystemSpec {
    let mut spec = SystemSpec::new(1);
    spec.io_buffers(16, 64);
    storm_tolerant_root(&mut spec, ShardId(0));
    spec
}

/// Nodes a setup may have: each has an address on the simulator's virtual network
/// (10.0.0.1 to 10.0.0.254).
pub const NODE_COUNT_MAX: usize = 254;

/// A workload the simulator can run by name.
pub trait Scenario: Send + Sync {
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
        &echo::EchoScenario,
        &kv::KvScenario,
    ]
}

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static dyn Scenario> {
    catalog().iter().copied().find(|scenario| scenario.name() == name)
}
