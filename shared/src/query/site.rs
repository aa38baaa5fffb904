//! The commands the stats site (the `web` function) reads, open to every client like the
//! others: `channel.list`, `channel.summary`, `channel.present`, `channel.chatters`,
//! `channel.hours`, `channel.emotes`, `timeseries.daily` (query-leaderboard) and
//! `user.hours` (query-user).
//! Hours of day are UTC. Each answer comes from maintained aggregates (hourly buckets,
//! per-user counters, open sessions), never from a scan of messages.

use super::{user, Ctx, DAY_MS};
use crate::api::{ApiError, Params};
use crate::harness::now_ms;
use crate::store::Store;
use crate::wire::format_timestamp;
use serde_json::{json, Value};

/// (domain, resolved channel) of a request naming a channel.
async fn target(ctx: &Ctx, store: &Store, p: &Params) -> Result<(String, String), ApiError> {
    let domain = ctx.domain(p)?;
    let channel = ctx.required_channel(store, &domain, p).await?;
    Ok((domain, channel))
}

fn hours_json(hours: [i64; 24]) -> Value {
    Value::Array(hours.iter().enumerate().map(|(h, n)| json!({"hour": h, "messages": n})).collect())
}

/// The start of the UTC day containing `ms`.
fn day_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(DAY_MS)
}

/// `channel.list`: every channel of the domain with its live figures.
pub async fn list(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let domain = ctx.domain(p)?;
    let store = ctx.store().await;
    let mut out = Vec::new();
    for (name, first) in store.channels(&domain).await? {
        let (present, chatting, _) = store.live_population(&domain, &name).await?;
        out.push(
            json!({"channel": name, "first_seen": format_timestamp(first), "present": present, "chatting": chatting}),
        );
    }
    Ok(json!({"domain": domain, "channels": out}))
}

/// `channel.summary`: the big numbers of a channel, what plays now and how many are here.
pub async fn summary(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let store = ctx.store().await;
    let (domain, ch) = target(ctx, &store, p).await?;
    let s = store.channel_summary(&domain, &ch).await?;
    let (present, chatting, usercount) = store.live_population(&domain, &ch).await?;
    let now = now_ms();
    let today = day_start(now);
    let week: i64 = store.daily(&domain, &ch, today - 6 * DAY_MS).await?.iter().map(|d| d.1).sum();
    let today_n: i64 = store.daily(&domain, &ch, today).await?.iter().map(|d| d.1).sum();
    let playing = store.media_history(&domain, &ch, 1).await?.into_iter().next().map(|(at, t, id, title)| {
        json!({"media_title": title, "media_type": t, "media_id": id, "since": format_timestamp(at)})
    });
    let top = store.message_leaderboard(&domain, &ch, 1).await?.into_iter().next();
    Ok(json!({
        "channel": ch,
        "known": s.first_seen_ms.is_some(),
        "first_seen": s.first_seen_ms.map(format_timestamp),
        "messages": s.messages,
        "messages_today": today_n,
        "messages_7d": week,
        "users_seen": s.users_seen,
        "kudos": s.kudos,
        "emote_uses": s.emote_uses,
        "media_played": s.media_played,
        "present": present,
        "chatting": chatting,
        "usercount": usercount,
        "now_playing": playing,
        "top_talker": top.map(|(u, n)| json!({"username": u, "count": n})),
    }))
}

/// `channel.present`: who is in the channel now (not AFK first), at most `limit` (100).
pub async fn present(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let limit = p.limit(100)?;
    let store = ctx.store().await;
    let (domain, ch) = target(ctx, &store, p).await?;
    let (present, chatting, _) = store.live_population(&domain, &ch).await?;
    let users: Vec<Value> = store
        .present_users(&domain, &ch, limit)
        .await?
        .into_iter()
        .map(|(u, afk, joined)| json!({"username": u, "afk": afk, "since": format_timestamp(joined)}))
        .collect();
    Ok(json!({"channel": ch, "present": present, "chatting": chatting, "users": users}))
}

