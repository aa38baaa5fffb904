//! What every batch transaction shares, whoever runs it (the ingest loop, bootstrap-kv):
//! the [`Outcome`] it leaves behind — durable counters written inside the transaction, the
//! same figures added to the replica's in-memory [`WorkStats`] after the commit — and the
//! [`Backoff`] it is retried with while the database is busy or failing.

use super::service::WorkStats;
use crate::store::{is_busy, Tx};
use anyhow::Result;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// What one batch did, counted once: written as the function's durable counters in the
/// batch's own transaction ([`Outcome::write`]) and, once committed, added to the
/// replica's work counters ([`Outcome::add_to`]).
#[derive(Debug, Default)]
pub struct Outcome {
    /// Events (or KV values) applied for the first time.
    pub applied: u64,
    /// Seen before (same id): skipped.
    pub duplicates: u64,
    /// Events of a kind this function does not use.
    pub unknown: u64,
    /// From ignored senders or channels not followed.
    pub ignored: u64,
    /// Malformed, by reason (`rejected_{reason}` counters).
    pub rejected: BTreeMap<&'static str, u64>,
    /// Function-specific figures (`orphan_leaves`, `repaired_emotes`...).
    pub extra: BTreeMap<&'static str, u64>,
    /// Messages in the batch (applied, duplicate, ignored or rejected).
    pub size: u64,
}

impl Outcome {
    /// The durable counters of the batch (inside its transaction: all or nothing), in one
    /// statement.
    pub async fn write(&self, tx: &mut Tx, function: &str) -> Result<()> {
        let rejected: Vec<(String, i64)> =
            self.rejected.iter().map(|(reason, n)| (format!("rejected_{reason}"), *n as i64)).collect();
        let mut counters: Vec<(&str, i64)> = vec![
            ("events_applied", self.applied as i64),
            ("duplicates", self.duplicates as i64),
            ("unknown_events", self.unknown as i64),
            ("ignored", self.ignored as i64),
            ("batches", 1),
        ];
        counters.extend(rejected.iter().map(|(name, n)| (name.as_str(), *n)));
        counters.extend(self.extra.iter().map(|(name, n)| (*name, *n as i64)));
        tx.add_counters(function, &counters).await
    }

    /// Adds the committed batch to the replica's work counters (status, `$SRV.STATS`).
    pub fn add_to(&self, s: &WorkStats) {
        s.events_applied.fetch_add(self.applied, Relaxed);
        s.duplicates.fetch_add(self.duplicates, Relaxed);
        s.unknown_events.fetch_add(self.unknown, Relaxed);
        s.ignored.fetch_add(self.ignored, Relaxed);
        s.batches.fetch_add(1, Relaxed);
        s.last_batch_size.store(self.size, Relaxed);
        s.max_batch_size.fetch_max(self.size, Relaxed);
        for (reason, n) in &self.rejected {
            for _ in 0..*n {
                s.reject(reason);
            }
        }
        for (name, n) in &self.extra {
            s.add_extra(name, *n);
        }
    }
}

/// Retrying a transaction: waits 20 ms, doubling up to 1 s, between attempts, and says
/// what is happening at most every 5 s (a busy database is normal for a moment; a failure
/// that lasts is an error worth reading once, not a thousand times).
pub struct Backoff {
    started: Instant,
    delay: Duration,
    attempts: u32,
    last_log: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { started: Instant::now(), delay: Duration::from_millis(20), attempts: 0, last_log: None }
    }
}

impl Backoff {
    /// Failed attempts so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Since the first attempt.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// After a failed attempt of `what`: logs (rate-limited) and waits before the next.
    pub async fn failed(&mut self, what: &str, e: &anyhow::Error) {
        self.attempts += 1;
        if self.last_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
            self.last_log = Some(Instant::now());
            if is_busy(e) {
                tracing::warn!("database busy (another writer holds it); retrying {what} with back-off, nothing acked until it commits");
            } else {
                tracing::error!(error = %format!("{e:#}"), "{what} failed; retrying with back-off (nothing acked)");
            }
        }
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(Duration::from_secs(1));
    }

    /// After the attempt that worked: says so if a failure was logged.
    pub fn succeeded(&self, what: &str) {
        if self.last_log.is_some() {
            tracing::info!("database free again after {:?}; {what} applied", self.started.elapsed());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    #[tokio::test]
    async fn an_outcome_is_counted_durably_and_in_memory_alike() {
        let store = temp_store("outcome").await;
        let mut o = Outcome { applied: 3, duplicates: 1, ignored: 2, size: 7, ..Outcome::default() };
        o.rejected.insert("invalid_json", 1);
        o.extra.insert("orphan_leaves", 4);
        let mut tx = store.write().await.unwrap();
        o.write(&mut tx, "f").await.unwrap();
        o.write(&mut tx, "f").await.unwrap();
        tx.commit().await.unwrap();
        for (name, n) in [("events_applied", 6), ("duplicates", 2), ("ignored", 4), ("batches", 2)] {
            assert_eq!(store.counter("f", name).await.unwrap(), n, "{name}");
        }
        assert_eq!(store.counter("f", "rejected_invalid_json").await.unwrap(), 2);
        assert_eq!(store.counter("f", "orphan_leaves").await.unwrap(), 8);
        let stats = WorkStats::default();
        o.add_to(&stats);
        let j = stats.to_json();
        assert_eq!(
            (j["events_applied"].as_u64(), j["rejected"].as_u64(), j["batches"].as_u64()),
            (Some(3), Some(1), Some(1))
        );
        assert_eq!(j["rejected_by_reason"]["invalid_json"], 1);
        assert_eq!(j["extra"]["orphan_leaves"], 4);
        assert_eq!(j["last_batch_size"], 7);
    }

    #[tokio::test]
    async fn backoff_doubles_between_attempts() {
        let mut b = Backoff::default();
        let e = anyhow::anyhow!("database is locked");
        let start = Instant::now();
        for _ in 0..4 {
            b.failed("a test", &e).await;
        }
        // 20 + 40 + 80 + 160 ms
        assert!(start.elapsed() >= Duration::from_millis(300), "{:?}", start.elapsed());
        assert_eq!(b.attempts(), 4);
        assert_eq!(b.delay, Duration::from_millis(320));
    }
}
