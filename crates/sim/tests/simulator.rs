//! The simulator's own tests: a fixed budget of seeds keeps every promise, a seed reproduces its
//! run exactly, and each re-introduced bug (a mutant) is caught.

use yeyak_ledger::pipeline::writer::Mutation;
use yeyak_sim::{Injected, Options, run};

fn seeds() -> u64 {
    std::env::var("YEYAK_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000)
}

#[test]
fn every_seed_keeps_every_promise() {
    let options = Options::default();
    let mut injected = Injected::default();
    let (mut reserved, mut people) = (0, 0);
    for seed in 0..seeds() {
        match run(seed, &options) {
            Ok(report) => {
                injected.merge(&report.injected);
                reserved += report.reserved;
                people += report.people;
            }
            Err(failure) => panic!("{failure}"),
        }
    }
    eprintln!(
        "{} seeds: {people} people, {reserved} reserved; faults injected: {injected:?}",
        seeds()
    );
    assert!(reserved > 0, "the workload must reserve something");
    for fault in yeyak_sim::faults::ALL {
        assert!(
            injected.get(fault) > 0,
            "no {fault} was injected in {} seeds",
            seeds()
        );
    }
}

#[test]
fn a_calm_run_reserves_for_the_people_who_can() {
    let options = Options {
        calm: true,
        people: Some(12),
        ..Options::default()
    };
    let report = run(7, &options).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(report.injected.total(), 0);
    assert!(report.reserved > 0, "{report:?}");
    assert_eq!(report.gave_up, 0, "{report:?}");
}

#[test]
fn a_seed_reproduces_its_run_exactly() {
    let options = Options::default();
    for seed in [3, 11, 42] {
        let a = format!("{:?}", run(seed, &options).map_err(|f| f.to_string()));
        let b = format!("{:?}", run(seed, &options).map_err(|f| f.to_string()));
        assert_eq!(a, b);
    }
}

/// The first seed (of `budget`) on which `mutation` breaks a promise.
fn first_catch(mutation: Mutation, budget: u64) -> Option<(u64, &'static str)> {
    let options = Options {
        mutation,
        ..Options::default()
    };
    (0..budget).find_map(|seed| run(seed, &options).err().map(|f| (seed, f.check)))
}

#[test]
fn the_memory_kept_after_an_abort_is_caught() {
    let caught = first_catch(Mutation::KeepMemoryOnAbort, 200);
    eprintln!("KeepMemoryOnAbort caught: {caught:?}");
    assert!(caught.is_some(), "no seed caught the unrolled-back memory");
}

#[test]
fn offsets_committed_outside_the_transaction_are_caught() {
    let caught = first_catch(Mutation::OffsetsOutsideTransaction, 200);
    eprintln!("OffsetsOutsideTransaction caught: {caught:?}");
    assert!(
        caught.is_some(),
        "no seed caught offsets committed outside the transaction"
    );
}

#[test]
fn a_follow_up_decided_twice_is_caught() {
    let caught = first_catch(Mutation::FollowUpTwice, 200);
    eprintln!("FollowUpTwice caught: {caught:?}");
    assert!(caught.is_some(), "no seed caught a follow-up decided twice");
}

#[test]
fn a_batch_decided_across_a_revocation_is_caught() {
    let caught = first_catch(Mutation::DecideAcrossRevocation, 400);
    eprintln!("DecideAcrossRevocation caught: {caught:?}");
    assert!(
        caught.is_some(),
        "no seed caught a batch decided after its partitions were revoked"
    );
}

#[test]
fn a_wedged_processor_without_its_watchdog_is_caught() {
    let options = Options {
        watchdog_patience_ms: None,
        ..Options::default()
    };
    let caught = (0..2_000).find_map(|seed| run(seed, &options).err().map(|f| (seed, f.check)));
    eprintln!("no watchdog caught: {caught:?}");
    assert!(
        matches!(caught, Some((_, "liveness"))),
        "no seed caught a wedged processor left without its watchdog: {caught:?}"
    );
}
