//! The virtual disk on its own: fsynced data survives every crash, unsynced writes are
//! lost, torn at sector boundaries or kept, reads and writes past the end behave as POSIX
//! files do, stale and foreign handles are refused, every injected fault (errors, fsync
//! failures, corruption, a full disk) is reported and counted without damaging what is
//! stored, limits give typed errors, and the same seed always gives the same disk.

use std::fmt::Write as _;

use tina::fnv1a_64;
use tina::io::{IoError, IoHandle, OpenMode};
use tina_sim::disk::{
    CAPACITY_BYTES_MAX, CrashOutcomes, Disk, DiskConfig, DiskConfigError, DiskStreams,
    FILE_COUNT_MAX, FILE_SIZE_MAX, HANDLE_COUNT_MAX, PATH_LEN_MAX, SECTOR_SIZE,
    UNSYNCED_CHANGE_COUNT_MAX, WRITE_LEN_MAX,
};
use tina_sim::prng::{PrngTree, Ratio, Scope, Seed, Stream};

/// Capacity of the disks most tests use: ample for what they write.
const CAPACITY: u64 = 16 << 20;

/// Seeds a property is checked over.
const SEED_COUNT: u64 = 1_000;

/// The disk streams of node 0 under `seed`.
fn streams(seed: u64) -> DiskStreams {
    DiskStreams::new(&PrngTree::new(Seed::new(seed)), 0)
}

/// A stream for a test's own choices (offsets, lengths), apart from the disk's.
fn choices(seed: u64) -> Stream {
    PrngTree::new(Seed::new(seed)).stream(Scope::World, "test.disk.choices")
}

fn disk_with(config: DiskConfig) -> Disk {
    Disk::new(0, config).expect("a valid config")
}

fn reliable() -> Disk {
    disk_with(DiskConfig::reliable(CAPACITY))
}

fn open(disk: &mut Disk, streams: &mut DiskStreams, path: &str, mode: OpenMode) -> IoHandle {
    disk.open(path, mode, streams).result.expect("the file opens")
}

fn write(disk: &mut Disk, streams: &mut DiskStreams, handle: IoHandle, offset: u64, bytes: &[u8]) {
    let written = disk.write(handle, offset, bytes, streams).result;
    assert_eq!(written, Ok(bytes.len() as u32), "write of {} bytes at {offset}", bytes.len());
}

fn fsync(disk: &mut Disk, streams: &mut DiskStreams, handle: IoHandle) {
    assert_eq!(disk.fsync(handle, streams).result, Ok(()));
}

fn read(
    disk: &mut Disk,
    streams: &mut DiskStreams,
    handle: IoHandle,
    offset: u64,
    len_max: u32,
) -> Vec<u8> {
    disk.read(handle, offset, len_max, streams).result.expect("the read succeeds")
}

/// `len` bytes that differ from position to position and from `salt` to `salt`.
fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|index| (index % 251) as u8 ^ salt).collect()
}

/// A fixed script under every fault at once, described line by line: what each operation
/// returned after how long, what the crash did, and a hash of each file's durable bytes.
fn check(seed: u64) -> String {
    let half = Ratio::new(1, 2).expect("a probability");
    let config = DiskConfig {
        // Room for the first three writes, not the fourth when they all succeed.
        capacity_bytes: 7 * SECTOR_SIZE,
        latency_ns_min: 1_000,
        latency_ns_max: 9_000,
        read_error_probability: half,
        write_error_probability: half,
        fsync_failure_probability: half,
        corruption_probability: half,
    };
    let mut disk = disk_with(config);
    let mut streams = streams(seed);
    let mut out = String::new();
    let reply = disk.open("wal", OpenMode::Create, &mut streams);
    writeln!(out, "open {reply:?}").unwrap();
    let handle = reply.result.expect("open draws no fault");
    for (index, offset) in [0, 700, 1_500, 3_000].into_iter().enumerate() {
        let reply = disk.write(handle, offset, &pattern(900, index as u8), &mut streams);
        writeln!(out, "write {offset} {reply:?}").unwrap();
        if index == 1 {
            writeln!(out, "fsync {:?}", disk.fsync(handle, &mut streams)).unwrap();
        }
    }
    for _ in 0..2 {
        let reply = disk.read(handle, 0, 64, &mut streams);
        let read = reply.result.map(|bytes| fnv1a_64(&bytes));
        writeln!(out, "read {} {read:x?}", reply.latency_ns).unwrap();
    }
    writeln!(out, "crash {:?}", disk.crash(&mut streams)).unwrap();
    for path in disk.paths() {
        let durable = disk.durable(path).expect("listed");
        writeln!(out, "{path} {} {:x}", durable.len(), fnv1a_64(durable)).unwrap();
    }
    writeln!(out, "{:?}", disk.counts()).unwrap();
    out
}

