//! Realistic CyTube traffic, deterministic from a seed: a user pool, a mix of plain, kudos,
//! emote and vote messages, joins, leaves, AFK changes and media changes — envelopes exactly
//! as the bridge publishes them. Used by `simulate` (demo traffic) and `bench`.

use crate::{envelope, subject};
use serde_json::json;

const EMOTES: &[&str] = &["#kappa", "/pogchamp", "LUL", "monkaS", "PepeHands"];
const MEDIA: &[(&str, &str, &str)] = &[
    ("yt", "dQw4w9WgXcQ", "Never_Gonna.Give.You.Up.mp4"),
    ("fi", "abc123", "Night_of_the.Living.Dead.MKV"),
    ("yt", "9bZkp7q19f0", "Gangnam Style"),
    ("dm", "x7tgad0", "Plan.9.from.Outer.Space.avi"),
];

/// Which kinds of events a generator produces.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Chat only (plain, kudos, emotes, votes), for the chat benchmark.
    Chat,
    /// Presence only (join/leave/AFK), for the presence benchmark.
    Presence,
    /// Everything, as a live channel looks (mostly chat).
    Live,
}

pub struct Traffic {
    pub channel: String,
    users: Vec<String>,
    present: Vec<bool>,
    afk: Vec<bool>,
    state: u64,
    seq: u64,
    seed: u64,
    /// Event time of the next event (ms); advances a little with every event.
    pub time_ms: i64,
    mix: Mix,
}

impl Traffic {
    pub fn new(seed: u64, users: usize, channel: &str, start_ms: i64, mix: Mix) -> Traffic {
        Traffic {
            channel: channel.into(),
            users: (0..users).map(|i| format!("user{i}")).collect(),
            present: vec![true; users],
            afk: vec![false; users],
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            seq: 0,
            seed,
            time_ms: start_ms,
            mix,
        }
    }

    fn rand(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn next_id(&mut self) -> String {
        self.seq += 1;
        format!(
            "{:08x}-{:04x}-4{:03x}-8000-{:012x}",
            self.seed as u32,
            (self.seq >> 48) & 0xffff,
            0,
            self.seq & 0xffff_ffff_ffff
        )
    }

    fn event(&mut self, name: &str, payload: serde_json::Value) -> (String, String) {
        let id = self.next_id();
        let body = envelope(name, payload, &self.channel, self.time_ms, &id);
        (subject(&self.channel, name), body)
    }

    /// What a channel says when the bridge joins: the user list, emotes, the current media.
    pub fn preamble(&mut self) -> Vec<(String, String)> {
        let users: Vec<_> = self
            .users
            .iter()
            .map(|u| json!({"name": u, "rank": 1, "profile": {"image": "", "text": ""}, "meta": {"afk": false, "muted": false}}))
            .collect();
        let emotes: Vec<_> = EMOTES
            .iter()
            .map(|e| json!({"name": e, "image": format!("https://i.example/{}.png", e.trim_start_matches(['#', '/'])), "source": format!("(^|\\s){}(?!\\S)", e)}))
            .collect();
        let (t, id, title) = MEDIA[0];
        vec![
            self.event("userlist", json!(users)),
            self.event("emoteList", json!(emotes)),
            self.event("changeMedia", json!({"id": id, "title": title, "seconds": 212, "duration": "03:32", "type": t, "meta": {}, "currentTime": 0, "paused": false})),
        ]
    }

    /// The next event.
    pub fn next_event(&mut self) -> (String, String) {
        self.time_ms += 1 + (self.rand() % 20) as i64;
        let roll = self.rand() % 1000;
        match self.mix {
            Mix::Chat => self.chat(),
            Mix::Presence => self.presence(),
            Mix::Live if roll < 900 => self.chat(),
            Mix::Live if roll < 995 => self.presence(),
            Mix::Live => self.media(),
        }
    }

    fn chat(&mut self) -> (String, String) {
        let n = self.users.len() as u64;
        let (a, b) = (self.rand() % n, self.rand() % n);
        let sender = self.users[a as usize].clone();
        let target = self.users[b as usize].clone();
        let emote = EMOTES[(self.rand() % EMOTES.len() as u64) as usize];
        let text = match self.rand() % 10 {
            0 => format!("{target}++ great pick"),
            1 => format!("lol {target}"),
            2 => format!("{emote} {emote} that was it&#39;s"),
            3 => ["movie++", "this film--", "video+"][(self.rand() % 3) as usize].to_string(),
            4 => format!("hahaha {target} {emote}"),
            _ => ["hello everyone", "what are we watching", "brb", "this is great", "anyone here?"]
                [(self.rand() % 5) as usize]
                .to_string(),
        };
        let payload = json!({"username": sender, "msg": text, "meta": {}, "time": self.time_ms});
        self.event("chatMsg", payload)
    }

    fn presence(&mut self) -> (String, String) {
        let i = (self.rand() % self.users.len() as u64) as usize;
        let name = self.users[i].clone();
        if !self.present[i] {
            self.present[i] = true;
            self.afk[i] = false;
            return self.event("addUser", json!({"name": name, "rank": 1, "profile": {"image": "", "text": ""}, "meta": {"afk": false, "muted": false}}));
        }
        if self.rand().is_multiple_of(3) {
            self.present[i] = false;
            return self.event("userLeave", json!({"name": name}));
        }
        self.afk[i] = !self.afk[i];
        let afk = self.afk[i];
        self.event("setAFK", json!({"name": name, "afk": afk}))
    }

    fn media(&mut self) -> (String, String) {
        let (t, id, title) = MEDIA[(self.rand() % MEDIA.len() as u64) as usize];
        self.event("changeMedia", json!({"id": id, "title": title, "seconds": 300, "duration": "05:00", "type": t, "meta": {}, "currentTime": 0, "paused": false}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_every_event_parses() {
        let mut a = Traffic::new(1, 50, "420Grindhouse", 1_763_884_800_000, Mix::Live);
        let mut b = Traffic::new(1, 50, "420Grindhouse", 1_763_884_800_000, Mix::Live);
        for _ in 0..2000 {
            let (sa, da) = a.next_event();
            assert_eq!((sa, da.clone()), b.next_event());
            assert!(shared::wire::parse(da.as_bytes()).is_ok(), "{da}");
        }
    }
}
