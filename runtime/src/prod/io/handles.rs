//! The shard's handle table: which [`IoHandle`] names which open socket or file.
//!
//! A bounded table allocated at boot (`RuntimeConfig::io_handles_max` entries). A handle
//! packs the entry's index (plus one, low 16 bits, so no handle is `IoHandle::NONE`) and the
//! entry's generation (high 16 bits), bumped each time the entry is freed: a handle kept
//! after its close names nothing, even once the entry (and the kernel's descriptor number)
//! is reused, until the generation wraps after 65,536 reuses of that one entry. A full table
//! refuses the insert and hands the value back, so the caller can close what it opened.
//!
//! Generic over the value so that its logic is tested without descriptors (and under
//! Miri); the driver stores its open descriptors here.

use crate::io::IoHandle;

/// Most entries a handle table can have: what the 16 bits of a handle's index hold.
pub const IO_HANDLES_MAX_LIMIT: u32 = (1 << 16) - 1;

/// A bounded, generational table of open handles. See the module documentation.
#[derive(Debug)]
pub(crate) struct HandleTable<T> {
    values: Box<[Option<T>]>,
    generation: Box<[u16]>,
    /// Free entries, used from the end.
    free: Box<[u16]>,
    free_len: usize,
}

impl<T> HandleTable<T> {
    /// A table of `max` entries; `max` is validated by the runtime's configuration.
    pub(crate) fn new(max: u32) -> HandleTable<T> {
        assert!(max <= IO_HANDLES_MAX_LIMIT, "the configuration bounds the handle table");
        // `max` fits in u16 (asserted).
        let count = max as u16;
        HandleTable {
            values: (0..count).map(|_| None).collect(),
            generation: vec![0; usize::from(count)].into_boxed_slice(),
            free: (0..count).rev().collect(),
            free_len: usize::from(count),
        }
    }

    /// Entries in all.
    pub(crate) fn capacity(&self) -> usize {
        self.values.len()
    }

    /// Entries in use.
    pub(crate) fn in_use(&self) -> usize {
        self.values.len() - self.free_len
    }

    /// Whether an insert would be refused.
    pub(crate) fn is_full(&self) -> bool {
        self.free_len == 0
    }

    /// Stores `value` under a new handle; `Err(value)` when the table is full.
    pub(crate) fn insert(&mut self, value: T) -> Result<IoHandle, T> {
        if self.free_len == 0 {
            return Err(value);
        }
        self.free_len -= 1;
        let index = self.free[self.free_len];
        self.values[usize::from(index)] = Some(value);
        Ok(Self::handle(index, self.generation[usize::from(index)]))
    }

    /// The value `handle` names, if it is in use with that generation.
    pub(crate) fn get(&self, handle: IoHandle) -> Option<&T> {
        let index = self.index_of(handle)?;
        self.values[index].as_ref()
    }

    /// The value `handle` names, to change it.
    pub(crate) fn get_mut(&mut self, handle: IoHandle) -> Option<&mut T> {
        let index = self.index_of(handle)?;
        self.values[index].as_mut()
    }

    /// Frees the entry `handle` names and returns its value; its generation moves on, so
    /// `handle` names nothing from now on.
    pub(crate) fn remove(&mut self, handle: IoHandle) -> Option<T> {
        let index = self.index_of(handle)?;
        let value = self.values[index].take()?;
        self.generation[index] = self.generation[index].wrapping_add(1);
        // The index came from a u16 handle field.
        self.free[self.free_len] = index as u16;
        self.free_len += 1;
        Some(value)
    }

    fn handle(index: u16, generation: u16) -> IoHandle {
        IoHandle::from_raw((u32::from(generation) << 16) | (u32::from(index) + 1))
    }

    /// The entry a handle names if its generation is the entry's.
    fn index_of(&self, handle: IoHandle) -> Option<usize> {
        let raw = handle.to_raw();
        let index = usize::from((raw & 0xffff) as u16).checked_sub(1)?;
        let generation = (raw >> 16) as u16;
        (index < self.values.len() && self.generation[index] == generation).then_some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inserts until full, with a refusal that hands the value back; lookups and removal
    /// by handle; `NONE` and foreign bits name nothing.
    #[test]
    fn a_bounded_table_refuses_when_full() {
        let mut table = HandleTable::new(2);
        let a = table.insert("a").unwrap();
        let b = table.insert("b").unwrap();
        assert_ne!(a, IoHandle::NONE);
        assert_ne!(a, b);
        assert!(table.is_full());
        assert_eq!(table.insert("c"), Err("c"), "the value comes back to be closed");
        assert_eq!((table.in_use(), table.capacity()), (2, 2));
        assert_eq!(table.get(a), Some(&"a"));
        *table.get_mut(b).unwrap() = "B";
        assert_eq!(table.remove(b), Some("B"));
        assert_eq!(table.in_use(), 1);
        assert_eq!(table.get(IoHandle::NONE), None);
        assert_eq!(table.get(IoHandle::from_raw(0xffff)), None, "an index past the table");
        assert_eq!(table.remove(b), None, "removed once");
        assert_eq!(table.get(a), Some(&"a"), "the other entry is untouched");
    }

    /// A handle kept after its removal never reaches the entry's next value, through many
    /// reuses of the same entry.
    #[test]
    fn a_stale_handle_never_names_the_reused_entry() {
        let mut table = HandleTable::new(1);
        let first = table.insert(0u32).unwrap();
        table.remove(first);
        let mut previous = first;
        for value in 1..1000u32 {
            let handle = table.insert(value).unwrap();
            assert_ne!(handle, previous);
            assert_eq!(table.get(first), None, "the first handle stays stale");
            assert_eq!(table.get(previous), None);
            assert_eq!(table.get(handle), Some(&value));
            table.remove(handle);
            previous = handle;
        }
    }

    /// The generation wraps without ever producing `NONE`.
    #[test]
    #[cfg_attr(miri, ignore = "65,538 rounds: minutes under Miri")]
    fn generations_wrap_without_naming_nothing() {
        let mut table = HandleTable::new(1);
        for _ in 0..=u32::from(u16::MAX) + 2 {
            let handle = table.insert(()).unwrap();
            assert_ne!(handle, IoHandle::NONE);
            table.remove(handle);
        }
    }

    /// The largest table the handle layout holds.
    #[test]
    #[cfg_attr(miri, ignore = "65,535 entries: minutes under Miri")]
    fn the_largest_table_names_every_entry() {
        let mut table = HandleTable::new(IO_HANDLES_MAX_LIMIT);
        let mut last = IoHandle::NONE;
        while let Ok(handle) = table.insert(()) {
            last = handle;
        }
        assert_eq!(table.in_use(), IO_HANDLES_MAX_LIMIT as usize);
        assert_eq!(last.to_raw() & 0xffff, IO_HANDLES_MAX_LIMIT);
        assert!(table.get(last).is_some());
    }
}
