//! The io_uring driver: each operation is one submission queue entry whose completion
//! entry finishes it (see the parent module's documentation).
//!
//! What the kernel reads or writes while an operation is in flight must stay where it is
//! until the operation's completion entry: the data is the submission's loan (kept in the
//! operation table), and addresses, message headers and I/O vectors live in this driver's
//! scratch region, one slot per operation entry, made at boot. The scratch region is
//! reached only through raw pointers (no reference to it ever exists while the kernel may
//! write it), and slot `i` is touched only while operation `i` is not in the kernel:
//! before its entry is pushed and after its completion is seen.
//!
//! A completion entry's user data is the operation's entry and its claim sequence, so a
//! completion is matched to the operation that submitted it; cancel requests carry
//! [`CANCEL`], and their own completions are ignored: what matters is the cancelled
//! operation's completion, which brings its loans back.

use core::mem::size_of;
use core::ptr::{NonNull, addr_of_mut};
use std::alloc::{Layout, alloc_zeroed, dealloc, handle_alloc_error};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use io_uring::{IoUring, Probe, opcode, squeue, types};

use super::errno::io_error;
use super::ops::Stage;
use super::sys;
use super::{Start, Tables, receive_cap, send_len};
use crate::io::{IoError, IoOp, IoResult};
use crate::prod::clock::Clock;

/// User data of cancel requests: no operation entry has it.
const CANCEL: u64 = u64::MAX;
/// Most submission queue entries a ring gets (the kernel's own limit).
const RING_ENTRIES_MAX: u32 = 32_768;
/// Rounds of submit-and-collect per poll: completions that make more submissions (a send
/// continued after a short transfer) are usually seen within the same poll.
const POLL_ROUNDS: usize = 4;
/// How long a shard's end waits for the kernel to let go of cancelled operations before
/// it leaks their memory instead.
const SHUTDOWN_PATIENCE_NS: u64 = 2_000_000_000;

/// The operations the driver submits; a ring that lacks one is not used.
const OPCODES: [u8; 10] = [
    opcode::Accept::CODE,
    opcode::Connect::CODE,
    opcode::Send::CODE,
    opcode::Recv::CODE,
    opcode::SendMsg::CODE,
    opcode::RecvMsg::CODE,
    opcode::Read::CODE,
    opcode::Write::CODE,
    opcode::Fsync::CODE,
    opcode::AsyncCancel::CODE,
];

/// A ring with room for `in_flight_max` operations and a cancel for each, if the kernel
/// sets one up and supports every operation the driver uses.
pub(crate) fn open(in_flight_max: u32) -> std::io::Result<IoUring> {
    let entries = in_flight_max.saturating_mul(2).clamp(8, RING_ENTRIES_MAX).next_power_of_two();
    // Cooperative task running (Linux 5.19): a completion does not interrupt the shard
    // with an inter-processor interrupt while it runs; its kernel-side work runs at the
    // shard's next entry into the kernel, which a busy shard makes every tick and a parked
    // one is woken for. Older kernels refuse the flag; they get a plain ring.
    let ring = match IoUring::builder()
        .setup_cqsize(entries.saturating_mul(2))
        .setup_coop_taskrun()
        .build(entries)
    {
        Ok(ring) => ring,
        Err(_) => IoUring::builder().setup_cqsize(entries.saturating_mul(2)).build(entries)?,
    };
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    if let Some(missing) = OPCODES.iter().find(|&&code| !probe.is_supported(code)) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!("io_uring lacks operation {missing}"),
        ));
    }
    Ok(ring)
}

/// Per-operation memory the kernel reads or writes: a socket address and its length, and
/// the message header and I/O vector of a datagram.
#[repr(C)]
struct Slot {
    addr: libc::sockaddr_storage,
    addr_len: libc::socklen_t,
    iov: libc::iovec,
    msg: libc::msghdr,
}

/// One `Slot` per operation entry, zeroed, in one allocation reached through a raw
/// pointer only.
#[derive(Debug)]
struct Scratch {
    base: NonNull<Slot>,
    count: usize,
}

