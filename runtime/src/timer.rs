//! The shard's timers: a hierarchical timer wheel over a fixed pool of entries.
//!
//! Time is counted in ticks of the spec's timer resolution. The wheel has `LEVELS` levels of
//! 64 slots; level `l` slot covers `64^l` ticks, and an occupancy bitmap per level finds the
//! next expiration without scanning. An entry is in exactly one place: free, in a wheel
//! slot, or in its owner's *fired* list (fired, not yet delivered). Every owner also keeps a
//! list of the user timers it owns, so cancelling one or dropping all of them at teardown is
//! O(1) per timer.
//!
//! Entries `0..user_capacity` serve `ctx.timer_set`; one more entry per isolate slot serves
//! that isolate's single outstanding call timeout, so a call never fails for lack of a timer.
//!
//! This module knows owners only as dense slot keys; it does not deliver messages.

use core::fmt;

use crate::footprint::array_bytes;

/// End of a list.
const NIL: u32 = u32::MAX;
/// Bits of tick per level.
const LEVEL_BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << LEVEL_BITS;
/// Levels: one rotation of the top level is 64^7 = 2^42 ticks (139 years at 1 ms, 51 days
/// at 1 µs); later deadlines wait in the overflow list.
const LEVELS: usize = 7;
/// Ticks covered by one full rotation of the top level.
const WHEEL_SPAN: u64 = 1 << (LEVEL_BITS as u64 * LEVELS as u64);
/// Pseudo-level naming the overflow list in `next_expiration`.
const OVERFLOW: usize = LEVELS;

/// Identifies one timer for `ctx.timer_cancel`: pool index and the entry's generation.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TimerId(u64);

impl TimerId {
    /// Names no timer.
    pub const NONE: TimerId = TimerId(0);

    fn new(index: u32, generation: u32) -> TimerId {
        TimerId(((index as u64) << 32) | generation as u64)
    }

    fn index(self) -> u32 {
        (self.0 >> 32) as u32
    }

    fn generation(self) -> u32 {
        self.0 as u32
    }

    /// Raw bits, stable across builds.
    pub const fn to_raw(self) -> u64 {
        self.0
    }

    /// Rebuilds an id from raw bits; an id that names nothing cancels nothing.
    pub const fn from_raw(raw: u64) -> TimerId {
        TimerId(raw)
    }
}

impl fmt::Debug for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timer{}g{}", self.index(), self.generation())
    }
}

impl fmt::Display for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why a timer could not be set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerError {
    /// Every timer of the shard's pool is pending.
    PoolExhausted,
}

impl fmt::Display for TimerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("every timer of the shard's pool is pending")
    }
}

impl std::error::Error for TimerError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Free,
    Wheel {
        level: u8,
        slot: u8,
    },
    /// Due beyond the current top-level rotation; revisited when the rotation ends.
    Overflow,
    Fired,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Deadline in ticks.
    when: u64,
    /// Links in a wheel slot, the free list (`next` only) or the owner's fired list.
    prev: u32,
    next: u32,
    /// Links in the owner's list of user timers.
    owner_prev: u32,
    owner_next: u32,
    owner: u32,
    tag: u64,
    generation: u32,
    place: Place,
}

const BLANK: Entry = Entry {
    when: 0,
    prev: NIL,
    next: NIL,
    owner_prev: NIL,
    owner_next: NIL,
    owner: NIL,
    tag: 0,
    generation: 1,
    place: Place::Free,
};

/// What an owner's fired list yielded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fired {
    /// A user timer fired.
    User { id: TimerId, tag: u64 },
}

/// A call-timeout entry reached its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CallExpired {
    pub(crate) owner: u32,
}

/// What `advance` found due, reported one entry at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expired {
    /// A user timer moved to its owner's fired list.
    User { owner: u32, id: TimerId },
    /// An owner's call timed out.
    Call(CallExpired),
}

