//! The seeds a sweep runs: a range (`--seeds A..B` or `A..=B`) and the part of it one
//! machine runs (`--partition I/N`). Parsing and index arithmetic only; nothing runs here.
//!
//! Ranges follow Rust's notation: `A..B` is half-open (A up to but not including B), `A..=B`
//! inclusive. Parts are strided: part I of N runs the seeds whose index in the range is
//! I-1 modulo N. Any N parts then differ by at most one seed without a rounding rule, and a
//! part that is slow, late or lost leaves a hole spread evenly over the range rather than
//! one missing block.

use core::fmt;

use crate::config::parse_seed;

/// A non-empty range of seeds: `first` and the `count - 1` seeds after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    /// The first seed.
    pub first: u64,
    /// How many seeds (at least 1; `first + count - 1` fits a u64).
    pub count: u64,
}

/// What is wrong with a `--seeds` value, with what to write instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangeError {
    /// Not `A..B` or `A..=B`.
    Syntax(String),
    /// An end that is not a seed.
    Seed {
        /// The range as given.
        text: String,
        /// The end as given.
        end: String,
    },
    /// `A..A`: no seed at all.
    Empty(String),
    /// The end before the start.
    Reversed {
        /// The range as given.
        text: String,
        /// The same range written forwards.
        forwards: String,
    },
    /// `0..=u64::MAX`: 2^64 seeds, one more than a u64 counts.
    TooMany(String),
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RangeError::Syntax(text) => write!(
                f,
                "invalid seed range {text:?}: write A..B (from A up to but not including B) or A..=B (A to B inclusive), for example --seeds 1..1001"
            ),
            RangeError::Seed { text, end } => write!(
                f,
                "invalid seed range {text:?}: {end:?} is not a seed; write each end as a u64 in decimal (42) or hexadecimal (0x2a)"
            ),
            RangeError::Empty(text) => write!(
                f,
                "seed range {text:?} is empty: A..B stops before B; write A..=A for seed A alone, or A..B with B above A"
            ),
            RangeError::Reversed { text, forwards } => {
                write!(
                    f,
                    "seed range {text:?} runs backwards; write the smaller seed first: {forwards}"
                )
            }
            RangeError::TooMany(text) => write!(
                f,
                "seed range {text:?} has 2^64 seeds, more than a sweep counts; write 0..18446744073709551615 or 1..=18446744073709551615"
            ),
        }
    }
}

impl std::error::Error for RangeError {}

impl SeedRange {
    /// Parses `A..B` (half-open) or `A..=B` (inclusive); each end decimal or `0x` hex.
    pub fn parse(text: &str) -> Result<SeedRange, RangeError> {
        let (start, end, inclusive) = match text.split_once("..") {
            Some((start, end)) => match end.strip_prefix('=') {
                Some(end) => (start, end, true),
                None => (start, end, false),
            },
            None => return Err(RangeError::Syntax(text.to_string())),
        };
        if start.is_empty() || end.is_empty() {
            return Err(RangeError::Syntax(text.to_string()));
        }
        let seed = |end: &str| {
            parse_seed(end)
                .map_err(|_| RangeError::Seed { text: text.to_string(), end: end.to_string() })
        };
        let (first, end_seed) = (seed(start)?, seed(end)?);
        if end_seed < first {
            let operator = if inclusive { "..=" } else { ".." };
            let forwards = format!("{end}{operator}{start}");
            return Err(RangeError::Reversed { text: text.to_string(), forwards });
        }
        let count = if inclusive {
            (end_seed - first)
                .checked_add(1)
                .ok_or_else(|| RangeError::TooMany(text.to_string()))?
        } else {
            end_seed - first
        };
        if count == 0 {
            return Err(RangeError::Empty(text.to_string()));
        }
        Ok(SeedRange { first, count })
    }

    /// The last seed.
    pub fn last(&self) -> u64 {
        debug_assert!(self.count >= 1);
        self.first + (self.count - 1)
    }
}

impl fmt::Display for SeedRange {
    /// Always inclusive (`1..=40`): one form for any range, including one that ends at
    /// u64::MAX.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..={}", self.first, self.last())
    }
}

/// Part `index` of `count` (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Which part, from 1 to `count`.
    pub index: u64,
    /// How many parts.
    pub count: u64,
}

/// What is wrong with a `--partition` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartitionError {
    /// Not `I/N` with two integers.
    Syntax(String),
    /// `I/0`.
    NoParts(String),
    /// `0/N`: parts count from 1.
    Zero {
        /// As given.
        text: String,
        /// How many parts.
        count: u64,
    },
    /// `I/N` with I above N.
    Beyond {
        /// As given.
        text: String,
        /// How many parts.
        count: u64,
    },
}

