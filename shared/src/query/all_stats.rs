//! `channel.all_stats`: everything a dashboard shows for one channel in one answer (what
//! `kryten userstats all` asks). Channel defaults to the first configured one (else the first
//! seen); the
//! leaderboards are the whole domain's. The spec's shape names `channel` twice (the name and
//! the channel's data): the answer's `channel` is the data object, with the name in
//! `channel.name`.

use super::{channel, counted, system, Ctx};
use crate::api::{ApiError, Params};
use serde_json::{json, Value};

pub async fn all_stats(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let limits = p.object("limits")?;
    let top_n = limits.clamped("top_users", 20, 1, 1000)?;
    let media_n = limits.clamped("media_history", 15, 1, 1000)?;
    let board_n = limits.clamped("leaderboards", 10, 1, 1000)?;
    let domain = ctx.domain(p)?;
    let health = system::health(ctx).await?;
    let stats = system::stats(ctx, p).await?;
    let store = ctx.store().await;
    let name = match p.string("channel")? {
        Some(c) => c,
        None => match ctx.config.channels.first() {
            Some(c) => c.channel.clone(),
            None => store.first_channel(&domain).await?.ok_or_else(|| ApiError::bad_request("channel required"))?,
        },
    };
    let ch = ctx.channel(&store, &domain, &name).await?;
    let (current, history) = channel::population_of(&store, &domain, &ch, 24).await?;
    Ok(json!({
        "domain": domain,
        "system": {"health": health, "stats": stats},
        "leaderboards": {
            "messages": counted(store.message_leaderboard(&domain, "", board_n).await?, "username"),
            "kudos": counted(store.kudos_leaderboard(&domain, "", board_n).await?, "username"),
            "emotes": counted(store.emote_leaderboard(&domain, "", board_n).await?, "emote"),
        },
        "channel": {
            "name": ch,
            "top_users": counted(store.message_leaderboard(&domain, &ch, top_n).await?, "username"),
            "population": {"current": current, "history_24h": history},
            "watermarks": channel::watermarks_of(&store, &domain, &ch, None).await?,
            "media_history": channel::media_of(&store, &domain, &ch, media_n).await?,
            "movie_votes": channel::votes_of(&store, &domain, &ch).await?,
        },
    }))
}
