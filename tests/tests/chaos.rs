//! The long reliability case: a 100,000-event mixed stream (chat, presence, media) applied by
//! 3 replicas of each ingest function while replicas are killed with SIGKILL at random moments
//! and restarted, must give exactly the numbers one undisturbed replica of each gives.
//!
//! Exactness across long outages needs chat to wait for presence/media however long a
//! takeover takes, so this test raises `ingest.dependency_wait_ms` (the default 2 s trades
//! exactness for liveness when a dependency is down for longer).

use std::time::{Duration, Instant};
use userstats_tests::*;

const INGEST: [&str; 3] = ["ingest-presence", "ingest-media", "ingest-chat"];
const QUERY: [&str; 2] = ["query-user", "query-leaderboard"];

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_random_with_3_replicas_each_gives_the_undisturbed_numbers() {
    const USERS: usize = 300;
    let events = mixed_stream(100_000, USERS);
    let config = "[ingest]\ndependency_wait_ms = 600000\n";

    // Reference: one undisturbed replica of each.
    let reference = undisturbed("chaos-ref", config, &events, USERS).await;
    assert!(reference.kudos.len() > 10 && reference.activity.iter().any(|(_, a)| a.is_some()), "a meaningful stream");

    // Chaos: 3 replicas each, one killed -9 and restarted every ~0.7 s for a while.
    let rig = Rig::new("chaos", config);
    let mut procs = start_replicas(&rig).await;
    let asking = keep_asking(rig.nats.url());
    let publisher = {
        let events = events.clone();
        let url = rig.nats.url();
        tokio::spawn(async move { publish_stored(&async_nats::connect(url).await.unwrap(), &events).await })
    };
    let kills = kill_at_random(&rig, &mut procs).await;
    publisher.await.unwrap();
    let (answered, unanswered) = asking.await.unwrap();
    // A request in flight at a replica's SIGKILL is lost; everything else is answered.
    assert!(answered > 100 && unanswered * 20 < answered, "{answered} answered, {unanswered} not");
    rig.drained(&events).await;
    let chaos = Outcome::of(&rig, USERS).await;
    assert!(kills >= 10, "{kills} kills");
    assert_eq!(chaos.totals, reference.totals, "after {kills} kills");
    assert_eq!(chaos.messages, reference.messages);
    assert_eq!(chaos.kudos, reference.kudos);
    assert_eq!(chaos.emotes, reference.emotes);
    assert_eq!(chaos.votes, reference.votes);
    assert_eq!(chaos.activity, reference.activity);
}

/// 3 replicas of each ingest function and 2 of each query function.
async fn start_replicas(rig: &Rig) -> Vec<FunctionProcess> {
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
    procs
}

/// Queries keep coming (and being answered) while replicas come and go: for 12 s, two
/// commands every 20 ms or so. Returns (answered with success, not answered in 2 s).
fn keep_asking(url: String) -> tokio::task::JoinHandle<(u32, u32)> {
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
}

/// For 12 s, every 0.3 to 1.1 s, one replica picked at random killed with SIGKILL and
/// started again. Returns how many were killed.
async fn kill_at_random(rig: &Rig, procs: &mut [FunctionProcess]) -> usize {
    let mut rng = Rng::new(0x2545_F491_4F6C_DD1D);
    let started = Instant::now();
    let mut kills = 0;
    while started.elapsed() < Duration::from_secs(12) {
        let x = rng.next_u64();
        tokio::time::sleep(Duration::from_millis(300 + x % 800)).await;
        let victim = (x >> 20) as usize % procs.len();
        let name = procs[victim].name.clone();
        procs[victim].kill();
        kills += 1;
        procs[victim] = FunctionProcess::spawn(&name, &rig.config, &rig.dir, &[]);
    }
    kills
}
