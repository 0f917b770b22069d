//! Whether this machine can hold a spec: the memory the process may still take, compared
//! with what a spec allocates at boot, and pre-faulting memory so a shortfall shows at boot.
//!
//! Available memory is the smaller of the kernel's `MemAvailable` (`/proc/meminfo`) and the
//! room left under the process's memory cgroup: for cgroup v2, every `memory.max` that is not
//! `max` from the process's cgroup up to the mount's root, minus that cgroup's
//! `memory.current`; for cgroup v1 (also on hybrid systems, where the memory controller is a
//! v1 hierarchy), `memory.limit_in_bytes` minus `memory.usage_in_bytes` the same way. The
//! tightest level wins. Every file is optional except `/proc/meminfo`: a machine without a
//! memory cgroup is bounded by `MemAvailable` alone.
//!
//! Parsing takes file contents as `&str`, and the walk reads through a function, so both are
//! tested on fixtures; only `available_bytes` reads the real files. This module does not
//! compute what a spec needs (`SystemSpec::memory` does) and does not reserve memory: the
//! kernel may still overcommit, which is why `touch` exists.

use core::fmt;

use crate::footprint::MemoryBytes;

/// Where the cgroup v2 hierarchy is mounted.
const CGROUP_V2_ROOT: &str = "/sys/fs/cgroup";
/// Where the cgroup v1 memory hierarchy is mounted.
const CGROUP_V1_MEMORY_ROOT: &str = "/sys/fs/cgroup/memory";
/// cgroup v1 writes "no limit" as the largest page counter in bytes (0x7FFF_FFFF_FFFF_F000
/// on 4 KiB pages); any limit at or above this is treated as none.
const CGROUP_V1_UNLIMITED_MIN: u64 = 1 << 62;
/// Directories walked from a cgroup up to the mount's root: deeper paths stop there (real
/// hierarchies are a handful of levels).
const CGROUP_DEPTH_MAX: usize = 64;
/// Bytes written at a time by `touch`: a page on every Linux architecture is at least this.
const PAGE_SIZE_MIN: usize = 4096;

/// Why a spec cannot boot on this machine, or why we could not tell.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemoryError {
    /// The spec allocates more at boot than the machine or its cgroup can give.
    TooLarge {
        /// Bytes the spec allocates at boot, over every shard.
        needed: u64,
        /// Bytes the process may still take.
        available: u64,
        /// The part of the spec that takes the most (`MemoryBytes::largest`).
        largest_part: &'static str,
        /// Its bytes.
        largest_bytes: u64,
    },
    /// A file that must be read could not be, or did not say what it should.
    Unreadable {
        /// The file.
        path: &'static str,
    },
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryError::TooLarge { needed, available, largest_part, largest_bytes } => write!(
                f,
                "the spec allocates {needed} bytes ({} MiB) at boot but only {available} bytes \
                 ({} MiB) are available (MemAvailable or the memory cgroup's limit, whichever \
                 is lower); its largest part is {largest_part} at {largest_bytes} bytes ({} \
                 MiB): use fewer shards, or smaller message pools, rings, slot counts, timer \
                 pools or I/O buffers",
                mebibytes(*needed),
                mebibytes(*available),
                mebibytes(*largest_bytes),
            ),
            MemoryError::Unreadable { path } => write!(
                f,
                "cannot tell the memory available: {path} is absent, unreadable or not in the \
                 expected format"
            ),
        }
    }
}

impl std::error::Error for MemoryError {}

/// Mebibytes, rounded up: a human scale next to the exact bytes.
fn mebibytes(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

/// Refuses `needed` if it is above `available`.
pub fn check(needed: &MemoryBytes, available: u64) -> Result<(), MemoryError> {
    let total = needed.total();
    if total <= available {
        return Ok(());
    }
    let (largest_part, largest_bytes) = needed.largest();
    Err(MemoryError::TooLarge { needed: total, available, largest_part, largest_bytes })
}

/// The memory the process may take, by source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Available {
    /// `MemAvailable` from `/proc/meminfo`, in bytes.
    pub meminfo_bytes: u64,
    /// Room left under the tightest memory cgroup limit, if any level has a limit.
    pub cgroup_bytes: Option<u64>,
}

