//! What `bootstrap-kv` does (01-wire.md §4, 02-semantics.md §Presence, §Media): reads the
//! bridge's KV buckets of each configured channel (userlist, emotes, playlist), turns their
//! values into the same parsed events the ingest handlers take — a `userlist`, an
//! `emoteList`, a `playlist`, a `changeMedia` (+ `setCurrent`) — timed at the KV entry's
//! `created` time (server time of the put) and applies them with the presence and media
//! logic in one transaction per channel, idempotent by `kv:{bucket}:{key}:{revision}`.
//!
//! Ordering: a snapshot older than what the database knows does not override it — per user
//! (a session whose last event is newer is neither changed nor closed; a listed user seen
//! after the snapshot is not reopened), for the emote list (a list change after the put
//! wins), and for now playing (the media log is time-indexed).
//!
//! [`run`] is the function: binds (never creates) the buckets, watches them, resyncs every
//! `bootstrap.resync_seconds` reporting drift, answers `bootstrap.resync`.

use crate::config::{ChannelConfig, Config};
use crate::harness::ingest::{Handler, Report};
use crate::harness::{now_ms, service, Context};
use crate::media::MediaHandler;
use crate::presence::PresenceHandler;
use crate::store::{Store, Tx};
use crate::wire::{self, Event, Parsed};
use anyhow::{anyhow, Result};
use async_nats::jetstream::{self, kv};
use futures::StreamExt;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The function's name in counters.
const FUNCTION: &str = "bootstrap-kv";

/// How long a watched change waits before the channel is read. The bridge writes a KV key
/// a fraction of a second *before* it publishes the event that goes with it (`current`
/// before `changeMedia`, `users` before `addUser`/`userLeave`); the event is the primary
/// source and carries its own time, the KV watch is the safety net for events nobody
/// captured. Waiting a moment lets the ingest functions apply the event first, so the
/// numbers are those of the event stream alone (the media log and sessions also stay right
/// when the KV value does come first; see `MediaHandler::change_media`).
const WATCH_SETTLE: Duration = Duration::from_millis(1000);

/// The three buckets the bridge keeps per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Userlist,
    Emotes,
    Playlist,
}

pub const KINDS: [Kind; 3] = [Kind::Userlist, Kind::Emotes, Kind::Playlist];

impl Kind {
    pub fn suffix(self) -> &'static str {
        match self {
            Kind::Userlist => "userlist",
            Kind::Emotes => "emotes",
            Kind::Playlist => "playlist",
        }
    }
}

/// Bucket names to try, in order: today's `kryten_{channel}_…` (case kept), then the older
/// `kryten_{channel lowercase}_…` and `cytube_{domain}_{channel}_…` forms.
pub fn bucket_names(domain: &str, channel: &str, kind: Kind) -> Vec<String> {
    let clean = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
    };
    let (ch, lower, dom) = (clean(channel), clean(&channel.to_lowercase()), clean(&domain.to_lowercase()));
    let s = kind.suffix();
    let mut names = vec![
        format!("kryten_{ch}_{s}"),
        format!("kryten_{lower}_{s}"),
        format!("cytube_{dom}_{ch}_{s}"),
        format!("cytube_{dom}_{lower}_{s}"),
    ];
    let mut seen = HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// One KV entry as read.
#[derive(Debug, Clone)]
pub struct KvValue {
    pub bucket: String,
    pub key: String,
    pub revision: u64,
    /// The server time of the put (ms since the epoch).
    pub created_ms: i64,
    pub value: Vec<u8>,
}

impl KvValue {
    fn id(&self) -> String {
        format!("kv:{}:{}:{}", self.bucket, self.key, self.revision)
    }
}

/// What the buckets of one channel hold now (`None`: bucket or key missing).
#[derive(Debug, Clone, Default)]
pub struct ChannelSnapshot {
    pub users: Option<KvValue>,
    pub emotes: Option<KvValue>,
    pub items: Option<KvValue>,
    pub current: Option<KvValue>,
}

/// A value that could not be turned into an event: (bucket, key, why).
pub type Problem = (Kind, String);

/// The snapshot as the events the ingest handlers take.
#[derive(Debug, Default)]
pub struct SnapshotEvents {
    pub userlist: Option<Parsed>,
    pub emote_list: Option<Parsed>,
    pub playlist: Option<Parsed>,
    /// `changeMedia` from `current` (fallback: the first of `items`), then `setCurrent`.
    pub now_playing: Vec<Parsed>,
    pub problems: Vec<Problem>,
}

/// Builds the envelope the bridge would have published and parses it like any event.
fn event(domain: &str, channel: &str, name: &str, payload: Value, at_ms: i64, id: String) -> Result<Parsed, String> {
    let env = json!({"event_name": name, "payload": payload, "channel": channel, "domain": domain,
        "timestamp": wire::format_timestamp(at_ms), "correlation_id": id});
    wire::parse(env.to_string().as_bytes()).map_err(|r| format!("{name} value rejected ({})", r.label()))
}

fn json_value(v: &KvValue) -> Result<Value, String> {
    serde_json::from_slice(&v.value).map_err(|e| format!("{}/{}: not JSON ({e})", v.bucket, v.key))
}

