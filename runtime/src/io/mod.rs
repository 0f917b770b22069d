//! I/O operations, their completions, and the shard-owned buffers data travels in.
//!
//! An isolate submits one operation at a time with `Effect::Io(op)` and waits for its
//! completion, which arrives as a `Tag::IO` message whose payload decodes to an
//! [`IoCompletion`]. Data never lives in isolate memory while the backend (or a kernel) may
//! touch it: sends name a shard-owned [`BufferId`] (filled with `ctx.buffer_write`);
//! receives land in a shard buffer that the handler reads with `ctx.io_data()` during the
//! completion's handler call only.
//!
//! The buffer contract, which a kernel backend (io_uring) relies on: a buffer an operation
//! uses is lent to it ([`LentBuffer`], in the [`IoSubmission`] the backend receives) and
//! owned by the operation until the backend hands the loan back with the completion
//! ([`IoReaped`]). Meanwhile the shard cannot read, write, free or lend it again, a
//! teardown of the isolate leaves it alone (the completion comes back stale and frees it
//! then), and the buffers' memory lives as long as any loan of it (`region`).
//!
//! An operation submitted with `Effect::IoWithin` is cancelled through the backend
//! (`Backend::io_cancel`) when its timeout passes; its completion still comes through
//! `io_reap`, as `Failed(TimedOut)` unless it finished first, and brings the loans back.
//!
//! These types are provisional until a production backend implements them; the test
//! backend completes them from a script. Errors are an enum of their own, never errno
//! values.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use std::rc::Rc;

use crate::footprint::array_bytes;
use crate::handle::Handle;

mod region;

pub use region::LentBuffer;
use region::Region;

/// A socket or file owned by the shard, named by the backend that opened it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct IoHandle(u32);

impl IoHandle {
    /// Names nothing.
    pub const NONE: IoHandle = IoHandle(0);

    /// A backend's descriptor number.
    pub const fn from_raw(raw: u32) -> IoHandle {
        IoHandle(raw)
    }

    /// The backend's descriptor number.
    pub const fn to_raw(self) -> u32 {
        self.0
    }
}

impl fmt::Debug for IoHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "io{}", self.0)
    }
}

/// A shard-owned buffer: index (low 16 bits) and generation (high 16 bits).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BufferId(u32);

impl BufferId {
    fn new(index: u16, generation: u16) -> BufferId {
        BufferId(((generation as u32) << 16) | index as u32)
    }

    fn index(self) -> usize {
        (self.0 & 0xffff) as usize
    }

    fn generation(self) -> u16 {
        (self.0 >> 16) as u16
    }

    /// Raw bits.
    pub const fn to_raw(self) -> u32 {
        self.0
    }
}

impl fmt::Debug for BufferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "buf{}g{}", self.index(), self.generation())
    }
}

/// How `IoOp::FileOpen` opens a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Read and write; the file must exist.
    ReadWrite,
    /// Read and write, created if missing.
    Create,
    /// Read and write, created if missing, truncated to zero length.
    Truncate,
}

