//! The numbers of each page, gathered from the query API (several commands asked at once)
//! into one JSON document: what `?format=json` answers and what the HTML is rendered
//! from, so the two always carry the same numbers. `None` means "no such page" (404).

use crate::source::{Fail, Source};
use serde_json::{json, Map, Value};
use shared::wire::{format_timestamp, parse_timestamp_ms};

const HOUR_MS: i64 = 3_600_000;
/// The population charts: 24 h in 15-minute slots, 7 days in hours.
pub const DAY_SLOTS: (i64, usize) = (15 * 60_000, 96);
pub const WEEK_SLOTS: (i64, usize) = (HOUR_MS, 168);
/// Rows of the chatters table and of the boards.
pub const CHATTERS: i64 = 25;
pub const BOARD: i64 = 10;
pub const RECENT_MEDIA: i64 = 15;
pub const PRESENT_SHOWN: i64 = 100;

fn now() -> i64 {
    shared::harness::now_ms()
}

/// The channels of the home page: the configured ones (of the default domain), else every
/// channel the store has seen.
async fn channel_names(src: &Source, config: &shared::config::Config) -> Result<Vec<String>, Fail> {
    let domain = config.default_domain();
    let configured: Vec<String> =
        config.channels.iter().filter(|c| c.domain.eq_ignore_ascii_case(&domain)).map(|c| c.channel.clone()).collect();
    if !configured.is_empty() {
        return Ok(configured);
    }
    let list = src.ask("channel.list", json!({})).await?;
    Ok(list["channels"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["channel"].as_str().map(String::from))
        .collect())
}

/// `/`: every followed channel with its live figures.
pub async fn home(src: &Source, config: &shared::config::Config) -> Result<Value, Fail> {
    let names = channel_names(src, config).await?;
    let asks = names.iter().map(|n| src.ask("channel.summary", json!({"channel": n})));
    let mut channels = Vec::new();
    for summary in futures::future::join_all(asks).await {
        channels.push(summary?);
    }
    Ok(json!({"domain": config.default_domain(), "generated_at": format_timestamp(now()), "channels": channels}))
}

