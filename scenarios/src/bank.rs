//! `bank`: accounts spread over every shard, one branch isolate per shard holding them.
//! A client on each shard makes `transfers` transfers: it debits one of its shard's
//! accounts locally, then calls the credit on the destination branch with the transfer's
//! id, retrying the same id on every timeout until it is acknowledged. A branch keeps the
//! ids it applied in a bounded table and applies each id once.
//!
//! At quiescence the checker proves that money was conserved (the credits equal the
//! debits, so the balances sum to the initial total) and that each transfer was applied
//! exactly once on each side. The `dedup` parameter is the scenario's canary: with
//! `dedup=0` a branch applies credits without looking at its table.
//!
//! Faults: clients address branches by slot (`Handle::latest`) and derive each transfer's
//! amount and accounts from its id, so a restarted client repeats its transfers exactly and
//! the branches' tables absorb the repeats. A branch keeps its accounts in memory only (the
//! disk comes later): a crashed branch restarts with the initial balances, so once a branch
//! lost its state the checker no longer asks the balances to add up; it still proves that
//! no branch incarnation applied a transfer twice and that both sides agree on the amount.
//! `dedup_window` is the clock canary: a branch that forgets applied ids older than a span
//! of its clock (instead of by count) applies a retried credit twice when its node's clock
//! jumps between the credit and its retry.

use core::time::Duration;
use std::collections::BTreeMap;

use tina::{
    CallFailure, Ctx, Effect, Event, Handle, Isolate, Label, Level, Message, ShardId, SystemSpec,
    TypeConfig,
};
use tina_checkers::{
    EndView, EventKinds, FailureClass, Observer, Stamp, Verdict, Violation, WorldEvent,
};

use crate::{ParamKind, ParamSpec, Params, Scenario, Setup};

/// Shards a bank can span (the client's arguments hold one branch handle per shard).
pub const SHARDS_MAX: usize = 6;
/// Accounts one branch can hold.
pub const ACCOUNTS_MAX: usize = 64;
/// Transfer ids one branch can remember.
pub const TABLE_MAX: usize = 1024;

/// An account was debited (values: transfer, account, amount).
pub const DEBITED: Label = Label::new("bank.debited");
/// An account was credited (values: transfer, account, amount).
pub const CREDITED: Label = Label::new("bank.credited");
/// A debit was refused for lack of funds (values: transfer).
pub const REFUSED: Label = Label::new("bank.refused");
/// The branch's `buggify` site: it applies a credit and loses the acknowledgement.
pub const LOST_ACK: Label = Label::new("bank.lost-ack");
/// A client finished its transfers (values: client shard).
pub const CLIENT_DONE: Label = Label::new("bank.client-done");

tina::payload! {
    /// Client to branch, as a call: take `amount` from `account` for `transfer`.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Debit { pub transfer: u64, pub account: u64, pub amount: u64 }
}

tina::payload! {
    /// Client to branch, as a call: add `amount` to `account` for `transfer`.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Credit { pub transfer: u64, pub account: u64, pub amount: u64 }
}

tina::payload! {
    /// Branch to client, the reply: `ok` is 1 if applied (now or before), 0 if refused.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Ack { pub transfer: u64, pub ok: u64 }
}

tina::spawn_args! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct BranchArgs { pub accounts: u64, pub initial: u64, pub table: u64, pub dedup: u64, pub dedup_window_ns: u64 }
}

tina::spawn_args! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct ClientArgs { pub branches: [Handle; SHARDS_MAX], pub transfers: u32, pub follow_restarts: u32, pub timeout_ns: u64 }
}

/// A shard's accounts and the ids of the transfers applied to them.
#[derive(Debug)]
pub struct Branch {
    args: BranchArgs,
    balances: [u64; ACCOUNTS_MAX],
    applied: [u64; TABLE_MAX],
    /// When each table entry was applied, on the node's clock (read only with a
    /// `dedup_window`).
    applied_at: [u64; TABLE_MAX],
    applied_next: usize,
}

/// Which side of a transfer a table entry records: a branch may hold both sides of one.
const DEBIT_SIDE: u64 = 0;
const CREDIT_SIDE: u64 = 1;

impl Branch {
    fn seen(&self, transfer: u64, side: u64, now_ns: u64) -> bool {
        let table = self.args.table as usize;
        let key = transfer << 1 | side;
        let window = self.args.dedup_window_ns;
        self.args.dedup == 1
            && (0..table).any(|at| {
                // The planted clock bug: an entry older than the window on this node's
                // clock is taken as forgotten, as if no retry could come that late.
                self.applied[at] == key
                    && (window == 0 || now_ns.saturating_sub(self.applied_at[at]) < window)
            })
    }

