//! The function harness: what every function does the same way.
//!
//! * [`start`]: configuration, logging, NATS connection (with auth and TLS), the database,
//!   signal handling — a [`Context`] ready for the function's own work; [`run`] (and
//!   [`run_ingest`], [`query::run_query`]) is a function's whole `main`: start, work, one
//!   clear line on failure.
//! * [`service`]: registration as a NATS micro service with the function's work counters
//!   in `$SRV.STATS`.
//! * [`lifecycle`]: Kryten lifecycle announcements (startup, heartbeat, shutdown, discovery).
//! * [`batch`]: what a batch transaction leaves behind (durable and in-memory counters)
//!   and how it is retried.
//! * [`lease`]: replicas of an ingest function take turns, in stream order.
//! * [`ingest`]: the durable JetStream consumer loop (or core-NATS queue group) that hands
//!   batches of parsed events to a [`ingest::Handler`] inside one transaction, acked after
//!   commit, idempotent by event id.

pub mod batch;
mod fetch;
pub mod ingest;
pub mod lease;
pub mod lifecycle;
pub mod nats;
pub mod query;
pub mod service;

use crate::config::Config;
use crate::store::Store;
use anyhow::Result;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Who a function is: the name it registers under and what it does.
#[derive(Debug, Clone, Copy)]
pub struct Function {
    /// Short name, e.g. `ingest-chat`; the micro service is `userstats-{name}`.
    pub name: &'static str,
    /// The crate version (`env!("CARGO_PKG_VERSION")`).
    pub version: &'static str,
    pub description: &'static str,
}

impl Function {
    pub fn service_name(&self) -> String {
        format!("userstats-{}", self.name)
    }
}

/// Everything a running function needs.
pub struct Context {
    pub function: Function,
    pub config: Config,
    pub client: async_nats::Client,
    pub store: Store,
    pub stats: Arc<service::WorkStats>,
    pub shutdown: Shutdown,
    /// Kryten lifecycle announcements; `stop()` it last.
    pub lifecycle: lifecycle::Lifecycle,
}

/// Runs an ingest function to the end: start-up, the ingest loop with the handler `make`
/// builds from the configuration, graceful stop. A failure ends the process with one clear
/// line on stderr and exit code 1.
pub fn run_ingest<H, F>(function: Function, make: F) -> ExitCode
where
    H: ingest::Handler,
    F: FnOnce(&Config) -> H,
{
    run(function, start, move |mut ctx| async move {
        let handler = make(&ctx.config);
        ingest::run(&mut ctx, handler).await
    })
}

/// A function's whole `main`: `start` it ([`start`], [`start_reader`] or
/// [`start_without_database`], as much as it needs), then `work` until shutdown. A failure
/// ends the process with one clear line on stderr and exit code 1 (see [`block_on`]).
pub fn run<C, S, SF, W, WF>(function: Function, start: S, work: W) -> ExitCode
where
    S: FnOnce(Function) -> SF,
    SF: Future<Output = Result<C>>,
    W: FnOnce(C) -> WF,
    WF: Future<Output = Result<()>>,
{
    block_on(function, async move { work(start(function).await?).await })
}

/// Runs a function's main future on a multi-threaded runtime and turns its result into an
/// exit code (one `error:` line on failure). Leftover background tasks get 200 ms.
pub fn block_on(function: Function, main: impl Future<Output = Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}: error: cannot start the async runtime: {e}", function.service_name());
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(main);
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: error: {e:#}", function.service_name());
            ExitCode::FAILURE
        }
    }
}

/// Loads the configuration, starts logging, opens the database and connects to NATS.
/// Misconfiguration ends the process with one clear error line (returned as `Err`).
pub async fn start(function: Function) -> Result<Context> {
    start_as(function, false).await
}

/// [`start`] for a function that only reads (queries, metrics): it opens the embedded
/// replica of `database.replica_path` when one is configured.
pub async fn start_reader(function: Function) -> Result<Context> {
    start_as(function, true).await
}

async fn start_as(function: Function, reader: bool) -> Result<Context> {
    let config = Config::from_env_and_args()?;
    init_tracing(config.json_logs);
    tracing::info!(function = function.name, version = function.version, "starting");
    let location = config.database.location(reader)?;
    let name = crate::store::location_name(&location);
    // Its errors name the database and what to check.
    let store = Store::connect(&location, Duration::from_millis(config.database.busy_timeout_ms)).await?;
    tracing::info!(database = %name, "database ready");
    let client = nats::connect(&config.nats, &function.service_name()).await?;
    let announce = lifecycle::Settings {
        metrics_port: config.metrics.port,
        heartbeat: Duration::from_secs(config.heartbeat_seconds.max(1)),
    };
    let lifecycle = lifecycle::Lifecycle::start(&client, function, announce).await;
    Ok(Context {
        function,
        config,
        client,
        store,
        stats: Arc::new(service::WorkStats::default()),
        shutdown: Shutdown::install(),
        lifecycle,
    })
}

/// What a function that reads only through NATS needs (the stats site): no database.
pub struct Connected {
    pub function: Function,
    pub config: Config,
    pub client: async_nats::Client,
    pub shutdown: Shutdown,
    /// Kryten lifecycle announcements; `stop()` it last.
    pub lifecycle: lifecycle::Lifecycle,
}

/// [`start`] without the database: configuration, logging, NATS, lifecycle, signals.
pub async fn start_without_database(function: Function) -> Result<Connected> {
    let config = Config::from_env_and_args()?;
    init_tracing(config.json_logs);
    tracing::info!(function = function.name, version = function.version, "starting");
    let client = nats::connect(&config.nats, &function.service_name()).await?;
    let announce = lifecycle::Settings {
        metrics_port: config.metrics.port,
        heartbeat: Duration::from_secs(config.heartbeat_seconds.max(1)),
    };
    let lifecycle = lifecycle::Lifecycle::start(&client, function, announce).await;
    Ok(Connected { function, config, client, shutdown: Shutdown::install(), lifecycle })
}

/// `RUST_LOG` controls the level (default `info`).
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: log files and journald get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// Set once SIGINT or SIGTERM arrives; loops check it between batches.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    fn install() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("stop requested: finishing the current batch");
            let _ = tx.send(true);
        });
        Shutdown(rx)
    }

    /// A shutdown that never fires (tests that drive a loop themselves).
    pub fn never() -> (watch::Sender<bool>, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (tx, Shutdown(rx))
    }

    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes when shutdown has been requested.
    pub async fn wait(&mut self) {
        while !*self.0.borrow_and_update() {
            if self.0.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Milliseconds since the epoch by the wall clock (used only for bookkeeping such as
/// pruning and live session time, never for event time).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