impl fmt::Display for PartitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionError::Syntax(text) => write!(
                f,
                "invalid partition {text:?}: write I/N, part I of N parts with 1 <= I <= N, for example --partition 2/4 (from a 0-based batch index: --partition $((INDEX+1))/N)"
            ),
            PartitionError::NoParts(text) => {
                write!(f, "invalid partition {text:?}: N counts the parts and must be at least 1")
            }
            PartitionError::Zero { text, count } => write!(
                f,
                "invalid partition {text:?}: parts count from 1; write 1/{count} to {count}/{count} (from a 0-based batch index: $((INDEX+1))/{count})"
            ),
            PartitionError::Beyond { text, count } => write!(
                f,
                "invalid partition {text:?}: there are only {count} parts; I must be from 1 to {count}"
            ),
        }
    }
}

impl std::error::Error for PartitionError {}

impl Partition {
    /// The whole range as one part.
    pub const WHOLE: Partition = Partition { index: 1, count: 1 };

    /// Parses `I/N` with 1 <= I <= N.
    pub fn parse(text: &str) -> Result<Partition, PartitionError> {
        let syntax = || PartitionError::Syntax(text.to_string());
        let (index, count) = text.split_once('/').ok_or_else(syntax)?;
        let number = |part: &str| {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(syntax());
            }
            part.parse::<u64>().map_err(|_| syntax())
        };
        let (index, count) = (number(index)?, number(count)?);
        if count == 0 {
            return Err(PartitionError::NoParts(text.to_string()));
        }
        if index == 0 {
            return Err(PartitionError::Zero { text: text.to_string(), count });
        }
        if index > count {
            return Err(PartitionError::Beyond { text: text.to_string(), count });
        }
        Ok(Partition { index, count })
    }

    /// How many seeds of `range` this part runs: the indices `index - 1`, `index - 1 +
    /// count`, ... below `range.count`.
    pub fn seed_count(&self, range: SeedRange) -> u64 {
        let offset = self.index - 1;
        if range.count <= offset { 0 } else { (range.count - offset - 1) / self.count + 1 }
    }

    /// The `at`-th seed of this part (`at < seed_count`).
    pub fn seed(&self, range: SeedRange, at: u64) -> u64 {
        assert!(at < self.seed_count(range), "seed {at} of a part of {}", self.seed_count(range));
        // Below range.count, so the sum stays within the range.
        range.first + (self.index - 1) + at * self.count
    }

    /// Whether `seed` is one of this part's seeds of `range`.
    pub fn owns(&self, range: SeedRange, seed: u64) -> bool {
        seed >= range.first
            && seed <= range.last()
            && (seed - range.first) % self.count == self.index - 1
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both notations, hex ends, and every malformed range with its advice.
    #[test]
    fn ranges() {
        assert_eq!(SeedRange::parse("1..10001"), Ok(SeedRange { first: 1, count: 10_000 }));
        assert_eq!(SeedRange::parse("1..=10000"), Ok(SeedRange { first: 1, count: 10_000 }));
        assert_eq!(SeedRange::parse("0x10..=0x10"), Ok(SeedRange { first: 16, count: 1 }));
        let top = SeedRange::parse("1..=18446744073709551615").expect("the largest range");
        assert_eq!((top.count, top.last()), (u64::MAX, u64::MAX));
        assert_eq!(top.to_string(), "1..=18446744073709551615");
        let cases = [
            ("7", "write A..B"),
            ("1...5", "\".5\" is not a seed"),
            ("..5", "write A..B"),
            ("1..", "write A..B"),
            ("1..x", "\"x\" is not a seed"),
            ("1..18446744073709551616", "is not a seed"),
            ("5..5", "is empty"),
            ("9..3", "write the smaller seed first: 3..9"),
            ("9..=3", "write the smaller seed first: 3..=9"),
            ("0..=18446744073709551615", "2^64 seeds"),
        ];
        for (text, advice) in cases {
            let error = SeedRange::parse(text).expect_err(text).to_string();
            assert!(error.contains(advice), "{text}: {error}");
        }
    }

    /// Parts are strided, cover the range exactly once between them, and differ in size
    /// by at most one; bad partitions say what to write.
    #[test]
    fn partitions() {
        let range = SeedRange { first: 10, count: 11 };
        let mut seen = Vec::new();
        for index in 1..=4 {
            let part = Partition { index, count: 4 };
            let seeds: Vec<u64> =
                (0..part.seed_count(range)).map(|at| part.seed(range, at)).collect();
            assert!(seeds.iter().all(|&seed| part.owns(range, seed)));
            assert!((2..=3).contains(&seeds.len()), "{seeds:?}");
            seen.extend(seeds);
        }
        seen.sort_unstable();
        assert_eq!(seen, (10..21).collect::<Vec<u64>>());
        assert_eq!(
            Partition { index: 5, count: 5 }.seed_count(SeedRange { first: 0, count: 3 }),
            0
        );
        assert_eq!(Partition::parse("3/4"), Ok(Partition { index: 3, count: 4 }));
        let cases = [
            ("3/2", "only 2 parts"),
            ("0/4", "parts count from 1; write 1/4 to 4/4"),
            ("a/b", "write I/N"),
            ("1/0", "at least 1"),
            ("2", "write I/N"),
            ("-1/4", "write I/N"),
        ];
        for (text, advice) in cases {
            let error = Partition::parse(text).expect_err(text).to_string();
            assert!(error.contains(advice), "{text}: {error}");
        }
    }
}
