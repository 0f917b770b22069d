//! The 128-byte message envelope and message ids.
//!
//! A `Message` is what mailboxes hold, what cross-shard transports carry, and what a handler
//! receives (a copy, taken out of the pool before dispatch). Its fields are private: only the
//! core builds envelopes, so system tags and flags cannot be forged through the user API.

use core::fmt;

use crate::backend::Timestamp;
use crate::handle::{Handle, ShardId};
use crate::io::IoCompletion;
use crate::isolate::ReplyToken;
use crate::limits::{ENVELOPE_SIZE, PAYLOAD_SIZE_MAX};
use crate::payload::{self, DecodeError, Outgoing, Payload, Tag};
use crate::timer::TimerId;
use crate::trace::{CallFailure, DropReason};

/// What a `Tag::TIMER` message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerFired {
    /// The timer that fired.
    pub timer: TimerId,
    /// The tag given to `ctx.timer_set`.
    pub tag: u64,
}

impl TimerFired {
    pub(crate) fn encode(&self) -> [u8; 16] {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&self.timer.to_raw().to_le_bytes());
        bytes[8..].copy_from_slice(&self.tag.to_le_bytes());
        bytes
    }
}

/// What a `Tag::DROP_NOTICE` message carries: which message sent with `ctx.send_notify` was
/// dropped, where it was going, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DropNotice {
    /// The dropped message: the id `ctx.send_notify` returned.
    pub id: MessageId,
    /// Its destination, as the drop names it (the incarnation a latest handle reached, when
    /// it reached one).
    pub to: Handle,
    /// Why it was dropped: `MailboxFull`, `PoolExhausted`, `StaleHandle`, `RingFull` or
    /// `TargetExited` (a down shard and a late reply send no notice).
    pub reason: DropReason,
}

/// Bytes of a drop notice's payload: id (8), destination (8), reason (1).
const DROP_NOTICE_SIZE: usize = 17;

impl DropNotice {
    fn encode(&self) -> [u8; DROP_NOTICE_SIZE] {
        let mut bytes = [0; DROP_NOTICE_SIZE];
        bytes[..8].copy_from_slice(&self.id.to_raw().to_le_bytes());
        bytes[8..16].copy_from_slice(&self.to.to_raw().to_le_bytes());
        bytes[16] = self.reason as u8;
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<DropNotice> {
        let bytes: &[u8; DROP_NOTICE_SIZE] = bytes.try_into().ok()?;
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
        Some(DropNotice {
            id: MessageId::from_raw(word(0)),
            to: Handle::from_raw(word(8)),
            reason: DropReason::from_u8(bytes[16])?,
        })
    }
}

/// Identifies one message for its whole life: the shard that created it (top 8 bits) and
/// that shard's send sequence number (low 56 bits, starting at 1). Checkers match a delivery
/// to its send by this id in O(1).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MessageId(u64);

const MESSAGE_SEQUENCE_BITS: u32 = 56;
const MESSAGE_SEQUENCE_MASK: u64 = (1 << MESSAGE_SEQUENCE_BITS) - 1;

impl MessageId {
    /// No message (a dispatch after `Yield` carries it).
    pub const NONE: MessageId = MessageId(0);

    #[inline]
    pub(crate) fn new(origin: ShardId, sequence: u64) -> MessageId {
        // 2^56 sends from one shard at 10^9 per second take over two years.
        assert!(sequence != 0 && sequence <= MESSAGE_SEQUENCE_MASK, "message sequence wrapped");
        MessageId(((origin.0 as u64) << MESSAGE_SEQUENCE_BITS) | sequence)
    }

    /// The shard that created the message.
    pub const fn origin(self) -> ShardId {
        ShardId((self.0 >> MESSAGE_SEQUENCE_BITS) as u8)
    }

    /// The origin shard's send sequence number.
    pub const fn sequence(self) -> u64 {
        self.0 & MESSAGE_SEQUENCE_MASK
    }

    /// Raw bits, stable across builds.
    pub const fn to_raw(self) -> u64 {
        self.0
    }