/// The same seed gives the same disk, byte for byte and count for count; different seeds
/// take different paths.
#[test]
fn same_seed_same_outcome() {
    let mut distinct = std::collections::BTreeSet::new();
    for seed in 0..50 {
        let first = check(seed);
        assert_eq!(first, check(seed), "seed {seed} ran differently twice");
        distinct.insert(first);
    }
    assert!(distinct.len() > 40, "only {} distinct outcomes over 50 seeds", distinct.len());
}

/// The draws are stable: seed 1's run of the script is pinned, so a change in what the
/// disk draws, in which order or from which stream, shows up here (and would change every
/// recorded seed once the world uses the disk).
#[test]
fn seed_one_is_pinned() {
    let expected = "\
open DiskReply { latency_ns: 3588, result: Ok(io2147483648) }
write 0 DiskReply { latency_ns: 6450, result: Ok(900) }
write 700 DiskReply { latency_ns: 8479, result: Ok(900) }
fsync DiskReply { latency_ns: 6357, result: Err(Other) }
write 1500 DiskReply { latency_ns: 5770, result: Err(Other) }
write 3000 DiskReply { latency_ns: 7475, result: Err(StorageFull) }
read 2056 Err(Other)
read 4180 Err(Other)
crash CrashOutcomes { writes_lost: 0, writes_torn: 1, writes_kept: 1, truncates_lost: 0, \
truncates_kept: 0, handles_closed: 1 }
wal 1600 6c6d95a1903a64a4
DiskCounts { errors: 3, fsync_failures: 1, corruptions: 0, full: 1, write_backs: 0, \
crash: CrashOutcomes { writes_lost: 0, writes_torn: 1, writes_kept: 1, truncates_lost: 0, \
truncates_kept: 0, handles_closed: 1 } }
";
    assert_eq!(check(1), expected);
}

/// Data fsynced before a crash is there after it, over a thousand seeds, whatever the
/// unsynced writes after it (to other files, past it, or over it) became: where an
/// unsynced write overlapped it, each byte is either the fsynced one or the new one.
#[test]
fn fsynced_data_survives_every_crash() {
    for seed in 0..SEED_COUNT {
        let mut disk = reliable();
        let mut streams = streams(seed);
        let mut choices = choices(seed);
        let synced = pattern(choices.range_inclusive(1, 5_000) as usize, 0x11);
        let data = open(&mut disk, &mut streams, "data", OpenMode::Create);
        write(&mut disk, &mut streams, data, 0, &synced);
        fsync(&mut disk, &mut streams, data);
        let other = open(&mut disk, &mut streams, "other", OpenMode::Create);
        write(&mut disk, &mut streams, other, 0, &pattern(3_000, 0x22));
        let past = synced.len() as u64 + choices.below(1_000);
        write(&mut disk, &mut streams, data, past, &pattern(2_000, 0x33));
        let over_offset = choices.below(synced.len() as u64);
        let over = pattern(choices.range_inclusive(1, 3_000) as usize, 0x44);
        write(&mut disk, &mut streams, data, over_offset, &over);
        disk.crash(&mut streams);
        let durable = disk.durable("data").expect("the file exists");
        assert!(durable.len() >= synced.len(), "seed {seed}: the file shrank");
        for (position, &byte) in synced.iter().enumerate() {
            let within = (position as u64).checked_sub(over_offset).map(|within| within as usize);
            let new_byte = within.and_then(|within| over.get(within));
            let ok = durable[position] == byte || new_byte == Some(&durable[position]);
            assert!(ok, "seed {seed}: fsynced byte {position} is {:#x}", durable[position]);
        }
    }
}

