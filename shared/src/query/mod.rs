//! The query commands of 03-api.md §2, one family per file: what each command reads and the
//! JSON it answers. [`execute`] runs one command; [`Ctx`] is what commands read from.
//!
//! * [`user`] — `user.stats`, `user.profile`, `user.messages`, `user.activity`, `user.kudos`
//! * [`alias`] — `alias.list|get|find|add|delete|update`
//! * [`phrases`] — `kudos.phrases.list|add|remove`
//! * [`channel`] — `channel.top_users|population|media_history|watermarks|movie_votes`,
//!   `stats.global`
//! * [`all_stats`] — `channel.all_stats`
//! * [`leaderboard`] — `leaderboard.messages|kudos|emotes`
//! * [`timeseries`] — `timeseries.messages|kudos`
//! * [`system`] — `system.ping|health|stats`
//! * [`site`] — what the stats site reads: `channel.list|summary|present|chatters|hours`,
//!   `timeseries.daily`, `user.hours`

pub mod alias;
pub mod all_stats;
pub mod channel;
pub mod leaderboard;
pub mod phrases;
pub mod site;
pub mod system;
pub mod timeseries;
pub mod user;

use crate::api::{self, ApiError, Params};
use crate::config::Config;
use crate::store::Store;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;
use tokio::sync::{Mutex, MutexGuard};

const DAY_MS: i64 = 86_400_000;

/// In-process counters of one query replica (shown in `$SRV.STATS` data).
#[derive(Default)]
pub struct QueryStats {
    /// Commands this replica's micro endpoints answered (success or not).
    pub commands_processed: AtomicU64,
    pub errors: AtomicU64,
    /// Requests on the seed and command subjects this replica routed.
    pub routed: AtomicU64,
}

impl QueryStats {
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "commands_processed": self.commands_processed.load(Relaxed),
            "errors": self.errors.load(Relaxed),
            "routed": self.routed.load(Relaxed),
        })
    }
}

/// What the commands read from.
pub struct Ctx {
    pub config: Config,
    /// A few connections to the database (see [`Ctx::store`]); each command holds one for
    /// its few short statements.
    pub stores: Vec<Mutex<Store>>,
    pub client: async_nats::Client,
    pub started: Instant,
    pub stats: QueryStats,
    /// The running crate's version.
    pub version: &'static str,
}

impl Ctx {
    /// A free connection of the pool, or (all busy) the next one to come free in turn.
    pub async fn store(&self) -> MutexGuard<'_, Store> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        if let Some(free) = self.stores.iter().find_map(|s| s.try_lock().ok()) {
            return free;
        }
        let i = NEXT.fetch_add(1, Relaxed) as usize % self.stores.len();
        self.stores[i].lock().await
    }

    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// `domain` parameter (lowercased) or the first configured domain.
    pub fn domain(&self, p: &Params) -> Result<String, ApiError> {
        Ok(p.string("domain")?.map(|d| d.to_lowercase()).unwrap_or_else(|| self.config.default_domain()))
    }

    /// The longest believable session (ms), as ingest-presence clamps.
    pub fn max_session_ms(&self) -> i64 {
        self.config.ingest.max_session_ms()
    }

    /// A channel named in a request (configured name or subject token, any case) → the
    /// stored name; a channel never seen is answered under the name as given.
    pub async fn channel(&self, store: &Store, domain: &str, name: &str) -> Result<String, ApiError> {
        let token = crate::wire::subject_token(name);
        if let Some(c) = store.resolve_channel(domain, name, &token).await? {
            return Ok(c);
        }
        let configured = self.config.channels.iter().find(|c| {
            c.domain.eq_ignore_ascii_case(domain)
                && (c.channel.eq_ignore_ascii_case(name) || crate::wire::subject_token(&c.channel) == token)
        });
        Ok(configured.map(|c| c.channel.clone()).unwrap_or_else(|| name.to_string()))
    }

    /// The required `channel` parameter, resolved.
    pub async fn required_channel(&self, store: &Store, domain: &str, p: &Params) -> Result<String, ApiError> {
        let name = p.string("channel")?.ok_or_else(|| ApiError::bad_request("channel required"))?;
        self.channel(store, domain, &name).await
    }

    /// The optional `channel` parameter, resolved.
    pub async fn optional_channel(&self, store: &Store, domain: &str, p: &Params) -> Result<Option<String>, ApiError> {
        match p.string("channel")? {
            Some(name) => Ok(Some(self.channel(store, domain, &name).await?)),
            None => Ok(None),
        }
    }
}

