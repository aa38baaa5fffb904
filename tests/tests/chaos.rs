//! The long reliability case: a 100,000-event mixed stream (chat, presence, media) applied by
//! 3 replicas of each ingest function while replicas are killed with SIGKILL at random moments
//! and restarted, must give exactly the numbers one undisturbed replica of each gives.
//!
//! Exactness across long outages needs chat to wait for presence/media however long a
//! takeover takes, so this test raises `ingest.dependency_wait_ms` (the default 2 s trades
//! exactness for liveness when a dependency is down for longer).

use std::time::{Duration, Instant};
use userstats_tests::traffic::{Mix, Traffic};
use userstats_tests::*;

const D: &str = "cytu.be";
const CH: &str = "420Grindhouse";
const T0: i64 = 1_763_884_800_000;
const INGEST: [&str; 3] = ["ingest-presence", "ingest-media", "ingest-chat"];
const QUERY: [&str; 2] = ["query-user", "query-leaderboard"];

/// Everything the stream produces, in a comparable form.
#[derive(Debug, PartialEq)]
struct Outcome {
    totals: Vec<(String, i64)>,
    messages: Vec<(String, i64)>,
    kudos: Vec<(String, i64)>,
    emotes: Vec<(String, i64)>,
    votes: Vec<(String, i64, i64)>,
    activity: Vec<(String, Option<(i64, i64)>)>,
}

async fn outcome(rig: &Rig, users: usize) -> Outcome {
    let store = rig.store().await;
    let mut totals = Vec::new();
    for name in [
        "total_users",
        "total_messages",
        "total_kudos_plusplus",
        "total_kudos_phrases",
        "total_emotes",
        "total_media_changes",
    ] {
        totals.push((name.to_string(), store.total(D, name).await.unwrap()));
    }
    let votes =
        store.movie_votes(D, CH).await.unwrap().into_iter().map(|v| (v.media_id, v.upvotes, v.downvotes)).collect();
    let mut tx = store.write().await.unwrap();
    let mut activity = Vec::new();
    for i in 0..users {
        let u = format!("user{i}");
        activity.push((u.clone(), tx.activity(D, CH, &u).await.unwrap()));
    }
    drop(tx);
    Outcome {
        totals,
        messages: store.message_leaderboard(D, CH, 1000).await.unwrap(),
        kudos: store.kudos_leaderboard(D, CH, 1000).await.unwrap(),
        emotes: store.emote_leaderboard(D, CH, 1000).await.unwrap(),
        votes,
        activity,
    }
}

fn stream(n: usize, users: usize) -> Vec<(String, String)> {
    let mut t = Traffic::new(2024, users, CH, T0, Mix::Live);
    let mut events = t.preamble();
    events.extend((0..n).map(|_| t.next_event()));
    events
}

async fn publish(rig: &Rig, events: &[(String, String)]) {
    let client = rig.nats.client().await;
    let js = async_nats::jetstream::new(client);
    let mut acks = Vec::new();
    for (s, d) in events {
        acks.push(js.publish(s.clone(), d.clone().into()).await.unwrap());
        if acks.len() == 512 {
            for a in acks.drain(..) {
                a.await.unwrap();
            }
        }
    }
    for a in acks {
        a.await.unwrap();
    }
}

/// Waits until no ingest function has anything left: every event seen by its owner.
async fn drained(rig: &Rig, expected: &[(String, i64)]) {
    for (f, n) in expected {
        rig.wait_applied(f, *n).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_random_with_3_replicas_each_gives_the_undisturbed_numbers() {
    const USERS: usize = 300;
    let events = stream(100_000, USERS);
    let mut per_function: std::collections::BTreeMap<&str, i64> = Default::default();
    for (s, _) in &events {
        *per_function.entry(owner(s)).or_default() += 1;
    }
    let expected: Vec<(String, i64)> = per_function.iter().map(|(f, n)| (f.to_string(), *n)).collect();
    let config = "[ingest]\ndependency_wait_ms = 600000\n";

    // Reference: one undisturbed replica of each.
    let reference = {
        let rig = Rig::new("chaos-ref", config);
        let mut procs = Vec::new();
        for f in INGEST {
            procs.push(rig.start(f).await);
        }
        publish(&rig, &events).await;
        drained(&rig, &expected).await;
        outcome(&rig, USERS).await
    };
    assert!(reference.kudos.len() > 10 && reference.activity.iter().any(|(_, a)| a.is_some()), "a meaningful stream");

    // Chaos: 3 replicas each, one killed -9 and restarted every ~0.7 s for a while.
    let rig = Rig::new("chaos", config);
    let mut procs: Vec<FunctionProcess> = Vec::new();
    for f in INGEST {
        for _ in 0..3 {
            procs.push(rig.start(f).await);
        }
    }
    for f in QUERY {
        for _ in 0..2 {
            procs.push(rig.start(f).await);
        }
    }
    // Queries keep coming (and being answered) while replicas come and go.
    let asking = {
        let url = rig.nats.url();
        tokio::spawn(async move {
            let client = async_nats::connect(url).await.unwrap();
            let (mut answered, mut unanswered) = (0u32, 0u32);
            let until = Instant::now() + Duration::from_secs(12);
            while Instant::now() < until {
                for (subject, body) in [
                    ("kryten.userstats.command", r#"{"command": "user.stats", "username": "user1"}"#),
                    ("kryten.userstats.command", r#"{"command": "leaderboard.kudos", "channel": "420Grindhouse"}"#),
                ] {
                    let ask = client.request(subject, body.into());
                    match tokio::time::timeout(Duration::from_secs(2), ask).await {
                        Ok(Ok(r))
                            if String::from_utf8_lossy(&r.payload).contains("\"success\": true")
                                || String::from_utf8_lossy(&r.payload).contains("\"success\":true") =>
                        {
                            answered += 1
                        }
                        _ => unanswered += 1,
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (answered, unanswered)
        })
    };
    let publisher = {
        let events = events.clone();
        let url = rig.nats.url();
        tokio::spawn(async move {
            let client = async_nats::connect(url).await.unwrap();
            let js = async_nats::jetstream::new(client);
            for chunk in events.chunks(512) {
                let mut acks = Vec::new();
                for (s, d) in chunk {
                    acks.push(js.publish(s.clone(), d.clone().into()).await.unwrap());
                }
                for a in acks {
                    a.await.unwrap();
                }
            }
        })
    };
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let started = Instant::now();
    let mut kills = 0;
    while started.elapsed() < Duration::from_secs(12) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        tokio::time::sleep(Duration::from_millis(300 + x % 800)).await;
        let victim = (x >> 20) as usize % procs.len();
        let name = procs[victim].name.clone();
        procs[victim].kill();
        kills += 1;
        procs[victim] = FunctionProcess::spawn(&name, &rig.config, &rig.dir, &[]);
    }
    publisher.await.unwrap();
    let (answered, unanswered) = asking.await.unwrap();
    // A request in flight at a replica's SIGKILL is lost; everything else is answered.
    assert!(answered > 100 && unanswered * 20 < answered, "{answered} answered, {unanswered} not");
    drained(&rig, &expected).await;
    let chaos = outcome(&rig, USERS).await;
    assert!(kills >= 10, "{kills} kills");
    assert_eq!(chaos.totals, reference.totals, "after {kills} kills");
    assert_eq!(chaos.messages, reference.messages);
    assert_eq!(chaos.kudos, reference.kudos);
    assert_eq!(chaos.emotes, reference.emotes);
    assert_eq!(chaos.votes, reference.votes);
    assert_eq!(chaos.activity, reference.activity);
}
