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
//!   `timeseries.daily`, `user.hours`, `channel.emotes`

pub mod alias;
pub mod all_stats;
pub mod channel;
pub mod leaderboard;
pub mod phrases;
pub mod site;
pub mod system;
pub mod timeseries;
pub mod user;

use crate::api::{self, ApiError, Owner, Params};
use crate::config::Config;
use crate::store::{Store, Tx};
use futures::future::BoxFuture;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Mutex, MutexGuard, OnceCell};
use Owner::{Leaderboard, User};

const DAY_MS: i64 = 86_400_000;

/// In-process counters of one query replica (shown in `$SRV.STATS` data).
#[derive(Default)]
pub struct QueryStats {
    /// Commands this replica answered (success or not), on any surface.
    pub commands_processed: AtomicU64,
    pub errors: AtomicU64,
    /// Requests on the seed and command subjects this replica routed.
    pub routed: AtomicU64,
    /// Per command: (answered on the seed and command subjects, answered with an error on
    /// any surface). The micro framework counts an endpoint's own requests but not these:
    /// an error answer is a normal reply carrying the error headers (it keeps its JSON body),
    /// and routed requests never reach the endpoint. The metrics function adds them up.
    by_command: std::sync::Mutex<std::collections::BTreeMap<&'static str, (u64, u64)>>,
}

impl QueryStats {
    /// One answer to `command` (`routed`: on the seed or command subject).
    pub fn answered(&self, command: &'static str, routed: bool, error: bool) {
        self.commands_processed.fetch_add(1, Relaxed);
        if error {
            self.errors.fetch_add(1, Relaxed);
        }
        if let Ok(mut by) = self.by_command.lock() {
            let counts = by.entry(command).or_default();
            counts.0 += u64::from(routed);
            counts.1 += u64::from(error);
        }
    }

    pub fn to_json(&self) -> Value {
        let by = self.by_command.lock().map(|b| b.clone()).unwrap_or_default();
        serde_json::json!({
            "commands_processed": self.commands_processed.load(Relaxed),
            "errors": self.errors.load(Relaxed),
            "routed": self.routed.load(Relaxed),
            "routed_by_command": by.iter().map(|(c, n)| (c.to_string(), Value::from(n.0))).collect::<serde_json::Map<_, _>>(),
            "errors_by_command": by.iter().map(|(c, n)| (c.to_string(), Value::from(n.1))).collect::<serde_json::Map<_, _>>(),
        })
    }
}

/// The fleet as the last `$SRV.PING` scatter found it: asking takes a fixed window
/// (`health::SCATTER_WINDOW`), far too long to wait for in every `system.health` or
/// `channel.all_stats`, so a query function refreshes it in the background once a second
/// ([`Fleet::refresh`]) and commands read the latest.
#[derive(Default)]
pub struct Fleet {
    replies: std::sync::RwLock<Option<Vec<Value>>>,
}

impl Fleet {
    /// Asks the fleet now and keeps the answer.
    pub async fn refresh(&self, client: &async_nats::Client) {
        let replies = crate::harness::service::scatter(client, "$SRV.PING", crate::health::SCATTER_WINDOW).await;
        if let Ok(mut r) = self.replies.write() {
            *r = Some(replies);
        }
    }

    /// The latest `$SRV.PING` replies (asked now if never asked yet).
    pub async fn replies(&self, client: &async_nats::Client) -> Vec<Value> {
        if let Some(r) = self.replies.read().ok().and_then(|r| r.clone()) {
            return r;
        }
        self.refresh(client).await;
        self.replies.read().ok().and_then(|r| r.clone()).unwrap_or_default()
    }
}

/// What the commands read from.
pub struct Ctx {
    pub config: Config,
    /// The fleet's `$SRV.PING` replies, refreshed in the background.
    pub fleet: Fleet,
    /// Recent answers shared by every asker.
    pub answers: Answers,
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

