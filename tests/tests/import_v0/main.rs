//! `userstats-admin import-v0`: a kryten-userstats 0.7.1 database imported exactly once, or
//! not at all.
//!
//! * The real thing: the real Python service (kryten-userstats 0.7.1 from PyPI, installed by
//!   scripts/python-reference) runs on a known stream with case variants, aliases, kudos,
//!   emotes, votes, media, PMs, joins, AFK and leaves, writes its SQLite file and stops; the
//!   file is imported into a fresh database; our query functions then answer every user's
//!   and channel's numbers as the Python file has them (read directly), under the documented
//!   conversions (case variants merged, `[server]` and ignored users left out, emote `#`).
//! * Importing twice changes nothing; an import killed inside its transaction leaves
//!   nothing; every kind of bad input is refused with one line and writes nothing (bad rows
//!   are skipped and counted); case variants merge; importing while ingest-chat applies a
//!   live stream loses and doubles nothing of it.

use libsql::Value as Sql;
use serde_json::{json, Value};
use shared::wire::{format_timestamp, parse_timestamp_ms};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use userstats_tests::checks::{counts, micro_data};
use userstats_tests::python_reference::{init_database, PythonService};
use userstats_tests::*;

mod old_files;
mod python;

use old_files::*;

const CH: &str = "420Grindhouse";

/// Runs `userstats-admin` with arguments and extra environment.
pub(crate) fn admin(args: &[&str], env: &[(&str, &str)]) -> Output {
    let bin = binary("userstats-admin");
    assert!(bin.exists(), "{} is not built: run `cargo build --workspace --bins`", bin.display());
    Command::new(&bin).args(args).envs(env.iter().copied()).output().expect("run userstats-admin")
}

pub(crate) fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Imports `old` with the rig's config; panics with the output unless it succeeds.
pub(crate) fn import(rig: &Rig, old: &str, extra: &[&str]) -> String {
    let mut args = vec!["import-v0", old, "--config", &rig.config];
    args.extend(extra);
    let out = admin(&args, &[]);
    assert!(out.status.success(), "import failed:\n{}", text(&out));
    text(&out)
}

/// Publishes envelopes with core NATS, as the bridge does.
pub(crate) async fn publish(client: &async_nats::Client, events: &[(String, String)]) {
    publish_all(client, events).await.expect("publish");
}

