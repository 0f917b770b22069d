//! The memory behind a shard's I/O buffers, and the loans that hand one buffer to an
//! operation (and through it to a backend or a kernel) until its completion is reaped.
//!
//! This is the one module of the core with `unsafe` code. The region is one allocation
//! reached only through a raw base pointer: no reference to the whole region ever exists,
//! so a slice of one buffer never overlaps a slice of another, and a kernel writing into a
//! lent buffer through its pointer can never alias a reference the shard holds. Which
//! buffer may be touched by whom is `IoBuffers`' bookkeeping (`super::IoBuffers`); this
//! module only turns "buffer `i`, which you own" into a slice, and keeps the memory alive
//! for as long as any loan of it exists (the region is reference counted by its loans),
//! so neither the teardown of an isolate nor the drop of the shard frees a buffer that a
//! backend still holds.
//!
//! Not the free list, generations or holders (`IoBuffers`), and no I/O.

use core::ptr::NonNull;
use std::alloc::{Layout, alloc_zeroed, dealloc, handle_alloc_error};
use std::rc::Rc;

/// `count` buffers of `buffer_size` bytes in one zeroed allocation.
#[derive(Debug)]
pub(crate) struct Region {
    /// The first byte. Dangling (and never dereferenced) when the region is empty.
    base: NonNull<u8>,
    buffer_size: usize,
    count: usize,
}

impl Region {
    /// Allocates the region; the spec bounds `count * buffer_size`.
    pub(crate) fn new(count: usize, buffer_size: usize) -> Region {
        let bytes = count.checked_mul(buffer_size).expect("the spec bounds the buffer region");
        let base = if bytes == 0 {
            NonNull::dangling()
        } else {
            let layout = Layout::from_size_align(bytes, 1).expect("a byte array layout");
            // SAFETY: `layout` has a non-zero size, checked just above.
            let pointer = unsafe { alloc_zeroed(layout) };
            NonNull::new(pointer).unwrap_or_else(|| handle_alloc_error(layout))
        };
        Region { base, buffer_size, count }
    }

    pub(crate) fn buffer_size(&self) -> usize {
        self.buffer_size
    }

    /// The first byte of buffer `index`.
    fn start(&self, index: usize) -> *mut u8 {
        assert!(index < self.count, "buffer {index} of {}", self.count);
        // SAFETY: `index < count`, so the offset stays inside the allocation (or is 0 for
        // an empty buffer size, where the pointer is never dereferenced).
        unsafe { self.base.as_ptr().add(index * self.buffer_size) }
    }

    /// Buffer `index`, read-only.
    ///
    /// # Safety
    /// The caller owns buffer `index` for the returned lifetime: no loan of it exists and
    /// no mutable slice of it is alive.
    pub(crate) unsafe fn slice(&self, index: usize) -> &[u8] {
        // SAFETY: the pointer is in bounds (see `start`), the bytes were initialised by
        // `alloc_zeroed`, and the caller guarantees nothing writes them meanwhile.
        unsafe { core::slice::from_raw_parts(self.start(index), self.buffer_size) }
    }

    /// Buffer `index`, writable.
    ///
    /// # Safety
    /// The caller owns buffer `index` exclusively for the returned lifetime: no loan of it
    /// exists and no other slice of it is alive.
    #[expect(clippy::mut_from_ref, reason = "disjoint buffers of one region, owned by index")]
    pub(crate) unsafe fn slice_mut(&self, index: usize) -> &mut [u8] {
        // SAFETY: as for `slice`, and the caller guarantees exclusivity.
        unsafe { core::slice::from_raw_parts_mut(self.start(index), self.buffer_size) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        let bytes = self.count * self.buffer_size;
        if bytes == 0 {
            return;
        }
        let layout = Layout::from_size_align(bytes, 1).expect("the layout `new` used");
        // SAFETY: allocated in `new` with this layout; dropped once, when the last owner
        // (the shard's `IoBuffers` or a loan) goes, so nobody can reach the bytes after.
        unsafe { dealloc(self.base.as_ptr(), layout) }
    }
}

/// One buffer lent to an I/O operation: the operation (its backend, a kernel) owns the
/// bytes from submission until the completion hands the loan back to the shard, which
/// cannot touch them meanwhile. The loan keeps the shard's buffer memory alive, so a
/// backend may hold it past the shard's own end.
///
/// An input loan (data to send or write, a path) is read-only; a receive loan is where
/// received bytes go. A kernel backend takes the raw pointer (`as_ptr`, `as_mut_ptr`) and
/// must hand the loan back only after the kernel let go of it.
#[derive(Debug)]
pub struct LentBuffer {
    region: Rc<Region>,
    index: u16,
    generation: u16,
    writable: bool,
}

impl LentBuffer {
    /// Lends buffer `index`.
    ///
    /// # Safety
    /// The caller (`IoBuffers`) marks the buffer lent and produces no slice of it until
    /// the loan comes back: from now on the loan is the buffer's only owner.
    pub(crate) unsafe fn new(
        region: &Rc<Region>,
        index: u16,
        generation: u16,
        writable: bool,
    ) -> LentBuffer {
        LentBuffer { region: Rc::clone(region), index, generation, writable }
    }

    /// The buffer's bytes (all of it; the operation says how many count).
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the loan is the buffer's only owner (see `new`), and `&self` keeps any
        // mutable access through this loan out for the slice's lifetime.
        unsafe { self.region.slice(usize::from(self.index)) }
    }

    /// The buffer's bytes, to receive into; `None` for an input loan, which the operation
    /// may only read.
    pub fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        if !self.writable {
            return None;
        }
        // SAFETY: the loan is the buffer's only owner and `&mut self` is exclusive.
        Some(unsafe { self.region.slice_mut(usize::from(self.index)) })
    }

    /// The first byte, for a kernel that reads it (valid while the loan lives).
    pub fn as_ptr(&self) -> *const u8 {
        self.region.start(usize::from(self.index))
    }

    /// The first byte, for a kernel that writes it; `None` for an input loan.
    pub fn as_mut_ptr(&mut self) -> Option<*mut u8> {
        self.writable.then(|| self.region.start(usize::from(self.index)))
    }

    /// Bytes in the buffer.
    pub fn len(&self) -> usize {
        self.region.buffer_size()
    }

    /// Whether the buffer has no bytes (never, for a valid spec).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Which buffer of which region, to hand the loan back.
    pub(crate) fn parts(&self) -> (&Rc<Region>, u16, u16) {
        (&self.region, self.index, self.generation)
    }
}
