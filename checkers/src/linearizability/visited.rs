//! The search's memory: the sets of operations linearized so far ([`Bits`]) and every
//! configuration (those sets and the model's state) the search has already entered
//! ([`Visited`]), an open-addressing hash table over `Vec`s.
//!
//! A configuration is dominated by one entered before with the same completed operations
//! linearized, the same state, and a subset of the loose ones (without a response)
//! linearized: from there every move of the new one was possible too, plus more, and it
//! failed (or the search would have ended). Placing a loose write and then overwriting it
//! reaches such a configuration; without this rule each loose operation would double the
//! configurations of the rest of the search.
//!
//! Hashes only place entries in the table; a lookup compares the bits and the state
//! themselves, so results never depend on them. Nothing here is ever removed: a
//! configuration once entered stays known for the rest of the search.

use core::hash::{Hash, Hasher};

/// A bit per operation that the search may linearize at most once, set while it is
/// linearized, with what a lookup needs kept up to date as bits change: a hash, and the
/// span worth storing.
///
/// The search numbers operations by invocation and linearizes them roughly in that order,
/// so the set is mostly a run of full words followed by a short frontier; only the
/// frontier is stored per configuration.
#[derive(Clone, Debug)]
pub(super) struct Bits {
    words: Vec<u64>,
    /// How many leading words are all ones.
    full: usize,
    /// One past the last word that is not all zeros (at least `full`).
    end: usize,
    /// The XOR of `bit_hash` over the bits set.
    hash: u64,
}

impl Bits {
    pub(super) fn new(bit_count: usize) -> Bits {
        Bits { words: vec![0; bit_count.div_ceil(64)], full: 0, end: 0, hash: 0 }
    }

    pub(super) fn set(&mut self, bit: u32) {
        let (word, mask) = Bits::place(bit);
        assert_eq!(self.words[word] & mask, 0, "bit {bit} set twice");
        self.words[word] |= mask;
        self.hash ^= bit_hash(bit);
        self.end = self.end.max(word + 1);
        if word == self.full {
            while self.full < self.words.len() && self.words[self.full] == u64::MAX {
                self.full += 1;
            }
        }
        debug_assert!(self.full <= self.end);
    }

    pub(super) fn clear(&mut self, bit: u32) {
        let (word, mask) = Bits::place(bit);
        assert_ne!(self.words[word] & mask, 0, "bit {bit} cleared while clear");
        self.words[word] &= !mask;
        self.hash ^= bit_hash(bit);
        self.full = self.full.min(word);
        if word + 1 == self.end {
            while self.end > 0 && self.words[self.end - 1] == 0 {
                self.end -= 1;
            }
        }
        debug_assert!(self.full <= self.end);
    }

    /// Every word.
    pub(super) fn words(&self) -> &[u64] {
        &self.words
    }

    /// The words after the leading full ones, up to the last that is not zero.
    fn frontier(&self) -> &[u64] {
        &self.words[self.full..self.end]
    }

    fn place(bit: u32) -> (usize, u64) {
        (bit as usize / 64, 1 << (bit % 64))
    }
}

/// An empty slot of the table.
const EMPTY: u32 = u32::MAX;

/// Slots of a new table; a power of two, as every size is.
const SLOT_COUNT_MIN: usize = 64;
const _: () = assert!(SLOT_COUNT_MIN.is_power_of_two());

/// Configurations the table can hold: entry indices are `u32`, one value kept for `EMPTY`,
/// and the slots (twice the entries at most) must be indexable too.
pub(super) const VISITED_COUNT_MAX: u64 = (u32::MAX / 4) as u64;

/// One remembered configuration.
#[derive(Clone, Debug)]
struct Stored<S> {
    hash: u64,
    /// `Bits::full` of its set.
    full: u32,
    /// Where its completed frontier starts in `Visited::words`, and how long it is; its
    /// loose words follow.
    start: usize,
    len: u32,
    state: S,
}

/// Configurations entered so far.
#[derive(Clone, Debug)]
pub(super) struct Visited<S> {
    /// Indices into `stored`, or `EMPTY`; at most half are taken.
    slots: Vec<u32>,
    stored: Vec<Stored<S>>,
    /// Every stored completed frontier and loose words, end to end.
    words: Vec<u64>,
    /// Loose words per configuration.
    loose_word_count: usize,
}

impl<S: Clone + Eq + Hash> Visited<S> {
    pub(super) fn new(loose_word_count: usize) -> Visited<S> {
        Visited {
            slots: vec![EMPTY; SLOT_COUNT_MIN],
            stored: Vec::new(),
            words: Vec::new(),
            loose_word_count,
        }
    }

