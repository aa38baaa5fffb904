//! The records the store reads and writes, defined here at the ground floor so that the
//! store depends on nothing above it (the query API and the ingest handlers re-export or
//! use them).

/// A user's open session in a channel (one row of `sessions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub joined_ms: i64,
    pub afk: bool,
    /// When the current AFK stretch began (set while `afk`).
    pub afk_since_ms: Option<i64>,
    /// AFK time of the finished AFK stretches of this session.
    pub afk_ms: i64,
    pub last_event_ms: i64,
}

impl Session {
    /// The session's time up to `at_ms` as (total ms, not-AFK ms), each duration passed
    /// through `clamp` (never negative nor longer than the longest believable session): the
    /// one rule for closing a session and for showing an open one live.
    pub fn time_until(&self, at_ms: i64, mut clamp: impl FnMut(i64) -> i64) -> (i64, i64) {
        let total = clamp(at_ms.saturating_sub(self.joined_ms));
        let mut afk = self.afk_ms;
        if self.afk {
            let since = self.afk_since_ms.unwrap_or(self.joined_ms);
            afk = afk.saturating_add(clamp(at_ms.saturating_sub(since)));
        }
        let afk = afk.clamp(0, total);
        (total, total - afk)
    }
}

/// What an alias change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AliasChange {
    Done,
    /// The alias belongs to this user (display name) already.
    TakenBy(String),
    /// No such alias (for that user).
    Missing,
}

/// A population snapshot as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    pub at_ms: i64,
    pub connected_count: i64,
    pub chat_count: i64,
    pub usercount: Option<i64>,
}

/// A watermark as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatermarkRow {
    pub at_ms: i64,
    pub total_users: i64,
    pub chat_users: i64,
}

/// Votes for one media item with its latest logged title and the time of the latest vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TitledVoteRow {
    pub media_type: String,
    pub media_id: String,
    pub title: Option<String>,
    pub upvotes: i64,
    pub downvotes: i64,
    pub last_vote_ms: i64,
}

/// A user's time in one channel: closed sessions plus the open session, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityRow {
    pub channel: String,
    pub closed_total_ms: i64,
    pub closed_not_afk_ms: i64,
    pub open: Option<Session>,
}

/// One hour of a channel: (hour start ms, messages, kudos, average present users).
pub type HourRow = (i64, i64, i64, Option<f64>);
