//! Read queries. Each runs as one short statement (an implicit read transaction) whose rows
//! are consumed at once, so readers never hold up the writers.

use super::{Counts, Store};
use anyhow::Result;
use libsql::params::IntoParams;

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub display: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub pms: i64,
}

/// Votes for one media item in a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteRow {
    pub media_type: String,
    pub media_id: String,
    pub upvotes: i64,
    pub downvotes: i64,
}

impl Store {
    async fn all<T>(
        &self,
        sql: &str,
        params: impl IntoParams,
        mut f: impl FnMut(&libsql::Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut rows = self.conn().query(sql, params).await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push(f(&row)?);
        }
        Ok(out)
    }

    /// A domain-wide total (`total_messages`...), 0 when never counted.
    pub async fn total(&self, domain: &str, name: &str) -> Result<i64> {
        let v = self
            .all("SELECT value FROM totals WHERE domain = ?1 AND name = ?2", [domain, name], |r| Ok(r.get::<i64>(0)?))
            .await?;
        Ok(v.into_iter().next().unwrap_or(0))
    }

    /// A function's durable work counter (`events_applied`, `rejected_invalid_json`...).
    pub async fn counter(&self, function: &str, name: &str) -> Result<i64> {
        let v = self
            .all("SELECT value FROM counters WHERE function = ?1 AND name = ?2", [function, name], |r| {
                Ok(r.get::<i64>(0)?)
            })
            .await?;
        Ok(v.into_iter().next().unwrap_or(0))
    }

    /// All durable counters of a function, by name.
    pub async fn counters(&self, function: &str) -> Result<Vec<(String, i64)>> {
        self.all("SELECT name, value FROM counters WHERE function = ?1 ORDER BY name", [function], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .await
    }

    pub async fn user(&self, domain: &str, name: &str) -> Result<Option<UserRow>> {
        let v = self
            .all(
                "SELECT display, first_seen_ms, last_seen_ms, pms FROM users WHERE domain = ?1 AND name_key = ?2",
                [domain, &name.to_lowercase()],
                |r| {
                    Ok(UserRow {
                        display: r.get(0)?,
                        first_seen_ms: r.get(1)?,
                        last_seen_ms: r.get(2)?,
                        pms: r.get(3)?,
                    })
                },
            )
            .await?;
        Ok(v.into_iter().next())
    }

    /// A user's counters in a channel (`""` = the whole domain).
    pub async fn user_counts(&self, domain: &str, channel: &str, name: &str) -> Result<Counts> {
        let v = self
            .all(
                "SELECT messages, kudos_plusplus, kudos_phrases, emotes FROM user_counts \
                 WHERE domain = ?1 AND channel = ?2 AND name_key = ?3",
                [domain, channel, &name.to_lowercase()],
                |r| {
                    Ok(Counts {
                        messages: r.get(0)?,
                        kudos_plusplus: r.get(1)?,
                        kudos_phrases: r.get(2)?,
                        emotes: r.get(3)?,
                    })
                },
            )
            .await?;
        Ok(v.into_iter().next().unwrap_or_default())
    }

    /// (phrase, count) a user received kudos with, in a channel (`""` = domain), count desc.
    pub async fn phrase_kudos(&self, domain: &str, channel: &str, name: &str) -> Result<Vec<(String, i64)>> {
        self.all(
            "SELECT phrase, count FROM phrase_counts WHERE domain = ?1 AND channel = ?2 AND name_key = ?3 ORDER BY count DESC, phrase",
            [domain, channel, &name.to_lowercase()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .await
    }

    /// (emote, count) used by a user in a channel (`""` = domain), count desc.
    pub async fn user_emotes(&self, domain: &str, channel: &str, name: &str) -> Result<Vec<(String, i64)>> {
        self.all(
            "SELECT emote, count FROM emote_counts WHERE domain = ?1 AND channel = ?2 AND name_key = ?3 ORDER BY count DESC, emote",
            [domain, channel, &name.to_lowercase()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .await
    }

    /// Emote leaderboard of a channel (`""` = domain).
    pub async fn emote_leaderboard(&self, domain: &str, channel: &str, limit: i64) -> Result<Vec<(String, i64)>> {
        self.all(
            "SELECT emote, count FROM emote_totals WHERE domain = ?1 AND channel = ?2 ORDER BY count DESC, emote LIMIT ?3",
            (domain, channel, limit),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .await
    }

    /// Kudos leaderboard (++ and phrases together) as (display name, count).
    pub async fn kudos_leaderboard(&self, domain: &str, channel: &str, limit: i64) -> Result<Vec<(String, i64)>> {
        self.all(
            "SELECT COALESCE(u.display, c.name_key), c.kudos_total FROM user_counts c \
             LEFT JOIN users u ON u.domain = c.domain AND u.name_key = c.name_key \
             WHERE c.domain = ?1 AND c.channel = ?2 AND c.kudos_total > 0 \
             ORDER BY c.kudos_total DESC, c.name_key LIMIT ?3",
            (domain, channel, limit),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .await
    }

    /// Message leaderboard as (display name, count).
    pub async fn message_leaderboard(&self, domain: &str, channel: &str, limit: i64) -> Result<Vec<(String, i64)>> {
        self.all(
            "SELECT COALESCE(u.display, c.name_key), c.messages FROM user_counts c \
             LEFT JOIN users u ON u.domain = c.domain AND u.name_key = c.name_key \
             WHERE c.domain = ?1 AND c.channel = ?2 AND c.messages > 0 \
             ORDER BY c.messages DESC, c.name_key LIMIT ?3",
            (domain, channel, limit),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .await
    }

    /// Votes per media item of a channel.
    pub async fn movie_votes(&self, domain: &str, channel: &str) -> Result<Vec<VoteRow>> {
        self.all(
            "SELECT media_type, media_id, SUM(vote > 0), SUM(vote < 0) FROM movie_votes \
             WHERE domain = ?1 AND channel = ?2 GROUP BY media_type, media_id ORDER BY media_type, media_id",
            [domain, channel],
            |r| Ok(VoteRow { media_type: r.get(0)?, media_id: r.get(1)?, upvotes: r.get(2)?, downvotes: r.get(3)? }),
        )
        .await
    }

    /// Messages per hour of a channel as (hour start ms, messages, kudos), oldest first.
    pub async fn hourly(&self, domain: &str, channel: &str, from_ms: i64, to_ms: i64) -> Result<Vec<(i64, i64, i64)>> {
        self.all(
            "SELECT hour_ms, messages, kudos FROM hourly WHERE domain = ?1 AND channel = ?2 AND hour_ms >= ?3 AND hour_ms < ?4 ORDER BY hour_ms",
            (domain, channel, from_ms, to_ms),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .await
    }
}
