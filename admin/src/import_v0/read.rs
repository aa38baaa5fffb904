//! Reading the old file: every row of every 0.7.1 table is checked and kept in [`Rows`] (in
//! 0.7.1's spellings), or skipped and counted by table and reason in the [`Report`]; the
//! rows also feed the content hash that keys the import.

use super::report::Report;
use anyhow::Result;
use libsql::Value;
use sha2::{Digest, Sha256};
use shared::config::Config;
use shared::store::{V0Reader, V0_TABLES};
use std::collections::HashSet;
use std::time::{Duration, Instant};

// Rows as read and checked, in old spellings (channel) and lower-cased keys (user).
pub(super) struct UserIn {
    pub name: String,
    pub first: i64,
    pub last: i64,
}
pub(super) struct CountIn {
    pub domain: String,
    pub channel: String,
    pub name: String,
    pub extra: String,
    pub n: i64,
    pub n2: i64,
}
pub(super) struct SnapIn {
    pub domain: String,
    pub channel: String,
    pub at: i64,
    pub total: i64,
    pub chat: i64,
}
pub(super) struct MediaIn {
    pub domain: String,
    pub channel: String,
    pub at: i64,
    pub title: String,
    pub media_type: String,
    pub media_id: String,
}
pub(super) struct VoteIn {
    pub domain: String,
    pub channel: String,
    pub title: String,
    pub media_type: String,
    pub media_id: String,
    pub name: String,
    pub vote: i64,
    pub at: i64,
}

/// Every row read and checked, per old table, kept until the plan is made.
#[derive(Default)]
pub(super) struct Rows {
    pub users: Vec<UserIn>,
    /// (user, lower-cased alias)
    pub aliases: Vec<(String, String)>,
    pub messages: Vec<CountIn>,
    pub pms: Vec<(String, i64)>,
    pub snapshots: Vec<SnapIn>,
    pub media: Vec<MediaIn>,
    /// `n` total seconds, `n2` not-AFK seconds.
    pub activity: Vec<CountIn>,
    /// `extra` the emote as 0.7.1 stored it (lower-cased).
    pub emotes: Vec<CountIn>,
    pub plusplus: Vec<CountIn>,
    /// `extra` the phrase.
    pub phrases: Vec<CountIn>,
    pub triggers: Vec<String>,
    pub watermarks: Vec<SnapIn>,
    pub votes: Vec<VoteIn>,
}

/// What reading folds the old file into: the rows kept and the report of what was seen.
pub(super) struct Fold {
    /// Names our functions never count (`[server]`, `ignore_users`), lower-cased.
    ignored: HashSet<String>,
    pub report: Report,
    pub rows: Rows,
}

/// Why a value cannot be used.
type Bad = &'static str;

