//! What the `metrics` function does: Prometheus text on `GET /metrics` and a health answer
//! on `GET /health` (03-api.md §3).
//!
//! Metrics read, never write. Once a second a background task collects the figures — the
//! maintained totals and small tables of the database ([`Store::figures`]) and the micro
//! stats of every running function (a `$SRV.STATS` scatter) — and renders them; a scrape
//! only hands out the latest rendering, so it costs microseconds whatever the database
//! size, and a replica that dies drops out of the fleet figures within a second or two.

use crate::harness::service::scatter;
use crate::health::{nats_connected, Health, SCATTER_WINDOW};
use crate::store::{Figures, Store};
use anyhow::{anyhow, Result};
use prometheus::{Encoder, GaugeVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The latest rendering, shared between the collector and the HTTP thread.
#[derive(Clone, Default)]
pub struct Snapshot {
    pub text: String,
    pub health: Value,
    pub healthy: bool,
}

pub type Shared = Arc<RwLock<Snapshot>>;

/// What the fleet's `$SRV.STATS` replies say, per function (micro service) name.
#[derive(Debug, Default)]
pub struct Fleet {
    /// function (short name) → instances seen
    pub replicas: BTreeMap<String, usize>,
    /// (function, endpoint) → (requests, errors, average processing seconds over instances)
    pub endpoints: BTreeMap<(String, String), (u64, u64, f64)>,
    /// function → largest ingest lag reported by a replica
    pub lag: BTreeMap<String, u64>,
    /// (channel, kind) → current drift between the database and the bridge's KV, as
    /// bootstrap-kv last saw it (largest over its replicas)
    pub drift: BTreeMap<(String, String), i64>,
    /// The web function's HTTP requests and latency.
    pub web: crate::web_metrics::WebFigures,
}

impl Fleet {
    /// Reads the `$SRV.STATS` replies of every userstats function.
    pub fn from_stats(replies: &[Value]) -> Fleet {
        let mut fleet = Fleet::default();
        let mut averages: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
        for r in replies {
            let Some(name) = r["name"].as_str().and_then(|n| n.strip_prefix("userstats-")) else { continue };
            *fleet.replicas.entry(name.to_string()).or_default() += 1;
            for e in r["endpoints"].as_array().into_iter().flatten() {
                let (endpoint, data) = (e["name"].as_str().unwrap_or("?"), &e["data"]);
                let key = (name.to_string(), endpoint.to_string());
                let slot = fleet.endpoints.entry(key.clone()).or_default();
                // The framework's counts cover the endpoint's own subject and error replies
                // without a body; a query function adds, per command, what it answered on
                // the seed and command subjects and its error answers (see QueryStats).
                slot.0 +=
                    e["num_requests"].as_u64().unwrap_or(0) + data["routed_by_command"][endpoint].as_u64().unwrap_or(0);
                slot.1 +=
                    e["num_errors"].as_u64().unwrap_or(0) + data["errors_by_command"][endpoint].as_u64().unwrap_or(0);
                averages.entry(key).or_default().push(e["average_processing_time"].as_f64().unwrap_or(0.0) / 1e9);
                if let Some(lag) = data["lag"].as_u64() {
                    let l = fleet.lag.entry(name.to_string()).or_default();
                    *l = (*l).max(lag);
                }
                for (gauge, by_channel) in data["gauges"].as_object().into_iter().flatten() {
                    let Some(kind) = gauge.strip_prefix("drift_") else { continue };
                    for (channel, v) in by_channel.as_object().into_iter().flatten() {
                        let d = fleet.drift.entry((channel.clone(), kind.to_string())).or_default();
                        *d = (*d).max(v.as_i64().unwrap_or(0));
                    }
                }
            }
        }
        for (key, v) in averages {
            if let Some(slot) = fleet.endpoints.get_mut(&key) {
                slot.2 = v.iter().sum::<f64>() / v.len().max(1) as f64;
            }
        }
        fleet.web = crate::web_metrics::WebFigures::from_stats(replies);
        fleet
    }
}

/// Collects and renders one snapshot.
pub async fn collect(store: &Store, client: &async_nats::Client, started: Instant) -> Snapshot {
    let figures = store.figures().await;
    let replies = scatter(client, "$SRV.STATS", SCATTER_WINDOW).await;
    let health = Health::from_replies(figures.is_ok(), nats_connected(client), &replies);
    let fleet = Fleet::from_stats(&replies);
    let uptime = started.elapsed().as_secs();
    let text = render(&figures.unwrap_or_default(), &fleet, uptime, &health).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot render metrics");
        String::new()
    });
    Snapshot { text, health: health.to_json(uptime), healthy: health.healthy() }
}

