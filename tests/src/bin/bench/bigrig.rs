//! Scenario 4: the big database with every function running — bootstrap through real KV
//! buckets, queries alone and under chat load on every surface, the stats site, scrapes.

use super::*;

use super::queries::{answered, latency_figures, Surface, COMMANDS, SURFACES};
use tokio::task::JoinHandle;

/// One query: (command index, latency ms, answered with success, sent at s after the start).
pub(crate) type Sample = (usize, f64, bool, f64);

pub(crate) struct BigRig {
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
    pub(crate) async fn prefill(s: &mut Summary, sizes: &Sizes) -> Result<BigRig> {
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

    pub(crate) fn pid(&self, function: &str) -> Option<u32> {
        self.procs.iter().find(|p| p.name == function).map(|p| p.pid())
    }

    /// Starts every function, one at a time, on the prefilled database: process start →
    /// micro service answering; then the idle RSS of each once all have settled.
    pub(crate) async fn start_all(&mut self, s: &mut Summary, fleet: &mut Fleet) -> Result<()> {
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
    pub(crate) async fn bootstrap_kv(&self, s: &mut Summary) -> Result<()> {
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
    pub(crate) async fn queries_alone(&self, s: &mut Summary, sizes: &Sizes) -> Result<()> {
        for command in COMMANDS {
            let mut ms = Vec::with_capacity(200);
            for i in 0..200u64 {
                let (subject, body) = Surface::Micro.request(command, i, sizes.users as u64);
                let sent = Instant::now();
                let answer =
                    tokio::time::timeout(Duration::from_secs(5), self.client.request(subject, body.into())).await;
                if !answered(&answer) {
                    bail!("{command} failed when asked alone: {answer:?}");
                }
                ms.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
            ms.sort_by(f64::total_cmp);
            s.note(
                &format!("{command} alone (no load, one at a time)"),
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

    /// Query latency while chat ingest runs, with RSS sampled and `/metrics` scraped: the
    /// load started, the queries asked through the window, the load finished (ingest left
    /// to catch up), then the figures.
    pub(crate) async fn queries_under_load(&self, s: &mut Summary, fleet: &mut Fleet, sizes: &Sizes) -> Result<()> {
        let store = open_store(&self.db).await;
        let before = ChatCounters::read(&store).await;
        let messages_before = store.total(DOMAIN, "total_messages").await.unwrap_or(0);
        let (cpu_before, phases_before, started) = (self.cpu_ticks(), self.chat_phases().await, Instant::now());
        let load = self.start_load(sizes).await?;
        let queries = self.ask_queries(sizes).await?;
        let window = load.finish(&store, queries, before, fleet).await?;
        let messages_after = store.total(DOMAIN, "total_messages").await.unwrap_or(0);
        window.report(s, sizes, (messages_before, messages_after));
        self.where_time_goes(s, (cpu_before, phases_before), started.elapsed().as_secs_f64()).await;
        self.report_http(s, sizes, &window).await;
        Ok(())
    }

    /// CPU time so far (user + system, clock ticks of 10 ms) of nats-server, every function
    /// and the bench itself (the load generator), by name.
    fn cpu_ticks(&self) -> BTreeMap<String, u64> {
        let ticks = |pid: u32| -> u64 {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
            let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
            fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
                + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
        };
        let mut out: BTreeMap<String, u64> = self.procs.iter().map(|p| (p.name.to_string(), ticks(p.pid()))).collect();
        out.insert("nats-server".into(), ticks(self.nats.pid()));
        out.insert("bench (load generator)".into(), ticks(std::process::id()));
        out
    }

    /// ingest-chat's own phase times so far (`time_us` in its `$SRV.STATS`).
    async fn chat_phases(&self) -> BTreeMap<String, u64> {
        super::ingest::phase_times(&self.client, "ingest-chat").await
    }

    /// Where the two cores went from the start of the load until ingest caught up: each
    /// process's share of a core, and ingest-chat's time split into its phases.
    async fn where_time_goes(
        &self,
        s: &mut Summary,
        (cpu_before, phases_before): (BTreeMap<String, u64>, BTreeMap<String, u64>),
        seconds: f64,
    ) {
        let cpu_after = self.cpu_ticks();
        let mut shares: Vec<(f64, &String)> = cpu_after
            .iter()
            .map(|(name, t)| (t.saturating_sub(cpu_before.get(name).copied().unwrap_or(0)) as f64 / seconds, name))
            .filter(|(share, _)| *share >= 1.0)
            .collect();
        shares.sort_by(|a, b| b.0.total_cmp(&a.0));
        let total: f64 = shares.iter().map(|(share, _)| share).sum();
        let listed: Vec<String> = shares.iter().map(|(share, name)| format!("{name} {share:.0}%")).collect();
        s.note(
            "cpu under load",
            format!("{total:.0}% of one core in all over {seconds:.1} s (2 cores = 200%): {}", listed.join(", ")),
        );
        let phases_after = self.chat_phases().await;
        let busy: Vec<(String, u64)> = phases_after
            .iter()
            .map(|(phase, us)| (phase.clone(), us.saturating_sub(phases_before.get(phase).copied().unwrap_or(0))))
            .collect();
        let total_us: u64 = busy.iter().map(|(_, us)| us).sum();
        if total_us > 0 {
            let split: Vec<String> =
                busy.iter().map(|(p, us)| format!("{p} {:.0}%", *us as f64 * 100.0 / total_us as f64)).collect();
            s.note("cpu under load", format!("ingest-chat busy {:.2} s: {}", total_us as f64 / 1e6, split.join(", ")));
        }
    }

    /// Starts what runs beside the queries, in this order: the channel's emote list and
    /// media (so that detection has something to find), the RSS sampler, the chat pacer,
    /// `/metrics` scrapes and channel pages.
    async fn start_load(&self, sizes: &Sizes) -> Result<Load> {
        let publisher = async_nats::connect(self.nats.url()).await?;
        let mut traffic = Traffic::new(7, sizes.users as usize, CHANNEL, T0, Mix::Chat);
        for (subject, body) in traffic.preamble().into_iter().skip(1) {
            publisher.publish(subject, body.into()).await?;
        }
        publisher.flush().await?;

        let done = Arc::new(AtomicBool::new(false));
        let sampler = self.spawn_rss_sampler(done.clone());
        let chat = spawn_chat_pacer(publisher.clone(), traffic, sizes.chat_rate, sizes.load);
        let load = sizes.load;
        let scrapes = {
            let port = self.metrics_port;
            let gap = load / 60;
            tokio::spawn(async move { http_times(port, "/metrics", 50, gap).await })
        };
        // The stats site's channel page, one request after the other through the window
        // (pages are cached web.cache_seconds: most are answered from memory, some rebuilt).
        let pages = {
            let port = self.web_port;
            let gap = load / 400;
            let path = format!("/c/{CHANNEL}");
            tokio::spawn(async move { http_times(port, &path, 300, gap).await })
        };
        Ok(Load { window: load, publisher, done, sampler, chat, scrapes, pages })
    }

    /// Each function's peak RSS, sampled every 100 ms until `done`.
    fn spawn_rss_sampler(&self, done: Arc<AtomicBool>) -> JoinHandle<BTreeMap<String, u64>> {
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
    }

    /// Every (surface, command) pair in turn, at the same total rate, through the window;
    /// each answer's latency collected by its own task.
    async fn ask_queries(&self, sizes: &Sizes) -> Result<Queries> {
        let client = async_nats::connect(self.nats.url()).await?;
        let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
        let users = sizes.users as u64;
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        let asked = paced(sizes.query_rate, sizes.load, |i| {
            let probe = (i as usize) % (SURFACES.len() * COMMANDS.len());
            let (surface, command) = (SURFACES[probe / COMMANDS.len()], COMMANDS[probe % COMMANDS.len()]);
            let (subject, body) = surface.request(command, i, users);
            let (client, samples) = (client.clone(), samples.clone());
            tasks.push(tokio::spawn(async move {
                let sent = Instant::now();
                let answer = tokio::time::timeout(Duration::from_secs(5), client.request(subject, body.into())).await;
                let ms = sent.elapsed().as_secs_f64() * 1000.0;
                let at = sent.duration_since(t0).as_secs_f64();
                samples.lock().expect("samples").push((probe, ms, answered(&answer), at));
            }));
            async {}
        })
        .await;
        Ok(Queries { client, asked, t0, tasks, samples })
    }

    /// The channel page's latency under load (when the stats site runs), then `/metrics`
    /// scraped again, quietly, beside the scrapes under load.
    async fn report_http(&self, s: &mut Summary, sizes: &Sizes, window: &Window) {
        let (pages, under_load) = (&window.pages, &window.scrapes);
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
    }
}

/// The chat pacer: `traffic`'s chat events published at `rate` for `load`; returns how
/// many were published.
fn spawn_chat_pacer(publisher: async_nats::Client, mut traffic: Traffic, rate: f64, load: Duration) -> JoinHandle<u64> {
    tokio::spawn(async move {
        let sent = paced(rate, load, |_| {
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
}

/// ingest-chat's durable counters at one moment.
#[derive(Clone, Copy)]
struct ChatCounters {
    applied: i64,
    batches: i64,
}

impl ChatCounters {
    async fn read(store: &shared::store::Store) -> ChatCounters {
        let applied = store.counter("ingest-chat", "events_applied").await.unwrap_or(0);
        let batches = store.counter("ingest-chat", "batches").await.unwrap_or(0);
        ChatCounters { applied, batches }
    }
}

/// What runs beside the queries (see [`BigRig::start_load`]).
struct Load {
    /// How long the window lasts.
    window: Duration,
    /// The chat pacer's connection, kept open to the end as the client asking the queries.
    publisher: async_nats::Client,
    /// Stops the RSS sampler.
    done: Arc<AtomicBool>,
    sampler: JoinHandle<BTreeMap<String, u64>>,
    chat: JoinHandle<u64>,
    scrapes: JoinHandle<(Vec<f64>, usize)>,
    pages: JoinHandle<(Vec<f64>, usize)>,
}

/// The queries asked (see [`BigRig::ask_queries`]): how many, from when, the tasks still
/// waiting for answers, the samples.
struct Queries {
    /// The connection asking, kept open to the end of the scenario.
    client: async_nats::Client,
    asked: u64,
    t0: Instant,
    tasks: Vec<JoinHandle<()>>,
    samples: Arc<Mutex<Vec<Sample>>>,
}

/// What the window measured, for the report.
struct Window {
    asked: u64,
    published: u64,
    load_seconds: f64,
    before: ChatCounters,
    /// At the end of the window, and once ingest caught up (or gave up after 120 s).
    end: ChatCounters,
    last: ChatCounters,
    caught_up_after: f64,
    /// The events applied once all published are.
    target: i64,
    samples: Vec<Sample>,
    scrapes: (Vec<f64>, usize),
    pages: (Vec<f64>, usize),
    /// The publisher's and the queries' connections, closed with the scenario's end.
    _connections: [async_nats::Client; 2],
}

impl Load {
    /// Waits for the chat pacer and every answer, ends the window, lets ingest catch up
    /// (still sampling RSS), then collects the scrapes, pages and peak RSS.
    async fn finish(
        self,
        store: &shared::store::Store,
        queries: Queries,
        before: ChatCounters,
        fleet: &mut Fleet,
    ) -> Result<Window> {
        let published = self.chat.await?;
        for t in queries.tasks {
            let _ = t.await;
        }
        let load_seconds = queries.t0.elapsed().as_secs_f64().min(self.window.as_secs_f64());
        let end = ChatCounters::read(store).await;

        // Let ingest catch up, still sampling RSS.
        let catch_up = Instant::now();
        let target = before.applied + published as i64;
        while store.counter("ingest-chat", "events_applied").await.unwrap_or(0) < target
            && catch_up.elapsed() < Duration::from_secs(120)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let caught_up_after = catch_up.elapsed().as_secs_f64();
        let last = ChatCounters::read(store).await;
        let scrapes = self.scrapes.await?;
        let pages = self.pages.await?;
        self.done.store(true, Ordering::Relaxed);
        for (name, kib) in self.sampler.await? {
            fleet.loaded(&name, kib);
        }
        let samples = std::mem::take(&mut *queries.samples.lock().expect("samples"));
        let (asked, _connections) = (queries.asked, [self.publisher, queries.client]);
        Ok(Window {
            asked,
            published,
            load_seconds,
            before,
            end,
            last,
            caught_up_after,
            target,
            samples,
            scrapes,
            pages,
            _connections,
        })
    }
}

impl Window {
    /// Latency per surface and command (the first second, warm-up, left out), then what
    /// the load was and how chat ingest kept up. `messages`: the channel's counted
    /// messages before and after.
    fn report(&self, s: &mut Summary, sizes: &Sizes, (messages_before, messages_after): (i64, i64)) {
        let Window { asked, published, load_seconds, before, end, last, caught_up_after, target, .. } = *self;
        latency_figures(s, &self.samples);
        let chat_target = sizes.chat_rate;
        let chat_rate = (end.applied - before.applied) as f64 / load_seconds;
        s.note(
            "load",
            format!(
                "{asked} queries asked at {:.0}/s over {load_seconds:.1} s; chat published {published} at {:.0}/s, ingest-chat applied {:.0}/s during the window ({} batches, avg {:.0} events/batch, {:.0} commits/s), all {} applied {caught_up_after:.1} s after the window{}",
                asked as f64 / load_seconds,
                published as f64 / load_seconds,
                chat_rate,
                end.batches - before.batches,
                (end.applied - before.applied) as f64 / (end.batches - before.batches).max(1) as f64,
                (end.batches - before.batches) as f64 / load_seconds,
                last.applied - before.applied,
                if last.applied < target { " (NOT caught up)" } else { "" },
            ),
        );
        s.note(
            "database",
            format!(
                "{} users, {messages_before} counted messages when the load started, {messages_after} after ({} batches in all)",
                sizes.users, last.batches - before.batches
            ),
        );
        s.figure(
            "chat ingest during the query load",
            format!("{chat_rate:.0} events/s"),
            &format!("keeps up with the {chat_target:.0}/s published"),
            Some(chat_rate >= 0.95 * chat_target),
        );
    }
}

/// `n` GET `path` over loopback, `gap` apart: sorted times in ms (answers 200 only) and the
/// last body's size.
pub(crate) async fn http_times(port: u16, path: &str, n: usize, gap: Duration) -> (Vec<f64>, usize) {
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
