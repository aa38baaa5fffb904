//! Import of a kryten-userstats 0.7.1 database (the previous Python service), the SQL half:
//! reading the old file and writing the converted rows. The tool `userstats-admin import-v0`
//! (admin/) decides *what* each old row becomes; this module only knows *how* to read and
//! write.
//!
//! * [`V0Reader`] opens the old file read-only (`SQLITE_OPEN_READ_ONLY` and
//!   `PRAGMA query_only`), checks that its layout is exactly 0.7.1's (the 13 tables of its
//!   `StatsDatabase.initialize()`, with their columns) and streams each table's rows in `id`
//!   order, so that even a big file is never held in memory as raw rows.
//! * [`Tx::import_v0`] writes a whole [`ImportPlan`] inside the caller's one `BEGIN
//!   IMMEDIATE` transaction with multi-row statements (a few hundred rows each), records the
//!   import in the never-pruned `imports` table keyed by the content hash, and bumps the
//!   `aliases` and `phrases` versions so that running ingest-chat replicas reload their
//!   caches. If the hash is already recorded it writes nothing and says when.

use super::{Store, Tx};
use anyhow::{bail, Context, Result};
use libsql::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The layout this importer supports: kryten-userstats 0.7.1, table by table, the columns
/// in the order they are read. Every table also has `id INTEGER PRIMARY KEY AUTOINCREMENT`
/// (rows are read in `id` order). A file with fewer tables or columns is refused, and so is
/// one with more (a newer or other layout), so that nothing is silently left behind.
pub const V0_TABLES: &[(&str, &[&str])] = &[
    ("users", &["username", "first_seen_at", "last_seen_at"]),
    ("user_aliases", &["username", "alias"]),
    ("message_counts", &["username", "channel", "domain", "message_count"]),
    ("pm_counts", &["username", "pm_count"]),
    ("population_snapshots", &["channel", "domain", "timestamp", "connected_count", "chat_count"]),
    ("media_changes", &["channel", "domain", "timestamp", "media_title", "media_type", "media_id"]),
    ("user_activity", &["username", "channel", "domain", "total_time_seconds", "not_afk_time_seconds"]),
    ("emote_usage", &["username", "channel", "domain", "emote", "usage_count"]),
    ("kudos_plusplus", &["username", "channel", "domain", "kudos_count"]),
    ("kudos_phrases", &["username", "channel", "domain", "phrase", "kudos_count"]),
    ("kudos_trigger_phrases", &["phrase"]),
    ("population_watermarks", &["channel", "domain", "timestamp", "total_users", "chat_users", "is_high_mark"]),
    ("movie_votes", &["channel", "domain", "media_title", "media_type", "media_id", "username", "vote", "timestamp"]),
];

/// The `imports.kind` of a kryten-userstats 0.7.1 import.
pub const V0_KIND: &str = "kryten-userstats 0.7.1";

/// Tables SQLite itself adds (AUTOINCREMENT, ANALYZE), allowed beside the 13.
const SQLITE_INTERNAL: &[&str] = &["sqlite_sequence", "sqlite_stat1", "sqlite_stat2", "sqlite_stat3", "sqlite_stat4"];

/// A 0.7.1 database opened read-only, its layout checked.
pub struct V0Reader {
    _db: libsql::Database,
    conn: libsql::Connection,
}

