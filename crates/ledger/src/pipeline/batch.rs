//! One batch of a processor over any transactional command log: the loop the Kafka processor
//! runs on rdkafka and the simulator runs on its in-memory cluster, so that what the simulator
//! proves is the code that runs.
//!
//! `step`: (rewind first if the last batch failed) -> poll -> take the rebalances -> rebuild the
//! stale partitions -> begin -> decide -> produce -> commit (offsets inside the transaction). Any
//! failure after the poll aborts the transaction, tells the writer, and rewinds the consumer to
//! the committed offsets; if the rewind itself fails, the next step rewinds before it polls
//! (never a poll past records of an aborted batch). A fenced writer must stop.

use std::collections::BTreeMap;
use std::time::Instant;

use yeyak_domain::Envelope;

use super::writer::{CommandRecord, Mutation, Transaction, Writer};

/// A consumer-group member with a transactional producer, as the processor needs it.
pub trait CommandLog {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Whether `error` means another incarnation or a newer group generation owns this
    /// writer's transactional id: it must not write again.
    fn is_fenced(error: &Self::Error) -> bool;
    /// Up to `max` records of the owned command partitions, from the consumer's position.
    fn poll(&mut self, max: usize) -> Result<Vec<CommandRecord>, Self::Error>;
    /// What the group changed since the last call: (assigned, partitions).
    fn assignment_changes(&mut self) -> Vec<(bool, Vec<(String, u32)>)>;
    /// A whole event partition, read_committed, from its start.
    fn read_events(&mut self, topic: &str, partition: u32) -> Result<Vec<Envelope>, Self::Error>;
    fn begin(&mut self) -> Result<(), Self::Error>;
    fn produce(&mut self, tx: &Transaction) -> Result<(), Self::Error>;
    /// Adds the offsets to the transaction and commits it.
    fn commit(&mut self, offsets: &BTreeMap<(String, u32), u64>) -> Result<(), Self::Error>;
    /// Commits offsets for the group outside any transaction (only [`Mutation`]s do this).
    fn commit_offsets_directly(
        &mut self,
        offsets: &BTreeMap<(String, u32), u64>,
    ) -> Result<(), Self::Error>;
    fn abort(&mut self) -> Result<(), Self::Error>;
    /// Moves the consumer back to the group's committed offsets of every owned partition.
    fn rewind(&mut self) -> Result<(), Self::Error>;
}

/// One batch; returns how many command records it decided (0 when none came or it failed).
/// Errors: every error is returned after the writer and the consumer were put back to a state
/// from which the next `step` is correct; the caller retries after a pause unless
/// `L::is_fenced`.
pub fn step<L: CommandLog>(
    writer: &mut Writer,
    log: &mut L,
    batch_max: usize,
) -> Result<usize, L::Error> {
    if writer.needs_rewind {
        log.rewind()?;
        writer.needs_rewind = false;
    }
    let polling = Instant::now();
    let batch = log.poll(batch_max)?;
    writer.stats.poll_ms += polling.elapsed().as_millis() as u64;
    let mut revoked = false;
    for (assigned, partitions) in log.assignment_changes() {
        for partition in partitions {
            if assigned {
                writer.assign(partition);
            } else {
                revoked = true;
                writer.revoke(&partition);
            }
        }
    }
    if batch.is_empty() {
        return Ok(0);
    }
    let across_revocation = revoked
        || batch
            .iter()
            .any(|r| !writer.owns(&(r.topic.clone(), r.partition)));
    if across_revocation && writer.mutation() != Mutation::DecideAcrossRevocation {
        // Records polled before a revocation may be of a partition another member decides
        // now (its group generation accepts this one's offsets all the same): deciding them
        // would answer them twice. Drop the batch; the consumer rewinds to the committed
        // offsets of what it owns now.
        writer.stats.batches_dropped_at_rebalance += 1;
        writer.needs_rewind = true;
        return Ok(0);
    }
    match write(writer, log, &batch) {
        Ok(()) => Ok(batch.len()),
        Err(error) => {
            writer.stats.broker_errors += 1;
            writer.needs_rewind = true;
            if L::is_fenced(&error) {
                return Err(error);
            }
            tracing::warn!(%error, records = batch.len(), "a batch failed; aborted, it will be decided again");
            if let Err(abort) = log.abort() {
                tracing::warn!(error = %abort, "the abort failed too");
                if L::is_fenced(&abort) {
                    return Err(abort);
                }
            }
            if log.rewind().is_ok() {
                writer.needs_rewind = false;
            }
            Err(error)
        }
    }
}

/// Rebuild, decide, produce, commit. On an error after `begin`, the writer is told the
/// transaction aborted (its outcome is unknown at best).
fn write<L: CommandLog>(
    writer: &mut Writer,
    log: &mut L,
    batch: &[CommandRecord],
) -> Result<(), L::Error> {
    for (topic, partition) in writer.stale(batch) {
        let events = match writer.topics().event_topic_of(&topic) {
            Some(event_topic) => log.read_events(&event_topic, partition)?,
            None => Vec::new(),
        };
        writer.rebuild(&(topic, partition), &events);
    }
    log.begin()?;
    let deciding = Instant::now();
    let tx = writer.decide_batch(batch);
    writer.stats.decide_ms += deciding.elapsed().as_millis() as u64;
    let committing = Instant::now();
    let written = produce_and_commit(writer.mutation(), log, &tx);
    writer.stats.commit_ms += committing.elapsed().as_millis() as u64;
    match written {
        Ok(()) => {
            writer.committed();
            Ok(())
        }
        Err(error) => {
            writer.aborted();
            Err(error)
        }
    }
}

fn produce_and_commit<L: CommandLog>(
    mutation: Mutation,
    log: &mut L,
    tx: &Transaction,
) -> Result<(), L::Error> {
    if mutation == Mutation::OffsetsOutsideTransaction {
        log.commit_offsets_directly(&tx.offsets)?;
    }
    log.produce(tx)?;
    log.commit(&tx.offsets)
}