/// An unsynced write of several sectors is lost, torn or kept, each about a third of the
/// time over a thousand seeds; a truncation is lost or kept, each about half the time.
#[test]
fn unsynced_writes_are_lost_torn_or_kept() {
    let mut total = CrashOutcomes::default();
    for seed in 0..SEED_COUNT {
        let mut disk = reliable();
        let mut streams = streams(seed);
        let handle = open(&mut disk, &mut streams, "f", OpenMode::Create);
        write(&mut disk, &mut streams, handle, 0, &pattern(4 * SECTOR_SIZE as usize, 1));
        fsync(&mut disk, &mut streams, handle);
        write(&mut disk, &mut streams, handle, 10, &pattern(3 * SECTOR_SIZE as usize, 2));
        open(&mut disk, &mut streams, "f", OpenMode::Truncate);
        let outcomes = disk.crash(&mut streams);
        assert_eq!(outcomes.writes_lost + outcomes.writes_torn + outcomes.writes_kept, 1);
        assert_eq!(outcomes.truncates_lost + outcomes.truncates_kept, 1);
        assert_eq!(outcomes.handles_closed, 2);
        assert_eq!(disk.unsynced_count("f"), Some(0));
        assert_eq!(disk.durable("f"), disk.volatile("f"));
        total.add(&outcomes);
    }
    for (name, count) in
        [("lost", total.writes_lost), ("torn", total.writes_torn), ("kept", total.writes_kept)]
    {
        assert!((250..420).contains(&count), "{name}: {count} of {SEED_COUNT}");
    }
    assert!((420..580).contains(&total.truncates_kept), "{total:?}");
}

/// A torn write keeps whole sectors and loses whole sectors, never part of one, keeps at
/// least one and loses at least one; a torn write that extended the file leaves zeros in
/// its lost sectors up to the last kept one. A write within one sector never tears.
#[test]
fn torn_writes_tear_exactly_at_sector_boundaries() {
    let sector = SECTOR_SIZE as usize;
    let (old, new) = (0xAA, 0x55);
    let mut torn_seeds = 0;
    for seed in 0..SEED_COUNT {
        let mut disk = reliable();
        let mut streams = streams(seed);
        let handle = open(&mut disk, &mut streams, "f", OpenMode::Create);
        write(&mut disk, &mut streams, handle, 0, &vec![old; 6 * sector]);
        fsync(&mut disk, &mut streams, handle);
        // Bytes 100..2,900: partial first and last sectors, four whole ones between.
        write(&mut disk, &mut streams, handle, 100, &vec![new; 2_800]);
        if disk.crash(&mut streams).writes_torn == 0 {
            continue;
        }
        torn_seeds += 1;
        let durable = disk.durable("f").expect("the file exists");
        let mut fates = Vec::new();
        for start in (0..6 * sector).step_by(sector) {
            let written = start.max(100)..(start + sector).min(2_900);
            let piece = &durable[written.clone()];
            let kept = piece.iter().all(|&byte| byte == new);
            assert!(
                kept || piece.iter().all(|&byte| byte == old),
                "seed {seed}: sector torn inside"
            );
            fates.push(kept);
            let outside = (start..start + sector).filter(|position| !written.contains(position));
            assert!(outside.into_iter().all(|position| durable[position] == old), "seed {seed}");
        }
        assert!(fates.contains(&true) && fates.contains(&false), "seed {seed}: {fates:?}");
    }
    assert!(torn_seeds > 200, "only {torn_seeds} torn writes");

    let mut extended = 0;
    for seed in 0..SEED_COUNT {
        let mut disk = reliable();
        let mut streams = streams(seed);
        let handle = open(&mut disk, &mut streams, "f", OpenMode::Create);
        write(&mut disk, &mut streams, handle, 0, &vec![new; 4 * sector]);
        if disk.crash(&mut streams).writes_torn == 0 {
            continue;
        }
        let durable = disk.durable("f").expect("the file exists");
        assert_eq!(durable.len() % sector, 0, "seed {seed}: ends inside a sector");
        assert!(durable.len() >= sector && durable.len() <= 4 * sector, "seed {seed}");
        for chunk in durable.chunks(sector) {
            assert!(
                chunk.iter().all(|&b| b == new) || chunk.iter().all(|&b| b == 0),
                "seed {seed}"
            );
        }
        extended += 1;
    }
    assert!(extended > 200, "only {extended} torn extending writes");

    let mut single = CrashOutcomes::default();
    for seed in 0..200 {
        let mut disk = reliable();
        let mut streams = streams(seed);
        let handle = open(&mut disk, &mut streams, "f", OpenMode::Create);
        write(&mut disk, &mut streams, handle, 3, &[7; 500]);
        single.add(&disk.crash(&mut streams));
    }
    assert_eq!(single.writes_torn, 0, "a one-sector write tore");
    assert!(single.writes_lost > 0 && single.writes_kept > 0, "{single:?}");
}

