//! Test support for the end-to-end tests: a real `nats-server -js` on a free port with its
//! own temp dir, the real function binaries as child processes, the bridge's fixtures, and
//! envelopes built like the bridge builds them. Everything is killed when dropped.
//!
//! The function binaries are taken from `target/debug` (build them first: `scripts/test`
//! does `cargo build --workspace --bins`); `nats-server` from `$NATS_SERVER_BIN`, else
//! `.tools/venv/bin/nats-server`, else `PATH`.

pub mod traffic;

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
    let text = format!(
        "ignore_users = [\"KrytenBot\"]\n{extra}\n[nats]\nservers = [\"{nats_url}\"]\n[database]\npath = \"{db}\"\n{ingest}{retention}"
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// One fixture line: the subject and the raw message body.
pub struct Fixture {
    pub subject: String,
    pub data: String,
}

/// The bridge's fixture files in `../shared/fixtures/` (beside the checkout).
pub fn fixtures(name: &str) -> Vec<Fixture> {
    let path = workspace().join("../shared/fixtures").join(name);
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

/// Opens the test database for reading.
pub async fn open_store(path: &str) -> shared::store::Store {
    shared::store::Store::open(path, Duration::from_secs(5)).await.expect("open store")
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

/// One test's world: a nats-server, a temp dir, a database file and a config for them.
pub struct Rig {
    pub nats: NatsServer,
    pub dir: TempDir,
    pub db: String,
    pub config: String,
}

impl Rig {
    /// `extra_toml` goes into the config file (top-level keys first, then tables).
    pub fn new(tag: &str, extra_toml: &str) -> Rig {
        let nats = NatsServer::start();
        let dir = TempDir::new(tag);
        let db = dir.file("userstats.db");
        let config = write_config(&dir, &nats.url(), &db, extra_toml);
        Rig { nats, dir, db, config }
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
}

/// The ingest function that consumes an event subject.
pub fn owner(subject: &str) -> &'static str {
    match subject.rsplit('.').next().unwrap_or("") {
        "chatmsg" | "pm" => "ingest-chat",
        "adduser" | "userleave" | "setafk" | "setusermeta" | "userlist" | "usercount" => "ingest-presence",
        _ => "ingest-media",
    }
}

/// All of a function's durable `rejected_*` counters added up.
pub async fn rejected_total(store: &shared::store::Store, function: &str) -> i64 {
    let counters = store.counters(function).await.unwrap_or_default();
    counters.iter().filter(|(k, _)| k.starts_with("rejected_")).map(|(_, v)| v).sum()
}
