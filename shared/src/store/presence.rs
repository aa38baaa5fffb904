//! Typed operations of [`Tx`] for `ingest-presence`: open sessions, closed activity, the
//! latest usercount, population snapshots with their daily watermarks, and the pruning of
//! append-only rows past retention.

use super::Session;
use super::Tx;
use anyhow::Result;

fn session_from_row(r: &libsql::Row, offset: i32) -> Result<Session> {
    Ok(Session {
        joined_ms: r.get(offset)?,
        afk: r.get::<i64>(offset + 1)? != 0,
        afk_since_ms: r.get(offset + 2)?,
        afk_ms: r.get(offset + 3)?,
        last_event_ms: r.get(offset + 4)?,
    })
}

impl Tx {
    /// A user's open session in a channel, if any.
    pub async fn session(&mut self, domain: &str, channel: &str, key: &str) -> Result<Option<Session>> {
        self.first(
            "SELECT joined_ms, afk, afk_since_ms, afk_ms, last_event_ms FROM sessions \
                 WHERE domain = ?1 AND channel = ?2 AND name_key = ?3",
            [domain, channel, key],
            |r| session_from_row(r, 0),
        )
        .await
    }

    /// Every user of a domain with their last seen time, by user key.
    pub async fn users_last_seen(&mut self, domain: &str) -> Result<Vec<(String, i64)>> {
        self.rows("SELECT name_key, last_seen_ms FROM users WHERE domain = ?1", [domain], |r| {
            Ok((r.get::<String>(0)?, r.get::<i64>(1)?))
        })
        .await
    }

    /// Every open session of a channel, by user key.
    pub async fn sessions(&mut self, domain: &str, channel: &str) -> Result<Vec<(String, Session)>> {
        self.rows(
            "SELECT name_key, joined_ms, afk, afk_since_ms, afk_ms, last_event_ms FROM sessions \
             WHERE domain = ?1 AND channel = ?2",
            [domain, channel],
            |r| Ok((r.get::<String>(0)?, session_from_row(r, 1)?)),
        )
        .await
    }

    /// Writes (creates or replaces) a user's open session.
    pub async fn put_session(&mut self, domain: &str, channel: &str, key: &str, s: &Session) -> Result<()> {
        self.exec(
            "INSERT INTO sessions(domain, channel, name_key, joined_ms, afk, afk_since_ms, afk_ms, last_event_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(domain, channel, name_key) DO UPDATE SET \
             joined_ms = excluded.joined_ms, afk = excluded.afk, afk_since_ms = excluded.afk_since_ms, \
             afk_ms = excluded.afk_ms, last_event_ms = excluded.last_event_ms",
            libsql::params![domain, channel, key, s.joined_ms, s.afk as i64, s.afk_since_ms, s.afk_ms, s.last_event_ms],
        )
        .await?;
        Ok(())
    }

    /// Removes a user's open session (closed: its time went to `activity`).
    pub async fn delete_session(&mut self, domain: &str, channel: &str, key: &str) -> Result<()> {
        self.exec("DELETE FROM sessions WHERE domain = ?1 AND channel = ?2 AND name_key = ?3", [domain, channel, key])
            .await?;
        Ok(())
    }

