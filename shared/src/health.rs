//! Health of the function set, computed one way for both `system.health` (query-leaderboard)
//! and `GET /health` (metrics), so the two always agree.
//!
//! Healthy = the database answers, NATS is connected, and each core function
//! ([`EXPECTED_FUNCTIONS`]) has at least one replica answering `$SRV.*`. Other functions
//! (bootstrap-kv, metrics, web) are listed when running but are optional.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Functions a complete deployment runs; a missing one makes the health `degraded`.
pub const EXPECTED_FUNCTIONS: &[&str] =
    &["ingest-chat", "ingest-presence", "ingest-media", "query-user", "query-leaderboard"];

/// How long a `$SRV.STATS` scatter collects replies.
pub const SCATTER_WINDOW: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Default)]
pub struct Health {
    pub database_connected: bool,
    pub nats_connected: bool,
    /// Short function name (`ingest-chat`) → running replicas.
    pub replicas: BTreeMap<String, u64>,
}

impl Health {
    /// Reads the replicas from `$SRV.STATS` (or `$SRV.PING`) replies.
    pub fn from_replies(database_connected: bool, nats_connected: bool, replies: &[Value]) -> Health {
        let mut replicas = BTreeMap::new();
        for r in replies {
            if let Some(name) = r["name"].as_str().and_then(|n| n.strip_prefix("userstats-")) {
                *replicas.entry(name.to_string()).or_default() += 1;
            }
        }
        Health { database_connected, nats_connected, replicas }
    }

    pub fn healthy(&self) -> bool {
        self.database_connected
            && self.nats_connected
            && EXPECTED_FUNCTIONS.iter().all(|f| self.replicas.get(*f).copied().unwrap_or(0) > 0)
    }

    /// `{name: {replicas, ok}}` for the expected functions and any other one running.
    pub fn functions(&self) -> Value {
        let mut out = Map::new();
        for f in EXPECTED_FUNCTIONS {
            let n = self.replicas.get(*f).copied().unwrap_or(0);
            out.insert(f.to_string(), json!({"replicas": n, "ok": n > 0}));
        }
        for (f, n) in &self.replicas {
            out.entry(f.clone()).or_insert_with(|| json!({"replicas": n, "ok": true}));
        }
        Value::Object(out)
    }

    /// The answer of `system.health` and `/health` (the latter adds nothing but `database`).
    pub fn to_json(&self, uptime_seconds: u64) -> Value {
        json!({
            "service": "userstats",
            "status": if self.healthy() { "healthy" } else { "degraded" },
            "uptime_seconds": uptime_seconds,
            "database_connected": self.database_connected,
            "database": if self.database_connected { "connected" } else { "unavailable" },
            "nats_connected": self.nats_connected,
            "functions": self.functions(),
        })
    }
}

pub fn nats_connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}
