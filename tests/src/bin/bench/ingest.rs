//! Scenarios 1 and 2: ingest throughput (chat with one and two replicas, on a local file
//! and on a libSQL server, the dev build beside the release build; presence).

use super::*;

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
pub(crate) async fn phase_times(client: &async_nats::Client, function: &str) -> BTreeMap<String, u64> {
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

/// How an ingest scenario's events reach the function.
#[derive(Clone, Copy, PartialEq)]
enum Feed {
    /// Published while the function runs: publish → applied, end to end (the publisher
    /// shares the two cores).
    Live,
    /// Published into the stream before the function starts: consumption alone.
    Prefilled,
}

/// Runs `replicas` copies of `function` over `n` events of `mix` (JetStream, acked) until
/// every event is applied and committed.
async fn ingest_run(function: &str, mix: Mix, n: u64, replicas: usize, on: Db, feed: Feed) -> Result<Run> {
    settle_disk();
    let nats = NatsServer::start();
    let dir = TempDir::new("bench");
    let sqld = (on == Db::Server).then(SqldServer::start);
    let db = sqld.as_ref().map(|s| s.url()).unwrap_or_else(|| dir.file("userstats.db"));
    let config = write_config(&dir, &nats.url(), &db, "");
    let client = nats.client().await;
    let js = async_nats::jetstream::new(client.clone());
    let messages = stream_of(mix, n);
    let total = messages.len() as u64;
    let spawn = || -> Vec<FunctionProcess> {
        (0..replicas).map(|_| FunctionProcess::spawn(function, &config, &dir, &[])).collect()
    };
    let (procs, t, publish_seconds) = match feed {
        Feed::Live => {
            let procs = spawn();
            if let Err(e) = wait_ping(&client, function, Duration::from_secs(20)).await {
                bail!("{e:#}\n{}", procs[0].log_text());
            }
            let t = Instant::now();
            publish(&client, &js, messages).await?;
            (procs, t, t.elapsed().as_secs_f64())
        }
        Feed::Prefilled => {
            // The stream the functions would create, filled before any of them runs.
            js.create_stream(async_nats::jetstream::stream::Config {
                name: "KRYTEN_EVENTS".into(),
                subjects: vec!["kryten.events.cytube.>".into()],
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("create stream: {e}"))?;
            let published = Instant::now();
            publish(&client, &js, messages).await?;
            let publish_seconds = published.elapsed().as_secs_f64();
            let t = Instant::now();
            (spawn(), t, publish_seconds)
        }
    };
    let store = open_store(&db).await;
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

/// The events of a scenario: `n` of `mix` (presence starts with the userlist).
fn stream_of(mix: Mix, n: u64) -> Vec<(String, String)> {
    let mut traffic = Traffic::new(42, 200, CHANNEL, T0, mix);
    let mut messages = traffic.preamble();
    if mix == Mix::Presence {
        messages.truncate(1); // the userlist only
    } else {
        messages.clear();
    }
    messages.extend((0..n).map(|_| traffic.next_event()));
    messages
}

/// Publishes as the bridge does, with core NATS (no reply subject), but never more than
/// `CHUNK × IN_FLIGHT` events ahead of the stream: the last event of every chunk goes out as
/// a JetStream publish, whose ack says the stream has stored it and, since one connection's
/// messages reach the one stream in order, everything published before it. Core publishing
/// without that bound made the server drop about a sixth of a 500,000-event flood; acking
/// every event (the earlier publisher) costs the server an ack message and the publisher a
/// pending request per event, on the same two cores as the function being measured. Then it
/// checks that the stream holds every event, so a drop fails the scenario instead of
/// stalling it.
async fn publish(
    client: &async_nats::Client,
    js: &async_nats::jetstream::Context,
    messages: Vec<(String, String)>,
) -> Result<()> {
    const CHUNK: usize = 256;
    const IN_FLIGHT: usize = 4;
    let total = messages.len();
    let mut acks = std::collections::VecDeque::with_capacity(IN_FLIGHT + 1);
    for (i, (s, d)) in messages.into_iter().enumerate() {
        if (i + 1) % CHUNK != 0 && i + 1 != total {
            client.publish(s, d.into()).await.context("publish")?;
            continue;
        }
        acks.push_back(js.publish(s, d.into()).await.context("publish")?);
        if acks.len() > IN_FLIGHT {
            if let Some(ack) = acks.pop_front() {
                ack.await.context("publish ack")?;
            }
        }
    }
    let mut stream = String::new();
    for ack in acks {
        stream = ack.await.context("publish ack")?.stream;
    }
    if stream.is_empty() {
        return Ok(());
    }
    let mut s = js.get_stream(&stream).await.map_err(|e| anyhow::anyhow!("open stream {stream}: {e}"))?;
    let held = s.info().await.map_err(|e| anyhow::anyhow!("stream info: {e}"))?.state.messages;
    if held != total as u64 {
        bail!("the stream {stream} holds {held} of the {total} events published: the server dropped some");
    }
    Ok(())
}

/// The 1-replica chat rates of a run, for the comparison with the Python service.
pub(crate) struct ChatRates {
    /// Publish start → all applied, the publisher on the same two cores.
    pub end_to_end: f64,
    /// From a prefilled stream: consumption alone.
    pub consumption: f64,
}

/// Chat ingest with one replica, then two; and their ratio. Returns the 1-replica rates.
pub(crate) async fn chat_ingest(s: &mut Summary, fleet: &mut Fleet, sizes: &Sizes) -> Result<ChatRates> {
    let one = ingest_run("ingest-chat", Mix::Chat, sizes.events, 1, Db::File, Feed::Live).await?;
    s.figure(
        "chat ingest, 1 replica",
        format!("{:.0} events/s", one.rate()),
        "≥ 50,000/s over ≥ 500,000 events",
        Some(one.rate() >= 50_000.0 && one.events >= 500_000),
    );
    one.where_time_goes(s, "1 replica");
    // Consumption alone: the same stream already in JetStream when ingest-chat starts.
    let drain = ingest_run("ingest-chat", Mix::Chat, sizes.events, 1, Db::File, Feed::Prefilled).await?;
    s.figure(
        "chat ingest, 1 replica, from a prefilled stream (consumption alone)",
        format!("{:.0} events/s (publishing them took {:.1} s alone)", drain.rate(), drain.publish_seconds),
        "aim ≥ 100,000/s",
        Some(drain.rate() >= 100_000.0),
    );
    drain.where_time_goes(s, "prefilled");
    let two = ingest_run("ingest-chat", Mix::Chat, sizes.events, 2, Db::File, Feed::Live).await?;
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
    let server = ingest_run("ingest-chat", Mix::Chat, (sizes.events / 10).max(1000), 1, Db::Server, Feed::Live).await?;
    s.figure(
        "chat ingest, 1 replica, libSQL server (sqld on loopback)",
        format!("{:.0} events/s ({:.2} of the local file's)", server.rate(), server.rate() / one.rate()),
        "≥ 25,000/s",
        Some(server.rate() >= 25_000.0),
    );
    server.where_time_goes(s, "sqld");
    // The dev profile (scripts/run, the tests) on the same stream: how much slower the
    // binaries are that nobody should ship.
    let release = std::env::var("KRYTEN_TEST_PROFILE").unwrap_or_else(|_| "release".into());
    std::env::set_var("KRYTEN_TEST_PROFILE", "debug");
    let dev = ingest_run("ingest-chat", Mix::Chat, (sizes.events / 5).max(1000), 1, Db::File, Feed::Live).await;
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
    Ok(ChatRates { end_to_end: one.rate(), consumption: drain.rate() })
}

/// Presence ingest, one replica.
pub(crate) async fn presence_ingest(s: &mut Summary, fleet: &mut Fleet, sizes: &Sizes) -> Result<()> {
    let p = ingest_run("ingest-presence", Mix::Presence, sizes.events, 1, Db::File, Feed::Live).await?;
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
