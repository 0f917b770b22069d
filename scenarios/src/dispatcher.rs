//! `dispatcher`: Tina's task dispatcher. A dispatcher on shard 0 hands `jobs` jobs, one at
//! a time, as calls to workers spread over the shards; a worker crashes on every
//! `crash_every`-th job, its supervisor restarts it, and the new
//! incarnation checks in again. A job whose call fails (it timed out, or its worker was
//! gone) counts as lost. The goal: every job completed or lost, and the counts agree with
//! the job-by-job trace.
//!
//! Built to survive every fault: workers check in at the dispatcher's slot address
//! (`Handle::latest`) at init and again every `check_in_every`, and the dispatcher calls
//! them at theirs, so restarts on either side heal; a restarted dispatcher starts its jobs
//! over (the goal judges the last incarnation's counts).
//!
//! On a shutdown, workers end at once (a job queued behind the notice fails, as a lost
//! job) and the dispatcher hands out no new job: it waits for the one in flight, logs its
//! counts (`STOPPED`) and ends, so the drain finishes.

use core::time::Duration;

use tina::{
    Ctx, Effect, Event, GroupConfig, Handle, Isolate, Label, Level, Message, Restart, ShardId,
    Strategy, SystemSpec, TypeConfig,
};
use tina_checkers::{EventKinds, FailureClass, Observer, Stamp, Verdict, Violation};

use crate::{ParamKind, ParamSpec, Params, Scenario, Setup};

/// Workers one dispatcher can track.
pub const WORKERS_MAX: usize = 64;

/// A job completed (values: job number).
pub const COMPLETED: Label = Label::new("dispatcher.job-completed");
/// A job was lost (values: job number, `CallFailure` code).
pub const LOST: Label = Label::new("dispatcher.job-lost");
/// Every job is accounted for (values: completed, lost).
pub const FINISHED: Label = Label::new("dispatcher.finished");
/// The shard shut down before every job went out; the jobs that did are accounted for
/// (values: completed, lost).
pub const STOPPED: Label = Label::new("dispatcher.stopped");
/// A worker crashed on its job (the crash reason).
pub const WORKER_CRASH: Label = Label::new("worker crashes on every nth job");
/// The worker's `buggify` site: it crashes on a job.
pub const WORKER_BUGGIFY: Label = Label::new("dispatcher.worker-crash");

tina::payload! {
    /// Dispatcher to worker, as a call.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct Job { pub seq: u64 }
}

tina::payload! {
    /// Worker to dispatcher, the reply.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct JobDone { pub seq: u64 }
}

tina::payload! {
    /// Worker to dispatcher after every `init`.
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct CheckIn { pub index: u64 }
}

tina::spawn_args! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct WorkerArgs { pub dispatcher: Handle, pub index: u64, pub crash_every: u64, pub check_in_ns: u64 }
}

tina::spawn_args! {
    #[derive(Clone, Copy, Debug)]
    #[repr(C)]
    pub struct DispatcherArgs { pub jobs: u64, pub workers: u64, pub job_timeout_ns: u64, pub job_interval_ns: u64 }
}

/// Does jobs; crashes on every `crash_every`-th job (jobs 7, 14, ... for 7).
#[derive(Debug)]
pub struct Worker {
    args: WorkerArgs,
}

impl Worker {
    /// Tells the dispatcher (whichever incarnation lives in its slot) this worker exists,
    /// and plans the next check-in.
    fn check_in(&self, ctx: &mut Ctx<'_>) {
        // A refused check-in is retried at the next one (or, without them, the dispatcher
        // never uses this incarnation and the run ends as a liveness failure: the truth).
        let _ = ctx.send(self.args.dispatcher.latest(), &CheckIn { index: self.args.index });
        if self.args.check_in_ns > 0 {
            let _ = ctx.timer_set(Duration::from_nanos(self.args.check_in_ns), 0);
        }
    }
}

impl Isolate for Worker {
    type Args = WorkerArgs;

    fn init(args: WorkerArgs, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        let worker = Worker { args };
        worker.check_in(ctx);
        (worker, Effect::Receive)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if message.is_shutdown() {
            return Effect::Done;
        }
        if message.timer().is_some() {
            self.check_in(ctx);
            return Effect::Receive;
        }
        let (Ok(job), Some(token)) = (message.decode::<Job>(), message.reply_token()) else {
            return Effect::Receive;
        };
        // Jobs count from 0; the nth job is number n - 1.
        // Under simulation, now and then, a worker also crashes on a job it should do.
        if (job.seq + 1) % self.args.crash_every == 0 || ctx.buggify(WORKER_BUGGIFY) {
            return Effect::Crash(WORKER_CRASH);
        }
        Effect::reply(token, &JobDone { seq: job.seq })
    }
}

