//! The simulator's PRNG tree: one root seed, one independent stream per decision site.
//!
//! Every random decision in a simulated world (a network delay, a drop, the order in which
//! runnable shards go) draws from a [`Stream`] owned by its *site*. A stream's state is a pure
//! function of four coordinates: the root [`Seed`], the node, the shard and the site's name.
//! Adding a node, a shard or a new site therefore never changes the draws of an existing
//! stream.
//!
//! # Derivation (stable; changing it changes every seed's run)
//!
//! `splitmix64(x)` is one step of the standard SplitMix64 generator seeded with `x`: let
//! `z = x + 0x9E37_79B9_7F4A_7C15` (wrapping), then `z = (z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9`,
//! `z = (z ^ (z >> 27)) * 0x94D0_49BB_1331_11EB`, and return `z ^ (z >> 31)` (wrapping
//! multiplies). With `fnv1a_64` the 64-bit FNV-1a hash (offset basis `0xcbf2_9ce4_8422_2325`,
//! prime `0x100_0000_01b3`) of the site name's UTF-8 bytes, a stream's 64-bit state is
//!
//! ```text
//! s = splitmix64(root ^ 0x7469_6e61_7072_6e67)   // the constant is ASCII "tinaprng"
//! s = splitmix64(s ^ node_word)
//! s = splitmix64(s ^ shard_word)
//! state = splitmix64(s ^ fnv1a_64(site))
//! ```
//!
//! where a [`Scope`] gives the words: `Shard { node, shard }` gives `(node, shard)` zero-extended
//! from `u16`; `Node { node }` gives `(node, SENTINEL)`; `World` gives `(SENTINEL, SENTINEL)`,
//! with [`SENTINEL`] `= u64::MAX`, a value no `u16` coordinate can take, so node-level and
//! world-level sites never collide with a real shard's.
//!
//! The generator is `rand_pcg::Pcg64Mcg` (128-bit MCG, XSL-RR output), built with
//! `Pcg64Mcg::new(seed)` where `seed = (splitmix64(state) << 64) | splitmix64(state + GAMMA)`,
//! i.e. the first two outputs of SplitMix64 seeded with `state`, high half first.
//! `Pcg64Mcg::new` forces the low bit of its state to 1 (an MCG needs an odd state); the high
//! half alone is a bijection of `state`, so distinct states still give distinct generators.
//! Only `next_u64` is used from the generator.
//!
//! # What this is not
//!
//! Not a general-purpose or cryptographic RNG, and not `rand`'s helpers: `rand`'s seeding and
//! range functions do not promise value stability across versions, so bounded draws
//! ([`Stream::below`], Lemire's method with rejection), [`Ratio`] and shuffling are written
//! here. No floats, no hashing through `std`, no ambient entropy. `rand_pcg` is pinned with
//! `=` and the tests below hold committed vectors: a change in the derivation or in the
//! generator's output fails them.

use core::fmt;
use core::str::FromStr;

use rand_core::Rng as _;
use rand_pcg::Pcg64Mcg;
use tina::fnv1a_64;

/// SplitMix64's increment (the golden-ratio gamma).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Domain constant mixed into the root seed first: the ASCII bytes of `"tinaprng"`.
const DOMAIN: u64 = 0x7469_6e61_7072_6e67;

/// The node or shard word used for a coordinate a scope does not have (see [`Scope`]).
/// No `u16` coordinate reaches it, so world- and node-level sites never collide with shards.
pub const SENTINEL: u64 = u64::MAX;

/// One step of SplitMix64 seeded with `x`: its first output.
const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The root seed of a run. Displayed in decimal, as logs and seed files write it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seed(u64);

impl Seed {
    /// Wraps a root seed.
    pub const fn new(value: u64) -> Seed {
        Seed(value)
    }