impl V0Reader {
    /// Opens `path` read-only and checks it is a kryten-userstats 0.7.1 database. Every
    /// refusal is one line saying what is wrong with the file.
    pub async fn open(path: &str) -> Result<V0Reader> {
        let mut header = [0u8; 16];
        {
            use std::io::Read;
            let mut f = std::fs::File::open(path).with_context(|| format!("cannot open {path}"))?;
            let n = f.read(&mut header).with_context(|| format!("cannot read {path}"))?;
            if n < 16 || &header != b"SQLite format 3\0" {
                bail!("{path} is not an SQLite database file (no SQLite header)");
            }
        }
        let db = libsql::Builder::new_local(path)
            .flags(libsql::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .build()
            .await
            .with_context(|| format!("cannot open {path} read-only"))?;
        let conn = db.connect().with_context(|| format!("cannot open {path} read-only"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute("PRAGMA query_only = ON", ()).await?;
        let reader = V0Reader { _db: db, conn };
        reader.check_layout(path).await?;
        Ok(reader)
    }

    async fn strings(&self, sql: &str, param: Option<&str>) -> Result<Vec<String>> {
        let mut rows = match param {
            Some(p) => self.conn.query(sql, [p]).await?,
            None => self.conn.query(sql, ()).await?,
        };
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push(row.get::<String>(0)?);
        }
        Ok(out)
    }

    async fn check_layout(&self, path: &str) -> Result<()> {
        let tables = self
            .strings("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", None)
            .await
            .with_context(|| format!("{path} cannot be read as an SQLite database"))?;
        let tables: HashSet<String> = tables.into_iter().collect();
        let expected: HashSet<&str> = V0_TABLES.iter().map(|(t, _)| *t).collect();
        let present: Vec<&str> = V0_TABLES.iter().map(|(t, _)| *t).filter(|t| tables.contains(*t)).collect();
        if tables.contains("user_counts") && tables.contains("schema_version") {
            bail!("{path} is a database of this service (kryten-userstats in Rust), not of the Python kryten-userstats 0.7.1");
        }
        if present.is_empty() {
            bail!(
                "{path} is not a kryten-userstats database: none of the 13 tables of kryten-userstats 0.7.1 is there (another program's database?)"
            );
        }
        let missing: Vec<&str> = V0_TABLES.iter().map(|(t, _)| *t).filter(|t| !tables.contains(*t)).collect();
        if !missing.is_empty() {
            bail!(
                "{path} lacks the kryten-userstats 0.7.1 table(s) {}: an older or damaged layout (only 0.7.1 is supported)",
                missing.join(", ")
            );
        }
        let mut extra: Vec<&String> = tables
            .iter()
            .filter(|t| !expected.contains(t.as_str()) && !SQLITE_INTERNAL.contains(&t.as_str()))
            .collect();
        extra.sort();
        if !extra.is_empty() {
            let extra: Vec<&str> = extra.iter().map(|s| s.as_str()).collect();
            bail!(
                "{path} has table(s) {} that kryten-userstats 0.7.1 does not create: a newer or other layout (only 0.7.1 is supported)",
                extra.join(", ")
            );
        }
        for (table, columns) in V0_TABLES {
            let have: HashSet<String> =
                self.strings("SELECT name FROM pragma_table_info(?1)", Some(table)).await?.into_iter().collect();
            let mut wanted: Vec<&str> = vec!["id"];
            wanted.extend(columns.iter());
            let missing: Vec<&str> = wanted.iter().copied().filter(|c| !have.contains(*c)).collect();
            if !missing.is_empty() {
                bail!(
                    "{path}: table {table} lacks column(s) {}: not the kryten-userstats 0.7.1 layout (only 0.7.1 is supported)",
                    missing.join(", ")
                );
            }
            let mut extra: Vec<&String> = have.iter().filter(|c| !wanted.contains(&c.as_str())).collect();
            extra.sort();
            if !extra.is_empty() {
                let extra: Vec<&str> = extra.iter().map(|s| s.as_str()).collect();
                bail!(
                    "{path}: table {table} has column(s) {} that kryten-userstats 0.7.1 does not create: a newer or other layout (only 0.7.1 is supported)",
                    extra.join(", ")
                );
            }
        }
        Ok(())
    }

    /// The number of rows of a table (one of [`V0_TABLES`]).
    pub async fn count(&self, table: &str) -> Result<u64> {
        anyhow::ensure!(V0_TABLES.iter().any(|(t, _)| *t == table), "not a 0.7.1 table: {table}");
        let mut rows = self.conn.query(&format!("SELECT COUNT(*) FROM \"{table}\""), ()).await?;
        let n = match rows.next().await? {
            Some(r) => r.get::<i64>(0)?,
            None => 0,
        };
        Ok(n.max(0) as u64)
    }

    /// Calls `f` with every row of a table (its [`V0_TABLES`] columns, as stored: SQLite
    /// keeps whatever type was written), in `id` order.
    pub async fn for_each(&self, table: &str, mut f: impl FnMut(&[Value]) -> Result<()>) -> Result<()> {
        let Some((_, columns)) = V0_TABLES.iter().find(|(t, _)| *t == table) else {
            bail!("not a 0.7.1 table: {table}");
        };
        let list: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
        let sql = format!("SELECT {} FROM \"{table}\" ORDER BY id", list.join(", "));
        let mut rows = self.conn.query(&sql, ()).await.with_context(|| format!("cannot read table {table}"))?;
        let mut values = Vec::with_capacity(columns.len());
        while let Some(row) = rows.next().await.with_context(|| format!("cannot read table {table}"))? {
            values.clear();
            for i in 0..columns.len() {
                values.push(row.get_value(i as i32)?);
            }
            f(&values)?;
        }
        Ok(())
    }
}

/// A user as imported: created, or widened (first/last seen) and given more PMs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportUser {
    pub domain: String,
    pub key: String,
    pub display: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub pms: i64,
}

/// Everything one import writes, already converted to our keys and units. Counters are
/// deltas added to what is there; logs are appended; the rest merges by the same rules as
/// the functions (see each field).
#[derive(Debug, Clone, Default)]
pub struct ImportPlan {
    /// Content hash of the old file (the `imports` key).
    pub hash: String,
    /// What was imported, for the record (the file name).
    pub source: String,
    /// The import's report (JSON), kept in `imports.summary`.
    pub summary: String,
    pub now_ms: i64,
    /// (domain, channel, first seen ms): channels remembered like the functions do.
    pub channels: Vec<(String, String, i64)>,
    pub users: Vec<ImportUser>,
    /// Per (domain, channel, user) deltas; the domain rollup (channel '') is added here.
    pub counts: Vec<((String, String, String), super::Counts)>,
    /// ((domain, channel, user, phrase), n), channel and rollup.
    pub phrase_kudos: Vec<((String, String, String, String), i64)>,
    /// ((domain, channel, user, emote), n), channel and rollup, per user and per emote.
    pub emote_uses: Vec<((String, String, String, String), i64)>,
    /// (domain, channel, user, total ms, not-AFK ms), added to closed time.
    pub activity: Vec<(String, String, String, i64, i64)>,
    /// (domain, channel, slot ms, connected, chat): a slot that already has a snapshot
    /// keeps it.
    pub population: Vec<(String, String, i64, i64, i64)>,
    /// (domain, channel, day, kind `high`/`low`, at ms, total users, chat users): widens
    /// the day's row as ingest-presence does.
    pub watermarks: Vec<(String, String, String, &'static str, i64, i64, i64)>,
    /// (domain, channel, at ms, media type, media id, title), appended to the media log.
    pub media: Vec<(String, String, i64, String, String, String)>,
    /// (domain, channel, media type, media id, user, vote, at ms): latest vote wins.
    pub votes: Vec<(String, String, String, String, String, i64, i64)>,
    /// (alias, user key, display): an alias that already belongs to someone stays theirs.
    pub aliases: Vec<(String, String, String)>,
    pub phrases: Vec<String>,
    /// (domain, total name, n) added to `totals` (`total_users` is counted here, from the
    /// users that are new to our database).
    pub totals: Vec<(String, String, i64)>,
}

/// What [`Tx::import_v0`] did.
#[derive(Debug, Clone)]
pub enum ImportOutcome {
    /// The same content was imported before: nothing written.
    AlreadyImported {
        imported_ms: i64,
        source: String,
    },
    Written(ImportWritten),
}

/// Rows written per table of ours, and what was left as it was.
#[derive(Debug, Clone, Default)]
pub struct ImportWritten {
    pub rows: BTreeMap<&'static str, u64>,
    /// Users new to our database, per domain.
    pub new_users: BTreeMap<String, i64>,
    /// Aliases that already belonged to a user of ours (kept theirs), as (alias, owner).
    pub aliases_taken: Vec<(String, String)>,
    /// Population slots that already had a snapshot (kept).
    pub slots_taken: u64,
    /// Time spent inside the write transaction's statements.
    pub sql: std::time::Duration,
}

/// Rows per multi-row statement: at most 8 parameters each (4,000 per statement), far below
/// SQLite's limit of 32,766.
const ROWS_PER_STATEMENT: usize = 500;

impl Store {
    /// When and from what a content hash was imported, if it was.
    pub async fn imported(&self, hash: &str) -> Result<Option<(i64, String)>> {
        let v = self
            .all("SELECT imported_ms, source FROM imports WHERE hash = ?1", [hash], |r| Ok((r.get(0)?, r.get(1)?)))
            .await?;
        Ok(v.into_iter().next())
    }

