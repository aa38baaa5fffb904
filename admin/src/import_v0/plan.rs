//! Turning the rows read into an [`ImportPlan`]: every conversion of the module doc, one
//! step per concern (channels, users, counters, emotes, activity, population, media and
//! votes, aliases and phrases), in memory, before our database is written.

use super::read::{CountIn, Rows, VoteIn};
use super::report::Report;
use shared::config::Config;
use shared::store::{Counts, ImportPlan, ImportUser};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What our database already knows (spellings to map onto).
#[derive(Default)]
pub(super) struct Known {
    /// (domain, channel)
    pub channels: Vec<(String, String)>,
    /// (domain, channel, emote name), currently listed first.
    pub emotes: Vec<(String, String, String)>,
}

/// (domain, channel, UTC day, `high`/`low`) of a watermark.
type DayKey = (String, String, String, &'static str);
/// A watermark's (at ms, total users, chat users).
type Mark = (i64, i64, i64);
/// (domain, channel, media type, media id, user) of a vote.
type VoteKey = (String, String, String, String, String);
/// A media-log entry with type and id: (at ms, type, id).
type Logged = (i64, String, String);
/// The media log's entries with type and id by (domain, channel, title).
type ByTitle = HashMap<(String, String, String), Vec<Logged>>;
/// Per (domain, channel, user) counter deltas.
type CountMap = BTreeMap<(String, String, String), Counts>;

/// Turns what was read into what to write (see the module doc for each rule). The steps run
/// in this order because a channel's spelling is the first one met (after ours and the
/// configured ones), as it always was.
pub(super) fn plan(
    rows: &Rows,
    report: &mut Report,
    config: &Config,
    known: &Known,
    default_domain: &str,
    now_ms: i64,
) -> ImportPlan {
    let mut p = Planner::new(rows, report, config, known);
    p.users(default_domain, now_ms);
    p.counters();
    p.phrase_kudos();
    p.emotes(known);
    p.activity();
    p.population(config);
    let by_title = p.media();
    p.votes(&by_title);
    p.aliases();
    p.triggers();
    p.finish(now_ms)
}

/// Every user of the old file by lower-cased name, gathered from all the tables that name
/// one: their spellings, the domains they appear in, and their first and last seen.
#[derive(Default)]
struct People {
    spellings: BTreeMap<String, BTreeSet<String>>,
    domains: BTreeMap<String, BTreeSet<String>>,
    /// From `users`: first, last, display (the spelling seen last), display's last.
    seen: HashMap<String, (i64, i64, String, i64)>,
    /// From `movie_votes`: first and last vote, for names without a `users` row.
    vote_times: HashMap<String, (i64, i64)>,
}

impl People {
    fn gather(rows: &Rows) -> People {
        let mut p = People::default();
        for u in &rows.users {
            let key = u.name.to_lowercase();
            p.spellings.entry(key.clone()).or_default().insert(u.name.clone());
            let e = p.seen.entry(key).or_insert((u.first, u.last, u.name.clone(), u.last));
            e.0 = e.0.min(u.first);
            e.1 = e.1.max(u.last);
            if u.last > e.3 {
                e.2 = u.name.clone();
                e.3 = u.last;
            }
        }
        let tables = [&rows.messages, &rows.activity, &rows.emotes, &rows.plusplus, &rows.phrases];
        for row in tables.iter().flat_map(|t| t.iter()) {
            let key = row.name.to_lowercase();
            p.spellings.entry(key.clone()).or_default().insert(row.name.clone());
            p.domains.entry(key).or_default().insert(row.domain.clone());
        }
        for v in &rows.votes {
            let key = v.name.to_lowercase();
            p.spellings.entry(key.clone()).or_default().insert(v.name.clone());
            p.domains.entry(key.clone()).or_default().insert(v.domain.clone());
            let e = p.vote_times.entry(key).or_insert((v.at, v.at));
            e.0 = e.0.min(v.at);
            e.1 = e.1.max(v.at);
        }
        // PM senders are users (0.7.1 tracks them); alias owners alone are not.
        for name in rows.pms.iter().map(|(n, _)| n) {
            p.spellings.entry(name.to_lowercase()).or_default().insert(name.clone());
        }
        p
    }

    /// The display name: the spelling with the latest `last_seen_at`, else the first
    /// spelling (sorted), else the key.
    fn display(&self, key: &str) -> String {
        self.seen
            .get(key)
            .map(|s| s.2.clone())
            .or_else(|| self.spellings.get(key).and_then(|s| s.iter().next().cloned()))
            .unwrap_or_else(|| key.to_string())
    }
}

/// Which counter of [`Counts`] (and which total) a table of counts adds to.
#[derive(Clone, Copy)]
enum Counter {
    Messages,
    PlusPlus,
    Phrases,
    Emotes,
}

/// The state the steps share while the plan is made.
struct Planner<'a> {
    rows: &'a Rows,
    report: &'a mut Report,
    people: People,
    /// One spelling per (domain, lower-cased channel): ours, the configured, else 0.7.1's
    /// first.
    channel_names: HashMap<(String, String), String>,
    /// The earliest time each channel was seen (`i64::MAX`: no time, the import's is used).
    channel_first: BTreeMap<(String, String), i64>,
    /// (domain, total name) → delta.
    totals: BTreeMap<(String, String), i64>,
    plan: ImportPlan,
}

