//! `bench --compare-python`: the baseline of docs/targets.md (the previous
//! Python service, kryten-userstats 0.7.1 from PyPI, ~220 chat events/s) measured in the same
//! run as the Rust figures, on the same synthetic chat stream.
//!
//! How it runs: a nats-server of its own (JetStream on, as for the Rust scenarios), the
//! service started as `<venv python> -m userstats --config cfg.json` (what its console script
//! `kryten-userstats` does) with a JSON config naming that server, the channel, a temp SQLite
//! file and a free metrics port. The venv comes from `scripts/python-reference`, whose python
//! `scripts/bench` passes in `$KRYTEN_PYTHON_REFERENCE` (else `.tools/py-userstats/bin/python`).
//!
//! What the service does (read from its source): kryten-py subscribes with core NATS to
//! `kryten.events.cytube.<channel lowercased, dots removed>.>` and handles one message at a
//! time; each chat message runs `track_user` then `increment_message_count` (then kudos,
//! emote and vote lookups), each statement on a new SQLite connection with its own commit.
//! It needs no KV bucket (a missing one is a warning) and is ready when it answers
//! `system.ping` on `kryten.userstats.command`, its last subscription.
//!
//! Measured: publish start → the sum of `message_counts.message_count` in its SQLite file
//! reaches the number published (polled every 100 ms), or the deadline passes (then the rate
//! so far is reported and the figure says so). The stream is `Traffic::new(42, 200, CHANNEL,
//! T0, Mix::Chat)` without preamble, exactly the events of the Rust chat scenario, published
//! with core NATS as the bridge does, as fast as the client goes: nats-py buffers up to
//! 524,288 pending messages per subscription (default limit), far more than the 10,000
//! published here, so nothing is dropped; the figure shows counted vs published anyway and
//! the note counts any `slow consumer` error in the service's log.

use super::{mib, rss_kib, Summary, CHANNEL, T0};
use anyhow::{Context, Result};
use serde_json::json;
use std::time::{Duration, Instant};
use userstats_tests::python_reference::PythonService;
use userstats_tests::traffic::{Mix, Traffic};
use userstats_tests::{free_port, NatsServer, TempDir};

const LABEL: &str = "chat ingest, Python kryten-userstats 0.7.1";

/// How much of the stream the Python service gets, and for how long it may count.
pub struct Plan {
    pub events: u64,
    pub deadline: Duration,
}

impl Plan {
    /// ~220 events/s expected: 2,000 events (≈ 10 s) quick, 10,000 (≈ 45 s) full; the
    /// deadlines keep the whole Python part within ~60 s quick and ~3 min full.
    pub fn new(quick: bool) -> Plan {
        if quick {
            Plan { events: 2_000, deadline: Duration::from_secs(45) }
        } else {
            Plan { events: 10_000, deadline: Duration::from_secs(150) }
        }
    }
}

struct Outcome {
    published: u64,
    counted: u64,
    /// Publish start → all counted (or the deadline).
    seconds: f64,
    publish_seconds: f64,
    ready_seconds: f64,
    complete: bool,
    peak_rss_kib: u64,
    errors: usize,
    slow_consumer: usize,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.counted as f64 / self.seconds
    }
}

