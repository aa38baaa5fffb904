//! **Benchmark only.** Bulk fills of a fresh database, so that `bench` (tests/src/bin/bench.rs)
//! can measure queries, scrapes and start-up against a big database without first ingesting
//! millions of events. Nothing in the functions calls these; they write the same tables, keys
//! and maintained totals as the real ingest (`crate::chat`), but in a handful of
//! `INSERT … SELECT` statements over a generated sequence instead of event by event.
//!
//! Not for production use: they expect a database without users yet (a primary-key conflict
//! fails the transaction), record no applied event ids and no work counters, and leave the
//! hourly buckets, sessions and votes empty.

use super::Tx;
use anyhow::Result;

/// What [`Tx::bench_prefill`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BenchPrefill {
    pub users: i64,
    pub messages: i64,
    pub kudos: i64,
    pub emotes: i64,
    /// Rows written over all tables.
    pub rows: i64,
}

impl Tx {
    /// **Benchmark only.** Fills a fresh database with `users` users (`user0`...) of one
    /// channel who sent `messages` messages in all (exactly; a skewed split), with kudos,
    /// one emote and one phrase-kudos row per user, and time in channel: `users`,
    /// `user_counts` (the channel and the domain rollup, channel ''), `emote_counts`,
    /// `emote_totals`, `phrase_counts`, `activity`, `channels` and `totals` (`total_users`,
    /// `total_messages`, `total_kudos_*`, `total_emotes`, the channel's message total).
    pub async fn bench_prefill(
        &mut self,
        domain: &str,
        channel: &str,
        users: i64,
        messages: i64,
        t0_ms: i64,
    ) -> Result<BenchPrefill> {
        anyhow::ensure!(users > 0 && messages >= users, "bench_prefill: need users > 0 and messages >= users");
        self.create_bench_users(users, messages).await?;
        let rows = self.insert_bench_rows(domain, channel, t0_ms).await?;
        let (sums, total_rows) = self.add_bench_totals(domain, channel, users, messages).await?;
        let (m, kp, kph, emotes) = sums;
        self.tx.execute("DROP TABLE temp.bench_users", ()).await?;
        Ok(BenchPrefill { users, messages: m, kudos: kp + kph, emotes, rows: rows + total_rows })
    }

    /// The temporary table `bench_users`: one row per user, its figures from its number i.
    async fn create_bench_users(&mut self, users: i64, messages: i64) -> Result<()> {
        let base = messages / users;
        let rem = messages % users;
        // A user's figures from its number i: messages skewed in pairs (+v, -v) so that the
        // sum stays exactly `messages`; kudos and emotes spread deterministically.
        self.tx
            .execute(
                &format!(
                    "CREATE TEMP TABLE bench_users AS \
                     WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < {users}) \
                     SELECT i, 'user' || i AS k, \
                       {base} + (i < {rem}) + CASE WHEN i % 2 = 0 AND i + 1 < {users} THEN ((i / 2) * 2654435761) % {base} \
                                                   WHEN i % 2 = 1 THEN -(((i / 2) * 2654435761) % {base}) ELSE 0 END AS m, \
                       ((i * 2246822519) % 1000003) % 23 AS kp, (i * 13) % 4 AS kph, \
                       CASE i % 5 WHEN 0 THEN '#kappa' WHEN 1 THEN '/pogchamp' WHEN 2 THEN 'LUL' \
                                  WHEN 3 THEN 'monkaS' ELSE 'PepeHands' END AS emote \
                     FROM s"
                ),
                (),
            )
            .await?;
        Ok(())
    }

    /// The channel, the users, their per-channel rows and time in channel, from
    /// `bench_users`. Returns the rows written.
    async fn insert_bench_rows(&mut self, domain: &str, channel: &str, t0_ms: i64) -> Result<i64> {
        let mut rows = 0i64;
        let token = crate::wire::subject_token(channel);
        self.touch_channel(domain, channel, &token, t0_ms).await?;
        rows += 1;
        rows += self
            .tx
            .execute(
                "INSERT INTO users(domain, name_key, display, first_seen_ms, last_seen_ms, pms) \
                 SELECT ?1, k, k, ?2 + i, ?2 + i + m * 1000, i % 3 FROM bench_users ORDER BY k",
                (domain, t0_ms),
            )
            .await? as i64;
        // Per channel and in the domain rollup (channel ''), each from the bench_users table.
        const PER_CHANNEL: [&str; 4] = [
            "INSERT INTO user_counts(domain, channel, name_key, messages, kudos_plusplus, kudos_phrases, \
             kudos_total, emotes) SELECT ?1, ?2, k, m, kp, kph, kp + kph, m / 10 FROM bench_users ORDER BY k",
            "INSERT INTO emote_counts(domain, channel, name_key, emote, count) \
             SELECT ?1, ?2, k, emote, m / 10 FROM bench_users WHERE m / 10 > 0 ORDER BY k",
            "INSERT INTO emote_totals(domain, channel, emote, count) \
             SELECT ?1, ?2, emote, SUM(m / 10) FROM bench_users WHERE m / 10 > 0 GROUP BY emote",
            "INSERT INTO phrase_counts(domain, channel, name_key, phrase, count) \
             SELECT ?1, ?2, k, 'thanks', kph FROM bench_users WHERE kph > 0 ORDER BY k",
        ];
        for ch in [channel, ""] {
            for sql in PER_CHANNEL {
                rows += self.tx.execute(sql, (domain, ch)).await? as i64;
            }
        }
        rows += self
            .tx
            .execute(
                "INSERT INTO activity(domain, channel, name_key, total_ms, not_afk_ms) \
                 SELECT ?1, ?2, k, m * 60000, m * 45000 FROM bench_users ORDER BY k",
                (domain, channel),
            )
            .await? as i64;
        Ok(rows)
    }

    /// The maintained totals from the sums over `bench_users`, after checking they add up
    /// to `messages`. Returns the sums (messages, kudos `++`, kudos by phrase, emotes) and
    /// the rows written.
    async fn add_bench_totals(
        &mut self,
        domain: &str,
        channel: &str,
        users: i64,
        messages: i64,
    ) -> Result<((i64, i64, i64, i64), i64)> {
        let mut rows = 0i64;
        let sums = self
            .rows_dyn("SELECT SUM(m), SUM(kp), SUM(kph), SUM(m / 10) FROM bench_users", vec![], |r| {
                Ok((r.get::<i64>(0)?, r.get::<i64>(1)?, r.get::<i64>(2)?, r.get::<i64>(3)?))
            })
            .await?;
        let (m, kp, kph, emotes) = sums.into_iter().next().unwrap_or_default();
        anyhow::ensure!(m == messages, "bench_prefill: {m} messages written, {messages} meant");
        for (name, n) in [
            ("total_users", users),
            ("total_messages", m),
            ("total_kudos_plusplus", kp),
            ("total_kudos_phrases", kph),
            ("total_emotes", emotes),
        ] {
            self.add_total(domain, name, n).await?;
            rows += 1;
        }
        self.add_total(domain, &super::keys::channel_messages_total(channel), m).await?;
        rows += 1;
        Ok(((m, kp, kph, emotes), rows))
    }
}
