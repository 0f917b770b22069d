//! The epoll driver: non-blocking sockets registered edge-triggered, each operation tried at
//! submission and again whenever its handle reports readiness; files done synchronously
//! (see the parent module's documentation).
//!
//! Why no readiness is lost with edge triggering: an operation is only left waiting after
//! its system call said `EAGAIN`, which means the socket was not ready then; the next
//! change of readiness (data, buffer space, a connection, an error, the peer's end) is a
//! new edge, reported at the next poll, and every operation waiting on the handle is tried
//! then. Readiness of a handle nothing waits on is dropped: the next operation tries the
//! socket itself at submission.

use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno as NixErrno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use super::errno::io_error;
use super::ops::{NIL, Stage};
use super::sys::{self, Errno};
use super::{Start, Tables, receive_cap, send_len};
use crate::io::{IoError, IoHandle, IoOp, IoResult};

/// Readiness events taken from the kernel per poll; more wait for the next poll (the epoll
/// descriptor stays readable, so a parked shard wakes for them).
const EVENTS_PER_POLL: usize = 256;

/// A new epoll instance (close-on-exec).
pub(crate) fn open() -> std::io::Result<Epoll> {
    Ok(Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?)
}

/// The epoll side of a shard's driver.
#[derive(Debug)]
pub(crate) struct EpollEngine {
    epoll: Epoll,
    events: Box<[EpollEvent]>,
    /// Operations waiting for readiness.
    waiting: usize,
}

impl EpollEngine {
    pub(crate) fn new(epoll: Epoll) -> EpollEngine {
        EpollEngine { epoll, events: vec![EpollEvent::empty(); EVENTS_PER_POLL].into(), waiting: 0 }
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.epoll.0.as_fd()
    }

    /// Adds a socket to the interest list: both directions, edge-triggered, the handle as
    /// the event's data.
    pub(crate) fn register(&self, fd: BorrowedFd<'_>, handle: IoHandle) -> Result<(), Errno> {
        let flags = EpollFlags::EPOLLIN
            | EpollFlags::EPOLLOUT
            | EpollFlags::EPOLLRDHUP
            | EpollFlags::EPOLLET;
        let event = EpollEvent::new(flags, u64::from(handle.to_raw()));
        self.epoll.add(fd, event).map_err(|error| error as Errno)
    }

    /// Starts operation `entry` (on its handle's list already): files at once, sockets
    /// tried now and left waiting if not ready.
    pub(crate) fn start(&mut self, t: &mut Tables, entry: u32) -> Start {
        let op = t.ops.op(entry).request();
        let attempt = match op {
            IoOp::FileRead { .. } | IoOp::FileWrite { .. } | IoOp::FileFsync { .. } => {
                Some(file(t, entry))
            }
            IoOp::TcpConnect { addr } => self.connect(t, entry, addr),
            _ => self.attempt(t, entry),
        };
        match attempt {
            Some(result) => Start::Done(result),
            None => {
                t.ops.op_mut(entry).stage = Stage::Waiting;
                self.waiting += 1;
                Start::Pending
            }
        }
    }

    /// A waiting operation ends for `reason` (a timeout, its handle's close): at once, as
    /// nothing but this driver holds it.
    pub(crate) fn abort(&mut self, t: &mut Tables, entry: u32, reason: IoError) {
        if t.ops.op(entry).stage != Stage::Waiting {
            return;
        }
        self.waiting -= 1;
        t.complete(entry, IoResult::Failed(reason));
    }

    /// Takes the readiness the kernel reported, without blocking, and tries the
    /// operations waiting on each ready handle.
    pub(crate) fn poll(&mut self, t: &mut Tables) {
        if t.handles.in_use() == 0 {
            // Nothing registered, so nothing to report.
            return;
        }
        let count = match self.epoll.wait(&mut self.events, EpollTimeout::ZERO) {
            Ok(count) => count,
            Err(NixErrno::EINTR) => 0,
            Err(error) => panic!("epoll_wait on the shard's own epoll instance failed: {error}"),
        };
        for index in 0..count {
            // The data is a handle's raw bits (`register`).
            let handle = IoHandle::from_raw(self.events[index].data() as u32);
            self.ready(t, handle);
        }
    }

