//! The opening draw, re-run by the auditor from the log alone: the people who joined the
//! pre-queue, the seed the draw recorded, and the tickets that followed it. The order is
//! re-derived here (SHA-256 of the seed's bytes, a zero byte and the subject id's bytes,
//! ascending), not taken from the deciding side (`domain::waiting_room::draw_order`): a bug
//! there must not hide itself.

use std::collections::{BTreeSet, VecDeque};

use sha2::{Digest, Sha256};

use yeyak_domain::SubjectId;

/// The pre-queue as the log tells it, and the drawn order still to be met by tickets.
#[derive(Debug, Default)]
pub struct Draws {
    pre_queue: BTreeSet<SubjectId>,
    expected: VecDeque<SubjectId>,
}

fn key(seed: &str, subject: &SubjectId) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(seed.as_bytes());
    hasher.update([0u8]);
    hasher.update(subject.0);
    hasher.finalize().into()
}

impl Draws {
    pub fn joined(&mut self, subject: SubjectId) {
        self.pre_queue.insert(subject);
    }

    /// A draw under `seed` that says it drew `drawn` people: the order its tickets must
    /// follow. An error when the count is not the pre-queue's, or a previous draw's tickets
    /// are still missing.
    pub fn drawn(&mut self, seed: &str, drawn: u32) -> Result<(), String> {
        let missing = self.expected.len();
        let mut keyed: Vec<([u8; 32], SubjectId)> =
            self.pre_queue.iter().map(|s| (key(seed, s), *s)).collect();
        keyed.sort();
        self.expected = keyed.into_iter().map(|(_, s)| s).collect();
        if missing > 0 {
            return Err(format!(
                "a draw began with {missing} tickets of the previous one missing"
            ));
        }
        if self.expected.len() != drawn as usize {
            return Err(format!(
                "the draw says {drawn} people were drawn; the pre-queue held {}",
                self.expected.len()
            ));
        }
        Ok(())
    }

    /// A ticket issued to `subject`: `Some` when a draw's order expects it (then whether it is
    /// the one expected), `None` for a ticket taken in the queue.
    pub fn issued(&mut self, subject: SubjectId) -> Option<Result<(), String>> {
        self.pre_queue.remove(&subject);
        let expected = self.expected.pop_front()?;
        Some(if expected == subject {
            Ok(())
        } else {
            Err(format!(
                "the draw's next ticket went to subject {}, its seed gives subject {}",
                subject.to_hex(),
                expected.to_hex()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yeyak_domain::waiting_room::draw_order;

    fn subject(n: u8) -> SubjectId {
        SubjectId([n; 16])
    }

    #[test]
    fn the_auditors_order_is_the_one_the_waiting_room_draws() {
        let mut draws = Draws::default();
        (0..20).for_each(|n| draws.joined(subject(n)));
        assert_eq!(draws.drawn("seed", 20), Ok(()));
        for s in draw_order("seed", (0..20).map(subject)) {
            assert_eq!(draws.issued(s), Some(Ok(())));
        }
        assert_eq!(
            draws.issued(subject(99)),
            None,
            "a queue ticket after the draw"
        );
    }

    #[test]
    fn tickets_out_of_the_seeds_order_or_a_wrong_count_are_caught() {
        let mut draws = Draws::default();
        (0..5).for_each(|n| draws.joined(subject(n)));
        assert!(draws.drawn("seed", 4).is_err());
        let order = draw_order("seed", (0..5).map(subject));
        assert!(matches!(draws.issued(order[1]), Some(Err(_))));
    }
}
