//! A deterministic virtual disk for one simulated node: files with durable and volatile
//! contents, what a crash does to writes that were never fsynced, and the disk faults
//! (latency, I/O errors, fsync failures, corruption on read, a full disk).
//!
//! It is sans-IO: a pure state machine with no clock, no thread and no randomness of its
//! own. Every operation takes the node's [`DiskStreams`] and returns its result together
//! with the latency the world should wait before completing it; the world decides when.
//! It is not a file system: there are no directories, renames, deletions, permissions or
//! sparse files, and a file, once created, exists after any crash (directory entries are
//! not modelled). It is not wired into the world or the fault knobs yet.
//!
//! # The model
//!
//! - **Contents.** Each file has *durable* contents (what fsync made stable) and a
//!   *volatile* view (what reads see): the durable contents with every unsynced change
//!   applied in order. A read past the end returns no bytes, a read straddling the end
//!   returns the part that exists; a write past the end zero-fills the gap.
//! - **Truncation** (`OpenMode::Truncate` on an existing, non-empty file) is a volatile
//!   metadata change like a write: it is in the unsynced log, fsync makes it durable, and a
//!   crash may revert it (each unsynced truncation is kept or lost with probability 1/2).
//! - **Crash** ([`Disk::crash`]): open handles die with the process; files stay. Each
//!   unsynced write independently ends up lost, torn or kept, each equally likely (a write
//!   within one sector cannot tear, so it is lost or kept). A torn write keeps each of its
//!   [`SECTOR_SIZE`] sectors independently, at least one and not all, because a disk does
//!   not promise to write the sectors of one request in order. The survivors are applied to
//!   the durable contents in their original order. Fsynced data is never touched by a
//!   crash; it changes only where a later change that survived overwrote it.
//! - **Fsync failure** returns `IoError::Other` and leaves every unsynced change unsynced:
//!   a crash may still lose it, and a later fsync may still make it durable. (Linux may
//!   instead drop the dirty pages after a failed fsync and report success next time; this
//!   model is the kinder one, and says so.)
//! - **Write-back.** A file's unsynced log holds at most [`UNSYNCED_CHANGE_COUNT_MAX`]
//!   changes and [`UNSYNCED_BYTES_MAX`] bytes. When a change would not fit, the oldest
//!   changes become durable first, as a kernel's dirty-page write-back does; nothing is
//!   refused for it, and [`DiskCounts::write_backs`] counts it.
//! - **Capacity.** Each file is charged for the longest it could be after a crash (its
//!   durable length, or any length its volatile view reached since the last fsync or
//!   crash, whichever is largest), so no crash outcome overfills the disk. A write that
//!   would exceed the capacity fails with `IoError::StorageFull` and changes nothing.
//! - **Handles** are generational: a slot's generation changes when its handle is closed
//!   or dies in a crash, so a stale handle is `InvalidHandle`, as is a handle never issued.
//!   A handle carries the low 8 bits of its node, so another node's handle is refused as
//!   long as the two nodes differ in those bits (every world of up to 256 nodes).
//! - **Memory** grows only with what is written: per file, the durable contents and the
//!   volatile view (each no longer than the file's reservation, which the capacity bounds)
//!   and an unsynced log of at most [`UNSYNCED_BYTES_MAX`] bytes.
//! - **Limits** are typed errors, not faults, and are not counted: a bad path or a write
//!   longer than [`WRITE_LEN_MAX`] or past [`FILE_SIZE_MAX`] is `InvalidInput`, a write
//!   through a handle opened `Read` is `PermissionDenied`, creating a file beyond
//!   [`FILE_COUNT_MAX`] is `StorageFull` (as running out of inodes is), and opening beyond
//!   [`HANDLE_COUNT_MAX`] handles is `Other`.
//! - **Faults** ([`DiskConfig`]): every operation draws a latency in
//!   `[latency_ns_min, latency_ns_max]`; a read or write fails with `IoError::Other` with
//!   its probability (a failed write changes nothing); a successful, non-empty read comes
//!   back with 1 to [`CORRUPTION_BIT_FLIPS_MAX`] bits flipped with its probability (the
//!   stored bytes are not changed). Each injected fault is counted in [`DiskCounts`].
//!
//! # Draws
//!
//! Every operation draws its latency first, from `DiskStreams::latency`, even when it then
//! fails validation. A read of an open handle, or a write that passes validation, then
//! draws from `error`; a read that returns bytes then draws from `corruption`; an fsync of
//! an open handle draws from `fsync`; a crash draws from `crash`, file by file in creation
//! order and change by change in log order. Each kind has its own stream, so switching one
//! on or off leaves the draws of the others unchanged.

