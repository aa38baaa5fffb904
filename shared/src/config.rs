//! The one configuration file every function reads.
//!
//! Sources, later ones winning:
//! 1. built-in defaults that work on a laptop (`Config::default()`);
//! 2. a TOML (or JSON, by extension) file: `--config PATH`, else `$USERSTATS_CONFIG`,
//!    else `userstats.toml` in the working directory if it exists;
//! 3. `USERSTATS_<SECTION>_<KEY>` environment variables, e.g.
//!    `USERSTATS_NATS_SERVERS=nats://a:4222,nats://b:4222` or `USERSTATS_DATABASE_PATH=/var/lib/x.db`.
//!    Lists are comma separated; numbers and booleans are parsed by the type of the key.
//!
//! String values in the file may contain `${VAR}` (expanded from the environment, empty if
//! unset) so that secrets stay out of the file.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub nats: NatsConfig,
    pub database: DatabaseConfig,
    /// Channels to follow. Empty: every channel seen on the bus.
    pub channels: Vec<ChannelConfig>,
    /// Senders that never appear in any statistic (the bridge's own bot goes here).
    /// `[server]` is always ignored.
    pub ignore_users: Vec<String>,
    pub ingest: IngestConfig,
    pub kudos: KudosConfig,
    pub snapshots: SnapshotConfig,
    pub retention: RetentionConfig,
    pub metrics: MetricsConfig,
    pub bootstrap: BootstrapConfig,
    pub web: WebConfig,
    /// Whether alias/phrase changing commands are accepted.
    /// Default true: a dev setup listens on loopback only. Set false on a shared bus.
    pub admin_commands: bool,
    /// Emit logs as JSON lines instead of text.
    pub json_logs: bool,
    /// Seconds between Kryten lifecycle heartbeats (`kryten.lifecycle.{service}.heartbeat`).
    pub heartbeat_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    pub servers: Vec<String>,
    pub user: String,
    pub password: String,
    pub token: String,
    pub creds_file: String,
    /// PEM file of a CA to trust (self-signed servers).
    pub tls_ca: String,
    pub tls_cert: String,
    pub tls_key: String,
    pub tls_required: bool,
    /// Seconds to keep trying the first connection before giving up with an error.
    pub connect_timeout_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Local database file (created with its directory if missing). Used when `url` is
    /// empty.
    pub path: String,
    /// Where the database is, when not the local `path`: a file path, or the URL of a libSQL
    /// server (`http://`, `https://`, `libsql://`; sqld or Turso). Every function of every
    /// host then shares that server: same migrations, one remote transaction per batch.
    pub url: String,
    /// Bearer token for the libSQL server (`${VAR}` keeps it out of the file).
    pub auth_token: String,
    /// Query and metrics functions only, with a server `url`: a local file kept as an
    /// embedded replica of the server, so reads stay local; writes still go to the server.
    /// Each process needs its own file (a second process on the same file fails at start).
    pub replica_path: String,
    /// How often an embedded replica pulls new writes from the server.
    pub sync_interval_ms: u64,
    /// How long one attempt waits for another writer inside SQLite before the function's own
    /// back-off takes over (which keeps the events alive and logs once). Short on purpose:
    /// the wait blocks a runtime thread.
    pub busy_timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelConfig {
    pub domain: String,
    pub channel: String,
}

/// How ingest functions receive events (`ingest.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum IngestMode {
    /// A durable JetStream consumer: nothing lost while a function restarts.
    Jetstream,
    /// A core-NATS queue-group subscription, for servers without JetStream.
    Core,
}