    /// Tries every operation waiting on `handle`, in submission order.
    fn ready(&mut self, t: &mut Tables, handle: IoHandle) {
        let Some(open) = t.handles.get(handle) else { return };
        let mut at = open.ops.first();
        while at != NIL {
            let next = t.ops.next_in_list(at);
            if t.ops.op(at).stage == Stage::Waiting
                && let Some(result) = self.attempt(t, at)
            {
                self.waiting -= 1;
                t.complete(at, result);
                if t.handles.get(handle).is_none() {
                    // A failed connect freed its socket.
                    return;
                }
            }
            at = next;
        }
    }

    /// `TcpConnect` on the socket reserved for it: connected at once, failed at once, or
    /// under way (registered, then waiting for writability).
    fn connect(
        &mut self,
        t: &mut Tables,
        entry: u32,
        addr: std::net::SocketAddr,
    ) -> Option<IoResult> {
        let handle = t.ops.op(entry).handle;
        let fd = t.fd(handle).expect("the connect's own socket");
        // Registered after `connect` started: an unconnected socket reports itself
        // writable and hung up, which would look like a finished connect.
        let started = sys::connect(fd, addr);
        match started {
            Ok(()) | Err(libc::EINPROGRESS) => match self.register(fd, handle) {
                Ok(()) if started.is_ok() => Some(IoResult::Opened(handle)),
                Ok(()) => None,
                Err(error) => Some(IoResult::Failed(io_error(error))),
            },
            Err(error) => Some(IoResult::Failed(io_error(error))),
        }
    }

    /// Tries a socket operation once; `None` if the socket is not ready for it.
    fn attempt(&mut self, t: &mut Tables, entry: u32) -> Option<IoResult> {
        let op = t.ops.op(entry).request();
        let handle = t.ops.op(entry).handle;
        let fd = t.fd(handle).expect("a listed operation's handle is open");
        let outcome = match op {
            IoOp::TcpAccept { .. } => match sys::accept(fd, true) {
                Ok((socket, peer)) => return Some(self.accepted(t, socket, peer)),
                Err(error) => Err(error),
            },
            IoOp::TcpConnect { .. } => connected(fd, handle),
            IoOp::TcpSend { .. } => send_all(t, entry),
            IoOp::TcpRecv { .. } => {
                let submission = t.ops.op_mut(entry).submission_mut();
                let loan = submission.receive.as_mut().expect("checked at submission");
                let cap = receive_cap(op, loan.len());
                let into = &mut loan.bytes_mut().expect("a receive loan is writable")[..cap];
                let fd = t.handles.get(handle).expect("open").fd.as_fd();
                sys::recv(fd, into).map(|len| IoResult::Received { len: len as u32, from: None })
            }
            IoOp::UdpSendTo { addr, len, .. } => {
                let bytes = &t.ops.op(entry).submission().input_bytes()[..len as usize];
                sys::send_to(fd, bytes, addr).map(|sent| IoResult::Transferred(sent as u32))
            }
            IoOp::UdpRecvFrom { .. } => {
                let submission = t.ops.op_mut(entry).submission_mut();
                let loan = submission.receive.as_mut().expect("checked at submission");
                let cap = receive_cap(op, loan.len());
                let into = &mut loan.bytes_mut().expect("a receive loan is writable")[..cap];
                let fd = t.handles.get(handle).expect("open").fd.as_fd();
                sys::recv_from(fd, into)
                    .map(|(len, from)| IoResult::Received { len: len as u32, from })
            }
            _ => unreachable!("files and the driver's own operations are not tried here"),
        };
        match outcome {
            Ok(result) => Some(result),
            Err(libc::EAGAIN) => None,
            Err(error) => Some(IoResult::Failed(io_error(error))),
        }
    }

