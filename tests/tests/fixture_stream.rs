//! The bridge's fixture stream, published at full speed to all three ingest functions at
//! once, gives exactly the numbers in tests/fixtures/README.md — which needs ingest-chat
//! to wait for presence and media (emote lists, now playing) as they were at each message.

use std::time::Duration;
use userstats_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn fixture_stream_at_full_speed_gives_the_documented_numbers() {
    let rig = Rig::new("fixture", "");
    let client = rig.nats.client().await;
    let mut procs = Vec::new();
    for f in ["ingest-presence", "ingest-media", "ingest-chat"] {
        procs.push(rig.start(f).await);
    }
    let events: Vec<(String, String)> = fixtures("events.jsonl").into_iter().map(|f| (f.subject, f.data)).collect();
    publish_all(&client, &events).await.unwrap();

    let store = open_store(&rig.db).await;
    let seen = |f: &'static str| {
        let store = &store;
        async move {
            store.counter(f, "events_applied").await.unwrap_or(0) + store.counter(f, "duplicates").await.unwrap_or(0)
        }
    };
    // chat: 16 chatMsg + 2 pm + 1 duplicate; presence: 2 userlist, 2 usercount, 2 setAFK, setUserMeta,
    // 2 addUser, 2 userLeave; media: emoteList, setCurrent, 2 changeMedia, updateEmote, mediaUpdate.
    eventually(Duration::from_secs(30), "all functions caught up", || async {
        seen("ingest-chat").await >= 19 && seen("ingest-presence").await >= 11 && seen("ingest-media").await >= 6
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", procs.iter().map(|p| p.log_text()).collect::<String>()));

    // Messages, PMs, kudos.
    for (u, n) in [("alice", 4), ("bob", 8), ("zoë", 1), ("some-user", 1), ("sleepy", 1)] {
        assert_eq!(store.user_counts(D, CH, u).await.unwrap().messages, n, "messages of {u}");
    }
    assert_eq!(store.total(D, "total_messages").await.unwrap(), 15);
    assert_eq!(store.total(D, "total_pms").await.unwrap(), 1);
    assert_eq!(
        store.kudos_leaderboard(D, CH, 10).await.unwrap(),
        vec![("Alice".to_string(), 3), ("bob".to_string(), 1), ("Zoë".to_string(), 1)]
    );
    // Emotes: #kappa 2, /pogchamp 1 (Alice); LUL 2, monkaS 1 (bob; monkaS arrived by updateEmote).
    assert_eq!(
        store.emote_leaderboard(D, CH, 10).await.unwrap(),
        vec![
            ("#kappa".to_string(), 2),
            ("LUL".to_string(), 2),
            ("/pogchamp".to_string(), 1),
            ("monkaS".to_string(), 1)
        ]
    );
    assert_eq!(store.total(D, "total_emotes").await.unwrap(), 6);
    // Votes by type+id: bob's film-- replaced by his movie++; the last vote is for abc123.
    let votes = store.movie_votes(D, CH).await.unwrap();
    let vote = |t: &str, id: &str| {
        votes.iter().find(|v| v.media_type == t && v.media_id == id).map(|v| (v.upvotes, v.downvotes))
    };
    assert_eq!(vote("yt", "dQw4w9WgXcQ"), Some((2, 0)));
    assert_eq!(vote("fi", "abc123"), Some((0, 1)));
    assert_eq!(store.total(D, "total_media_changes").await.unwrap(), 2);
    // Users tracked: Alice, bob, Zoë, some-user, Leader, sleepy, newcomer.
    assert_eq!(store.total(D, "total_users").await.unwrap(), 7);
    assert_eq!(store.counter("ingest-presence", "orphan_leaves").await.unwrap(), 1);
}
