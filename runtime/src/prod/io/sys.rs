//! The system calls of the I/O drivers: one small function per call over libc, each with
//! its safety argument, each returning the errno value on failure (`Err(errno)`), retried
//! on `EINTR`. Also the conversions between `SocketAddr` and the kernel's `sockaddr`
//! structures, which the io_uring driver uses for the addresses it hands the kernel.
//!
//! Not the drivers' logic (`epoll`, `uring`): what to call when.

use core::mem::size_of;
use std::ffi::CStr;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// An errno value.
pub(crate) type Errno = i32;

/// The calling thread's errno, after a call that failed.
fn errno() -> Errno {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// Runs `call` until it does not fail with `EINTR`; a negative return is `Err(errno)`.
fn retry<T: Copy + PartialOrd + Default>(mut call: impl FnMut() -> T) -> Result<T, Errno> {
    loop {
        let ret = call();
        if ret >= T::default() {
            return Ok(ret);
        }
        match errno() {
            libc::EINTR => continue,
            error => return Err(error),
        }
    }
}

/// An all-zero socket address buffer, as the kernel fills one.
pub(crate) fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: `sockaddr_storage` is a C struct of integers and byte arrays, for which all
    // zero bytes are a valid value.
    unsafe { core::mem::zeroed() }
}

/// Writes `addr` into `out` as the kernel reads it and returns its length.
pub(crate) fn encode_addr(addr: SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    let storage: *mut libc::sockaddr_storage = out;
    match addr {
        SocketAddr::V4(addr) => {
            let raw = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: addr.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(addr.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: `sockaddr_storage` is, by its definition, large enough and aligned
            // enough for every socket address type, and `out` is an exclusive reference.
            unsafe { storage.cast::<libc::sockaddr_in>().write(raw) };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(addr) => {
            let raw = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: addr.port().to_be(),
                sin6_flowinfo: addr.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: addr.ip().octets() },
                sin6_scope_id: addr.scope_id(),
            };
            // SAFETY: as above.
            unsafe { storage.cast::<libc::sockaddr_in6>().write(raw) };
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// The address the kernel wrote into `storage` (`len` bytes of it); `None` for a family
/// other than IPv4 and IPv6, or a length too short for its family.
pub(crate) fn decode_addr(
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Option<SocketAddr> {
    let family = i32::from(storage.ss_family);
    let storage: *const libc::sockaddr_storage = storage;
    let len = len as usize;
    match family {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: `sockaddr_storage` is, by its definition, large and aligned enough for
            // every socket address type, and every bit pattern of these integer structs is
            // a valid value.
            let raw = unsafe { storage.cast::<libc::sockaddr_in>().read() };
            let ip = Ipv4Addr::from(raw.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(raw.sin_port))))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as for IPv4.
            let raw = unsafe { storage.cast::<libc::sockaddr_in6>().read() };
            let ip = Ipv6Addr::from(raw.sin6_addr.s6_addr);
            let port = u16::from_be(raw.sin6_port);
            Some(SocketAddr::V6(SocketAddrV6::new(ip, port, raw.sin6_flowinfo, raw.sin6_scope_id)))
        }
        _ => None,
    }
}

/// The `AF_*` family of an address.
fn family(addr: SocketAddr) -> libc::c_int {
    if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 }
}

/// A new socket for `addr`'s family: `SOCK_STREAM` when `stream`, else `SOCK_DGRAM`;
/// close-on-exec, and non-blocking when `nonblocking`.
pub(crate) fn socket(addr: SocketAddr, stream: bool, nonblocking: bool) -> Result<OwnedFd, Errno> {
    let mut kind = if stream { libc::SOCK_STREAM } else { libc::SOCK_DGRAM };
    kind |= libc::SOCK_CLOEXEC;
    if nonblocking {
        kind |= libc::SOCK_NONBLOCK;
    }
    // SAFETY: no pointers; the result is checked.
    let fd = retry(|| unsafe { libc::socket(family(addr), kind, 0) })?;
    // SAFETY: `socket` just returned this descriptor, which nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `SO_REUSEADDR` on, so a listener can bind while old connections linger in TIME_WAIT.
pub(crate) fn set_reuse_address(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    let on: libc::c_int = 1;
    let len = size_of::<libc::c_int>() as libc::socklen_t;
    let value: *const libc::c_int = &on;
    // SAFETY: `value` points to a live c_int of `len` bytes for the duration of the call.
    retry(|| unsafe {
        libc::setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, value.cast(), len)
    })
    .map(drop)
}