    fn remember(&mut self, transfer: u64, side: u64, now_ns: u64) {
        // The oldest entry is forgotten first: the table is bounded by design.
        self.applied[self.applied_next] = transfer << 1 | side;
        self.applied_at[self.applied_next] = now_ns;
        self.applied_next = (self.applied_next + 1) % self.args.table as usize;
    }
}

impl Isolate for Branch {
    type Args = BranchArgs;

    fn init(args: BranchArgs, _ctx: &mut Ctx<'_>) -> (Self, Effect) {
        // Transfer ids start at 1, so the zeroed table holds no id.
        let branch = Branch {
            args,
            balances: [args.initial; ACCOUNTS_MAX],
            applied: [0; TABLE_MAX],
            applied_at: [0; TABLE_MAX],
            applied_next: 0,
        };
        (branch, Effect::Receive)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let Some(token) = message.reply_token() else { return Effect::Receive };
        let now = ctx.now().as_nanos();
        if let Ok(debit) = message.decode::<Debit>() {
            let account = (debit.account % self.args.accounts) as usize;
            if !self.seen(debit.transfer, DEBIT_SIDE, now) {
                if self.balances[account] < debit.amount {
                    ctx.log(Level::Info, REFUSED, [debit.transfer]);
                    return Effect::reply(token, &Ack { transfer: debit.transfer, ok: 0 });
                }
                self.balances[account] -= debit.amount;
                self.remember(debit.transfer, DEBIT_SIDE, now);
                ctx.log(Level::Info, DEBITED, [debit.transfer, debit.account, debit.amount]);
            }
            return Effect::reply(token, &Ack { transfer: debit.transfer, ok: 1 });
        }
        if let Ok(credit) = message.decode::<Credit>() {
            if !self.seen(credit.transfer, CREDIT_SIDE, now) {
                self.balances[(credit.account % self.args.accounts) as usize] += credit.amount;
                self.remember(credit.transfer, CREDIT_SIDE, now);
                ctx.log(Level::Info, CREDITED, [credit.transfer, credit.account, credit.amount]);
            }
            // Under simulation, now and then, the credit is applied but its acknowledgement
            // is lost: the client retries and the table must absorb the repeat.
            if ctx.buggify(LOST_ACK) {
                return Effect::Receive;
            }
            return Effect::reply(token, &Ack { transfer: credit.transfer, ok: 1 });
        }
        Effect::Receive
    }
}

/// Where a client is in its current transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Debiting,
    Crediting,
}

/// Makes transfers one at a time: debit locally, then credit remotely until acknowledged.
#[derive(Debug)]
pub struct Client {
    args: ClientArgs,
    shards: u64,
    done: u64,
    debit: Debit,
    credit: Credit,
    credit_branch: usize,
    step: Step,
}

impl Client {
    fn timeout(&self) -> Duration {
        Duration::from_nanos(self.args.timeout_ns)
    }

    /// Starts the next transfer, or finishes.
    fn next(&mut self, ctx: &mut Ctx<'_>) -> Effect {
        if self.done == u64::from(self.args.transfers) {
            ctx.log(Level::Info, CLIENT_DONE, [u64::from(ctx.shard().0)]);
            return Effect::Done;
        }
        self.done += 1;
        // Unique across clients: the shard in the high bits, the count below.
        let transfer = (u64::from(ctx.shard().0) << 32) | self.done;
        // Drawn from the id, not from the shard's random stream, so that a restarted client
        // repeats each transfer exactly and the branches recognise the repeats.
        let mut draw = Draw(transfer);
        let amount = 1 + draw.next() % 100;
        self.debit = Debit { transfer, account: draw.next(), amount };
        self.credit = Credit { transfer, account: draw.next(), amount };
        self.credit_branch = (draw.next() % self.shards) as usize;
        self.step = Step::Debiting;
        self.send_debit(ctx)
    }

    /// The address of the branch on shard `index`: its slot, which reaches whichever
    /// incarnation lives there, unless the planted bug keeps the handle given at boot.
    fn branch(&self, index: usize) -> Handle {
        let handle = self.args.branches[index];
        if self.args.follow_restarts == 1 { handle.latest() } else { handle }
    }

    fn send_debit(&self, ctx: &Ctx<'_>) -> Effect {
        Effect::call(self.branch(usize::from(ctx.shard().0)), &self.debit, self.timeout())
    }

    fn send_credit(&self) -> Effect {
        Effect::call(self.branch(self.credit_branch), &self.credit, self.timeout())
    }
}