/// One I/O operation. Data to send is in a shard buffer; the shard owns it until the
/// operation completes and frees it then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoOp {
    /// Open a listening TCP socket.
    TcpListen {
        /// Local address.
        addr: SocketAddr,
        /// Pending-connection queue length.
        backlog: u32,
    },
    /// Accept one connection on a listening socket.
    TcpAccept {
        /// The listener.
        listener: IoHandle,
    },
    /// Connect a new TCP socket.
    TcpConnect {
        /// Remote address.
        addr: SocketAddr,
    },
    /// Send `len` bytes of `buffer`.
    TcpSend {
        /// The connected socket.
        socket: IoHandle,
        /// The data; owned by the shard from submission.
        buffer: BufferId,
        /// Bytes to send from the start of the buffer.
        len: u32,
    },
    /// Receive at most `len_max` bytes.
    TcpRecv {
        /// The connected socket.
        socket: IoHandle,
        /// Upper bound (also capped by the buffer size).
        len_max: u32,
    },
    /// Open a UDP socket bound to `addr`.
    UdpBind {
        /// Local address.
        addr: SocketAddr,
    },
    /// Send one datagram.
    UdpSendTo {
        /// The socket.
        socket: IoHandle,
        /// Destination.
        addr: SocketAddr,
        /// The data; owned by the shard from submission.
        buffer: BufferId,
        /// Bytes to send.
        len: u32,
    },
    /// Receive one datagram.
    UdpRecvFrom {
        /// The socket.
        socket: IoHandle,
        /// Upper bound (also capped by the buffer size).
        len_max: u32,
    },
    /// Open a file whose path is the first `path_len` bytes of `path` (UTF-8).
    FileOpen {
        /// The path; owned by the shard from submission.
        path: BufferId,
        /// Path length in bytes.
        path_len: u32,
        /// How to open.
        mode: OpenMode,
    },
    /// Read at most `len_max` bytes at `offset`.
    FileRead {
        /// The file.
        file: IoHandle,
        /// Byte offset.
        offset: u64,
        /// Upper bound (also capped by the buffer size).
        len_max: u32,
    },
    /// Write `len` bytes of `buffer` at `offset`.
    FileWrite {
        /// The file.
        file: IoHandle,
        /// Byte offset.
        offset: u64,
        /// The data; owned by the shard from submission.
        buffer: BufferId,
        /// Bytes to write.
        len: u32,
    },
    /// Make written data durable.
    FileFsync {
        /// The file.
        file: IoHandle,
    },
    /// Close a socket or file.
    Close {
        /// What to close.
        handle: IoHandle,
    },
}

impl IoOp {
    /// Which operation this is.
    pub fn kind(&self) -> IoOpKind {
        match self {
            IoOp::TcpListen { .. } => IoOpKind::TcpListen,
            IoOp::TcpAccept { .. } => IoOpKind::TcpAccept,
            IoOp::TcpConnect { .. } => IoOpKind::TcpConnect,
            IoOp::TcpSend { .. } => IoOpKind::TcpSend,
            IoOp::TcpRecv { .. } => IoOpKind::TcpRecv,
            IoOp::UdpBind { .. } => IoOpKind::UdpBind,
            IoOp::UdpSendTo { .. } => IoOpKind::UdpSendTo,
            IoOp::UdpRecvFrom { .. } => IoOpKind::UdpRecvFrom,
            IoOp::FileOpen { .. } => IoOpKind::FileOpen,
            IoOp::FileRead { .. } => IoOpKind::FileRead,
            IoOp::FileWrite { .. } => IoOpKind::FileWrite,
            IoOp::FileFsync { .. } => IoOpKind::FileFsync,
            IoOp::Close { .. } => IoOpKind::Close,
        }
    }

    /// The buffer the operation hands to the shard (data to send, a path), if any.
    pub fn input_buffer(&self) -> Option<BufferId> {
        match *self {
            IoOp::TcpSend { buffer, .. }
            | IoOp::UdpSendTo { buffer, .. }
            | IoOp::FileWrite { buffer, .. } => Some(buffer),
            IoOp::FileOpen { path, .. } => Some(path),
            _ => None,
        }
    }

    /// The most bytes the operation may receive, if it receives.
    pub fn receive_len_max(&self) -> Option<u32> {
        match *self {
            IoOp::TcpRecv { len_max, .. }
            | IoOp::UdpRecvFrom { len_max, .. }
            | IoOp::FileRead { len_max, .. } => Some(len_max),
            _ => None,
        }
    }
}