    /// Runs an admin command's `change` in one write transaction and commits it; the
    /// connection stays held for what the answer reads afterwards.
    pub async fn change<T>(
        &self,
        change: impl AsyncFnOnce(&mut Tx) -> anyhow::Result<T>,
    ) -> Result<(MutexGuard<'_, Store>, T), ApiError> {
        let store = self.store().await;
        let mut tx = store.write().await?;
        let done = change(&mut tx).await?;
        tx.commit().await?;
        Ok((store, done))
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

/// What a command runs: its handler, given the context and the request's parameters.
pub type Run = for<'a> fn(&'a Ctx, &'a Params) -> BoxFuture<'a, Result<Value, ApiError>>;

/// One command of the query API: its name (also its micro endpoint and seed subject
/// suffix), the function that answers it, whether it changes state, and its handler.
#[derive(Clone, Copy)]
pub struct Command {
    pub name: &'static str,
    pub owner: Owner,
    /// Changes state: refused unless `admin_commands = true`.
    pub admin: bool,
    pub run: Run,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Command")
            .field("name", &self.name)
            .field("owner", &self.owner)
            .field("admin", &self.admin)
            .finish()
    }
}

const fn cmd(name: &'static str, owner: Owner, admin: bool, run: Run) -> Command {
    Command { name, owner, admin, run }
}

/// Every command, the one registry: endpoints are registered from it, requests are
/// dispatched through it, docs/api.md is checked against it.
pub const COMMANDS: &[Command] = &[
    cmd("user.stats", User, false, |c, p| Box::pin(user::stats(c, p))),
    cmd("user.profile", User, false, |c, p| Box::pin(user::profile(c, p))),
    cmd("user.messages", User, false, |c, p| Box::pin(user::messages(c, p))),
    cmd("user.activity", User, false, |c, p| Box::pin(user::activity(c, p))),
    cmd("user.kudos", User, false, |c, p| Box::pin(user::kudos(c, p))),
    cmd("alias.list", User, false, |c, _| Box::pin(alias::list(c))),
    cmd("alias.get", User, false, |c, p| Box::pin(alias::get(c, p))),
    cmd("alias.find", User, false, |c, p| Box::pin(alias::find(c, p))),
    cmd("alias.add", User, true, |c, p| Box::pin(alias::add(c, p))),
    cmd("alias.delete", User, true, |c, p| Box::pin(alias::delete(c, p))),
    cmd("alias.update", User, true, |c, p| Box::pin(alias::update(c, p))),
    cmd("kudos.phrases.list", User, false, |c, _| Box::pin(phrases::list(c))),
    cmd("kudos.phrases.add", User, true, |c, p| Box::pin(phrases::add(c, p))),
    cmd("kudos.phrases.remove", User, true, |c, p| Box::pin(phrases::remove(c, p))),
    cmd("channel.top_users", Leaderboard, false, |c, p| Box::pin(channel::top_users(c, p))),
    cmd("channel.population", Leaderboard, false, |c, p| Box::pin(channel::population(c, p))),
    cmd("channel.media_history", Leaderboard, false, |c, p| Box::pin(channel::media_history(c, p))),
    cmd("channel.watermarks", Leaderboard, false, |c, p| Box::pin(channel::watermarks(c, p))),
    cmd("channel.movie_votes", Leaderboard, false, |c, p| Box::pin(channel::movie_votes(c, p))),
    cmd("channel.all_stats", Leaderboard, false, |c, p| Box::pin(all_stats::all_stats(c, p))),
    cmd("leaderboard.messages", Leaderboard, false, |c, p| Box::pin(leaderboard::messages(c, p))),
    cmd("leaderboard.kudos", Leaderboard, false, |c, p| Box::pin(leaderboard::kudos(c, p))),
    cmd("leaderboard.emotes", Leaderboard, false, |c, p| Box::pin(leaderboard::emotes(c, p))),
    cmd("stats.global", Leaderboard, false, |c, p| Box::pin(channel::global(c, p))),
    cmd("timeseries.messages", Leaderboard, false, |c, p| Box::pin(timeseries::messages(c, p))),
    cmd("timeseries.kudos", Leaderboard, false, |c, p| Box::pin(timeseries::kudos(c, p))),
    cmd("system.ping", Leaderboard, false, |c, _| Box::pin(system::ping(c))),
    cmd("system.health", Leaderboard, false, |c, _| Box::pin(system::health(c))),
    cmd("system.stats", Leaderboard, false, |c, p| Box::pin(system::stats(c, p))),
    cmd("user.hours", User, false, |c, p| Box::pin(site::user_hours(c, p))),
    cmd("channel.list", Leaderboard, false, |c, p| Box::pin(site::list(c, p))),
    cmd("channel.summary", Leaderboard, false, |c, p| Box::pin(site::summary(c, p))),
    cmd("channel.present", Leaderboard, false, |c, p| Box::pin(site::present(c, p))),
    cmd("channel.chatters", Leaderboard, false, |c, p| Box::pin(site::chatters(c, p))),
    cmd("channel.emotes", Leaderboard, false, |c, p| Box::pin(site::emotes(c, p))),
    cmd("channel.hours", Leaderboard, false, |c, p| Box::pin(site::hours(c, p))),
    cmd("timeseries.daily", Leaderboard, false, |c, p| Box::pin(site::daily(c, p))),
];

impl Command {
    /// True when every asker gets the same answer from the same data: the read-only
    /// commands of query-leaderboard but `system.*` (live health and counters).
    pub fn shared_answer(&self) -> bool {
        self.owner == Leaderboard && !self.admin && !self.name.starts_with("system.")
    }
}

/// The command of that name.
pub fn lookup(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// Runs one command (known to the table) with its parameters; `Ok` is the answer's `data`.
pub async fn execute(ctx: &Ctx, command: &str, p: &Params) -> Result<Value, ApiError> {
    let Some(spec) = lookup(command) else {
        return Err(ApiError::unknown_command(command));
    };
    if spec.admin && !ctx.config.admin_commands {
        return Err(ApiError::forbidden(format!(
            "Admin commands are disabled (admin_commands = false): {command} refused"
        )));
    }
    if !spec.shared_answer() {
        return (spec.run)(ctx, p).await;
    }
    // The same answer for every asker until the data changes (see `Answers`).
    let started = Instant::now();
    let version = ctx.store().await.counter_sum("batches").await?;
    let versioned = started.elapsed();
    let computed_us = AtomicU64::new(0);
    let (slot, _working) = match ctx.answers.slot(shared_key(command, p, ctx.domain(p).ok()), version) {
        Slot::Ready(answer) | Slot::Previous(answer) => return Ok(answer),
        Slot::Compute(slot, working) => (slot, Some(working)),
        Slot::Wait(slot) => (slot, None),
    };
    let answer = slot
        .get_or_try_init(|| async {
            let t = Instant::now();
            let r = aside((spec.run)(ctx, p)).await;
            computed_us.store(t.elapsed().as_micros() as u64, Relaxed);
            r
        })
        .await?
        .clone();
    if started.elapsed() > SLOW_ANSWER {
        tracing::debug!(
            command,
            version_ms = versioned.as_secs_f64() * 1e3,
            computed_ms = computed_us.load(Relaxed) as f64 / 1e3,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "slow shared answer"
        );
    }
    Ok(answer)
}

/// What a shared answer is filed under: the command and what it reads from the parameters,
/// the same on every surface. The surfaces dress one question differently (the command
/// subject adds `command` and perhaps `service`, the seed subject names the domain, the
/// micro endpoint leaves it to the default): without this each would work out its own copy.
/// `domain` is the one the request is about (named, or the default).
fn shared_key(command: &str, p: &Params, domain: Option<String>) -> String {
    let mut params = p.0.clone();
    params.remove("command");
    params.remove("service");
    if let Some(domain) = domain {
        params.insert("domain".into(), Value::String(domain));
    }
    format!("{command} {}", Value::Object(params))
}

/// Recent answers of the commands whose answer is the same for every asker (leaderboards,
/// channel pages, `channel.all_stats`): many clients ask them at once, and a dashboard asks
/// the same thing again and again. An answer is reused only while no ingest batch has
/// committed since (the `batches` counters: the data's version) and for at most
/// [`ANSWER_TTL`].
///
/// After a commit, the first asker works the new answer out. Nobody else waits for it: an
/// asker who comes meanwhile gets the previous answer at once (the data as it was a moment
/// ago, at most [`PREVIOUS_MAX`] old), and only when there is none does it wait for that
/// one computation instead of starting its own. So one asker in a few hundred pays for a
/// commit, not every asker who arrives during the few milliseconds a channel's dashboard
/// takes; and one asking alone (a test, a person) always gets the data as it is now.
#[derive(Default)]
pub struct Answers {
    entries: std::sync::Mutex<HashMap<String, Shared>>,
}

/// One shared answer: the data version it belongs to, when it was first asked, the answer
/// once worked out, and the last answer worked out before it (with when).
struct Shared {
    version: i64,
    at: Instant,
    answer: Arc<OnceCell<Value>>,
    /// True while an asker works `answer` out.
    working: Arc<std::sync::atomic::AtomicBool>,
    previous: Option<(Instant, Value)>,
}

impl Shared {
    fn fresh(&self, version: i64) -> bool {
        self.version == version && self.at.elapsed() < ANSWER_TTL
    }

    /// The newest answer worked out, and when: this one's, else the previous one.
    fn latest(&self) -> Option<(Instant, Value)> {
        match self.answer.get() {
            Some(answer) => Some((self.at, answer.clone())),
            None => self.previous.clone(),
        }
    }
}

/// Where an asker gets a shared answer from (see [`Answers::slot`]).
pub enum Slot {
    /// Worked out already for this version.
    Ready(Value),
    /// Being worked out for this version by another asker: the previous answer meanwhile.
    Previous(Value),
    /// This asker works the answer out (and fills the slot for the others) while it holds
    /// the [`Working`] mark.
    Compute(Arc<OnceCell<Value>>, Working),
    /// Being worked out, and nothing earlier to give: wait for it.
    Wait(Arc<OnceCell<Value>>),
}

/// Marks a shared answer as being worked out until dropped (done, failed or given up).
pub struct Working(Arc<std::sync::atomic::AtomicBool>);

impl Working {
    fn mark(flag: &Arc<std::sync::atomic::AtomicBool>) -> Working {
        flag.store(true, Relaxed);
        Working(flag.clone())
    }
}

impl Drop for Working {
    fn drop(&mut self) {
        self.0.store(false, Relaxed);
    }
}

/// Works a shared answer out on this thread after handing the requests queued on it to
/// another one. SQLite works synchronously inside the store's futures, and a channel page
/// over a large database takes a while (`channel.summary`: 110-185 ms at 100,000 users in
/// the bench): run in place it held a runtime thread, and every request queued behind it
/// on that thread, for as long — the leaderboards' 120 ms p99 spikes once per page build.
async fn aside<T>(work: impl std::future::Future<Output = T>) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let handle = Handle::current();
    if handle.runtime_flavor() == RuntimeFlavor::MultiThread {
        tokio::task::block_in_place(|| handle.block_on(work))
    } else {
        // A single-threaded runtime (unit tests) has no other thread to hand requests to.
        work.await
    }
}

/// An answer slower than this is logged (debug) with where its time went.
const SLOW_ANSWER: std::time::Duration = std::time::Duration::from_millis(40);

/// The longest an answer is reused, even when no batch committed (snapshots, imports).
pub const ANSWER_TTL: std::time::Duration = std::time::Duration::from_secs(1);
/// The oldest a previous answer may be to stand in while the next one is worked out; under
/// a steady stream a batch commits every second or less, so the previous answer is the one
/// of the batch before.
pub const PREVIOUS_MAX: std::time::Duration = std::time::Duration::from_secs(2);
/// The most answers kept; past it the oldest are dropped.
const ANSWERS_MAX: usize = 512;

impl Answers {
    /// The answer to `key` at data `version`, if worked out and fresh (this and `put` state
    /// the freshness rule in tests).
    #[cfg(test)]
    pub fn get(&self, key: &str, version: i64) -> Option<Value> {
        let entries = self.entries.lock().ok()?;
        let shared = entries.get(key).filter(|s| s.fresh(version))?;
        shared.answer.get().cloned()
    }

