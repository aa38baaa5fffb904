//! `bench`: the project's benchmark, every figure measured inside one run
//! (docs/targets.md). Starts its own nats-server(s), runs the release binaries
//! against fresh databases and prints one line per figure next to its target, then a
//! summary table.
//!
//! Scenarios, in order (each its own function below):
//!
//! 1. chat ingest, 1 replica then 2 replicas: a deterministic chat stream (200 users, one
//!    channel, kudos/emotes/votes detection on) published into JetStream; publish start →
//!    every event applied and committed (the durable `events_applied` counter). Then the same
//!    stream (a tenth of the events) with the database on a libSQL server (`sqld` on
//!    loopback, `$SQLD_BIN`): server mode beside local mode. Each run also prints where the
//!    time went (fetch, parse, dependency wait, SQL, detection+folding, commit, ack: the
//!    functions' own phase times from `$SRV.STATS`).
//! 2. presence ingest: the same with a join/leave/AFK mix.
//! 3. bootstrap, in process: a KV snapshot of 10,000 users + 2,000 emotes + 5,000 playlist
//!    items applied by bootstrap-kv's code to a fresh database.
//! 4. the big database (100,000 users, 5,000,000 messages; `--quick` 20,000 / 500,000),
//!    prefilled with bulk SQL (`Tx::bench_prefill`, benchmark only — not by ingesting
//!    events), then with all seven functions running on it:
//!    * start-up of each function (process start → its micro service answers
//!      `$SRV.PING`) and its idle RSS;
//!    * bootstrap through real KV buckets and the bootstrap-kv process (`bootstrap.resync`);
//!    * query latency: `user.stats` and `leaderboard.kudos` on their micro subjects at
//!      2,000 requests/s in all (alternating), many in flight, while a publisher paces
//!      10,000 chat events/s into the stream and ingest-chat counts them;
//!    * `/metrics` scrape time (GET over loopback, 50 scrapes);
//!    * RSS of every function under that load.
//!
//! With `--compare-python`, right after scenario 1: the previous Python service
//! (kryten-userstats 0.7.1) fed the first 2,000 (`--quick`) or 10,000 events of the same chat
//! stream, its end-to-end rate and the ratio Rust/Python of this run (`python.rs`; the venv's
//! python in `$KRYTEN_BENCH_PYTHON`, set by scripts/bench from scripts/python-reference).
//!
//! usage: bench [--quick] [--events N] [--users N] [--messages N] [--load-seconds N]
//!              [--compare-python [--python-events N]]
//! (scripts/bench builds the release binaries first)

mod python;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use userstats_tests::traffic::{Mix, Traffic};
use userstats_tests::*;

const T0: i64 = 1_763_884_800_000;
const DOMAIN: &str = "cytu.be";
const CHANNEL: &str = "420Grindhouse";
/// Every function, in the order the big-database scenario starts them.
const FUNCTIONS: [&str; 8] = [
    "ingest-presence",
    "ingest-media",
    "ingest-chat",
    "bootstrap-kv",
    "query-user",
    "query-leaderboard",
    "metrics",
    "web",
];

/// How big each scenario is.
struct Sizes {
    /// Events per ingest scenario.
    events: u64,
    /// Users and messages in the big database.
    users: i64,
    messages: i64,
    /// Length of the query-under-load window.
    load: Duration,
    chat_rate: f64,
    query_rate: f64,
    /// `--compare-python`: the Python service's share of the chat stream.
    python: Option<python::Plan>,
}

impl Sizes {
    fn from_args() -> Result<Sizes> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick");
        let mut s = if quick {
            Sizes {
                events: 50_000,
                users: 20_000,
                messages: 500_000,
                load: Duration::from_secs(10),
                chat_rate: 10_000.0,
                query_rate: 2_000.0,
                python: None,
            }
        } else {
            Sizes {
                events: 500_000,
                users: 100_000,
                messages: 5_000_000,
                load: Duration::from_secs(30),
                chat_rate: 10_000.0,
                query_rate: 2_000.0,
                python: None,
            }
        };
        let value = |name: &str| -> Result<Option<u64>> {
            match args.iter().position(|a| a == name) {
                Some(i) => Ok(Some(
                    args.get(i + 1)
                        .with_context(|| format!("{name} N"))?
                        .parse()
                        .with_context(|| format!("{name} N"))?,
                )),
                None => Ok(None),
            }
        };
        if let Some(n) = value("--events")? {
            s.events = n;
        }
        if let Some(n) = value("--users")? {
            s.users = n as i64;
        }
        if let Some(n) = value("--messages")? {
            s.messages = n as i64;
        }
        if let Some(n) = value("--load-seconds")? {
            s.load = Duration::from_secs(n);
        }
        if args.iter().any(|a| a == "--compare-python") {
            let mut plan = python::Plan::new(quick);
            if let Some(n) = value("--python-events")? {
                plan.events = n;
            }
            s.python = Some(plan);
        }
        Ok(s)
    }
}

