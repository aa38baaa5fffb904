//! The real bridge: Kryten-Robot 1.12.6 from PyPI, unmodified, joins a CyTube stand-in
//! (tests/bridge/cytube_standin.py: Socket.IO v2 over Engine.IO v3, the `socketconfig`
//! endpoint, login, join, then a scripted scenario) and bridges it onto the NATS server where
//! every function already runs. The numbers are then read through the query API and must be
//! exact. The bridge's own habits are what this is about: it writes KV before it publishes the
//! event, replays the chat buffer it gets at join, forwards `changeMedia` and `setCurrent` as
//! often as CyTube sends them, resends full userlists, and `setUserMeta` comes before
//! `setAFK`. tests/bridge/README.md tells the scenario and derives every expected number.
//!
//! Needs `scripts/tools --kryten-robot` (scripts/test runs it): the robot's venv
//! (`$KRYTEN_ROBOT_PYTHON`, else .tools/kryten-robot) and the stand-in's
//! (`$CYTUBE_STANDIN_PYTHON`, else .tools/cytube-standin), and `openssl` (the robot fetches
//! `socketconfig` over https only: the stand-in makes a throw-away certificate that the robot
//! trusts through `SSL_CERT_FILE`). The CyTube "domain" is `localhost:<port>`, so that is the
//! domain the statistics are kept under.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use userstats_tests::checks::{counts, map, micro_data as query};
use userstats_tests::*;

const CH: &str = "420Grindhouse";
const BOT: &str = "KrytenBot";
/// How long the stand-in, the robot or the functions may take for one step on a loaded
/// machine before the test gives up (each wait polls; none of them is a sleep).
const STEP: Duration = Duration::from_secs(60);

/// A Python interpreter of one of the test's venvs; fails loudly when it is not installed.
fn venv_python(env: &str, venv: &str) -> PathBuf {
    let path = std::env::var(env)
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join(".tools").join(venv).join("bin/python"));
    assert!(
        path.exists(),
        "{} is missing: run `scripts/tools --kryten-robot` (scripts/test does), or set {env}",
        path.display()
    );
    path
}

/// A child process killed when dropped, with its log file.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The stand-in: its stdin (a line = "go on"), its stdout (one JSON line per step).
struct StandIn {
    proc: Proc,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl StandIn {
    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(STEP, self.lines.next_line()).await;
        match line {
            Ok(Ok(Some(l))) => serde_json::from_str(&l).unwrap_or_else(|e| panic!("stand-in said {l:?}: {e}")),
            other => panic!("stand-in went quiet ({other:?}); its log:\n{}", self.proc.log_text()),
        }
    }

    async fn go_on(&mut self) {
        self.stdin.write_all(b"next\n").await.expect("write to the stand-in");
        self.stdin.flush().await.expect("write to the stand-in");
    }
}

/// Every envelope the robot publishes for the channel, as (subject, body), in arrival order.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

async fn capture(client: &async_nats::Client) -> Seen {
    use futures::StreamExt;
    let mut sub = client.subscribe(format!("kryten.events.cytube.{}.>", CH.to_lowercase())).await.unwrap();
    client.flush().await.unwrap();
    let seen: Seen = Arc::default();
    let into = seen.clone();
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            let body = String::from_utf8_lossy(&m.payload).into_owned();
            into.lock().unwrap().push((m.subject.to_string(), body));
        }
    });
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn the_real_bridge_gives_exact_numbers() {
    let started = Instant::now();
    let robot_python = venv_python("KRYTEN_ROBOT_PYTHON", "kryten-robot");
    let standin_python = venv_python("CYTUBE_STANDIN_PYTHON", "cytube-standin");

    // The functions first, as a new user would start them.
    let https_port = free_port();
    let domain = format!("localhost:{https_port}");
    let rig = functions_rig(&domain);
    let mut functions = Vec::new();
    for f in FUNCTIONS {
        functions.push(rig.start(f).await);
    }
    let client = rig.nats.client().await;
    let seen = capture(&client).await;
    let (robot_log, standin_log) = (rig.dir.path().join("robot.log"), rig.dir.path().join("standin.log"));
    // Everything the processes said, for a failure's message.
    let logs = || {
        let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "--- robot:\n{}\n--- stand-in:\n{}\n--- functions:\n{}",
            read(&robot_log),
            read(&standin_log),
            functions.iter().map(|f| format!("[{}]\n{}", f.name, f.log_text())).collect::<String>()
        )
    };

    // The stand-in, then the robot pointed at it and at the same NATS.
    let (mut standin, cert) = start_standin(&standin_python, &rig, https_port, &standin_log).await;
    let mut robot = start_robot(&robot_python, &rig, &domain, &cert, &robot_log);
    run_scenario(&rig, &client, &seen, &mut standin, &mut robot, &logs).await;
    let diag = logs();

    let stats = check_media(&client, &diag).await;
    check_counts(&client, &stats, &diag).await;
    check_votes(&client).await;
    check_presence(&client).await;

    // Nothing the bridge sent was rejected as malformed.
    let store = rig.store().await;
    for f in ["ingest-chat", "ingest-presence", "ingest-media"] {
        assert_eq!(rejected_total(&store, f).await, 0, "{f} rejected events: {:?}", store.counters(f).await);
    }
    eprintln!("real bridge scenario: {} envelopes, {:?}", seen.lock().unwrap().len(), started.elapsed());
    drop(standin);
    let _ = robot.child.kill().await;
}

