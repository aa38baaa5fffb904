//! What `ingest-media` does (02-semantics.md §Media, §Ordering): the channel's media log
//! (what played when, used by movie votes), the emote lists with the times each name was
//! listed (used by emote counting), and the playlist with the uid now playing.
//!
//! Everything is time-indexed by event time so that ingest-chat can judge a message against
//! the channel as it was at the message's time. After an emote list changes, the channel's
//! emote version moves so that ingest-chat reloads it.

use crate::chat::emote_version_key;
use crate::detect;
use crate::harness::ingest::{Handler, Report};
use crate::store::{SeenChannels, Tx};
use crate::wire::{Event, Media, Parsed, PlaylistItem};
use anyhow::Result;
use std::collections::{BTreeSet, HashMap, HashSet};

#[derive(Default)]
pub struct MediaHandler {}

impl MediaHandler {
    pub fn new(_config: &crate::config::Config) -> Self {
        MediaHandler {}
    }

    /// One media change is one media-log entry, however many times and in whatever order
    /// it is observed. The bridge reports a change twice: it writes the playlist bucket's
    /// `current` key (seen by bootstrap-kv at the put's time) a fraction of a second
    /// *before* it publishes `changeMedia` (seen by ingest-media at the envelope's time), and
    /// either may be applied first. Both sights are of the same media in force over one
    /// interval, so:
    /// * the entry in force at `t` is the same media: already logged, nothing to do (this
    ///   is also the consecutive-duplicate rule: A, A, B, A logs A, B, A);
    /// * the next entry after `t` is the same media: this is an earlier sight of that
    ///   interval; its start moves back to `t` (the earliest sight wins, so both orders
    ///   give the same log);
    /// * otherwise a new entry at `t`, and `total_media_changes` + 1.
    async fn change_media(tx: &mut Tx, p: &Parsed, media: &Media) -> Result<()> {
        let (d, c, t) = (p.domain.as_str(), p.channel.as_str(), p.time_ms);
        let same = |ty: &str, id: &str| ty == media.media_type && id == media.id;
        if tx.media_at(d, c, t).await?.is_some_and(|(ty, id)| same(&ty, &id)) {
            return Ok(());
        }
        if let Some((row, ty, id)) = tx.media_after(d, c, t).await? {
            if same(&ty, &id) {
                return tx.move_media_start(row, t).await;
            }
        }
        tx.append_media(d, c, t, &media.media_type, &media.id, &detect::clean_title(&media.title)).await?;
        tx.add_total(d, "total_media_changes", 1).await
    }

