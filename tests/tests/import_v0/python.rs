//! The real thing: the real Python service (kryten-userstats 0.7.1) runs on a known stream
//! and writes its file; the file is imported, and our query functions answer every user's
//! and channel's numbers as the Python file has them — one check per table compared.

use super::*;

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
