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
}