/// The rig the functions run in, configured as a new user would: the channel, the bot
/// ignored, a short resync so that bootstrap-kv reconciles the bridge's KV all along.
fn functions_rig(domain: &str) -> Rig {
    Rig::new(
        "real-bridge",
        &format!(
            "[[channels]]\ndomain = \"{domain}\"\nchannel = \"{CH}\"\n[bootstrap]\nresync_seconds = 1\n\
             [metrics]\nport = {}\n[web]\nport = {}\n",
            free_port(),
            free_port()
        ),
    )
}

/// Starts the CyTube stand-in on `https_port` and waits for it to listen; returns it and
/// the path of the throw-away certificate the robot must trust.
async fn start_standin(python: &Path, rig: &Rig, https_port: u16, log: &Path) -> (StandIn, String) {
    let mut child = Command::new(python)
        .arg(workspace().join("tests/bridge/cytube_standin.py"))
        .args(["--https-port", &https_port.to_string(), "--nats", &rig.nats.url(), "--channel", CH, "--bot", BOT])
        .arg("--dir")
        .arg(rig.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the stand-in with {}: {e}", python.display()));
    let stdin = child.stdin.take().unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut standin = StandIn { proc: Proc { child, log: log.to_path_buf() }, stdin, lines };
    let hello = standin.next().await;
    let cert = hello["listening"]["cert"].as_str().unwrap_or_else(|| panic!("stand-in said {hello}")).to_string();
    (standin, cert)
}

/// Starts Kryten-Robot, unmodified, pointed at the stand-in (`domain`, trusting `cert`)
/// and at the rig's NATS.
fn start_robot(python: &Path, rig: &Rig, domain: &str, cert: &str, log: &Path) -> Proc {
    let robot_config = rig.dir.file("kryten-robot.json");
    let config = json!({
        "cytube": {"domain": domain, "channel": CH, "user": BOT, "password": "not-checked"},
        "nats": {"servers": [rig.nats.url()]},
        "health": {"enabled": false},
        "commands": {"enabled": false},
        "logging": {"base_path": rig.dir.file("robot-logs")},
        "log_level": "INFO",
    });
    std::fs::write(&robot_config, config.to_string()).unwrap();
    let out = std::fs::File::create(log).unwrap();
    let robot = Command::new(python)
        .args(["-m", "kryten", "--config", &robot_config])
        .current_dir(rig.dir.path())
        .env("SSL_CERT_FILE", cert)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the robot with {}: {e}", python.display()));
    Proc { child: robot, log: log.to_path_buf() }
}

/// The scenario, step by step: the stand-in says when the robot has published a step;
/// the step is then applied by the functions (and reconciled with KV) before the next.
/// Once more after the last step: whatever KV says then has been applied too.
async fn run_scenario(
    rig: &Rig,
    client: &async_nats::Client,
    seen: &Seen,
    standin: &mut StandIn,
    robot: &mut Proc,
    logs: &impl Fn() -> String,
) {
    let mut steps = Vec::new();
    loop {
        let said = tokio::select! {
            said = standin.next() => said,
            status = robot.child.wait() => panic!("the robot exited ({status:?})\n{}", logs()),
        };
        if said["done"] == json!(true) {
            break;
        }
        let Some(step) = said["step"].as_str() else { panic!("stand-in said {said}") };
        steps.push(step.to_string());
        let published = seen.lock().unwrap().clone();
        rig.drained(&published).await;
        let resync = query_raw(client, "bootstrap.resync", json!({})).await;
        assert_eq!(resync["success"], json!(true), "bootstrap.resync after {step}: {resync}");
        standin.go_on().await;
    }
    assert_eq!(
        steps,
        [
            "join",
            "live_chat",
            "second_media",
            "votes",
            "joins",
            "emote_edits",
            "emote_chat",
            "leave_and_resend",
            "more_chat"
        ]
    );
    let published = seen.lock().unwrap().clone();
    rig.drained(&published).await;
    for _ in 0..2 {
        let resync = query_raw(client, "bootstrap.resync", json!({})).await;
        assert_eq!(resync["success"], json!(true), "{resync}");
        // The bridge's buckets exist and were read: the KV path really ran.
        let answer = &resync["channels"][CH];
        assert!(answer.is_object() && answer.get("error").is_none(), "KV not applied: {resync}");
        eprintln!("bootstrap.resync after the scenario: {answer}");
    }
}

/// Media: the trailer at join (changeMedia at join, again for playerReady, KV `current`
/// written before each), then the film (setCurrent + changeMedia twice): two changes.
/// Returns `system.stats`, asked here to explain a failure.
async fn check_media(client: &async_nats::Client, diag: &str) -> Value {
    let history = query(client, "channel.media_history", json!({"channel": CH})).await;
    let entries: Vec<(String, String, String)> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("media_type"), s("media_id"), s("media_title"))
        })
        .collect();
    let expected_media = vec![
        ("cm".to_string(), "https://example.org/cm/planet-terror.json".to_string(), "Planet Terror".to_string()),
        ("yt".to_string(), "Y5Zxj7sOYG8".to_string(), "Grindhouse (2007) Trailer".to_string()),
    ];
    let stats = query(client, "system.stats", json!({})).await;
    assert_eq!(
        entries, expected_media,
        "one media-log entry per media change, newest first: {history}\n{stats}\n{diag}"
    );
    stats
}

