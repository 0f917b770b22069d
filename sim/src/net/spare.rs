//! Spare byte vectors: the network recycles the vectors that carry datagrams, segments and
//! received bytes, so a steady workload stops allocating once the pool is warm.
//!
//! Bounded: at most [`SPARE_VECS_MAX`] vectors are kept, each of at most
//! [`SPARE_VEC_BYTES_MAX`] bytes of capacity; anything beyond is freed.

/// Most vectors kept for reuse.
pub const SPARE_VECS_MAX: usize = 1024;
/// Largest capacity a kept vector may have (larger ones are freed, so a rare jumbo
/// datagram does not pin its memory).
pub const SPARE_VEC_BYTES_MAX: usize = 64 * 1024;

/// The pool.
#[derive(Debug, Default)]
pub(super) struct Spare {
    vecs: Vec<Vec<u8>>,
}

impl Spare {
    /// An empty vector, reused when one is kept.
    pub fn take(&mut self) -> Vec<u8> {
        self.vecs.pop().unwrap_or_default()
    }

    /// A vector holding a copy of `bytes`.
    pub fn copy(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut vec = self.take();
        vec.extend_from_slice(bytes);
        vec
    }

    /// Keeps `vec` for reuse if the pool has room and it is not too large.
    pub fn give(&mut self, mut vec: Vec<u8>) {
        let capacity = vec.capacity();
        if capacity > 0 && capacity <= SPARE_VEC_BYTES_MAX && self.vecs.len() < SPARE_VECS_MAX {
            vec.clear();
            self.vecs.push(vec);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_kept_vectors_and_bounds_what_it_keeps() {
        let mut spare = Spare::default();
        let vec = spare.copy(b"hello");
        assert_eq!(vec, b"hello");
        let pointer = vec.as_ptr();
        spare.give(vec);
        let again = spare.copy(b"hi");
        assert_eq!(again, b"hi");
        assert_eq!(again.as_ptr(), pointer, "the kept vector is reused");

        spare.give(Vec::with_capacity(SPARE_VEC_BYTES_MAX + 1));
        spare.give(Vec::new());
        assert!(spare.vecs.is_empty(), "too large or empty vectors are not kept");
        for _ in 0..SPARE_VECS_MAX + 10 {
            spare.give(Vec::with_capacity(8));
        }
        assert_eq!(spare.vecs.len(), SPARE_VECS_MAX);
    }
}
