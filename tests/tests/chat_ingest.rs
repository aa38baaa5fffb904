//! ingest-chat end to end: a real nats-server, the real binary, a real database file.

use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use userstats_tests::*;

fn id(seed: u32, i: usize) -> String {
    format!("{seed:08x}-0000-4000-8000-{i:012x}")
}

/// A rig with ingest-chat running on it, and a client of its nats-server.
async fn chat_rig() -> (Rig, FunctionProcess, async_nats::Client) {
    let rig = Rig::new("chat", "");
    let f = rig.start("ingest-chat").await;
    let client = rig.nats.client().await;
    (rig, f, client)
}

#[tokio::test(flavor = "multi_thread")]
async fn fixture_chat_events_give_the_documented_numbers() {
    let (rig, _f, client) = chat_rig().await;
    let fixtures: Vec<(String, String)> = fixtures("events.jsonl").into_iter().map(|f| (f.subject, f.data)).collect();
    publish_all(&client, &fixtures).await.unwrap();
    // 16 chat messages (incl. [server]) + 2 PMs + the duplicate; KrytenBot's PM and [server] ignored.
    let store = open_store(&rig.db).await;
    eventually(Duration::from_secs(30), "fixture applied", || async {
        store.counter("ingest-chat", "events_applied").await.unwrap_or(0)
            + store.counter("ingest-chat", "duplicates").await.unwrap_or(0)
            >= 19
    })
    .await
    .unwrap();
    let messages = |u: &'static str| {
        let store = &store;
        async move { store.user_counts(D, CH, u).await.unwrap().messages }
    };
    assert_eq!(messages("Alice").await, 4);
    assert_eq!(messages("bob").await, 8);
    assert_eq!(messages("zoë").await, 1);
    assert_eq!(messages("some-user").await, 1);
    assert_eq!(messages("sleepy").await, 1);
    assert_eq!(store.total(D, "total_messages").await.unwrap(), 15);
    assert_eq!(store.total(D, "total_pms").await.unwrap(), 1);
    assert_eq!(store.user(D, "bob").await.unwrap().unwrap().pms, 1);
    assert!(store.user(D, "KrytenBot").await.unwrap().is_none());
    assert!(store.user(D, "[server]").await.unwrap().is_none());
    assert_eq!(store.user(D, "zoë").await.unwrap().unwrap().display, "Zoë");
    assert_eq!(store.user_counts(D, CH, "alice").await.unwrap().kudos_plusplus, 2);
    assert_eq!(store.total(D, "total_kudos_plusplus").await.unwrap(), 2);
    assert_eq!(store.total(D, "total_kudos_phrases").await.unwrap(), 3);
    assert_eq!(
        store.kudos_leaderboard(D, CH, 10).await.unwrap(),
        vec![("Alice".to_string(), 3), ("bob".to_string(), 1), ("Zoë".to_string(), 1)]
    );
    assert_eq!(store.kudos_leaderboard(D, "", 10).await.unwrap().len(), 3, "domain rollup");
    assert_eq!(store.phrase_kudos(D, CH, "zoë").await.unwrap(), vec![("haha".to_string(), 1)]);
    assert_eq!(store.phrase_kudos(D, CH, "bob").await.unwrap(), vec![("lol".to_string(), 1)]);
    assert_eq!(store.counter("ingest-chat", "duplicates").await.unwrap(), 1);
    assert_eq!(store.hourly(D, CH, T0, T0 + 3_600_000).await.unwrap(), vec![(T0, 15, 5)]);
}

/// Every user's messages and kudos are exactly the expected ones.
async fn assert_counts(rig: &Rig, messages: &HashMap<String, i64>, kudos: &HashMap<String, i64>) {
    let store = rig.store().await;
    for (u, n) in messages {
        assert_eq!(store.user_counts(D, CH, u).await.unwrap().messages, *n, "messages of {u}");
    }
    for (u, n) in kudos {
        let c = store.user_counts(D, CH, u).await.unwrap();
        assert_eq!(c.kudos_plusplus + c.kudos_phrases, *n, "kudos of {u}");
    }
}

/// A deterministic mix over 200 users; the expected numbers are computed independently here.
/// (messages to publish, expected messages per user, expected kudos per user)
type Mixed = (Vec<(String, String)>, HashMap<String, i64>, HashMap<String, i64>);

