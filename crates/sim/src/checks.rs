//! The promises checked after every run, each with a stable name (printed with the seed).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use yeyak_domain::{Command, CommandBody, Envelope, System, Target};
use yeyak_read::projection::{ReadModel, diff_models};

use crate::world::World;

type Broken = (&'static str, String);

pub fn all(world: &World) -> Result<(), Broken> {
    let events = committed_events(world);
    decided_once(&events)?;
    dead_letters(world)?;
    answered(world)?;
    let replay = replay(world, &events);
    invariants(&replay)?;
    live_equals_replay(world, &replay)?;
    projection_equals_replay(world, &events)?;
    told_is_logged(world)
}

/// Every committed event, partition by partition.
fn committed_events(world: &World) -> Vec<Envelope> {
    let c = world.cluster.borrow();
    c.events
        .values()
        .flat_map(|records| records.iter().map(|(e, _)| e.clone()))
        .collect()
}

/// No event twice: event ids derive from the command id, so a command (or a follow-up) decided
/// twice shows here.
fn decided_once(events: &[Envelope]) -> Result<(), Broken> {
    let mut seen = HashSet::new();
    for e in events {
        if !seen.insert(e.event_id) {
            return Err((
                "decided_once",
                format!(
                    "event {} of command {} ({}) is in the log twice",
                    e.event_id,
                    e.command_id,
                    e.event.type_name()
                ),
            ));
        }
    }
    Ok(())
}

/// Every record that is not a command has exactly one dead letter, and nothing else has one.
fn dead_letters(world: &World) -> Result<(), Broken> {
    let c = world.cluster.borrow();
    let mut lettered: BTreeMap<(String, u32, u64), usize> = BTreeMap::new();
    for letter in &c.dead_letters {
        *lettered
            .entry((letter.topic.clone(), letter.partition, letter.offset))
            .or_default() += 1;
    }
    let garbage: BTreeSet<(String, u32, u64)> = world
        .garbage
        .iter()
        .map(|((t, p), o)| (t.clone(), *p, *o))
        .collect();
    for g in &garbage {
        match lettered.get(g) {
            Some(1) => {}
            Some(n) => return Err(("dead_letters", format!("{g:?} has {n} dead letters"))),
            None => {
                return Err((
                    "dead_letters",
                    format!("garbage at {g:?} was skipped in silence"),
                ));
            }
        }
    }
    if let Some(extra) = lettered.keys().find(|k| !garbage.contains(*k)) {
        return Err((
            "dead_letters",
            format!("a command at {extra:?} was dead-lettered"),
        ));
    }
    Ok(())
}

/// Every command the log accepted has its whole answer in the log (an admission that found
/// nobody waiting answers with no event, and is the one exception).
fn answered(world: &World) -> Result<(), Broken> {
    let c = world.cluster.borrow();
    for ((topic, partition), records) in &c.commands {
        for (offset, value) in records.iter().enumerate() {
            let Ok(command) = serde_json::from_slice::<Command>(value) else {
                continue;
            };
            if matches!(command.body, CommandBody::Admit { .. }) {
                continue;
            }
            if world.gateway.answers.chain(command.command_id).is_none() {
                return Err((
                    "answered",
                    format!(
                        "{} {} at {topic}/{partition}@{offset} has no (whole) answer in the log",
                        command.body.name(),
                        command.command_id
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn replay(world: &World, events: &[Envelope]) -> System {
    let mut system = System::new(world.campaign().clone());
    for e in events {
        system.apply(e);
    }
    system
}

fn invariants(replay: &System) -> Result<(), Broken> {
    match replay.violations().first() {
        None => Ok(()),
        Some(v) => Err((
            "invariants",
            format!("{}: {}", v.invariant.code(), v.detail),
        )),
    }
}

/// Each processor's state of the partitions it owns now equals the replay of their events.
fn live_equals_replay(world: &World, replay: &System) -> Result<(), Broken> {
    let topics = crate::world::topics();
    for p in &world.procs {
        let live = p.writer.system();
        for partition in p.writer.current_partitions() {
            if !p.log.owns_now(&partition) {
                continue;
            }
            let here = |t: &Target| topics.command_partition(t) == partition;
            let subjects = |s: &System| -> BTreeMap<_, _> {
                s.subjects
                    .iter()
                    .filter(|(k, _)| here(&Target::Subject(**k)))
                    .map(|(k, v)| (*k, v.clone()))
                    .collect()
            };
            let clinics = |s: &System| -> BTreeMap<_, _> {
                s.clinics
                    .iter()
                    .filter(|(k, _)| here(&Target::Clinic((*k).clone())))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            };
            let differs = subjects(live) != subjects(replay)
                || clinics(live) != clinics(replay)
                || (here(&Target::WaitingRoom) && live.waiting_room != replay.waiting_room);
            if differs {
                return Err((
                    "live_equals_replay",
                    format!(
                        "{}'s state of {}/{} is not the replay of its events",
                        p.log.transactional_id, partition.0, partition.1
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn projection_equals_replay(world: &World, events: &[Envelope]) -> Result<(), Broken> {
    if let Some(gap) = world.projector.gaps.first() {
        return Err((
            "projection_equals_replay",
            format!("the projector skipped records: {gap}"),
        ));
    }
    let mut model = ReadModel::new();
    for e in events {
        model.apply(e);
    }
    let diffs = diff_models(&model, &world.projector.model);
    match diffs.first() {
        None => Ok(()),
        Some(d) => Err((
            "projection_equals_replay",
            format!("{} rows differ, first: {d:?}", diffs.len()),
        )),
    }
}

/// Every answer a client was given is the one the log holds.
fn told_is_logged(world: &World) -> Result<(), Broken> {
    for (id, outcome) in &world.gateway.told {
        if world.gateway.answers.chain(*id).as_ref() != Some(outcome) {
            return Err((
                "told_is_logged",
                format!("command {id} was answered otherwise than the log says"),
            ));
        }
    }
    Ok(())
}
