//! Which instance publishes which records.
//!
//! Every instance holds every cell (see [`crate::changelog`]), so every instance could derive
//! every record; exactly one must publish each. A region's records (trade and leaders) belong to
//! the group member that holds partition `shard(region, n)` of the trade topic, a port's to the
//! holder of `shard(port, n)` of the freight topic. The consumer group hands out those
//! partitions exclusively, so ownership follows the group's assignment, whatever partition a
//! producer actually wrote an event to.

use std::sync::{Arc, Condvar, LockResult, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use xxhash_rust::xxh3::xxh3_64;

use crate::engine::record::Record;
use crate::event::Event;

/// Which of `partitions` an entity (region, port, currency) lives on: a stable hash, the same
/// in every instance and version.
pub fn shard(entity: &str, partitions: i32) -> i32 {
    (xxh3_64(entity.as_bytes()) % partitions.max(1) as u64) as i32
}

/// The group's current assignment, written by the rebalance callbacks and read by the
/// processing loop.
#[derive(Debug, Default)]
pub struct Assignment {
    pub partitions: Vec<(String, i32)>,
    /// Partitions assigned since the loop last looked: their records need a takeover.
    pub gained: Vec<(String, i32)>,
    /// Bumped at every change, so the loop notices revocations too.
    pub generation: u64,
    /// The first assignment arrived (possibly empty: more members than partitions).
    pub joined: bool,
}

/// The [`Assignment`] shared by the rebalance callbacks and the loop, and a wake-up for the
/// loop: it learns of a rebalance only between batches, and when the inputs are idle a batch
/// ended only at the next idle tick, a second after partitions were assigned (on a restarted
/// instance's way to ready, issue 17).
#[derive(Clone, Debug, Default)]
pub struct SharedAssignment {
    state: Arc<Mutex<Assignment>>,
    changed: Arc<Notify>,
    /// Exactly once, the batch whose transaction commits while the loop takes the next.
    pub committing: Committing,
}

impl SharedAssignment {
    pub fn lock(&self) -> LockResult<MutexGuard<'_, Assignment>> {
        self.state.lock()
    }

    /// Called by the callbacks after a change.
    pub fn notify(&self) {
        self.changed.notify_one();
    }

    /// Completes once a change was notified since the last time it completed.
    pub async fn changed(&self) {
        self.changed.notified().await
    }
}

/// Exactly once: whether a batch's transaction is committing on its own thread (see
/// `Output::send_batch`). A revocation waits for it, so that everything this instance
/// published for the revoked partitions is committed before the group hands them on, as when
/// the loop committed each batch before its next poll.
#[derive(Clone, Debug, Default)]
pub struct Committing(Arc<(Mutex<bool>, Condvar)>);

/// A transaction committing: released when dropped, by the thread that commits it.
#[must_use]
pub struct CommitHeld(Committing);

impl Committing {
    /// Marks a transaction as committing until the returned value is dropped.
    pub fn hold(&self) -> CommitHeld {
        *self.0 .0.lock().expect("committing lock") = true;
        CommitHeld(self.clone())
    }

    /// Waits until no transaction is committing, at most `limit`; false if one still is.
    pub fn wait(&self, limit: Duration) -> bool {
        let (held, released) = &*self.0;
        let held = held.lock().expect("committing lock");
        let (held, _) = released
            .wait_timeout_while(held, limit, |held| *held)
            .expect("committing lock");
        !*held
    }
}

impl Drop for CommitHeld {
    fn drop(&mut self) {
        let (held, released) = &*self.0 .0;
        *held.lock().expect("committing lock") = false;
        released.notify_all();
    }
}

impl Assignment {
    pub fn assign(&mut self, added: impl IntoIterator<Item = (String, i32)>) {
        for tp in added {
            if !self.partitions.contains(&tp) {
                self.partitions.push(tp.clone());
                self.gained.push(tp);
            }
        }
        self.joined = true;
        self.generation += 1;
    }

    pub fn revoke(&mut self, removed: impl IntoIterator<Item = (String, i32)>) {
        for tp in removed {
            self.partitions.retain(|x| *x != tp);
            self.gained.retain(|x| *x != tp);
        }
        self.generation += 1;
    }
}

/// A snapshot of the assignment shaped for per-record questions.
#[derive(Clone, Debug)]
pub struct Owned {
    topics: [(String, Vec<bool>); 3],
    pub generation: u64,
}

/// Index of the trade, freight and fx topics in [`Owned`].
const TRADE: usize = 0;
const FREIGHT: usize = 1;
const FX: usize = 2;

