//! A growable first-in first-out ring: O(1) push at the back, pop at the front and access
//! by position, with a power-of-two capacity so positions wrap with a mask.
//!
//! Items are named by absolute positions that only grow: the front is at `start`, the
//! back at `end - 1`, so a caller that numbers its items consecutively (message sequence
//! numbers) can use its own numbers as positions. The ring grows (doubling) only when full
//! and never shrinks, so its memory follows the most items it ever held at once. It is not
//! a general deque: nothing is pushed at the front.

/// Capacity of a ring's first allocation.
const CAPACITY_MIN: usize = 8;

const _: () = assert!(CAPACITY_MIN.is_power_of_two());

/// A first-in first-out ring of `T`.
#[derive(Clone, Debug, Default)]
pub struct Ring<T> {
    /// The storage; its length is 0 or a power of two. The item at position `p` is at
    /// `items[p mod items.len()]`.
    items: Vec<T>,
    /// Position of the front item.
    start: u64,
    /// Position after the back item.
    end: u64,
}

impl<T: Copy + Default> Ring<T> {
    /// An empty ring whose first item will be at position `start`; it allocates on its
    /// first push.
    pub const fn starting_at(start: u64) -> Ring<T> {
        Ring { items: Vec::new(), start, end: start }
    }

    /// Position of the front item (of the next item pushed, when empty).
    #[inline(always)]
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Position after the back item: where the next push goes.
    #[inline(always)]
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Items held.
    #[inline(always)]
    pub fn len(&self) -> usize {
        // `start <= end`, and the difference is at most `items.len()`, a `usize`.
        self.end.wrapping_sub(self.start) as usize
    }

    /// Whether the ring holds `position`: one comparison, as positions before `start` wrap
    /// to above `len`.
    #[inline(always)]
    fn holds(&self, position: u64) -> bool {
        position.wrapping_sub(self.start) < self.end.wrapping_sub(self.start)
    }

    /// Where position `position` is in `items`. Positions wrap modulo the power-of-two
    /// capacity, which `as usize` truncation and the mask respect.
    #[inline(always)]
    fn index(&self, position: u64) -> usize {
        position as usize & self.items.len().wrapping_sub(1)
    }

    /// The item at `position`, if the ring holds it.
    #[inline(always)]
    pub fn get(&self, position: u64) -> Option<&T> {
        if !self.holds(position) {
            return None;
        }
        self.items.get(self.index(position))
    }

    /// The item at `position`, if the ring holds it.
    #[inline(always)]
    pub fn get_mut(&mut self, position: u64) -> Option<&mut T> {
        if !self.holds(position) {
            return None;
        }
        let index = self.index(position);
        self.items.get_mut(index)
    }

    /// The front item, if any.
    #[inline(always)]
    pub fn front(&self) -> Option<&T> {
        if self.start >= self.end {
            return None;
        }
        self.items.get(self.index(self.start))
    }

    /// Adds `item` at the back (at position `end`), growing the ring if it is full.
    #[inline(always)]
    pub fn push_back(&mut self, item: T) {
        if self.len() == self.items.len() {
            self.grow();
        }
        let index = self.index(self.end);
        self.items[index] = item;
        self.end += 1;
    }

    /// Removes and returns the front item, if any.
    #[inline(always)]
    pub fn pop_front(&mut self) -> Option<T> {
        // `front` checks `start < end`, so this cannot overflow.
        let item = *self.front()?;
        self.start += 1;
        Some(item)
    }

    /// Removes the front items while `done` holds for them (bounded by the ring).
    #[inline(always)]
    pub fn pop_front_while(&mut self, done: impl Fn(T) -> bool) {
        let mask = self.items.len().wrapping_sub(1);
        while self.start < self.end {
            match self.items.get(self.start as usize & mask) {
                Some(&item) if done(item) => self.start += 1,
                _ => break,
            }
        }
    }

    /// Doubles the storage, keeping every item at its position.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        assert_eq!(self.len(), self.items.len(), "a ring grows only when full");
        let capacity = (self.items.len() * 2).max(CAPACITY_MIN);
        let mut grown = Ring { items: vec![T::default(); capacity], start: self.start, end: 0 };
        for position in self.start..self.end {
            let index = grown.index(position);
            grown.items[index] = self.items[self.index(position)];
        }
        grown.end = self.end;
        *self = grown;
        assert!(self.items.len().is_power_of_two());
    }
}

#[cfg(test)]
mod tests {
    use super::Ring;

    /// Pushes and pops across several growths and wraps come out in order, at the
    /// positions they were pushed at, and nothing outside the window is reachable.
    #[test]
    fn first_in_first_out_across_growth_and_wrap() {
        let mut ring = Ring::starting_at(5);
        let (mut pushed, mut popped) = (0u32, 0u32);
        for round in 0..200u32 {
            for _ in 0..round % 7 + 1 {
                assert_eq!(ring.end(), 5 + u64::from(pushed));
                ring.push_back(pushed);
                pushed += 1;
            }
            for item in popped..pushed {
                assert_eq!(ring.get(5 + u64::from(item)), Some(&item));
            }
            assert_eq!(ring.get(ring.end()), None);
            assert_eq!(ring.get(ring.start().wrapping_sub(1)), None);
            for _ in 0..round % 5 {
                match ring.pop_front() {
                    Some(item) => {
                        assert_eq!(item, popped);
                        popped += 1;
                    }
                    None => assert_eq!(popped, pushed),
                }
            }
            assert_eq!(ring.len(), (pushed - popped) as usize);
            assert_eq!(ring.start(), 5 + u64::from(popped));
            assert_eq!(ring.front().copied(), (popped < pushed).then_some(popped));
            if let Some(front) = ring.get_mut(ring.start()) {
                *front = popped;
            }
        }
    }
}
