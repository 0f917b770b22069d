//! One file of a virtual disk: its durable contents, its volatile view, the log of unsynced
//! changes between them, and what a crash makes of that log.
//!
//! This module knows nothing of handles, faults, capacity or latency (see `disk`); it keeps
//! one invariant: the volatile view is always the durable contents with every unsynced
//! change applied in order.

use std::collections::VecDeque;

use crate::prng::Stream;

use super::{SECTOR_SIZE, UNSYNCED_BYTES_MAX, UNSYNCED_CHANGE_COUNT_MAX, WRITE_LEN_MAX};

/// A change a file received since its last successful fsync.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Change {
    /// `bytes` written at `offset`.
    Write {
        /// Byte offset in the file.
        offset: u64,
        /// The data, at most `WRITE_LEN_MAX` bytes, never empty.
        bytes: Vec<u8>,
    },
    /// The file cut to zero length (opened with `OpenMode::Truncate`).
    Truncate,
}

impl Change {
    /// Bytes this change holds in the unsynced log.
    fn byte_count(&self) -> usize {
        match self {
            Change::Write { bytes, .. } => bytes.len(),
            Change::Truncate => 0,
        }
    }
}

/// What a crash did to the unsynced changes of one or more files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrashOutcomes {
    /// Unsynced writes the crash lost entirely.
    pub writes_lost: u64,
    /// Unsynced writes of which the crash kept some sectors and lost the others.
    pub writes_torn: u64,
    /// Unsynced writes that reached the platter whole.
    pub writes_kept: u64,
    /// Unsynced truncations the crash reverted.
    pub truncates_lost: u64,
    /// Unsynced truncations that became durable.
    pub truncates_kept: u64,
    /// Open handles the crash closed (the process that held them died).
    pub handles_closed: u64,
}

impl CrashOutcomes {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &CrashOutcomes) {
        self.writes_lost += other.writes_lost;
        self.writes_torn += other.writes_torn;
        self.writes_kept += other.writes_kept;
        self.truncates_lost += other.truncates_lost;
        self.truncates_kept += other.truncates_kept;
        self.handles_closed += other.handles_closed;
    }

    /// Each outcome by name, in a fixed order, as a report writes them.
    pub fn entries(&self) -> [(&'static str, u64); 6] {
        [
            ("disk-write-lost", self.writes_lost),
            ("disk-write-torn", self.writes_torn),
            ("disk-write-kept", self.writes_kept),
            ("disk-truncate-lost", self.truncates_lost),
            ("disk-truncate-kept", self.truncates_kept),
            ("disk-handle-closed", self.handles_closed),
        ]
    }
}

/// What a crash does to one unsynced write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Lost,
    Torn,
    Kept,
}

/// One file: a path, durable and volatile contents and the unsynced log between them.
#[derive(Debug)]
pub(super) struct File {
    pub(super) path: String,
    /// What fsync made stable: what a crash cannot take away.
    pub(super) durable: Vec<u8>,
    /// What reads see now: `durable` with every change of `unsynced` applied in order.
    pub(super) volatile: Vec<u8>,
    /// Changes since the last successful fsync, oldest first, at most
    /// `UNSYNCED_CHANGE_COUNT_MAX` of them holding at most `UNSYNCED_BYTES_MAX` bytes.
    unsynced: VecDeque<Change>,
    /// Bytes held by `unsynced`.
    unsynced_bytes: usize,
    /// The longest this file can be after a crash: the largest of the durable length and
    /// every length the volatile view reached since the last fsync or crash. The disk's
    /// capacity is charged for this, so no crash outcome can overfill the disk.
    pub(super) reserved_len: u64,
}

impl File {
    /// An empty file at `path`.
    pub(super) fn new(path: String) -> File {
        File {
            path,
            durable: Vec::new(),
            volatile: Vec::new(),
            unsynced: VecDeque::new(),
            unsynced_bytes: 0,
            reserved_len: 0,
        }
    }

    /// Unsynced changes (writes and truncations).
    pub(super) fn unsynced_count(&self) -> usize {
        self.unsynced.len()
    }

    /// At most `len_max` bytes of the volatile view from `offset`: nothing past the end,
    /// the existing part of a range that straddles it.
    pub(super) fn read(&self, offset: u64, len_max: u32) -> Vec<u8> {
        let len = self.volatile.len() as u64;
        if offset >= len {
            return Vec::new();
        }
        let end = len.min(offset.saturating_add(u64::from(len_max)));
        // Both bounds are at most the volatile length, which is a usize.
        self.volatile[offset as usize..end as usize].to_vec()
    }

