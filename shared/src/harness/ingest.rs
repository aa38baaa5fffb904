//! The ingest loop shared by every ingest function.
//!
//! JetStream mode (default): the stream capturing `kryten.events.cytube.>` is used if one
//! exists, else created (file storage, bounded by age and bytes). Each function has one
//! durable pull consumer, shared by its replicas, filtered to its events (and channels).
//! Replicas take turns rather than share: one database has one writer at a time anyway, so
//! a replica consumes only while it holds the function's lease in the database (renewed
//! every few seconds; a standby takes over within [`LEASE_TTL_MS`] when the holder dies;
//! see [`super::lease`]).
//! The consumer allows two batches out (`max_ack_pending = 2 × batch_max`): the one being
//! applied and, in a backlog, the next, pulled meanwhile. Only the lease holder pulls and it
//! applies in the order it pulled, so batches are applied in stream order — presence
//! sessions and "latest vote wins" depend on that — and batches handed to a replica that
//! died are handed out again (first) after `ack_wait`; a batch that is not applied goes
//! back (nak) together with the one pulled behind it, in that order.
//!
//! For each batch: parse → one `BEGIN IMMEDIATE` transaction that records the event ids
//! (events seen before are skipped: idempotency), lets the [`Handler`] apply the new ones,
//! adds the work counters → commit → ack. A busy database is waited for with back-off while
//! the messages are kept alive with progress acks; nothing is acked before its commit.
//!
//! Core mode (`ingest.mode = "core"`, for servers without JetStream): a queue-group
//! subscription per subject, same batching and idempotency, no durability.

use super::batch::{Backoff, Outcome};
use super::fetch::{Pace, Puller};

mod nice;
use super::lease::{Lease, Takeover, LEASE_TTL_MS};
use super::service::PhaseTimes;
use super::{now_ms, service, Context};
use crate::config::IngestMode;
use crate::store::{Store, Tx};
use crate::wire::{self, Parsed};
use anyhow::{anyhow, Context as _, Result};
use async_nats::jetstream::{self, consumer::pull, consumer::PullConsumer, AckKind};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// What one function does with the events it consumes.
pub trait Handler: Send {
    /// The CyTube events it consumes, as subject tokens (`chatmsg`, `adduser`...).
    fn events(&self) -> &'static [&'static str];

    /// Functions (short names) that must have applied every earlier event before a batch of
    /// this one is applied (while they make progress; `ingest.dependency_wait_ms` without any
    /// progress gives up on them).
    fn depends_on(&self) -> &'static [&'static str] {
        &[]
    }

    /// Applies events never applied before, in stream order, inside the open transaction.
    fn apply(
        &mut self,
        tx: &mut Tx,
        events: &[&Parsed],
        report: &mut Report,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Periodic work outside batches (about once a second).
    fn tick(&mut self, _store: &Store, _now_ms: i64) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
}

/// What a handler noticed while applying a batch, beyond "applied".
#[derive(Debug, Default)]
pub struct Report {
    /// Events of a kind this function does not use.
    pub unknown: u64,
    /// Events from ignored senders or channels not configured.
    pub ignored: u64,
    /// Function-specific counters (`orphan_leaves`, `clamped_durations`...).
    pub extra: BTreeMap<&'static str, u64>,
}

impl Report {
    pub fn count(&mut self, name: &'static str) {
        *self.extra.entry(name).or_default() += 1;
    }
}

/// One received message, parsed or rejected.
struct Incoming {
    parsed: std::result::Result<Parsed, wire::Reject>,
    stream_seq: u64,
}

/// Runs the ingest loop until shutdown: registers the micro service, consumes, applies.
pub async fn run<H: Handler>(ctx: &mut Context, mut handler: H) -> Result<()> {
    nice::lower_priority(ctx.config.ingest.nice);
    ctx.store.set_cache_mib(ctx.config.ingest.cache_mib).await?;
    let subjects = filter_subjects(ctx, handler.events());
    let result = if ctx.config.ingest.mode == IngestMode::Core {
        run_core(ctx, &mut handler, &subjects).await
    } else {
        run_jetstream(ctx, &mut handler, &subjects).await
    };
    ctx.lifecycle.stop().await;
    tracing::info!(function = ctx.function.name, "stopped");
    result
}

/// Registers the micro service (with its `status` endpoint). Called once the function's
/// consumer or subscriptions exist, so that "registered" means "consuming": an event
/// published after registration is never missed.
async fn announce(ctx: &Context) -> Result<async_nats::service::Service> {
    let service = service::register(&ctx.client, ctx.function, ctx.stats.clone()).await?;
    service::add_status_endpoint(&service, ctx.function, ctx.stats.clone()).await?;
    Ok(service)
}

