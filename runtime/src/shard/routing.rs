//! Routing: sending a message (to a mailbox on this shard or into the transport toward
//! another), accepting what arrives from other shards, replies, and the errors a sender
//! sees (`SendError`, `ReplyError`). Every send and every drop is counted and traced here.
//!
//! Not the transport (the backend's) nor delivery to a handler (dispatch takes messages
//! out of the mailboxes this file fills).

use core::fmt;

use super::ShardCore;
use super::calls::{CallResolution, CallSlot};
use super::slots::{SlotState, pending};
use crate::backend::Env;
use crate::handle::Handle;
use crate::isolate::ReplyToken;
use crate::message::{Message, MessageId};
use crate::payload::{Outgoing, Payload};
use crate::trace::{CallOutcome, DropReason, Event};

/// Why a send failed. Counted and traced in every case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The destination mailbox (or, for another shard, the transport toward it) is full.
    MailboxFull,
    /// The shard's message pool has no free envelope.
    PoolExhausted,
    /// The handle names no live isolate.
    StaleHandle,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::MailboxFull => "the destination mailbox is full",
            SendError::PoolExhausted => "the message pool is exhausted",
            SendError::StaleHandle => "the handle names no live isolate",
        })
    }
}

impl std::error::Error for SendError {}

/// Why a reply could not be delivered (for a caller on this shard; a reply to another
/// shard fails, if it does, on that shard, counted there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// The caller is gone, or no longer waits for this call (answered or timed out).
    NoPendingCall,
    /// The message pool had no envelope for the reply.
    PoolExhausted,
    /// The transport toward the caller's shard is full.
    TransportFull,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplyError::NoPendingCall => "the caller no longer waits for this reply",
            ReplyError::PoolExhausted => "the message pool is exhausted",
            ReplyError::TransportFull => "the transport toward the caller is full",
        })
    }
}

impl std::error::Error for ReplyError {}

impl ShardCore {
    /// Sends `outgoing` from `from` to `to`: locally into the mailbox, or into the transport.
    #[inline]
    pub(crate) fn send(
        &mut self,
        env: &mut dyn Env,
        from: Handle,
        to: Handle,
        outgoing: &Outgoing,
    ) -> Result<(), SendError> {
        let id = self.next_id();
        self.send_message(env, &Message::user(id, from, to, outgoing))
    }

    /// `send` of `Outgoing::new(payload)`, with the envelope encoded in place.
    #[inline]
    pub(crate) fn send_payload<P: Payload>(
        &mut self,
        env: &mut dyn Env,
        from: Handle,
        to: Handle,
        payload: &P,
    ) -> Result<(), SendError> {
        let id = self.next_id();
        self.send_message(env, &Message::user_payload(id, from, to, payload))
    }

    /// `send_payload` of a message that asks for a drop notice (`ctx.send_notify`); returns
    /// its id, by which the notice names it.
    #[inline]
    pub(crate) fn send_payload_notify<P: Payload>(
        &mut self,
        env: &mut dyn Env,
        from: Handle,
        to: Handle,
        payload: &P,
    ) -> Result<MessageId, SendError> {
        let id = self.next_id();
        self.send_message(env, &Message::user_payload_notify(id, from, to, payload))?;
        Ok(id)
    }

    /// Routes an envelope built by this shard; counts and traces the send and any drop.
    #[inline]
    pub(super) fn send_message(
        &mut self,
        env: &mut dyn Env,
        message: &Message,
    ) -> Result<(), SendError> {
        let (id, from, to) = (message.id(), message.source(), message.destination());
        self.counters.sent += 1;
        self.trace(env, Event::Send { id, from, to, tag: message.tag() });
        let remote = !to.is_none() && to.shard() != self.shard;
        let result = if !remote {
            if message.is_reply() {
                self.accept_reply(env, message)
            } else {
                self.enqueue(env, message)
            }
        } else if to.shard().index() >= self.shard_count {
            Err(DropReason::StaleHandle)
        } else {
            env.send_remote(to.shard(), message).map_err(|_| DropReason::RingFull)
        };
        match result {
            Ok(()) => Ok(()),
            Err(reason) => self.send_failed(env, message, reason),
        }
    }

