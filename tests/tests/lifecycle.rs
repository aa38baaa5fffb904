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

#[tokio::test(flavor = "multi_thread")]
async fn every_function_answers_a_discovery_poll_and_says_goodbye() {
    let port = free_port();
    let rig = Rig::new("discovery", &format!("[metrics]\nport = {port}\n"));
    // Every function but the stats site.
    let functions: Vec<&str> = FUNCTIONS.iter().copied().filter(|f| *f != WEB).collect();
    let mut procs = Vec::new();
    for f in &functions {
        procs.push(rig.start(f).await);
    }
    let client = rig.nats.client().await;
    let mut sub = client.subscribe("kryten.lifecycle.*.startup").await.unwrap();
    client.flush().await.unwrap();
    client.publish("kryten.service.discovery.poll", "{}".into()).await.unwrap();
    let mut answered = std::collections::BTreeSet::new();
    while answered.len() < functions.len() {
        let (_, v) = next_json(&mut sub, Duration::from_secs(5)).await;
        answered.insert(v["service"].as_str().unwrap_or_default().to_string());
    }
    let expected: std::collections::BTreeSet<String> = functions.iter().map(|f| format!("userstats-{f}")).collect();
    assert_eq!(answered, expected);

    let mut bye = client.subscribe("kryten.lifecycle.*.shutdown").await.unwrap();
    client.flush().await.unwrap();
    for p in &mut procs {
        assert_eq!(p.terminate(Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}\n{}", p.log_text())), 0);
    }
    let mut gone = std::collections::BTreeSet::new();
    while gone.len() < functions.len() {
        let (_, v) = next_json(&mut bye, Duration::from_secs(5)).await;
        gone.insert(v["service"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(gone, expected, "every function says goodbye and exits 0 on SIGTERM");
}
