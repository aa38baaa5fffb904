//! What `ingest-presence` does (02-semantics.md §Presence, §Population, §Retention): keeps
//! each user's open session in a channel in the database (so any replica can apply any
//! batch and a restart loses nothing), adds closed sessions' time to `activity`, records
//! CyTube's usercount, and — in [`Handler::tick`] — writes one population snapshot per
//! channel and interval slot, the daily watermarks, and prunes append-only rows past
//! retention.
//!
//! Durations come from event times only. A batch's sessions are read once, changed in
//! memory in stream order, and written back once each.

use crate::config::Config;
use crate::harness::ingest::{Handler, Report};
use crate::store::{SeenChannels, SeenUsers, Store, Tx};
use crate::wire::{self, Event, Parsed, User};
use anyhow::Result;
use std::collections::{HashMap, HashSet};

const DAY_MS: i64 = 86_400_000;
/// Most rows deleted by one retention pass (one tick).
const PRUNE_BATCH: i64 = 1000;
/// How often retention looks for work once it has found none (ms, wall clock).
const PRUNE_IDLE_MS: i64 = 600_000;

pub use crate::store::Session;

/// Durations are never negative nor longer than the longest believable session.
struct Clamp {
    max_ms: i64,
}

impl Clamp {
    fn duration(&self, ms: i64, report: &mut Report) -> i64 {
        if ms < 0 {
            report.count("clamped_durations");
            0
        } else if ms > self.max_ms {
            report.count("clamped_durations");
            self.max_ms
        } else {
            ms
        }
    }
}

impl Session {
    fn open(at_ms: i64, afk: bool) -> Session {
        Session { joined_ms: at_ms, afk, afk_since_ms: afk.then_some(at_ms), afk_ms: 0, last_event_ms: at_ms }
    }

    fn touch(&mut self, at_ms: i64) {
        self.last_event_ms = self.last_event_ms.max(at_ms);
    }

    /// A presence event on an open session at `at_ms`: the AFK state it states, if any
    /// (`setAFK`, an `addUser` with `meta.afk`), else only the time of its last event.
    fn update(&mut self, afk: Option<bool>, at_ms: i64, clamp: &Clamp, report: &mut Report) {
        match afk {
            Some(afk) => self.set_afk(afk, at_ms, clamp, report),
            None => self.touch(at_ms),
        }
    }

    /// An AFK transition at `at_ms`; repeating the current state is a no-op.
    fn set_afk(&mut self, afk: bool, at_ms: i64, clamp: &Clamp, report: &mut Report) {
        self.touch(at_ms);
        if self.afk == afk {
            return;
        }
        if afk {
            self.afk_since_ms = Some(at_ms);
        } else {
            let since = self.afk_since_ms.unwrap_or(at_ms);
            self.afk_ms = self.afk_ms.saturating_add(clamp.duration(at_ms.saturating_sub(since), report));
            self.afk_since_ms = None;
        }
        self.afk = afk;
    }

    /// Closes the session at `at_ms`: (total ms, not-AFK ms).
    fn close(&self, at_ms: i64, clamp: &Clamp, report: &mut Report) -> (i64, i64) {
        self.time_until(at_ms, |d| clamp.duration(d, report))
    }
}

type ChannelKey = (String, String);
type SessionKey = (String, String, String);

/// A session as this batch sees it: `None` = no open session.
struct Cached {
    now: Option<Session>,
    dirty: bool,
}

/// Everything one batch changes.
#[derive(Default)]
struct Batch {
    sessions: HashMap<SessionKey, Cached>,
    /// Channels whose open sessions are all in `sessions`.
    loaded: HashSet<ChannelKey>,
    activity: HashMap<SessionKey, (i64, i64)>,
    /// Users to create or update.
    users: SeenUsers,
    /// Users to update only if they exist (leaves): (domain, key) → (display, time).
    known: HashMap<(String, String), (String, i64)>,
    usercounts: HashMap<ChannelKey, (i64, i64)>,
    channels: SeenChannels,
    /// Set when applying a KV snapshot: user key → last seen, so that a listed user whose
    /// session was closed after the snapshot's time is not reopened by it.
    snapshot_last_seen: Option<HashMap<String, i64>>,
}