    /// Rebuilds an id from raw bits.
    pub const fn from_raw(raw: u64) -> MessageId {
        MessageId(raw)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for MessageId {
    /// `m<origin shard>.<sequence>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m{}.{}", self.origin().0, self.sequence())
    }
}

/// Envelope flags.
pub(crate) mod flags {
    /// The message is a request made with `Effect::Call`.
    pub const CALL: u8 = 1 << 0;
    /// The message is the reply to a call.
    pub const REPLY: u8 = 1 << 1;
    /// The sender asked for a drop notice if the message is dropped (`ctx.send_notify`).
    pub const NOTIFY: u8 = 1 << 2;
    /// The message is a drop notice (`Tag::DROP_NOTICE`): not counted against the mailbox
    /// capacity, counted as lost if dropped.
    pub const NOTICE: u8 = 1 << 3;
}

/// A message envelope: 96 bytes of inline payload and a 32-byte header.
///
/// Layout (fixed, asserted): payload (96), destination (8), source (8), id (8),
/// correlation (4), tag (2), flags (1), payload length (1).
#[derive(Clone, Copy)]
#[repr(C, align(16))]
pub struct Message {
    payload: [u8; PAYLOAD_SIZE_MAX],
    destination: Handle,
    source: Handle,
    id: MessageId,
    correlation: u32,
    tag: Tag,
    flags: u8,
    len: u8,
}

const _: () = assert!(size_of::<Message>() == ENVELOPE_SIZE);

impl Message {
    /// An envelope carrying `outgoing` from `source` to `destination`.
    #[inline]
    pub(crate) fn user(
        id: MessageId,
        source: Handle,
        destination: Handle,
        outgoing: &Outgoing,
    ) -> Message {
        debug_assert!(outgoing.tag.is_user());
        Message {
            payload: outgoing.bytes,
            destination,
            source,
            id,
            correlation: 0,
            tag: outgoing.tag,
            flags: 0,
            len: outgoing.len,
        }
    }

    /// The envelope `Message::user` builds from `Outgoing::new(payload)`, encoded in place
    /// rather than through an `Outgoing`.
    #[inline]
    pub(crate) fn user_payload<P: Payload>(
        id: MessageId,
        source: Handle,
        destination: Handle,
        payload: &P,
    ) -> Message {
        let tag = payload::checked_tag::<P>();
        let bytes = payload.as_bytes();
        let mut message = Message {
            payload: [0; PAYLOAD_SIZE_MAX],
            destination,
            source,
            id,
            correlation: 0,
            tag,
            flags: 0,
            // `checked_tag` bounds the length by 96, which fits in u8.
            len: bytes.len() as u8,
        };
        message.payload[..bytes.len()].copy_from_slice(bytes);
        message
    }

    /// A message from outside the system (an application thread, through the production
    /// runtime's `Injector`) to `destination`: a user payload with no source isolate, so a
    /// reply to it is dropped as stale. Its id is numbered by the injector (`sequence`,
    /// from 1) in the upper half of the destination shard's id space, apart from the
    /// shard's own sends.
    pub fn injected<P: Payload>(destination: Handle, payload: &P, sequence: u64) -> Message {
        const INJECTED: u64 = 1 << (MESSAGE_SEQUENCE_BITS - 1);
        let sequence = INJECTED | (sequence.max(1) & (INJECTED - 1));
        let id = MessageId::new(destination.shard(), sequence);
        Message::user_payload(id, Handle::NONE, destination, payload)
    }

    /// A call request: a user message flagged as a call, with the caller's correlation.
    pub(crate) fn request(
        id: MessageId,
        source: Handle,
        destination: Handle,
        correlation: u32,
        outgoing: &Outgoing,
    ) -> Message {
        let mut message = Message::user(id, source, destination, outgoing);
        message.flags = flags::CALL;
        message.correlation = correlation;
        message
    }

    /// A reply to the call `correlation` of `destination`.
    pub(crate) fn reply(
        id: MessageId,
        source: Handle,
        destination: Handle,
        correlation: u32,
        outgoing: &Outgoing,
    ) -> Message {
        let mut message = Message::user(id, source, destination, outgoing);
        message.flags = flags::REPLY;
        message.correlation = correlation;
        message
    }