/// Turns the KV values of a channel into parsed events; a malformed value becomes a problem
/// (its bucket is then left out, the others still apply).
pub fn snapshot_events(domain: &str, channel: &str, snap: &ChannelSnapshot) -> SnapshotEvents {
    let mut out = SnapshotEvents::default();
    let mut one = |kind: Kind, v: &KvValue, name: &str, pick: &dyn Fn(Value) -> Value| -> Option<Parsed> {
        let parsed = json_value(v)
            .and_then(|j| event(domain, channel, name, pick(j), v.created_ms, v.id()))
            .map_err(|e| format!("{}/{}: {e}", v.bucket, v.key));
        match parsed {
            Ok(p) => Some(p),
            Err(e) => {
                out.problems.push((kind, e));
                None
            }
        }
    };
    let same = |j: Value| j;
    if let Some(v) = &snap.users {
        out.userlist = one(Kind::Userlist, v, "userlist", &same);
    }
    if let Some(v) = &snap.emotes {
        out.emote_list = one(Kind::Emotes, v, "emoteList", &same);
    }
    let mut first_item: Option<(Value, &KvValue)> = None;
    if let Some(v) = &snap.items {
        out.playlist = one(Kind::Playlist, v, "playlist", &same);
        if out.playlist.is_some() {
            if let Ok(Value::Array(items)) = json_value(v) {
                first_item = items.into_iter().next().and_then(|i| i.get("media").cloned()).map(|m| (m, v));
            }
        }
    }
    let current = snap.current.as_ref().and_then(|v| match json_value(v) {
        Ok(j @ Value::Object(_)) => Some((j, v)),
        Ok(_) => {
            out.problems.push((Kind::Playlist, format!("{}/{}: not a JSON object", v.bucket, v.key)));
            None
        }
        Err(e) => {
            out.problems.push((Kind::Playlist, e));
            None
        }
    });
    let from_current = current.is_some();
    if let Some((media, v)) = current.or(first_item) {
        let uid = if from_current { media.get("uid").and_then(Value::as_i64) } else { None };
        let id = if from_current { v.id() } else { format!("{}#first", v.id()) };
        match event(domain, channel, "changeMedia", media, v.created_ms, id.clone()) {
            Ok(p) => out.now_playing.push(p),
            Err(e) => out.problems.push((Kind::Playlist, format!("{}/{}: {e}", v.bucket, v.key))),
        }
        if let Some(uid) = uid.filter(|_| !out.now_playing.is_empty()) {
            if let Ok(p) = event(domain, channel, "setCurrent", json!(uid), v.created_ms, format!("{id}#uid")) {
                out.now_playing.push(p);
            }
        }
    }
    out
}

/// Differences between the database and KV found before applying.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Drift {
    /// Listed in KV, no open session in the database.
    pub users_missing: Vec<String>,
    /// Open session in the database, not listed in KV.
    pub users_extra: Vec<String>,
    /// Emote names in one list and not the other.
    pub emotes: usize,
    /// Those emote names (listed in KV only, or in the database only).
    #[serde(skip)]
    pub emote_names: BTreeSet<String>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.users_missing.is_empty() && self.users_extra.is_empty() && self.emote_names.is_empty()
    }

    /// The differences this drift has that `before` had not: (users missing, users extra,
    /// emotes). An unchanged drift observed again counts nothing.
    pub fn new_since(&self, before: &Drift) -> (usize, usize, usize) {
        let new = |now: &[String], then: &[String]| now.iter().filter(|n| !then.contains(n)).count();
        (
            new(&self.users_missing, &before.users_missing),
            new(&self.users_extra, &before.users_extra),
            self.emote_names.difference(&before.emote_names).count(),
        )
    }
}

/// What applying one channel's snapshot changed.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Applied {
    pub users_listed: Option<usize>,
    pub emotes_listed: Option<usize>,
    pub playlist_items: Option<usize>,
    pub users_opened: usize,
    pub sessions_closed: usize,
    pub emotes_added: usize,
    pub emotes_removed: usize,
    /// The cleaned title now playing when this apply set it.
    pub media_set: Option<String>,
    /// The title now playing per KV (set now or already).
    pub current_title: Option<String>,
    /// KV values applied now (new revisions) and skipped (applied before).
    pub values_applied: usize,
    pub values_already_applied: usize,
    pub drift: Drift,
}

/// The presence and media logic, applied to snapshots.
pub struct Applier {
    presence: PresenceHandler,
    media: MediaHandler,
    ignored: HashSet<String>,
}

impl Applier {
    pub fn new(config: &Config) -> Applier {
        Applier {
            presence: PresenceHandler::new(config),
            media: MediaHandler::new(config),
            ignored: config.ignored_users(),
        }
    }