/// What a database holds, in a comparable form (counts, users, logs, totals, imports).
async fn figures(db: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for sql in [
        "SELECT domain, channel, name_key, messages, kudos_plusplus, kudos_phrases, emotes FROM user_counts ORDER BY 1, 2, 3",
        "SELECT domain, name_key, display, first_seen_ms, last_seen_ms, pms FROM users ORDER BY 1, 2",
        "SELECT * FROM phrase_counts ORDER BY 1, 2, 3, 4",
        "SELECT * FROM emote_counts ORDER BY 1, 2, 3, 4",
        "SELECT * FROM activity ORDER BY 1, 2, 3",
        "SELECT domain, channel, at_ms, media_type, media_id, title FROM media_log ORDER BY 1, 2, 3",
        "SELECT * FROM movie_votes ORDER BY 1, 2, 3, 4, 5",
        "SELECT * FROM population ORDER BY 1, 2, 3",
        "SELECT * FROM watermarks ORDER BY 1, 2, 3, 4",
        "SELECT * FROM aliases ORDER BY 1",
        "SELECT * FROM kudos_phrases ORDER BY 1",
        "SELECT * FROM totals ORDER BY 1, 2",
        "SELECT hash FROM imports",
    ] {
        for r in rows(db, sql).await {
            out.push(r.iter().map(s).collect());
        }
        out.push(vec!["--".into()]);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_variants_merge_into_one_user_and_every_table_lands() {
    let rig = Rig::new("import-merge", "");
    let old = synthetic(&rig.dir, "old.db").await;
    // Our database already knows a channel and an emote under other spellings.
    {
        let store = rig.store().await;
        let mut tx = store.write().await.expect("write");
        tx.touch_channel("cytu.be", "OtherChan", "otherchan", 1).await.expect("channel");
        tx.add_emote("cytu.be", CH, "Kappa", 0).await.expect("emote");
        tx.commit().await.expect("commit");
    }
    let report = import(&rig, &old, &[]);
    assert!(report.contains("zed <- ZED, Zed, zed"), "{report}");
    assert!(report.contains("ignored user ([server] or ignore_users)"), "{report}");
    let store = rig.store().await;
    let (d, c) = ("cytu.be", CH);
    let zed = store.user(d, "zed").await.expect("read").expect("one user zed");
    assert_eq!(zed.display, "ZED", "the spelling seen last");
    assert_eq!(zed.first_seen_ms, parse_timestamp_ms("2025-12-01T09:00:00.250+00:00").unwrap());
    assert_eq!(zed.last_seen_ms, parse_timestamp_ms("2026-01-10T12:30:00.500+00:00").unwrap());
    assert_eq!(zed.pms, 7);
    let n = store.user_counts(d, c, "zed").await.unwrap();
    assert_eq!((n.messages, n.kudos_plusplus, n.kudos_phrases, n.emotes), (15, 3, 4, 4));
    assert_eq!(store.user_counts(d, "OtherChan", "zed").await.unwrap().messages, 2, "our spelling of the channel");
    assert_eq!(store.user_counts(d, "otherchan", "zed").await.unwrap().messages, 0);
    assert_eq!(store.user_counts(d, "", "zed").await.unwrap().messages, 17, "domain rollup");
    assert_eq!(store.phrase_kudos(d, c, "zed").await.unwrap(), vec![("lol".to_string(), 3), ("haha".to_string(), 1)]);
    assert_eq!(store.user_emotes(d, "", "zed").await.unwrap(), vec![("Kappa".to_string(), 4)], "the listed spelling");
    assert_eq!(store.emote_leaderboard(d, CH, 10).await.unwrap(), vec![("Kappa".to_string(), 4)]);
    let act = store.user_activity(d, Some(c), "zed").await.unwrap();
    assert_eq!((act[0].closed_total_ms, act[0].closed_not_afk_ms), (120_000, 100_000));
    assert!(store.user(d, "[server]").await.unwrap().is_none(), "[server] is never a user");
    assert_eq!(store.total(d, "total_messages").await.unwrap(), 24, "[server]'s 40 left out");
    assert_eq!(store.total(d, "total_users").await.unwrap(), 2);
    assert_eq!(store.total(d, "total_pms").await.unwrap(), 8);
    // One vote per user per item, the latest; a title-only vote found its item in the media log.
    let votes = store.movie_votes(d, c).await.unwrap();
    let votes: Vec<(String, String, i64, i64)> =
        votes.into_iter().map(|v| (v.media_type, v.media_id, v.upvotes, v.downvotes)).collect();
    assert_eq!(votes, vec![("".into(), "Film B".into(), 1, 0), ("yt".into(), "a1".into(), 0, 1)]);
    assert_eq!(store.user_aliases("yan").await.unwrap(), vec!["y".to_string()], "zz went to the first owner");
    assert_eq!(store.user_aliases("zed").await.unwrap(), vec!["zz".to_string()]);
    let (high, low) = store.watermark_extremes(d, c, 0).await.unwrap();
    assert_eq!((high.map(|w| w.total_users), low.map(|w| w.total_users)), (Some(9), Some(2)));
    assert_eq!(store.snapshots(d, c, 0, 100).await.unwrap().len(), 3);
    assert_eq!(store.media_history(d, c, 10).await.unwrap().len(), 2);
    assert_eq!(store.imports().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_the_same_file_twice_changes_nothing_the_second_time() {
    let rig = Rig::new("import-twice", "");
    let old = synthetic(&rig.dir, "old.db").await;
    import(&rig, &old, &[]);
    let after_first = figures(&rig.db).await;
    // A copy under another name has the same content: still the same import.
    let copy = rig.dir.file("copy-of-old.db");
    std::fs::copy(&old, &copy).expect("copy");
    for file in [&old, &copy] {
        let second = import(&rig, file, &[]);
        assert!(second.contains("already imported"), "{second}");
        assert_eq!(figures(&rig.db).await, after_first, "the second import changed something");
    }
    // A grown copy (the Python service ran on) has another hash: refused, it would count
    // the common history twice, unless --also says it is another service's file.
    exec(&copy, "UPDATE message_counts SET message_count = message_count + 1 WHERE username = 'Yan';").await;
    let out = admin(&["import-v0", &copy, "--config", &rig.config], &[]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success() && err.contains("pass --also"), "{}", text(&out));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(figures(&rig.db).await, after_first, "the refused import changed something");
    import(&rig, &copy, &["--also"]);
    let store = rig.store().await;
    assert_eq!(store.user_counts("cytu.be", CH, "yan").await.unwrap().messages, 7 + 8, "added on top, as asked");
    assert_eq!(store.imports().await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_inside_its_transaction_leaves_nothing() {
    let rig = Rig::new("import-kill", "");
    let old = synthetic(&rig.dir, "old.db").await;
    let log = rig.dir.file("admin.log");
    let mut child = Command::new(binary("userstats-admin"))
        .args(["import-v0", &old, "--config", &rig.config])
        .env("KRYTEN_IMPORT_PAUSE_MS", "60000")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start userstats-admin");
    eventually(Duration::from_secs(30), "the import pauses inside its transaction", || async {
        std::fs::read_to_string(&log).unwrap_or_default().contains("pausing")
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}: {}", std::fs::read_to_string(&log).unwrap_or_default()));
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let store = rig.store().await;
    assert!(store.imports().await.unwrap().is_empty(), "no import recorded");
    assert!(store.user("cytu.be", "zed").await.unwrap().is_none(), "no user written");
    assert_eq!(store.total("cytu.be", "total_messages").await.unwrap(), 0);
    assert!(rows(&rig.db, "SELECT * FROM user_counts").await.is_empty());
    assert!(rows(&rig.db, "SELECT * FROM media_log").await.is_empty());
    // The lock went with the process: the import runs to the end now.
    let report = import(&rig, &old, &[]);
    assert!(report.contains("done in"), "{report}");
    assert_eq!(store.user_counts("cytu.be", "", "zed").await.unwrap().messages, 17);
}

/// Asserts a refusal: non-zero exit, one `error:` line containing `why`, nothing written
/// (the target database is not even created).
fn refused(rig: &Rig, old: &str, why: &str) {
    let out = admin(&["import-v0", old, "--config", &rig.config], &[]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{old}: accepted:\n{}", text(&out));
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("userstats-admin: error: ") && err.contains(why), "{old}: wanted {why:?}, got {err}");
    assert!(!std::path::Path::new(&rig.db).exists(), "{old}: our database was touched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_one_line_and_writes_nothing() {
    let rig = Rig::new("import-bad", "");
    let dir = TempDir::new("import-bad-files");
    let not_sqlite = dir.file("notes.txt");
    std::fs::write(&not_sqlite, "hello, not a database\n".repeat(10)).unwrap();
    refused(&rig, &not_sqlite, "is not an SQLite database file");
    let empty = dir.file("empty.db");
    std::fs::write(&empty, "").unwrap();
    refused(&rig, &empty, "is not an SQLite database file");
    refused(&rig, &dir.file("missing.db"), "cannot open");

    let other = dir.file("other.db");
    exec(&other, "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes(body) VALUES ('x');").await;
    refused(&rig, &other, "not a kryten-userstats database");
    let ours = dir.file("ours.db");
    drop(shared::store::Store::open(&ours, Duration::from_secs(1)).await.expect("our database"));
    refused(&rig, &ours, "a database of this service");

    // A 0.7.1 database with one change to its schema, and what the refusal says.
    for (file, change, says) in [
        ("no-votes.db", "DROP TABLE movie_votes;", "lacks the kryten-userstats 0.7.1 table(s) movie_votes"),
        ("no-column.db", "ALTER TABLE users DROP COLUMN last_seen_at;", "table users lacks column(s) last_seen_at"),
        (
            "newer-column.db",
            "ALTER TABLE message_counts ADD COLUMN hour INTEGER;",
            "message_counts has column(s) hour that kryten-userstats 0.7.1 does not create",
        ),
        (
            "newer-table.db",
            "CREATE TABLE message_hours(id INTEGER PRIMARY KEY, hour INTEGER);",
            "has table(s) message_hours that kryten-userstats 0.7.1 does not create",
        ),
    ] {
        let changed = synthetic(&dir, file).await;
        exec(&changed, change).await;
        refused(&rig, &changed, says);
    }
    let nothing = admin(&["import-v0", "--config", &rig.config], &[]);
    assert_eq!(nothing.status.code(), Some(2), "usage error: {}", text(&nothing));

    // Impossible values: skipped and counted, the rest imported.
    let bad_rows = synthetic(&dir, "bad-rows.db").await;
    exec(
        &bad_rows,
        "INSERT INTO message_counts(username, channel, domain, message_count) VALUES ('Neg', '420Grindhouse', 'cytu.be', -5);
         INSERT INTO users(username, first_seen_at, last_seen_at) VALUES ('Badtime', 'yesterday-ish', '2026-01-01T00:00:00+00:00');
         INSERT INTO population_snapshots(channel, domain, timestamp, connected_count, chat_count) VALUES ('420Grindhouse', 'cytu.be', 'not a time', 3, 3);
         INSERT INTO emote_usage(username, channel, domain, emote, usage_count) VALUES ('Yan', '420Grindhouse', 'cytu.be', 'kappa', 'many');",
    )
    .await;
    let report = import(&rig, &bad_rows, &[]);
    for line in [
        "message_counts: negative count: 1",
        "users: unparseable time: 1",
        "population_snapshots: unparseable time: 1",
        "emote_usage: count is not a whole number: 1",
    ] {
        assert!(report.contains(line), "{line:?} in the report:\n{report}");
    }
    let store = rig.store().await;
    assert!(store.user("cytu.be", "neg").await.unwrap().is_none());
    assert_eq!(store.total("cytu.be", "total_messages").await.unwrap(), 24);
    assert_eq!(store.snapshots("cytu.be", CH, 0, 100).await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_reports_and_writes_nothing() {
    let rig = Rig::new("import-dry", "");
    let old = synthetic(&rig.dir, "old.db").await;
    let out = admin(&["import-v0", &old, "--config", &rig.config, "--dry-run"], &[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for want in ["dry run: nothing written", "zed <- ZED, Zed, zed", "rows that would be written", "message_counts"] {
        assert!(t.contains(want), "{want:?} in:\n{t}");
    }
    assert!(!std::path::Path::new(&rig.db).exists(), "a dry run created our database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_while_ingest_chat_runs_loses_and_doubles_nothing_of_the_live_stream() {
    let rig = Rig::new("import-live", "");
    let old = synthetic(&rig.dir, "old.db").await;
    let _chat = rig.start("ingest-chat").await;
    let t0 = shared::harness::now_ms();
    let n = 1500;
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    let live: Vec<(String, String)> = (0..n)
        .map(|k| {
            let user = if k % 5 == 0 { "Yan".to_string() } else { format!("live{}", k % 7) };
            *expected.entry(user.to_lowercase()).or_default() += 1;
            chat(CH, &user, &format!("live message {k}"), t0 + k as i64, &format!("live-{k}"))
        })
        .collect();
    let first_half = live[..n / 2].to_vec();
    publish_durably(&rig.nats, &first_half).await;
    // The rest is published while the import holds its transaction (paused 1.5 s in it).
    let nats = rig.nats.url();
    let rest = live[n / 2..].to_vec();
    let publisher = tokio::spawn(async move {
        let js = async_nats::jetstream::new(async_nats::connect(nats).await.expect("connect"));
        for (s, d) in rest {
            js.publish(s, d.into()).await.expect("publish").await.expect("ack");
        }
    });
    let (config, old2) = (rig.config.clone(), old.clone());
    let importer = tokio::task::spawn_blocking(move || {
        admin(&["import-v0", &old2, "--config", &config], &[("KRYTEN_IMPORT_PAUSE_MS", "1500")])
    });
    let out = importer.await.expect("import");
    assert!(out.status.success(), "{}", text(&out));
    publisher.await.expect("publisher");
    rig.wait_seen("ingest-chat", n as i64).await;
    let store = rig.store().await;
    assert_eq!(store.counter("ingest-chat", "events_applied").await.unwrap(), n as i64);
    assert_eq!(store.counter("ingest-chat", "duplicates").await.unwrap(), 0);
    for (user, live_n) in &expected {
        let imported = if user == "yan" { 7 } else { 0 };
        assert_eq!(store.user_counts("cytu.be", CH, user).await.unwrap().messages, imported + live_n, "{user}");
    }
    assert_eq!(store.total("cytu.be", "total_messages").await.unwrap(), 24 + n as i64);
    assert_eq!(store.user_counts("cytu.be", CH, "zed").await.unwrap().messages, 15);
    let held = text(&out);
    println!("{held}");
}

/// How long the import holds the write lock on a ≈100 MB file, with ingest-chat applying a
/// live stream beside it (run by hand: `cargo test -p userstats-tests --test import_v0 --
/// --ignored --nocapture`; the figure is in deploy/OPERATIONS.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn a_100_mb_import_beside_live_ingest() {
    let rig = Rig::new("import-big", "");
    let old = big_v0(&rig.dir).await;
    let size = std::fs::metadata(&old).map(|m| m.len()).unwrap_or(0);
    println!("old file: {:.1} MB", size as f64 / 1e6);
    let _chat = rig.start("ingest-chat").await;
    let n = 20_000;
    let t0 = shared::harness::now_ms();
    let live: Vec<(String, String)> =
        (0..n).map(|k| chat(CH, &format!("live{}", k % 50), "hello", t0 + k as i64, &format!("big-{k}"))).collect();
    let nats = rig.nats.url();
    let publisher = tokio::spawn(async move {
        let js = async_nats::jetstream::new(async_nats::connect(nats).await.expect("connect"));
        for (s, d) in live {
            js.publish(s, d.into()).await.expect("publish").await.expect("ack");
        }
    });
    let started = std::time::Instant::now();
    let (config, file) = (rig.config.clone(), old.clone());
    let out = tokio::task::spawn_blocking(move || admin(&["import-v0", &file, "--config", &config], &[]))
        .await
        .expect("import");
    println!("{}", text(&out));
    println!("import took {:.1} s", started.elapsed().as_secs_f64());
    assert!(out.status.success());
    publisher.await.expect("publisher");
    rig.wait_seen("ingest-chat", n as i64).await;
    let store = rig.store().await;
    assert_eq!(store.counter("ingest-chat", "duplicates").await.unwrap(), 0);
    assert_eq!(store.counter("ingest-chat", "events_applied").await.unwrap(), n as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_into_a_libsql_server_lands_once() {
    let rig = Rig::on_sqld("import-sqld", "");
    let old = synthetic(&rig.dir, "old.db").await;
    let report = import(&rig, &old, &[]);
    assert!(report.contains("zed <- ZED, Zed, zed"), "{report}");
    let store = rig.store().await;
    assert_eq!(store.user_counts("cytu.be", "", "zed").await.unwrap().messages, 17);
    assert_eq!(store.total("cytu.be", "total_messages").await.unwrap(), 24);
    assert_eq!(store.user("cytu.be", "zed").await.unwrap().map(|u| u.pms), Some(7));
    assert!(import(&rig, &old, &[]).contains("already imported"));
    assert_eq!(store.imports().await.unwrap().len(), 1);
    assert_eq!(store.user_counts("cytu.be", "", "zed").await.unwrap().messages, 17);
}