/// The timer pool, the wheel and the per-owner lists of one shard.
#[derive(Debug)]
pub(crate) struct Timers {
    entries: Box<[Entry]>,
    user_capacity: u32,
    free_head: u32,
    free_count: u32,
    heads: [[u32; SLOTS]; LEVELS],
    occupied: [u64; LEVELS],
    overflow_head: u32,
    /// Ticks processed so far.
    elapsed: u64,
    resolution_ns: u64,
    in_wheel: u32,
    owned_head: Box<[u32]>,
    fired_head: Box<[u32]>,
    fired_tail: Box<[u32]>,
}

impl Timers {
    /// `user_capacity` user timers plus one call entry for each of `owner_count` slots.
    pub(crate) fn new(user_capacity: u32, owner_count: usize, resolution_ns: u64) -> Timers {
        assert!(resolution_ns > 0);
        let total = user_capacity as usize + owner_count;
        assert!(total < NIL as usize);
        let mut entries = vec![BLANK; total].into_boxed_slice();
        for (index, entry) in entries.iter_mut().enumerate().take(user_capacity as usize) {
            entry.next = if index + 1 == user_capacity as usize { NIL } else { index as u32 + 1 };
        }
        Timers {
            entries,
            user_capacity,
            free_head: if user_capacity == 0 { NIL } else { 0 },
            free_count: user_capacity,
            heads: [[NIL; SLOTS]; LEVELS],
            occupied: [0; LEVELS],
            overflow_head: NIL,
            elapsed: 0,
            resolution_ns,
            in_wheel: 0,
            owned_head: vec![NIL; owner_count].into_boxed_slice(),
            fired_head: vec![NIL; owner_count].into_boxed_slice(),
            fired_tail: vec![NIL; owner_count].into_boxed_slice(),
        }
    }

    /// Bytes `new(user_capacity, owner_count, _)` allocates: an entry per user timer and
    /// per owner (its call entry), and three list heads per owner.
    pub(crate) fn bytes_for(user_capacity: u32, owner_count: usize) -> u64 {
        let entries = u64::from(user_capacity).saturating_add(owner_count as u64);
        array_bytes(entries, size_of::<Entry>())
            .saturating_add(array_bytes(owner_count as u64, 3 * size_of::<u32>()))
    }

    /// User timers not pending.
    pub(crate) fn free_count(&self) -> u32 {
        self.free_count
    }

    /// User timers in the pool.
    pub(crate) fn user_capacity(&self) -> u32 {
        self.user_capacity
    }

    /// The first tick at or after `nanos`: a deadline never rounds down.
    pub(crate) fn tick_at_or_after(&self, nanos: u64) -> u64 {
        nanos.div_ceil(self.resolution_ns)
    }

    /// The tick containing `nanos`.
    #[inline]
    pub(crate) fn tick_of(&self, nanos: u64) -> u64 {
        nanos / self.resolution_ns
    }

    /// Nanoseconds at the start of `tick`, saturating.
    #[inline]
    pub(crate) fn nanos_of(&self, tick: u64) -> u64 {
        tick.saturating_mul(self.resolution_ns)
    }

    /// Catches the wheel up to `now` when it holds nothing: `advance` is skipped while the
    /// wheel is idle, so its time may lag behind the shard's.
    fn sync(&mut self, now: u64) {
        if self.in_wheel == 0 {
            self.elapsed = self.elapsed.max(now);
        }
    }

    /// Whether no timer or call timeout is pending: `advance` has nothing to do.
    #[inline]
    pub(crate) fn is_idle(&self) -> bool {
        self.in_wheel == 0
    }