/// `kryten.events.cytube.{channel token or *}.{event}` for each configured channel × event.
fn filter_subjects(ctx: &Context, events: &[&str]) -> Vec<String> {
    let channels: Vec<String> = if ctx.config.channels.is_empty() {
        vec!["*".into()]
    } else {
        let mut t: Vec<String> = ctx.config.channels.iter().map(|c| wire::subject_token(&c.channel)).collect();
        t.sort();
        t.dedup();
        t
    };
    channels.iter().flat_map(|c| events.iter().map(move |e| format!("kryten.events.cytube.{c}.{e}"))).collect()
}

async fn ensure_stream(js: &jetstream::Context, ctx: &Context) -> Result<jetstream::stream::Stream> {
    if let Ok(name) = js.stream_by_subject("kryten.events.cytube.any.chatmsg").await {
        tracing::info!(stream = %name, "using the existing stream that captures kryten.events.cytube.>");
        return js.get_stream(&name).await.map_err(|e| anyhow!("cannot open stream {name}: {e}"));
    }
    let cfg = &ctx.config.ingest;
    let config = jetstream::stream::Config {
        name: cfg.stream.clone(),
        subjects: vec!["kryten.events.cytube.>".into()],
        max_age: Duration::from_secs(cfg.stream_max_age_hours * 3600),
        max_bytes: cfg.stream_max_bytes,
        num_replicas: cfg.stream_replicas,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    };
    match js.create_stream(config).await {
        Ok(s) => {
            tracing::info!(stream = %cfg.stream, "created stream capturing kryten.events.cytube.>");
            Ok(s)
        }
        // Another replica may have created it a moment ago.
        Err(create_err) => js.get_stream(&cfg.stream).await.map_err(|_| {
            anyhow!("cannot create the JetStream stream {} ({create_err}): is JetStream enabled (nats-server -js)? Without it set ingest.mode = \"core\"", cfg.stream)
        }),
    }
}

async fn run_jetstream<H: Handler>(ctx: &mut Context, handler: &mut H, subjects: &[String]) -> Result<()> {
    let js = jetstream::new(ctx.client.clone());
    let stream = ensure_stream(&js, ctx).await?;
    let mut puller = Puller::new(durable_consumer(ctx, &stream, subjects).await?);
    let service = announce(ctx).await?;
    let batch_max = ctx.config.ingest.batch_max;
    let deps: Vec<String> = handler.depends_on().iter().map(|d| format!("userstats-{d}")).collect();
    let mut housekeeping = Housekeeping::new();
    let mut shutdown = ctx.shutdown.clone();
    let mut lease = Lease::new(&ctx.function.service_name());
    let mut turn = Takeover::new(Duration::from_secs(ctx.config.ingest.ack_wait_seconds.max(1) + 1));
    let (mut pace, mut cycle) = (Pace::Full, Instant::now());
    // The next batch, pulled while the one before it was applied (in a backlog): the server
    // delivers it, and the function receives it, while the database works, instead of the
    // two taking turns (the bench measured 43% of ingest's time in fetching).
    let mut prefetched: Option<Vec<jetstream::Message>> = None;
    while !ctx.shutdown.is_set() {
        housekeeping.run_if_due(ctx, handler).await;
        if !lease.hold(&ctx.store).await {
            hand_back(&prefetched.take().unwrap_or_default()).await;
            turn.lost();
            puller.suspect();
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => continue,
                _ = shutdown.wait() => break,
            }
        }
        let messages = match prefetched.take() {
            Some(messages) => messages,
            None => {
                if !settle(&mut turn, puller.consumer()).await {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                let fetching = Instant::now();
                let messages = tokio::select! {
                    m = puller.next_batch(batch_max, Duration::from_millis(500), pace) => m,
                    _ = shutdown.wait() => break,
                };
                PhaseTimes::add(&ctx.stats.time.fetch, fetching.elapsed());
                if messages.is_empty() {
                    ctx.stats.lag.store(0, Relaxed);
                    continue;
                }
                messages
            }
        };
        let gathering = Instant::now();
        let messages = puller.gather_earlier(ctx, messages, batch_max).await;
        PhaseTimes::add(&ctx.stats.time.fetch, gathering.elapsed());
        let (applied, next) = tokio::join!(
            apply(ctx, handler, &stream, &deps, &messages, &lease),
            puller.pull_ahead(ctx, messages.len(), batch_max, pace)
        );
        match applied {
            Ok(()) => {
                pace = Pace::for_batch(ctx.config.ingest.pace_chunk, messages.len(), cycle.elapsed());
                cycle = Instant::now();
                ack(ctx, &messages, pace).await;
                prefetched = next;
            }
            Err(e) => {
                // Not applied: this batch, then the one pulled behind it, go back at once and
                // in stream order, so that whoever applies them next sees them in order.
                hand_back(&messages).await;
                hand_back(&next.unwrap_or_default()).await;
                puller.suspect();
                if e.is::<LostLease>() {
                    tracing::info!("the lease passed to another replica; handing the batch back");
                    lease.held_until_ms = 0;
                    turn.lost();
                }
            }
        }
    }
    hand_back(&prefetched.take().unwrap_or_default()).await;
    lease.release(&ctx.store).await;
    let _ = service.stop().await;
    Ok(())
}

