//! Two facts every ingest handler folds the same way over a batch before writing them
//! once: which users it saw (display name, first and last seen) and which channels (first
//! seen).

use super::{Tx, UserSeen};
use anyhow::Result;
use std::collections::HashMap;

/// One user as a batch saw them.
#[derive(Debug, Clone)]
pub struct SeenUser {
    /// The latest casing seen, and when.
    pub display: String,
    pub display_ms: i64,
    pub first_ms: i64,
    pub last_ms: i64,
    /// Private messages they sent in the batch.
    pub pms: i64,
}

/// Users seen in a batch, by (domain, name key).
#[derive(Debug, Default)]
pub struct SeenUsers(HashMap<(String, String), SeenUser>);

impl SeenUsers {
    /// A sight of a user at `at_ms`: the display name follows the latest sight; first and
    /// last seen widen (a replayed chat buffer can move first seen back).
    pub fn see(&mut self, domain: &str, key: &str, display: &str, at_ms: i64) {
        let u = self.0.entry((domain.to_string(), key.to_string())).or_insert_with(|| SeenUser {
            display: display.to_string(),
            display_ms: at_ms,
            first_ms: at_ms,
            last_ms: at_ms,
            pms: 0,
        });
        if at_ms >= u.display_ms {
            u.display = display.to_string();
            u.display_ms = at_ms;
        }
        u.first_ms = u.first_ms.min(at_ms);
        u.last_ms = u.last_ms.max(at_ms);
    }

    /// A private message from a user: a sight that also counts one PM.
    pub fn pm(&mut self, domain: &str, key: &str, display: &str, at_ms: i64) {
        self.see(domain, key, display, at_ms);
        if let Some(u) = self.0.get_mut(&(domain.to_string(), key.to_string())) {
            u.pms += 1;
        }
    }

    pub fn get(&self, domain: &str, key: &str) -> Option<&SeenUser> {
        self.0.get(&(domain.to_string(), key.to_string()))
    }

    /// Creates or updates the users (and adds their PMs) in one statement per domain;
    /// returns the number of users new to each domain.
    pub async fn write(&self, tx: &mut Tx) -> Result<HashMap<String, i64>> {
        let rows: Vec<UserSeen> = self
            .0
            .iter()
            .map(|((d, key), u)| UserSeen {
                domain: d,
                key,
                display: &u.display,
                first_ms: u.first_ms,
                last_ms: u.last_ms,
                pms: u.pms,
            })
            .collect();
        tx.upsert_users(&rows).await
    }
}

/// Channels seen in a batch, by (domain, channel), with the earliest time.
#[derive(Debug, Default)]
pub struct SeenChannels(HashMap<(String, String), i64>);

impl SeenChannels {
    pub fn see(&mut self, domain: &str, channel: &str, at_ms: i64) {
        let t = self.0.entry((domain.to_string(), channel.to_string())).or_insert(at_ms);
        *t = (*t).min(at_ms);
    }

    /// Records each channel (with its subject token) and its first-seen time.
    pub async fn write(&self, tx: &mut Tx) -> Result<()> {
        for ((d, c), t) in &self.0 {
            tx.touch_channel(d, c, &crate::wire::subject_token(c), *t).await?;
        }
        Ok(())
    }
}