fn kudos_stream(n: usize, seed: u32) -> Mixed {
    let users: Vec<String> = (0..200).map(|i| format!("user{i}")).collect();
    let mut messages: HashMap<String, i64> = HashMap::new();
    let mut kudos: HashMap<String, i64> = HashMap::new();
    let mut out = Vec::with_capacity(n);
    let mut rng = Rng::new(seed as u64 | 1);
    for (i, u) in users.iter().enumerate() {
        out.push(chat(CH, u, "hello", T0 + i as i64, &id(seed, i)));
        *messages.entry(u.clone()).or_default() += 1;
    }
    for i in users.len()..n {
        let x = rng.next_u64();
        let sender = &users[(x % 200) as usize];
        let target = &users[((x >> 8) % 200) as usize];
        let text = match (x >> 16) % 4 {
            0 => format!("{target}++ nice"),
            1 => format!("lol {target}"),
            2 => format!("++{target}++ and {target} haha"),
            _ => "just talking".to_string(),
        };
        if (x >> 16) % 4 != 3 && sender != target {
            *kudos.entry(target.clone()).or_default() += if (x >> 16) % 4 == 2 { 2 } else { 1 };
        }
        *messages.entry(sender.clone()).or_default() += 1;
        out.push(chat(CH, sender, &text, T0 + 1000 + i as i64, &id(seed, i)));
    }
    (out, messages, kudos)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_published_message_is_counted_once_with_its_kudos() {
    let (rig, _f, client) = chat_rig().await;
    let (stream, messages, kudos) = kudos_stream(5000, 7);
    publish_all(&client, &stream).await.unwrap();
    rig.wait_applied("ingest-chat", 5000).await;
    let store = open_store(&rig.db).await;
    assert_eq!(store.total(D, "total_messages").await.unwrap(), 5000);
    assert_eq!(store.total(D, "total_users").await.unwrap(), 200);
    assert_counts(&rig, &messages, &kudos).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_event_twice_is_counted_once_even_on_another_subject() {
    let (rig, _f, client) = chat_rig().await;
    let (subject, body) = chat(CH, "alice", "hi", T0, &id(1, 1));
    let again = ("kryten.events.cytube.elsewhere.chatmsg".to_string(), body.clone());
    publish_all(&client, &[(subject.clone(), body.clone()), (subject, body), again]).await.unwrap();
    let store = open_store(&rig.db).await;
    // 3 deliveries seen: 2 of them duplicates.
    counter_reaches(&store, "ingest-chat", "duplicates", 2, Duration::from_secs(20)).await.unwrap();
    assert_eq!(store.user_counts(D, CH, "alice").await.unwrap().messages, 1);
    assert_eq!(store.counter("ingest-chat", "events_applied").await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_mid_stream_and_restarted_nothing_lost_nothing_doubled() {
    let (rig, mut f, client) = chat_rig().await;
    let (stream, messages, kudos) = kudos_stream(30_000, 11);
    publish_all(&client, &stream).await.unwrap();
    let store = open_store(&rig.db).await;
    counter_reaches(&store, "ingest-chat", "events_applied", 2001, Duration::from_secs(30)).await.unwrap();
    f.kill();
    let before = store.counter("ingest-chat", "events_applied").await.unwrap();
    let _f2 = rig.start("ingest-chat").await;
    rig.wait_applied("ingest-chat", 30_000).await;
    assert!(before < 30_000, "the kill must land mid-stream (applied {before})");
    assert_eq!(store.total(D, "total_messages").await.unwrap(), 30_000);
    assert_counts(&rig, &messages, &kudos).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_input_is_rejected_and_counted_and_good_events_around_it_apply() {
    let (rig, f, client) = chat_rig().await;
    let s = subject(CH, "chatMsg");
    let mut bad: Vec<Vec<u8>> = fixtures("malformed.jsonl")
        .into_iter()
        .filter(|f| f.subject.ends_with(".chatmsg"))
        .map(|f| f.data.into_bytes())
        .collect();
    let huge = "x".repeat(1_000_000) + "\u{0}";
    bad.push(chat(CH, "bob", &huge, T0, &id(9, 900)).1.into_bytes()); // ~1 MiB with a NUL
    bad.push(
        chat(CH, "bob", &"x".repeat(1_000_000), T0, &id(9, 902))
            .1
            .into_bytes()
            .split_last()
            .map(|(_, b)| b.to_vec())
            .unwrap_or_default(),
    ); // ~1 MiB, cut short
    bad.push(chat(CH, "b\u{0}ob", "nul in name", T0, &id(9, 901)).1.into_bytes());
    bad.push(vec![0xff, 0xfe, b'{', b'}']);
    bad.push(b"{\"event_name\": 5}".to_vec());
    bad.push("[".repeat(100_000).into_bytes());
    bad.push(br#"{"event_name":"chatMsg","payload":{"username":"x","msg":"y","time":1e400},"channel":"c","domain":"d","timestamp":"nope"}"#.to_vec());
    let mut n_bad = bad.len() as i64;
    let mut good = 0;
    for (i, b) in bad.into_iter().enumerate() {
        client.publish(s.clone(), b.into()).await.unwrap();
        let (gs, gb) = chat(CH, "alice", &format!("good {i}"), T0 + i as i64, &id(9, i));
        client.publish(gs, gb.into()).await.unwrap();
        good += 1;
    }
    // An unknown event on a chat subject is not a rejection, and a big but valid message is fine.
    let unknown = envelope("voteskip", serde_json::json!({"count": 1}), CH, T0, &id(9, 999));
    client.publish(s.clone(), unknown.into()).await.unwrap();
    let (_, big) = chat(CH, "alice", &"y".repeat(500_000), T0 + 5000, &id(9, 998));
    client.publish(s.clone(), big.into()).await.unwrap();
    good += 1;
    client.flush().await.unwrap();
    let store = open_store(&rig.db).await;
    let rejected = || async { rejected_total(&store, "ingest-chat").await };
    let r = eventually(Duration::from_secs(30), "all applied or rejected", || async {
        rejected().await >= n_bad && store.counter("ingest-chat", "events_applied").await.unwrap_or(0) > good
    })
    .await;
    if r.is_err() {
        n_bad = -1;
    }
    assert_eq!(rejected().await, n_bad, "{:?}\n{}", store.counters("ingest-chat").await, f.log_text());
    assert_eq!(store.user_counts(D, CH, "alice").await.unwrap().messages, good);
    assert_eq!(store.counter("ingest-chat", "unknown_events").await.unwrap(), 1);
    assert!(store.user(D, "b\u{0}ob").await.unwrap().is_none());
    // The function is still alive and says what it rejected in its service stats.
    let stats = client.request("$SRV.STATS.userstats-ingest-chat", "".into()).await.unwrap();
    let stats: Value = serde_json::from_slice(&stats.payload).unwrap();
    let data = &stats["endpoints"][0]["data"];
    assert_eq!(data["rejected"].as_i64(), Some(n_bad), "{stats}");
    assert!(f.log_text().contains("rejected malformed"), "rejections are logged");
}

#[tokio::test(flavor = "multi_thread")]
async fn registers_as_a_micro_service_with_moving_counters() {
    let (rig, _f, client) = chat_rig().await;
    let info = client.request("$SRV.INFO.userstats-ingest-chat", "".into()).await.unwrap();
    let info: Value = serde_json::from_slice(&info.payload).unwrap();
    assert_eq!(info["name"], "userstats-ingest-chat");
    assert_eq!(info["metadata"]["function"], "ingest-chat");
    assert!(info["version"].as_str().is_some_and(|v| v.split('.').count() == 3));
    assert_eq!(info["endpoints"][0]["subject"], "userstats.ingest-chat.status");
    let (s, b) = chat(CH, "alice", "hi", T0, &id(3, 1));
    publish_all(&client, &[(s, b)]).await.unwrap();
    rig.wait_applied("ingest-chat", 1).await;
    let stats = client.request("$SRV.STATS.userstats-ingest-chat", "".into()).await.unwrap();
    let stats: Value = serde_json::from_slice(&stats.payload).unwrap();
    assert_eq!(stats["endpoints"][0]["data"]["events_applied"], 1, "{stats}");
    let status = client.request("userstats.ingest-chat.status", "".into()).await.unwrap();
    let status: Value = serde_json::from_slice(&status.payload).unwrap();
    assert_eq!(status["stats"]["events_applied"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_and_exits_zero_within_5s() {
    let (rig, mut f, client) = chat_rig().await;
    let (stream, _, _) = kudos_stream(3000, 5);
    publish_all(&client, &stream).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let code = f.terminate(Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}\n{}", f.log_text()));
    assert_eq!(code, 0, "{}", f.log_text());
    // The service deregistered.
    let gone =
        tokio::time::timeout(Duration::from_millis(500), client.request("$SRV.PING.userstats-ingest-chat", "".into()))
            .await;
    assert!(!matches!(gone, Ok(Ok(_))), "still answering after exit");
    // Whatever it had not applied is applied by the next start, exactly once.
    let _f2 = rig.start("ingest-chat").await;
    rig.wait_applied("ingest-chat", 3000).await;
    let store = open_store(&rig.db).await;
    assert_eq!(store.total(D, "total_messages").await.unwrap(), 3000);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_nats_address_fails_with_one_clear_line() {
    let dir = TempDir::new("badnats");
    let port = free_port();
    let config = write_config(&dir, &format!("nats://127.0.0.1:{port}"), &dir.file("x.db"), "");
    let mut f =
        FunctionProcess::spawn("ingest-chat", &config, &dir, &[("USERSTATS_NATS_CONNECT_TIMEOUT_SECONDS", "1")]);
    let mut code = None;
    for _ in 0..100 {
        code = f.exited();
        if code.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(code, Some(1), "{}", f.log_text());
    assert!(f.log_text().contains("cannot reach NATS"), "{}", f.log_text());
}