/// SplitMix64 over a transfer id: a transfer's amount and accounts.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Isolate for Client {
    type Args = ClientArgs;

    fn init(args: ClientArgs, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let shards = args.branches.iter().filter(|branch| !branch.is_none()).count() as u64;
        let mut client = Client {
            args,
            shards,
            done: 0,
            debit: Debit { transfer: 0, account: 0, amount: 0 },
            credit: Credit { transfer: 0, account: 0, amount: 0 },
            credit_branch: 0,
            step: Step::Debiting,
        };
        let effect = client.next(ctx);
        (client, effect)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let ack = message.decode::<Ack>().ok().filter(|ack| ack.transfer == self.debit.transfer);
        let failure = message.call_failure();
        if self.args.follow_restarts == 0 && failure == Some(CallFailure::StaleHandle) {
            // The planted liveness bug: a branch that is gone is taken to be gone for good.
            return Effect::Receive;
        }
        let failed = failure.is_some();
        match (self.step, ack) {
            (Step::Debiting, Some(ack)) if ack.ok == 1 => {
                self.step = Step::Crediting;
                self.send_credit()
            }
            // Refused for lack of funds: nothing moved; on to the next transfer.
            (Step::Debiting, Some(_)) | (Step::Crediting, Some(_)) => self.next(ctx),
            // Timed out or unroutable: retry the same transfer id.
            (Step::Debiting, None) if failed => self.send_debit(ctx),
            (Step::Crediting, None) if failed => self.send_credit(),
            _ => Effect::Receive,
        }
    }
}

/// Which side of a transfer a log records.
const DEBIT_LOG: u8 = 0;
const CREDIT_LOG: u8 = 1;

/// The branch's type index in the spec below.
const BRANCH_TYPE: u8 = 0;

/// Proves, as the run goes, that no branch incarnation applies a transfer twice on one
/// side and that both sides of a transfer move the same amount; and at quiescence, once
/// every client finished, if no branch ever lost its state, that each transfer was applied
/// exactly once on each side and the credits equal the debits (the balances sum to the
/// initial total).
#[derive(Debug, Default)]
pub struct Conservation {
    clients: u64,
    /// Client shards that finished, as bits.
    done: u64,
    /// Per (transfer, side): the branch incarnation that applied it last, and the amount.
    applied: BTreeMap<(u64, u8), (Handle, u64)>,
    /// Whether a branch incarnation ended (its balances and table are gone).
    lost_state: bool,
}

const CHECKER: &str = "bank.conservation";

fn broken(explanation: String) -> Verdict {
    Verdict::Violated(Violation { class: FailureClass::Correctness, checker: CHECKER, explanation })
}

impl Observer for Conservation {
    fn name(&self) -> &'static str {
        CHECKER
    }

    fn kinds(&self) -> EventKinds {
        EventKinds::LOG | EventKinds::EXIT
    }

    fn observe_world(&mut self, _stamp: &Stamp, event: &WorldEvent) -> Verdict {
        if *event == WorldEvent::NodeCrash {
            // Everything starts over: clients repeat their transfers on fresh branches.
            self.applied.clear();
            self.done = 0;
            self.lost_state = true;
        }
        Verdict::Continue
    }

    fn observe(&mut self, _stamp: &Stamp, event: &Event) -> Verdict {
        let (handle, tag, values) = match event {
            Event::Exit { handle, .. } if handle.type_index() == BRANCH_TYPE => {
                self.lost_state = true;
                return Verdict::Continue;
            }
            Event::Log { handle, tag, values, .. } => (*handle, *tag, values),
            _ => return Verdict::Continue,
        };
        let side = if tag == DEBITED {
            DEBIT_LOG
        } else if tag == CREDITED {
            CREDIT_LOG
        } else {
            if tag == CLIENT_DONE {
                self.done |= 1 << values[0];
            }
            return Verdict::Continue;
        };
        let (transfer, amount) = (values[0], values[2]);
        let previous = self.applied.insert((transfer, side), (handle, amount));
        if previous.is_some_and(|(by, _)| by == handle) {
            let what = if side == DEBIT_LOG { "debited" } else { "credited" };
            return broken(format!("transfer {transfer:#x} was {what} twice by {handle}"));
        }
        let other = self.applied.get(&(transfer, 1 - side));
        if let Some(&(_, other_amount)) = other
            && other_amount != amount
        {
            return broken(format!(
                "transfer {transfer:#x} moved {amount} on one side and {other_amount} on the other"
            ));
        }
        Verdict::Continue
    }

    fn finish(&mut self, view: &EndView) -> Verdict {
        if !view.quiescent || u64::from(self.done.count_ones()) != self.clients {
            return Verdict::Continue;
        }
        if self.lost_state {
            // A branch restarted with its initial balances: only the checks made as the run
            // went hold.
            return Verdict::Done;
        }
        let (mut debited, mut credited) = (0u64, 0u64);
        for (&(transfer, side), &(_, amount)) in &self.applied {
            if !self.applied.contains_key(&(transfer, 1 - side)) {
                let (done, missing) = if side == DEBIT_LOG {
                    ("debited", "credited")
                } else {
                    ("credited", "debited")
                };
                return broken(format!("transfer {transfer:#x} was {done} but never {missing}"));
            }
            if side == DEBIT_LOG {
                debited += amount;
            } else {
                credited += amount;
            }
        }
        if debited != credited {
            return broken(format!(
                "{debited} debited but {credited} credited: the balances do not add up"
            ));
        }
        Verdict::Done
    }
}