/// Binds the socket to `addr`.
pub(crate) fn bind(fd: BorrowedFd<'_>, addr: SocketAddr) -> Result<(), Errno> {
    let mut storage = zeroed_storage();
    let len = encode_addr(addr, &mut storage);
    let raw: *const libc::sockaddr_storage = &storage;
    // SAFETY: `raw` points to `len` initialised bytes of a socket address, live for the call.
    retry(|| unsafe { libc::bind(fd.as_raw_fd(), raw.cast(), len) }).map(drop)
}

/// Marks a bound stream socket as listening, with `backlog` pending connections.
pub(crate) fn listen(fd: BorrowedFd<'_>, backlog: u32) -> Result<(), Errno> {
    let backlog = libc::c_int::try_from(backlog).unwrap_or(libc::c_int::MAX);
    // SAFETY: no pointers.
    retry(|| unsafe { libc::listen(fd.as_raw_fd(), backlog) }).map(drop)
}

/// Starts (or, on a blocking socket, makes) a connection; a non-blocking socket answers
/// `Err(EINPROGRESS)` while it is under way.
pub(crate) fn connect(fd: BorrowedFd<'_>, addr: SocketAddr) -> Result<(), Errno> {
    let mut storage = zeroed_storage();
    let len = encode_addr(addr, &mut storage);
    let raw: *const libc::sockaddr_storage = &storage;
    // SAFETY: as for `bind`. (An `EINTR` restart of a connect under way reports EALREADY
    // or EISCONN, which the readiness check resolves; the drivers' sockets never block.)
    retry(|| unsafe { libc::connect(fd.as_raw_fd(), raw.cast(), len) }).map(drop)
}

/// Accepts one pending connection: the new socket (close-on-exec, non-blocking when
/// `nonblocking`) and its peer.
pub(crate) fn accept(
    fd: BorrowedFd<'_>,
    nonblocking: bool,
) -> Result<(OwnedFd, Option<SocketAddr>), Errno> {
    let mut storage = zeroed_storage();
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let raw: *mut libc::sockaddr_storage = &mut storage;
    let len_raw: *mut libc::socklen_t = &mut len;
    let mut flags = libc::SOCK_CLOEXEC;
    if nonblocking {
        flags |= libc::SOCK_NONBLOCK;
    }
    // SAFETY: `raw` points to a writable `sockaddr_storage` whose size `len_raw` holds, both
    // live for the call.
    let new = retry(|| unsafe { libc::accept4(fd.as_raw_fd(), raw.cast(), len_raw, flags) })?;
    // SAFETY: `accept4` just returned this descriptor, which nothing else owns.
    let new = unsafe { OwnedFd::from_raw_fd(new) };
    Ok((new, decode_addr(&storage, len)))
}

/// Sends what it can of `bytes` (never raising SIGPIPE: a closed peer is `EPIPE`).
pub(crate) fn send(fd: BorrowedFd<'_>, bytes: &[u8]) -> Result<usize, Errno> {
    // SAFETY: `bytes` is a live slice of `bytes.len()` readable bytes.
    let sent = retry(|| unsafe {
        libc::send(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL)
    })?;
    Ok(sent as usize)
}

/// Receives at most `into.len()` bytes; 0 is the end of the stream.
pub(crate) fn recv(fd: BorrowedFd<'_>, into: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `into` is a live, exclusive slice of `into.len()` writable bytes.
    let received =
        retry(|| unsafe { libc::recv(fd.as_raw_fd(), into.as_mut_ptr().cast(), into.len(), 0) })?;
    Ok(received as usize)
}

/// Sends one datagram to `addr`.
pub(crate) fn send_to(fd: BorrowedFd<'_>, bytes: &[u8], addr: SocketAddr) -> Result<usize, Errno> {
    let mut storage = zeroed_storage();
    let len = encode_addr(addr, &mut storage);
    let raw: *const libc::sockaddr_storage = &storage;
    // SAFETY: `bytes` is a live readable slice; `raw` points to `len` bytes of an address.
    let sent = retry(|| unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_NOSIGNAL,
            raw.cast(),
            len,
        )
    })?;
    Ok(sent as usize)
}