/// Every figure, printed when measured and again in the final table.
#[derive(Default)]
struct Summary {
    rows: Vec<(String, String, String, Option<bool>)>,
}

impl Summary {
    /// A figure with a target: one line now, one row in the table.
    fn figure(&mut self, label: &str, value: String, target: &str, met: Option<bool>) {
        let mark = match met {
            Some(true) => "  [met]",
            Some(false) => "  [MISSED]",
            None => "",
        };
        println!("{label}: {value} (target {target}){mark}");
        self.rows.push((label.into(), value, target.into(), met));
    }

    /// Context for the figures (where the time goes): printed, not in the table.
    fn note(&self, label: &str, text: String) {
        println!("  {label}: {text}");
    }

    fn print_table(&self) {
        let w0 = self.rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(10);
        let w1 = self.rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(10);
        println!("\n== summary ==");
        println!("{:<w0$} | {:<w1$} | target", "figure", "measured");
        println!("{}", "-".repeat(w0 + w1 + 20));
        for (label, value, target, met) in &self.rows {
            let mark = match met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "-",
            };
            println!("{label:<w0$} | {value:<w1$} | {target} [{mark}]");
        }
        let missed: Vec<&str> = self.rows.iter().filter(|r| r.3 == Some(false)).map(|r| r.0.as_str()).collect();
        if missed.is_empty() {
            println!("all targets met");
        } else {
            println!("targets missed ({}): {}", missed.len(), missed.join("; "));
        }
    }
}

/// Start-up and RSS of each function, from whichever scenario measured them.
#[derive(Default)]
struct Fleet {
    startup_ms: BTreeMap<String, f64>,
    idle_kib: BTreeMap<String, u64>,
    loaded_kib: BTreeMap<String, u64>,
}

impl Fleet {
    fn loaded(&mut self, function: &str, kib: u64) {
        let v = self.loaded_kib.entry(function.to_string()).or_default();
        *v = (*v).max(kib);
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Calls `f(i)` for i = 0, 1, ... at `rate` per second until `duration` has passed (catching
/// up when the clock tick was late); returns how many calls were made.
async fn paced<F, Fut>(rate: f64, duration: Duration, mut f: F) -> u64
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    let mut done = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let elapsed = start.elapsed();
        if elapsed >= duration {
            return done;
        }
        let due = (elapsed.as_secs_f64() * rate) as u64;
        while done < due {
            f(done).await;
            done += 1;
        }
    }
}

/// Polls `$SRV.PING.userstats-{function}` every 2 ms until it answers.
async fn wait_ping(client: &async_nats::Client, function: &str, timeout: Duration) -> Result<()> {
    let subject = format!("$SRV.PING.userstats-{function}");
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(100), client.request(subject.clone(), "".into())).await
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{function} did not register within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Scenarios 1 and 2: ingest throughput.

struct Run {
    events: u64,
    seconds: f64,
    publish_seconds: f64,
    batches: i64,
    peak_rss_kib: Vec<u64>,
    /// Phase → microseconds, added up over the replicas (`time_us` of their `$SRV.STATS`).
    phases: BTreeMap<String, u64>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.events as f64 / self.seconds
    }

    fn where_time_goes(&self, s: &Summary, label: &str) {
        s.note(
            label,
            format!(
                "{} events in {:.2} s, published at {:.0}/s; {} batches, avg {:.0} events/batch, {:.0} commits/s; peak RSS {:.1} MiB",
                self.events,
                self.seconds,
                self.events as f64 / self.publish_seconds,
                self.batches,
                self.events as f64 / self.batches.max(1) as f64,
                self.batches as f64 / self.seconds,
                mib(self.peak_rss_kib.iter().copied().max().unwrap_or(0)),
            ),
        );
        let busy: u64 = self.phases.values().sum();
        if busy > 0 {
            let split: Vec<String> = self
                .phases
                .iter()
                .map(|(phase, us)| format!("{phase} {:.0}%", *us as f64 * 100.0 / busy as f64))
                .collect();
            s.note(label, format!("time split over {:.2} s busy: {}", busy as f64 / 1e6, split.join(", ")));
        }
    }
}

