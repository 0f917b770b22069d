//! tina-checkers: pure checks over tina event histories.
//!
//! A checker is an [`Observer`]: it is fed every trace event of a run, in order, stamped
//! with when and where it happened, and answers with a [`Verdict`]. It never mutates the
//! system under test. Scenario end conditions ("every job completed or lost") are
//! observers too. This crate depends on `tina` only.
//!
//! This crate does not drive a run, format logs or decide exit codes; the simulator does.

use core::fmt;

use tina::{Event, ShardId};

/// When and where an event happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Position in the run's trace, from 0.
    pub index: u64,
    /// Virtual time in nanoseconds.
    pub time_ns: u64,
    /// The node.
    pub node: u16,
    /// The shard within the node.
    pub shard: ShardId,
}

/// The class of a failed run; each has its own exit code in the simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailureClass {
    /// A property was violated.
    Correctness,
    /// The goal was not reached: quiescence, or a time or event limit first.
    Liveness,
    /// The framework itself broke: an internal assertion or a panic outside an isolate.
    Crash,
    /// The same seed gave two different runs.
    Nondeterminism,
}

impl FailureClass {
    /// Lower-case name, as printed in `result: fail (<class>)`.
    pub const fn name(self) -> &'static str {
        match self {
            FailureClass::Correctness => "correctness",
            FailureClass::Liveness => "liveness",
            FailureClass::Crash => "crash",
            FailureClass::Nondeterminism => "nondeterminism",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A violated property: which observer, and a one-line explanation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The class of failure.
    pub class: FailureClass,
    /// The observer that noticed.
    pub checker: &'static str,
    /// One line saying what went wrong.
    pub explanation: String,
}

/// What an observer says after an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to report.
    Continue,
    /// The run reached its goal.
    Done,
    /// A property is violated; the run stops.
    Violated(Violation),
}

/// Fed every event of a run, in order.
pub trait Observer {
    /// The observer's name, for failure reports.
    fn name(&self) -> &'static str;

    /// Looks at one event.
    fn observe(&mut self, stamp: &Stamp, event: &Event) -> Verdict;

    /// Called once when the run ends without a violation (goal reached or a limit hit),
    /// for end-of-run properties.
    fn finish(&mut self) -> Verdict {
        Verdict::Continue
    }
}
