//! Which core each shard's thread runs on, and pinning the calling thread to it.
//!
//! A `CorePlan` is decided once at boot from the spec (`SystemSpec::cores`) and the cores
//! the process may run on (`available_cores`): shard `i` goes to the core the spec names
//! for it, else to the `i % n`-th of the `n` available cores. Fewer cores than shards is
//! allowed: shards then share cores, each still on one thread. A named core the process
//! may not run on is a typed error at boot. Pinning itself can fail (a container's cpuset
//! changed, a core went offline): `pin` returns `PinFailed` for the caller to count, and
//! the shard runs unpinned; it is not a reason to stop a node.
//!
//! This module decides and pins; it does not start threads.

use core::fmt;

use crate::handle::ShardId;
use crate::limits::CORE_ID_MAX;
use crate::spec::SystemSpec;

// A core id the spec accepts fits in the kernel's affinity mask, so pinning never indexes
// past it.
const _: () = assert!(CORE_ID_MAX < libc::CPU_SETSIZE as usize);

/// A CPU core, as the operating system numbers it (not necessarily dense: a cpuset may
/// allow cores 2, 3, 6 and 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CoreId(pub usize);

impl fmt::Display for CoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "core {}", self.0)
    }
}

/// The cores the calling thread may run on, in increasing order; empty if the kernel will
/// not say. Call it before pinning anything: a pinned thread may run on one core only,
/// and threads inherit their creator's mask.
pub fn available_cores() -> Vec<CoreId> {
    let mut cores: Vec<CoreId> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|core| CoreId(core.id))
        .collect();
    cores.sort();
    cores
}

/// Pinning the calling thread to a core failed; it runs where the kernel puts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinFailed {
    /// The core asked for.
    pub core: CoreId,
}

impl fmt::Display for PinFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not pin the thread to {}; it runs unpinned", self.core)
    }
}

impl std::error::Error for PinFailed {}

/// Pins the calling thread to `core`. A core the process may not use, or one above what an
/// affinity mask holds, fails without changing anything.
pub fn pin(core: CoreId) -> Result<(), PinFailed> {
    if core.0 > CORE_ID_MAX {
        return Err(PinFailed { core });
    }
    if core_affinity::set_for_current(core_affinity::CoreId { id: core.0 }) {
        Ok(())
    } else {
        Err(PinFailed { core })
    }
}

/// Why a spec's cores cannot be used on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AffinityError {
    /// The spec names, for a shard, a core this process may not run on.
    UnknownCore {
        /// The shard.
        shard: usize,
        /// The core named for it.
        core: CoreId,
        /// The cores the process may run on.
        available: Vec<CoreId>,
    },
}

impl fmt::Display for AffinityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AffinityError::UnknownCore { shard, core, available } => {
                write!(f, "shard {shard} is placed on {core}, which this process may not use; ")?;
                if available.is_empty() {
                    return write!(f, "the kernel did not say which cores it may use");
                }
                write!(f, "name one of the cores")?;
                for (index, core) in available.iter().enumerate() {
                    let separator = if index == 0 { " " } else { ", " };
                    write!(f, "{separator}{}", core.0)?;
                }
                write!(f, " (SystemSpec::cores)")
            }
        }
    }
}

impl std::error::Error for AffinityError {}

/// The core of each shard's thread, decided at boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorePlan {
    /// By shard; `None` when no core is known (the kernel did not say).
    cores: Vec<Option<CoreId>>,
}