/// Messages, kudos and emotes per user and in `system.stats` (the domain's totals;
/// KrytenBot and [server] are ignored everywhere):
///   users: alice bob carol dave erin frank = 6
///   messages: alice 4 (history "evening all", "catJAM catJAM hi bob", "finally film++",
///     "catDISCO monkaS catJAM LUL"), bob 4 (history "alice++ for the popcorn catJAM",
///     "this trailer rules movie++", "movie++", "alice++ bob++"), carol 2 (history
///     "lol bob", "lol alice"), erin 1 ("meh movie--"), frank 1 ("hi all, carol++
///     PogChamp"), dave 1 ("lol erin where did she go") = 13
///   ++ kudos: alice from bob's history line (alice was first seen 10 s earlier, in the
///     replayed buffer), alice again from "alice++ bob++" (bob++ is self-kudos: none),
///     carol from frank = 3 ("movie++"/"film++" name nobody)
///   phrase kudos: "lol bob" (history), "lol alice", "lol erin" (erin has vanished but is
///     known) = 3
///   emotes: catJAM in bob's replayed history line (the first emote list ever seen also
///     covers the chat buffer replayed at join), catJAM ×2 (alice, live), PogChamp (frank),
///     catDISCO and monkaS (alice, after the edits) = 6; not counted: catJAM and LUL in
///     alice's last emote line, after the rename and the removal
///   media changes: 2 ([`check_media`])
///   active sessions: alice bob carol dave (frank left; erin vanished from the resent
///     userlist) = 4
async fn check_counts(client: &async_nats::Client, stats: &Value, diag: &str) {
    let expected_totals = [
        ("total_users", 6),
        ("total_messages", 13),
        ("total_pms", 0),
        ("total_kudos_plusplus", 3),
        ("total_kudos_phrases", 3),
        ("total_kudos", 6),
        ("total_emotes", 6),
        ("total_media_changes", 2),
        ("active_sessions", 4),
    ];

    let lb = |command: &'static str| {
        let client = client.clone();
        async move { query(&client, command, json!({"channel": CH, "limit": 50})).await["leaderboard"].clone() }
    };
    assert_eq!(
        counts(&lb("leaderboard.messages").await, "username"),
        map(&[("alice", 4), ("bob", 4), ("carol", 2), ("dave", 1), ("erin", 1), ("frank", 1)]),
        "messages per user"
    );
    // alice 2 ++ and 1 phrase; bob, erin 1 phrase each; carol 1 ++.
    assert_eq!(
        counts(&lb("leaderboard.kudos").await, "username"),
        map(&[("alice", 3), ("bob", 1), ("carol", 1), ("erin", 1)]),
        "kudos per user"
    );
    // The renamed emote keeps its three earlier uses under the old name.
    let alice = query(client, "user.stats", json!({"username": "alice", "channel": CH})).await;
    assert_eq!(
        counts(&alice["emotes"], "emote"),
        map(&[("catJAM", 2), ("catDISCO", 1), ("monkaS", 1)]),
        "alice's emotes: after the rename catDISCO is an emote and catJAM is not: {alice}\n{diag}"
    );
    assert_eq!(
        counts(&lb("leaderboard.emotes").await, "emote"),
        map(&[("catJAM", 3), ("PogChamp", 1), ("catDISCO", 1), ("monkaS", 1)]),
        "emote uses"
    );
    assert_eq!(alice["messages"], json!(4), "{alice}");
    assert_eq!(alice["kudos_plusplus"], json!(2), "{alice}");
    assert_eq!(counts(&alice["kudos_phrases"], "phrase"), map(&[("lol", 1)]), "{alice}");
    for (key, n) in expected_totals {
        assert_eq!(stats[key], json!(n), "system.stats {key}: {stats}\n{diag}");
    }
    for (user, plusplus, lol) in [("bob", 0, 1), ("carol", 1, 0), ("erin", 0, 1), ("frank", 0, 0)] {
        let k = query(client, "user.kudos", json!({"username": user})).await;
        assert_eq!(k["plusplus"], json!(plusplus), "{user}: {k}");
        let phrases = if lol > 0 { map(&[("lol", lol)]) } else { map(&[]) };
        assert_eq!(counts(&k["phrases"], "phrase"), phrases, "{user}: {k}");
    }
}