/// Runs the Python service on the chat stream and adds its figure and the Rust/Python ratio
/// (`rust`: the 1-replica chat rates of this run) to the summary. A failure is reported as a
/// missed figure; the rest of the benchmark goes on.
pub async fn compare(s: &mut Summary, plan: &Plan, rust: &super::ingest::ChatRates) {
    let rust_rate = rust.end_to_end;
    super::settle_disk();
    let started = Instant::now();
    match run(plan).await {
        Ok(o) => {
            let rate = o.rate();
            s.figure(
                LABEL,
                format!(
                    "{rate:.0} events/s ({} of {} counted in {:.1} s{})",
                    o.counted,
                    o.published,
                    o.seconds,
                    if o.complete { "" } else { ", deadline reached" }
                ),
                "reference only: ~220/s in 04-targets.md",
                None,
            );
            s.note(
                "python",
                format!(
                    "ready {:.2} s after start; {} events published at {:.0}/s (core NATS); peak RSS {:.1} MiB; {} ERROR lines in its log ({} slow consumer); one SQLite connection and commit per statement; the Python part took {:.0} s",
                    o.ready_seconds,
                    o.published,
                    o.published as f64 / o.publish_seconds,
                    mib(o.peak_rss_kib),
                    o.errors,
                    o.slow_consumer,
                    started.elapsed().as_secs_f64()
                ),
            );
            let ratio = rust_rate / rate;
            s.figure(
                "chat ingest, Rust 1 replica / Python",
                format!("{ratio:.0}× ({rust_rate:.0} vs {rate:.0} events/s end to end, same run)"),
                "≥ 200×",
                Some(ratio >= 200.0),
            );
            // Publishing 10,000 events costs the Python run nothing next to its ingest; the
            // Rust end-to-end figure shares the two cores with a publisher as fast as it.
            s.note(
                "python",
                format!(
                    "Rust consumption alone (prefilled stream) / Python: {:.0}× ({:.0} vs {rate:.0} events/s)",
                    rust.consumption / rate,
                    rust.consumption
                ),
            );
        }
        Err(e) => s.figure(LABEL, format!("failed: {e:#}"), "runs (scripts/bench --compare-python)", Some(false)),
    }
}

/// The venv's python (run with `-m userstats`) or the entry point itself.
/// What the service has counted: the sum of its per-user message counts (None while busy).
async fn messages_counted(conn: &libsql::Connection) -> Option<u64> {
    let mut rows = conn.query("SELECT COALESCE(SUM(message_count), 0) FROM message_counts", ()).await.ok()?;
    let n = rows.next().await.ok()??.get::<i64>(0).ok()?;
    Some(n.max(0) as u64)
}

async fn run(plan: &Plan) -> Result<Outcome> {
    let nats = NatsServer::start();
    let dir = TempDir::new("bench-python");
    let db = dir.file("userstats.db");
    let t_start = Instant::now();
    let extra = json!({"metrics": {"port": free_port()}});
    let mut service = PythonService::start(&dir, &nats.url(), CHANNEL, &db, extra).await?;
    let ready_seconds = t_start.elapsed().as_secs_f64();
    let client = nats.client().await;

    // Its database, read beside it (WAL: reading does not block its writes).
    let database = libsql::Builder::new_local(&db).build().await.context("open the Python service's database")?;
    let conn = database.connect()?;
    conn.busy_timeout(Duration::from_secs(1))?;

    // The Rust chat scenario's stream: same seed, users, channel and start time, no preamble.
    let mut traffic = Traffic::new(42, 200, CHANNEL, T0, Mix::Chat);
    let messages: Vec<(String, String)> = (0..plan.events).map(|_| traffic.next_event()).collect();
    let published = messages.len() as u64;

    let t = Instant::now();
    for (subject, body) in messages {
        client.publish(subject, body.into()).await.context("publish")?;
    }
    client.flush().await.context("flush")?;
    let publish_seconds = t.elapsed().as_secs_f64();

    let mut peak_rss_kib = 0;
    let mut last = 0;
    let (seconds, complete) = loop {
        if let Some(n) = messages_counted(&conn).await {
            last = n;
        }
        let elapsed = t.elapsed();
        peak_rss_kib = peak_rss_kib.max(service.pid().map(rss_kib).unwrap_or(0));
        if last >= published {
            break (elapsed.as_secs_f64(), true);
        }
        if elapsed > plan.deadline {
            break (elapsed.as_secs_f64(), false);
        }
        service.check_alive()?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let text = service.log_text();
    let errors = text.lines().filter(|l| l.contains(" - ERROR - ")).count();
    let slow_consumer = text.lines().filter(|l| l.to_lowercase().contains("slow consumer")).count();
    drop(service); // SIGTERM before the nats-server goes
    Ok(Outcome {
        published,
        counted: last,
        seconds,
        publish_seconds,
        ready_seconds,
        complete,
        peak_rss_kib,
        errors,
        slow_consumer,
    })
}
