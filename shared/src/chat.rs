//! What `ingest-chat` does with `chatMsg` and `pm` (02-semantics.md §Users, §Chat, §Private
//! messages): count messages and PMs, find kudos, emotes and movie votes, and fold a whole
//! batch into per-key deltas written once each.
//!
//! A message is judged against the channel as it was at the message's time: a kudos target
//! must have been seen at or before it, an emote must have been in the channel's list then,
//! a vote goes to the media-log entry in force then. The emote lists, aliases and trigger
//! phrases are read from the database (other functions and commands change them) and cached
//! here until their version in the `versions` table moves.

use crate::detect::{self, EmoteSet};
use crate::harness::ingest::{Handler, Report};
use crate::store::{Counts, EmoteInterval, HourCount, NamedCount, SeenChannels, SeenUsers, Tx};
use crate::wire::{self, Event, Parsed};
use anyhow::Result;
use std::collections::{HashMap, HashSet};

const HOUR_MS: i64 = 3_600_000;

pub struct ChatHandler {
    /// Lowercased senders never counted.
    ignored: HashSet<String>,
    default_phrases: Vec<String>,
    seeded: bool,
    /// The database's `versions` as last read (None until the first batch): a name whose
    /// version moved has its cache (aliases, phrases, a channel's emotes) reloaded.
    versions: Option<HashMap<String, i64>>,
    aliases: HashMap<String, String>,
    phrases: Vec<String>,
    emotes: HashMap<(String, String), ChannelEmotes>,
}

/// A channel's emote names ever listed, with the times each was in the list.
struct ChannelEmotes {
    version: i64,
    set: EmoteSet,
    intervals: HashMap<String, Vec<(i64, Option<i64>)>>,
}

impl ChannelEmotes {
    fn new(version: i64, history: Vec<EmoteInterval>) -> Self {
        let mut intervals: HashMap<String, Vec<(i64, Option<i64>)>> = HashMap::new();
        for e in history {
            intervals.entry(e.name).or_default().push((e.added_ms, e.removed_ms));
        }
        let set = EmoteSet::new(intervals.keys().cloned());
        ChannelEmotes { version, set, intervals }
    }

    fn listed_at(&self, name: &str, at_ms: i64) -> bool {
        self.intervals
            .get(name)
            .is_some_and(|v| v.iter().any(|(from, to)| *from <= at_ms && to.is_none_or(|to| at_ms < to)))
    }
}

/// Everything one batch changes, folded by key.
/// One hour of a channel, as a batch adds to it.
#[derive(Default)]
struct Hour {
    messages: i64,
    kudos: i64,
}

#[derive(Default)]
struct Fold {
    users: SeenUsers,
    counts: HashMap<(String, String, String), Counts>,
    phrases: HashMap<(String, String, String, String), i64>,
    emotes: HashMap<(String, String, String, String), i64>,
    hourly: HashMap<(String, String, i64), Hour>,
    /// (domain, channel, user, hour of day UTC) → messages (the stats site's user card).
    user_hours: HashMap<(String, String, String, i64), i64>,
    pms: HashMap<(String, String), i64>,
    channels: SeenChannels,
    totals: HashMap<(String, &'static str), i64>,
}

impl Fold {
    fn counts(&mut self, domain: &str, channel: &str, key: &str) -> &mut Counts {
        self.counts.entry((domain.to_string(), channel.to_string(), key.to_string())).or_default()
    }

    fn total(&mut self, domain: &str, name: &'static str, n: i64) {
        *self.totals.entry((domain.to_string(), name)).or_default() += n;
    }

    fn hourly(&mut self, domain: &str, channel: &str, at_ms: i64) -> &mut Hour {
        let hour = at_ms - at_ms.rem_euclid(HOUR_MS);
        self.hourly.entry((domain.to_string(), channel.to_string(), hour)).or_default()
    }
}

impl ChatHandler {
    pub fn new(config: &crate::config::Config) -> Self {
        ChatHandler {
            ignored: config.ignored_users(),
            default_phrases: config.kudos.default_phrases.clone(),
            seeded: false,
            versions: None,
            aliases: HashMap::new(),
            phrases: Vec::new(),
            emotes: HashMap::new(),
        }
    }

