//! A channel's snapshot applied with the presence and media logic, in one transaction,
//! and the drift between the database and KV found before repairing it.

use super::snapshot::SnapshotEvents;
use super::FUNCTION;
use crate::config::Config;
use crate::harness::batch::{Backoff, Outcome};
use crate::harness::ingest::{Handler, Report};
use crate::harness::now_ms;
use crate::media::MediaHandler;
use crate::presence::PresenceHandler;
use crate::store::{Store, Tx};
use crate::wire::{Event, Parsed};
use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

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

    /// Applies a channel's snapshot events in the open transaction: the state before, the
    /// drift and what KV lists, the revisions never applied before, then what changed.
    pub async fn apply(
        &mut self,
        tx: &mut Tx,
        domain: &str,
        channel: &str,
        events: &SnapshotEvents,
        report: &mut Report,
    ) -> Result<Applied> {
        let mut a = Applied::default();
        let before = Listed::read(tx, domain, channel).await?;
        let before_media = tx.media_at(domain, channel, i64::MAX).await?;
        let renames = tx.emote_renames(domain, channel).await?;
        let emote_list = events.emote_list.as_ref().map(|p| through_renames(p, &renames, &before.emotes));
        self.observe(&mut a, events, emote_list.as_ref(), &before);
        self.apply_fresh(tx, (domain, channel), events, emote_list.as_ref(), &mut a, report).await?;

        let after = Listed::read(tx, domain, channel).await?;
        a.users_opened = after.sessions.difference(&before.sessions).count();
        a.sessions_closed = before.sessions.difference(&after.sessions).count();
        a.emotes_added = after.emotes.difference(&before.emotes).count();
        a.emotes_removed = before.emotes.difference(&after.emotes).count();
        if tx.media_at(domain, channel, i64::MAX).await? != before_media {
            a.media_set = a.current_title.clone();
        }
        Ok(a)
    }

    /// The drift, before repairing it, and what KV lists (users, emotes, playlist items,
    /// the title now playing).
    fn observe(&self, a: &mut Applied, events: &SnapshotEvents, emote_list: Option<&Parsed>, before: &Listed) {
        if let Some(Event::Userlist(users)) = events.userlist.as_ref().map(|p| &p.event) {
            let kv: BTreeMap<String, &str> = users
                .iter()
                .map(|u| (u.name.to_lowercase(), u.name.as_str()))
                .filter(|(k, _)| !self.ignored.contains(k))
                .collect();
            a.users_listed = Some(kv.len());
            a.drift.users_missing =
                kv.iter().filter(|(k, _)| !before.sessions.contains(*k)).map(|(_, n)| n.to_string()).collect();
            a.drift.users_extra = before.sessions.iter().filter(|k| !kv.contains_key(*k)).cloned().collect();
        }
        if let Some(p) = emote_list {
            if let Event::EmoteList(list) = &p.event {
                let kv: BTreeSet<&str> = list.iter().map(|e| e.name.as_str()).collect();
                a.emotes_listed = Some(kv.len());
                a.drift.emote_names = kv
                    .iter()
                    .filter(|n| !before.emotes.contains(**n))
                    .map(|n| n.to_string())
                    .chain(before.emotes.iter().filter(|n| !kv.contains(n.as_str())).cloned())
                    .collect();
                a.drift.emotes = a.drift.emote_names.len();
            }
        }
        if let Some(Event::Playlist(items)) = events.playlist.as_ref().map(|p| &p.event) {
            a.playlist_items = Some(items.len());
        }
        if let Some(Event::ChangeMedia(m)) = events.now_playing.first().map(|p| &p.event) {
            a.current_title = Some(crate::detect::clean_title(&m.title));
        }
    }

    /// Only revisions never applied before (idempotency), in the handlers' own logic: the
    /// userlist through presence, the emote list (unless a later list change wins), the
    /// playlist and what plays now through media.
    async fn apply_fresh(
        &mut self,
        tx: &mut Tx,
        (domain, channel): (&str, &str),
        events: &SnapshotEvents,
        emote_list: Option<&Parsed>,
        a: &mut Applied,
        report: &mut Report,
    ) -> Result<()> {
        let all: Vec<&Parsed> =
            events.userlist.iter().chain(emote_list).chain(&events.playlist).chain(&events.now_playing).collect();
        let ids: Vec<String> = all.iter().map(|p| p.id.clone()).collect();
        let fresh = tx.claim_new_ids(&ids, now_ms()).await?;
        let is_new = |p: &Parsed| all.iter().zip(&fresh).any(|(q, f)| *f && q.id == p.id);
        a.values_applied = fresh.iter().filter(|f| **f).count();
        a.values_already_applied = fresh.len() - a.values_applied;
        if let Some(p) = events.userlist.as_ref().filter(|p| is_new(p)) {
            self.presence.apply_snapshot(tx, p, report).await?;
        }
        let mut media_events: Vec<&Parsed> = Vec::new();
        // The emote list's put time (there is none when the value is not an emote list).
        let emote_list_time = emote_list.filter(|p| matches!(p.event, Event::EmoteList(_))).map(|p| p.time_ms);
        if let (Some(p), Some(t)) = (emote_list.filter(|p| is_new(p)), emote_list_time) {
            // A list change after the put is newer than this snapshot: it wins.
            if tx.emotes_at(domain, channel).await?.is_some_and(|last| last > t) {
                report.count("stale_snapshot_emotes");
            } else {
                media_events.push(p);
            }
        }
        media_events.extend(events.playlist.iter().filter(|p| is_new(p)));
        media_events.extend(events.now_playing.iter().filter(|p| is_new(p)));
        if !media_events.is_empty() {
            self.media.apply(tx, &media_events, report).await?;
        }
        Ok(())
    }
}