impl TryFrom<String> for IngestMode {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<Self, String> {
        match s.as_str() {
            "jetstream" => Ok(IngestMode::Jetstream),
            "core" => Ok(IngestMode::Core),
            _ => Err(format!("ingest.mode is {s:?}: use \"jetstream\" or \"core\"")),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// `jetstream` (durable, default) or `core` (queue-group subscription, for servers
    /// without JetStream; events published while no replica runs are lost).
    pub mode: IngestMode,
    /// The stream capturing `kryten.events.cytube.>`; an existing stream covering those
    /// subjects is used whatever its name.
    pub stream: String,
    pub stream_max_age_hours: u64,
    pub stream_max_bytes: i64,
    /// Copies of the stream a NATS cluster keeps (1 on a single server; 3 on a 3-node
    /// cluster, so the stream survives losing a node). Used when the stream is created.
    pub stream_replicas: usize,
    /// Most events applied in one transaction. A batch takes what is waiting, so a quiet
    /// channel commits event by event; a backlog is applied 10,000 at a time by default:
    /// each commit costs about as much as a few thousand events, and the bench measured
    /// 2,000 → 10,000 at 1.25× consumption and 1.2× on a libSQL server.
    pub batch_max: usize,
    /// Seconds before an event handed to a replica that died is handed out again.
    pub ack_wait_seconds: u64,
    /// How long chat waits for presence/media when they make no progress at all (down, or a
    /// replica taking over) before applying a batch without them (`late`). While they make
    /// progress — a backlog, a slow database server — chat waits for them however long.
    pub dependency_wait_ms: u64,
    /// Longest believable session; longer durations are clamped and counted.
    pub max_session_days: u64,
    /// The CPU priority (Unix nice, 0..19) ingest functions lower themselves to, so that
    /// on a shared machine a query never waits behind a batch: ingest catches up in the
    /// time queries leave (events wait safely in the stream), answers stay fast. 0 keeps
    /// the priority it was started with.
    pub nice: i32,
    /// Page cache of an ingest function's database connection, in MiB (SQLite's default is
    /// 2). A batch of thousands of events over a large database dirties thousands of pages:
    /// with too small a cache they are spilled and read back in the middle of the batch.
    pub cache_mib: u32,
    /// Ingest pulls a batch and acks it in groups of this many messages with a 1 ms pause
    /// between groups, as long as the pauses take at most 5% of its time (a steady stream
    /// up to ~12,500 events/s at 500). Thousands of messages or acks at once keep the NATS
    /// server busy for tens of milliseconds, and every query on the machine waits behind
    /// them. A backlog or a flood goes at full speed. 0 = whole batches at once.
    pub pace_chunk: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KudosConfig {
    /// Trigger phrases seeded into the database when its phrase table is empty.
    pub default_phrases: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotConfig {
    pub interval_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days to keep append-only rows (population snapshots, media log, hourly buckets).
    pub days: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub port: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapConfig {
    pub resync_seconds: u64,
}

/// The `web` function: the stats site (HTTP, server-rendered pages).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// HTTP port (0: any free port, logged at start).
    pub port: u16,
    /// Address to listen on; loopback by default (put a reverse proxy in front, see
    /// deploy/Caddyfile). `0.0.0.0` listens everywhere.
    pub bind: String,
    /// Show emote images beside emote names: the URLs the bridge listed, `https:` only
    /// (the Content-Security-Policy's `img-src` then allows `https:`). Off by default: the
    /// images load from third-party hosts, which then see the visitors.
    pub show_emote_images: bool,
    /// Seconds a rendered page is served from memory before it is asked for again.
    pub cache_seconds: u64,
    /// Requests handled at once; more get `503` with `Retry-After`.
    pub max_concurrent_requests: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nats: NatsConfig::default(),
            database: DatabaseConfig::default(),
            channels: Vec::new(),
            ignore_users: Vec::new(),
            ingest: IngestConfig::default(),
            kudos: KudosConfig::default(),
            snapshots: SnapshotConfig::default(),
            retention: RetentionConfig::default(),
            metrics: MetricsConfig::default(),
            bootstrap: BootstrapConfig::default(),
            web: WebConfig::default(),
            admin_commands: true,
            json_logs: false,
            heartbeat_seconds: 30,
        }
    }
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            servers: vec!["nats://127.0.0.1:4222".into()],
            user: String::new(),
            password: String::new(),
            token: String::new(),
            creds_file: String::new(),
            tls_ca: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            tls_required: false,
            connect_timeout_seconds: 10,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            path: "data/userstats.db".into(),
            url: String::new(),
            auth_token: String::new(),
            replica_path: String::new(),
            sync_interval_ms: 1000,
            busy_timeout_ms: 250,
        }
    }
}

/// Where a function's database is, decided from `[database]` (see [`DatabaseConfig`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local file shared by the processes of one host.
    File { path: String },
    /// A libSQL server: every read and write goes over its HTTP protocol.
    Remote { url: String, token: String },
    /// A local embedded replica of a libSQL server: reads local, writes to the server.
    Replica { path: String, url: String, token: String, sync_interval: std::time::Duration },
}

