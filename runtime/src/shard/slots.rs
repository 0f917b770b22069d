//! Slot metadata of one isolate type: generations, states, mailboxes, the free list, the
//! ready and yielded queues, and what each slot keeps (spawn arguments, group, call, I/O).
//!
//! This is the table, not what moves a slot through it: routing, dispatch, calls, timers,
//! I/O and teardown change slots from their own files. Nothing here counts or traces.

use core::any::TypeId;

use super::calls::{CALL_IDLE, CallSlot};
use super::io_table::{IO_IDLE, IoSlot};
use crate::footprint::array_bytes;
use crate::handle::{Handle, ShardId};
use crate::pool::Mailbox;
use crate::ring::Ring;
use crate::spec::TypeEntry;
use crate::supervision::NO_GROUP;

/// Lifecycle of one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum SlotState {
    /// On the free list.
    Free,
    /// Spawned; `init` has not run yet. Messages may already queue.
    Reserved,
    /// Its `init` or handler is on the stack.
    Running,
    /// Returned `Receive`: runs when something is delivered.
    Waiting,
    /// Returned `Yield`: runs next tick.
    Runnable,
    /// Made a call: runs when the reply or the timeout arrives; messages queue meanwhile.
    WaitingReply,
    /// Submitted I/O: runs when it completes; messages and timers wait meanwhile.
    WaitingIo,
    /// Reached the last generation; never used again.
    Retired,
}

impl SlotState {
    /// Whether a handle with the slot's current generation names a live isolate.
    pub(super) fn is_live(self) -> bool {
        !matches!(self, SlotState::Free | SlotState::Retired)
    }
}

/// Bits of `SlotMeta::pending`: what a slot has to be dispatched with besides its mailbox,
/// kept in one byte so the common dispatch path checks one value.
pub(super) mod pending {
    /// A call resolution (reply at the mailbox head, or a failure) awaits delivery.
    pub(in crate::shard) const RESOLVED: u8 = 1 << 0;
    /// An I/O completion awaits delivery.
    pub(in crate::shard) const IO: u8 = 1 << 1;
    /// A timer may have fired for the slot (its fired list is checked when delivering).
    pub(in crate::shard) const FIRED: u8 = 1 << 2;
    /// The shard's shutdown notice awaits delivery (`Tag::SHUTDOWN`, once per isolate).
    pub(in crate::shard) const SHUTDOWN: u8 = 1 << 3;
}

/// The hot metadata of one slot: everything a send, a wake-up and a dispatch look at, kept
/// together so that they cost one bounds check and one cache line rather than one of each
/// per field.
#[derive(Clone, Copy, Debug)]
pub(super) struct SlotMeta {
    pub(super) generation: u32,
    pub(super) state: SlotState,
    /// Whether the slot is in `ready` or `yielded` (each slot at most once).
    pub(super) queued: bool,
    /// `pending` bits: what the slot has to be dispatched with besides its mailbox.
    pub(super) pending: u8,
    pub(super) mailbox: Mailbox,
}

impl SlotMeta {
    /// Whether the slot has something to be dispatched with, given its state.
    #[inline]
    pub(super) fn deliverable(&self) -> bool {
        match self.state {
            SlotState::Runnable => true,
            SlotState::Waiting => self.pending != 0 || !self.mailbox.is_empty(),
            SlotState::WaitingReply => self.pending & pending::RESOLVED != 0,
            SlotState::WaitingIo => self.pending & pending::IO != 0,
            SlotState::Free | SlotState::Reserved | SlotState::Running | SlotState::Retired => {
                false
            }
        }
    }

    /// Queues the slot (`index`) on `ready` unless it is queued already.
    #[inline]
    pub(super) fn wake(&mut self, ready: &mut Ring<u32>, index: usize) {
        if !self.queued {
            self.queued = true;
            // Each slot is queued at most once, and the ring holds every slot.
            ready.push(index as u32).expect("ready queue holds every slot");
        }
    }
}

const SLOT_FREE: SlotMeta = SlotMeta {
    generation: 1,
    state: SlotState::Free,
    queued: false,
    pending: 0,
    mailbox: Mailbox::EMPTY,
};

/// Metadata of every slot of one isolate type.
#[derive(Debug)]
pub(crate) struct TypeSlots {
    pub(crate) isolate: TypeId,
    pub(super) args_size: usize,
    pub(super) mailbox_capacity: u32,
    /// Dispatches per tick.
    pub(super) budget: u32,
    /// Dispatches left in the current tick.
    pub(crate) budget_left: u32,
    /// Dense key of slot 0 among every slot of the shard (timers are owned by keys).
    pub(super) key_base: u32,
    /// What a send, a wake-up and a dispatch read, one entry per slot.
    pub(super) meta: Box<[SlotMeta]>,
    pub(super) args: Box<[u8]>,
    pub(super) group: Box<[u16]>,
    pub(super) call: Box<[CallSlot]>,
    pub(super) io: Box<[IoSlot]>,
    /// I/O buffers each isolate holds (so teardown scans the pool only when needed).
    pub(super) buffers_held: Box<[u16]>,
    pub(super) free: Box<[u32]>,
    pub(super) free_len: u32,
    /// Slots retired at the last generation (never free nor live again).
    pub(super) retired: u32,
    pub(crate) ready: Ring<u32>,
    pub(crate) yielded: Ring<u32>,
}

