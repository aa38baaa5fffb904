//! The Kryten wire contract (spec `01-wire.md`): the JSON envelope the Kryten
//! bridge publishes on NATS, the typed CyTube payloads we use, the subject
//! token rule, and the small text helpers every function needs (timestamps,
//! HTML entities).
//!
//! Everything here is pure and must never panic, whatever bytes arrive: a
//! malformed message becomes a [`Reject`] that the caller counts and logs.

use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// Largest message body we look at: 1 MiB plus 64 KiB of envelope slack.
pub const MAX_BODY_BYTES: usize = 1024 * 1024 + 64 * 1024;

/// First millisecond of the year 3000 (UTC): times at or after it are absurd.
const YEAR_3000_MS: i64 = 32_503_680_000_000;

/// Why a message was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// The body is not UTF-8 or not JSON (this includes numbers JSON cannot
    /// hold, such as `1e309`).
    InvalidJson,
    /// The body is JSON but not an object.
    NotObject,
    /// `event_name` is missing, not a string or empty.
    NoEventName,
    /// The envelope or the payload of the named event has the wrong shape.
    BadPayload(&'static str),
    /// Neither `payload.time` (chat, pm) nor the envelope `timestamp` is usable.
    BadTime,
    /// A string we would keep contains a NUL character.
    NulByte,
    /// The body is larger than [`MAX_BODY_BYTES`].
    TooLarge,
}

impl Reject {
    /// A short snake_case name, for metric labels.
    pub fn label(&self) -> &'static str {
        match self {
            Reject::InvalidJson => "invalid_json",
            Reject::NotObject => "not_object",
            Reject::NoEventName => "no_event_name",
            Reject::BadPayload(_) => "bad_payload",
            Reject::BadTime => "bad_time",
            Reject::NulByte => "nul_byte",
            Reject::TooLarge => "too_large",
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::InvalidJson => write!(f, "the message body is not valid UTF-8 JSON"),
            Reject::NotObject => write!(f, "the message body is JSON but not an object"),
            Reject::NoEventName => write!(f, "the envelope has no usable event_name"),
            Reject::BadPayload(what) => write!(f, "the {what} has the wrong shape"),
            Reject::BadTime => write!(f, "the message has no valid time"),
            Reject::NulByte => write!(f, "a string in the message contains a NUL byte"),
            Reject::TooLarge => write!(f, "the message body is larger than {MAX_BODY_BYTES} bytes"),
        }
    }
}

impl std::error::Error for Reject {}

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

/// One accepted message.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The CyTube domain, lowercased.
    pub domain: String,
    /// The channel as sent (case kept).
    pub channel: String,
    /// The event's own time in ms since the epoch (UTC).
    pub time_ms: i64,
    /// The idempotency key: `correlation_id`, or `"h:"` + a hash of the body.
    pub id: String,
    pub event: Event,
}

/// Parse one raw NATS message body. Never panics.
pub fn parse(data: &[u8]) -> Result<Parsed, Reject> {
    if data.len() > MAX_BODY_BYTES {
        return Err(Reject::TooLarge);
    }
    let text = std::str::from_utf8(data).map_err(|_| Reject::InvalidJson)?;
    let root: Value = serde_json::from_str(text).map_err(|_| Reject::InvalidJson)?;
    let env = root.as_object().ok_or(Reject::NotObject)?;

    let event_name = match env.get("event_name") {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        _ => return Err(Reject::NoEventName),
    };
    no_nul(event_name)?;

    let channel = envelope_str(env, "channel")?;
    let domain = envelope_str(env, "domain")?.to_lowercase();

    let payload = env.get("payload").unwrap_or(&Value::Null);
    let event = parse_event(event_name, payload)?;

    // Chat and PM carry their own time; everything else uses the envelope's.
    let payload_time = match event {
        Event::ChatMsg { .. } | Event::Pm { .. } => {
            payload.get("time").and_then(Value::as_f64).and_then(epoch_ms_from_f64)
        }
        _ => None,
    };
    let time_ms = match payload_time {
        Some(t) => t,
        None => env
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(parse_timestamp_ms)
            .filter(|t| sane_time(*t))
            .ok_or(Reject::BadTime)?,
    };

    let id = match env.get("correlation_id") {
        Some(Value::String(s)) if !s.is_empty() => {
            no_nul(s)?;
            s.clone()
        }
        _ => format!("h:{:016x}", fnv1a64(data)),
    };

    Ok(Parsed { domain, channel: channel.to_string(), time_ms, id, event })
}

/// A required non-empty string field of the envelope itself.
fn envelope_str<'a>(env: &'a Map<String, Value>, key: &str) -> Result<&'a str, Reject> {
    match env.get(key) {
        Some(Value::String(s)) if !s.is_empty() => {
            no_nul(s)?;
            Ok(s.as_str())
        }
        _ => Err(Reject::BadPayload("envelope")),
    }
}

/// True when `t` (ms since the epoch) is after 1970 and before the year 3000.
fn sane_time(t: i64) -> bool {
    t > 0 && t < YEAR_3000_MS
}