/// Receives one datagram (cut to `into.len()` bytes) and its sender.
pub(crate) fn recv_from(
    fd: BorrowedFd<'_>,
    into: &mut [u8],
) -> Result<(usize, Option<SocketAddr>), Errno> {
    let mut storage = zeroed_storage();
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let raw: *mut libc::sockaddr_storage = &mut storage;
    let len_raw: *mut libc::socklen_t = &mut len;
    // SAFETY: `into` is a live, exclusive writable slice; `raw` a writable address buffer
    // whose size `len_raw` holds.
    let received = retry(|| unsafe {
        libc::recvfrom(fd.as_raw_fd(), into.as_mut_ptr().cast(), into.len(), 0, raw.cast(), len_raw)
    })?;
    Ok((received as usize, decode_addr(&storage, len)))
}

/// Reads at most `into.len()` bytes at `offset` (which the caller checked fits an off_t).
pub(crate) fn pread(fd: BorrowedFd<'_>, into: &mut [u8], offset: u64) -> Result<usize, Errno> {
    let offset = libc::off_t::try_from(offset).map_err(|_| libc::EINVAL)?;
    // SAFETY: `into` is a live, exclusive slice of `into.len()` writable bytes.
    let read = retry(|| unsafe {
        libc::pread(fd.as_raw_fd(), into.as_mut_ptr().cast(), into.len(), offset)
    })?;
    Ok(read as usize)
}

/// Writes `bytes` at `offset`; may write fewer.
pub(crate) fn pwrite(fd: BorrowedFd<'_>, bytes: &[u8], offset: u64) -> Result<usize, Errno> {
    let offset = libc::off_t::try_from(offset).map_err(|_| libc::EINVAL)?;
    // SAFETY: `bytes` is a live slice of `bytes.len()` readable bytes.
    let written = retry(|| unsafe {
        libc::pwrite(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), offset)
    })?;
    Ok(written as usize)
}

/// Makes the file's data and metadata durable.
pub(crate) fn fsync(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: no pointers.
    retry(|| unsafe { libc::fsync(fd.as_raw_fd()) }).map(drop)
}

/// Opens `path` with `flags`, creating it with `mode` (less the umask) if the flags say so.
pub(crate) fn open(path: &CStr, flags: libc::c_int, mode: libc::mode_t) -> Result<OwnedFd, Errno> {
    // SAFETY: `path` is a NUL-terminated string, live for the call.
    let fd = retry(|| unsafe { libc::open(path.as_ptr(), flags, libc::c_uint::from(mode)) })?;
    // SAFETY: `open` just returned this descriptor, which nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The socket's pending error (`SO_ERROR`, which reading clears), 0 if none.
pub(crate) fn socket_error(fd: BorrowedFd<'_>) -> Result<Errno, Errno> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    let raw: *mut libc::c_int = &mut value;
    let len_raw: *mut libc::socklen_t = &mut len;
    // SAFETY: `raw` points to a writable c_int whose size `len_raw` holds.
    retry(|| unsafe {
        libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_ERROR, raw.cast(), len_raw)
    })?;
    Ok(value)
}

/// Whether a stream socket is connected (it has a peer).
pub(crate) fn is_connected(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    let mut storage = zeroed_storage();
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let raw: *mut libc::sockaddr_storage = &mut storage;
    let len_raw: *mut libc::socklen_t = &mut len;
    // SAFETY: `raw` points to a writable address buffer whose size `len_raw` holds.
    match retry(|| unsafe { libc::getpeername(fd.as_raw_fd(), raw.cast(), len_raw) }) {
        Ok(_) => Ok(true),
        Err(libc::ENOTCONN) => Ok(false),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every address survives the trip through the kernel's structures; a buffer the
    /// kernel left short or of another family decodes to nothing.
    #[test]
    fn addresses_round_trip_through_sockaddr() {
        let addrs: [SocketAddr; 4] = [
            "127.0.0.1:8080".parse().unwrap(),
            "10.1.2.3:0".parse().unwrap(),
            "[::1]:443".parse().unwrap(),
            SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 9, 7, 3)),
        ];
        for addr in addrs {
            let mut storage = zeroed_storage();
            let len = encode_addr(addr, &mut storage);
            assert_eq!(decode_addr(&storage, len), Some(addr));
            assert_eq!(decode_addr(&storage, len - 1), None, "too short for {addr}");
        }
        let storage = zeroed_storage();
        let full = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        assert_eq!(decode_addr(&storage, full), None, "AF_UNSPEC");
    }
}