/// `channel.chatters`: the most active chatters (limit 20) with rank, share of the
/// channel's messages, kudos received, time present (live session included) and last seen.
pub async fn chatters(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let limit = p.limit(20)?;
    let store = ctx.store().await;
    let (domain, ch) = target(ctx, &store, p).await?;
    let total = store.channel_messages(&domain, &ch).await?;
    let now = now_ms();
    let rows: Vec<Value> = store
        .chatters(&domain, &ch, limit)
        .await?
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let a = user::act(ctx, &c.activity, now);
            let share = if total > 0 { (c.messages as f64 * 1000.0 / total as f64).round() / 10.0 } else { 0.0 };
            json!({
                "rank": i + 1,
                "username": c.display,
                "messages": c.messages,
                "share_percent": share,
                "kudos": c.kudos,
                "total_time_seconds": a["total_time_seconds"],
                "not_afk_time_seconds": a["not_afk_time_seconds"],
                "present": c.activity.open.is_some(),
                "last_seen": c.last_seen_ms.map(format_timestamp),
            })
        })
        .collect();
    Ok(json!({"channel": ch, "total_messages": total, "chatters": rows}))
}

/// `channel.hours`: messages by hour of day (UTC) over the last `days` (default: every
/// retained hourly bucket).
pub async fn hours(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let days = p.int("days")?.map(|d| d.clamp(1, 3650));
    let store = ctx.store().await;
    let (domain, ch) = target(ctx, &store, p).await?;
    let from = days.map(|d| day_start(now_ms()) - (d - 1) * DAY_MS).unwrap_or(0);
    let h = store.channel_hours(&domain, &ch, from).await?;
    Ok(json!({"channel": ch, "timezone": "UTC", "days": days, "hours": hours_json(h)}))
}

/// `timeseries.daily`: messages and kudos per UTC day over the last `days` (30, 1..3650)
/// up to today, every day listed (zeros included), oldest first.
pub async fn daily(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let days = p.clamped("days", 30, 1, 3650)?;
    let store = ctx.store().await;
    let (domain, ch) = target(ctx, &store, p).await?;
    let first = day_start(now_ms()) - (days - 1) * DAY_MS;
    let rows = store.daily(&domain, &ch, first).await?;
    let data: Vec<Value> = (0..days)
        .map(|i| {
            let day = first + i * DAY_MS;
            let (m, k) = rows.iter().find(|r| r.0 == day).map(|r| (r.1, r.2)).unwrap_or((0, 0));
            let stamp = format_timestamp(day);
            json!({"day": stamp.get(..10).unwrap_or(&stamp), "messages": m, "kudos": k})
        })
        .collect();
    Ok(json!({"channel": ch, "timezone": "UTC", "data": data}))
}

/// `user.hours`: a user's messages by hour of day (UTC), in a channel or the whole domain.
pub async fn user_hours(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let store = ctx.store().await;
    let domain = ctx.domain(p)?;
    let username = p.required("username")?;
    let ch = ctx.optional_channel(&store, &domain, p).await?;
    let display = store.user(&domain, &username).await?.map(|u| u.display).unwrap_or(username.clone());
    let h = store.user_hours(&domain, ch.as_deref().unwrap_or(""), &username).await?;
    let mut data = json!({"username": display, "timezone": "UTC", "hours": hours_json(h)});
    if let Some(c) = ch {
        data["channel"] = json!(c);
    }
    Ok(data)
}

/// `channel.emotes`: every emote name of the channel the bridge listed with an image, with
/// the image URL as listed last (as given: clients decide which URLs they show).
pub async fn emotes(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let store = ctx.store().await;
    let (domain, ch) = target(ctx, &store, p).await?;
    let rows: Vec<Value> = store
        .emote_images(&domain, &ch)
        .await?
        .into_iter()
        .map(|(name, image)| json!({"emote": name, "image": image}))
        .collect();
    Ok(json!({"channel": ch, "emotes": rows}))
}