/// Hands out jobs one at a time to the workers that checked in, round robin.
#[derive(Debug)]
pub struct Dispatcher {
    args: DispatcherArgs,
    workers: [Handle; WORKERS_MAX],
    cursor: usize,
    /// The job in flight and the worker it went to.
    in_flight: Option<(u64, usize)>,
    next_job: u64,
    completed: u64,
    lost: u64,
    /// Whether the next job may go: always without pacing, else once per interval.
    due: bool,
    /// The shard shuts down: no new job goes out.
    stopping: bool,
}

impl Isolate for Dispatcher {
    type Args = DispatcherArgs;

    fn init(args: DispatcherArgs, ctx: &mut Ctx<'_>) -> (Self, Effect) {
        if args.job_interval_ns > 0 {
            // One pacing timer is pending at a time; the pool has room for it.
            let _ = ctx.timer_set(Duration::from_nanos(args.job_interval_ns), 0);
        }
        let dispatcher = Dispatcher {
            args,
            workers: [Handle::NONE; WORKERS_MAX],
            cursor: 0,
            in_flight: None,
            next_job: 0,
            completed: 0,
            lost: 0,
            due: args.job_interval_ns == 0,
            stopping: false,
        };
        (dispatcher, Effect::Receive)
    }

    fn handle(&mut self, message: &Message, ctx: &mut Ctx<'_>) -> Effect {
        if message.is_shutdown() {
            self.stopping = true;
        } else if let Ok(check_in) = message.decode::<CheckIn>() {
            if let Some(slot) = self.workers.get_mut(check_in.index as usize) {
                // The slot's address reaches the worker's later incarnations too.
                *slot = message.source().latest();
            }
        } else if let Ok(done) = message.decode::<JobDone>() {
            self.in_flight = None;
            self.completed += 1;
            ctx.log(Level::Info, COMPLETED, [done.seq]);
        } else if message.timer().is_some() {
            self.due = true;
            if self.next_job < self.args.jobs {
                let _ = ctx.timer_set(Duration::from_nanos(self.args.job_interval_ns), 0);
            }
        } else if let Some(failure) = message.call_failure()
            && let Some((seq, worker)) = self.in_flight.take()
        {
            // The worker is gone or unresponsive; it is used again once it checks in.
            self.workers[worker] = Handle::NONE;
            self.lost += 1;
            ctx.log(Level::Warn, LOST, [seq, failure as u64]);
        }
        self.next(ctx)
    }
}

impl Dispatcher {
    /// Sends the next job if a worker is known, finishes when every job is accounted for.
    fn next(&mut self, ctx: &mut Ctx<'_>) -> Effect {
        if self.in_flight.is_some() {
            return Effect::Receive;
        }
        if self.next_job == self.args.jobs {
            ctx.log(Level::Info, FINISHED, [self.completed, self.lost]);
            return Effect::Done;
        }
        if self.stopping {
            ctx.log(Level::Info, STOPPED, [self.completed, self.lost]);
            return Effect::Done;
        }
        if !self.due {
            return Effect::Receive;
        }
        let count = self.args.workers as usize;
        // Bounded by the number of workers.
        for step in 0..count {
            let worker = (self.cursor + step) % count;
            let handle = self.workers[worker];
            if handle.is_none() {
                continue;
            }
            self.cursor = (worker + 1) % count;
            let seq = self.next_job;
            self.next_job += 1;
            self.in_flight = Some((seq, worker));
            self.due = self.args.job_interval_ns == 0;
            return Effect::call(
                handle,
                &Job { seq },
                Duration::from_nanos(self.args.job_timeout_ns),
            );
        }
        Effect::Receive
    }
}

/// Tracks the job-by-job trace and checks it against the dispatcher's final count. A
/// restarted dispatcher starts over, so the counts restart with each of its incarnations.
#[derive(Debug)]
pub struct Goal {
    jobs: u64,
    /// The dispatcher's slot address.
    dispatcher: Handle,
    completed: u64,
    lost: u64,
}

impl Goal {
    fn violated(&self, explanation: String) -> Verdict {
        Verdict::Violated(Violation {
            class: FailureClass::Correctness,
            checker: "dispatcher.goal",
            explanation,
        })
    }
}

impl Observer for Goal {
    fn name(&self) -> &'static str {
        "dispatcher.goal"
    }

    fn kinds(&self) -> EventKinds {
        EventKinds::LOG | EventKinds::SPAWN
    }

    fn observe(&mut self, _stamp: &Stamp, event: &Event) -> Verdict {
        if let Event::Spawn { child, .. } = event
            && child.latest() == self.dispatcher
        {
            (self.completed, self.lost) = (0, 0);
        }
        let Event::Log { tag, values, .. } = event else { return Verdict::Continue };
        if *tag == COMPLETED {
            self.completed += 1;
        } else if *tag == LOST {
            self.lost += 1;
        } else if *tag == STOPPED {
            // A shutdown: the jobs that went out are accounted for, the goal is not reached.
            let (completed, lost) = (values[0], values[1]);
            if (completed, lost) != (self.completed, self.lost) {
                return self.violated(format!(
                    "dispatcher stopped with {completed} completed and {lost} lost, the trace shows {} and {}",
                    self.completed, self.lost
                ));
            }
        } else if *tag == FINISHED {
            let (completed, lost) = (values[0], values[1]);
            if (completed, lost) != (self.completed, self.lost) {
                return self.violated(format!(
                    "dispatcher reports {completed} completed and {lost} lost, the trace shows {} and {}",
                    self.completed, self.lost
                ));
            }
            if completed + lost != self.jobs {
                return self.violated(format!(
                    "{completed} completed + {lost} lost != {} jobs",
                    self.jobs
                ));
            }
            return Verdict::Done;
        }
        Verdict::Continue
    }
}

