//! `SystemSpec::validate` reports every broken rule as a typed error, never panics, and
//! reports all of them at once. Each case starts from a valid spec and breaks one thing.

use core::time::Duration;

use tina::{
    Ctx, Effect, GroupConfig, Isolate, Message, Restart, ShardId, SpecError, Strategy, SystemSpec,
    Tag, TypeConfig,
};

struct Idle;

impl Isolate for Idle {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Idle, Effect::Receive)
    }
    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Receive
    }
}

struct Other;

impl Isolate for Other {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        (Other, Effect::Receive)
    }
    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Receive
    }
}

tina::payload! {
    #[derive(Clone, Copy)]
    #[repr(C)]
    pub struct Note { pub value: u64 }
}

/// Claims `Note`'s tag under another name: a tag collision.
#[derive(
    Clone,
    Copy,
    tina::zerocopy::IntoBytes,
    tina::zerocopy::TryFromBytes,
    tina::zerocopy::KnownLayout,
    tina::zerocopy::Immutable,
)]
#[zerocopy(crate = "tina::zerocopy")]
#[repr(C)]
struct Impostor {
    value: u64,
}

impl tina::Payload for Impostor {
    const TAG: Tag = <Note as tina::Payload>::TAG;
    const NAME: &'static str = "impostor";
}

/// The errors of a two-shard spec with one idle type after `breakage`.
fn check(breakage: impl FnOnce(&mut SystemSpec)) -> Vec<SpecError> {
    let mut spec = SystemSpec::new(2);
    breakage(&mut spec);
    if spec.type_name(0).is_none() {
        spec.register::<Idle>(TypeConfig::new("idle").slots(4));
    }
    match spec.validate() {
        Ok(()) => Vec::new(),
        Err(errors) => errors.0,
    }
}

#[test]
fn a_valid_spec_has_no_errors() {
    assert_eq!(check(|_| {}), []);
    // Naming fewer cores than shards, or one core for two shards, is allowed.
    assert_eq!(
        check(|s| {
            s.cores(&[3]);
        }),
        []
    );
    assert_eq!(
        check(|s| {
            s.cores(&[1, 1]);
        }),
        []
    );
}

