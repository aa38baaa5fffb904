//! Typed write (and in-transaction read) operations of [`Tx`]. Counters are upserts that add
//! deltas, so a batch can be folded in memory first and written once per key.

use super::Tx;
use anyhow::Result;
use libsql::Value;
use std::collections::{HashMap, HashSet};

/// Deltas for one (domain, channel, user) row of `user_counts`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub messages: i64,
    pub kudos_plusplus: i64,
    pub kudos_phrases: i64,
    pub emotes: i64,
}

/// A user as a batch saw them: first and last seen, the display name of the latest sight,
/// and the private messages they sent.
#[derive(Debug, Clone, Copy)]
pub struct UserSeen<'a> {
    pub domain: &'a str,
    pub key: &'a str,
    pub display: &'a str,
    pub first_ms: i64,
    pub last_ms: i64,
    pub pms: i64,
}

/// One hour of a channel as a batch adds to it.
#[derive(Debug, Clone, Copy)]
pub struct HourDelta<'a> {
    pub domain: &'a str,
    pub channel: &'a str,
    pub hour_ms: i64,
    pub messages: i64,
    pub kudos: i64,
}

/// A movie vote (`movie++`, `this film--`) on the media item playing at its time.
#[derive(Debug, Clone, Copy)]
pub struct Vote<'a> {
    pub domain: &'a str,
    pub channel: &'a str,
    pub media_type: &'a str,
    pub media_id: &'a str,
    pub key: &'a str,
    pub vote: i64,
    pub at_ms: i64,
}

/// A media-log entry: what started playing in a channel at `at_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Played {
    pub at_ms: i64,
    pub id: i64,
    pub media_type: String,
    pub media_id: String,
}

/// The entry of `log` (ordered by time, then id, as [`Tx::media_played`] gives it) in force
/// at `at_ms`: the latest that started at or before it.
pub fn playing_at(log: &[Played], at_ms: i64) -> Option<&Played> {
    let after = log.partition_point(|p| p.at_ms <= at_ms);
    after.checked_sub(1).map(|i| &log[i])
}

/// A delta for ((domain, channel, user, phrase or emote), n).
pub type NamedCount<'a> = ((&'a str, &'a str, &'a str, &'a str), i64);

/// The rows `(domain, channel, user, name, n)` of named counts, each twice: in its channel
/// and in the domain rollup (channel '').
fn with_rollup(counts: &[NamedCount<'_>]) -> Vec<Vec<Value>> {
    counts
        .iter()
        .flat_map(|((d, c, key, name), n)| {
            [*c, ""].map(|ch| vec![(*d).into(), ch.into(), (*key).into(), (*name).into(), (*n).into()])
        })
        .collect()
}

/// The `users` columns a batch writes, and how a row meets the one already there: first and
/// last seen widen, the display name follows the latest sight, private messages add up.
pub(super) const USERS_COLUMNS: &str = "users(domain, name_key, display, first_seen_ms, last_seen_ms, pms)";
pub(super) const USERS_MERGE: &str = "ON CONFLICT(domain, name_key) DO UPDATE SET \
     display = CASE WHEN excluded.last_seen_ms >= last_seen_ms THEN excluded.display ELSE display END, \
     first_seen_ms = MIN(first_seen_ms, excluded.first_seen_ms), \
     last_seen_ms = MAX(last_seen_ms, excluded.last_seen_ms), pms = pms + excluded.pms";

/// Event ids per statement when claiming a batch's ids: two statements for the largest batch.
const IDS_PER_STATEMENT: usize = 2000;

/// Rows per multi-row statement: at most 8 parameters each, far below SQLite's limit of
/// 32,766, and short enough to prepare quickly.
const ROWS_PER_STATEMENT: usize = 500;

/// One stretch of time during which an emote name was in a channel's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmoteInterval {
    pub name: String,
    pub added_ms: i64,
    pub removed_ms: Option<i64>,
}

