//! Payload types: plain bytes both ways, with stable tags.
//!
//! A payload is a `Copy` struct or enum that `zerocopy` proves can be turned into bytes and
//! validated back from them. Declare one with [`payload!`](crate::payload), which adds the
//! `zerocopy` derives, implements [`Payload`] with a tag fingerprinted from the type's path,
//! and emits an item-level `const` assertion (size at most 96 bytes, alignment at most 16,
//! tag in the user range) that fails at `cargo check`, not at monomorphisation.
//!
//! This module does not route or store messages; see `message` for the envelope.

use core::fmt;

use zerocopy::{Immutable, IntoBytes, KnownLayout, TryFromBytes};

use crate::label::fnv1a_64;
use crate::limits::{PAYLOAD_ALIGN_MAX, PAYLOAD_SIZE_MAX, USER_TAG_MIN};

/// A message tag. Values below [`USER_TAG_MIN`] are system tags (resume, timers, call
/// failures, I/O completions, drop notices, shutdown) and cannot be produced through the
/// user API.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Tag(u16);

impl Tag {
    /// No tag: a dispatch without a message never carries it; reserved.
    pub const NONE: Tag = Tag(0x0000);
    /// Delivered to an isolate that returned `Effect::Yield` and has no queued message.
    pub const RESUME: Tag = Tag(0x0001);
    /// A timer set with `ctx.timer_set` fired.
    pub const TIMER: Tag = Tag(0x0002);
    /// A call made with `Effect::Call` timed out or could not be routed.
    pub const CALL_TIMEOUT: Tag = Tag(0x0003);
    /// An I/O operation submitted with `Effect::Io` completed.
    pub const IO: Tag = Tag(0x0004);
    /// A message sent with `ctx.send_notify` was dropped (`Message::drop_notice`).
    pub const DROP_NOTICE: Tag = Tag(0x0005);
    /// The shard is shutting down (`Scheduler::begin_shutdown`): finish what is under way
    /// and end before the deadline the message carries (`Message::shutdown_deadline`).
    /// Delivered once to every isolate alive when the shutdown began.
    pub const SHUTDOWN: Tag = Tag(0x0006);

    /// The stable tag of a payload type whose path is `path`: FNV-1a folded into the user
    /// range. Two types that fold to the same tag are rejected by `SystemSpec::validate`.
    pub const fn fingerprint(path: &str) -> Tag {
        let span = (u16::MAX - USER_TAG_MIN) as u64 + 1;
        let folded = fnv1a_64(path.as_bytes()) % span;
        // `folded < span <= 0xFF00`, so the sum stays within u16.
        Tag(USER_TAG_MIN + folded as u16)
    }

    /// Rebuilds a tag from its raw value (for decoding logs). Sending still requires a
    /// `Payload`, so this cannot forge a system tag onto the wire.
    pub const fn from_raw(raw: u16) -> Tag {
        Tag(raw)
    }

    /// The raw 16-bit value.
    pub const fn to_raw(self) -> u16 {
        self.0
    }

    /// Whether the tag is in the range user payloads may use.
    pub const fn is_user(self) -> bool {
        self.0 >= USER_TAG_MIN
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06x}", self.0)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Tag::NONE => f.write_str("none"),
            Tag::RESUME => f.write_str("resume"),
            Tag::TIMER => f.write_str("timer"),
            Tag::CALL_TIMEOUT => f.write_str("call-timeout"),
            Tag::IO => f.write_str("io"),
            Tag::DROP_NOTICE => f.write_str("drop-notice"),
            Tag::SHUTDOWN => f.write_str("shutdown"),
            Tag(raw) => write!(f, "{raw:#06x}"),
        }
    }
}

/// A message payload: plain bytes both ways, at most 96 bytes, with a stable tag.
///
/// Implement it with [`payload!`](crate::payload), never by hand: the macro emits the
/// compile-time assertions. A hand-written implementation with an oversized type or a
/// system tag still fails to compile when it is first sent.
pub trait Payload:
    IntoBytes + TryFromBytes + KnownLayout + Immutable + Copy + Send + 'static
{
    /// Fingerprint of the type's path; identical on every build and machine.
    const TAG: Tag;
    /// The type's path, for logs and spec errors.
    const NAME: &'static str;
}