/// The function's durable pull consumer, shared by its replicas. At most two batches are
/// out at a time (`max_ack_pending = 2 × batch_max`): the one being applied and the next,
/// pulled meanwhile; the lease keeps every other replica from pulling, so batches stay in
/// stream order.
async fn durable_consumer(
    ctx: &Context,
    stream: &jetstream::stream::Stream,
    subjects: &[String],
) -> Result<PullConsumer> {
    let cfg = &ctx.config.ingest;
    let durable = ctx.function.service_name();
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(durable.clone()),
            description: Some(format!("kryten-userstats {}", ctx.function.name)),
            filter_subjects: subjects.to_vec(),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(cfg.ack_wait_seconds.max(1)),
            max_ack_pending: 2 * cfg.batch_max as i64,
            max_deliver: -1,
            ..Default::default()
        })
        .await
        .with_context(|| format!("cannot create durable consumer {durable}"))?;
    tracing::info!(consumer = %durable, subjects = ?subjects, "consuming");
    Ok(consumer)
}

/// After taking the lease over, nothing later may be fetched until the events another
/// replica fetched and never acked have come back (redelivered after `ack_wait`, or nak'd
/// by a replica that lost the lease), or order would break. [`Takeover`] says how long to
/// wait at most; this asks the consumer. True when fetching may go on.
async fn settle(turn: &mut Takeover, consumer: &PullConsumer) -> bool {
    if turn.settled() {
        return true;
    }
    let in_flight = consumer.get_info().await.map(|i| i.num_ack_pending).unwrap_or(0);
    turn.may_fetch(in_flight, Instant::now())
}

/// Parses a fetched batch, waits for the dependencies, applies it (retrying, fenced by the
/// lease). `Err(LostLease)` when another replica holds the lease now.
async fn apply<H: Handler>(
    ctx: &Context,
    handler: &mut H,
    stream: &jetstream::stream::Stream,
    deps: &[String],
    messages: &[jetstream::Message],
    lease: &Lease,
) -> Result<()> {
    let time = &ctx.stats.time;
    let parsing = Instant::now();
    let incoming: Vec<Incoming> = messages.iter().map(receive).collect();
    PhaseTimes::add(&time.parse, parsing.elapsed());
    if !deps.is_empty() {
        let waiting = Instant::now();
        wait_for_dependencies(ctx, stream, deps, &incoming).await;
        PhaseTimes::add(&time.dependency_wait, waiting.elapsed());
    }
    let keep_alive = || async {
        for m in messages {
            let _ = m.ack_with(AckKind::Progress).await;
        }
    };
    let fence = Some((lease.name.as_str(), lease.holder.as_str()));
    apply_with_retry(ctx, handler, &incoming, keep_alive, fence).await
}

/// Acks a committed batch (paced: a group at a time, each sent before the pause) and
/// records how many events wait behind it.
async fn ack(ctx: &Context, messages: &[jetstream::Message], pace: Pace) {
    let acking = Instant::now();
    for (i, group) in messages.chunks(pace.group(messages.len()).max(1)).enumerate() {
        if i > 0 {
            let _ = ctx.client.flush().await;
            pace.pause().await;
        }
        for m in group {
            if let Err(e) = m.ack().await {
                tracing::warn!(error = %e, "ack failed; the event will be redelivered and skipped as a duplicate");
            }
        }
    }
    PhaseTimes::add(&ctx.stats.time.ack, acking.elapsed());
    let lag = messages.last().and_then(|m| m.info().ok().map(|i| i.pending)).unwrap_or(0);
    ctx.stats.lag.store(lag, Relaxed);
}

/// Gives a batch back at once (nak), so that the replica holding the lease gets it next.
async fn hand_back(messages: &[jetstream::Message]) {
    for m in messages {
        let _ = m.ack_with(AckKind::Nak(None)).await;
    }
}