    /// The seed as a number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a decision site lives: the whole world, one node, or one shard of one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// A world-level site (for example the order of runnable shards).
    World,
    /// A node-level site (for example a node's clock drift).
    Node {
        /// The node's index in the world.
        node: u16,
    },
    /// A shard-level site (for example that shard's outgoing message delays).
    Shard {
        /// The node's index in the world.
        node: u16,
        /// The shard's index within its node.
        shard: u16,
    },
}

impl Scope {
    /// The (node, shard) words this scope mixes in; absent coordinates are [`SENTINEL`].
    pub const fn words(self) -> (u64, u64) {
        match self {
            Scope::World => (SENTINEL, SENTINEL),
            Scope::Node { node } => (node as u64, SENTINEL),
            Scope::Shard { node, shard } => (node as u64, shard as u64),
        }
    }
}

/// Derives per-site streams from a root seed. Holds no mutable state: deriving a stream
/// never affects another one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrngTree {
    root: Seed,
    overrides: StreamOverrides,
}

impl PrngTree {
    /// A tree rooted at `root`.
    pub const fn new(root: Seed) -> PrngTree {
        PrngTree { root, overrides: StreamOverrides::NONE }
    }

    /// The same tree with the streams `overrides` names perturbed (see [`StreamOverrides`]).
    pub const fn with_overrides(self, overrides: StreamOverrides) -> PrngTree {
        PrngTree { root: self.root, overrides }
    }

    /// The root seed.
    pub const fn root(&self) -> Seed {
        self.root
    }

    /// The overrides this tree applies.
    pub const fn overrides(&self) -> &StreamOverrides {
        &self.overrides
    }

    /// The 64-bit state of the stream for `site` in `scope` (the formula in the module doc),
    /// perturbed when an override names `site` (in every scope).
    pub const fn stream_state(&self, scope: Scope, site: &str) -> u64 {
        let (node_word, shard_word) = scope.words();
        let mut s = splitmix64(self.root.0 ^ DOMAIN);
        s = splitmix64(s ^ node_word);
        s = splitmix64(s ^ shard_word);
        let hash = fnv1a_64(site.as_bytes());
        let state = splitmix64(s ^ hash);
        match self.overrides.value(hash) {
            Some(value) => splitmix64(state ^ splitmix64(value ^ OVERRIDE_DOMAIN)),
            None => state,
        }
    }

    /// The stream for `site` in `scope`, positioned at its first draw.
    pub fn stream(&self, scope: Scope, site: &str) -> Stream {
        Stream::from_state(self.stream_state(scope, site))
    }
}

/// Domain constant of override values: the ASCII bytes of `"override"`.
const OVERRIDE_DOMAIN: u64 = 0x6f76_6572_7269_6465;

/// Most streams one run may override.
pub const STREAM_OVERRIDES_MAX: usize = 16;

/// Decision sites the simulator draws from, by name; the network's links add
/// `net.link.<decision>.to-<node>` (see [`is_known_site`]).
pub const SITES: &[&str] = &[
    "scheduler.pick",
    "net.delay",
    "isolate.random",
    "faults.init-failure",
    "faults.buggify.site",
    "faults.buggify.fire",
    "faults.shard-stall",
    "faults.isolate-crash",
    "faults.shard-crash",
    "faults.node-crash",
    "faults.clock-jump",
    "faults.clock-skew",
    "faults.net-partition",
    "faults.net-clog",
    "faults.shard-restart-delay",
    "faults.node-restart-delay",
    "disk.latency",
    "disk.error",
    "disk.fsync-failure",
    "disk.corruption",
    "disk.crash",
    "disk.full",
];

/// The decisions of a network link, each its own site `net.link.<decision>.to-<node>`.
pub const LINK_DECISIONS: &[&str] =
    &["latency", "loss", "duplicate", "reorder", "corrupt", "retransmit", "reset"];