mod file;

use core::fmt;
use std::collections::BTreeSet;

use tina::io::{IoError, IoHandle, OpenMode};

pub use file::CrashOutcomes;

use crate::prng::{PrngTree, Ratio, Scope, Stream};
use file::File;

/// Bytes in a sector: the unit a disk writes whole or not at all, and where writes tear.
pub const SECTOR_SIZE: u64 = 512;
/// Longest path in bytes (UTF-8, not empty, no NUL), as `NAME_MAX` is on Linux.
pub const PATH_LEN_MAX: usize = 255;
/// Most files one disk holds.
pub const FILE_COUNT_MAX: usize = 256;
/// Largest file in bytes.
pub const FILE_SIZE_MAX: u64 = 64 << 20;
/// Most bytes one write may carry.
pub const WRITE_LEN_MAX: usize = 1 << 20;
/// Most unsynced changes one file holds before the oldest is written back.
pub const UNSYNCED_CHANGE_COUNT_MAX: usize = 64;
/// Most unsynced bytes one file holds before the oldest changes are written back.
pub const UNSYNCED_BYTES_MAX: usize = 4 << 20;
/// Largest capacity a disk may be given.
pub const CAPACITY_BYTES_MAX: u64 = 1 << 30;
/// Most handles open on one disk at once.
pub const HANDLE_COUNT_MAX: usize = 64;
/// Longest latency an operation may be given: one minute.
pub const LATENCY_NS_MAX: u64 = 60_000_000_000;
/// Most bits one corrupted read flips.
pub const CORRUPTION_BIT_FLIPS_MAX: u64 = 8;

/// A file handle's raw layout, from the top: a mark bit (so a file handle is never
/// `IoHandle::NONE` and the world can tell files from sockets), the low 8 bits of the node
/// (so another node's handle is refused), a 16-bit generation per slot (so a closed handle
/// is refused) and a 7-bit slot index.
const HANDLE_MARK: u32 = 1 << 31;
const HANDLE_NODE_BITS: u32 = 8;
const HANDLE_GENERATION_BITS: u32 = 16;
const HANDLE_SLOT_BITS: u32 = 7;

const _: () = assert!(SECTOR_SIZE.is_power_of_two());
const _: () = assert!(WRITE_LEN_MAX <= UNSYNCED_BYTES_MAX);
const _: () = assert!(WRITE_LEN_MAX as u64 <= FILE_SIZE_MAX);
const _: () = assert!(WRITE_LEN_MAX <= u32::MAX as usize);
const _: () = assert!(FILE_SIZE_MAX <= CAPACITY_BYTES_MAX);
const _: () = assert!(CAPACITY_BYTES_MAX <= usize::MAX as u64);
const _: () = assert!(1 + HANDLE_NODE_BITS + HANDLE_GENERATION_BITS + HANDLE_SLOT_BITS == 32);
const _: () = assert!(HANDLE_COUNT_MAX <= 1 << HANDLE_SLOT_BITS);
const _: () = assert!(CORRUPTION_BIT_FLIPS_MAX >= 1);
const _: () = assert!(HANDLE_NODE_BITS <= 16 && HANDLE_GENERATION_BITS == 16);

/// The fields of a file handle's raw value (see [`HANDLE_MARK`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HandleParts {
    /// The node; only its low [`HANDLE_NODE_BITS`] bits are encoded.
    node: u16,
    generation: u16,
    slot: usize,
}

/// The bits of `node` a handle keeps: nodes whose low bits differ never accept each
/// other's handles.
const fn node_tag(node: u16) -> u16 {
    node & ((1 << HANDLE_NODE_BITS) - 1)
}

impl HandleParts {
    /// These parts with the node cut to the bits a handle keeps of it.
    fn tagged(self) -> HandleParts {
        HandleParts { node: node_tag(self.node), ..self }
    }

