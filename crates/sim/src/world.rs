//! One seeded run: processors (the real [`Writer`] and [`batch::step`]) on the simulated cluster,
//! a projector, a gateway, people and an operator, under the faults the seed draws; then a calm
//! phase in which everything must settle; then the checks.

use std::collections::HashMap;
use std::fmt;

use uuid::Uuid;

use yeyak_domain::{Campaign, Command, TimestampMs};
use yeyak_ledger::Topology;
use yeyak_ledger::pipeline::Topics;
use yeyak_ledger::pipeline::batch::{self, CommandLog};
use yeyak_ledger::pipeline::incarnation::Incarnations;
use yeyak_ledger::pipeline::watchdog::Watchdog;
use yeyak_ledger::pipeline::writer::{Mutation, Writer};

use crate::checks;
use crate::clients::{Citizen, Operator, Stage};
use crate::cluster::{Cluster, Partition, Shared, SimError, SimLog};
use crate::faults::{Fault, Injected, Rates};
use crate::gateway::{Gateway, Heard};
use crate::projector::Projector;
use crate::rng::Rng;

/// What a run is made of.
#[derive(Debug, Clone)]
pub struct Options {
    pub processors: usize,
    /// People per run (drawn from the seed when `None`).
    pub people: Option<usize>,
    pub mutation: Mutation,
    /// No faults at all (a reference run).
    pub calm: bool,
    /// Simulated milliseconds of the faulty phase at most.
    pub faulty_ms_max: u64,
    /// Steps of the calm phase before the run is declared stuck.
    pub settle_steps_max: u64,
    /// The processors' watchdog (`None`: none, to show that a wedged processor is caught).
    pub watchdog_patience_ms: Option<u64>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            processors: 3,
            people: None,
            mutation: Mutation::None,
            calm: false,
            faulty_ms_max: 4_000,
            settle_steps_max: 4_000,
            watchdog_patience_ms: Some(WATCHDOG_PATIENCE_MS),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    pub people: usize,
    pub reserved: usize,
    pub gave_up: usize,
    pub command_records: u64,
    pub events: u64,
    pub dead_letters: u64,
    pub injected: Injected,
    pub simulated_ms: u64,
}