impl Batch {
    async fn get(&mut self, tx: &mut Tx, d: &str, c: &str, key: &str) -> Result<Option<Session>> {
        let k = (d.to_string(), c.to_string(), key.to_string());
        if let Some(s) = self.sessions.get(&k) {
            return Ok(s.now);
        }
        let now = if self.loaded.contains(&(k.0.clone(), k.1.clone())) { None } else { tx.session(d, c, key).await? };
        self.sessions.insert(k, Cached { now, dirty: false });
        Ok(now)
    }

    fn put(&mut self, d: &str, c: &str, key: &str, s: Option<Session>) {
        self.sessions.insert((d.to_string(), c.to_string(), key.to_string()), Cached { now: s, dirty: true });
    }

    /// Keys of the channel's open sessions (loading them all once).
    async fn open_keys(&mut self, tx: &mut Tx, d: &str, c: &str) -> Result<Vec<String>> {
        let ck = (d.to_string(), c.to_string());
        if !self.loaded.contains(&ck) {
            for (key, s) in tx.sessions(d, c).await? {
                self.sessions
                    .entry((d.to_string(), c.to_string(), key))
                    .or_insert(Cached { now: Some(s), dirty: false });
            }
            self.loaded.insert(ck);
        }
        let mut keys: Vec<String> = self
            .sessions
            .iter()
            .filter(|((sd, sc, _), s)| sd == d && sc == c && s.now.is_some())
            .map(|((_, _, key), _)| key.clone())
            .collect();
        keys.sort();
        Ok(keys)
    }

    fn see_known_user(&mut self, d: &str, key: &str, display: &str, at_ms: i64) {
        let u = self.known.entry((d.to_string(), key.to_string())).or_insert_with(|| (display.to_string(), at_ms));
        if at_ms >= u.1 {
            *u = (display.to_string(), at_ms);
        }
    }

    async fn write(self, tx: &mut Tx) -> Result<()> {
        self.channels.write(tx).await?;
        let new_users = self.users.write(tx).await?;
        for ((d, key), (display, at)) in &self.known {
            tx.touch_known_user(d, key, display, *at).await?;
        }
        for (d, n) in new_users {
            tx.add_total(&d, "total_users", n).await?;
        }
        for ((d, c, key), cached) in &self.sessions {
            if !cached.dirty {
                continue;
            }
            match &cached.now {
                Some(s) => tx.put_session(d, c, key, s).await?,
                None => tx.delete_session(d, c, key).await?,
            }
        }
        for ((d, c, key), (total, not_afk)) in &self.activity {
            tx.add_activity(d, c, key, *total, *not_afk).await?;
        }
        for ((d, c), (n, at)) in &self.usercounts {
            tx.set_usercount(d, c, *n, *at).await?;
        }
        Ok(())
    }
}

pub struct PresenceHandler {
    /// Lowercased names never tracked.
    ignored: HashSet<String>,
    clamp: Clamp,
    /// Configured channels as (lowercased domain, channel); empty = every channel seen.
    channels: Vec<ChannelKey>,
    interval_ms: i64,
    retention_ms: i64,
    /// The slot whose snapshots this instance has written (or found written).
    last_slot: Option<i64>,
    /// Wall-clock time before which retention does not look for work again.
    next_prune_ms: i64,
}

impl PresenceHandler {
    pub fn new(config: &Config) -> Self {
        PresenceHandler {
            ignored: config.ignored_users(),
            clamp: Clamp { max_ms: config.ingest.max_session_ms() },
            channels: config.channels.iter().map(|c| (c.domain.to_lowercase(), c.channel.clone())).collect(),
            interval_ms: (config.snapshots.interval_seconds.max(1) as i64).saturating_mul(1000),
            retention_ms: (config.retention.days.max(1) as i64).saturating_mul(DAY_MS),
            last_slot: None,
            next_prune_ms: 0,
        }
    }