impl TypeSlots {
    pub(super) fn new(entry: &TypeEntry, key_base: u32) -> TypeSlots {
        let config = entry.config;
        let slot_count = config.slot_count as usize;
        TypeSlots {
            isolate: entry.isolate,
            args_size: entry.args_size,
            mailbox_capacity: config.mailbox_capacity,
            budget: config.budget_weight * crate::limits::DISPATCH_QUOTA_PER_WEIGHT,
            budget_left: 0,
            key_base,
            meta: vec![SLOT_FREE; slot_count].into_boxed_slice(),
            args: vec![0; slot_count * entry.args_size].into_boxed_slice(),
            group: vec![NO_GROUP; slot_count].into_boxed_slice(),
            call: vec![CALL_IDLE; slot_count].into_boxed_slice(),
            io: vec![IO_IDLE; slot_count].into_boxed_slice(),
            buffers_held: vec![0; slot_count].into_boxed_slice(),
            // Reversed so that slot 0 is handed out first.
            free: (0..config.slot_count).rev().collect(),
            free_len: config.slot_count,
            retired: 0,
            ready: Ring::new(slot_count, 0),
            yielded: Ring::new(slot_count, 0),
        }
    }

    /// Bytes `new(entry, _)` allocates: per slot its metadata, spawn arguments, group,
    /// call and I/O state, buffer count, a free-list entry and room in both queues.
    pub(super) fn bytes_for(entry: &TypeEntry) -> u64 {
        let slot_count = entry.config.slot_count;
        let per_slot = size_of::<SlotMeta>()
            + entry.args_size
            + size_of::<u16>()
            + size_of::<CallSlot>()
            + size_of::<IoSlot>()
            + size_of::<u16>()
            + size_of::<u32>();
        array_bytes(u64::from(slot_count), per_slot)
            .saturating_add(Ring::<u32>::bytes_for(slot_count as usize).saturating_mul(2))
    }

    /// Moves free slot `wanted`, if it is on the free list, to its top (the next handed
    /// out), keeping the order of the others. Bounded by the list; rare (a restart whose
    /// old slot is not the latest freed).
    #[inline(never)]
    pub(super) fn prefer_free(&mut self, wanted: usize) {
        let len = self.free_len as usize;
        if let Some(position) = self.free[..len].iter().rposition(|&s| s as usize == wanted) {
            self.free.copy_within(position + 1..len, position);
            self.free[len - 1] = wanted as u32;
        }
    }

    /// Rebuilds the free list from the slot states, as at boot: every free slot, the lowest
    /// handed out first (a shard restart then reserves the k-th static child of the type in
    /// slot k, unless a lower slot was retired). O(slots).
    pub(super) fn reset_free(&mut self) {
        let free = self.meta.iter().enumerate().rev().filter(|(_, m)| m.state == SlotState::Free);
        let mut len = 0;
        for (slot, _) in free {
            self.free[len] = slot as u32;
            len += 1;
        }
        // At most `slot_count` entries, which fits in u32.
        self.free_len = len as u32;
    }

    /// Live (or reserved) slots: neither on the free list nor retired. O(1).
    pub(super) fn live(&self) -> usize {
        self.meta.len() - self.free_len as usize - self.retired as usize
    }

    /// Slots of the type.
    pub(crate) fn slot_count(&self) -> usize {
        self.meta.len()
    }

    /// Spawn arguments kept for `slot`.
    pub(crate) fn args(&self, slot: usize) -> &[u8] {
        &self.args[slot * self.args_size..(slot + 1) * self.args_size]
    }

    /// Queues `slot` to run this tick unless it is queued already.
    #[inline]
    pub(super) fn wake(&mut self, slot: usize) {
        self.meta[slot].wake(&mut self.ready, slot);
    }

    /// Moves isolates that yielded last tick to the ready queue (usually none; otherwise
    /// the ready queue is usually empty at the start of a tick, so the two rings just swap).
    #[inline]
    pub(super) fn promote_yielded(&mut self) {
        if self.yielded.is_empty() {
            return;
        }
        if self.ready.is_empty() {
            core::mem::swap(&mut self.ready, &mut self.yielded);
            return;
        }
        // Bounded: the yielded ring holds at most `slot_count` entries.
        while let Some(slot) = self.yielded.pop() {
            self.ready.push(slot).expect("ready queue holds every slot");
        }
    }

    /// Takes the next slot to dispatch off the ready queue.
    #[inline]
    pub(crate) fn pop_ready(&mut self) -> Option<usize> {
        let slot = self.ready.pop()? as usize;
        self.meta[slot].queued = false;
        Some(slot)
    }

    #[inline]
    pub(crate) fn has_work(&self) -> bool {
        !self.ready.is_empty() || !self.yielded.is_empty()
    }
}

/// The handle of the current incarnation in a slot.
#[inline]
pub(super) fn handle_in(
    types: &[TypeSlots],
    shard: ShardId,
    type_index: usize,
    slot: usize,
) -> Handle {
    // Type and slot indices are bounded by the validated spec.
    Handle::new(shard, type_index as u8, slot as u32, types[type_index].meta[slot].generation)
}

/// The (type, slot) a timer owner key names.
pub(super) fn slot_of_key(types: &[TypeSlots], key: u32) -> (usize, usize) {
    let type_index = types.partition_point(|slots| slots.key_base <= key) - 1;
    (type_index, (key - types[type_index].key_base) as usize)
}