    /// Replaces the emote list at `t`. True when anything changed.
    async fn emote_list(tx: &mut Tx, d: &str, c: &str, t: i64, names: &[&str]) -> Result<bool> {
        // The first list ever also covers the chat buffer CyTube replays on connect.
        let added_ms = if tx.has_emote_history(d, c).await? { t } else { 0 };
        let listed: HashSet<String> = tx.listed_emotes(d, c).await?.into_iter().collect();
        let wanted: BTreeSet<&str> = names.iter().copied().collect();
        let mut changed = false;
        for name in &listed {
            if !wanted.contains(name.as_str()) {
                changed |= tx.remove_emote(d, c, name, t).await?;
            }
        }
        for name in wanted {
            if !listed.contains(name) {
                tx.add_emote(d, c, name, added_ms).await?;
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Adds a name to the list at `t` unless it is listed. True when added.
    async fn add_emote(tx: &mut Tx, d: &str, c: &str, t: i64, name: &str) -> Result<bool> {
        if tx.listed_emotes(d, c).await?.iter().any(|n| n == name) {
            return Ok(false);
        }
        tx.add_emote(d, c, name, t).await?;
        Ok(true)
    }

    /// Where an entry queued after `after` goes (`None` = prepend; an unknown uid = the end).
    async fn insert_position(tx: &mut Tx, d: &str, c: &str, after: Option<i64>) -> Result<i64> {
        Ok(match after {
            None => 0,
            Some(uid) => match tx.playlist_position(d, c, uid).await? {
                Some(pos) => pos + 1,
                None => tx.playlist_len(d, c).await?,
            },
        })
    }

    /// Takes an entry out of the playlist, closing the gap. True when it was there.
    async fn unlink(tx: &mut Tx, d: &str, c: &str, uid: i64) -> Result<bool> {
        let Some(pos) = tx.playlist_position(d, c, uid).await? else {
            return Ok(false);
        };
        tx.delete_playlist_item(d, c, uid).await?;
        tx.shift_playlist(d, c, pos + 1, -1).await?;
        Ok(true)
    }

    async fn queue(tx: &mut Tx, d: &str, c: &str, item: &PlaylistItem, after: Option<i64>) -> Result<()> {
        Self::unlink(tx, d, c, item.uid).await?;
        let pos = Self::insert_position(tx, d, c, after).await?;
        tx.shift_playlist(d, c, pos, 1).await?;
        tx.put_playlist_item(d, c, item.uid, pos, &item.media, &detect::clean_title(&item.media.title)).await
    }

    async fn move_video(tx: &mut Tx, d: &str, c: &str, from: i64, after: Option<i64>) -> Result<()> {
        if after == Some(from) {
            return Ok(());
        }
        let Some(old) = tx.playlist_position(d, c, from).await? else {
            return Ok(());
        };
        // Park the entry outside the positions while the others close and open gaps.
        tx.set_playlist_position(d, c, from, -1).await?;
        tx.shift_playlist(d, c, old + 1, -1).await?;
        let pos = match after {
            None => 0,
            Some(uid) => match tx.playlist_position(d, c, uid).await? {
                Some(p) if p >= 0 => p + 1,
                _ => tx.playlist_len(d, c).await? - 1,
            },
        };
        tx.shift_playlist(d, c, pos, 1).await?;
        tx.set_playlist_position(d, c, from, pos).await
    }
}

/// The events ingest-media consumes.
pub const EVENTS: &[&str] = &[
    "changemedia",
    "setcurrent",
    "emotelist",
    "updateemote",
    "removeemote",
    "renameemote",
    "playlist",
    "queue",
    "delete",
    "movevideo",
    "mediaupdate",
];

impl Handler for MediaHandler {
    fn events(&self) -> &'static [&'static str] {
        EVENTS
    }

    async fn apply(&mut self, tx: &mut Tx, events: &[&Parsed], report: &mut Report) -> Result<()> {
        let mut channels = SeenChannels::default();
        let mut emotes_changed: BTreeSet<(String, String)> = BTreeSet::new();
        // Latest time each channel's emote list was stated or changed.
        let mut emotes_at: HashMap<(String, String), i64> = HashMap::new();
        for p in events {
            let (d, c, t) = (p.domain.as_str(), p.channel.as_str(), p.time_ms);
            let Some(emotes) = Self::apply_event(tx, p).await? else {
                report.unknown += 1;
                continue;
            };
            if emotes {
                emotes_changed.insert((d.to_string(), c.to_string()));
            }
            if is_emote_event(&p.event) {
                let at = emotes_at.entry((d.to_string(), c.to_string())).or_insert(t);
                *at = (*at).max(t);
            }
            channels.see(d, c, t);
        }
        channels.write(tx).await?;
        for ((d, c), t) in &emotes_at {
            tx.mark_emotes_at(d, c, *t).await?;
        }
        for (d, c) in emotes_changed {
            tx.bump_version(&emote_version_key(&d, &c)).await?;
        }
        Ok(())
    }
}

/// The emote events: they state or change a channel's emote list.
fn is_emote_event(e: &Event) -> bool {
    matches!(e, Event::EmoteList(_) | Event::UpdateEmote(_) | Event::RemoveEmote { .. } | Event::RenameEmote { .. })
}

impl MediaHandler {
    /// Applies one event: `Some(true)` when it changed the channel's emote list, `None`
    /// for an event this function does not handle.
    async fn apply_event(tx: &mut Tx, p: &Parsed) -> Result<Option<bool>> {
        let (d, c) = (p.domain.as_str(), p.channel.as_str());
        match &p.event {
            Event::ChangeMedia(media) => Self::change_media(tx, p, media).await?,
            Event::SetCurrent(uid) => tx.set_current_uid(d, c, *uid).await?,
            Event::MediaUpdate => {}
            e if is_emote_event(e) => return Ok(Some(Self::emote_event(tx, p).await?)),
            Event::Playlist(items) => Self::replace_playlist(tx, d, c, items).await?,
            Event::Queue { item, after } => Self::queue(tx, d, c, item, *after).await?,
            Event::Delete { uid } => {
                Self::unlink(tx, d, c, *uid).await?;
            }
            Event::MoveVideo { from, after } => Self::move_video(tx, d, c, *from, *after).await?,
            _ => return Ok(None),
        }
        Ok(Some(false))
    }

    /// Applies one emote event; true when the channel's emote list changed.
    async fn emote_event(tx: &mut Tx, p: &Parsed) -> Result<bool> {
        let (d, c, t) = (p.domain.as_str(), p.channel.as_str(), p.time_ms);
        Ok(match &p.event {
            Event::EmoteList(list) => {
                let names: Vec<&str> = list.iter().map(|e| e.name.as_str()).collect();
                let images: Vec<(&str, &str)> = list.iter().map(|e| (e.name.as_str(), e.image.as_str())).collect();
                tx.set_emote_images(d, c, &images, t).await?;
                Self::emote_list(tx, d, c, t, &names).await?
            }
            Event::UpdateEmote(e) => {
                tx.set_emote_images(d, c, &[(e.name.as_str(), e.image.as_str())], t).await?;
                Self::add_emote(tx, d, c, t, &e.name).await?
            }
            Event::RemoveEmote { name } => tx.remove_emote(d, c, name, t).await?,
            Event::RenameEmote { old, emote } => {
                if *old == emote.name {
                    false
                } else {
                    tx.record_emote_rename(d, c, old, &emote.name, t).await?;
                    let removed = tx.remove_emote(d, c, old, t).await?;
                    Self::add_emote(tx, d, c, t, &emote.name).await? || removed
                }
            }
            // Not an emote event: see `is_emote_event`.
            _ => false,
        })
    }

    /// The whole playlist, stated again: the positions follow the list, a uid listed twice
    /// counts once.
    async fn replace_playlist(tx: &mut Tx, d: &str, c: &str, items: &[PlaylistItem]) -> Result<()> {
        tx.clear_playlist(d, c).await?;
        let mut seen = HashSet::new();
        for (pos, item) in items.iter().filter(|i| seen.insert(i.uid)).enumerate() {
            let title = detect::clean_title(&item.media.title);
            tx.put_playlist_item(d, c, item.uid, pos as i64, &item.media, &title).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::tests::{apply, ev, temp_store, T0};
    use crate::store::EmoteInterval;
    use serde_json::{json, Value};

    const S: i64 = 1000;
    const D: &str = "cytu.be";
    const C: &str = "Chan";

    fn media(ty: &str, id: &str, title: &str) -> Value {
        json!({"id": id, "title": title, "seconds": 10, "duration": "00:10", "type": ty, "meta": {},
            "currentTime": 0, "paused": false})
    }

    fn item(uid: i64, id: &str) -> Value {
        json!({"media": {"id": id, "title": format!("{id}.mp4"), "seconds": 10, "duration": "00:10", "type": "yt", "meta": {}},
            "uid": uid, "temp": false, "queueby": "bob"})
    }

    fn emote(name: &str) -> Value {
        json!({"name": name, "image": "https://i.example/e.png", "source": format!("(^|\\s){name}(?!\\S)")})
    }

    fn handler() -> MediaHandler {
        MediaHandler::new(&crate::config::Config::default())
    }

    #[tokio::test]
    async fn consecutive_duplicates_are_not_logged() {
        let store = temp_store("media-log").await;
        let events = [("yt", "A", 1), ("yt", "A", 2), ("yt", "B", 3), ("yt", "A", 4), ("fi", "A", 5)];
        for (ty, id, n) in events {
            let mut h = handler();
            let p = ev("changeMedia", media(ty, id, "The_Title.mkv"), T0 + n * S, &format!("m{n}"));
            apply(&store, &mut h, &[p]).await;
        }
        let mut tx = store.write().await.unwrap();
        let log: Vec<(i64, String, String, String)> = store.media_history(D, C, 10).await.unwrap();
        let ids: Vec<(&str, &str)> = log.iter().map(|(_, ty, id, _)| (ty.as_str(), id.as_str())).collect();
        assert_eq!(ids, vec![("fi", "A"), ("yt", "A"), ("yt", "B"), ("yt", "A")]);
        assert_eq!(log[3].0, T0 + S);
        assert_eq!(log[0].3, "The Title");
        assert_eq!(tx.media_at(D, C, T0 + 3500).await.unwrap(), Some(("yt".into(), "B".into())));
        tx.commit().await.unwrap();
        assert_eq!(store.total(D, "total_media_changes").await.unwrap(), 4);
    }

    #[tokio::test]
    async fn same_media_in_one_batch_is_logged_once() {
        let store = temp_store("media-log-batch").await;
        let mut h = handler();
        let batch = [
            ev("changeMedia", media("yt", "A", "a"), T0, "b1"),
            ev("changeMedia", media("yt", "A", "a"), T0 + S, "b2"),
            ev("changeMedia", media("yt", "B", "b"), T0 + 2 * S, "b3"),
            ev("mediaUpdate", json!({"currentTime": 1.5, "paused": false}), T0 + 3 * S, "b4"),
            ev("changeMedia", media("yt", "A", "a"), T0 + 4 * S, "b5"),
        ];
        let r = apply(&store, &mut h, &batch).await;
        assert_eq!(r.unknown, 0);
        let ids: Vec<String> = store.media_history(D, C, 10).await.unwrap().into_iter().map(|r| r.2).collect();
        assert_eq!(ids, vec!["A", "B", "A"]);
    }

    /// One media change seen twice (the bridge's KV `current` put, then its `changeMedia`
    /// event a little later), applied in either order, a fraction of a second or minutes
    /// apart: one log entry at the earlier sight, one media change in the total.
    #[tokio::test]
    async fn a_media_change_seen_twice_is_logged_once_in_either_order() {
        for lead_ms in [300, 1_000, 5 * 60 * S] {
            for kv_first in [true, false] {
                let store = temp_store("media-twice").await;
                let first = ev("changeMedia", media("yt", "A", "a"), T0, "a");
                apply(&store, &mut handler(), &[first]).await;
                let at = T0 + 600 * S;
                let kv = ev("changeMedia", media("fi", "B", "b"), at - lead_ms, "kv");
                let event = ev("changeMedia", media("fi", "B", "b"), at, "event");
                let order = if kv_first { [kv, event] } else { [event, kv] };
                for p in order {
                    apply(&store, &mut handler(), &[p]).await;
                }
                let log = store.media_history(D, C, 10).await.unwrap();
                let seen: Vec<(i64, &str)> = log.iter().map(|(t, _, id, _)| (*t, id.as_str())).collect();
                assert_eq!(seen, vec![(at - lead_ms, "B"), (T0, "A")], "lead {lead_ms} ms, kv first: {kv_first}");
                assert_eq!(store.total(D, "total_media_changes").await.unwrap(), 2, "lead {lead_ms} ms");
            }
        }
    }

    /// The earlier sight of a later interval never swallows a different media in between:
    /// A, B, A with B also seen just before its event stays A, B, A.
    #[tokio::test]
    async fn an_earlier_sight_moves_only_its_own_interval() {
        let store = temp_store("media-interval").await;
        let events =
            [("A", 0, "a1"), ("B", 10, "b1"), ("A", 20, "a2"), ("B", 9, "b-kv"), ("A", 19, "a-kv"), ("A", 5, "a-old")];
        for (id, sec, eid) in events {
            apply(&store, &mut handler(), &[ev("changeMedia", media("yt", id, id), T0 + sec * S, eid)]).await;
        }
        let log = store.media_history(D, C, 10).await.unwrap();
        let seen: Vec<(i64, &str)> = log.iter().map(|(t, _, id, _)| ((*t - T0) / S, id.as_str())).collect();
        assert_eq!(seen, vec![(19, "A"), (9, "B"), (0, "A")]);
        assert_eq!(store.total(D, "total_media_changes").await.unwrap(), 3);
    }

    fn interval(name: &str, added_ms: i64, removed_ms: Option<i64>) -> EmoteInterval {
        EmoteInterval { name: name.into(), added_ms, removed_ms }
    }

    #[tokio::test]
    async fn emote_list_changes_are_recorded_with_times() {
        let store = temp_store("media-emotes").await;
        let key = emote_version_key(D, C);
        let mut h = handler();
        apply(&store, &mut h, &[ev("emoteList", json!([emote("#a"), emote("b"), emote("b")]), T0, "e1")]).await;
        let mut tx = store.write().await.unwrap();
        let v1 = tx.versions().await.unwrap().get(&key).copied();
        tx.commit().await.unwrap();
        assert_eq!(v1, Some(1));
        let batch = [
            ev("emoteList", json!([emote("b"), emote("c")]), T0 + 10 * S, "e2"),
            ev("updateEmote", emote("d"), T0 + 20 * S, "e3"),
            ev("updateEmote", emote("d"), T0 + 21 * S, "e4"), // an image change: nothing new
            ev("removeEmote", json!({"name": "b"}), T0 + 30 * S, "e5"),
            ev("renameEmote", json!({"old": "c", "name": "e", "image": "x", "source": "y"}), T0 + 40 * S, "e6"),
            ev("updateEmote", emote("b"), T0 + 50 * S, "e7"),
        ];
        let mut h = handler();
        apply(&store, &mut h, &batch).await;
        let mut tx = store.write().await.unwrap();
        let mut history = tx.emote_history(D, C).await.unwrap();
        history.sort_by(|x, y| (&x.name, x.added_ms).cmp(&(&y.name, y.added_ms)));
        assert_eq!(
            history,
            vec![
                interval("#a", 0, Some(T0 + 10 * S)),
                interval("b", 0, Some(T0 + 30 * S)),
                interval("b", T0 + 50 * S, None),
                interval("c", T0 + 10 * S, Some(T0 + 40 * S)),
                interval("d", T0 + 20 * S, None),
                interval("e", T0 + 40 * S, None),
            ]
        );
        assert_eq!(tx.listed_emotes(D, C).await.unwrap(), vec!["b", "d", "e"]);
        let v2 = tx.versions().await.unwrap().get(&key).copied();
        assert!(v2 > v1, "the emote version moves so ingest-chat reloads");
        tx.commit().await.unwrap();
        // A list equal to the current one changes nothing.
        let mut h = handler();
        apply(&store, &mut h, &[ev("emoteList", json!([emote("e"), emote("d"), emote("b")]), T0 + 60 * S, "e8")]).await;
        let mut tx = store.write().await.unwrap();
        assert_eq!(tx.versions().await.unwrap().get(&key).copied(), v2);
        assert_eq!(tx.emote_history(D, C).await.unwrap().len(), 6);
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn playlist_and_current_uid() {
        let store = temp_store("media-playlist").await;
        let mut h = handler();
        apply(&store, &mut h, &[ev("playlist", json!([item(1, "a"), item(2, "b"), item(3, "c")]), T0, "p1")]).await;
        let steps: Vec<(Parsed, Vec<i64>)> = vec![
            (ev("queue", json!({"item": item(4, "d"), "after": 1}), T0 + S, "p2"), vec![1, 4, 2, 3]),
            (ev("queue", json!({"item": item(5, "e"), "after": "prepend"}), T0 + 2 * S, "p3"), vec![5, 1, 4, 2, 3]),
            (ev("queue", json!({"item": item(6, "f"), "after": 99}), T0 + 3 * S, "p4"), vec![5, 1, 4, 2, 3, 6]),
            (ev("delete", json!({"uid": 4}), T0 + 4 * S, "p5"), vec![5, 1, 2, 3, 6]),
            (ev("delete", json!({"uid": 42}), T0 + 4 * S, "p6"), vec![5, 1, 2, 3, 6]),
            (ev("moveVideo", json!({"from": 5, "after": 2}), T0 + 5 * S, "p7"), vec![1, 2, 5, 3, 6]),
            (ev("moveVideo", json!({"from": 6, "after": "prepend"}), T0 + 6 * S, "p8"), vec![6, 1, 2, 5, 3]),
            (ev("moveVideo", json!({"from": 6, "after": 3}), T0 + 7 * S, "p9"), vec![1, 2, 5, 3, 6]),
            (ev("setCurrent", json!(2), T0 + 8 * S, "p10"), vec![1, 2, 5, 3, 6]),
        ];
        for (e, want) in steps {
            let name = format!("{:?}", e.event);
            apply(&store, &mut h, &[e]).await;
            let mut tx = store.write().await.unwrap();
            assert_eq!(tx.playlist_uids(D, C).await.unwrap(), want, "after {name}");
            tx.commit().await.unwrap();
        }
        let mut tx = store.write().await.unwrap();
        let uid = tx.current_uid(D, C).await.unwrap().unwrap();
        assert_eq!(tx.playlist_media(D, C, uid).await.unwrap(), Some(("yt".into(), "b".into(), "b".into())));
        tx.commit().await.unwrap();
        // A new full playlist replaces the old one.
        apply(&store, &mut h, &[ev("playlist", json!([item(9, "z")]), T0 + 9 * S, "p11")]).await;
        let mut tx = store.write().await.unwrap();
        assert_eq!(tx.playlist_uids(D, C).await.unwrap(), vec![9]);
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn other_events_are_unknown() {
        let store = temp_store("media-unknown").await;
        let mut h = handler();
        let r = apply(&store, &mut h, &[ev("voteskip", json!({"count": 1}), T0, "x1")]).await;
        assert_eq!(r.unknown, 1);
    }
}
