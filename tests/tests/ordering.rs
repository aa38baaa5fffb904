//! Events are applied in stream order even when an earlier one is out of reach for a while.
//!
//! Events handed to a taker that then walks away without acking them (a replica killed, or
//! one that gave up waiting on its pull just as the answer arrived) stay pending at the
//! server, seen by nobody, until `ack_wait` passes. Meanwhile later events are there to be
//! fetched; applying those first would break presence (a leave before its join). This test
//! makes it happen on purpose — a pull request takes the first event and its taker walks
//! away — and checks that ingest-presence still applies join, leave, join in that order.
//! (A replica that has just taken the lease waits for such events; one that already holds
//! it notices that the consumer has more events pending than it holds and fetches them
//! first: `Puller::gather_earlier` in shared/src/harness/fetch.rs.)

use serde_json::json;
use std::time::Duration;
use userstats_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn an_event_delivered_into_an_abandoned_pull_is_still_applied_first() {
    let rig = Rig::new("ordering", "");
    let client = rig.nats.client().await;
    // The stream and the function's durable consumer exist, nobody consumes.
    let mut f = rig.start("ingest-presence").await;
    assert_eq!(f.terminate(Duration::from_secs(10)).unwrap(), 0);

    let user = json!({"name": "alice", "rank": 1, "meta": {"afk": false}});
    let events = [
        (subject(CH, "addUser"), envelope("addUser", user.clone(), CH, T0, "o1")),
        (subject(CH, "userLeave"), envelope("userLeave", json!({"name": "alice"}), CH, T0 + 60_000, "o2")),
        (subject(CH, "addUser"), envelope("addUser", user, CH, T0 + 120_000, "o3")),
    ];
    publish_stored(&client, &events).await;

    // The first event goes to a pull request whose taker then walks away without acking it
    // (as a replica does that gave up waiting just as the answer arrived).
    let pull = "$JS.API.CONSUMER.MSG.NEXT.KRYTEN_EVENTS.userstats-ingest-presence";
    let inbox = client.new_inbox();
    let mut taken = client.subscribe(inbox.clone()).await.unwrap();
    client.publish_with_reply(pull, inbox, r#"{"batch": 1}"#.into()).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut taken)).await.unwrap();
    assert!(first.is_some_and(|m| String::from_utf8_lossy(&m.payload).contains("\"o1\"")), "the first join was taken");
    drop(taken);

    // ingest-presence starts now: the leave and the second join are there for it, the first
    // join comes back only after ack_wait (2 s in tests).
    let f = rig.start("ingest-presence").await;
    rig.wait_seen("ingest-presence", 3).await;
    let store = rig.store().await;
    let mut tx = store.write().await.unwrap();
    let activity = tx.activity(D, CH, "alice").await.unwrap();
    let open = tx.session(D, CH, "alice").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(activity, Some((60_000, 60_000)), "joined at T0, left a minute later\n{}", f.log_text());
    assert_eq!(open.map(|s| s.joined_ms), Some(T0 + 120_000), "and back two minutes after T0");
}
