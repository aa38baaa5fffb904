//! The typed CyTube payloads we use, and how each event's payload is read
//! (`01-wire.md` §3). One table, [`PARSERS`], names every event we understand once; an
//! event not in it is [`Event::Other`] (ignored and counted, not rejected).

use super::{no_nul, Reject};
use serde_json::{Map, Value};

/// A user as CyTube describes it in `addUser` and `userlist`.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// The name as sent, surrounding whitespace trimmed.
    pub name: String,
    /// `meta.afk` when it is a bool.
    pub afk: Option<bool>,
    /// `rank` when it is a finite number (1.5 for the leader).
    pub rank: Option<f64>,
}

/// One entry of a channel's emote list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emote {
    pub name: String,
    pub image: String,
    /// CyTube's match regex, kept as text.
    pub source: String,
}

/// A media item (changeMedia payload or a playlist item's `media`).
#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    /// CyTube's `type` (`yt`, `fi`, ...).
    pub media_type: String,
    pub id: String,
    /// The raw title (not cleaned); `""` when missing.
    pub title: String,
    /// The length in seconds, when a finite number.
    pub seconds: Option<f64>,
}

/// One playlist entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistItem {
    pub uid: i64,
    pub media: Media,
}

/// The typed payload of one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `msg` is raw: still HTML-escaped as CyTube sent it.
    ChatMsg {
        username: String,
        msg: String,
        shadow: bool,
    },
    Pm {
        username: String,
        to: Option<String>,
        msg: String,
    },
    AddUser(User),
    UserLeave {
        name: String,
    },
    Userlist(Vec<User>),
    SetAfk {
        name: String,
        afk: bool,
    },
    SetUserMeta {
        name: String,
        afk: Option<bool>,
    },
    Usercount(i64),
    ChangeMedia(Media),
    SetCurrent(i64),
    MediaUpdate,
    EmoteList(Vec<Emote>),
    UpdateEmote(Emote),
    RemoveEmote {
        name: String,
    },
    RenameEmote {
        old: String,
        emote: Emote,
    },
    Playlist(Vec<PlaylistItem>),
    /// `after == None` means `"prepend"`.
    Queue {
        item: PlaylistItem,
        after: Option<i64>,
    },
    Delete {
        uid: i64,
    },
    /// `after == None` means `"prepend"`.
    MoveVideo {
        from: i64,
        after: Option<i64>,
    },
    /// Any event we do not use, with its name as sent. Not a rejection.
    Other(String),
}