    /// Opens a session if none is open; an open one keeps running (its AFK state follows
    /// `afk` when given).
    async fn join(&self, tx: &mut Tx, b: &mut Batch, p: &Parsed, user: &User, report: &mut Report) -> Result<()> {
        let (d, c, t) = (p.domain.as_str(), p.channel.as_str(), p.time_ms);
        let key = user.name.to_lowercase();
        b.users.see(d, &key, &user.name, t);
        let s = match b.get(tx, d, c, &key).await? {
            None => {
                // A snapshot older than what we know of this user (left since) opens nothing.
                if b.snapshot_last_seen.as_ref().and_then(|m| m.get(&key)).is_some_and(|seen| *seen > t) {
                    report.count("stale_snapshot_users");
                    return Ok(());
                }
                Session::open(t, user.afk.unwrap_or(false))
            }
            // Older than the session's last presence event: it cannot override it.
            Some(s) if s.last_event_ms > t => {
                report.count("stale_presence_events");
                return Ok(());
            }
            Some(mut s) => {
                s.update(user.afk, t, &self.clamp, report);
                s
            }
        };
        b.put(d, c, &key, Some(s));
        Ok(())
    }

    /// Closes a user's session at `at_ms`; false when none was open.
    async fn leave(
        &self,
        tx: &mut Tx,
        b: &mut Batch,
        (d, c): (&str, &str),
        key: &str,
        at_ms: i64,
        report: &mut Report,
    ) -> Result<bool> {
        let Some(s) = b.get(tx, d, c, key).await? else {
            return Ok(false);
        };
        let (total, not_afk) = s.close(at_ms, &self.clamp, report);
        let a = b.activity.entry((d.to_string(), c.to_string(), key.to_string())).or_default();
        a.0 += total;
        a.1 += not_afk;
        b.put(d, c, key, None);
        Ok(true)
    }

    async fn afk(
        &self,
        tx: &mut Tx,
        b: &mut Batch,
        p: &Parsed,
        name: &str,
        afk: Option<bool>,
        report: &mut Report,
    ) -> Result<()> {
        let (d, c, t) = (p.domain.as_str(), p.channel.as_str(), p.time_ms);
        let key = name.to_lowercase();
        b.users.see(d, &key, name, t);
        if let Some(mut s) = b.get(tx, d, c, &key).await? {
            s.update(afk, t, &self.clamp, report);
            b.put(d, c, &key, Some(s));
        }
        Ok(())
    }

    async fn userlist(
        &self,
        tx: &mut Tx,
        b: &mut Batch,
        p: &Parsed,
        users: &[User],
        report: &mut Report,
    ) -> Result<()> {
        let (d, c, t) = (p.domain.as_str(), p.channel.as_str(), p.time_ms);
        // Loads the channel's sessions at once (the joins below then find them cached).
        let open = b.open_keys(tx, d, c).await?;
        let mut listed: HashSet<String> = HashSet::new();
        for u in users {
            let key = u.name.to_lowercase();
            if self.ignored.contains(&key) || !listed.insert(key) {
                continue;
            }
            self.join(tx, b, p, u, report).await?;
        }
        for key in open {
            if listed.contains(&key) {
                continue;
            }
            // A session whose last event is newer than the list is not closed by it.
            if b.get(tx, d, c, &key).await?.is_some_and(|s| s.last_event_ms > t) {
                report.count("stale_presence_events");
                continue;
            }
            self.leave(tx, b, (d, c), &key, t, report).await?;
        }
        Ok(())
    }

    /// Applies a userlist read from the bridge's KV (`p.time_ms` = the time of the put) in
    /// the open transaction: the same rules as a live `userlist`, and a listed user without a
    /// session who was seen after the snapshot (a leave we already know of) is not reopened.
    pub async fn apply_snapshot(&mut self, tx: &mut Tx, p: &Parsed, report: &mut Report) -> Result<()> {
        let Event::Userlist(users) = &p.event else {
            report.unknown += 1;
            return Ok(());
        };
        let last_seen = tx.users_last_seen(&p.domain).await?.into_iter().collect();
        let mut b = Batch { snapshot_last_seen: Some(last_seen), ..Batch::default() };
        b.channels.see(&p.domain, &p.channel, p.time_ms);
        self.userlist(tx, &mut b, p, users, report).await?;
        b.write(tx).await
    }

    /// The channels to snapshot: the configured ones (under the name events use, when seen),
    /// else every channel seen.
    async fn snapshot_channels(&self, tx: &mut Tx) -> Result<Vec<ChannelKey>> {
        let known = tx.known_channels().await?;
        if self.channels.is_empty() {
            return Ok(known);
        }
        Ok(self
            .channels
            .iter()
            .map(|(d, c)| {
                known
                    .iter()
                    .find(|(kd, kc)| kd.eq_ignore_ascii_case(d) && kc.to_lowercase() == c.to_lowercase())
                    .cloned()
                    .unwrap_or_else(|| (d.clone(), c.clone()))
            })
            .collect())
    }

