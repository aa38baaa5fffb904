//! Registration as a NATS micro service and the work counters shown in `$SRV.STATS`.
//!
//! Every function registers as `userstats-{name}` (queue group `q` shared by its replicas)
//! with metadata saying what it is. Ingest functions add a `status` endpoint
//! (`userstats.{name}.status`) that answers their counters; the same counters appear as the
//! endpoint's `data` in `$SRV.STATS`, so `nats micro stats` style tools show the work done.

use super::Function;
use anyhow::{anyhow, Result};
use async_nats::service::{Service, ServiceExt};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// In-process counters of one replica (durable totals live in the `counters` table).
#[derive(Default)]
pub struct WorkStats {
    pub events_applied: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejected: AtomicU64,
    pub unknown_events: AtomicU64,
    pub ignored: AtomicU64,
    pub late: AtomicU64,
    pub batches: AtomicU64,
    pub last_batch_size: AtomicU64,
    pub max_batch_size: AtomicU64,
    pub retries: AtomicU64,
    /// Events waiting in the stream for this function (consumer's num_pending).
    pub lag: AtomicU64,
    pub rejected_by_reason: Mutex<BTreeMap<String, u64>>,
    /// Function-specific figures (orphan leaves, clamped durations...).
    pub extra: Mutex<BTreeMap<String, u64>>,
    /// Function-specific current values by label: name → label → value (bootstrap-kv's
    /// drift per channel).
    pub gauges: Mutex<BTreeMap<String, BTreeMap<String, i64>>>,
    /// Where the time of the batches goes.
    pub time: PhaseTimes,
}

/// Where an ingest replica's time goes, in microseconds added up over its batches: enough
/// to tell a slow database from slow detection or a slow NATS.
#[derive(Default)]
pub struct PhaseTimes {
    /// Pulling a batch from JetStream (includes waiting for the first event of a burst).
    pub fetch: AtomicU64,
    /// Parsing the envelopes (JSON, validation).
    pub parse: AtomicU64,
    /// Waiting for dependencies (chat for presence and media).
    pub dependency_wait: AtomicU64,
    /// Inside SQL statements: begin, idempotency, the handler's reads and writes, counters.
    pub sql: AtomicU64,
    /// The handler's own work outside SQL: detection (kudos, emotes, votes) and folding.
    pub detect_and_fold: AtomicU64,
    pub commit: AtomicU64,
    /// Acknowledging the batch's messages to JetStream.
    pub ack: AtomicU64,
}

impl PhaseTimes {
    pub fn add(phase: &AtomicU64, d: std::time::Duration) {
        phase.fetch_add(d.as_micros() as u64, Relaxed);
    }

    pub fn to_json(&self) -> Value {
        json!({
            "fetch": self.fetch.load(Relaxed),
            "parse": self.parse.load(Relaxed),
            "dependency_wait": self.dependency_wait.load(Relaxed),
            "sql": self.sql.load(Relaxed),
            "detect_and_fold": self.detect_and_fold.load(Relaxed),
            "commit": self.commit.load(Relaxed),
            "ack": self.ack.load(Relaxed),
        })
    }
}

impl WorkStats {
    pub fn reject(&self, reason: &str) {
        self.rejected.fetch_add(1, Relaxed);
        if let Ok(mut m) = self.rejected_by_reason.lock() {
            *m.entry(reason.to_string()).or_default() += 1;
        }
    }

    pub fn add_extra(&self, name: &str, n: u64) {
        if let Ok(mut m) = self.extra.lock() {
            *m.entry(name.to_string()).or_default() += n;
        }
    }

    pub fn set_gauge(&self, name: &str, label: &str, value: i64) {
        if let Ok(mut m) = self.gauges.lock() {
            m.entry(name.to_string()).or_default().insert(label.to_string(), value);
        }
    }