/// Reads one event's payload; the argument `ev` is the event's name, for rejections.
type PayloadParser = fn(&Value, &'static str) -> Result<Event, Reject>;

/// Every event we understand, by its CyTube name (matched case-insensitively), with the
/// reader of its payload.
pub const PARSERS: &[(&str, PayloadParser)] = &[
    ("chatMsg", chat_msg),
    ("pm", pm),
    ("addUser", |p, ev| Ok(Event::AddUser(user(p, ev)?))),
    ("userLeave", |p, ev| Ok(Event::UserLeave { name: req_name(obj(p, ev)?, "name", ev)? })),
    ("userlist", |p, ev| Ok(Event::Userlist(list(p, ev, user)?))),
    ("setAFK", set_afk),
    ("setUserMeta", set_user_meta),
    ("usercount", |p, ev| as_integer(p).filter(|n| *n >= 0).map(Event::Usercount).ok_or(Reject::BadPayload(ev))),
    ("changeMedia", |p, ev| Ok(Event::ChangeMedia(media(p, ev)?))),
    ("setCurrent", |p, ev| as_integer(p).map(Event::SetCurrent).ok_or(Reject::BadPayload(ev))),
    ("mediaUpdate", |_, _| Ok(Event::MediaUpdate)),
    ("emoteList", |p, ev| Ok(Event::EmoteList(list(p, ev, emote)?))),
    ("updateEmote", |p, ev| Ok(Event::UpdateEmote(emote(p, ev)?))),
    ("removeEmote", |p, ev| Ok(Event::RemoveEmote { name: req_name(obj(p, ev)?, "name", ev)? })),
    ("renameEmote", |p, ev| Ok(Event::RenameEmote { old: req_name(obj(p, ev)?, "old", ev)?, emote: emote(p, ev)? })),
    ("playlist", |p, ev| Ok(Event::Playlist(list(p, ev, playlist_item)?))),
    ("queue", queue),
    ("delete", |p, ev| Ok(Event::Delete { uid: req_integer(obj(p, ev)?, "uid", ev)? })),
    ("moveVideo", move_video),
];

/// Turns the payload into a typed [`Event`] according to the event name; a name not in
/// [`PARSERS`] is [`Event::Other`].
pub(super) fn parse_event(name: &str, p: &Value) -> Result<Event, Reject> {
    match PARSERS.iter().find(|(known, _)| name.eq_ignore_ascii_case(known)) {
        Some((known, parser)) => parser(p, known),
        None => Ok(Event::Other(name.to_string())),
    }
}

fn chat_msg(p: &Value, ev: &'static str) -> Result<Event, Reject> {
    let o = obj(p, ev)?;
    let username = req_name(o, "username", ev)?;
    let msg = req_string(o, "msg", ev)?;
    let shadow = o.get("meta").and_then(|m| m.get("shadow")).and_then(Value::as_bool).unwrap_or(false);
    Ok(Event::ChatMsg { username, msg, shadow })
}

fn pm(p: &Value, ev: &'static str) -> Result<Event, Reject> {
    let o = obj(p, ev)?;
    let username = req_name(o, "username", ev)?;
    let msg = req_string(o, "msg", ev)?;
    // `to` is optional; a non-string or empty value is treated as absent.
    let to = match o.get("to") {
        Some(Value::String(s)) => {
            no_nul(s)?;
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_string())
        }
        _ => None,
    };
    Ok(Event::Pm { username, to, msg })
}

fn set_afk(p: &Value, ev: &'static str) -> Result<Event, Reject> {
    let o = obj(p, ev)?;
    let name = req_name(o, "name", ev)?;
    let afk = o.get("afk").and_then(Value::as_bool).ok_or(Reject::BadPayload(ev))?;
    Ok(Event::SetAfk { name, afk })
}

fn set_user_meta(p: &Value, ev: &'static str) -> Result<Event, Reject> {
    let o = obj(p, ev)?;
    let name = req_name(o, "name", ev)?;
    let afk = o.get("meta").and_then(|m| m.get("afk")).and_then(Value::as_bool);
    Ok(Event::SetUserMeta { name, afk })
}

fn queue(p: &Value, ev: &'static str) -> Result<Event, Reject> {
    let o = obj(p, ev)?;
    let item = playlist_item(o.get("item").unwrap_or(&Value::Null), ev)?;
    let after = after_uid(o, ev)?;
    Ok(Event::Queue { item, after })
}

fn move_video(p: &Value, ev: &'static str) -> Result<Event, Reject> {
    let o = obj(p, ev)?;
    let from = req_integer(o, "from", ev)?;
    let after = after_uid(o, ev)?;
    Ok(Event::MoveVideo { from, after })
}

/// An array payload, each element read by `one`.
fn list<T>(p: &Value, ev: &'static str, one: fn(&Value, &'static str) -> Result<T, Reject>) -> Result<Vec<T>, Reject> {
    arr(p, ev)?.iter().map(|v| one(v, ev)).collect()
}

/// The payload as an object, or a rejection naming the event.
fn obj<'a>(p: &'a Value, ev: &'static str) -> Result<&'a Map<String, Value>, Reject> {
    p.as_object().ok_or(Reject::BadPayload(ev))
}

/// The payload as an array, or a rejection naming the event.
fn arr<'a>(p: &'a Value, ev: &'static str) -> Result<&'a Vec<Value>, Reject> {
    p.as_array().ok_or(Reject::BadPayload(ev))
}