    /// One population snapshot per channel for the interval slot containing `now_ms`.
    async fn snapshot(&mut self, store: &Store, now_ms: i64) -> Result<()> {
        let slot = now_ms - now_ms.rem_euclid(self.interval_ms);
        if self.last_slot == Some(slot) {
            return Ok(());
        }
        let day = wire::format_hour(slot).chars().take(10).collect::<String>();
        let mut tx = store.write().await?;
        for (d, c) in self.snapshot_channels(&mut tx).await? {
            let (connected, chat) = tx.presence_counts(&d, &c).await?;
            let usercount = tx.usercount(&d, &c).await?;
            if tx.insert_population(&d, &c, slot, connected, chat, usercount).await? {
                tx.update_watermarks(&d, &c, &day, slot, connected, chat).await?;
            }
        }
        tx.commit().await?;
        self.last_slot = Some(slot);
        Ok(())
    }

    /// Deletes at most [`PRUNE_BATCH`] append-only rows older than the retention.
    async fn prune(&mut self, store: &Store, now_ms: i64) -> Result<()> {
        if now_ms < self.next_prune_ms {
            return Ok(());
        }
        let cutoff = now_ms.saturating_sub(self.retention_ms);
        let mut tx = store.write().await?;
        let deleted = tx.prune(cutoff, PRUNE_BATCH).await?;
        tx.commit().await?;
        if deleted < PRUNE_BATCH {
            // Nothing more is due now; look again later.
            self.next_prune_ms = now_ms + PRUNE_IDLE_MS;
        }
        Ok(())
    }
}

/// The events ingest-presence consumes.
pub const EVENTS: &[&str] = &["adduser", "userleave", "setafk", "setusermeta", "userlist", "usercount"];