    /// Adds the time of closed sessions to a user's activity in a channel.
    pub async fn add_activity(
        &mut self,
        domain: &str,
        channel: &str,
        key: &str,
        total_ms: i64,
        not_afk_ms: i64,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO activity(domain, channel, name_key, total_ms, not_afk_ms) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT(domain, channel, name_key) DO UPDATE SET total_ms = total_ms + excluded.total_ms, \
             not_afk_ms = not_afk_ms + excluded.not_afk_ms",
            (domain, channel, key, total_ms, not_afk_ms),
        )
        .await?;
        Ok(())
    }

    /// A user's closed time in a channel as (total ms, not-AFK ms), if any session closed.
    pub async fn activity(&mut self, domain: &str, channel: &str, key: &str) -> Result<Option<(i64, i64)>> {
        self.first(
            "SELECT total_ms, not_afk_ms FROM activity WHERE domain = ?1 AND channel = ?2 AND name_key = ?3",
            [domain, channel, key],
            |r| Ok((r.get::<i64>(0)?, r.get::<i64>(1)?)),
        )
        .await
    }

    /// Moves a known user's last seen (and display name) without creating the user.
    /// Returns true when the user exists.
    pub async fn touch_known_user(&mut self, domain: &str, key: &str, display: &str, at_ms: i64) -> Result<bool> {
        let n = self
            .exec(
                "UPDATE users SET display = CASE WHEN ?4 >= last_seen_ms THEN ?3 ELSE display END, \
                 first_seen_ms = MIN(first_seen_ms, ?4), last_seen_ms = MAX(last_seen_ms, ?4) \
                 WHERE domain = ?1 AND name_key = ?2",
                (domain, key, display, at_ms),
            )
            .await?;
        Ok(n > 0)
    }

    /// Records CyTube's usercount of a channel unless a later one is already recorded.
    pub async fn set_usercount(&mut self, domain: &str, channel: &str, usercount: i64, at_ms: i64) -> Result<()> {
        self.exec(
            "INSERT INTO channel_state(domain, channel, usercount, usercount_ms) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(domain, channel) DO UPDATE SET usercount = excluded.usercount, \
             usercount_ms = excluded.usercount_ms \
             WHERE usercount_ms IS NULL OR excluded.usercount_ms >= usercount_ms",
            (domain, channel, usercount, at_ms),
        )
        .await?;
        Ok(())
    }

    /// The latest usercount of a channel, if ever received.
    pub async fn usercount(&mut self, domain: &str, channel: &str) -> Result<Option<i64>> {
        self.maybe_number("SELECT usercount FROM channel_state WHERE domain = ?1 AND channel = ?2", [domain, channel])
            .await
    }

    /// Every channel ever seen, as (domain, channel).
    pub async fn known_channels(&mut self) -> Result<Vec<(String, String)>> {
        self.rows("SELECT domain, channel FROM channels ORDER BY domain, channel", (), |r| Ok((r.get(0)?, r.get(1)?)))
            .await
    }

    /// (present users, present and not AFK users) of a channel now.
    pub async fn presence_counts(&mut self, domain: &str, channel: &str) -> Result<(i64, i64)> {
        Ok(self
            .first(
                "SELECT COUNT(*), COALESCE(SUM(afk = 0), 0) FROM sessions WHERE domain = ?1 AND channel = ?2",
                [domain, channel],
                |r| Ok((r.get::<i64>(0)?, r.get::<i64>(1)?)),
            )
            .await?
            .unwrap_or((0, 0)))
    }

    /// Records the population snapshot of one interval slot unless that slot already has one
    /// (another replica's). Returns true when this call wrote it.
    pub async fn insert_population(
        &mut self,
        domain: &str,
        channel: &str,
        slot_ms: i64,
        connected: i64,
        chat: i64,
        usercount: Option<i64>,
    ) -> Result<bool> {
        let n = self
            .exec(
                "INSERT OR IGNORE INTO population(domain, channel, slot_ms, connected_count, chat_count, usercount) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                libsql::params![domain, channel, slot_ms, connected, chat, usercount],
            )
            .await?;
        Ok(n > 0)
    }

    /// The population snapshots of a channel from `from_ms` on, oldest first, as
    /// (slot, connected, chat, usercount).
    pub async fn population(
        &mut self,
        domain: &str,
        channel: &str,
        from_ms: i64,
    ) -> Result<Vec<(i64, i64, i64, Option<i64>)>> {
        self.rows(
            "SELECT slot_ms, connected_count, chat_count, usercount FROM population \
             WHERE domain = ?1 AND channel = ?2 AND slot_ms >= ?3 ORDER BY slot_ms",
            (domain, channel, from_ms),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .await
    }

    /// Widens a channel's daily high and low watermarks (by present users) with a snapshot:
    /// one row per day and kind, updated in place.
    pub async fn update_watermarks(
        &mut self,
        domain: &str,
        channel: &str,
        day: &str,
        at_ms: i64,
        connected: i64,
        chat: i64,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO watermarks(domain, channel, day, kind, at_ms, total_users, chat_users) \
             VALUES (?1, ?2, ?3, 'high', ?4, ?5, ?6) ON CONFLICT(domain, channel, day, kind) DO UPDATE SET \
             at_ms = excluded.at_ms, total_users = excluded.total_users, chat_users = excluded.chat_users \
             WHERE excluded.total_users > total_users",
            libsql::params![domain, channel, day, at_ms, connected, chat],
        )
        .await?;
        self.exec(
            "INSERT INTO watermarks(domain, channel, day, kind, at_ms, total_users, chat_users) \
             VALUES (?1, ?2, ?3, 'low', ?4, ?5, ?6) ON CONFLICT(domain, channel, day, kind) DO UPDATE SET \
             at_ms = excluded.at_ms, total_users = excluded.total_users, chat_users = excluded.chat_users \
             WHERE excluded.total_users < total_users",
            libsql::params![domain, channel, day, at_ms, connected, chat],
        )
        .await?;
        Ok(())
    }

    /// A channel's watermarks of one day as (kind, at_ms, total users, chat users).
    pub async fn watermarks(&mut self, domain: &str, channel: &str, day: &str) -> Result<Vec<(String, i64, i64, i64)>> {
        self.rows(
            "SELECT kind, at_ms, total_users, chat_users FROM watermarks \
             WHERE domain = ?1 AND channel = ?2 AND day = ?3 ORDER BY kind",
            [domain, channel, day],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .await
    }

    /// Deletes up to `limit` append-only rows older than `cutoff_ms` from the tables of
    /// [`PRUNED`], in that order, and says how many went. One bounded pass, so that pruning
    /// never holds the writer for long.
    pub async fn prune(&mut self, cutoff_ms: i64, limit: i64) -> Result<i64> {
        let mut left = limit;
        for sql in PRUNED {
            if left <= 0 {
                break;
            }
            left -= self.exec(sql, (cutoff_ms, left)).await? as i64;
        }
        Ok(limit - left)
    }
}

/// What [`Tx::prune`] deletes (`?1` the cutoff, `?2` how many at most), in this order:
/// population snapshots, the media log (always keeping each channel's newest row:
/// what is playing now, and the base of the duplicate rule), hourly buckets.
const PRUNED: [&str; 3] = [
    "DELETE FROM population WHERE (domain, channel, slot_ms) IN \
     (SELECT domain, channel, slot_ms FROM population WHERE slot_ms < ?1 LIMIT ?2)",
    "DELETE FROM media_log WHERE id IN (SELECT m.id FROM media_log m WHERE m.at_ms < ?1 \
     AND EXISTS (SELECT 1 FROM media_log n WHERE n.domain = m.domain AND n.channel = m.channel \
     AND (n.at_ms > m.at_ms OR (n.at_ms = m.at_ms AND n.id > m.id))) LIMIT ?2)",
    "DELETE FROM hourly WHERE (domain, channel, hour_ms) IN \
     (SELECT domain, channel, hour_ms FROM hourly WHERE hour_ms < ?1 LIMIT ?2)",
];