    fn encode(self) -> IoHandle {
        assert!(self.slot < HANDLE_COUNT_MAX, "a slot index fits its bits");
        let tagged = self.tagged();
        // The slot is below `HANDLE_COUNT_MAX`, which fits `HANDLE_SLOT_BITS`.
        IoHandle::from_raw(
            HANDLE_MARK
                | u32::from(tagged.node) << (HANDLE_GENERATION_BITS + HANDLE_SLOT_BITS)
                | u32::from(tagged.generation) << HANDLE_SLOT_BITS
                | tagged.slot as u32,
        )
    }

    /// The parts of a file handle, or `None` for a value without the mark.
    fn decode(handle: IoHandle) -> Option<HandleParts> {
        let raw = handle.to_raw();
        if raw & HANDLE_MARK == 0 {
            return None;
        }
        let field = |shift: u32, bits: u32| (raw >> shift) & ((1 << bits) - 1);
        // Each field is masked to at most 16 bits.
        Some(HandleParts {
            node: field(HANDLE_GENERATION_BITS + HANDLE_SLOT_BITS, HANDLE_NODE_BITS) as u16,
            generation: field(HANDLE_SLOT_BITS, HANDLE_GENERATION_BITS) as u16,
            slot: field(0, HANDLE_SLOT_BITS) as usize,
        })
    }
}

/// A disk's capacity and faults. Probabilities follow the fault knobs' scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskConfig {
    /// Bytes the disk holds, at most [`CAPACITY_BYTES_MAX`].
    pub capacity_bytes: u64,
    /// Shortest latency of an operation.
    pub latency_ns_min: u64,
    /// Longest latency of an operation, at most [`LATENCY_NS_MAX`].
    pub latency_ns_max: u64,
    /// Chance a read fails with `IoError::Other`.
    pub read_error_probability: Ratio,
    /// Chance a write fails with `IoError::Other` (and writes nothing).
    pub write_error_probability: Ratio,
    /// Chance an fsync fails (and syncs nothing).
    pub fsync_failure_probability: Ratio,
    /// Chance a read returns bytes with bits flipped.
    pub corruption_probability: Ratio,
}

impl DiskConfig {
    /// A disk of `capacity_bytes` with no latency and no fault.
    pub const fn reliable(capacity_bytes: u64) -> DiskConfig {
        DiskConfig {
            capacity_bytes,
            latency_ns_min: 0,
            latency_ns_max: 0,
            read_error_probability: Ratio::ZERO,
            write_error_probability: Ratio::ZERO,
            fsync_failure_probability: Ratio::ZERO,
            corruption_probability: Ratio::ZERO,
        }
    }

    /// Checks the limits and that the latency range is in order.
    pub fn validate(&self) -> Result<(), DiskConfigError> {
        if self.capacity_bytes > CAPACITY_BYTES_MAX {
            return Err(DiskConfigError::CapacityAboveMax { capacity_bytes: self.capacity_bytes });
        }
        if self.latency_ns_max > LATENCY_NS_MAX {
            return Err(DiskConfigError::LatencyAboveMax { latency_ns_max: self.latency_ns_max });
        }
        if self.latency_ns_min > self.latency_ns_max {
            return Err(DiskConfigError::LatencyInverted {
                latency_ns_min: self.latency_ns_min,
                latency_ns_max: self.latency_ns_max,
            });
        }
        Ok(())
    }
}

/// A [`DiskConfig`] a disk cannot run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskConfigError {
    /// The capacity exceeds [`CAPACITY_BYTES_MAX`].
    CapacityAboveMax {
        /// The capacity given.
        capacity_bytes: u64,
    },
    /// The longest latency exceeds [`LATENCY_NS_MAX`].
    LatencyAboveMax {
        /// The latency given.
        latency_ns_max: u64,
    },
    /// The shortest latency is above the longest.
    LatencyInverted {
        /// The shortest latency given.
        latency_ns_min: u64,
        /// The longest latency given.
        latency_ns_max: u64,
    },
}

