//! Read queries. Each runs as one short statement (an implicit read transaction) whose rows
//! are consumed at once, so readers never hold up the writers.

use super::{ActivityRow, Counts, HourRow, Session, SnapshotRow, Store, TitledVoteRow, Tx, WatermarkRow};
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

impl Tx {
    /// The first row of a cached query inside a transaction, if any (see [`Store::first`]).
    pub(super) async fn first<T>(
        &mut self,
        sql: &'static str,
        params: impl IntoParams,
        f: impl FnMut(&libsql::Row) -> Result<T>,
    ) -> Result<Option<T>> {
        Ok(self.rows(sql, params, f).await?.into_iter().next())
    }

    /// The integer a query's first row starts with; `None` without a row or when NULL.
    pub(super) async fn maybe_number(&mut self, sql: &'static str, params: impl IntoParams) -> Result<Option<i64>> {
        Ok(self.first(sql, params, |r| Ok(r.get::<Option<i64>>(0)?)).await?.flatten())
    }
}

impl Store {
    pub(super) async fn all<T>(
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

    /// The first row of a query, if any (for lookups by key and single-row aggregates).
    pub(super) async fn first<T>(
        &self,
        sql: &str,
        params: impl IntoParams,
        f: impl FnMut(&libsql::Row) -> Result<T>,
    ) -> Result<Option<T>> {
        Ok(self.all(sql, params, f).await?.into_iter().next())
    }

    /// The integer a query's first row starts with, 0 without a row (a count, or a total
    /// never counted).
    pub(super) async fn number(&self, sql: &str, params: impl IntoParams) -> Result<i64> {
        Ok(self.first(sql, params, |r| Ok(r.get::<i64>(0)?)).await?.unwrap_or(0))
    }

    /// A domain-wide total (`total_messages`...), 0 when never counted.
    pub async fn total(&self, domain: &str, name: &str) -> Result<i64> {
        self.number("SELECT value FROM totals WHERE domain = ?1 AND name = ?2", [domain, name]).await
    }

    /// A function's durable work counter (`events_applied`, `rejected_invalid_json`...).
    pub async fn counter(&self, function: &str, name: &str) -> Result<i64> {
        self.number("SELECT value FROM counters WHERE function = ?1 AND name = ?2", [function, name]).await
    }

    /// All durable counters of a function, by name.
    pub async fn counters(&self, function: &str) -> Result<Vec<(String, i64)>> {
        self.all("SELECT name, value FROM counters WHERE function = ?1 ORDER BY name", [function], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .await
    }

    pub async fn user(&self, domain: &str, name: &str) -> Result<Option<UserRow>> {
        self.first(
            "SELECT display, first_seen_ms, last_seen_ms, pms FROM users WHERE domain = ?1 AND name_key = ?2",
            [domain, &name.to_lowercase()],
            |r| Ok(UserRow { display: r.get(0)?, first_seen_ms: r.get(1)?, last_seen_ms: r.get(2)?, pms: r.get(3)? }),
        )
        .await
    }

    /// A user's counters in a channel (`""` = the whole domain).
    pub async fn user_counts(&self, domain: &str, channel: &str, name: &str) -> Result<Counts> {
        Ok(self
            .first(
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
            .await?
            .unwrap_or_default())
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
        self.ranked("kudos_total", domain, channel, limit).await
    }

    /// Message leaderboard as (display name, count).
    pub async fn message_leaderboard(&self, domain: &str, channel: &str, limit: i64) -> Result<Vec<(String, i64)>> {
        self.ranked("messages", domain, channel, limit).await
    }

    /// Users of a channel (`""` = domain) ranked by one `user_counts` column (an indexed one:
    /// the walk stops after `limit` rows).
    async fn ranked(
        &self,
        column: &'static str,
        domain: &str,
        channel: &str,
        limit: i64,
    ) -> Result<Vec<(String, i64)>> {
        let sql = format!(
            "SELECT COALESCE(u.display, c.name_key), c.{column} FROM user_counts c \
             LEFT JOIN users u ON u.domain = c.domain AND u.name_key = c.name_key \
             WHERE c.domain = ?1 AND c.channel = ?2 AND c.{column} > 0 \
             ORDER BY c.{column} DESC, c.name_key LIMIT ?3"
        );
        self.all(&sql, (domain, channel, limit), |r| Ok((r.get(0)?, r.get(1)?))).await
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

// Read queries of the query functions (`crate::query`). Per-user answers are primary-key
// lookups; leaderboards read the maintained aggregates.
impl Store {
    /// The stored name of a channel given its name or subject token in any case.
    pub async fn resolve_channel(&self, domain: &str, name: &str, token: &str) -> Result<Option<String>> {
        self.first(
            "SELECT channel FROM channels WHERE domain = ?1 AND (channel = ?2 OR token = ?3 \
                 OR lower(channel) = lower(?2)) ORDER BY channel = ?2 DESC LIMIT 1",
            [domain, name, token],
            |r| Ok(r.get::<String>(0)?),
        )
        .await
    }

    /// A user's message counts per channel (not the domain rollup), count desc.
    pub async fn user_channel_messages(&self, domain: &str, name: &str) -> Result<Vec<(String, i64)>> {
        self.all(
            "SELECT channel, messages FROM user_counts INDEXED BY user_counts_by_user \
             WHERE domain = ?1 AND name_key = ?2 AND channel <> '' \
             AND messages > 0 ORDER BY messages DESC, channel",
            [domain, &name.to_lowercase()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .await
    }

    /// A user's time per channel (`channel = None`: every channel with closed or open time).
    pub async fn user_activity(&self, domain: &str, channel: Option<&str>, name: &str) -> Result<Vec<ActivityRow>> {
        let key = name.to_lowercase();
        let (closed_sql, open_sql) = match channel {
            Some(_) => (
                "SELECT channel, total_ms, not_afk_ms FROM activity WHERE domain = ?1 AND name_key = ?2 AND channel = ?3",
                "SELECT channel, joined_ms, afk, afk_since_ms, afk_ms, last_event_ms FROM sessions \
                 WHERE domain = ?1 AND name_key = ?2 AND channel = ?3",
            ),
            None => (
                "SELECT channel, total_ms, not_afk_ms FROM activity INDEXED BY activity_by_user \
                 WHERE domain = ?1 AND name_key = ?2 AND ?3 = ''",
                "SELECT channel, joined_ms, afk, afk_since_ms, afk_ms, last_event_ms FROM sessions \
                 INDEXED BY sessions_by_user WHERE domain = ?1 AND name_key = ?2 AND ?3 = ''",
            ),
        };
        let ch = channel.unwrap_or("");
        let closed: Vec<(String, i64, i64)> =
            self.all(closed_sql, [domain, &key, ch], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).await?;
        let open: Vec<(String, Session)> = self
            .all(open_sql, [domain, &key, ch], |r| {
                Ok((
                    r.get(0)?,
                    Session {
                        joined_ms: r.get(1)?,
                        afk: r.get::<i64>(2)? != 0,
                        afk_since_ms: r.get(3)?,
                        afk_ms: r.get(4)?,
                        last_event_ms: r.get(5)?,
                    },
                ))
            })
            .await?;
        let mut out: Vec<ActivityRow> = closed
            .into_iter()
            .map(|(channel, t, n)| ActivityRow { channel, closed_total_ms: t, closed_not_afk_ms: n, open: None })
            .collect();
        for (channel, s) in open {
            match out.iter_mut().find(|a| a.channel == channel) {
                Some(a) => a.open = Some(s),
                None => out.push(ActivityRow { channel, closed_total_ms: 0, closed_not_afk_ms: 0, open: Some(s) }),
            }
        }
        out.sort_by(|a, b| a.channel.cmp(&b.channel));
        Ok(out)
    }

    /// The aliases of a user (lowercase), sorted.
    pub async fn user_aliases(&self, name: &str) -> Result<Vec<String>> {
        self.all("SELECT alias FROM aliases WHERE name_key = ?1 ORDER BY alias", [name.to_lowercase()], |r| {
            Ok(r.get(0)?)
        })
        .await
    }

    /// Every alias as (display name of its user, alias), by user then alias.
    pub async fn all_aliases(&self) -> Result<Vec<(String, String)>> {
        self.all("SELECT display, alias FROM aliases ORDER BY name_key, alias", (), |r| Ok((r.get(0)?, r.get(1)?)))
            .await
    }

    /// The display name of the user an alias belongs to.
    pub async fn alias_owner(&self, alias: &str) -> Result<Option<String>> {
        self.first("SELECT display FROM aliases WHERE alias = ?1", [alias.to_lowercase()], |r| Ok(r.get::<String>(0)?))
            .await
    }

    /// The trigger phrases, sorted.
    pub async fn kudos_phrases(&self) -> Result<Vec<String>> {
        self.all("SELECT phrase FROM kudos_phrases ORDER BY phrase", (), |r| Ok(r.get(0)?)).await
    }

    /// Population snapshots of a channel from `from_ms` on, newest first.
    pub async fn snapshots(&self, domain: &str, channel: &str, from_ms: i64, limit: i64) -> Result<Vec<SnapshotRow>> {
        self.all(
            "SELECT slot_ms, connected_count, chat_count, usercount FROM population \
             WHERE domain = ?1 AND channel = ?2 AND slot_ms >= ?3 ORDER BY slot_ms DESC LIMIT ?4",
            (domain, channel, from_ms, limit),
            |r| {
                Ok(SnapshotRow {
                    at_ms: r.get(0)?,
                    connected_count: r.get(1)?,
                    chat_count: r.get(2)?,
                    usercount: r.get(3)?,
                })
            },
        )
        .await
    }

    /// (present users, present and not AFK, latest usercount) of a channel now.
    pub async fn live_population(&self, domain: &str, channel: &str) -> Result<(i64, i64, Option<i64>)> {
        Ok(self
            .first(
                "SELECT (SELECT COUNT(*) FROM sessions WHERE domain = ?1 AND channel = ?2), \
                 (SELECT COUNT(*) FROM sessions WHERE domain = ?1 AND channel = ?2 AND afk = 0), \
                 (SELECT usercount FROM channel_state WHERE domain = ?1 AND channel = ?2)",
                [domain, channel],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .await?
            .unwrap_or((0, 0, None)))
    }

    /// The highest `high` and lowest `low` watermark of a channel from `from_ms` on.
    pub async fn watermark_extremes(
        &self,
        domain: &str,
        channel: &str,
        from_ms: i64,
    ) -> Result<(Option<WatermarkRow>, Option<WatermarkRow>)> {
        let row =
            |r: &libsql::Row| Ok(WatermarkRow { at_ms: r.get(0)?, total_users: r.get(1)?, chat_users: r.get(2)? });
        let extreme = |sql| self.first(sql, (domain, channel, from_ms), row);
        let high = extreme(
            "SELECT at_ms, total_users, chat_users FROM watermarks WHERE domain = ?1 AND channel = ?2 \
             AND kind = 'high' AND at_ms >= ?3 ORDER BY total_users DESC, at_ms DESC LIMIT 1",
        );
        let low = extreme(
            "SELECT at_ms, total_users, chat_users FROM watermarks WHERE domain = ?1 AND channel = ?2 \
             AND kind = 'low' AND at_ms >= ?3 ORDER BY total_users ASC, at_ms DESC LIMIT 1",
        );
        Ok((high.await?, low.await?))
    }

    /// A channel's media log, newest first, as (at_ms, type, id, cleaned title).
    pub async fn media_history(
        &self,
        domain: &str,
        channel: &str,
        limit: i64,
    ) -> Result<Vec<(i64, String, String, String)>> {
        self.all(
            "SELECT at_ms, media_type, media_id, title FROM media_log WHERE domain = ?1 AND channel = ?2 \
             ORDER BY at_ms DESC, id DESC LIMIT ?3",
            (domain, channel, limit),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .await
    }

    /// Votes per media item of a channel with the latest logged title of each.
    pub async fn titled_votes(&self, domain: &str, channel: &str) -> Result<Vec<TitledVoteRow>> {
        self.all(
            "SELECT v.media_type, v.media_id, \
             (SELECT m.title FROM media_log m WHERE m.domain = v.domain AND m.channel = v.channel \
              AND m.media_type = v.media_type AND m.media_id = v.media_id ORDER BY m.at_ms DESC, m.id DESC LIMIT 1), \
             SUM(v.vote > 0), SUM(v.vote < 0), MAX(v.at_ms) FROM movie_votes v \
             WHERE v.domain = ?1 AND v.channel = ?2 GROUP BY v.media_type, v.media_id",
            [domain, channel],
            |r| {
                Ok(TitledVoteRow {
                    media_type: r.get(0)?,
                    media_id: r.get(1)?,
                    title: r.get(2)?,
                    upvotes: r.get(3)?,
                    downvotes: r.get(4)?,
                    last_vote_ms: r.get(5)?,
                })
            },
        )
        .await
    }

    /// Hourly buckets of a channel in [from, to) with the average present users of the
    /// hour's population snapshots, oldest first.
    pub async fn hourly_series(&self, domain: &str, channel: &str, from_ms: i64, to_ms: i64) -> Result<Vec<HourRow>> {
        self.all(
            "SELECT h.hour_ms, h.messages, h.kudos, (SELECT AVG(p.connected_count) FROM population p \
             WHERE p.domain = h.domain AND p.channel = h.channel AND p.slot_ms >= h.hour_ms \
             AND p.slot_ms < h.hour_ms + 3600000) FROM hourly h \
             WHERE h.domain = ?1 AND h.channel = ?2 AND h.hour_ms >= ?3 AND h.hour_ms < ?4 ORDER BY h.hour_ms",
            (domain, channel, from_ms, to_ms),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .await
    }

    /// Sum of one durable counter over every function (`events_applied`...).
    pub async fn counter_sum(&self, name: &str) -> Result<i64> {
        self.number("SELECT COALESCE(SUM(value), 0) FROM counters WHERE name = ?1", [name]).await
    }

    /// Open sessions over every channel of a domain.
    pub async fn open_sessions(&self, domain: &str) -> Result<i64> {
        self.number("SELECT COUNT(*) FROM sessions WHERE domain = ?1", [domain]).await
    }

    /// True when the database answers a trivial statement.
    pub async fn ping(&self) -> bool {
        self.all("SELECT 1", (), |r| Ok(r.get::<i64>(0)?)).await.is_ok()
    }
}

impl Store {
    /// The first channel seen in a domain (by name), for commands whose channel defaults.
    pub async fn first_channel(&self, domain: &str) -> Result<Option<String>> {
        self.first(
            "SELECT channel FROM channels WHERE domain = ?1 ORDER BY first_seen_ms, channel LIMIT 1",
            [domain],
            |r| Ok(r.get::<String>(0)?),
        )
        .await
    }
}