    #[cfg(test)]
    pub fn put(&self, key: String, version: i64, answer: Value) {
        if let Slot::Compute(cell, _) = self.slot(key, version) {
            let _ = cell.set(answer);
        }
    }

    /// Where the answer to `key` at data `version` comes from: ready; being worked out by
    /// another asker (then the previous answer, if recent enough, else wait for it); or
    /// this asker works it out in a new slot. Past [`ANSWERS_MAX`] keys, stale ones are
    /// dropped; if still full, the asker works it out in a slot of its own.
    pub fn slot(&self, key: String, version: i64) -> Slot {
        let Ok(mut entries) = self.entries.lock() else {
            return Slot::Compute(Arc::default(), Working::mark(&Arc::default()));
        };
        let previous = match entries.get(&key) {
            Some(shared) if shared.fresh(version) => {
                if let Some(answer) = shared.answer.get() {
                    return Slot::Ready(answer.clone());
                }
                if !shared.working.load(Relaxed) {
                    // Nobody at it (the one who was failed): this asker works it out.
                    return Slot::Compute(shared.answer.clone(), Working::mark(&shared.working));
                }
                return match &shared.previous {
                    Some((at, answer)) if at.elapsed() < PREVIOUS_MAX => Slot::Previous(answer.clone()),
                    _ => Slot::Wait(shared.answer.clone()),
                };
            }
            Some(shared) => shared.latest(),
            None => None,
        };
        if entries.len() >= ANSWERS_MAX {
            entries.retain(|_, s| s.fresh(version));
        }
        let (answer, working): (Arc<OnceCell<Value>>, Arc<std::sync::atomic::AtomicBool>) = Default::default();
        let mark = Working::mark(&working);
        if entries.len() < ANSWERS_MAX || entries.contains_key(&key) {
            let at = Instant::now();
            entries.insert(key, Shared { version, at, answer: answer.clone(), working, previous });
        }
        Slot::Compute(answer, mark)
    }
}

/// Answers a request body for a command: the envelope and, on failure, the error.
pub async fn answer(ctx: &Ctx, command: &str, body: &[u8]) -> (Value, Option<ApiError>) {
    match Params::parse(body) {
        Ok(p) => answer_params(ctx, command, &p).await,
        Err(e) => (api::failure(Some(command), &e.message), Some(e)),
    }
}

/// Answers a command with its parameters: the envelope and, on failure, the error. The one
/// answer every surface gives.
pub async fn answer_params(ctx: &Ctx, command: &str, p: &Params) -> (Value, Option<ApiError>) {
    match execute(ctx, command, p).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_shared_answer_lasts_while_the_data_does_and_at_most_a_second() {
        let answers = Answers::default();
        answers.put("leaderboard.kudos {}".into(), 7, json!({"leaderboard": [1]}));
        assert_eq!(answers.get("leaderboard.kudos {}", 7), Some(json!({"leaderboard": [1]})));
        assert_eq!(answers.get("leaderboard.kudos {}", 8), None, "a batch committed since");
        assert_eq!(answers.get("leaderboard.kudos {\"limit\":5}", 7), None, "other parameters");
        std::thread::sleep(ANSWER_TTL);
        assert_eq!(answers.get("leaderboard.kudos {}", 7), None, "older than the TTL");
    }

    #[tokio::test]
    async fn askers_arriving_together_with_nothing_earlier_wait_for_one_answer() {
        let answers = Answers::default();
        let computed = AtomicU64::new(0);
        let work = || async {
            computed.fetch_add(1, Relaxed);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            Ok::<_, ApiError>(json!({"leaderboard": [1]}))
        };
        let (Slot::Compute(a, _working), Slot::Wait(b)) = (answers.slot("k".into(), 1), answers.slot("k".into(), 1))
        else {
            panic!("the first asker works it out, the second waits");
        };
        let (x, y) = tokio::join!(a.get_or_try_init(work), b.get_or_try_init(work));
        assert_eq!((x.unwrap(), y.unwrap()), (&json!({"leaderboard": [1]}), &json!({"leaderboard": [1]})));
        assert_eq!(computed.load(Relaxed), 1, "worked out once");
    }

    #[test]
    fn after_a_commit_the_first_asker_works_it_out_and_the_others_get_the_previous_meanwhile() {
        let answers = Answers::default();
        answers.put("k".into(), 1, json!("v1"));
        let Slot::Compute(cell, working) = answers.slot("k".into(), 2) else {
            panic!("a lone asker after a commit gets the data as it is now");
        };
        assert!(matches!(answers.slot("k".into(), 2), Slot::Previous(v) if v == json!("v1")), "meanwhile");
        cell.set(json!("v2")).unwrap();
        drop(working);
        assert!(matches!(answers.slot("k".into(), 2), Slot::Ready(v) if v == json!("v2")));

        // One that fails leaves the next asker to try again, with v2 to give meanwhile.
        let Slot::Compute(_, working) = answers.slot("k".into(), 3) else { panic!("v3 is new") };
        drop(working);
        let Slot::Compute(_, _working) = answers.slot("k".into(), 3) else { panic!("tried again") };
        assert!(matches!(answers.slot("k".into(), 3), Slot::Previous(v) if v == json!("v2")));
    }

    #[test]
    fn every_surface_shares_one_answer() {
        let params = |v: Value| Params(v.as_object().unwrap().clone());
        let domain = Some("cytu.be".to_string());
        let micro = shared_key("channel.all_stats", &params(json!({"channel": "x"})), domain.clone());
        let seed =
            shared_key("channel.all_stats", &params(json!({"channel": "x", "domain": "cytu.be"})), domain.clone());
        let command = shared_key(
            "channel.all_stats",
            &params(json!({"command": "channel.all_stats", "service": "userstats", "channel": "x"})),
            domain.clone(),
        );
        assert_eq!((&micro, &seed), (&command, &command));
        let other = shared_key("channel.all_stats", &params(json!({"channel": "y"})), domain);
        assert_ne!(micro, other);
    }

    #[test]
    fn only_read_only_answers_the_same_for_everyone_are_shared() {
        let shared: Vec<&str> = COMMANDS.iter().filter(|c| c.shared_answer()).map(|c| c.name).collect();
        assert!(shared.contains(&"channel.all_stats") && shared.contains(&"leaderboard.kudos"));
        assert!(!shared.iter().any(|n| n.starts_with("user.") || n.starts_with("alias.") || n.starts_with("system.")));
        assert!(!shared.iter().any(|n| n.starts_with("kudos.phrases")));
    }
}
