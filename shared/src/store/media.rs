//! Typed operations of [`Tx`] for `ingest-media`: the media log, emote lists with their
//! history, the playlist and what is playing.

use super::Tx;
use crate::wire::Media;
use anyhow::Result;
use std::collections::HashMap;

impl Tx {
    /// Appends an entry to a channel's media log.
    pub async fn append_media(
        &mut self,
        domain: &str,
        channel: &str,
        at_ms: i64,
        media_type: &str,
        media_id: &str,
        title: &str,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO media_log(domain, channel, at_ms, media_type, media_id, title) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            (domain, channel, at_ms, media_type, media_id, title),
        )
        .await?;
        Ok(())
    }

    /// The first media-log entry of a channel after `at_ms`: (row id, type, id).
    pub async fn media_after(
        &mut self,
        domain: &str,
        channel: &str,
        at_ms: i64,
    ) -> Result<Option<(i64, String, String)>> {
        self.first(
            "SELECT id, media_type, media_id FROM media_log WHERE domain = ?1 AND channel = ?2 AND at_ms > ?3 \
                 ORDER BY at_ms, id LIMIT 1",
            (domain, channel, at_ms),
            |r| Ok((r.get::<i64>(0)?, r.get::<String>(1)?, r.get::<String>(2)?)),
        )
        .await
    }

    /// Moves a media-log entry's start to an earlier time (an earlier sight of the same
    /// media: see `MediaHandler::change_media`).
    pub async fn move_media_start(&mut self, row_id: i64, at_ms: i64) -> Result<()> {
        self.exec("UPDATE media_log SET at_ms = MIN(at_ms, ?2) WHERE id = ?1", (row_id, at_ms)).await?;
        Ok(())
    }

    /// Records that `old` was renamed `new` at `at_ms` (the latest rename of a name wins).
    pub async fn record_emote_rename(
        &mut self,
        domain: &str,
        channel: &str,
        old: &str,
        new: &str,
        at_ms: i64,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO emote_renames(domain, channel, old, new, at_ms) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT(domain, channel, old) DO UPDATE SET new = excluded.new, at_ms = excluded.at_ms \
             WHERE excluded.at_ms >= emote_renames.at_ms",
            (domain, channel, old, new, at_ms),
        )
        .await?;
        Ok(())
    }

    /// A channel's emote renames, old name → new name.
    pub async fn emote_renames(&mut self, domain: &str, channel: &str) -> Result<HashMap<String, String>> {
        let rows = self
            .rows("SELECT old, new FROM emote_renames WHERE domain = ?1 AND channel = ?2", [domain, channel], |r| {
                Ok((r.get::<String>(0)?, r.get::<String>(1)?))
            })
            .await?;
        Ok(rows.into_iter().collect())
    }

    /// True when the channel has any emote history at all.
    pub async fn has_emote_history(&mut self, domain: &str, channel: &str) -> Result<bool> {
        let rows = self
            .rows("SELECT 1 FROM emotes WHERE domain = ?1 AND channel = ?2 LIMIT 1", [domain, channel], |_| Ok(()))
            .await?;
        Ok(!rows.is_empty())
    }

    /// The names in a channel's emote list now (not removed).
    pub async fn listed_emotes(&mut self, domain: &str, channel: &str) -> Result<Vec<String>> {
        self.rows(
            "SELECT DISTINCT name FROM emotes WHERE domain = ?1 AND channel = ?2 AND removed_ms IS NULL ORDER BY name",
            [domain, channel],
            |r| Ok(r.get(0)?),
        )
        .await
    }

    /// Puts an emote name in a channel's list from `added_ms` on (reopening a stretch that
    /// began at the same time).
    pub async fn add_emote(&mut self, domain: &str, channel: &str, name: &str, added_ms: i64) -> Result<()> {
        self.exec(
            "INSERT INTO emotes(domain, channel, name, added_ms, removed_ms) VALUES (?1, ?2, ?3, ?4, NULL) \
             ON CONFLICT(domain, channel, name, added_ms) DO UPDATE SET removed_ms = NULL",
            (domain, channel, name, added_ms),
        )
        .await?;
        Ok(())
    }

    /// Takes an emote name out of a channel's list at `at_ms` (never before it was added).
    /// Returns true when it was listed.
    pub async fn remove_emote(&mut self, domain: &str, channel: &str, name: &str, at_ms: i64) -> Result<bool> {
        let n = self
            .exec(
                "UPDATE emotes SET removed_ms = MAX(?4, added_ms) \
                 WHERE domain = ?1 AND channel = ?2 AND name = ?3 AND removed_ms IS NULL",
                (domain, channel, name, at_ms),
            )
            .await?;
        Ok(n > 0)
    }

    /// Records that a channel's emote list was stated or changed at `at_ms` (kept as the
    /// latest such time, in `versions` under `emotes_ms:{domain}:{channel}`), so that an older
    /// snapshot of the list does not override it.
    pub async fn mark_emotes_at(&mut self, domain: &str, channel: &str, at_ms: i64) -> Result<()> {
        self.exec(
            "INSERT INTO versions(name, version) VALUES (?1, ?2) \
             ON CONFLICT(name) DO UPDATE SET version = MAX(version, excluded.version)",
            (format!("emotes_ms:{domain}:{channel}"), at_ms),
        )
        .await?;
        Ok(())
    }

    /// The latest time a channel's emote list was stated or changed (see [`Tx::mark_emotes_at`]).
    pub async fn emotes_at(&mut self, domain: &str, channel: &str) -> Result<Option<i64>> {
        self.maybe_number("SELECT version FROM versions WHERE name = ?1", [format!("emotes_ms:{domain}:{channel}")])
            .await
    }

    /// Remembers the playlist uid now playing in a channel.
    pub async fn set_current_uid(&mut self, domain: &str, channel: &str, uid: i64) -> Result<()> {
        self.exec(
            "INSERT INTO channel_state(domain, channel, current_uid) VALUES (?1, ?2, ?3) \
             ON CONFLICT(domain, channel) DO UPDATE SET current_uid = excluded.current_uid",
            (domain, channel, uid),
        )
        .await?;
        Ok(())
    }

    /// The playlist uid now playing in a channel, if known.
    pub async fn current_uid(&mut self, domain: &str, channel: &str) -> Result<Option<i64>> {
        self.maybe_number("SELECT current_uid FROM channel_state WHERE domain = ?1 AND channel = ?2", [domain, channel])
            .await
    }

    /// Empties a channel's playlist.
    pub async fn clear_playlist(&mut self, domain: &str, channel: &str) -> Result<()> {
        self.exec("DELETE FROM playlist WHERE domain = ?1 AND channel = ?2", [domain, channel]).await?;
        Ok(())
    }

    /// Writes a playlist entry at a position (the caller makes room first).
    pub async fn put_playlist_item(
        &mut self,
        domain: &str,
        channel: &str,
        uid: i64,
        position: i64,
        media: &Media,
        title: &str,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO playlist(domain, channel, uid, position, media_type, media_id, title) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(domain, channel, uid) DO UPDATE SET \
             position = excluded.position, media_type = excluded.media_type, media_id = excluded.media_id, \
             title = excluded.title",
            libsql::params![domain, channel, uid, position, media.media_type.as_str(), media.id.as_str(), title],
        )
        .await?;
        Ok(())
    }

    /// The position of a uid in a channel's playlist.
    pub async fn playlist_position(&mut self, domain: &str, channel: &str, uid: i64) -> Result<Option<i64>> {
        self.maybe_number(
            "SELECT position FROM playlist WHERE domain = ?1 AND channel = ?2 AND uid = ?3",
            (domain, channel, uid),
        )
        .await
    }

    /// The number of entries in a channel's playlist.
    pub async fn playlist_len(&mut self, domain: &str, channel: &str) -> Result<i64> {
        Ok(self
            .maybe_number("SELECT COUNT(*) FROM playlist WHERE domain = ?1 AND channel = ?2", [domain, channel])
            .await?
            .unwrap_or(0))
    }

    /// Adds `delta` to the position of every entry at or after `from_position`.
    pub async fn shift_playlist(&mut self, domain: &str, channel: &str, from_position: i64, delta: i64) -> Result<()> {
        self.exec(
            "UPDATE playlist SET position = position + ?4 WHERE domain = ?1 AND channel = ?2 AND position >= ?3",
            (domain, channel, from_position, delta),
        )
        .await?;
        Ok(())
    }

    /// Moves one entry to a position (the caller makes room first).
    pub async fn set_playlist_position(&mut self, domain: &str, channel: &str, uid: i64, position: i64) -> Result<()> {
        self.exec(
            "UPDATE playlist SET position = ?4 WHERE domain = ?1 AND channel = ?2 AND uid = ?3",
            (domain, channel, uid, position),
        )
        .await?;
        Ok(())
    }

    /// Removes one entry (the caller closes the gap).
    pub async fn delete_playlist_item(&mut self, domain: &str, channel: &str, uid: i64) -> Result<()> {
        self.exec("DELETE FROM playlist WHERE domain = ?1 AND channel = ?2 AND uid = ?3", (domain, channel, uid))
            .await?;
        Ok(())
    }

    /// The media of a playlist uid as (type, id, cleaned title).
    pub async fn playlist_media(
        &mut self,
        domain: &str,
        channel: &str,
        uid: i64,
    ) -> Result<Option<(String, String, String)>> {
        self.first(
            "SELECT media_type, media_id, title FROM playlist WHERE domain = ?1 AND channel = ?2 AND uid = ?3",
            (domain, channel, uid),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .await
    }

    /// A channel's playlist uids in order.
    pub async fn playlist_uids(&mut self, domain: &str, channel: &str) -> Result<Vec<i64>> {
        self.rows(
            "SELECT uid FROM playlist WHERE domain = ?1 AND channel = ?2 ORDER BY position, uid",
            [domain, channel],
            |r| Ok(r.get(0)?),
        )
        .await
    }
}