impl Available {
    /// The smaller of the two.
    pub fn bytes(&self) -> u64 {
        self.cgroup_bytes.map_or(self.meminfo_bytes, |cgroup| cgroup.min(self.meminfo_bytes))
    }
}

/// A cgroup's memory limit as its file writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupLimit {
    /// No limit at this level (`max` in v2, the "no limit" value in v1).
    Unlimited,
    /// A limit in bytes.
    Bytes(u64),
}

/// `MemAvailable` of a `/proc/meminfo`, in bytes (the file writes kB, meaning KiB).
pub fn parse_meminfo_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|line| line.starts_with("MemAvailable:"))?;
    let mut words = line["MemAvailable:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

/// The cgroup v2 path of a `/proc/<pid>/cgroup` (its `0::<path>` line), if it has one.
pub fn parse_cgroup_v2_path(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup.lines().find_map(|line| line.strip_prefix("0::"))
}

/// The cgroup v1 memory controller's path of a `/proc/<pid>/cgroup` (the line whose
/// controller list names `memory`), if it has one.
pub fn parse_cgroup_v1_memory_path(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let _hierarchy = fields.next()?;
        let controllers = fields.next()?;
        let path = fields.next()?;
        controllers.split(',').any(|controller| controller == "memory").then_some(path)
    })
}

/// A v2 `memory.max` or v1 `memory.limit_in_bytes`.
pub fn parse_limit(contents: &str) -> Option<CgroupLimit> {
    let text = contents.trim();
    if text == "max" {
        return Some(CgroupLimit::Unlimited);
    }
    let bytes: u64 = text.parse().ok()?;
    Some(if bytes >= CGROUP_V1_UNLIMITED_MIN {
        CgroupLimit::Unlimited
    } else {
        CgroupLimit::Bytes(bytes)
    })
}

/// A byte count file (`memory.current`, `memory.usage_in_bytes`).
pub fn parse_bytes(contents: &str) -> Option<u64> {
    contents.trim().parse().ok()
}

/// File names of one cgroup version's memory interface.
struct CgroupFiles {
    root: &'static str,
    limit: &'static str,
    usage: &'static str,
}

const V2: CgroupFiles =
    CgroupFiles { root: CGROUP_V2_ROOT, limit: "memory.max", usage: "memory.current" };
const V1: CgroupFiles = CgroupFiles {
    root: CGROUP_V1_MEMORY_ROOT,
    limit: "memory.limit_in_bytes",
    usage: "memory.usage_in_bytes",
};

/// The tightest room under the limits from `path` up to `files.root`, walking parents: a
/// directory whose limit file is absent is skipped (the path from `/proc/self/cgroup` can
/// name the host's view inside a container, where only the mount's root exists), and a
/// limit without a usage file counts as nothing used.
fn cgroup_room(
    read: &dyn Fn(&str) -> Option<String>,
    files: &CgroupFiles,
    path: &str,
) -> Option<u64> {
    let mut directory = format!("{}{}", files.root, path.trim_end_matches('/'));
    let mut room: Option<u64> = None;
    for _ in 0..CGROUP_DEPTH_MAX {
        let limit =
            read(&format!("{directory}/{}", files.limit)).and_then(|text| parse_limit(&text));
        if let Some(CgroupLimit::Bytes(limit)) = limit {
            let used = read(&format!("{directory}/{}", files.usage))
                .and_then(|text| parse_bytes(&text))
                .unwrap_or(0);
            let here = limit.saturating_sub(used);
            room = Some(room.map_or(here, |room| room.min(here)));
        }
        if directory.len() <= files.root.len() {
            break;
        }
        match directory.rfind('/') {
            Some(slash) if slash >= files.root.len() => directory.truncate(slash),
            _ => break,
        }
    }
    room
}

