//! The production runtime's I/O: the `Backend::io_submit` / `io_cancel` / `io_reap` of each
//! shard, over real sockets and files, with one of two drivers picked at boot.
//!
//! # The drivers
//!
//! - **io_uring** ([`IoDriverKind::IoUring`]): one ring per shard. Accept, connect, send,
//!   receive (TCP and UDP, the latter through `sendmsg`/`recvmsg`), file read, file write
//!   and fsync are submitted to the kernel and complete asynchronously; the kernel reads
//!   and writes the shard's buffers in place, through the loans the submission carries,
//!   which the driver keeps in its operation table until the kernel's completion entry
//!   arrives. Sockets are blocking descriptors (io_uring waits for readiness itself).
//!   A timeout (`io_cancel`) is an `IORING_OP_ASYNC_CANCEL`; the operation completes as
//!   `Failed(TimedOut)` only when the kernel's completion of the operation itself arrives
//!   (cancelled), so its buffers are never handed back while the kernel may still touch
//!   them. Submissions queue in the ring and reach the kernel in one `io_uring_enter` per
//!   tick (at the next reap, or before the shard parks).
//! - **epoll** ([`IoDriverKind::Epoll`]), the fallback when io_uring is unavailable (an old
//!   kernel, `kernel.io_uring_disabled`, a seccomp filter): non-blocking sockets registered
//!   edge-triggered for both directions. An operation is tried at submission; if the
//!   socket is not ready it waits on its handle and is tried again, in submission order with
//!   the others waiting there, each time the handle reports readiness. A send goes on after
//!   a short write until every byte is sent. **Files are done synchronously at submission**
//!   (`pread`, `pwrite`, `fsync`), as a regular file is always "ready" to epoll: a slow disk
//!   stalls the shard for that call. A timeout simply takes the waiting operation off its
//!   handle.
//!
//! In both drivers, `TcpListen` (`SO_REUSEADDR`, then bind and listen with the backlog),
//! `UdpBind`, `FileOpen` and `Close` are done at submission (they do not wait on a peer);
//! their completion is reaped at the next tick like any other. A `TcpSend` or `FileWrite`
//! completes when every byte is transferred (short transfers are continued), or fails.
//! Multishot accept is not used: it completes many times for one submission, and an
//! isolate submits one operation and awaits one completion. Registered buffers and fixed
//! files are not used either (the buffers are the shard's, lent one at a time).
//!
//! The choice is [`IoDriverChoice`] in `RuntimeConfig::io_driver`: `Auto` (the default)
//! takes io_uring when a ring can be set up and the kernel supports every operation used,
//! epoll otherwise; `IoUring` or `Epoll` force one (forcing io_uring where it is unavailable
//! fails the boot). Each shard's [`IoReport`] names the driver it uses.
//!
//! # Handles, bounds, cancellation
//!
//! An `IoHandle` names an entry of the shard's bounded handle table
//! (`RuntimeConfig::io_handles_max`, default [`IO_HANDLES_DEFAULT`]), which owns the
//! descriptor; a generation in the handle keeps a handle kept after its close from ever
//! reaching a reused entry. An operation that would open a socket or file when the table is
//! full fails with `IoError::TooManyHandles` (counted as `opens_refused`); an accept that
//! finds it full accepts the connection and closes it at once (the peer sees the
//! connection end), fails the same way, and is counted as `accepts_refused`, so a flood of
//! connections costs no memory. Operations live in a table of `SystemSpec::io_in_flight_max`
//! entries made at boot: nothing is allocated per operation.
//!
//! Every operation completes exactly once. `Close` of a handle first finishes every
//! operation pending on it, as `Failed(ConnectionAborted)` (with io_uring, once the kernel's
//! cancellations are complete: an operation in flight keeps the descriptor alive), then
//! closes the descriptor and completes `Done`. A timeout's cancel of an operation that
//! already finished changes nothing. Errors of the kernel are mapped to `IoError` values
//! (`AddrInUse`, `ConnectionRefused`, `ConnectionReset`, `BrokenPipe`, `NotFound`, ...),
//! never a panic; so are bad arguments (a handle that names nothing or the wrong kind of
//! thing is `InvalidHandle`, a length past the buffer `OutOfBounds`, a path that is not
//! UTF-8 or holds a NUL `InvalidInput`).
//!
//! # Parking
//!
//! The driver's descriptor (the epoll instance, or the ring, readable while completions
//! wait) is what the shard's parker waits on besides its eventfd (`park::Parker::park_with`).
//! Before parking, the shard polls the driver without blocking; completions found then end
//! the park at once. An idle shard with a listener waiting sleeps in `ppoll` and costs no
//! CPU.
//!
//! On a shard's end the io_uring driver cancels what the kernel still holds and waits (a
//! bounded time) for it to let go; if it does not, the buffers and the driver's kernel-facing
//! memory are leaked rather than freed under the kernel's feet.