/// Votes go to what played at the message's time: the trailer got bob's movie++; the film
/// alice's film++, bob's movie++ and erin's movie--.
async fn check_votes(client: &async_nats::Client) {
    let votes = query(client, "channel.movie_votes", json!({"channel": CH})).await;
    let votes: BTreeMap<String, (i64, i64)> = votes
        .as_array()
        .unwrap_or_else(|| panic!("{votes}"))
        .iter()
        .map(|v| {
            let n = |k: &str| v[k].as_i64().unwrap_or(-1);
            (v["media_id"].as_str().unwrap_or_default().to_string(), (n("upvotes"), n("downvotes")))
        })
        .collect();
    assert_eq!(
        votes,
        BTreeMap::from([
            ("Y5Zxj7sOYG8".to_string(), (1, 0)),
            ("https://example.org/cm/planet-terror.json".to_string(), (2, 1)),
        ]),
        "movie votes"
    );
}

/// Presence: erin vanished from the resent userlist (no userLeave), frank left; dave came
/// back from AFK (setUserMeta, then setAFK); the others stay. And the last usercount
/// CyTube sent (after the resent userlist).
async fn check_presence(client: &async_nats::Client) {
    let ch = json!({"channel": CH});
    for (user, open) in
        [("alice", true), ("bob", true), ("carol", true), ("dave", true), ("erin", false), ("frank", false)]
    {
        let a = query(client, "user.activity", json!({"username": user, "channel": CH})).await;
        assert_eq!(a["activity"]["session_open"], json!(open), "{user}: {a}");
    }
    let present = query(client, "channel.present", ch.clone()).await;
    let names: Vec<&str> = present["users"].as_array().unwrap().iter().filter_map(|u| u["username"].as_str()).collect();
    let mut names = names.clone();
    names.sort();
    assert_eq!(names, ["alice", "bob", "carol", "dave"], "{present}");
    assert_eq!(present["present"], json!(4), "{present}");
    assert_eq!(present["chatting"], json!(4), "nobody is AFK any more: {present}");
    let summary = query(client, "channel.summary", ch.clone()).await;
    assert_eq!(summary["usercount"], json!(6), "{summary}");
    assert_eq!(summary["media_played"], json!(2), "{summary}");
}

/// Any request/reply answer as JSON (for endpoints outside the query API).
async fn query_raw(client: &async_nats::Client, subject: &str, body: Value) -> Value {
    let reply =
        tokio::time::timeout(Duration::from_secs(20), client.request(subject.to_string(), body.to_string().into()))
            .await
            .unwrap_or_else(|_| panic!("no answer on {subject}"))
            .unwrap_or_else(|e| panic!("{subject}: {e}"));
    serde_json::from_slice(&reply.payload).unwrap_or_else(|e| panic!("{subject}: not JSON: {e}"))
}