impl DatabaseConfig {
    /// Where the database is for a function that may (`reader`) or may not read from an
    /// embedded replica. Fails with one clear line on a contradictory `[database]`.
    pub fn location(&self, reader: bool) -> Result<Location> {
        let url = self.url.trim();
        let remote = ["http://", "https://", "libsql://"].iter().any(|s| url.to_ascii_lowercase().starts_with(s));
        if !remote {
            if url.contains("://") {
                bail!("database.url {url:?} is neither a file path nor an http://, https:// or libsql:// URL");
            }
            if !self.replica_path.is_empty() {
                bail!(
                    "database.replica_path needs database.url to name a libSQL server (http://, https:// or libsql://)"
                );
            }
            let path = url.strip_prefix("file:").unwrap_or(url);
            let path = if path.is_empty() { self.path.as_str() } else { path };
            if path.is_empty() {
                bail!("database.path is empty: give a file path, or database.url for a libSQL server");
            }
            return Ok(Location::File { path: path.to_string() });
        }
        let (url, token) = (url.to_string(), self.auth_token.clone());
        if reader && !self.replica_path.is_empty() {
            if self.sync_interval_ms == 0 {
                bail!("database.sync_interval_ms must be at least 1 with a replica_path");
            }
            let sync_interval = std::time::Duration::from_millis(self.sync_interval_ms);
            return Ok(Location::Replica { path: self.replica_path.clone(), url, token, sync_interval });
        }
        Ok(Location::Remote { url, token })
    }
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig { domain: "cytu.be".into(), channel: String::new() }
    }
}

impl IngestConfig {
    /// The longest believable session in ms (`max_session_days`, at least one day): longer
    /// durations are clamped, by ingest-presence when closing and by queries showing an
    /// open session live.
    pub fn max_session_ms(&self) -> i64 {
        (self.max_session_days.max(1) as i64).saturating_mul(86_400_000)
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            mode: IngestMode::Jetstream,
            stream: "KRYTEN_EVENTS".into(),
            stream_max_age_hours: 72,
            stream_max_bytes: 1 << 30,
            stream_replicas: 1,
            batch_max: 10_000,
            ack_wait_seconds: 10,
            dependency_wait_ms: 2000,
            max_session_days: 7,
            nice: 10,
            cache_mib: 32,
            pace_chunk: 500,
        }
    }
}

impl Default for KudosConfig {
    fn default() -> Self {
        let phrases = ["lol", "rofl", "lmao", "haha", "😂", "🤣", "😆"];
        KudosConfig { default_phrases: phrases.iter().map(|p| p.to_string()).collect() }
    }
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig { interval_seconds: 300 }
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig { days: 365 }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { port: 28282 }
    }
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            port: 28283,
            bind: "127.0.0.1".into(),
            show_emote_images: false,
            cache_seconds: 5,
            max_concurrent_requests: 64,
        }
    }
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig { resync_seconds: 300 }
    }
}

impl Config {
    /// Loads the configuration as described in the module doc, from the process arguments
    /// and environment.
    pub fn from_env_and_args() -> Result<Config> {
        let args: Vec<String> = std::env::args().collect();
        let mut path: Option<PathBuf> = None;
        let mut i = 1;
        while i < args.len() {
            match args[i].as_str() {
                "--config" | "-c" => {
                    let p = args.get(i + 1).context("--config needs a file path")?;
                    path = Some(PathBuf::from(p));
                    i += 1;
                }
                s if s.starts_with("--config=") => path = Some(PathBuf::from(&s[9..])),
                "--help" | "-h" => {
                    println!("usage: {} [--config FILE]\n\nSee README.md and deploy/userstats.example.toml for the keys; USERSTATS_<SECTION>_<KEY> environment variables override them.", args[0]);
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?}: the only option is --config FILE"),
            }
            i += 1;
        }
        if path.is_none() {
            path = match std::env::var("USERSTATS_CONFIG") {
                Ok(p) if !p.is_empty() => Some(PathBuf::from(p)),
                _ => Some(PathBuf::from("userstats.toml")).filter(|p| p.exists()),
            };
        }
        let env: Vec<(String, String)> = std::env::vars().collect();
        Config::load(path.as_deref(), &env)
    }