mod epoll;
mod errno;
mod handles;
mod ops;
mod sys;
mod uring;

use core::fmt;
use core::str::FromStr;
use std::ffi::CStr;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

pub use handles::IO_HANDLES_MAX_LIMIT;

use crate::io::{IoError, IoHandle, IoOp, IoReaped, IoResult, IoSubmission, IoToken};
use errno::io_error;
use handles::HandleTable;
use ops::{NIL, OpList, OpTable, Stage};

/// Default of `RuntimeConfig::io_handles_max`: open sockets and files per shard.
pub const IO_HANDLES_DEFAULT: u32 = 4096;

/// Longest path `FileOpen` takes, in bytes (Linux's `PATH_MAX` less its NUL).
pub const IO_PATH_LEN_MAX: usize = 4095;

/// Which I/O driver the shards use (`RuntimeConfig::io_driver`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IoDriverChoice {
    /// io_uring when the kernel allows it (a ring can be set up and supports every
    /// operation the driver uses), epoll otherwise.
    #[default]
    Auto,
    /// io_uring, or the boot fails.
    IoUring,
    /// epoll, even where io_uring works.
    Epoll,
}

/// `IoDriverChoice` from text: `auto`, `io_uring` (or `io-uring`, `uring`), `epoll`.
impl FromStr for IoDriverChoice {
    type Err = ParseIoDriverError;

    fn from_str(text: &str) -> Result<IoDriverChoice, ParseIoDriverError> {
        match text {
            "auto" => Ok(IoDriverChoice::Auto),
            "io_uring" | "io-uring" | "uring" => Ok(IoDriverChoice::IoUring),
            "epoll" => Ok(IoDriverChoice::Epoll),
            _ => Err(ParseIoDriverError),
        }
    }
}

/// The text named no I/O driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseIoDriverError;

impl fmt::Display for ParseIoDriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown I/O driver: expected auto, io_uring or epoll")
    }
}

impl std::error::Error for ParseIoDriverError {}

/// The I/O driver a shard runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoDriverKind {
    /// One io_uring per shard.
    IoUring,
    /// One epoll instance per shard; files synchronously.
    Epoll,
}

impl IoDriverKind {
    /// `io_uring` or `epoll`.
    pub const fn name(self) -> &'static str {
        match self {
            IoDriverKind::IoUring => "io_uring",
            IoDriverKind::Epoll => "epoll",
        }
    }
}

impl fmt::Display for IoDriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A shard's I/O, as its report shows it (`ShardReport::io`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoReport {
    /// The driver; `None` until the shard has booted.
    pub driver: Option<IoDriverKind>,
    /// Operations handed to the driver.
    pub submitted: u64,
    /// Completions handed back (refusals at submission included).
    pub completed: u64,
    /// Operations the driver holds now (pending, or finished and not reaped yet).
    pub in_flight: usize,
    /// Cancels of pending operations (timeouts of `Effect::io_within`; a cancel of an
    /// operation already finished or being cancelled is not counted).
    pub cancels: u64,
    /// Connections accepted and closed at once because the handle table was full.
    pub accepts_refused: u64,
    /// Listens, connects, binds and opens refused because the handle table was full.
    pub opens_refused: u64,
    /// Handles open now.
    pub handles_in_use: usize,
    /// The handle table's size (`RuntimeConfig::io_handles_max`).
    pub handles_max: usize,
    /// The shard's I/O buffers not in use (`Scheduler::io_buffers_free`).
    pub buffers_free: usize,
}

/// Whether io_uring works here: a ring can be set up and the kernel supports every
/// operation the driver uses. What `IoDriverChoice::Auto` decides by.
pub fn io_uring_available() -> bool {
    uring::open(2).is_ok()
}

/// A shard's kernel object, made at boot on the runtime's thread and moved to the shard.
pub(crate) enum IoKernel {
    /// Boxed: a ring's handle is some 300 bytes, an epoll instance a descriptor.
    Uring(Box<io_uring::IoUring>),
    Epoll(nix::sys::epoll::Epoll),
}