    pub fn to_json(&self) -> Value {
        let gauges = self.gauges.lock().map(|m| json!(*m)).unwrap_or(Value::Null);
        let rejected_by_reason = self.rejected_by_reason.lock().map(|m| json!(*m)).unwrap_or(Value::Null);
        let extra = self.extra.lock().map(|m| json!(*m)).unwrap_or(Value::Null);
        json!({
            "events_applied": self.events_applied.load(Relaxed),
            "duplicates": self.duplicates.load(Relaxed),
            "rejected": self.rejected.load(Relaxed),
            "rejected_by_reason": rejected_by_reason,
            "unknown_events": self.unknown_events.load(Relaxed),
            "ignored": self.ignored.load(Relaxed),
            "late": self.late.load(Relaxed),
            "batches": self.batches.load(Relaxed),
            "last_batch_size": self.last_batch_size.load(Relaxed),
            "max_batch_size": self.max_batch_size.load(Relaxed),
            "retries": self.retries.load(Relaxed),
            "lag": self.lag.load(Relaxed),
            "extra": extra,
            "gauges": gauges,
            "time_us": self.time.to_json(),
        })
    }
}

/// Registers the function as a micro service whose stats `data` are `stats`.
pub async fn register(client: &async_nats::Client, function: Function, stats: Arc<WorkStats>) -> Result<Service> {
    register_with(client, function, move || stats.to_json()).await
}

/// Registers the function as a micro service (`userstats-{name}`, queue group `q`, with
/// metadata saying what it is) whose stats `data` is what `stats` answers at the time.
pub async fn register_with(
    client: &async_nats::Client,
    function: Function,
    stats: impl Fn() -> Value + Send + Sync + 'static,
) -> Result<Service> {
    let metadata = HashMap::from([
        ("function".to_string(), function.name.to_string()),
        ("project".to_string(), "kryten-userstats".to_string()),
        ("hostname".to_string(), hostname()),
    ]);
    let service = client
        .service_builder()
        .description(function.description)
        .metadata(metadata)
        .stats_handler(move |_endpoint, _stats| stats())
        .start(function.service_name(), function.version)
        .await
        .map_err(|e| anyhow!("cannot register micro service {}: {e}", function.service_name()))?;
    tracing::info!(service = %function.service_name(), "registered as NATS micro service");
    Ok(service)
}

/// Adds the `userstats.{name}.status` endpoint answering the work counters.
pub async fn add_status_endpoint(service: &Service, function: Function, stats: Arc<WorkStats>) -> Result<()> {
    add_status_endpoint_with(service, function, move || stats.to_json()).await
}

/// Adds the `userstats.{name}.status` endpoint answering what `stats` says at the time
/// (the web function's HTTP figures).
pub async fn add_status_endpoint_with(
    service: &Service,
    function: Function,
    stats: impl Fn() -> Value + Send + Sync + 'static,
) -> Result<()> {
    let mut endpoint = service
        .endpoint_builder()
        .name("status")
        .add(format!("userstats.{}.status", function.name))
        .await
        .map_err(|e| anyhow!("cannot add status endpoint: {e}"))?;
    tokio::spawn(async move {
        while let Some(request) = endpoint.next().await {
            let body = json!({"function": function.name, "version": function.version, "stats": stats()});
            let _ = request.respond(Ok(body.to_string().into())).await;
        }
    });
    Ok(())
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Asks every instance on a `$SRV.*` subject (e.g. `$SRV.STATS`) and collects the JSON
/// replies that arrive within `wait` (what `nats micro stats` does; a plain request would
/// return only the first reply).
pub async fn scatter(client: &async_nats::Client, subject: &str, wait: std::time::Duration) -> Vec<Value> {
    let inbox = client.new_inbox();
    let Ok(mut replies) = client.subscribe(inbox.clone()).await else { return Vec::new() };
    if client.publish_with_reply(subject.to_string(), inbox, "".into()).await.is_err() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, replies.next()).await {
        if let Ok(v) = serde_json::from_slice::<Value>(&m.payload) {
            out.push(v);
        }
    }
    out
}