/// A read at or past the end returns zero bytes; a read straddling the end returns the
/// part that exists; a read with room returns exactly what was asked.
#[test]
fn reads_past_the_end_return_what_exists() {
    let mut disk = reliable();
    let mut streams = streams(1);
    let handle = open(&mut disk, &mut streams, "f", OpenMode::Create);
    write(&mut disk, &mut streams, handle, 0, b"0123456789");
    assert_eq!(read(&mut disk, &mut streams, handle, 10, 5), b"");
    assert_eq!(read(&mut disk, &mut streams, handle, 1_000, 5), b"");
    assert_eq!(read(&mut disk, &mut streams, handle, u64::MAX, u32::MAX), b"");
    assert_eq!(read(&mut disk, &mut streams, handle, 8, 10), b"89");
    assert_eq!(read(&mut disk, &mut streams, handle, 2, 3), b"234");
    assert_eq!(read(&mut disk, &mut streams, handle, 0, 0), b"");
}

/// A write past the end extends the file and zero-fills the gap, in the volatile view at
/// once and in the durable contents after fsync.
#[test]
fn writes_past_the_end_zero_fill() {
    let mut disk = reliable();
    let mut streams = streams(2);
    let handle = open(&mut disk, &mut streams, "f", OpenMode::Create);
    write(&mut disk, &mut streams, handle, 0, b"ab");
    write(&mut disk, &mut streams, handle, 6, b"cd");
    let expected: &[u8] = b"ab\0\0\0\0cd";
    assert_eq!(read(&mut disk, &mut streams, handle, 0, 100), expected);
    assert_eq!(disk.durable("f"), Some(&b""[..]));
    fsync(&mut disk, &mut streams, handle);
    assert_eq!(disk.durable("f"), Some(expected));
    assert_eq!(disk.unsynced_count("f"), Some(0));
}

/// Every operation refuses a closed handle, a handle never issued and another node's
/// handle with `InvalidHandle`; a reused slot does not revive the old handle.
#[test]
fn stale_foreign_and_unknown_handles_are_invalid() {
    let mut disk = reliable();
    let mut other_node = Disk::new(1, DiskConfig::reliable(CAPACITY)).expect("valid");
    let mut streams = streams(3);
    let closed = open(&mut disk, &mut streams, "f", OpenMode::Create);
    assert_eq!(disk.close(closed, &mut streams).result, Ok(()));
    let reused = open(&mut disk, &mut streams, "f", OpenMode::ReadWrite);
    assert_ne!(reused, closed);
    let foreign = open(&mut other_node, &mut streams, "f", OpenMode::Create);
    let never = [IoHandle::NONE, IoHandle::from_raw(1), IoHandle::from_raw(u32::MAX)];
    for handle in [closed, foreign].into_iter().chain(never) {
        let invalid = IoError::InvalidHandle;
        assert_eq!(disk.read(handle, 0, 1, &mut streams).result, Err(invalid), "{handle:?}");
        assert_eq!(disk.write(handle, 0, b"x", &mut streams).result, Err(invalid));
        assert_eq!(disk.fsync(handle, &mut streams).result, Err(invalid));
        assert_eq!(disk.close(handle, &mut streams).result, Err(invalid));
    }
    write(&mut disk, &mut streams, reused, 0, b"still works");
    assert_eq!(disk.open_handle_count(), 1);
    assert!(Disk::is_file_handle(reused) && !Disk::is_file_handle(IoHandle::NONE));
}

