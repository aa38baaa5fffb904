//! `timeseries.*`: a channel's hourly buckets between `start_time` and `end_time` (ISO-8601
//! or epoch seconds; default the last 24 hours up to now), oldest first. `avg_active_users`
//! is the mean present users of the hour's population snapshots, null without snapshots.

use super::Ctx;
use crate::api::{ApiError, HourRow, Params};
use crate::wire::format_hour;
use serde_json::{json, Value};

const HOUR_MS: i64 = 3_600_000;

async fn series(ctx: &Ctx, p: &Params) -> Result<(String, Vec<HourRow>), ApiError> {
    let end = p.time_ms("end_time")?.unwrap_or_else(crate::harness::now_ms);
    let start = p.time_ms("start_time")?.unwrap_or(end - 24 * HOUR_MS);
    let store = ctx.store().await;
    let domain = ctx.domain(p)?;
    let channel = ctx.required_channel(&store, &domain, p).await?;
    // Buckets whose hour overlaps [start, end].
    let from = start - start.rem_euclid(HOUR_MS);
    let rows = store.hourly_series(&domain, &channel, from, end.saturating_add(1)).await?;
    Ok((channel, rows))
}

pub async fn messages(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let (channel, rows) = series(ctx, p).await?;
    let data: Vec<Value> = rows
        .into_iter()
        .map(|(hour, messages, _, avg)| {
            let avg = avg.map(|a| (a * 100.0).round() / 100.0);
            json!({"hour": format_hour(hour), "messages": messages, "avg_active_users": avg})
        })
        .collect();
    Ok(json!({"channel": channel, "data": data}))
}

pub async fn kudos(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let (channel, rows) = series(ctx, p).await?;
    let data: Vec<Value> =
        rows.into_iter().map(|(hour, _, kudos, _)| json!({"hour": format_hour(hour), "kudos": kudos})).collect();
    Ok(json!({"channel": channel, "data": data}))
}