impl Scratch {
    fn new(count: usize) -> Scratch {
        let layout = Layout::array::<Slot>(count).expect("the spec bounds the operations");
        let base = if layout.size() == 0 {
            NonNull::dangling()
        } else {
            // SAFETY: the layout has a non-zero size (checked).
            let pointer = unsafe { alloc_zeroed(layout) };
            NonNull::new(pointer.cast()).unwrap_or_else(|| handle_alloc_error(layout))
        };
        Scratch { base, count }
    }

    /// Slot `entry`.
    fn slot(&self, entry: u32) -> *mut Slot {
        let entry = entry as usize;
        assert!(entry < self.count, "a slot per operation entry");
        // SAFETY: `entry < count`, so the offset stays inside the allocation.
        unsafe { self.base.as_ptr().add(entry) }
    }

    /// Writes `addr` into slot `entry` for the kernel to read: its pointer and length.
    fn address(&mut self, entry: u32, addr: SocketAddr) -> (*const libc::sockaddr, u32) {
        let slot = self.slot(entry);
        // SAFETY: operation `entry` is not in the kernel (it is being prepared), so nothing
        // else reads or writes its slot, and the slot's bytes are initialised (zeroed at
        // allocation, plain integers since).
        let storage = unsafe { &mut *addr_of_mut!((*slot).addr) };
        let len = sys::encode_addr(addr, storage);
        ((storage as *const libc::sockaddr_storage).cast(), len)
    }

    /// Prepares slot `entry` for an accept to write the peer's address: its pointers.
    fn accept_target(&mut self, entry: u32) -> (*mut libc::sockaddr, *mut libc::socklen_t) {
        let slot = self.slot(entry);
        // SAFETY: as in `address`.
        unsafe {
            (*slot).addr_len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            (addr_of_mut!((*slot).addr).cast(), addr_of_mut!((*slot).addr_len))
        }
    }

    /// Prepares slot `entry`'s message header over `len` bytes at `data`, with `to` as the
    /// destination (a send) or room for the sender (a receive): its pointer.
    fn message(
        &mut self,
        entry: u32,
        data: *mut u8,
        len: usize,
        to: Option<SocketAddr>,
    ) -> *mut libc::msghdr {
        let slot = self.slot(entry);
        // SAFETY: as in `address`; every pointer stored here is into this slot, which stays
        // where it is until the driver's end, or into the operation's loan.
        unsafe {
            let addr = addr_of_mut!((*slot).addr);
            let name_len = match to {
                Some(to) => sys::encode_addr(to, &mut *addr),
                None => size_of::<libc::sockaddr_storage>() as libc::socklen_t,
            };
            (*slot).iov = libc::iovec { iov_base: data.cast(), iov_len: len };
            let msg = addr_of_mut!((*slot).msg);
            (*msg).msg_name = addr.cast();
            (*msg).msg_namelen = name_len;
            (*msg).msg_iov = addr_of_mut!((*slot).iov);
            (*msg).msg_iovlen = 1;
            (*msg).msg_control = core::ptr::null_mut();
            (*msg).msg_controllen = 0;
            (*msg).msg_flags = 0;
            msg
        }
    }

    /// The peer an accept wrote into slot `entry`.
    fn accepted_peer(&self, entry: u32) -> Option<SocketAddr> {
        let slot = self.slot(entry);
        // SAFETY: operation `entry`'s completion was seen: the kernel is done with the slot.
        unsafe { sys::decode_addr(&*addr_of_mut!((*slot).addr), (*slot).addr_len) }
    }

    /// The sender a datagram receive wrote into slot `entry`.
    fn message_peer(&self, entry: u32) -> Option<SocketAddr> {
        let slot = self.slot(entry);
        // SAFETY: as in `accepted_peer`.
        unsafe { sys::decode_addr(&*addr_of_mut!((*slot).addr), (*slot).msg.msg_namelen) }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let layout = Layout::array::<Slot>(self.count).expect("the layout `new` used");
        if layout.size() == 0 {
            return;
        }
        // SAFETY: allocated in `new` with this layout, freed once; the driver leaks the
        // region instead (`leak_scratch`) if the kernel may still hold a pointer into it.
        unsafe { dealloc(self.base.as_ptr().cast(), layout) }
    }
}

