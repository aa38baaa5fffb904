//! The previous Python service, kryten-userstats 0.7.1 from PyPI, run for real: installed
//! into `.tools/py-userstats` by `scripts/python-reference` (scripts/test's tools phase runs
//! it), started as `<venv python> -m userstats --config cfg.json` against a test
//! nats-server, fed with core NATS publishes as the bridge does, stopped with SIGTERM. Its
//! SQLite file is then a real 0.7.1 database (tests/tests/import_v0/ imports it).
//!
//! What the service does (its source, `userstats/main.py`): kryten-py subscribes to
//! `kryten.events.cytube.<channel lowercased, dots removed>.>` and handles one message at a
//! time, each statement on its own SQLite connection and commit; it is ready when it answers
//! `system.ping` on `kryten.userstats.command` (its last subscription). Population snapshots
//! come every `snapshots.interval_seconds`.

use crate::{free_port, workspace, TempDir};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The venv's python (`scripts/python-reference` prints it), `$KRYTEN_PYTHON_REFERENCE` if set.
pub fn python() -> Result<PathBuf> {
    let path = match std::env::var_os("KRYTEN_PYTHON_REFERENCE") {
        Some(p) => PathBuf::from(p),
        None => workspace().join(".tools/py-userstats/bin/python"),
    };
    if !path.exists() {
        bail!(
            "the Python reference service is not installed ({} missing): run scripts/python-reference (scripts/test does)",
            path.display()
        );
    }
    Ok(path)
}

/// Creates an empty kryten-userstats 0.7.1 database at `db` with the service's own
/// `StatsDatabase.initialize()` (its 13 tables, indexes, WAL mode).
pub fn init_database(db: &str) -> Result<()> {
    let script = "import asyncio, logging, sys\nfrom userstats.database import StatsDatabase\n\
                  asyncio.run(StatsDatabase(sys.argv[1], logging.getLogger('init')).initialize())\n";
    let out = Command::new(python()?).args(["-c", script, db]).output().context("run the Python reference")?;
    if !out.status.success() {
        bail!("kryten-userstats 0.7.1 could not create {db}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// The service running as a child process: SIGTERM (it shuts down cleanly), then kill, when
/// stopped or dropped.
pub struct PythonService {
    child: Option<Child>,
    pub log: PathBuf,
    pub db: String,
}

impl PythonService {
    /// Starts the service for `channel` (domain cytu.be) on `nats_url` with its database at
    /// `db`; `extra` is merged into its JSON config (e.g. `{"snapshots": {...}}`). Returns
    /// once it answers `system.ping`.
    pub async fn start(dir: &TempDir, nats_url: &str, channel: &str, db: &str, extra: Value) -> Result<PythonService> {
        let mut config = json!({
            "nats": {"servers": [nats_url]},
            "channels": [{"domain": "cytu.be", "channel": channel}],
            "service": {"name": "userstats"},
            "database": {"path": db},
            "metrics": {"port": free_port()},
        });
        if let (Some(c), Value::Object(e)) = (config.as_object_mut(), extra) {
            c.extend(e);
        }
        let path = dir.file("python-config.json");
        std::fs::write(&path, config.to_string()).context("write the Python service's config")?;
        let log = dir.path().join("kryten-userstats.log");
        let out = std::fs::File::create(&log).context("log file")?;
        let err = out.try_clone().context("log file")?;
        let child = Command::new(python()?)
            .args(["-m", "userstats", "--config", &path, "--log-level", "INFO"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .context("start the Python service")?;
        let mut service = PythonService { child: Some(child), log, db: db.to_string() };
        let client = async_nats::connect(nats_url).await.context("connect to nats")?;
        let started = Instant::now();
        loop {
            service.check_alive()?;
            if service.command(&client, json!({"command": "system.ping"})).await.is_ok() {
                return Ok(service);
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!(
                    "the Python service did not answer system.ping within 30 s; its log ends:\n{}",
                    service.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends a command on `kryten.userstats.command`; its answer.
    pub async fn command(&self, client: &async_nats::Client, mut body: Value) -> Result<Value> {
        body["service"] = json!("userstats");
        let answer = tokio::time::timeout(
            Duration::from_millis(2000),
            client.request("kryten.userstats.command", body.to_string().into()),
        )
        .await
        .context("no answer")??;
        Ok(serde_json::from_slice(&answer.payload)?)
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Its whole log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(c) = self.child.as_mut() {
            if let Some(status) = c.try_wait()? {
                bail!("the Python service exited ({status}); its log ends:\n{}", self.log_tail());
            }
        }
        Ok(())
    }

    /// SIGTERM and wait (up to 10 s, then kill).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for PythonService {
    fn drop(&mut self) {
        self.stop();
    }
}