/// Opening a missing file to read or read-write is `NotFound` and creates nothing;
/// `Create` and `Truncate` create it; a bad path is `InvalidInput`.
#[test]
fn missing_files_and_bad_paths() {
    let mut disk = reliable();
    let mut streams = streams(4);
    for mode in [OpenMode::Read, OpenMode::ReadWrite] {
        assert_eq!(disk.open("missing", mode, &mut streams).result, Err(IoError::NotFound));
    }
    assert_eq!(disk.paths().count(), 0);
    open(&mut disk, &mut streams, "a", OpenMode::Create);
    open(&mut disk, &mut streams, "b", OpenMode::Truncate);
    assert_eq!(disk.paths().collect::<Vec<_>>(), ["a", "b"]);
    let long = "x".repeat(PATH_LEN_MAX + 1);
    let bad: [&[u8]; 4] = [b"", long.as_bytes(), b"a\0b", &[0xff, 0xfe]];
    for path in bad {
        let result = disk.open(path, OpenMode::Create, &mut streams).result;
        assert_eq!(result, Err(IoError::InvalidInput), "{path:?}");
    }
    assert!(disk.open("x".repeat(PATH_LEN_MAX), OpenMode::Create, &mut streams).result.is_ok());
}

/// A write that would overfill the disk fails with `StorageFull`, is counted, and changes
/// nothing: what was written before (synced or not) stays, and writes that do not grow
/// the disk still succeed.
#[test]
fn a_full_disk_refuses_growth_and_loses_nothing() {
    let mut disk = disk_with(DiskConfig::reliable(1_000));
    let mut streams = streams(5);
    let handle = open(&mut disk, &mut streams, "f", OpenMode::Create);
    write(&mut disk, &mut streams, handle, 0, &[1; 600]);
    fsync(&mut disk, &mut streams, handle);
    write(&mut disk, &mut streams, handle, 600, &[2; 300]);
    let before = disk.volatile("f").expect("exists").to_vec();
    let full = Err(IoError::StorageFull);
    assert_eq!(disk.write(handle, 850, &[3; 200], &mut streams).result, full);
    let other = open(&mut disk, &mut streams, "g", OpenMode::Create);
    assert_eq!(disk.write(other, 0, &[4; 101], &mut streams).result, full);
    assert_eq!(disk.counts().full, 2);
    assert_eq!(disk.volatile("f"), Some(before.as_slice()));
    assert_eq!(disk.unsynced_count("f"), Some(1));
    assert_eq!(disk.used_bytes(), 900);
    write(&mut disk, &mut streams, handle, 0, &[5; 900]);
    write(&mut disk, &mut streams, other, 0, &[6; 100]);
    assert_eq!(disk.used_bytes(), 1_000);
}

/// A crash never leaves more bytes on the disk than its capacity, whatever it does to
/// unsynced writes and truncations: the capacity is charged for the longest a file could
/// be after any crash.
#[test]
fn no_crash_overfills_the_disk() {
    const SMALL: u64 = 4 * SECTOR_SIZE;
    for seed in 0..SEED_COUNT {
        let mut disk = disk_with(DiskConfig::reliable(SMALL));
        let mut streams = streams(seed);
        let mut choices = choices(seed);
        let handle = open(&mut disk, &mut streams, "f", OpenMode::Create);
        for round in 0..8 {
            let offset = choices.below(SMALL);
            let len = choices.range_inclusive(1, SMALL) as usize;
            let _ = disk.write(handle, offset, &pattern(len, round), &mut streams);
            if choices.below(4) == 0 {
                open(&mut disk, &mut streams, "f", OpenMode::Truncate);
            }
            assert!(disk.used_bytes() <= SMALL, "seed {seed}");
        }
        disk.crash(&mut streams);
        let stored = disk.durable("f").expect("exists").len() as u64;
        assert!(stored <= SMALL && disk.used_bytes() == stored, "seed {seed}: {stored}");
    }
}

