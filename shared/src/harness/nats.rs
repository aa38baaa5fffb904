//! Connecting to NATS: servers, user/password, token, creds file, TLS; reconnects forever
//! once connected. An unreachable server at start is retried (with a log line per attempt,
//! for `nats.connect_timeout_seconds`, then an error); wrong credentials or a broken TLS
//! setup fail at once with one clear line. Secrets are never logged.

use crate::config::NatsConfig;
use anyhow::{bail, Context, Result};
use async_nats::{ConnectErrorKind, ConnectOptions};
use std::time::{Duration, Instant};

pub async fn connect(cfg: &NatsConfig, client_name: &str) -> Result<async_nats::Client> {
    let servers: Vec<async_nats::ServerAddr> = cfg
        .servers
        .iter()
        .map(|s| s.parse().with_context(|| format!("nats.servers: {s:?} is not a NATS URL")))
        .collect::<Result<_>>()?;
    let shown = cfg.servers.iter().map(|s| redact_url(s)).collect::<Vec<_>>().join(", ");
    let deadline = Instant::now() + Duration::from_secs(cfg.connect_timeout_seconds.max(1));
    let mut delay = Duration::from_millis(100);
    loop {
        match options(cfg, client_name)?.connect(servers.clone()).await {
            Ok(client) => {
                tracing::info!(servers = %shown, "connected to NATS");
                return Ok(client);
            }
            Err(e) => match e.kind() {
                ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
                    bail!("NATS at {shown} refused our credentials ({e}): check nats.user/password, nats.token or nats.creds_file")
                }
                // rustls reports an untrusted certificate as an I/O error: not worth retrying.
                _ if e.kind() == ConnectErrorKind::Tls || e.to_string().contains("certificate") => {
                    bail!("TLS with NATS at {shown} failed ({e}): check nats.tls_ca/tls_cert/tls_key and that the server speaks TLS")
                }
                ConnectErrorKind::ServerParse => bail!("nats.servers {shown}: {e}"),
                _ if Instant::now() >= deadline => {
                    bail!("cannot reach NATS at {shown} ({e}) after {}s: is nats-server running? (scripts/run starts one)", cfg.connect_timeout_seconds)
                }
                _ => {
                    tracing::warn!(servers = %shown, error = %e, "NATS not reachable yet; retrying in {:?}", delay);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            },
        }
    }
}

fn options(cfg: &NatsConfig, client_name: &str) -> Result<ConnectOptions> {
    let mut o = ConnectOptions::new()
        .name(client_name)
        .connection_timeout(Duration::from_secs(3))
        .request_timeout(Some(Duration::from_secs(5)))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Disconnected => tracing::warn!("disconnected from NATS; reconnecting"),
                async_nats::Event::Connected => tracing::info!("(re)connected to NATS"),
                async_nats::Event::SlowConsumer(_) => tracing::warn!("NATS reports us as a slow consumer"),
                other => tracing::debug!("NATS event: {other}"),
            }
        });
    if !cfg.user.is_empty() {
        o = o.user_and_password(cfg.user.clone(), cfg.password.clone());
    }
    if !cfg.token.is_empty() {
        o = o.token(cfg.token.clone());
    }
    if !cfg.creds_file.is_empty() {
        let creds = std::fs::read_to_string(&cfg.creds_file)
            .with_context(|| format!("nats.creds_file {} cannot be read", cfg.creds_file))?;
        o = o.credentials(&creds).context("nats.creds_file is not a valid credentials file")?;
    }
    if !cfg.tls_ca.is_empty() {
        o = o.add_root_certificates(cfg.tls_ca.clone().into());
    }
    if !cfg.tls_cert.is_empty() || !cfg.tls_key.is_empty() {
        o = o.add_client_certificate(cfg.tls_cert.clone().into(), cfg.tls_key.clone().into());
    }
    if cfg.tls_required || !cfg.tls_ca.is_empty() || cfg.servers.iter().any(|s| s.starts_with("tls://")) {
        o = o.require_tls(true);
    }
    Ok(o)
}

/// `nats://user:pass@host` → `nats://***@host`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}***{}", &url[..scheme + 3], &url[at..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_are_redacted() {
        assert_eq!(super::redact_url("nats://u:p@h:4222"), "nats://***@h:4222");
        assert_eq!(super::redact_url("nats://h:4222"), "nats://h:4222");
    }
}
