//! `import-v0`: imports a kryten-userstats 0.7.1 database (the Python service's SQLite file)
//! into ours, exactly once, all or nothing.
//!
//! How: the old file is opened read-only and its layout checked (exactly 0.7.1's 13 tables
//! and columns, `shared::store::V0Reader`); every row is read, checked and folded in memory
//! into an [`ImportPlan`] *before* our database is touched; then one `BEGIN IMMEDIATE`
//! transaction writes the plan with multi-row statements, records the import under the
//! content hash in the never-pruned `imports` table, bumps the `aliases`/`phrases` versions
//! (running ingest-chat replicas reload them) and commits. Ingest functions running beside
//! it wait for the write lock (they retry with back-off, their events stay unacked) and go
//! on; the summary says how long the lock was held. (On a libSQL server, sqld rolls back a
//! write transaction older than 5 s once another writer waits: big imports there want the
//! ingest functions stopped; a rolled-back import writes nothing.)
//!
//! Conversions (also in deploy/OPERATIONS.md, "Switching from the Python service"):
//! * **Times**: 0.7.1 writes `datetime.now(timezone.utc).isoformat()` strings
//!   (`2026-11-29T01:30:33.256146+00:00`); they become ms since the epoch (fraction cut to
//!   ms; a missing offset is UTC). They are the times 0.7.1 *processed* rows, not event times.
//! * **Seconds** of `user_activity` become ms (× 1000), added to closed time in `activity`.
//! * **Domains** are lower-cased (ours are). **Channels** keep 0.7.1's spelling (the bridge's
//!   channel name) unless our database or the configuration already knows the channel under
//!   another case: then that spelling, so that one channel stays one.
//! * **Users** are one per lower-cased name: case variants (`Alice`, `alice`) merge — counts
//!   add up, first seen is the earliest, last seen the latest, the display name is the
//!   spelling with the latest `last_seen_at`. Each merge is listed in the report. Users and
//!   PMs carry no domain in 0.7.1: a user is created in every domain where one of its names
//!   appears in a per-channel table (messages, activity, emotes, kudos, votes), else in the
//!   `--domain`; its PMs are counted once, in the `--domain` if the user is there, else in
//!   its first domain (alphabetically). A name with counts but no `users` row gets first and
//!   last seen from its votes, else the import's time.
//! * **Ignored names** (`[server]` and `ignore_users`, which our functions never count) are
//!   left out of every table and reported as skipped.
//! * **Messages, ++ and phrase kudos, emotes** go to `user_counts` / `phrase_counts` /
//!   `emote_counts` / `emote_totals`, per channel and in the domain rollup (channel ''), and
//!   to the totals `/metrics` reads (`total_messages`, `total_kudos_plusplus`,
//!   `total_kudos_phrases`, `total_emotes`, `total_pms`, `total_media_changes`,
//!   `total_users` for users new to our database, and each channel's `channel_messages:`).
//!   Numbers are taken as 0.7.1 counted them (its rules differ from ours; nothing is
//!   re-derived). Hourly buckets cannot be derived (0.7.1 keeps no per-message time).
//! * **Emote names**: 0.7.1 stores them lower-cased without `#`. If the channel's emote list
//!   in our database has a name that matches case-insensitively (ignoring a leading `#`),
//!   that spelling; else `#name` (0.7.1 only ever counted the `#word` form).
//! * **Population snapshots** go to the interval slot (`snapshots.interval_seconds`) that
//!   contains their time, as ours are keyed; a slot that already has a snapshot keeps it
//!   (so a period both services recorded is not doubled). `chat_count` is imported as 0.7.1
//!   stored it (equal to connected), `usercount` as unknown.
//! * **Watermarks**: 0.7.1 keeps many rows per day (rolling 24-hour marks); ours are one
//!   `high` and one `low` per channel and UTC day. Each day's high and low are taken from
//!   the old snapshots and watermark rows together (at their slot's time) and widen an
//!   existing day row like ingest-presence does.
//! * **Media log**: every `media_changes` row is appended as it is (type and id `''` when
//!   0.7.1 had none).
//! * **Votes**: keyed by (type, id) here, by title there. A row with type and id keeps them;
//!   one without gets those of the latest media-log row of that channel with the same title
//!   (at or before the vote, else any); failing that it is kept under type `''` and the
//!   title as id (counted, shown without a title). Two old votes of one user that land on
//!   one item (case variants, renamed titles): the latest wins, as in ours.
//! * **Aliases** are lower-cased; an alias 0.7.1 gave to two users goes to the first
//!   (skipped for the second), one that a user of ours already has stays theirs.
//!   **Trigger phrases** are added to ours (trimmed, lower-cased); into a database whose
//!   list is still empty they stand instead of `kudos.default_phrases` (which ingest-chat
//!   only seeds into an empty list).
//! * **Retention**: population and media rows older than `retention.days` (365 by default)
//!   are imported and then pruned by ingest-presence's housekeeping like any other; raise
//!   `retention.days` first to keep them. Counters, activity, watermarks, votes are kept
//!   forever.
//!
//! Bad rows (negative counts, unparseable times, empty or NUL-containing names, values of
//! the wrong type) are **skipped and counted** by table and reason, never half-imported;
//! structural problems (not SQLite, another program's database, a table or column missing
//! or unknown to 0.7.1) **refuse** the whole file with one line.

