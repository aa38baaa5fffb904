//! Kryten lifecycle citizenship (01-wire.md §5): every function announces itself on
//! `kryten.lifecycle.{service}.startup`, sends a heartbeat every 30 s, says goodbye on
//! `…shutdown` (heartbeat interval: config `heartbeat_seconds`, default 30), answers `kryten.service.discovery.poll` and re-announces when the bridge
//! (`kryten.lifecycle.robot.startup`) starts. `{service}` is the function's micro service
//! name (`userstats-ingest-chat`...), so the bridge lists each function; `metadata.group`
//! is `userstats` for tools that want the product as one.

use super::{now_ms, service::hostname, Function};
use crate::wire::format_timestamp;
use futures::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The running announcer; [`Lifecycle::stop`] publishes the shutdown message.
pub struct Lifecycle {
    client: async_nats::Client,
    function: Function,
    metrics_port: u16,
    started: Instant,
    task: tokio::task::JoinHandle<()>,
}

/// Where a function's announcements point and how often they repeat.
#[derive(Clone, Copy)]
pub struct Settings {
    pub metrics_port: u16,
    pub heartbeat: Duration,
}

impl Lifecycle {
    /// Publishes startup and keeps announcing in the background.
    pub async fn start(client: &async_nats::Client, function: Function, settings: Settings) -> Lifecycle {
        let started = Instant::now();
        let metrics_port = settings.metrics_port;
        let me = Announcer { client: client.clone(), function, metrics_port, started, heartbeat: settings.heartbeat };
        me.publish("startup").await;
        let task = tokio::spawn(async move { me.run().await });
        Lifecycle { client: client.clone(), function, metrics_port, started, task }
    }

    /// Publishes the shutdown message and stops announcing.
    pub async fn stop(&self) {
        self.task.abort();
        let me = Announcer {
            client: self.client.clone(),
            function: self.function,
            metrics_port: self.metrics_port,
            started: self.started,
            heartbeat: Duration::ZERO,
        };
        me.publish("shutdown").await;
        let _ = self.client.flush().await;
    }
}

struct Announcer {
    client: async_nats::Client,
    function: Function,
    metrics_port: u16,
    started: Instant,
    heartbeat: Duration,
}

impl Announcer {
    fn payload(&self) -> Value {
        let endpoint = |path: &str| json!({"port": self.metrics_port, "path": path});
        json!({
            "service": self.function.service_name(),
            "version": self.function.version,
            "hostname": hostname(),
            "timestamp": format_timestamp(now_ms()),
            "uptime_seconds": self.started.elapsed().as_secs(),
            "metadata": {
                "group": "userstats",
                "function": self.function.name,
                "endpoints": {"metrics": endpoint("/metrics"), "health": endpoint("/health")},
            },
        })
    }

    async fn publish(&self, kind: &str) {
        let subject = format!("kryten.lifecycle.{}.{kind}", self.function.service_name());
        if let Err(e) = self.client.publish(subject, self.payload().to_string().into()).await {
            tracing::debug!(error = %e, "lifecycle {kind} not published");
        }
    }

    async fn run(self) {
        let polls = self.client.subscribe("kryten.service.discovery.poll").await;
        let robots = self.client.subscribe("kryten.lifecycle.robot.startup").await;
        let (Ok(polls), Ok(robots)) = (polls, robots) else {
            tracing::warn!("cannot subscribe to Kryten discovery subjects; announcing by heartbeat only");
            loop {
                tokio::time::sleep(self.heartbeat).await;
                self.publish("heartbeat").await;
            }
        };
        let mut asks = futures::stream::select(polls, robots);
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + self.heartbeat, self.heartbeat);
        loop {
            tokio::select! {
                _ = beat.tick() => self.publish("heartbeat").await,
                ask = asks.next() => match ask {
                    Some(_) => self.publish("startup").await,
                    None => return,
                },
            }
        }
    }
}
