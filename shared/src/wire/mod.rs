//! The Kryten wire contract: the JSON envelope the Kryten bridge publishes on NATS
//! ([`parse`] → [`Parsed`]), the typed CyTube payloads we use ([`events`]), the subject
//! token rule, and the small text helpers every function needs ([`time`]: timestamps,
//! [`html`]: entities).
//!
//! Everything here is pure and must never panic, whatever bytes arrive: a malformed
//! message becomes a [`Reject`] that the caller counts and logs.

pub mod events;
pub mod html;
pub mod time;

pub use events::{Emote, Event, Media, PlaylistItem, User};
pub use html::decode_html_entities;
pub use time::{format_hour, format_timestamp, parse_timestamp_ms};

use serde_json::{Map, Value};
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
    let event = events::parse_event(event_name, payload)?;

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
pub(crate) fn no_nul(s: &str) -> Result<(), Reject> {
    if s.contains('\0') {
        Err(Reject::NulByte)
    } else {
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: &str = include_str!("../../../tests/fixtures/events.jsonl");
    const MALFORMED: &str = include_str!("../../../tests/fixtures/malformed.jsonl");

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
        chat_and_pm_payloads();
        user_payloads();
        count_and_uid_payloads();
        media_payloads();
        emote_payloads();
        unknown_events();
    }

    /// The payload `p` of event `e` is refused as a bad payload.
    fn bad(e: &'static str, p: &str) {
        assert_eq!(ev(e, p), Err(Reject::BadPayload(e)), "{e} {p}");
    }

    /// chatMsg and pm.
    fn chat_and_pm_payloads() {
        use Event::*;
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
    }

    /// The user events: addUser, userLeave, userlist, setAFK, setUserMeta.
    fn user_payloads() {
        use Event::*;
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
    }

    /// Counts and uids: usercount, setCurrent.
    fn count_and_uid_payloads() {
        use Event::*;
        assert_eq!(ev("usercount", "0"), Ok(Usercount(0)));
        assert_eq!(ev("usercount", "12.0"), Ok(Usercount(12)));
        bad("usercount", "-1");
        bad("usercount", "1.5");
        bad("usercount", "\"12\"");
        bad("usercount", "18446744073709551615");
        assert_eq!(ev("setCurrent", "7"), Ok(SetCurrent(7)));
        bad("setCurrent", "null");
    }

    /// Media and the playlist: changeMedia, mediaUpdate, playlist, queue, delete, moveVideo.
    fn media_payloads() {
        use Event::*;
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
    }

    /// The emote events: emoteList, updateEmote, removeEmote, renameEmote.
    fn emote_payloads() {
        use Event::*;
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
    }

    /// Unknown events are not rejected.
    fn unknown_events() {
        use Event::*;
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
}