use anyhow::{bail, Context, Result};
use libsql::Value;
use sha2::{Digest, Sha256};
use shared::config::Config;
use shared::store::{Counts, ImportOutcome, ImportPlan, ImportUser, Store, V0Reader, V0_KIND, V0_TABLES};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The command line of `import-v0`.
#[derive(Debug, Clone)]
pub struct Args {
    pub file: PathBuf,
    pub domain: Option<String>,
    pub dry_run: bool,
    pub config: Option<PathBuf>,
    /// Import although another 0.7.1 file was imported before (a different service's).
    pub also: bool,
}

/// For tests only: pause this many ms inside the write transaction, before the commit (so a
/// test can kill the import while it holds the transaction).
const PAUSE_ENV: &str = "KRYTEN_IMPORT_PAUSE_MS";

/// How long to keep trying to start the write transaction while functions write.
const LOCK_WAIT: Duration = Duration::from_secs(120);

pub async fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let config = load_config(args.config.as_deref())?;
    let file = args.file.to_string_lossy().into_owned();
    let default_domain = args.domain.clone().unwrap_or_else(|| config.default_domain()).trim().to_lowercase();

    let reader = V0Reader::open(&file).await?;
    // Our database's channel and emote spellings (not for a dry run: it does not touch ours).
    let (store, known) = if args.dry_run {
        (None, Known::default())
    } else {
        let location = config.database.location(false)?;
        let store = Store::connect(&location, Duration::from_millis(config.database.busy_timeout_ms.max(1)))
            .await
            .with_context(|| format!("cannot open our database {}", shared::store::location_name(&location)))?;
        // A connection of its own, after the one that ran the migrations.
        let store = store.another().await.context("cannot open our database")?;
        let known = Known {
            channels: store.channel_names().await.context("cannot read our channels")?,
            emotes: store.emote_names().await.context("cannot read our emote lists")?,
        };
        (Some(store), known)
    };

    let mut fold = Fold::new(&config, default_domain.clone());
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
    let hash = format!("{:x}", hasher.finalize());
    let read_time = started.elapsed();
    let now_ms = shared::harness::now_ms();
    let mut plan = fold.plan(&config, &known, now_ms);
    plan.hash = hash.clone();
    plan.source = Path::new(&file).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(file.clone());
    plan.now_ms = now_ms;
    let report = fold.report;

    let Some(store) = store else {
        println!("dry run: nothing written (our database was not opened; channel and emote spellings it knows are not applied)");
        print_report(&report, &plan, None, &hash);
        println!("read in {:.1} s", read_time.as_secs_f64());
        return Ok(());
    };
    if let Some((at, source)) = store.imported(&hash).await.context("cannot read our imports")? {
        println!(
            "already imported: this content ({source}, hash {}) was imported on {}; nothing to do",
            &hash[..16],
            shared::wire::format_timestamp(at)
        );
        return Ok(());
    }
    // A grown copy of a file imported before has another hash: importing it would count
    // the history both files share twice. Another service's file is fine, when said so.
    if !args.also {
        let earlier = store.imports().await.context("cannot read our imports")?;
        if let Some((_, _, source, at, _)) = earlier.iter().find(|i| i.1 == V0_KIND) {
            bail!(
                "another kryten-userstats 0.7.1 file ({source}) was imported on {}: if {} is a newer copy of it, importing would count their common history twice (nothing written); pass --also to import a different service's file on top",
                shared::wire::format_timestamp(*at),
                plan.source
            );
        }
    }
    plan.summary = summary_json(&report, &plan, &file);

    eprintln!("writing: one transaction ({} rows)", plan_rows(&plan).values().sum::<u64>());
    let deadline = Instant::now() + LOCK_WAIT;
    let mut tx = loop {
        match store.write().await {
            Ok(tx) => break tx,
            Err(e) if shared::store::is_busy(&e) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e).context("cannot start the write transaction"),
        }
    };
    let locked = Instant::now();
    let outcome = tx.import_v0(&plan).await.context("import failed; nothing was written")?;
    let written = match outcome {
        ImportOutcome::AlreadyImported { imported_ms, source } => {
            drop(tx);
            println!(
                "already imported: this content ({source}) was imported on {}; nothing to do",
                shared::wire::format_timestamp(imported_ms)
            );
            return Ok(());
        }
        ImportOutcome::Written(w) => w,
    };
    if let Some(ms) = std::env::var(PAUSE_ENV).ok().and_then(|v| v.parse::<u64>().ok()) {
        eprintln!("pausing {ms} ms inside the write transaction ({PAUSE_ENV})");
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    tx.commit().await.context("commit failed; nothing was written")?;
    let lock_held = locked.elapsed();
    print_report(&report, &plan, Some(&written), &hash);
    println!(
        "done in {:.1} s: read and checked in {:.1} s, write lock held {} ms ({} ms in SQL)",
        started.elapsed().as_secs_f64(),
        read_time.as_secs_f64(),
        lock_held.as_millis(),
        written.sql.as_millis()
    );
    Ok(())
}

