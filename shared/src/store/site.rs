//! Read queries behind the stats site's commands (`channel.list|summary|present|chatters|
//! hours|emotes`, `timeseries.daily`, `user.hours`), and the writes they need: messages per
//! user and hour of day (`user_hours`, folded by ingest-chat like the other counters) and
//! each emote's image URL (`emote_images`, from ingest-media's emote events).
//! Every read walks an index range of one channel (or one user); none scans the messages.

use super::{ActivityRow, Session, Store, Tx};
use anyhow::Result;
use libsql::Value;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// A channel's "big numbers".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelSummaryRow {
    /// When the channel was first seen; `None`: the channel is unknown.
    pub first_seen_ms: Option<i64>,
    pub messages: i64,
    /// Distinct users who chatted, got kudos, used emotes or were present there.
    pub users_seen: i64,
    pub kudos: i64,
    pub emote_uses: i64,
    /// Media changes logged (within retention).
    pub media_played: i64,
}

/// One of a channel's most active chatters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatterRow {
    pub display: String,
    pub messages: i64,
    pub kudos: i64,
    pub last_seen_ms: Option<i64>,
    pub activity: ActivityRow,
}

/// (domain, channel, user, hour of day 0..23) → messages.
pub type HourCount<'a> = ((&'a str, &'a str, &'a str, i64), i64);

fn by_hour(rows: Vec<(i64, i64)>) -> [i64; 24] {
    let mut out = [0; 24];
    for (h, n) in rows {
        if let Some(slot) = out.get_mut(h.rem_euclid(24) as usize) {
            *slot += n;
        }
    }
    out
}

