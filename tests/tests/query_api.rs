//! The query API (03-api.md): every command answers the fixture stream's numbers with the
//! same JSON on all three surfaces (seed subject, Kryten command subject, micro endpoint);
//! admin commands are refused when disabled; malformed requests always get a `success:false`
//! answer; the command subject gets exactly one reply with several replicas running.

use futures::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;
use userstats_tests::*;

const T: Duration = Duration::from_secs(10);

async fn request(client: &async_nats::Client, subject: &str, body: Vec<u8>) -> async_nats::Message {
    tokio::time::timeout(T, client.request(subject.to_string(), body.into()))
        .await
        .unwrap_or_else(|_| panic!("no answer on {subject} within {T:?}"))
        .unwrap_or_else(|e| panic!("request on {subject} failed: {e}"))
}

fn parse(m: &async_nats::Message) -> Value {
    serde_json::from_slice(&m.payload).unwrap_or_else(|e| panic!("answer is not JSON ({e}): {:?}", m.payload))
}

/// Asks `command` on the three surfaces; returns the three envelopes (seed, command, micro).
async fn ask3(client: &async_nats::Client, command: &str, params: Value) -> [Value; 3] {
    let body = params.to_string().into_bytes();
    let seed = parse(&request(client, &format!("cytube.query.userstats.cytu.be.{command}"), body.clone()).await);
    let mut with_cmd = params.clone();
    with_cmd["command"] = json!(command);
    with_cmd["service"] = json!("userstats");
    let cmd = parse(&request(client, "kryten.userstats.command", with_cmd.to_string().into_bytes()).await);
    let micro = parse(&request(client, &format!("userstats.query.{command}"), body).await);
    [seed, cmd, micro]
}

/// Drops what changes from one moment to the next (live "current" timestamps, uptimes,
/// commands counted so far, the ping's timestamp) before the surfaces are compared.
fn stable(v: &Value) -> Value {
    fn walk(v: &mut Value, parent: &str) {
        match v {
            Value::Object(m) => {
                m.remove("uptime_seconds");
                m.remove("commands_processed");
                if parent == "current" || m.contains_key("pong") {
                    m.remove("timestamp");
                }
                for (k, x) in m.iter_mut() {
                    walk(x, k);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, parent)),
            _ => {}
        }
    }
    let mut v = v.clone();
    walk(&mut v, "");
    v
}

/// The `data` of a successful command, the same on all three surfaces.
async fn data(client: &async_nats::Client, command: &str, params: Value) -> Value {
    let [a, b, c] = ask3(client, command, params.clone()).await;
    assert_eq!(a["success"], json!(true), "{command} {params}: {a}");
    assert_eq!(a["service"], json!("userstats"));
    assert_eq!(a["command"], json!(command));
    assert_eq!(stable(&a), stable(&b), "{command}: seed and command subject differ");
    assert_eq!(stable(&a), stable(&c), "{command}: seed and micro endpoint differ");
    stable(&a["data"])
}

/// The error of a failing command (the same on all three surfaces).
async fn error(client: &async_nats::Client, command: &str, params: Value) -> String {
    let [a, b, c] = ask3(client, command, params.clone()).await;
    assert_eq!(a["success"], json!(false), "{command} {params}: {a}");
    assert_eq!(a, b);
    assert_eq!(a, c);
    a["error"].as_str().unwrap_or_default().to_string()
}

/// A changing command asked once, on surface `n % 3` (seed, command subject, micro).
async fn change(client: &async_nats::Client, n: usize, command: &str, params: Value) -> Value {
    let (subject, body) = match n % 3 {
        0 => (format!("cytube.query.userstats.cytu.be.{command}"), params.clone()),
        1 => {
            let mut p = params.clone();
            p["command"] = json!(command);
            ("kryten.userstats.command".to_string(), p)
        }
        _ => (format!("userstats.query.{command}"), params.clone()),
    };
    let a = parse(&request(client, &subject, body.to_string().into_bytes()).await);
    assert_eq!(a["success"], json!(true), "{command} {params}: {a}");
    a["data"].clone()
}

/// A rig with some functions running, and a client.
struct Fleet {
    rig: Rig,
    client: async_nats::Client,
    procs: Vec<FunctionProcess>,
}

async fn fleet(tag: &str, extra_toml: &str, functions: &[&str]) -> Fleet {
    let rig = Rig::new(tag, extra_toml);
    let mut procs = Vec::new();
    for f in functions {
        procs.push(rig.start(f).await);
    }
    let client = rig.nats.client().await;
    Fleet { rig, client, procs }
}