    /// Loads from an optional file plus the given environment (testable without touching
    /// the process environment).
    pub fn load(path: Option<&Path>, env: &[(String, String)]) -> Result<Config> {
        let mut value = toml::Value::try_from(Config::default())?;
        if let Some(path) = path {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
            let text = expand_vars(&text, env);
            let file: toml::Value = if path.extension().is_some_and(|e| e == "json") {
                let json: serde_json::Value = serde_json::from_str(&text)
                    .with_context(|| format!("config file {} is not valid JSON", path.display()))?;
                toml::Value::try_from(json)?
            } else {
                toml::from_str(&text).with_context(|| format!("config file {} is not valid TOML", path.display()))?
            };
            merge(&mut value, file);
        }
        for (key, raw) in env {
            let Some(rest) = key.strip_prefix("USERSTATS_") else { continue };
            if rest == "CONFIG" {
                continue;
            }
            apply_env(&mut value, &rest.to_ascii_lowercase(), raw)
                .with_context(|| format!("environment variable {key}"))?;
        }
        let config: Config = value.try_into().context("invalid configuration")?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        if self.nats.servers.is_empty() {
            bail!("nats.servers is empty: give at least one URL such as nats://127.0.0.1:4222");
        }
        if !(1..=5).contains(&self.ingest.stream_replicas) {
            bail!("ingest.stream_replicas must be between 1 and 5 (the copies a NATS cluster keeps)");
        }
        if self.ingest.batch_max == 0 || self.ingest.batch_max > 10_000 {
            bail!("ingest.batch_max must be between 1 and 10000");
        }
        if !(1..=4096).contains(&self.ingest.cache_mib) {
            bail!("ingest.cache_mib must be between 1 and 4096");
        }
        if !(0..=19).contains(&self.ingest.nice) {
            bail!("ingest.nice must be between 0 (keep the priority) and 19 (lowest)");
        }
        self.database.location(false)?;
        if self.snapshots.interval_seconds == 0 {
            bail!("snapshots.interval_seconds must be at least 1");
        }
        if self.web.max_concurrent_requests == 0 {
            bail!("web.max_concurrent_requests must be at least 1");
        }
        for c in &self.channels {
            if c.channel.trim().is_empty() {
                bail!("a [[channels]] entry has no channel name");
            }
        }
        Ok(())
    }

    /// The configured domain used when a request names none (first channel's domain).
    pub fn default_domain(&self) -> String {
        self.channels.first().map(|c| c.domain.to_lowercase()).unwrap_or_else(|| "cytu.be".into())
    }

    /// Lowercased names never counted: `[server]` plus `ignore_users`.
    pub fn ignored_users(&self) -> std::collections::HashSet<String> {
        let mut set: std::collections::HashSet<String> =
            self.ignore_users.iter().map(|u| u.trim().to_lowercase()).collect();
        set.insert("[server]".into());
        set
    }
}