/// What the process may take, reading each file through `read` (which returns `None` for an
/// absent or unreadable file). Only `/proc/meminfo` is required.
pub fn available_from(read: &dyn Fn(&str) -> Option<String>) -> Result<Available, MemoryError> {
    let meminfo_bytes = read("/proc/meminfo")
        .and_then(|text| parse_meminfo_available(&text))
        .ok_or(MemoryError::Unreadable { path: "/proc/meminfo" })?;
    let cgroups = read("/proc/self/cgroup").unwrap_or_default();
    // On a hybrid system both lines exist, and memory is controlled by the v1 hierarchy.
    let cgroup_bytes = match parse_cgroup_v1_memory_path(&cgroups) {
        Some(path) => cgroup_room(read, &V1, path),
        None => parse_cgroup_v2_path(&cgroups).and_then(|path| cgroup_room(read, &V2, path)),
    };
    Ok(Available { meminfo_bytes, cgroup_bytes })
}

/// What this process may still take, from the real `/proc` and `/sys/fs/cgroup`.
#[cfg(target_os = "linux")]
pub fn available() -> Result<Available, MemoryError> {
    available_from(&|path| std::fs::read_to_string(path).ok())
}

/// `available()?.bytes()`: the smaller of `MemAvailable` and the cgroup's room.
#[cfg(target_os = "linux")]
pub fn available_bytes() -> Result<u64, MemoryError> {
    available().map(|available| available.bytes())
}

/// Refuses `spec` if what it allocates at boot, with cross-shard rings of `ring_capacity`
/// envelopes, is more than this machine can give now; returns what it needs otherwise.
/// The numbers exclude what boot does not allocate (thread stacks, the executable), so
/// leave room beyond them.
#[cfg(target_os = "linux")]
pub fn check_spec(
    spec: &crate::SystemSpec,
    ring_capacity: usize,
) -> Result<MemoryBytes, MemoryError> {
    let needed = spec.memory(ring_capacity);
    check(&needed, available_bytes()?)?;
    Ok(needed)
}

/// Writes every page of `memory` once (each page's first byte, rewritten with its own
/// value, so the contents do not change), so that the kernel backs it now: with
/// overcommit, memory that was allocated but never touched can fail later, at the first
/// write, as an out-of-memory kill in the middle of a run; touched at boot, the shortfall
/// shows at boot. Returns the pages written (of at least 4 KiB each).
pub fn touch(memory: &mut [u8]) -> usize {
    let page_size = page_size();
    let mut pages = 0;
    // Bounded by the slice: one step per page.
    for byte in memory.iter_mut().step_by(page_size) {
        let pointer: *mut u8 = byte;
        // SAFETY: `pointer` comes from a `&mut u8` into `memory`, valid for reads and writes
        // and aligned; volatile so the compiler cannot drop the read-back-write as a no-op.
        unsafe { pointer.write_volatile(pointer.read_volatile()) };
        pages += 1;
    }
    pages
}