impl IoKernel {
    /// The kernel object for `choice`; the ring is sized for `in_flight_max` operations
    /// and as many cancels.
    pub(crate) fn open(choice: IoDriverChoice, in_flight_max: u32) -> std::io::Result<IoKernel> {
        match choice {
            IoDriverChoice::IoUring => {
                uring::open(in_flight_max).map(|ring| IoKernel::Uring(Box::new(ring)))
            }
            IoDriverChoice::Epoll => epoll::open().map(IoKernel::Epoll),
            IoDriverChoice::Auto => match uring::open(in_flight_max) {
                Ok(ring) => Ok(IoKernel::Uring(Box::new(ring))),
                Err(_) => epoll::open().map(IoKernel::Epoll),
            },
        }
    }
}

/// What a handle is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Listener,
    Stream,
    Datagram,
    File,
}

/// Where a handle is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HandleState {
    /// A connect under way: its socket is reserved, no isolate knows the handle yet.
    Connecting,
    /// Usable.
    Open,
    /// The close in entry `close` waits for the operations pending on it.
    Closing { close: u32 },
}

/// An open descriptor in the handle table.
#[derive(Debug)]
pub(crate) struct Open {
    pub(crate) fd: OwnedFd,
    pub(crate) kind: Kind,
    pub(crate) state: HandleState,
    /// The operations pending on it.
    pub(crate) ops: OpList,
}

/// The driver's counters.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stats {
    submitted: u64,
    completed: u64,
    cancels: u64,
    pub(crate) accepts_refused: u64,
    opens_refused: u64,
}

/// What both drivers keep: operations, handles, counters.
#[derive(Debug)]
pub(crate) struct Tables {
    pub(crate) ops: OpTable,
    pub(crate) handles: HandleTable<Open>,
    pub(crate) stats: Stats,
}

impl Tables {
    /// Operation `entry` finished with `result`: it leaves its handle's list and waits to
    /// be reaped. A connect that failed closes its socket; a close waiting for this
    /// operation finishes if it was the last.
    pub(crate) fn complete(&mut self, entry: u32, result: IoResult) {
        let handle = self.ops.op(entry).handle;
        if handle != IoHandle::NONE {
            let open = self.handles.get_mut(handle).expect("a listed operation's handle is open");
            self.ops.unlink(&mut open.ops, entry);
            if open.state == HandleState::Connecting {
                match result {
                    IoResult::Opened(_) => open.state = HandleState::Open,
                    // Nobody knows the handle: closing the socket is the driver's.
                    _ => drop(self.handles.remove(handle)),
                }
            }
        }
        self.ops.finish(entry, result);
        if handle != IoHandle::NONE {
            self.finish_close_if_drained(handle);
        }
    }

    /// Closes `handle` if a close waits for it and nothing is pending on it any more.
    pub(crate) fn finish_close_if_drained(&mut self, handle: IoHandle) {
        let Some(open) = self.handles.get(handle) else { return };
        if let HandleState::Closing { close } = open.state
            && open.ops.is_empty()
        {
            // Dropping the descriptor closes it (and takes it out of an epoll set: no
            // descriptor is ever duplicated here).
            drop(self.handles.remove(handle));
            self.ops.finish(close, IoResult::Done);
        }
    }

    /// A connection an accept returned: a new handle, or, with the table full, the
    /// connection closed at once and counted.
    pub(crate) fn adopt_accepted(&mut self, fd: OwnedFd) -> Result<IoHandle, IoError> {
        let open = Open { fd, kind: Kind::Stream, state: HandleState::Open, ops: OpList::EMPTY };
        self.handles.insert(open).map_err(|refused| {
            drop(refused);
            self.stats.accepts_refused += 1;
            IoError::TooManyHandles
        })
    }

    /// The descriptor of an open handle.
    pub(crate) fn fd(&self, handle: IoHandle) -> Option<BorrowedFd<'_>> {
        self.handles.get(handle).map(|open| open.fd.as_fd())
    }
}

/// How a driver's start of an operation went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// Under way: it completes later (through `Tables::complete`).
    Pending,
    /// Finished at once.
    Done(IoResult),
}

/// The kernel side of a driver.
enum Engine {
    /// Boxed, as in `IoKernel`.
    Uring(Box<uring::Uring>),
    Epoll(epoll::EpollEngine),
}

/// One shard's I/O driver: the tables both drivers share and the kernel side of one. See
/// the module documentation.
pub(crate) struct IoDriver {
    t: Tables,
    engine: Engine,
    /// Where `FileOpen` puts its path and the NUL the kernel wants (no allocation).
    path: Box<[u8]>,
}