impl CorePlan {
    /// Shard `i` on the core `spec` names for it, else on `available[i % available.len()]`;
    /// every shard unpinned if `available` is empty and the spec names none. Meant for a
    /// valid spec (at most one core per shard).
    pub fn new(spec: &SystemSpec, available: &[CoreId]) -> Result<CorePlan, AffinityError> {
        let named = spec.core_ids();
        let cores = (0..spec.shard_count())
            .map(|shard| match named.get(shard) {
                Some(&core) if available.contains(&CoreId(core)) => Ok(Some(CoreId(core))),
                Some(&core) => Err(AffinityError::UnknownCore {
                    shard,
                    core: CoreId(core),
                    available: available.to_vec(),
                }),
                None if available.is_empty() => Ok(None),
                None => Ok(Some(available[shard % available.len()])),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CorePlan { cores })
    }

    /// Only the cores `spec` names (checked against `available` as by `new`); every other
    /// shard unpinned.
    pub fn unpinned(spec: &SystemSpec, available: &[CoreId]) -> Result<CorePlan, AffinityError> {
        let mut plan = CorePlan::new(spec, available)?;
        let named = spec.core_ids().len();
        for core in plan.cores.iter_mut().skip(named) {
            *core = None;
        }
        Ok(plan)
    }

    /// The core `shard` runs on, if the plan pins it.
    pub fn core(&self, shard: ShardId) -> Option<CoreId> {
        self.cores.get(shard.index()).copied().flatten()
    }

    /// Whether two shards share a core (fewer cores than shards, or a spec that names one
    /// core twice).
    pub fn shares_cores(&self) -> bool {
        self.cores
            .iter()
            .enumerate()
            .any(|(index, core)| core.is_some() && self.cores[..index].contains(core))
    }

    /// Pins the calling thread, which runs `shard`, to its core: `Ok(Some(core))` when
    /// pinned, `Ok(None)` when the plan leaves the shard unpinned, `Err` when pinning
    /// failed (count it; the shard runs unpinned).
    pub fn pin_current(&self, shard: ShardId) -> Result<Option<CoreId>, PinFailed> {
        match self.core(shard) {
            Some(core) => pin(core).map(|()| Some(core)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cores(ids: &[usize]) -> Vec<CoreId> {
        ids.iter().map(|&id| CoreId(id)).collect()
    }

    /// The plan of a `shard_count`-shard spec naming `named`, on `available`: each shard's
    /// core id, `-` when unpinned, or the error's text.
    fn check(shard_count: usize, named: &[usize], available: &[usize]) -> String {
        let mut spec = SystemSpec::new(shard_count);
        spec.cores(named);
        match CorePlan::new(&spec, &cores(available)) {
            Ok(plan) => (0..shard_count)
                .map(|shard| match plan.core(ShardId(shard as u8)) {
                    Some(core) => core.0.to_string(),
                    None => "-".to_owned(),
                })
                .collect::<Vec<_>>()
                .join(" "),
            Err(error) => error.to_string(),
        }
    }

    /// Unpinned, only the named cores are kept (and still checked).
    #[test]
    fn unpinned_keeps_only_named_cores() {
        let plan = |shards: usize, named: &[usize]| {
            let mut spec = SystemSpec::new(shards);
            spec.cores(named);
            CorePlan::unpinned(&spec, &cores(&[0, 1, 2, 3])).map(|plan| {
                (0..shards).map(|s| plan.core(ShardId(s as u8)).map(|c| c.0)).collect::<Vec<_>>()
            })
        };
        assert_eq!(plan(3, &[]).unwrap(), vec![None, None, None]);
        assert_eq!(plan(3, &[2]).unwrap(), vec![Some(2), None, None]);
        assert!(plan(2, &[9]).is_err());
    }

    /// Without named cores, shard `i` takes the `i % n`-th available core, on sparse ids
    /// too; with fewer cores than shards they wrap around and share.
    #[test]
    fn round_robin() {
        assert_eq!(check(4, &[], &[0, 1, 2, 3]), "0 1 2 3");
        assert_eq!(check(3, &[], &[2, 3, 6, 7]), "2 3 6");
        assert_eq!(check(5, &[], &[0, 1]), "0 1 0 1 0");
        let mut spec = SystemSpec::new(5);
        assert!(CorePlan::new(&spec, &cores(&[0, 1])).unwrap().shares_cores());
        spec.cores(&[]);
        assert!(!CorePlan::new(&spec, &cores(&[0, 1, 2, 3, 4])).unwrap().shares_cores());
    }

    /// Named cores win for their shards; later shards go round-robin (and may land on a
    /// named one).
    #[test]
    fn named_cores_first() {
        assert_eq!(check(4, &[3, 2], &[0, 1, 2, 3]), "3 2 2 3");
        assert_eq!(check(2, &[5, 5], &[4, 5]), "5 5");
    }

    /// A named core the process may not use is a typed error listing the usable ones.
    #[test]
    fn unknown_core() {
        assert_eq!(
            check(2, &[0, 9], &[0, 1, 2]),
            "shard 1 is placed on core 9, which this process may not use; name one of the \
             cores 0, 1, 2 (SystemSpec::cores)"
        );
        let mut spec = SystemSpec::new(2);
        spec.cores(&[0, 9]);
        assert_eq!(
            CorePlan::new(&spec, &cores(&[0])),
            Err(AffinityError::UnknownCore { shard: 1, core: CoreId(9), available: cores(&[0]) })
        );
    }

    /// When the kernel does not say which cores exist, nothing is pinned, and a named core
    /// cannot be checked, so it is refused.
    #[test]
    fn no_known_cores() {
        assert_eq!(check(3, &[], &[]), "- - -");
        assert!(check(1, &[0], &[]).contains("the kernel did not say"));
        let plan = CorePlan::new(&SystemSpec::new(1), &[]).unwrap();
        assert_eq!(plan.pin_current(ShardId(0)), Ok(None));
        assert_eq!(plan.core(ShardId(7)), None);
    }

    /// On this machine: the thread may run somewhere; pinning (this test's own thread) to an
    /// available core works and leaves it on that core alone; a core above the mask, or one
    /// the process may not use, fails without panicking.
    #[test]
    fn pins_this_thread() {
        let available = available_cores();
        assert!(!available.is_empty(), "sched_getaffinity answered nothing");
        let last = *available.last().unwrap();
        assert_eq!(pin(last), Ok(()));
        assert_eq!(available_cores(), vec![last]);
        assert_eq!(pin(CoreId(CORE_ID_MAX + 1)), Err(PinFailed { core: CoreId(CORE_ID_MAX + 1) }));
        // The highest id a mask holds is a core that does not exist on a smaller machine.
        if last.0 < CORE_ID_MAX {
            assert_eq!(pin(CoreId(CORE_ID_MAX)), Err(PinFailed { core: CoreId(CORE_ID_MAX) }));
        }
        let plan = CorePlan::new(&SystemSpec::new(1), &[last]).unwrap();
        assert_eq!(plan.pin_current(ShardId(0)), Ok(Some(last)));
    }
}
