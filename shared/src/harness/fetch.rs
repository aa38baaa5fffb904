//! Pulling batches from an ingest function's durable consumer: what is there now or the
//! first event to come, bounded by a client-side deadline, and — before a batch is
//! applied, when a pull was given up on — the earlier events that are still out (see
//! [`Puller::gather_earlier`]).

use super::Context;
use async_nats::jetstream::{self, consumer::PullConsumer, AckKind};
use futures::StreamExt;
use std::time::{Duration, Instant};

/// The function's side of its durable consumer. It remembers whether a pull request was
/// given up on (client-side deadline passed, or the pull ended with an error) since the
/// consumer was last seen whole: only then can events be out of reach, and only then does
/// a batch cost a question to the server before it is applied.
pub(super) struct Puller {
    consumer: PullConsumer,
    /// A pull was given up on (or the replica just started, or lost its lease): events may
    /// be pending at the server that nobody holds.
    suspect: bool,
}

impl Puller {
    pub(super) fn new(consumer: PullConsumer) -> Puller {
        Puller { consumer, suspect: true }
    }

    pub(super) fn consumer(&self) -> &PullConsumer {
        &self.consumer
    }

    /// Events may be out of reach now (the batch was handed back, the lease changed hands).
    pub(super) fn suspect(&mut self) {
        self.suspect = true;
    }

    /// Up to `max` messages: what is available now, else the first to arrive within `wait`
    /// plus whatever came with it. With `pace`, what is available is pulled `pace` messages
    /// at a time with a short pause between pulls (see [`Pace`]).
    pub(super) async fn next_batch(&mut self, max: usize, wait: Duration, pace: Pace) -> Vec<jetstream::Message> {
        let mut out = Vec::new();
        self.available(max, pace, &mut out).await;
        if out.is_empty() {
            self.fetch_into(1, Some(wait), &mut out).await;
            if !out.is_empty() && max > 1 {
                self.available(max, pace, &mut out).await;
            }
        }
        out
    }

    /// The next batch, pulled while the current one (`current` events, pulled with `pace`)
    /// is applied: what is available now, up to `max`, without waiting for more. Only in a
    /// backlog or a flood, i.e. a full batch pulled at full speed; a steady stream (batches
    /// not full, or paced) keeps its batch sizes, and the queries beside it their share of
    /// the server. None when not pulling ahead, nothing waits, or the function stops.
    pub(super) async fn pull_ahead(
        &mut self,
        ctx: &Context,
        current: usize,
        max: usize,
        pace: Pace,
    ) -> Option<Vec<jetstream::Message>> {
        if current < max || pace != Pace::Full || ctx.shutdown.is_set() {
            return None;
        }
        let fetching = Instant::now();
        let mut out = Vec::new();
        self.available(max, pace, &mut out).await;
        super::service::PhaseTimes::add(&ctx.stats.time.fetch, fetching.elapsed());
        (!out.is_empty()).then_some(out)
    }

    /// What is available now, until `out` holds `max`: in one pull, or paced.
    async fn available(&mut self, max: usize, pace: Pace, out: &mut Vec<jetstream::Message>) {
        loop {
            let (before, ask) = (out.len(), pace.group(max - out.len()));
            self.fetch_into(ask, None, out).await;
            if out.len() - before < ask || out.len() >= max {
                return;
            }
            pace.pause().await;
        }
    }

    async fn fetch_into(&mut self, max: usize, wait: Option<Duration>, out: &mut Vec<jetstream::Message>) {
        if !fetch_into(&self.consumer, max, wait, out).await {
            self.suspect = true;
        }
    }
}