/// Whether `site` names a decision site of the simulator: one of [`SITES`], or a link's
/// `net.link.<decision>.to-<node>` with a decision of [`LINK_DECISIONS`].
pub fn is_known_site(site: &str) -> bool {
    if SITES.contains(&site) {
        return true;
    }
    let Some(rest) = site.strip_prefix("net.link.") else { return false };
    let Some((decision, node)) = rest.split_once(".to-") else { return false };
    LINK_DECISIONS.contains(&decision)
        && !node.is_empty()
        && node.len() <= 3
        && node.bytes().all(|b| b.is_ascii_digit())
        && node.parse::<u16>().is_ok_and(|n| n < crate::net::NODE_COUNT_MAX)
}

/// Streams a run perturbs: each names a decision site and a value, and the site's stream
/// (in every scope) starts from its usual state mixed with the value. Every other site
/// draws as before, so one override changes one site's decisions and nothing else: this is
/// how the fuzzer steers a run one decision stream at a time, and how a seed file says it
/// (`--stream SITE=VALUE`). At most [`STREAM_OVERRIDES_MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamOverrides {
    /// (FNV-1a of the site name, value); the first `len` are used.
    entries: [(u64, u64); STREAM_OVERRIDES_MAX],
    len: usize,
}

impl Default for StreamOverrides {
    fn default() -> StreamOverrides {
        StreamOverrides::NONE
    }
}

/// Why an override cannot be added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamOverrideError {
    /// No decision site has this name.
    UnknownSite(String),
    /// The site is overridden already.
    Duplicate(String),
    /// More than [`STREAM_OVERRIDES_MAX`].
    TooMany,
}

impl fmt::Display for StreamOverrideError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamOverrideError::UnknownSite(site) => write!(
                f,
                "no decision site is named {site:?}; use one of {} or net.link.<{}>.to-<node>",
                SITES.join(", "),
                LINK_DECISIONS.join("|")
            ),
            StreamOverrideError::Duplicate(site) => {
                write!(f, "the stream {site} is overridden twice; give it once")
            }
            StreamOverrideError::TooMany => {
                write!(f, "at most {STREAM_OVERRIDES_MAX} streams may be overridden in one run")
            }
        }
    }
}

impl std::error::Error for StreamOverrideError {}

impl StreamOverrides {
    /// No override.
    pub const NONE: StreamOverrides =
        StreamOverrides { entries: [(0, 0); STREAM_OVERRIDES_MAX], len: 0 };

    /// Overrides the stream of `site` with `value`.
    pub fn add(&mut self, site: &str, value: u64) -> Result<(), StreamOverrideError> {
        if !is_known_site(site) {
            return Err(StreamOverrideError::UnknownSite(site.to_string()));
        }
        let hash = fnv1a_64(site.as_bytes());
        if self.value(hash).is_some() {
            return Err(StreamOverrideError::Duplicate(site.to_string()));
        }
        if self.len == STREAM_OVERRIDES_MAX {
            return Err(StreamOverrideError::TooMany);
        }
        self.entries[self.len] = (hash, value);
        self.len += 1;
        Ok(())
    }

    /// How many streams are overridden.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether none is.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value overriding the site whose name hashes to `hash`.
    const fn value(&self, hash: u64) -> Option<u64> {
        let mut index = 0;
        while index < self.len {
            if self.entries[index].0 == hash {
                return Some(self.entries[index].1);
            }
            index += 1;
        }
        None
    }
}

/// One site's deterministic stream of draws. Not `Clone`: a copied stream would repeat its
/// draws; derive a fresh one from the tree instead.
#[derive(Debug)]
pub struct Stream {
    rng: Pcg64Mcg,
}

impl Stream {
    /// The stream whose 64-bit state is `state`; the generator's 128-bit state is the first
    /// two SplitMix64 outputs from `state`, high half first (see the module doc).
    pub fn from_state(state: u64) -> Stream {
        let high = u128::from(splitmix64(state));
        let low = u128::from(splitmix64(state.wrapping_add(GAMMA)));
        Stream { rng: Pcg64Mcg::new((high << 64) | low) }
    }

