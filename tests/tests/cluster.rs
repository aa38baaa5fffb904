//! A NATS cluster that loses a node: three nats-servers on loopback (JetStream, the events
//! stream kept in 3 copies), the ingest functions connected to different nodes, and the node
//! leading the stream killed in the middle of a 50,000-event stream. The numbers must be
//! exactly those of one undisturbed server.

use async_nats::jetstream;
use std::time::{Duration, Instant};
use userstats_tests::*;

const INGEST: [&str; 3] = ["ingest-presence", "ingest-media", "ingest-chat"];
const USERS: usize = 300;
const EVENTS: usize = 50_000;

/// Three nodes of one cluster (`n0`..`n2`), each on its own client and route port.
fn cluster() -> Vec<NatsServer> {
    let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let urls: Vec<String> = routes.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect();
    (0..3)
        .map(|i| {
            let name = format!("n{i}");
            let listen = format!("nats://127.0.0.1:{}", routes[i]);
            let others: Vec<&str> = urls.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, u)| u.as_str()).collect();
            let others = others.join(",");
            NatsServer::start_with(&[
                "-n",
                &name,
                "--cluster_name",
                "userstats",
                "--cluster",
                &listen,
                "--routes",
                &others,
            ])
        })
        .collect()
}

/// Waits until the cluster's JetStream answers (a meta leader is elected).
async fn jetstream_ready(client: &async_nats::Client) {
    let js = jetstream::new(client.clone());
    eventually(Duration::from_secs(30), "JetStream cluster ready", || async { js.query_account().await.is_ok() })
        .await
        .unwrap();
}

/// Publishes in order, each event acked before the next, retrying one that fails (the
/// message id lets JetStream drop a retry of an event it did store): order is what the
/// presence numbers depend on, so nothing may overtake a failed publish.
async fn publish_in_order(js: &jetstream::Context, events: &[(String, String)], first_index: usize) {
    for (i, (subject, body)) in events.iter().enumerate() {
        let started = Instant::now();
        loop {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("e{}", first_index + i).as_str());
            let sent = js.publish_with_headers(subject.clone(), headers, body.clone().into()).await;
            let stored = match sent {
                Ok(ack) => tokio::time::timeout(Duration::from_secs(3), ack).await.is_ok_and(|a| a.is_ok()),
                Err(_) => false,
            };
            if stored {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "{subject} not stored within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_node_that_leads_the_stream_loses_and_doubles_nothing() {
    let events = mixed_stream(EVENTS, USERS);
    let config = "[ingest]\ndependency_wait_ms = 600000\nstream_replicas = 3\n";

    // Reference: one undisturbed server.
    let reference = undisturbed("cluster-ref", "[ingest]\ndependency_wait_ms = 600000\n", &events, USERS).await;

    let mut nodes = cluster();
    let urls: Vec<String> = nodes.iter().map(|n| n.url()).collect();
    let client = async_nats::ConnectOptions::new().connect(urls.clone()).await.unwrap();
    jetstream_ready(&client).await;
    // The rig's own server is only its home for the config file; the functions are sent to
    // the cluster, each to a different node first (the others as fallbacks).
    let rig = Rig::new("cluster", config);
    let mut procs = Vec::new();
    for (i, f) in INGEST.iter().enumerate() {
        let servers: Vec<&str> = (0..3).map(|k| urls[(i + k) % 3].as_str()).collect();
        let servers = servers.join(",");
        let p = FunctionProcess::spawn(f, &rig.config, &rig.dir, &[("USERSTATS_NATS_SERVERS", servers.as_str())]);
        wait_registered(&client, &format!("userstats-{f}"), Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", p.log_text()));
        procs.push(p);
    }
    let js = jetstream::new(client.clone());
    let stream = js.get_stream("KRYTEN_EVENTS").await.expect("the functions created the stream");
    let replicas = stream.cached_info().config.num_replicas;
    assert_eq!(replicas, 3, "ingest.stream_replicas = 3 gives a stream in three copies");

    // Half the stream, then the node leading the stream is killed, then the rest.
    let (first, second) = events.split_at(EVENTS / 2);
    publish_in_order(&js, first, 0).await;
    let mut stream = js.get_stream("KRYTEN_EVENTS").await.unwrap();
    let leader = stream.info().await.unwrap().cluster.as_ref().and_then(|c| c.leader.clone()).expect("a stream leader");
    let killed: usize = leader.trim_start_matches('n').parse().expect("leader is n0..n2");
    nodes[killed].stop();
    publish_in_order(&js, second, first.len()).await;
    rig.drained(&events).await;
    let disturbed = Outcome::of(&rig, USERS).await;
    assert_eq!(disturbed, reference, "node {killed} (the stream leader) killed mid-stream");
    for p in procs.iter_mut() {
        assert_eq!(p.exited(), None, "{} is still running: {}", p.name, p.log_text());
    }
}
