//! `Ctx`: what a handler may do synchronously while it runs.
//!
//! A `Ctx` borrows the shard's metadata, pool, mailboxes and counters (never the arena being
//! dispatched) and the backend through `&mut dyn Env`, so it does not mention the backend
//! type. Every call returns at once: sends and spawns report a typed result instead of
//! blocking, logging records a trace event instead of formatting.

use core::any::TypeId;
use core::fmt;

use zerocopy::IntoBytes;

use crate::backend::{Env, Timestamp};
use crate::handle::{Handle, ShardId};
use crate::isolate::Isolate;
use crate::label::Label;
use crate::limits::LOG_VALUES_MAX;
use crate::payload::{Outgoing, Payload};
use crate::shard::{SendError, ShardCore};
use crate::trace::{Event, Level, SpawnError};

/// The handler's view of its shard.
pub struct Ctx<'a> {
    core: &'a mut ShardCore,
    env: &'a mut dyn Env,
    me: Handle,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(core: &'a mut ShardCore, env: &'a mut dyn Env, me: Handle) -> Ctx<'a> {
        Ctx { core, env, me }
    }

    /// The running isolate's own handle.
    pub fn self_handle(&self) -> Handle {
        self.me
    }

    /// The shard the isolate runs on.
    pub fn shard(&self) -> ShardId {
        self.core.shard
    }

    /// The backend's clock, read at the start of the current tick.
    pub fn now(&self) -> Timestamp {
        self.core.now
    }

    /// Sends `payload` to `to`. Returns at once; a failure is counted and traced.
    ///
    /// For an isolate on another shard, `Ok` means a slot in the outbound transport was
    /// reserved; a drop at the receiver is counted there.
    pub fn send<P: Payload>(&mut self, to: Handle, payload: &P) -> Result<(), SendError> {
        self.send_outgoing(to, &Outgoing::new(payload))
    }

    /// Sends an already encoded payload.
    pub fn send_outgoing(&mut self, to: Handle, outgoing: &Outgoing) -> Result<(), SendError> {
        self.core.send(self.env, self.me, to, outgoing)
    }

    /// Spawns an isolate of type `I` on this shard. The handle is returned at once; the
    /// child's `init` runs right after the current handler returns, and messages sent to it
    /// meanwhile wait in its mailbox.
    pub fn spawn<I: Isolate>(&mut self, args: I::Args) -> Result<Handle, SpawnError> {
        self.core.reserve(self.env, self.me, TypeId::of::<I>(), args.as_bytes())
    }

    /// Records a log event: a level, a static tag and up to four integers. Nothing is
    /// formatted unless the backend writes a log.
    pub fn log<const N: usize>(&mut self, level: Level, tag: Label, values: [u64; N]) {
        const { assert!(N <= LOG_VALUES_MAX, "ctx.log takes at most four values") }
        self.core.counters.logs += 1;
        if self.core.trace_on {
            let mut padded = [0; LOG_VALUES_MAX];
            padded[..N].copy_from_slice(&values);
            // N is at most four.
            let count = N as u8;
            self.env.trace(&Event::Log { handle: self.me, level, tag, values: padded, count });
        }
    }

    /// A random word from the backend: a seeded stream in simulation.
    pub fn random_u64(&mut self) -> u64 {
        self.env.random_u64()
    }
}

impl fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx").field("self", &self.me).field("shard", &self.core.shard).finish()
    }
}