impl Owned {
    /// Nothing owned yet. `inputs` are (topic, partition count) for trade, freight and fx.
    pub fn new(inputs: &[(String, i32)]) -> Owned {
        let topic = |i: usize| {
            let (name, n) = &inputs[i];
            (name.clone(), vec![false; (*n).max(1) as usize])
        };
        Owned {
            topics: [topic(TRADE), topic(FREIGHT), topic(FX)],
            generation: 0,
        }
    }

    /// This snapshot brought up to date with `a`.
    pub fn refresh(&mut self, a: &Assignment) {
        for (_, owned) in &mut self.topics {
            owned.iter_mut().for_each(|o| *o = false);
        }
        for (topic, p) in &a.partitions {
            if let Some((_, owned)) = self.topics.iter_mut().find(|(t, _)| t == topic) {
                if let Some(o) = owned.get_mut(*p as usize) {
                    *o = true;
                }
            }
        }
        self.generation = a.generation;
    }

    /// Whether this instance holds input partition (`topic`, `partition`).
    pub fn holds(&self, topic: &str, partition: i32) -> bool {
        self.topics
            .iter()
            .find(|(t, _)| t == topic)
            .and_then(|(_, owned)| owned.get(partition as usize))
            .copied()
            .unwrap_or(false)
    }

    fn owns_entity(&self, topic: usize, entity: &str) -> bool {
        let owned = &self.topics[topic].1;
        owned[shard(entity, owned.len() as i32) as usize]
    }

    /// Whether this instance publishes the trade records of `region`.
    pub fn owns_region(&self, region: &str) -> bool {
        self.owns_entity(TRADE, region)
    }

    /// Whether this instance publishes the freight records of `port`.
    pub fn owns_port(&self, port: &str) -> bool {
        self.owns_entity(FREIGHT, port)
    }

    /// Whether this instance publishes `record`.
    pub fn owns(&self, record: &Record) -> bool {
        match record {
            Record::Trade(r) => self.owns_region(&r.region),
            Record::Leaders(r) => self.owns_region(&r.region),
            Record::Freight(r) => self.owns_port(&r.port),
        }
    }

    /// Whether the records `event` feeds are this instance's (fx: the holder of its currency's
    /// fx partition), so that exactly one instance counts what became of it.
    pub fn owns_event(&self, event: &Event<'_>) -> bool {
        match event {
            Event::Trade(e) => self.owns_entity(TRADE, &e.region),
            Event::Freight(e) => self.owns_entity(FREIGHT, &e.port),
            Event::Fx(e) => self.owns_entity(FX, &e.currency),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Vec<(String, i32)> {
        vec![("t".into(), 3), ("f".into(), 2), ("x".into(), 1)]
    }

    #[test]
    fn a_revocation_waits_until_the_transaction_committing_is_released() {
        let committing = Committing::default();
        assert!(
            committing.wait(Duration::ZERO),
            "nothing committing: no wait"
        );
        let held = committing.hold();
        assert!(
            !committing.wait(Duration::from_millis(20)),
            "held: the wait times out"
        );
        let waiter = std::thread::spawn({
            let committing = committing.clone();
            move || committing.wait(Duration::from_secs(30))
        });
        crate::blocking::Blocking::own_thread().sleep(Duration::from_millis(20));
        // Dropped on the committing thread in the service; here on this one.
        drop(held);
        assert!(waiter.join().unwrap(), "released: the waiter goes on");
    }

    #[test]
    fn a_region_belongs_to_exactly_one_of_the_members_that_split_the_partitions() {
        let members = [vec![0], vec![1, 2]];
        for region in ["XJ", "GD", "CN", "SH", "ZJ", "JS", "BJ", "a", "b"] {
            let owners = members
                .iter()
                .filter(|ps| {
                    let mut a = Assignment::default();
                    a.assign(ps.iter().map(|&p| ("t".to_string(), p)));
                    let mut o = Owned::new(&inputs());
                    o.refresh(&a);
                    o.owns_entity(TRADE, region)
                })
                .count();
            assert_eq!(owners, 1, "{region}");
        }
    }

    #[test]
    fn revoking_a_partition_gives_up_its_regions_and_forgets_it_was_gained() {
        let mut a = Assignment::default();
        a.assign([
            ("t".to_string(), 0),
            ("t".to_string(), 1),
            ("t".to_string(), 2),
        ]);
        a.revoke([("t".to_string(), 1)]);
        assert_eq!(a.gained, vec![("t".to_string(), 0), ("t".to_string(), 2)]);
        let mut o = Owned::new(&inputs());
        o.refresh(&a);
        assert!(o.holds("t", 0) && !o.holds("t", 1) && o.holds("t", 2));
        assert!(!o.holds("f", 0));
        let region_on_1 = (0..1000)
            .map(|i| format!("R{i}"))
            .find(|r| shard(r, 3) == 1)
            .unwrap();
        assert!(!o.owns_entity(TRADE, &region_on_1));
        assert_eq!(a.generation, 2);
    }
}