impl Store {
    /// The channels of a domain as (name, first seen), by name.
    pub async fn channels(&self, domain: &str) -> Result<Vec<(String, i64)>> {
        self.all("SELECT channel, first_seen_ms FROM channels WHERE domain = ?1 ORDER BY channel", [domain], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .await
    }

    pub async fn channel_summary(&self, domain: &str, channel: &str) -> Result<ChannelSummaryRow> {
        Ok(self
            .first(
                "SELECT (SELECT first_seen_ms FROM channels WHERE domain = ?1 AND channel = ?2), \
                 (SELECT COALESCE(SUM(value), 0) FROM totals WHERE domain = ?1 AND name = 'channel_messages:' || ?2), \
                 (SELECT COUNT(*) FROM (SELECT name_key FROM user_counts WHERE domain = ?1 AND channel = ?2 \
                   UNION SELECT name_key FROM activity WHERE domain = ?1 AND channel = ?2 \
                   UNION SELECT name_key FROM sessions WHERE domain = ?1 AND channel = ?2)), \
                 (SELECT COALESCE(SUM(kudos_total), 0) FROM user_counts WHERE domain = ?1 AND channel = ?2), \
                 (SELECT COALESCE(SUM(count), 0) FROM emote_totals WHERE domain = ?1 AND channel = ?2), \
                 (SELECT COUNT(*) FROM media_log WHERE domain = ?1 AND channel = ?2)",
                [domain, channel],
                |r| {
                    Ok(ChannelSummaryRow {
                        first_seen_ms: r.get(0)?,
                        messages: r.get(1)?,
                        users_seen: r.get(2)?,
                        kudos: r.get(3)?,
                        emote_uses: r.get(4)?,
                        media_played: r.get(5)?,
                    })
                },
            )
            .await?
            .unwrap_or_default())
    }

    /// Messages counted in a channel, all time (a maintained total: no scan).
    pub async fn channel_messages(&self, domain: &str, channel: &str) -> Result<i64> {
        self.number(
            "SELECT COALESCE(SUM(value), 0) FROM totals WHERE domain = ?1 AND name = 'channel_messages:' || ?2",
            [domain, channel],
        )
        .await
    }

    /// Users present in a channel now as (display name, afk, joined ms): not AFK first, then
    /// by name.
    pub async fn present_users(&self, domain: &str, channel: &str, limit: i64) -> Result<Vec<(String, bool, i64)>> {
        self.all(
            "SELECT COALESCE(u.display, s.name_key), s.afk, s.joined_ms FROM sessions s \
             LEFT JOIN users u ON u.domain = s.domain AND u.name_key = s.name_key \
             WHERE s.domain = ?1 AND s.channel = ?2 ORDER BY s.afk, s.name_key LIMIT ?3",
            (domain, channel, limit),
            |r| Ok((r.get(0)?, r.get::<i64>(1)? != 0, r.get(2)?)),
        )
        .await
    }

    /// The most active chatters of a channel (the order of `message_leaderboard`) with their
    /// kudos, last sight and time in the channel.
    pub async fn chatters(&self, domain: &str, channel: &str, limit: i64) -> Result<Vec<ChatterRow>> {
        self.all(
            "SELECT COALESCE(u.display, c.name_key), c.messages, c.kudos_total, u.last_seen_ms, \
             COALESCE(a.total_ms, 0), COALESCE(a.not_afk_ms, 0), \
             s.joined_ms, s.afk, s.afk_since_ms, s.afk_ms, s.last_event_ms FROM user_counts c \
             LEFT JOIN users u ON u.domain = c.domain AND u.name_key = c.name_key \
             LEFT JOIN activity a ON a.domain = c.domain AND a.channel = c.channel AND a.name_key = c.name_key \
             LEFT JOIN sessions s ON s.domain = c.domain AND s.channel = c.channel AND s.name_key = c.name_key \
             WHERE c.domain = ?1 AND c.channel = ?2 AND c.messages > 0 \
             ORDER BY c.messages DESC, c.name_key LIMIT ?3",
            (domain, channel, limit),
            |r| {
                let open = match r.get::<Option<i64>>(6)? {
                    Some(joined_ms) => Some(Session {
                        joined_ms,
                        afk: r.get::<i64>(7)? != 0,
                        afk_since_ms: r.get(8)?,
                        afk_ms: r.get(9)?,
                        last_event_ms: r.get(10)?,
                    }),
                    None => None,
                };
                Ok(ChatterRow {
                    display: r.get(0)?,
                    messages: r.get(1)?,
                    kudos: r.get(2)?,
                    last_seen_ms: r.get(3)?,
                    activity: ActivityRow {
                        channel: channel.to_string(),
                        closed_total_ms: r.get(4)?,
                        closed_not_afk_ms: r.get(5)?,
                        open,
                    },
                })
            },
        )
        .await
    }

    /// A channel's messages by hour of day (UTC) over its hourly buckets from `from_ms` on.
    pub async fn channel_hours(&self, domain: &str, channel: &str, from_ms: i64) -> Result<[i64; 24]> {
        let rows = self
            .all(
                "SELECT (hour_ms / ?4) % 24, SUM(messages) FROM hourly \
                 WHERE domain = ?1 AND channel = ?2 AND hour_ms >= ?3 GROUP BY 1",
                (domain, channel, from_ms, HOUR_MS),
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .await?;
        Ok(by_hour(rows))
    }

    /// A channel's (UTC day start ms, messages, kudos) from `from_ms` on, oldest first; days
    /// without a bucket are absent.
    pub async fn daily(&self, domain: &str, channel: &str, from_ms: i64) -> Result<Vec<(i64, i64, i64)>> {
        self.all(
            "SELECT hour_ms - (hour_ms % ?4), SUM(messages), SUM(kudos) FROM hourly \
             WHERE domain = ?1 AND channel = ?2 AND hour_ms >= ?3 GROUP BY 1 ORDER BY 1",
            (domain, channel, from_ms, DAY_MS),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .await
    }

    /// A user's messages by hour of day (UTC) in a channel (`""` = the whole domain).
    pub async fn user_hours(&self, domain: &str, channel: &str, name: &str) -> Result<[i64; 24]> {
        let rows = self
            .all(
                "SELECT hour, messages FROM user_hours WHERE domain = ?1 AND channel = ?2 AND name_key = ?3",
                [domain, channel, &name.to_lowercase()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .await?;
        Ok(by_hour(rows))
    }
}

impl Store {
    /// The image URL of every emote name of a channel the bridge listed with one, by name.
    pub async fn emote_images(&self, domain: &str, channel: &str) -> Result<Vec<(String, String)>> {
        self.all(
            "SELECT name, image FROM emote_images WHERE domain = ?1 AND channel = ?2 ORDER BY name",
            [domain, channel],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .await
    }
}

impl Tx {
    /// Records emotes' image URLs as listed at `at_ms` (an older listing never overwrites a
    /// newer one); empty URLs are skipped.
    pub async fn set_emote_images(
        &mut self,
        domain: &str,
        channel: &str,
        images: &[(&str, &str)],
        at_ms: i64,
    ) -> Result<()> {
        let rows = images
            .iter()
            .filter(|(_, image)| !image.is_empty())
            .map(|(name, image)| {
                vec![Value::from(domain), channel.into(), (*name).into(), (*image).into(), at_ms.into()]
            })
            .collect();
        self.insert_many(
            "emote_images(domain, channel, name, image, at_ms)",
            "ON CONFLICT(domain, channel, name) DO UPDATE SET image = excluded.image, at_ms = excluded.at_ms \
             WHERE excluded.at_ms >= emote_images.at_ms",
            rows,
        )
        .await
    }

    /// Adds messages per user and hour of day, in the channel and in the domain rollup.
    pub async fn add_user_hours(&mut self, counts: &[HourCount<'_>]) -> Result<()> {
        let rows = counts
            .iter()
            .flat_map(|((d, c, key, hour), n)| {
                [*c, ""].map(|ch| vec![Value::from(*d), ch.into(), (*key).into(), (*hour).into(), (*n).into()])
            })
            .collect();
        self.insert_many(
            "user_hours(domain, channel, name_key, hour, messages)",
            "ON CONFLICT(domain, channel, name_key, hour) DO UPDATE SET messages = messages + excluded.messages",
            rows,
        )
        .await
    }
}
