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
//!
//! Here: the command (`run`: arguments, our database, the write transaction); `read.rs`
//! checks and keeps the old rows and hashes them; `plan.rs` makes the conversions above,
//! one step per concern; `report.rs` says what was read, skipped and written.

mod plan;
mod read;
mod report;

use anyhow::{bail, Context, Result};
use plan::Known;
use read::Fold;
use report::{plan_rows, print_report, summary_json};
use shared::config::Config;
use shared::store::{ImportOutcome, ImportPlan, ImportWritten, Store, V0Reader, V0_KIND};
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

/// The whole command: read and check the old file, plan, then (unless a dry run, or the
/// content was imported already) write the plan in one transaction and report.
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
        let (store, known) = open_ours(&config).await?;
        (Some(store), known)
    };

    let mut fold = Fold::new(&config);
    let hash = read::read_all(&reader, &mut fold).await?;
    let read_time = started.elapsed();
    let now_ms = shared::harness::now_ms();
    let mut plan = plan::plan(&fold.rows, &mut fold.report, &config, &known, &default_domain, now_ms);
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
    if !not_imported_yet(&store, &hash, args.also, &plan.source).await? {
        return Ok(());
    }
    plan.summary = summary_json(&report, &plan, &file);
    let Some((written, lock_held)) = write(&store, &plan).await? else {
        return Ok(());
    };
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

/// Opens our database (migrating it like the functions do) and reads the channel and emote
/// spellings it already knows, so that the plan maps old names onto them.
async fn open_ours(config: &Config) -> Result<(Store, Known)> {
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
    Ok((store, known))
}

/// `false` (said on stdout) when this very content was imported before: nothing to do. An
/// error when another 0.7.1 file was, unless `also`: a grown copy of a file imported before
/// has another hash, and importing it would count the history both files share twice.
/// Another service's file is fine, when said so.
async fn not_imported_yet(store: &Store, hash: &str, also: bool, source: &str) -> Result<bool> {
    if let Some((at, source)) = store.imported(hash).await.context("cannot read our imports")? {
        println!(
            "already imported: this content ({source}, hash {}) was imported on {}; nothing to do",
            &hash[..16],
            shared::wire::format_timestamp(at)
        );
        return Ok(false);
    }
    if !also {
        let earlier = store.imports().await.context("cannot read our imports")?;
        if let Some((_, _, earlier_source, at, _)) = earlier.iter().find(|i| i.1 == V0_KIND) {
            bail!(
                "another kryten-userstats 0.7.1 file ({earlier_source}) was imported on {}: if {source} is a newer copy of it, importing would count their common history twice (nothing written); pass --also to import a different service's file on top",
                shared::wire::format_timestamp(*at),
            );
        }
    }
    Ok(true)
}

/// Writes the plan in one transaction, waiting up to [`LOCK_WAIT`] for the write lock while
/// the functions write. `None` when the content turned out to be imported meanwhile (said
/// on stdout, nothing written); else what was written and how long the lock was held.
async fn write(store: &Store, plan: &ImportPlan) -> Result<Option<(ImportWritten, Duration)>> {
    eprintln!("writing: one transaction ({} rows)", plan_rows(plan).values().sum::<u64>());
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
    let outcome = tx.import_v0(plan).await.context("import failed; nothing was written")?;
    let written = match outcome {
        ImportOutcome::AlreadyImported { imported_ms, source } => {
            drop(tx);
            println!(
                "already imported: this content ({source}) was imported on {}; nothing to do",
                shared::wire::format_timestamp(imported_ms)
            );
            return Ok(None);
        }
        ImportOutcome::Written(w) => w,
    };
    if let Some(ms) = std::env::var(PAUSE_ENV).ok().and_then(|v| v.parse::<u64>().ok()) {
        eprintln!("pausing {ms} ms inside the write transaction ({PAUSE_ENV})");
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    tx.commit().await.context("commit failed; nothing was written")?;
    Ok(Some((written, locked.elapsed())))
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