/// A required string field, kept exactly as sent (may be empty).
fn req_string(o: &Map<String, Value>, key: &str, ev: &'static str) -> Result<String, Reject> {
    match o.get(key) {
        Some(Value::String(s)) => {
            no_nul(s)?;
            Ok(s.clone())
        }
        _ => Err(Reject::BadPayload(ev)),
    }
}

/// A required name: a string, trimmed, not empty.
fn req_name(o: &Map<String, Value>, key: &str, ev: &'static str) -> Result<String, Reject> {
    let s = req_string(o, key, ev)?;
    let t = s.trim();
    if t.is_empty() {
        Err(Reject::BadPayload(ev))
    } else if t.len() == s.len() {
        Ok(s)
    } else {
        Ok(t.to_string())
    }
}

/// An optional string field: missing or null gives `""`, another type rejects.
fn opt_string(o: &Map<String, Value>, key: &str, ev: &'static str) -> Result<String, Reject> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(_) => req_string(o, key, ev),
    }
}

/// A JSON number that is a whole number fitting in i64 (`3.0` is fine).
fn as_integer(v: &Value) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return Some(n);
    }
    // Only floats remain interesting here (u64 above i64::MAX is rejected).
    if v.is_u64() {
        return None;
    }
    let f = v.as_f64()?;
    // 2^53: beyond it floats no longer hold every integer exactly.
    const LIMIT: f64 = 9_007_199_254_740_992.0;
    if f.is_finite() && f.fract() == 0.0 && f.abs() <= LIMIT {
        Some(f as i64)
    } else {
        None
    }
}

/// A required integer field.
fn req_integer(o: &Map<String, Value>, key: &str, ev: &'static str) -> Result<i64, Reject> {
    o.get(key).and_then(as_integer).ok_or(Reject::BadPayload(ev))
}

/// The `after` field of queue / moveVideo: a uid, or `"prepend"` (→ None).
fn after_uid(o: &Map<String, Value>, ev: &'static str) -> Result<Option<i64>, Reject> {
    match o.get("after") {
        Some(Value::String(s)) if s == "prepend" => Ok(None),
        Some(v) => as_integer(v).map(Some).ok_or(Reject::BadPayload(ev)),
        None => Err(Reject::BadPayload(ev)),
    }
}

/// An addUser-shaped object.
fn user(v: &Value, ev: &'static str) -> Result<User, Reject> {
    let o = obj(v, ev)?;
    let name = req_name(o, "name", ev)?;
    let afk = o.get("meta").and_then(|m| m.get("afk")).and_then(Value::as_bool);
    let rank = o.get("rank").and_then(Value::as_f64).filter(|r| r.is_finite());
    Ok(User { name, afk, rank })
}

/// A media object (changeMedia payload or playlist `media`).
fn media(v: &Value, ev: &'static str) -> Result<Media, Reject> {
    let o = obj(v, ev)?;
    let id = req_string(o, "id", ev)?;
    let media_type = req_string(o, "type", ev)?;
    let title = opt_string(o, "title", ev)?;
    let seconds = o.get("seconds").and_then(Value::as_f64).filter(|s| s.is_finite());
    Ok(Media { media_type, id, title, seconds })
}

/// A playlist item `{uid, media}`.
fn playlist_item(v: &Value, ev: &'static str) -> Result<PlaylistItem, Reject> {
    let o = obj(v, ev)?;
    let uid = req_integer(o, "uid", ev)?;
    let media = media(o.get("media").unwrap_or(&Value::Null), ev)?;
    Ok(PlaylistItem { uid, media })
}

/// An emote `{name, image, source}`; image and source default to `""`.
fn emote(v: &Value, ev: &'static str) -> Result<Emote, Reject> {
    let o = obj(v, ev)?;
    let name = req_name(o, "name", ev)?;
    let image = opt_string(o, "image", ev)?;
    let source = opt_string(o, "source", ev)?;
    Ok(Emote { name, image, source })
}