    /// A send that reached no mailbox: retried for a latest destination on this shard
    /// (`accept_latest`), else dropped, counted and traced. Out of line: sends usually
    /// succeed.
    #[inline(never)]
    fn send_failed(
        &mut self,
        env: &mut dyn Env,
        message: &Message,
        reason: DropReason,
    ) -> Result<(), SendError> {
        let reason = match self.retry_latest(env, message, reason) {
            Ok(()) => return Ok(()),
            Err(reason) => reason,
        };
        // A drop at a live slot names the incarnation, not a latest handle.
        let to = self.concrete(message.destination());
        self.drop_message(env, message, to, reason);
        Err(match reason {
            DropReason::MailboxFull | DropReason::RingFull => SendError::MailboxFull,
            DropReason::PoolExhausted => SendError::PoolExhausted,
            // A send never meets a down shard here: its arrivals are dropped there.
            DropReason::StaleHandle
            | DropReason::TargetExited
            | DropReason::LateReply
            | DropReason::ShardDown => SendError::StaleHandle,
        })
    }

    /// Accepts an envelope that arrived from another shard; drops are counted here. A call
    /// request dropped here is answered with a call-failure notice (`refuse_call`), so the
    /// caller does not wait for its timeout.
    #[inline]
    pub(crate) fn accept_remote(&mut self, env: &mut dyn Env, message: &Message) {
        let result = if message.is_reply() {
            self.accept_reply(env, message)
        } else {
            self.enqueue(env, message)
        };
        if let Err(reason) = result {
            self.arrival_failed(env, message, reason);
        }
    }

    /// An arrival that reached no mailbox: retried for a latest destination, else dropped,
    /// counted and traced. Out of line: arrivals usually succeed.
    #[inline(never)]
    fn arrival_failed(&mut self, env: &mut dyn Env, message: &Message, reason: DropReason) {
        if let Err(reason) = self.retry_latest(env, message, reason) {
            // A drop at a live slot names the incarnation, not a latest handle.
            let to = self.concrete(message.destination());
            self.drop_message(env, message, to, reason);
            if message.is_call() {
                self.refuse_call(env, message, reason);
            }
        }
    }

    /// A latest destination fails the strict resolution of `enqueue` and `accept_reply`
    /// (with no side effect) as a stale handle; only then is it looked up as a slot
    /// address, so ordinary sends never test for latest handles. The envelope is
    /// readdressed to the incarnation live in the slot before it is queued, so mailboxes,
    /// events and the handler's own handle are always concrete. Any other failure is
    /// returned as it was.
    fn retry_latest(
        &mut self,
        env: &mut dyn Env,
        message: &Message,
        reason: DropReason,
    ) -> Result<(), DropReason> {
        let to = message.destination();
        if reason != DropReason::StaleHandle || !to.is_latest() || to.shard() != self.shard {
            return Err(reason);
        }
        let (type_index, slot) = self.locate(to).ok_or(DropReason::StaleHandle)?;
        let mut concrete = *message;
        concrete.readdress(self.handle_of(type_index, slot));
        if concrete.is_reply() {
            self.accept_reply(env, &concrete)
        } else {
            self.enqueue(env, &concrete)
        }
    }

    /// Drops `message`, which the drop names as addressed to `to`: counted and traced (see
    /// `record_drop`); then, if it asked for one, a drop notice goes to its sender.
    #[inline]
    pub(super) fn drop_message(
        &mut self,
        env: &mut dyn Env,
        message: &Message,
        to: Handle,
        reason: DropReason,
    ) {
        self.record_drop(env, message, to, reason);
        if message.wants_notice() {
            self.notify_drop(env, message, to, reason);
        }
    }

    /// Counts and traces the drop of `message`, without a notice to its sender (where a
    /// down or crashing shard drops it, `drop_message` everywhere else). A drop notice that
    /// is dropped is also counted as lost.
    #[inline]
    pub(super) fn record_drop(
        &mut self,
        env: &mut dyn Env,
        message: &Message,
        to: Handle,
        reason: DropReason,
    ) {
        self.counters.count_drop(reason);
        if message.is_drop_notice() {
            self.counters.drop_notices_lost += 1;
        }
        self.trace(env, Event::Drop { id: message.id(), to, reason });
    }

