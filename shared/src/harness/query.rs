//! The request plumbing of the query functions (03-api.md §1), shared by `query-user` and
//! `query-leaderboard`:
//!
//! * registration as a NATS micro service whose endpoints are the function's commands
//!   (endpoint name = command, subject `userstats.query.{command}`, default queue group, so
//!   replicas share the load and `$SRV.INFO`/`$SRV.STATS` list and count every command);
//! * the two other surfaces, answered in one hop by the function that owns the command:
//!   the seed subjects `cytube.query.userstats.{domain}.{command}` and the Kryten command
//!   subject `kryten.userstats.command`. Each function queue-subscribes both in a queue
//!   group of its own (`userstats-seed-user`, `userstats-seed-leaderboard`...), so one
//!   replica of *each* function sees a request: the owner of the command answers it with
//!   the same handler and the same JSON as its micro endpoint; the other one stays silent.
//!   A request that names no known command (unknown, missing, a body that is not JSON) has
//!   no owner: `query-leaderboard` answers it, so it too gets exactly one answer.
//!
//! Failures on the micro surface carry the JSON envelope as body *and* the
//! `Nats-Service-Error`/`Nats-Service-Error-Code` headers (set here: async-nats' own error
//! reply has an empty body). Every request is answered, a panicking handler included.

use super::{run, start_reader, Context, Function};
use crate::api::{self, ApiError, Owner, Params};
use crate::query::{self, Ctx};
use anyhow::{anyhow, Result};
use futures::{FutureExt, StreamExt};
use serde_json::Value;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

/// Database connections per query process: requests run side by side on the runtime's
/// threads instead of queueing behind one connection.
const READERS: usize = 4;

/// Runs a query function to the end: start-up, micro service with the commands `owner`
/// answers, the routers, graceful stop.
pub fn run_query(function: Function, owner: Owner) -> std::process::ExitCode {
    run(function, start_reader, move |ctx| serve(ctx, owner))
}

