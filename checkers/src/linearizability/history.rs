//! A concurrent history: operations by clients, each invoked at a virtual time and either
//! completed with an output or left without a response.
//!
//! It is data and its validation only: a bad completion is a typed [`HistoryError`], never
//! a panic. It does not check anything about the operations themselves (see the parent
//! module) and does not require a client's operations to be sequential.

use core::fmt;

/// An operation's position in its history, from 0, in the order `invoke` was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub usize);

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op {}", self.0)
    }
}

/// One operation: who asked what, when, and what came back if anything did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// The client that invoked it. A label for reports: the checker orders operations by
    /// their times alone.
    pub client: u64,
    /// What was asked.
    pub input: I,
    /// When it was invoked, in virtual nanoseconds.
    pub invoke_ns: u64,
    /// What came back, or `None` for no response (the client timed out or crashed): the
    /// operation may then have taken effect once at any time after its invocation, or never.
    pub response: Option<Response<O>>,
}

/// The response to a completed operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response<O> {
    /// What came back.
    pub output: O,
    /// When it came back, in virtual nanoseconds; never before the invocation.
    pub complete_ns: u64,
}

/// A completion that the history refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryError {
    /// No operation of this history has this id.
    UnknownOperation {
        /// The id given.
        op: OpId,
    },
    /// The operation already has a response.
    CompletedTwice {
        /// The operation.
        op: OpId,
    },
    /// The response is earlier than the invocation.
    CompletedBeforeInvoked {
        /// The operation.
        op: OpId,
        /// When it was invoked.
        invoke_ns: u64,
        /// The completion time given.
        complete_ns: u64,
    },
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::UnknownOperation { op } => write!(f, "{op} is not in the history"),
            HistoryError::CompletedTwice { op } => write!(f, "{op} was completed twice"),
            HistoryError::CompletedBeforeInvoked { op, invoke_ns, complete_ns } => write!(
                f,
                "{op} completed at {complete_ns} ns, before it was invoked at {invoke_ns} ns"
            ),
        }
    }
}

impl std::error::Error for HistoryError {}

/// A history under construction: `invoke` each operation, then `complete` those that got a
/// response; the others have no response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct History<I, O> {
    operations: Vec<Operation<I, O>>,
}

impl<I, O> Default for History<I, O> {
    fn default() -> Self {
        History { operations: Vec::new() }
    }
}

impl<I, O> History<I, O> {
    /// An empty history.
    pub fn new() -> Self {
        History::default()
    }

    /// Records that `client` invoked `input` at `at_ns`. Invocations need not come in time
    /// order.
    pub fn invoke(&mut self, client: u64, input: I, at_ns: u64) -> OpId {
        let op = OpId(self.operations.len());
        self.operations.push(Operation { client, input, invoke_ns: at_ns, response: None });
        op
    }

    /// Records that `op` returned `output` at `at_ns`.
    pub fn complete(&mut self, op: OpId, output: O, at_ns: u64) -> Result<(), HistoryError> {
        let Some(operation) = self.operations.get_mut(op.0) else {
            return Err(HistoryError::UnknownOperation { op });
        };
        if operation.response.is_some() {
            return Err(HistoryError::CompletedTwice { op });
        }
        if at_ns < operation.invoke_ns {
            return Err(HistoryError::CompletedBeforeInvoked {
                op,
                invoke_ns: operation.invoke_ns,
                complete_ns: at_ns,
            });
        }
        operation.response = Some(Response { output, complete_ns: at_ns });
        Ok(())
    }

    /// Every operation, in id order.
    pub fn operations(&self) -> &[Operation<I, O>] {
        &self.operations
    }

    /// The operation `op`, if it is in this history.
    pub fn operation(&self, op: OpId) -> Option<&Operation<I, O>> {
        self.operations.get(op.0)
    }

    /// How many operations were invoked.
    pub fn len(&self) -> usize {
        self.operations.len()
    }

    /// Whether nothing was invoked.
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }
}