/// The configuration the functions read: `--config`, else `$USERSTATS_CONFIG`, else
/// `./userstats.toml` when present; `USERSTATS_*` variables override it.
fn load_config(path: Option<&Path>) -> Result<Config> {
    let path = match path {
        Some(p) => Some(p.to_path_buf()),
        None => match std::env::var("USERSTATS_CONFIG") {
            Ok(p) if !p.is_empty() => Some(PathBuf::from(p)),
            _ => Some(PathBuf::from("userstats.toml")).filter(|p| p.exists()),
        },
    };
    let env: Vec<(String, String)> = std::env::vars().collect();
    Config::load(path.as_deref(), &env)
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

/// What our database already knows (spellings to map onto).
#[derive(Default)]
struct Known {
    /// (domain, channel)
    channels: Vec<(String, String)>,
    /// (domain, channel, emote name), currently listed first.
    emotes: Vec<(String, String, String)>,
}

/// What the import saw: rows read, skipped (by table and reason), merged names.
#[derive(Default)]
struct Report {
    read: BTreeMap<&'static str, u64>,
    skipped: BTreeMap<(&'static str, String), u64>,
    /// key → every spelling seen, for keys with more than one.
    merges: Vec<(String, Vec<String>)>,
    /// Users to write (distinct lower-cased names), and those without a `users` row.
    users: usize,
    users_without_row: usize,
    /// Population rows that fell into a slot another old row already had.
    slot_duplicates: u64,
    votes_by_title: u64,
    votes_unresolved: u64,
}

impl Report {
    fn skip(&mut self, table: &'static str, reason: &str) {
        *self.skipped.entry((table, reason.to_string())).or_default() += 1;
    }
}

// Rows as read and checked, in old spellings (channel) and lower-cased keys (user).
struct UserIn {
    name: String,
    first: i64,
    last: i64,
}
struct CountIn {
    domain: String,
    channel: String,
    name: String,
    extra: String,
    n: i64,
    n2: i64,
}
struct SnapIn {
    domain: String,
    channel: String,
    at: i64,
    total: i64,
    chat: i64,
}
struct MediaIn {
    domain: String,
    channel: String,
    at: i64,
    title: String,
    media_type: String,
    media_id: String,
}
struct VoteIn {
    domain: String,
    channel: String,
    title: String,
    media_type: String,
    media_id: String,
    name: String,
    vote: i64,
    at: i64,
}

/// Everything read, checked and kept until the plan is made.
struct Fold {
    ignored: std::collections::HashSet<String>,
    default_domain: String,
    report: Report,
    users: Vec<UserIn>,
    aliases: Vec<(String, String)>,
    messages: Vec<CountIn>,
    pms: Vec<(String, i64)>,
    snapshots: Vec<SnapIn>,
    media: Vec<MediaIn>,
    activity: Vec<CountIn>,
    emotes: Vec<CountIn>,
    plusplus: Vec<CountIn>,
    phrases: Vec<CountIn>,
    triggers: Vec<String>,
    watermarks: Vec<SnapIn>,
    votes: Vec<VoteIn>,
}

/// Why a value cannot be used.
type Bad = &'static str;
/// (domain, channel, UTC day, `high`/`low`) of a watermark.
type DayKey = (String, String, String, &'static str);
/// (domain, channel, media type, media id, user) of a vote.
type VoteKey = (String, String, String, String, String);
/// A media-log entry with type and id: (at ms, type, id).
type Logged = (i64, String, String);

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

impl Fold {
    fn new(config: &Config, default_domain: String) -> Fold {
        Fold {
            ignored: config.ignored_users(),
            default_domain,
            report: Report::default(),
            users: Vec::new(),
            aliases: Vec::new(),
            messages: Vec::new(),
            pms: Vec::new(),
            snapshots: Vec::new(),
            media: Vec::new(),
            activity: Vec::new(),
            emotes: Vec::new(),
            plusplus: Vec::new(),
            phrases: Vec::new(),
            triggers: Vec::new(),
            watermarks: Vec::new(),
            votes: Vec::new(),
        }
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

    fn take_row(&mut self, table: &'static str, r: &[Value]) -> Result<(), Bad> {
        match table {
            "users" => {
                let name = self.user(&r[0])?;
                let (first, last) = (time(&r[1])?, time(&r[2])?);
                self.users.push(UserIn { name, first: first.min(last), last: first.max(last) });
            }
            "user_aliases" => {
                let name = self.user(&r[0])?;
                let alias = text(&r[1])?.trim().to_lowercase();
                self.aliases.push((name, alias));
            }
            "message_counts" | "kudos_plusplus" => {
                let row = CountIn {
                    name: self.user(&r[0])?,
                    channel: text(&r[1])?,
                    domain: domain(&r[2])?,
                    extra: String::new(),
                    n: count(&r[3])?,
                    n2: 0,
                };
                if table == "message_counts" { &mut self.messages } else { &mut self.plusplus }.push(row);
            }
            "pm_counts" => {
                let name = self.user(&r[0])?;
                self.pms.push((name, count(&r[1])?));
            }
            "population_snapshots" | "population_watermarks" => {
                let row = SnapIn {
                    channel: text(&r[0])?,
                    domain: domain(&r[1])?,
                    at: time(&r[2])?,
                    total: count(&r[3])?,
                    chat: count(&r[4])?,
                };
                if table == "population_snapshots" { &mut self.snapshots } else { &mut self.watermarks }.push(row);
            }
            "media_changes" => self.media.push(MediaIn {
                channel: text(&r[0])?,
                domain: domain(&r[1])?,
                at: time(&r[2])?,
                title: opt_text(&r[3])?,
                media_type: opt_text(&r[4])?,
                media_id: opt_text(&r[5])?,
            }),
            "user_activity" => self.activity.push(CountIn {
                name: self.user(&r[0])?,
                channel: text(&r[1])?,
                domain: domain(&r[2])?,
                extra: String::new(),
                n: count(&r[3])?,
                n2: count(&r[4])?,
            }),
            "emote_usage" | "kudos_phrases" => {
                let row = CountIn {
                    name: self.user(&r[0])?,
                    channel: text(&r[1])?,
                    domain: domain(&r[2])?,
                    extra: text(&r[3])?.trim().to_lowercase(),
                    n: count(&r[4])?,
                    n2: 0,
                };
                if table == "emote_usage" { &mut self.emotes } else { &mut self.phrases }.push(row);
            }
            "kudos_trigger_phrases" => self.triggers.push(text(&r[0])?.trim().to_lowercase()),
            "movie_votes" => {
                let vote = match &r[6] {
                    Value::Integer(v) if *v > 0 => 1,
                    Value::Integer(v) if *v < 0 => -1,
                    _ => return Err("vote is not +1 or -1"),
                };
                self.votes.push(VoteIn {
                    channel: text(&r[0])?,
                    domain: domain(&r[1])?,
                    title: opt_text(&r[2])?,
                    media_type: opt_text(&r[3])?,
                    media_id: opt_text(&r[4])?,
                    name: self.user(&r[5])?,
                    vote,
                    at: time(&r[7])?,
                });
            }
            _ => return Err("unknown table"),
        }
        Ok(())
    }

    /// Turns what was read into what to write (see the module doc for each rule).
    fn plan(&mut self, config: &Config, known: &Known, now_ms: i64) -> ImportPlan {
        let mut plan = ImportPlan::default();
        let report = &mut self.report;

        // Channels: one spelling per (domain, lower-cased name): ours, the configured, else 0.7.1's.
        let mut channel_names: HashMap<(String, String), String> = HashMap::new();
        for (d, c) in &known.channels {
            channel_names.entry((d.clone(), c.to_lowercase())).or_insert_with(|| c.clone());
        }
        for c in &config.channels {
            channel_names
                .entry((c.domain.to_lowercase(), c.channel.to_lowercase()))
                .or_insert_with(|| c.channel.clone());
        }
        let mut channel = |d: &str, c: &str| -> String {
            channel_names.entry((d.to_string(), c.to_lowercase())).or_insert_with(|| c.to_string()).clone()
        };
        let mut channel_first: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut see_channel = |d: &str, c: &str, at: Option<i64>| {
            let e = channel_first.entry((d.to_string(), c.to_string())).or_insert(i64::MAX);
            if let Some(at) = at {
                *e = (*e).min(at);
            }
        };

        // Users: spellings, domains, first/last seen.
        let mut spellings: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut domains: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut seen: HashMap<String, (i64, i64, String, i64)> = HashMap::new(); // first, last, display, display's last
        for u in &self.users {
            let key = u.name.to_lowercase();
            spellings.entry(key.clone()).or_default().insert(u.name.clone());
            let e = seen.entry(key).or_insert((u.first, u.last, u.name.clone(), u.last));
            e.0 = e.0.min(u.first);
            e.1 = e.1.max(u.last);
            if u.last > e.3 {
                e.2 = u.name.clone();
                e.3 = u.last;
            }
        }
        let tables = [&self.messages, &self.activity, &self.emotes, &self.plusplus, &self.phrases];
        for row in tables.iter().flat_map(|t| t.iter()) {
            let key = row.name.to_lowercase();
            spellings.entry(key.clone()).or_default().insert(row.name.clone());
            domains.entry(key).or_default().insert(row.domain.clone());
        }
        let mut vote_times: HashMap<String, (i64, i64)> = HashMap::new();
        for v in &self.votes {
            let key = v.name.to_lowercase();
            spellings.entry(key.clone()).or_default().insert(v.name.clone());
            domains.entry(key.clone()).or_default().insert(v.domain.clone());
            let e = vote_times.entry(key).or_insert((v.at, v.at));
            e.0 = e.0.min(v.at);
            e.1 = e.1.max(v.at);
        }
        // PM senders are users (0.7.1 tracks them); alias owners alone are not.
        for name in self.pms.iter().map(|(n, _)| n) {
            spellings.entry(name.to_lowercase()).or_default().insert(name.clone());
        }
        report.merges = spellings
            .iter()
            .filter(|(_, s)| s.len() > 1)
            .map(|(k, s)| (k.clone(), s.iter().cloned().collect()))
            .collect();
        let display = |key: &str| -> String {
            seen.get(key)
                .map(|s| s.2.clone())
                .or_else(|| spellings.get(key).and_then(|s| s.iter().next().cloned()))
                .unwrap_or_else(|| key.to_string())
        };
        let mut pms: BTreeMap<String, i64> = BTreeMap::new();
        for (name, n) in &self.pms {
            *pms.entry(name.to_lowercase()).or_default() += n;
        }
        let mut totals: BTreeMap<(String, String), i64> = BTreeMap::new();
        for key in spellings.keys() {
            let ds: Vec<String> = match domains.get(key) {
                Some(d) if !d.is_empty() => d.iter().cloned().collect(),
                _ => vec![self.default_domain.clone()],
            };
            let home = if ds.contains(&self.default_domain) { self.default_domain.clone() } else { ds[0].clone() };
            let (first, last) = match (seen.get(key), vote_times.get(key)) {
                (Some(s), _) => (s.0, s.1),
                (None, Some(v)) => {
                    report.users_without_row += 1;
                    *v
                }
                (None, None) => {
                    report.users_without_row += 1;
                    (now_ms, now_ms)
                }
            };
            let user_pms = pms.get(key).copied().unwrap_or(0);
            if user_pms > 0 {
                *totals.entry((home.clone(), "total_pms".into())).or_default() += user_pms;
            }
            for d in ds {
                plan.users.push(ImportUser {
                    pms: if d == home { user_pms } else { 0 },
                    domain: d,
                    key: key.clone(),
                    display: display(key),
                    first_seen_ms: first,
                    last_seen_ms: last,
                });
            }
        }
        report.users = spellings.len();

        // Per-channel counters.
        let mut counts: BTreeMap<(String, String, String), Counts> = BTreeMap::new();
        let mut named_rows =
            |rows: &[CountIn], field: &str, counts: &mut BTreeMap<(String, String, String), Counts>| {
                for r in rows {
                    let c = channel(&r.domain, &r.channel);
                    see_channel(&r.domain, &c, None);
                    let e = counts.entry((r.domain.clone(), c.clone(), r.name.to_lowercase())).or_default();
                    match field {
                        "messages" => {
                            e.messages += r.n;
                            *totals.entry((r.domain.clone(), "total_messages".into())).or_default() += r.n;
                            *totals.entry((r.domain.clone(), format!("channel_messages:{c}"))).or_default() += r.n;
                        }
                        "plusplus" => {
                            e.kudos_plusplus += r.n;
                            *totals.entry((r.domain.clone(), "total_kudos_plusplus".into())).or_default() += r.n;
                        }
                        "phrases" => {
                            e.kudos_phrases += r.n;
                            *totals.entry((r.domain.clone(), "total_kudos_phrases".into())).or_default() += r.n;
                        }
                        _ => {
                            e.emotes += r.n;
                            *totals.entry((r.domain.clone(), "total_emotes".into())).or_default() += r.n;
                        }
                    }
                }
            };
        named_rows(&self.messages, "messages", &mut counts);
        named_rows(&self.plusplus, "plusplus", &mut counts);
        named_rows(&self.phrases, "phrases", &mut counts);
        named_rows(&self.emotes, "emotes", &mut counts);
        plan.counts = counts.into_iter().filter(|(_, n)| *n != Counts::default()).collect();

        let mut phrase_kudos: BTreeMap<(String, String, String, String), i64> = BTreeMap::new();
        for r in &self.phrases {
            let c = channel(&r.domain, &r.channel);
            *phrase_kudos.entry((r.domain.clone(), c, r.name.to_lowercase(), r.extra.clone())).or_default() += r.n;
        }
        plan.phrase_kudos = phrase_kudos.into_iter().filter(|(_, n)| *n > 0).collect();

        let mut emote_spelling: HashMap<(String, String, String), String> = HashMap::new();
        for (d, c, name) in &known.emotes {
            let k = (d.clone(), c.to_lowercase(), name.trim_start_matches('#').to_lowercase());
            emote_spelling.entry(k).or_insert_with(|| name.clone());
        }
        let mut emotes: BTreeMap<(String, String, String, String), i64> = BTreeMap::new();
        for r in &self.emotes {
            let c = channel(&r.domain, &r.channel);
            let bare = r.extra.trim_start_matches('#').to_string();
            let name = emote_spelling
                .get(&(r.domain.clone(), c.to_lowercase(), bare.clone()))
                .cloned()
                .unwrap_or_else(|| format!("#{bare}"));
            *emotes.entry((r.domain.clone(), c, r.name.to_lowercase(), name)).or_default() += r.n;
        }
        plan.emote_uses = emotes.into_iter().filter(|(_, n)| *n > 0).collect();

        let mut activity: BTreeMap<(String, String, String), (i64, i64)> = BTreeMap::new();
        for r in &self.activity {
            let c = channel(&r.domain, &r.channel);
            see_channel(&r.domain, &c, None);
            let e = activity.entry((r.domain.clone(), c, r.name.to_lowercase())).or_default();
            e.0 = e.0.saturating_add(r.n.saturating_mul(1000));
            e.1 = e.1.saturating_add(r.n2.min(r.n).saturating_mul(1000));
        }
        plan.activity = activity.into_iter().map(|((d, c, k), (t, n))| (d, c, k, t, n)).collect();

        // Snapshots by slot; watermarks per UTC day from snapshots and old marks together.
        let interval_ms = (config.snapshots.interval_seconds.max(1) as i64).saturating_mul(1000);
        let slot = |at: i64| at - at.rem_euclid(interval_ms);
        let mut slots: BTreeMap<(String, String, i64), (i64, i64)> = BTreeMap::new();
        let mut days: BTreeMap<DayKey, (i64, i64, i64)> = BTreeMap::new();
        let mut widen = |d: &str, c: &str, at: i64, total: i64, chat: i64| {
            let day = shared::wire::format_timestamp(at)[..10].to_string();
            for kind in ["high", "low"] {
                let e = days.entry((d.to_string(), c.to_string(), day.clone(), kind)).or_insert((at, total, chat));
                let better = if kind == "high" { total > e.1 } else { total < e.1 };
                if better || (total == e.1 && at < e.0) {
                    *e = (at, total, chat);
                }
            }
        };
        for s in &self.snapshots {
            let c = channel(&s.domain, &s.channel);
            see_channel(&s.domain, &c, Some(s.at));
            let at = slot(s.at);
            widen(&s.domain, &c, at, s.total, s.chat);
            if slots.contains_key(&(s.domain.clone(), c.clone(), at)) {
                report.slot_duplicates += 1;
                continue;
            }
            slots.insert((s.domain.clone(), c, at), (s.total, s.chat));
        }
        for w in &self.watermarks {
            let c = channel(&w.domain, &w.channel);
            see_channel(&w.domain, &c, Some(w.at));
            widen(&w.domain, &c, slot(w.at), w.total, w.chat);
        }
        plan.population = slots.into_iter().map(|((d, c, at), (t, ch))| (d, c, at, t, ch)).collect();
        plan.watermarks =
            days.into_iter().map(|((d, c, day, kind), (at, t, ch))| (d, c, day, kind, at, t, ch)).collect();

        // Media log, then votes resolved against it by title.
        let mut by_title: HashMap<(String, String, String), Vec<Logged>> = HashMap::new();
        for m in &self.media {
            let c = channel(&m.domain, &m.channel);
            see_channel(&m.domain, &c, Some(m.at));
            let title = if m.title.is_empty() { "Unknown".to_string() } else { m.title.clone() };
            if !m.media_type.is_empty() && !m.media_id.is_empty() {
                by_title.entry((m.domain.clone(), c.clone(), title.clone())).or_default().push((
                    m.at,
                    m.media_type.clone(),
                    m.media_id.clone(),
                ));
            }
            *totals.entry((m.domain.clone(), "total_media_changes".into())).or_default() += 1;
            plan.media.push((m.domain.clone(), c, m.at, m.media_type.clone(), m.media_id.clone(), title));
        }
        let mut votes: BTreeMap<VoteKey, (i64, i64)> = BTreeMap::new();
        for v in &self.votes {
            let c = channel(&v.domain, &v.channel);
            see_channel(&v.domain, &c, Some(v.at));
            let (ty, id) = if !v.media_type.is_empty() && !v.media_id.is_empty() {
                (v.media_type.clone(), v.media_id.clone())
            } else {
                report.votes_by_title += 1;
                let logged = by_title.get(&(v.domain.clone(), c.clone(), v.title.clone()));
                let pick = logged.and_then(|l| {
                    l.iter()
                        .filter(|(at, _, _)| *at <= v.at)
                        .max_by_key(|(at, _, _)| *at)
                        .or_else(|| l.iter().max_by_key(|(at, _, _)| *at))
                });
                match pick {
                    Some((_, ty, id)) => (ty.clone(), id.clone()),
                    None => {
                        report.votes_unresolved += 1;
                        (String::new(), v.title.clone())
                    }
                }
            };
            let e = votes.entry((v.domain.clone(), c, ty, id, v.name.to_lowercase())).or_insert((v.vote, v.at));
            if v.at >= e.1 {
                *e = (v.vote, v.at);
            }
        }
        plan.votes = votes.into_iter().map(|((d, c, ty, id, k), (vote, at))| (d, c, ty, id, k, vote, at)).collect();

        let mut aliases: BTreeMap<String, (String, String)> = BTreeMap::new();
        for (name, alias) in &self.aliases {
            let key = name.to_lowercase();
            match aliases.get(alias) {
                Some((owner, _)) if *owner != key => report.skip("user_aliases", "alias already given to another user"),
                Some(_) => {}
                None => {
                    aliases.insert(alias.clone(), (key.clone(), display(&key)));
                }
            }
        }
        plan.aliases = aliases.into_iter().map(|(a, (k, d))| (a, k, d)).collect();
        let triggers: BTreeSet<String> = self.triggers.iter().cloned().collect();
        plan.phrases = triggers.into_iter().collect();

        plan.channels = channel_first
            .into_iter()
            .map(|((d, c), first)| (d, c, if first == i64::MAX { now_ms } else { first }))
            .collect();
        plan.totals = totals.into_iter().filter(|(_, n)| *n != 0).map(|((d, name), n)| (d, name, n)).collect();
        plan
    }
}

/// Rows the plan writes per table of ours (counter tables twice: channel and rollup).
fn plan_rows(plan: &ImportPlan) -> BTreeMap<&'static str, u64> {
    let mut m = BTreeMap::new();
    m.insert("channels", plan.channels.len() as u64);
    m.insert("users", plan.users.len() as u64);
    m.insert("user_counts", 2 * plan.counts.len() as u64);
    m.insert("phrase_counts", 2 * plan.phrase_kudos.len() as u64);
    m.insert("emote_counts", 2 * plan.emote_uses.len() as u64);
    m.insert("activity", plan.activity.len() as u64);
    m.insert("population", plan.population.len() as u64);
    m.insert("watermarks", plan.watermarks.len() as u64);
    m.insert("media_log", plan.media.len() as u64);
    m.insert("movie_votes", plan.votes.len() as u64);
    m.insert("aliases", plan.aliases.len() as u64);
    m.insert("kudos_phrases", plan.phrases.len() as u64);
    m.insert("totals", plan.totals.len() as u64);
    m
}

fn print_report(r: &Report, plan: &ImportPlan, written: Option<&shared::store::ImportWritten>, hash: &str) {
    println!("kryten-userstats 0.7.1 database, content hash {}", &hash[..16]);
    println!("rows read per old table:");
    for (t, n) in &r.read {
        let skipped: u64 = r.skipped.iter().filter(|((st, _), _)| st == t).map(|(_, n)| n).sum();
        println!("  {t:<24} {n:>9} read {skipped:>7} skipped");
    }
    if r.skipped.is_empty() {
        println!("skipped: none");
    } else {
        println!("skipped rows (table: reason):");
        for ((t, reason), n) in &r.skipped {
            println!("  {t}: {reason}: {n}");
        }
    }
    println!(
        "users: {} (by lower-cased name; {} without a users row); user rows over domains: {}",
        r.users,
        r.users_without_row,
        plan.users.len()
    );
    if r.merges.is_empty() {
        println!("case variants merged: none");
    } else {
        println!("case variants merged into one user: {}", r.merges.len());
        for (key, names) in &r.merges {
            println!("  {key} <- {}", names.join(", "));
        }
    }
    if r.slot_duplicates > 0 {
        println!("population snapshots in an interval slot already taken by an earlier old row: {}", r.slot_duplicates);
    }
    if r.votes_by_title > 0 {
        println!(
            "votes without media type/id: {} (resolved by title through the media log: {}, kept under their title: {})",
            r.votes_by_title,
            r.votes_by_title - r.votes_unresolved,
            r.votes_unresolved
        );
    }
    let planned = plan_rows(plan);
    match written {
        None => {
            println!("rows that would be written per table of ours:");
            for (t, n) in &planned {
                println!("  {t:<16} {n:>9}");
            }
        }
        Some(w) => {
            println!("rows written per table of ours (planned / written):");
            for (t, n) in &planned {
                println!("  {t:<16} {n:>9} {:>9}", w.rows.get(t).copied().unwrap_or(0));
            }
            for (d, n) in &w.new_users {
                println!("new users in {d}: {n} (total_users += {n})");
            }
            if w.slots_taken > 0 {
                println!("population slots that already had a snapshot of ours (kept): {}", w.slots_taken);
            }
            for (alias, owner) in &w.aliases_taken {
                println!("alias {alias:?} already belongs to {owner} here: kept theirs");
            }
        }
    }
    for (d, name, n) in &plan.totals {
        println!("  total {d} {name} += {n}");
    }
}

/// The report kept with the import record.
fn summary_json(r: &Report, plan: &ImportPlan, file: &str) -> String {
    let skipped: BTreeMap<String, u64> = r.skipped.iter().map(|((t, why), n)| (format!("{t}: {why}"), *n)).collect();
    serde_json::json!({
        "file": file,
        "read": r.read,
        "skipped": skipped,
        "users": r.users,
        "merges": r.merges.iter().map(|(k, v)| serde_json::json!({"user": k, "names": v})).collect::<Vec<_>>(),
        "planned": plan_rows(plan),
    })
    .to_string()
}