    /// Sets a user timer for `owner` due at tick `when`; `now` is the current tick.
    pub(crate) fn set(
        &mut self,
        owner: u32,
        now: u64,
        when: u64,
        tag: u64,
    ) -> Result<TimerId, TimerError> {
        self.sync(now);
        if self.free_head == NIL {
            return Err(TimerError::PoolExhausted);
        }
        let index = self.free_head;
        let entry = &mut self.entries[index as usize];
        self.free_head = entry.next;
        self.free_count -= 1;
        entry.owner = owner;
        entry.tag = tag;
        entry.when = when;
        let id = TimerId::new(index, entry.generation);
        // Link into the owner's list of user timers.
        let head = self.owned_head[owner as usize];
        let entry = &mut self.entries[index as usize];
        entry.owner_prev = NIL;
        entry.owner_next = head;
        if head != NIL {
            self.entries[head as usize].owner_prev = index;
        }
        self.owned_head[owner as usize] = index;
        self.insert(index);
        Ok(id)
    }

    /// Arms `owner`'s call timeout for tick `when`; `now` is the current tick.
    pub(crate) fn set_call(&mut self, owner: u32, now: u64, when: u64) {
        self.sync(now);
        let index = self.call_entry(owner);
        assert_eq!(self.entries[index as usize].place, Place::Free, "one call at a time");
        let entry = &mut self.entries[index as usize];
        entry.owner = owner;
        entry.when = when;
        self.insert(index);
    }

    /// Disarms `owner`'s call timeout if it is armed.
    pub(crate) fn cancel_call(&mut self, owner: u32) {
        let index = self.call_entry(owner);
        if let Place::Wheel { .. } | Place::Overflow = self.entries[index as usize].place {
            self.unlink_wheel(index);
            self.entries[index as usize].place = Place::Free;
        }
    }

    fn call_entry(&self, owner: u32) -> u32 {
        self.user_capacity + owner
    }

    /// Cancels `id` if `owner` owns it and it has not been delivered: it will never be
    /// delivered. Returns whether it was pending.
    pub(crate) fn cancel(&mut self, owner: u32, id: TimerId) -> bool {
        let index = id.index();
        if index >= self.user_capacity {
            return false;
        }
        let entry = &self.entries[index as usize];
        if entry.generation != id.generation() || entry.owner != owner || entry.place == Place::Free
        {
            return false;
        }
        self.release_user(index);
        true
    }

    /// Frees every user timer of `owner` and disarms its call timeout (teardown).
    pub(crate) fn clear_owner(&mut self, owner: u32, mut on_cancel: impl FnMut(TimerId)) {
        // Bounded by the pool: each iteration frees one entry.
        while self.owned_head[owner as usize] != NIL {
            let index = self.owned_head[owner as usize];
            on_cancel(TimerId::new(index, self.entries[index as usize].generation));
            self.release_user(index);
        }
        debug_assert_eq!(self.fired_head[owner as usize], NIL);
        self.cancel_call(owner);
    }

    /// Takes the oldest fired, undelivered timer of `owner`, freeing its entry.
    pub(crate) fn pop_fired(&mut self, owner: u32) -> Option<Fired> {
        let index = self.fired_head[owner as usize];
        if index == NIL {
            return None;
        }
        let entry = self.entries[index as usize];
        let fired = Fired::User { id: TimerId::new(index, entry.generation), tag: entry.tag };
        self.release_user(index);
        Some(fired)
    }

    /// Whether `owner` has fired timers waiting for delivery.
    pub(crate) fn has_fired(&self, owner: u32) -> bool {
        self.fired_head[owner as usize] != NIL
    }

    /// Moves the wheel to tick `now`, reporting every entry that came due: user timers move
    /// to their owner's fired list; call timeouts are freed. Bounded: each pass either fires
    /// entries or moves them to a lower level, so there are at most `LEVELS` passes per
    /// entry in the wheel, plus one.
    pub(crate) fn advance(&mut self, now: u64, mut on_expired: impl FnMut(Expired)) {
        let passes_max = self.in_wheel as u64 * LEVELS as u64 + 1;
        for _ in 0..passes_max {
            let Some((level, slot, deadline)) = self.next_expiration() else { break };
            if deadline > now {
                break;
            }
            self.elapsed = self.elapsed.max(deadline);
            let mut index = self.take_slot(level, slot);
            // Bounded by the entries of one slot.
            while index != NIL {
                let next = self.entries[index as usize].next;
                self.entries[index as usize].place = Place::Free;
                if self.entries[index as usize].when <= self.elapsed {
                    on_expired(self.expire(index));
                } else {
                    self.insert(index);
                }
                index = next;
            }
        }
        self.elapsed = self.elapsed.max(now);
    }