    /// Every import recorded, oldest first: (hash, kind, source, imported ms, summary).
    pub async fn imports(&self) -> Result<Vec<(String, String, String, i64, String)>> {
        self.all("SELECT hash, kind, source, imported_ms, summary FROM imports ORDER BY imported_ms", (), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .await
    }

    /// Every channel known, as (domain, channel).
    pub async fn channel_names(&self) -> Result<Vec<(String, String)>> {
        self.all("SELECT domain, channel FROM channels ORDER BY domain, channel", (), |r| Ok((r.get(0)?, r.get(1)?)))
            .await
    }

    /// Every emote name ever listed in each channel, as (domain, channel, name), currently
    /// listed names first.
    pub async fn emote_names(&self) -> Result<Vec<(String, String, String)>> {
        self.all(
            "SELECT domain, channel, name FROM emotes GROUP BY domain, channel, name \
             ORDER BY domain, channel, MAX(removed_ms IS NULL) DESC, name",
            (),
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .await
    }
}

impl Tx {
    /// `INSERT INTO {into} VALUES (..),(..) {tail}` in statements of [`ROWS_PER_STATEMENT`]
    /// rows; the number of rows changed.
    async fn put_many(&mut self, into: &str, tail: &str, rows: Vec<Vec<Value>>) -> Result<u64> {
        let Some(width) = rows.first().map(Vec::len) else { return Ok(0) };
        let tuple = format!("({})", vec!["?"; width].join(","));
        let mut changed = 0;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let values = vec![tuple.as_str(); chunk.len()].join(",");
            let params: Vec<Value> = chunk.iter().flatten().cloned().collect();
            changed += self.exec_dyn(&format!("INSERT INTO {into} VALUES {values} {tail}"), params).await?;
        }
        Ok(changed)
    }

    /// Users of a domain among `keys` that exist already.
    async fn existing_users(&mut self, domain: &str, keys: &[&str]) -> Result<HashSet<String>> {
        let mut out = HashSet::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let marks = vec!["?"; chunk.len()].join(",");
            let mut params = vec![Value::Text(domain.to_string())];
            params.extend(chunk.iter().map(|k| Value::Text(k.to_string())));
            let sql = format!("SELECT name_key FROM users WHERE domain = ? AND name_key IN ({marks})");
            out.extend(self.rows_dyn(&sql, params, |r| Ok(r.get::<String>(0)?)).await?);
        }
        Ok(out)
    }