    /// Puts `message` in its destination's mailbox on this shard and wakes the destination.
    /// The checks run in a fixed order: liveness, capacity, pool. A drop notice is not held
    /// to the capacity (see `notices`), only to the pool.
    #[inline]
    fn enqueue(&mut self, env: &mut dyn Env, message: &Message) -> Result<(), DropReason> {
        let mut to = message.destination();
        let (type_index, slot) = match self.resolve(to) {
            Some(found) => found,
            None => {
                // A latest destination: the incarnation live in its slot, if any.
                let (type_index, slot, concrete) =
                    self.resolve_latest(to).ok_or(DropReason::StaleHandle)?;
                to = concrete;
                (type_index, slot)
            }
        };
        let slots = &mut self.types[type_index];
        let meta = &mut slots.meta[slot];
        // The notice test runs only when the mailbox is full.
        if meta.mailbox.len() >= slots.mailbox_capacity && !message.is_drop_notice() {
            return Err(DropReason::MailboxFull);
        }
        meta.mailbox.push_back(&mut self.pool, message).map_err(|()| DropReason::PoolExhausted)?;
        if to != message.destination() {
            // The queued copy names the incarnation, so its handler sees a concrete handle.
            meta.mailbox.readdress_back(&mut self.pool, to);
        }
        let mailbox_len = meta.mailbox.len();
        if meta.state == SlotState::Waiting {
            meta.wake(&mut slots.ready, slot);
        }
        self.counters.enqueued += 1;
        self.trace(env, Event::Enqueue { id: message.id(), to, mailbox_len, reply: false });
        Ok(())
    }

    /// Delivers a reply to a caller on this shard: accepted only while the caller waits for
    /// that very call; then it goes to the head of the mailbox, ahead of older messages, and
    /// does not count against the capacity. A call-failure notice from the callee's shard is
    /// accepted the same way, but ends the call as failed (and unroutable), not replied.
    fn accept_reply(&mut self, env: &mut dyn Env, message: &Message) -> Result<(), DropReason> {
        let caller = message.destination();
        let (type_index, slot) = self.resolve(caller).ok_or(DropReason::StaleHandle)?;
        let slots = &mut self.types[type_index];
        let call = slots.call[slot];
        if slots.meta[slot].state != SlotState::WaitingReply
            || call.correlation != message.correlation()
            || call.resolution != CallResolution::None
        {
            return Err(DropReason::LateReply);
        }
        slots.meta[slot]
            .mailbox
            .push_front(&mut self.pool, message)
            .map_err(|()| DropReason::PoolExhausted)?;
        let mailbox_len = slots.meta[slot].mailbox.len();
        slots.call[slot] = CallSlot { correlation: 0, resolution: CallResolution::Reply };
        slots.meta[slot].pending |= pending::RESOLVED;
        let key = self.key_of(type_index, slot);
        self.timers.cancel_call(key);
        self.counters.enqueued += 1;
        // A reply that carries a call failure is a notice from the callee's shard.
        let outcome = match message.call_failure() {
            Some(failure) => {
                self.counters.calls_unroutable += 1;
                CallOutcome::Failed(failure)
            }
            None => {
                self.counters.calls_replied += 1;
                CallOutcome::Replied
            }
        };
        self.trace(env, Event::Enqueue { id: message.id(), to: caller, mailbox_len, reply: true });
        let correlation = message.correlation();
        self.trace(env, Event::CallEnd { caller, correlation, outcome });
        self.types[type_index].wake(slot);
        Ok(())
    }

    /// Sends the reply for `token`.
    pub(crate) fn reply(
        &mut self,
        env: &mut dyn Env,
        from: Handle,
        token: ReplyToken,
        outgoing: &Outgoing,
    ) -> Result<(), ReplyError> {
        let id = self.next_id();
        self.counters.replies += 1;
        let message = Message::reply(id, from, token.caller, token.correlation, outgoing);
        self.send_message(env, &message).map_err(|error| match error {
            SendError::MailboxFull => ReplyError::TransportFull,
            SendError::PoolExhausted => ReplyError::PoolExhausted,
            SendError::StaleHandle => ReplyError::NoPendingCall,
        })
    }
}
