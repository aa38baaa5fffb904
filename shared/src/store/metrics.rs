//! The figures the `metrics` function exports, read from maintained totals and small tables
//! only (no scan of the per-user tables), so a scrape stays cheap on a big database.

use super::Store;
use anyhow::Result;

/// One channel's live figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelFigures {
    pub domain: String,
    pub channel: String,
    /// Users with an open session.
    pub present: i64,
    /// Present and not AFK.
    pub chatting: i64,
    /// Messages counted in the channel (ever).
    pub messages: i64,
}

/// Everything one scrape shows from the database.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Domain totals (`total_messages`...) summed over domains.
    pub totals: Vec<(String, i64)>,
    pub channels: Vec<ChannelFigures>,
    pub active_sessions: i64,
    /// Durable work counters as (function, name, value).
    pub counters: Vec<(String, String, i64)>,
}

impl Figures {
    pub fn total(&self, name: &str) -> i64 {
        self.totals.iter().find(|(n, _)| n == name).map(|(_, v)| *v).unwrap_or(0)
    }
}

impl Store {
    pub async fn figures(&self) -> Result<Figures> {
        let totals = self.all("SELECT name, SUM(value) FROM totals WHERE substr(name, 1, 17) <> 'channel_messages:' GROUP BY name ORDER BY name", (), |r| {
            Ok((r.get(0)?, r.get(1)?))
        });
        let totals = totals.await?;
        let channels = self
            .all(
                "SELECT c.domain, c.channel, \
                   (SELECT COUNT(*) FROM sessions s WHERE s.domain = c.domain AND s.channel = c.channel), \
                   (SELECT COUNT(*) FROM sessions s WHERE s.domain = c.domain AND s.channel = c.channel AND s.afk = 0), \
                   (SELECT COALESCE(SUM(value), 0) FROM totals t WHERE t.domain = c.domain AND t.name = 'channel_messages:' || c.channel) \
                 FROM channels c ORDER BY c.domain, c.channel",
                (),
                |r| {
                    Ok(ChannelFigures {
                        domain: r.get(0)?,
                        channel: r.get(1)?,
                        present: r.get(2)?,
                        chatting: r.get(3)?,
                        messages: r.get(4)?,
                    })
                },
            )
            .await?;
        let active_sessions = self.number("SELECT COUNT(*) FROM sessions", ()).await?;
        let counters = self
            .all("SELECT function, name, value FROM counters ORDER BY function, name", (), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .await?;
        Ok(Figures { totals, channels, active_sessions, counters })
    }
}
