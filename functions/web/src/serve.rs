//! The running function: listen, register `userstats-web` (with its `status` endpoint and
//! the HTTP figures as `$SRV.STATS` data), serve connections until shutdown.

use crate::http::{self, Read};
use crate::site::Site;
use crate::source::Source;
use anyhow::{anyhow, Result};
use futures::FutureExt;
use shared::harness::{service, Connected, Function};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// How long the site waits for one query answer.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Open connections allowed per concurrent request (idle keep-alive connections included).
const CONNECTIONS_PER_REQUEST: usize = 4;

pub async fn run(c: Connected) -> Result<()> {
    let Connected { function, mut config, client, mut shutdown, lifecycle } = c;
    let (bind, port) = (config.web.bind.clone(), config.web.port);
    let listener = TcpListener::bind((bind.as_str(), port))
        .await
        .map_err(|e| anyhow!("cannot listen on {bind}:{port} ({e}): set web.bind and web.port to a free address"))?;
    // Port 0 asks for any free port: the one we got is what the metadata and log say.
    let local = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| format!("{bind}:{port}"));
    config.web.port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    let requests = Arc::new(Semaphore::new(config.web.max_concurrent_requests));
    let connections = Arc::new(Semaphore::new(config.web.max_concurrent_requests * CONNECTIONS_PER_REQUEST));
    let site = Arc::new(Site::new(Source::new(client.clone(), QUERY_TIMEOUT), config));
    let service = register(&client, function, site.clone()).await?;
    tracing::info!("serving http://{local}/");
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                match connections.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let (site, requests) = (site.clone(), requests.clone());
                        tokio::spawn(async move {
                            connection(stream, site, requests).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        let site = site.clone();
                        tokio::spawn(async move { refuse(stream, &site).await });
                    }
                }
            }
            _ = shutdown.wait() => break,
        }
    }
    let _ = service.stop().await;
    lifecycle.stop().await;
    tracing::info!("stopped");
    Ok(())
}

/// Too many connections: a short 503 and close.
async fn refuse(mut stream: TcpStream, site: &Site) {
    let r = site.error(503, "Too many connections; try again shortly.", false);
    let _ = http::write(&mut stream, &http::encode(&r, false, true)).await;
    site.stats.record(503, Duration::ZERO);
}

/// Serves the requests of one connection (keep-alive) until it closes or misbehaves.
async fn connection(mut stream: TcpStream, site: Arc<Site>, requests: Arc<Semaphore>) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(1024);
    let mut idle = http::HEAD_TIMEOUT;
    loop {
        let req = match http::read_head(&mut stream, &mut buf, idle).await {
            Read::Head(r) => r,
            Read::Refused(e) => {
                let r = site.error(e.status(), "Bad request.", false);
                let _ = http::write(&mut stream, &http::encode(&r, false, true)).await;
                site.stats.record(e.status(), Duration::ZERO);
                return;
            }
            Read::Gone => return,
        };
        let started = Instant::now();
        let response = match requests.try_acquire() {
            Ok(_permit) => match AssertUnwindSafe(site.handle(&req)).catch_unwind().await {
                Ok(r) => r,
                Err(_) => site.error(500, "Internal error.", false),
            },
            Err(_) => site.error(503, "Busy; try again shortly.", false),
        };
        let keep = req.keep_alive() && response.status < 500;
        let ok = http::write(&mut stream, &http::encode(&response, keep, req.method != "HEAD")).await;
        site.stats.record(response.status, started.elapsed());
        if !ok || !keep {
            return;
        }
        idle = http::IDLE_TIMEOUT;
    }
}

/// Registers the micro service: `$SRV.STATS` data and the `status` endpoint both answer the
/// site's HTTP figures.
async fn register(
    client: &async_nats::Client,
    function: Function,
    site: Arc<Site>,
) -> Result<async_nats::service::Service> {
    let stats_site = site.clone();
    let service = service::register_with(client, function, move || stats_site.stats.to_json()).await?;
    service::add_status_endpoint_with(&service, function, move || site.stats.to_json()).await?;
    Ok(service)
}
