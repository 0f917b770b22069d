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

use core::time::Duration;
use std::collections::BTreeMap;

use tina::{
    Ctx, Effect, Event, Handle, Isolate, Label, Level, Message, ShardId, SystemSpec, TypeConfig,
};
use tina_checkers::{EndView, FailureClass, Observer, Stamp, Verdict, Violation};

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
    pub struct BranchArgs { pub accounts: u64, pub initial: u64, pub table: u64, pub dedup: u64 }
}

tina::spawn_args! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct ClientArgs { pub branches: [Handle; SHARDS_MAX], pub transfers: u64, pub timeout_ns: u64 }
}

/// A shard's accounts and the ids of the transfers applied to them.
#[derive(Debug)]
pub struct Branch {
    args: BranchArgs,
    balances: [u64; ACCOUNTS_MAX],
    applied: [u64; TABLE_MAX],
    applied_next: usize,
}

/// Which side of a transfer a table entry records: a branch may hold both sides of one.
const DEBIT_SIDE: u64 = 0;
const CREDIT_SIDE: u64 = 1;

impl Branch {
    fn seen(&self, transfer: u64, side: u64) -> bool {
        let table = self.args.table as usize;
        self.args.dedup == 1 && self.applied[..table].contains(&(transfer << 1 | side))
    }

    fn remember(&mut self, transfer: u64, side: u64) {
        // The oldest entry is forgotten first: the table is bounded by design.
        self.applied[self.applied_next] = transfer << 1 | side;
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
            applied_next: 0,
        };
        (branch, Effect::Receive)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        let Some(token) = message.reply_token() else { return Effect::Receive };
        if let Ok(debit) = message.decode::<Debit>() {
            let account = (debit.account % self.args.accounts) as usize;
            if !self.seen(debit.transfer, DEBIT_SIDE) {
                if self.balances[account] < debit.amount {
                    ctx.log(Level::Info, REFUSED, [debit.transfer]);
                    return Effect::reply(token, &Ack { transfer: debit.transfer, ok: 0 });
                }
                self.balances[account] -= debit.amount;
                self.remember(debit.transfer, DEBIT_SIDE);
                ctx.log(Level::Info, DEBITED, [debit.transfer, debit.account, debit.amount]);
            }
            return Effect::reply(token, &Ack { transfer: debit.transfer, ok: 1 });
        }
        if let Ok(credit) = message.decode::<Credit>() {
            if !self.seen(credit.transfer, CREDIT_SIDE) {
                self.balances[(credit.account % self.args.accounts) as usize] += credit.amount;
                self.remember(credit.transfer, CREDIT_SIDE);
                ctx.log(Level::Info, CREDITED, [credit.transfer, credit.account, credit.amount]);
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
        if self.done == self.args.transfers {
            ctx.log(Level::Info, CLIENT_DONE, [u64::from(ctx.shard().0)]);
            return Effect::Done;
        }
        self.done += 1;
        // Unique across clients: the shard in the high bits, the count below.
        let transfer = (u64::from(ctx.shard().0) << 32) | self.done;
        let amount = 1 + ctx.random_u64() % 100;
        self.debit = Debit { transfer, account: ctx.random_u64(), amount };
        self.credit = Credit { transfer, account: ctx.random_u64(), amount };
        self.credit_branch = (ctx.random_u64() % self.shards) as usize;
        self.step = Step::Debiting;
        self.send_debit(ctx)
    }

    fn send_debit(&self, ctx: &Ctx<'_>) -> Effect {
        let local = self.args.branches[usize::from(ctx.shard().0)];
        Effect::call(local, &self.debit, self.timeout())
    }

    fn send_credit(&self) -> Effect {
        Effect::call(self.args.branches[self.credit_branch], &self.credit, self.timeout())
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
        let failed = message.call_failure().is_some();
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

/// Per transfer: debits and credits applied, and the amount.
#[derive(Clone, Copy, Debug, Default)]
struct Applied {
    debits: u32,
    credits: u32,
    amount: u64,
}

/// Proves at quiescence that every client finished, each transfer was applied exactly
/// once on each side, and the credits equal the debits (the balances sum to the initial
/// total).
#[derive(Debug, Default)]
pub struct Conservation {
    clients: u64,
    done: u64,
    transfers: BTreeMap<u64, Applied>,
}

const CHECKER: &str = "bank.conservation";

fn broken(explanation: String) -> Verdict {
    Verdict::Violated(Violation { class: FailureClass::Correctness, checker: CHECKER, explanation })
}

impl Observer for Conservation {
    fn name(&self) -> &'static str {
        CHECKER
    }

    fn observe(&mut self, _stamp: &Stamp, event: &Event) -> Verdict {
        let Event::Log { tag, values, .. } = event else { return Verdict::Continue };
        let entry = self.transfers.entry(values[0]);
        if *tag == DEBITED {
            let applied = entry.or_default();
            applied.debits += 1;
            applied.amount = values[2];
            if applied.debits > 1 {
                return broken(format!("transfer {:#x} was debited twice", values[0]));
            }
        } else if *tag == CREDITED {
            let applied = entry.or_default();
            applied.credits += 1;
            if applied.credits > 1 {
                return broken(format!("transfer {:#x} was credited twice", values[0]));
            }
            if applied.amount != values[2] {
                return broken(format!(
                    "transfer {:#x} credited {} but debited {}",
                    values[0], values[2], applied.amount
                ));
            }
        } else if *tag == CLIENT_DONE {
            self.done += 1;
        }
        Verdict::Continue
    }

    fn finish(&mut self, view: &EndView) -> Verdict {
        if !view.quiescent || self.done != self.clients {
            return Verdict::Continue;
        }
        let (mut debited, mut credited) = (0u64, 0u64);
        for (transfer, applied) in &self.transfers {
            if applied.debits != applied.credits {
                return broken(format!(
                    "transfer {transfer:#x} was debited {} times and credited {} times",
                    applied.debits, applied.credits
                ));
            }
            debited += applied.amount * u64::from(applied.debits);
            credited += applied.amount * u64::from(applied.credits);
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
        spec.register_payload::<Debit>().register_payload::<Credit>().register_payload::<Ack>();
        let branch_args = BranchArgs {
            accounts: params.get("accounts"),
            initial: params.get("initial"),
            table: params.get("table"),
            dedup: params.get("dedup"),
        };
        let mut branches = [Handle::NONE; SHARDS_MAX];
        for (shard, slot) in branches.iter_mut().enumerate().take(shards) {
            *slot = spec.boot_child(ShardId(shard as u8), branch, branch_args);
        }
        let client_args = ClientArgs {
            branches,
            transfers: params.get("transfers"),
            timeout_ns: params.get("timeout"),
        };
        for shard in 0..shards {
            spec.boot_child(ShardId(shard as u8), client, client_args);
        }
        let goal = Conservation { clients: shards as u64, ..Conservation::default() };
        Setup { nodes: vec![spec], observers: vec![Box::new(goal)] }
    }
}