/// The channel's summary when the store knows it (the name resolved to its stored form).
async fn known_channel(src: &Source, name: &str) -> Result<Option<Value>, Fail> {
    match src.ask("channel.summary", json!({"channel": name})).await {
        Ok(s) if s["known"] == json!(true) => Ok(Some(s)),
        Ok(_) | Err(Fail::Refused(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Averages population snapshots (`history` of `channel.population`) into `count` slots of
/// `slot_ms` ending with the slot that holds `now_ms`: `[{slot, present, chatting}]`,
/// null where a slot has no snapshot.
pub fn population_slots(history: &Value, now_ms: i64, (slot_ms, count): (i64, usize)) -> Value {
    let last = now_ms - now_ms.rem_euclid(slot_ms);
    let first = last - slot_ms * (count as i64 - 1);
    let mut sums = vec![(0i64, 0i64, 0i64); count];
    for s in history.as_array().into_iter().flatten() {
        let Some(at) = s["timestamp"].as_str().and_then(parse_timestamp_ms) else { continue };
        if at < first || at >= last + slot_ms {
            continue;
        }
        let slot = &mut sums[((at - first) / slot_ms) as usize];
        slot.0 += 1;
        slot.1 += s["connected_count"].as_i64().unwrap_or(0);
        slot.2 += s["chat_count"].as_i64().unwrap_or(0);
    }
    let avg =
        |sum: i64, n: i64| if n == 0 { Value::Null } else { json!(((sum as f64 / n as f64) * 10.0).round() / 10.0) };
    Value::Array(
        sums.iter()
            .enumerate()
            .map(|(i, (n, p, c))| {
                json!({"slot": format_timestamp(first + slot_ms * i as i64), "present": avg(*p, *n), "chatting": avg(*c, *n)})
            })
            .collect(),
    )
}

/// Recent media (newest first) with the votes each item got.
fn media_with_votes(history: &Value, votes: &Value) -> Value {
    let rows = history.as_array().into_iter().flatten().map(|m| {
        let vote = votes
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["media_type"] == m["media_type"] && v["media_id"] == m["media_id"]);
        let n = |k: &str| vote.map(|v| v[k].clone()).unwrap_or(json!(0));
        json!({
            "timestamp": m["timestamp"], "media_title": m["media_title"], "media_type": m["media_type"],
            "media_id": m["media_id"], "upvotes": n("upvotes"), "downvotes": n("downvotes"), "score": n("score"),
        })
    });
    Value::Array(rows.collect())
}

/// `{emote: url}` of the channel's emotes with an image fit for a page, when `wanted`
/// (`web.show_emote_images`); else null.
async fn emote_images(src: &Source, channel: &str, wanted: bool) -> Result<Value, Fail> {
    if !wanted {
        return Ok(Value::Null);
    }
    let data = src.ask("channel.emotes", json!({"channel": channel})).await?;
    let safe = data["emotes"].as_array().into_iter().flatten().filter_map(|e| {
        let url = e["image"].as_str().and_then(crate::html::safe_image)?;
        Some((e["emote"].as_str()?.to_string(), json!(url)))
    });
    Ok(Value::Object(safe.collect()))
}

/// `/c/{channel}`; `images`: with the emotes' images (`web.show_emote_images`).
pub async fn channel(src: &Source, name: &str, images: bool) -> Result<Option<Value>, Fail> {
    let Some(summary) = known_channel(src, name).await? else { return Ok(None) };
    let ch = summary["channel"].as_str().unwrap_or(name).to_string();
    let c = || json!({"channel": ch});
    let with = |k: &str, v: Value| {
        let mut p = c();
        p[k] = v;
        p
    };
    let (present, hours, daily, population, chatters, kudos, emotes, media, votes, images) = futures::join!(
        src.ask("channel.present", with("limit", json!(PRESENT_SHOWN))),
        src.ask("channel.hours", c()),
        src.ask("timeseries.daily", with("days", json!(30))),
        src.ask("channel.population", with("hours", json!(168))),
        src.ask("channel.chatters", with("limit", json!(CHATTERS))),
        src.ask("leaderboard.kudos", with("limit", json!(BOARD))),
        src.ask("leaderboard.emotes", with("limit", json!(BOARD))),
        src.ask("channel.media_history", with("limit", json!(RECENT_MEDIA))),
        src.ask("channel.movie_votes", c()),
        emote_images(src, &ch, images),
    );
    let (population, votes, chatters) = (population?, votes?, chatters?);
    let now = now();
    let best: Vec<Value> = votes
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["score"].as_i64() > Some(0))
        .take(BOARD as usize)
        .cloned()
        .collect();
    let mut m = Map::new();
    m.insert("channel".into(), json!(ch));
    m.insert("generated_at".into(), json!(format_timestamp(now)));
    m.insert("timezone".into(), json!("UTC"));
    m.insert("summary".into(), summary);
    m.insert("present".into(), present?);
    m.insert("hours".into(), hours?["hours"].clone());
    m.insert("daily".into(), daily?["data"].clone());
    m.insert(
        "population".into(),
        json!({
            "current": population["current"],
            "day": population_slots(&population["history"], now, DAY_SLOTS),
            "week": population_slots(&population["history"], now, WEEK_SLOTS),
        }),
    );
    m.insert("total_messages".into(), chatters["total_messages"].clone());
    m.insert("chatters".into(), chatters["chatters"].clone());
    m.insert("kudos".into(), kudos?["leaderboard"].clone());
    m.insert("emotes".into(), emotes?["leaderboard"].clone());
    m.insert("emote_images".into(), images?);
    m.insert("recent_media".into(), media_with_votes(&media?["history"], &votes));
    m.insert("best_rated".into(), Value::Array(best));
    Ok(Some(Value::Object(m)))
}

/// `/c/{channel}/u/{user}`: the user's card; `None` for an unknown channel or user.
pub async fn user(src: &Source, channel: &str, username: &str, images: bool) -> Result<Option<Value>, Fail> {
    let Some(summary) = known_channel(src, channel).await? else { return Ok(None) };
    let ch = summary["channel"].as_str().unwrap_or(channel).to_string();
    let p = json!({"username": username, "channel": ch});
    let (stats, hours, activity, images) = futures::join!(
        src.ask("user.stats", p.clone()),
        src.ask("user.hours", p),
        src.ask("user.activity", json!({"username": username})),
        emote_images(src, &ch, images),
    );
    let stats = match stats {
        Ok(s) => s,
        Err(Fail::Refused(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    if stats["first_seen"].is_null() {
        return Ok(None);
    }
    let kudos_phrases: i64 =
        stats["kudos_phrases"].as_array().into_iter().flatten().filter_map(|p| p["count"].as_i64()).sum();
    Ok(Some(json!({
        "channel": ch,
        "username": stats["username"],
        "generated_at": format_timestamp(now()),
        "timezone": "UTC",
        "messages": stats["messages"],
        "all_messages": stats["all_messages"],
        "kudos_plusplus": stats["kudos_plusplus"],
        "kudos_phrases": stats["kudos_phrases"],
        "kudos_total": stats["kudos_plusplus"].as_i64().unwrap_or(0) + kudos_phrases,
        "emotes": stats["emotes"],
        "aliases": stats["aliases"],
        "first_seen": stats["first_seen"],
        "last_seen": stats["last_seen"],
        "activity": stats["activity"],
        "all_activity": activity?["all_activity"].clone(),
        "hours": hours?["hours"].clone(),
        "emote_images": images?,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_average_into_their_slots() {
        let t0 = 1_763_888_400_000; // 2025-11-23 09:00 UTC
        let snap =
            |ms: i64, p: i64, c: i64| json!({"timestamp": format_timestamp(ms), "connected_count": p, "chat_count": c});
        let history = json!([snap(t0 + 5 * 60_000, 4, 2), snap(t0 + 10 * 60_000, 6, 3), snap(t0 - 3 * HOUR_MS, 1, 1)]);
        let slots = population_slots(&history, t0 + 20 * 60_000, (HOUR_MS, 3));
        let slots = slots.as_array().unwrap();
        assert_eq!(slots.len(), 3);
        assert_eq!(slots[2]["slot"], json!(format_timestamp(t0)));
        assert_eq!(slots[2]["present"], json!(5.0));
        assert_eq!(slots[2]["chatting"], json!(2.5));
        assert_eq!(slots[0]["present"], Value::Null, "the 3-hour-old snapshot is outside the window");
    }

    #[test]
    fn media_get_their_votes() {
        let history = json!([{"timestamp": "t", "media_title": "A", "media_type": "yt", "media_id": "1"},
                             {"timestamp": "u", "media_title": "B", "media_type": "yt", "media_id": "2"}]);
        let votes = json!([{"media_type": "yt", "media_id": "2", "upvotes": 3, "downvotes": 1, "score": 2}]);
        let m = media_with_votes(&history, &votes);
        assert_eq!(m[0]["score"], json!(0));
        assert_eq!(m[1]["upvotes"], json!(3));
        assert_eq!(m[1]["score"], json!(2));
    }
}