/// The phase times of every replica of `function` (`time_us` in its `$SRV.STATS` data),
/// added up: replies gathered for 300 ms.
async fn phase_times(client: &async_nats::Client, function: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let inbox = client.new_inbox();
    let Ok(mut replies) = client.subscribe(inbox.clone()).await else { return out };
    let subject = format!("$SRV.STATS.userstats-{function}");
    if client.publish_with_reply(subject, inbox, "".into()).await.is_err() {
        return out;
    }
    let until = tokio::time::Instant::now() + Duration::from_millis(300);
    while let Ok(Some(m)) = tokio::time::timeout_at(until, futures::StreamExt::next(&mut replies)).await {
        let Ok(v) = serde_json::from_slice::<Value>(&m.payload) else { continue };
        for e in v["endpoints"].as_array().into_iter().flatten() {
            for (phase, us) in e["data"]["time_us"].as_object().into_iter().flatten() {
                *out.entry(phase.clone()).or_default() += us.as_u64().unwrap_or(0);
            }
        }
    }
    out
}

/// Where an ingest scenario's database is.
#[derive(Clone, Copy, PartialEq)]
enum Db {
    /// A local file (the default deployment).
    File,
    /// A libSQL server (sqld) on loopback: `database.url`.
    Server,
}

/// Runs `replicas` copies of `function` over `n` events of `mix`: publish (JetStream, acked)
/// → every event applied and committed.
async fn ingest_run(function: &str, mix: Mix, n: u64, replicas: usize, on: Db) -> Result<Run> {
    let nats = NatsServer::start();
    let dir = TempDir::new("bench");
    let sqld = (on == Db::Server).then(SqldServer::start);
    let db = sqld.as_ref().map(|s| s.url()).unwrap_or_else(|| dir.file("userstats.db"));
    let config = write_config(&dir, &nats.url(), &db, "");
    let client = nats.client().await;
    let procs: Vec<FunctionProcess> =
        (0..replicas).map(|_| FunctionProcess::spawn(function, &config, &dir, &[])).collect();
    if let Err(e) = wait_ping(&client, function, Duration::from_secs(20)).await {
        bail!("{e:#}\n{}", procs[0].log_text());
    }

    let mut traffic = Traffic::new(42, 200, CHANNEL, T0, mix);
    let mut messages = traffic.preamble();
    if mix == Mix::Presence {
        messages.truncate(1); // the userlist only
    } else {
        messages.clear();
    }
    messages.extend((0..n).map(|_| traffic.next_event()));
    let total = messages.len() as u64;

    let js = async_nats::jetstream::new(client.clone());
    let store = open_store(&db).await;
    let t = Instant::now();
    let mut pending = Vec::with_capacity(512);
    for (s, d) in messages {
        pending.push(js.publish(s, d.into()).await.context("publish")?);
        if pending.len() == 512 {
            for ack in pending.drain(..) {
                ack.await.context("publish ack")?;
            }
        }
    }
    for ack in pending.drain(..) {
        ack.await.context("publish ack")?;
    }
    let publish_seconds = t.elapsed().as_secs_f64();
    let mut peak_rss_kib = vec![0u64; replicas];
    loop {
        let applied = store.counter(function, "events_applied").await.unwrap_or(0) as u64;
        for (i, p) in procs.iter().enumerate() {
            peak_rss_kib[i] = peak_rss_kib[i].max(rss_kib(p.pid()));
        }
        if applied >= total {
            break;
        }
        if t.elapsed() > Duration::from_secs(600) {
            bail!("{function}: only {applied} of {total} applied after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = t.elapsed().as_secs_f64();
    let batches = store.counter(function, "batches").await.unwrap_or(0);
    let phases = phase_times(&client, function).await;
    Ok(Run { events: total, seconds, publish_seconds, batches, peak_rss_kib, phases })
}

/// Chat ingest with one replica, then two; and their ratio. Returns the 1-replica rate.
async fn chat_ingest(s: &mut Summary, fleet: &mut Fleet, sizes: &Sizes) -> Result<f64> {
    let one = ingest_run("ingest-chat", Mix::Chat, sizes.events, 1, Db::File).await?;
    s.figure(
        "chat ingest, 1 replica",
        format!("{:.0} events/s", one.rate()),
        "≥ 50,000/s over ≥ 500,000 events",
        Some(one.rate() >= 50_000.0 && one.events >= 500_000),
    );
    one.where_time_goes(s, "1 replica");
    let two = ingest_run("ingest-chat", Mix::Chat, sizes.events, 2, Db::File).await?;
    s.figure("chat ingest, 2 replicas", format!("{:.0} events/s", two.rate()), "not slower than 1 replica", None);
    two.where_time_goes(s, "2 replicas");
    let ratio = two.rate() / one.rate();
    s.figure(
        "chat ingest, 2 replicas / 1 replica",
        format!("{ratio:.2}"),
        "≥ 1.0 within noise (≥ 0.9)",
        Some(ratio >= 0.9),
    );
    // Server mode: the same stream (a tenth of it: every statement is a round trip) into a
    // sqld on loopback.
    let server = ingest_run("ingest-chat", Mix::Chat, (sizes.events / 10).max(1000), 1, Db::Server).await?;
    s.figure(
        "chat ingest, 1 replica, libSQL server (sqld on loopback)",
        format!("{:.0} events/s ({:.2} of the local file's)", server.rate(), server.rate() / one.rate()),
        "reported beside the local file",
        None,
    );
    server.where_time_goes(s, "sqld");
    // The dev profile (scripts/run, the tests) on the same stream: how much slower the
    // binaries are that nobody should ship.
    let release = std::env::var("KRYTEN_TEST_PROFILE").unwrap_or_else(|_| "release".into());
    std::env::set_var("KRYTEN_TEST_PROFILE", "debug");
    let dev = ingest_run("ingest-chat", Mix::Chat, (sizes.events / 5).max(1000), 1, Db::File).await;
    std::env::set_var("KRYTEN_TEST_PROFILE", release);
    match dev {
        Ok(dev) => s.figure(
            "chat ingest, 1 replica, dev build (target/debug: scripts/run, tests)",
            format!("{:.0} events/s; release is {:.1}× faster", dev.rate(), one.rate() / dev.rate()),
            "reported: deploy/ ships the release build",
            None,
        ),
        Err(e) => s.figure("chat ingest, dev build", format!("not measured: {e:#}"), "reported", None),
    }
    for r in [&one, &two, &server] {
        fleet.loaded("ingest-chat", r.peak_rss_kib.iter().copied().max().unwrap_or(0));
    }
    Ok(one.rate())
}

/// Presence ingest, one replica.
async fn presence_ingest(s: &mut Summary, fleet: &mut Fleet, sizes: &Sizes) -> Result<()> {
    let p = ingest_run("ingest-presence", Mix::Presence, sizes.events, 1, Db::File).await?;
    s.figure(
        "presence ingest, 1 replica",
        format!("{:.0} events/s", p.rate()),
        "≥ 20,000/s",
        Some(p.rate() >= 20_000.0),
    );
    p.where_time_goes(s, "presence");
    fleet.loaded("ingest-presence", p.peak_rss_kib.iter().copied().max().unwrap_or(0));
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Scenario 3: bootstrap in process.

/// The KV snapshot of the bootstrap target: 10,000 users, 2,000 emotes, 5,000 playlist items.
fn kv_snapshot_values() -> (Value, Value, Value) {
    let users: Vec<Value> =
        (0..10_000).map(|i| json!({"name": format!("user{i}"), "rank": 1, "meta": {"afk": i % 7 == 0}})).collect();
    let emotes: Vec<Value> =
        (0..2_000).map(|i| json!({"name": format!("emote{i}"), "image": "", "source": ""})).collect();
    let items: Vec<Value> = (0..5_000)
        .map(|i| json!({"media": {"id": format!("v{i}"), "title": format!("Video_{i}.mp4"), "seconds": 60, "type": "yt"}, "uid": i}))
        .collect();
    (Value::from(users), Value::from(emotes), Value::from(items))
}

/// bootstrap-kv's apply (in process, release build): the snapshot applied to a fresh database
/// in one transaction.
async fn bootstrap_snapshot(s: &mut Summary) -> Result<()> {
    use shared::bootstrap::{self, Applier, ChannelSnapshot, KvValue};
    let dir = TempDir::new("bench-bootstrap");
    let store = shared::store::Store::open(&dir.file("userstats.db"), Duration::from_secs(5)).await?;
    let value = |bucket: &str, key: &str, v: Value| KvValue {
        bucket: bucket.into(),
        key: key.into(),
        revision: 1,
        created_ms: T0,
        value: v.to_string().into_bytes(),
    };
    let (users, emotes, items) = kv_snapshot_values();
    let snap = ChannelSnapshot {
        users: Some(value("kryten_bench_userlist", "users", users)),
        emotes: Some(value("kryten_bench_emotes", "list", emotes)),
        items: Some(value("kryten_bench_playlist", "items", items)),
        current: None,
    };
    let started = Instant::now();
    let events = bootstrap::snapshot_events(DOMAIN, "bench", &snap);
    let config = shared::config::Config::default();
    let (applied, _) =
        bootstrap::apply_snapshot(&store, &mut Applier::new(&config), DOMAIN, "bench", &events, &Default::default())
            .await?;
    let seconds = started.elapsed().as_secs_f64();
    s.figure(
        "bootstrap, in process (10k users + 2k emotes + 5k playlist)",
        format!("{seconds:.3} s ({} sessions opened)", applied.users_opened),
        "≤ 1 s",
        Some(seconds <= 1.0),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Scenario 4: the big database with every function running.

/// One query: (command index, latency ms, answered with success, sent at s after the start).
type Sample = (usize, f64, bool, f64);

struct BigRig {
    nats: NatsServer,
    dir: TempDir,
    db: String,
    config: String,
    metrics_port: u16,
    /// The stats site's port (the channel page's latency under load).
    web_port: u16,
    procs: Vec<FunctionProcess>,
    client: async_nats::Client,
}

impl BigRig {
    /// A nats-server, a config for one channel, and the database prefilled with bulk SQL.
    async fn prefill(s: &mut Summary, sizes: &Sizes) -> Result<BigRig> {
        let nats = NatsServer::start();
        let dir = TempDir::new("bench-big");
        let db = dir.file("userstats.db");
        let (metrics_port, web_port) = (free_port(), free_port());
        let extra = format!(
            "[metrics]\nport = {metrics_port}\n[web]\nport = {web_port}\n[[channels]]\ndomain = \"{DOMAIN}\"\nchannel = \"{CHANNEL}\"\n"
        );
        let config = write_config(&dir, &nats.url(), &db, &extra);
        let store = open_store(&db).await;
        let started = Instant::now();
        let mut tx = store.write().await?;
        let p = tx.bench_prefill(DOMAIN, CHANNEL, sizes.users, sizes.messages, T0 - 86_400_000).await?;
        tx.commit().await?;
        let seconds = started.elapsed().as_secs_f64();
        let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0)
            + std::fs::metadata(format!("{db}-wal")).map(|m| m.len()).unwrap_or(0);
        s.note(
            "prefill",
            format!(
                "bulk SQL (benchmark-only Tx::bench_prefill), not ingested events: {} users, {} messages, {} kudos, {} emote uses, {} rows in {seconds:.2} s; database {:.0} MiB",
                p.users, p.messages, p.kudos, p.emotes, p.rows, size as f64 / 1048576.0
            ),
        );
        let client = nats.client().await;
        Ok(BigRig { nats, dir, db, config, metrics_port, web_port, procs: Vec::new(), client })
    }

    fn pid(&self, function: &str) -> Option<u32> {
        self.procs.iter().find(|p| p.name == function).map(|p| p.pid())
    }

    /// Starts every function, one at a time, on the prefilled database: process start →
    /// micro service answering; then the idle RSS of each once all have settled.
    async fn start_all(&mut self, s: &mut Summary, fleet: &mut Fleet) -> Result<()> {
        for function in FUNCTIONS {
            if !binary(function).exists() {
                s.note(function, "not built: skipped".into());
                continue;
            }
            let started = Instant::now();
            let p = FunctionProcess::spawn(function, &self.config, &self.dir, &[]);
            if let Err(e) = wait_ping(&self.client, function, Duration::from_secs(20)).await {
                bail!("{e:#}\n{}", p.log_text());
            }
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            fleet.startup_ms.insert(function.into(), ms);
            self.procs.push(p);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        for p in &self.procs {
            fleet.idle_kib.insert(p.name.clone(), rss_kib(p.pid()));
        }
        let slowest = fleet.startup_ms.iter().max_by(|a, b| a.1.total_cmp(b.1));
        if let Some((function, ms)) = slowest {
            s.figure(
                "start-up, slowest function (process start → micro service registered)",
                format!("{ms:.0} ms ({function}; database already created)"),
                "≤ 300 ms",
                Some(*ms <= 300.0),
            );
        }
        let biggest = fleet.idle_kib.iter().max_by_key(|x| *x.1);
        if let Some((function, kib)) = biggest {
            s.figure(
                "RSS idle, biggest function",
                format!("{:.1} MiB ({function})", mib(*kib)),
                "≤ 30 MiB",
                Some(mib(*kib) <= 30.0),
            );
        }
        Ok(())
    }

    /// The bootstrap target end to end: the snapshot put into real KV buckets, then
    /// `bootstrap.resync` asked of the running bootstrap-kv (reads the buckets, applies).
    async fn bootstrap_kv(&self, s: &mut Summary) -> Result<()> {
        if self.pid("bootstrap-kv").is_none() {
            return Ok(());
        }
        let js = async_nats::jetstream::new(self.client.clone());
        let (users, emotes, items) = kv_snapshot_values();
        for (kind, key, value) in
            [("userlist", "users", users), ("emotes", "list", emotes), ("playlist", "items", items)]
        {
            let bucket = format!("kryten_{CHANNEL}_{kind}");
            let kv = js
                .create_key_value(async_nats::jetstream::kv::Config { bucket: bucket.clone(), ..Default::default() })
                .await
                .with_context(|| format!("create KV bucket {bucket}"))?;
            kv.put(key, value.to_string().into()).await.with_context(|| format!("put {bucket}/{key}"))?;
        }
        let started = Instant::now();
        let reply = tokio::time::timeout(
            Duration::from_secs(30),
            self.client.request("bootstrap.resync", json!({"channel": CHANNEL}).to_string().into()),
        )
        .await
        .context("bootstrap.resync timed out")??;
        let seconds = started.elapsed().as_secs_f64();
        let answer: Value = serde_json::from_slice(&reply.payload).unwrap_or(Value::Null);
        let ok = answer["success"].as_bool().unwrap_or(false);
        s.figure(
            "bootstrap via KV buckets and bootstrap-kv (resync request → applied)",
            format!("{seconds:.3} s{}", if ok { "" } else { " (answer not success)" }),
            "≤ 1 s",
            Some(ok && seconds <= 1.0),
        );
        if !ok {
            s.note("bootstrap-kv answered", answer.to_string().chars().take(300).collect());
        }
        Ok(())
    }

    /// Where query time goes: each command asked 200 times one after the other, nothing
    /// else running — its service time, so 1 / p50 bounds what one replica can answer.
    async fn queries_alone(&self, s: &mut Summary, sizes: &Sizes) -> Result<()> {
        for (subject, name) in
            [("userstats.query.user.stats", "user.stats"), ("userstats.query.leaderboard.kudos", "leaderboard.kudos")]
        {
            let mut ms = Vec::with_capacity(200);
            for i in 0..200u64 {
                let body = if name == "user.stats" {
                    json!({"username": format!("user{}", i.wrapping_mul(2_654_435_761) % sizes.users as u64)})
                } else {
                    json!({"channel": CHANNEL})
                };
                let sent = Instant::now();
                let answer =
                    tokio::time::timeout(Duration::from_secs(5), self.client.request(subject, body.to_string().into()))
                        .await;
                if !matches!(&answer, Ok(Ok(m)) if std::str::from_utf8(&m.payload).is_ok_and(|t| t.contains("\"success\":true")))
                {
                    bail!("{name} failed when asked alone: {answer:?}");
                }
                ms.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
            ms.sort_by(f64::total_cmp);
            s.note(
                &format!("{name} alone (no load, one at a time)"),
                format!(
                    "p50 {:.2} ms, p99 {:.2} ms → at most ~{:.0} requests/s for one replica",
                    percentile(&ms, 0.5),
                    percentile(&ms, 0.99),
                    1000.0 / percentile(&ms, 0.5)
                ),
            );
        }
        Ok(())
    }

    /// Query latency while chat ingest runs, with RSS sampled and `/metrics` scraped.
    async fn queries_under_load(&self, s: &mut Summary, fleet: &mut Fleet, sizes: &Sizes) -> Result<()> {
        let store = open_store(&self.db).await;
        let applied_before = store.counter("ingest-chat", "events_applied").await.unwrap_or(0);
        let batches_before = store.counter("ingest-chat", "batches").await.unwrap_or(0);
        let messages_before = store.total(DOMAIN, "total_messages").await.unwrap_or(0);

        // The channel's emote list and media first, so that detection has something to find.
        let publisher = async_nats::connect(self.nats.url()).await?;
        let mut traffic = Traffic::new(7, sizes.users as usize, CHANNEL, T0, Mix::Chat);
        for (subject, body) in traffic.preamble().into_iter().skip(1) {
            publisher.publish(subject, body.into()).await?;
        }
        publisher.flush().await?;

        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let done = done.clone();
            let pids: Vec<(String, u32)> = self.procs.iter().map(|p| (p.name.clone(), p.pid())).collect();
            tokio::spawn(async move {
                let mut peak: BTreeMap<String, u64> = BTreeMap::new();
                while !done.load(Ordering::Relaxed) {
                    for (name, pid) in &pids {
                        let v = peak.entry(name.clone()).or_default();
                        *v = (*v).max(rss_kib(*pid));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                peak
            })
        };

        let (load, chat_target) = (sizes.load, sizes.chat_rate);
        let chat = {
            let publisher = publisher.clone();
            tokio::spawn(async move {
                let sent = paced(chat_target, load, |_| {
                    let (subject, body) = traffic.next_event();
                    let publisher = publisher.clone();
                    async move {
                        let _ = publisher.publish(subject, body.into()).await;
                    }
                })
                .await;
                let _ = publisher.flush().await;
                sent
            })
        };

        let scrapes_under_load = {
            let port = self.metrics_port;
            let gap = load / 60;
            tokio::spawn(async move { http_times(port, "/metrics", 50, gap).await })
        };
        // The stats site's channel page, one request after the other through the window
        // (pages are cached web.cache_seconds: most are answered from memory, some rebuilt).
        let pages_under_load = {
            let port = self.web_port;
            let gap = load / 400;
            let path = format!("/c/{CHANNEL}");
            tokio::spawn(async move { http_times(port, &path, 300, gap).await })
        };

        let client = async_nats::connect(self.nats.url()).await?;
        let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
        let users = sizes.users as u64;
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        let asked = paced(sizes.query_rate, load, |i| {
            let (command, body) = if i % 2 == 0 {
                let user = (i / 2).wrapping_mul(2_654_435_761) % users;
                (0usize, json!({"username": format!("user{user}")}))
            } else {
                (1usize, json!({"channel": CHANNEL}))
            };
            let subject = ["userstats.query.user.stats", "userstats.query.leaderboard.kudos"][command];
            let (client, samples) = (client.clone(), samples.clone());
            tasks.push(tokio::spawn(async move {
                let sent = Instant::now();
                let answer =
                    tokio::time::timeout(Duration::from_secs(5), client.request(subject, body.to_string().into())).await;
                let ms = sent.elapsed().as_secs_f64() * 1000.0;
                let ok = matches!(&answer, Ok(Ok(m)) if std::str::from_utf8(&m.payload).is_ok_and(|t| t.contains("\"success\":true")));
                let at = sent.duration_since(t0).as_secs_f64();
                samples.lock().expect("samples").push((command, ms, ok, at));
            }));
            async {}
        })
        .await;
        let published = chat.await?;
        for t in tasks {
            let _ = t.await;
        }
        let load_seconds = t0.elapsed().as_secs_f64().min(load.as_secs_f64());
        let applied_end = store.counter("ingest-chat", "events_applied").await.unwrap_or(0);
        let batches_end = store.counter("ingest-chat", "batches").await.unwrap_or(0);

        // Let ingest catch up, still sampling RSS.
        let catch_up = Instant::now();
        let target = applied_before + published as i64;
        while store.counter("ingest-chat", "events_applied").await.unwrap_or(0) < target
            && catch_up.elapsed() < Duration::from_secs(120)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caught_up_after = catch_up.elapsed().as_secs_f64();
        let applied_final = store.counter("ingest-chat", "events_applied").await.unwrap_or(0);
        let batches_final = store.counter("ingest-chat", "batches").await.unwrap_or(0);
        let under_load = scrapes_under_load.await?;
        let pages = pages_under_load.await?;
        done.store(true, Ordering::Relaxed);
        for (name, kib) in sampler.await? {
            fleet.loaded(&name, kib);
        }
        let messages_after = store.total(DOMAIN, "total_messages").await.unwrap_or(0);

        // Latency per command, the first second (warm-up) left out.
        let samples = std::mem::take(&mut *samples.lock().expect("samples"));
        let warm = |x: &&Sample| x.3 >= 1.0;
        for (command, name) in [(0usize, "user.stats"), (1, "leaderboard.kudos")] {
            let mine: Vec<_> = samples.iter().filter(warm).filter(|x| x.0 == command).collect();
            let failed = mine.iter().filter(|x| !x.2).count();
            let mut ms: Vec<f64> = mine.iter().map(|x| x.1).collect();
            ms.sort_by(f64::total_cmp);
            let (p50, p99) = (percentile(&ms, 0.50), percentile(&ms, 0.99));
            let context =
                format!("{} requests, {failed} failed; max {:.1} ms", ms.len(), ms.last().copied().unwrap_or(f64::NAN));
            s.figure(
                &format!("{name} latency p50"),
                format!("{p50:.2} ms ({context})"),
                "≤ 1 ms",
                Some(p50 <= 1.0 && failed == 0),
            );
            s.figure(&format!("{name} latency p99"), format!("{p99:.2} ms"), "≤ 5 ms", Some(p99 <= 5.0 && failed == 0));
        }
        let chat_rate = (applied_end - applied_before) as f64 / load_seconds;
        s.note(
            "load",
            format!(
                "{asked} queries asked at {:.0}/s over {load_seconds:.1} s; chat published {published} at {:.0}/s, ingest-chat applied {:.0}/s during the window ({} batches, avg {:.0} events/batch, {:.0} commits/s), all {} applied {caught_up_after:.1} s after the window{}",
                asked as f64 / load_seconds,
                published as f64 / load_seconds,
                chat_rate,
                batches_end - batches_before,
                (applied_end - applied_before) as f64 / (batches_end - batches_before).max(1) as f64,
                (batches_end - batches_before) as f64 / load_seconds,
                applied_final - applied_before,
                if applied_final < target { " (NOT caught up)" } else { "" },
            ),
        );
        s.note(
            "database",
            format!(
                "{} users, {messages_before} counted messages when the load started, {messages_after} after ({} batches in all)",
                sizes.users, batches_final - batches_before
            ),
        );
        s.figure(
            "chat ingest during the query load",
            format!("{chat_rate:.0} events/s"),
            &format!("keeps up with the {chat_target:.0}/s published"),
            Some(chat_rate >= 0.95 * chat_target),
        );

        if self.pid("web").is_some() {
            let (p50, p99) = (percentile(&pages.0, 0.50), percentile(&pages.0, 0.99));
            s.figure(
                &format!("stats site channel page under load, {} users", sizes.users),
                format!("p50 {p50:.2} ms, p99 {p99:.2} ms ({} pages of {} bytes)", pages.0.len(), pages.1),
                "p99 ≤ 20 ms",
                Some(p99 <= 20.0 && !pages.0.is_empty()),
            );
        }
        let quiet = http_times(self.metrics_port, "/metrics", 50, Duration::from_millis(5)).await;
        let median = percentile(&quiet.0, 0.5);
        s.figure(
            &format!("/metrics scrape, {} users, median of {}", sizes.users, quiet.0.len()),
            format!(
                "{median:.2} ms (max {:.2} ms; under the query load: median {:.2} ms; {} bytes)",
                quiet.0.last().copied().unwrap_or(f64::NAN),
                percentile(&under_load.0, 0.5),
                quiet.1
            ),
            "≤ 20 ms",
            Some(median <= 20.0),
        );
        Ok(())
    }
}

/// `n` GET `path` over loopback, `gap` apart: sorted times in ms (answers 200 only) and the
/// last body's size.
async fn http_times(port: u16, path: &str, n: usize, gap: Duration) -> (Vec<f64>, usize) {
    let mut times = Vec::with_capacity(n);
    let mut size = 0;
    for _ in 0..n {
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        let one = tokio::task::spawn_blocking(move || -> std::io::Result<(f64, usize)> {
            use std::io::{Read, Write};
            let started = Instant::now();
            let mut c = std::net::TcpStream::connect(("127.0.0.1", port))?;
            c.write_all(request.as_bytes())?;
            let mut body = Vec::new();
            c.read_to_end(&mut body)?;
            if !body.starts_with(b"HTTP/1.1 200") {
                return Err(std::io::Error::other("not 200"));
            }
            Ok((started.elapsed().as_secs_f64() * 1000.0, body.len()))
        })
        .await;
        if let Ok(Ok((ms, bytes))) = one {
            times.push(ms);
            size = bytes;
        }
        tokio::time::sleep(gap).await;
    }
    times.sort_by(f64::total_cmp);
    (times, size)
}

/// Start-up and RSS per function, next to their targets.
fn per_function(s: &mut Summary, fleet: &Fleet) {
    for function in FUNCTIONS {
        if let Some(ms) = fleet.startup_ms.get(function) {
            s.figure(&format!("start-up {function}"), format!("{ms:.0} ms"), "≤ 300 ms", Some(*ms <= 300.0));
        }
        for (state, rss, limit) in [("idle", &fleet.idle_kib, 30.0), ("loaded", &fleet.loaded_kib, 100.0)] {
            if let Some(kib) = rss.get(function) {
                s.figure(
                    &format!("RSS {state} {function}"),
                    format!("{:.1} MiB", mib(*kib)),
                    &format!("≤ {limit} MiB"),
                    Some(mib(*kib) <= limit),
                );
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let sizes = Sizes::from_args()?;
    std::env::set_var("KRYTEN_TEST_PROFILE", std::env::var("KRYTEN_TEST_PROFILE").unwrap_or_else(|_| "release".into()));
    println!(
        "bench: {} events per ingest scenario; big database {} users / {} messages, {} s of queries at {:.0}/s with chat at {:.0}/s; release binaries from {}",
        sizes.events,
        sizes.users,
        sizes.messages,
        sizes.load.as_secs(),
        sizes.query_rate,
        sizes.chat_rate,
        binary("ingest-chat").display()
    );
    if let Some(plan) = &sizes.python {
        println!(
            "bench: --compare-python: {} chat events for kryten-userstats 0.7.1 (Python), counted within {} s",
            plan.events,
            plan.deadline.as_secs()
        );
    }
    let started = Instant::now();
    let mut s = Summary::default();
    let mut fleet = Fleet::default();

    let rust_chat_rate = chat_ingest(&mut s, &mut fleet, &sizes).await?;
    if let Some(plan) = &sizes.python {
        python::compare(&mut s, plan, rust_chat_rate).await;
    }
    presence_ingest(&mut s, &mut fleet, &sizes).await?;
    bootstrap_snapshot(&mut s).await?;
    let mut big = BigRig::prefill(&mut s, &sizes).await?;
    big.start_all(&mut s, &mut fleet).await?;
    big.bootstrap_kv(&mut s).await?;
    big.queries_alone(&mut s, &sizes).await?;
    big.queries_under_load(&mut s, &mut fleet, &sizes).await?;
    drop(big);
    per_function(&mut s, &fleet);

    s.print_table();
    println!("bench took {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