/// A channel's open sessions (lowercased names) and listed emotes, read before and after
/// applying to count what changed.
struct Listed {
    sessions: BTreeSet<String>,
    emotes: BTreeSet<String>,
}

impl Listed {
    async fn read(tx: &mut Tx, domain: &str, channel: &str) -> Result<Listed> {
        let sessions = tx.sessions(domain, channel).await?.into_iter().map(|s| s.0).collect();
        let emotes = tx.listed_emotes(domain, channel).await?.into_iter().collect();
        Ok(Listed { sessions, emotes })
    }
}

/// The bridge's emotes bucket never applies `renameEmote`, so after a rename its list
/// still names the emote by its old name, at a put time that may well be newer than the
/// rename. A listed name that our list no longer has and that a recorded rename took away
/// is read as the name it was renamed to (following a chain of renames), so a KV snapshot
/// neither brings the old name back nor drops the new one. (An old name added again by a
/// live `updateEmote` is listed in our list and stays itself.)
fn through_renames(p: &Parsed, renames: &HashMap<String, String>, listed: &BTreeSet<String>) -> Parsed {
    let Event::EmoteList(list) = &p.event else { return p.clone() };
    let mut seen = HashSet::new();
    let mut renamed = Vec::with_capacity(list.len());
    for e in list {
        let mut name = e.name.clone();
        for _ in 0..16 {
            match renames.get(&name) {
                Some(new) if !listed.contains(&name) => name = new.clone(),
                _ => break,
            }
        }
        if seen.insert(name.clone()) {
            renamed.push(crate::wire::Emote { name, ..e.clone() });
        }
    }
    Parsed { event: Event::EmoteList(renamed), ..p.clone() }
}

/// Applies a channel's snapshot in one transaction (retrying while the database is busy,
/// up to 8 attempts), with the durable counters: the whole snapshot or nothing.
///
/// Counters keep observations apart from repairs: `drift_*` count differences between the
/// database and KV the first time they are seen (`reported` is the drift already reported
/// for this channel, so an unchanged drift seen at every resync counts once), `repaired_*`
/// what the snapshot changed. The [`Outcome`] returned is what was counted; the caller adds
/// it to its work counters.
pub async fn apply_snapshot(
    store: &Store,
    applier: &mut Applier,
    domain: &str,
    channel: &str,
    events: &SnapshotEvents,
    reported: &Drift,
) -> Result<(Applied, Outcome)> {
    let mut backoff = Backoff::default();
    loop {
        let attempt = async {
            let mut tx = store.write().await?;
            let mut report = Report::default();
            let a = applier.apply(&mut tx, domain, channel, events, &mut report).await?;
            let outcome = outcome(&a, report, reported);
            outcome.write(&mut tx, FUNCTION).await?;
            tx.commit().await?;
            anyhow::Ok((a, outcome))
        };
        match attempt.await {
            Ok(r) => {
                backoff.succeeded("the KV snapshot");
                return Ok(r);
            }
            Err(e) if backoff.attempts() < 7 => backoff.failed("applying the KV snapshot", &e).await,
            Err(e) => return Err(e),
        }
    }
}

