//! `bootstrap-kv` against a real nats-server whose KV buckets are created the way the bridge
//! creates them (async-nats `create_key_value`, values from tests/fixtures/kv.json).

use async_nats::jetstream::{self, kv};
use serde_json::{json, Value};
use std::time::Duration;
use userstats_tests::*;

/// Creates the fixture's buckets (or only `only`) and puts their values, as the bridge does.
async fn create_buckets(client: &async_nats::Client, only: Option<&str>) -> Vec<kv::Store> {
    let js = jetstream::new(client.clone());
    let path = workspace().join("tests/fixtures/kv.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut stores = Vec::new();
    for (bucket, keys) in all.as_object().unwrap() {
        if only.is_some_and(|o| !bucket.ends_with(o)) {
            continue;
        }
        let store =
            js.create_key_value(kv::Config { bucket: bucket.clone(), history: 1, ..Default::default() }).await.unwrap();
        for (key, value) in keys.as_object().unwrap() {
            store.put(key, value.as_str().unwrap().to_string().into()).await.unwrap();
        }
        stores.push(store);
    }
    stores
}

async fn open_sessions(db: &str) -> Vec<String> {
    let store = open_store(db).await;
    let Ok(mut tx) = store.write().await else { return Vec::new() };
    let keys = tx.sessions(D, CH).await.map(|s| s.into_iter().map(|(k, _)| k).collect()).unwrap_or_default();
    let _ = tx.commit().await;
    keys
}

async fn stats(client: &async_nats::Client) -> Value {
    let reply = client.request("userstats.bootstrap-kv.status", "".into()).await.unwrap();
    serde_json::from_slice::<Value>(&reply.payload).unwrap()["stats"].clone()
}

fn now_ms() -> i64 {
    shared::harness::now_ms()
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_state_is_loaded_followed_and_does_not_undo_newer_joins() {
    let rig = Rig::new("bootstrap", CHANNELS);
    let db = &rig.db;
    let client = rig.nats.client().await;
    let stores = create_buckets(&client, None).await;
    let mut procs = Vec::new();
    for f in ["bootstrap-kv", "ingest-presence", "ingest-chat"] {
        procs.push(rig.start(f).await);
    }
    let logs = |procs: &[FunctionProcess]| procs.iter().map(|p| p.log_text()).collect::<String>();

    // Users present with open sessions (KrytenBot is ignored).
    eventually(Duration::from_secs(10), "KV users loaded", || async { open_sessions(db).await.len() == 6 })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", logs(&procs)));
    let log = procs[0].log_text();
    assert!(log.contains("KV state loaded") && log.contains("Never Gonna Give You Up"), "{log}");

    // The very first chat message: the KV emote list counts, the vote goes to KV's current media.
    let t = now_ms();
    publish_all(&client, &[chat(CH, "Alice", "#kappa LUL", t, "c1"), chat(CH, "bob", "great movie++", t + 1, "c2")])
        .await
        .unwrap();
    let store = open_store(db).await;
    counter_reaches(&store, "ingest-chat", "events_applied", 2, Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", logs(&procs)));
    assert_eq!(
        store.emote_leaderboard(D, CH, 10).await.unwrap(),
        vec![("#kappa".to_string(), 1), ("LUL".to_string(), 1)]
    );
    let votes = store.movie_votes(D, CH).await.unwrap();
    assert!(votes.iter().any(|v| v.media_type == "yt" && v.media_id == "dQw4w9WgXcQ" && v.upvotes == 1), "{votes:?}");

    // A join newer than the next KV snapshot: the snapshot (which lacks the user) leaves it alone.
    let join = json!({"name": "newcomer", "rank": 1, "meta": {"afk": false}});
    let later = now_ms() + 60_000;
    publish_all(&client, &[(subject(CH, "addUser"), envelope("addUser", join, CH, later, "j1"))]).await.unwrap();
    eventually(Duration::from_secs(10), "newcomer joined", || async {
        open_sessions(db).await.contains(&"newcomer".to_string())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&procs)));

    // `users` changes in KV (sleepy gone): closed within the watch latency, drift reported.
    let userlist = stores.iter().find(|s| s.name.ends_with("_userlist")).unwrap();
    let users = r#"[{"name": "Alice", "rank": 2, "meta": {"afk": false}}, {"name": "bob", "rank": 1},
        {"name": "Zoë", "rank": 1}, {"name": "some-user", "rank": 1}, {"name": "Leader", "rank": 1.5},
        {"name": "KrytenBot", "rank": 3}]"#;
    userlist.put("users", users.to_string().into()).await.unwrap();
    eventually(Duration::from_secs(5), "sleepy's session closed", || async {
        !open_sessions(db).await.contains(&"sleepy".to_string())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&procs)));
    let sessions = open_sessions(db).await;
    assert!(sessions.contains(&"newcomer".to_string()), "a newer join is not undone: {sessions:?}");
    assert_eq!(sessions.len(), 6, "{sessions:?}");
    let extra = stats(&client).await["extra"].clone();
    assert!(extra["drift_users_extra"].as_u64().unwrap_or(0) >= 2, "sleepy and newcomer: {extra}");

    // A forced resync answers what it changed: the same revisions change nothing.
    let reply =
        client.request("bootstrap.resync", json!({"channel": "420grindhouse"}).to_string().into()).await.unwrap();
    let answer: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(answer["channels"][CH]["users_opened"], 0, "{answer}");
    assert_eq!(answer["channels"][CH]["sessions_closed"], 0, "{answer}");
    assert_eq!(answer["channels"][CH]["drift"]["users_extra"], json!(["newcomer"]), "{answer}");

    assert_eq!(procs[0].terminate(Duration::from_secs(10)).unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_buckets_it_warns_keeps_running_and_picks_them_up_later() {
    let rig = Rig::new("bootstrap-late", &format!("{CHANNELS}[bootstrap]\nresync_seconds = 1\n"));
    let db = &rig.db;
    let client = rig.nats.client().await;
    let mut f = rig.start("bootstrap-kv").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(f.exited(), None, "{}", f.log_text());
    let log = f.log_text();
    for bucket in ["userlist", "emotes", "playlist"] {
        let missing = format!("no KV bucket kryten_{CH}_{bucket} ");
        let warnings = log.lines().filter(|l| l.contains("WARN") && l.contains(&missing)).count();
        assert_eq!(warnings, 1, "one warning per channel and bucket, not per retry:\n{log}");
    }

    // Buckets created later (one first, then the rest) are picked up by the resync.
    create_buckets(&client, Some("_emotes")).await;
    let store = open_store(db).await;
    eventually(Duration::from_secs(5), "emotes loaded", || async {
        let Ok(mut tx) = store.write().await else { return false };
        let n = tx.listed_emotes(D, CH).await.map(|e| e.len()).unwrap_or(0);
        let _ = tx.commit().await;
        n == 3
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", f.log_text()));
    create_buckets(&client, Some("_userlist")).await;
    create_buckets(&client, Some("_playlist")).await;
    eventually(Duration::from_secs(5), "users loaded", || async { open_sessions(db).await.len() == 6 })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", f.log_text()));
    assert!(f.log_text().contains("KV bucket readable again"), "{}", f.log_text());
    assert_eq!(f.terminate(Duration::from_secs(10)).unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_channels_it_says_so_and_idles_registered() {
    let rig = Rig::new("bootstrap-idle", "");
    let mut f = rig.start("bootstrap-kv").await;
    assert!(f.log_text().contains("needs [[channels]]"), "{}", f.log_text());
    assert_eq!(f.terminate(Duration::from_secs(10)).unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_mid_load_it_leaves_nothing_half_applied_and_the_next_start_loads_all() {
    let rig = Rig::new("bootstrap-kill", CHANNELS);
    let client = rig.nats.client().await;
    let js = jetstream::new(client.clone());
    let users: Vec<Value> =
        (0..10_000).map(|i| json!({"name": format!("viewer{i}"), "rank": 1, "meta": {"afk": i % 7 == 0}})).collect();
    let store = js
        .create_key_value(kv::Config { bucket: format!("kryten_{CH}_userlist"), history: 1, ..Default::default() })
        .await
        .unwrap();
    store.put("users", serde_json::to_string(&users).unwrap().into()).await.unwrap();
    // Kill -9 at a few moments during start-up and load.
    for delay_ms in [20u64, 60, 120, 250] {
        let mut f = FunctionProcess::spawn("bootstrap-kv", &rig.config, &rig.dir, &[]);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        f.kill();
        let n = open_sessions(&rig.db).await.len();
        assert!(n == 0 || n == 10_000, "all or nothing, found {n} sessions after a kill at {delay_ms} ms");
    }
    let _f = rig.start("bootstrap-kv").await;
    let s = rig.store().await;
    eventually(Duration::from_secs(20), "10,000 sessions", || async { open_sessions(&rig.db).await.len() == 10_000 })
        .await
        .unwrap();
    assert_eq!(s.total(D, "total_users").await.unwrap(), 10_000, "each user created once");
}

/// A live emote change newer than the bridge's emotes bucket (the bucket has not caught up,
/// or missed it) is a real drift that the older snapshot must not "repair". It is logged
/// and counted when it appears and when it clears, not at every resync, and its current
/// size is a gauge in the status endpoint and in `/metrics`.
#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_drift_is_reported_once_and_shown_as_a_gauge() {
    let rig = Rig::new("bootstrap-drift", &format!("{CHANNELS}[bootstrap]\nresync_seconds = 1\n"));
    let client = rig.nats.client().await;
    let stores = create_buckets(&client, None).await;
    let _media = rig.start("ingest-media").await;
    let f = rig.start("bootstrap-kv").await;
    eventually(Duration::from_secs(10), "KV users loaded", || async { open_sessions(&rig.db).await.len() == 6 })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", f.log_text()));
    let drift_lines = |log: &str| log.lines().filter(|l| l.contains("drift between the database and KV")).count();
    let gauge = |stats: &Value| stats["gauges"]["drift_emotes"][CH].as_i64();
    // Loading into an empty database is a drift of its own (everything missing): reported
    // once, then cleared by the repair.
    eventually(Duration::from_secs(10), "first drift cleared", || async { gauge(&stats(&client).await) == Some(0) })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", f.log_text()));
    let loaded = stats(&client).await["extra"]["drift_emotes"].as_u64().unwrap_or(0);

    // Two emotes added after the KV put: the bucket does not list them (yet).
    let emote = |name: &str| json!({"name": name, "image": "https://i.example/k.png", "source": ""});
    let t = now_ms();
    publish_all(
        &client,
        &[
            (subject(CH, "updateEmote"), envelope("updateEmote", emote("#new1"), CH, t, "u1")),
            (subject(CH, "updateEmote"), envelope("updateEmote", emote("#new2"), CH, t + 1, "u2")),
        ],
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(10), "drift of 2 emotes seen", || async { gauge(&stats(&client).await) == Some(2) })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", f.log_text()));
    // Several resyncs later: still one report of it.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let s = stats(&client).await;
    assert_eq!(gauge(&s), Some(2), "{s}");
    assert_eq!(s["extra"]["drift_emotes"].as_u64().unwrap_or(0), loaded + 2, "counted once: {s}");
    assert_eq!(drift_lines(&f.log_text()), 2, "the load's drift and the new emotes', once each:\n{}", f.log_text());
    let store = rig.store().await;
    let mut tx = store.write().await.unwrap();
    let listed = tx.listed_emotes(D, CH).await.unwrap();
    tx.commit().await.unwrap();
    assert!(listed.contains(&"#new1".to_string()) && listed.contains(&"#new2".to_string()), "{listed:?}");

    // The bridge catches up: the drift clears, said once.
    let emotes = stores.iter().find(|s| s.name.ends_with("_emotes")).unwrap();
    let list: Vec<Value> =
        listed.iter().map(|n| json!({"name": n, "image": "https://i.example/e.png", "source": ""})).collect();
    emotes.put("list", serde_json::to_string(&list).unwrap().into()).await.unwrap();
    eventually(Duration::from_secs(10), "drift cleared", || async { gauge(&stats(&client).await) == Some(0) })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", f.log_text()));
    let log = f.log_text();
    assert_eq!(log.matches("no drift left between the database and KV").count(), 2, "{log}");
    assert_eq!(drift_lines(&log), 2, "{log}");
}
