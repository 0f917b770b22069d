//! The mailbox checker exempts drop notices from the capacity, and only them: a mailbox of
//! capacity 2 may hold 2 messages plus every notice queued in it, and one message more is
//! a violation, for the `mailbox` checker alone and for `Structural` alike.

use tina::{
    Ctx, DropReason, Effect, Event, Handle, Isolate, Message, MessageId, ShardId, SystemSpec, Tag,
    TypeConfig,
};
use tina_checkers::{Observer, Stamp, Structural, Verdict, Violation, WorldEvent, mailbox};

#[derive(Debug)]
struct Idle;

impl Isolate for Idle {
    type Args = ();
    fn init(_args: (), _ctx: &mut Ctx<'_>) -> (Idle, Effect) {
        (Idle, Effect::Receive)
    }
    fn handle(&mut self, _message: &Message, _ctx: &mut Ctx<'_>) -> Effect {
        Effect::Receive
    }
}

const CAPACITY: u32 = 2;

fn spec() -> SystemSpec {
    let mut spec = SystemSpec::new(2);
    spec.register::<Idle>(TypeConfig::new("idle").slots(2).mailbox(CAPACITY));
    spec
}

/// Shard 0's slot 0, generation 1: the mailbox under test.
fn owner() -> Handle {
    Handle::from_raw(1)
}

fn stamp(index: u64, shard: u8) -> Stamp {
    Stamp { index, time_ns: index, local_ns: index, node: 0, shard: ShardId(shard) }
}

fn id(origin: u8, sequence: u64) -> MessageId {
    MessageId::from_raw((u64::from(origin) << 56) | sequence)
}

/// Feeds `events` to the checker alone and to `Structural`; returns the checker's first
/// verdict that is not `Continue`. `Structural` must agree while its other checkers find the
/// events sound (a test that delivers a notice ahead of older messages upsets `fifo`, and
/// from there `Structural` stops, as a run would).
fn verdict(events: &[(u8, Event)]) -> Verdict {
    let nodes = [spec()];
    let mut alone = mailbox::Occupancy::default();
    let mut together = Structural::default();
    alone.start(&nodes);
    together.start(&nodes);
    // The owner and the sender were spawned, so the other checkers see a sound run.
    let from = Handle::from_raw((1 << 56) | 1);
    let spawns = [
        (0, Event::Spawn { parent: Handle::NONE, child: owner() }),
        (1, Event::Spawn { parent: Handle::NONE, child: from }),
    ];
    let mut compare = true;
    for (index, (shard, event)) in spawns.iter().chain(events).enumerate() {
        let stamp = stamp(index as u64, *shard);
        let verdict = alone.observe(&stamp, event);
        if compare {
            match together.observe(&stamp, event) {
                Verdict::Violated(Violation { checker, .. }) if checker != "mailbox" => {
                    compare = false;
                }
                together => assert_eq!(together, verdict, "{event:?}"),
            }
        }
        if verdict != Verdict::Continue {
            return verdict;
        }
    }
    Verdict::Continue
}

/// A message from shard 1 sent and enqueued in the owner's mailbox, which then holds `len`.
fn message(sequence: u64, tag: Tag, len: u32) -> [(u8, Event); 2] {
    let id = id(1, sequence);
    let from = Handle::from_raw((1 << 56) | 1);
    [
        (1, Event::Send { id, from, to: owner(), tag }),
        (0, Event::Enqueue { id, to: owner(), mailbox_len: len, reply: false }),
    ]
}

/// A drop notice, sent by shard 0 (from no isolate) to the owner, enqueued at `len`.
fn notice(sequence: u64, len: u32) -> [(u8, Event); 2] {
    let id = id(0, sequence);
    [
        (0, Event::Send { id, from: Handle::NONE, to: owner(), tag: Tag::DROP_NOTICE }),
        (0, Event::Enqueue { id, to: owner(), mailbox_len: len, reply: false }),
    ]
}

const DATA: Tag = Tag::fingerprint("mailbox_notices::Data");

#[test]
fn notices_over_the_capacity_are_allowed() {
    let mut events = Vec::new();
    events.extend(message(1, DATA, 1));
    events.extend(message(2, DATA, 2));
    events.extend(notice(1, 3));
    events.extend(notice(2, 4));
    assert_eq!(verdict(&events), Verdict::Continue);
}

#[test]
fn a_message_over_capacity_and_notices_is_caught() {
    let mut events = Vec::new();
    events.extend(message(1, DATA, 1));
    events.extend(notice(1, 2));
    events.extend(message(2, DATA, 3));
    events.extend(message(3, DATA, 4));
    let Verdict::Violated(Violation { checker, explanation: reason, .. }) = verdict(&events) else {
        panic!("a third message in a mailbox of two was missed");
    };
    assert_eq!(checker, "mailbox");
    assert!(
        reason.contains("holds 4 messages; its capacity is 2 (and 1 drop notices)"),
        "{reason}"
    );
}

/// A delivered or dropped notice stops counting: the next message over capacity is caught.
#[test]
fn a_notice_stops_counting_once_delivered_or_dropped() {
    for leave in [
        Event::Deliver { id: id(0, 1), to: owner(), tag: Tag::DROP_NOTICE },
        Event::Drop { id: id(0, 1), to: owner(), reason: DropReason::TargetExited },
    ] {
        let mut events = Vec::new();
        events.extend(message(1, DATA, 1));
        events.extend(message(2, DATA, 2));
        events.extend(notice(1, 3));
        events.push((0, leave));
        events.extend(message(3, DATA, 3));
        assert!(
            matches!(verdict(&events), Verdict::Violated(Violation { checker: "mailbox", .. })),
            "after {leave:?}"
        );
    }
}

/// A message with another tag is never exempt, however it was sent.
#[test]
fn only_the_drop_notice_tag_is_exempt() {
    let mut events = Vec::new();
    events.extend(message(1, DATA, 1));
    events.extend(message(2, DATA, 2));
    events.extend(message(3, Tag::CALL_TIMEOUT, 3));
    assert!(matches!(verdict(&events), Verdict::Violated(Violation { checker: "mailbox", .. })));
}

/// A crashed node's notices are forgotten with it.
#[test]
fn a_node_crash_forgets_its_notices() {
    let nodes = [spec()];
    let mut alone = mailbox::Occupancy::default();
    alone.start(&nodes);
    let mut events = Vec::new();
    events.extend(message(1, DATA, 1));
    events.extend(message(2, DATA, 2));
    events.extend(notice(1, 3));
    for (index, (shard, event)) in events.iter().enumerate() {
        assert_eq!(alone.observe(&stamp(index as u64, *shard), event), Verdict::Continue);
    }
    let crash = Stamp { shard: ShardId::EXTERNAL, ..stamp(10, 0) };
    assert_eq!(alone.observe_world(&crash, &WorldEvent::NodeCrash), Verdict::Continue);
    // After the crash the node boots afresh; a full mailbox with no notice may not grow.
    let mut after = Vec::new();
    after.extend(message(3, DATA, 1));
    after.extend(message(4, DATA, 2));
    after.extend(message(5, DATA, 3));
    let verdicts: Vec<Verdict> = after
        .iter()
        .enumerate()
        .map(|(index, (shard, event))| alone.observe(&stamp(20 + index as u64, *shard), event))
        .collect();
    assert!(matches!(
        verdicts.last(),
        Some(Verdict::Violated(Violation { checker: "mailbox", .. }))
    ));
}
