//! `user.*`: one user's counts, kudos, emotes, aliases and time in channel. Usernames match
//! case-insensitively; an unknown user gets zeros and empty lists. With a channel, kudos and
//! emotes are that channel's; without, the whole domain's.

use super::{counted, seconds, Ctx};
use crate::api::{ActivityRow, ApiError, Params};
use crate::store::Store;
use serde_json::{json, Value};
use tokio::sync::MutexGuard;

/// The request of every `user.*` command: domain, username, optional resolved channel.
struct Who {
    domain: String,
    key: String,
    channel: Option<String>,
}

async fn who(ctx: &Ctx, store: &Store, p: &Params) -> Result<Who, ApiError> {
    let domain = ctx.domain(p)?;
    let username = p.required("username")?;
    let channel = ctx.optional_channel(store, &domain, p).await?;
    Ok(Who { domain, key: username, channel })
}

/// The stored display name, else the name as asked.
async fn display(store: &Store, w: &Who) -> Result<(String, Option<crate::store::UserRow>), ApiError> {
    let user = store.user(&w.domain, &w.key).await?;
    Ok((user.as_ref().map(|u| u.display.clone()).unwrap_or_else(|| w.key.clone()), user))
}

/// ACT of one channel: closed time plus the live part of an open session (now − joined,
/// clamped to the longest believable session), whole seconds.
pub fn act(ctx: &Ctx, a: &ActivityRow, now_ms: i64) -> Value {
    let (mut total, mut not_afk) = (a.closed_total_ms, a.closed_not_afk_ms);
    if let Some(s) = &a.open {
        let max = ctx.max_session_ms();
        let (live, live_not_afk) = s.time_until(now_ms, |d| d.clamp(0, max));
        total = total.saturating_add(live);
        not_afk = not_afk.saturating_add(live_not_afk);
    }
    json!({
        "total_time_seconds": seconds(total),
        "not_afk_time_seconds": seconds(not_afk),
        "session_open": a.open.is_some(),
    })
}

async fn activity_of(ctx: &Ctx, store: &Store, w: &Who) -> Result<Value, ApiError> {
    let now = crate::harness::now_ms();
    let rows = store.user_activity(&w.domain, w.channel.as_deref(), &w.key).await?;
    Ok(match &w.channel {
        Some(_) => rows.first().map(|a| act(ctx, a, now)).unwrap_or(Value::Null),
        None => Value::Array(
            rows.iter()
                .map(|a| {
                    let mut v = act(ctx, a, now);
                    v["channel"] = json!(a.channel);
                    v
                })
                .collect(),
        ),
    })
}

fn ts(ms: Option<i64>) -> Value {
    ms.map(|m| json!(crate::wire::format_timestamp(m))).unwrap_or(Value::Null)
}

/// What `user.stats` and `user.profile` both show, read once.
struct Facts {
    username: String,
    user: Option<crate::store::UserRow>,
    /// Messages in the asked channel (0 without one).
    messages: i64,
    kudos_plusplus: i64,
    all_messages: Value,
    phrases: Value,
    emotes: Value,
    activity: Value,
}

async fn facts(ctx: &Ctx, store: &Store, w: &Who) -> Result<Facts, ApiError> {
    let (username, user) = display(store, w).await?;
    let scope = w.channel.as_deref().unwrap_or("");
    let counts = store.user_counts(&w.domain, scope, &w.key).await?;
    Ok(Facts {
        username,
        user,
        messages: if w.channel.is_some() { counts.messages } else { 0 },
        kudos_plusplus: counts.kudos_plusplus,
        all_messages: counted(store.user_channel_messages(&w.domain, &w.key).await?, "channel"),
        phrases: counted(store.phrase_kudos(&w.domain, scope, &w.key).await?, "phrase"),
        emotes: counted(store.user_emotes(&w.domain, scope, &w.key).await?, "emote"),
        activity: activity_of(ctx, store, w).await?,
    })
}

impl Facts {
    /// The fields `user.stats` and `user.profile` both answer, plus a command's own `extra`.
    fn answer(&self, extra: Value) -> Value {
        let mut data = json!({
            "username": self.username,
            "messages": self.messages,
            "all_messages": self.all_messages,
            "pms": self.user.as_ref().map(|u| u.pms).unwrap_or(0),
            "emotes": self.emotes,
        });
        if let (Some(data), Value::Object(extra)) = (data.as_object_mut(), extra) {
            data.extend(extra);
        }
        data
    }
}

/// The asked user and their facts; the store stays held for what a command reads besides.
async fn asked<'a>(ctx: &'a Ctx, p: &Params) -> Result<(MutexGuard<'a, Store>, Who, Facts), ApiError> {
    let store = ctx.store().await;
    let w = who(ctx, &store, p).await?;
    let f = facts(ctx, &store, &w).await?;
    Ok((store, w, f))
}

pub async fn stats(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let (store, w, f) = asked(ctx, p).await?;
    let mut data = f.answer(json!({
        "kudos_plusplus": f.kudos_plusplus,
        "kudos_phrases": f.phrases,
        "aliases": store.user_aliases(&w.key).await?,
        "first_seen": ts(f.user.as_ref().map(|u| u.first_seen_ms)),
        "last_seen": ts(f.user.as_ref().map(|u| u.last_seen_ms)),
    }));
    match &w.channel {
        Some(c) => {
            data["channel"] = json!(c);
            data["activity"] = f.activity;
        }
        None => data["all_activity"] = f.activity,
    }
    Ok(data)
}

pub async fn profile(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let (_store, w, f) = asked(ctx, p).await?;
    let mut data = f.answer(json!({
        "kudos": {"plusplus": f.kudos_plusplus, "phrases": f.phrases},
        "activity": f.activity,
    }));
    if let Some(c) = &w.channel {
        data["channel"] = json!(c);
    }
    Ok(data)
}

pub async fn messages(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let store = ctx.store().await;
    let w = who(ctx, &store, p).await?;
    let (username, _) = display(&store, &w).await?;
    Ok(match &w.channel {
        Some(c) => {
            let n = store.user_counts(&w.domain, c, &w.key).await?.messages;
            json!({"username": username, "channel": c, "message_count": n})
        }
        None => json!({
            "username": username,
            "channels": counted(store.user_channel_messages(&w.domain, &w.key).await?, "channel"),
        }),
    })
}

pub async fn activity(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let store = ctx.store().await;
    let w = who(ctx, &store, p).await?;
    let (username, _) = display(&store, &w).await?;
    let activity = activity_of(ctx, &store, &w).await?;
    Ok(match &w.channel {
        Some(c) => json!({"username": username, "channel": c, "activity": activity}),
        None => json!({"username": username, "all_activity": activity}),
    })
}

pub async fn kudos(ctx: &Ctx, p: &Params) -> Result<Value, ApiError> {
    let store = ctx.store().await;
    let w = who(ctx, &store, p).await?;
    let (username, _) = display(&store, &w).await?;
    let scope = w.channel.as_deref().unwrap_or("");
    let counts = store.user_counts(&w.domain, scope, &w.key).await?;
    let mut data = json!({
        "username": username,
        "plusplus": counts.kudos_plusplus,
        "phrases": counted(store.phrase_kudos(&w.domain, scope, &w.key).await?, "phrase"),
    });
    if let Some(c) = &w.channel {
        data["channel"] = json!(c);
    }
    Ok(data)
}