#[test]
fn each_broken_rule_has_its_error() {
    let idle = |config: TypeConfig| {
        move |spec: &mut SystemSpec| {
            spec.register::<Idle>(config);
        }
    };
    type Breakage = Box<dyn FnOnce(&mut SystemSpec)>;
    let cases: Vec<(&str, Breakage, Vec<SpecError>)> = vec![
        (
            "zero shards",
            Box::new(|s| *s = SystemSpec::new(0)),
            vec![SpecError::ShardCount { count: 0 }],
        ),
        (
            "256 shards",
            Box::new(|s| *s = SystemSpec::new(256)),
            vec![SpecError::ShardCount { count: 256 }],
        ),
        (
            "empty message pool",
            Box::new(|s| {
                s.message_pool_size(0);
            }),
            vec![SpecError::MessagePoolSize { size: 0 }],
        ),
        (
            "timer pool above the limit",
            Box::new(|s| {
                s.timer_pool_size(1 << 23);
            }),
            vec![SpecError::TimerPoolSize { size: 1 << 23 }],
        ),
        (
            "zero timer resolution",
            Box::new(|s| {
                s.timer_resolution(Duration::ZERO);
            }),
            vec![SpecError::TimerResolution { resolution: Duration::ZERO }],
        ),
        (
            "I/O buffers of size zero",
            Box::new(|s| {
                s.io_buffers(4, 0);
            }),
            vec![SpecError::IoBuffers { count: 4, size: 0 }],
        ),
        (
            "too many I/O buffers",
            Box::new(|s| {
                s.io_buffers(70_000, 64);
            }),
            vec![SpecError::IoBuffers { count: 70_000, size: 64 }],
        ),
        (
            "too much I/O in flight",
            Box::new(|s| {
                s.io_in_flight_max(1 << 17);
            }),
            vec![SpecError::IoInFlightMax { max: 1 << 17 }],
        ),
        (
            "more cores than shards",
            Box::new(|s| {
                s.cores(&[0, 1, 2]);
            }),
            vec![SpecError::CoreCount { count: 3, shard_count: 2 }],
        ),
        (
            "a core id no affinity mask holds",
            Box::new(|s| {
                s.cores(&[0, 1024]);
            }),
            vec![SpecError::CoreId { shard: 1, core: 1024 }],
        ),
        (
            "zero slots",
            Box::new(idle(TypeConfig::new("idle").slots(0))),
            vec![SpecError::SlotCount { type_name: "idle", count: 0 }],
        ),
        (
            "slots beyond the handle's field",
            Box::new(idle(TypeConfig::new("idle").slots(1 << 20))),
            vec![SpecError::SlotCount { type_name: "idle", count: 1 << 20 }],
        ),
        (
            "zero mailbox",
            Box::new(idle(TypeConfig::new("idle").mailbox(0))),
            vec![SpecError::MailboxCapacity { type_name: "idle", capacity: 0 }],
        ),
        (
            "budget weight above the limit",
            Box::new(idle(TypeConfig::new("idle").weight(65))),
            vec![SpecError::BudgetWeight { type_name: "idle", weight: 65 }],
        ),
        (
            "the same type twice",
            Box::new(|s| {
                s.register::<Idle>(TypeConfig::new("idle"));
                s.register::<Idle>(TypeConfig::new("idle-again"));
            }),
            vec![SpecError::DuplicateType { name: "idle-again", first_index: 0, index: 1 }],
        ),
        (
            "two types, one name",
            Box::new(|s| {
                s.register::<Idle>(TypeConfig::new("same"));
                s.register::<Other>(TypeConfig::new("same"));
            }),
            vec![SpecError::DuplicateTypeName { name: "same" }],
        ),
        (
            "two payloads, one tag",
            Box::new(|s| {
                s.register_payload::<Note>().register_payload::<Impostor>();
            }),
            vec![SpecError::DuplicatePayloadTag {
                tag: <Note as tina::Payload>::TAG,
                first: <Note as tina::Payload>::NAME,
                second: "impostor",
            }],
        ),
        (
            "a tree on a shard that does not exist",
            Box::new(|s| {
                let idle = s.register::<Idle>(TypeConfig::new("idle").slots(4));
                s.boot_child(ShardId(5), idle, ());
            }),
            vec![SpecError::TreeShard { shard: 5 }],
        ),
        (
            "more static children than slots",
            Box::new(|s| {
                let idle = s.register::<Idle>(TypeConfig::new("idle").slots(1));
                s.boot_child(ShardId(1), idle, ());
                s.boot_child(ShardId(1), idle, ());
            }),
            vec![SpecError::StaticChildrenAboveSlots {
                type_name: "idle",
                shard: 1,
                count: 2,
                slot_count: 1,
            }],
        ),
        (
            "a zero restart window",
            Box::new(|s| {
                let root = s.root(ShardId(0));
                s.configure(
                    root,
                    GroupConfig::new(Strategy::OneForAll).intensity(3, Duration::ZERO),
                );
            }),
            vec![SpecError::RestartWindowZero { shard: 0, group: 0 }],
        ),
        (
            "a restart intensity above the limit",
            Box::new(|s| {
                let root = s.root(ShardId(1));
                s.configure(
                    root,
                    GroupConfig::new(Strategy::OneForOne).intensity(5000, Duration::from_secs(1)),
                );
            }),
            vec![SpecError::RestartMax { shard: 1, group: 0, restart_max: 5000 }],
        ),
        (
            "dynamic children above the limit",
            Box::new(|s| {
                let root = s.root(ShardId(0));
                s.configure(root, GroupConfig::new(Strategy::OneForOne).dynamic(1 << 21));
            }),
            vec![SpecError::DynamicChildrenMax {
                shard: 0,
                group: 0,
                dynamic_children_max: 1 << 21,
            }],
        ),
        (
            "an empty nested group",
            Box::new(|s| {
                let root = s.root(ShardId(0));
                s.add_group(root, GroupConfig::new(Strategy::RestForOne));
            }),
            vec![SpecError::EmptyGroup { shard: 0, group: 1 }],
        ),
    ];
    for (name, breakage, expected) in cases {
        assert_eq!(check(breakage), expected, "case: {name}");
    }
}

/// A spec with many problems reports all of them, in a stable order, and boot refuses it
/// with the same list.
#[test]
fn several_problems_are_all_reported() {
    let errors = check(|s| {
        *s = SystemSpec::new(0);
        s.message_pool_size(0).timer_resolution(Duration::from_secs(2));
        let idle = s.register::<Idle>(TypeConfig::new("idle").slots(0).mailbox(0).weight(0));
        s.register_payload::<Note>().register_payload::<Impostor>();
        let root = s.root(ShardId(0));
        s.configure(root, GroupConfig::new(Strategy::OneForOne).intensity(1, Duration::ZERO));
        s.add_child(root, idle, (), Restart::Permanent);
    });
    assert_eq!(
        errors,
        [
            SpecError::ShardCount { count: 0 },
            SpecError::MessagePoolSize { size: 0 },
            SpecError::TimerResolution { resolution: Duration::from_secs(2) },
            SpecError::SlotCount { type_name: "idle", count: 0 },
            SpecError::MailboxCapacity { type_name: "idle", capacity: 0 },
            SpecError::BudgetWeight { type_name: "idle", weight: 0 },
            SpecError::DuplicatePayloadTag {
                tag: <Note as tina::Payload>::TAG,
                first: <Note as tina::Payload>::NAME,
                second: "impostor"
            },
            SpecError::TreeShard { shard: 0 },
            SpecError::RestartWindowZero { shard: 0, group: 0 },
        ]
    );
    let message = tina::SpecErrors(errors).to_string();
    assert!(message.starts_with("invalid system spec (9 problems)"), "{message}");
    assert!(message.contains("shard count is 0; it must be 1 to 255"), "{message}");
}
