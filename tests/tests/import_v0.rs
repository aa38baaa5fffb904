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

const CH: &str = "420Grindhouse";

/// Runs `userstats-admin` with arguments and extra environment.
fn admin(args: &[&str], env: &[(&str, &str)]) -> Output {
    let bin = binary("userstats-admin");
    assert!(bin.exists(), "{} is not built: run `cargo build --workspace --bins`", bin.display());
    Command::new(&bin).args(args).envs(env.iter().copied()).output().expect("run userstats-admin")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Imports `old` with the rig's config; panics with the output unless it succeeds.
fn import(rig: &Rig, old: &str, extra: &[&str]) -> String {
    let mut args = vec!["import-v0", old, "--config", &rig.config];
    args.extend(extra);
    let out = admin(&args, &[]);
    assert!(out.status.success(), "import failed:\n{}", text(&out));
    text(&out)
}

/// Rows of a query on an SQLite file (read-only).
async fn rows(db: &str, sql: &str) -> Vec<Vec<Sql>> {
    try_rows(db, sql).await.unwrap_or_else(|e| panic!("{sql}: {e:#}"))
}

async fn try_rows(db: &str, sql: &str) -> anyhow::Result<Vec<Vec<Sql>>> {
    let d = libsql::Builder::new_local(db).flags(libsql::OpenFlags::SQLITE_OPEN_READ_ONLY).build().await?;
    let conn = d.connect()?;
    conn.busy_timeout(Duration::from_secs(2))?;
    let mut r = conn.query(sql, ()).await?;
    let mut out = Vec::new();
    while let Some(row) = r.next().await? {
        out.push((0..r.column_count()).map(|i| row.get_value(i)).collect::<Result<_, _>>()?);
    }
    Ok(out)
}

/// Runs SQL on an SQLite file (writable).
async fn exec(db: &str, sql: &str) {
    let d = libsql::Builder::new_local(db).build().await.expect("open");
    let conn = d.connect().expect("connect");
    conn.execute_batch(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn s(v: &Sql) -> String {
    match v {
        Sql::Text(t) => t.clone(),
        Sql::Integer(i) => i.to_string(),
        Sql::Null => String::new(),
        other => format!("{other:?}"),
    }
}

fn i(v: &Sql) -> i64 {
    match v {
        Sql::Integer(i) => *i,
        other => panic!("not an integer: {other:?}"),
    }
}

/// Publishes envelopes with core NATS, as the bridge does.
async fn publish(client: &async_nats::Client, events: &[(String, String)]) {
    publish_all(client, events).await.expect("publish");
}

struct Stream {
    t: i64,
    n: u64,
    events: Vec<(String, String)>,
}

impl Stream {
    fn new() -> Stream {
        Stream { t: shared::harness::now_ms(), n: 0, events: Vec::new() }
    }
    fn ev(&mut self, name: &str, payload: Value) -> &mut Self {
        self.t += 10;
        self.n += 1;
        let mut payload = payload;
        if payload.get("time").is_none() && payload.is_object() {
            payload["time"] = json!(self.t);
        }
        self.events.push((subject(CH, name), envelope(name, payload, CH, self.t, &format!("imp-{}", self.n))));
        self
    }
    fn chat(&mut self, user: &str, msg: &str) -> &mut Self {
        self.ev("chatMsg", json!({"username": user, "msg": msg, "meta": {}}))
    }
    fn join(&mut self, user: &str) -> &mut Self {
        self.ev("addUser", json!({"name": user, "rank": 1, "meta": {"afk": false, "muted": false}}))
    }
    fn media(&mut self, ty: &str, id: &str, title: &str) -> &mut Self {
        self.ev(
            "changeMedia",
            json!({"id": id, "title": title, "seconds": 100, "duration": "01:40", "type": ty, "meta": {}, "currentTime": 0, "paused": false}),
        )
    }
    fn take(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.events)
    }
}

/// Builds a real 0.7.1 database: the Python service on a known stream, stopped when done.
async fn python_database(rig: &Rig, dir: &TempDir) -> String {
    let db = dir.file("kryten-userstats.db");
    let extra = json!({"snapshots": {"interval_seconds": 1}, "kudos": {"default_phrases": ["lol", "haha", "thanks"]}});
    let mut py = match PythonService::start(dir, &rig.nats.url(), CH, &db, extra).await {
        Ok(p) => p,
        Err(e) => panic!("the Python reference service (kryten-userstats 0.7.1) cannot run: {e:#}"),
    };
    let client = rig.nats.client().await;
    for (user, alias) in [("bob", "bobby"), ("Carol", "caz"), ("alice", "ally")] {
        let a = py.command(&client, json!({"command": "alias.add", "username": user, "alias": alias})).await;
        assert!(a.as_ref().is_ok_and(|a| a["success"] == json!(true)), "alias.add: {a:?}");
    }
    let mut s = Stream::new();
    let emotes = json!([{"name": "#kappa", "image": "k.png", "source": "#kappa"}, {"name": "PogChamp", "image": "p.png", "source": "PogChamp"}]);
    s.ev("emoteList", emotes);
    for u in ["Alice", "bob", "Carol", "Dave", "alice"] {
        s.join(u);
    }
    s.media("yt", "abc123", "Movie_One.mp4")
        .chat("Alice", "hello everyone")
        .chat("bob", "Alice++ thanks")
        .chat("Carol", "lol bob")
        .chat("ALICE", "#kappa #Kappa #PogChamp")
        .chat("alice", "hi again Carol haha")
        .chat("Dave", "bobby++ nice")
        .chat("bob", "movie++")
        .chat("Carol", "movie--")
        .chat("[server]", "a server message")
        .chat("KrytenBot", "the bot speaks ++bob")
        .chat("alice", "movie++")
        .ev("pm", json!({"username": "Alice", "msg": "hi", "to": "KrytenBot"}))
        .ev("pm", json!({"username": "Alice", "msg": "again", "to": "KrytenBot"}))
        .ev("pm", json!({"username": "bob", "msg": "yo", "to": "KrytenBot"}))
        .ev("pm", json!({"username": "ALICE", "msg": "caps", "to": "KrytenBot"}))
        .media("vm", "xyz789", "Second.Film.mkv")
        .chat("Dave", "film--")
        .chat("ALICE", "video++")
        .chat("alice", "video--")
        .chat("Carol", "thanks Dave #kappa")
        .chat("bob", "++Carol and ++Dave")
        .ev("setAFK", json!({"name": "Dave", "afk": true}));
    let first = s.take();
    publish(&client, &first).await;
    // Time passes (snapshots every second, time in channel), then some leave.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    s.ev("setAFK", json!({"name": "Dave", "afk": false}));
    s.ev("userLeave", json!({"name": "Carol"}));
    s.ev("userLeave", json!({"name": "Dave"}));
    s.ev("userLeave", json!({"name": "ALICE"}));
    s.media("yt", "abc123", "Movie_One.mp4").chat("Carol", "movie++ rewatch");
    let second = s.take();
    publish(&client, &second).await;
    let expected_chats =
        first.iter().chain(second.iter()).filter(|(subj, _)| subj.ends_with(".chatmsg")).count() as i64;
    // Done when every chat message is counted and both leaves recorded.
    eventually(Duration::from_secs(60), "the Python service counted the stream", || async {
        let r = try_rows(&db, "SELECT (SELECT COALESCE(SUM(message_count), 0) FROM message_counts), (SELECT COUNT(*) FROM user_activity), (SELECT COUNT(*) FROM media_changes)").await;
        r.ok().and_then(|r| r.into_iter().next()).is_some_and(|r| i(&r[0]) >= expected_chats && i(&r[1]) >= 2 && i(&r[2]) >= 3)
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", py.log_tail()));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    py.check_alive().expect("still running");
    py.stop();
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_python_database_imports_with_the_python_numbers() {
    let rig = Rig::new("import-real", "[snapshots]\ninterval_seconds = 1\n");
    let pydir = TempDir::new("import-python");
    let old = python_database(&rig, &pydir).await;
    let report = import(&rig, &old, &[]);
    assert!(report.contains("alice <- ALICE, Alice, alice"), "merge listed:\n{report}");

    let _qu = rig.start("query-user").await;
    let _ql = rig.start("query-leaderboard").await;
    let client = rig.nats.client().await;

    // Every user of the old file (lower-cased), and every channel.
    let users = old_users(&old).await;
    assert!(users.len() >= 4, "the stream made users: {users:?}");
    let channels: Vec<String> =
        rows(&old, "SELECT DISTINCT channel FROM message_counts").await.iter().map(|r| s(&r[0])).collect();
    assert_eq!(channels, vec![CH.to_string()]);

    for u in &users {
        check_user_stats(&client, &old, u).await;
        for c in &channels {
            check_user_counts(&client, &old, u, c).await;
            check_user_emotes_and_time(&client, &old, u, c).await;
        }
    }
    let some_time =
        sum(&old, &format!("SELECT SUM(total_time_seconds) FROM user_activity WHERE lower(username) NOT IN {IGNORED}"))
            .await;
    assert!(some_time > 0, "the stream gave time in channel");

    for c in &channels {
        check_media_history(&client, &old, c).await;
        check_votes(&client, &old, c).await;
        check_population(&client, &old, c).await;
        check_leaderboards(&client, &old, c).await;
    }
    let phrases = micro_data(&client, "kudos.phrases.list", json!({})).await;
    let want: Vec<String> =
        rows(&old, "SELECT phrase FROM kudos_trigger_phrases ORDER BY phrase").await.iter().map(|r| s(&r[0])).collect();
    assert_eq!(phrases["phrases"], json!(want), "trigger phrases");
    check_totals(&rig, &old, users.len()).await;
}

/// The names our functions never count, as an SQL list (lower-cased).
const IGNORED: &str = "('[server]', 'krytenbot')";

/// The one number a query on the old file gives (0 for none or NULL).
async fn sum(old: &str, sql: &str) -> i64 {
    rows(old, sql).await.first().map(|r| if matches!(r[0], Sql::Null) { 0 } else { i(&r[0]) }).unwrap_or(0)
}

/// Every user with a count in the old file, lower-cased, ignored names left out.
async fn old_users(old: &str) -> BTreeSet<String> {
    let mut users: BTreeSet<String> = BTreeSet::new();
    for t in ["message_counts", "pm_counts", "user_activity", "emote_usage", "kudos_plusplus", "kudos_phrases"] {
        for r in
            rows(old, &format!("SELECT DISTINCT lower(username) FROM {t} WHERE lower(username) NOT IN {IGNORED}")).await
        {
            users.insert(s(&r[0]));
        }
    }
    users
}

/// `user.stats`: PMs, aliases, the spelling seen last, first and last seen, as the old
/// `pm_counts`, `user_aliases` and `users` have them (case variants together).
async fn check_user_stats(client: &async_nats::Client, old: &str, u: &str) {
    let who = format!("lower(username) = '{u}'");
    let stats = micro_data(client, "user.stats", json!({"username": u})).await;
    assert_eq!(
        stats["pms"].as_i64(),
        Some(sum(old, &format!("SELECT SUM(pm_count) FROM pm_counts WHERE {who}")).await),
        "{u} pms"
    );
    let aliases: Vec<String> = rows(old, &format!("SELECT alias FROM user_aliases WHERE {who} ORDER BY alias"))
        .await
        .iter()
        .map(|r| s(&r[0]))
        .collect();
    assert_eq!(stats["aliases"], json!(aliases), "{u} aliases");
    let seen = rows(old, &format!("SELECT first_seen_at, last_seen_at, username FROM users WHERE {who}")).await;
    if let Some(latest) = seen.iter().max_by_key(|r| parse_timestamp_ms(&s(&r[1])).unwrap_or(0)) {
        assert_eq!(stats["username"], json!(s(&latest[2])), "{u}: the spelling seen last");
    }
    if !seen.is_empty() {
        let first = seen.iter().filter_map(|r| parse_timestamp_ms(&s(&r[0]))).min().expect("time");
        let last = seen.iter().filter_map(|r| parse_timestamp_ms(&s(&r[1]))).max().expect("time");
        assert_eq!(stats["first_seen"], json!(format_timestamp(first)), "{u} first seen");
        assert_eq!(stats["last_seen"], json!(format_timestamp(last)), "{u} last seen");
    }
}

/// `user.messages` and `user.kudos` in a channel: messages, ++ and phrase kudos as the old
/// `message_counts`, `kudos_plusplus` and `kudos_phrases` have them.
async fn check_user_counts(client: &async_nats::Client, old: &str, u: &str, c: &str) {
    let here = format!("lower(username) = '{u}' AND channel = '{c}'");
    let m = micro_data(client, "user.messages", json!({"username": u, "channel": c})).await;
    let want = sum(old, &format!("SELECT SUM(message_count) FROM message_counts WHERE {here}")).await;
    assert_eq!(m["message_count"].as_i64(), Some(want), "{u} messages in {c}");
    let k = micro_data(client, "user.kudos", json!({"username": u, "channel": c})).await;
    let want = sum(old, &format!("SELECT SUM(kudos_count) FROM kudos_plusplus WHERE {here}")).await;
    assert_eq!(k["plusplus"].as_i64(), Some(want), "{u} ++ in {c}");
    let want: BTreeMap<String, i64> =
        rows(old, &format!("SELECT phrase, SUM(kudos_count) FROM kudos_phrases WHERE {here} GROUP BY phrase"))
            .await
            .iter()
            .map(|r| (s(&r[0]), i(&r[1])))
            .collect();
    assert_eq!(counts(&k["phrases"], "phrase"), want, "{u} phrase kudos in {c}");
}

/// `user.stats` in a channel: emotes (with the `#` ours have) as the old `emote_usage`, and
/// time in channel as the old `user_activity` (none when it has no row).
async fn check_user_emotes_and_time(client: &async_nats::Client, old: &str, u: &str, c: &str) {
    let here = format!("lower(username) = '{u}' AND channel = '{c}'");
    let st = micro_data(client, "user.stats", json!({"username": u, "channel": c})).await;
    let want: BTreeMap<String, i64> =
        rows(old, &format!("SELECT emote, SUM(usage_count) FROM emote_usage WHERE {here} GROUP BY emote"))
            .await
            .iter()
            .map(|r| (format!("#{}", s(&r[0])), i(&r[1])))
            .collect();
    assert_eq!(counts(&st["emotes"], "emote"), want, "{u} emotes in {c}");
    let act = rows(
        old,
        &format!("SELECT SUM(total_time_seconds), SUM(not_afk_time_seconds) FROM user_activity WHERE {here}"),
    )
    .await;
    match act.first().filter(|r| !matches!(r[0], Sql::Null)) {
        Some(r) => {
            assert_eq!(st["activity"]["total_time_seconds"].as_i64(), Some(i(&r[0])), "{u} time in {c}");
            assert_eq!(st["activity"]["not_afk_time_seconds"].as_i64(), Some(i(&r[1])), "{u} active time in {c}");
        }
        None => assert_eq!(st["activity"], Value::Null, "{u} has no time in {c}"),
    }
}

/// Media history, newest first, with 0.7.1's times (to the ms).
async fn check_media_history(client: &async_nats::Client, old: &str, c: &str) {
    let want: Vec<Value> = rows(old, &format!("SELECT timestamp, media_title, media_type, media_id FROM media_changes WHERE channel = '{c}' ORDER BY id DESC"))
        .await
        .iter()
        .map(|r| json!({"timestamp": format_timestamp(parse_timestamp_ms(&s(&r[0])).expect("time")), "media_title": s(&r[1]), "media_type": s(&r[2]), "media_id": s(&r[3])}))
        .collect();
    let got = micro_data(client, "channel.media_history", json!({"channel": c, "limit": 1000})).await;
    assert_eq!(got["history"], json!(want), "media history of {c}");
}

/// Votes per title: one vote per (title, lower-cased user), the latest.
async fn check_votes(client: &async_nats::Client, old: &str, c: &str) {
    let mut latest: BTreeMap<(String, String), (String, i64)> = BTreeMap::new();
    for r in rows(old, &format!("SELECT media_title, lower(username), vote, timestamp FROM movie_votes WHERE channel = '{c}' AND lower(username) NOT IN {IGNORED}")).await {
        let e = latest.entry((s(&r[0]), s(&r[1]))).or_insert((s(&r[3]), i(&r[2])));
        if s(&r[3]) >= e.0 {
            *e = (s(&r[3]), i(&r[2]));
        }
    }
    let mut want: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for ((title, _), (_, vote)) in latest {
        let e = want.entry(title).or_default();
        if vote > 0 {
            e.0 += 1
        } else {
            e.1 += 1
        }
    }
    let got = micro_data(client, "channel.movie_votes", json!({"channel": c})).await;
    let got: BTreeMap<String, (i64, i64)> = got
        .as_array()
        .expect("votes")
        .iter()
        .map(|v| {
            (
                v["media_title"].as_str().unwrap_or_default().to_string(),
                (v["upvotes"].as_i64().unwrap_or(-1), v["downvotes"].as_i64().unwrap_or(-1)),
            )
        })
        .collect();
    assert!(!want.is_empty(), "the stream voted");
    assert_eq!(got, want, "votes in {c}");
}

/// Snapshots (one per 1 s slot, as 0.7.1 took them every second) and watermarks.
async fn check_population(client: &async_nats::Client, old: &str, c: &str) {
    let want: Vec<(String, i64)> = rows(
        old,
        &format!("SELECT timestamp, connected_count FROM population_snapshots WHERE channel = '{c}' ORDER BY id DESC"),
    )
    .await
    .iter()
    .map(|r| {
        let ms = parse_timestamp_ms(&s(&r[0])).expect("time");
        (format_timestamp(ms - ms.rem_euclid(1000)), i(&r[1]))
    })
    .collect();
    assert!(want.len() >= 2, "the Python service took snapshots");
    let got = micro_data(client, "channel.population", json!({"channel": c, "hours": 24})).await;
    let got: Vec<(String, i64)> = got["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| (h["timestamp"].as_str().unwrap_or_default().to_string(), h["connected_count"].as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(got, want, "population history of {c}");
    let wm = micro_data(client, "channel.watermarks", json!({"channel": c})).await;
    let high = sum(
        old,
        &format!("SELECT MAX(total_users) FROM population_watermarks WHERE channel = '{c}' AND is_high_mark = 1"),
    )
    .await;
    let low = sum(
        old,
        &format!("SELECT MIN(total_users) FROM population_watermarks WHERE channel = '{c}' AND is_high_mark = 0"),
    )
    .await;
    assert_eq!(
        (wm["high"]["total_users"].as_i64(), wm["low"]["total_users"].as_i64()),
        (Some(high), Some(low)),
        "watermarks {wm}"
    );
}

/// Leaderboards from the rollups: all messages, and kudos (++ and phrases) per user.
async fn check_leaderboards(client: &async_nats::Client, old: &str, c: &str) {
    let lb = micro_data(client, "leaderboard.messages", json!({"channel": c, "limit": 1000})).await;
    let total: i64 = counts(&lb["leaderboard"], "username").values().sum();
    let want = sum(
        old,
        &format!(
            "SELECT SUM(message_count) FROM message_counts WHERE channel = '{c}' AND lower(username) NOT IN {IGNORED}"
        ),
    )
    .await;
    assert_eq!(total, want, "message leaderboard of {c}");
    let lb = micro_data(client, "leaderboard.kudos", json!({"channel": c, "limit": 1000})).await;
    let got: BTreeMap<String, i64> =
        counts(&lb["leaderboard"], "username").into_iter().map(|(u, n)| (u.to_lowercase(), n)).collect();
    let want: BTreeMap<String, i64> = rows(
        old,
        &format!(
            "SELECT u, SUM(n) FROM (SELECT lower(username) AS u, kudos_count AS n FROM kudos_plusplus WHERE channel = '{c}' \
             UNION ALL SELECT lower(username), kudos_count FROM kudos_phrases WHERE channel = '{c}') \
             WHERE u NOT IN {IGNORED} GROUP BY u HAVING SUM(n) > 0"
        ),
    )
    .await
    .iter()
    .map(|r| (s(&r[0]), i(&r[1])))
    .collect();
    assert!(!want.is_empty(), "the stream gave kudos");
    assert_eq!(got, want, "kudos leaderboard of {c}");
}

/// The totals /metrics shows, and `total_users` as the number of users of the old file.
async fn check_totals(rig: &Rig, old: &str, users: usize) {
    let store = rig.store().await;
    for (name, sql) in [
        (
            "total_messages",
            "SELECT SUM(message_count) FROM message_counts WHERE lower(username) NOT IN ('[server]', 'krytenbot')",
        ),
        ("total_pms", "SELECT SUM(pm_count) FROM pm_counts WHERE lower(username) NOT IN ('[server]', 'krytenbot')"),
        (
            "total_kudos_plusplus",
            "SELECT SUM(kudos_count) FROM kudos_plusplus WHERE lower(username) NOT IN ('[server]', 'krytenbot')",
        ),
        (
            "total_kudos_phrases",
            "SELECT SUM(kudos_count) FROM kudos_phrases WHERE lower(username) NOT IN ('[server]', 'krytenbot')",
        ),
        (
            "total_emotes",
            "SELECT SUM(usage_count) FROM emote_usage WHERE lower(username) NOT IN ('[server]', 'krytenbot')",
        ),
        ("total_media_changes", "SELECT COUNT(*) FROM media_changes"),
    ] {
        assert_eq!(store.total("cytu.be", name).await.expect("total"), sum(old, sql).await, "{name}");
    }
    assert_eq!(store.total("cytu.be", "total_users").await.expect("total"), users as i64, "total_users");
}

/// A 0.7.1 database made by the service's own `initialize()`, filled with known rows: `Zed`,
/// `zed` and `ZED` are case variants of one user; `Yan` is another.
async fn synthetic(dir: &TempDir, name: &str) -> String {
    let db = dir.file(name);
    init_database(&db)
        .unwrap_or_else(|e| panic!("the Python reference service (kryten-userstats 0.7.1) cannot run: {e:#}"));
    exec(
        &db,
        "INSERT INTO users(username, first_seen_at, last_seen_at) VALUES
           ('Zed', '2026-01-01T10:00:00.000000+00:00', '2026-01-05T10:00:00+00:00'),
           ('zed', '2025-12-01T09:00:00.250000+00:00', '2026-01-02T10:00:00+00:00'),
           ('ZED', '2026-01-03T00:00:00+00:00', '2026-01-10T12:30:00.500000+00:00'),
           ('Yan', '2026-01-01T00:00:00+00:00', '2026-01-01T01:00:00+00:00'),
           ('[server]', '2026-01-01T00:00:00+00:00', '2026-01-01T01:00:00+00:00');
         INSERT INTO message_counts(username, channel, domain, message_count) VALUES
           ('Zed', '420Grindhouse', 'cytu.be', 10), ('zed', '420Grindhouse', 'cytu.be', 5),
           ('ZED', 'otherchan', 'cytu.be', 2), ('Yan', '420Grindhouse', 'cytu.be', 7),
           ('[server]', '420Grindhouse', 'cytu.be', 40);
         INSERT INTO pm_counts(username, pm_count) VALUES ('Zed', 3), ('zed', 4), ('Yan', 1);
         INSERT INTO kudos_plusplus(username, channel, domain, kudos_count) VALUES
           ('Zed', '420Grindhouse', 'cytu.be', 2), ('zed', '420Grindhouse', 'cytu.be', 1);
         INSERT INTO kudos_phrases(username, channel, domain, phrase, kudos_count) VALUES
           ('Zed', '420Grindhouse', 'cytu.be', 'lol', 2), ('zed', '420Grindhouse', 'cytu.be', 'lol', 1),
           ('zed', '420Grindhouse', 'cytu.be', 'haha', 1);
         INSERT INTO emote_usage(username, channel, domain, emote, usage_count) VALUES
           ('Zed', '420Grindhouse', 'cytu.be', 'kappa', 3), ('ZED', '420Grindhouse', 'cytu.be', 'kappa', 1);
         INSERT INTO user_activity(username, channel, domain, total_time_seconds, not_afk_time_seconds) VALUES
           ('Zed', '420Grindhouse', 'cytu.be', 100, 80), ('zed', '420Grindhouse', 'cytu.be', 20, 20);
         INSERT INTO media_changes(channel, domain, timestamp, media_title, media_type, media_id) VALUES
           ('420Grindhouse', 'cytu.be', '2026-01-02T00:00:00+00:00', 'Film A', 'yt', 'a1'),
           ('420Grindhouse', 'cytu.be', '2026-01-02T01:00:00+00:00', 'Film B', NULL, NULL);
         INSERT INTO movie_votes(channel, domain, media_title, media_type, media_id, username, vote, timestamp) VALUES
           ('420Grindhouse', 'cytu.be', 'Film A', 'yt', 'a1', 'Zed', 1, '2026-01-02T00:10:00+00:00'),
           ('420Grindhouse', 'cytu.be', 'Film A', '', '', 'zed', -1, '2026-01-02T00:20:00+00:00'),
           ('420Grindhouse', 'cytu.be', 'Film B', '', '', 'Yan', 1, '2026-01-02T01:10:00+00:00');
         INSERT INTO population_snapshots(channel, domain, timestamp, connected_count, chat_count) VALUES
           ('420Grindhouse', 'cytu.be', '2026-01-02T00:00:10+00:00', 5, 5),
           ('420Grindhouse', 'cytu.be', '2026-01-02T00:05:10+00:00', 9, 9),
           ('420Grindhouse', 'cytu.be', '2026-01-02T00:10:10+00:00', 2, 2);
         INSERT INTO population_watermarks(channel, domain, timestamp, total_users, chat_users, is_high_mark) VALUES
           ('420Grindhouse', 'cytu.be', '2026-01-02T00:05:10+00:00', 9, 9, 1),
           ('420Grindhouse', 'cytu.be', '2026-01-02T00:10:10+00:00', 2, 2, 0);
         INSERT INTO user_aliases(username, alias) VALUES ('Zed', 'zz'), ('Yan', 'zz'), ('Yan', 'y');
         INSERT INTO kudos_trigger_phrases(phrase) VALUES ('lol'), ('haha');",
    )
    .await;
    db
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

/// Fills a 0.7.1 database with about a year of a busy three-channel service (≈100 MB):
/// 35,000 users, their per-channel counts, emotes and kudos, 5-minute snapshots with
/// watermarks, media changes and votes.
async fn big_v0(dir: &TempDir) -> String {
    let db = synthetic(dir, "big.db").await;
    let seq = |n: u64| format!("WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < {n})");
    let ch = "CASE i % 3 WHEN 0 THEN '420Grindhouse' WHEN 1 THEN 'otherchan' ELSE 'thirdchan' END";
    let at = |step_s: u64| {
        format!("strftime('%Y-%m-%dT%H:%M:%S', 1735689600 + i * {step_s}, 'unixepoch') || '.' || printf('%06d', (i * 7919) % 1000000) || '+00:00'")
    };
    let sql = [
        format!("INSERT INTO users(username, first_seen_at, last_seen_at) {} SELECT 'user' || i, {}, {} FROM s", seq(35_000), at(300), at(301)),
        format!("INSERT INTO message_counts(username, channel, domain, message_count) {} SELECT 'user' || (i / 2), {ch}, 'cytu.be', 1 + i % 500 FROM s", seq(70_000)),
        format!("INSERT INTO pm_counts(username, pm_count) {} SELECT 'user' || (i * 3), 1 + i % 20 FROM s", seq(10_000)),
        format!("INSERT INTO user_activity(username, channel, domain, total_time_seconds, not_afk_time_seconds) {} SELECT 'user' || (i / 2), {ch}, 'cytu.be', i * 13 % 900000, i * 7 % 400000 FROM s", seq(52_000)),
        format!("INSERT INTO emote_usage(username, channel, domain, emote, usage_count) {} SELECT 'user' || (i / 8), {ch}, 'cytu.be', 'emote' || (i % 40), 1 + i % 30 FROM s", seq(210_000)),
        format!("INSERT INTO kudos_plusplus(username, channel, domain, kudos_count) {} SELECT 'user' || (i * 2), {ch}, 'cytu.be', 1 + i % 9 FROM s", seq(17_000)),
        format!("INSERT INTO kudos_phrases(username, channel, domain, phrase, kudos_count) {} SELECT 'user' || i, {ch}, 'cytu.be', CASE i % 3 WHEN 0 THEN 'lol' WHEN 1 THEN 'haha' ELSE 'rofl' END, 1 + i % 5 FROM s", seq(35_000)),
        format!("INSERT INTO population_snapshots(channel, domain, timestamp, connected_count, chat_count) {} SELECT {ch}, 'cytu.be', {}, i % 80, i % 80 FROM s", seq(110_000), at(290)),
        format!("INSERT INTO population_watermarks(channel, domain, timestamp, total_users, chat_users, is_high_mark) {} SELECT {ch}, 'cytu.be', {}, i % 80, i % 80, i % 2 FROM s", seq(70_000), at(450)),
        format!("INSERT INTO media_changes(channel, domain, timestamp, media_title, media_type, media_id) {} SELECT {ch}, 'cytu.be', {}, 'Some Film Title Number ' || (i % 5000), 'yt', 'vid' || (i % 5000) FROM s", seq(35_000), at(900)),
        format!("INSERT INTO movie_votes(channel, domain, media_title, media_type, media_id, username, vote, timestamp) {} SELECT {ch}, 'cytu.be', 'Some Film Title Number ' || (i % 5000), 'yt', 'vid' || (i % 5000), 'user' || (i / 3), CASE i % 4 WHEN 0 THEN -1 ELSE 1 END, {} FROM s", seq(35_000), at(901)),
    ];
    for q in sql {
        exec(&db, &q).await;
    }
    db
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
