//! Static labels with stable fingerprints, and the FNV-1a hash that makes them.
//!
//! A `Label` is a `&'static str` paired with its 64-bit FNV-1a fingerprint, computed at
//! compile time when the label is a constant. Trace events carry labels (log tags, crash
//! reasons) as fixed-width values: the text is for people, the fingerprint is what a
//! canonical encoding or a hash consumes. This module never hashes with `std`'s hashers,
//! whose output may change between Rust releases.

use core::fmt;

/// FNV-1a offset basis (64-bit).
const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a prime (64-bit).
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a over `bytes`. Stable by definition: the same bytes give the same value on
/// every machine and every build.
pub const fn fnv1a_64(bytes: &[u8]) -> u64 {
    let mut hash = FNV_OFFSET_BASIS;
    let mut index = 0;
    while index < bytes.len() {
        hash ^= bytes[index] as u64;
        hash = hash.wrapping_mul(FNV_PRIME);
        index += 1;
    }
    hash
}

/// A static name with a stable fingerprint. Build it in a constant so the hash is computed
/// at compile time: `const STARTED: Label = Label::new("worker.started");`.
#[derive(Clone, Copy)]
pub struct Label {
    text: &'static str,
    fingerprint: u64,
}

impl Label {
    /// Creates a label; `const` so that it costs nothing at run time.
    pub const fn new(text: &'static str) -> Label {
        Label { text, fingerprint: fnv1a_64(text.as_bytes()) }
    }

    /// The text, for people.
    pub const fn text(self) -> &'static str {
        self.text
    }

    /// FNV-1a of the text: what canonical encodings and hashes consume.
    pub const fn fingerprint(self) -> u64 {
        self.fingerprint
    }
}

impl PartialEq for Label {
    fn eq(&self, other: &Label) -> bool {
        // Fingerprints are compared first because they are cheap; text decides ties.
        self.fingerprint == other.fingerprint && self.text == other.text
    }
}

impl Eq for Label {}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.text, f)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published FNV-1a 64 test vectors, so a change to the hash is caught.
    #[test]
    fn fnv1a_vectors() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
        const L: Label = Label::new("foobar");
        assert_eq!(L.fingerprint(), 0x8594_4171_f739_67e8);
        assert_eq!(L.text(), "foobar");
    }
}