    /// Writes a whole import (see the module doc) in this transaction, unless its hash was
    /// imported before. The caller commits; dropping the transaction instead leaves the
    /// database as it was. Table by table, each step recording the rows it wrote.
    pub async fn import_v0(&mut self, plan: &ImportPlan) -> Result<ImportOutcome> {
        let before = self.sql_time();
        let seen = self
            .rows("SELECT imported_ms, source FROM imports WHERE hash = ?1", [plan.hash.as_str()], |r| {
                Ok((r.get::<i64>(0)?, r.get::<String>(1)?))
            })
            .await?;
        if let Some((imported_ms, source)) = seen.into_iter().next() {
            return Ok(ImportOutcome::AlreadyImported { imported_ms, source });
        }
        let mut w = ImportWritten::default();
        for (d, c, first_ms) in &plan.channels {
            self.touch_channel(d, c, &crate::wire::subject_token(c), *first_ms).await?;
        }
        w.rows.insert("channels", plan.channels.len() as u64);
        self.import_users(plan, &mut w).await?;
        self.import_counters(plan, &mut w).await?;
        self.import_activity(plan, &mut w).await?;
        self.import_population(plan, &mut w).await?;
        self.import_media_and_votes(plan, &mut w).await?;
        self.import_aliases_and_phrases(plan, &mut w).await?;
        self.import_totals_and_record(plan, &mut w).await?;
        w.sql = self.sql_time().saturating_sub(before);
        Ok(ImportOutcome::Written(w))
    }