    /// How many bytes the reservation grows if the volatile view reaches `end`.
    pub(super) fn growth_for(&self, end: u64) -> u64 {
        end.saturating_sub(self.reserved_len)
    }

    /// Writes `bytes` at `offset` into the volatile view (zero-filling any gap past the
    /// end) and logs it as unsynced. Returns the forced write-backs it took to make room.
    pub(super) fn write(&mut self, offset: u64, bytes: &[u8]) -> u64 {
        assert!(!bytes.is_empty() && bytes.len() <= WRITE_LEN_MAX, "write length checked");
        let change = Change::Write { offset, bytes: bytes.to_vec() };
        let write_backs = self.log(&change);
        apply(&mut self.volatile, &change);
        self.reserved_len = self.reserved_len.max(self.volatile.len() as u64);
        write_backs
    }

    /// Cuts the volatile view to zero length and logs the truncation as unsynced; a crash
    /// may revert it. Returns the forced write-backs it took to make room.
    pub(super) fn truncate(&mut self) -> u64 {
        if self.volatile.is_empty() {
            // Truncating an empty view changes nothing a reader or a crash could see
            // beyond what the log already holds.
            return 0;
        }
        let write_backs = self.log(&Change::Truncate);
        apply(&mut self.volatile, &Change::Truncate);
        write_backs
    }

    /// Appends `change` to the unsynced log, first writing back the oldest changes (making
    /// them durable, as a kernel's dirty-page write-back does) until it fits.
    fn log(&mut self, change: &Change) -> u64 {
        let mut write_backs = 0;
        while self.unsynced.len() >= UNSYNCED_CHANGE_COUNT_MAX
            || self.unsynced_bytes + change.byte_count() > UNSYNCED_BYTES_MAX
        {
            // Bounded by the log's length: every turn removes one change, and an empty log
            // always has room (a change holds at most `WRITE_LEN_MAX` bytes).
            let oldest = self.unsynced.pop_front().expect("a log without room is not empty");
            self.unsynced_bytes -= oldest.byte_count();
            apply(&mut self.durable, &oldest);
            write_backs += 1;
        }
        self.unsynced_bytes += change.byte_count();
        self.unsynced.push_back(change.clone());
        write_backs
    }

    /// Makes every unsynced change durable. Returns the reserved bytes it released.
    pub(super) fn sync(&mut self) -> u64 {
        // Applying the log costs what was written since the last fsync, not the file's size.
        for change in self.unsynced.drain(..) {
            apply(&mut self.durable, &change);
        }
        self.unsynced_bytes = 0;
        debug_assert!(self.durable == self.volatile, "durable + log = volatile");
        self.settle()
    }

    /// What a crash makes of the unsynced log: each write independently lost, torn at
    /// sector boundaries or kept, each truncation lost or kept; the survivors applied to
    /// the durable contents in their original order. Returns the reserved bytes released.
    pub(super) fn crash(&mut self, stream: &mut Stream, outcomes: &mut CrashOutcomes) -> u64 {
        let reserved_len = self.reserved_len;
        for change in self.unsynced.drain(..) {
            match change {
                Change::Truncate if stream.below(2) == 0 => outcomes.truncates_lost += 1,
                Change::Truncate => {
                    self.durable.clear();
                    outcomes.truncates_kept += 1;
                }
                Change::Write { offset, bytes } => match draw_fate(stream, offset, &bytes) {
                    Fate::Lost => outcomes.writes_lost += 1,
                    Fate::Torn => {
                        tear(&mut self.durable, offset, &bytes, stream);
                        outcomes.writes_torn += 1;
                    }
                    Fate::Kept => {
                        apply(&mut self.durable, &Change::Write { offset, bytes });
                        outcomes.writes_kept += 1;
                    }
                },
            }
        }
        self.unsynced_bytes = 0;
        self.volatile.clone_from(&self.durable);
        assert!(self.durable.len() as u64 <= reserved_len, "a crash outgrew the reservation");
        self.settle()
    }

    /// After a sync or a crash: the reservation shrinks to the durable length.
    fn settle(&mut self) -> u64 {
        let len = self.durable.len() as u64;
        assert!(len <= self.reserved_len, "the reservation covers the durable contents");
        let released = self.reserved_len - len;
        self.reserved_len = len;
        released
    }
}

