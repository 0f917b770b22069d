//! Linearizability: whether a concurrent history could have happened one operation at a
//! time, each taking effect at an instant between its invocation and its response, in an
//! order that a sequential model accepts; and if not, which few responses show it.
//!
//! A [`History`] records what clients asked, when, and what came back (or that nothing
//! did). A [`Model`] is the sequential specification, split into partitions that do not
//! affect each other (a key-value store's keys; [`Kv`] is one). [`check`] groups the
//! operations by partition and searches each partition on its own (P-compositionality):
//! a Wing–Gong–Lowe search with memoisation of visited configurations (module `search`),
//! bounded by a step budget per partition. A partition that fails is shrunk to the
//! responses that contradict the model (module `shrink`): a [`Counterexample`].
//!
//! It is not an [`Observer`](crate::Observer): it judges a finished history that a
//! scenario recorded from its clients' side, and knows nothing of isolates, events or
//! shards. It does not check weaker models (sequential consistency, serializability), and
//! it takes models to be deterministic. The search is exponential in the worst case, as
//! the problem is NP-complete; a partition that exhausts its budget is reported
//! [`Outcome::Inconclusive`], never searched forever. The hard case in practice is a hot
//! partition (many clients on one key) with operations without a response: each stays a
//! candidate for the rest of the partition.

use core::fmt;
use std::collections::BTreeMap;

mod history;
mod model;
mod search;
mod shrink;
mod visited;

pub use history::{History, HistoryError, OpId, Operation, Response};
pub use model::{Kv, KvInput, KvOutput, Model};

use search::{Found, Member, Role};

/// Default search steps per partition (a step visits one call or return; tens of
/// nanoseconds). A well-behaved partition of n operations takes a few times n.
pub const PARTITION_STEPS_MAX: u64 = 1 << 24;

/// Default search steps to shrink a counterexample, over every trial search.
pub const SHRINK_STEPS_MAX: u64 = 1 << 26;

/// The largest step budget honoured; larger ones are lowered to it. Each step remembers at
/// most one configuration, and the table of them is indexed by `u32`.
pub const STEPS_MAX_LIMIT: u64 = visited::VISITED_COUNT_MAX - 1;

const _: () = assert!(PARTITION_STEPS_MAX <= STEPS_MAX_LIMIT);
const _: () = assert!(SHRINK_STEPS_MAX <= STEPS_MAX_LIMIT);

/// Budgets for [`check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Search steps allowed per partition; past them the partition is inconclusive.
    pub partition_steps_max: u64,
    /// Search steps allowed to shrink a failing partition, over all trial searches (each
    /// also within `partition_steps_max`); past them the counterexample is reported as
    /// shrunk so far, not minimal.
    pub shrink_steps_max: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options { partition_steps_max: PARTITION_STEPS_MAX, shrink_steps_max: SHRINK_STEPS_MAX }
    }
}

/// What [`check`] found, and what it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report<K, I, O> {
    /// The verdict.
    pub outcome: Outcome<K, I, O>,
    /// Search steps over every partition searched, shrinking excluded.
    pub steps: u64,
    /// Search steps spent shrinking the counterexample, if there is one.
    pub shrink_steps: u64,
    /// Partitions in the history.
    pub partition_count: usize,
}

/// The verdict of [`check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<K, I, O> {
    /// Every partition is linearizable.
    Linearizable,
    /// A partition is not (the first, in key order): the responses that show it.
    NotLinearizable(Counterexample<K, I, O>),
    /// No partition was found not linearizable, but this one (the first in key order)
    /// exhausted its step budget.
    Inconclusive {
        /// The partition.
        key: K,
        /// The budget it exhausted.
        steps_max: u64,
    },
}

impl<K, I, O> Outcome<K, I, O> {
    /// Whether the history was shown linearizable.
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Outcome::Linearizable)
    }
}

