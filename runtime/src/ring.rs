//! A bounded FIFO over a boxed slice, allocated once.
//!
//! Used for ready queues, pending inits and test transports. It never grows: a push into a
//! full ring returns the value back. It is not a cross-thread ring (see the production
//! backend for that).

use crate::footprint::array_bytes;

/// A fixed-capacity FIFO.
#[derive(Debug)]
pub(crate) struct Ring<T> {
    buffer: Box<[T]>,
    head: usize,
    len: usize,
}

impl<T: Copy> Ring<T> {
    /// A ring of `capacity` entries, each initialised to `fill`.
    pub(crate) fn new(capacity: usize, fill: T) -> Ring<T> {
        Ring { buffer: vec![fill; capacity].into_boxed_slice(), head: 0, len: 0 }
    }

    /// Bytes `new(capacity, _)` allocates.
    pub(crate) fn bytes_for(capacity: usize) -> u64 {
        array_bytes(capacity as u64, size_of::<T>())
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Values held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Forgets every value.
    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.len == self.buffer.len()
    }

    /// Appends `value`, or hands it back if the ring is full.
    #[inline]
    pub(crate) fn push(&mut self, value: T) -> Result<(), T> {
        if self.len == self.buffer.len() {
            return Err(value);
        }
        let mut index = self.head + self.len;
        if index >= self.buffer.len() {
            index -= self.buffer.len();
        }
        self.buffer[index] = value;
        self.len += 1;
        Ok(())
    }

    /// Removes the oldest value.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let value = self.buffer[self.head];
        self.head += 1;
        if self.head == self.buffer.len() {
            self.head = 0;
        }
        self.len -= 1;
        Some(value)
    }

    /// The oldest value, left in place.
    pub(crate) fn peek(&self) -> Option<&T> {
        if self.len == 0 { None } else { Some(&self.buffer[self.head]) }
    }
}

impl<T: Copy + PartialEq> Ring<T> {
    /// Removes the oldest value equal to `value`, keeping the others in order; whether one
    /// was there. O(len): for rare removals from the middle, not for the FIFO path.
    pub(crate) fn remove(&mut self, value: &T) -> bool {
        let capacity = self.buffer.len();
        let at = |offset: usize| (self.head + offset) % capacity;
        let Some(found) = (0..self.len).find(|&offset| self.buffer[at(offset)] == *value) else {
            return false;
        };
        for offset in found..self.len - 1 {
            self.buffer[at(offset)] = self.buffer[at(offset + 1)];
        }
        self.len -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Ring;

    /// FIFO order holds across wrap-around, and a full ring refuses without losing data.
    #[test]
    fn fifo_and_bounded() {
        let mut ring = Ring::new(3, 0u32);
        for round in 0..5u32 {
            assert_eq!(ring.push(round * 10), Ok(()));
            assert_eq!(ring.push(round * 10 + 1), Ok(()));
            assert_eq!(ring.push(round * 10 + 2), Ok(()));
            assert_eq!(ring.push(99), Err(99));
            assert_eq!(ring.peek(), Some(&(round * 10)));
            assert_eq!(ring.pop(), Some(round * 10));
            assert_eq!(ring.pop(), Some(round * 10 + 1));
            assert_eq!(ring.push(7), Ok(()));
            assert_eq!(ring.pop(), Some(round * 10 + 2));
            assert_eq!(ring.pop(), Some(7));
            assert_eq!(ring.pop(), None);
            assert!(ring.is_empty());
        }
    }

    /// `remove` takes out the oldest equal value from anywhere in the ring (across the
    /// wrap-around too), keeps the rest in FIFO order and frees its place; a value that is
    /// not there changes nothing.
    #[test]
    fn remove_keeps_order() {
        let mut ring = Ring::new(4, 0u32);
        for value in [9, 9, 1, 2] {
            ring.push(value).expect("room");
        }
        assert_eq!((ring.pop(), ring.pop()), (Some(9), Some(9)));
        for value in [3, 2] {
            ring.push(value).expect("room: the head moved, so these wrap around");
        }
        assert!(ring.remove(&2), "the oldest 2, before the wrap");
        assert!(!ring.remove(&7));
        assert_eq!(ring.len(), 3);
        ring.push(4).expect("the removed value's place is free");
        assert!(ring.is_full());
        assert!(ring.remove(&4), "the newest value");
        assert!(ring.remove(&1), "the oldest value");
        let drained: Vec<u32> = core::iter::from_fn(|| ring.pop()).collect();
        assert_eq!(drained, [3, 2]);
        assert!(!ring.remove(&3), "an empty ring holds nothing");
    }
}