/// Which operation a completion belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum IoOpKind {
    #[allow(missing_docs)]
    TcpListen = 1,
    #[allow(missing_docs)]
    TcpAccept = 2,
    #[allow(missing_docs)]
    TcpConnect = 3,
    #[allow(missing_docs)]
    TcpSend = 4,
    #[allow(missing_docs)]
    TcpRecv = 5,
    #[allow(missing_docs)]
    UdpBind = 6,
    #[allow(missing_docs)]
    UdpSendTo = 7,
    #[allow(missing_docs)]
    UdpRecvFrom = 8,
    #[allow(missing_docs)]
    FileOpen = 9,
    #[allow(missing_docs)]
    FileRead = 10,
    #[allow(missing_docs)]
    FileWrite = 11,
    #[allow(missing_docs)]
    FileFsync = 12,
    #[allow(missing_docs)]
    Close = 13,
}

impl IoOpKind {
    const ALL: [IoOpKind; 13] = [
        IoOpKind::TcpListen,
        IoOpKind::TcpAccept,
        IoOpKind::TcpConnect,
        IoOpKind::TcpSend,
        IoOpKind::TcpRecv,
        IoOpKind::UdpBind,
        IoOpKind::UdpSendTo,
        IoOpKind::UdpRecvFrom,
        IoOpKind::FileOpen,
        IoOpKind::FileRead,
        IoOpKind::FileWrite,
        IoOpKind::FileFsync,
        IoOpKind::Close,
    ];

    fn from_u8(value: u8) -> Option<IoOpKind> {
        IoOpKind::ALL.get(usize::from(value).checked_sub(1)?).copied()
    }
}

/// Why an I/O operation failed. Its own enum: it never collides with errno values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum IoError {
    /// The `IoHandle` names nothing open.
    InvalidHandle = 1,
    /// The `BufferId` names no buffer the isolate holds.
    InvalidBuffer = 2,
    /// The shard's buffer pool is empty.
    BuffersExhausted = 3,
    /// The shard submitted as many operations as it may in one tick.
    SubmissionFull = 4,
    /// The backend does not implement this operation.
    Unsupported = 5,
    /// A write or read range lies outside the buffer.
    OutOfBounds = 6,
    /// The path does not exist.
    NotFound = 7,
    /// The operating system refused.
    PermissionDenied = 8,
    /// Nobody listens at the address.
    ConnectionRefused = 9,
    /// The peer reset the connection.
    ConnectionReset = 10,
    /// The connection was aborted locally.
    ConnectionAborted = 11,
    /// The socket is not connected.
    NotConnected = 12,
    /// The local address is taken.
    AddrInUse = 13,
    /// The local address does not exist here.
    AddrNotAvailable = 14,
    /// Writing to a closed connection.
    BrokenPipe = 15,
    /// The operation timed out in the backend.
    TimedOut = 16,
    /// The disk is full.
    StorageFull = 17,
    /// The path is not valid UTF-8 or the arguments are malformed.
    InvalidInput = 18,
    /// Anything else the backend reports.
    Other = 19,
    /// The isolate owns as many open handles as it may (`IO_HANDLES_PER_ISOLATE_MAX`): the
    /// socket or file that was opened for it is closed again.
    TooManyHandles = 20,
}

impl IoError {
    const ALL: [IoError; 20] = [
        IoError::InvalidHandle,
        IoError::InvalidBuffer,
        IoError::BuffersExhausted,
        IoError::SubmissionFull,
        IoError::Unsupported,
        IoError::OutOfBounds,
        IoError::NotFound,
        IoError::PermissionDenied,
        IoError::ConnectionRefused,
        IoError::ConnectionReset,
        IoError::ConnectionAborted,
        IoError::NotConnected,
        IoError::AddrInUse,
        IoError::AddrNotAvailable,
        IoError::BrokenPipe,
        IoError::TimedOut,
        IoError::StorageFull,
        IoError::InvalidInput,
        IoError::Other,
        IoError::TooManyHandles,
    ];