/// A broken promise, with the seed that reproduces it and the end of the run's trace.
#[derive(Debug, Clone)]
pub struct Failure {
    pub seed: u64,
    pub check: &'static str,
    pub detail: String,
    pub trace: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} broke `{}`: {}",
            self.seed, self.check, self.detail
        )?;
        writeln!(f, "reproduce: yeyak chaos-sim --seed {}", self.seed)?;
        writeln!(f, "last lines of the trace:")?;
        let from = self.trace.len().saturating_sub(40);
        for line in &self.trace[from..] {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// The watchdog's first patience in simulated time: longer than most stalls (50 to 450 ms),
/// so that both a wedged processor and a healthy one restarted during a stall are exercised.
pub const WATCHDOG_PATIENCE_MS: u64 = 500;

pub struct Proc {
    pub writer: Writer,
    pub log: SimLog,
    paused_until: u64,
    watchdog: Option<Watchdog>,
}

#[derive(Debug, Clone, Copy)]
enum Who {
    Citizen(usize),
    Operator,
    Admit,
}

pub struct World {
    pub seed: u64,
    options: Options,
    pub cluster: Shared,
    campaign: Campaign,
    opens_at_ms: TimestampMs,
    pub procs: Vec<Proc>,
    restarts: Vec<(u64, String)>,
    expiries: Vec<(u64, u64)>,
    pub gateway: Gateway,
    pub citizens: Vec<Citizen>,
    operator: Operator,
    asked_by: HashMap<Uuid, Who>,
    pub projector: Projector,
    /// Where garbage was written: each must have a dead letter.
    pub garbage: Vec<(Partition, u64)>,
    next_processor: usize,
    /// Fencings of each transactional id: a fenced processor starts again, as `yeyak process`
    /// does, unless it keeps being fenced.
    incarnations: HashMap<String, Incarnations>,
}

const BATCH_MAX: usize = 8;

pub fn topics() -> Topics {
    Topics::new(
        "",
        Topology {
            subject_partitions: 3,
            clinic_partitions: 2,
        },
    )
}

impl World {
    pub fn new(seed: u64, options: Options) -> World {
        let mut rng = Rng::new(seed);
        let rates = if options.calm {
            Rates::calm()
        } else {
            Rates::draw(&mut rng)
        };
        let people = options.people.unwrap_or(4 + rng.below(20) as usize);
        let citizens = (0..people).map(|n| Citizen::new(n, &mut rng)).collect();
        let campaign = Campaign::default_2021();
        let opens_at_ms = campaign.booking_days[0].window.opens_at_ms;
        let operator = Operator::new(opens_at_ms, &mut rng);
        let cluster: Shared =
            std::rc::Rc::new(std::cell::RefCell::new(Cluster::new(topics(), rng, rates)));
        let mut world = World {
            seed,
            options,
            cluster,
            campaign,
            opens_at_ms,
            procs: Vec::new(),
            restarts: Vec::new(),
            expiries: Vec::new(),
            gateway: Gateway::new(),
            citizens,
            operator,
            asked_by: HashMap::new(),
            projector: Projector::default(),
            garbage: Vec::new(),
            next_processor: 0,
            incarnations: HashMap::new(),
        };
        for _ in 0..world.options.processors {
            let id = world.new_transactional_id();
            world.start(&id);
        }
        world
    }

    fn new_transactional_id(&mut self) -> String {
        self.next_processor += 1;
        format!("p{}", self.next_processor)
    }

    fn start(&mut self, transactional_id: &str) {
        let log = SimLog::start(&self.cluster, transactional_id);
        self.adopt(log);
    }

    fn adopt(&mut self, log: SimLog) {
        let mut writer = Writer::new(topics(), self.campaign.clone(), 10 * 60 * 1000);
        writer.set_mutation(self.options.mutation);
        self.procs.push(Proc {
            writer,
            log,
            paused_until: 0,
            watchdog: self.options.watchdog_patience_ms.map(Watchdog::new),
        });
    }

    fn now(&self) -> u64 {
        self.cluster.borrow().now_ms
    }

    fn rng<T>(&self, f: impl FnOnce(&mut Rng) -> T) -> T {
        f(&mut self.cluster.borrow_mut().rng)
    }

    fn strikes(&self, fault: Fault) -> bool {
        self.cluster.borrow_mut().strikes(fault)
    }

    /// Runs the seed to the end and checks every promise.
    pub fn run(mut self) -> Result<Report, Failure> {
        while !self.clients_done() && self.now() < self.options.faulty_ms_max {
            self.tick(true);
        }
        self.calm_down();
        let mut settled = false;
        for _ in 0..self.options.settle_steps_max {
            self.tick(false);
            if self.quiet() {
                settled = true;
                break;
            }
        }
        if !settled {
            return Err(self.failure("liveness", self.stuck()));
        }
        checks::all(&self).map_err(|(check, detail)| self.failure(check, detail))?;
        Ok(self.report())
    }

    fn failure(&self, check: &'static str, detail: String) -> Failure {
        Failure {
            seed: self.seed,
            check,
            detail,
            trace: self.cluster.borrow().trace.clone(),
        }
    }

    fn clients_done(&self) -> bool {
        self.citizens.iter().all(Citizen::done) && self.operator.errands.is_empty()
    }

    fn quiet(&self) -> bool {
        self.clients_done()
            && self.gateway.waiting() == 0
            && self.cluster.borrow().consumed()
            && self.projector.caught_up(&self.cluster)
            && self.procs.iter().all(|p| !p.log.in_transaction())
    }

    fn stuck(&self) -> String {
        let c = self.cluster.borrow();
        let lag: Vec<String> = c
            .commands
            .iter()
            .filter(|(p, r)| c.committed(p) < r.len() as u64)
            .map(|(p, r)| format!("{}/{} at {} of {}", p.0, p.1, c.committed(p), r.len()))
            .collect();
        let waiting: Vec<String> = self
            .citizens
            .iter()
            .filter(|c| !c.done())
            .map(|c| format!("{:?}", c.stage))
            .collect();
        format!(
            "nothing settles after the faults stop: lag {lag:?}, people still at {waiting:?}, {} requests waiting, {} processors",
            self.gateway.waiting(),
            self.procs.len()
        )
    }

    /// The faults stop: the broker answers, every process is up and awake.
    fn calm_down(&mut self) {
        let mut c = self.cluster.borrow_mut();
        c.rates = Rates::calm();
        c.stalled_until = 0;
        c.note("the faults stop".to_owned());
        drop(c);
        for (_, member) in std::mem::take(&mut self.expiries) {
            self.cluster.borrow_mut().leave(member);
        }
        for (_, id) in std::mem::take(&mut self.restarts) {
            self.start(&id);
        }
        for p in &mut self.procs {
            p.paused_until = 0;
        }
    }

    fn tick(&mut self, faulty: bool) {
        let step = self.rng(|r| 1 + r.below(4));
        self.cluster.borrow_mut().now_ms += step;
        if faulty {
            self.weather();
        }
        self.due_processes();
        self.clients_act();
        self.processors_step();
        self.projector.step(&self.cluster);
        self.gateway.follow(&self.cluster);
        self.hear();
    }

    /// Stalls and garbage.
    fn weather(&mut self) {
        let now = self.now();
        if self.strikes(Fault::Stall) {
            let until = now + self.rng(|r| 50 + r.below(400));
            let mut c = self.cluster.borrow_mut();
            c.stalled_until = c.stalled_until.max(until);
            c.note(format!("the broker stalls until {until} ms"));
        }
        if self.strikes(Fault::Garbage) {
            let mut c = self.cluster.borrow_mut();
            let partitions: Vec<Partition> = c.commands.keys().cloned().collect();
            let partition = partitions[c.rng.below(partitions.len() as u64) as usize].clone();
            let offset = c.commands[&partition].len() as u64;
            c.commands
                .get_mut(&partition)
                .expect("a command partition")
                .push(b"{\"not\": \"a command\"".to_vec());
            c.note(format!("garbage at {partition:?}@{offset}"));
            self.garbage.push((partition, offset));
        }
    }

    /// Session expiries of dead processes, restarts, and members that joined mid-batch.
    fn due_processes(&mut self) {
        let now = self.now();
        let (due, later): (Vec<_>, Vec<_>) = self.expiries.iter().partition(|(at, _)| *at <= now);
        self.expiries = later;
        for (_, member) in due {
            self.cluster.borrow_mut().leave(member);
        }
        let (due, later): (Vec<_>, Vec<_>) =
            self.restarts.drain(..).partition(|(at, _)| *at <= now);
        self.restarts = later;
        for (_, id) in due {
            self.start(&id);
        }
        let joined = std::mem::take(&mut self.cluster.borrow_mut().joined);
        for member in joined {
            let id = self.new_transactional_id();
            let epoch = self.cluster.borrow_mut().init_transactions(&id);
            self.cluster
                .borrow_mut()
                .note(format!("{id} joins mid-batch as member {member}"));
            let log = SimLog::member(&self.cluster, &id, member, epoch);
            self.adopt(log);
        }
    }

    fn at_ms(&self) -> TimestampMs {
        self.opens_at_ms + self.now() as i64
    }

    fn clients_act(&mut self) {
        let (now, at_ms) = (self.now(), self.at_ms());
        let mut asks: Vec<(Command, Who)> = Vec::new();
        for (i, citizen) in self.citizens.iter_mut().enumerate() {
            let admission = self.gateway.admissions.get(&citizen.subject).copied();
            let mut c = self.cluster.borrow_mut();
            if let Some(command) = citizen.next(now, at_ms, &mut c.rng, admission) {
                asks.push((command, Who::Citizen(i)));
            } else if citizen.asking.as_ref().is_some_and(|a| a.waiting)
                && c.strikes(Fault::ClientRetry)
            {
                let command = citizen.asking.as_ref().map(|a| a.command.clone());
                asks.extend(command.map(|c| (c, Who::Citizen(i))));
            }
        }
        for errand in &mut self.operator.errands {
            if errand.due(now) {
                asks.push((errand.command.clone(), Who::Operator));
            }
        }
        if !self.citizens.iter().all(Citizen::done) {
            let admit = self
                .operator
                .admit(now, at_ms, &mut self.cluster.borrow_mut().rng);
            asks.extend(admit.map(|c| (c, Who::Admit)));
        }
        for (command, who) in asks {
            self.asked_by.insert(command.command_id, who);
            self.gateway.submit(&self.cluster, command);
        }
    }

    fn processors_step(&mut self) {
        let now = self.now();
        let mut order: Vec<usize> = (0..self.procs.len()).collect();
        self.rng(|r| {
            for i in (1..order.len()).rev() {
                order.swap(i, r.below(i as u64 + 1) as usize);
            }
        });
        let mut gone = Vec::new();
        for i in order {
            let p = &mut self.procs[i];
            if p.paused_until > now {
                continue;
            }
            let result = batch::step(&mut p.writer, &mut p.log, BATCH_MAX);
            if let Err(error) = &result {
                if SimLog::is_fenced(error) {
                    gone.push((i, Some(error.clone())));
                    continue;
                }
            }
            let decided = result.unwrap_or(0);
            let backlog = p.log.backlog();
            if let Some(watchdog) = &mut p.watchdog {
                if watchdog.observe(now, decided, backlog) {
                    gone.push((i, None));
                    continue;
                }
            }
            if std::mem::take(&mut p.log.zombie) {
                p.paused_until = now + 100 + (now % 200);
            }
        }
        gone.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
        for (i, error) in gone {
            match error {
                Some(error) => self.end_process(i, &error),
                None => self.start_again_when_stuck(i),
            }
        }
        self.replace_zombies();
    }

    /// The watchdog's verdict: the processor owned commands and decided none for its patience.
    /// It starts a new incarnation at once (a new member, a new epoch); the old member stays in
    /// the group until its session expires, as a client that never left would.
    fn start_again_when_stuck(&mut self, i: usize) {
        let p = self.procs.remove(i);
        let id = p.log.transactional_id.clone();
        let now = self.now();
        let mut c = self.cluster.borrow_mut();
        c.note(format!(
            "{id} (member {}) decided nothing with commands waiting: its watchdog starts a new incarnation",
            p.log.member
        ));
        let expire = now + 100 + c.rng.below(200);
        drop(c);
        self.expiries.push((expire, p.log.member));
        self.start(&id);
    }

    /// A zombie's replacement: sometimes a new incarnation of its transactional id starts while
    /// it sleeps, which fences it.
    fn replace_zombies(&mut self) {
        let now = self.now();
        let sleeping: Vec<String> = self
            .procs
            .iter()
            .filter(|p| p.paused_until > now && p.paused_until - now > 100)
            .map(|p| p.log.transactional_id.clone())
            .collect();
        for id in sleeping {
            let live = self
                .procs
                .iter()
                .filter(|p| p.log.transactional_id == id)
                .count();
            if live == 1 && self.rng(|r| r.chance(300)) {
                self.cluster.borrow_mut().note(format!(
                    "a new incarnation of {id} starts while the old one sleeps"
                ));
                self.start(&id);
            }
        }
    }

    fn end_process(&mut self, i: usize, error: &SimError) {
        let p = self.procs.remove(i);
        let id = p.log.transactional_id.clone();
        let now = self.now();
        let mut c = self.cluster.borrow_mut();
        c.note(format!("{id} (member {}) ends: {error}", p.log.member));
        match error {
            SimError::Crashed => {
                let expire = now + 100 + c.rng.below(200);
                let restart = now + 150 + c.rng.below(500);
                drop(c);
                self.expiries.push((expire, p.log.member));
                self.restarts.push((restart, id));
            }
            _ => {
                // Fenced: its member leaves the group, and it starts a new incarnation of itself
                // (a zombie's replacement is fenced in turn, until one of them gives up).
                c.leave(p.log.member);
                let again = self
                    .incarnations
                    .entry(id.clone())
                    .or_default()
                    .start_again(now);
                if again {
                    c.note(format!("{id} starts a new incarnation of itself"));
                    let restart = now + 1 + c.rng.below(50);
                    drop(c);
                    self.restarts.push((restart, id));
                } else {
                    c.note(format!("{id} was fenced again and again: it stops"));
                }
            }
        }
    }

    fn hear(&mut self) {
        let now = self.now();
        for (id, heard) in self.gateway.heard() {
            let Some(who) = self.asked_by.get(&id).copied() else {
                continue;
            };
            let mut c = self.cluster.borrow_mut();
            match who {
                Who::Citizen(i) => {
                    let citizen = &mut self.citizens[i];
                    let asking = citizen.asking.as_ref().map(|a| a.command.command_id);
                    if asking == Some(id) {
                        citizen.hear(&heard, now, &mut c.rng);
                    }
                }
                Who::Operator => {
                    if let Some(problem) = self.operator.hear(id, &heard, now, &mut c.rng) {
                        c.note(problem.to_owned());
                    }
                }
                Who::Admit => {
                    if let Heard::Failed(failure) = heard {
                        c.note(format!("an admission: {failure:?}"));
                    }
                }
            }
        }
    }

    fn report(&self) -> Report {
        let c = self.cluster.borrow();
        Report {
            seed: self.seed,
            people: self.citizens.len(),
            reserved: self
                .citizens
                .iter()
                .filter(|c| c.stage == Stage::Done("reserved"))
                .count(),
            gave_up: self
                .citizens
                .iter()
                .filter(|c| c.stage == Stage::Done("gave up"))
                .count(),
            command_records: c.commands.values().map(|r| r.len() as u64).sum(),
            events: c.events.values().map(|r| r.len() as u64).sum(),
            dead_letters: c.dead_letters.len() as u64,
            injected: c.injected.clone(),
            simulated_ms: c.now_ms,
        }
    }

    pub fn campaign(&self) -> &Campaign {
        &self.campaign
    }
}

/// Runs one seed.
pub fn run(seed: u64, options: &Options) -> Result<Report, Failure> {
    World::new(seed, options.clone()).run()
}