    /// The next raw 64-bit draw.
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// A uniform draw in `0..bound`, unbiased (Lemire's multiply-shift with rejection).
    ///
    /// Consumes one raw draw, plus one per rejection. Panics if `bound` is 0: asking for a
    /// value in an empty range is a bug in the caller.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.below_counting(bound).0
    }

    /// [`Stream::below`], also returning how many raw draws it rejected.
    fn below_counting(&mut self, bound: u64) -> (u64, u32) {
        assert!(bound >= 1, "Stream::below needs a bound of at least 1");
        let mut product = u128::from(self.next_u64()) * u128::from(bound);
        let mut rejections = 0;
        if (product as u64) < bound {
            // (2^64 - bound) mod bound: the low words below it would bias the result.
            let threshold = bound.wrapping_neg() % bound;
            while (product as u64) < threshold {
                rejections += 1;
                product = u128::from(self.next_u64()) * u128::from(bound);
            }
        }
        ((product >> 64) as u64, rejections)
    }

    /// A uniform draw in `lo..=hi`. Panics if `lo > hi`. The full range `0..=u64::MAX` takes
    /// one raw draw as is.
    pub fn range_inclusive(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "Stream::range_inclusive needs lo <= hi");
        match (hi - lo).checked_add(1) {
            Some(span) => lo + self.below(span),
            None => self.next_u64(),
        }
    }

    /// True with probability exactly `ratio`, in integer arithmetic. Always draws (as
    /// `below(denominator) < numerator`), even for [`Ratio::ZERO`] and [`Ratio::ONE`], so the
    /// number of draws does not depend on the ratio's value.
    pub fn chance(&mut self, ratio: Ratio) -> bool {
        self.below(u64::from(ratio.denominator)) < u64::from(ratio.numerator)
    }

    /// A uniform index in `0..len`. Panics if `len` is 0 (choosing from nothing is a bug).
    pub fn choose_index(&mut self, len: usize) -> usize {
        assert!(len >= 1, "Stream::choose_index needs a non-empty range");
        // usize is at most 64 bits on every supported target, and the draw is below `len`.
        self.below(len as u64) as usize
    }

    /// Shuffles `items` uniformly (Fisher–Yates): for `i` from `len - 1` down to 1, swaps
    /// item `i` with item `below(i + 1)`. Takes `len - 1` bounded draws; none for 0 or 1 item.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.choose_index(i + 1);
            items.swap(i, j);
        }
    }
}

/// A probability as an exact fraction `numerator / denominator`, with `0 <= numerator <=
/// denominator` and `denominator >= 1`. Equality compares the fraction as written (`1/2` is
/// not equal to `2/4`). Displayed and parsed as `N/D`, for example `1/100`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ratio {
    numerator: u32,
    denominator: u32,
}

impl Ratio {
    /// Never: `0/1`.
    pub const ZERO: Ratio = Ratio { numerator: 0, denominator: 1 };
    /// Always: `1/1`.
    pub const ONE: Ratio = Ratio { numerator: 1, denominator: 1 };

    /// The ratio `numerator / denominator`, if `denominator >= 1` and `numerator <=
    /// denominator`.
    pub const fn new(numerator: u32, denominator: u32) -> Result<Ratio, RatioError> {
        if denominator == 0 {
            Err(RatioError::ZeroDenominator)
        } else if numerator > denominator {
            Err(RatioError::AboveOne { numerator, denominator })
        } else {
            Ok(Ratio { numerator, denominator })
        }
    }

    /// The numerator.
    pub const fn numerator(self) -> u32 {
        self.numerator
    }

    /// The denominator (at least 1).
    pub const fn denominator(self) -> u32 {
        self.denominator
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.numerator, self.denominator)
    }
}

