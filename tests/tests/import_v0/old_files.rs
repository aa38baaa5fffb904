//! Old (0.7.1) database files for the import tests: read and written directly, built from
//! known rows (`synthetic`) or at production size (`big_v0`).

use super::*;

/// Rows of a query on an SQLite file (read-only).
pub(crate) async fn rows(db: &str, sql: &str) -> Vec<Vec<Sql>> {
    try_rows(db, sql).await.unwrap_or_else(|e| panic!("{sql}: {e:#}"))
}

pub(crate) async fn try_rows(db: &str, sql: &str) -> anyhow::Result<Vec<Vec<Sql>>> {
    let d = libsql::Builder::new_local(db).flags(libsql::OpenFlags::SQLITE_OPEN_READ_ONLY).build().await?;
    let conn = d.connect()?;
    conn.busy_timeout(Duration::from_secs(2))?;
    let mut r = conn.query(sql, ()).await?;
    let mut out = Vec::new();
    while let Some(row) = r.next().await? {
        out.push((0..r.column_count()).map(|i| row.get_value(i)).collect::<Result<_, _>>()?);
    }
    Ok(out)
}

/// Runs SQL on an SQLite file (writable).
pub(crate) async fn exec(db: &str, sql: &str) {
    let d = libsql::Builder::new_local(db).build().await.expect("open");
    let conn = d.connect().expect("connect");
    conn.execute_batch(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

pub(crate) fn s(v: &Sql) -> String {
    match v {
        Sql::Text(t) => t.clone(),
        Sql::Integer(i) => i.to_string(),
        Sql::Null => String::new(),
        other => format!("{other:?}"),
    }
}

pub(crate) fn i(v: &Sql) -> i64 {
    match v {
        Sql::Integer(i) => *i,
        other => panic!("not an integer: {other:?}"),
    }
}

/// A 0.7.1 database made by the service's own `initialize()`, filled with known rows: `Zed`,
/// `zed` and `ZED` are case variants of one user; `Yan` is another.
pub(crate) async fn synthetic(dir: &TempDir, name: &str) -> String {
    let db = dir.file(name);
    init_database(&db)
        .unwrap_or_else(|e| panic!("the Python reference service (kryten-userstats 0.7.1) cannot run: {e:#}"));
    exec(
        &db,
        "INSERT INTO users(username, first_seen_at, last_seen_at) VALUES
           ('Zed', '2026-01-01T10:00:00.000000+00:00', '2026-01-05T10:00:00+00:00'),
           ('zed', '2025-12-01T09:00:00.250000+00:00', '2026-01-02T10:00:00+00:00'),
           ('ZED', '2026-01-03T00:00:00+00:00', '2026-01-10T12:30:00.500000+00:00'),
           ('Yan', '2026-01-01T00:00:00+00:00', '2026-01-01T01:00:00+00:00'),
           ('[server]', '2026-01-01T00:00:00+00:00', '2026-01-01T01:00:00+00:00');
         INSERT INTO message_counts(username, channel, domain, message_count) VALUES
           ('Zed', '420Grindhouse', 'cytu.be', 10), ('zed', '420Grindhouse', 'cytu.be', 5),
           ('ZED', 'otherchan', 'cytu.be', 2), ('Yan', '420Grindhouse', 'cytu.be', 7),
           ('[server]', '420Grindhouse', 'cytu.be', 40);
         INSERT INTO pm_counts(username, pm_count) VALUES ('Zed', 3), ('zed', 4), ('Yan', 1);
         INSERT INTO kudos_plusplus(username, channel, domain, kudos_count) VALUES
           ('Zed', '420Grindhouse', 'cytu.be', 2), ('zed', '420Grindhouse', 'cytu.be', 1);
         INSERT INTO kudos_phrases(username, channel, domain, phrase, kudos_count) VALUES
           ('Zed', '420Grindhouse', 'cytu.be', 'lol', 2), ('zed', '420Grindhouse', 'cytu.be', 'lol', 1),
           ('zed', '420Grindhouse', 'cytu.be', 'haha', 1);
         INSERT INTO emote_usage(username, channel, domain, emote, usage_count) VALUES
           ('Zed', '420Grindhouse', 'cytu.be', 'kappa', 3), ('ZED', '420Grindhouse', 'cytu.be', 'kappa', 1);
         INSERT INTO user_activity(username, channel, domain, total_time_seconds, not_afk_time_seconds) VALUES
           ('Zed', '420Grindhouse', 'cytu.be', 100, 80), ('zed', '420Grindhouse', 'cytu.be', 20, 20);
         INSERT INTO media_changes(channel, domain, timestamp, media_title, media_type, media_id) VALUES
           ('420Grindhouse', 'cytu.be', '2026-01-02T00:00:00+00:00', 'Film A', 'yt', 'a1'),
           ('420Grindhouse', 'cytu.be', '2026-01-02T01:00:00+00:00', 'Film B', NULL, NULL);
         INSERT INTO movie_votes(channel, domain, media_title, media_type, media_id, username, vote, timestamp) VALUES
           ('420Grindhouse', 'cytu.be', 'Film A', 'yt', 'a1', 'Zed', 1, '2026-01-02T00:10:00+00:00'),
           ('420Grindhouse', 'cytu.be', 'Film A', '', '', 'zed', -1, '2026-01-02T00:20:00+00:00'),
           ('420Grindhouse', 'cytu.be', 'Film B', '', '', 'Yan', 1, '2026-01-02T01:10:00+00:00');
         INSERT INTO population_snapshots(channel, domain, timestamp, connected_count, chat_count) VALUES
           ('420Grindhouse', 'cytu.be', '2026-01-02T00:00:10+00:00', 5, 5),
           ('420Grindhouse', 'cytu.be', '2026-01-02T00:05:10+00:00', 9, 9),
           ('420Grindhouse', 'cytu.be', '2026-01-02T00:10:10+00:00', 2, 2);
         INSERT INTO population_watermarks(channel, domain, timestamp, total_users, chat_users, is_high_mark) VALUES
           ('420Grindhouse', 'cytu.be', '2026-01-02T00:05:10+00:00', 9, 9, 1),
           ('420Grindhouse', 'cytu.be', '2026-01-02T00:10:10+00:00', 2, 2, 0);
         INSERT INTO user_aliases(username, alias) VALUES ('Zed', 'zz'), ('Yan', 'zz'), ('Yan', 'y');
         INSERT INTO kudos_trigger_phrases(phrase) VALUES ('lol'), ('haha');",
    )
    .await;
    db
}

/// Fills a 0.7.1 database with about a year of a busy three-channel service (≈100 MB):
/// 35,000 users, their per-channel counts, emotes and kudos, 5-minute snapshots with
/// watermarks, media changes and votes.
pub(crate) async fn big_v0(dir: &TempDir) -> String {
    let db = synthetic(dir, "big.db").await;
    let seq = |n: u64| format!("WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < {n})");
    let ch = "CASE i % 3 WHEN 0 THEN '420Grindhouse' WHEN 1 THEN 'otherchan' ELSE 'thirdchan' END";
    let at = |step_s: u64| {
        format!("strftime('%Y-%m-%dT%H:%M:%S', 1735689600 + i * {step_s}, 'unixepoch') || '.' || printf('%06d', (i * 7919) % 1000000) || '+00:00'")
    };
    let sql = [
        format!("INSERT INTO users(username, first_seen_at, last_seen_at) {} SELECT 'user' || i, {}, {} FROM s", seq(35_000), at(300), at(301)),
        format!("INSERT INTO message_counts(username, channel, domain, message_count) {} SELECT 'user' || (i / 2), {ch}, 'cytu.be', 1 + i % 500 FROM s", seq(70_000)),
        format!("INSERT INTO pm_counts(username, pm_count) {} SELECT 'user' || (i * 3), 1 + i % 20 FROM s", seq(10_000)),
        format!("INSERT INTO user_activity(username, channel, domain, total_time_seconds, not_afk_time_seconds) {} SELECT 'user' || (i / 2), {ch}, 'cytu.be', i * 13 % 900000, i * 7 % 400000 FROM s", seq(52_000)),
        format!("INSERT INTO emote_usage(username, channel, domain, emote, usage_count) {} SELECT 'user' || (i / 8), {ch}, 'cytu.be', 'emote' || (i % 40), 1 + i % 30 FROM s", seq(210_000)),
        format!("INSERT INTO kudos_plusplus(username, channel, domain, kudos_count) {} SELECT 'user' || (i * 2), {ch}, 'cytu.be', 1 + i % 9 FROM s", seq(17_000)),
        format!("INSERT INTO kudos_phrases(username, channel, domain, phrase, kudos_count) {} SELECT 'user' || i, {ch}, 'cytu.be', CASE i % 3 WHEN 0 THEN 'lol' WHEN 1 THEN 'haha' ELSE 'rofl' END, 1 + i % 5 FROM s", seq(35_000)),
        format!("INSERT INTO population_snapshots(channel, domain, timestamp, connected_count, chat_count) {} SELECT {ch}, 'cytu.be', {}, i % 80, i % 80 FROM s", seq(110_000), at(290)),
        format!("INSERT INTO population_watermarks(channel, domain, timestamp, total_users, chat_users, is_high_mark) {} SELECT {ch}, 'cytu.be', {}, i % 80, i % 80, i % 2 FROM s", seq(70_000), at(450)),
        format!("INSERT INTO media_changes(channel, domain, timestamp, media_title, media_type, media_id) {} SELECT {ch}, 'cytu.be', {}, 'Some Film Title Number ' || (i % 5000), 'yt', 'vid' || (i % 5000) FROM s", seq(35_000), at(900)),
        format!("INSERT INTO movie_votes(channel, domain, media_title, media_type, media_id, username, vote, timestamp) {} SELECT {ch}, 'cytu.be', 'Some Film Title Number ' || (i % 5000), 'yt', 'vid' || (i % 5000), 'user' || (i / 3), CASE i % 4 WHEN 0 THEN -1 ELSE 1 END, {} FROM s", seq(35_000), at(901)),
    ];
    for q in sql {
        exec(&db, &q).await;
    }
    db
}
