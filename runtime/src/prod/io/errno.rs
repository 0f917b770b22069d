//! What the kernel says, in the runtime's words: errno values to [`IoError`], and
//! [`OpenMode`] to `open(2)` flags. Pure functions, tested under Miri.

use crate::io::{IoError, OpenMode};

/// The `IoError` an errno value stands for. Values with no closer meaning are
/// `IoError::Other`; never a panic, whatever the value.
pub(crate) fn io_error(errno: i32) -> IoError {
    match errno {
        libc::EADDRINUSE => IoError::AddrInUse,
        libc::EADDRNOTAVAIL => IoError::AddrNotAvailable,
        libc::ECONNREFUSED => IoError::ConnectionRefused,
        libc::ECONNRESET => IoError::ConnectionReset,
        libc::ECONNABORTED => IoError::ConnectionAborted,
        libc::ENOTCONN => IoError::NotConnected,
        libc::EPIPE => IoError::BrokenPipe,
        libc::ENOENT | libc::ENOTDIR => IoError::NotFound,
        libc::EACCES | libc::EPERM | libc::EROFS => IoError::PermissionDenied,
        libc::ETIMEDOUT => IoError::TimedOut,
        libc::ENOSPC | libc::EDQUOT | libc::EFBIG => IoError::StorageFull,
        libc::EINVAL
        | libc::ENAMETOOLONG
        | libc::EISDIR
        | libc::ELOOP
        | libc::EAFNOSUPPORT
        | libc::EDESTADDRREQ
        | libc::EMSGSIZE
        | libc::ESPIPE => IoError::InvalidInput,
        libc::EBADF | libc::ENOTSOCK => IoError::InvalidHandle,
        // The process or the system is out of descriptors: as for the shard's own table.
        libc::EMFILE | libc::ENFILE => IoError::TooManyHandles,
        libc::ENOMEM | libc::ENOBUFS => IoError::BuffersExhausted,
        _ => IoError::Other,
    }
}

/// The `open(2)` flags of a mode; every descriptor is close-on-exec.
pub(crate) fn open_flags(mode: OpenMode) -> i32 {
    let access = match mode {
        OpenMode::Read => libc::O_RDONLY,
        OpenMode::ReadWrite => libc::O_RDWR,
        OpenMode::Create => libc::O_RDWR | libc::O_CREAT,
        OpenMode::Truncate => libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC,
    };
    access | libc::O_CLOEXEC
}

/// Permission bits of a file `FileOpen` creates, before the process's umask.
pub(crate) const CREATE_PERMISSIONS: libc::mode_t = 0o666;

#[cfg(test)]
mod tests {
    use super::*;

    /// The errors a caller acts on come back as their own variants; anything else is
    /// `Other`, never a panic.
    #[test]
    fn errno_values_map_to_io_errors() {
        let cases = [
            (libc::EADDRINUSE, IoError::AddrInUse),
            (libc::EADDRNOTAVAIL, IoError::AddrNotAvailable),
            (libc::ECONNREFUSED, IoError::ConnectionRefused),
            (libc::ECONNRESET, IoError::ConnectionReset),
            (libc::ECONNABORTED, IoError::ConnectionAborted),
            (libc::ENOTCONN, IoError::NotConnected),
            (libc::EPIPE, IoError::BrokenPipe),
            (libc::ENOENT, IoError::NotFound),
            (libc::EACCES, IoError::PermissionDenied),
            (libc::EPERM, IoError::PermissionDenied),
            (libc::ETIMEDOUT, IoError::TimedOut),
            (libc::ENOSPC, IoError::StorageFull),
            (libc::EINVAL, IoError::InvalidInput),
            (libc::EISDIR, IoError::InvalidInput),
            (libc::EBADF, IoError::InvalidHandle),
            (libc::EMFILE, IoError::TooManyHandles),
            (libc::EIO, IoError::Other),
        ];
        for (errno, error) in cases {
            assert_eq!(io_error(errno), error, "errno {errno}");
        }
        for errno in [0, -1, i32::MIN, i32::MAX, 4096] {
            assert_eq!(io_error(errno), IoError::Other, "errno {errno}");
        }
    }

    /// Each mode opens for what it says: only `Read` is read-only, only `Create` and
    /// `Truncate` create, only `Truncate` truncates, and every descriptor is
    /// close-on-exec.
    #[test]
    fn open_modes_map_to_flags() {
        for mode in [OpenMode::Read, OpenMode::ReadWrite, OpenMode::Create, OpenMode::Truncate] {
            let flags = open_flags(mode);
            assert_ne!(flags & libc::O_CLOEXEC, 0, "{mode:?}");
            let access = flags & libc::O_ACCMODE;
            assert_eq!(access == libc::O_RDONLY, mode == OpenMode::Read, "{mode:?}");
            assert_eq!(access == libc::O_RDWR, mode != OpenMode::Read, "{mode:?}");
            let creates = flags & libc::O_CREAT != 0;
            assert_eq!(creates, matches!(mode, OpenMode::Create | OpenMode::Truncate), "{mode:?}");
            assert_eq!(flags & libc::O_TRUNC != 0, mode == OpenMode::Truncate, "{mode:?}");
        }
    }
}
