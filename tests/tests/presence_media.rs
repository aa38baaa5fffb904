//! ingest-presence and ingest-media end to end: time in channel survives kills and replicas,
//! replicas agree with one replica, one population row per interval, the media log and votes,
//! emote list changes reaching ingest-chat.

use serde_json::json;
use std::time::Duration;
use userstats_tests::traffic::{Mix, Traffic};
use userstats_tests::*;

/// Closed (total, not-AFK) seconds of a user.
async fn activity(rig: &Rig, user: &str) -> Option<(i64, i64)> {
    let store = rig.store().await;
    let mut tx = store.write().await.unwrap();
    tx.activity(D, CH, user).await.unwrap().map(|(t, n)| (t / 1000, n / 1000))
}
fn ev(event: &str, payload: serde_json::Value, at_ms: i64, id: &str) -> (String, String) {
    (subject(CH, event), envelope(event, payload, CH, at_ms, id))
}

fn join(name: &str, at_ms: i64, id: &str) -> (String, String) {
    ev("addUser", json!({"name": name, "rank": 1, "meta": {"afk": false, "muted": false}}), at_ms, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn time_in_channel_survives_kills_and_replicas_between_events() {
    let rig = Rig::new("presence", "");
    let client = rig.nats.client().await;
    let events = [
        join("alice", T0, "p-1"),
        ev("setAFK", json!({"name": "alice", "afk": true}), T0 + 600_000, "p-2"),
        ev("setAFK", json!({"name": "alice", "afk": false}), T0 + 900_000, "p-3"),
        ev("userLeave", json!({"name": "alice"}), T0 + 1_800_000, "p-4"),
    ];
    // Each event is handled by a fresh process (killed -9 after it), two replicas running.
    for (i, e) in events.iter().enumerate() {
        let mut a = rig.start("ingest-presence").await;
        let mut b = rig.start("ingest-presence").await;
        publish_all(&client, std::slice::from_ref(e)).await.unwrap();
        rig.wait_seen("ingest-presence", i as i64 + 1).await;
        a.kill();
        b.kill();
    }
    assert_eq!(activity(&rig, "alice").await, Some((1800, 1500)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_userlist_closes_absent_users_and_a_repeated_join_keeps_the_session() {
    let rig = Rig::new("presence", "");
    let _p = rig.start("ingest-presence").await;
    let client = rig.nats.client().await;
    let list = |names: &[&str], at: i64, id: &str| {
        let users: Vec<_> = names.iter().map(|n| json!({"name": n, "rank": 1, "meta": {"afk": false}})).collect();
        ev("userlist", json!(users), at, id)
    };
    let stream = [
        list(&["alice", "bob"], T0, "u-1"),
        join("bob", T0 + 60_000, "u-2"), // repeated: keeps the session from T0
        list(&["alice"], T0 + 300_000, "u-3"),
        ev("userLeave", json!({"name": "alice"}), T0 + 400_000, "u-4"),
    ];
    publish_all(&client, &stream).await.unwrap();
    rig.wait_seen("ingest-presence", 4).await;
    assert_eq!(activity(&rig, "bob").await, Some((300, 300)), "bob closed at the second list's time");
    assert_eq!(activity(&rig, "alice").await, Some((400, 400)));
}

/// Every user's closed activity after a presence stream, sorted.
async fn presence_totals(replicas: usize) -> (Vec<(String, Option<(i64, i64)>)>, i64) {
    let rig = Rig::new("presence", "[snapshots]\ninterval_seconds = 1\n");
    let _procs: Vec<FunctionProcess> = {
        let mut v = Vec::new();
        for _ in 0..replicas {
            v.push(rig.start("ingest-presence").await);
        }
        v
    };
    let client = rig.nats.client().await;
    let mut traffic = Traffic::new(99, 200, CH, T0, Mix::Presence);
    let mut stream = traffic.preamble();
    stream.truncate(1);
    stream.extend((0..20_000).map(|_| traffic.next_event()));
    let js = async_nats::jetstream::new(client.clone());
    for (s, d) in &stream {
        js.publish(s.clone(), d.clone().into()).await.unwrap().await.unwrap();
    }
    rig.wait_seen("ingest-presence", stream.len() as i64).await;
    // Let a few snapshot intervals pass with all replicas running.
    let started = shared::harness::now_ms();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let store = open_store(&rig.db).await;
    let mut tx = store.write().await.unwrap();
    let mut totals = Vec::new();
    for i in 0..200 {
        let user = format!("user{i}");
        let a = tx.activity(D, CH, &user).await.unwrap();
        totals.push((user, a));
    }
    let slots = tx.population(D, CH, started - 1000).await.unwrap();
    let mut distinct: Vec<i64> = slots.iter().map(|s| s.0).collect();
    distinct.dedup();
    assert_eq!(distinct.len(), slots.len(), "one row per slot");
    for w in distinct.windows(2) {
        assert_eq!(w[1] - w[0], 1000, "no interval without its snapshot: {distinct:?}");
    }
    (totals, slots.len() as i64)
}

#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_give_the_same_totals_as_one() {
    let (one, slots1) = presence_totals(1).await;
    let (three, slots3) = presence_totals(3).await;
    assert!(one.iter().any(|(_, a)| a.is_some()), "the stream closes sessions");
    assert_eq!(one, three);
    assert!(slots1 >= 3 && slots3 >= 3, "snapshots every second: {slots1} {slots3}");
}

#[tokio::test(flavor = "multi_thread")]
async fn media_log_votes_and_emote_changes_reach_chat() {
    let rig = Rig::new("presence", "");
    let _m = rig.start("ingest-media").await;
    let _c = rig.start("ingest-chat").await;
    let client = rig.nats.client().await;
    let media = |id: &str, title: &str, at: i64, eid: &str| {
        ev("changeMedia", json!({"id": id, "title": title, "seconds": 60, "type": "yt", "meta": {}}), at, eid)
    };
    let emotes = |names: &[&str], at: i64, eid: &str| {
        let list: Vec<_> = names.iter().map(|n| json!({"name": n, "image": "", "source": ""})).collect();
        ev("emoteList", json!(list), at, eid)
    };
    let stream = vec![
        emotes(&["Kappa"], T0, "m-0"),
        media("A", "Movie.A.mp4", T0 + 1000, "m-1"),
        media("A", "Movie.A.mp4", T0 + 2000, "m-2"),
        chat(CH, "bob", "Kappa hi", T0 + 2500, "c-1"),
        media("B", "Movie_B", T0 + 3000, "m-3"),
        chat(CH, "bob", "movie++", T0 + 3500, "c-2"),
        emotes(&["PogChamp"], T0 + 3600, "m-4"),
        chat(CH, "bob", "Kappa PogChamp", T0 + 3700, "c-3"),
        media("A", "Movie.A.mp4", T0 + 4000, "m-5"),
    ];
    publish_all(&client, &stream).await.unwrap();
    rig.wait_seen("ingest-media", 6).await;
    rig.wait_seen("ingest-chat", 3).await;
    let store = open_store(&rig.db).await;
    let log = store.media_history(D, CH, 10).await.unwrap();
    let ids: Vec<&str> = log.iter().map(|(_, _, id, _)| id.as_str()).collect();
    assert_eq!(ids, vec!["A", "B", "A"], "newest first: A, B, A");
    assert_eq!(log[1].3, "Movie B");
    let votes = store.movie_votes(D, CH).await.unwrap();
    assert_eq!(votes.len(), 1);
    assert_eq!((votes[0].media_id.as_str(), votes[0].upvotes), ("B", 1), "the vote after B is for B");
    // Kappa counted while listed; after the list changed, PogChamp counts and Kappa no longer.
    assert_eq!(
        store.user_emotes(D, CH, "bob").await.unwrap(),
        vec![("Kappa".to_string(), 1), ("PogChamp".to_string(), 1)]
    );
    assert_eq!(store.total(D, "total_media_changes").await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn core_nats_mode_counts_without_jetstream_state() {
    let rig = Rig::new("presence", "[ingest]\nmode = \"core\"\n");
    let _c = rig.start("ingest-chat").await;
    let client = rig.nats.client().await;
    let stream: Vec<_> =
        (0..500).map(|i| chat(CH, &format!("u{}", i % 7), "hi", T0 + i, &format!("core-{i}"))).collect();
    publish_all(&client, &stream).await.unwrap();
    rig.wait_seen("ingest-chat", 500).await;
    let store = open_store(&rig.db).await;
    assert_eq!(store.total(D, "total_messages").await.unwrap(), 500);
    let js = async_nats::jetstream::new(client.clone());
    assert!(js.get_stream("KRYTEN_EVENTS").await.is_err(), "core mode creates no stream");
}
