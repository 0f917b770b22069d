//! A node's clock: its own monotonic time domain, derived from the world's true time.
//!
//! `local(t) = offset + jumped + floor(t * (10^6 + drift_ppm) / 10^6)`: an offset fixed at
//! boot, a rate error in parts per million, and the sum of forward jumps so far. It never
//! goes back (the rate is positive and jumps only add), so `ctx.now()` never decreases, not
//! even across a node restart: a process restarting on the same machine reads the same
//! monotonic clock. `true_at` inverts it exactly, so a shard asking to wake at a deadline on
//! its clock is woken at the first true instant its clock reads it.
//!
//! Integer arithmetic only (u128 intermediates); no floats decide anything.

/// Parts per million.
const PPM: u128 = 1_000_000;

/// One node's clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeClock {
    offset_ns: u64,
    drift_ppm: i32,
    jumped_ns: u64,
}

impl NodeClock {
    /// The clock of true time itself.
    pub const TRUE: NodeClock = NodeClock { offset_ns: 0, drift_ppm: 0, jumped_ns: 0 };

    /// A clock `offset_ns` ahead at true time zero, running `drift_ppm` parts per million
    /// fast (slow when negative). Panics unless `|drift_ppm| < 10^6` (a clock that stops or
    /// runs backwards is not a clock; the knob's bound keeps far inside this).
    pub fn new(offset_ns: u64, drift_ppm: i32) -> NodeClock {
        assert!(drift_ppm.unsigned_abs() < 1_000_000, "a clock rate must stay positive");
        NodeClock { offset_ns, drift_ppm, jumped_ns: 0 }
    }

    /// Whether the clock reads true time.
    #[inline]
    pub fn is_true(&self) -> bool {
        *self == NodeClock::TRUE
    }

    /// The offset at true time zero, in nanoseconds.
    pub fn offset_ns(&self) -> u64 {
        self.offset_ns
    }

    /// The rate error, in parts per million.
    pub fn drift_ppm(&self) -> i32 {
        self.drift_ppm
    }

    fn rate(&self) -> u128 {
        // |drift| < 10^6, so the rate is positive.
        (PPM as i128 + i128::from(self.drift_ppm)) as u128
    }

    /// What the clock reads at true time `true_ns` (saturating at the end of time).
    #[inline]
    pub fn local(&self, true_ns: u64) -> u64 {
        if self.is_true() {
            return true_ns;
        }
        let scaled = u128::from(true_ns) * self.rate() / PPM;
        let base = u128::from(self.offset_ns) + u128::from(self.jumped_ns);
        u64::try_from(base + scaled).unwrap_or(u64::MAX)
    }

    /// The first true time at which the clock reads at least `local_ns` (zero if it already
    /// did at time zero; `u64::MAX` if it never will).
    pub fn true_at(&self, local_ns: u64) -> u64 {
        if self.is_true() {
            return local_ns;
        }
        let base = u128::from(self.offset_ns) + u128::from(self.jumped_ns);
        let Some(span) = u128::from(local_ns).checked_sub(base) else { return 0 };
        // floor(t * rate / PPM) >= span  <=>  t * rate >= span * PPM.
        let t = (span * PPM).div_ceil(self.rate());
        u64::try_from(t).unwrap_or(u64::MAX)
    }

    /// Jumps the clock forward by `by_ns`.
    pub fn jump(&mut self, by_ns: u64) {
        self.jumped_ns = self.jumped_ns.saturating_add(by_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clock never goes back, and `true_at` is the exact inverse: the first true time
    /// at which the clock reads a deadline, for fast, slow, offset and jumped clocks.
    #[test]
    fn monotonic_and_exactly_inverted() {
        let mut clocks = vec![
            NodeClock::TRUE,
            NodeClock::new(0, 1000),
            NodeClock::new(5_000, -999),
            NodeClock::new(10_000_000_000, 100_000),
            NodeClock::new(1, -100_000),
        ];
        let mut jumped = NodeClock::new(77, -3);
        jumped.jump(1_000_000);
        clocks.push(jumped);
        for clock in clocks {
            let mut last = 0;
            for t in (0..3_000_000u64).step_by(997).chain([u64::MAX / 4, u64::MAX]) {
                let local = clock.local(t);
                assert!(local >= last, "{clock:?} went back at {t}");
                last = local;
            }
            for deadline in (0..20_000_000u64).step_by(7_919) {
                let t = clock.true_at(deadline);
                assert!(clock.local(t) >= deadline, "{clock:?} {deadline}");
                assert!(t == 0 || clock.local(t - 1) < deadline, "{clock:?} {deadline} not first");
            }
        }
    }

    /// A jump moves the reading forward at once by exactly its size.
    #[test]
    fn jumps_move_forward() {
        let mut clock = NodeClock::new(100, 0);
        assert_eq!(clock.local(1_000), 1_100);
        clock.jump(500);
        assert_eq!(clock.local(1_000), 1_600);
        assert_eq!(clock.true_at(1_600), 1_000);
    }
}
