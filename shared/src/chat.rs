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
use crate::store::{
    playing_at, Counts, EmoteInterval, HourCount, HourDelta, NamedCount, SeenChannels, SeenUsers, Tx, Vote,
};
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

/// One hour of a channel, as a batch adds to it.
#[derive(Default)]
struct Hour {
    messages: i64,
    kudos: i64,
}

/// A kudos the batch itself could not vouch for (its target was not seen earlier in the
/// batch): decided once every such target's first sight has been read, in one statement.
/// The database holds only earlier batches while a batch is folded, so reading it after
/// the loop gives what reading it at the message would have.
struct PendingKudos {
    domain: String,
    channel: String,
    key: String,
    at_ms: i64,
    /// The trigger phrase, for phrase kudos; None for `name++`.
    phrase: Option<String>,
}

/// A movie vote, placed on the media playing at its time once the batch's stretch of the
/// media log has been read (ingest-media's rows, final before this batch: chat waits for it).
struct PendingVote {
    domain: String,
    channel: String,
    key: String,
    vote: i64,
    at_ms: i64,
}

/// Everything one batch changes, folded by key.
#[derive(Default)]
struct Fold {
    users: SeenUsers,
    counts: HashMap<(String, String, String), Counts>,
    phrases: HashMap<(String, String, String, String), i64>,
    emotes: HashMap<(String, String, String, String), i64>,
    hourly: HashMap<(String, String, i64), Hour>,
    /// (domain, channel, user, hour of day UTC) → messages (the stats site's user card).
    user_hours: HashMap<(String, String, String, i64), i64>,
    channels: SeenChannels,
    totals: HashMap<(String, &'static str), i64>,
    pending_kudos: Vec<PendingKudos>,
    votes: Vec<PendingVote>,
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

    /// One kudos to `key` (a `name++`, or a trigger phrase) in a channel at `at_ms`.
    fn credit(&mut self, domain: &str, channel: &str, key: &str, at_ms: i64, phrase: Option<String>) {
        self.hourly(domain, channel, at_ms).kudos += 1;
        match phrase {
            None => {
                self.counts(domain, channel, key).kudos_plusplus += 1;
                self.total(domain, "total_kudos_plusplus", 1);
            }
            Some(phrase) => {
                self.counts(domain, channel, key).kudos_phrases += 1;
                *self.phrases.entry((domain.into(), channel.into(), key.into(), phrase)).or_default() += 1;
                self.total(domain, "total_kudos_phrases", 1);
            }
        }
    }

    /// A kudos to `key` at `at_ms`: credited now when the batch saw the target at or before
    /// then, otherwise decided by [`ChatHandler::settle_kudos`].
    fn kudos(&mut self, domain: &str, channel: &str, key: String, at_ms: i64, phrase: Option<String>) {
        if self.users.get(domain, &key).is_some_and(|u| u.first_ms <= at_ms) {
            self.credit(domain, channel, &key, at_ms, phrase);
        } else {
            let (domain, channel) = (domain.to_string(), channel.to_string());
            self.pending_kudos.push(PendingKudos { domain, channel, key, at_ms, phrase });
        }
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

    /// Alias resolution → ignored/self check. Returns the key of a user who may be credited
    /// (if known at the message's time: [`Fold::kudos`]).
    fn kudos_target(&self, name: &str, sender: &str) -> Option<String> {
        let mut key = name.to_lowercase();
        if let Some(user) = self.aliases.get(&key) {
            key = user.clone();
        }
        (key != sender && !self.ignored.contains(&key)).then_some(key)
    }

    /// Decides the kudos whose targets the batch did not vouch for, from the targets' first
    /// sights in the database (one statement per domain).
    async fn settle_kudos(tx: &mut Tx, fold: &mut Fold) -> Result<()> {
        let pending = std::mem::take(&mut fold.pending_kudos);
        let mut keys: HashMap<&str, HashSet<&str>> = HashMap::new();
        for k in &pending {
            keys.entry(k.domain.as_str()).or_default().insert(k.key.as_str());
        }
        let mut first_seen: HashMap<(String, String), i64> = HashMap::new();
        for (domain, keys) in keys {
            let keys: Vec<&str> = keys.into_iter().collect();
            for (key, first) in tx.users_first_seen(domain, &keys).await? {
                first_seen.insert((domain.to_string(), key), first);
            }
        }
        for k in pending {
            if first_seen.get(&(k.domain.clone(), k.key.clone())).is_some_and(|first| *first <= k.at_ms) {
                fold.credit(&k.domain, &k.channel, &k.key, k.at_ms, k.phrase);
            }
        }
        Ok(())
    }

    /// Places the batch's votes on the media playing at their times: one read of the media
    /// log per channel, one write for all votes.
    async fn settle_votes(tx: &mut Tx, votes: &[PendingVote]) -> Result<()> {
        let mut spans: HashMap<(&str, &str), (i64, i64)> = HashMap::new();
        for v in votes {
            let span = spans.entry((&v.domain, &v.channel)).or_insert((v.at_ms, v.at_ms));
            *span = (span.0.min(v.at_ms), span.1.max(v.at_ms));
        }
        let mut logs = HashMap::new();
        for ((d, c), (from, to)) in spans {
            logs.insert((d, c), tx.media_played(d, c, from, to).await?);
        }
        let placed: Vec<Vote> = votes
            .iter()
            .filter_map(|v| {
                let played = playing_at(&logs[&(v.domain.as_str(), v.channel.as_str())], v.at_ms)?;
                Some(Vote {
                    domain: &v.domain,
                    channel: &v.channel,
                    media_type: &played.media_type,
                    media_id: &played.media_id,
                    key: &v.key,
                    vote: v.vote,
                    at_ms: v.at_ms,
                })
            })
            .collect();
        tx.add_votes(&placed).await
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

        // One kudos per target per message and kind, whatever the number of mentions.
        let mut credited: HashSet<String> = HashSet::new();
        for name in detect::plusplus_targets(&text) {
            if let Some(key) = self.kudos_target(&name, &sender) {
                if credited.insert(key.clone()) {
                    fold.kudos(d, c, key, t, None);
                }
            }
        }
        let mut thanked: HashSet<String> = HashSet::new();
        for hit in detect::phrase_kudos(&text, &self.phrases) {
            if let Some(key) = self.kudos_target(&hit.target, &sender) {
                if thanked.insert(key.clone()) {
                    fold.kudos(d, c, key, t, Some(hit.phrase));
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
            fold.votes.push(PendingVote {
                domain: d.into(),
                channel: c.into(),
                key: sender,
                vote: vote as i64,
                at_ms: t,
            });
        }
        Ok(())
    }

    /// Writes a batch's fold: one multi-row statement per table (a round trip each on a
    /// server), whatever the number of events.
    async fn write(tx: &mut Tx, mut fold: Fold) -> Result<()> {
        Self::settle_kudos(tx, &mut fold).await?;
        Self::settle_votes(tx, &fold.votes).await?;
        fold.channels.write(tx).await?;
        let new_users = fold.users.write(tx).await?;
        let counts: Vec<_> =
            fold.counts.iter().map(|((d, c, key), n)| ((d.as_str(), c.as_str(), key.as_str()), *n)).collect();
        tx.add_counts(&counts).await?;
        tx.add_phrase_kudos(&named(&fold.phrases)).await?;
        tx.add_emote_uses(&named(&fold.emotes)).await?;
        let hours: Vec<HourDelta> = fold
            .hourly
            .iter()
            .map(|((domain, channel, hour_ms), h)| HourDelta {
                domain,
                channel,
                hour_ms: *hour_ms,
                messages: h.messages,
                kudos: h.kudos,
            })
            .collect();
        tx.add_hourly(&hours).await?;
        let user_hours: Vec<HourCount> = fold
            .user_hours
            .iter()
            .map(|((d, c, key, h), n)| ((d.as_str(), c.as_str(), key.as_str(), *h), *n))
            .collect();
        tx.add_user_hours(&user_hours).await?;
        // Kept forever (hourly buckets are pruned by retention): the metrics' channel figure.
        let mut per_channel: HashMap<(&str, String), i64> = HashMap::new();
        for h in &hours {
            *per_channel.entry((h.domain, channel_messages_total(h.channel))).or_default() += h.messages;
        }
        let mut totals: Vec<(&str, &str, i64)> =
            per_channel.iter().map(|((d, name), n)| (*d, name.as_str(), *n)).collect();
        totals.extend(new_users.iter().map(|(d, n)| (d.as_str(), "total_users", *n)));
        totals.extend(fold.totals.iter().map(|((d, name), n)| (d.as_str(), *name, *n)));
        tx.add_totals(&totals).await
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
                    fold.users.pm(&p.domain, &username.to_lowercase(), username, p.time_ms);
                    fold.total(&p.domain, "total_pms", 1);
                }
            }
        }
        Self::write(tx, fold).await
    }
}
