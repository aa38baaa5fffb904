//! `leaderboard.*`: from the maintained aggregates (`user_counts`, whose channel `''` rows
//! are the whole domain, and `emote_totals`), never by scanning messages.

use super::{counted, Ctx};
use crate::api::{ApiError, Params};
use serde_json::{json, Value};

/// (domain, resolved channel or None, limit).
async fn scope(ctx: &Ctx, p: &Params) -> Result<(String, Option<String>, i64), ApiError> {
    let limit = p.limit(10)?;
    let domain = ctx.domain(p)?;
    let channel = ctx.optional_channel(&*ctx.store().await, &domain, p).await?;
    Ok((domain, channel, limit))
}

pub async fn messages(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let (domain, channel, limit) = scope(ctx, p).await?;
    let rows = ctx.store().await.message_leaderboard(&domain, channel.as_deref().unwrap_or(""), limit).await?;
    let mut data = json!({"leaderboard": counted(rows, "username")});
    if let Some(c) = channel {
        data["channel"] = json!(c);
    }
    Ok(data)
}

pub async fn kudos(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let (domain, channel, limit) = scope(ctx, p).await?;
    let rows = ctx.store().await.kudos_leaderboard(&domain, channel.as_deref().unwrap_or(""), limit).await?;
    Ok(json!({"leaderboard": counted(rows, "username")}))
}

pub async fn emotes(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let (domain, channel, limit) = scope(ctx, p).await?;
    let rows = ctx.store().await.emote_leaderboard(&domain, channel.as_deref().unwrap_or(""), limit).await?;
    Ok(json!({"leaderboard": counted(rows, "emote")}))
}
