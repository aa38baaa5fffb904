//! `channel.*` and `stats.global`: one channel's top chatters, population (live "current"
//! plus the stored snapshots), media log, watermarks and movie votes.

use super::{counted, Ctx, DAY_MS};
use crate::api::{ApiError, Params, SnapshotRow, WatermarkRow};
use crate::store::Store;
use crate::wire::format_timestamp;
use serde_json::{json, Value};

const HOUR_MS: i64 = 3_600_000;

/// (domain, resolved required channel) of a request.
async fn target(ctx: &Ctx, store: &Store, p: &Params) -> Result<(String, String), ApiError> {
    let domain = ctx.domain(p)?;
    let channel = ctx.required_channel(store, &domain, p).await?;
    Ok((domain, channel))
}

fn snap(s: &SnapshotRow) -> Value {
    json!({
        "timestamp": format_timestamp(s.at_ms),
        "connected_count": s.connected_count,
        "chat_count": s.chat_count,
        "usercount": s.usercount,
    })
}

fn mark(w: Option<WatermarkRow>) -> Value {
    w.map(|w| json!({"timestamp": format_timestamp(w.at_ms), "total_users": w.total_users, "chat_users": w.chat_users}))
        .unwrap_or(Value::Null)
}

/// `{current, history}`: current = the channel as it is now (present users, not AFK,
/// latest usercount), null when nobody was ever seen there; history = snapshots of the last
/// `hours`, newest first.
pub async fn population_of(store: &Store, domain: &str, channel: &str, hours: i64) -> Result<(Value, Value), ApiError> {
    let now = crate::harness::now_ms();
    let (connected, chat, usercount) = store.live_population(domain, channel).await?;
    let history = store.snapshots(domain, channel, now - hours * HOUR_MS, 10_000).await?;
    let current = if connected == 0 && usercount.is_none() && history.is_empty() {
        Value::Null
    } else {
        snap(&SnapshotRow { at_ms: now, connected_count: connected, chat_count: chat, usercount })
    };
    Ok((current, Value::Array(history.iter().map(snap).collect())))
}

/// WM over the last `days` (all days when `None`).
pub async fn watermarks_of(store: &Store, domain: &str, channel: &str, days: Option<i64>) -> Result<Value, ApiError> {
    let from = days.map(|d| crate::harness::now_ms() - d * DAY_MS).unwrap_or(i64::MIN);
    let (high, low) = store.watermark_extremes(domain, channel, from).await?;
    Ok(json!({"high": mark(high), "low": mark(low)}))
}

pub async fn media_of(store: &Store, domain: &str, channel: &str, limit: i64) -> Result<Value, ApiError> {
    let rows = store.media_history(domain, channel, limit).await?;
    Ok(Value::Array(
        rows.into_iter()
            .map(|(at, t, id, title)| {
                json!({"timestamp": format_timestamp(at), "media_title": title, "media_type": t, "media_id": id})
            })
            .collect(),
    ))
}

/// Every voted media item, score desc (then total votes desc, title).
pub async fn votes_of(store: &Store, domain: &str, channel: &str) -> Result<Vec<Value>, ApiError> {
    let mut rows = store.titled_votes(domain, channel).await?;
    rows.sort_by(|a, b| {
        (b.upvotes - b.downvotes)
            .cmp(&(a.upvotes - a.downvotes))
            .then((b.upvotes + b.downvotes).cmp(&(a.upvotes + a.downvotes)))
            .then(a.title.cmp(&b.title))
            .then(a.media_id.cmp(&b.media_id))
    });
    Ok(rows
        .into_iter()
        .map(|v| {
            json!({
                "media_title": v.title.unwrap_or_else(|| "Unknown".into()),
                "media_type": v.media_type,
                "media_id": v.media_id,
                "upvotes": v.upvotes,
                "downvotes": v.downvotes,
                "total_votes": v.upvotes + v.downvotes,
                "score": v.upvotes - v.downvotes,
                "last_vote": format_timestamp(v.last_vote_ms),
            })
        })
        .collect())
}

pub async fn top_users(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let limit = p.limit(10)?;
    let store = ctx.store().await;
    let (domain, channel) = target(ctx, &store, p).await?;
    let top = store.message_leaderboard(&domain, &channel, limit).await?;
    Ok(json!({"channel": channel, "top_users": counted(top, "username")}))
}

pub async fn population(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let hours = p.hours(24)?;
    let store = ctx.store().await;
    let (domain, channel) = target(ctx, &store, p).await?;
    let (current, history) = population_of(&store, &domain, &channel, hours).await?;
    Ok(json!({"channel": channel, "current": current, "history": history}))
}

pub async fn media_history(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let limit = p.limit(50)?;
    let store = ctx.store().await;
    let (domain, channel) = target(ctx, &store, p).await?;
    Ok(json!({"channel": channel, "history": media_of(&store, &domain, &channel, limit).await?}))
}

pub async fn watermarks(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let days = p.int("days")?.map(|d| d.clamp(1, 3650));
    let store = ctx.store().await;
    let (domain, channel) = target(ctx, &store, p).await?;
    watermarks_of(&store, &domain, &channel, days).await
}

pub async fn movie_votes(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let title = p.string("media_title")?;
    let store = ctx.store().await;
    let (domain, channel) = target(ctx, &store, p).await?;
    let votes = votes_of(&store, &domain, &channel).await?;
    Ok(match title {
        None => Value::Array(votes),
        Some(t) => votes
            .into_iter()
            .find(|v| v["media_title"].as_str().is_some_and(|vt| vt.eq_ignore_ascii_case(&t)))
            .unwrap_or(Value::Null),
    })
}

pub async fn global(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let store = ctx.store().await;
    let (domain, channel) = target(ctx, &store, p).await?;
    let top = store.message_leaderboard(&domain, &channel, 10).await?;
    let (current, history) = population_of(&store, &domain, &channel, 24).await?;
    Ok(json!({
        "channel": channel,
        "domain": domain,
        "top_users": counted(top, "username"),
        "watermarks": watermarks_of(&store, &domain, &channel, None).await?,
        "population": {"current": current, "history": history},
    }))
}
