//! A process's CPU time, from `/proc/<pid>/stat`: user plus system time, in nanoseconds.
//!
//! For tests that hold an idle runtime to (almost) no CPU: read it before and after a
//! quiet interval and compare. The kernel counts in clock ticks (`sysconf(_SC_CLK_TCK)`,
//! usually 100 per second), so the resolution is a tick, not a nanosecond. Not a profiler
//! and not per thread.

use std::io;

/// Ticks per second if `sysconf` cannot say: the value Linux reports on every architecture.
const CLOCK_TICKS_PER_SECOND_DEFAULT: u64 = 100;
/// Fields after the command name up to `stime`: `state` is the first, `utime` the 12th,
/// `stime` the 13th (fields 3, 14 and 15 of `proc(5)`).
const UTIME_INDEX: usize = 11;
const STIME_INDEX: usize = 12;

/// The CPU time of a `/proc/<pid>/stat` line, in clock ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuTicks {
    /// Time in user mode (`utime`).
    pub user: u64,
    /// Time in kernel mode (`stime`).
    pub system: u64,
}

impl CpuTicks {
    /// User plus system.
    pub fn total(&self) -> u64 {
        self.user.saturating_add(self.system)
    }
}

/// `utime` and `stime` of a `/proc/<pid>/stat` line. The command name (second field) is in
/// parentheses and may itself hold spaces and parentheses, so fields are counted from the
/// last `)`.
pub fn parse_stat(stat: &str) -> Option<CpuTicks> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let user = fields.nth(UTIME_INDEX)?.parse().ok()?;
    let system = fields.nth(STIME_INDEX - UTIME_INDEX - 1)?.parse().ok()?;
    Some(CpuTicks { user, system })
}

/// `ticks` clock ticks in nanoseconds, at `ticks_per_second`; saturates.
pub fn ticks_to_ns(ticks: u64, ticks_per_second: u64) -> u64 {
    let nanoseconds = u128::from(ticks) * 1_000_000_000 / u128::from(ticks_per_second.max(1));
    u64::try_from(nanoseconds).unwrap_or(u64::MAX)
}

/// Clock ticks per second of this machine (`sysconf(_SC_CLK_TCK)`).
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: `sysconf` reads a configuration value; it has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&ticks| ticks > 0).unwrap_or(CLOCK_TICKS_PER_SECOND_DEFAULT)
}

/// CPU time (user plus system) process `pid` has used so far, in nanoseconds, at the
/// resolution of a clock tick. An absent process is `NotFound`; a line we cannot parse is
/// `InvalidData`.
pub fn process_cpu_ns(pid: u32) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = parse_stat(&stat).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, format!("/proc/{pid}/stat: no utime and stime"))
    })?;
    Ok(ticks_to_ns(ticks.total(), clock_ticks_per_second()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real lines: a plain name, a name with spaces and parentheses, one that ends in `)`.
    #[test]
    fn parses_from_the_last_parenthesis() {
        let cases = [
            (
                "21242 (head) R 21235 21235 7740 0 -1 4194304 101 0 0 0 17 4 0 0 20 0 1 0 4047119",
                (17, 4),
            ),
            (
                "1234 (my (weird) name) S 1 1234 1234 0 -1 4194560 500 0 2 0 250 31 0 0 20 0 3 0",
                (250, 31),
            ),
            ("77 (a) b)) S 1 77 77 0 -1 0 0 0 0 0 9 8 7 6 20 0 1 0 5", (9, 8)),
        ];
        for (line, (user, system)) in cases {
            assert_eq!(parse_stat(line), Some(CpuTicks { user, system }), "{line}");
        }
    }

    /// Truncated, nameless or non-numeric lines are refused, not misread.
    #[test]
    fn refuses_malformed_lines() {
        for line in [
            "",
            "1234 (name",
            "1234 (name) S 1 2 3",
            "1234 (name) S 1 1234 1234 0 -1 4194560 500 0 2 0 x 31 0",
            "1234 (name) S 1 1234 1234 0 -1 4194560 500 0 2 0 250",
        ] {
            assert_eq!(parse_stat(line), None, "{line}");
        }
    }

    /// Ticks convert at the given rate; a zero rate does not divide by zero.
    #[test]
    fn converts_ticks() {
        assert_eq!(ticks_to_ns(150, 100), 1_500_000_000);
        assert_eq!(ticks_to_ns(1, 1000), 1_000_000);
        assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX);
        assert_eq!(ticks_to_ns(3, 0), 3_000_000_000);
        assert!(clock_ticks_per_second() > 0);
    }

    /// On this machine: the test process's CPU time grows while it works (reading its own
    /// stat file is the work, bounded), and a process that does not exist is `NotFound`.
    #[test]
    fn this_process() {
        let pid = std::process::id();
        let start = process_cpu_ns(pid).unwrap();
        let grew = (0..1_000_000).any(|_| process_cpu_ns(pid).unwrap() > start);
        assert!(grew, "CPU time stayed at {start} ns");
        // Above the kernel's largest pid (4,194,304).
        let absent = process_cpu_ns(u32::MAX).unwrap_err();
        assert_eq!(absent.kind(), io::ErrorKind::NotFound);
    }
}
