//! What a stream produces, in a comparable form, and the undisturbed reference run the
//! fault tests (chaos, cluster) compare against.

use crate::{publish_durably, Rig, CHANNEL, DOMAIN};

/// What one undisturbed replica of each ingest function, on one server, makes of `events`:
/// the reference the fault tests (chaos, cluster) compare against.
pub async fn undisturbed(tag: &str, config: &str, events: &[(String, String)], users: usize) -> Outcome {
    let rig = Rig::new(tag, config);
    let mut procs = Vec::new();
    for f in ["ingest-presence", "ingest-media", "ingest-chat"] {
        procs.push(rig.start(f).await);
    }
    publish_durably(&rig.nats, events).await;
    rig.drained(events).await;
    Outcome::of(&rig, users).await
}

/// Everything a stream produces in [`DOMAIN`]/[`CHANNEL`], in a comparable form.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub totals: Vec<(String, i64)>,
    pub messages: Vec<(String, i64)>,
    pub kudos: Vec<(String, i64)>,
    pub emotes: Vec<(String, i64)>,
    pub votes: Vec<(String, i64, i64)>,
    /// (user, present/active seconds) of `user0..user{users}`.
    pub activity: Vec<(String, Option<(i64, i64)>)>,
}

impl Outcome {
    pub async fn of(rig: &Rig, users: usize) -> Outcome {
        let (d, ch) = (DOMAIN, CHANNEL);
        let store = rig.store().await;
        let mut totals = Vec::new();
        for name in [
            "total_users",
            "total_messages",
            "total_kudos_plusplus",
            "total_kudos_phrases",
            "total_emotes",
            "total_media_changes",
        ] {
            totals.push((name.to_string(), store.total(d, name).await.expect("total")));
        }
        let votes = store
            .movie_votes(d, ch)
            .await
            .expect("votes")
            .into_iter()
            .map(|v| (v.media_id, v.upvotes, v.downvotes))
            .collect();
        let mut tx = store.write().await.expect("transaction");
        let mut activity = Vec::new();
        for i in 0..users {
            let u = format!("user{i}");
            activity.push((u.clone(), tx.activity(d, ch, &u).await.expect("activity")));
        }
        drop(tx);
        Outcome {
            totals,
            messages: store.message_leaderboard(d, ch, 1000).await.expect("leaderboard"),
            kudos: store.kudos_leaderboard(d, ch, 1000).await.expect("leaderboard"),
            emotes: store.emote_leaderboard(d, ch, 1000).await.expect("leaderboard"),
            votes,
            activity,
        }
    }
}
