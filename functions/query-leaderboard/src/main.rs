//! `userstats-query-leaderboard`: answers the channel-wide queries — `channel.*` (top
//! chatters, population, media history, watermarks, movie votes, the all-in-one
//! `channel.all_stats`), `leaderboard.*`, `stats.global`, `timeseries.*` and `system.*`
//! (ping, fleet health from a `$SRV.PING` scatter, totals).
//!
//! Its commands are micro endpoints `userstats.query.{command}`; it also takes its turn
//! routing the seed subjects `cytube.query.userstats.{domain}.{command}` and the Kryten
//! command subject `kryten.userstats.command` to whichever function owns a command.

use shared::api::Owner;
use shared::harness::{query, Function};
use std::process::ExitCode;

const FUNCTION: Function = Function {
    name: "query-leaderboard",
    version: env!("CARGO_PKG_VERSION"),
    description: "kryten-userstats: channel, leaderboard, time series and system queries",
};

fn main() -> ExitCode {
    query::run_query(FUNCTION, Owner::Leaderboard)
}