    /// Remembers the configuration (`bits`, `loose`, `state`); false if it is dominated by
    /// one already known (see the module header). Only `bits` and `state` are hashed, so
    /// that the configurations that may dominate share a probe sequence.
    pub(super) fn insert(&mut self, bits: &Bits, loose: &Bits, state: &S) -> bool {
        let loose = loose.words();
        assert_eq!(loose.len(), self.loose_word_count);
        let hash = mix(bits.hash ^ state_hash(state));
        if (self.stored.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let frontier = bits.frontier();
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        // At most half the slots are taken, so the probe meets an empty one in time.
        for _ in 0..self.slots.len() {
            let index = self.slots[slot];
            if index == EMPTY {
                assert!((self.stored.len() as u64) < VISITED_COUNT_MAX);
                self.slots[slot] = self.stored.len() as u32;
                self.stored.push(Stored {
                    hash,
                    full: bits.full as u32,
                    start: self.words.len(),
                    len: frontier.len() as u32,
                    state: state.clone(),
                });
                self.words.extend_from_slice(frontier);
                self.words.extend_from_slice(loose);
                return true;
            }
            let stored = &self.stored[index as usize];
            let (start, end) = (stored.start, stored.start + stored.len as usize);
            if stored.hash == hash
                && stored.full as usize == bits.full
                && &self.words[start..end] == frontier
                && stored.state == *state
                && subset(&self.words[end..end + loose.len()], loose)
            {
                return false;
            }
            slot = (slot + 1) & mask;
        }
        unreachable!("a table at most half full has an empty slot");
    }

    /// Doubles the slots and places every entry again by its stored hash.
    fn grow(&mut self) {
        let slot_count = self.slots.len() * 2;
        let mask = slot_count - 1;
        self.slots.clear();
        self.slots.resize(slot_count, EMPTY);
        for (index, stored) in self.stored.iter().enumerate() {
            let mut slot = stored.hash as usize & mask;
            while self.slots[slot] != EMPTY {
                slot = (slot + 1) & mask;
            }
            self.slots[slot] = index as u32;
        }
    }
}

/// Whether every bit of `small` is in `large`.
fn subset(small: &[u64], large: &[u64]) -> bool {
    small.iter().zip(large).all(|(small, large)| small & !large == 0)
}

/// A fixed pseudo-random word per bit (Zobrist hashing): a set's hash is their XOR, so
/// setting or clearing one bit updates it in O(1).
fn bit_hash(bit: u32) -> u64 {
    mix(u64::from(bit).wrapping_add(0x9e37_79b9_7f4a_7c15))
}

/// SplitMix64's finaliser: spreads every input bit over the whole word.
fn mix(mut word: u64) -> u64 {
    word = (word ^ (word >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    word = (word ^ (word >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    word ^ (word >> 31)
}

fn state_hash<S: Hash>(state: &S) -> u64 {
    let mut hasher = Fold(0);
    state.hash(&mut hasher);
    hasher.finish()
}

/// A small deterministic hasher: folds each word in with a rotate, an XOR and a multiply.
/// Weak on its own; `mix` finishes it.
struct Fold(u64);

impl Fold {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(0x2127_599b_f432_5c37);
    }
}

impl Hasher for Fold {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        mix(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frontier bookkeeping matches a recomputation from the words, and a set is
    /// recognised again after its bits went away and came back.
    #[test]
    fn bits_track_full_words_and_frontier() {
        let mut bits = Bits::new(200);
        let none = Bits::new(0);
        let mut visited = Visited::new(0);
        assert!(visited.insert(&bits, &none, &0u8));
        for bit in 0..130 {
            bits.set(bit);
        }
        assert_eq!((bits.full, bits.end), (2, 3));
        assert!(visited.insert(&bits, &none, &0u8));
        bits.set(195);
        bits.clear(5);
        assert_eq!((bits.full, bits.end), (0, 4));
        assert!(visited.insert(&bits, &none, &0u8));
        bits.clear(195);
        bits.set(5);
        assert!(!visited.insert(&bits, &none, &0u8), "the same set and state again");
        assert!(visited.insert(&bits, &none, &1u8), "the same set with another state");
        for bit in 0..130 {
            bits.clear(bit);
        }
        assert_eq!((bits.full, bits.end, bits.hash), (0, 0, 0));
        assert!(!visited.insert(&bits, &none, &0u8));
    }

    /// A configuration with more loose operations linearized than a known one is
    /// dominated; one with fewer, or different ones, is not.
    #[test]
    fn more_loose_operations_are_dominated() {
        let bits = Bits::new(10);
        let mut loose = Bits::new(70);
        let mut visited = Visited::new(2);
        loose.set(3);
        assert!(visited.insert(&bits, &loose, &0u8));
        loose.set(66);
        assert!(!visited.insert(&bits, &loose, &0u8), "a superset of {{3}}");
        assert!(visited.insert(&bits, &loose, &1u8), "another state");
        loose.clear(3);
        assert!(visited.insert(&bits, &loose, &0u8), "{{66}} is no superset of {{3}}");
        loose.clear(66);
        assert!(visited.insert(&bits, &loose, &0u8), "the empty set is no superset");
        loose.set(3);
        assert!(!visited.insert(&bits, &loose, &0u8));
    }
}
