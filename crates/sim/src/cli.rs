//! `yeyak chaos-sim`: runs as many seeds as asked, on every core, with progress; prints seeds per
//! second and the faults injected per kind; stops at the first broken promise with its seed and
//! trace. `--seed S` runs one seed and prints its whole trace.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use yeyak_ledger::pipeline::writer::Mutation;

use crate::faults::{ALL, Injected};
use crate::world::{Failure, Options, World, run};

/// Arguments of `yeyak chaos-sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChaosSimArgs {
    /// How many seeds to run.
    #[arg(long, default_value_t = 10_000)]
    pub seeds: u64,
    /// The first seed (seeds are consecutive from here).
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// Run this one seed and print its whole trace (to reproduce a failure).
    #[arg(long, conflicts_with_all = ["seeds", "from"])]
    pub seed: Option<u64>,
    /// Threads (default: the machine's cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Re-introduce a known bug, to see the simulator catch it: keep-memory-on-abort,
    /// offsets-outside-transaction, follow-up-twice or decide-across-revocation.
    #[arg(long, value_parser = parse_mutation, hide = true)]
    pub mutation: Option<Mutation>,
}

fn parse_mutation(text: &str) -> Result<Mutation, String> {
    match text {
        "keep-memory-on-abort" => Ok(Mutation::KeepMemoryOnAbort),
        "offsets-outside-transaction" => Ok(Mutation::OffsetsOutsideTransaction),
        "follow-up-twice" => Ok(Mutation::FollowUpTwice),
        "decide-across-revocation" => Ok(Mutation::DecideAcrossRevocation),
        other => Err(format!("unknown mutation {other}")),
    }
}

/// What many seeds did.
#[derive(Debug, Default)]
pub struct Tally {
    pub seeds: u64,
    pub people: u64,
    pub reserved: u64,
    pub events: u64,
    pub injected: Injected,
    pub failure: Option<Failure>,
}

/// Runs the seeds; whether every one kept every promise.
pub fn run_cli(args: &ChaosSimArgs, out: &mut dyn Write) -> std::io::Result<bool> {
    let options = Options {
        mutation: args.mutation.unwrap_or_default(),
        ..Options::default()
    };
    if let Some(seed) = args.seed {
        return one(seed, &options, out);
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let started = Instant::now();
    let tally = many(args.from, args.seeds, threads, &options, out)?;
    let elapsed = started.elapsed().as_secs_f64();
    writeln!(
        out,
        "chaos-sim: {} seeds in {elapsed:.1} s ({:.0} seeds/s, {threads} threads): {} people, {} reserved, {} events",
        tally.seeds,
        tally.seeds as f64 / elapsed.max(1e-9),
        tally.people,
        tally.reserved,
        tally.events
    )?;
    writeln!(out, "faults injected ({} in all):", tally.injected.total())?;
    for fault in ALL {
        writeln!(out, "  {:<22} {}", fault.name(), tally.injected.get(fault))?;
    }
    match &tally.failure {
        None => {
            writeln!(out, "every seed kept every promise")?;
            Ok(true)
        }
        Some(failure) => {
            write!(out, "{failure}")?;
            Ok(false)
        }
    }
}

fn one(seed: u64, options: &Options, out: &mut dyn Write) -> std::io::Result<bool> {
    let world = World::new(seed, options.clone());
    let cluster = world.cluster.clone();
    let result = quietly(|| world.run());
    for line in &cluster.borrow().trace {
        writeln!(out, "{line}")?;
    }
    match result {
        Ok(report) => {
            writeln!(out, "seed {seed}: every promise kept: {report:?}")?;
            Ok(true)
        }
        Err(failure) => {
            write!(out, "{failure}")?;
            Ok(false)
        }
    }
}

fn many(
    from: u64,
    count: u64,
    threads: usize,
    options: &Options,
    out: &mut dyn Write,
) -> std::io::Result<Tally> {
    let next = AtomicU64::new(from);
    let end = from.saturating_add(count);
    let stop = AtomicBool::new(false);
    let tally = Mutex::new(Tally::default());
    let started = Instant::now();
    std::thread::scope(|scope| -> std::io::Result<()> {
        for _ in 0..threads.max(1) {
            scope.spawn(|| work(&next, end, &stop, options, &tally));
        }
        let mut last = Instant::now();
        while next.load(Ordering::Relaxed) < end && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            if last.elapsed() >= Duration::from_secs(2) {
                last = Instant::now();
                let done = lock(&tally).seeds;
                let rate = done as f64 / started.elapsed().as_secs_f64();
                writeln!(out, "  {done} of {count} seeds ({rate:.0}/s)")?;
            }
        }
        Ok(())
    })?;
    Ok(tally.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// The writers log every aborted batch; a simulated storm would flood the terminal (the trace
/// tells the story instead).
fn quietly<T>(f: impl FnOnce() -> T) -> T {
    tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), f)
}

fn lock(tally: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(|p| p.into_inner())
}

fn work(next: &AtomicU64, end: u64, stop: &AtomicBool, options: &Options, tally: &Mutex<Tally>) {
    while !stop.load(Ordering::Relaxed) {
        let seed = next.fetch_add(1, Ordering::Relaxed);
        if seed >= end {
            return;
        }
        let result = quietly(|| run(seed, options));
        let mut t = lock(tally);
        t.seeds += 1;
        match result {
            Ok(report) => {
                t.people += report.people as u64;
                t.reserved += report.reserved as u64;
                t.events += report.events;
                t.injected.merge(&report.injected);
            }
            Err(failure) => {
                stop.store(true, Ordering::Relaxed);
                if t.failure.as_ref().is_none_or(|f| f.seed > failure.seed) {
                    t.failure = Some(failure);
                }
            }
        }
    }
}