/// `${VAR}` → value of VAR in `env` (empty when unset).
fn expand_vars(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        match rest[start + 2..].find('}') {
            Some(end) => {
                let name = &rest[start + 2..start + 2 + end];
                if let Some((_, v)) = env.iter().find(|(k, _)| k == name) {
                    out.push_str(v);
                }
                rest = &rest[start + 3 + end..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Applies `section_key=raw` (already lowercased, without the prefix) to the value tree,
/// typed by the existing default value.
fn apply_env(value: &mut toml::Value, name: &str, raw: &str) -> Result<()> {
    let toml::Value::Table(root) = value else { bail!("config root is not a table") };
    // Top-level keys first (admin_commands, ignore_users, json_logs), then section_key.
    let (table, key) = if root.contains_key(name) {
        (root, name.to_string())
    } else {
        let Some((section, key)) = root
            .iter()
            .filter(|(_, v)| v.is_table())
            .find_map(|(s, _)| name.strip_prefix(&format!("{s}_")).map(|k| (s.clone(), k.to_string())))
        else {
            bail!("no such setting (expected USERSTATS_<SECTION>_<KEY>)");
        };
        let Some(toml::Value::Table(t)) = root.get_mut(&section) else { unreachable!() };
        (t, key)
    };
    let Some(old) = table.get(&key) else { bail!("no such setting {key:?}") };
    let new = match old {
        toml::Value::Integer(_) => {
            toml::Value::Integer(raw.trim().parse().with_context(|| format!("{raw:?} is not a whole number"))?)
        }
        toml::Value::Boolean(_) => toml::Value::Boolean(match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => bail!("{raw:?} is not true/false"),
        }),
        toml::Value::Array(_) if key == "channels" => {
            bail!("channels cannot be set from the environment; use the config file")
        }
        toml::Value::Array(_) => toml::Value::Array(
            raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| toml::Value::String(s.into())).collect(),
        ),
        _ => toml::Value::String(raw.to_string()),
    };
    table.insert(key, new);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_work_without_a_file() {
        let c = Config::load(None, &[]).unwrap();
        assert_eq!(c.nats.servers, vec!["nats://127.0.0.1:4222"]);
        assert_eq!(c.metrics.port, 28282);
        assert!(c.ignored_users().contains("[server]"));
    }

    #[test]
    fn file_then_env_overrides_with_var_expansion() {
        let dir = std::env::temp_dir().join(format!("us-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "ignore_users = [\"KrytenBot\"]\n[nats]\npassword = \"${SECRET}\"\n[[channels]]\nchannel = \"420Grindhouse\"\n",
        )
        .unwrap();
        let e = env(&[
            ("SECRET", "s3cret"),
            ("USERSTATS_NATS_SERVERS", "nats://a:1, nats://b:2"),
            ("USERSTATS_INGEST_BATCH_MAX", "50"),
            ("USERSTATS_ADMIN_COMMANDS", "false"),
        ]);
        let c = Config::load(Some(&path), &e).unwrap();
        assert_eq!(c.nats.password, "s3cret");
        assert_eq!(c.nats.servers, vec!["nats://a:1", "nats://b:2"]);
        assert_eq!(c.ingest.batch_max, 50);
        assert!(!c.admin_commands);
        assert_eq!(c.channels[0].domain, "cytu.be");
        assert_eq!(c.default_domain(), "cytu.be");
    }

    #[test]
    fn mistakes_fail_with_a_clear_message() {
        let e = env(&[("USERSTATS_INGEST_BATCH_MAX", "lots")]);
        let err = format!("{:#}", Config::load(None, &e).unwrap_err());
        assert!(err.contains("USERSTATS_INGEST_BATCH_MAX"), "{err}");
        let e = env(&[("USERSTATS_NOPE_X", "1")]);
        assert!(Config::load(None, &e).is_err());
        let e = env(&[("USERSTATS_INGEST_MODE", "kafka")]);
        assert!(format!("{:#}", Config::load(None, &e).unwrap_err()).contains("ingest.mode"));
    }

    #[test]
    fn database_location_from_path_url_and_replica() {
        let loc = |pairs: &[(&str, &str)], reader: bool| {
            Config::load(None, &env(pairs)).and_then(|c| c.database.location(reader)).map_err(|e| format!("{e:#}"))
        };
        assert_eq!(loc(&[], false), Ok(Location::File { path: "data/userstats.db".into() }));
        assert_eq!(
            loc(&[("USERSTATS_DATABASE_URL", "file:/x/a.db")], true),
            Ok(Location::File { path: "/x/a.db".into() })
        );
        let remote = [("USERSTATS_DATABASE_URL", "http://127.0.0.1:8080"), ("USERSTATS_DATABASE_AUTH_TOKEN", "t")];
        assert_eq!(loc(&remote, true), Ok(Location::Remote { url: "http://127.0.0.1:8080".into(), token: "t".into() }));
        let mut replica = remote.to_vec();
        replica.push(("USERSTATS_DATABASE_REPLICA_PATH", "/r/q.db"));
        assert!(matches!(loc(&replica, true), Ok(Location::Replica { .. })));
        // Writers ignore the replica and go to the server.
        assert!(matches!(loc(&replica, false), Ok(Location::Remote { .. })));
        let err = loc(&[("USERSTATS_DATABASE_URL", "postgres://x")], false).unwrap_err();
        assert!(err.contains("neither a file path"), "{err}");
        let err = loc(&[("USERSTATS_DATABASE_REPLICA_PATH", "/r/q.db")], true).unwrap_err();
        assert!(err.contains("replica_path needs database.url"), "{err}");
    }
}
