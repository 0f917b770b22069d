//! The `Isolate` trait and the `Effect` an isolate returns.
//!
//! An isolate is a state machine: `init` builds it from `Copy` spawn arguments, `handle`
//! reacts to one message at a time. Both return an `Effect` that tells the scheduler what
//! the isolate waits for next; an isolate never performs a blocking action itself. Side
//! actions that cannot block (send, spawn, log, timers) are synchronous calls on `Ctx`.
//!
//! This module defines the vocabulary only; the scheduler interprets it.

use core::time::Duration;

use zerocopy::{Immutable, IntoBytes, KnownLayout, TryFromBytes};

use crate::ctx::Ctx;
use crate::handle::Handle;
use crate::io::IoOp;
use crate::label::Label;
use crate::message::Message;
use crate::payload::{Outgoing, Payload};

/// Spawn arguments: plain bytes (so the slot can keep them for restarts without knowing the
/// type), at most 64 bytes (checked when the type is registered). `()`, integers, arrays,
/// `Handle` and `#[repr(C)]` structs deriving the `zerocopy` traits qualify.
pub trait SpawnArgs:
    IntoBytes + TryFromBytes + KnownLayout + Immutable + Copy + Send + Sync + 'static
{
}

impl<T> SpawnArgs for T where
    T: IntoBytes + TryFromBytes + KnownLayout + Immutable + Copy + Send + Sync + 'static
{
}

/// A small state machine that reacts to messages and returns effects.
///
/// Isolates need not be `Send`: each lives in the arena of the shard that spawned it and is
/// only touched by that shard's thread.
pub trait Isolate: Sized + 'static {
    /// What `init` is built from; kept by the slot so a restart can run `init` again.
    type Args: SpawnArgs;

    /// Builds the isolate. Returning `Effect::Done` or `Effect::Crash` (or panicking) is an
    /// init failure: the slot is freed and the failure is reported like a crash.
    fn init(args: Self::Args, ctx: &mut Ctx<'_>) -> (Self, Effect);

    /// Handles one message and says what to wait for next.
    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect;
}

/// What an isolate asks the scheduler to do after `init` or `handle` returns.
#[must_use = "an effect does nothing unless returned to the scheduler"]
#[derive(Clone, Copy, Debug)]
pub enum Effect {
    /// Wait for the next message.
    Receive,
    /// Run again on the next tick, with the next queued message or a `Tag::RESUME` message.
    Yield,
    /// Stop normally. The slot is freed and its queued messages are dropped and counted.
    Done,
    /// Stop as crashed, with a reason for the trace and the supervisor.
    Crash(Label),
    /// Send `message` as a request to `to` and wait for its reply or for `timeout`.
    Call {
        /// The callee.
        to: Handle,
        /// The request.
        message: Outgoing,
        /// How long to wait before a `Tag::CALL_TIMEOUT` message arrives instead.
        timeout: Duration,
    },
    /// Answer a call (now or in a later handler invocation), then wait for the next message.
    Reply {
        /// Taken from the request with `Message::reply_token`.
        token: ReplyToken,
        /// The answer.
        message: Outgoing,
    },
    /// Submit one I/O operation and wait for its completion.
    Io(IoOp),
    /// Submit one I/O operation and wait for its completion, at most `timeout`: then the
    /// shard asks the backend to cancel it, and the completion arrives as
    /// `IoResult::Failed(IoError::TimedOut)` (or with the operation's own result, if it
    /// finished first). A partitioned peer or a silent disk cannot hang the isolate.
    IoWithin {
        /// The operation.
        op: IoOp,
        /// How long to wait before the operation is cancelled.
        timeout: Duration,
    },
}

impl Effect {
    /// `Effect::Call` with `payload` encoded.
    pub fn call<P: Payload>(to: Handle, payload: &P, timeout: Duration) -> Effect {
        Effect::Call { to, message: Outgoing::new(payload), timeout }
    }

    /// `Effect::IoWithin`: `op`, cancelled if it has not completed within `timeout`.
    pub fn io_within(op: IoOp, timeout: Duration) -> Effect {
        Effect::IoWithin { op, timeout }
    }

    /// `Effect::Reply` with `payload` encoded.
    pub fn reply<P: Payload>(token: ReplyToken, payload: &P) -> Effect {
        Effect::Reply { token, message: Outgoing::new(payload) }
    }
}

/// Names the caller waiting for a reply: keep it in the isolate's state to reply later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyToken {
    pub(crate) caller: Handle,
    pub(crate) correlation: u32,
}

impl ReplyToken {
    /// The isolate that made the call.
    pub fn caller(&self) -> Handle {
        self.caller
    }
}

/// Crash reasons the core itself reports.
pub mod crash {
    use crate::label::Label;

    /// The handler or `init` panicked, or the state's `Drop` did after `Done`; the panic
    /// message is in the trace.
    pub const PANIC: Label = Label::new("panic");
    /// `init` returned `Effect::Done`, which leaves nothing to run.
    pub const INIT_DONE: Label = Label::new("init returned Done");
    /// The isolate returned an effect this version of the scheduler does not interpret.
    pub const EFFECT_UNSUPPORTED: Label = Label::new("effect not supported");
    /// The backend failed the `init` before it ran (`Backend::fail_init`, a simulated
    /// fault).
    pub const INJECTED_INIT_FAILURE: Label = Label::new("injected init failure");
}