/// Why a message could not be decoded as a payload type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The message carries another tag.
    WrongTag {
        /// The tag of the type asked for.
        expected: Tag,
        /// The tag the message carries.
        found: Tag,
    },
    /// The tag matched but the length did not (a tag collision across builds).
    WrongLength {
        /// `size_of` the type asked for.
        expected: usize,
        /// Bytes the message carries.
        found: usize,
    },
    /// The bytes are not a valid value of the type (for example a `bool` holding 2).
    InvalidBytes,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::WrongTag { expected, found } => {
                write!(f, "message has tag {found}, expected {expected}")
            }
            DecodeError::WrongLength { expected, found } => {
                write!(f, "message has {found} payload bytes, expected {expected}")
            }
            DecodeError::InvalidBytes => f.write_str("payload bytes are not a valid value"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// An encoded payload, ready to be sent or returned in an `Effect`. Only a [`Payload`] can
/// make one, so its tag is always in the user range.
#[derive(Clone, Copy)]
pub struct Outgoing {
    pub(crate) tag: Tag,
    pub(crate) len: u8,
    pub(crate) bytes: [u8; PAYLOAD_SIZE_MAX],
}

impl Outgoing {
    /// Encodes `payload`.
    pub fn new<P: Payload>(payload: &P) -> Outgoing {
        let tag = checked_tag::<P>();
        let source = payload.as_bytes();
        let mut bytes = [0u8; PAYLOAD_SIZE_MAX];
        bytes[..source.len()].copy_from_slice(source);
        // `checked_tag` bounds the length by 96, which fits in u8.
        Outgoing { tag, len: source.len() as u8, bytes }
    }

    /// The payload's tag.
    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing").field("tag", &self.tag).field("len", &self.len).finish()
    }
}

/// `P::TAG`, once `P` passed the compile-time checks every payload type must pass to be
/// sent: at most 96 bytes, alignment at most 16, a tag in the user range.
#[inline]
pub(crate) const fn checked_tag<P: Payload>() -> Tag {
    const {
        assert!(size_of::<P>() <= PAYLOAD_SIZE_MAX, "payload is larger than 96 bytes");
        assert!(align_of::<P>() <= PAYLOAD_ALIGN_MAX, "payload alignment is above 16");
        assert!(P::TAG.is_user(), "payload tag is in the system range");
    }
    P::TAG
}

/// Decodes `bytes` tagged `tag` as `P`, validating tag, length and value.
pub(crate) fn decode<P: Payload>(tag: Tag, bytes: &[u8]) -> Result<P, DecodeError> {
    if tag != P::TAG {
        return Err(DecodeError::WrongTag { expected: P::TAG, found: tag });
    }
    if bytes.len() != size_of::<P>() {
        return Err(DecodeError::WrongLength { expected: size_of::<P>(), found: bytes.len() });
    }
    P::try_read_from_bytes(bytes).map_err(|_| DecodeError::InvalidBytes)
}