/// Runs one command (known to the table) with its parameters; `Ok` is the answer's `data`.
pub async fn execute(ctx: &Ctx, command: &str, p: &Params) -> Result<Value, ApiError> {
    let Some(spec) = api::lookup(command) else {
        return Err(ApiError::unknown_command(command));
    };
    if spec.admin && !ctx.config.admin_commands {
        return Err(ApiError::forbidden(format!(
            "Admin commands are disabled (admin_commands = false): {command} refused"
        )));
    }
    match command {
        "user.stats" => user::stats(ctx, p).await,
        "user.profile" => user::profile(ctx, p).await,
        "user.messages" => user::messages(ctx, p).await,
        "user.activity" => user::activity(ctx, p).await,
        "user.kudos" => user::kudos(ctx, p).await,
        "alias.list" => alias::list(ctx).await,
        "alias.get" => alias::get(ctx, p).await,
        "alias.find" => alias::find(ctx, p).await,
        "alias.add" => alias::add(ctx, p).await,
        "alias.delete" => alias::delete(ctx, p).await,
        "alias.update" => alias::update(ctx, p).await,
        "kudos.phrases.list" => phrases::list(ctx).await,
        "kudos.phrases.add" => phrases::add(ctx, p).await,
        "kudos.phrases.remove" => phrases::remove(ctx, p).await,
        "channel.top_users" => channel::top_users(ctx, p).await,
        "channel.population" => channel::population(ctx, p).await,
        "channel.media_history" => channel::media_history(ctx, p).await,
        "channel.watermarks" => channel::watermarks(ctx, p).await,
        "channel.movie_votes" => channel::movie_votes(ctx, p).await,
        "channel.all_stats" => all_stats::all_stats(ctx, p).await,
        "stats.global" => channel::global(ctx, p).await,
        "leaderboard.messages" => leaderboard::messages(ctx, p).await,
        "leaderboard.kudos" => leaderboard::kudos(ctx, p).await,
        "leaderboard.emotes" => leaderboard::emotes(ctx, p).await,
        "timeseries.messages" => timeseries::messages(ctx, p).await,
        "timeseries.kudos" => timeseries::kudos(ctx, p).await,
        "system.ping" => system::ping(ctx).await,
        "system.health" => system::health(ctx).await,
        "system.stats" => system::stats(ctx, p).await,
        "channel.list" => site::list(ctx, p).await,
        "channel.summary" => site::summary(ctx, p).await,
        "channel.present" => site::present(ctx, p).await,
        "channel.chatters" => site::chatters(ctx, p).await,
        "channel.hours" => site::hours(ctx, p).await,
        "timeseries.daily" => site::daily(ctx, p).await,
        "user.hours" => site::user_hours(ctx, p).await,
        other => Err(ApiError::unknown_command(other)),
    }
}

/// Answers a request body for a command: the envelope and, on failure, the error.
pub async fn answer(ctx: &Ctx, command: &str, body: &[u8]) -> (Value, Option<ApiError>) {
    let result = match Params::parse(body) {
        Ok(p) => execute(ctx, command, &p).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(data) => (api::success(command, data), None),
        Err(e) => {
            if e.code >= 500 {
                tracing::warn!(command, error = %e.message, "query failed");
            }
            (api::failure(Some(command), &e.message), Some(e))
        }
    }
}

/// `[{name_field: .., "count": ..}]` from (name, count) rows.
pub fn counted(rows: Vec<(String, i64)>, name_field: &str) -> Value {
    Value::Array(rows.into_iter().map(|(n, c)| serde_json::json!({name_field: n, "count": c})).collect())
}

/// Whole seconds, rounded down, from milliseconds.
pub fn seconds(ms: i64) -> i64 {
    ms.max(0) / 1000
}