    fn from_u8(value: u8) -> Option<IoError> {
        IoError::ALL.get(usize::from(value).checked_sub(1)?).copied()
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for IoError {}

/// What an operation produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoResult {
    /// A listener, connected socket, bound UDP socket or open file.
    Opened(IoHandle),
    /// An accepted connection and its peer.
    Accepted {
        /// The new socket.
        socket: IoHandle,
        /// The peer's address.
        peer: SocketAddr,
    },
    /// Bytes sent or written.
    Transferred(u32),
    /// Bytes received or read, readable with `ctx.io_data()` in this handler call; for
    /// `UdpRecvFrom`, the sender.
    Received {
        /// Bytes available.
        len: u32,
        /// The sender of a datagram.
        from: Option<SocketAddr>,
    },
    /// Fsync or close finished.
    Done,
    /// The operation failed.
    Failed(IoError),
}

/// A completed operation, as carried in a `Tag::IO` message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoCompletion {
    /// The operation that completed.
    pub op: IoOpKind,
    /// What it produced.
    pub result: IoResult,
}

/// Encoded size of an `IoCompletion` in a message payload.
pub(crate) const COMPLETION_WIRE_SIZE: usize = 32;

impl IoCompletion {
    /// Fixed little-endian layout: op (1), result kind (1), error (1), address family (1),
    /// port (2), reserved (2), value (4), handle (4), reserved (0..), address (16).
    pub(crate) fn encode(&self) -> [u8; COMPLETION_WIRE_SIZE] {
        let mut wire = [0u8; COMPLETION_WIRE_SIZE];
        wire[0] = self.op as u8;
        let (kind, error, value, handle, addr) = match self.result {
            IoResult::Opened(handle) => (1, 0, 0, handle.0, None),
            IoResult::Accepted { socket, peer } => (2, 0, 0, socket.0, Some(peer)),
            IoResult::Transferred(bytes) => (3, 0, bytes, 0, None),
            IoResult::Received { len, from } => (4, 0, len, 0, from),
            IoResult::Done => (5, 0, 0, 0, None),
            IoResult::Failed(error) => (6, error as u8, 0, 0, None),
        };
        wire[1] = kind;
        wire[2] = error;
        wire[8..12].copy_from_slice(&value.to_le_bytes());
        wire[12..16].copy_from_slice(&handle.to_le_bytes());
        if let Some(addr) = addr {
            wire[3] = if addr.is_ipv4() { 4 } else { 6 };
            wire[4..6].copy_from_slice(&addr.port().to_le_bytes());
            match addr.ip() {
                IpAddr::V4(ip) => wire[16..20].copy_from_slice(&ip.octets()),
                IpAddr::V6(ip) => wire[16..32].copy_from_slice(&ip.octets()),
            }
        }
        wire
    }

    /// Inverse of `encode`; `None` for bytes `encode` never produces.
    pub(crate) fn decode(wire: &[u8]) -> Option<IoCompletion> {
        if wire.len() != COMPLETION_WIRE_SIZE {
            return None;
        }
        let op = IoOpKind::from_u8(wire[0])?;
        let value = u32::from_le_bytes(wire[8..12].try_into().ok()?);
        let handle = IoHandle(u32::from_le_bytes(wire[12..16].try_into().ok()?));
        let port = u16::from_le_bytes([wire[4], wire[5]]);
        let addr = match wire[3] {
            0 => None,
            4 => Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(wire[16], wire[17], wire[18], wire[19])),
                port,
            )),
            6 => {
                let octets: [u8; 16] = wire[16..32].try_into().ok()?;
                Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port))
            }
            _ => return None,
        };
        let result = match wire[1] {
            1 => IoResult::Opened(handle),
            2 => IoResult::Accepted { socket: handle, peer: addr? },
            3 => IoResult::Transferred(value),
            4 => IoResult::Received { len: value, from: addr },
            5 => IoResult::Done,
            6 => IoResult::Failed(IoError::from_u8(wire[2])?),
            _ => return None,
        };
        Some(IoCompletion { op, result })
    }
}

/// Names one submission: the isolate incarnation and its I/O sequence number. A completion
/// whose token no longer matches (the isolate stopped, or was restarted) is stale: it is
/// counted and its buffer freed, and it never reaches the new incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoToken {
    pub(crate) isolate: Handle,
    pub(crate) sequence: u32,
    /// The shard's in-flight entry holding the operation's buffers.
    pub(crate) entry: u32,
}

