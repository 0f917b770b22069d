//! Generational isolate handles and shard ids.
//!
//! A `Handle` names one incarnation of an isolate: (shard, type, slot, generation) packed into
//! 64 bits. It is a plain value: holding one keeps nothing alive, and using a stale one is an
//! ordinary, counted result. `Handle::latest` turns a handle into the address of its slot,
//! which reaches whichever incarnation lives there. This module does not know whether a
//! handle is live; only the shard that owns the slot can tell.

use core::fmt;

use crate::limits::{
    GENERATION_LATEST, GENERATION_MAX, HANDLE_GENERATION_BITS, HANDLE_SLOT_BITS, HANDLE_TYPE_BITS,
    SLOT_COUNT_MAX,
};

/// The index of a shard within its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub u8);

impl ShardId {
    /// The origin of messages injected from outside every shard (tests, drivers). No shard
    /// has this id: shard ids stop at 254.
    pub const EXTERNAL: ShardId = ShardId(u8::MAX);

    /// The shard index as a `usize`, for indexing per-shard tables.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A generational reference to one isolate incarnation.
///
/// Layout, most significant first: shard (8 bits), type (8), slot (20), generation (28).
/// Generations start at 1, so no live handle equals [`Handle::NONE`]. The all-ones generation
/// ([`GENERATION_LATEST`](crate::limits::GENERATION_LATEST)) is no incarnation's: it marks a
/// latest handle (see [`Handle::latest`]).
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    zerocopy::IntoBytes,
    zerocopy::FromBytes,
    zerocopy::KnownLayout,
    zerocopy::Immutable,
)]
#[repr(transparent)]
pub struct Handle(u64);

const SLOT_SHIFT: u32 = HANDLE_GENERATION_BITS;
const TYPE_SHIFT: u32 = SLOT_SHIFT + HANDLE_SLOT_BITS;
const SHARD_SHIFT: u32 = TYPE_SHIFT + HANDLE_TYPE_BITS;

impl Handle {
    /// Names no isolate. Sending to it is a counted `StaleHandle`.
    pub const NONE: Handle = Handle(0);

    /// Packs a handle. Panics (a broken core invariant) if a field is out of range.
    #[inline]
    pub(crate) const fn new(shard: ShardId, type_index: u8, slot: u32, generation: u32) -> Handle {
        assert!(slot <= SLOT_COUNT_MAX);
        assert!(generation >= 1 && generation <= GENERATION_MAX);
        Handle(
            ((shard.0 as u64) << SHARD_SHIFT)
                | ((type_index as u64) << TYPE_SHIFT)
                | ((slot as u64) << SLOT_SHIFT)
                | generation as u64,
        )
    }

    /// Rebuilds a handle from its raw bits (for logs and wire formats). Any value is safe to
    /// use: a handle that names nothing live is simply stale.
    pub const fn from_raw(raw: u64) -> Handle {
        Handle(raw)
    }

    /// The raw 64 bits, stable across builds and machines.
    pub const fn to_raw(self) -> u64 {
        self.0
    }

