//! `Ctx`: what a handler may do synchronously while it runs.
//!
//! A `Ctx` borrows the shard's metadata, pool, mailboxes, timers, buffers and counters
//! (never the arena being dispatched) and the backend through `&mut dyn Env`, so it does not
//! mention the backend type. Every call returns at once: sends, spawns and timers report a
//! typed result instead of blocking; logging records a trace event instead of formatting.
//! Every call that runs core or backend code counts itself in `ShardCore::in_core` (the core
//! guard), so a panic inside one is recognised as a broken invariant of the core and
//! re-raised past the isolate boundary instead of being blamed on the isolate.

use core::any::TypeId;
use core::fmt;
use core::time::Duration;

use zerocopy::IntoBytes;

use crate::backend::{Env, Timestamp};
use crate::handle::{Handle, ShardId};
use crate::io::{BufferId, IoError, IoHandle};
use crate::isolate::{Isolate, ReplyToken};
use crate::label::Label;
use crate::limits::LOG_VALUES_MAX;
use crate::message::MessageId;
use crate::payload::{Outgoing, Payload};
use crate::shard::{ReplyError, SendError, ShardCore};
use crate::spec::Restart;
use crate::supervision::NO_GROUP;
use crate::timer::{TimerError, TimerId};
use crate::trace::{Event, Level, SpawnError};

/// The handler's view of its shard.
pub struct Ctx<'a> {
    core: &'a mut ShardCore,
    env: &'a mut dyn Env,
    me: Handle,
}

impl<'a> Ctx<'a> {
    #[inline]
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

    /// Whether the shard is shutting down (`Scheduler::begin_shutdown`; true from then on,
    /// through the drain). An isolate gets a `Tag::SHUTDOWN` message once
    /// (`Message::is_shutdown`) at its next wait for messages; this answers at any point, for
    /// example in the handler of a completion that arrived first, or before starting work
    /// that the drain could not finish. While it is true, `spawn` and `spawn_child` fail with
    /// `SpawnError::ShuttingDown` and no supervisor restarts anything.
    ///
    /// ```
    /// use tina::{Ctx, Effect, Isolate, Message};
    ///
    /// /// Serves until the shard shuts down, then ends: the drain finishes without it.
    /// struct Worker;
    ///
    /// impl Isolate for Worker {
    ///     type Args = ();
    ///     fn init(_: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
    ///         (Worker, Effect::Receive)
    ///     }
    ///     fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
    ///         if message.is_shutdown() || ctx.shutting_down() {
    ///             return Effect::Done;
    ///         }
    ///         Effect::Receive
    ///     }
    /// }
    /// ```
    pub fn shutting_down(&self) -> bool {
        self.core.shutdown.is_some()
    }

    /// The deadline of the shard's shutdown drain on its clock (the `now` timeline), while
    /// it shuts down: isolates still alive then are torn down.
    pub fn shutdown_deadline(&self) -> Option<Timestamp> {
        self.core.shutdown.map(|state| state.deadline)
    }

    /// Sends `payload` to `to`. Returns at once; a failure is counted and traced.
    ///
    /// For an isolate on another shard, `Ok` means a slot in the outbound transport was
    /// reserved; a drop at the receiver is counted there.
    #[inline]
    pub fn send<P: Payload>(&mut self, to: Handle, payload: &P) -> Result<(), SendError> {
        // What `send_outgoing(to, &Outgoing::new(payload))` does, without the copy of the
        // payload through an `Outgoing`.
        self.core.in_core += 1;
        let result = self.core.send_payload(self.env, self.me, to, payload);
        self.core.in_core -= 1;
        result
    }