    /// A call-failure notice: the answer of a callee's shard to a request from another
    /// shard that it dropped (stale callee, full mailbox, exhausted pool). It travels like a
    /// reply (flagged as one, with the caller's correlation) so the caller's shard accepts
    /// it only while the call waits, and carries the failure the way a local fail-fast
    /// message does (`Tag::CALL_TIMEOUT`, one byte), so `call_failure` decodes it.
    pub(crate) fn call_failure_notice(
        id: MessageId,
        caller: Handle,
        correlation: u32,
        failure: CallFailure,
    ) -> Message {
        let mut message = Message::system_with(caller, Tag::CALL_TIMEOUT, &[failure as u8], id);
        message.flags = flags::REPLY;
        message.correlation = correlation;
        message
    }

    /// Whether this is a call-failure notice (see `call_failure_notice`): a reply whose tag
    /// no isolate can send.
    #[inline]
    pub(crate) fn is_call_failure_notice(&self) -> bool {
        self.is_reply() && self.tag == Tag::CALL_TIMEOUT
    }

    /// Turns an accepted call-failure notice into what the caller is handed: the same
    /// message a call that fails on its own shard delivers (no reply flag, no correlation),
    /// keeping only its id, by which the trace follows it.
    pub(crate) fn settle_call_failure_notice(&mut self) {
        debug_assert!(self.is_call_failure_notice());
        self.flags = 0;
        self.correlation = 0;
    }

    /// `user_payload`, flagged as asking for a drop notice (`ctx.send_notify`).
    #[inline]
    pub(crate) fn user_payload_notify<P: Payload>(
        id: MessageId,
        source: Handle,
        destination: Handle,
        payload: &P,
    ) -> Message {
        let mut message = Message::user_payload(id, source, destination, payload);
        message.flags = flags::NOTIFY;
        message
    }

    /// A drop notice to `sender`, the source of the message `notice` describes. A system
    /// message (no source, a tag no isolate can send) that never asks for a notice itself.
    pub(crate) fn drop_notice_to(id: MessageId, sender: Handle, notice: &DropNotice) -> Message {
        let mut message = Message::system_with(sender, Tag::DROP_NOTICE, &notice.encode(), id);
        message.flags = flags::NOTICE;
        message
    }

    /// Whether the sender asked for a drop notice (`ctx.send_notify`).
    #[inline]
    pub(crate) fn wants_notice(&self) -> bool {
        self.flags & flags::NOTIFY != 0
    }

    /// Whether this is a drop notice.
    #[inline]
    pub(crate) fn is_drop_notice(&self) -> bool {
        self.flags & flags::NOTICE != 0
    }

    /// An envelope with nothing in it (a buffer to copy messages into).
    pub(crate) const BLANK: Message = Message {
        payload: [0; PAYLOAD_SIZE_MAX],
        destination: Handle::NONE,
        source: Handle::NONE,
        id: MessageId::NONE,
        correlation: 0,
        tag: Tag::NONE,
        flags: 0,
        len: 0,
    };

    /// Points the envelope at `destination`, everything else unchanged: a message sent to a
    /// latest handle is readdressed to the incarnation it reaches before it is queued.
    #[inline]
    pub(crate) fn readdress(&mut self, destination: Handle) {
        self.destination = destination;
    }

    /// Turns `self` into a payload-less system message in place. The old payload bytes
    /// stay but are unreadable: the length is zero.
    #[inline]
    pub(crate) fn make_system(&mut self, destination: Handle, tag: Tag) {
        self.destination = destination;
        self.source = Handle::NONE;
        self.id = MessageId::NONE;
        self.correlation = 0;
        self.tag = tag;
        self.flags = 0;
        self.len = 0;
    }

    /// A payload-less system message (resume).
    pub(crate) fn system(id: MessageId, destination: Handle, tag: Tag) -> Message {
        Message::system_with(destination, tag, &[], id)
    }

    /// The shutdown notice to `destination`: `Tag::SHUTDOWN`, carrying the drain's deadline.
    pub(crate) fn shutdown_notice(destination: Handle, deadline: Timestamp) -> Message {
        let bytes = deadline.as_nanos().to_le_bytes();
        Message::system_with(destination, Tag::SHUTDOWN, &bytes, MessageId::NONE)
    }

    /// A system message carrying `bytes` (timer fired, call timeout, I/O completion).
    pub(crate) fn system_with(
        destination: Handle,
        tag: Tag,
        bytes: &[u8],
        id: MessageId,
    ) -> Message {
        debug_assert!(!tag.is_user());
        let mut payload = [0; PAYLOAD_SIZE_MAX];
        payload[..bytes.len()].copy_from_slice(bytes);
        Message {
            payload,
            destination,
            source: Handle::NONE,
            id,
            correlation: 0,
            tag,
            flags: 0,
            // System payloads are at most 32 bytes.
            len: bytes.len() as u8,
        }
    }

