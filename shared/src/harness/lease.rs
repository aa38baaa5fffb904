//! Replicas of an ingest function take turns: one holds the function's lease (a row in the
//! database) and consumes; the others stand by. A standby takes over within
//! [`LEASE_TTL_MS`] when the holder dies, and then first lets the old holder's unacked
//! batch come back ([`Takeover`]), so batches stay in stream order.

use super::now_ms;
use super::service;
use crate::store::Store;
use std::time::{Duration, Instant};

/// How long a consuming replica's lease lasts without renewal.
pub const LEASE_TTL_MS: i64 = 5000;

/// The right to consume for one function, held by one replica at a time.
pub(crate) struct Lease {
    pub(crate) name: String,
    pub(crate) holder: String,
    /// Until when we hold it, as far as we know.
    pub(crate) held_until_ms: i64,
}

impl Lease {
    pub(crate) fn new(name: &str) -> Lease {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let holder = format!("{}:{}:{nanos}", service::hostname(), std::process::id());
        Lease { name: name.to_string(), holder, held_until_ms: 0 }
    }

    /// True while this replica may consume; renews when half the lease has passed.
    pub(crate) async fn hold(&mut self, store: &Store) -> bool {
        let now = now_ms();
        if self.held_until_ms - now > LEASE_TTL_MS / 2 {
            return true;
        }
        let taken = async {
            let mut tx = store.write().await?;
            let held = tx.try_lease(&self.name, &self.holder, now, LEASE_TTL_MS).await?;
            tx.commit().await?;
            anyhow::Ok(held)
        }
        .await;
        match taken {
            Ok(true) => {
                if self.held_until_ms < now {
                    tracing::info!(lease = %self.name, "this replica is now the one consuming");
                }
                self.held_until_ms = now + LEASE_TTL_MS;
            }
            Ok(false) => self.held_until_ms = 0,
            Err(e) => tracing::debug!(error = %e, "lease not renewed this time (database busy?)"),
        }
        self.held_until_ms > now
    }

    pub(crate) async fn release(&self, store: &Store) {
        if self.held_until_ms > now_ms() {
            if let Ok(mut tx) = store.write().await {
                if tx.release_lease(&self.name, &self.holder).await.is_ok() {
                    let _ = tx.commit().await;
                }
            }
        }
    }
}

/// Where a replica is in taking over: holding the lease since when, and settled or not.
pub(crate) struct Takeover {
    /// The longest a new holder waits for the old holder's batch to come back.
    wait: Duration,
    /// While settling: until when at most.
    until: Option<Instant>,
    holding: bool,
}

impl Takeover {
    pub(crate) fn new(wait: Duration) -> Takeover {
        Takeover { wait, until: None, holding: false }
    }

    /// The lease is not ours (any more): the next hold is a takeover.
    pub(crate) fn lost(&mut self) {
        self.holding = false;
    }

    /// True once settled; the first call after a takeover starts the settling.
    pub(crate) fn settled(&mut self) -> bool {
        if !self.holding {
            self.holding = true;
            self.until = Some(Instant::now() + self.wait);
        }
        self.until.is_none()
    }

    /// With `in_flight` events unacked at `now`: may this replica fetch yet?
    pub(crate) fn may_fetch(&mut self, in_flight: usize, now: Instant) -> bool {
        if in_flight > 0 && self.until.is_some_and(|until| now < until) {
            return false;
        }
        self.until = None;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    /// One replica at a time holds a function's lease; a release (or expiry) lets the next
    /// one take it.
    #[tokio::test]
    async fn one_replica_holds_the_lease_at_a_time() {
        let store = temp_store("lease").await;
        let (mut a, mut b) = (Lease::new("userstats-f"), Lease::new("userstats-f"));
        b.holder.push_str(":b");
        assert!(a.hold(&store).await);
        assert!(!b.hold(&store).await, "held by a");
        assert!(a.hold(&store).await, "a renews");
        a.release(&store).await;
        assert!(b.hold(&store).await, "free after a released it");
        a.held_until_ms = 0;
        assert!(!a.hold(&store).await, "now held by b");
    }

    /// A new holder waits for the old holder's batch to come back, but not for ever.
    #[test]
    fn a_takeover_settles_when_nothing_is_in_flight_or_the_wait_is_over() {
        let mut turn = Takeover::new(Duration::from_secs(31));
        assert!(!turn.settled(), "the first hold is a takeover");
        let now = Instant::now();
        assert!(!turn.may_fetch(3, now), "the old holder's batch is still out");
        assert!(turn.may_fetch(0, now), "it came back");
        assert!(turn.settled(), "settled until the lease is lost");
        turn.lost();
        assert!(!turn.settled());
        assert!(turn.may_fetch(3, now + Duration::from_secs(32)), "waited long enough");
        assert!(turn.settled());
    }
}