    /// Whether this is [`Handle::NONE`].
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }

    /// The shard that owns the isolate.
    pub const fn shard(self) -> ShardId {
        ShardId((self.0 >> SHARD_SHIFT) as u8)
    }

    /// The dense index of the isolate's type in its `SystemSpec`.
    pub const fn type_index(self) -> u8 {
        (self.0 >> TYPE_SHIFT) as u8
    }

    /// The slot within the type's arena.
    pub const fn slot(self) -> u32 {
        ((self.0 >> SLOT_SHIFT) as u32) & SLOT_COUNT_MAX
    }

    /// The incarnation of the slot this handle names
    /// ([`GENERATION_LATEST`](crate::limits::GENERATION_LATEST) for a latest handle).
    pub const fn generation(self) -> u32 {
        (self.0 as u32) & GENERATION_LATEST
    }

    /// The same shard, type and slot with `generation` (a live slot's, so in range).
    #[inline]
    pub(crate) const fn with_generation(self, generation: u32) -> Handle {
        debug_assert!(generation >= 1 && generation <= GENERATION_MAX);
        Handle((self.0 & !(GENERATION_LATEST as u64)) | generation as u64)
    }

    /// The address of this handle's slot: the same shard, type and slot, reaching whichever
    /// incarnation lives in the slot when a message arrives, rather than this one only.
    /// [`Handle::NONE`] stays `NONE`.
    ///
    /// Why: a supervisor restarts a child into the slot it had (when that slot is free,
    /// which it normally just became), with a new generation, so a peer holding the old
    /// handle could never reach the new incarnation. Erlang solves this with registered
    /// names; a latest handle is the slot-sized version, with no table and no lookup: it is
    /// resolved like any handle, except that any live generation matches.
    ///
    /// What a latest handle reaches: the incarnation live in the slot when the message is
    /// enqueued (or accepted from another shard), whatever its generation; a message to an
    /// empty slot is a counted `StaleHandle`, as for any stale handle. Every event about the
    /// receiver (`Enqueue`, `Deliver`, and `Drop` when the slot is live) names that
    /// incarnation's concrete handle, and the handler sees its own concrete handle as the
    /// destination; only `Send.to` keeps what the sender wrote.
    ///
    /// The limit: if a slot is freed for good (a `Temporary` child that stopped, a dynamic
    /// child whose group let it go) and a later spawn takes it, the address reaches that new
    /// isolate, which has the same type but may play another role. Use latest handles for
    /// supervised children whose slot stays theirs (static children, restarted members).
    ///
    /// ```
    /// use tina::testing::{TestConfig, TestWorld};
    /// use tina::{Ctx, Effect, Isolate, Label, Message, ShardId, SystemSpec, TypeConfig};
    ///
    /// tina::payload! {
    ///     #[derive(Clone, Copy, Debug)]
    ///     #[repr(C)]
    ///     pub struct Ping { pub n: u64 }
    /// }
    ///
    /// /// Counts what it receives.
    /// struct Counter;
    /// impl Isolate for Counter {
    ///     type Args = ();
    ///     fn init(_: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
    ///         (Counter, Effect::Receive)
    ///     }
    ///     fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
    ///         Effect::Receive
    ///     }
    /// }
    ///
    /// let mut spec = SystemSpec::new(1);
    /// let counter = spec.register::<Counter>(TypeConfig::new("counter").slots(1));
    /// spec.register_payload::<Ping>();
    /// let first = spec.boot_child(ShardId(0), counter, ());
    /// let mut world = TestWorld::boot(&spec, TestConfig::default()).expect("a valid spec");
    ///
    /// // The child crashes and its supervisor restarts it, in the same slot.
    /// assert!(world.kill(first, Label::new("crashed for the example")));
    /// world.run_until_idle(10);
    /// assert!(!world.scheduler(ShardId(0)).is_live(first), "the old handle is stale");
    /// assert!(world.scheduler(ShardId(0)).is_live(first.latest()), "the slot lives on");
    ///
    /// // A message to the slot's address reaches the new incarnation.
    /// assert!(world.inject(first.latest(), &Ping { n: 1 }));
    /// world.run_until_idle(10);
    /// assert_eq!(world.counters(ShardId(0)).delivered, 1);
    /// ```
    pub const fn latest(self) -> Handle {
        if self.is_none() {
            return Handle::NONE;
        }
        Handle(self.0 | GENERATION_LATEST as u64)
    }

    /// Whether this is a latest handle (a slot address, see [`Handle::latest`]).
    pub const fn is_latest(self) -> bool {
        self.generation() == GENERATION_LATEST
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Handle {
    /// `s<shard>.t<type>.<slot>g<generation>`, `s<shard>.t<type>.<slot>g*` for a latest
    /// handle, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            return f.write_str("none");
        }
        if self.is_latest() {
            return write!(f, "s{}.t{}.{}g*", self.shard().0, self.type_index(), self.slot());
        }
        write!(
            f,
            "s{}.t{}.{}g{}",
            self.shard().0,
            self.type_index(),
            self.slot(),
            self.generation()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packing and unpacking are inverse at the extremes of every field.
    #[test]
    fn pack_round_trip() {
        for (shard, ty, slot, generation) in
            [(0, 0, 0, 1), (254, 254, SLOT_COUNT_MAX, GENERATION_MAX), (3, 7, 12345, 99)]
        {
            let h = Handle::new(ShardId(shard), ty, slot, generation);
            assert!(!h.is_none());
            assert_eq!(h.shard(), ShardId(shard));
            assert_eq!(h.type_index(), ty);
            assert_eq!(h.slot(), slot);
            assert_eq!(h.generation(), generation);
            assert_eq!(Handle::from_raw(h.to_raw()), h);
        }
        assert_eq!(Handle::new(ShardId(1), 2, 3, 4).to_string(), "s1.t2.3g4");
        assert_eq!(Handle::NONE.to_string(), "none");
    }

    /// A latest handle keeps shard, type and slot, carries the one generation no incarnation
    /// has, is idempotent, and `NONE` has no latest form.
    #[test]
    fn latest_is_the_slot_address() {
        for (shard, ty, slot, generation) in
            [(0, 0, 0, 1), (254, 254, SLOT_COUNT_MAX, GENERATION_MAX), (3, 7, 12345, 99)]
        {
            let h = Handle::new(ShardId(shard), ty, slot, generation);
            let latest = h.latest();
            assert!(latest.is_latest() && !h.is_latest());
            assert_eq!(latest.generation(), GENERATION_LATEST);
            assert!(latest.generation() > GENERATION_MAX);
            assert_eq!((latest.shard(), latest.type_index(), latest.slot()), (h.shard(), ty, slot));
            assert_eq!(latest.latest(), latest);
            assert_ne!(latest, h);
        }
        assert_eq!(Handle::NONE.latest(), Handle::NONE);
        assert!(!Handle::NONE.is_latest());
        assert_eq!(Handle::new(ShardId(1), 2, 3, 4).latest().to_string(), "s1.t2.3g*");
    }
}