/// Why numbers do not make a [`Ratio`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RatioError {
    /// The denominator is 0.
    ZeroDenominator,
    /// The numerator exceeds the denominator: a probability above one.
    AboveOne {
        /// The numerator given.
        numerator: u32,
        /// The denominator given.
        denominator: u32,
    },
}

impl fmt::Display for RatioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RatioError::ZeroDenominator => write!(f, "the denominator must be at least 1"),
            RatioError::AboveOne { numerator, denominator } => write!(
                f,
                "the numerator {numerator} exceeds the denominator {denominator}: \
                 a probability cannot be above 1"
            ),
        }
    }
}

impl std::error::Error for RatioError {}

/// What is wrong with a text that does not parse as a [`Ratio`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseRatioErrorKind {
    /// There is no `/` between two numbers.
    MissingSlash,
    /// The part before `/` is not a decimal `u32` (only the digits 0-9 are accepted).
    BadNumerator,
    /// The part after `/` is not a decimal `u32` (only the digits 0-9 are accepted).
    BadDenominator,
    /// Both numbers parse but do not make a probability.
    Invalid(RatioError),
}

/// A text that does not parse as a [`Ratio`], with the text itself for the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseRatioError {
    input: String,
    kind: ParseRatioErrorKind,
}

impl ParseRatioError {
    /// What is wrong.
    pub fn kind(&self) -> ParseRatioErrorKind {
        self.kind
    }

    /// The text that failed to parse.
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for ParseRatioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid ratio {:?}: ", self.input)?;
        match self.kind {
            ParseRatioErrorKind::MissingSlash => write!(f, "expected N/D")?,
            ParseRatioErrorKind::BadNumerator => write!(f, "the numerator is not a u32")?,
            ParseRatioErrorKind::BadDenominator => write!(f, "the denominator is not a u32")?,
            ParseRatioErrorKind::Invalid(error) => write!(f, "{error}")?,
        }
        write!(f, " (write N/D with 0 <= N <= D and D >= 1, for example 1/100)")
    }
}

impl std::error::Error for ParseRatioError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ParseRatioErrorKind::Invalid(error) => Some(error),
            _ => None,
        }
    }
}

/// A decimal `u32` made of ASCII digits only (no sign, no spaces).
fn parse_digits(text: &str) -> Option<u32> {
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if digits_only { text.parse().ok() } else { None }
}

impl FromStr for Ratio {
    type Err = ParseRatioError;