    /// An accepted connection: a handle, registered, or refused with the table full.
    fn accepted(
        &mut self,
        t: &mut Tables,
        socket: std::os::fd::OwnedFd,
        peer: Option<std::net::SocketAddr>,
    ) -> IoResult {
        let handle = match t.adopt_accepted(socket) {
            Ok(handle) => handle,
            Err(error) => return IoResult::Failed(error),
        };
        let fd = t.fd(handle).expect("just adopted");
        if let Err(error) = self.register(fd, handle) {
            drop(t.handles.remove(handle));
            return IoResult::Failed(io_error(error));
        }
        let peer = peer.unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
        IoResult::Accepted { socket: handle, peer }
    }
}

/// Whether a connect under way finished: its error, or whether it has a peer yet.
fn connected(fd: BorrowedFd<'_>, handle: IoHandle) -> Result<IoResult, Errno> {
    match sys::socket_error(fd)? {
        0 => match sys::is_connected(fd)? {
            true => Ok(IoResult::Opened(handle)),
            false => Err(libc::EAGAIN),
        },
        error => Ok(IoResult::Failed(io_error(error))),
    }
}

/// Sends the rest of a `TcpSend` until every byte is out (`Transferred(len)`), the socket
/// is full (`EAGAIN`: the progress is kept) or the send fails.
fn send_all(t: &mut Tables, entry: u32) -> Result<IoResult, Errno> {
    let op = t.ops.op(entry);
    let len = send_len(op.request());
    let fd = t.fd(op.handle).expect("a listed operation's handle is open");
    let bytes = t.ops.op(entry).submission().input_bytes();
    let mut progress = t.ops.op(entry).progress;
    let outcome = loop {
        if progress >= len {
            break Ok(IoResult::Transferred(len));
        }
        match sys::send(fd, &bytes[progress as usize..len as usize]) {
            // Bounded by `len`; a send of nothing would make no progress.
            Ok(0) => break Err(libc::EAGAIN),
            Ok(sent) => progress += sent as u32,
            Err(error) => break Err(error),
        }
    };
    t.ops.op_mut(entry).progress = progress;
    outcome
}

/// A file operation, synchronously (a regular file is always ready to epoll).
fn file(t: &mut Tables, entry: u32) -> IoResult {
    let op = t.ops.op(entry).request();
    let handle = t.ops.op(entry).handle;
    let outcome = match op {
        IoOp::FileRead { offset, .. } => {
            let fd = t.handles.get(handle).expect("open").fd.as_fd();
            let submission = t.ops.op_mut(entry).submission_mut();
            let loan = submission.receive.as_mut().expect("checked at submission");
            let cap = receive_cap(op, loan.len());
            let into = &mut loan.bytes_mut().expect("a receive loan is writable")[..cap];
            sys::pread(fd, into, offset)
                .map(|len| IoResult::Received { len: len as u32, from: None })
        }
        IoOp::FileWrite { offset, len, .. } => {
            let fd = t.fd(handle).expect("open");
            let bytes = &t.ops.op(entry).submission().input_bytes()[..len as usize];
            write_all(fd, bytes, offset).map(IoResult::Transferred)
        }
        IoOp::FileFsync { .. } => sys::fsync(t.fd(handle).expect("open")).map(|()| IoResult::Done),
        _ => unreachable!("only file operations"),
    };
    outcome.unwrap_or_else(|error| IoResult::Failed(io_error(error)))
}

/// Writes all of `bytes` at `offset`, continuing after short writes; a write of nothing
/// ends it with what was written.
fn write_all(fd: BorrowedFd<'_>, bytes: &[u8], offset: u64) -> Result<u32, Errno> {
    let mut written = 0;
    while written < bytes.len() {
        match sys::pwrite(fd, &bytes[written..], offset + written as u64)? {
            0 => break,
            count => written += count,
        }
    }
    // At most the operation's u32 length.
    Ok(written as u32)
}