impl IoToken {
    /// The isolate that submitted.
    pub fn isolate(&self) -> Handle {
        self.isolate
    }

    /// The isolate and its I/O sequence number: what the trace's `IoSubmit` names.
    pub fn parts(&self) -> (Handle, u32) {
        (self.isolate, self.sequence)
    }

    /// Raw form (isolate handle, then sequence and entry), for backends that store tokens.
    pub fn to_raw(&self) -> (u64, u64) {
        (self.isolate.to_raw(), ((self.sequence as u64) << 32) | self.entry as u64)
    }

    /// Rebuilds a token; a token that names nothing is simply stale.
    pub fn from_raw(isolate: u64, rest: u64) -> IoToken {
        IoToken {
            isolate: Handle::from_raw(isolate),
            sequence: (rest >> 32) as u32,
            entry: rest as u32,
        }
    }
}

/// An operation as submitted, without its buffers: what logs and queues keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoRequest {
    /// Names the submitter for the completion.
    pub token: IoToken,
    /// The operation.
    pub op: IoOp,
}

/// What the shard hands the backend: the operation, its token, and the buffers lent to
/// it until the completion. The backend keeps the submission (or at least its loans) until
/// the operation completes, then hands them back with [`IoSubmission::complete`].
#[derive(Debug)]
pub struct IoSubmission {
    /// Names the submitter for the completion.
    pub token: IoToken,
    /// The operation.
    pub op: IoOp,
    /// The bytes to send or write, or the path to open (`IoOp::input_buffer`), read-only.
    pub input: Option<LentBuffer>,
    /// Where received bytes go, for receiving operations (`IoOp::receive_len_max`).
    pub receive: Option<LentBuffer>,
}

impl IoSubmission {
    /// The operation without its buffers.
    pub fn request(&self) -> IoRequest {
        IoRequest { token: self.token, op: self.op }
    }

    /// The bytes to send (cut to the operation's length), or the path; empty if none.
    pub fn input_bytes(&self) -> &[u8] {
        let len = match self.op {
            IoOp::TcpSend { len, .. }
            | IoOp::UdpSendTo { len, .. }
            | IoOp::FileWrite { len, .. }
            | IoOp::FileOpen { path_len: len, .. } => len as usize,
            _ => 0,
        };
        self.input.as_ref().map_or(&[], |loan| &loan.bytes()[..len.min(loan.len())])
    }

    /// Completes the operation: writes `data` (cut to the operation's limit and the buffer
    /// size) into the receive buffer for a `Received` result, setting its `len` to what
    /// fit, and hands the loans back.
    pub fn complete(mut self, result: IoResult, data: &[u8]) -> IoReaped {
        let result = match result {
            IoResult::Received { from, .. } => {
                let limit = self.op.receive_len_max().unwrap_or(0) as usize;
                let written = match self.receive.as_mut().and_then(LentBuffer::bytes_mut) {
                    Some(buffer) => {
                        let n = data.len().min(limit).min(buffer.len());
                        buffer[..n].copy_from_slice(&data[..n]);
                        n
                    }
                    None => 0,
                };
                // At most `limit`, a u32.
                IoResult::Received { len: written as u32, from }
            }
            other => other,
        };
        IoReaped { token: self.token, result, input: self.input, receive: self.receive }
    }
}

/// A completion the backend reports, with the loans of its submission.
#[derive(Debug)]
pub struct IoReaped {
    /// The submission's token.
    pub token: IoToken,
    /// What happened. For `Received`, the bytes are already in the receive buffer.
    pub result: IoResult,
    /// The submission's input loan, handed back.
    pub input: Option<LentBuffer>,
    /// The submission's receive loan, handed back.
    pub receive: Option<LentBuffer>,
}