fn receive(m: &jetstream::Message) -> Incoming {
    let stream_seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
    Incoming { parsed: wire::parse(&m.payload), stream_seq }
}

/// Waits until every dependency's consumer has acked (= applied) all its events published
/// before this batch. A dependency that is behind but moving (a backlog, a slow database
/// server) is waited for however long it takes; one that made no progress for
/// `dependency_wait_ms` (down, or taking over) is given up on and the batch counted `late`.
/// A dependency that is not deployed (no consumer) is not waited for.
async fn wait_for_dependencies(ctx: &Context, stream: &jetstream::stream::Stream, deps: &[String], batch: &[Incoming]) {
    let last_seq = batch.iter().map(|i| i.stream_seq).max().unwrap_or(0);
    let max_wait = Duration::from_millis(ctx.config.ingest.dependency_wait_ms);
    let mut floors: Vec<u64> = vec![0; deps.len()];
    let mut progressed = Instant::now();
    loop {
        let mut ready = true;
        for (dep, floor) in deps.iter().zip(floors.iter_mut()) {
            if let Ok(info) = stream.consumer_info(dep).await {
                let idle = info.num_pending == 0 && info.num_ack_pending == 0;
                if !idle && info.ack_floor.stream_sequence + 1 < last_seq {
                    ready = false;
                }
                if info.ack_floor.stream_sequence > *floor {
                    *floor = info.ack_floor.stream_sequence;
                    progressed = Instant::now();
                }
            }
        }
        if ready {
            return;
        }
        if progressed.elapsed() >= max_wait {
            ctx.stats.late.fetch_add(batch.len() as u64, Relaxed);
            tracing::debug!("dependencies made no progress for {max_wait:?}; applying anyway");
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Applies a batch, retrying while the database is busy or failing. Gives up only when a
/// shutdown has been requested and ~3 s have passed (the events are then redelivered).
async fn apply_with_retry<H: Handler, F, Fut>(
    ctx: &Context,
    handler: &mut H,
    batch: &[Incoming],
    keep_alive: F,
    fence: Option<(&str, &str)>,
) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut backoff = Backoff::default();
    let mut last_keep_alive = Instant::now();
    loop {
        match apply_once(ctx, handler, batch, fence).await {
            Ok(()) => {
                backoff.succeeded("the batch");
                return Ok(());
            }
            Err(e) if e.is::<LostLease>() => return Err(e),
            Err(e) => {
                ctx.stats.retries.fetch_add(1, Relaxed);
                if ctx.shutdown.is_set() && backoff.elapsed() > Duration::from_secs(3) {
                    return Err(anyhow!("giving up the batch to shut down; it will be redelivered"));
                }
                if last_keep_alive.elapsed() > Duration::from_secs(1) {
                    keep_alive().await;
                    last_keep_alive = Instant::now();
                }
                backoff.failed("the batch", &e).await;
            }
        }
    }
}

/// The batch's transaction found the function's lease held by another replica.
#[derive(Debug)]
struct LostLease;

impl std::fmt::Display for LostLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the lease is held by another replica")
    }
}

impl std::error::Error for LostLease {}

/// Applies a batch in one transaction. With a `fence` (lease name, holder), the transaction
/// first renews the lease and fails with [`LostLease`] when another replica holds it, so a
/// replica that stalled past its lease can never commit behind the new holder's back.
async fn apply_once<H: Handler>(
    ctx: &Context,
    handler: &mut H,
    batch: &[Incoming],
    fence: Option<(&str, &str)>,
) -> Result<()> {
    let function = ctx.function.name;
    let started = Instant::now();
    let mut tx = ctx.store.write().await?;
    if let Some((name, holder)) = fence {
        if !tx.try_lease(name, holder, now_ms(), LEASE_TTL_MS).await? {
            return Err(LostLease.into());
        }
    }
    let begin = started.elapsed();
    let mut outcome = Outcome { size: batch.len() as u64, ..Outcome::default() };
    let mut good: Vec<&Parsed> = Vec::with_capacity(batch.len());
    for i in batch {
        match &i.parsed {
            Ok(p) if is_followed(ctx, p) => good.push(p),
            Ok(_) => outcome.ignored += 1,
            Err(r) => *outcome.rejected.entry(r.label()).or_default() += 1,
        }
    }
    let ids: Vec<String> = good.iter().map(|p| p.id.clone()).collect();
    let fresh = tx.claim_new_ids(&ids, now_ms()).await?;
    let new: Vec<&Parsed> = good.iter().zip(&fresh).filter(|(_, f)| **f).map(|(p, _)| *p).collect();
    outcome.applied = new.len() as u64;
    outcome.duplicates = (good.len() - new.len()) as u64;
    let mut report = Report::default();
    handler.apply(&mut tx, &new, &mut report).await?;
    outcome.unknown = report.unknown;
    outcome.ignored += report.ignored;
    outcome.extra = report.extra;
    outcome.write(&mut tx, function).await?;
    let (applied, sql) = (started.elapsed(), begin + tx.sql_time());
    let committing = Instant::now();
    tx.commit().await?;

    let time = &ctx.stats.time;
    PhaseTimes::add(&time.sql, sql);
    PhaseTimes::add(&time.detect_and_fold, applied.saturating_sub(sql));
    PhaseTimes::add(&time.commit, committing.elapsed());
    outcome.add_to(&ctx.stats);
    for (reason, n) in &outcome.rejected {
        log_rejection(reason, *n);
    }
    Ok(())
}

