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
//! python in `$KRYTEN_PYTHON_REFERENCE`, set by scripts/bench from scripts/python-reference).
//!
//! usage: bench [--quick] [--events N] [--users N] [--messages N] [--load-seconds N]
//!              [--compare-python [--python-events N]]
//! (scripts/bench builds the release binaries first)
//!
//! `KRYTEN_BENCH_SAMPLES=FILE` writes every query under load to FILE, one per line:
//! probe (surface × command), milliseconds, answered, seconds since the load began — to see
//! whether slow answers come together (at a commit, say) or spread out.

mod bigrig;
mod ingest;
mod python;
mod queries;

use bigrig::{BigRig, Sample};
use ingest::{chat_ingest, presence_ingest};

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

/// Flushes what earlier scenarios wrote. Each leaves hundreds of MB of stream and database
/// files for the kernel to write back; unflushed, that writeback ran into the next
/// measurement (in the query load: 60-108 ms stalls of every surface at once and a p99 of
/// 5-8 ms, against 2.8-3.9 ms with the disk settled first). Every measured scenario starts
/// with this, the Python reference's included.
pub(crate) fn settle_disk() {
    let _ = std::process::Command::new("sync").status();
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

    let rust_chat = chat_ingest(&mut s, &mut fleet, &sizes).await?;
    if let Some(plan) = &sizes.python {
        python::compare(&mut s, plan, &rust_chat).await;
    }
    presence_ingest(&mut s, &mut fleet, &sizes).await?;
    bootstrap_snapshot(&mut s).await?;
    settle_disk();
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
