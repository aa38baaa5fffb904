//! The events tests publish: the bridge's fixture files, envelopes built like the bridge
//! builds them, generated streams, and publishing them (core NATS or stored in JetStream).

use crate::{traffic, workspace, NatsServer, CHANNEL};
use anyhow::Result;
use serde_json::{json, Value};

/// One fixture line: the subject and the raw message body.
pub struct Fixture {
    pub subject: String,
    pub data: String,
}

/// The bridge's fixture files in `tests/fixtures/` (see its README).
pub fn fixtures(name: &str) -> Vec<Fixture> {
    let path = workspace().join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("fixture line is JSON");
            Fixture {
                subject: v["subject"].as_str().unwrap_or_default().to_string(),
                data: v["data"].as_str().unwrap_or_default().to_string(),
            }
        })
        .collect()
}

/// An envelope as the bridge publishes it.
pub fn envelope(event: &str, payload: Value, channel: &str, time_ms: i64, id: &str) -> String {
    json!({
        "event_name": event,
        "payload": payload,
        "channel": channel,
        "domain": "cytu.be",
        "timestamp": shared::wire::format_timestamp(time_ms),
        "correlation_id": id,
    })
    .to_string()
}

/// The subject the bridge publishes an event on.
pub fn subject(channel: &str, event: &str) -> String {
    format!("kryten.events.cytube.{}.{}", shared::wire::subject_token(channel), shared::wire::subject_token(event))
}

/// A chat message envelope.
pub fn chat(channel: &str, user: &str, msg: &str, time_ms: i64, id: &str) -> (String, String) {
    let payload = json!({"username": user, "msg": msg, "meta": {}, "time": time_ms});
    (subject(channel, "chatMsg"), envelope("chatMsg", payload, channel, time_ms, id))
}

/// Publishes (subject, body) pairs and flushes.
pub async fn publish_all(client: &async_nats::Client, messages: &[(String, String)]) -> Result<()> {
    for (s, d) in messages {
        client.publish(s.clone(), d.clone().into()).await?;
    }
    client.flush().await?;
    Ok(())
}

/// The ingest function that consumes an event subject ("none" for events nobody counts,
/// such as `voteskip`).
pub fn owner(subject: &str) -> &'static str {
    let event = subject.rsplit('.').next().unwrap_or("");
    [
        ("ingest-chat", shared::chat::EVENTS),
        ("ingest-presence", shared::presence::EVENTS),
        ("ingest-media", shared::media::EVENTS),
    ]
    .into_iter()
    .find(|(_, events)| events.contains(&event))
    .map_or("none", |(function, _)| function)
}

/// A small deterministic generator (xorshift64) for test streams and fault schedules.
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A deterministic mixed stream (chat, presence, media) over `users` users: the userlist
/// preamble then `n` events, dated from 2025-11-23 09:00 UTC — after the last fixture event
/// (08:17), so that fixtures followed by this stream keep event time in stream order, as the
/// bridge does. (A vote goes to the media playing at its time; media changes dated before
/// an earlier-published vote would make the answer depend on which function ran ahead.)
pub fn mixed_stream(n: usize, users: usize) -> Vec<(String, String)> {
    let mut t = traffic::Traffic::new(2024, users, CHANNEL, 1_763_888_400_000, traffic::Mix::Live);
    let mut events = t.preamble();
    events.extend((0..n).map(|_| t.next_event()));
    events
}

/// Publishes into JetStream, 512 acks in flight at most.
pub async fn publish_durably(nats: &NatsServer, events: &[(String, String)]) {
    publish_stored(&nats.client().await, events).await
}

/// Publishes through JetStream with `client`: each event is stored before this returns.
pub async fn publish_stored(client: &async_nats::Client, events: &[(String, String)]) {
    let js = async_nats::jetstream::new(client.clone());
    for chunk in events.chunks(512) {
        let mut acks = Vec::with_capacity(chunk.len());
        for (s, d) in chunk {
            acks.push(js.publish(s.clone(), d.clone().into()).await.expect("publish"));
        }
        for a in acks {
            a.await.expect("publish ack");
        }
    }
}