/// The io_uring side of a shard's driver.
pub(crate) struct Uring {
    ring: IoUring,
    scratch: Scratch,
    /// Completion entries copied out of the ring before they are handled (handling one
    /// may submit more, which needs the ring).
    completions: Box<[(u64, i32)]>,
    /// Operations the kernel holds.
    in_kernel: usize,
    /// A cancel could not be queued; retried at the next poll.
    cancel_backlog: bool,
}

impl core::fmt::Debug for Uring {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Uring").field("in_kernel", &self.in_kernel).finish_non_exhaustive()
    }
}

impl Uring {
    pub(crate) fn new(ring: IoUring, in_flight_max: u32) -> Uring {
        let completions = vec![(0, 0); ring.params().cq_entries() as usize].into_boxed_slice();
        Uring {
            ring,
            scratch: Scratch::new(in_flight_max as usize),
            completions,
            in_kernel: 0,
            cancel_backlog: false,
        }
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.ring.as_fd()
    }

    /// Queues operation `entry` (on its handle's list already) for the kernel.
    pub(crate) fn start(&mut self, t: &mut Tables, entry: u32) -> Start {
        match self.submit_op(t, entry) {
            Ok(()) => {
                t.ops.op_mut(entry).stage = Stage::Kernel;
                self.in_kernel += 1;
                Start::Pending
            }
            Err(error) => Start::Done(IoResult::Failed(error)),
        }
    }

    /// Asks the kernel to cancel operation `entry` for `reason`; it completes when the
    /// kernel's completion of it arrives (cancelled, or finished first).
    pub(crate) fn abort(&mut self, t: &mut Tables, entry: u32, reason: IoError) {
        let op = t.ops.op_mut(entry);
        if op.stage != Stage::Kernel || op.cancel.is_some() {
            return;
        }
        op.cancel = Some(reason);
        self.send_cancel(t, entry);
    }

    /// Submits what is queued and handles the completions the kernel posted, without
    /// blocking.
    pub(crate) fn poll(&mut self, t: &mut Tables) {
        for _ in 0..POLL_ROUNDS {
            if self.cancel_backlog {
                self.retry_cancels(t);
            }
            self.flush();
            let mut count = 0;
            for cqe in self.ring.completion() {
                self.completions[count] = (cqe.user_data(), cqe.result());
                count += 1;
                if count == self.completions.len() {
                    break;
                }
            }
            if count == 0 {
                return;
            }
            for index in 0..count {
                let (user_data, result) = self.completions[index];
                self.completed(t, user_data, result);
            }
        }
        self.flush();
    }

    /// Cancels everything the kernel holds and waits for it to let go, a bounded time.
    /// Whether it did (if not, the caller leaks what the kernel may still touch).
    pub(crate) fn shutdown(&mut self, t: &mut Tables) -> bool {
        // Entries fit in u32 (the spec bounds the table).
        for entry in 0..t.ops.len() as u32 {
            self.abort(t, entry, IoError::ConnectionAborted);
        }
        let clock = Clock::start();
        loop {
            self.poll(t);
            if self.in_kernel == 0 {
                return true;
            }
            if clock.now().as_nanos() > SHUTDOWN_PATIENCE_NS {
                return false;
            }
            // Waits for one completion at most a millisecond (the kernel's own timeout
            // would need a newer kernel); the ring is the shard's, nothing else waits.
            pause_briefly();
        }
    }

    /// Leaks the scratch region: the kernel may still write into it.
    pub(crate) fn leak_scratch(&mut self) {
        core::mem::forget(core::mem::replace(&mut self.scratch, Scratch::new(0)));
    }

