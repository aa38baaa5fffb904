//! Kryten lifecycle citizenship: startup, heartbeats, discovery poll answers, shutdown.

use futures::StreamExt;
use serde_json::Value;
use std::time::Duration;
use userstats_tests::*;

async fn next_json(sub: &mut async_nats::Subscriber, within: Duration) -> (String, Value) {
    let m =
        tokio::time::timeout(within, sub.next()).await.expect("lifecycle message in time").expect("subscription open");
    (m.subject.to_string(), serde_json::from_slice(&m.payload).expect("lifecycle payload is JSON"))
}

#[tokio::test(flavor = "multi_thread")]
async fn functions_announce_beat_answer_discovery_and_say_goodbye() {
    let nats = NatsServer::start();
    let dir = TempDir::new("lifecycle");
    let config = write_config(&dir, &nats.url(), &dir.file("u.db"), "heartbeat_seconds = 1");
    let client = nats.client().await;
    let mut sub = client.subscribe("kryten.lifecycle.>").await.unwrap();
    client.flush().await.unwrap();
    let mut f = FunctionProcess::spawn("ingest-chat", &config, &dir, &[]);

    let (subject, startup) = next_json(&mut sub, Duration::from_secs(10)).await;
    assert_eq!(subject, "kryten.lifecycle.userstats-ingest-chat.startup");
    assert_eq!(startup["service"], "userstats-ingest-chat");
    assert!(startup["version"].as_str().is_some_and(|v| !v.is_empty()));
    assert!(startup["hostname"].as_str().is_some_and(|v| !v.is_empty()));
    assert!(startup["timestamp"].as_str().is_some_and(|t| t.ends_with("+00:00")), "{startup}");
    assert!(startup["uptime_seconds"].is_u64());
    assert_eq!(startup["metadata"]["endpoints"]["metrics"]["port"], 28282);
    assert_eq!(startup["metadata"]["endpoints"]["health"]["path"], "/health");

    let (subject, beat) = next_json(&mut sub, Duration::from_secs(5)).await;
    assert_eq!(subject, "kryten.lifecycle.userstats-ingest-chat.heartbeat", "{beat}");

    client.publish("kryten.service.discovery.poll", "{}".into()).await.unwrap();
    let mut answered = false;
    for _ in 0..3 {
        let (subject, _) = next_json(&mut sub, Duration::from_secs(5)).await;
        answered |= subject.ends_with(".startup");
    }
    assert!(answered, "a discovery poll is answered with startup");

    assert_eq!(f.terminate(Duration::from_secs(5)).unwrap(), 0);
    let mut said_goodbye = false;
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(2), sub.next()).await {
        said_goodbye |= m.subject.as_str() == "kryten.lifecycle.userstats-ingest-chat.shutdown";
    }
    assert!(said_goodbye, "shutdown announced");
}