impl fmt::Display for DiskConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskConfigError::CapacityAboveMax { capacity_bytes } => write!(
                f,
                "disk capacity {capacity_bytes} bytes exceeds the limit of \
                 {CAPACITY_BYTES_MAX} bytes"
            ),
            DiskConfigError::LatencyAboveMax { latency_ns_max } => {
                write!(f, "disk latency {latency_ns_max}ns exceeds the limit of {LATENCY_NS_MAX}ns")
            }
            DiskConfigError::LatencyInverted { latency_ns_min, latency_ns_max } => write!(
                f,
                "disk latency minimum {latency_ns_min}ns is above the maximum \
                 {latency_ns_max}ns; make the minimum at most the maximum"
            ),
        }
    }
}

impl std::error::Error for DiskConfigError {}

/// One node's disk streams, one per kind of draw (see the module doc's "Draws").
#[derive(Debug)]
pub struct DiskStreams {
    /// Every operation's latency.
    pub latency: Stream,
    /// Read and write errors.
    pub error: Stream,
    /// Fsync failures.
    pub fsync: Stream,
    /// Corruption on read: whether, how many bits and which.
    pub corruption: Stream,
    /// What a crash does to each unsynced change.
    pub crash: Stream,
}

impl DiskStreams {
    /// The disk streams of `node` in `tree`.
    pub fn new(tree: &PrngTree, node: u16) -> DiskStreams {
        let scope = Scope::Node { node };
        DiskStreams {
            latency: tree.stream(scope, "disk.latency"),
            error: tree.stream(scope, "disk.error"),
            fsync: tree.stream(scope, "disk.fsync-failure"),
            corruption: tree.stream(scope, "disk.corruption"),
            crash: tree.stream(scope, "disk.crash"),
        }
    }
}

/// An operation's result and how long the disk took to produce it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskReply<T> {
    /// How long after submission the world should complete the operation.
    pub latency_ns: u64,
    /// What the operation produced.
    pub result: Result<T, IoError>,
}

/// What a disk did so far: injected faults, forced write-backs and crash outcomes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskCounts {
    /// Reads and writes failed on purpose (`disk-error`).
    pub errors: u64,
    /// Fsyncs failed on purpose (`disk-fsync-failure`).
    pub fsync_failures: u64,
    /// Reads returned with bits flipped (`disk-corruption`).
    pub corruptions: u64,
    /// Writes refused because the disk was full (`disk-full`).
    pub full: u64,
    /// Unsynced changes made durable to make room in a full log (not a fault).
    pub write_backs: u64,
    /// What every crash so far did.
    pub crash: CrashOutcomes,
}

impl DiskCounts {
    /// Injected faults by name, in a fixed order, as a report writes them.
    pub fn faults(&self) -> [(&'static str, u64); 4] {
        [
            ("disk-error", self.errors),
            ("disk-fsync-failure", self.fsync_failures),
            ("disk-corruption", self.corruptions),
            ("disk-full", self.full),
        ]
    }
}

/// A slot for one open handle; its generation changes when the handle is closed.
#[derive(Clone, Copy, Debug)]
struct Slot {
    generation: u16,
    open: Option<Open>,
}

/// What an open handle names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Open {
    /// Index into `Disk::files`; files are never removed, so it stays valid.
    file: usize,
    mode: OpenMode,
}

/// One node's virtual disk. The world keeps it across the node's restarts.
pub struct Disk {
    node: u16,
    config: DiskConfig,
    /// Every file, in creation order (the order a crash draws in).
    files: Vec<File>,
    /// Handle slots, at most [`HANDLE_COUNT_MAX`].
    slots: Vec<Slot>,
    /// Sum of the files' reservations, at most the capacity when it was last checked.
    used_bytes: u64,
    counts: DiskCounts,
}

impl fmt::Debug for Disk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The contents can be megabytes: show their shape, not their bytes.
        f.debug_struct("Disk")
            .field("node", &self.node)
            .field("config", &self.config)
            .field("file_count", &self.files.len())
            .field("open_handle_count", &self.open_handle_count())
            .field("used_bytes", &self.used_bytes)
            .field("counts", &self.counts)
            .finish()
    }
}