/// Reads every old table through `fold`, with a progress line for long files, and returns
/// the content hash of all the rows (table by table, in `id` order).
pub(super) async fn read_all(reader: &V0Reader, fold: &mut Fold) -> Result<String> {
    let mut progress = Progress::new();
    let mut hasher = Sha256::new();
    for (table, _) in V0_TABLES {
        let total = reader.count(table).await?;
        let mut n = 0u64;
        hasher.update(table.as_bytes());
        hasher.update([0xff]);
        reader
            .for_each(table, |row| {
                n += 1;
                hash_row(&mut hasher, row);
                fold.take(table, row);
                progress.tick(|| format!("reading {table}: {n} of {total} rows"));
                Ok(())
            })
            .await?;
        fold.report.read.insert(table, n);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// A stable, unambiguous encoding of a row for the content hash: per value a type tag, then
/// the value (texts and blobs length first); a row end mark. The hash is of the rows, not of
/// the file's bytes, so a checkpointed, vacuumed or copied file hashes the same.
fn hash_row(h: &mut Sha256, row: &[Value]) {
    for v in row {
        match v {
            Value::Null => h.update([0u8]),
            Value::Integer(i) => {
                h.update([1u8]);
                h.update(i.to_le_bytes());
            }
            Value::Real(f) => {
                h.update([2u8]);
                h.update(f.to_le_bytes());
            }
            Value::Text(s) => {
                h.update([3u8]);
                h.update((s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
            Value::Blob(b) => {
                h.update([4u8]);
                h.update((b.len() as u64).to_le_bytes());
                h.update(b);
            }
        }
    }
    h.update([0xfe]);
}

/// A progress line on stderr at most every 2 s (only for files that take longer).
struct Progress {
    last: Instant,
}

impl Progress {
    fn new() -> Progress {
        Progress { last: Instant::now() }
    }
    fn tick(&mut self, line: impl FnOnce() -> String) {
        if self.last.elapsed() >= Duration::from_secs(2) {
            eprintln!("{}", line());
            self.last = Instant::now();
        }
    }
}

fn text(v: &Value) -> Result<String, Bad> {
    match v {
        Value::Text(s) if s.contains('\0') => Err("NUL byte in text"),
        Value::Text(s) if s.trim().is_empty() => Err("empty name"),
        Value::Text(s) => Ok(s.clone()),
        Value::Integer(i) => Ok(i.to_string()),
        Value::Null => Err("empty name"),
        _ => Err("not text"),
    }
}

/// Text that may be missing (media type and id).
fn opt_text(v: &Value) -> Result<String, Bad> {
    match v {
        Value::Null => Ok(String::new()),
        Value::Text(s) if s.contains('\0') => Err("NUL byte in text"),
        Value::Text(s) => Ok(s.trim().to_string()),
        Value::Integer(i) => Ok(i.to_string()),
        _ => Err("not text"),
    }
}

fn count(v: &Value) -> Result<i64, Bad> {
    let n = match v {
        Value::Integer(i) => *i,
        Value::Real(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => *f as i64,
        _ => return Err("count is not a whole number"),
    };
    if n < 0 {
        return Err("negative count");
    }
    Ok(n)
}

fn time(v: &Value) -> Result<i64, Bad> {
    match v {
        Value::Text(s) => shared::wire::parse_timestamp_ms(s).ok_or("unparseable time"),
        _ => Err("unparseable time"),
    }
}

fn domain(v: &Value) -> Result<String, Bad> {
    Ok(text(v)?.trim().to_lowercase())
}

/// The (channel, domain) that population, media and vote rows start with, checked in that
/// order.
fn channel_domain(r: &[Value]) -> Result<(String, String), Bad> {
    Ok((text(&r[0])?, domain(&r[1])?))
}

impl Fold {
    pub fn new(config: &Config) -> Fold {
        Fold { ignored: config.ignored_users(), report: Report::default(), rows: Rows::default() }
    }

    /// Checks and keeps one row of an old table (columns as in [`V0_TABLES`]).
    fn take(&mut self, table: &'static str, r: &[Value]) {
        if let Err(reason) = self.take_row(table, r) {
            self.report.skip(table, reason);
        }
    }

    /// A username that is counted at all (not `[server]` or an ignored user).
    fn user(&self, v: &Value) -> Result<String, Bad> {
        let name = text(v)?.trim().to_string();
        if self.ignored.contains(&name.to_lowercase()) {
            return Err("ignored user ([server] or ignore_users)");
        }
        Ok(name)
    }

    /// The (user, channel, domain) that every per-channel counter row starts with, checked
    /// in that order (the first bad value is the reason reported).
    fn who_where(&self, r: &[Value]) -> Result<(String, String, String), Bad> {
        Ok((self.user(&r[0])?, text(&r[1])?, domain(&r[2])?))
    }

    /// One row, by table; the columns are checked left to right, so that a row with two bad
    /// values is always skipped for the same reason.
    fn take_row(&mut self, table: &'static str, r: &[Value]) -> Result<(), Bad> {
        match table {
            "users" => {
                let name = self.user(&r[0])?;
                let (first, last) = (time(&r[1])?, time(&r[2])?);
                self.rows.users.push(UserIn { name, first: first.min(last), last: first.max(last) });
            }
            "user_aliases" => {
                let name = self.user(&r[0])?;
                let alias = text(&r[1])?.trim().to_lowercase();
                self.rows.aliases.push((name, alias));
            }
            "pm_counts" => {
                let name = self.user(&r[0])?;
                self.rows.pms.push((name, count(&r[1])?));
            }
            "message_counts" | "kudos_plusplus" | "user_activity" | "emote_usage" | "kudos_phrases" => {
                self.take_counter(table, r)?
            }
            "population_snapshots" | "population_watermarks" => {
                let (channel, domain) = channel_domain(r)?;
                let row = SnapIn { channel, domain, at: time(&r[2])?, total: count(&r[3])?, chat: count(&r[4])? };
                if table == "population_snapshots" { &mut self.rows.snapshots } else { &mut self.rows.watermarks }
                    .push(row);
            }
            "media_changes" => {
                let (channel, domain) = channel_domain(r)?;
                self.rows.media.push(MediaIn {
                    channel,
                    domain,
                    at: time(&r[2])?,
                    title: opt_text(&r[3])?,
                    media_type: opt_text(&r[4])?,
                    media_id: opt_text(&r[5])?,
                })
            }
            "kudos_trigger_phrases" => self.rows.triggers.push(text(&r[0])?.trim().to_lowercase()),
            "movie_votes" => self.take_vote(r)?,
            _ => return Err("unknown table"),
        }
        Ok(())
    }

    /// A per-channel counter row: messages and ++ (one count), activity (total and not-AFK
    /// seconds), emotes and phrase kudos (a name, then the count).
    fn take_counter(&mut self, table: &'static str, r: &[Value]) -> Result<(), Bad> {
        let (name, channel, domain) = self.who_where(r)?;
        let (extra, n, n2) = match table {
            "user_activity" => (String::new(), count(&r[3])?, count(&r[4])?),
            "emote_usage" | "kudos_phrases" => (text(&r[3])?.trim().to_lowercase(), count(&r[4])?, 0),
            _ => (String::new(), count(&r[3])?, 0),
        };
        let row = CountIn { domain, channel, name, extra, n, n2 };
        let rows = &mut self.rows;
        match table {
            "message_counts" => rows.messages.push(row),
            "kudos_plusplus" => rows.plusplus.push(row),
            "user_activity" => rows.activity.push(row),
            "emote_usage" => rows.emotes.push(row),
            _ => rows.phrases.push(row),
        }
        Ok(())
    }

    /// A vote row: the vote itself is checked first (0.7.1 stores +1 or -1).
    fn take_vote(&mut self, r: &[Value]) -> Result<(), Bad> {
        let vote = match &r[6] {
            Value::Integer(v) if *v > 0 => 1,
            Value::Integer(v) if *v < 0 => -1,
            _ => return Err("vote is not +1 or -1"),
        };
        let (channel, domain) = channel_domain(r)?;
        let row = VoteIn {
            channel,
            domain,
            title: opt_text(&r[2])?,
            media_type: opt_text(&r[3])?,
            media_id: opt_text(&r[4])?,
            name: self.user(&r[5])?,
            vote,
            at: time(&r[7])?,
        };
        self.rows.votes.push(row);
        Ok(())
    }
}
