//! Faults the functions must ride out: nats-server restarted mid-stream (JetStream on disk),
//! the database held by another writer for 5 s.

use std::time::{Duration, Instant};
use userstats_tests::traffic::{Mix, Traffic};
use userstats_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn nats_restart_mid_stream_reconnects_and_counts_exactly() {
    let mut rig = Rig::new("natsrestart", "");
    let _c = rig.start("ingest-chat").await;
    let mut traffic = Traffic::new(5, 200, CH, T0, Mix::Chat);
    let first: Vec<_> = (0..10_000).map(|_| traffic.next_event()).collect();
    let second: Vec<_> = (0..10_000).map(|_| traffic.next_event()).collect();
    {
        let client = rig.nats.client().await;
        publish_stored(&client, &first).await;
    }
    // Restart while the backlog is being applied.
    tokio::time::sleep(Duration::from_millis(100)).await;
    rig.nats.restart(Duration::from_secs(2));
    let client = rig.nats.client().await;
    publish_stored(&client, &second).await;
    rig.wait_applied("ingest-chat", 20_000).await;
    let store = rig.store().await;
    assert_eq!(store.total(D, "total_messages").await.unwrap(), 20_000);
    // Registered again on the new server.
    wait_registered(&client, "userstats-ingest-chat", Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_held_by_another_writer_for_5s_delays_but_loses_nothing() {
    let rig = Rig::new("dblock", "");
    let chat = rig.start("ingest-chat").await;
    let _q = rig.start("query-user").await;
    let client = rig.nats.client().await;
    let mut traffic = Traffic::new(6, 200, CH, T0, Mix::Chat);
    let events: Vec<_> = (0..5_000).map(|_| traffic.next_event()).collect();

    // Another process-like writer takes the write lock and keeps it for 5 s.
    let blocker = rig.store().await;
    let tx = blocker.write().await.unwrap();
    let held = Instant::now();
    publish_stored(&client, &events).await;
    // Queries still answer while the writer holds the database (WAL readers are not blocked).
    let asked = Instant::now();
    let reply = client
        .request("userstats.query.user.stats", r#"{"username": "user1"}"#.into())
        .await
        .expect("a query answers while the database is locked");
    assert!(asked.elapsed() < Duration::from_secs(2), "query answered in {:?}", asked.elapsed());
    assert!(String::from_utf8_lossy(&reply.payload).contains("\"command\""));
    let store = rig.store().await;
    assert_eq!(store.counter("ingest-chat", "events_applied").await.unwrap(), 0, "nothing applied while locked");
    while held.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tx.commit().await.unwrap();
    rig.wait_applied("ingest-chat", 5_000).await;
    assert_eq!(store.total(D, "total_messages").await.unwrap(), 5_000);
    assert!(chat.log_text().contains("database busy"), "the wait is logged: {}", chat.log_text());
}