    /// Reloads cached shared state whose version moved.
    async fn refresh(&mut self, tx: &mut Tx) -> Result<()> {
        if !self.seeded {
            tx.seed_phrases_if_empty(&self.default_phrases).await?;
            self.seeded = true;
        }
        let versions = tx.versions().await?;
        let changed = |name: &str| self.versions.as_ref().is_none_or(|seen| versions.get(name) != seen.get(name));
        if changed("aliases") {
            self.aliases = tx.aliases().await?.into_iter().collect();
        }
        if changed("phrases") {
            self.phrases = tx.phrases().await?;
        }
        self.versions = Some(versions);
        Ok(())
    }

    async fn channel_emotes(&mut self, tx: &mut Tx, domain: &str, channel: &str) -> Result<&ChannelEmotes> {
        let key = emote_version_key(domain, channel);
        let version = self.versions.as_ref().and_then(|v| v.get(&key)).copied().unwrap_or(0);
        let key = (domain.to_string(), channel.to_string());
        let stale = self.emotes.get(&key).is_none_or(|c| c.version != version);
        if stale {
            let history = tx.emote_history(domain, channel).await?;
            self.emotes.insert(key.clone(), ChannelEmotes::new(version, history));
        }
        Ok(&self.emotes[&key])
    }

    /// Alias resolution → ignored/self check → must be known at `at_ms`. Returns the key.
    async fn kudos_target(
        &self,
        tx: &mut Tx,
        fold: &Fold,
        domain: &str,
        name: &str,
        sender: &str,
        at_ms: i64,
    ) -> Result<Option<String>> {
        let mut key = name.to_lowercase();
        if let Some(user) = self.aliases.get(&key) {
            key = user.clone();
        }
        if key == sender || self.ignored.contains(&key) {
            return Ok(None);
        }
        if let Some(u) = fold.users.get(domain, &key) {
            if u.first_ms <= at_ms {
                return Ok(Some(key));
            }
        }
        Ok(match tx.user_first_seen(domain, &key).await? {
            Some(first) if first <= at_ms => Some(key),
            _ => None,
        })
    }

    async fn chat(
        &mut self,
        tx: &mut Tx,
        fold: &mut Fold,
        p: &Parsed,
        username: &str,
        msg: &str,
        shadow: bool,
    ) -> Result<()> {
        let (d, c, t) = (p.domain.as_str(), p.channel.as_str(), p.time_ms);
        let sender = username.to_lowercase();
        fold.users.see(d, &sender, username, t);
        fold.counts(d, c, &sender).messages += 1;
        fold.hourly(d, c, t).messages += 1;
        *fold
            .user_hours
            .entry((d.into(), c.into(), sender.clone(), t.div_euclid(HOUR_MS).rem_euclid(24)))
            .or_default() += 1;
        fold.total(d, "total_messages", 1);
        if shadow {
            return Ok(()); // nobody else saw it: no kudos, emotes or votes
        }
        let text = wire::decode_html_entities(msg);

        let mut credited: HashSet<String> = HashSet::new();
        for name in detect::plusplus_targets(&text) {
            if let Some(key) = self.kudos_target(tx, fold, d, &name, &sender, t).await? {
                if credited.insert(key.clone()) {
                    fold.counts(d, c, &key).kudos_plusplus += 1;
                    fold.hourly(d, c, t).kudos += 1;
                    fold.total(d, "total_kudos_plusplus", 1);
                }
            }
        }
        let mut thanked: HashSet<String> = HashSet::new();
        for hit in detect::phrase_kudos(&text, &self.phrases) {
            if let Some(key) = self.kudos_target(tx, fold, d, &hit.target, &sender, t).await? {
                if thanked.insert(key.clone()) {
                    fold.counts(d, c, &key).kudos_phrases += 1;
                    *fold.phrases.entry((d.into(), c.into(), key, hit.phrase)).or_default() += 1;
                    fold.hourly(d, c, t).kudos += 1;
                    fold.total(d, "total_kudos_phrases", 1);
                }
            }
        }

        let emotes = self.channel_emotes(tx, d, c).await?;
        if !emotes.set.is_empty() {
            let uses: Vec<(String, i64)> = detect::emote_uses(&text, &emotes.set)
                .into_iter()
                .filter(|(name, _)| emotes.listed_at(name, t))
                .map(|(name, n)| (name.to_string(), n as i64))
                .collect();
            for (name, n) in uses {
                fold.counts(d, c, &sender).emotes += n;
                *fold.emotes.entry((d.into(), c.into(), sender.clone(), name)).or_default() += n;
                fold.total(d, "total_emotes", n);
            }
        }

        if let Some(vote) = detect::movie_vote(&text) {
            if let Some((media_type, media_id)) = tx.media_at(d, c, t).await? {
                tx.vote(d, c, &media_type, &media_id, &sender, vote as i64, t).await?;
            }
        }
        Ok(())
    }