/// What one applied snapshot counts (see [`apply_snapshot`]).
fn outcome(a: &Applied, report: Report, reported: &Drift) -> Outcome {
    let (missing, extra, emotes) = a.drift.new_since(reported);
    let mut counts = report.extra;
    let figures = [
        ("drift_users_missing", missing),
        ("drift_users_extra", extra),
        ("drift_emotes", emotes),
        ("repaired_users_opened", a.users_opened),
        ("repaired_sessions_closed", a.sessions_closed),
        ("repaired_emotes", a.emotes_added + a.emotes_removed),
    ];
    for (name, n) in figures.into_iter().filter(|(_, n)| *n > 0) {
        *counts.entry(name).or_default() += n as u64;
    }
    Outcome {
        applied: a.values_applied as u64,
        duplicates: a.values_already_applied as u64,
        unknown: report.unknown,
        ignored: report.ignored,
        extra: counts,
        size: (a.values_applied + a.values_already_applied) as u64,
        ..Outcome::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootstrap::snapshot::{snapshot_events, ChannelSnapshot, Kind, KvValue};
    use crate::presence::tests::{apply, ev, temp_store, T0};
    use serde_json::{json, Value};
    use std::collections::HashMap;

    const S: i64 = 1000;
    const D: &str = "cytu.be";
    const CH: &str = "420Grindhouse";
    const KV: &str = include_str!("../../../tests/fixtures/kv.json");

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
        let events = snapshot_events(D, CH, snap);
        assert!(events.problems.is_empty(), "{:?}", events.problems);
        apply_snapshot(store, a, D, CH, &events, &Drift::default()).await.unwrap().0
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

    /// The bridge's emotes bucket ignores renames and may be written after the rename event:
    /// its list (old name) must neither bring the old name back nor drop the new one.
    #[tokio::test]
    async fn a_newer_kv_list_with_the_old_name_does_not_undo_a_rename() {
        let store = temp_store("bootstrap-rename").await;
        load(&store, &mut Applier::new(&config()), &fixture(T0)).await;
        let mut media = MediaHandler::new(&config());
        let rename = json!({"old": "#kappa", "name": "#kappa2", "image": "", "source": ""});
        let mut p = ev("renameEmote", rename, T0 + 10 * S, "r1");
        p.channel = CH.into();
        apply(&store, &mut media, &[p]).await;
        // The bucket, written later, still says #kappa (and adds a new emote, Pog).
        let list = r##"[{"name": "#kappa", "image": "", "source": ""}, {"name": "/pogchamp", "image": "", "source": ""},
            {"name": "LUL", "image": "", "source": ""}, {"name": "Pog", "image": "", "source": ""}]"##;
        let snap = ChannelSnapshot {
            emotes: Some(kv("kryten_420Grindhouse_emotes", "list", 2, T0 + 20 * S, list)),
            ..Default::default()
        };
        let r = load(&store, &mut Applier::new(&config()), &snap).await;
        assert_eq!((r.emotes_added, r.emotes_removed), (1, 0), "only Pog is new");
        assert!(r.drift.emote_names.iter().eq(["Pog"].iter()), "{:?}", r.drift.emote_names);
        let mut tx = store.write().await.unwrap();
        assert_eq!(tx.listed_emotes(D, CH).await.unwrap(), vec!["#kappa2", "/pogchamp", "LUL", "Pog"]);
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn malformed_values_are_problems_and_the_rest_applies() {
        let store = temp_store("bootstrap-malformed").await;
        let mut snap = fixture(T0);
        snap.users = Some(kv("kryten_420Grindhouse_userlist", "users", 1, T0, "[{\"name\": "));
        snap.current = None;
        let events = snapshot_events(D, CH, &snap);
        assert_eq!(events.problems.len(), 1);
        assert_eq!(events.problems[0].0, Kind::Userlist);
        let (r, _) =
            apply_snapshot(&store, &mut Applier::new(&config()), D, CH, &events, &Drift::default()).await.unwrap();
        assert_eq!((r.users_opened, r.emotes_added), (0, 3));
        // No `current`: the first playlist item plays.
        assert_eq!(r.media_set.as_deref(), Some("Never Gonna Give You Up"));
    }

    /// A big snapshot (10,000 users, 2,000 emotes, 5,000 playlist items) applies whole in
    /// one transaction; how fast is the bench's business (`scripts/bench`).
    #[tokio::test]
    async fn a_large_snapshot_applies_whole() {
        let store = temp_store("bootstrap-large").await;
        let r = load(&store, &mut Applier::new(&config()), &large_snapshot(T0)).await;
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