/// A failed fsync is reported and counted, syncs nothing and leaves the data readable;
/// a later fsync that succeeds makes it durable.
#[test]
fn a_failed_fsync_leaves_the_data_unsynced() {
    let mut config = DiskConfig::reliable(CAPACITY);
    config.fsync_failure_probability = Ratio::ONE;
    let mut disk = disk_with(config);
    let mut streams = streams(6);
    let handle = open(&mut disk, &mut streams, "f", OpenMode::Create);
    write(&mut disk, &mut streams, handle, 0, b"payload");
    assert_eq!(disk.fsync(handle, &mut streams).result, Err(IoError::Other));
    assert_eq!(disk.counts().fsync_failures, 1);
    assert_eq!(disk.durable("f"), Some(&b""[..]));
    assert_eq!(disk.unsynced_count("f"), Some(1));
    assert_eq!(read(&mut disk, &mut streams, handle, 0, 100), b"payload");
    disk.reconfigure(DiskConfig::reliable(CAPACITY)).expect("valid");
    fsync(&mut disk, &mut streams, handle);
    assert_eq!(disk.durable("f"), Some(&b"payload"[..]));
}

/// A corrupted read returns the bytes with 1 to 8 bits flipped; the stored bytes stay as
/// written, so the next clean read returns them exactly.
#[test]
fn corruption_changes_what_is_read_not_what_is_stored() {
    let data = pattern(4_096, 9);
    for seed in 0..100 {
        let mut config = DiskConfig::reliable(CAPACITY);
        config.corruption_probability = Ratio::ONE;
        let mut disk = disk_with(config);
        let mut streams = streams(seed);
        let handle = open(&mut disk, &mut streams, "f", OpenMode::Create);
        write(&mut disk, &mut streams, handle, 0, &data);
        fsync(&mut disk, &mut streams, handle);
        let corrupted = read(&mut disk, &mut streams, handle, 0, 4_096);
        let flipped: u32 = corrupted.iter().zip(&data).map(|(a, b)| (a ^ b).count_ones()).sum();
        assert!((1..=8).contains(&flipped), "seed {seed}: {flipped} bits flipped");
        assert_eq!(disk.counts().corruptions, 1);
        assert_eq!(disk.durable("f"), Some(data.as_slice()));
        assert_eq!(disk.volatile("f"), Some(data.as_slice()));
        disk.reconfigure(DiskConfig::reliable(CAPACITY)).expect("valid");
        assert_eq!(read(&mut disk, &mut streams, handle, 0, 4_096), data);
    }
}

/// Injected read and write errors are reported as `Other` and counted; a failed write
/// writes nothing.
#[test]
fn injected_io_errors_change_nothing() {
    let mut config = DiskConfig::reliable(CAPACITY);
    config.read_error_probability = Ratio::ONE;
    config.write_error_probability = Ratio::ONE;
    let mut disk = disk_with(config);
    let mut streams = streams(7);
    let handle = open(&mut disk, &mut streams, "f", OpenMode::Create);
    assert_eq!(disk.write(handle, 0, b"lost", &mut streams).result, Err(IoError::Other));
    assert_eq!(disk.read(handle, 0, 4, &mut streams).result, Err(IoError::Other));
    assert_eq!(disk.counts().errors, 2);
    assert_eq!(disk.volatile("f"), Some(&b""[..]));
    assert_eq!(disk.unsynced_count("f"), Some(0));
    assert_eq!(disk.used_bytes(), 0);
}

/// A crash closes every open handle (the process died) but keeps every file: the data is
/// reached again through a new handle.
#[test]
fn handles_die_in_a_crash_files_do_not() {
    let mut disk = reliable();
    let mut streams = streams(8);
    let handle = open(&mut disk, &mut streams, "f", OpenMode::Create);
    write(&mut disk, &mut streams, handle, 0, b"durable");
    fsync(&mut disk, &mut streams, handle);
    let empty = open(&mut disk, &mut streams, "empty", OpenMode::Create);
    let outcomes = disk.crash(&mut streams);
    assert_eq!(outcomes.handles_closed, 2);
    assert_eq!(disk.open_handle_count(), 0);
    for stale in [handle, empty] {
        assert_eq!(disk.read(stale, 0, 7, &mut streams).result, Err(IoError::InvalidHandle));
    }
    let again = open(&mut disk, &mut streams, "f", OpenMode::Read);
    assert_eq!(read(&mut disk, &mut streams, again, 0, 100), b"durable");
    assert!(disk.open("empty", OpenMode::Read, &mut streams).result.is_ok());
}