/// The shard's buffers for I/O data: a fixed count of fixed-size buffers, allocated at boot.
/// Each buffer is free, held by an isolate, held by the shard for an operation, or lent to
/// the backend (see the module documentation); only the first three can be read or
/// written here.
#[derive(Debug)]
pub struct IoBuffers {
    region: Rc<Region>,
    buffer_size: usize,
    generation: Box<[u16]>,
    /// Holder of each buffer: an isolate, `Handle::NONE` while free or while the shard holds
    /// it for an operation in flight.
    holder: Box<[Handle]>,
    in_use: Box<[bool]>,
    /// Lent to an operation: nothing here may touch it until the loan comes back.
    lent: Box<[bool]>,
    lent_count: usize,
    free: Box<[u16]>,
    free_len: usize,
}

impl IoBuffers {
    /// `count` buffers of `buffer_size` bytes. Sizes are validated by the spec.
    pub(crate) fn new(count: u16, buffer_size: u32) -> IoBuffers {
        let count_usize = usize::from(count);
        let buffer_size = buffer_size as usize;
        IoBuffers {
            region: Rc::new(Region::new(count_usize, buffer_size)),
            buffer_size,
            generation: vec![1; count_usize].into_boxed_slice(),
            holder: vec![Handle::NONE; count_usize].into_boxed_slice(),
            in_use: vec![false; count_usize].into_boxed_slice(),
            lent: vec![false; count_usize].into_boxed_slice(),
            lent_count: 0,
            free: (0..count).rev().collect(),
            free_len: count_usize,
        }
    }

    /// Bytes `new(count, buffer_size)` allocates: the buffers' memory, per buffer its
    /// generation, holder, two flags and a free-list entry, and the shared region's header
    /// (its reference counts and fields).
    pub(crate) fn bytes_for(count: u16, buffer_size: u32) -> u64 {
        let per_buffer =
            size_of::<u16>() + size_of::<Handle>() + 2 * size_of::<bool>() + size_of::<u16>();
        array_bytes(u64::from(count), per_buffer)
            .saturating_add(u64::from(count).saturating_mul(u64::from(buffer_size)))
            .saturating_add((2 * size_of::<usize>() + size_of::<Region>()) as u64)
    }

    /// Buffers lent to operations now.
    pub fn lent_count(&self) -> usize {
        self.lent_count
    }

    /// Bytes per buffer.
    pub fn buffer_size(&self) -> usize {
        self.buffer_size
    }

    /// Buffers not in use.
    pub fn free_count(&self) -> usize {
        self.free_len
    }

    /// The bytes of a buffer in use and not lent.
    pub fn get(&self, id: BufferId) -> Option<&[u8]> {
        self.check(id)?;
        // SAFETY: the buffer is not lent (checked), so no loan reaches it, and `&self`
        // keeps `get_mut` (the only other way to a slice) out for the slice's lifetime.
        Some(unsafe { self.region.slice(id.index()) })
    }

    /// The bytes of a buffer in use and not lent, to write into.
    pub fn get_mut(&mut self, id: BufferId) -> Option<&mut [u8]> {
        self.check(id)?;
        // SAFETY: the buffer is not lent (checked), so no loan reaches it, and `&mut self`
        // makes this the only slice of it for its lifetime.
        Some(unsafe { self.region.slice_mut(id.index()) })
    }

    /// `Some` when `id` names a buffer in use, of its current generation, and not lent.
    fn check(&self, id: BufferId) -> Option<()> {
        let index = id.index();
        (index < self.generation.len()
            && self.in_use[index]
            && !self.lent[index]
            && self.generation[index] == id.generation())
        .then_some(())
    }

    /// Lends a buffer the shard holds for an operation (`take_from_holder`, or a receive
    /// buffer allocated to no isolate); `writable` for a receive buffer. `None` if `id`
    /// names no such buffer.
    pub(crate) fn lend(&mut self, id: BufferId, writable: bool) -> Option<LentBuffer> {
        self.check(id)?;
        let index = id.index();
        if !self.holder[index].is_none() {
            return None;
        }
        self.lent[index] = true;
        self.lent_count += 1;
        // SAFETY: the buffer is now marked lent, so `check` refuses it to `get`, `get_mut`,
        // `lend` and `release` until `reclaim` takes the loan back.
        Some(unsafe { LentBuffer::new(&self.region, id.index() as u16, id.generation(), writable) })
    }