    /// Users, created or widened (first/last seen, display, PMs); the new ones are counted
    /// per domain first, for `total_users`, as the functions count them.
    async fn import_users(&mut self, plan: &ImportPlan, w: &mut ImportWritten) -> Result<()> {
        let mut by_domain: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for u in &plan.users {
            by_domain.entry(u.domain.as_str()).or_default().push(u.key.as_str());
        }
        for (domain, keys) in by_domain {
            let existing = self.existing_users(domain, &keys).await?;
            let new = keys.iter().filter(|k| !existing.contains(**k)).count() as i64;
            if new > 0 {
                w.new_users.insert(domain.to_string(), new);
            }
        }
        let rows = plan
            .users
            .iter()
            .map(|u| {
                vec![
                    u.domain.as_str().into(),
                    u.key.as_str().into(),
                    u.display.as_str().into(),
                    u.first_seen_ms.into(),
                    u.last_seen_ms.into(),
                    u.pms.into(),
                ]
            })
            .collect();
        let n = self.put_many(super::write::USERS_COLUMNS, super::write::USERS_MERGE, rows).await?;
        w.rows.insert("users", n);
        Ok(())
    }

    /// Per-user counts, phrase kudos and emote uses, through the same upserts ingest-chat
    /// uses (each writes the channel row and the domain rollup).
    async fn import_counters(&mut self, plan: &ImportPlan, w: &mut ImportWritten) -> Result<()> {
        let counts: Vec<((&str, &str, &str), super::Counts)> =
            plan.counts.iter().map(|((d, c, k), n)| ((d.as_str(), c.as_str(), k.as_str()), *n)).collect();
        self.add_counts(&counts).await?;
        w.rows.insert("user_counts", 2 * counts.len() as u64);
        let phrases = named_counts(&plan.phrase_kudos);
        self.add_phrase_kudos(&phrases).await?;
        w.rows.insert("phrase_counts", 2 * phrases.len() as u64);
        let emotes = named_counts(&plan.emote_uses);
        self.add_emote_uses(&emotes).await?;
        w.rows.insert("emote_counts", 2 * emotes.len() as u64);
        Ok(())
    }

    /// Time in channel, added to the closed time of each (domain, channel, user).
    async fn import_activity(&mut self, plan: &ImportPlan, w: &mut ImportWritten) -> Result<()> {
        let rows = plan
            .activity
            .iter()
            .map(|(d, c, k, t, n)| {
                vec![d.as_str().into(), c.as_str().into(), k.as_str().into(), (*t).into(), (*n).into()]
            })
            .collect();
        let n = self
            .put_many(
                "activity(domain, channel, name_key, total_ms, not_afk_ms)",
                "ON CONFLICT(domain, channel, name_key) DO UPDATE SET total_ms = total_ms + excluded.total_ms, \
                 not_afk_ms = not_afk_ms + excluded.not_afk_ms",
                rows,
            )
            .await?;
        w.rows.insert("activity", n);
        Ok(())
    }

    /// Snapshots (a slot that already has one keeps it, so a period both services recorded
    /// is not doubled) and the days' watermarks, widened as ingest-presence widens them.
    async fn import_population(&mut self, plan: &ImportPlan, w: &mut ImportWritten) -> Result<()> {
        let rows = plan
            .population
            .iter()
            .map(|(d, c, slot, conn, chat)| {
                vec![d.as_str().into(), c.as_str().into(), (*slot).into(), (*conn).into(), (*chat).into()]
            })
            .collect();
        let n = self
            .put_many(
                "population(domain, channel, slot_ms, connected_count, chat_count)",
                "ON CONFLICT DO NOTHING",
                rows,
            )
            .await?;
        w.slots_taken = plan.population.len() as u64 - n;
        w.rows.insert("population", n);

        let rows = plan
            .watermarks
            .iter()
            .map(|(d, c, day, kind, at, total, chat)| {
                vec![
                    d.as_str().into(),
                    c.as_str().into(),
                    day.as_str().into(),
                    (*kind).into(),
                    (*at).into(),
                    (*total).into(),
                    (*chat).into(),
                ]
            })
            .collect();
        let n = self
            .put_many(
                "watermarks(domain, channel, day, kind, at_ms, total_users, chat_users)",
                "ON CONFLICT(domain, channel, day, kind) DO UPDATE SET at_ms = excluded.at_ms, \
                 total_users = excluded.total_users, chat_users = excluded.chat_users \
                 WHERE (kind = 'high' AND excluded.total_users > total_users) \
                 OR (kind = 'low' AND excluded.total_users < total_users)",
                rows,
            )
            .await?;
        w.rows.insert("watermarks", n);
        Ok(())
    }