impl Disk {
    /// An empty disk for `node`, or why `config` cannot be used.
    pub fn new(node: u16, config: DiskConfig) -> Result<Disk, DiskConfigError> {
        config.validate()?;
        Ok(Disk {
            node,
            config,
            files: Vec::new(),
            slots: Vec::new(),
            used_bytes: 0,
            counts: DiskCounts::default(),
        })
    }

    /// Replaces the capacity and faults (the world turns faults off for the liveness
    /// phase). A capacity below what is used refuses growth from then on; nothing is lost.
    pub fn reconfigure(&mut self, config: DiskConfig) -> Result<(), DiskConfigError> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// The capacity and faults in force.
    pub fn config(&self) -> &DiskConfig {
        &self.config
    }

    /// Opens `path` (UTF-8 bytes): `Read` and `ReadWrite` need the file to exist, `Create`
    /// creates it if missing, `Truncate` also cuts it to zero length (unsynced).
    pub fn open(
        &mut self,
        path: impl AsRef<[u8]>,
        mode: OpenMode,
        streams: &mut DiskStreams,
    ) -> DiskReply<IoHandle> {
        let latency_ns = self.draw_latency(streams);
        DiskReply { latency_ns, result: self.open_now(path.as_ref(), mode) }
    }

    /// Reads at most `len_max` bytes at `offset` of the volatile view.
    pub fn read(
        &mut self,
        handle: IoHandle,
        offset: u64,
        len_max: u32,
        streams: &mut DiskStreams,
    ) -> DiskReply<Vec<u8>> {
        let latency_ns = self.draw_latency(streams);
        DiskReply { latency_ns, result: self.read_now(handle, offset, len_max, streams) }
    }

    /// Writes `bytes` at `offset` (unsynced); returns the count written, all or nothing.
    pub fn write(
        &mut self,
        handle: IoHandle,
        offset: u64,
        bytes: &[u8],
        streams: &mut DiskStreams,
    ) -> DiskReply<u32> {
        let latency_ns = self.draw_latency(streams);
        DiskReply { latency_ns, result: self.write_now(handle, offset, bytes, &mut streams.error) }
    }

    /// Makes every unsynced change of the handle's file durable, unless the fsync fails.
    pub fn fsync(&mut self, handle: IoHandle, streams: &mut DiskStreams) -> DiskReply<()> {
        let latency_ns = self.draw_latency(streams);
        DiskReply { latency_ns, result: self.fsync_now(handle, &mut streams.fsync) }
    }

    /// Closes a handle. Closing does not sync: unsynced changes stay unsynced.
    pub fn close(&mut self, handle: IoHandle, streams: &mut DiskStreams) -> DiskReply<()> {
        let latency_ns = self.draw_latency(streams);
        let result = self.lookup(handle).map(|_| self.release(handle));
        DiskReply { latency_ns, result }
    }

    /// Closes a handle, at once (the world draws the latency itself).
    pub(crate) fn close_now(&mut self, handle: IoHandle) -> Result<(), IoError> {
        self.lookup(handle).map(|_| self.release(handle))
    }

    /// The node crashed: every open handle dies and each file's unsynced changes are lost,
    /// torn or kept (see the module doc). Returns what this crash did; the disk's counts
    /// add it up over crashes.
    pub fn crash(&mut self, streams: &mut DiskStreams) -> CrashOutcomes {
        let mut outcomes = CrashOutcomes::default();
        for slot in &mut self.slots {
            if slot.open.take().is_some() {
                slot.generation = slot.generation.wrapping_add(1);
                outcomes.handles_closed += 1;
            }
        }
        for file in &mut self.files {
            self.used_bytes -= file.crash(&mut streams.crash, &mut outcomes);
        }
        debug_assert_eq!(
            self.used_bytes,
            self.files.iter().map(|file| file.reserved_len).sum::<u64>()
        );
        self.counts.crash.add(&outcomes);
        outcomes
    }

    pub(crate) fn draw_latency(&self, streams: &mut DiskStreams) -> u64 {
        streams.latency.range_inclusive(self.config.latency_ns_min, self.config.latency_ns_max)
    }