/// A truncation is unsynced until fsync: reads see an empty file at once, a crash keeps
/// or reverts it (both happen across seeds), and fsync makes it durable.
#[test]
fn truncation_is_unsynced_until_fsync() {
    let (mut kept, mut reverted) = (0, 0);
    for seed in 0..200 {
        let mut disk = reliable();
        let mut streams = streams(seed);
        let handle = open(&mut disk, &mut streams, "f", OpenMode::Create);
        write(&mut disk, &mut streams, handle, 0, b"hello");
        fsync(&mut disk, &mut streams, handle);
        let cut = open(&mut disk, &mut streams, "f", OpenMode::Truncate);
        assert_eq!(read(&mut disk, &mut streams, cut, 0, 5), b"");
        assert_eq!(disk.durable("f"), Some(&b"hello"[..]));
        if seed == 0 {
            fsync(&mut disk, &mut streams, cut);
            assert_eq!(disk.durable("f"), Some(&b""[..]));
            continue;
        }
        disk.crash(&mut streams);
        match disk.durable("f").expect("exists") {
            b"" => kept += 1,
            b"hello" => reverted += 1,
            other => panic!("seed {seed}: {other:?}"),
        }
    }
    assert!(kept > 50 && reverted > 50, "kept {kept}, reverted {reverted}");
}

/// A full unsynced log writes its oldest change back (it becomes durable, and no crash
/// loses it) instead of refusing the write; so does a log past its byte limit.
#[test]
fn a_full_log_writes_back_its_oldest_change() {
    for seed in 0..100 {
        let mut disk = reliable();
        let mut streams = streams(seed);
        let handle = open(&mut disk, &mut streams, "f", OpenMode::Create);
        for index in 0..=UNSYNCED_CHANGE_COUNT_MAX as u64 {
            write(&mut disk, &mut streams, handle, index, &[index as u8 + 1]);
        }
        assert_eq!(disk.counts().write_backs, 1);
        assert_eq!(disk.unsynced_count("f"), Some(UNSYNCED_CHANGE_COUNT_MAX));
        assert_eq!(disk.durable("f"), Some(&[1u8][..]));
        disk.crash(&mut streams);
        assert_eq!(disk.durable("f").expect("exists")[0], 1, "seed {seed}");
    }
    let mut disk = reliable();
    let mut streams = streams(9);
    let handle = open(&mut disk, &mut streams, "f", OpenMode::Create);
    for index in 0..5u8 {
        write(&mut disk, &mut streams, handle, 0, &vec![index; WRITE_LEN_MAX]);
    }
    assert_eq!(disk.counts().write_backs, 1, "4 MiB unsynced at most");
    assert_eq!(disk.durable("f").expect("exists")[0], 0);
}

/// Every operation's latency is drawn within the configured range, and varies.
#[test]
fn latency_is_drawn_within_its_range() {
    let mut config = DiskConfig::reliable(CAPACITY);
    (config.latency_ns_min, config.latency_ns_max) = (10_000, 20_000);
    let mut disk = disk_with(config);
    let mut streams = streams(10);
    let mut latencies = std::collections::BTreeSet::new();
    let reply = disk.open("f", OpenMode::Create, &mut streams);
    latencies.insert(reply.latency_ns);
    let handle = reply.result.expect("opens");
    for offset in 0..50 {
        latencies.insert(disk.write(handle, offset, b"x", &mut streams).latency_ns);
        latencies.insert(disk.read(handle, offset, 1, &mut streams).latency_ns);
        latencies.insert(disk.fsync(handle, &mut streams).latency_ns);
    }
    latencies.insert(disk.read(IoHandle::NONE, 0, 1, &mut streams).latency_ns);
    latencies.insert(disk.close(handle, &mut streams).latency_ns);
    assert!(latencies.iter().all(|latency| (10_000..=20_000).contains(latency)));
    assert!(latencies.len() > 100, "{} distinct latencies", latencies.len());
}