    /// The media log, appended; votes, of which the latest per user and item wins.
    async fn import_media_and_votes(&mut self, plan: &ImportPlan, w: &mut ImportWritten) -> Result<()> {
        let rows = plan
            .media
            .iter()
            .map(|(d, c, at, ty, id, title)| {
                vec![
                    d.as_str().into(),
                    c.as_str().into(),
                    (*at).into(),
                    ty.as_str().into(),
                    id.as_str().into(),
                    title.as_str().into(),
                ]
            })
            .collect();
        let n = self.put_many("media_log(domain, channel, at_ms, media_type, media_id, title)", "", rows).await?;
        w.rows.insert("media_log", n);

        let rows = plan
            .votes
            .iter()
            .map(|(d, c, ty, id, k, vote, at)| {
                vec![
                    d.as_str().into(),
                    c.as_str().into(),
                    ty.as_str().into(),
                    id.as_str().into(),
                    k.as_str().into(),
                    (*vote).into(),
                    (*at).into(),
                ]
            })
            .collect();
        let n = self
            .put_many(
                "movie_votes(domain, channel, media_type, media_id, name_key, vote, at_ms)",
                "ON CONFLICT(domain, channel, media_type, media_id, name_key) \
                 DO UPDATE SET vote = excluded.vote, at_ms = excluded.at_ms WHERE excluded.at_ms >= at_ms",
                rows,
            )
            .await?;
        w.rows.insert("movie_votes", n);
        Ok(())
    }

    /// Aliases, one owner each (an alias someone of ours already has stays theirs, and is
    /// reported), and trigger phrases added to ours.
    async fn import_aliases_and_phrases(&mut self, plan: &ImportPlan, w: &mut ImportWritten) -> Result<()> {
        let owners: HashMap<String, String> = self
            .rows("SELECT alias, display FROM aliases", (), |r| Ok((r.get(0)?, r.get(1)?)))
            .await?
            .into_iter()
            .collect();
        let mut rows = Vec::new();
        for (alias, key, display) in &plan.aliases {
            match owners.get(alias) {
                Some(owner) => w.aliases_taken.push((alias.clone(), owner.clone())),
                None => rows.push(vec![alias.as_str().into(), key.as_str().into(), display.as_str().into()]),
            }
        }
        let n = self.put_many("aliases(alias, name_key, display)", "ON CONFLICT(alias) DO NOTHING", rows).await?;
        w.rows.insert("aliases", n);
        let rows = plan.phrases.iter().map(|p| vec![p.as_str().into()]).collect();
        let n = self.put_many("kudos_phrases(phrase)", "ON CONFLICT(phrase) DO NOTHING", rows).await?;
        w.rows.insert("kudos_phrases", n);
        Ok(())
    }

    /// The totals `/metrics` reads (with `total_users` from the users new here), the
    /// versions that make running ingest-chat replicas reload aliases and phrases, and the
    /// import's record under its content hash.
    async fn import_totals_and_record(&mut self, plan: &ImportPlan, w: &mut ImportWritten) -> Result<()> {
        let mut totals: Vec<(&str, &str, i64)> =
            w.new_users.iter().map(|(domain, n)| (domain.as_str(), "total_users", *n)).collect();
        totals.extend(plan.totals.iter().map(|(domain, name, n)| (domain.as_str(), name.as_str(), *n)));
        self.add_totals(&totals).await?;
        // (`total_users` is reported as `new_users`.)
        w.rows.insert("totals", plan.totals.len() as u64);
        // Running ingest-chat replicas reload aliases and phrases when these move.
        self.bump_version("aliases").await?;
        self.bump_version("phrases").await?;
        self.exec(
            "INSERT INTO imports(hash, kind, source, imported_ms, summary) VALUES (?1, ?2, ?3, ?4, ?5)",
            libsql::params![plan.hash.as_str(), V0_KIND, plan.source.as_str(), plan.now_ms, plan.summary.as_str()],
        )
        .await?;
        Ok(())
    }
}

/// ((domain, channel, user, phrase or emote), n) as an [`ImportPlan`] holds it.
type PlannedCount = ((String, String, String, String), i64);

/// A plan's phrase kudos or emote uses, borrowed as the write side takes them.
fn named_counts(rows: &[PlannedCount]) -> Vec<super::NamedCount<'_>> {
    rows.iter().map(|((d, c, k, p), n)| ((d.as_str(), c.as_str(), k.as_str(), p.as_str()), *n)).collect()
}
