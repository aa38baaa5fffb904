//! The bridge's KV buckets of a channel as they are read, and as the events the ingest
//! handlers take (pure: no NATS, no database).

use crate::wire::{self, Parsed};
use serde_json::{json, Value};
use std::collections::HashSet;

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

/// A value that could not be turned into an event: the bucket kind it came from, and why
/// (the message names the bucket and key).
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