    pub(crate) fn open_now(&mut self, path: &[u8], mode: OpenMode) -> Result<IoHandle, IoError> {
        let path = check_path(path)?;
        // Find the slot before creating the file, so an open refused for want of a handle
        // changes nothing. Running out of handles is not a fault the model injects, and
        // no error names it better than `Other`.
        let slot = self.free_slot().ok_or(IoError::Other)?;
        let file = match (self.find(path), mode) {
            (Some(file), _) => file,
            (None, OpenMode::Read | OpenMode::ReadWrite) => return Err(IoError::NotFound),
            (None, OpenMode::Create | OpenMode::Truncate) => {
                if self.files.len() >= FILE_COUNT_MAX {
                    // No room for another file, as a file system out of inodes says.
                    return Err(IoError::StorageFull);
                }
                self.files.push(File::new(path.to_owned()));
                self.files.len() - 1
            }
        };
        if mode == OpenMode::Truncate {
            self.counts.write_backs += self.files[file].truncate();
        }
        Ok(self.bind(slot, Open { file, mode }))
    }

    pub(crate) fn read_now(
        &mut self,
        handle: IoHandle,
        offset: u64,
        len_max: u32,
        streams: &mut DiskStreams,
    ) -> Result<Vec<u8>, IoError> {
        let open = self.lookup(handle)?;
        if streams.error.chance(self.config.read_error_probability) {
            self.counts.errors += 1;
            return Err(IoError::Other);
        }
        let mut bytes = self.files[open.file].read(offset, len_max);
        if !bytes.is_empty() && streams.corruption.chance(self.config.corruption_probability) {
            corrupt(&mut bytes, &mut streams.corruption);
            self.counts.corruptions += 1;
        }
        Ok(bytes)
    }

    pub(crate) fn write_now(
        &mut self,
        handle: IoHandle,
        offset: u64,
        bytes: &[u8],
        error: &mut Stream,
    ) -> Result<u32, IoError> {
        let open = self.lookup(handle)?;
        if open.mode == OpenMode::Read {
            return Err(IoError::PermissionDenied);
        }
        if bytes.len() > WRITE_LEN_MAX {
            return Err(IoError::InvalidInput);
        }
        // A file larger than the model allows is a bad argument, not a full disk.
        let end = offset
            .checked_add(bytes.len() as u64)
            .filter(|&end| end <= FILE_SIZE_MAX)
            .ok_or(IoError::InvalidInput)?;
        if error.chance(self.config.write_error_probability) {
            self.counts.errors += 1;
            return Err(IoError::Other);
        }
        if bytes.is_empty() {
            return Ok(0);
        }
        let file = &mut self.files[open.file];
        let growth = file.growth_for(end);
        if growth > 0 && self.used_bytes + growth > self.config.capacity_bytes {
            self.counts.full += 1;
            return Err(IoError::StorageFull);
        }
        self.counts.write_backs += file.write(offset, bytes);
        self.used_bytes += growth;
        assert!(growth == 0 || self.used_bytes <= self.config.capacity_bytes, "growth fits");
        debug_assert_eq!(
            self.used_bytes,
            self.files.iter().map(|file| file.reserved_len).sum::<u64>()
        );
        // At most `WRITE_LEN_MAX`, which fits a u32.
        Ok(bytes.len() as u32)
    }

    pub(crate) fn fsync_now(
        &mut self,
        handle: IoHandle,
        fsync: &mut Stream,
    ) -> Result<(), IoError> {
        let open = self.lookup(handle)?;
        if fsync.chance(self.config.fsync_failure_probability) {
            // The unsynced changes stay unsynced: a crash may lose them, a later fsync may
            // still make them durable.
            self.counts.fsync_failures += 1;
            return Err(IoError::Other);
        }
        self.used_bytes -= self.files[open.file].sync();
        Ok(())
    }

    /// The lowest free slot, or a new one while there are fewer than the limit.
    fn free_slot(&self) -> Option<usize> {
        match self.slots.iter().position(|slot| slot.open.is_none()) {
            Some(slot) => Some(slot),
            None => (self.slots.len() < HANDLE_COUNT_MAX).then_some(self.slots.len()),
        }
    }