/// Every limit is a typed error, never a panic: oversized writes, files past their
/// largest size, writes through a read-only handle, too many handles, too many files, and
/// configurations out of range.
#[test]
fn limits_are_typed_errors() {
    let mut disk = reliable();
    let mut streams = streams(11);
    let handle = open(&mut disk, &mut streams, "f", OpenMode::Create);
    let too_long = vec![0; WRITE_LEN_MAX + 1];
    assert_eq!(disk.write(handle, 0, &too_long, &mut streams).result, Err(IoError::InvalidInput));
    for offset in [FILE_SIZE_MAX, u64::MAX] {
        let result = disk.write(handle, offset, b"x", &mut streams).result;
        assert_eq!(result, Err(IoError::InvalidInput), "offset {offset}");
    }
    let read_only = open(&mut disk, &mut streams, "f", OpenMode::Read);
    let result = disk.write(read_only, 0, b"x", &mut streams).result;
    assert_eq!(result, Err(IoError::PermissionDenied));
    assert_eq!(disk.fsync(read_only, &mut streams).result, Ok(()));
    while disk.open_handle_count() < HANDLE_COUNT_MAX {
        open(&mut disk, &mut streams, "f", OpenMode::Read);
    }
    assert_eq!(disk.open("f", OpenMode::Read, &mut streams).result, Err(IoError::Other));
    assert_eq!(disk.close(handle, &mut streams).result, Ok(()));
    let mut disk = reliable();
    for index in 0..FILE_COUNT_MAX {
        let handle = open(&mut disk, &mut streams, &format!("file-{index}"), OpenMode::Create);
        assert_eq!(disk.close(handle, &mut streams).result, Ok(()));
    }
    let result = disk.open("one-more", OpenMode::Create, &mut streams).result;
    assert_eq!(result, Err(IoError::StorageFull));
    let mut inverted = DiskConfig::reliable(CAPACITY);
    (inverted.latency_ns_min, inverted.latency_ns_max) = (2, 1);
    assert_eq!(
        Disk::new(0, inverted).map(|_| ()),
        Err(DiskConfigError::LatencyInverted { latency_ns_min: 2, latency_ns_max: 1 })
    );
    let huge = DiskConfig::reliable(CAPACITY_BYTES_MAX + 1);
    assert!(Disk::new(0, huge).is_err() && disk.reconfigure(huge).is_err());
}

/// An unsynced truncation frees no space (a crash could revert it); once fsynced it frees
/// all of it, and so does a crash that keeps it.
#[test]
fn truncation_frees_space_once_it_is_durable() {
    // Made durable by fsync.
    {
        let mut disk = disk_with(DiskConfig::reliable(1_000));
        let mut streams = streams(12);
        let handle = open(&mut disk, &mut streams, "f", OpenMode::Create);
        write(&mut disk, &mut streams, handle, 0, &[1; 1_000]);
        fsync(&mut disk, &mut streams, handle);
        let cut = open(&mut disk, &mut streams, "f", OpenMode::Truncate);
        assert_eq!(disk.used_bytes(), 1_000);
        assert_eq!(disk.write(cut, 0, &[2; 10], &mut streams).result, Ok(10));
        let other = open(&mut disk, &mut streams, "g", OpenMode::Create);
        assert_eq!(disk.write(other, 0, &[3; 10], &mut streams).result, Err(IoError::StorageFull));
        fsync(&mut disk, &mut streams, cut);
        assert_eq!(disk.used_bytes(), 10);
        write(&mut disk, &mut streams, other, 0, &[3; 990]);
        assert_eq!(disk.used_bytes(), 1_000);
    }
    // Kept or reverted by a crash, over seeds.
    for seed in 0..100 {
        let mut disk = disk_with(DiskConfig::reliable(1_000));
        let mut streams = streams(seed);
        let handle = open(&mut disk, &mut streams, "f", OpenMode::Create);
        write(&mut disk, &mut streams, handle, 0, &[1; 1_000]);
        fsync(&mut disk, &mut streams, handle);
        open(&mut disk, &mut streams, "f", OpenMode::Truncate);
        let outcomes = disk.crash(&mut streams);
        let expected = if outcomes.truncates_kept == 1 { 0 } else { 1_000 };
        assert_eq!(disk.used_bytes(), expected, "seed {seed}");
    }
}