impl fmt::Debug for IoDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoDriver")
            .field("driver", &self.kind())
            .field("in_flight", &self.t.ops.occupied())
            .field("handles", &self.t.handles.in_use())
            .finish_non_exhaustive()
    }
}

impl IoDriver {
    /// The driver over `kernel`, with room for `in_flight_max` operations (the spec's
    /// `io_in_flight_max`) and `handles_max` handles (validated by the runtime).
    pub(crate) fn new(kernel: IoKernel, in_flight_max: u32, handles_max: u32) -> IoDriver {
        let engine = match kernel {
            IoKernel::Uring(ring) => {
                Engine::Uring(Box::new(uring::Uring::new(*ring, in_flight_max)))
            }
            IoKernel::Epoll(epoll) => Engine::Epoll(epoll::EpollEngine::new(epoll)),
        };
        IoDriver {
            t: Tables {
                ops: OpTable::new(in_flight_max),
                handles: HandleTable::new(handles_max),
                stats: Stats::default(),
            },
            engine,
            path: vec![0; IO_PATH_LEN_MAX + 1].into_boxed_slice(),
        }
    }

    /// Which driver this is.
    pub(crate) fn kind(&self) -> IoDriverKind {
        match self.engine {
            Engine::Uring(_) => IoDriverKind::IoUring,
            Engine::Epoll(_) => IoDriverKind::Epoll,
        }
    }

    /// `Backend::io_submit`.
    pub(crate) fn submit(&mut self, submission: IoSubmission) -> Result<(), IoReaped> {
        self.t.stats.submitted += 1;
        if let Err(error) = check(&submission) {
            return Err(self.refuse(submission, error));
        }
        let op = submission.op;
        let entry = match self.t.ops.claim(submission) {
            Ok(entry) => entry,
            Err(submission) => return Err(self.refuse(submission, IoError::SubmissionFull)),
        };
        let started = match op {
            IoOp::TcpListen { addr, backlog } => self.open_socket(entry, addr, Some(backlog)),
            IoOp::UdpBind { addr } => self.open_socket(entry, addr, None),
            IoOp::FileOpen { mode, .. } => self.open_file(entry, mode),
            IoOp::Close { handle } => self.close(entry, handle),
            IoOp::TcpConnect { addr } => self.connect(entry, addr),
            _ => self.start_on_handle(entry, op),
        };
        match started {
            Ok(()) => Ok(()),
            Err(error) => {
                let submission = self.t.ops.release(entry);
                Err(self.refuse(submission, error))
            }
        }
    }

    /// `Backend::io_cancel`: a pending operation completes as `Failed(TimedOut)` (with
    /// io_uring, once the kernel let go of it); anything else is ignored.
    pub(crate) fn cancel(&mut self, token: IoToken) {
        let Some(entry) = self.t.ops.find(token) else { return };
        let op = self.t.ops.op(entry);
        // A cancel under way already (a repeated timeout, a close) is not asked again.
        if matches!(op.stage, Stage::Waiting | Stage::Kernel) && op.cancel.is_none() {
            self.t.stats.cancels += 1;
            self.engine_abort(entry, IoError::TimedOut);
        }
    }

    /// `Backend::io_reap`: the next completion, polling the kernel (without blocking) when
    /// none is waiting.
    pub(crate) fn reap(&mut self) -> Option<IoReaped> {
        if !self.t.ops.has_ready() {
            self.poll();
        }
        let reaped = self.t.ops.pop_ready()?;
        self.t.stats.completed += 1;
        Some(reaped)
    }

    /// Hands pending submissions to the kernel and collects what completed, without
    /// blocking.
    pub(crate) fn poll(&mut self) {
        match &mut self.engine {
            Engine::Uring(uring) => uring.poll(&mut self.t),
            Engine::Epoll(epoll) => epoll.poll(&mut self.t),
        }
    }

    /// Whether a completion waits to be reaped.
    pub(crate) fn has_ready(&self) -> bool {
        self.t.ops.has_ready()
    }