/// True when the event's channel is one we follow (all channels when none configured).
fn is_followed(ctx: &Context, p: &Parsed) -> bool {
    ctx.config.channels.is_empty()
        || ctx
            .config
            .channels
            .iter()
            .any(|c| c.domain.eq_ignore_ascii_case(&p.domain) && c.channel.to_lowercase() == p.channel.to_lowercase())
}

/// Rejections are logged at most once per 10 s per process (they are always counted).
fn log_rejection(reason: &str, n: u64) {
    use std::sync::atomic::AtomicI64;
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = now_ms();
    if now - LAST.load(Relaxed) >= 10_000 {
        LAST.store(now, Relaxed);
        tracing::warn!(
            reason,
            count = n,
            "rejected malformed event(s); counted in rejected_{reason} (further rejections logged at most every 10 s)"
        );
    }
}

/// Housekeeping between batches: the handler's tick about once a second, pruning of old
/// event ids once a minute (it takes the write lock, so not on every tick).
struct Housekeeping {
    last_tick: Instant,
    last_prune: Option<Instant>,
}

impl Housekeeping {
    fn new() -> Housekeeping {
        Housekeeping { last_tick: Instant::now(), last_prune: None }
    }

    async fn run_if_due<H: Handler>(&mut self, ctx: &Context, handler: &mut H) {
        if self.last_tick.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last_tick = Instant::now();
        let now = now_ms();
        if let Err(e) = handler.tick(&ctx.store, now).await {
            tracing::warn!(error = %format!("{e:#}"), "periodic work failed; will retry");
        }
        if self.last_prune.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
            return;
        }
        self.last_prune = Some(Instant::now());
        // Ids older than the stream keeps events can never be redelivered.
        let keep_ms = (ctx.config.ingest.stream_max_age_hours.max(1) * 3600 * 1000) as i64 + 3_600_000;
        if let Ok(mut tx) = ctx.store.write().await {
            if tx.prune_applied(now - keep_ms, 5000).await.is_ok() {
                let _ = tx.commit().await;
            }
        }
    }
}

async fn run_core<H: Handler>(ctx: &mut Context, handler: &mut H, subjects: &[String]) -> Result<()> {
    let queue = ctx.function.service_name();
    let mut subs = Vec::new();
    for s in subjects {
        subs.push(
            ctx.client
                .queue_subscribe(s.clone(), queue.clone())
                .await
                .map_err(|e| anyhow!("cannot subscribe to {s}: {e}"))?,
        );
    }
    let service = announce(ctx).await?;
    tracing::warn!("core NATS mode: events published while no replica runs are lost (use JetStream for durability)");
    let mut all = futures::stream::select_all(subs);
    let mut shutdown = ctx.shutdown.clone();
    let mut housekeeping = Housekeeping::new();
    let max = ctx.config.ingest.batch_max;
    while !ctx.shutdown.is_set() {
        let mut batch = Vec::new();
        tokio::select! {
            m = all.next() => match m { Some(m) => batch.push(m), None => break },
            _ = shutdown.wait() => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {},
        }
        if !batch.is_empty() {
            let deadline = tokio::time::Instant::now() + Duration::from_millis(5);
            while batch.len() < max {
                match tokio::time::timeout_at(deadline, all.next()).await {
                    Ok(Some(m)) => batch.push(m),
                    _ => break,
                }
            }
            let incoming: Vec<Incoming> =
                batch.iter().map(|m| Incoming { parsed: wire::parse(&m.payload), stream_seq: 0 }).collect();
            let _ = apply_with_retry(ctx, handler, &incoming, || async {}, None).await;
        }
        housekeeping.run_if_due(ctx, handler).await;
    }
    let _ = service.stop().await;
    Ok(())
}
