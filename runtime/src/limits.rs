//! Every limit of the core, named in one place, with the relations between them asserted at
//! compile time.
//!
//! This module holds constants only. Per-system sizes (slot counts, pool sizes, mailbox
//! capacities) live in the `SystemSpec` and are checked against these bounds by
//! `SystemSpec::validate`.

/// Size of one message envelope, header included.
pub const ENVELOPE_SIZE: usize = 128;
/// Largest payload carried inline in an envelope.
pub const PAYLOAD_SIZE_MAX: usize = 96;
/// Largest alignment a payload type may ask for.
pub const PAYLOAD_ALIGN_MAX: usize = 16;
/// Largest spawn-argument type; arguments are kept per slot for restarts.
pub const ARGS_SIZE_MAX: usize = 64;

/// Shards per node. A shard id is eight bits of a `Handle`.
pub const SHARD_COUNT_MAX: usize = 255;
/// The highest CPU core id a spec may name for a shard (`SystemSpec::cores`): Linux's
/// affinity mask (`cpu_set_t`) holds 1024 cores.
pub const CORE_ID_MAX: usize = 1023;
/// Isolate types per system. A type index is eight bits of a `Handle`.
pub const TYPE_COUNT_MAX: usize = 255;
/// Slots per isolate type. A slot index is twenty bits of a `Handle`.
pub const SLOT_COUNT_MAX: u32 = (1 << HANDLE_SLOT_BITS) - 1;
/// The last generation an incarnation may carry; a slot that ends an incarnation at it is
/// retired, never wrapped. One below the all-ones value, which `GENERATION_LATEST` reserves.
pub const GENERATION_MAX: u32 = (1 << HANDLE_GENERATION_BITS) - 2;
/// The generation of a latest handle (`Handle::latest`, "whichever incarnation lives in this
/// slot"): all ones, a value no incarnation ever carries.
pub const GENERATION_LATEST: u32 = (1 << HANDLE_GENERATION_BITS) - 1;

/// Bit widths of the packed 64-bit `Handle`.
pub const HANDLE_SHARD_BITS: u32 = 8;
/// Bit width of the type index in a `Handle`.
pub const HANDLE_TYPE_BITS: u32 = 8;
/// Bit width of the slot index in a `Handle`.
pub const HANDLE_SLOT_BITS: u32 = 20;
/// Bit width of the generation in a `Handle`.
pub const HANDLE_GENERATION_BITS: u32 = 28;

/// Messages one mailbox may hold.
pub const MAILBOX_CAPACITY_MAX: u32 = 1 << 16;
/// Envelopes in one shard's message pool.
pub const MESSAGE_POOL_SIZE_MAX: u32 = 1 << 24;
/// Items a credit window (`flow::CreditSender`) may hold in flight, and a credit batch
/// (`flow::CreditReceiver`) may count: more than a mailbox can hold would defeat its purpose.
pub const CREDIT_WINDOW_MAX: u32 = MAILBOX_CAPACITY_MAX;

/// Dispatches granted to an isolate type per tick for each unit of its budget weight.
pub const DISPATCH_QUOTA_PER_WEIGHT: u32 = 256;
/// Largest budget weight of an isolate type.
pub const BUDGET_WEIGHT_MAX: u32 = 64;
/// Envelopes taken from the backend's inbound transport in one tick.
pub const INBOUND_PER_TICK_MAX: u32 = 4096;

/// Tags below this value belong to the system (resume, timers, replies, I/O); the user API
/// cannot produce them.
pub const USER_TAG_MIN: u16 = 0x0100;

/// Integers carried by one `ctx.log` record.
pub const LOG_VALUES_MAX: usize = 4;

/// User timers in one shard's pool.
pub const TIMER_POOL_SIZE_MAX: u32 = 1 << 22;
/// Finest timer resolution.
pub const TIMER_RESOLUTION_NS_MIN: u64 = 1;
/// Coarsest timer resolution (one second).
pub const TIMER_RESOLUTION_NS_MAX: u64 = 1_000_000_000;

/// I/O buffers in one shard's pool (a buffer id keeps 16 bits for the index).
pub const IO_BUFFER_COUNT_MAX: u32 = u16::MAX as u32;
/// Bytes in one I/O buffer.
pub const IO_BUFFER_SIZE_MAX: u32 = 1 << 20;
/// Open sockets and files one isolate owns at once (`ctx.io_adopt`; opened and accepted
/// handles are owned by the isolate they complete for, and closed at its teardown).
pub const IO_HANDLES_PER_ISOLATE_MAX: usize = 8;
/// I/O operations in flight on one shard.
pub const IO_IN_FLIGHT_MAX: u32 = 1 << 16;
/// I/O operations one shard may submit in one tick.
pub const IO_SUBMISSIONS_PER_TICK_MAX: u32 = 1024;
/// I/O completions one shard takes from its backend in one tick.
pub const IO_COMPLETIONS_PER_TICK_MAX: u32 = 1024;

/// Supervision groups on one shard (a group index is 16 bits, with one value for "none").
pub const GROUP_COUNT_MAX: usize = 4096;
/// Restarts a group may allow within its window (`MaxR`), and a shard within its restart
/// budget (`RestartBudget::restart_max`); each history is allocated up front.
pub const RESTART_MAX_LIMIT: u32 = 4096;
/// Dynamic children one group may hold.
pub const DYNAMIC_CHILDREN_MAX: u32 = 1 << 20;

/// Bytes of a panic message kept in the trace.
pub const PANIC_TEXT_SIZE: usize = 48;

const _: () = {
    assert!(HANDLE_SHARD_BITS + HANDLE_TYPE_BITS + HANDLE_SLOT_BITS + HANDLE_GENERATION_BITS == 64);
    assert!(SHARD_COUNT_MAX < (1 << HANDLE_SHARD_BITS));
    assert!(TYPE_COUNT_MAX < (1 << HANDLE_TYPE_BITS));
    // The marker of latest handles is the one generation value above every incarnation's.
    assert!(GENERATION_LATEST == (1 << HANDLE_GENERATION_BITS) - 1);
    assert!(GENERATION_MAX + 1 == GENERATION_LATEST);
    assert!(PAYLOAD_SIZE_MAX <= u8::MAX as usize);
    assert!(PAYLOAD_SIZE_MAX < ENVELOPE_SIZE);
    assert!(ARGS_SIZE_MAX <= PAYLOAD_SIZE_MAX);
    assert!(PAYLOAD_ALIGN_MAX.is_power_of_two());
    assert!(MAILBOX_CAPACITY_MAX <= MESSAGE_POOL_SIZE_MAX);
    assert!(CREDIT_WINDOW_MAX <= MAILBOX_CAPACITY_MAX);
    assert!(GROUP_COUNT_MAX < u16::MAX as usize);
    assert!(IO_BUFFER_COUNT_MAX <= u16::MAX as u32);
    assert!(TIMER_RESOLUTION_NS_MIN <= TIMER_RESOLUTION_NS_MAX);
    // The largest dispatch budget of one type must fit in u32 with room to spare.
    assert!((BUDGET_WEIGHT_MAX as u64) * (DISPATCH_QUOTA_PER_WEIGHT as u64) < u32::MAX as u64);
};