fn gauge(registry: &Registry, name: &str, help: &str, value: i64) -> Result<()> {
    let g = IntGauge::new(name, help)?;
    g.set(value);
    registry.register(Box::new(g))?;
    Ok(())
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

/// The Prometheus text exposition of one snapshot: the totals, the per-channel gauges,
/// the fleet's gauges and the ingest counters, each registered by its own step.
pub fn render(f: &Figures, fleet: &Fleet, uptime: u64, health: &Health) -> Result<String> {
    let r = Registry::new();
    register_totals(&r, f, uptime, health)?;
    register_channels(&r, f)?;
    register_fleet(&r, fleet)?;
    register_counters(&r, f)?;
    let mut out = Vec::new();
    TextEncoder::new().encode(&r.gather(), &mut out)?;
    let text = String::from_utf8(out).map_err(|e| anyhow!("metrics text is not UTF-8: {e}"))?;
    Ok(text + &fleet.web.render())
}

/// Health and the maintained totals: one unlabelled gauge each.
fn register_totals(r: &Registry, f: &Figures, uptime: u64, health: &Health) -> Result<()> {
    let (db, nats) = (health.database_connected, health.nats_connected);
    let kudos = f.total("total_kudos_plusplus") + f.total("total_kudos_phrases");
    gauge(r, "userstats_uptime_seconds", "Seconds since the metrics function started", uptime as i64)?;
    gauge(
        r,
        "userstats_service_status",
        "1 when healthy (as /health and system.health), else 0",
        health.healthy() as i64,
    )?;
    gauge(r, "userstats_database_connected", "1 when the database answers", db as i64)?;
    gauge(r, "userstats_nats_connected", "1 when connected to NATS", nats as i64)?;
    gauge(r, "userstats_total_users_tracked", "Users ever seen", f.total("total_users"))?;
    gauge(r, "userstats_total_messages", "Chat messages counted", f.total("total_messages"))?;
    gauge(r, "userstats_total_pms", "Private messages counted", f.total("total_pms"))?;
    gauge(r, "userstats_total_kudos", "Kudos given (++ and phrases)", kudos)?;
    gauge(r, "userstats_total_kudos_plusplus", "Kudos given with ++", f.total("total_kudos_plusplus"))?;
    gauge(r, "userstats_total_kudos_phrases", "Kudos given with a trigger phrase", f.total("total_kudos_phrases"))?;
    gauge(r, "userstats_total_emote_usage", "Emote uses counted", f.total("total_emotes"))?;
    gauge(r, "userstats_total_media_changes", "Media changes logged", f.total("total_media_changes"))?;
    gauge(r, "userstats_active_sessions", "Open presence sessions (users present)", f.active_sessions)?;
    Ok(())
}

/// Per channel (label `channel`): present, chatting, messages.
fn register_channels(r: &Registry, f: &Figures) -> Result<()> {
    let present = gauge_vec(r, "userstats_channel_present_users", "Users present in a channel", &["channel"])?;
    let chatting = gauge_vec(r, "userstats_channel_chat_users", "Users present and not AFK", &["channel"])?;
    let messages = gauge_vec(r, "userstats_channel_messages", "Messages counted in a channel", &["channel"])?;
    for c in &f.channels {
        present.with_label_values(&[c.channel.as_str()]).set(c.present);
        chatting.with_label_values(&[c.channel.as_str()]).set(c.chatting);
        messages.with_label_values(&[c.channel.as_str()]).set(c.messages);
    }
    Ok(())
}

/// What the fleet's `$SRV.STATS` and the stream say: replicas, per-endpoint requests,
/// errors and time, ingest lag, and bootstrap-kv's drift from the bridge's KV.
fn register_fleet(r: &Registry, fleet: &Fleet) -> Result<()> {
    let replicas = gauge_vec(r, "userstats_function_replicas", "Running instances of a function", &["function"])?;
    for (function, n) in &fleet.replicas {
        replicas.with_label_values(&[function.as_str()]).set(*n as i64);
    }
    let labels = ["function", "endpoint"];
    let requests = gauge_vec(r, "userstats_endpoint_requests", "Requests answered (running replicas)", &labels)?;
    let errors = gauge_vec(r, "userstats_endpoint_errors", "Requests answered with an error", &labels)?;
    let seconds =
        GaugeVec::new(Opts::new("userstats_endpoint_processing_seconds", "Average processing time"), &labels)?;
    r.register(Box::new(seconds.clone()))?;
    for ((function, endpoint), (n, e, avg)) in &fleet.endpoints {
        let l = [function.as_str(), endpoint.as_str()];
        requests.with_label_values(&l).set(*n as i64);
        errors.with_label_values(&l).set(*e as i64);
        seconds.with_label_values(&l).set(*avg);
    }
    let lag = gauge_vec(r, "userstats_ingest_lag", "Events waiting in the stream for a function", &["function"])?;
    for (function, n) in &fleet.lag {
        lag.with_label_values(&[function.as_str()]).set(*n as i64);
    }

    let drift = gauge_vec(
        r,
        "userstats_bootstrap_drift",
        "Differences between the database and the bridge's KV now (kind: users_missing, users_extra, emotes)",
        &["channel", "kind"],
    )?;
    for ((channel, kind), n) in &fleet.drift {
        drift.with_label_values(&[channel.as_str(), kind.as_str()]).set(*n);
    }
    Ok(())
}

/// The ingest functions' counters (applied, duplicates, rejected by reason), registered
/// after they are filled: a counter only goes up, so it is set once with `inc_by`.
fn register_counters(r: &Registry, f: &Figures) -> Result<()> {
    let applied = IntCounterVec::new(Opts::new("userstats_ingest_events_total", "Events applied"), &["function"])?;
    let rejected = IntCounterVec::new(
        Opts::new("userstats_ingest_rejected_total", "Malformed events rejected"),
        &["function", "reason"],
    )?;
    let duplicates = IntCounterVec::new(
        Opts::new("userstats_ingest_duplicates_total", "Events seen again and skipped"),
        &["function"],
    )?;
    for (function, name, value) in &f.counters {
        let v = (*value).max(0) as u64;
        match name.as_str() {
            "events_applied" => applied.with_label_values(&[function.as_str()]).inc_by(v),
            "duplicates" => duplicates.with_label_values(&[function.as_str()]).inc_by(v),
            n if n.starts_with("rejected_") => rejected.with_label_values(&[function.as_str(), &n[9..]]).inc_by(v),
            _ => {}
        }
    }
    for c in [applied, rejected, duplicates] {
        r.register(Box::new(c))?;
    }
    Ok(())
}

/// Serves `/metrics` and `/health` from the shared snapshot on its own thread (tiny_http
/// is blocking). Fails at once, with the port in the message, when the port is taken.
pub fn serve(port: u16, shared: Shared) -> Result<std::thread::JoinHandle<()>> {
    let server = tiny_http::Server::http(("0.0.0.0", port))
        .map_err(|e| anyhow!("cannot listen on port {port} ({e}): set metrics.port to a free port"))?;
    tracing::info!("serving http://0.0.0.0:{port}/metrics and /health");
    Ok(std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let snapshot = shared.read().map(|s| s.clone()).unwrap_or_default();
            let (status, body, content_type) = match request.url().split('?').next().unwrap_or("") {
                "/metrics" => (200, snapshot.text, prometheus::TEXT_FORMAT),
                "/health" => {
                    (if snapshot.healthy { 200 } else { 503 }, snapshot.health.to_string(), "application/json")
                }
                _ => (404, "not found: try /metrics or /health\n".to_string(), "text/plain"),
            };
            let mut response = tiny_http::Response::from_string(body).with_status_code(status);
            if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes()) {
                response = response.with_header(h);
            }
            let _ = request.respond(response);
        }
    }))
}