    /// Parses `N/D` exactly: decimal digits, one `/`, no spaces or signs.
    fn from_str(text: &str) -> Result<Ratio, ParseRatioError> {
        let fail = |kind| ParseRatioError { input: text.to_owned(), kind };
        let (numerator, denominator) =
            text.split_once('/').ok_or_else(|| fail(ParseRatioErrorKind::MissingSlash))?;
        let numerator =
            parse_digits(numerator).ok_or_else(|| fail(ParseRatioErrorKind::BadNumerator))?;
        let denominator =
            parse_digits(denominator).ok_or_else(|| fail(ParseRatioErrorKind::BadDenominator))?;
        Ratio::new(numerator, denominator)
            .map_err(|error| fail(ParseRatioErrorKind::Invalid(error)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    const NET_DELAY: Scope = Scope::Shard { node: 1, shard: 2 };

    fn tree(seed: u64) -> PrngTree {
        PrngTree::new(Seed::new(seed))
    }

    fn draws(stream: &mut Stream, count: usize) -> Vec<u64> {
        (0..count).map(|_| stream.next_u64()).collect()
    }

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // SplitMix64 seeded with 1234567 (the published reference outputs).
        let mut state: u64 = 1_234_567;
        let mut outputs = Vec::new();
        for _ in 0..3 {
            outputs.push(splitmix64(state));
            state = state.wrapping_add(GAMMA);
        }
        assert_eq!(
            outputs,
            [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423]
        );
    }

    #[test]
    fn stream_vector_is_stable() {
        let tree = tree(42);
        assert_eq!(tree.stream_state(NET_DELAY, "net.delay"), 0x63c0_29ae_6327_9d8a);
        let mut stream = tree.stream(NET_DELAY, "net.delay");
        assert_eq!(
            draws(&mut stream, 5),
            [
                0xb755_2aa7_7c43_4658,
                0x86f0_044f_df3e_5d07,
                0xb772_e26b_6bdc_0d19,
                0x4762_8cc2_c865_a821,
                0x4cc9_2b4f_1246_e133,
            ]
        );
    }

    #[test]
    fn world_and_node_vectors_are_stable() {
        let tree = tree(0);
        assert_eq!(tree.stream(Scope::World, "sched.order").next_u64(), 0x6d01_fa90_a2a2_19eb);
        assert_eq!(
            tree.stream(Scope::Node { node: 0 }, "clock.drift").next_u64(),
            0x6ee4_6e8e_271c_1f55
        );
    }

    #[test]
    fn below_vector_is_stable() {
        let mut stream = tree(7).stream(Scope::World, "below.vector");
        let small: Vec<u64> = (0..8).map(|_| stream.below(10)).collect();
        assert_eq!(small, [0, 4, 7, 7, 8, 7, 2, 8]);
        let large: Vec<u64> = (0..4).map(|_| stream.below((1 << 63) + 1)).collect();
        assert_eq!(
            large,
            [
                9_046_115_541_458_391_002,
                1_635_603_231_532_612_814,
                898_522_613_508_528_697,
                2_886_600_098_797_441_944,
            ]
        );
    }

    /// Derives every stream of a world with `nodes` x `shards` and `sites`, draws from them
    /// round-robin (more worlds, more interleaving) and returns each one's first 100 draws.
    fn world_draws(nodes: u16, shards: u16, sites: &[&str]) -> BTreeMap<(Scope, String), Vec<u64>> {
        let tree = tree(0xDEAD_BEEF);
        let mut scopes = vec![Scope::World];
        for node in 0..nodes {
            scopes.push(Scope::Node { node });
            scopes.extend((0..shards).map(|shard| Scope::Shard { node, shard }));
        }
        let mut streams: Vec<((Scope, String), Stream, Vec<u64>)> = Vec::new();
        for scope in scopes {
            for site in sites {
                streams.push(((scope, (*site).to_owned()), tree.stream(scope, site), Vec::new()));
            }
        }
        for _ in 0..100 {
            for (_, stream, out) in &mut streams {
                out.push(stream.next_u64());
            }
        }
        streams.into_iter().map(|(key, _, out)| (key, out)).collect()
    }

    #[test]
    fn adding_shards_nodes_and_sites_leaves_existing_streams_unchanged() {
        let small = world_draws(2, 2, &["net.delay", "net.drop"]);
        let bigger =
            world_draws(5, 8, &["disk.latency", "net.delay", "sched.order", "net.drop", "x"]);
        assert_eq!(small.len(), (1 + 2 * 3) * 2);
        for (key, expected) in &small {
            assert_eq!(bigger.get(key), Some(expected), "stream {key:?} changed");
        }
    }

    #[test]
    fn scopes_and_sites_give_distinct_states() {
        let three = tree(3);
        let mut states = BTreeSet::new();
        let mut count = 0;
        for site in ["a", "b", "net.delay"] {
            states.insert(three.stream_state(Scope::World, site));
            count += 1;
            for node in [0, 1, u16::MAX] {
                states.insert(three.stream_state(Scope::Node { node }, site));
                count += 1;
                for shard in [0, 1, u16::MAX] {
                    states.insert(three.stream_state(Scope::Shard { node, shard }, site));
                    count += 1;
                }
            }
        }
        assert_eq!(states.len(), count);
        assert_ne!(three.stream_state(Scope::World, "a"), tree(4).stream_state(Scope::World, "a"));
    }

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut stream = tree(11).stream(Scope::World, "uniform");
        const BOUND: u64 = 6;
        const DRAWS: u64 = 60_000;
        let mut counts = [0u64; BOUND as usize];
        for _ in 0..DRAWS {
            counts[stream.below(BOUND) as usize] += 1;
        }
        // Chi-square with 5 degrees of freedom, scaled by the expectation to stay in integers:
        // sum((c - e)^2) < 25 * e is far beyond the 99.9th percentile (20.5).
        let expected = DRAWS / BOUND;
        let scaled: u64 = counts.iter().map(|&c| c.abs_diff(expected).pow(2)).sum();
        assert!(scaled < 25 * expected, "counts {counts:?}");
    }

    #[test]
    fn below_edges() {
        let mut stream = tree(12).stream(Scope::World, "edges");
        for _ in 0..100 {
            assert_eq!(stream.below(1), 0);
            assert!(stream.below(u64::MAX) < u64::MAX);
            assert!(stream.below(3) < 3);
        }
    }

    #[test]
    fn below_rejects_for_a_bound_just_above_half_the_range() {
        // For 2^63 + 1 the threshold is 2^63 - 1, so about half of all raw draws are rejected.
        let mut stream = tree(13).stream(Scope::World, "rejection");
        let bound = (1u64 << 63) + 1;
        let mut rejections = 0;
        for _ in 0..1_000 {
            let (value, rejected) = stream.below_counting(bound);
            assert!(value < bound);
            rejections += rejected;
        }
        // Expected about 1000 (a geometric count with p = 1/2 per draw).
        assert!((700..1_300).contains(&rejections), "rejections {rejections}");
    }

    #[test]
    #[should_panic(expected = "bound of at least 1")]
    fn below_zero_panics() {
        tree(0).stream(Scope::World, "zero").below(0);
    }

    #[test]
    fn range_inclusive_covers_its_edges() {
        let mut stream = tree(14).stream(Scope::World, "range");
        assert_eq!(stream.range_inclusive(5, 5), 5);
        let _ = stream.range_inclusive(0, u64::MAX);
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            let value = stream.range_inclusive(10, 13);
            assert!((10..=13).contains(&value));
            seen.insert(value);
        }
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn chance_of_zero_and_one_is_certain() {
        let mut stream = tree(15).stream(Scope::World, "chance");
        let never = Ratio::new(0, 7).unwrap();
        let always = Ratio::new(7, 7).unwrap();
        for _ in 0..1_000 {
            assert!(!stream.chance(Ratio::ZERO));
            assert!(!stream.chance(never));
            assert!(stream.chance(Ratio::ONE));
            assert!(stream.chance(always));
        }
    }

    #[test]
    fn chance_is_roughly_its_ratio() {
        let mut stream = tree(16).stream(Scope::World, "chance");
        let quarter: Ratio = "1/4".parse().unwrap();
        let hits = (0..40_000).filter(|_| stream.chance(quarter)).count();
        assert!((9_400..10_600).contains(&hits), "hits {hits}");
    }

    #[test]
    fn choose_index_and_shuffle() {
        let mut stream = tree(17).stream(Scope::World, "shuffle");
        for len in 1..20 {
            assert!(stream.choose_index(len) < len);
        }
        let mut items: Vec<u32> = (0..50).collect();
        stream.shuffle(&mut items);
        assert_ne!(items, (0..50).collect::<Vec<_>>());
        let mut sorted = items.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        stream.shuffle::<u32>(&mut []);
        stream.shuffle(&mut [1]);
    }

    #[test]
    fn shuffle_vector_is_stable() {
        let mut items = [0, 1, 2, 3, 4, 5, 6, 7];
        tree(18).stream(Scope::World, "shuffle").shuffle(&mut items);
        assert_eq!(items, [5, 2, 1, 0, 6, 3, 7, 4]);
    }

    #[test]
    fn ratio_parses_and_displays() {
        let ratio: Ratio = "1/100".parse().unwrap();
        assert_eq!((ratio.numerator(), ratio.denominator()), (1, 100));
        assert_eq!(ratio.to_string(), "1/100");
        assert_eq!("0/1".parse(), Ok(Ratio::ZERO));
        assert_eq!("1/1".parse(), Ok(Ratio::ONE));
        assert_eq!("4294967295/4294967295".parse::<Ratio>().unwrap().numerator(), u32::MAX);
    }

    #[test]
    fn ratio_rejects_bad_numbers() {
        assert_eq!(Ratio::new(1, 0), Err(RatioError::ZeroDenominator));
        assert_eq!(Ratio::new(3, 2), Err(RatioError::AboveOne { numerator: 3, denominator: 2 }));
    }

    #[test]
    fn ratio_parse_errors() {
        use ParseRatioErrorKind::*;
        let cases = [
            ("", MissingSlash),
            ("1", MissingSlash),
            ("/2", BadNumerator),
            ("a/2", BadNumerator),
            ("-1/2", BadNumerator),
            ("+1/2", BadNumerator),
            (" 1/2", BadNumerator),
            ("4294967296/4294967297", BadNumerator),
            ("1/", BadDenominator),
            ("1/2/3", BadDenominator),
            ("1/2 ", BadDenominator),
            ("1/0", Invalid(RatioError::ZeroDenominator)),
            ("2/1", Invalid(RatioError::AboveOne { numerator: 2, denominator: 1 })),
        ];
        for (text, kind) in cases {
            let error = text.parse::<Ratio>().unwrap_err();
            assert_eq!((error.input(), error.kind()), (text, kind), "input {text:?}");
        }
    }

    #[test]
    fn ratio_parse_error_message_is_clear() {
        let error = "1/0".parse::<Ratio>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid ratio \"1/0\": the denominator must be at least 1 \
             (write N/D with 0 <= N <= D and D >= 1, for example 1/100)"
        );
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn an_override_changes_its_site_only_and_is_refused_when_unknown() {
        let plain = PrngTree::new(Seed::new(42));
        let mut overrides = StreamOverrides::NONE;
        overrides.add("net.delay", 7).unwrap();
        overrides.add("net.link.loss.to-3", 0).unwrap();
        let steered = plain.with_overrides(overrides);
        for scope in [NET_DELAY, Scope::World, Scope::Node { node: 0 }] {
            assert_ne!(
                plain.stream_state(scope, "net.delay"),
                steered.stream_state(scope, "net.delay")
            );
            assert_eq!(
                plain.stream_state(scope, "scheduler.pick"),
                steered.stream_state(scope, "scheduler.pick")
            );
        }
        assert_ne!(
            plain.stream_state(Scope::Node { node: 1 }, "net.link.loss.to-3"),
            steered.stream_state(Scope::Node { node: 1 }, "net.link.loss.to-3"),
            "value 0 is an override too"
        );
        let mut other = StreamOverrides::NONE;
        other.add("net.delay", 8).unwrap();
        assert_ne!(
            steered.stream_state(NET_DELAY, "net.delay"),
            plain.with_overrides(other).stream_state(NET_DELAY, "net.delay")
        );

        assert!(matches!(overrides.add("net.delay", 1), Err(StreamOverrideError::Duplicate(_))));
        for bad in ["nope", "net.link.loss.to-", "net.link.loss.to-999", "net.link.nope.to-1"] {
            assert!(
                matches!(overrides.add(bad, 1), Err(StreamOverrideError::UnknownSite(_))),
                "{bad}"
            );
        }
        let mut full = StreamOverrides::NONE;
        for (index, site) in SITES.iter().take(STREAM_OVERRIDES_MAX).enumerate() {
            full.add(site, index as u64).unwrap();
        }
        assert_eq!(full.add(SITES[STREAM_OVERRIDES_MAX], 0), Err(StreamOverrideError::TooMany));
    }
}