    fn bind(&mut self, slot: usize, open: Open) -> IoHandle {
        if slot == self.slots.len() {
            self.slots.push(Slot { generation: 0, open: None });
        }
        assert!(self.slots[slot].open.is_none(), "binding a free slot");
        self.slots[slot].open = Some(open);
        let parts = HandleParts { node: self.node, generation: self.slots[slot].generation, slot };
        let handle = parts.encode();
        assert_eq!(HandleParts::decode(handle), Some(parts.tagged()), "handles round-trip");
        handle
    }

    /// Frees the slot of an open handle; its generation changes, so the handle goes stale.
    fn release(&mut self, handle: IoHandle) {
        let parts = HandleParts::decode(handle).expect("releasing a handle that was looked up");
        let slot = &mut self.slots[parts.slot];
        assert!(slot.open.take().is_some(), "releasing an open handle");
        slot.generation = slot.generation.wrapping_add(1);
    }

    /// What an open handle of this disk names, or `InvalidHandle`.
    fn lookup(&self, handle: IoHandle) -> Result<Open, IoError> {
        let Some(parts) = HandleParts::decode(handle) else {
            return Err(IoError::InvalidHandle);
        };
        match self.slots.get(parts.slot) {
            Some(Slot { generation, open: Some(open) })
                if parts.node == node_tag(self.node) && parts.generation == *generation =>
            {
                Ok(*open)
            }
            _ => Err(IoError::InvalidHandle),
        }
    }

    fn find(&self, path: &str) -> Option<usize> {
        self.files.iter().position(|file| file.path == path)
    }
}

/// Inspection, for tests and checkers: what is stored, without drawing or counting.
impl Disk {
    /// The node this disk belongs to.
    pub fn node(&self) -> u16 {
        self.node
    }

    /// The durable contents of `path`: what any crash leaves, unless unsynced changes
    /// survive on top.
    pub fn durable(&self, path: &str) -> Option<&[u8]> {
        self.find(path).map(|file| self.files[file].durable.as_slice())
    }

    /// The volatile view of `path`: what a read sees now.
    pub fn volatile(&self, path: &str) -> Option<&[u8]> {
        self.find(path).map(|file| self.files[file].volatile.as_slice())
    }

    /// Unsynced changes (writes and truncations) of `path`.
    pub fn unsynced_count(&self, path: &str) -> Option<usize> {
        self.find(path).map(|file| self.files[file].unsynced_count())
    }

    /// Every path, in creation order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|file| file.path.as_str())
    }

    /// Bytes charged against the capacity.
    pub fn used_bytes(&self) -> u64 {
        self.used_bytes
    }

    /// Handles open now.
    pub fn open_handle_count(&self) -> usize {
        self.slots.iter().filter(|slot| slot.open.is_some()).count()
    }

    /// What the disk did so far.
    pub fn counts(&self) -> &DiskCounts {
        &self.counts
    }

    /// Whether `handle` has the shape of a file handle (its mark bit), open or not, on this
    /// disk or another: how the world can tell files from sockets.
    pub fn is_file_handle(handle: IoHandle) -> bool {
        handle.to_raw() & HANDLE_MARK != 0
    }
}

/// The path as a string, if it is valid: UTF-8, not empty, at most [`PATH_LEN_MAX`]
/// bytes, no NUL.
fn check_path(path: &[u8]) -> Result<&str, IoError> {
    if path.is_empty() || path.len() > PATH_LEN_MAX || path.contains(&0) {
        return Err(IoError::InvalidInput);
    }
    core::str::from_utf8(path).map_err(|_| IoError::InvalidInput)
}

/// Flips 1 to [`CORRUPTION_BIT_FLIPS_MAX`] distinct bits of `bytes` (not empty). Drawn
/// positions are collected first, so two draws of one bit flip it once and at least one
/// bit always changes.
fn corrupt(bytes: &mut [u8], stream: &mut Stream) {
    assert!(!bytes.is_empty(), "corrupting no bytes");
    let bit_count = bytes.len() as u64 * 8;
    let flip_count = stream.range_inclusive(1, CORRUPTION_BIT_FLIPS_MAX);
    let bits: BTreeSet<u64> = (0..flip_count).map(|_| stream.below(bit_count)).collect();
    for bit in bits {
        // The bit is below the byte count times 8, so its byte index fits a usize.
        bytes[(bit / 8) as usize] ^= 1 << (bit % 8);
    }
}