    async fn write(tx: &mut Tx, fold: Fold) -> Result<()> {
        fold.channels.write(tx).await?;
        // One multi-row statement per table (a round trip each on a server).
        let new_users = fold.users.write(tx).await?;
        let counts: Vec<_> =
            fold.counts.iter().map(|((d, c, key), n)| ((d.as_str(), c.as_str(), key.as_str()), *n)).collect();
        tx.add_counts(&counts).await?;
        tx.add_phrase_kudos(&named(&fold.phrases)).await?;
        tx.add_emote_uses(&named(&fold.emotes)).await?;
        let mut per_channel: HashMap<(&str, &str), i64> = HashMap::new();
        for ((d, c, hour), Hour { messages, kudos }) in &fold.hourly {
            tx.add_hourly(d, c, *hour, *messages, *kudos).await?;
            *per_channel.entry((d, c)).or_default() += messages;
        }
        let hours: Vec<HourCount> = fold
            .user_hours
            .iter()
            .map(|((d, c, key, h), n)| ((d.as_str(), c.as_str(), key.as_str(), *h), *n))
            .collect();
        tx.add_user_hours(&hours).await?;
        // Kept forever (hourly buckets are pruned by retention): the metrics' channel figure.
        for ((d, c), n) in per_channel {
            tx.add_total(d, &channel_messages_total(c), n).await?;
        }
        for ((d, key), n) in &fold.pms {
            tx.add_pms(d, key, *n).await?;
        }
        for (d, n) in new_users {
            tx.add_total(&d, "total_users", n).await?;
        }
        for ((d, name), n) in &fold.totals {
            tx.add_total(d, name, *n).await?;
        }
        Ok(())
    }
}

/// A fold's (domain, channel, user, phrase or emote) counts as the store takes them.
fn named(counts: &HashMap<(String, String, String, String), i64>) -> Vec<NamedCount<'_>> {
    counts.iter().map(|((d, c, key, name), n)| ((d.as_str(), c.as_str(), key.as_str(), name.as_str()), *n)).collect()
}

pub use crate::store::keys::{channel_messages_total, emote_version_key};

/// The events ingest-chat consumes.
pub const EVENTS: &[&str] = &["chatmsg", "pm"];

impl Handler for ChatHandler {
    fn events(&self) -> &'static [&'static str] {
        EVENTS
    }

    fn depends_on(&self) -> &'static [&'static str] {
        &["ingest-presence", "ingest-media"]
    }

    async fn apply(&mut self, tx: &mut Tx, events: &[&Parsed], report: &mut Report) -> Result<()> {
        self.refresh(tx).await?;
        let mut fold = Fold::default();
        for p in events {
            let (username, chat) = match &p.event {
                Event::ChatMsg { username, msg, shadow } => (username, Some((msg, *shadow))),
                Event::Pm { username, .. } => (username, None),
                _ => {
                    report.unknown += 1;
                    continue;
                }
            };
            if self.ignored.contains(&username.to_lowercase()) {
                report.ignored += 1;
                continue;
            }
            fold.channels.see(&p.domain, &p.channel, p.time_ms);
            match chat {
                Some((msg, shadow)) => self.chat(tx, &mut fold, p, username, msg, shadow).await?,
                None => {
                    let key = username.to_lowercase();
                    fold.users.see(&p.domain, &key, username, p.time_ms);
                    *fold.pms.entry((p.domain.clone(), key)).or_default() += 1;
                    fold.total(&p.domain, "total_pms", 1);
                }
            }
        }
        Self::write(tx, fold).await
    }
}
