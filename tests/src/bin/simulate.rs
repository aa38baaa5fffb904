//! `simulate`: publishes realistic CyTube traffic (as the Kryten bridge would) so that a
//! newcomer sees the numbers move without a bridge.
//!
//! usage: simulate [--nats URL] [--channel NAME] [--rate EVENTS_PER_S] [--count N] [--users N] [--seed S]
//! (the seed defaults to the clock, so event ids differ between runs)

use anyhow::{Context, Result};
use std::time::{Duration, Instant};
use userstats_tests::traffic::{Mix, Traffic};

#[tokio::main]
async fn main() -> Result<()> {
    let mut nats = "nats://127.0.0.1:4222".to_string();
    let (mut channel, mut rate, mut count, mut users, mut seed) =
        ("420Grindhouse".to_string(), 50u64, u64::MAX, 40usize, 0u64);
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2).filter(|p| !p[0].starts_with("-h") && p[0] != "--help") {
        let value = pair.get(1).context("every option needs a value; see the usage line in the source")?;
        match pair[0].as_str() {
            "--nats" => nats = value.clone(),
            "--channel" => channel = value.clone(),
            "--rate" => rate = value.parse().context("--rate")?,
            "--count" => count = value.parse().context("--count")?,
            "--users" => users = value.parse().context("--users")?,
            "--seed" => seed = value.parse().context("--seed")?,
            other => anyhow::bail!("unknown option {other}: use --nats --channel --rate --count --users --seed"),
        }
    }
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "usage: simulate [--nats URL] [--channel NAME] [--rate EVENTS_PER_S] [--count N] [--users N] [--seed S]"
        );
        return Ok(());
    }
    if seed == 0 {
        // A fresh seed per run: event ids must differ from any earlier run's.
        seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as u64;
    }
    let client = async_nats::connect(&nats).await.with_context(|| format!("cannot connect to {nats}"))?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let mut traffic = Traffic::new(seed, users.max(2), &channel, now, Mix::Live);
    for (s, d) in traffic.preamble() {
        client.publish(s, d.into()).await?;
    }
    println!(
        "simulate: publishing {rate} events/s on kryten.events.cytube.{}.> ({users} users); Ctrl-C stops",
        shared::wire::subject_token(&channel)
    );
    let started = Instant::now();
    let mut sent = 0u64;
    while sent < count {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due.min(count) {
            // Live traffic: event time follows the wall clock.
            traffic.time_ms = now + started.elapsed().as_millis() as i64;
            let (s, d) = traffic.next_event();
            client.publish(s, d.into()).await?;
            sent += 1;
        }
        client.flush().await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