    /// Takes a loan back: the buffer is the shard's again, for the operation's entry to
    /// free. Panics on a loan of another shard's buffers, or of a buffer not lent: a
    /// backend handed back what it was never given, which would break the contract.
    pub(crate) fn reclaim(&mut self, loan: LentBuffer) -> BufferId {
        let (region, index, generation) = loan.parts();
        assert!(Rc::ptr_eq(region, &self.region), "a loan comes back to the shard that lent it");
        let id = BufferId::new(index, generation);
        let index = usize::from(index);
        assert!(
            self.lent[index] && self.generation[index] == generation,
            "a loan comes back once, for the buffer lent"
        );
        self.lent[index] = false;
        self.lent_count -= 1;
        id
    }

    pub(crate) fn alloc(&mut self, holder: Handle) -> Result<BufferId, IoError> {
        if self.free_len == 0 {
            return Err(IoError::BuffersExhausted);
        }
        self.free_len -= 1;
        let index = usize::from(self.free[self.free_len]);
        self.in_use[index] = true;
        self.holder[index] = holder;
        // Index fits in u16: the count does.
        Ok(BufferId::new(index as u16, self.generation[index]))
    }

    /// Whether `holder` holds `id`.
    pub(crate) fn held_by(&self, id: BufferId, holder: Handle) -> bool {
        self.check(id).is_some() && self.holder[id.index()] == holder
    }

    /// Moves a buffer from its isolate to the shard (an operation took it).
    pub(crate) fn take_from_holder(&mut self, id: BufferId) {
        self.holder[id.index()] = Handle::NONE;
    }

    /// Frees a buffer in use; nothing for a stale id or a buffer lent (its operation owns
    /// it: the completion frees it).
    pub(crate) fn release(&mut self, id: BufferId) {
        if self.check(id).is_none() {
            return;
        }
        let index = id.index();
        self.in_use[index] = false;
        self.holder[index] = Handle::NONE;
        self.generation[index] = self.generation[index].wrapping_add(1).max(1);
        // Index fits in u16: the count does.
        self.free[self.free_len] = index as u16;
        self.free_len += 1;
    }