/// Declares a payload type: adds the `zerocopy` derives, implements [`Payload`] with a
/// stable tag fingerprinted from the type's path, and asserts at compile time that the type
/// fits the envelope and has a defined layout.
///
/// The type must be `Copy`, free of padding bytes and of values that are not plain bytes
/// (`zerocopy` refuses it otherwise), and have a layout fixed by its definition:
/// `#[repr(C)]` (with `packed` or `align` if you like), `#[repr(transparent)]`, or, for a
/// fieldless enum, a primitive representation such as `#[repr(u8)]`. The last rule is the
/// macro's own: `zerocopy` accepts a padding-free struct without a `repr`, but the compiler
/// may then order its fields differently in another build, and a payload's bytes must mean
/// the same thing to every build that decodes them (another node, a stored log), just as its
/// tag does.
///
/// ```
/// tina::payload! {
///     #[derive(Clone, Copy, Debug, PartialEq)]
///     #[repr(C)]
///     pub struct Ping { pub round: u64, pub data: [u8; 56] }
/// }
/// let message = tina::Outgoing::new(&Ping { round: 1, data: [0; 56] });
/// assert_eq!(message.bytes().len(), 64);
/// ```
///
/// A payload larger than 96 bytes does not compile:
///
/// ```compile_fail
/// tina::payload! {
///     #[derive(Clone, Copy)]
///     #[repr(C)]
///     pub struct TooBig { pub data: [u8; 97] }
/// }
/// ```
///
/// Nor does a struct whose layout the compiler may choose (this one compiles with
/// `#[repr(C)]`):
///
/// ```compile_fail
/// tina::payload! {
///     #[derive(Clone, Copy)]
///     pub struct Unordered { pub round: u64, pub left: u32, pub right: u32 }
/// }
/// ```
///
/// A `packed` or `align` modifier alone does not fix the field order either:
///
/// ```compile_fail
/// tina::payload! {
///     #[derive(Clone, Copy)]
///     #[repr(packed)]
///     pub struct Unordered { pub round: u64, pub left: u32, pub right: u32 }
/// }
/// ```
#[macro_export]
macro_rules! payload {
    ($(#[$($attr:tt)*])* $vis:vis $kind:ident $name:ident $($body:tt)*) => {
        $crate::__defined_layout!($name; $(#[$($attr)*])*);
        $crate::__plain_bytes! { $(#[$($attr)*])* $vis $kind $name $($body)* }
        $crate::__payload_impl!($name);
    };
}

/// Declares a spawn-argument type: adds the `zerocopy` derives a slot needs to keep the
/// arguments for restarts, and asserts at compile time that the type is at most 64 bytes.
///
/// The type must be `Copy` and free of padding bytes and of values that are not plain bytes
/// (`zerocopy` refuses it otherwise); an enum needs a `repr` (`zerocopy` again). Unlike a
/// payload, a struct needs no `#[repr(C)]`: its bytes never leave the shard that spawned it
/// (the slot keeps them to restart the isolate), so only the build that wrote them reads
/// them. Writing `#[repr(C)]` anyway costs nothing and keeps the type usable as a payload.
///
/// ```
/// tina::spawn_args! {
///     #[derive(Clone, Copy, Debug)]
///     #[repr(C)]
///     pub struct WorkerArgs { pub peer: tina::Handle, pub crash_every: u64 }
/// }
/// ```
///
/// A type with padding does not compile (here, four bytes after `crash_every`):
///
/// ```compile_fail
/// tina::spawn_args! {
///     #[derive(Clone, Copy, Debug)]
///     #[repr(C)]
///     pub struct Padded { pub peer: tina::Handle, pub crash_every: u32 }
/// }
/// ```
#[macro_export]
macro_rules! spawn_args {
    ($(#[$($attr:tt)*])* $vis:vis $kind:ident $name:ident $($body:tt)*) => {
        $crate::__plain_bytes! { $(#[$($attr)*])* $vis $kind $name $($body)* }
        const _: () = assert!(
            ::core::mem::size_of::<$name>() <= $crate::limits::ARGS_SIZE_MAX,
            concat!("spawn arguments `", stringify!($name), "` are larger than 64 bytes")
        );
    };
}

/// Implementation detail of [`payload!`] and [`spawn_args!`]: the `zerocopy` derives.
#[doc(hidden)]
#[macro_export]
macro_rules! __plain_bytes {
    ($(#[$($attr:tt)*])* $vis:vis $kind:ident $name:ident $($body:tt)*) => {
        $(#[$($attr)*])*
        #[derive(
            $crate::zerocopy::IntoBytes,
            $crate::zerocopy::TryFromBytes,
            $crate::zerocopy::KnownLayout,
            $crate::zerocopy::Immutable
        )]
        #[zerocopy(crate = "::tina::zerocopy")]
        $vis $kind $name $($body)*
    };
}

/// Implementation detail of [`payload!`]: nothing if one of the attributes is a `repr` that
/// fixes the layout (`C`, `transparent`, a primitive), else a compile error naming the type.
/// It walks the attributes one by one, and the items of each `repr` list one by one, so it
/// is bounded by the tokens it is given.
#[doc(hidden)]
#[macro_export]
macro_rules! __defined_layout {
    ($name:ident;) => {
        ::core::compile_error!(::core::concat!(
            "payload `",
            ::core::stringify!($name),
            "` needs a defined layout: add #[repr(C)] (or #[repr(transparent)], or a ",
            "primitive #[repr(u8)] for an enum); without it the compiler may order its fields ",
            "differently in another build, and its bytes would change meaning"
        ));
    };
    ($name:ident; #[repr($($items:tt)*)] $($rest:tt)*) => {
        $crate::__defined_layout!(@repr $name; [$($items)*] $($rest)*);
    };
    ($name:ident; #[$($other:tt)*] $($rest:tt)*) => {
        $crate::__defined_layout!($name; $($rest)*);
    };
    // One `repr` list: an item that fixes the layout ends the search; a modifier is skipped;
    // at the end of the list the search goes on with the remaining attributes.
    (@repr $name:ident; [] $($rest:tt)*) => {
        $crate::__defined_layout!($name; $($rest)*);
    };
    (@repr $name:ident; [C $(, $($more:tt)*)?] $($rest:tt)*) => {};
    (@repr $name:ident; [transparent $(, $($more:tt)*)?] $($rest:tt)*) => {};
    (@repr $name:ident; [u8 $(, $($more:tt)*)?] $($rest:tt)*) => {};
    (@repr $name:ident; [u16 $(, $($more:tt)*)?] $($rest:tt)*) => {};
    (@repr $name:ident; [u32 $(, $($more:tt)*)?] $($rest:tt)*) => {};
    (@repr $name:ident; [u64 $(, $($more:tt)*)?] $($rest:tt)*) => {};
    (@repr $name:ident; [i8 $(, $($more:tt)*)?] $($rest:tt)*) => {};
    (@repr $name:ident; [i16 $(, $($more:tt)*)?] $($rest:tt)*) => {};
    (@repr $name:ident; [i32 $(, $($more:tt)*)?] $($rest:tt)*) => {};
    (@repr $name:ident; [i64 $(, $($more:tt)*)?] $($rest:tt)*) => {};
    (@repr $name:ident; [$modifier:ident $(($($argument:tt)*))? $(, $($more:tt)*)?] $($rest:tt)*) => {
        $crate::__defined_layout!(@repr $name; [$($($more)*)?] $($rest)*);
    };
}

/// Implementation detail of [`payload!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __payload_impl {
    ($name:ident) => {
        impl $crate::Payload for $name {
            const TAG: $crate::Tag =
                $crate::Tag::fingerprint(concat!(module_path!(), "::", stringify!($name)));
            const NAME: &'static str = concat!(module_path!(), "::", stringify!($name));
        }
        const _: () = {
            assert!(
                ::core::mem::size_of::<$name>() <= $crate::limits::PAYLOAD_SIZE_MAX,
                concat!(
                    "payload `",
                    stringify!($name),
                    "` is larger than 96 bytes; split it or use a transfer buffer"
                )
            );
            assert!(
                ::core::mem::align_of::<$name>() <= $crate::limits::PAYLOAD_ALIGN_MAX,
                concat!("payload `", stringify!($name), "` asks for alignment above 16")
            );
            assert!(
                <$name as $crate::Payload>::TAG.is_user(),
                concat!("payload `", stringify!($name), "` has a system tag")
            );
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::payload! {
        #[derive(Clone, Copy, Debug, PartialEq)]
        #[repr(C)]
        struct Sample { value: u64, flag: bool, pad: [u8; 7] }
    }

    crate::payload! {
        #[derive(Clone, Copy, Debug, PartialEq)]
        #[repr(u8)]
        enum Mode { Fast = 1, Slow = 2 }
    }

    // Both variants exist so that byte 3 is the invalid value in the test below.
    const _: Mode = Mode::Fast;

    /// Encoding then decoding gives the value back, and every mismatch is an error value.
    #[test]
    fn round_trip_and_validation() {
        let sample = Sample { value: 7, flag: true, pad: [0; 7] };
        let out = Outgoing::new(&sample);
        assert_eq!(out.tag(), Sample::TAG);
        assert_eq!(decode::<Sample>(out.tag, out.bytes()), Ok(sample));

        let wrong = decode::<Mode>(out.tag, out.bytes());
        assert_eq!(wrong, Err(DecodeError::WrongTag { expected: Mode::TAG, found: Sample::TAG }));

        let mut corrupt = out;
        corrupt.bytes[8] = 2; // not a valid bool
        assert_eq!(decode::<Sample>(corrupt.tag, corrupt.bytes()), Err(DecodeError::InvalidBytes));

        let mode = Outgoing::new(&Mode::Slow);
        assert_eq!(decode::<Mode>(mode.tag, mode.bytes()), Ok(Mode::Slow));
        let mut bad_mode = mode;
        bad_mode.bytes[0] = 3;
        assert_eq!(decode::<Mode>(bad_mode.tag, bad_mode.bytes()), Err(DecodeError::InvalidBytes));
        assert_eq!(
            decode::<Mode>(Mode::TAG, &[1, 0]),
            Err(DecodeError::WrongLength { expected: 1, found: 2 })
        );
    }

    /// Tags come from the type path, are in the user range, and are stable across builds
    /// (this value is pinned: changing the fingerprint breaks stored replay logs).
    #[test]
    fn tags_are_stable_fingerprints() {
        assert!(Sample::TAG.is_user());
        assert_eq!(Sample::NAME, "tina::payload::tests::Sample");
        assert_eq!(Sample::TAG, Tag::fingerprint("tina::payload::tests::Sample"));
        assert_eq!(Tag::fingerprint("tina::payload::tests::Sample").to_raw(), 0x42da);
        assert!(!Tag::RESUME.is_user());
    }
}