/// One pull request. Bounded by a client-side deadline too: a pull request the server lost
/// (it restarted while we waited) would otherwise never end. False when the pull was given
/// up on or ended with an error: events may have been delivered into it and never seen.
async fn fetch_into(
    consumer: &PullConsumer,
    max: usize,
    wait: Option<Duration>,
    out: &mut Vec<jetstream::Message>,
) -> bool {
    let deadline = wait.unwrap_or(Duration::ZERO) + Duration::from_secs(2);
    let pull = async {
        let batch = match wait {
            None => consumer.fetch().max_messages(max).messages().await,
            Some(w) => consumer.batch().max_messages(max).expires(w).messages().await,
        };
        match batch {
            Ok(mut messages) => {
                while let Some(m) = messages.next().await {
                    match m {
                        Ok(m) => out.push(m),
                        Err(e) => {
                            tracing::debug!(error = %e, "fetch ended");
                            return false;
                        }
                    }
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch from the stream (NATS down?); retrying");
                if wait.is_some() {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                false
            }
        }
    };
    match tokio::time::timeout(deadline, pull).await {
        Ok(whole) => whole,
        Err(_) => {
            tracing::debug!("pull request unanswered (server restarted?); asking again");
            false
        }
    }
}

/// How an ingest function spreads a batch's traffic with the NATS server (`ingest.pace_chunk`):
/// at full speed, or in groups of `n` messages with a pause between groups. A pull of
/// thousands of messages, or thousands of acks sent at once, keeps the server busy for tens
/// of milliseconds; on a machine shared with the query functions every query waits behind
/// it (the bench found the slow answers under load clustered exactly there). Paced, the
/// server serves the queries between groups. The pauses may take at most
/// [`PACE_BUDGET`] of ingest's time: a steady stream is paced (10,000 events/s costs 4%),
/// a backlog or a flood goes at full speed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Pace {
    Full,
    Groups(usize),
}

/// The most of ingest's time the pauses may take.
const PACE_BUDGET: f64 = 0.05;
const PACE_PAUSE: Duration = Duration::from_millis(1);

impl Pace {
    /// How to pull and ack next, from the last batch: `events` taken in `cycle` (from the
    /// batch before it to this one). Paced in groups of `chunk` when a pause per group, both
    /// ways, fits in [`PACE_BUDGET`] of the cycle; `chunk` 0 turns pacing off.
    pub(super) fn for_batch(chunk: usize, events: usize, cycle: Duration) -> Pace {
        if chunk == 0 {
            return Pace::Full;
        }
        let pauses = PACE_PAUSE * 2 * events.div_ceil(chunk) as u32;
        if pauses.as_secs_f64() <= cycle.as_secs_f64() * PACE_BUDGET {
            Pace::Groups(chunk)
        } else {
            Pace::Full
        }
    }

    /// How many of `left` messages to handle before the next pause.
    pub(super) fn group(self, left: usize) -> usize {
        match self {
            Pace::Full => left,
            Pace::Groups(n) => n.min(left),
        }
    }

    /// The pause between groups (only a paced batch has more than one): long enough for
    /// the server to turn to others.
    pub(super) async fn pause(self) {
        tokio::time::sleep(PACE_PAUSE).await;
    }
}

impl Puller {
    /// Makes sure no earlier event is out while a batch is applied. A pull request this
    /// replica gave up on (its client-side deadline passed on a loaded machine, or the pull
    /// ended with an error) may still have had events delivered into it: they are pending at
    /// the server, seen by nobody, and come back only after `ack_wait` — while later events,
    /// fetched meanwhile, would be applied first (presence sessions depend on the order). So
    /// after such a pull, when the consumer has more events pending than this replica holds,
    /// it keeps what it holds alive, fetches the missing ones as they come back, and applies
    /// everything in stream order. Without one, nothing can be out and nothing is asked.
    pub(super) async fn gather_earlier(
        &mut self,
        ctx: &Context,
        mut held: Vec<jetstream::Message>,
        batch_max: usize,
    ) -> Vec<jetstream::Message> {
        let deadline = Instant::now() + Duration::from_secs(ctx.config.ingest.ack_wait_seconds.max(1) + 2);
        let mut checks = 0u32;
        let mut kept_alive = Instant::now();
        while self.suspect {
            let pending = self.consumer.get_info().await.map(|i| i.num_ack_pending).unwrap_or(0);
            if pending <= held.len() {
                self.suspect = false;
                break;
            }
            if Instant::now() > deadline || ctx.shutdown.is_set() {
                break;
            }
            checks += 1;
            if checks <= 3 {
                // Perhaps the acks of the previous batch, not processed yet: look again.
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            if checks == 4 {
                ctx.stats.add_extra("gathered_out_of_order", 1);
                tracing::debug!(pending, held = held.len(), "earlier events are out; fetching them before applying");
            }
            if kept_alive.elapsed() > Duration::from_secs(1) {
                for m in &held {
                    let _ = m.ack_with(AckKind::Progress).await;
                }
                kept_alive = Instant::now();
            }
            // A pull given up on here keeps the replica suspicious: the loop goes on.
            fetch_into(&self.consumer, batch_max, Some(Duration::from_millis(200)), &mut held).await;
        }
        // Each message's sequence is parsed from its reply subject once: sorting by a key
        // computed on every comparison parsed it a dozen times per message.
        let mut keyed: Vec<(u64, jetstream::Message)> =
            held.into_iter().map(|m| (m.info().map(|i| i.stream_sequence).unwrap_or(0), m)).collect();
        keyed.sort_by_key(|(seq, _)| *seq);
        keyed.dedup_by_key(|(seq, _)| *seq);
        keyed.into_iter().map(|(_, m)| m).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Pace;
    use std::time::Duration;

    #[test]
    fn paced_only_while_the_pauses_fit_the_budget() {
        let ms = Duration::from_millis;
        // 10,000 events/s in batches of 5,000: 20 pauses of 1 ms per 500 ms, 4%.
        assert_eq!(Pace::for_batch(500, 5_000, ms(500)), Pace::Groups(500));
        assert_eq!(Pace::for_batch(500, 1, ms(500)), Pace::Groups(500), "a trickle");
        // A backlog or a flood: 6,000 events every 70 ms.
        assert_eq!(Pace::for_batch(500, 6_000, ms(70)), Pace::Full);
        assert_eq!(Pace::for_batch(0, 5_000, ms(500)), Pace::Full, "0 turns it off");
        assert_eq!((Pace::Groups(500).group(1200), Pace::Groups(500).group(200)), (500, 200));
        assert_eq!(Pace::Full.group(1200), 1200);
    }
}