/// The `dispatcher` scenario.
#[derive(Debug)]
pub struct DispatcherScenario;

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "jobs",
        kind: ParamKind::Count,
        default: 200,
        min: 1,
        max: 1 << 32,
        description: "jobs to hand out",
    },
    ParamSpec {
        name: "workers",
        kind: ParamKind::Count,
        default: 4,
        min: 1,
        max: WORKERS_MAX as u64,
        description: "workers, spread over the shards",
    },
    ParamSpec {
        name: "shards",
        kind: ParamKind::Count,
        default: 2,
        min: 1,
        max: 16,
        description: "shards of the node (the dispatcher is on shard 0)",
    },
    ParamSpec {
        name: "crash_every",
        kind: ParamKind::Count,
        default: 7,
        min: 1,
        max: u64::MAX,
        description: "a worker crashes on every nth job",
    },
    ParamSpec {
        name: "restart_max",
        kind: ParamKind::Count,
        default: 1000,
        min: 0,
        max: 4096,
        description: "restarts a shard's worker group allows per second before it escalates",
    },
    ParamSpec {
        name: "job_interval",
        kind: ParamKind::Duration,
        default: 0,
        min: 0,
        max: 3_600_000_000_000,
        description: "pacing: at most one job starts per interval (0: back to back)",
    },
    ParamSpec {
        name: "check_in_every",
        kind: ParamKind::Duration,
        default: 500_000_000,
        min: 0,
        max: 3_600_000_000_000,
        description: "workers check in again this often, so a restarted dispatcher finds them (0: at init only)",
    },
    ParamSpec {
        name: "job_timeout",
        kind: ParamKind::Duration,
        default: 100_000_000,
        min: 1,
        max: 3_600_000_000_000,
        description: "how long the dispatcher waits for a job's reply",
    },
];

impl Scenario for DispatcherScenario {
    fn name(&self) -> &'static str {
        "dispatcher"
    }

    fn description(&self) -> &'static str {
        "a dispatcher calls workers that crash every nth job; supervisors restart them"
    }

    fn params(&self) -> &'static [ParamSpec] {
        PARAMS
    }

    fn build(&self, params: &Params) -> Setup {
        let (jobs, workers, shards) =
            (params.get("jobs"), params.get("workers"), params.get("shards"));
        // Bounded by the parameter's maximum of 16.
        let shard_count = shards as usize;
        let mut spec = SystemSpec::new(shard_count);
        let dispatcher = spec.register::<Dispatcher>(TypeConfig::new("dispatcher").slots(1));
        let worker = spec.register::<Worker>(TypeConfig::new("worker").slots(WORKERS_MAX as u32));
        spec.register_payload::<Job>().register_payload::<JobDone>().register_payload::<CheckIn>();
        // Each shard's workers form a group with the configured intensity under a root that
        // rebuilds it whenever it escalates.
        let root_intensity =
            GroupConfig::new(Strategy::OneForOne).intensity(1000, Duration::from_secs(1));
        let worker_intensity = GroupConfig::new(Strategy::OneForOne)
            .intensity(params.get("restart_max") as u32, Duration::from_secs(1));
        let mut groups = Vec::new();
        for shard in 0..shard_count {
            let root = spec.root(ShardId(shard as u8));
            spec.configure(root, root_intensity);
            groups.push(root);
        }
        let args = DispatcherArgs {
            jobs,
            workers,
            job_timeout_ns: params.get("job_timeout"),
            job_interval_ns: params.get("job_interval"),
        };
        let root = spec.root(ShardId(0));
        let handle = spec.add_child(root, dispatcher, args, Restart::Transient);
        for (shard, root) in groups.iter_mut().enumerate() {
            if (shard as u64) < workers {
                *root = spec.add_group(*root, worker_intensity);
            }
        }
        for index in 0..workers {
            let group = groups[(index % shards) as usize];
            let args = WorkerArgs {
                dispatcher: handle,
                index,
                crash_every: params.get("crash_every"),
                check_in_ns: params.get("check_in_every"),
            };
            spec.add_child(group, worker, args, Restart::Permanent);
        }
        let goal = Goal { jobs, dispatcher: handle.latest(), completed: 0, lost: 0 };
        Setup::new(spec).observer(goal).goal(crate::Goal::Observed)
    }
}