    /// Hands queued entries to the kernel. A busy kernel (`EBUSY`, `EAGAIN`) or a signal
    /// leaves them queued for the next poll.
    fn flush(&mut self) {
        if self.ring.submission().is_empty() {
            return;
        }
        match self.ring.submit() {
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.raw_os_error(),
                    Some(libc::EBUSY | libc::EAGAIN | libc::EINTR)
                ) => {}
            Err(error) => panic!("io_uring_enter on the shard's own ring failed: {error}"),
        }
    }

    /// Queues an entry, flushing the queue once if it is full.
    fn push(&mut self, sqe: &squeue::Entry) -> Result<(), IoError> {
        for _ in 0..2 {
            // SAFETY: every pointer in an entry the driver builds is into the operation's
            // loan (kept in the operation table until its completion) or its scratch slot
            // (kept until the driver's end, or leaked), so it stays valid for as long as
            // the kernel may use it.
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                return Ok(());
            }
            self.flush();
        }
        Err(IoError::SubmissionFull)
    }

    fn user_data(t: &Tables, entry: u32) -> u64 {
        (u64::from(t.ops.op(entry).sequence) << 32) | u64::from(entry)
    }

    /// Builds and queues the entry of operation `entry`, from its progress on.
    fn submit_op(&mut self, t: &mut Tables, entry: u32) -> Result<(), IoError> {
        let user_data = Self::user_data(t, entry);
        let op = t.ops.op(entry);
        let request = op.request();
        let progress = op.progress;
        let fd =
            types::Fd(t.fd(op.handle).expect("a listed operation's handle is open").as_raw_fd());
        let submission = t.ops.op_mut(entry).submission_mut();
        let input = submission.input.as_ref().map(|loan| loan.as_ptr());
        let receive = submission.receive.as_mut().map(|loan| {
            let cap = receive_cap(request, loan.len());
            (loan.as_mut_ptr().expect("a receive loan is writable"), cap as u32)
        });
        // Where the rest of a send starts (in bounds: `progress < len <= buffer`).
        let rest = |pointer: Option<*const u8>| {
            pointer.expect("checked at submission").wrapping_add(progress as usize)
        };
        let remaining = send_len(request).saturating_sub(progress);
        let sqe = match request {
            IoOp::TcpAccept { .. } => {
                let (addr, len) = self.scratch.accept_target(entry);
                opcode::Accept::new(fd, addr, len).flags(libc::SOCK_CLOEXEC).build()
            }
            IoOp::TcpConnect { addr } => {
                let (addr, len) = self.scratch.address(entry, addr);
                opcode::Connect::new(fd, addr, len).build()
            }
            IoOp::TcpSend { .. } => {
                opcode::Send::new(fd, rest(input), remaining).flags(libc::MSG_NOSIGNAL).build()
            }
            IoOp::TcpRecv { .. } => {
                let (into, cap) = receive.expect("checked at submission");
                opcode::Recv::new(fd, into, cap).build()
            }
            IoOp::UdpSendTo { addr, len, .. } => {
                let data = input.expect("checked at submission").cast_mut();
                // The kernel only reads a send's data through the header.
                let msg = self.scratch.message(entry, data, len as usize, Some(addr));
                opcode::SendMsg::new(fd, msg).flags(libc::MSG_NOSIGNAL as u32).build()
            }
            IoOp::UdpRecvFrom { .. } => {
                let (into, cap) = receive.expect("checked at submission");
                let msg = self.scratch.message(entry, into, cap as usize, None);
                opcode::RecvMsg::new(fd, msg).build()
            }
            IoOp::FileRead { offset, .. } => {
                let (into, cap) = receive.expect("checked at submission");
                opcode::Read::new(fd, into, cap).offset(offset).build()
            }
            IoOp::FileWrite { offset, .. } => opcode::Write::new(fd, rest(input), remaining)
                .offset(offset + u64::from(progress))
                .build(),
            IoOp::FileFsync { .. } => opcode::Fsync::new(fd).build(),
            IoOp::TcpListen { .. }
            | IoOp::UdpBind { .. }
            | IoOp::FileOpen { .. }
            | IoOp::Close { .. } => unreachable!("done by the driver at submission"),
        };
        self.push(&sqe.user_data(user_data))
    }

    /// Queues the cancel of operation `entry`, or notes it for the next poll.
    fn send_cancel(&mut self, t: &mut Tables, entry: u32) {
        let target = Self::user_data(t, entry);
        let sqe = opcode::AsyncCancel::new(target).build().user_data(CANCEL);
        match self.push(&sqe) {
            Ok(()) => t.ops.op_mut(entry).cancel_sent = true,
            Err(_) => self.cancel_backlog = true,
        }
    }

    fn retry_cancels(&mut self, t: &mut Tables) {
        self.cancel_backlog = false;
        // Entries fit in u32 (the spec bounds the table).
        for entry in 0..t.ops.len() as u32 {
            let op = t.ops.op(entry);
            if op.stage == Stage::Kernel && op.cancel.is_some() && !op.cancel_sent {
                self.send_cancel(t, entry);
            }
        }
    }

    /// One completion entry: its operation finishes, or goes on after a short transfer.
    fn completed(&mut self, t: &mut Tables, user_data: u64, result: i32) {
        if user_data == CANCEL {
            return;
        }
        // The low half is the entry, the high half its claim sequence (`user_data`).
        let entry = user_data as u32;
        let sequence = (user_data >> 32) as u32;
        if entry as usize >= t.ops.len() {
            return;
        }
        let op = t.ops.op(entry);
        if op.stage != Stage::Kernel || op.sequence != sequence {
            return;
        }
        self.in_kernel -= 1;
        let request = op.request();
        let cancel = op.cancel;
        if result < 0 {
            let errno = -result;
            let error = match cancel {
                Some(reason) if errno == libc::ECANCELED || errno == libc::EINTR => reason,
                _ => io_error(errno),
            };
            t.complete(entry, IoResult::Failed(error));
            return;
        }
        // Non-negative from here: a count or a descriptor.
        let value = result as u32;
        let outcome = match request {
            IoOp::TcpAccept { .. } => {
                // SAFETY: a successful accept's result is a new descriptor that nothing
                // else owns.
                let socket = unsafe { OwnedFd::from_raw_fd(result) };
                let peer = self.scratch.accepted_peer(entry);
                match t.adopt_accepted(socket) {
                    Ok(socket) => IoResult::Accepted {
                        socket,
                        peer: peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
                    },
                    Err(error) => IoResult::Failed(error),
                }
            }
            IoOp::TcpConnect { .. } => IoResult::Opened(op.handle),
            IoOp::TcpSend { .. } | IoOp::FileWrite { .. } => {
                let len = send_len(request);
                let progress = op.progress.saturating_add(value).min(len);
                t.ops.op_mut(entry).progress = progress;
                if progress < len && value > 0 && cancel.is_none() {
                    match self.submit_op(t, entry) {
                        Ok(()) => {
                            self.in_kernel += 1;
                            return;
                        }
                        Err(error) => IoResult::Failed(error),
                    }
                } else if progress < len && value > 0 {
                    IoResult::Failed(cancel.expect("cancelled"))
                } else {
                    IoResult::Transferred(progress)
                }
            }
            IoOp::TcpRecv { .. } | IoOp::FileRead { .. } => {
                IoResult::Received { len: value, from: None }
            }
            IoOp::UdpSendTo { .. } => IoResult::Transferred(value),
            IoOp::UdpRecvFrom { .. } => {
                IoResult::Received { len: value, from: self.scratch.message_peer(entry) }
            }
            IoOp::FileFsync { .. } => IoResult::Done,
            IoOp::TcpListen { .. }
            | IoOp::UdpBind { .. }
            | IoOp::FileOpen { .. }
            | IoOp::Close { .. } => unreachable!("never in the kernel"),
        };
        t.complete(entry, outcome);
    }
}

#[expect(clippy::disallowed_methods, reason = "a shard's end waits for its kernel operations")]
fn pause_briefly() {
    std::thread::sleep(core::time::Duration::from_millis(1));
}