/// Serves until shutdown.
pub async fn serve(ctx: Context, owner: Owner) -> Result<()> {
    let Context { function, config, client, store, mut shutdown, lifecycle, .. } = ctx;
    let mut stores = Vec::with_capacity(READERS);
    for _ in 1..READERS {
        stores.push(tokio::sync::Mutex::new(store.another().await?));
    }
    stores.push(tokio::sync::Mutex::new(store));
    let q = Arc::new(Ctx {
        config,
        stores,
        client: client.clone(),
        started: Instant::now(),
        stats: Default::default(),
        version: function.version,
        fleet: Default::default(),
        answers: Default::default(),
    });
    let stats_q = q.clone();
    let service = super::service::register_with(&client, function, move || stats_q.stats.to_json()).await?;
    for command in api::COMMANDS.iter().filter(|c| c.owner == owner) {
        let mut endpoint = service
            .endpoint_builder()
            .name(command.name)
            .add(api::micro_subject(command.name))
            .await
            .map_err(|e| anyhow!("cannot add endpoint {}: {e}", command.name))?;
        let q = q.clone();
        tokio::spawn(async move {
            while let Some(request) = endpoint.next().await {
                tokio::spawn(answer_endpoint(q.clone(), command.name, request));
            }
        });
    }
    let mut seed =
        client.queue_subscribe(format!("{}.>", api::SEED_PREFIX), api::queue(api::SEED_QUEUE, owner)).await?;
    let mut commands = client.queue_subscribe(api::COMMAND_SUBJECT, api::queue(api::COMMAND_QUEUE, owner)).await?;
    // Registered and answering: the fleet (this replica included) is asked once a second,
    // rather than in every request that shows its health.
    let fleet_q = q.clone();
    let fleet_task = tokio::spawn(async move {
        loop {
            fleet_q.fleet.refresh(&fleet_q.client).await;
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
    tracing::info!(service = %function.service_name(), "answering queries");
    loop {
        tokio::select! {
            Some(m) = seed.next() => { tokio::spawn(route(q.clone(), owner, m, Surface::Seed)); }
            Some(m) = commands.next() => { tokio::spawn(route(q.clone(), owner, m, Surface::Command)); }
            _ = shutdown.wait() => break,
        }
    }
    let _ = seed.unsubscribe().await;
    let _ = commands.unsubscribe().await;
    fleet_task.abort();
    let _ = service.stop().await;
    lifecycle.stop().await;
    tracing::info!("stopped");
    Ok(())
}

/// Answers one request on a micro endpoint.
async fn answer_endpoint(q: Arc<Ctx>, command: &'static str, request: async_nats::service::Request) {
    let run = AssertUnwindSafe(query::answer(&q, command, &request.message.payload)).catch_unwind();
    let (body, error) = match run.await {
        Ok(answer) => answer,
        Err(_) => {
            let e = ApiError::internal("internal error: the handler failed");
            (api::failure(Some(command), &e.message), Some(e))
        }
    };
    q.stats.answered(command, false, error.is_some());
    let mut headers = async_nats::HeaderMap::new();
    if let Some(e) = &error {
        headers.insert(async_nats::service::NATS_SERVICE_ERROR, one_line(&e.message).as_str());
        headers.insert(async_nats::service::NATS_SERVICE_ERROR_CODE, e.code.to_string().as_str());
    }
    let _ = request.respond_with_headers(Ok(body.to_string().into()), headers).await;
}

/// Header values must stay on one line and short.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect()
}

#[derive(Clone, Copy)]
enum Surface {
    Seed,
    Command,
}

/// Answers one request on the seed or command subject, if this function owns it.
async fn route(q: Arc<Ctx>, owner: Owner, m: async_nats::Message, surface: Surface) {
    let Some(reply) = m.reply.clone() else { return };
    let run = AssertUnwindSafe(routed_answer(&q, owner, &m, surface)).catch_unwind();
    let body = match run.await {
        Ok(Some(body)) => body,
        Ok(None) => return, // the other query function owns it
        Err(_) => api::failure(None, "internal error: the router failed").to_string().into_bytes(),
    };
    q.stats.routed.fetch_add(1, Relaxed);
    let _ = q.client.publish(reply, body.into()).await;
}

/// The answer, when `owner` is the one to give it: the command's owner, or
/// `query-leaderboard` for a request that names no known command.
async fn routed_answer(q: &Ctx, owner: Owner, m: &async_nats::Message, surface: Surface) -> Option<Vec<u8>> {
    let answering =
        |command: Option<&str>| command.and_then(api::lookup).map(|c| c.owner).unwrap_or(Owner::Leaderboard) == owner;
    let (command, params) = match read_request(m, surface) {
        Ok(x) => x,
        Err((command, e)) => {
            return answering(command.as_deref())
                .then(|| api::failure(command.as_deref(), &e.message).to_string().into_bytes())
        }
    };
    if !answering(Some(&command)) {
        return None;
    }
    let (body, error) = query::answer_params(q, &command, &params).await;
    if let Some(known) = api::lookup(&command) {
        q.stats.answered(known.name, true, error.is_some());
    }
    Some(body.to_string().into_bytes())
}

type Refusal = (Option<String>, ApiError);

/// The command and parameters of a routed request, or the refusal to answer.
fn read_request(m: &async_nats::Message, surface: Surface) -> Result<(String, Params), Refusal> {
    match surface {
        Surface::Seed => {
            let rest = m.subject.as_str().strip_prefix(api::SEED_PREFIX).unwrap_or_default().trim_start_matches('.');
            let Some((domain, command)) = api::split_seed(rest) else {
                return Err((None, ApiError::unknown_command(rest)));
            };
            let mut params = Params::parse(&m.payload).map_err(|e| (Some(command.clone()), e))?;
            if api::lookup(&command).is_none() {
                return Err((Some(command.clone()), ApiError::unknown_command(&command)));
            }
            params.0.insert("domain".into(), Value::String(domain.to_lowercase()));
            Ok((command, params))
        }
        Surface::Command => {
            let params = Params::parse(&m.payload).map_err(|e| (None, e))?;
            let command = match params.0.get("command") {
                Some(Value::String(c)) if !c.trim().is_empty() => c.trim().to_string(),
                _ => return Err((None, ApiError::bad_request("Missing 'command' field"))),
            };
            if let Some(service) = params.0.get("service").filter(|s| !s.is_null()) {
                let service = service.as_str().map(str::to_string).unwrap_or_else(|| service.to_string());
                if service != api::SERVICE {
                    let msg = format!("Command intended for '{service}', not '{}'", api::SERVICE);
                    return Err((Some(command), ApiError::bad_request(msg)));
                }
            }
            if api::lookup(&command).is_none() {
                return Err((Some(command.clone()), ApiError::unknown_command(&command)));
            }
            Ok((command, params))
        }
    }
}