impl Tx {
    /// Records event ids as applied. Returns, per id, whether it is new (not applied by an
    /// earlier transaction nor earlier in this list). Ids are kept until pruned by
    /// [`Tx::prune_applied`].
    pub async fn claim_new_ids(&mut self, ids: &[String], now_ms: i64) -> Result<Vec<bool>> {
        let mut fresh = vec![false; ids.len()];
        let mut seen: HashSet<&str> = HashSet::with_capacity(ids.len());
        for chunk_start in (0..ids.len()).step_by(IDS_PER_STATEMENT) {
            let chunk = &ids[chunk_start..(chunk_start + IDS_PER_STATEMENT).min(ids.len())];
            let placeholders = vec!["?"; chunk.len()].join(",");
            let sql = format!("SELECT id FROM applied_events WHERE id IN ({placeholders})");
            let params: Vec<Value> = chunk.iter().map(|id| Value::Text(id.clone())).collect();
            let known: HashSet<String> =
                self.rows_dyn(&sql, params, |r| Ok(r.get::<String>(0)?)).await?.into_iter().collect();
            let mut new_ids = Vec::new();
            for (offset, id) in chunk.iter().enumerate() {
                if !known.contains(id) && seen.insert(id.as_str()) {
                    fresh[chunk_start + offset] = true;
                    new_ids.push(id);
                }
            }
            if !new_ids.is_empty() {
                let placeholders = vec!["(?,?)"; new_ids.len()].join(",");
                let sql = format!("INSERT INTO applied_events(id, applied_ms) VALUES {placeholders}");
                let mut params = Vec::with_capacity(new_ids.len() * 2);
                for id in new_ids {
                    params.push(Value::Text(id.clone()));
                    params.push(Value::Integer(now_ms));
                }
                self.exec_dyn(&sql, params).await?;
            }
        }
        Ok(fresh)
    }

    /// Deletes up to `limit` applied-event ids recorded before `cutoff_ms` (oldest first).
    pub async fn prune_applied(&mut self, cutoff_ms: i64, limit: i64) -> Result<usize> {
        self.exec(
            "DELETE FROM applied_events WHERE rowid IN (SELECT rowid FROM applied_events \
             WHERE applied_ms < ?1 ORDER BY rowid LIMIT ?2)",
            (cutoff_ms, limit),
        )
        .await
    }