    /// Sends `payload` to `to` like `send`, and asks to be told if it is dropped anywhere on
    /// its way. Returns the message's id, which the notice carries.
    ///
    /// If the message is dropped (at the outbound transport of this shard, `RingFull`; at a
    /// full mailbox; at an exhausted pool; at a stale or free handle; or queued when its
    /// target stopped, `TargetExited`), the shard that dropped it sends this isolate a
    /// `Tag::DROP_NOTICE` message: `message.drop_notice()` gives the id, the destination and
    /// the reason. A drop on this shard sends one too, so a handler that reacts to notices
    /// serves local and remote targets alike; the call then also returns its `Err`, as
    /// `send` does, and no id: the notice of a send that returned `Err` matches no id the
    /// caller kept. Handle a drop once: by the `Err`, or by the notice of an id you got.
    ///
    /// No notice comes when the destination's shard is down (or crashes with the message
    /// queued): a down shard answers nothing. A notice is not held to this isolate's
    /// mailbox capacity, so a full mailbox cannot swallow it, but it takes an envelope of
    /// this shard's pool: a notice that cannot be delivered (this isolate stopped, the
    /// transport back or the pool full) is dropped and counted in
    /// `Counters::drop_notices_lost`. In particular, a drop for `PoolExhausted` on this
    /// shard leaves no envelope for its notice: the `Err` is the answer.
    ///
    /// ```
    /// use tina::{Ctx, DropReason, Effect, Handle, Isolate, Message, MessageId};
    ///
    /// tina::payload! {
    ///     #[derive(Clone, Copy, Debug)]
    ///     #[repr(C)]
    ///     pub struct Job { pub number: u64 }
    /// }
    ///
    /// /// Sends one job, and sends it again when its notice says there was no room (a real
    /// /// client would wait a little first, or use a credit window: `tina::flow`).
    /// struct Client { worker: Handle, job: Job, pending: Option<MessageId> }
    ///
    /// impl Isolate for Client {
    ///     type Args = Handle;
    ///     fn init(worker: Handle, ctx: &mut Ctx<'_>) -> (Self, Effect) {
    ///         let job = Job { number: 1 };
    ///         let pending = ctx.send_notify(worker, &job).ok();
    ///         (Client { worker, job, pending }, Effect::Receive)
    ///     }
    ///     fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
    ///         let Some(notice) = message.drop_notice() else { return Effect::Receive };
    ///         // The notice of a send that returned `Err` matches no id kept here.
    ///         if Some(notice.id) != self.pending {
    ///             return Effect::Receive;
    ///         }
    ///         match notice.reason {
    ///             DropReason::MailboxFull | DropReason::RingFull | DropReason::PoolExhausted => {
    ///                 self.pending = ctx.send_notify(self.worker, &self.job).ok();
    ///                 Effect::Receive
    ///             }
    ///             // The worker is gone, or stopped with the job queued.
    ///             _ => Effect::Done,
    ///         }
    ///     }
    /// }
    /// ```
    #[inline]
    pub fn send_notify<P: Payload>(
        &mut self,
        to: Handle,
        payload: &P,
    ) -> Result<MessageId, SendError> {
        self.core.in_core += 1;
        let result = self.core.send_payload_notify(self.env, self.me, to, payload);
        self.core.in_core -= 1;
        result
    }

    /// Sends an already encoded payload.
    #[inline]
    pub fn send_outgoing(&mut self, to: Handle, outgoing: &Outgoing) -> Result<(), SendError> {
        self.core.in_core += 1;
        let result = self.core.send(self.env, self.me, to, outgoing);
        self.core.in_core -= 1;
        result
    }

    /// Replies to the call `token` names, now or from any later handler call. The caller
    /// gets it ahead of its other queued messages. Replying when the caller no longer waits
    /// (it timed out, or was answered) is `NoPendingCall` for a caller on this shard, and a
    /// counted late reply on the caller's shard otherwise.
    pub fn reply<P: Payload>(&mut self, token: ReplyToken, payload: &P) -> Result<(), ReplyError> {
        self.core.in_core += 1;
        let result = self.core.reply(self.env, self.me, token, &Outgoing::new(payload));
        self.core.in_core -= 1;
        result
    }