/// A `payload.time` number as whole milliseconds, if finite and sane.
fn epoch_ms_from_f64(t: f64) -> Option<i64> {
    if t.is_finite() && t > 0.0 && t < YEAR_3000_MS as f64 {
        // In range, so the cast cannot saturate; fractions of a ms are dropped.
        Some(t.trunc() as i64)
    } else {
        None
    }
}

/// 64-bit FNV-1a: a stable hash of the body for messages without an id.
fn fnv1a64(data: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Reject strings carrying a NUL character.
fn no_nul(s: &str) -> Result<(), Reject> {
    if s.contains('\0') {
        Err(Reject::NulByte)
    } else {
        Ok(())
    }
}

/// Turn the payload into a typed [`Event`] according to the event name.
fn parse_event(name: &str, p: &Value) -> Result<Event, Reject> {
    // Event names are ASCII camelCase; match them case-insensitively.
    let is = |known: &str| name.eq_ignore_ascii_case(known);

    if is("chatMsg") {
        let ev = "chatMsg";
        let o = obj(p, ev)?;
        let username = req_name(o, "username", ev)?;
        let msg = req_string(o, "msg", ev)?;
        let shadow = o.get("meta").and_then(|m| m.get("shadow")).and_then(Value::as_bool).unwrap_or(false);
        Ok(Event::ChatMsg { username, msg, shadow })
    } else if is("pm") {
        let ev = "pm";
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
    } else if is("addUser") {
        Ok(Event::AddUser(user(p, "addUser")?))
    } else if is("userLeave") {
        let ev = "userLeave";
        let name = req_name(obj(p, ev)?, "name", ev)?;
        Ok(Event::UserLeave { name })
    } else if is("userlist") {
        let ev = "userlist";
        let list = arr(p, ev)?;
        let users = list.iter().map(|u| user(u, ev)).collect::<Result<Vec<_>, _>>()?;
        Ok(Event::Userlist(users))
    } else if is("setAFK") {
        let ev = "setAFK";
        let o = obj(p, ev)?;
        let name = req_name(o, "name", ev)?;
        let afk = o.get("afk").and_then(Value::as_bool).ok_or(Reject::BadPayload(ev))?;
        Ok(Event::SetAfk { name, afk })
    } else if is("setUserMeta") {
        let ev = "setUserMeta";
        let o = obj(p, ev)?;
        let name = req_name(o, "name", ev)?;
        let afk = o.get("meta").and_then(|m| m.get("afk")).and_then(Value::as_bool);
        Ok(Event::SetUserMeta { name, afk })
    } else if is("usercount") {
        let ev = "usercount";
        match as_integer(p) {
            Some(n) if n >= 0 => Ok(Event::Usercount(n)),
            _ => Err(Reject::BadPayload(ev)),
        }
    } else if is("changeMedia") {
        Ok(Event::ChangeMedia(media(p, "changeMedia")?))
    } else if is("setCurrent") {
        let uid = as_integer(p).ok_or(Reject::BadPayload("setCurrent"))?;
        Ok(Event::SetCurrent(uid))
    } else if is("mediaUpdate") {
        Ok(Event::MediaUpdate)
    } else if is("emoteList") {
        let ev = "emoteList";
        let emotes = arr(p, ev)?.iter().map(|e| emote(e, ev)).collect::<Result<Vec<_>, _>>()?;
        Ok(Event::EmoteList(emotes))
    } else if is("updateEmote") {
        Ok(Event::UpdateEmote(emote(p, "updateEmote")?))
    } else if is("removeEmote") {
        let ev = "removeEmote";
        let name = req_name(obj(p, ev)?, "name", ev)?;
        Ok(Event::RemoveEmote { name })
    } else if is("renameEmote") {
        let ev = "renameEmote";
        let old = req_name(obj(p, ev)?, "old", ev)?;
        let emote = emote(p, ev)?;
        Ok(Event::RenameEmote { old, emote })
    } else if is("playlist") {
        let ev = "playlist";
        let items = arr(p, ev)?.iter().map(|i| playlist_item(i, ev)).collect::<Result<Vec<_>, _>>()?;
        Ok(Event::Playlist(items))
    } else if is("queue") {
        let ev = "queue";
        let o = obj(p, ev)?;
        let item = playlist_item(o.get("item").unwrap_or(&Value::Null), ev)?;
        let after = after_uid(o, ev)?;
        Ok(Event::Queue { item, after })
    } else if is("delete") {
        let ev = "delete";
        let uid = req_integer(obj(p, ev)?, "uid", ev)?;
        Ok(Event::Delete { uid })
    } else if is("moveVideo") {
        let ev = "moveVideo";
        let o = obj(p, ev)?;
        let from = req_integer(o, "from", ev)?;
        let after = after_uid(o, ev)?;
        Ok(Event::MoveVideo { from, after })
    } else {
        Ok(Event::Other(name.to_string()))
    }
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

/// The subject token rule of `01-wire.md` §1, applied in the spec's order:
/// lowercase, delete `.`, space → `-`, delete `*` and `>`, delete the listed
/// punctuation, cut to 100 characters.
pub fn subject_token(s: &str) -> String {
    const DELETED: &str = "!@#$%^&*()+=[]{|}\\:;\"'<>,?/";
    let mut out = String::with_capacity(s.len());
    let mut kept = 0usize;
    for c in s.to_lowercase().chars() {
        let c = match c {
            '.' | '*' | '>' => continue,
            ' ' => '-',
            c if DELETED.contains(c) => continue,
            c => c,
        };
        out.push(c);
        kept += 1;
        if kept == 100 {
            break;
        }
    }
    out
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's
/// days-from-civil). `month` is 1..=12.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // 0..=399
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1; // 0..=365
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // 0..=146096
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A small cursor over ASCII bytes for the timestamp parser.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize) -> Option<i64> {
        let part = self.b.get(self.i..self.i + n)?;
        let mut v = 0i64;
        for &d in part {
            if !d.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(d - b'0');
        }
        self.i += n;
        Some(v)
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Consume `c` if it is next.
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
}

/// Parse a lenient ISO-8601 timestamp into ms since the epoch (UTC).
///
/// Accepts `YYYY-MM-DD`, then `T`/`t`/space, `HH:MM:SS`, an optional fraction
/// of 1..=9 digits (cut to ms), and an offset `Z`, `+HH:MM`, `-HH:MM`,
/// `+HHMM` or `+HH`. A missing offset is read as UTC. Surrounding whitespace
/// is ignored. Anything else gives `None`.
pub fn parse_timestamp_ms(s: &str) -> Option<i64> {
    let mut c = Cursor { b: s.trim().as_bytes(), i: 0 };
    let year = c.digits(4)?;
    if !c.eat(b'-') {
        return None;
    }
    let month = c.digits(2)?;
    if !c.eat(b'-') {
        return None;
    }
    let day = c.digits(2)?;
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return None;
    }
    let hour = c.digits(2)?;
    if !c.eat(b':') {
        return None;
    }
    let minute = c.digits(2)?;
    if !c.eat(b':') {
        return None;
    }
    let second = c.digits(2)?;

    // Optional fraction: keep the first three digits as milliseconds.
    let mut millis = 0i64;
    if c.eat(b'.') {
        let mut count = 0;
        while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
            if count < 3 {
                millis = millis * 10 + i64::from(d - b'0');
            }
            count += 1;
            c.i += 1;
        }
        if !(1..=9).contains(&count) {
            return None;
        }
        for _ in count..3 {
            millis *= 10;
        }
    }

    // Offset, in minutes east of UTC.
    let offset_min = match c.peek() {
        None => 0,
        Some(b'Z') | Some(b'z') => {
            c.i += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let oh = c.digits(2)?;
            let om = if c.peek().is_none() {
                0
            } else {
                c.eat(b':');
                c.digits(2)?
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let m = oh * 60 + om;
            if sign == b'-' {
                -m
            } else {
                m
            }
        }
        Some(_) => return None,
    };
    if c.i != c.b.len() {
        return None;
    }

    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }

    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_min * 60;
    Some(secs * 1000 + millis)
}

