//! The metrics function: /metrics parses as Prometheus text (checked with the reference
//! Python parser) and agrees with the database after the fixture stream; /health answers;
//! a killed replica drops out of the fleet figures within a scrape interval or two.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;
use userstats_tests::*;

/// A plain HTTP GET on loopback: (status, body).
fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics port");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// Parses exposition text with prometheus_client's parser (from the tools venv): sample
/// "name{label=value,...}" → value. Panics when the text does not parse.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let python = workspace().join(".tools/venv/bin/python");
    let script = "import sys, json\nfrom prometheus_client.parser import text_string_to_metric_families as p\nout = {}\nfor f in p(sys.stdin.read()):\n    for s in f.samples:\n        labels = ','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))\n        out[s.name + '{' + labels + '}'] = s.value\nprint(json.dumps(out))";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tools venv python (scripts/tools installs it)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "not valid Prometheus text: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_parse_match_the_database_and_follow_the_fleet() {
    let port = free_port();
    let rig = Rig::new("metrics", &format!("[metrics]\nport = {port}\n"));
    let _p = rig.start("ingest-presence").await;
    let _m = rig.start("ingest-media").await;
    let _c = rig.start("ingest-chat").await;
    let mut extra = rig.start("ingest-chat").await;
    let _metrics = rig.start("metrics").await;
    let client = rig.nats.client().await;
    let events: Vec<(String, String)> = fixtures("events.jsonl").into_iter().map(|f| (f.subject, f.data)).collect();
    publish_all(&client, &events).await.unwrap();
    rig.wait_seen("ingest-chat", 19).await;
    rig.wait_seen("ingest-presence", 11).await;

    let mut m = BTreeMap::new();
    eventually(Duration::from_secs(10), "metrics show the stream", || {
        m = parse(&get(port, "/metrics").1);
        let done = m.get("userstats_total_messages{}") == Some(&15.0)
            && m.get("userstats_function_replicas{function=ingest-chat}") == Some(&2.0);
        async move { done }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {m:?}"));
    check_fixture_figures(&m, &rig.store().await).await;
    check_degraded_health(port);

    // A replica killed shows up within a scrape interval or two.
    extra.kill();
    eventually(Duration::from_secs(5), "the fleet has one ingest-chat", || {
        let m = parse(&get(port, "/metrics").1);
        async move { m.get("userstats_function_replicas{function=ingest-chat}") == Some(&1.0) }
    })
    .await
    .unwrap();
    assert_eq!(get(port, "/nope").0, 404);

    // With the query functions running the set is healthy, and system.health / system.stats
    // say what /health and /metrics say.
    let _qu = rig.start("query-user").await;
    let _ql = rig.start("query-leaderboard").await;
    eventually(Duration::from_secs(5), "healthy", || async { get(port, "/health").0 == 200 }).await.unwrap();
    check_queries_agree(port, &client).await;
    check_query_errors_counted(port, &client).await;
}

/// A query answered with an error counts in `userstats_endpoint_errors` of its command on
/// every surface (the micro framework counts neither an error answer that keeps its JSON
/// body nor a request routed from the seed or command subject), and a routed request in
/// `userstats_endpoint_requests`.
async fn check_query_errors_counted(port: u16, client: &async_nats::Client) {
    let label = "{endpoint=user.stats,function=query-user}";
    let before = parse(&get(port, "/metrics").1);
    let figure = |m: &BTreeMap<String, f64>, name: &str| m.get(&format!("{name}{label}")).copied().unwrap_or(0.0);
    for (subject, body) in [
        ("userstats.query.user.stats", r#"{}"#),
        ("kryten.userstats.command", r#"{"command": "user.stats"}"#),
        ("cytube.query.userstats.cytu.be.user.stats", r#"{}"#),
    ] {
        let reply = client.request(subject, body.into()).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(v["error"], "username required", "{subject}: {v}");
    }
    let mut after = BTreeMap::new();
    eventually(Duration::from_secs(10), "three errors of user.stats in /metrics", || {
        after = parse(&get(port, "/metrics").1);
        let done = figure(&after, "userstats_endpoint_errors") == figure(&before, "userstats_endpoint_errors") + 3.0;
        async move { done }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {after:?}"));
    assert_eq!(
        figure(&after, "userstats_endpoint_requests"),
        figure(&before, "userstats_endpoint_requests") + 3.0,
        "requests on all three surfaces"
    );
}

/// The scrape `m` after the fixture stream: the database's totals, the fixture's numbers,
/// the connections, the degraded status, per channel and per function.
async fn check_fixture_figures(m: &BTreeMap<String, f64>, store: &shared::store::Store) {
    let figure = |name: &str| m.get(&format!("{name}{{}}")).copied();
    assert_eq!(
        figure("userstats_total_users_tracked"),
        Some(store.total("cytu.be", "total_users").await.unwrap() as f64)
    );
    assert_eq!(figure("userstats_total_users_tracked"), Some(7.0));
    assert_eq!(figure("userstats_total_pms"), Some(1.0));
    assert_eq!(figure("userstats_total_kudos"), Some(5.0));
    assert_eq!(figure("userstats_total_kudos_plusplus"), Some(2.0));
    assert_eq!(figure("userstats_total_kudos_phrases"), Some(3.0));
    assert_eq!(figure("userstats_total_emote_usage"), Some(6.0));
    assert_eq!(figure("userstats_total_media_changes"), Some(2.0));
    assert_eq!(figure("userstats_active_sessions"), Some(5.0), "Alice, bob, Zoë, some-user, Leader present");
    assert_eq!(figure("userstats_database_connected"), Some(1.0));
    assert_eq!(figure("userstats_nats_connected"), Some(1.0));
    assert_eq!(figure("userstats_service_status"), Some(0.0), "degraded: no query functions run here");
    assert_eq!(m.get("userstats_channel_present_users{channel=420Grindhouse}"), Some(&5.0));
    assert_eq!(m.get("userstats_channel_messages{channel=420Grindhouse}"), Some(&15.0), "{m:?}");
    assert_eq!(m.get("userstats_ingest_duplicates_total{function=ingest-chat}"), Some(&1.0));
    for f in ["ingest-presence", "ingest-media", "metrics"] {
        assert_eq!(m.get(&format!("userstats_function_replicas{{function={f}}}")), Some(&1.0), "{f}");
    }
}

/// `/health` without the query functions: 503, degraded, and why.
fn check_degraded_health(port: u16) {
    let (status, health) = get(port, "/health");
    assert_eq!(status, 503, "the query functions are not running: degraded");
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["functions"]["query-user"]["ok"], false);
    assert_eq!(health["database_connected"], true);
    assert_eq!(health["functions"]["ingest-chat"]["replicas"], 2);
}

/// system.health says what /health says, system.stats what /metrics says.
async fn check_queries_agree(port: u16, client: &async_nats::Client) {
    let ask = |command: &str| {
        let client = client.clone();
        let body = serde_json::json!({"command": command}).to_string();
        async move {
            let reply = client.request("kryten.userstats.command", body.into()).await.unwrap();
            serde_json::from_slice::<serde_json::Value>(&reply.payload).unwrap()["data"].clone()
        }
    };
    let health: serde_json::Value = serde_json::from_str(&get(port, "/health").1).unwrap();
    let system_health = ask("system.health").await;
    assert_eq!(system_health["status"], health["status"]);
    assert_eq!(system_health["functions"], health["functions"]);
    let stats = ask("system.stats").await;
    let m = parse(&get(port, "/metrics").1);
    assert_eq!(m.get("userstats_service_status{}"), Some(&1.0));
    assert_eq!(Some(stats["total_messages"].as_f64().unwrap()), m.get("userstats_total_messages{}").copied());
    assert_eq!(Some(stats["total_kudos"].as_f64().unwrap()), m.get("userstats_total_kudos{}").copied());
    assert_eq!(Some(stats["total_users"].as_f64().unwrap()), m.get("userstats_total_users_tracked{}").copied());
    assert_eq!(Some(stats["active_sessions"].as_f64().unwrap()), m.get("userstats_active_sessions{}").copied());
}