    /// The earliest tick at which `advance` can find something due (a lower bound when
    /// the earliest entry sits in a coarse level).
    #[inline]
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        if self.in_wheel == 0 {
            return None;
        }
        self.next_expiration().map(|(_, _, deadline)| deadline)
    }

    fn expire(&mut self, index: u32) -> Expired {
        let owner = self.entries[index as usize].owner;
        if index >= self.user_capacity {
            return Expired::Call(CallExpired { owner });
        }
        // Append to the owner's fired list.
        let tail = self.fired_tail[owner as usize];
        let entry = &mut self.entries[index as usize];
        entry.place = Place::Fired;
        entry.prev = tail;
        entry.next = NIL;
        if tail == NIL {
            self.fired_head[owner as usize] = index;
        } else {
            self.entries[tail as usize].next = index;
        }
        self.fired_tail[owner as usize] = index;
        Expired::User { owner, id: TimerId::new(index, self.entries[index as usize].generation) }
    }

    /// Takes a user entry out of wherever it is and returns it to the free list with the
    /// next generation, so its id is stale from now on.
    fn release_user(&mut self, index: u32) {
        debug_assert!(index < self.user_capacity);
        let entry = self.entries[index as usize];
        match entry.place {
            Place::Wheel { .. } | Place::Overflow => self.unlink_wheel(index),
            Place::Fired => {
                let owner = entry.owner as usize;
                if entry.prev == NIL {
                    self.fired_head[owner] = entry.next;
                } else {
                    self.entries[entry.prev as usize].next = entry.next;
                }
                if entry.next == NIL {
                    self.fired_tail[owner] = entry.prev;
                } else {
                    self.entries[entry.next as usize].prev = entry.prev;
                }
            }
            Place::Free => unreachable!("releasing a free timer"),
        }
        // Unlink from the owner's list.
        if entry.owner_prev == NIL {
            self.owned_head[entry.owner as usize] = entry.owner_next;
        } else {
            self.entries[entry.owner_prev as usize].owner_next = entry.owner_next;
        }
        if entry.owner_next != NIL {
            self.entries[entry.owner_next as usize].owner_prev = entry.owner_prev;
        }
        let free_head = self.free_head;
        let entry = &mut self.entries[index as usize];
        entry.place = Place::Free;
        entry.owner = NIL;
        entry.owner_prev = NIL;
        entry.owner_next = NIL;
        entry.prev = NIL;
        entry.next = free_head;
        // A generation of zero is skipped so that `TimerId::NONE` never names an entry.
        entry.generation = entry.generation.wrapping_add(1).max(1);
        self.free_head = index;
        self.free_count += 1;
    }

    /// Puts an entry in the wheel slot for its deadline (the current slot when the deadline
    /// is not after the wheel's time, so the next `advance` finds it), or in the overflow
    /// list when it is due beyond the current top-level rotation.
    fn insert(&mut self, index: u32) {
        let when = self.entries[index as usize].when.max(self.elapsed);
        let rotation_end = (self.elapsed | (WHEEL_SPAN - 1)).saturating_add(1);
        if when >= rotation_end {
            let head = self.overflow_head;
            self.link(index, head, Place::Overflow);
            self.overflow_head = index;
            self.in_wheel += 1;
            return;
        }
        let masked = (self.elapsed ^ when) | (SLOTS as u64 - 1);
        let significant = 63 - masked.leading_zeros();
        let level = (significant / LEVEL_BITS) as usize;
        debug_assert!(level < LEVELS);
        let slot = ((when >> (level as u32 * LEVEL_BITS)) as usize) & (SLOTS - 1);
        let head = self.heads[level][slot];
        self.link(index, head, Place::Wheel { level: level as u8, slot: slot as u8 });
        self.heads[level][slot] = index;
        self.occupied[level] |= 1 << slot;
        self.in_wheel += 1;
    }

    /// Makes `index` the new head of a list whose old head is `head`.
    fn link(&mut self, index: u32, head: u32, place: Place) {
        let entry = &mut self.entries[index as usize];
        entry.place = place;
        entry.prev = NIL;
        entry.next = head;
        if head != NIL {
            self.entries[head as usize].prev = index;
        }
    }

    /// Takes an entry out of its wheel slot or the overflow list.
    fn unlink_wheel(&mut self, index: u32) {
        let entry = self.entries[index as usize];
        let head = match entry.place {
            Place::Wheel { level, slot } => &mut self.heads[level as usize][slot as usize],
            Place::Overflow => &mut self.overflow_head,
            Place::Free | Place::Fired => unreachable!("not in the wheel"),
        };
        if entry.prev == NIL {
            *head = entry.next;
        } else {
            self.entries[entry.prev as usize].next = entry.next;
        }
        if entry.next != NIL {
            self.entries[entry.next as usize].prev = entry.prev;
        }
        if let Place::Wheel { level, slot } = entry.place
            && self.heads[level as usize][slot as usize] == NIL
        {
            self.occupied[level as usize] &= !(1 << slot);
        }
        self.in_wheel -= 1;
    }

    /// Detaches a whole slot list (or, for `OVERFLOW`, the overflow list) and returns its
    /// head.
    fn take_slot(&mut self, level: usize, slot: usize) -> u32 {
        let head = if level == OVERFLOW {
            core::mem::replace(&mut self.overflow_head, NIL)
        } else {
            self.occupied[level] &= !(1 << slot);
            core::mem::replace(&mut self.heads[level][slot], NIL)
        };
        let mut index = head;
        // Bounded by the entries of one list.
        while index != NIL {
            self.in_wheel -= 1;
            index = self.entries[index as usize].next;
        }
        head
    }

    /// The lowest occupied level's next slot and the tick it starts at. Entries in a level
    /// above 0 are beyond the current level-0 window by construction, so the lowest occupied
    /// level holds the earliest deadline.
    fn next_expiration(&self) -> Option<(usize, usize, u64)> {
        for level in 0..LEVELS {
            let occupied = self.occupied[level];
            if occupied == 0 {
                continue;
            }
            let shift = level as u32 * LEVEL_BITS;
            let slot_span = 1u64 << shift;
            let level_span = slot_span << LEVEL_BITS;
            let now_slot = ((self.elapsed >> shift) as usize) & (SLOTS - 1);
            let distance = occupied.rotate_right(now_slot as u32).trailing_zeros() as usize;
            let slot = (now_slot + distance) & (SLOTS - 1);
            let level_start = self.elapsed & !(level_span.wrapping_sub(1));
            let mut deadline = level_start + slot as u64 * slot_span;
            if deadline < self.elapsed && slot < now_slot {
                deadline += level_span;
            }
            return Some((level, slot, deadline.max(self.elapsed)));
        }
        // Overflow entries are due no earlier than the end of the current rotation; every
        // wheel entry is due before it, so overflow is only next when the wheel is empty.
        (self.overflow_head != NIL)
            .then(|| (OVERFLOW, 0, (self.elapsed | (WHEEL_SPAN - 1)).saturating_add(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sets timers at many deadlines (one beyond the wheel span), advances in uneven steps
    /// and jumps, and checks each fires exactly once, never before its deadline, at the
    /// first advance that reaches it.
    #[test]
    fn fires_each_timer_once_on_time() {
        let deadlines: Vec<u64> = (0..2000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40)
            .chain([0, 1, 63, 64, 65, 4095, 4096, 262_143, 262_144, WHEEL_SPAN + 5])
            .collect();
        let mut timers = Timers::new(deadlines.len() as u32, 1, 1);
        let mut ids = Vec::new();
        for (i, &when) in deadlines.iter().enumerate() {
            ids.push((timers.set(0, 0, when, i as u64).expect("room"), when));
        }
        assert_eq!(timers.set(0, 0, 5, 0), Err(TimerError::PoolExhausted));
        let mut fired_at = vec![None; deadlines.len()];
        let mut nows = Vec::new();
        let mut now = 0;
        let mut step = 1;
        // Bounded: every iteration moves time forward, and jumps to the next deadline
        // when it is further than the step (as the simulator does when idle).
        while !timers.is_idle() || (0..1).any(|_| timers.has_fired(0)) {
            timers.advance(now, |expired| {
                let Expired::User { .. } = expired else { panic!("no calls here") };
            });
            nows.push(now);
            while let Some(Fired::User { tag, .. }) = timers.pop_fired(0) {
                assert!(fired_at[tag as usize].is_none(), "timer {tag} fired twice");
                fired_at[tag as usize] = Some(now);
            }
            let next = timers.next_deadline();
            assert!(next.is_none_or(|next| next > now), "a due timer was left in the wheel");
            step = (step * 7 + 3) % 100_000 + 1;
            now = (now + step).max(next.unwrap_or(0));
        }
        for (index, &(_, when)) in ids.iter().enumerate() {
            let at = fired_at[index].unwrap_or_else(|| panic!("timer at {when} never fired"));
            let first_reaching = nows.iter().copied().find(|&n| n >= when);
            assert_eq!(Some(at), first_reaching, "timer due at {when}");
        }
        assert_eq!(timers.free_count(), deadlines.len() as u32);
    }

    /// A cancelled timer never fires, in the wheel or already fired; a stale id cancels
    /// nothing; an owner's teardown frees all its timers.
    #[test]
    fn cancel_and_clear() {
        let mut timers = Timers::new(4, 2, 1);
        let a = timers.set(0, 0, 10, 1).unwrap();
        let b = timers.set(0, 0, 20, 2).unwrap();
        let c = timers.set(1, 0, 10, 3).unwrap();
        assert!(timers.cancel(0, a));
        assert!(!timers.cancel(0, a), "already cancelled");
        assert!(!timers.cancel(0, c), "owned by another");
        timers.advance(30, |_| {});
        assert!(timers.has_fired(0) && timers.has_fired(1));
        assert!(timers.cancel(0, b), "fired but undelivered");
        assert_eq!(timers.pop_fired(0), None);
        timers.set(1, 30, 100, 4).unwrap();
        timers.clear_owner(1, |_| {});
        assert_eq!(timers.pop_fired(1), None);
        assert_eq!(timers.free_count(), 4);
        assert!(timers.is_idle());
        let reused = timers.set(0, 30, 40, 5).unwrap();
        assert_ne!(reused, a, "a reused entry has a new generation");
    }

    /// Call timeouts use their owner's own entry and are reported, not queued.
    #[test]
    fn call_timeouts() {
        let mut timers = Timers::new(0, 3, 1_000);
        assert_eq!(timers.tick_at_or_after(1_500), 2);
        timers.set_call(2, 0, 5);
        timers.set_call(1, 0, 9);
        timers.cancel_call(1);
        let mut expired = Vec::new();
        timers.advance(100, |e| expired.push(e));
        assert_eq!(expired, [Expired::Call(CallExpired { owner: 2 })]);
        timers.set_call(2, 100, 200);
        assert_eq!(timers.next_deadline().map(|d| d <= 200), Some(true));
    }
}