/// Split ms since the epoch into a civil date and time of day (UTC).
fn split_ms(ms: i64) -> ((i64, i64, i64), i64, i64, i64, i64) {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let date = civil_from_days(days);
    let hour = in_day / 3_600_000;
    let minute = in_day / 60_000 % 60;
    let second = in_day / 1000 % 60;
    let millis = in_day % 1000;
    (date, hour, minute, second, millis)
}

/// Format ms since the epoch as `2025-11-23T08:00:00.123+00:00` (UTC; the
/// fraction is left out when it is zero, as Python's `isoformat` does).
pub fn format_timestamp(ms: i64) -> String {
    let ((y, mo, d), h, mi, s, milli) = split_ms(ms);
    if milli == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}+00:00")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}+00:00")
    }
}

/// The UTC hour containing `ms`, as `YYYY-MM-DD HH:00:00` (hourly buckets).
pub fn format_hour(ms: i64) -> String {
    let ((y, mo, d), h, _, _, _) = split_ms(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:00:00")
}

/// Decode the HTML entities CyTube produces: `&amp; &lt; &gt; &quot; &#39;
/// &apos; &nbsp;` (to U+00A0), `&#NNN;` and `&#xHH;`. Anything else,
/// including numeric references to invalid code points or NUL, is left as
/// written. Text without `&` is returned borrowed, unchanged.
pub fn decode_html_entities(s: &str) -> Cow<'_, str> {
    let Some(first) = s.find('&') else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len());
    out.push_str(&s[..first]);
    let mut rest = &s[first..];
    // Invariant at the top of the loop: `rest` starts with '&'.
    loop {
        match decode_one(rest) {
            Some((ch, used)) => {
                out.push(ch);
                rest = &rest[used..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
        match rest.find('&') {
            Some(i) => {
                out.push_str(&rest[..i]);
                rest = &rest[i..];
            }
            None => {
                out.push_str(rest);
                break;
            }
        }
    }
    Cow::Owned(out)
}

/// Decode the entity at the start of `s` (which starts with `&`): the
/// character and the number of bytes the entity used.
fn decode_one(s: &str) -> Option<(char, usize)> {
    // The longest entity we know is `&#x10FFFF;` / `&#1114111;` (10 bytes);
    // look no further so that decoding stays linear.
    let window = &s.as_bytes()[..s.len().min(12)];
    let semi = window.iter().position(|&b| b == b';')?;
    let body = &s[1..semi]; // between '&' and ';' (ASCII bytes only matter)
    let used = semi + 1;
    let ch = match body {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        _ => {
            let num = body.strip_prefix('#')?;
            let code = if let Some(hex) = num.strip_prefix(['x', 'X']) {
                if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                u32::from_str_radix(hex, 16).ok()?
            } else {
                if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                num.parse::<u32>().ok()?
            };
            if code == 0 {
                return None;
            }
            char::from_u32(code)?
        }
    };
    Some((ch, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: &str = include_str!("../../tests/fixtures/events.jsonl");
    const MALFORMED: &str = include_str!("../../tests/fixtures/malformed.jsonl");

    /// The raw `data` strings of a fixture file.
    fn fixture_bodies(file: &str) -> Vec<String> {
        file.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                v["data"].as_str().unwrap().to_string()
            })
            .collect()
    }

    /// Build an envelope around a payload given as JSON text.
    fn env(event: &str, payload: &str) -> String {
        format!(
            r#"{{"event_name": "{event}", "payload": {payload}, "channel": "420Grindhouse", "domain": "Cytu.BE", "timestamp": "2025-11-23T08:00:00+00:00", "correlation_id": "c1"}}"#
        )
    }

    fn ev(event: &str, payload: &str) -> Result<Event, Reject> {
        parse(env(event, payload).as_bytes()).map(|p| p.event)
    }

    const T0: i64 = 1_763_884_800_000;

    #[test]
    fn every_fixture_event_parses() {
        let bodies = fixture_bodies(EVENTS);
        assert_eq!(bodies.len(), 37);
        let mut others = 0;
        for b in &bodies {
            let p = parse(b.as_bytes()).unwrap_or_else(|e| panic!("{e}: {b}"));
            assert_eq!(p.domain, "cytu.be");
            assert_eq!(p.channel, "420Grindhouse");
            assert!(p.time_ms >= T0, "{b}");
            assert!(!p.id.starts_with("h:"));
            if let Event::Other(name) = &p.event {
                assert_eq!(name, "voteskip");
                others += 1;
            }
        }
        assert_eq!(others, 1);
    }

    #[test]
    fn fixture_details() {
        let bodies = fixture_bodies(EVENTS);
        let all: Vec<Parsed> = bodies.iter().map(|b| parse(b.as_bytes()).unwrap()).collect();
        // The first userlist has 7 users, sleepy is AFK, Leader ranks 1.5.
        match &all[0].event {
            Event::Userlist(users) => {
                assert_eq!(users.len(), 7);
                assert_eq!(users[2].name, "Zoë");
                assert_eq!(users[4].rank, Some(1.5));
                assert_eq!(users[5].afk, Some(true));
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(all[0].time_ms, T0);
        assert_eq!(all[0].id, "bdd640fb-0667-4ad1-9c80-317fa3b1799d");
        // Chat time comes from payload.time.
        let shadow = all.iter().find(|p| matches!(&p.event, Event::ChatMsg { shadow: true, .. })).unwrap();
        assert_eq!(shadow.time_ms, T0 + 32_000);
        let pm = all.iter().find(|p| matches!(&p.event, Event::Pm { .. })).unwrap();
        assert_eq!(pm.event, Event::Pm { username: "bob".into(), to: Some("Alice".into()), msg: "psst".into() });
        assert!(all.iter().any(|p| p.event
            == Event::ChangeMedia(Media {
                media_type: "yt".into(),
                id: "dQw4w9WgXcQ".into(),
                title: "Never_Gonna.Give.You.Up.mp4".into(),
                seconds: Some(212.0)
            })));
        assert!(all.iter().any(|p| p.event == Event::Usercount(12)));
        assert!(all.iter().any(|p| p.event == Event::SetCurrent(7)));
        assert!(all.iter().any(|p| p.event == Event::SetUserMeta { name: "sleepy".into(), afk: Some(false) }));
        // The last event is a re-delivery of an earlier one.
        assert_eq!(all[36].id, all[6].id);
    }

    #[test]
    fn every_malformed_line_is_rejected() {
        let bodies = fixture_bodies(MALFORMED);
        assert_eq!(bodies.len(), 8);
        let got: Vec<Reject> = bodies.iter().map(|b| parse(b.as_bytes()).unwrap_err()).collect();
        assert_eq!(got[0], Reject::InvalidJson);
        assert_eq!(got[1], Reject::NotObject);
        assert_eq!(got[2], Reject::BadPayload("chatMsg"));
        assert_eq!(got[3], Reject::BadPayload("chatMsg"));
        assert_eq!(got[4], Reject::BadPayload("addUser"));
        assert_eq!(got[5], Reject::NulByte);
        // serde_json refuses 1e309 outright.
        assert!(matches!(got[6], Reject::InvalidJson | Reject::BadPayload("usercount")));
        assert_eq!(got[7], Reject::BadPayload("setAFK"));
    }

    #[test]
    fn envelope_rules() {
        assert_eq!(parse(b"\xff\xfe").unwrap_err(), Reject::InvalidJson);
        assert_eq!(parse(b"").unwrap_err(), Reject::InvalidJson);
        assert_eq!(parse(b"42").unwrap_err(), Reject::NotObject);
        assert_eq!(parse(b"null").unwrap_err(), Reject::NotObject);
        assert_eq!(parse(b"{}").unwrap_err(), Reject::NoEventName);
        assert_eq!(parse(br#"{"event_name": 5}"#).unwrap_err(), Reject::NoEventName);
        assert_eq!(parse(br#"{"event_name": ""}"#).unwrap_err(), Reject::NoEventName);
        assert_eq!(
            parse(br#"{"event_name": "usercount", "payload": 1, "domain": "d", "timestamp": "2025-11-23T08:00:00Z"}"#)
                .unwrap_err(),
            Reject::BadPayload("envelope")
        );
        assert_eq!(
            parse(br#"{"event_name": "usercount", "payload": 1, "channel": 3, "domain": "d", "timestamp": "2025-11-23T08:00:00Z"}"#)
                .unwrap_err(),
            Reject::BadPayload("envelope")
        );
        // Case-insensitive event name, lowercased domain.
        let p = parse(env("CHATMSG", r#"{"username": " bob ", "msg": "hi"}"#).as_bytes()).unwrap();
        assert_eq!(p.domain, "cytu.be");
        assert_eq!(p.id, "c1");
        assert_eq!(p.event, Event::ChatMsg { username: "bob".into(), msg: "hi".into(), shadow: false });
        // Oversized bodies are refused before parsing.
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(parse(&big).unwrap_err(), Reject::TooLarge);
        // Deep nesting is an error, not a stack overflow.
        let deep = "[".repeat(100_000);
        assert_eq!(parse(deep.as_bytes()).unwrap_err(), Reject::InvalidJson);
    }

    #[test]
    fn correlation_id_fallback_is_a_stable_hash() {
        let body = r#"{"event_name": "usercount", "payload": 3, "channel": "c", "domain": "d", "timestamp": "2025-11-23T08:00:00Z"}"#;
        let a = parse(body.as_bytes()).unwrap();
        let b = parse(body.as_bytes()).unwrap();
        assert!(a.id.starts_with("h:"));
        assert_eq!(a.id.len(), 18);
        assert_eq!(a.id, b.id);
        let body2 = body.replace("\"payload\": 3", "\"payload\": 4");
        assert_ne!(parse(body2.as_bytes()).unwrap().id, a.id);
        let empty = body.replace("\"domain\"", "\"correlation_id\": \"\", \"domain\"");
        assert!(parse(empty.as_bytes()).unwrap().id.starts_with("h:"));
    }

    #[test]
    fn time_rules() {
        let chat = |time: &str, ts: &str| {
            let body = format!(
                r#"{{"event_name": "chatMsg", "payload": {{"username": "a", "msg": "m", "time": {time}}}, "channel": "c", "domain": "d", "timestamp": {ts}}}"#
            );
            parse(body.as_bytes()).map(|p| p.time_ms)
        };
        let ts = r#""2025-11-23T08:00:00+00:00""#;
        assert_eq!(chat("1763884804000", ts), Ok(T0 + 4000));
        assert_eq!(chat("1763884804000.9", ts), Ok(T0 + 4000));
        assert_eq!(chat("-5", ts), Ok(T0));
        assert_eq!(chat("0", ts), Ok(T0));
        assert_eq!(chat("\"soon\"", ts), Ok(T0));
        assert_eq!(chat("99999999999999999", ts), Ok(T0));
        assert_eq!(chat("null", ts), Ok(T0));
        assert_eq!(chat("-5", r#""never""#), Err(Reject::BadTime));
        assert_eq!(chat("-5", "17"), Err(Reject::BadTime));
        assert_eq!(chat("1763884804000", r#""never""#), Ok(T0 + 4000));
        // Other events ignore payload.time.
        let body = r#"{"event_name": "userLeave", "payload": {"name": "x", "time": 1763884804000}, "channel": "c", "domain": "d", "timestamp": "nope"}"#;
        assert_eq!(parse(body.as_bytes()).unwrap_err(), Reject::BadTime);
        let body = r#"{"event_name": "userLeave", "payload": {"name": "x"}, "channel": "c", "domain": "d", "timestamp": "3001-01-01T00:00:00Z"}"#;
        assert_eq!(parse(body.as_bytes()).unwrap_err(), Reject::BadTime);
    }

    #[test]
    fn payload_shapes() {
        use Event::*;
        let bad = |e: &'static str, p: &str| assert_eq!(ev(e, p), Err(Reject::BadPayload(e)), "{e} {p}");

        // chatMsg / pm
        assert_eq!(
            ev("chatMsg", r#"{"username": "a", "msg": "x", "meta": {"shadow": true}}"#),
            Ok(ChatMsg { username: "a".into(), msg: "x".into(), shadow: true })
        );
        assert_eq!(
            ev("chatMsg", r#"{"username": "a", "msg": "x", "meta": {"shadow": "yes"}}"#),
            Ok(ChatMsg { username: "a".into(), msg: "x".into(), shadow: false })
        );
        bad("chatMsg", r#"{"username": "  ", "msg": "x"}"#);
        bad("chatMsg", r#"{"username": "a"}"#);
        bad("chatMsg", "null");
        assert_eq!(ev("chatMsg", r#"{"username": "a\u0000", "msg": "x"}"#), Err(Reject::NulByte));
        assert_eq!(
            ev("pm", r#"{"username": "a", "msg": "x"}"#),
            Ok(Pm { username: "a".into(), to: None, msg: "x".into() })
        );
        bad("pm", r#"{"username": "a", "msg": 3}"#);

        // users
        assert_eq!(
            ev("addUser", r#"{"name": "n", "rank": 2, "meta": {"afk": "x"}}"#),
            Ok(AddUser(User { name: "n".into(), afk: None, rank: Some(2.0) }))
        );
        assert_eq!(ev("addUser", r#"{"name": "n"}"#), Ok(AddUser(User { name: "n".into(), afk: None, rank: None })));
        bad("addUser", r#"{"name": ""}"#);
        assert_eq!(ev("userLeave", r#"{"name": "n"}"#), Ok(UserLeave { name: "n".into() }));
        bad("userLeave", r#"{}"#);
        assert_eq!(ev("userlist", "[]"), Ok(Userlist(vec![])));
        bad("userlist", r#"[{"name": "a"}, {"rank": 1}]"#);
        bad("userlist", r#"[{"name": "a"}, "b"]"#);
        bad("userlist", r#"{"name": "a"}"#);
        assert_eq!(ev("setAFK", r#"{"name": "n", "afk": true}"#), Ok(SetAfk { name: "n".into(), afk: true }));
        bad("setAFK", r#"{"name": "n"}"#);
        assert_eq!(
            ev("setUserMeta", r#"{"name": "n", "meta": {"muted": true}}"#),
            Ok(SetUserMeta { name: "n".into(), afk: None })
        );
        bad("setUserMeta", r#"{"meta": {}}"#);

        // counts and uids
        assert_eq!(ev("usercount", "0"), Ok(Usercount(0)));
        assert_eq!(ev("usercount", "12.0"), Ok(Usercount(12)));
        bad("usercount", "-1");
        bad("usercount", "1.5");
        bad("usercount", "\"12\"");
        bad("usercount", "18446744073709551615");
        assert_eq!(ev("setCurrent", "7"), Ok(SetCurrent(7)));
        bad("setCurrent", "null");

        // media
        assert_eq!(
            ev("changeMedia", r#"{"id": "i", "type": "yt"}"#),
            Ok(ChangeMedia(Media { media_type: "yt".into(), id: "i".into(), title: String::new(), seconds: None }))
        );
        bad("changeMedia", r#"{"id": "i", "title": "t"}"#);
        bad("changeMedia", r#"{"id": "i", "type": "yt", "title": 5}"#);
        assert_eq!(ev("mediaUpdate", "null"), Ok(MediaUpdate));
        let item = r#"{"uid": 3, "media": {"id": "i", "type": "yt", "title": "t", "seconds": 10}, "temp": true}"#;
        let pi = PlaylistItem {
            uid: 3,
            media: Media { media_type: "yt".into(), id: "i".into(), title: "t".into(), seconds: Some(10.0) },
        };
        assert_eq!(ev("playlist", &format!("[{item}]")), Ok(Playlist(vec![pi.clone()])));
        bad("playlist", r#"[{"uid": 3}]"#);
        assert_eq!(
            ev("queue", &format!(r#"{{"item": {item}, "after": "prepend"}}"#)),
            Ok(Queue { item: pi.clone(), after: None })
        );
        assert_eq!(ev("queue", &format!(r#"{{"item": {item}, "after": 2}}"#)), Ok(Queue { item: pi, after: Some(2) }));
        bad("queue", &format!(r#"{{"item": {item}, "after": "later"}}"#));
        bad("queue", r#"{"after": 2}"#);
        assert_eq!(ev("delete", r#"{"uid": 4}"#), Ok(Delete { uid: 4 }));
        bad("delete", r#"{"uid": "4"}"#);
        assert_eq!(ev("moveVideo", r#"{"from": 4, "after": "prepend"}"#), Ok(MoveVideo { from: 4, after: None }));
        bad("moveVideo", r#"{"from": 4}"#);

        // emotes
        let e = |n: &str, i: &str, s: &str| Emote { name: n.into(), image: i.into(), source: s.into() };
        assert_eq!(
            ev("emoteList", r#"[{"name": "a", "image": "i", "source": "s"}, {"name": "b"}]"#),
            Ok(EmoteList(vec![e("a", "i", "s"), e("b", "", "")]))
        );
        bad("emoteList", r#"[{"image": "i"}]"#);
        assert_eq!(ev("updateEmote", r#"{"name": "a"}"#), Ok(UpdateEmote(e("a", "", ""))));
        assert_eq!(ev("removeEmote", r#"{"name": "a"}"#), Ok(RemoveEmote { name: "a".into() }));
        assert_eq!(
            ev("renameEmote", r#"{"old": "a", "name": "b", "image": "i", "source": "s"}"#),
            Ok(RenameEmote { old: "a".into(), emote: e("b", "i", "s") })
        );
        bad("renameEmote", r#"{"name": "b"}"#);

        // unknown events are not rejected
        assert_eq!(ev("voteskip", r#"{"count": 1}"#), Ok(Other("voteskip".into())));
        assert_eq!(ev("kick", "null"), Ok(Other("kick".into())));
    }

    #[test]
    fn reject_labels_and_messages() {
        let all = [
            Reject::InvalidJson,
            Reject::NotObject,
            Reject::NoEventName,
            Reject::BadPayload("chatMsg"),
            Reject::BadTime,
            Reject::NulByte,
            Reject::TooLarge,
        ];
        for r in all {
            let l = r.label();
            assert!(l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{l}");
            assert!(!r.to_string().is_empty());
        }
        assert_eq!(Reject::BadPayload("x").label(), "bad_payload");
        assert!(Reject::BadPayload("chatMsg").to_string().contains("chatMsg"));
    }

    #[test]
    fn parse_never_panics_on_garbage() {
        let samples: [&[u8]; 10] = [
            b"{",
            b"{\"event_name\": \"chatMsg\"}",
            b"{\"event_name\": \"chatMsg\", \"payload\": [], \"channel\": \"c\", \"domain\": \"d\"}",
            b"{\"event_name\": \"queue\", \"payload\": {\"item\": null}, \"channel\": \"c\", \"domain\": \"d\"}",
            b"{\"event_name\": \"usercount\", \"payload\": -0.0, \"channel\": \"c\", \"domain\": \"d\", \"timestamp\": \"2025-01-01T00:00:00Z\"}",
            b"\"string\"",
            b"{\"event_name\": \"a\\u0000\"}",
            b"{\"event_name\": \"x\", \"channel\": \"c\", \"domain\": \"d\", \"timestamp\": \"\xc3\xa9\"}",
            b"{\"event_name\": \"x\", \"channel\": \"c\", \"domain\": \"d\", \"timestamp\": \"2025-01-01T00:00:00+99:99\"}",
            b"{\"event_name\": \"x\", \"channel\": \"c\", \"domain\": \"d\", \"timestamp\": \"9999-12-31T23:59:59.999999999-23:59\"}",
        ];
        for s in samples {
            let _ = parse(s);
        }
        // Every prefix of a real message.
        let body = fixture_bodies(EVENTS).remove(0);
        for i in 0..body.len() {
            let _ = parse(&body.as_bytes()[..i]);
        }
    }

    #[test]
    fn subject_tokens() {
        assert_eq!(subject_token("420Grindhouse"), "420grindhouse");
        assert_eq!(subject_token("My Channel!"), "my-channel");
        assert_eq!(subject_token("chatMsg"), "chatmsg");
        assert_eq!(subject_token("addUser"), "adduser");
        assert_eq!(subject_token("cytu.be"), "cytube");
        assert_eq!(subject_token("a.b*c>d"), "abcd");
        assert_eq!(subject_token("x!@#$%^&*()+=[]{|}\\:;\"'<>,?/y"), "xy");
        assert_eq!(subject_token("keep-_~"), "keep-_~");
        assert_eq!(subject_token("ZOË Ünïcode"), "zoë-ünïcode");
        assert_eq!(subject_token("ΣΑΣ"), "σας");
        assert_eq!(subject_token(""), "");
        let long = "É".repeat(150);
        let t = subject_token(&long);
        assert_eq!(t.chars().count(), 100);
        assert!(t.chars().all(|c| c == 'é'));
        // Deleted characters do not count towards the 100.
        let dotted = format!("{}{}", ".".repeat(50), "a".repeat(120));
        assert_eq!(subject_token(&dotted), "a".repeat(100));
    }

    #[test]
    fn timestamps_parse() {
        let p = parse_timestamp_ms;
        assert_eq!(p("2025-11-23T08:00:00+00:00"), Some(T0));
        assert_eq!(p("2025-11-23T08:00:00Z"), Some(T0));
        assert_eq!(p("2025-11-23 08:00:00z"), Some(T0));
        assert_eq!(p("2025-11-23T08:00:00"), Some(T0));
        assert_eq!(p("2025-11-23T08:00:00.123456+00:00"), Some(T0 + 123));
        assert_eq!(p("2025-11-23T08:00:00.1Z"), Some(T0 + 100));
        assert_eq!(p("2025-11-23T08:00:00.12Z"), Some(T0 + 120));
        assert_eq!(p("2025-11-23T08:00:00.999999999Z"), Some(T0 + 999));
        assert_eq!(p("2025-11-23T09:30:00+01:30"), Some(T0));
        assert_eq!(p("2025-11-23T09:30:00+0130"), Some(T0));
        assert_eq!(p("2025-11-23T09:00:00+01"), Some(T0));
        assert_eq!(p("2025-11-23T03:00:00-05:00"), Some(T0));
        assert_eq!(p("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(p("1969-12-31T23:59:59.999Z"), Some(-1));
        assert_eq!(p("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(p(" 2025-11-23T08:00:00Z "), Some(T0));
        for bad in [
            "",
            "not a time",
            "2025-11-23",
            "2025-11-23T08:00",
            "2025-11-23T08:00:00.Z",
            "2025-11-23T08:00:00.1234567890Z",
            "2025-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2025-11-31T00:00:00Z",
            "2025-11-23T24:00:00Z",
            "2025-11-23T08:60:00Z",
            "2025-11-23T08:00:60Z",
            "2025-11-23T08:00:00+24:00",
            "2025-11-23T08:00:00+00:60",
            "2025-11-23T08:00:00+0",
            "2025-11-23T08:00:00Zjunk",
            "2025-11-23X08:00:00Z",
            "2025/11/23T08:00:00Z",
            "2025-11-23T08:00:00é",
            "２０２５-11-23T08:00:00Z",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }

    #[test]
    fn timestamps_format_and_round_trip() {
        assert_eq!(format_timestamp(T0), "2025-11-23T08:00:00+00:00");
        assert_eq!(format_timestamp(T0 + 123), "2025-11-23T08:00:00.123+00:00");
        assert_eq!(format_timestamp(T0 + 5), "2025-11-23T08:00:00.005+00:00");
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(format_timestamp(-1), "1969-12-31T23:59:59.999+00:00");
        assert_eq!(format_hour(T0 + 3_599_999), "2025-11-23 08:00:00");
        assert_eq!(format_hour(T0 + 3_600_000), "2025-11-23 09:00:00");
        // Round trips over a spread of instants, leap days included.
        let mut t = -86_400_000 * 366 * 3;
        while t < 4_102_444_800_000 {
            let s = format_timestamp(t);
            assert_eq!(parse_timestamp_ms(&s), Some(t), "{s}");
            t += 7_777_777_777 + 13;
        }
        for s in ["2024-02-29T23:59:59.999+00:00", "2100-03-01T00:00:00+00:00"] {
            assert_eq!(format_timestamp(parse_timestamp_ms(s).unwrap()), s);
        }
    }

    #[test]
    fn html_entities() {
        let d = |s: &str| decode_html_entities(s).into_owned();
        assert!(matches!(decode_html_entities("plain text"), Cow::Borrowed(_)));
        assert_eq!(d(""), "");
        assert_eq!(d("it&#39;s"), "it's");
        assert_eq!(d("&amp;&lt;&gt;&quot;&apos;"), "&<>\"'");
        assert_eq!(d("a&nbsp;b"), "a\u{a0}b");
        assert_eq!(d("&#65;&#x42;&#X43;&#x1F602;"), "ABC😂");
        assert_eq!(d("&amp;lt;"), "&lt;");
        assert_eq!(d("a & b"), "a & b");
        assert_eq!(d("&"), "&");
        assert_eq!(d("&&amp;"), "&&");
        assert_eq!(d("&amp"), "&amp");
        assert_eq!(d("&unknown;"), "&unknown;");
        assert_eq!(d("&#0;"), "&#0;");
        assert_eq!(d("&#xD800;"), "&#xD800;");
        assert_eq!(d("&#x110000;"), "&#x110000;");
        assert_eq!(d("&#99999999999;"), "&#99999999999;");
        assert_eq!(d("&#;&#x;"), "&#;&#x;");
        assert_eq!(d("&AMP;"), "&AMP;");
        assert_eq!(d("Zoë &amp; 😂"), "Zoë & 😂");
        assert_eq!(d("&é;"), "&é;");
        assert_eq!(d("&ééééééé;"), "&ééééééé;");
        // Long input stays linear.
        let long = "&amp;x".repeat(200_000);
        assert_eq!(d(&long).len(), 400_000);
        let amps = "&".repeat(1 << 20);
        assert_eq!(d(&amps).len(), 1 << 20);
    }
}