/// The machine's page size, or 4 KiB if it cannot be read.
fn page_size() -> usize {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `sysconf` reads a configuration value; it has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size).ok().filter(|&size| size >= PAGE_SIZE_MIN).unwrap_or(PAGE_SIZE_MIN)
    }
    #[cfg(not(target_os = "linux"))]
    {
        PAGE_SIZE_MIN
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const MEMINFO: &str = "MemTotal:       24683568 kB\n\
                           MemFree:         1234567 kB\n\
                           MemAvailable:   23078004 kB\n\
                           Buffers:          123456 kB\n";

    /// Available memory read from `files` (path, contents); every other path is absent.
    fn check_files(files: &[(&str, &str)]) -> Result<Available, MemoryError> {
        let files: BTreeMap<String, String> =
            files.iter().map(|&(path, text)| (path.to_owned(), text.to_owned())).collect();
        available_from(&|path| files.get(path).cloned())
    }

    /// `MemAvailable` is read in kB and returned in bytes; a file without it, or with a
    /// value that is not a number, gives nothing.
    #[test]
    fn meminfo() {
        assert_eq!(parse_meminfo_available(MEMINFO), Some(23_078_004 * 1024));
        assert_eq!(parse_meminfo_available("MemTotal: 1 kB\n"), None);
        assert_eq!(parse_meminfo_available("MemAvailable: lots kB\n"), None);
        assert_eq!(parse_meminfo_available("MemAvailable: 5 MB\n"), None);
        assert_eq!(parse_meminfo_available(""), None);
    }

    /// The v2 line is `0::<path>`; the v1 memory line is the one whose controllers include
    /// `memory`, alone or with others.
    #[test]
    fn proc_cgroup_lines() {
        let hybrid = "9:name=systemd:/\n4:memory:/process_api/d58e\n3:cpuset:/\n0::/\n";
        assert_eq!(parse_cgroup_v2_path(hybrid), Some("/"));
        assert_eq!(parse_cgroup_v1_memory_path(hybrid), Some("/process_api/d58e"));
        let joined = "5:cpuacct,memory:/docker/abc\n";
        assert_eq!(parse_cgroup_v1_memory_path(joined), Some("/docker/abc"));
        let unified = "0::/user.slice/user-1000.slice/session-2.scope\n";
        assert_eq!(
            parse_cgroup_v2_path(unified),
            Some("/user.slice/user-1000.slice/session-2.scope")
        );
        assert_eq!(parse_cgroup_v1_memory_path(unified), None);
        assert_eq!(parse_cgroup_v1_memory_path("7:memoryless:/x\n"), None);
        assert_eq!(parse_cgroup_v2_path(""), None);
    }

    /// `max` and v1's "no limit" are unlimited; numbers are bytes; anything else is nothing.
    #[test]
    fn limits() {
        assert_eq!(parse_limit("max\n"), Some(CgroupLimit::Unlimited));
        assert_eq!(parse_limit("9223372036854771712\n"), Some(CgroupLimit::Unlimited));
        assert_eq!(parse_limit("536870912\n"), Some(CgroupLimit::Bytes(536_870_912)));
        assert_eq!(parse_limit("half\n"), None);
        assert_eq!(parse_bytes("951279616\n"), Some(951_279_616));
        assert_eq!(parse_bytes(""), None);
    }

    /// Without any cgroup file, `MemAvailable` alone bounds the process.
    #[test]
    fn meminfo_alone() {
        let available = check_files(&[("/proc/meminfo", MEMINFO)]).unwrap();
        assert_eq!(available, Available { meminfo_bytes: 23_078_004 * 1024, cgroup_bytes: None });
        assert_eq!(available.bytes(), 23_078_004 * 1024);
    }

    /// Without `/proc/meminfo`, or with one that lacks `MemAvailable`, we cannot tell: a
    /// typed error, not a guess.
    #[test]
    fn meminfo_required() {
        let expected = Err(MemoryError::Unreadable { path: "/proc/meminfo" });
        assert_eq!(check_files(&[]), expected);
        assert_eq!(check_files(&[("/proc/meminfo", "MemTotal: 1 kB\n")]), expected);
    }

    /// cgroup v2: the nearest `memory.max` that is not `max` is found by walking up from the
    /// process's cgroup (here its parent's), and its `memory.current` is subtracted.
    #[test]
    fn cgroup_v2_nearest_limit() {
        let available = check_files(&[
            ("/proc/meminfo", MEMINFO),
            ("/proc/self/cgroup", "0::/app.slice/worker.service\n"),
            ("/sys/fs/cgroup/app.slice/worker.service/memory.max", "max\n"),
            ("/sys/fs/cgroup/app.slice/worker.service/memory.current", "100\n"),
            ("/sys/fs/cgroup/app.slice/memory.max", "1073741824\n"),
            ("/sys/fs/cgroup/app.slice/memory.current", "73741824\n"),
        ])
        .unwrap();
        assert_eq!(available.cgroup_bytes, Some(1_000_000_000));
        assert_eq!(available.bytes(), 1_000_000_000);
    }

    /// cgroup v2: when several levels limit, the tightest room wins, even if it is not the
    /// nearest; `max` everywhere means no cgroup bound.
    #[test]
    fn cgroup_v2_tightest_level() {
        let available = check_files(&[
            ("/proc/meminfo", MEMINFO),
            ("/proc/self/cgroup", "0::/a/b\n"),
            ("/sys/fs/cgroup/a/b/memory.max", "2000\n"),
            ("/sys/fs/cgroup/a/b/memory.current", "500\n"),
            ("/sys/fs/cgroup/a/memory.max", "3000\n"),
            ("/sys/fs/cgroup/a/memory.current", "2800\n"),
        ])
        .unwrap();
        assert_eq!(available.cgroup_bytes, Some(200));
        let unlimited = check_files(&[
            ("/proc/meminfo", MEMINFO),
            ("/proc/self/cgroup", "0::/a\n"),
            ("/sys/fs/cgroup/a/memory.max", "max\n"),
        ])
        .unwrap();
        assert_eq!(unlimited.cgroup_bytes, None);
    }

    /// Inside a container the path names the host's view and only the mount's root exists:
    /// the walk reaches the root and reads its limit there. Usage above the limit leaves no
    /// room rather than wrapping.
    #[test]
    fn cgroup_v2_container_root() {
        let available = check_files(&[
            ("/proc/meminfo", MEMINFO),
            ("/proc/self/cgroup", "0::/system.slice/docker-1234.scope\n"),
            ("/sys/fs/cgroup/memory.max", "4096\n"),
            ("/sys/fs/cgroup/memory.current", "8192\n"),
        ])
        .unwrap();
        assert_eq!(available.cgroup_bytes, Some(0));
        assert_eq!(available.bytes(), 0);
    }

    /// cgroup v1 (and hybrid, where v1 controls memory even though a `0::` line exists):
    /// `memory.limit_in_bytes` minus `memory.usage_in_bytes`; the "no limit" value counts as
    /// none, and a limit without a usage file counts as nothing used.
    #[test]
    fn cgroup_v1() {
        let cgroups = "4:memory:/process_api/d58e\n0::/\n";
        let limited = check_files(&[
            ("/proc/meminfo", MEMINFO),
            ("/proc/self/cgroup", cgroups),
            (
                "/sys/fs/cgroup/memory/process_api/d58e/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
            ("/sys/fs/cgroup/memory/process_api/memory.limit_in_bytes", "1048576\n"),
            ("/sys/fs/cgroup/memory/process_api/memory.usage_in_bytes", "48576\n"),
            ("/sys/fs/cgroup/memory.max", "1\n"),
        ])
        .unwrap();
        assert_eq!(limited.cgroup_bytes, Some(1_000_000));
        let no_usage = check_files(&[
            ("/proc/meminfo", MEMINFO),
            ("/proc/self/cgroup", cgroups),
            ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "4096\n"),
        ])
        .unwrap();
        assert_eq!(no_usage.cgroup_bytes, Some(4096));
    }

    /// The check passes at equality and refuses one byte more, naming the largest part;
    /// the message says what to change.
    #[test]
    fn too_large() {
        let needed =
            MemoryBytes { message_pool: 3 << 20, rings: 5 << 20, ..MemoryBytes::default() };
        assert_eq!(check(&needed, 8 << 20), Ok(()));
        let error = check(&needed, (8 << 20) - 1).unwrap_err();
        assert_eq!(
            error,
            MemoryError::TooLarge {
                needed: 8 << 20,
                available: (8 << 20) - 1,
                largest_part: "rings",
                largest_bytes: 5 << 20,
            }
        );
        let message = error.to_string();
        assert!(message.contains("8388608 bytes (8 MiB)"), "{message}");
        assert!(message.contains("largest part is rings"), "{message}");
        assert!(message.contains("fewer shards"), "{message}");
    }

    /// `touch` writes one byte per page and leaves the contents as they were.
    #[test]
    fn touch_keeps_contents() {
        let page = page_size();
        let mut memory: Vec<u8> = (0..(3 * page + 1)).map(|index| (index % 251) as u8).collect();
        let before = memory.clone();
        assert_eq!(touch(&mut memory), 4);
        assert_eq!(memory, before);
        assert_eq!(touch(&mut []), 0);
    }

    /// On this machine: some memory is available, and no more than the machine has.
    #[cfg(target_os = "linux")]
    #[test]
    fn this_machine_is_plausible() {
        let available = available().expect("/proc/meminfo is readable on Linux");
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let total_line = meminfo.lines().find(|line| line.starts_with("MemTotal:")).unwrap();
        let total_kib: u64 = total_line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let bytes = available.bytes();
        assert!(bytes > 0 && bytes <= total_kib * 1024, "{available:?}, total {total_kib} kB");
        // MemAvailable moves between reads: only check that the shortcut answers.
        assert!(available_bytes().is_ok_and(|bytes| bytes > 0));
    }
}
