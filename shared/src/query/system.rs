//! `system.*`: liveness, the fleet's health (every function found by a `$SRV.PING`
//! scatter) and the domain's totals.
//!
//! `commands_processed` is counted in process: the commands answered by the micro endpoints
//! of the replica that answers `system.stats` since it started (not durable, not fleet-wide).

use super::Ctx;
use crate::api::{ApiError, Params, SERVICE};
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering::Relaxed;

pub async fn ping(ctx: &Ctx) -> Result<Value, ApiError> {
    let host = crate::harness::service::hostname();
    Ok(json!({
        "pong": true,
        "service": SERVICE,
        "version": ctx.version,
        "uptime_seconds": ctx.uptime_seconds(),
        "timestamp": crate::wire::format_timestamp(crate::harness::now_ms()),
        "metrics_endpoint": format!("http://{host}:{}/metrics", ctx.config.metrics.port),
    }))
}

/// The same answer as the metrics function's `/health` (see [`crate::health`]).
pub async fn health(ctx: &Ctx) -> Result<Value, ApiError> {
    let database = ctx.store().await.ping().await;
    let replies = ctx.fleet.replies(&ctx.client).await;
    let health = crate::health::Health::from_replies(database, crate::health::nats_connected(&ctx.client), &replies);
    Ok(health.to_json(ctx.uptime_seconds()))
}

pub async fn stats(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let domain = ctx.domain(p)?;
    let store = ctx.store().await;
    let mut data = Map::new();
    for name in [
        "total_users",
        "total_messages",
        "total_pms",
        "total_kudos_plusplus",
        "total_kudos_phrases",
        "total_emotes",
        "total_media_changes",
    ] {
        data.insert(name.into(), json!(store.total(&domain, name).await?));
    }
    let kudos = data["total_kudos_plusplus"].as_i64().unwrap_or(0) + data["total_kudos_phrases"].as_i64().unwrap_or(0);
    data.insert("total_kudos".into(), json!(kudos));
    data.insert("events_processed".into(), json!(store.counter_sum("events_applied").await?));
    data.insert("commands_processed".into(), json!(ctx.stats.commands_processed.load(Relaxed)));
    data.insert("active_sessions".into(), json!(store.open_sessions(&domain).await?));
    Ok(Value::Object(data))
}