    /// Spawns an unsupervised isolate of type `I` on this shard. The handle is returned at
    /// once; the child's `init` runs right after the current handler returns, and messages
    /// sent to it meanwhile wait in its mailbox.
    pub fn spawn<I: Isolate>(&mut self, args: I::Args) -> Result<Handle, SpawnError> {
        self.core.in_core += 1;
        let type_index = self.core.type_index_of(TypeId::of::<I>());
        let result = self.core.reserve(self.env, self.me, type_index, args.as_bytes(), NO_GROUP);
        self.core.in_core -= 1;
        result
    }

    /// Spawns an isolate of type `I` as a dynamic child of the caller's own supervision
    /// group, restarted according to `restart`. Refused with `NotSupervised` if the caller
    /// has no group, and `GroupFull` at the group's `dynamic_children_max`.
    pub fn spawn_child<I: Isolate>(
        &mut self,
        args: I::Args,
        restart: Restart,
    ) -> Result<Handle, SpawnError> {
        self.core.in_core += 1;
        let result =
            self.core.spawn_child(self.env, self.me, TypeId::of::<I>(), args.as_bytes(), restart);
        self.core.in_core -= 1;
        result
    }

    /// Sets a one-shot timer: after `after` (rounded up to the timer resolution), a
    /// `Tag::TIMER` message carrying the id and `tag` is delivered. A timer never fires early,
    /// fires at most once, and never disturbs pending I/O.
    pub fn timer_set(&mut self, after: Duration, tag: u64) -> Result<TimerId, TimerError> {
        self.core.in_core += 1;
        let result = self.core.timer_set(self.env, self.me, after, tag);
        self.core.in_core -= 1;
        result
    }

    /// Cancels a timer this isolate set. Returns whether it was still pending; a cancelled
    /// timer is never delivered.
    pub fn timer_cancel(&mut self, timer: TimerId) -> bool {
        self.core.in_core += 1;
        let result = self.core.timer_cancel(self.env, self.me, timer);
        self.core.in_core -= 1;
        result
    }

    /// Takes a shard-owned I/O buffer, freed when this isolate stops or hands it to an
    /// operation.
    pub fn buffer_alloc(&mut self) -> Result<BufferId, IoError> {
        self.core.in_core += 1;
        let result = self.core.buffer_alloc(self.me);
        self.core.in_core -= 1;
        result
    }

    /// Copies `bytes` into a buffer this isolate holds, at `offset`.
    pub fn buffer_write(
        &mut self,
        buffer: BufferId,
        offset: usize,
        bytes: &[u8],
    ) -> Result<(), IoError> {
        self.core.in_core += 1;
        let result = self.core.buffer_write(self.me, buffer, offset, bytes);
        self.core.in_core -= 1;
        result
    }

    /// Frees a buffer this isolate holds.
    pub fn buffer_free(&mut self, buffer: BufferId) -> Result<(), IoError> {
        self.core.in_core += 1;
        let result = self.core.buffer_free(self.me, buffer);
        self.core.in_core -= 1;
        result
    }

    /// Takes ownership of a socket or file another isolate handed over (after its
    /// `io_disown`): this isolate's teardown will close it. An opened or accepted handle is
    /// owned by the isolate it completes for without this call. `TooManyHandles` past
    /// `IO_HANDLES_PER_ISOLATE_MAX`; the core does not check that the handle was given.
    pub fn io_adopt(&mut self, handle: IoHandle) -> Result<(), IoError> {
        self.core.io_adopt(self.me, handle)
    }

    /// Gives up ownership of a socket or file to hand it to another isolate (which adopts
    /// it): it stays open, and this isolate's teardown no longer closes it. Returns whether
    /// this isolate owned it.
    pub fn io_disown(&mut self, handle: IoHandle) -> bool {
        self.core.io_disown(self.me, handle)
    }

    /// The bytes received by the I/O completion being handled (empty otherwise). Valid only
    /// during this handler call: the buffer returns to the shard when the handler returns.
    pub fn io_data(&self) -> &[u8] {
        self.core.io_data()
    }

