//! `userstats-query-user`: answers the per-user queries — `user.*` (messages, kudos, emotes,
//! aliases, time in channel with the live session), `alias.*` and `kudos.phrases.*` (the
//! changing ones only with `admin_commands = true`).
//!
//! Its commands are micro endpoints `userstats.query.{command}`; it also takes its turn
//! routing the seed subjects `cytube.query.userstats.{domain}.{command}` and the Kryten
//! command subject `kryten.userstats.command` to whichever function owns a command.

use shared::api::Owner;
use shared::harness::{query, Function};
use std::process::ExitCode;

const FUNCTION: Function = Function {
    name: "query-user",
    version: env!("CARGO_PKG_VERSION"),
    description: "kryten-userstats: user, alias and trigger phrase queries",
};

fn main() -> ExitCode {
    query::run_query(FUNCTION, Owner::User)
}
