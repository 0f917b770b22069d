//! The 128-byte message envelope and message ids.
//!
//! A `Message` is what mailboxes hold, what cross-shard transports carry, and what a handler
//! receives (a copy, taken out of the pool before dispatch). Its fields are private: only the
//! core builds envelopes, so system tags and flags cannot be forged through the user API.

use core::fmt;

use crate::handle::{Handle, ShardId};
use crate::limits::{ENVELOPE_SIZE, PAYLOAD_SIZE_MAX};
use crate::payload::{self, DecodeError, Outgoing, Payload, Tag};

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
}

/// A message envelope: 96 bytes of inline payload and a 32-byte header.
///
/// Layout (fixed, asserted): payload (96), destination (8), source (8), id (8),
/// correlation (4), tag (2), flags (1), payload length (1).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
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

    /// A payload-less system message (resume, timeouts).
    pub(crate) fn system(id: MessageId, destination: Handle, tag: Tag) -> Message {
        debug_assert!(!tag.is_user());
        Message {
            payload: [0; PAYLOAD_SIZE_MAX],
            destination,
            source: Handle::NONE,
            id,
            correlation: 0,
            tag,
            flags: 0,
            len: 0,
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