/// The whole function: serve HTTP, refresh the snapshot every second until shutdown.
pub async fn run(mut ctx: crate::harness::Context) -> Result<()> {
    let started = Instant::now();
    // Listen and register first (start-up time), then fill the first snapshot.
    let shared: Shared = Arc::default();
    serve(ctx.config.metrics.port, shared.clone())?;
    let service = crate::harness::service::register(&ctx.client, ctx.function, ctx.stats.clone()).await?;
    let first = collect(&ctx.store, &ctx.client, started).await;
    if let Ok(mut s) = shared.write() {
        *s = first;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let snapshot = collect(&ctx.store, &ctx.client, started).await;
                if let Ok(mut s) = shared.write() {
                    *s = snapshot;
                }
            }
            _ = ctx.shutdown.wait() => break,
        }
    }
    let _ = service.stop().await;
    ctx.lifecycle.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A query function's error answers and routed requests, which the micro framework
    /// does not count, are added per command from its `$SRV.STATS` data.
    #[test]
    fn query_errors_and_routed_requests_count_per_command() {
        let data = json!({"routed_by_command": {"user.stats": 4, "user.search": 9},
            "errors_by_command": {"user.stats": 2}});
        let endpoint = |name: &str| json!({"name": name, "num_requests": 10, "num_errors": 1, "average_processing_time": 0, "data": data});
        let replies =
            [json!({"name": "userstats-query-user", "endpoints": [endpoint("user.stats"), endpoint("status")]})];
        let fleet = Fleet::from_stats(&replies);
        let get = |e: &str| fleet.endpoints.get(&("query-user".to_string(), e.to_string())).map(|s| (s.0, s.1));
        assert_eq!(get("user.stats"), Some((14, 3)));
        assert_eq!(get("status"), Some((10, 1)), "nothing of another command's");
    }

    /// bootstrap-kv's current drift reaches `/metrics` from its `$SRV.STATS` data.
    #[test]
    fn drift_gauges_of_bootstrap_kv_are_rendered() {
        let data = json!({"lag": 0, "gauges": {"drift_emotes": {"Chan": 2}, "drift_users_extra": {"Chan": 0}}});
        let replies = [
            json!({"name": "userstats-bootstrap-kv", "endpoints": [{"name": "status", "num_requests": 1, "num_errors": 0,
                "average_processing_time": 1000, "data": data}]}),
            json!({"name": "userstats-bootstrap-kv", "endpoints": [{"name": "status", "data": {"gauges": {"drift_emotes": {"Chan": 1}}}}]}),
        ];
        let fleet = Fleet::from_stats(&replies);
        assert_eq!(fleet.drift.get(&("Chan".to_string(), "emotes".to_string())), Some(&2));
        let text = render(&Figures::default(), &fleet, 1, &Health::default()).unwrap();
        assert!(text.contains(r#"userstats_bootstrap_drift{channel="Chan",kind="emotes"} 2"#), "{text}");
        assert!(text.contains(r#"userstats_bootstrap_drift{channel="Chan",kind="users_extra"} 0"#), "{text}");
    }
}