/// Applies one change to `contents`; a write past the end zero-fills the gap.
fn apply(contents: &mut Vec<u8>, change: &Change) {
    match change {
        Change::Truncate => contents.clear(),
        Change::Write { offset, bytes } => write_at(contents, *offset, bytes),
    }
}

/// Writes `bytes` at `offset`, extending `contents` (zero-filled) as needed.
fn write_at(contents: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    // The disk checked offset + length against `FILE_SIZE_MAX`, which fits a usize.
    let start = offset as usize;
    let end = start + bytes.len();
    if contents.len() < end {
        contents.resize(end, 0);
    }
    contents[start..end].copy_from_slice(bytes);
}

/// The sectors `len` bytes at `offset` touch: first sector index and count.
fn sector_span(offset: u64, len: usize) -> (u64, u64) {
    let first = offset / SECTOR_SIZE;
    let last = (offset + len as u64 - 1) / SECTOR_SIZE;
    (first, last - first + 1)
}

/// Draws a write's fate, each possible one equally likely. A write within one sector
/// cannot tear (a sector is written whole or not at all), so it is lost or kept.
fn draw_fate(stream: &mut Stream, offset: u64, bytes: &[u8]) -> Fate {
    let (_, sector_count) = sector_span(offset, bytes.len());
    if sector_count >= 2 {
        [Fate::Lost, Fate::Torn, Fate::Kept][stream.choose_index(3)]
    } else {
        [Fate::Lost, Fate::Kept][stream.choose_index(2)]
    }
}

/// Applies some sectors of a write and not others. Each sector is kept independently with
/// probability 1/2, because a disk does not promise to write the sectors of one request
/// in order; if the draws keep all or none, one sector drawn at random changes side, so a
/// torn write is always partial. A kept sector's bytes land exactly; a lost sector leaves
/// what was there (zeros past the end, if a later kept sector extends the file).
fn tear(durable: &mut Vec<u8>, offset: u64, bytes: &[u8], stream: &mut Stream) {
    let (first, sector_count) = sector_span(offset, bytes.len());
    assert!(sector_count >= 2, "only a write over two or more sectors tears");
    // At most `WRITE_LEN_MAX / SECTOR_SIZE + 1` sectors, so the count fits a usize.
    let mut kept: Vec<bool> = (0..sector_count).map(|_| stream.below(2) == 1).collect();
    let kept_count = kept.iter().filter(|&&keep| keep).count();
    if kept_count == 0 || kept_count == kept.len() {
        let flipped = stream.choose_index(kept.len());
        kept[flipped] = !kept[flipped];
    }
    let end = offset + bytes.len() as u64;
    for (sector, keep) in (first..).zip(kept) {
        if !keep {
            continue;
        }
        let piece_start = offset.max(sector * SECTOR_SIZE);
        let piece_end = end.min((sector + 1) * SECTOR_SIZE);
        // Offsets within the write, which is at most `WRITE_LEN_MAX` bytes long.
        let within = (piece_start - offset) as usize..(piece_end - offset) as usize;
        write_at(durable, piece_start, &bytes[within]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sector span counts every sector a write touches, aligned or not.
    #[test]
    fn sector_spans() {
        assert_eq!(sector_span(0, 1), (0, 1));
        assert_eq!(sector_span(0, 512), (0, 1));
        assert_eq!(sector_span(0, 513), (0, 2));
        assert_eq!(sector_span(511, 2), (0, 2));
        assert_eq!(sector_span(1024, 512), (2, 1));
    }

    /// A full log writes back its oldest change: durable + log = volatile still holds.
    #[test]
    fn write_back_keeps_the_invariant() {
        let mut file = File::new("f".to_string());
        let mut write_backs = 0;
        for index in 0..(UNSYNCED_CHANGE_COUNT_MAX as u64 + 3) {
            write_backs += file.write(index, &[index as u8 + 1]);
        }
        assert_eq!(write_backs, 3);
        assert_eq!(file.unsynced_count(), UNSYNCED_CHANGE_COUNT_MAX);
        assert_eq!(file.durable, [1, 2, 3]);
        let mut replayed = file.durable.clone();
        for change in &file.unsynced {
            apply(&mut replayed, change);
        }
        assert_eq!(replayed, file.volatile);
    }
}