const ALL: &[&str] = &["ingest-presence", "ingest-media", "ingest-chat", "query-user", "query-leaderboard"];

async fn feed_fixture(f: &Fleet) {
    let events: Vec<(String, String)> = fixtures("events.jsonl").into_iter().map(|f| (f.subject, f.data)).collect();
    publish_all(&f.client, &events).await.unwrap();
    let store = open_store(&f.rig.db).await;
    let seen = |name: &'static str| {
        let store = &store;
        async move {
            store.counter(name, "events_applied").await.unwrap_or(0)
                + store.counter(name, "duplicates").await.unwrap_or(0)
        }
    };
    eventually(Duration::from_secs(30), "all functions caught up", || async {
        seen("ingest-chat").await >= 19 && seen("ingest-presence").await >= 11 && seen("ingest-media").await >= 6
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", f.procs.iter().map(|p| p.log_text()).collect::<String>()));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_answers_the_fixture_numbers_on_all_three_surfaces() {
    let f = fleet("query-api", "", ALL).await;
    feed_fixture(&f).await;
    let c = &f.client;
    user_commands(c).await;
    channel_commands(c).await;
    system_commands(c).await;
    error_texts(c).await;
    admin_commands(c).await;
}

/// user.*: case-insensitive names, channel by any case, kudos/emotes of the channel.
async fn user_commands(c: &async_nats::Client) {
    let j = |cmd: &'static str, p: Value| data(c, cmd, p);
    let d = j("user.stats", json!({"username": "alice", "channel": "420grindhouse"})).await;
    assert_eq!(
        d,
        json!({"username": "Alice", "channel": CH, "messages": 4, "all_messages": [{"channel": CH, "count": 4}],
            "pms": 0, "kudos_plusplus": 2, "kudos_phrases": [{"phrase": "haha", "count": 1}],
            "emotes": [{"emote": "#kappa", "count": 2}, {"emote": "/pogchamp", "count": 1}], "aliases": [],
            "first_seen": "2025-11-23T08:00:00+00:00", "last_seen": "2025-11-23T08:17:46+00:00",
            // Open session since 2025: live time clamped to max_session_days (7), 600 s AFK.
            "activity": {"total_time_seconds": 604800, "not_afk_time_seconds": 604200, "session_open": true}})
    );
    let d = j("user.stats", json!({"username": "ALICE"})).await;
    assert_eq!(d["messages"], json!(0));
    assert_eq!(
        d["all_activity"],
        json!([{"channel": CH, "total_time_seconds": 604800, "not_afk_time_seconds": 604200, "session_open": true}])
    );
    let d = j("user.profile", json!({"username": "bob", "channel": CH})).await;
    assert_eq!(d["kudos"], json!({"plusplus": 0, "phrases": [{"phrase": "lol", "count": 1}]}));
    assert_eq!(d["emotes"], json!([{"emote": "LUL", "count": 2}, {"emote": "monkaS", "count": 1}]));
    assert_eq!((d["messages"].clone(), d["pms"].clone()), (json!(8), json!(1)));
    assert_eq!(
        j("user.messages", json!({"username": "bob"})).await,
        json!({"username": "bob", "channels": [{"channel": CH, "count": 8}]})
    );
    assert_eq!(
        j("user.messages", json!({"username": "Zoë", "channel": "420GRINDHOUSE"})).await,
        json!({"username": "Zoë", "channel": CH, "message_count": 1})
    );
    assert_eq!(
        j("user.activity", json!({"username": "sleepy"})).await,
        json!({"username": "sleepy", "all_activity": [{"channel": CH, "total_time_seconds": 1066, "not_afk_time_seconds": 130, "session_open": false}]})
    );
    assert_eq!(
        j("user.activity", json!({"username": "newcomer", "channel": CH})).await,
        json!({"username": "newcomer", "channel": CH, "activity": {"total_time_seconds": 120, "not_afk_time_seconds": 120, "session_open": false}})
    );
    assert_eq!(
        j("user.kudos", json!({"username": "alice"})).await,
        json!({"username": "Alice", "plusplus": 2, "phrases": [{"phrase": "haha", "count": 1}]})
    );
    let d = j("user.stats", json!({"username": "nobody-at-all"})).await;
    assert_eq!(
        (d["messages"].clone(), d["first_seen"].clone(), d["all_messages"].clone()),
        (json!(0), Value::Null, json!([]))
    );
}

/// channel.*, leaderboard.*, stats.*, timeseries.*.
async fn channel_commands(c: &async_nats::Client) {
    let j = |cmd: &'static str, p: Value| data(c, cmd, p);
    assert_eq!(
        j("channel.top_users", json!({"channel": CH, "limit": 3})).await,
        json!({"channel": CH, "top_users": [{"username": "bob", "count": 8}, {"username": "Alice", "count": 4}, {"username": "sleepy", "count": 1}]})
    );
    let d = j("channel.population", json!({"channel": CH})).await;
    assert_eq!(d["current"], json!({"connected_count": 5, "chat_count": 5, "usercount": 12}));
    assert_eq!(
        j("channel.media_history", json!({"channel": CH})).await,
        json!({"channel": CH, "history": [
            {"timestamp": "2025-11-23T08:17:39+00:00", "media_title": "Night of the Living Dead", "media_type": "fi", "media_id": "abc123"},
            {"timestamp": "2025-11-23T08:00:03+00:00", "media_title": "Never Gonna Give You Up", "media_type": "yt", "media_id": "dQw4w9WgXcQ"}]})
    );
    let wm = j("channel.watermarks", json!({"channel": CH})).await;
    assert!(wm.get("high").is_some() && wm.get("low").is_some(), "{wm}");
    let never = json!({"media_title": "Never Gonna Give You Up", "media_type": "yt", "media_id": "dQw4w9WgXcQ",
        "upvotes": 2, "downvotes": 0, "total_votes": 2, "score": 2, "last_vote": "2025-11-23T08:00:30+00:00"});
    let night = json!({"media_title": "Night of the Living Dead", "media_type": "fi", "media_id": "abc123",
        "upvotes": 0, "downvotes": 1, "total_votes": 1, "score": -1, "last_vote": "2025-11-23T08:17:41+00:00"});
    assert_eq!(j("channel.movie_votes", json!({"channel": CH})).await, json!([never, night]));
    assert_eq!(j("channel.movie_votes", json!({"channel": CH, "media_title": "never gonna give you up"})).await, never);
    assert_eq!(j("channel.movie_votes", json!({"channel": CH, "media_title": "Unknown film"})).await, Value::Null);
    let everyone = json!([{"username": "bob", "count": 8}, {"username": "Alice", "count": 4}, {"username": "sleepy", "count": 1},
        {"username": "some-user", "count": 1}, {"username": "Zoë", "count": 1}]);
    assert_eq!(j("leaderboard.messages", json!({})).await, json!({"leaderboard": everyone}));
    assert_eq!(
        j("leaderboard.messages", json!({"channel": "420grindhouse", "limit": 1})).await,
        json!({"channel": CH, "leaderboard": [{"username": "bob", "count": 8}]})
    );
    assert_eq!(
        j("leaderboard.kudos", json!({})).await,
        json!({"leaderboard": [{"username": "Alice", "count": 3}, {"username": "bob", "count": 1}, {"username": "Zoë", "count": 1}]})
    );
    assert_eq!(
        j("leaderboard.emotes", json!({"channel": CH})).await,
        json!({"leaderboard": [{"emote": "#kappa", "count": 2}, {"emote": "LUL", "count": 2}, {"emote": "/pogchamp", "count": 1}, {"emote": "monkaS", "count": 1}]})
    );
    let d = j("stats.global", json!({"channel": CH})).await;
    assert_eq!(
        (d["channel"].clone(), d["domain"].clone(), d["top_users"].clone()),
        (json!(CH), json!("cytu.be"), everyone.clone())
    );
    let day = json!({"channel": CH, "start_time": "2025-11-23T00:00:00Z", "end_time": "2025-11-24T00:00:00Z"});
    assert_eq!(
        j("timeseries.messages", day.clone()).await,
        json!({"channel": CH, "data": [{"hour": "2025-11-23 08:00:00", "messages": 15, "avg_active_users": null}]})
    );
    assert_eq!(
        j("timeseries.kudos", day).await,
        json!({"channel": CH, "data": [{"hour": "2025-11-23 08:00:00", "kudos": 5}]})
    );
}

/// system.*, and channel.all_stats.
async fn system_commands(c: &async_nats::Client) {
    let j = |cmd: &'static str, p: Value| data(c, cmd, p);
    let d = j("system.ping", json!({})).await;
    assert_eq!(d["pong"], json!(true));
    assert!(d["metrics_endpoint"].as_str().unwrap_or_default().ends_with(":28282/metrics"), "{d}");
    let d = j("system.health", json!({})).await;
    assert_eq!(d["status"], json!("healthy"), "{d}");
    assert_eq!(d["functions"]["ingest-chat"], json!({"replicas": 1, "ok": true}));
    assert_eq!(d["functions"]["query-user"], json!({"replicas": 1, "ok": true}));
    assert_eq!(
        j("system.stats", json!({})).await,
        json!({"total_users": 7, "total_messages": 15, "total_pms": 1, "total_kudos": 5, "total_kudos_plusplus": 2,
            "total_kudos_phrases": 3, "total_emotes": 6, "total_media_changes": 2, "events_processed": 35, "active_sessions": 5})
    );
    let d = j("channel.all_stats", json!({"limits": {"top_users": 2}})).await;
    assert_eq!(d["channel"]["name"], json!(CH));
    assert_eq!(d["channel"]["top_users"], json!([{"username": "bob", "count": 8}, {"username": "Alice", "count": 4}]));
    assert_eq!(d["leaderboards"]["kudos"][0], json!({"username": "Alice", "count": 3}));
    assert_eq!(d["system"]["stats"]["total_messages"], json!(15));
}

/// Errors with the texts clients match.
async fn error_texts(c: &async_nats::Client) {
    assert_eq!(error(c, "user.stats", json!({})).await, "username required");
    assert_eq!(error(c, "channel.top_users", json!({})).await, "channel required");
    assert_eq!(error(c, "alias.find", json!({})).await, "alias required");
    assert_eq!(
        error(c, "user.stats", json!({"username": "x".repeat(300)})).await,
        "'username' is longer than 256 characters"
    );
}

/// Admin commands (enabled by default): aliases and phrases, versions bumped.
async fn admin_commands(c: &async_nats::Client) {
    let j = |cmd: &'static str, p: Value| data(c, cmd, p);
    let d = change(c, 0, "alias.add", json!({"username": "alice", "alias": "Ally"})).await;
    assert_eq!(d["added"], json!(true), "{d}");
    assert_eq!(change(c, 1, "alias.add", json!({"username": "bob", "alias": "ally"})).await["added"], json!(false));
    assert_eq!(
        j("alias.get", json!({"username": "ALICE"})).await,
        json!({"username": "Alice", "aliases": ["ally"], "count": 1})
    );
    assert_eq!(
        j("alias.find", json!({"alias": "ALLY"})).await,
        json!({"alias": "ally", "username": "Alice", "found": true})
    );
    assert_eq!(
        change(c, 2, "alias.update", json!({"old_alias": "ally", "new_alias": "al"})).await["updated"],
        json!(true)
    );
    assert_eq!(
        j("alias.list", json!({})).await,
        json!({"aliases": {"Alice": ["al"]}, "total_users": 1, "total_aliases": 1})
    );
    assert_eq!(change(c, 3, "alias.delete", json!({"username": "alice", "alias": "al"})).await["deleted"], json!(true));
    assert_eq!(j("alias.find", json!({"alias": "al"})).await, json!({"alias": "al", "username": null, "found": false}));
    let d = change(c, 4, "kudos.phrases.add", json!({"phrase": "GG"})).await;
    assert!(d["phrases"].as_array().is_some_and(|p| p.contains(&json!("gg"))), "{d}");
    let d = change(c, 5, "kudos.phrases.remove", json!({"phrase": "gg"})).await;
    assert!(d["phrases"].as_array().is_some_and(|p| !p.contains(&json!("gg"))), "{d}");
    assert_eq!(
        j("kudos.phrases.list", json!({})).await,
        json!({"phrases": ["haha", "lmao", "lol", "rofl", "😂", "😆", "🤣"]})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_commands_are_refused_when_disabled() {
    let f = fleet("query-admin", "admin_commands = false", &["query-user", "query-leaderboard"]).await;
    let c = &f.client;
    for (cmd, p) in [
        ("alias.add", json!({"username": "a", "alias": "b"})),
        ("alias.delete", json!({"username": "a", "alias": "b"})),
        ("alias.update", json!({"old_alias": "a", "new_alias": "b"})),
        ("kudos.phrases.add", json!({"phrase": "gg"})),
        ("kudos.phrases.remove", json!({"phrase": "lol"})),
    ] {
        let e = error(c, cmd, p.clone()).await;
        assert!(e.contains("admin_commands"), "{cmd}: {e}");
        let m = request(c, &format!("userstats.query.{cmd}"), p.to_string().into_bytes()).await;
        let code = m.headers.as_ref().and_then(|h| h.get("Nats-Service-Error-Code")).map(|v| v.to_string());
        assert_eq!(code.as_deref(), Some("403"), "{cmd}");
    }
    // Reads still work.
    assert_eq!(data(c, "alias.list", json!({})).await["total_aliases"], json!(0));
    let m = request(c, "userstats.query.user.stats", b"{}".to_vec()).await;
    let code = m.headers.as_ref().and_then(|h| h.get("Nats-Service-Error-Code")).map(|v| v.to_string());
    assert_eq!(code.as_deref(), Some("400"));
    assert_eq!(parse(&m)["error"], json!("username required"));
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_and_random_requests_always_get_an_answer() {
    let mut f = fleet("query-fuzz", "", &["query-user", "query-leaderboard"]).await;
    let c = f.client.clone();
    malformed_requests_get_their_errors(&c).await;
    random_requests_get_an_answer(&c).await;
    for p in f.procs.iter_mut() {
        assert_eq!(p.exited(), None, "{} died:\n{}", p.name, p.log_text());
    }
    assert_eq!(data(&c, "system.ping", json!({})).await["pong"], json!(true));
    let _ = (&f.rig.nats, &f.rig.dir);
}

/// Malformed requests on each surface get `success: false` and the error clients match;
/// huge limits are clamped, not refused.
async fn malformed_requests_get_their_errors(c: &async_nats::Client) {
    let cmd = |v: Value| v.to_string().into_bytes();
    let fixed: Vec<(&str, Vec<u8>, &str)> = vec![
        ("kryten.userstats.command", b"not json".to_vec(), "Invalid JSON"),
        ("kryten.userstats.command", b"{".to_vec(), "Invalid JSON"),
        ("kryten.userstats.command", cmd(json!({"username": "x"})), "Missing 'command' field"),
        ("kryten.userstats.command", cmd(json!({"command": 5})), "Missing 'command' field"),
        (
            "kryten.userstats.command",
            cmd(json!({"service": "other", "command": "user.stats"})),
            "Command intended for 'other', not 'userstats'",
        ),
        ("kryten.userstats.command", cmd(json!({"command": "user.nope"})), "Unknown command: user.nope"),
        ("cytube.query.userstats.cytu.be.user.nope", b"{}".to_vec(), "Unknown command: user.nope"),
        ("cytube.query.userstats.cytu.be.user.stats", b"\xff\xfe".to_vec(), "Invalid JSON"),
        ("userstats.query.user.stats", b"[1,2".to_vec(), "Invalid JSON"),
        ("userstats.query.channel.top_users", cmd(json!({"channel": 5, "limit": "abc"})), "'limit' must be an integer"),
    ];
    for (subject, body, expected) in fixed {
        let a = parse(&request(c, subject, body).await);
        assert_eq!(a["success"], json!(false), "{subject}: {a}");
        assert_eq!(a["error"], json!(expected), "{subject}: {a}");
    }
    // Huge limits are clamped, not refused.
    let d = data(c, "leaderboard.messages", json!({"limit": 1_000_000_000_000i64})).await;
    assert_eq!(d, json!({"leaderboard": []}));
    let d = data(c, "channel.population", json!({"channel": "x", "hours": -5})).await;
    assert_eq!(d["history"], json!([]));
}

/// Random JSON of wrong types against every command on every surface: always a
/// well-formed answer, with an error text when it is a failure.
async fn random_requests_get_an_answer(c: &async_nats::Client) {
    let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
    let mut next = move || rng.next_u64();
    let values = [
        json!(null),
        json!(-1),
        json!(1e300),
        json!("x".repeat(300)),
        json!([1, 2]),
        json!({"a": 1}),
        json!(true),
        json!("2025-11-23T08:00:00Z"),
        json!("ALICE"),
        json!(99999999999i64),
    ];
    let keys = [
        "username",
        "channel",
        "limit",
        "hours",
        "alias",
        "old_alias",
        "new_alias",
        "phrase",
        "days",
        "media_title",
        "start_time",
        "end_time",
        "limits",
        "domain",
        "command",
        "service",
    ];
    for i in 0..150 {
        let spec = &shared::api::COMMANDS[(next() % shared::api::COMMANDS.len() as u64) as usize];
        let mut p = serde_json::Map::new();
        for _ in 0..(next() % 5) {
            p.insert(
                keys[(next() % keys.len() as u64) as usize].into(),
                values[(next() % values.len() as u64) as usize].clone(),
            );
        }
        let body = Value::Object(p.clone());
        let (subject, body) = match i % 4 {
            0 => (format!("userstats.query.{}", spec.name), body.to_string().into_bytes()),
            1 => (format!("cytube.query.userstats.cytu.be.{}", spec.name), body.to_string().into_bytes()),
            2 => {
                p.insert("command".into(), json!(spec.name));
                ("kryten.userstats.command".to_string(), Value::Object(p).to_string().into_bytes())
            }
            _ => ("kryten.userstats.command".to_string(), (0..(next() % 40)).map(|_| (next() % 256) as u8).collect()),
        };
        let a = parse(&request(c, &subject, body.clone()).await);
        assert!(a["success"].is_boolean() && a["service"] == json!("userstats"), "{subject} {body:?}: {a}");
        if a["success"] == json!(false) {
            assert!(a["error"].as_str().is_some_and(|e| !e.is_empty()), "{a}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_and_seed_subjects_get_exactly_one_reply_in_one_hop_with_two_replicas_of_each() {
    let mut f = fleet("query-once", "", &["query-user", "query-leaderboard"]).await;
    let config = f.rig.config.clone();
    for name in ["query-user", "query-leaderboard"] {
        f.procs.push(FunctionProcess::spawn(name, &config, &f.rig.dir, &[]));
    }
    let c = f.client.clone();
    eventually(Duration::from_secs(20), "four query replicas", || {
        let c = c.clone();
        async move {
            let replies = shared::harness::service::scatter(&c, "$SRV.PING", Duration::from_millis(300)).await;
            let fleet = shared::health::Health::from_replies(true, true, &replies).replicas;
            fleet.get("query-user") == Some(&2) && fleet.get("query-leaderboard") == Some(&2)
        }
    })
    .await
    .unwrap();
    for (i, body) in [
        json!({"command": "user.stats", "username": "alice"}),
        json!({"command": "system.ping"}),
        json!({"command": "kudos.phrases.list"}),
        json!({"command": "no.such"}),
        json!({}),
    ]
    .iter()
    .cycle()
    .take(20)
    .enumerate()
    {
        let n = replies(&c, "kryten.userstats.command", &body.to_string()).await;
        assert_eq!(n, 1, "request {i} {body}: {n} replies");
    }
    // The seed subjects too, a body that is not JSON included.
    let seed = "cytube.query.userstats.cytu.be";
    for (subject, body) in [
        (format!("{seed}.user.stats"), r#"{"username": "alice"}"#),
        (format!("{seed}.system.ping"), "{}"),
        (format!("{seed}.no.such"), "{}"),
        (format!("{seed}.user.stats"), "{not json"),
        (format!("{seed}.alias.list"), ""),
    ] {
        let n = replies(&c, &subject, body).await;
        assert_eq!(n, 1, "{subject} {body}: {n} replies");
    }
    // One hop: the owner answered those itself; no micro endpoint was asked on the way.
    let stats = shared::harness::service::scatter(&c, "$SRV.STATS", Duration::from_millis(500)).await;
    let forwarded: u64 = stats
        .iter()
        .flat_map(|r| r["endpoints"].as_array().cloned().unwrap_or_default())
        .map(|e| e["num_requests"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(forwarded, 0, "no request went through a micro endpoint: {stats:?}");
    let routed: u64 = stats.iter().filter_map(|r| r["endpoints"][0]["data"]["routed"].as_u64()).sum();
    assert_eq!(routed, 25, "each request answered once, by one replica: {stats:?}");
}

/// How many replies one request on `subject` gets within half a second.
async fn replies(c: &async_nats::Client, subject: &str, body: &str) -> usize {
    let inbox = c.new_inbox();
    let mut replies = c.subscribe(inbox.clone()).await.unwrap();
    c.publish_with_reply(subject.to_string(), inbox, body.to_string().into()).await.unwrap();
    c.flush().await.unwrap();
    let mut n = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(Some(_)) = tokio::time::timeout_at(deadline, replies.next()).await {
        n += 1;
    }
    n
}