    /// The descriptor that is readable when the kernel has something for the driver: the
    /// ring (completions waiting) or the epoll instance (readiness waiting).
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        match &self.engine {
            Engine::Uring(uring) => uring.fd(),
            Engine::Epoll(epoll) => epoll.fd(),
        }
    }

    /// The report's view, with the scheduler's count of free buffers.
    pub(crate) fn report(&self, buffers_free: usize) -> IoReport {
        let stats = self.t.stats;
        IoReport {
            driver: Some(self.kind()),
            submitted: stats.submitted,
            completed: stats.completed,
            in_flight: self.t.ops.occupied(),
            cancels: stats.cancels,
            accepts_refused: stats.accepts_refused,
            opens_refused: stats.opens_refused,
            handles_in_use: self.t.handles.in_use(),
            handles_max: self.t.handles.capacity(),
            buffers_free,
        }
    }

    /// A completion at once, with the loans back.
    fn refuse(&mut self, submission: IoSubmission, error: IoError) -> IoReaped {
        self.t.stats.completed += 1;
        submission.complete(IoResult::Failed(error), &[])
    }

    fn engine_abort(&mut self, entry: u32, reason: IoError) {
        match &mut self.engine {
            Engine::Uring(uring) => uring.abort(&mut self.t, entry, reason),
            Engine::Epoll(epoll) => epoll.abort(&mut self.t, entry, reason),
        }
    }

    fn engine_start(&mut self, entry: u32) {
        let start = match &mut self.engine {
            Engine::Uring(uring) => uring.start(&mut self.t, entry),
            Engine::Epoll(epoll) => epoll.start(&mut self.t, entry),
        };
        if let Start::Done(result) = start {
            self.t.complete(entry, result);
        }
    }

    fn nonblocking(&self) -> bool {
        matches!(self.engine, Engine::Epoll(_))
    }

    /// Registers a new socket with the driver (epoll's interest list).
    fn register(&mut self, handle: IoHandle) -> Result<(), IoError> {
        let Engine::Epoll(epoll) = &self.engine else { return Ok(()) };
        let fd = self.t.fd(handle).expect("a handle just inserted");
        epoll.register(fd, handle).map_err(io_error)
    }

    /// Claims a handle for a new descriptor, or says the table is full (counted).
    fn check_room(&mut self) -> Result<(), IoError> {
        if self.t.handles.is_full() {
            self.t.stats.opens_refused += 1;
            return Err(IoError::TooManyHandles);
        }
        Ok(())
    }

    /// `TcpListen` (with a backlog) or `UdpBind`, at submission.
    fn open_socket(
        &mut self,
        entry: u32,
        addr: SocketAddr,
        backlog: Option<u32>,
    ) -> Result<(), IoError> {
        self.check_room()?;
        let fd = sys::socket(addr, backlog.is_some(), self.nonblocking()).map_err(io_error)?;
        if let Some(backlog) = backlog {
            sys::set_reuse_address(fd.as_fd()).map_err(io_error)?;
            sys::bind(fd.as_fd(), addr).map_err(io_error)?;
            sys::listen(fd.as_fd(), backlog).map_err(io_error)?;
        } else {
            sys::bind(fd.as_fd(), addr).map_err(io_error)?;
        }
        let kind = if backlog.is_some() { Kind::Listener } else { Kind::Datagram };
        let open = Open { fd, kind, state: HandleState::Open, ops: OpList::EMPTY };
        let handle = self.t.handles.insert(open).map_err(|_| IoError::TooManyHandles)?;
        if let Err(error) = self.register(handle) {
            drop(self.t.handles.remove(handle));
            return Err(error);
        }
        self.t.ops.finish(entry, IoResult::Opened(handle));
        Ok(())
    }

    /// `FileOpen`, at submission: the path from the input loan, UTF-8 with no NUL.
    fn open_file(&mut self, entry: u32, mode: crate::io::OpenMode) -> Result<(), IoError> {
        self.check_room()?;
        let path = self.t.ops.op(entry).submission().input_bytes();
        if core::str::from_utf8(path).is_err() || path.contains(&0) {
            return Err(IoError::InvalidInput);
        }
        if path.len() > IO_PATH_LEN_MAX {
            return Err(IoError::InvalidInput);
        }
        self.path[..path.len()].copy_from_slice(path);
        self.path[path.len()] = 0;
        let path = CStr::from_bytes_with_nul(&self.path[..=path.len()])
            .expect("no NUL inside, one at the end");
        let fd = sys::open(path, errno::open_flags(mode), errno::CREATE_PERMISSIONS)
            .map_err(io_error)?;
        let open = Open { fd, kind: Kind::File, state: HandleState::Open, ops: OpList::EMPTY };
        let handle = self.t.handles.insert(open).map_err(|_| IoError::TooManyHandles)?;
        self.t.ops.finish(entry, IoResult::Opened(handle));
        Ok(())
    }

    /// `TcpConnect`: a socket reserved under a handle no isolate knows yet, then the
    /// driver's connect.
    fn connect(&mut self, entry: u32, addr: SocketAddr) -> Result<(), IoError> {
        self.check_room()?;
        let fd = sys::socket(addr, true, self.nonblocking()).map_err(io_error)?;
        let open =
            Open { fd, kind: Kind::Stream, state: HandleState::Connecting, ops: OpList::EMPTY };
        let handle = self.t.handles.insert(open).map_err(|_| IoError::TooManyHandles)?;
        let open = self.t.handles.get_mut(handle).expect("just inserted");
        self.t.ops.link(&mut open.ops, entry, handle);
        self.engine_start(entry);
        Ok(())
    }

    /// An operation on an open handle of the right kind: on the handle's list, then
    /// started by the driver.
    fn start_on_handle(&mut self, entry: u32, op: IoOp) -> Result<(), IoError> {
        let (handle, kind) = match op {
            IoOp::TcpAccept { listener } => (listener, Kind::Listener),
            IoOp::TcpSend { socket, .. } | IoOp::TcpRecv { socket, .. } => (socket, Kind::Stream),
            IoOp::UdpSendTo { socket, .. } | IoOp::UdpRecvFrom { socket, .. } => {
                (socket, Kind::Datagram)
            }
            IoOp::FileRead { file, .. }
            | IoOp::FileWrite { file, .. }
            | IoOp::FileFsync { file } => (file, Kind::File),
            IoOp::TcpListen { .. }
            | IoOp::TcpConnect { .. }
            | IoOp::UdpBind { .. }
            | IoOp::FileOpen { .. }
            | IoOp::Close { .. } => unreachable!("opened and closed by the driver itself"),
        };
        let open = self
            .t
            .handles
            .get_mut(handle)
            .filter(|open| open.state == HandleState::Open && open.kind == kind)
            .ok_or(IoError::InvalidHandle)?;
        self.t.ops.link(&mut open.ops, entry, handle);
        self.engine_start(entry);
        Ok(())
    }

    /// `Close`: every operation pending on the handle finishes first (aborted), then the
    /// descriptor is closed and the close completes.
    fn close(&mut self, entry: u32, handle: IoHandle) -> Result<(), IoError> {
        let open = self
            .t
            .handles
            .get_mut(handle)
            .filter(|open| open.state == HandleState::Open)
            .ok_or(IoError::InvalidHandle)?;
        open.state = HandleState::Closing { close: entry };
        let mut at = open.ops.first();
        self.t.ops.op_mut(entry).stage = Stage::Closing;
        while at != NIL {
            let next = self.t.ops.next_in_list(at);
            self.engine_abort(at, IoError::ConnectionAborted);
            if self.t.handles.get(handle).is_none() {
                // The last abort finished the close.
                return Ok(());
            }
            at = next;
        }
        self.t.finish_close_if_drained(handle);
        Ok(())
    }
}