/// A non-linearizable sub-history of one partition, shrunk: completed operations whose
/// responses, together, contradict the model.
///
/// * Its operations alone are not linearizable.
/// * No operation left out could explain the contradiction away: with every other
///   operation of the partition still there but as no-response (free to have taken effect
///   once at any time after its invocation, or never), it is still not linearizable.
/// * It is 1-minimal in those terms: making any single one of its operations no-response
///   too makes the partition linearizable, so every response listed is needed.
///
/// Shrinking sets responses aside rather than deleting operations because deleting a
/// write could make a read that it explained look wrong, and the report would blame a
/// correct read. `minimal` is false when shrinking ran out of budget or a trial was
/// inconclusive; the first two points hold regardless.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counterexample<K, I, O> {
    /// The partition.
    pub key: K,
    /// The operations, in invocation order.
    pub operations: Vec<(OpId, Operation<I, O>)>,
    /// Operations in the partition.
    pub partition_operation_count: usize,
    /// Whether 1-minimality was established.
    pub minimal: bool,
}

impl<K: fmt::Debug, I: fmt::Debug, O: fmt::Debug> fmt::Display for Counterexample<K, I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "not linearizable: partition {:?}, {} of its {} operations{}:",
            self.key,
            self.operations.len(),
            self.partition_operation_count,
            if self.minimal { " (1-minimal)" } else { " (not shown minimal)" },
        )?;
        for (id, operation) in &self.operations {
            write!(f, "  {id}: client {} [{} ns, ", operation.client, operation.invoke_ns)?;
            match &operation.response {
                Some(response) => writeln!(
                    f,
                    "{} ns] {:?} -> {:?}",
                    response.complete_ns, operation.input, response.output
                )?,
                None => writeln!(f, "no response] {:?}", operation.input)?,
            }
        }
        Ok(())
    }
}

impl<K: fmt::Debug, I: fmt::Debug, O: fmt::Debug> fmt::Display for Outcome<K, I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Linearizable => f.write_str("linearizable"),
            Outcome::NotLinearizable(counterexample) => write!(f, "{counterexample}"),
            Outcome::Inconclusive { key, steps_max } => write!(
                f,
                "inconclusive: partition {key:?} was neither linearized nor refuted in {steps_max} search steps"
            ),
        }
    }
}

/// Checks whether `history` is linearizable with respect to `model`.
///
/// Partitions are searched in key order; the first that is not linearizable is shrunk and
/// reported, and the rest are not searched. Deterministic: the same history and model
/// give the same report.
pub fn check<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    options: &Options,
) -> Report<M::Key, M::Input, M::Output> {
    let operations = history.operations();
    let partitions = partition(model, operations);
    let steps_max = options.partition_steps_max.min(STEPS_MAX_LIMIT);
    let shrink_steps_max = options.shrink_steps_max.min(STEPS_MAX_LIMIT);
    let mut report = Report {
        outcome: Outcome::Linearizable,
        steps: 0,
        shrink_steps: 0,
        partition_count: partitions.len(),
    };
    let mut inconclusive = None;
    for (key, members) in partitions {
        let searched = search::search(model, operations, &members, steps_max);
        report.steps += searched.steps;
        match searched.found {
            Found::Linearizable => {}
            Found::Inconclusive => {
                inconclusive.get_or_insert(key);
            }
            Found::NotLinearizable => {
                let shrunk =
                    shrink::shrink(model, operations, &members, steps_max, shrink_steps_max);
                report.shrink_steps = shrunk.steps;
                let operations = shrunk
                    .kept
                    .iter()
                    .map(|member| (OpId(member.index), operations[member.index].clone()))
                    .collect();
                report.outcome = Outcome::NotLinearizable(Counterexample {
                    key,
                    operations,
                    partition_operation_count: members.len(),
                    minimal: shrunk.minimal,
                });
                return report;
            }
        }
    }
    if let Some(key) = inconclusive {
        report.outcome = Outcome::Inconclusive { key, steps_max };
    }
    report
}

/// The operations of each partition, sorted by invocation (then id).
fn partition<M: Model>(
    model: &M,
    operations: &[Operation<M::Input, M::Output>],
) -> BTreeMap<M::Key, Vec<Member>> {
    let mut partitions: BTreeMap<M::Key, Vec<Member>> = BTreeMap::new();
    for (index, operation) in operations.iter().enumerate() {
        let role = if operation.response.is_some() { Role::Completed } else { Role::NoResponse };
        let member = Member { index, role };
        let key = model.partition(&operation.input);
        match partitions.get_mut(&key) {
            Some(members) => members.push(member),
            None => {
                partitions.insert(key, vec![member]);
            }
        }
    }
    for members in partitions.values_mut() {
        members.sort_by_key(|member| (operations[member.index].invoke_ns, member.index));
    }
    partitions
}