    /// The message's tag.
    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// The isolate that sent it, or `Handle::NONE` for system messages.
    pub fn source(&self) -> Handle {
        self.source
    }

    /// The isolate it is addressed to.
    pub fn destination(&self) -> Handle {
        self.destination
    }

    /// Its id (origin shard and sequence number).
    pub fn id(&self) -> MessageId {
        self.id
    }

    /// The call correlation id (zero unless it is a request or a reply).
    pub fn correlation(&self) -> u32 {
        self.correlation
    }

    /// The payload bytes.
    pub fn payload_bytes(&self) -> &[u8] {
        &self.payload[..self.len as usize]
    }

    /// Whether this message carries a `P`.
    pub fn is<P: Payload>(&self) -> bool {
        self.tag == P::TAG
    }

    /// Decodes the payload as `P`, validating tag, length and value.
    pub fn decode<P: Payload>(&self) -> Result<P, DecodeError> {
        payload::decode::<P>(self.tag, self.payload_bytes())
    }

    /// Whether this is a request made with `Effect::Call`.
    pub fn is_call(&self) -> bool {
        self.flags & flags::CALL != 0
    }

    /// Whether this is the reply to a call.
    pub fn is_reply(&self) -> bool {
        self.flags & flags::REPLY != 0
    }

    /// For a call request, the token to reply with (now, or from a later handler call).
    pub fn reply_token(&self) -> Option<ReplyToken> {
        self.is_call().then_some(ReplyToken { caller: self.source, correlation: self.correlation })
    }

    /// For a `Tag::TIMER` message, which timer fired and the tag it was set with.
    pub fn timer(&self) -> Option<TimerFired> {
        if self.tag != Tag::TIMER || self.len != 16 {
            return None;
        }
        let word =
            |at: usize| u64::from_le_bytes(self.payload[at..at + 8].try_into().unwrap_or([0; 8]));
        Some(TimerFired { timer: TimerId::from_raw(word(0)), tag: word(8) })
    }

    /// For a `Tag::CALL_TIMEOUT` message, why the call failed.
    pub fn call_failure(&self) -> Option<CallFailure> {
        if self.tag != Tag::CALL_TIMEOUT || self.len != 1 {
            return None;
        }
        CallFailure::from_u8(self.payload[0])
    }

    /// For a `Tag::DROP_NOTICE` message, which message sent with `ctx.send_notify` was
    /// dropped, where it was going and why. Only the core sends these: an isolate cannot
    /// forge one.
    pub fn drop_notice(&self) -> Option<DropNotice> {
        if self.tag != Tag::DROP_NOTICE {
            return None;
        }
        DropNotice::decode(self.payload_bytes())
    }

    /// Whether this is the shard's shutdown notice (`Tag::SHUTDOWN`): the shard began its
    /// graceful shutdown, and this isolate should finish what it has under way and end
    /// (`Effect::Done`) before the deadline, after which whatever is still alive is torn
    /// down. Only the core sends it, once per isolate; `ctx.shutting_down()` tells the same
    /// at any point of the drain.
    pub fn is_shutdown(&self) -> bool {
        self.tag == Tag::SHUTDOWN
    }

    /// For the shutdown notice (`is_shutdown`), the deadline of the drain on the shard's
    /// clock (the `ctx.now()` timeline): isolates still alive then are torn down.
    pub fn shutdown_deadline(&self) -> Option<Timestamp> {
        if self.tag != Tag::SHUTDOWN || self.len != 8 {
            return None;
        }
        let bytes: [u8; 8] = self.payload[..8].try_into().unwrap_or([0; 8]);
        Some(Timestamp::from_nanos(u64::from_le_bytes(bytes)))
    }

    /// For a `Tag::IO` message, the completed operation and its result.
    pub fn io(&self) -> Option<IoCompletion> {
        if self.tag != Tag::IO {
            return None;
        }
        IoCompletion::decode(self.payload_bytes())
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id)
            .field("tag", &self.tag)
            .field("source", &self.source)
            .field("destination", &self.destination)
            .field("len", &self.len)
            .finish()
    }
}
