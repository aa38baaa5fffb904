//! The malformed-input corpus (tests/corpus/malformed.jsonl, each line `{subject, data, why}`)
//! published to all three ingest functions between good events: every bad message is
//! rejected and counted (durably and in the service stats), nothing is half-written, every
//! good event around them is applied, no function dies.

use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use userstats_tests::*;

const CH: &str = "420Grindhouse";
const T0: i64 = 1_763_888_400_000;

#[tokio::test(flavor = "multi_thread")]
async fn every_corpus_case_is_rejected_and_counted_and_good_events_apply() {
    let corpus: Vec<Value> = std::fs::read_to_string(workspace().join("tests/corpus/malformed.jsonl"))
        .expect("corpus file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("corpus line is JSON"))
        .collect();
    assert!(corpus.len() >= 50, "at least 50 cases");
    let rig = Rig::new("corpus", "");
    let mut procs = Vec::new();
    for f in ["ingest-presence", "ingest-media", "ingest-chat"] {
        procs.push(rig.start(f).await);
    }
    let client = rig.nats.client().await;
    let mut expected: BTreeMap<&str, i64> = BTreeMap::new();
    for (i, case) in corpus.iter().enumerate() {
        let subject = case["subject"].as_str().unwrap();
        *expected.entry(owner(subject)).or_default() += 1;
        client.publish(subject.to_string(), case["data"].as_str().unwrap().to_string().into()).await.unwrap();
        let (s, d) = chat(CH, "alice", &format!("good {i}"), T0 + i as i64, &format!("good-{i}"));
        client.publish(s, d.into()).await.unwrap();
    }
    client.flush().await.unwrap();

    let store = rig.store().await;
    let rejected = |f: &'static str| {
        let store = &store;
        async move { rejected_total(store, f).await }
    };
    rig.wait_applied("ingest-chat", corpus.len() as i64).await;
    let mut got = BTreeMap::new();
    let settled = eventually(Duration::from_secs(20), "all rejections counted", || async {
        for (f, n) in &expected {
            if rejected(f).await < *n {
                return false;
            }
        }
        true
    })
    .await;
    for f in expected.keys() {
        got.insert(*f, rejected(f).await);
    }
    if settled.is_err() || got != expected {
        // Name the cases a function accepted, to make a failure readable.
        let mut detail = String::new();
        for f in expected.keys() {
            detail += &format!("{f}: {:?}\n", store.counters(f).await.unwrap());
        }
        panic!("rejected per function {got:?}, expected {expected:?}\n{detail}");
    }
    assert_eq!(store.user_counts("cytu.be", CH, "alice").await.unwrap().messages, corpus.len() as i64);
    assert_eq!(store.total("cytu.be", "total_users").await.unwrap(), 1, "no user half-created from bad input");
    for p in &mut procs {
        assert_eq!(p.exited(), None, "{} still running", p.name);
    }
    // The service stats say the same.
    for (f, n) in &expected {
        let reply = client.request(format!("$SRV.STATS.userstats-{f}"), "".into()).await.unwrap();
        let stats: Value = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(stats["endpoints"][0]["data"]["rejected"].as_i64(), Some(*n), "{f}: {stats}");
    }
}
