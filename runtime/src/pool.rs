//! The shard's message pool and the intrusive mailboxes threaded through it.
//!
//! Every envelope queued on a shard lives in one slot of this pool, allocated at boot. A
//! mailbox is a FIFO linked through the pool's `next` array, so enqueueing never allocates.
//! The pool knows nothing of isolates or capacities; the shard enforces those.

use crate::footprint::array_bytes;
use crate::handle::Handle;
use crate::message::Message;

/// End of a list.
const NIL: u32 = u32::MAX;

/// A fixed pool of envelopes with an intrusive free list.
#[derive(Debug)]
pub(crate) struct MessagePool {
    slots: Box<[Message]>,
    /// Next link: in the free list while free, in a mailbox while queued.
    next: Box<[u32]>,
    free_head: u32,
    free_count: u32,
}

impl MessagePool {
    /// A pool of `size` envelopes, all free. `size` is validated by the spec.
    pub(crate) fn new(size: u32, blank: Message) -> MessagePool {
        assert!(size > 0 && size < NIL);
        let next: Box<[u32]> = (1..=size).map(|i| if i == size { NIL } else { i }).collect();
        MessagePool {
            slots: vec![blank; size as usize].into_boxed_slice(),
            next,
            free_head: 0,
            free_count: size,
        }
    }

    /// Bytes `new(size, _)` allocates: an envelope and a link per slot.
    pub(crate) fn bytes_for(size: u32) -> u64 {
        array_bytes(u64::from(size), size_of::<Message>() + size_of::<u32>())
    }

    pub(crate) fn free_count(&self) -> u32 {
        self.free_count
    }

    pub(crate) fn size(&self) -> u32 {
        self.next.len() as u32
    }

    /// Stores `message` in a free slot, or returns `None` if the pool is exhausted.
    #[inline]
    fn alloc(&mut self, message: &Message) -> Option<u32> {
        if self.free_head == NIL {
            debug_assert_eq!(self.free_count, 0);
            return None;
        }
        let index = self.free_head;
        self.free_head = self.next[index as usize];
        self.next[index as usize] = NIL;
        self.free_count -= 1;
        self.slots[index as usize] = *message;
        Some(index)
    }

    #[inline]
    fn release(&mut self, index: u32) {
        self.next[index as usize] = self.free_head;
        self.free_head = index;
        self.free_count += 1;
        debug_assert!(self.free_count <= self.size());
    }
}

/// One isolate's queue: head, tail and length of a list through the pool.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mailbox {
    head: u32,
    tail: u32,
    len: u32,
}

impl Mailbox {
    pub(crate) const EMPTY: Mailbox = Mailbox { head: NIL, tail: NIL, len: 0 };

    #[inline]
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `message` into the pool and appends it. `Err(())` if the pool is exhausted.
    #[inline]
    pub(crate) fn push_back(
        &mut self,
        pool: &mut MessagePool,
        message: &Message,
    ) -> Result<(), ()> {
        let index = pool.alloc(message).ok_or(())?;
        if self.tail == NIL {
            self.head = index;
        } else {
            pool.next[self.tail as usize] = index;
        }
        self.tail = index;
        self.len += 1;
        Ok(())
    }

    /// Sets the destination of the last message (a message to a latest handle, queued for
    /// the incarnation it reached).
    pub(crate) fn readdress_back(&self, pool: &mut MessagePool, destination: Handle) {
        debug_assert!(self.tail != NIL, "a message was just queued");
        pool.slots[self.tail as usize].readdress(destination);
    }

    /// Copies `message` into the pool and puts it first (a reply overtakes older messages).
    pub(crate) fn push_front(
        &mut self,
        pool: &mut MessagePool,
        message: &Message,
    ) -> Result<(), ()> {
        let index = pool.alloc(message).ok_or(())?;
        pool.next[index as usize] = self.head;
        self.head = index;
        if self.tail == NIL {
            self.tail = index;
        }
        self.len += 1;
        Ok(())
    }

    /// Calls `f` with every queued message, oldest first, leaving the mailbox unchanged.
    pub(crate) fn for_each(&self, pool: &MessagePool, mut f: impl FnMut(&Message)) {
        let mut index = self.head;
        // Bounded by the mailbox's length.
        for _ in 0..self.len {
            f(&pool.slots[index as usize]);
            index = pool.next[index as usize];
        }
        debug_assert_eq!(index, NIL, "a mailbox's list is as long as its length");
    }

    /// Copies the oldest message out and frees its slot before the caller dispatches it, so
    /// a crash in the handler loses exactly that one message and the handler can send freely.
    pub(crate) fn pop_front(&mut self, pool: &mut MessagePool) -> Option<Message> {
        let mut message = Message::BLANK;
        self.pop_front_into(pool, &mut message).then_some(message)
    }

    /// `pop_front` writing into `out`, which saves moving a 128-byte value around on the
    /// dispatch path.
    #[inline]
    pub(crate) fn pop_front_into(&mut self, pool: &mut MessagePool, out: &mut Message) -> bool {
        if self.head == NIL {
            return false;
        }
        let index = self.head;
        *out = pool.slots[index as usize];
        self.head = pool.next[index as usize];
        if self.head == NIL {
            self.tail = NIL;
        }
        self.len -= 1;
        pool.release(index);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::{Handle, ShardId};
    use crate::message::MessageId;
    use crate::payload::Tag;

    fn message(sequence: u64) -> Message {
        Message::system(MessageId::new(ShardId(0), sequence), Handle::NONE, Tag::RESUME)
    }

    /// Mailboxes keep FIFO order, front pushes overtake, and the pool conserves its slots.
    #[test]
    fn mailboxes_share_the_pool() {
        let mut pool = MessagePool::new(4, message(1));
        let mut a = Mailbox::EMPTY;
        let mut b = Mailbox::EMPTY;
        a.push_back(&mut pool, &message(1)).unwrap();
        b.push_back(&mut pool, &message(2)).unwrap();
        a.push_back(&mut pool, &message(3)).unwrap();
        a.push_front(&mut pool, &message(4)).unwrap();
        assert_eq!(pool.free_count(), 0);
        assert_eq!(a.push_back(&mut pool, &message(5)), Err(()));
        let order: Vec<u64> =
            core::iter::from_fn(|| a.pop_front(&mut pool)).map(|m| m.id().sequence()).collect();
        assert_eq!(order, [4, 1, 3]);
        assert!(a.is_empty());
        assert_eq!(b.len(), 1);
        assert_eq!(pool.free_count(), 3);
        assert_eq!(b.pop_front(&mut pool).map(|m| m.id().sequence()), Some(2));
        assert_eq!(pool.free_count(), 4);
    }
}