/// The `bank` scenario.
#[derive(Debug)]
pub struct BankScenario;

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "shards",
        kind: ParamKind::Count,
        default: 4,
        min: 1,
        max: SHARDS_MAX as u64,
        description: "shards, each with a branch of accounts and a client",
    },
    ParamSpec {
        name: "accounts",
        kind: ParamKind::Count,
        default: 8,
        min: 1,
        max: ACCOUNTS_MAX as u64,
        description: "accounts per branch",
    },
    ParamSpec {
        name: "transfers",
        kind: ParamKind::Count,
        default: 40,
        min: 0,
        max: 1 << 31,
        description: "transfers each client makes",
    },
    ParamSpec {
        name: "initial",
        kind: ParamKind::Count,
        default: 1000,
        min: 0,
        max: 1 << 40,
        description: "initial balance of every account",
    },
    ParamSpec {
        name: "timeout",
        kind: ParamKind::Duration,
        default: 8_000_000,
        min: 1,
        max: 3_600_000_000_000,
        description: "how long a client waits for an acknowledgement before retrying",
    },
    ParamSpec {
        name: "table",
        kind: ParamKind::Count,
        default: 512,
        min: 1,
        max: TABLE_MAX as u64,
        description: "transfer ids a branch remembers",
    },
    ParamSpec {
        name: "follow_restarts",
        kind: ParamKind::Count,
        default: 1,
        min: 0,
        max: 1,
        description: "1: clients address branches by slot and retry; 0: the planted bug, they keep boot handles and give up on a stale one",
    },
    ParamSpec {
        name: "dedup_window",
        kind: ParamKind::Duration,
        default: 0,
        min: 0,
        max: 3_600_000_000_000,
        description: "0: a branch forgets ids by count only; else also those older than this on its clock (the planted clock bug)",
    },
    ParamSpec {
        name: "dedup",
        kind: ParamKind::Count,
        default: 1,
        min: 0,
        max: 1,
        description: "1: branches apply each id once; 0: the planted bug, credits skip the check",
    },
];

impl Scenario for BankScenario {
    fn name(&self) -> &'static str {
        "bank"
    }

    fn description(&self) -> &'static str {
        "clients move money between accounts on every shard with retried, deduplicated credits"
    }

    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }

    fn build(&self, params: &Params) -> Setup {
        let shards = params.get("shards") as usize;
        let mut spec = SystemSpec::new(shards);
        let branch = spec.register::<Branch>(TypeConfig::new("branch").slots(1).mailbox(1024));
        let client = spec.register::<Client>(TypeConfig::new("client").slots(1));
        assert_eq!(branch.index(), usize::from(BRANCH_TYPE));
        spec.register_payload::<Debit>().register_payload::<Credit>().register_payload::<Ack>();
        for shard in 0..shards {
            // Injected crashes restart these isolates often; escalate only on a storm.
            crate::storm_tolerant_root(&mut spec, ShardId(shard as u8));
        }
        let branch_args = BranchArgs {
            accounts: params.get("accounts"),
            initial: params.get("initial"),
            table: params.get("table"),
            dedup: params.get("dedup"),
            dedup_window_ns: params.get("dedup_window"),
        };
        let mut branches = [Handle::NONE; SHARDS_MAX];
        for (shard, slot) in branches.iter_mut().enumerate().take(shards) {
            *slot = spec.boot_child(ShardId(shard as u8), branch, branch_args);
        }
        let client_args = ClientArgs {
            branches,
            // Bounded by the parameter's maximum of 2^31.
            transfers: params.get("transfers") as u32,
            follow_restarts: params.get("follow_restarts") as u32,
            timeout_ns: params.get("timeout"),
        };
        for shard in 0..shards {
            spec.boot_child(ShardId(shard as u8), client, client_args);
        }
        let goal = Conservation { clients: shards as u64, ..Conservation::default() };
        Setup::new(spec).observer(goal).goal(crate::Goal::Observed)
    }
}