impl Drop for IoDriver {
    fn drop(&mut self) {
        let Engine::Uring(uring) = &mut self.engine else { return };
        if !uring.shutdown(&mut self.t) {
            // The kernel still holds operations: their buffers (the loans in the table)
            // and the memory their addresses point into must outlive it. Leak both.
            core::mem::forget(core::mem::replace(&mut self.t.ops, OpTable::new(0)));
            uring.leak_scratch();
        }
    }
}

/// What can be refused before the operation is held: lengths past the buffer, offsets
/// past a file offset's range, loans the shard did not give.
fn check(submission: &IoSubmission) -> Result<(), IoError> {
    let input_len = submission.input.as_ref().map(|loan| loan.len());
    let sends = match submission.op {
        IoOp::TcpSend { len, .. }
        | IoOp::UdpSendTo { len, .. }
        | IoOp::FileWrite { len, .. }
        | IoOp::FileOpen { path_len: len, .. } => Some(len),
        _ => None,
    };
    if let Some(len) = sends {
        let available = input_len.ok_or(IoError::InvalidBuffer)?;
        if len as usize > available {
            return Err(IoError::OutOfBounds);
        }
    }
    if submission.op.receive_len_max().is_some() && submission.receive.is_none() {
        return Err(IoError::InvalidBuffer);
    }
    if let IoOp::FileRead { offset, len_max, .. } = submission.op {
        check_offset(offset, len_max)?;
    }
    if let IoOp::FileWrite { offset, len, .. } = submission.op {
        check_offset(offset, len)?;
    }
    Ok(())
}