impl<'a> Planner<'a> {
    fn new(rows: &'a Rows, report: &'a mut Report, config: &Config, known: &Known) -> Planner<'a> {
        let mut channel_names: HashMap<(String, String), String> = HashMap::new();
        for (d, c) in &known.channels {
            channel_names.entry((d.clone(), c.to_lowercase())).or_insert_with(|| c.clone());
        }
        for c in &config.channels {
            channel_names
                .entry((c.domain.to_lowercase(), c.channel.to_lowercase()))
                .or_insert_with(|| c.channel.clone());
        }
        Planner {
            rows,
            report,
            people: People::gather(rows),
            channel_names,
            channel_first: BTreeMap::new(),
            totals: BTreeMap::new(),
            plan: ImportPlan::default(),
        }
    }

    /// The spelling of a channel: the one already met in any case, else this one.
    fn channel(&mut self, d: &str, c: &str) -> String {
        self.channel_names.entry((d.to_string(), c.to_lowercase())).or_insert_with(|| c.to_string()).clone()
    }

    /// Remembers a channel (written to `channels`) and, when the row has one, its time.
    fn see_channel(&mut self, d: &str, c: &str, at: Option<i64>) {
        let e = self.channel_first.entry((d.to_string(), c.to_string())).or_insert(i64::MAX);
        if let Some(at) = at {
            *e = (*e).min(at);
        }
    }

    fn add_total(&mut self, d: &str, name: String, n: i64) {
        *self.totals.entry((d.to_string(), name)).or_default() += n;
    }

    /// Users, one per lower-cased name (case variants merged and listed), in every domain
    /// where a name appears, else the `--domain`; PMs counted once, in the home domain.
    fn users(&mut self, default_domain: &str, now_ms: i64) {
        self.report.merges = self
            .people
            .spellings
            .iter()
            .filter(|(_, s)| s.len() > 1)
            .map(|(k, s)| (k.clone(), s.iter().cloned().collect()))
            .collect();
        let mut pms: BTreeMap<String, i64> = BTreeMap::new();
        for (name, n) in &self.rows.pms {
            *pms.entry(name.to_lowercase()).or_default() += n;
        }
        let keys: Vec<String> = self.people.spellings.keys().cloned().collect();
        for key in &keys {
            let ds: Vec<String> = match self.people.domains.get(key) {
                Some(d) if !d.is_empty() => d.iter().cloned().collect(),
                _ => vec![default_domain.to_string()],
            };
            let home = if ds.iter().any(|d| d == default_domain) { default_domain.to_string() } else { ds[0].clone() };
            let (first, last) = self.first_last(key, now_ms);
            let user_pms = pms.get(key).copied().unwrap_or(0);
            if user_pms > 0 {
                self.add_total(&home, "total_pms".into(), user_pms);
            }
            for d in ds {
                self.plan.users.push(ImportUser {
                    pms: if d == home { user_pms } else { 0 },
                    domain: d,
                    key: key.clone(),
                    display: self.people.display(key),
                    first_seen_ms: first,
                    last_seen_ms: last,
                });
            }
        }
        self.report.users = keys.len();
    }

    /// First and last seen: from `users`, else from the name's votes, else the import's
    /// time (0.7.1 has no other time for a name); the last two are counted in the report.
    fn first_last(&mut self, key: &str, now_ms: i64) -> (i64, i64) {
        match (self.people.seen.get(key), self.people.vote_times.get(key)) {
            (Some(s), _) => (s.0, s.1),
            (None, Some(v)) => {
                self.report.users_without_row += 1;
                *v
            }
            (None, None) => {
                self.report.users_without_row += 1;
                (now_ms, now_ms)
            }
        }
    }

    /// Messages, ++ and phrase kudos, emotes per (domain, channel, user), as 0.7.1 counted
    /// them, and the totals `/metrics` reads (with each channel's `channel_messages:`).
    fn counters(&mut self) {
        let rows = self.rows;
        let mut counts = CountMap::new();
        self.count_rows(&rows.messages, Counter::Messages, &mut counts);
        self.count_rows(&rows.plusplus, Counter::PlusPlus, &mut counts);
        self.count_rows(&rows.phrases, Counter::Phrases, &mut counts);
        self.count_rows(&rows.emotes, Counter::Emotes, &mut counts);
        self.plan.counts = counts.into_iter().filter(|(_, n)| *n != Counts::default()).collect();
    }

    fn count_rows(&mut self, rows: &[CountIn], counter: Counter, counts: &mut CountMap) {
        for r in rows {
            let c = self.channel(&r.domain, &r.channel);
            self.see_channel(&r.domain, &c, None);
            let e = counts.entry((r.domain.clone(), c.clone(), r.name.to_lowercase())).or_default();
            match counter {
                Counter::Messages => {
                    e.messages += r.n;
                    self.add_total(&r.domain, "total_messages".into(), r.n);
                    self.add_total(&r.domain, format!("channel_messages:{c}"), r.n);
                }
                Counter::PlusPlus => {
                    e.kudos_plusplus += r.n;
                    self.add_total(&r.domain, "total_kudos_plusplus".into(), r.n);
                }
                Counter::Phrases => {
                    e.kudos_phrases += r.n;
                    self.add_total(&r.domain, "total_kudos_phrases".into(), r.n);
                }
                Counter::Emotes => {
                    e.emotes += r.n;
                    self.add_total(&r.domain, "total_emotes".into(), r.n);
                }
            }
        }
    }

    /// Phrase kudos per (domain, channel, user, phrase), for `phrase_counts`.
    fn phrase_kudos(&mut self) {
        let rows = self.rows;
        let mut phrase_kudos: BTreeMap<(String, String, String, String), i64> = BTreeMap::new();
        for r in &rows.phrases {
            let c = self.channel(&r.domain, &r.channel);
            *phrase_kudos.entry((r.domain.clone(), c, r.name.to_lowercase(), r.extra.clone())).or_default() += r.n;
        }
        self.plan.phrase_kudos = phrase_kudos.into_iter().filter(|(_, n)| *n > 0).collect();
    }

    /// Emote uses per (domain, channel, user, emote): 0.7.1's lower-cased name without `#`
    /// becomes the spelling our channel's emote list has, else `#name` (0.7.1 only ever
    /// counted the `#word` form).
    fn emotes(&mut self, known: &Known) {
        let rows = self.rows;
        let mut emote_spelling: HashMap<(String, String, String), String> = HashMap::new();
        for (d, c, name) in &known.emotes {
            let k = (d.clone(), c.to_lowercase(), name.trim_start_matches('#').to_lowercase());
            emote_spelling.entry(k).or_insert_with(|| name.clone());
        }
        let mut emotes: BTreeMap<(String, String, String, String), i64> = BTreeMap::new();
        for r in &rows.emotes {
            let c = self.channel(&r.domain, &r.channel);
            let bare = r.extra.trim_start_matches('#').to_string();
            let name = emote_spelling
                .get(&(r.domain.clone(), c.to_lowercase(), bare.clone()))
                .cloned()
                .unwrap_or_else(|| format!("#{bare}"));
            *emotes.entry((r.domain.clone(), c, r.name.to_lowercase(), name)).or_default() += r.n;
        }
        self.plan.emote_uses = emotes.into_iter().filter(|(_, n)| *n > 0).collect();
    }

    /// Time in channel: seconds become ms, added to closed time (not-AFK never above total).
    fn activity(&mut self) {
        let rows = self.rows;
        let mut activity: BTreeMap<(String, String, String), (i64, i64)> = BTreeMap::new();
        for r in &rows.activity {
            let c = self.channel(&r.domain, &r.channel);
            self.see_channel(&r.domain, &c, None);
            let e = activity.entry((r.domain.clone(), c, r.name.to_lowercase())).or_default();
            e.0 = e.0.saturating_add(r.n.saturating_mul(1000));
            e.1 = e.1.saturating_add(r.n2.min(r.n).saturating_mul(1000));
        }
        self.plan.activity = activity.into_iter().map(|((d, c, k), (t, n))| (d, c, k, t, n)).collect();
    }

    /// Snapshots go to the interval slot that holds their time (the first old row of a slot
    /// keeps it); each UTC day's high and low come from snapshots and old marks together.
    fn population(&mut self, config: &Config) {
        let rows = self.rows;
        let interval_ms = (config.snapshots.interval_seconds.max(1) as i64).saturating_mul(1000);
        let slot = |at: i64| at - at.rem_euclid(interval_ms);
        let mut slots: BTreeMap<(String, String, i64), (i64, i64)> = BTreeMap::new();
        let mut days: BTreeMap<DayKey, Mark> = BTreeMap::new();
        for s in &rows.snapshots {
            let c = self.channel(&s.domain, &s.channel);
            self.see_channel(&s.domain, &c, Some(s.at));
            let at = slot(s.at);
            widen(&mut days, (&s.domain, &c), (at, s.total, s.chat));
            if slots.contains_key(&(s.domain.clone(), c.clone(), at)) {
                self.report.slot_duplicates += 1;
                continue;
            }
            slots.insert((s.domain.clone(), c, at), (s.total, s.chat));
        }
        for w in &rows.watermarks {
            let c = self.channel(&w.domain, &w.channel);
            self.see_channel(&w.domain, &c, Some(w.at));
            widen(&mut days, (&w.domain, &c), (slot(w.at), w.total, w.chat));
        }
        self.plan.population = slots.into_iter().map(|((d, c, at), (t, ch))| (d, c, at, t, ch)).collect();
        self.plan.watermarks =
            days.into_iter().map(|((d, c, day, kind), (at, t, ch))| (d, c, day, kind, at, t, ch)).collect();
    }

    /// The media log, appended as it is (a missing title is `Unknown`); returns the entries
    /// with type and id by title, which votes without them are resolved against.
    fn media(&mut self) -> ByTitle {
        let rows = self.rows;
        let mut by_title = ByTitle::new();
        for m in &rows.media {
            let c = self.channel(&m.domain, &m.channel);
            self.see_channel(&m.domain, &c, Some(m.at));
            let title = if m.title.is_empty() { "Unknown".to_string() } else { m.title.clone() };
            if !m.media_type.is_empty() && !m.media_id.is_empty() {
                by_title.entry((m.domain.clone(), c.clone(), title.clone())).or_default().push((
                    m.at,
                    m.media_type.clone(),
                    m.media_id.clone(),
                ));
            }
            self.add_total(&m.domain, "total_media_changes".into(), 1);
            self.plan.media.push((m.domain.clone(), c, m.at, m.media_type.clone(), m.media_id.clone(), title));
        }
        by_title
    }

    /// Votes keyed by (type, id) as ours are; of two old votes of one user that land on one
    /// item (case variants, renamed titles) the latest wins, as in ours.
    fn votes(&mut self, by_title: &ByTitle) {
        let rows = self.rows;
        let mut votes: BTreeMap<VoteKey, (i64, i64)> = BTreeMap::new();
        for v in &rows.votes {
            let c = self.channel(&v.domain, &v.channel);
            self.see_channel(&v.domain, &c, Some(v.at));
            let (ty, id) = self.vote_item(v, &c, by_title);
            let e = votes.entry((v.domain.clone(), c, ty, id, v.name.to_lowercase())).or_insert((v.vote, v.at));
            if v.at >= e.1 {
                *e = (v.vote, v.at);
            }
        }
        self.plan.votes =
            votes.into_iter().map(|((d, c, ty, id, k), (vote, at))| (d, c, ty, id, k, vote, at)).collect();
    }

    /// The (type, id) a vote is for: its own; else that of the channel's latest media-log
    /// entry with the same title at or before the vote (else any); else type `''` and the
    /// title as id (counted, shown without a title).
    fn vote_item(&mut self, v: &VoteIn, c: &str, by_title: &ByTitle) -> (String, String) {
        if !v.media_type.is_empty() && !v.media_id.is_empty() {
            return (v.media_type.clone(), v.media_id.clone());
        }
        self.report.votes_by_title += 1;
        let logged = by_title.get(&(v.domain.clone(), c.to_string(), v.title.clone()));
        let pick = logged.and_then(|l| {
            l.iter()
                .filter(|(at, _, _)| *at <= v.at)
                .max_by_key(|(at, _, _)| *at)
                .or_else(|| l.iter().max_by_key(|(at, _, _)| *at))
        });
        match pick {
            Some((_, ty, id)) => (ty.clone(), id.clone()),
            None => {
                self.report.votes_unresolved += 1;
                (String::new(), v.title.clone())
            }
        }
    }

    /// Aliases: an alias 0.7.1 gave to two users goes to the first (skipped for the second).
    fn aliases(&mut self) {
        let rows = self.rows;
        let mut aliases: BTreeMap<String, (String, String)> = BTreeMap::new();
        for (name, alias) in &rows.aliases {
            let key = name.to_lowercase();
            match aliases.get(alias) {
                Some((owner, _)) if *owner != key => {
                    self.report.skip("user_aliases", "alias already given to another user")
                }
                Some(_) => {}
                None => {
                    aliases.insert(alias.clone(), (key.clone(), self.people.display(&key)));
                }
            }
        }
        self.plan.aliases = aliases.into_iter().map(|(a, (k, d))| (a, k, d)).collect();
    }

    /// Trigger phrases, once each (already trimmed and lower-cased when read).
    fn triggers(&mut self) {
        let triggers: BTreeSet<String> = self.rows.triggers.iter().cloned().collect();
        self.plan.phrases = triggers.into_iter().collect();
    }

    /// The channels met (first seen: their earliest row's time, else the import's) and the
    /// totals that move.
    fn finish(self, now_ms: i64) -> ImportPlan {
        let mut plan = self.plan;
        plan.channels = self
            .channel_first
            .into_iter()
            .map(|((d, c), first)| (d, c, if first == i64::MAX { now_ms } else { first }))
            .collect();
        plan.totals = self.totals.into_iter().filter(|(_, n)| *n != 0).map(|((d, name), n)| (d, name, n)).collect();
        plan
    }
}

/// Widens the UTC day's `high` and `low` of a channel with one mark (at its slot's time), as
/// ingest-presence does: a higher (lower) total wins, an equal one if it is earlier.
fn widen(days: &mut BTreeMap<DayKey, Mark>, (d, c): (&str, &str), (at, total, chat): Mark) {
    let day = shared::wire::format_timestamp(at)[..10].to_string();
    for kind in ["high", "low"] {
        let e = days.entry((d.to_string(), c.to_string(), day.clone(), kind)).or_insert((at, total, chat));
        let better = if kind == "high" { total > e.1 } else { total < e.1 };
        if better || (total == e.1 && at < e.0) {
            *e = (at, total, chat);
        }
    }
}