    /// Frees every buffer `holder` still holds (its teardown). Bounded by the pool size; a
    /// per-isolate list would avoid the scan, which only teardown pays.
    pub(crate) fn release_held_by(&mut self, holder: Handle) -> u32 {
        let mut released = 0;
        for index in 0..self.holder.len() {
            if self.in_use[index] && self.holder[index] == holder {
                // Index fits in u16: the count does.
                self.release(BufferId::new(index as u16, self.generation[index]));
                released += 1;
            }
        }
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every result kind survives the wire encoding, and malformed bytes decode to `None`.
    #[test]
    fn completion_round_trip() {
        let v4: SocketAddr = "10.1.2.3:8080".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        let results = [
            IoResult::Opened(IoHandle(7)),
            IoResult::Accepted { socket: IoHandle(9), peer: v6 },
            IoResult::Transferred(1234),
            IoResult::Received { len: 5, from: Some(v4) },
            IoResult::Received { len: 0, from: None },
            IoResult::Done,
            IoResult::Failed(IoError::ConnectionReset),
        ];
        for (index, result) in results.into_iter().enumerate() {
            let completion = IoCompletion { op: IoOpKind::ALL[index], result };
            assert_eq!(IoCompletion::decode(&completion.encode()), Some(completion));
        }
        assert_eq!(IoCompletion::decode(&[0; COMPLETION_WIRE_SIZE]), None);
        assert_eq!(IoCompletion::decode(&[1; 3]), None);
    }

    /// Buffers are named by generation: a released id is stale, holders are tracked.
    #[test]
    fn buffers() {
        let mut buffers = IoBuffers::new(2, 8);
        let owner = Handle::from_raw(0x42);
        let a = buffers.alloc(owner).unwrap();
        let b = buffers.alloc(owner).unwrap();
        assert_eq!(buffers.alloc(owner), Err(IoError::BuffersExhausted));
        buffers.get_mut(a).unwrap()[0] = 9;
        assert_eq!(buffers.get(a).unwrap()[0], 9);
        buffers.take_from_holder(b);
        assert!(!buffers.held_by(b, owner));
        assert_eq!(buffers.release_held_by(owner), 1);
        assert_eq!(buffers.get(a), None, "released ids are stale");
        buffers.release(b);
        assert_eq!(buffers.free_count(), 2);
    }

    /// A lent buffer belongs to its operation: the shard can neither read, write, free nor
    /// lend it again until the loan comes back, and other buffers stay usable meanwhile
    /// (this test also runs under Miri, which checks that the loan's bytes and the other
    /// buffers' slices never alias).
    #[test]
    fn a_lent_buffer_is_the_operations() {
        let mut buffers = IoBuffers::new(3, 8);
        let owner = Handle::from_raw(0x42);
        let send = buffers.alloc(owner).unwrap();
        buffers.get_mut(send).unwrap()[..4].copy_from_slice(b"ping");
        buffers.take_from_holder(send);
        let receive = buffers.alloc(Handle::NONE).unwrap();
        let input = buffers.lend(send, false).expect("held by the shard");
        let mut output = buffers.lend(receive, true).expect("held by the shard");
        assert_eq!(buffers.lent_count(), 2);

        // The shard cannot reach them.
        assert_eq!(buffers.get(send), None);
        assert_eq!(buffers.get_mut(receive), None);
        assert!(buffers.lend(send, false).is_none(), "lent once");
        buffers.release(send);
        assert_eq!(buffers.free_count(), 1, "a lent buffer is not freed");

        // The operation reads one and writes the other while the shard writes a third.
        let other = buffers.alloc(owner).unwrap();
        let other_bytes = buffers.get_mut(other).unwrap();
        let written = output.bytes_mut().expect("a receive loan is writable");
        written[..4].copy_from_slice(b"pong");
        other_bytes[0] = 7;
        assert_eq!(&input.bytes()[..4], b"ping");
        let mut input = input;
        assert!(input.bytes_mut().is_none() && input.as_mut_ptr().is_none(), "input is read-only");

        // Back to the shard: readable, then freed.
        assert_eq!(buffers.reclaim(input), send);
        assert_eq!(buffers.reclaim(output), receive);
        assert_eq!(buffers.lent_count(), 0);
        assert_eq!(&buffers.get(receive).unwrap()[..4], b"pong");
        buffers.release(send);
        buffers.release(receive);
        assert_eq!(buffers.free_count(), 2);
    }

    /// A loan keeps the buffers' memory alive after the shard's buffers are gone, as a
    /// kernel may still hold it.
    #[test]
    fn a_loan_outlives_the_shard() {
        let mut buffers = IoBuffers::new(1, 4);
        let id = buffers.alloc(Handle::NONE).unwrap();
        let mut loan = buffers.lend(id, true).unwrap();
        drop(buffers);
        loan.bytes_mut().unwrap().copy_from_slice(b"late");
        assert_eq!(loan.bytes(), b"late");
    }

    /// A loan handed back to the wrong shard is a broken contract, not a silent mix-up.
    #[test]
    #[should_panic(expected = "a loan comes back to the shard that lent it")]
    fn a_loan_comes_back_to_its_own_shard() {
        let mut one = IoBuffers::new(1, 4);
        let mut two = IoBuffers::new(1, 4);
        let id = one.alloc(Handle::NONE).unwrap();
        two.alloc(Handle::NONE).unwrap();
        let loan = one.lend(id, true).unwrap();
        two.reclaim(loan);
    }
}