    /// Applies a channel's snapshot events in the open transaction.
    pub async fn apply(
        &mut self,
        tx: &mut Tx,
        domain: &str,
        channel: &str,
        ev: &SnapshotEvents,
        report: &mut Report,
    ) -> Result<Applied> {
        let mut a = Applied::default();
        let before_sessions: BTreeSet<String> = tx.sessions(domain, channel).await?.into_iter().map(|s| s.0).collect();
        let before_emotes: BTreeSet<String> = tx.listed_emotes(domain, channel).await?.into_iter().collect();
        let before_media = tx.media_at(domain, channel, i64::MAX).await?;

        // Drift, before repairing it.
        if let Some(Event::Userlist(users)) = ev.userlist.as_ref().map(|p| &p.event) {
            let kv: BTreeMap<String, &str> = users
                .iter()
                .map(|u| (u.name.to_lowercase(), u.name.as_str()))
                .filter(|(k, _)| !self.ignored.contains(k))
                .collect();
            a.users_listed = Some(kv.len());
            a.drift.users_missing =
                kv.iter().filter(|(k, _)| !before_sessions.contains(*k)).map(|(_, n)| n.to_string()).collect();
            a.drift.users_extra = before_sessions.iter().filter(|k| !kv.contains_key(*k)).cloned().collect();
        }
        let mut emote_list_time = None;
        if let Some(p) = &ev.emote_list {
            if let Event::EmoteList(list) = &p.event {
                let kv: BTreeSet<&str> = list.iter().map(|e| e.name.as_str()).collect();
                a.emotes_listed = Some(kv.len());
                a.drift.emote_names = kv
                    .iter()
                    .filter(|n| !before_emotes.contains(**n))
                    .map(|n| n.to_string())
                    .chain(before_emotes.iter().filter(|n| !kv.contains(n.as_str())).cloned())
                    .collect();
                a.drift.emotes = a.drift.emote_names.len();
                emote_list_time = Some(p.time_ms);
            }
        }
        if let Some(Event::Playlist(items)) = ev.playlist.as_ref().map(|p| &p.event) {
            a.playlist_items = Some(items.len());
        }
        if let Some(Event::ChangeMedia(m)) = ev.now_playing.first().map(|p| &p.event) {
            a.current_title = Some(crate::detect::clean_title(&m.title));
        }

        // Only revisions never applied before (idempotency), in the handlers' own logic.
        let all: Vec<&Parsed> =
            ev.userlist.iter().chain(&ev.emote_list).chain(&ev.playlist).chain(&ev.now_playing).collect();
        let ids: Vec<String> = all.iter().map(|p| p.id.clone()).collect();
        let fresh = tx.claim_new_ids(&ids, now_ms()).await?;
        let is_new = |p: &Parsed| all.iter().zip(&fresh).any(|(q, f)| *f && q.id == p.id);
        a.values_applied = fresh.iter().filter(|f| **f).count();
        a.values_already_applied = fresh.len() - a.values_applied;
        if let Some(p) = ev.userlist.as_ref().filter(|p| is_new(p)) {
            self.presence.apply_snapshot(tx, p, report).await?;
        }
        let mut media_events: Vec<&Parsed> = Vec::new();
        if let (Some(p), Some(t)) = (ev.emote_list.as_ref().filter(|p| is_new(p)), emote_list_time) {
            // A list change after the put is newer than this snapshot: it wins.
            if tx.emotes_at(domain, channel).await?.is_some_and(|last| last > t) {
                report.count("stale_snapshot_emotes");
            } else {
                media_events.push(p);
            }
        }
        media_events.extend(ev.playlist.iter().filter(|p| is_new(p)));
        media_events.extend(ev.now_playing.iter().filter(|p| is_new(p)));
        if !media_events.is_empty() {
            self.media.apply(tx, &media_events, report).await?;
        }

        let after_sessions: BTreeSet<String> = tx.sessions(domain, channel).await?.into_iter().map(|s| s.0).collect();
        let after_emotes: BTreeSet<String> = tx.listed_emotes(domain, channel).await?.into_iter().collect();
        a.users_opened = after_sessions.difference(&before_sessions).count();
        a.sessions_closed = before_sessions.difference(&after_sessions).count();
        a.emotes_added = after_emotes.difference(&before_emotes).count();
        a.emotes_removed = before_emotes.difference(&after_emotes).count();
        if tx.media_at(domain, channel, i64::MAX).await? != before_media {
            a.media_set = a.current_title.clone();
        }
        Ok(a)
    }
}