    /// Change counters of shared state (aliases, phrases, per-channel emote lists...), so
    /// that a function caching that state knows when to reload it.
    pub async fn versions(&mut self) -> Result<HashMap<String, i64>> {
        let rows = self
            .rows("SELECT name, version FROM versions", (), |r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?)))
            .await?;
        Ok(rows.into_iter().collect())
    }

    pub async fn bump_version(&mut self, name: &str) -> Result<()> {
        self.exec(
            "INSERT INTO versions(name, version) VALUES (?1, 1) \
             ON CONFLICT(name) DO UPDATE SET version = version + 1",
            [name],
        )
        .await?;
        Ok(())
    }

    /// The whole emote history of a channel.
    pub async fn emote_history(&mut self, domain: &str, channel: &str) -> Result<Vec<EmoteInterval>> {
        self.rows(
            "SELECT name, added_ms, removed_ms FROM emotes WHERE domain = ?1 AND channel = ?2",
            [domain, channel],
            |r| Ok(EmoteInterval { name: r.get(0)?, added_ms: r.get(1)?, removed_ms: r.get(2)? }),
        )
        .await
    }

    /// All aliases as (alias, user key).
    pub async fn aliases(&mut self) -> Result<Vec<(String, String)>> {
        self.rows("SELECT alias, name_key FROM aliases", (), |r| Ok((r.get(0)?, r.get(1)?))).await
    }

    /// The trigger phrases (lowercase).
    pub async fn phrases(&mut self) -> Result<Vec<String>> {
        self.rows("SELECT phrase FROM kudos_phrases ORDER BY phrase", (), |r| Ok(r.get(0)?)).await
    }

    /// Fills the phrase table from the configuration when it is empty. True if it did.
    pub async fn seed_phrases_if_empty(&mut self, phrases: &[String]) -> Result<bool> {
        if !self.phrases().await?.is_empty() {
            return Ok(false);
        }
        for p in phrases {
            let p = p.trim().to_lowercase();
            if !p.is_empty() {
                self.exec("INSERT OR IGNORE INTO kudos_phrases(phrase) VALUES (?1)", [p]).await?;
            }
        }
        self.bump_version("phrases").await?;
        Ok(true)
    }

    /// When a user was first seen in a domain, if ever.
    pub async fn user_first_seen(&mut self, domain: &str, key: &str) -> Result<Option<i64>> {
        Ok(self.users_first_seen(domain, &[key]).await?.remove(key))
    }

    /// When each of `keys` was first seen in a domain (users never seen are absent). One
    /// statement per 500 keys: a batch's kudos targets are looked up together.
    pub async fn users_first_seen(&mut self, domain: &str, keys: &[&str]) -> Result<HashMap<String, i64>> {
        let mut out = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let marks = vec!["?"; chunk.len()].join(",");
            let mut params = vec![Value::Text(domain.to_string())];
            params.extend(chunk.iter().map(|k| Value::Text(k.to_string())));
            let sql = format!("SELECT name_key, first_seen_ms FROM users WHERE domain = ? AND name_key IN ({marks})");
            out.extend(self.rows_dyn(&sql, params, |r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?))).await?);
        }
        Ok(out)
    }

    /// Creates or updates users: first/last seen widened, display name from the latest
    /// event, private messages added. Returns, per domain, how many were new.
    /// Two statements per chunk whatever the number of users (a round trip each on a server).
    pub async fn upsert_users(&mut self, users: &[UserSeen<'_>]) -> Result<HashMap<String, i64>> {
        let mut by_domain: HashMap<&str, Vec<&UserSeen>> = HashMap::new();
        for u in users {
            by_domain.entry(u.domain).or_default().push(u);
        }
        let mut new: HashMap<String, i64> = HashMap::new();
        for (domain, users) in by_domain {
            for chunk in users.chunks(ROWS_PER_STATEMENT) {
                // `domain = ? AND name_key IN (..)` searches the primary key; a row-value
                // `(domain, name_key) IN (VALUES ..)` would scan the whole table.
                let marks = vec!["?"; chunk.len()].join(",");
                let mut params = vec![Value::Text(domain.to_string())];
                params.extend(chunk.iter().map(|u| Value::Text(u.key.to_string())));
                let existing: HashSet<String> = self
                    .rows_dyn(
                        &format!("SELECT name_key FROM users WHERE domain = ? AND name_key IN ({marks})"),
                        params,
                        |r| Ok(r.get::<String>(0)?),
                    )
                    .await?
                    .into_iter()
                    .collect();
                let fresh = chunk.iter().filter(|u| !existing.contains(u.key)).count() as i64;
                if fresh > 0 {
                    *new.entry(domain.to_string()).or_default() += fresh;
                }
                let rows = chunk
                    .iter()
                    .map(|u| {
                        vec![
                            u.domain.into(),
                            u.key.into(),
                            u.display.into(),
                            u.first_ms.into(),
                            u.last_ms.into(),
                            u.pms.into(),
                        ]
                    })
                    .collect();
                self.insert_many(USERS_COLUMNS, USERS_MERGE, rows).await?;
            }
        }
        Ok(new)
    }

    /// Adds counter deltas for users in channels and in their domain rollup (channel '').
    ///
    /// Rows without kudos go in a statement that leaves the kudos columns alone: SQLite
    /// rewrites an index only for the columns an UPDATE sets, so most messages (no kudos)
    /// then cost no change to `user_counts_by_kudos`, one of the four b-trees each row
    /// touches, on a 100,000-user database one random page each.
    pub async fn add_counts(&mut self, counts: &[((&str, &str, &str), Counts)]) -> Result<()> {
        let (kudos, plain): (Vec<_>, Vec<_>) =
            counts.iter().partition(|(_, n)| n.kudos_plusplus != 0 || n.kudos_phrases != 0);
        let rows = |counts: Vec<&((&str, &str, &str), Counts)>| -> Vec<Vec<Value>> {
            counts
                .into_iter()
                .flat_map(|((d, c, key), n)| {
                    [*c, ""].map(|ch| {
                        vec![
                            (*d).into(),
                            ch.into(),
                            (*key).into(),
                            n.messages.into(),
                            n.kudos_plusplus.into(),
                            n.kudos_phrases.into(),
                            (n.kudos_plusplus + n.kudos_phrases).into(),
                            n.emotes.into(),
                        ]
                    })
                })
                .collect()
        };
        const COLUMNS: &str =
            "user_counts(domain, channel, name_key, messages, kudos_plusplus, kudos_phrases, kudos_total, emotes)";
        const ADD: &str = "ON CONFLICT(domain, channel, name_key) DO UPDATE SET \
             messages = messages + excluded.messages, emotes = emotes + excluded.emotes";
        self.insert_many(COLUMNS, ADD, rows(plain)).await?;
        self.insert_many(
            COLUMNS,
            &format!(
                "{ADD}, kudos_plusplus = kudos_plusplus + excluded.kudos_plusplus, \
                 kudos_phrases = kudos_phrases + excluded.kudos_phrases, kudos_total = kudos_total + excluded.kudos_total"
            ),
            rows(kudos),
        )
        .await
    }

    /// Adds phrase-kudos deltas `((domain, channel, user, phrase), n)`, channel and rollup.
    pub async fn add_phrase_kudos(&mut self, kudos: &[NamedCount<'_>]) -> Result<()> {
        self.insert_many(
            "phrase_counts(domain, channel, name_key, phrase, count)",
            "ON CONFLICT(domain, channel, name_key, phrase) DO UPDATE SET count = count + excluded.count",
            with_rollup(kudos),
        )
        .await
    }

    /// Adds emote-use deltas `((domain, channel, user, emote), n)`: per user and per emote,
    /// channel and rollup.
    pub async fn add_emote_uses(&mut self, uses: &[NamedCount<'_>]) -> Result<()> {
        self.insert_many(
            "emote_counts(domain, channel, name_key, emote, count)",
            "ON CONFLICT(domain, channel, name_key, emote) DO UPDATE SET count = count + excluded.count",
            with_rollup(uses),
        )
        .await?;
        let mut totals: HashMap<(&str, &str, &str), i64> = HashMap::new();
        for ((d, c, _, emote), n) in uses {
            for ch in [*c, ""] {
                *totals.entry((d, ch, emote)).or_default() += n;
            }
        }
        let per_emote =
            totals.into_iter().map(|((d, ch, emote), n)| vec![d.into(), ch.into(), emote.into(), n.into()]).collect();
        self.insert_many(
            "emote_totals(domain, channel, emote, count)",
            "ON CONFLICT(domain, channel, emote) DO UPDATE SET count = count + excluded.count",
            per_emote,
        )
        .await
    }

    /// `INSERT INTO {into} VALUES (..),(..) {on_conflict}` over `rows` (all of one width), in
    /// statements of at most [`ROWS_PER_STATEMENT`] rows. Later rows of one statement that
    /// hit a key inserted by an earlier row take the conflict branch, like separate
    /// statements would.
    pub(super) async fn insert_many(&mut self, into: &str, on_conflict: &str, rows: Vec<Vec<Value>>) -> Result<()> {
        let Some(width) = rows.first().map(Vec::len) else { return Ok(()) };
        let tuple = format!("({})", vec!["?"; width].join(","));
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let values = vec![tuple.as_str(); chunk.len()].join(",");
            let params: Vec<Value> = chunk.iter().flatten().cloned().collect();
            self.exec_dyn(&format!("INSERT INTO {into} VALUES {values} {on_conflict}"), params).await?;
        }
        Ok(())
    }

    /// Adds messages and kudos to channels' hourly buckets.
    pub async fn add_hourly(&mut self, hours: &[HourDelta<'_>]) -> Result<()> {
        let rows = hours
            .iter()
            .map(|h| vec![h.domain.into(), h.channel.into(), h.hour_ms.into(), h.messages.into(), h.kudos.into()])
            .collect();
        self.insert_many(
            "hourly(domain, channel, hour_ms, messages, kudos)",
            "ON CONFLICT(domain, channel, hour_ms) DO UPDATE SET messages = messages + excluded.messages, \
             kudos = kudos + excluded.kudos",
            rows,
        )
        .await
    }

    /// The media playing in a channel at a time: the media-log entry in force then.
    pub async fn media_at(&mut self, domain: &str, channel: &str, at_ms: i64) -> Result<Option<(String, String)>> {
        let rows = self
            .rows(
                "SELECT media_type, media_id FROM media_log WHERE domain = ?1 AND channel = ?2 AND at_ms <= ?3 \
                 ORDER BY at_ms DESC, id DESC LIMIT 1",
                (domain, channel, at_ms),
                |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?)),
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    /// The media log of a channel from the entry in force at `from_ms` to the last entry
    /// started by `to_ms`, ordered by time then id: what [`playing_at`] needs to place every
    /// time in between (a batch's votes) with one statement.
    pub async fn media_played(&mut self, domain: &str, channel: &str, from_ms: i64, to_ms: i64) -> Result<Vec<Played>> {
        self.rows(
            "SELECT at_ms, id, media_type, media_id FROM media_log WHERE domain = ?1 AND channel = ?2 \
             AND at_ms <= ?4 AND at_ms >= COALESCE((SELECT at_ms FROM media_log WHERE domain = ?1 \
             AND channel = ?2 AND at_ms <= ?3 ORDER BY at_ms DESC, id DESC LIMIT 1), ?3) ORDER BY at_ms, id",
            (domain, channel, from_ms, to_ms),
            |r| Ok(Played { at_ms: r.get(0)?, id: r.get(1)?, media_type: r.get(2)?, media_id: r.get(3)? }),
        )
        .await
    }

    /// One vote per user per media item; the latest (by message time) wins. Votes of one
    /// statement are applied in order, like separate statements would be.
    pub async fn add_votes(&mut self, votes: &[Vote<'_>]) -> Result<()> {
        let rows = votes
            .iter()
            .map(|v| {
                vec![
                    v.domain.into(),
                    v.channel.into(),
                    v.media_type.into(),
                    v.media_id.into(),
                    v.key.into(),
                    v.vote.into(),
                    v.at_ms.into(),
                ]
            })
            .collect();
        self.insert_many(
            "movie_votes(domain, channel, media_type, media_id, name_key, vote, at_ms)",
            "ON CONFLICT(domain, channel, media_type, media_id, name_key) \
             DO UPDATE SET vote = excluded.vote, at_ms = excluded.at_ms WHERE excluded.at_ms >= at_ms",
            rows,
        )
        .await
    }

    /// Adds to domain-wide totals `(domain, name, n)` in one statement.
    pub async fn add_totals(&mut self, totals: &[(&str, &str, i64)]) -> Result<()> {
        let rows = totals
            .iter()
            .filter(|(_, _, n)| *n != 0)
            .map(|(d, name, n)| vec![(*d).into(), (*name).into(), (*n).into()])
            .collect();
        self.insert_many(
            "totals(domain, name, value)",
            "ON CONFLICT(domain, name) DO UPDATE SET value = value + excluded.value",
            rows,
        )
        .await
    }

    /// Adds to a function's durable work counters `(name, n)` in one statement.
    pub async fn add_counters(&mut self, function: &str, counters: &[(&str, i64)]) -> Result<()> {
        let rows = counters
            .iter()
            .filter(|(_, n)| *n != 0)
            .map(|(name, n)| vec![function.into(), (*name).into(), (*n).into()])
            .collect();
        self.insert_many(
            "counters(function, name, value)",
            "ON CONFLICT(function, name) DO UPDATE SET value = value + excluded.value",
            rows,
        )
        .await
    }

    /// Adds to a domain-wide total (`total_messages`, `total_users`, ...).
    pub async fn add_total(&mut self, domain: &str, name: &str, n: i64) -> Result<()> {
        self.add_totals(&[(domain, name, n)]).await
    }

    /// Remembers a channel (configured name and subject token) the first time it is seen.
    pub async fn touch_channel(&mut self, domain: &str, channel: &str, token: &str, at_ms: i64) -> Result<()> {
        self.exec(
            "INSERT INTO channels(domain, channel, token, first_seen_ms) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(domain, channel) DO UPDATE SET first_seen_ms = MIN(first_seen_ms, excluded.first_seen_ms)",
            (domain, channel, token, at_ms),
        )
        .await?;
        Ok(())
    }

    /// Takes or renews the lease `name` for `holder` until `now_ms + ttl_ms`; true when held.
    /// A lease held by someone else is taken only once it has expired.
    pub async fn try_lease(&mut self, name: &str, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool> {
        let n = self
            .exec(
                "INSERT INTO leases(name, holder, until_ms) VALUES (?1, ?2, ?3 + ?4) \
                 ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms \
                 WHERE leases.holder = excluded.holder OR leases.until_ms < ?3",
                (name, holder, now_ms, ttl_ms),
            )
            .await?;
        Ok(n > 0)
    }

    /// Gives a lease up at once (graceful stop), so another replica takes over quickly.
    pub async fn release_lease(&mut self, name: &str, holder: &str) -> Result<()> {
        self.exec("UPDATE leases SET until_ms = 0 WHERE name = ?1 AND holder = ?2", (name, holder)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    #[tokio::test]
    async fn a_batch_of_votes_goes_to_the_media_playing_at_each_vote() {
        let store = temp_store("votes-batch").await;
        let mut tx = store.write().await.unwrap();
        for (at, id) in [(10, "a"), (20, "b"), (20, "c"), (30, "d")] {
            tx.append_media("d", "c", at, "yt", id, id).await.unwrap();
        }
        let log = tx.media_played("d", "c", 15, 25).await.unwrap();
        let ids: Vec<&str> = log.iter().map(|p| p.media_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"], "from the entry in force at 15 to the last started by 25");
        let at = |t| playing_at(&log, t).map(|p| p.media_id.as_str());
        assert_eq!((at(5), at(15), at(20), at(25)), (None, Some("a"), Some("c"), Some("c")));
        assert!(tx.media_played("d", "c", 1, 5).await.unwrap().is_empty(), "nothing played yet");
        // The same user votes twice on one item in one statement: the later vote wins, as
        // with separate statements; an earlier-dated vote never overwrites a later one.
        let vote =
            |vote, at_ms| Vote { domain: "d", channel: "c", media_type: "yt", media_id: "c", key: "u", vote, at_ms };
        tx.add_votes(&[vote(1, 21), vote(-1, 23), vote(1, 22)]).await.unwrap();
        tx.commit().await.unwrap();
        let votes = store.movie_votes("d", "c").await.unwrap();
        assert_eq!(votes.len(), 1);
        assert_eq!((votes[0].upvotes, votes[0].downvotes), (0, 1), "{votes:?}");
    }
}
