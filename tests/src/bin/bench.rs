//! `bench`: end-to-end throughput of the ingest functions, measured inside one run.
//!
//! Starts its own nats-server, runs the release binaries against a fresh database, publishes
//! a deterministic stream into the events stream and times publish → applied and committed
//! (the function's durable `events_applied` counter). Prints one line per figure next to its
//! target (../shared/spec/04-targets.md), plus where the time went (batch sizes, commits/s).
//!
//! usage: bench [--events N] [--quick]   (scripts/bench builds the release binaries first)

use anyhow::{Context, Result};
use std::time::{Duration, Instant};
use userstats_tests::traffic::{Mix, Traffic};
use userstats_tests::*;

const T0: i64 = 1_763_884_800_000;

struct Run {
    events: u64,
    seconds: f64,
    publish_seconds: f64,
    batches: i64,
    rss_kib: Vec<u64>,
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs `replicas` copies of `function` over `n` events of `mix`.
async fn run(function: &str, mix: Mix, n: u64, replicas: usize) -> Result<Run> {
    let nats = NatsServer::start();
    let dir = TempDir::new("bench");
    let db = dir.file("userstats.db");
    let config = write_config(&dir, &nats.url(), &db, "");
    let client = nats.client().await;
    let started = Instant::now();
    let procs: Vec<FunctionProcess> =
        (0..replicas).map(|_| FunctionProcess::spawn(function, &config, &dir, &[])).collect();
    if let Err(e) = wait_registered(&client, &format!("userstats-{function}"), Duration::from_secs(20)).await {
        anyhow::bail!("{e:#}\n{}", procs[0].log_text());
    }
    let startup = started.elapsed();
    let idle_rss: Vec<u64> = procs.iter().map(|p| rss_kib(p.pid())).collect();
    if replicas == 1 {
        println!(
            "  start-up ({function}): {:.0} ms to registered (target ≤ 300 ms); idle RSS {} MiB (target ≤ 30)",
            startup.as_secs_f64() * 1000.0,
            idle_rss[0] / 1024
        );
    }

    let mut traffic = Traffic::new(42, 200, "420Grindhouse", T0, mix);
    let mut messages = traffic.preamble();
    if mix == Mix::Presence {
        messages.truncate(1); // the userlist only
    } else {
        messages.clear();
    }
    let preamble = messages.len() as u64;
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
    let mut peak_rss = vec![0u64; replicas];
    loop {
        let applied = store.counter(function, "events_applied").await.unwrap_or(0) as u64;
        for (i, p) in procs.iter().enumerate() {
            peak_rss[i] = peak_rss[i].max(rss_kib(p.pid()));
        }
        if applied >= total {
            break;
        }
        if t.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("{function}: only {applied} of {total} applied after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = t.elapsed().as_secs_f64();
    let batches = store.counter(function, "batches").await.unwrap_or(0);
    let _ = preamble;
    Ok(Run { events: total, seconds, publish_seconds, batches, rss_kib: peak_rss })
}

fn report(label: &str, r: &Run, target: &str) -> f64 {
    let rate = r.events as f64 / r.seconds;
    println!(
        "{label}: {:.0} events/s ({} events in {:.2} s; target {target}) | published at {:.0}/s | {} batches, avg {:.0} events/batch, {:.0} commits/s | peak RSS {} MiB",
        rate,
        r.events,
        r.seconds,
        r.events as f64 / r.publish_seconds,
        r.batches,
        r.events as f64 / r.batches.max(1) as f64,
        r.batches as f64 / r.seconds,
        r.rss_kib.iter().max().copied().unwrap_or(0) / 1024,
    );
    rate
}

/// bootstrap-kv's apply (in process, release build): a KV snapshot of 10,000 users + 2,000
/// emotes + 5,000 playlist items applied to a fresh database in one transaction.
async fn bootstrap_snapshot() -> Result<()> {
    use serde_json::{json, Value};
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
    let users: Vec<Value> =
        (0..10_000).map(|i| json!({"name": format!("user{i}"), "rank": 1, "meta": {"afk": i % 7 == 0}})).collect();
    let emotes: Vec<Value> =
        (0..2_000).map(|i| json!({"name": format!("emote{i}"), "image": "", "source": ""})).collect();
    let items: Vec<Value> = (0..5_000)
        .map(|i| json!({"media": {"id": format!("v{i}"), "title": format!("Video_{i}.mp4"), "seconds": 60, "type": "yt"}, "uid": i}))
        .collect();
    let snap = ChannelSnapshot {
        users: Some(value("kryten_bench_userlist", "users", Value::from(users))),
        emotes: Some(value("kryten_bench_emotes", "list", Value::from(emotes))),
        items: Some(value("kryten_bench_playlist", "items", Value::from(items))),
        current: None,
    };
    let started = Instant::now();
    let events = bootstrap::snapshot_events("cytu.be", "bench", &snap);
    let config = shared::config::Config::default();
    let (applied, _) =
        bootstrap::apply_snapshot(&store, &mut Applier::new(&config), "cytu.be", "bench", &events).await?;
    println!(
        "bootstrap: 10,000 users + 2,000 emotes + 5,000 playlist items applied in {:.3} s (target ≤ 1 s; {} sessions opened)",
        started.elapsed().as_secs_f64(),
        applied.users_opened
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mut events: u64 = if quick { 50_000 } else { 200_000 };
    if let Some(i) = args.iter().position(|a| a == "--events") {
        events = args.get(i + 1).context("--events N")?.parse().context("--events N")?;
    }
    std::env::set_var("KRYTEN_TEST_PROFILE", std::env::var("KRYTEN_TEST_PROFILE").unwrap_or_else(|_| "release".into()));
    println!("bench: {events} events per scenario, release binaries from {}", binary("ingest-chat").display());

    let one = run("ingest-chat", Mix::Chat, events, 1).await?;
    let r1 = report("chat ingest, 1 replica", &one, "≥ 50,000/s");
    let two = run("ingest-chat", Mix::Chat, events, 2).await?;
    let r2 = report("chat ingest, 2 replicas", &two, "not slower than 1 replica");
    println!("chat ingest, 2 replicas / 1 replica: {:.2} (target ≥ 1.0 within noise)", r2 / r1);
    if binary("ingest-presence").exists() {
        let p = run("ingest-presence", Mix::Presence, events, 1).await?;
        report("presence ingest, 1 replica", &p, "≥ 20,000/s");
    } else {
        println!("presence ingest: skipped (ingest-presence not built)");
    }
    bootstrap_snapshot().await?;
    Ok(())
}
