//! Sequential specifications: the [`Model`] trait a user implements to say what one
//! operation at a time does, and [`Kv`], a key-value store of registers.
//!
//! A model is a pure, deterministic function of a state and an input; it is not a
//! simulation of the system under test, and it never sees times or clients.

use core::fmt::Debug;
use core::hash::Hash;

/// A sequential specification, split into independent partitions.
///
/// Operations with different [`partition`](Model::partition) keys must not affect each
/// other (the keys of a key-value store, say): the checker then checks each partition on
/// its own, from [`init`](Model::init), which is far cheaper than checking them together
/// and is exact, because linearizability is compositional. A model whose operations all
/// touch one object uses a single partition (`type Key = ()`).
///
/// [`step`](Model::step) must be deterministic: the output is a function of the state and
/// the input. That is what lets the checker place an operation without a response: it
/// applies the step and ignores the output.
///
/// A counter handing out tickets, one partition:
///
/// ```
/// use tina_checkers::linearizability::{Model, History, Options, check};
///
/// #[derive(Debug)]
/// struct Tickets;
///
/// #[derive(Clone, Debug)]
/// struct Take;
///
/// impl Model for Tickets {
///     type State = u64;
///     type Input = Take;
///     type Output = u64;
///     type Key = ();
///
///     fn init(&self) -> u64 {
///         0
///     }
///     fn step(&self, next: &u64, _input: &Take) -> (u64, u64) {
///         (next + 1, *next)
///     }
///     fn partition(&self, _input: &Take) {}
/// }
///
/// // Two overlapping takes may come back in either order.
/// let mut history = History::new();
/// let a = history.invoke(1, Take, 0);
/// let b = history.invoke(2, Take, 5);
/// history.complete(b, 0, 10).unwrap();
/// history.complete(a, 1, 20).unwrap();
/// assert!(check(&Tickets, &history, &Options::default()).outcome.is_linearizable());
///
/// // A third take that starts after both ended cannot see ticket 0 again.
/// let c = history.invoke(1, Take, 30);
/// history.complete(c, 0, 40).unwrap();
/// assert!(!check(&Tickets, &history, &Options::default()).outcome.is_linearizable());
/// ```
pub trait Model {
    /// The state of one partition. Cloned at every step of the search and remembered in
    /// its visited set, so keep it small.
    type State: Clone + Eq + Hash;
    /// What a client asks.
    type Input: Clone + Debug;
    /// What comes back.
    type Output: Clone + Eq + Debug;
    /// Names a partition.
    type Key: Ord + Clone + Debug;

    /// The state of every partition before any operation.
    fn init(&self) -> Self::State;

    /// Applies `input` to `state`: the state after it and the output it gives.
    fn step(&self, state: &Self::State, input: &Self::Input) -> (Self::State, Self::Output);

    /// The partition that `input` belongs to.
    fn partition(&self, input: &Self::Input) -> Self::Key;
}

/// A key-value store of independent registers: `u64` keys, `u64` values, every key absent
/// at first. Each key is its own partition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Kv;

/// An operation on [`Kv`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvInput {
    /// Sets `key` to `value`; answers [`KvOutput::Ok`].
    Put {
        /// The key.
        key: u64,
        /// The value.
        value: u64,
    },
    /// Reads `key`; answers [`KvOutput::Value`].
    Get {
        /// The key.
        key: u64,
    },
    /// Sets `key` to `new` if it holds `expected` (`None`: if it is absent); answers
    /// [`KvOutput::Ok`] if it did, [`KvOutput::Mismatch`] if not.
    Cas {
        /// The key.
        key: u64,
        /// The value the key must hold.
        expected: Option<u64>,
        /// The value to set.
        new: u64,
    },
}

impl KvInput {
    /// The key the operation is about.
    pub const fn key(&self) -> u64 {
        match *self {
            KvInput::Put { key, .. } | KvInput::Get { key } | KvInput::Cas { key, .. } => key,
        }
    }
}

/// What a [`Kv`] operation answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvOutput {
    /// A put, or a compare-and-set that set.
    Ok,
    /// What a get read: the value, or `None` if the key was absent.
    Value(Option<u64>),
    /// A compare-and-set that found another value and set nothing.
    Mismatch,
}

impl Model for Kv {
    /// The value of one key.
    type State = Option<u64>;
    type Input = KvInput;
    type Output = KvOutput;
    type Key = u64;

    fn init(&self) -> Option<u64> {
        None
    }

    fn step(&self, state: &Option<u64>, input: &KvInput) -> (Option<u64>, KvOutput) {
        match *input {
            KvInput::Put { value, .. } => (Some(value), KvOutput::Ok),
            KvInput::Get { .. } => (*state, KvOutput::Value(*state)),
            KvInput::Cas { expected, new, .. } if *state == expected => (Some(new), KvOutput::Ok),
            KvInput::Cas { .. } => (*state, KvOutput::Mismatch),
        }
    }

    fn partition(&self, input: &KvInput) -> u64 {
        input.key()
    }
}