/// Applies a channel's snapshot in one transaction (retrying while the database is busy),
/// with the durable counters. The whole snapshot or nothing.
///
/// Counters keep observations apart from repairs: `drift_*` count differences between the
/// database and KV the first time they are seen (`reported` is the drift already reported
/// for this channel, so an unchanged drift seen at every resync counts once), `repaired_*`
/// what the snapshot changed.
pub async fn apply_snapshot(
    store: &Store,
    applier: &mut Applier,
    domain: &str,
    channel: &str,
    ev: &SnapshotEvents,
    reported: &Drift,
) -> Result<(Applied, Report)> {
    let mut delay = Duration::from_millis(20);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = async {
            let mut tx = store.write().await?;
            let mut report = Report::default();
            let a = applier.apply(&mut tx, domain, channel, ev, &mut report).await?;
            tx.add_counter(FUNCTION, "events_applied", a.values_applied as i64).await?;
            tx.add_counter(FUNCTION, "duplicates", a.values_already_applied as i64).await?;
            let (missing, extra, emotes) = a.drift.new_since(reported);
            let counts = [
                ("drift_users_missing", missing),
                ("drift_users_extra", extra),
                ("drift_emotes", emotes),
                ("repaired_users_opened", a.users_opened),
                ("repaired_sessions_closed", a.sessions_closed),
                ("repaired_emotes", a.emotes_added + a.emotes_removed),
            ];
            for (name, n) in counts.into_iter().filter(|(_, n)| *n > 0) {
                tx.add_counter(FUNCTION, name, n as i64).await?;
            }
            for (name, n) in &report.extra {
                tx.add_counter(FUNCTION, name, *n as i64).await?;
            }
            tx.commit().await?;
            anyhow::Ok((a, report))
        }
        .await;
        match result {
            Ok(r) => return Ok(r),
            Err(e) if attempt < 8 => {
                tracing::debug!(error = %format!("{e:#}"), "applying a KV snapshot failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Why the function looks again at a channel.
enum Trigger {
    /// A watched bucket changed.
    Changed(usize),
    /// A watch ended (bucket deleted, connection lost): bind again at the next resync.
    WatchEnded(usize, Kind),
    /// `bootstrap.resync` request.
    Resync(Option<String>, oneshot::Sender<Value>),
}

/// The running function's state.
struct Bootstrap {
    js: jetstream::Context,
    domain_channels: Vec<(String, String)>,
    applier: Applier,
    /// (channel index, kind) whose bucket is being watched.
    watching: HashSet<(usize, Kind)>,
    /// Problems already warned about, per (channel index, kind): warned once, not per retry.
    warned: HashMap<(usize, Kind), String>,
    /// The drift last reported per channel index: a drift is logged and counted when it
    /// appears or changes, and once more when it clears, not at every resync.
    reported: HashMap<usize, Drift>,
    triggers: mpsc::Sender<Trigger>,
}

/// Runs `bootstrap-kv` until shutdown.
pub async fn run(ctx: &mut Context) -> Result<()> {
    let service = service::register(&ctx.client, ctx.function, ctx.stats.clone()).await?;
    service::add_status_endpoint(&service, ctx.function, ctx.stats.clone()).await?;
    let (tx, mut rx) = mpsc::channel::<Trigger>(256);
    add_resync_endpoint(&service, tx.clone()).await?;
    let channels: Vec<ChannelConfig> = ctx.config.channels.clone();
    if channels.is_empty() {
        tracing::warn!("bootstrap-kv needs [[channels]] in the configuration (domain, channel) to know which KV buckets to read; idle until configured");
    }
    let mut b = Bootstrap {
        js: jetstream::new(ctx.client.clone()),
        domain_channels: channels.iter().map(|c| (c.domain.to_lowercase(), c.channel.clone())).collect(),
        applier: Applier::new(&ctx.config),
        watching: HashSet::new(),
        warned: HashMap::new(),
        reported: HashMap::new(),
        triggers: tx,
    };
    let every = Duration::from_secs(ctx.config.bootstrap.resync_seconds.max(1));
    let mut resync = tokio::time::interval(every);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = ctx.shutdown.clone();
    while !ctx.shutdown.is_set() {
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = resync.tick() => {
                for i in 0..b.domain_channels.len() {
                    b.sync(ctx, i).await;
                }
            }
            t = rx.recv() => match t {
                None => break,
                Some(Trigger::WatchEnded(i, kind)) => {
                    b.watching.remove(&(i, kind));
                }
                Some(Trigger::Changed(i)) => {
                    // Coalesce a burst of puts into one read, and let the live event that
                    // goes with a put (published just after it) be applied first.
                    let mut due = BTreeSet::from([i]);
                    let mut later = Vec::new();
                    tokio::time::sleep(WATCH_SETTLE).await;
                    while let Ok(t) = rx.try_recv() {
                        match t {
                            Trigger::Changed(j) => { due.insert(j); }
                            other => later.push(other),
                        }
                    }
                    for j in due {
                        b.sync(ctx, j).await;
                    }
                    for t in later {
                        b.handle_later(ctx, t).await;
                    }
                }
                Some(t) => b.handle_later(ctx, t).await,
            }
        }
    }
    let _ = service.stop().await;
    ctx.lifecycle.stop().await;
    tracing::info!(function = ctx.function.name, "stopped");
    Ok(())
}

async fn add_resync_endpoint(service: &async_nats::service::Service, triggers: mpsc::Sender<Trigger>) -> Result<()> {
    let mut endpoint = service
        .endpoint_builder()
        .name("resync")
        .add("bootstrap.resync")
        .await
        .map_err(|e| anyhow!("cannot add the bootstrap.resync endpoint: {e}"))?;
    tokio::spawn(async move {
        while let Some(request) = endpoint.next().await {
            let channel = serde_json::from_slice::<Value>(&request.message.payload)
                .ok()
                .and_then(|v| v.get("channel").and_then(Value::as_str).map(str::to_string));
            let (reply_tx, reply_rx) = oneshot::channel();
            let answer = if triggers.send(Trigger::Resync(channel, reply_tx)).await.is_ok() {
                reply_rx.await.unwrap_or_else(|_| json!({"success": false, "error": "stopping"}))
            } else {
                json!({"success": false, "error": "stopping"})
            };
            let _ = request.respond(Ok(answer.to_string().into())).await;
        }
    });
    Ok(())
}

impl Bootstrap {
    async fn handle_later(&mut self, ctx: &Context, t: Trigger) {
        match t {
            Trigger::Changed(i) => {
                self.sync(ctx, i).await;
            }
            Trigger::WatchEnded(i, kind) => {
                self.watching.remove(&(i, kind));
            }
            Trigger::Resync(channel, reply) => {
                let _ = reply.send(self.resync_request(ctx, channel).await);
            }
        }
    }

    async fn resync_request(&mut self, ctx: &Context, channel: Option<String>) -> Value {
        let wanted: Vec<usize> = match &channel {
            None => (0..self.domain_channels.len()).collect(),
            Some(name) => {
                let n = name.to_lowercase();
                (0..self.domain_channels.len())
                    .filter(|i| {
                        let c = &self.domain_channels[*i].1;
                        c.to_lowercase() == n || wire::subject_token(c) == wire::subject_token(name)
                    })
                    .collect()
            }
        };
        if wanted.is_empty() {
            let error = match channel {
                Some(c) => format!("channel {c} is not configured"),
                None => "no channels configured ([[channels]])".to_string(),
            };
            return json!({"success": false, "error": error});
        }
        let mut out = Map::new();
        for i in wanted {
            let (_, name) = self.domain_channels[i].clone();
            let value = match self.sync(ctx, i).await {
                Some(a) => serde_json::to_value(&a).unwrap_or(Value::Null),
                None => json!({"error": "not applied (see warnings)"}),
            };
            out.insert(name, value);
        }
        json!({"success": true, "channels": out})
    }

    /// Warns once per channel and bucket about a problem (again only if it changes).
    fn warn(&mut self, i: usize, kind: Kind, problem: String) {
        let (_, channel) = &self.domain_channels[i];
        if self.warned.get(&(i, kind)) != Some(&problem) {
            tracing::warn!(channel = %channel, bucket = %kind.suffix(), "{problem}; live events only for it until a later resync finds it");
            self.warned.insert((i, kind), problem);
        }
    }

    fn clear_warning(&mut self, i: usize, kind: Kind) {
        if self.warned.remove(&(i, kind)).is_some() {
            let (_, channel) = &self.domain_channels[i];
            tracing::info!(channel = %channel, bucket = %kind.suffix(), "KV bucket readable again");
        }
    }

    /// Binds the first existing bucket of a kind (never creates one).
    async fn bind(&self, i: usize, kind: Kind) -> std::result::Result<kv::Store, String> {
        let (domain, channel) = &self.domain_channels[i];
        let names = bucket_names(domain, channel, kind);
        let mut last_err = String::new();
        for name in &names {
            match self.js.get_key_value(name.as_str()).await {
                Ok(store) => return Ok(store),
                Err(e) => last_err = e.to_string(),
            }
        }
        Err(format!("no KV bucket {} (nor {}): {last_err}", names[0], names[1..].join(", ")))
    }

    /// Reads the first present key among `keys` (a deleted key counts as missing).
    async fn read(store: &kv::Store, bucket: &str, keys: &[&str]) -> std::result::Result<Option<KvValue>, String> {
        for key in keys {
            match store.entry(*key).await {
                Ok(Some(e)) if e.operation == kv::Operation::Put => {
                    return Ok(Some(KvValue {
                        bucket: bucket.to_string(),
                        key: e.key,
                        revision: e.revision,
                        created_ms: (e.created.unix_timestamp_nanos() / 1_000_000) as i64,
                        value: e.value.to_vec(),
                    }))
                }
                Ok(_) => {}
                Err(e) => return Err(format!("cannot read {bucket}/{key}: {e}")),
            }
        }
        Ok(None)
    }

    /// Reads the channel's buckets, starts watching any not watched yet, and applies the
    /// snapshot. `None` when nothing could be applied.
    async fn sync(&mut self, ctx: &Context, i: usize) -> Option<Applied> {
        let (domain, channel) = self.domain_channels[i].clone();
        let mut snap = ChannelSnapshot::default();
        let mut readable = Vec::new();
        for kind in KINDS {
            let store = match self.bind(i, kind).await {
                Ok(s) => s,
                Err(e) => {
                    self.warn(i, kind, e);
                    continue;
                }
            };
            let bucket = store.name.clone();
            if !self.watching.contains(&(i, kind)) {
                self.watch(i, kind, &store).await;
            }
            let keys: &[(&[&str], u8)] = match kind {
                Kind::Userlist => &[(&["users"], 0)],
                Kind::Emotes => &[(&["list", "emotes"], 1)],
                Kind::Playlist => &[(&["items", "playlist"], 2), (&["current"], 3)],
            };
            let mut missing = Vec::new();
            let mut failed = None;
            for (names, slot) in keys {
                match Self::read(&store, &bucket, names).await {
                    Ok(Some(v)) => match slot {
                        0 => snap.users = Some(v),
                        1 => snap.emotes = Some(v),
                        2 => snap.items = Some(v),
                        _ => snap.current = Some(v),
                    },
                    Ok(None) => missing.push(names.join("|")),
                    Err(e) => failed = Some(e),
                }
            }
            match failed {
                Some(e) => self.warn(i, kind, e),
                // A playlist bucket with `items` or `current` is usable.
                None if missing.len() == keys.len() => {
                    self.warn(i, kind, format!("KV bucket {bucket} has no key {}", missing.join(", ")))
                }
                None => readable.push(kind),
            }
        }
        let events = snapshot_events(&domain, &channel, &snap);
        let bad: HashSet<Kind> = events.problems.iter().map(|(k, _)| *k).collect();
        for (kind, problem) in &events.problems {
            ctx.stats.reject("kv_malformed");
            self.warn(i, *kind, problem.clone());
        }
        for kind in readable.into_iter().filter(|k| !bad.contains(k)) {
            self.clear_warning(i, kind);
        }
        if events.userlist.is_none()
            && events.emote_list.is_none()
            && events.playlist.is_none()
            && events.now_playing.is_empty()
        {
            return None;
        }
        let reported = self.reported.get(&i).cloned().unwrap_or_default();
        match apply_snapshot(&ctx.store, &mut self.applier, &domain, &channel, &events, &reported).await {
            Ok((a, report)) => {
                self.account(ctx, &channel, &a, report);
                self.report_drift(ctx, i, &a.drift);
                Some(a)
            }
            Err(e) => {
                tracing::error!(channel = %channel, error = %format!("{e:#}"), "applying the KV snapshot failed; nothing applied, retried at the next change or resync");
                ctx.stats.retries.fetch_add(1, Relaxed);
                None
            }
        }
    }

    /// Work counters and log lines of one applied snapshot.
    fn account(&self, ctx: &Context, channel: &str, a: &Applied, report: Report) {
        let s = &ctx.stats;
        s.events_applied.fetch_add(a.values_applied as u64, Relaxed);
        s.duplicates.fetch_add(a.values_already_applied as u64, Relaxed);
        s.batches.fetch_add(1, Relaxed);
        s.add_extra("users_opened", a.users_opened as u64);
        s.add_extra("sessions_closed", a.sessions_closed as u64);
        s.add_extra("repaired_emotes", (a.emotes_added + a.emotes_removed) as u64);
        for (name, n) in report.extra {
            s.add_extra(name, n);
        }
        if a.values_applied > 0 {
            tracing::info!(
                channel,
                users = a.users_listed.unwrap_or(0),
                emotes = a.emotes_listed.unwrap_or(0),
                playlist_items = a.playlist_items.unwrap_or(0),
                current = a.current_title.as_deref().unwrap_or("-"),
                users_opened = a.users_opened,
                sessions_closed = a.sessions_closed,
                emotes_added = a.emotes_added,
                emotes_removed = a.emotes_removed,
                "KV state loaded"
            );
        }
    }

    /// Reports a channel's drift once: a log line and the `drift_*` counters when it appears
    /// or changes, a line when it clears; the current figures are gauges in the status
    /// endpoint and `$SRV.STATS` (`gauges`), which `/metrics` shows as
    /// `userstats_bootstrap_drift{channel, kind}`.
    fn report_drift(&mut self, ctx: &Context, i: usize, d: &Drift) {
        let channel = self.domain_channels[i].1.clone();
        let before = self.reported.get(&i).cloned().unwrap_or_default();
        let (missing, extra, emotes) = d.new_since(&before);
        let s = &ctx.stats;
        s.add_extra("drift_users_missing", missing as u64);
        s.add_extra("drift_users_extra", extra as u64);
        s.add_extra("drift_emotes", emotes as u64);
        for (kind, n) in
            [("users_missing", d.users_missing.len()), ("users_extra", d.users_extra.len()), ("emotes", d.emotes)]
        {
            s.set_gauge(&format!("drift_{kind}"), &channel, n as i64);
        }
        let changed = missing + extra + emotes > 0
            || d.users_missing.len() < before.users_missing.len()
            || d.users_extra.len() < before.users_extra.len()
            || d.emote_names.len() < before.emote_names.len();
        if d.is_empty() && !before.is_empty() {
            tracing::info!(channel, "no drift left between the database and KV");
        } else if changed && !d.is_empty() {
            tracing::info!(channel, users_missing = ?d.users_missing, users_extra = ?d.users_extra, emotes = ?d.emote_names,
                "drift between the database and KV (repaired where the KV snapshot is the newer; an older snapshot is left alone, reported again only if it changes)");
        }
        self.reported.insert(i, d.clone());
    }

    /// Watches a bucket: every change makes the channel be read again.
    async fn watch(&mut self, i: usize, kind: Kind, store: &kv::Store) {
        let mut watch = match store.watch_all().await {
            Ok(w) => w,
            Err(e) => {
                tracing::debug!(error = %e, "cannot watch a KV bucket yet; the resync will retry");
                return;
            }
        };
        self.watching.insert((i, kind));
        let triggers = self.triggers.clone();
        tokio::spawn(async move {
            while let Some(entry) = watch.next().await {
                if entry.is_err() || triggers.send(Trigger::Changed(i)).await.is_err() {
                    break;
                }
            }
            let _ = triggers.send(Trigger::WatchEnded(i, kind)).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::tests::{apply, ev, temp_store, T0};
    use serde_json::json;
    use std::time::Instant;

    const S: i64 = 1000;
    const D: &str = "cytu.be";
    const CH: &str = "420Grindhouse";
    const KV: &str = include_str!("../../tests/fixtures/kv.json");

    fn config() -> Config {
        Config { ignore_users: vec!["KrytenBot".into()], ..Config::default() }
    }

    fn kv(bucket: &str, key: &str, revision: u64, at_ms: i64, value: &str) -> KvValue {
        KvValue {
            bucket: bucket.into(),
            key: key.into(),
            revision,
            created_ms: at_ms,
            value: value.as_bytes().to_vec(),
        }
    }

    /// The fixture's KV values, all put at `at_ms`.
    fn fixture(at_ms: i64) -> ChannelSnapshot {
        let all: Value = serde_json::from_str(KV).unwrap();
        let get = |b: &str, k: &str| {
            kv(&format!("kryten_{CH}_{b}"), k, 1, at_ms, all[format!("kryten_{CH}_{b}")][k].as_str().unwrap())
        };
        ChannelSnapshot {
            users: Some(get("userlist", "users")),
            emotes: Some(get("emotes", "list")),
            items: Some(get("playlist", "items")),
            current: Some(get("playlist", "current")),
        }
    }

    async fn load(store: &Store, a: &mut Applier, snap: &ChannelSnapshot) -> Applied {
        let ev = snapshot_events(D, CH, snap);
        assert!(ev.problems.is_empty(), "{:?}", ev.problems);
        apply_snapshot(store, a, D, CH, &ev, &Drift::default()).await.unwrap().0
    }

    #[test]
    fn bucket_names_keep_the_case_first_then_the_older_forms() {
        assert_eq!(
            bucket_names("Cytu.be", "420Grindhouse", Kind::Userlist),
            vec![
                "kryten_420Grindhouse_userlist",
                "kryten_420grindhouse_userlist",
                "cytube_cytu_be_420Grindhouse_userlist",
                "cytube_cytu_be_420grindhouse_userlist"
            ]
        );
    }

    #[tokio::test]
    async fn fixture_kv_gives_sessions_emotes_and_now_playing_once() {
        let store = temp_store("bootstrap-fixture").await;
        let mut a = Applier::new(&config());
        let r = load(&store, &mut a, &fixture(T0)).await;
        assert_eq!((r.users_opened, r.sessions_closed, r.emotes_added, r.emotes_removed), (6, 0, 3, 0));
        assert_eq!(r.media_set.as_deref(), Some("Never Gonna Give You Up"));
        assert_eq!((r.users_listed, r.emotes_listed, r.playlist_items), (Some(6), Some(3), Some(2)));
        assert_eq!(r.drift.users_missing.len(), 6);
        let mut tx = store.write().await.unwrap();
        let sessions = tx.sessions(D, CH).await.unwrap();
        assert_eq!(sessions.len(), 6);
        assert!(sessions.iter().any(|(k, s)| k == "sleepy" && s.afk && s.joined_ms == T0));
        assert_eq!(tx.listed_emotes(D, CH).await.unwrap(), vec!["#kappa", "/pogchamp", "LUL"]);
        assert_eq!(tx.media_at(D, CH, T0 + S).await.unwrap(), Some(("yt".into(), "dQw4w9WgXcQ".into())));
        assert_eq!(tx.current_uid(D, CH).await.unwrap(), Some(7));
        assert_eq!(tx.playlist_uids(D, CH).await.unwrap(), vec![7, 8]);
        tx.commit().await.unwrap();
        // The same revisions again: nothing changes, no drift left.
        let r = load(&store, &mut Applier::new(&config()), &fixture(T0)).await;
        assert_eq!((r.users_opened, r.sessions_closed, r.emotes_added, r.values_applied), (0, 0, 0, 0));
        assert_eq!(r.values_already_applied, 5);
        assert!(r.drift.users_missing.is_empty() && r.drift.users_extra.is_empty() && r.drift.emotes == 0);
        assert_eq!(r.media_set, None);
        assert_eq!(store.total(D, "total_media_changes").await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_user_removed_from_kv_is_closed_and_reported_as_drift() {
        let store = temp_store("bootstrap-removed").await;
        let mut a = Applier::new(&config());
        load(&store, &mut a, &fixture(T0)).await;
        let users = r#"[{"name": "Alice", "rank": 2, "meta": {"afk": false}}, {"name": "bob", "rank": 1}]"#;
        let snap = ChannelSnapshot {
            users: Some(kv("kryten_420Grindhouse_userlist", "users", 2, T0 + 60 * S, users)),
            ..Default::default()
        };
        let r = load(&store, &mut a, &snap).await;
        assert_eq!((r.users_opened, r.sessions_closed), (0, 4));
        assert_eq!(r.drift.users_extra, vec!["leader", "sleepy", "some-user", "zoë"]);
        let mut tx = store.write().await.unwrap();
        assert_eq!(tx.activity(D, CH, "zoë").await.unwrap(), Some((60 * S, 60 * S)));
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn presence_events_newer_than_the_snapshot_are_not_undone() {
        let store = temp_store("bootstrap-order").await;
        let mut presence = PresenceHandler::new(&config());
        let ch = |mut p: Parsed| {
            p.channel = CH.into();
            p
        };
        let user = |name: &str, afk: bool| json!({"name": name, "rank": 1, "meta": {"afk": afk}});
        // Live: newcomer joins after the put; Alice leaves after it; bob goes AFK after it.
        apply(
            &store,
            &mut presence,
            &[
                ch(ev("addUser", user("Alice", false), T0 - 100 * S, "l1")),
                ch(ev("addUser", user("bob", false), T0 - 100 * S, "l2")),
                ch(ev("addUser", user("newcomer", false), T0 + 10 * S, "l3")),
                ch(ev("userLeave", json!({"name": "Alice"}), T0 + 20 * S, "l4")),
                ch(ev("setAFK", json!({"name": "bob", "afk": true}), T0 + 30 * S, "l5")),
            ],
        )
        .await;
        // The KV snapshot put at T0 lists Alice and bob (not AFK), not newcomer.
        let r = load(&store, &mut Applier::new(&config()), &fixture(T0)).await;
        let mut tx = store.write().await.unwrap();
        let sessions: HashMap<String, crate::presence::Session> =
            tx.sessions(D, CH).await.unwrap().into_iter().collect();
        tx.commit().await.unwrap();
        assert!(sessions.contains_key("newcomer"), "a join newer than the snapshot stays");
        assert!(!sessions.contains_key("alice"), "a leave newer than the snapshot stays");
        assert!(sessions["bob"].afk, "an AFK change newer than the snapshot stays");
        assert!(sessions.contains_key("zoë"));
        assert_eq!(r.sessions_closed, 0);
        // The other order: the snapshot first, then the join: same result.
        let store = temp_store("bootstrap-order-2").await;
        load(&store, &mut Applier::new(&config()), &fixture(T0)).await;
        apply(&store, &mut presence, &[ch(ev("addUser", user("newcomer", false), T0 + 10 * S, "l3"))]).await;
        let mut tx = store.write().await.unwrap();
        assert!(tx.session(D, CH, "newcomer").await.unwrap().is_some());
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn an_emote_list_older_than_a_live_change_does_not_override_it() {
        let store = temp_store("bootstrap-emotes").await;
        let mut media = MediaHandler::new(&config());
        let mut p = ev("emoteList", json!([{"name": "new", "image": "", "source": ""}]), T0 + 10 * S, "e1");
        p.channel = CH.into();
        apply(&store, &mut media, &[p]).await;
        load(&store, &mut Applier::new(&config()), &fixture(T0)).await;
        let mut tx = store.write().await.unwrap();
        assert_eq!(tx.listed_emotes(D, CH).await.unwrap(), vec!["new"]);
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn malformed_values_are_problems_and_the_rest_applies() {
        let store = temp_store("bootstrap-malformed").await;
        let mut snap = fixture(T0);
        snap.users = Some(kv("kryten_420Grindhouse_userlist", "users", 1, T0, "[{\"name\": "));
        snap.current = None;
        let ev = snapshot_events(D, CH, &snap);
        assert_eq!(ev.problems.len(), 1);
        assert_eq!(ev.problems[0].0, Kind::Userlist);
        let (r, _) = apply_snapshot(&store, &mut Applier::new(&config()), D, CH, &ev, &Drift::default()).await.unwrap();
        assert_eq!((r.users_opened, r.emotes_added), (0, 3));
        // No `current`: the first playlist item plays.
        assert_eq!(r.media_set.as_deref(), Some("Never Gonna Give You Up"));
    }

    /// 04-targets.md: 10,000 users + 2,000 emotes + 5,000 playlist items applied ≤ 1 s
    /// (release build; `cargo test --release -p userstats-shared bootstrap -- --nocapture`).
    #[tokio::test]
    async fn large_snapshot_timing() {
        let store = temp_store("bootstrap-large").await;
        let snap = large_snapshot(T0);
        let started = Instant::now();
        let r = load(&store, &mut Applier::new(&config()), &snap).await;
        let took = started.elapsed();
        println!("bootstrap: 10,000 users + 2,000 emotes + 5,000 playlist items applied in {took:?}");
        assert_eq!((r.users_opened, r.emotes_added, r.playlist_items), (10_000, 2_000, Some(5_000)));
    }

    fn large_snapshot(at_ms: i64) -> ChannelSnapshot {
        let users: Vec<Value> =
            (0..10_000).map(|i| json!({"name": format!("user{i}"), "rank": 1, "meta": {"afk": i % 7 == 0}})).collect();
        let emotes: Vec<Value> =
            (0..2_000).map(|i| json!({"name": format!("emote{i}"), "image": "", "source": ""})).collect();
        let items: Vec<Value> = (0..5_000)
            .map(|i| json!({"media": {"id": format!("vid{i}"), "title": format!("Video_{i}.mp4"), "seconds": 60, "type": "yt"}, "uid": i}))
            .collect();
        ChannelSnapshot {
            users: Some(kv("u", "users", 1, at_ms, &Value::from(users).to_string())),
            emotes: Some(kv("e", "list", 1, at_ms, &Value::from(emotes).to_string())),
            items: Some(kv("p", "items", 1, at_ms, &Value::from(items).to_string())),
            current: None,
        }
    }
}