impl Handler for PresenceHandler {
    fn events(&self) -> &'static [&'static str] {
        EVENTS
    }

    async fn apply(&mut self, tx: &mut Tx, events: &[&Parsed], report: &mut Report) -> Result<()> {
        let mut b = Batch::default();
        for p in events {
            let name = match &p.event {
                Event::AddUser(u) => Some(&u.name),
                Event::UserLeave { name } | Event::SetAfk { name, .. } | Event::SetUserMeta { name, .. } => Some(name),
                Event::Userlist(_) | Event::Usercount(_) => None,
                _ => {
                    report.unknown += 1;
                    continue;
                }
            };
            if name.is_some_and(|n| self.ignored.contains(&n.to_lowercase())) {
                report.ignored += 1;
                continue;
            }
            b.channels.see(&p.domain, &p.channel, p.time_ms);
            let (d, c, t) = (p.domain.as_str(), p.channel.as_str(), p.time_ms);
            match &p.event {
                Event::AddUser(u) => self.join(tx, &mut b, p, u, report).await?,
                Event::UserLeave { name } => {
                    // Moves a known user's last seen; a name never seen creates no user.
                    let key = name.to_lowercase();
                    b.see_known_user(d, &key, name, t);
                    if !self.leave(tx, &mut b, (d, c), &key, t, report).await? {
                        report.count("orphan_leaves");
                    }
                }
                Event::SetAfk { name, afk } => self.afk(tx, &mut b, p, name, Some(*afk), report).await?,
                Event::SetUserMeta { name, afk } => self.afk(tx, &mut b, p, name, *afk, report).await?,
                Event::Userlist(users) => self.userlist(tx, &mut b, p, users, report).await?,
                Event::Usercount(n) => {
                    let u = b.usercounts.entry((d.to_string(), c.to_string())).or_insert((*n, t));
                    if t >= u.1 {
                        *u = (*n, t);
                    }
                }
                _ => {}
            }
        }
        b.write(tx).await
    }

    async fn tick(&mut self, store: &Store, now_ms: i64) -> Result<()> {
        let snapshot = self.snapshot(store, now_ms).await;
        self.prune(store, now_ms).await?;
        snapshot
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::media::MediaHandler;
    use crate::store::HourDelta;
    use serde_json::{json, Value};

    pub(crate) const T0: i64 = 1_763_884_800_000; // 2025-11-23T08:00:00Z
    const S: i64 = 1000;
    const D: &str = "cytu.be";
    const C: &str = "Chan";

    pub(crate) use crate::store::test_support::temp_store;

    /// An envelope as the bridge publishes it, parsed.
    pub(crate) fn ev(event: &str, payload: Value, at_ms: i64, id: &str) -> Parsed {
        let env = json!({"event_name": event, "payload": payload, "channel": C, "domain": D,
            "timestamp": wire::format_timestamp(at_ms), "correlation_id": id});
        wire::parse(env.to_string().as_bytes()).unwrap()
    }

    /// Applies one batch in its own transaction, as the harness does (ids deduplicated).
    pub(crate) async fn apply<H: Handler>(store: &Store, h: &mut H, events: &[Parsed]) -> Report {
        let mut tx = store.write().await.unwrap();
        let ids: Vec<String> = events.iter().map(|p| p.id.clone()).collect();
        let fresh = tx.claim_new_ids(&ids, 0).await.unwrap();
        let new: Vec<&Parsed> = events.iter().zip(fresh).filter(|(_, f)| *f).map(|(p, _)| p).collect();
        let mut report = Report::default();
        h.apply(&mut tx, &new, &mut report).await.unwrap();
        tx.commit().await.unwrap();
        report
    }

    fn user(name: &str, afk: bool) -> Value {
        json!({"name": name, "rank": 1, "profile": {"image": "", "text": ""}, "meta": {"afk": afk, "muted": false}})
    }

    fn config() -> Config {
        Config { ignore_users: vec!["KrytenBot".into()], ..Config::default() }
    }

    /// A fresh database and a handler of the default configuration.
    async fn fresh(tag: &str) -> (Store, PresenceHandler) {
        (temp_store(tag).await, PresenceHandler::new(&config()))
    }

    async fn activity(store: &Store, key: &str) -> Option<(i64, i64)> {
        let mut tx = store.write().await.unwrap();
        let a = tx.activity(D, C, key).await.unwrap();
        tx.commit().await.unwrap();
        a
    }

    async fn session(store: &Store, key: &str) -> Option<Session> {
        let mut tx = store.write().await.unwrap();
        let s = tx.session(D, C, key).await.unwrap();
        tx.commit().await.unwrap();
        s
    }

    fn afk_story() -> Vec<Parsed> {
        vec![
            ev("addUser", user("Alice", false), T0, "e1"),
            ev("setAFK", json!({"name": "alice", "afk": true}), T0 + 600 * S, "e2"),
            ev("setUserMeta", json!({"name": "Alice", "meta": {"afk": false}}), T0 + 900 * S, "e3"),
            ev("userLeave", json!({"name": "Alice"}), T0 + 1800 * S, "e4"),
        ]
    }

    #[tokio::test]
    async fn afk_time_in_one_batch() {
        let (store, mut h) = fresh("presence-one-batch").await;
        let r = apply(&store, &mut h, &afk_story()).await;
        assert_eq!(activity(&store, "alice").await, Some((1800 * S, 1500 * S)));
        assert_eq!(session(&store, "alice").await, None);
        assert!(r.extra.is_empty(), "{:?}", r.extra);
    }

    #[tokio::test]
    async fn afk_time_across_batches_replicas_and_restarts() {
        let store = temp_store("presence-split").await;
        for e in afk_story() {
            // A fresh handler per batch: another replica, or this one after a restart.
            let mut h = PresenceHandler::new(&config());
            apply(&store, &mut h, std::slice::from_ref(&e)).await;
            // A redelivered event is skipped.
            apply(&store, &mut h, &[e]).await;
        }
        assert_eq!(activity(&store, "alice").await, Some((1800 * S, 1500 * S)));
        let store2 = temp_store("presence-split-afk-open").await;
        let mut h = PresenceHandler::new(&config());
        apply(&store2, &mut h, &afk_story()[..2]).await;
        let s = session(&store2, "alice").await.unwrap();
        assert!(s.afk);
        assert_eq!(s.afk_since_ms, Some(T0 + 600 * S));
    }

    #[tokio::test]
    async fn repeated_add_user_keeps_the_session_and_leaves_close_it_once() {
        let (store, mut h) = fresh("presence-repeat").await;
        apply(&store, &mut h, &[ev("addUser", user("bob", false), T0, "a1")]).await;
        apply(&store, &mut h, &[ev("addUser", user("Bob", false), T0 + 60 * S, "a2")]).await;
        let s = session(&store, "bob").await.unwrap();
        assert_eq!((s.joined_ms, s.last_event_ms), (T0, T0 + 60 * S));
        // A repeated addUser with another AFK state is a transition at its time.
        apply(&store, &mut h, &[ev("addUser", user("bob", true), T0 + 100 * S, "a3")]).await;
        let r = apply(&store, &mut h, &[ev("userLeave", json!({"name": "bob"}), T0 + 120 * S, "a4")]).await;
        assert_eq!(activity(&store, "bob").await, Some((120 * S, 100 * S)));
        assert_eq!(r.extra.get("orphan_leaves"), None);
        // The session is gone: the next leave is an orphan.
        let r = apply(&store, &mut h, &[ev("userLeave", json!({"name": "bob"}), T0 + 130 * S, "a5")]).await;
        assert_eq!(r.extra.get("orphan_leaves"), Some(&1));
        assert_eq!(activity(&store, "bob").await, Some((120 * S, 100 * S)));
    }

    #[tokio::test]
    async fn orphan_leave_is_counted_and_creates_no_user() {
        let (store, mut h) = fresh("presence-orphan").await;
        let r = apply(&store, &mut h, &[ev("userLeave", json!({"name": "ghost"}), T0, "o1")]).await;
        assert_eq!(r.extra.get("orphan_leaves"), Some(&1));
        let mut tx = store.write().await.unwrap();
        assert_eq!(tx.user_first_seen(D, "ghost").await.unwrap(), None);
        assert_eq!(tx.activity(D, C, "ghost").await.unwrap(), None);
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn userlist_is_full_truth() {
        let (store, mut h) = fresh("presence-userlist").await;
        let list = json!([user("Alice", false), user("sleepy", true), user("KrytenBot", false)]);
        apply(&store, &mut h, &[ev("userlist", list, T0, "u1")]).await;
        assert!(session(&store, "sleepy").await.unwrap().afk);
        assert_eq!(session(&store, "krytenbot").await, None, "ignored users are never tracked");
        apply(&store, &mut h, &[ev("addUser", user("carol", false), T0 + 10 * S, "u2")]).await;
        // sleepy and carol are missing from the next list: closed at the list's time.
        let list = json!([user("alice", false)]);
        let mut h = PresenceHandler::new(&config());
        apply(&store, &mut h, &[ev("userlist", list, T0 + 100 * S, "u3")]).await;
        assert_eq!(activity(&store, "sleepy").await, Some((100 * S, 0)));
        assert_eq!(activity(&store, "carol").await, Some((90 * S, 90 * S)));
        let alice = session(&store, "alice").await.unwrap();
        assert_eq!(alice.joined_ms, T0, "a listed user's session keeps running");
        assert_eq!(activity(&store, "alice").await, None);
    }

    #[tokio::test]
    async fn absurd_durations_are_clamped_and_counted() {
        let (store, mut h) = fresh("presence-clamp").await;
        apply(&store, &mut h, &[ev("addUser", user("late", false), T0 + 100 * S, "c1")]).await;
        let r = apply(&store, &mut h, &[ev("userLeave", json!({"name": "late"}), T0, "c2")]).await;
        assert_eq!(r.extra.get("clamped_durations"), Some(&1));
        assert_eq!(activity(&store, "late").await, Some((0, 0)));
        apply(&store, &mut h, &[ev("addUser", user("long", false), T0, "c3")]).await;
        let r = apply(&store, &mut h, &[ev("userLeave", json!({"name": "long"}), T0 + 30 * DAY_MS, "c4")]).await;
        assert_eq!(r.extra.get("clamped_durations"), Some(&1));
        assert_eq!(activity(&store, "long").await, Some((7 * DAY_MS, 7 * DAY_MS)));
    }

    #[tokio::test]
    async fn usercount_and_users_are_recorded() {
        let (store, mut h) = fresh("presence-usercount").await;
        apply(&store, &mut h, &[ev("usercount", json!(11), T0, "n1"), ev("usercount", json!(12), T0 + S, "n2")]).await;
        apply(&store, &mut h, &[ev("addUser", user("Zoë", false), T0 + 5 * S, "n3")]).await;
        apply(&store, &mut h, &[ev("addUser", user("zoë", false), T0 + 2 * S, "n4")]).await;
        let mut tx = store.write().await.unwrap();
        assert_eq!(tx.usercount(D, C).await.unwrap(), Some(12));
        assert_eq!(tx.user_first_seen(D, "zoë").await.unwrap(), Some(T0 + 2 * S));
        tx.commit().await.unwrap();
        assert_eq!(store.user(D, "Zoë").await.unwrap().unwrap().display, "Zoë");
        assert_eq!(store.total(D, "total_users").await.unwrap(), 1);
    }

    #[tokio::test]
    async fn one_population_snapshot_per_slot_and_daily_watermarks() {
        let store = temp_store("presence-population").await;
        let mut cfg = config();
        cfg.channels = vec![
            crate::config::ChannelConfig { domain: "Cytu.be".into(), channel: "chan".into() },
            crate::config::ChannelConfig { domain: "cytu.be".into(), channel: "Empty".into() },
        ];
        let mut h = PresenceHandler::new(&cfg);
        let list = json!([user("a", false), user("b", true), user("c", false)]);
        apply(&store, &mut h, &[ev("userlist", list, T0, "p1"), ev("usercount", json!(9), T0, "p2")]).await;
        let now = T0 + 1234 * S; // inside the slot starting at T0 + 1200 s
        let slot = T0 + 1200 * S;
        h.tick(&store, now).await.unwrap();
        h.tick(&store, now + S).await.unwrap();
        apply(&store, &mut h, &[ev("userLeave", json!({"name": "a"}), T0 + 1235 * S, "p3")]).await;
        let mut replica = PresenceHandler::new(&cfg);
        replica.tick(&store, now + 2 * S).await.unwrap();
        let mut tx = store.write().await.unwrap();
        assert_eq!(tx.population(D, C, 0).await.unwrap(), vec![(slot, 3, 2, Some(9))]);
        assert_eq!(tx.population(D, "Empty", 0).await.unwrap(), vec![(slot, 0, 0, None)]);
        tx.commit().await.unwrap();
        // Next slots: fewer, then more users; the day keeps one high and one low row.
        h.tick(&store, now + 300 * S).await.unwrap();
        apply(&store, &mut h, &[ev("addUser", user("d", false), T0 + 1600 * S, "p4")]).await;
        apply(&store, &mut h, &[ev("addUser", user("e", false), T0 + 1600 * S, "p5")]).await;
        h.tick(&store, now + 600 * S).await.unwrap();
        let mut tx = store.write().await.unwrap();
        let rows = tx.population(D, C, 0).await.unwrap();
        assert_eq!(rows.iter().map(|r| r.1).collect::<Vec<_>>(), vec![3, 2, 4]);
        let marks = tx.watermarks(D, C, "2025-11-23").await.unwrap();
        assert_eq!(marks, vec![("high".to_string(), slot + 600 * S, 4, 3), ("low".to_string(), slot + 300 * S, 2, 1)]);
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn snapshots_every_seen_channel_when_none_configured() {
        let (store, mut h) = fresh("presence-population-all").await;
        apply(&store, &mut h, &[ev("addUser", user("a", false), T0, "q1")]).await;
        h.tick(&store, T0 + 10 * S).await.unwrap();
        let mut tx = store.write().await.unwrap();
        assert_eq!(tx.population(D, C, 0).await.unwrap(), vec![(T0, 1, 1, None)]);
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn retention_prunes_old_rows_in_small_batches() {
        let (store, mut h) = fresh("presence-retention").await;
        apply(&store, &mut h, &[ev("usercount", json!(1), T0, "r0")]).await;
        let mut tx = store.write().await.unwrap();
        for i in 0..1500 {
            tx.insert_population(D, C, T0 + i * 300 * S, 1, 1, None).await.unwrap();
        }
        tx.append_media(D, C, T0, "yt", "old", "Old").await.unwrap();
        tx.append_media(D, C, T0 + S, "yt", "last", "Last").await.unwrap();
        tx.add_hourly(&[HourDelta { domain: D, channel: C, hour_ms: T0, messages: 1, kudos: 0 }]).await.unwrap();
        tx.commit().await.unwrap();
        let now = T0 + 366 * DAY_MS + 1500 * 300 * S;
        h.tick(&store, now).await.unwrap();
        let mut tx = store.write().await.unwrap();
        assert_eq!(tx.population(D, C, 0).await.unwrap().len(), 501, "at most 1000 rows per tick");
        tx.commit().await.unwrap();
        h.tick(&store, now + S).await.unwrap();
        let mut tx = store.write().await.unwrap();
        let left = tx.population(D, C, 0).await.unwrap();
        assert_eq!(left.len(), 1, "only the snapshot just written");
        let log = store.media_history(D, C, 10).await.unwrap();
        assert_eq!(log.len(), 1, "the newest media entry of a channel is kept");
        assert_eq!(log[0].2, "last");
        tx.commit().await.unwrap();
        assert!(store.hourly(D, C, 0, i64::MAX).await.unwrap().is_empty());
    }

    /// The fixture stream through both handlers, each taking only its own events.
    #[tokio::test]
    async fn fixture_stream() {
        const EVENTS: &str = include_str!("../../tests/fixtures/events.jsonl");
        let parsed: Vec<(String, Parsed)> = EVENTS
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let line: Value = serde_json::from_str(l).unwrap();
                let subject = line["subject"].as_str().unwrap();
                let token = subject.rsplit('.').next().unwrap().to_string();
                (token, wire::parse(line["data"].as_str().unwrap().as_bytes()).unwrap())
            })
            .collect();
        for batch_size in [1usize, 5, 100] {
            let store = temp_store(&format!("fixture-{batch_size}")).await;
            let mut orphans = 0;
            for chunk in parsed.chunks(batch_size) {
                // New instances per batch: as if replicas took turns.
                let mut presence = PresenceHandler::new(&config());
                let mut media = MediaHandler::new(&config());
                let mine = |events: &[&str]| -> Vec<Parsed> {
                    chunk.iter().filter(|(t, _)| events.contains(&t.as_str())).map(|(_, p)| p.clone()).collect()
                };
                let p = mine(presence.events());
                let m = mine(media.events());
                let r = apply(&store, &mut presence, &p).await;
                orphans += r.extra.get("orphan_leaves").copied().unwrap_or(0);
                assert!(!r.extra.contains_key("clamped_durations"));
                apply(&store, &mut media, &m).await;
            }
            let ch = "420Grindhouse";
            let mut tx = store.write().await.unwrap();
            assert_eq!(tx.activity(D, ch, "newcomer").await.unwrap(), Some((120 * S, 120 * S)));
            assert_eq!(tx.activity(D, ch, "sleepy").await.unwrap(), Some((1066 * S, 130 * S)));
            let alice = tx.session(D, ch, "alice").await.unwrap().unwrap();
            assert_eq!((alice.joined_ms, alice.afk, alice.afk_ms), (T0, false, 600 * S));
            assert_eq!(tx.activity(D, ch, "alice").await.unwrap(), None);
            assert_eq!(tx.session(D, ch, "sleepy").await.unwrap(), None);
            assert_eq!(tx.usercount(D, ch).await.unwrap(), Some(12));
            let log: Vec<(String, String, String)> = store
                .media_history(D, ch, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|(_, ty, id, title)| (ty, id, title))
                .collect();
            assert_eq!(
                log,
                vec![
                    ("fi".into(), "abc123".into(), "Night of the Living Dead".into()),
                    ("yt".into(), "dQw4w9WgXcQ".into(), "Never Gonna Give You Up".into()),
                ]
            );
            assert_eq!(tx.current_uid(D, ch).await.unwrap(), Some(7));
            for u in ["alice", "bob", "zoë", "some-user", "leader", "sleepy", "newcomer"] {
                assert!(tx.user_first_seen(D, u).await.unwrap().is_some(), "{u}");
            }
            for u in ["krytenbot", "nobody-here"] {
                assert_eq!(tx.user_first_seen(D, u).await.unwrap(), None, "{u}");
            }
            let emotes: Vec<String> = tx.listed_emotes(D, ch).await.unwrap();
            assert!(emotes.contains(&"monkaS".to_string()) && emotes.contains(&"#kappa".to_string()));
            tx.commit().await.unwrap();
            assert_eq!(orphans, 1);
            assert_eq!(store.total(D, "total_users").await.unwrap(), 7);
            assert_eq!(store.total(D, "total_media_changes").await.unwrap(), 2);
        }
    }
}