    /// Records a log event: a level, a static tag and up to four integers. Nothing is
    /// formatted unless the backend writes a log.
    pub fn log<const N: usize>(&mut self, level: Level, tag: Label, values: [u64; N]) {
        const { assert!(N <= LOG_VALUES_MAX, "ctx.log takes at most four values") }
        // The backend's sink runs here: a panic in it is the core's, not the isolate's.
        self.core.in_core += 1;
        self.core.counters.logs += 1;
        if self.core.trace_on {
            let mut padded = [0; LOG_VALUES_MAX];
            padded[..N].copy_from_slice(&values);
            // N is at most four.
            let count = N as u8;
            self.env.trace(&Event::Log { handle: self.me, level, tag, values: padded, count });
        }
        self.core.in_core -= 1;
    }

    /// A random word from the backend: a seeded stream in simulation.
    pub fn random_u64(&mut self) -> u64 {
        // Backend code: a panic in it is the core's, not the isolate's.
        self.core.in_core += 1;
        let word = self.env.random_u64();
        self.core.in_core -= 1;
        word
    }

    /// A fault-injection point, after FoundationDB's `BUGGIFY`: whether the isolate should
    /// take a rare but legal path here (a slow path, an early timeout, a smaller batch, a
    /// spurious retry), so that simulation exercises the code that handles it.
    ///
    /// In production it is a constant `false`: unless the backend says sites may fire
    /// (`Backend::buggify_on`, read once per tick), the call answers `false` without
    /// leaving the core, one branch. In the simulator each named `site` is
    /// activated for a whole run with some probability, and an active site then fires on
    /// each call with another probability, both drawn from the seed: a run either never
    /// takes a site's path or takes it now and then, and the same seed takes it at the same
    /// calls. The label names the site; keep it unique and stable, since the simulator's
    /// draws are keyed by it.
    ///
    /// ```
    /// use tina::{Ctx, Effect, Label};
    ///
    /// fn on_request(ctx: &mut Ctx<'_>) -> Effect {
    ///     if ctx.buggify(Label::new("kv.slow-path")) {
    ///         // Answer on the next tick instead of now: callers must cope with it.
    ///         return Effect::Yield;
    ///     }
    ///     Effect::Receive
    /// }
    /// ```
    #[inline]
    pub fn buggify(&mut self, site: Label) -> bool {
        if !self.core.buggify_on {
            return false;
        }
        // Backend code: a panic in it is the core's, not the isolate's.
        self.core.in_core += 1;
        let fires = self.env.buggify(site);
        self.core.in_core -= 1;
        fires
    }

    /// Asks the runtime to bring back `shard` if it is quarantined: a shard whose restarts
    /// exceeded their budget stays down until an operator revives it. An operator isolate
    /// (one that watches the system's health, or obeys an administrator) calls this; the
    /// request returns at once, and the shard comes back when the runtime gets to it. A
    /// request for a shard that is not quarantined (running, recovering, or not a shard of
    /// this node) does nothing.
    ///
    /// ```
    /// use core::time::Duration;
    /// use tina::{Ctx, Effect, Isolate, Message, ShardId};
    ///
    /// /// Every second, asks for shard 1 back in case it was quarantined.
    /// struct Operator;
    /// impl Isolate for Operator {
    ///     type Args = ();
    ///     fn init(_: (), ctx: &mut Ctx<'_>) -> (Self, Effect) {
    ///         let _ = ctx.timer_set(Duration::from_secs(1), 0);
    ///         (Operator, Effect::Receive)
    ///     }
    ///     fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
    ///         if message.timer().is_some() {
    ///             ctx.revive_shard(ShardId(1));
    ///             let _ = ctx.timer_set(Duration::from_secs(1), 0);
    ///         }
    ///         Effect::Receive
    ///     }
    /// }
    /// ```
    pub fn revive_shard(&mut self, shard: ShardId) {
        // Backend code: a panic in it is the core's, not the isolate's.
        self.core.in_core += 1;
        self.env.revive_shard(shard);
        self.core.in_core -= 1;
    }
}

impl fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx").field("self", &self.me).field("shard", &self.core.shard).finish()
    }
}
