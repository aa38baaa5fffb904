//! The `bootstrap-kv` function: binds and watches the buckets of every configured
//! channel, applies their snapshots, resyncs, reports drift once, answers
//! `bootstrap.resync`.

use super::apply::{apply_snapshot, Applied, Applier, Drift};
use super::snapshot::{bucket_names, snapshot_events, ChannelSnapshot, Kind, KvValue, KINDS};
use crate::config::ChannelConfig;
use crate::harness::{service, Context};
use crate::wire;
use anyhow::{anyhow, Result};
use async_nats::jetstream::{self, kv};
use futures::StreamExt;
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long a watched change waits before the channel is read. The bridge writes a KV key
/// a fraction of a second *before* it publishes the event that goes with it (`current`
/// before `changeMedia`, `users` before `addUser`/`userLeave`); the event is the primary
/// source and carries its own time, the KV watch is the safety net for events nobody
/// captured. Waiting a moment lets the ingest functions apply the event first, so the
/// numbers are those of the event stream alone (the media log and sessions also stay right
/// when the KV value does come first; see `MediaHandler::change_media`).
const WATCH_SETTLE: Duration = Duration::from_millis(1000);

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
pub async fn run(ctx: Context) -> Result<()> {
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
                    b.sync(&ctx, i).await;
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
                        b.sync(&ctx, j).await;
                    }
                    for t in later {
                        b.handle_later(&ctx, t).await;
                    }
                }
                Some(t) => b.handle_later(&ctx, t).await,
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
            Ok((a, outcome)) => {
                outcome.add_to(&ctx.stats);
                Self::log_loaded(&channel, &a);
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

    /// The log line of a snapshot that changed something.
    fn log_loaded(channel: &str, a: &Applied) {
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

    /// Reports a channel's drift once: a log line when it appears or changes (its `drift_*`
    /// counters are in the snapshot's outcome), a line when it clears; the current figures
    /// are gauges in the status endpoint and `$SRV.STATS` (`gauges`), which `/metrics` shows
    /// as `userstats_bootstrap_drift{channel, kind}`.
    fn report_drift(&mut self, ctx: &Context, i: usize, d: &Drift) {
        let channel = self.domain_channels[i].1.clone();
        let before = self.reported.get(&i).cloned().unwrap_or_default();
        let (missing, extra, emotes) = d.new_since(&before);
        let s = &ctx.stats;
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