/// A file range must fit the kernel's signed offsets.
fn check_offset(offset: u64, len: u32) -> Result<(), IoError> {
    let end = offset.checked_add(u64::from(len)).ok_or(IoError::InvalidInput)?;
    if end > i64::MAX as u64 {
        return Err(IoError::InvalidInput);
    }
    Ok(())
}

/// Bytes a receiving operation may take: its `len_max`, capped by the buffer.
pub(crate) fn receive_cap(op: IoOp, buffer_len: usize) -> usize {
    (op.receive_len_max().unwrap_or(0) as usize).min(buffer_len)
}

/// Bytes a sending operation sends (checked against its buffer at submission).
pub(crate) fn send_len(op: IoOp) -> u32 {
    match op {
        IoOp::TcpSend { len, .. } | IoOp::UdpSendTo { len, .. } | IoOp::FileWrite { len, .. } => {
            len
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::Handle;
    use crate::io::{IoBuffers, OpenMode};

    fn token(entry: u32) -> IoToken {
        IoToken { isolate: Handle::from_raw(0x42), sequence: 1, entry }
    }

    impl From<IoDriverChoice> for IoDriverKind {
        fn from(choice: IoDriverChoice) -> IoDriverKind {
            match choice {
                IoDriverChoice::Epoll => IoDriverKind::Epoll,
                _ => IoDriverKind::IoUring,
            }
        }
    }

    /// Refusals before anything is held: a send longer than its buffer, a missing loan,
    /// a file range past the kernel's offsets.
    #[test]
    fn malformed_submissions_are_refused_with_typed_errors() {
        let mut buffers = IoBuffers::new(2, 8);
        let id = buffers.alloc(Handle::NONE).unwrap();
        let loan = buffers.lend(id, false).unwrap();
        let socket = IoHandle::from_raw(1);
        let send = |len, input| IoSubmission {
            token: token(0),
            op: IoOp::TcpSend { socket, buffer: id, len },
            input,
            receive: None,
        };
        assert_eq!(check(&send(9, Some(loan))), Err(IoError::OutOfBounds));
        assert_eq!(check(&send(8, None)), Err(IoError::InvalidBuffer));
        let recv = IoSubmission {
            token: token(0),
            op: IoOp::TcpRecv { socket, len_max: 4 },
            input: None,
            receive: None,
        };
        assert_eq!(check(&recv), Err(IoError::InvalidBuffer));
        let read = |offset| IoSubmission {
            token: token(0),
            op: IoOp::FileRead { file: socket, offset, len_max: 4 },
            input: None,
            receive: Some(buffers_receive()),
        };
        assert_eq!(check(&read(u64::MAX)), Err(IoError::InvalidInput));
        assert_eq!(check(&read(i64::MAX as u64 - 3)), Err(IoError::InvalidInput));
        assert_eq!(check(&read(i64::MAX as u64 - 4)), Ok(()));
        let open = IoSubmission {
            token: token(0),
            op: IoOp::FileOpen { path: id, path_len: 3, mode: OpenMode::Read },
            input: None,
            receive: None,
        };
        assert_eq!(check(&open), Err(IoError::InvalidBuffer));
    }

    /// The next completion, polling for at most a few seconds.
    #[expect(clippy::disallowed_methods, reason = "waits for a real kernel")]
    fn reap_soon(driver: &mut IoDriver) -> IoReaped {
        for _ in 0..5000 {
            if let Some(reaped) = driver.reap() {
                return reaped;
            }
            std::thread::sleep(core::time::Duration::from_millis(1));
        }
        panic!("no completion came: {driver:?}");
    }

    /// On each driver, directly: a close finishes the receive pending on its handle first
    /// (`ConnectionAborted`), then itself; each completion comes once, with its loan; the
    /// handle is stale afterwards; a timeout's cancel finishes a pending receive as
    /// `TimedOut` and a second cancel of it, or of a token that names nothing, changes
    /// nothing; an entry in use refuses another submission.
    #[test]
    #[cfg_attr(miri, ignore = "sockets, epoll and io_uring are system calls")]
    fn close_and_cancel_finish_each_operation_exactly_once() {
        for choice in [IoDriverChoice::Epoll, IoDriverChoice::IoUring] {
            if choice == IoDriverChoice::IoUring && !io_uring_available() {
                continue;
            }
            let mut driver = IoDriver::new(IoKernel::open(choice, 4).unwrap(), 4, 4);
            let mut buffers = IoBuffers::new(4, 64);
            let receive = |buffers: &mut IoBuffers| {
                let id = buffers.alloc(Handle::NONE).unwrap();
                (id, buffers.lend(id, true).unwrap())
            };
            let submission = |entry, op, receive| IoSubmission {
                token: token(entry),
                op,
                input: None,
                receive: Some(receive),
            };
            let bind = IoOp::UdpBind { addr: SocketAddr::from(([127, 0, 0, 1], 0)) };
            driver
                .submit(IoSubmission { token: token(0), op: bind, input: None, receive: None })
                .unwrap();
            let IoResult::Opened(socket) = reap_soon(&mut driver).result else {
                panic!("{choice:?}: bound")
            };

            // A receive nobody answers, cancelled (twice), then one closed under it.
            let (first_id, loan) = receive(&mut buffers);
            let recv = IoOp::UdpRecvFrom { socket, len_max: 64 };
            driver.submit(submission(1, recv, loan)).unwrap();
            driver.poll();
            assert!(!driver.has_ready(), "{choice:?}: nothing arrived");
            let (_, loan) = receive(&mut buffers);
            let refused = driver.submit(submission(1, recv, loan)).unwrap_err();
            assert_eq!(refused.result, IoResult::Failed(IoError::SubmissionFull));
            buffers.reclaim(refused.receive.unwrap());
            driver.cancel(token(1));
            driver.cancel(token(1));
            driver.cancel(token(3));
            let cancelled = reap_soon(&mut driver);
            assert_eq!(
                (cancelled.token, cancelled.result),
                (token(1), IoResult::Failed(IoError::TimedOut))
            );
            assert_eq!(buffers.reclaim(cancelled.receive.unwrap()), first_id);

            let (second_id, loan) = receive(&mut buffers);
            driver.submit(submission(1, recv, loan)).unwrap();
            driver.poll();
            let close = IoOp::Close { handle: socket };
            driver
                .submit(IoSubmission { token: token(2), op: close, input: None, receive: None })
                .unwrap();
            let aborted = reap_soon(&mut driver);
            assert_eq!(
                (aborted.token, aborted.result),
                (token(1), IoResult::Failed(IoError::ConnectionAborted)),
                "{choice:?}"
            );
            assert_eq!(buffers.reclaim(aborted.receive.unwrap()), second_id);
            let closed = reap_soon(&mut driver);
            assert_eq!((closed.token, closed.result), (token(2), IoResult::Done), "{choice:?}");
            driver.poll();
            assert!(driver.reap().is_none(), "{choice:?}: each completion once");

            let (_, loan) = receive(&mut buffers);
            let stale = driver.submit(submission(3, recv, loan)).unwrap_err();
            assert_eq!(stale.result, IoResult::Failed(IoError::InvalidHandle), "{choice:?}");
            buffers.reclaim(stale.receive.unwrap());
            let report = driver.report(0);
            assert_eq!(report.driver, Some(IoDriverKind::from(choice)));
            assert_eq!((report.submitted, report.completed, report.in_flight), (6, 6, 0));
            assert_eq!((report.cancels, report.handles_in_use), (1, 0), "{report:?}");
        }
    }

    /// A receive loan of its own buffer pool (dropped with the test).
    fn buffers_receive() -> crate::io::LentBuffer {
        let mut buffers = IoBuffers::new(1, 8);
        let id = buffers.alloc(Handle::NONE).unwrap();
        buffers.lend(id, true).unwrap()
    }

    /// The receive cap and send length follow the operation and the buffer.
    #[test]
    fn lengths_follow_the_operation_and_the_buffer() {
        let socket = IoHandle::from_raw(1);
        assert_eq!(receive_cap(IoOp::TcpRecv { socket, len_max: 100 }, 64), 64);
        assert_eq!(receive_cap(IoOp::UdpRecvFrom { socket, len_max: 10 }, 64), 10);
        assert_eq!(receive_cap(IoOp::FileFsync { file: socket }, 64), 0);
        assert_eq!(send_len(IoOp::FileFsync { file: socket }), 0);
        assert_eq!("epoll".parse(), Ok(IoDriverChoice::Epoll));
        assert_eq!("io_uring".parse(), Ok(IoDriverChoice::IoUring));
        assert_eq!("auto".parse(), Ok(IoDriverChoice::Auto));
        assert_eq!("kqueue".parse::<IoDriverChoice>(), Err(ParseIoDriverError));
    }
}
