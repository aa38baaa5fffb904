//! `userstats-ingest-presence`: who is in each channel and for how long (02-semantics.md
//! §Presence, §Population, §Retention).
//!
//! It consumes `addUser`, `userLeave`, `setAFK`, `setUserMeta`, `userlist` and `usercount`
//! from the durable events stream, a batch per transaction, acked after commit, each event
//! applied once. Open sessions live in the database, so replicas share them and a restart
//! loses no time. About once a second it also writes the population snapshot of the
//! current interval (one row per channel and slot, whichever replica comes first), the
//! daily watermarks, and prunes append-only rows past retention in small batches.

use shared::harness::{self, Function};
use shared::presence::PresenceHandler;
use std::process::ExitCode;

const FUNCTION: Function = Function {
    name: "ingest-presence",
    version: env!("CARGO_PKG_VERSION"),
    description: "kryten-userstats: sessions, time in channel, usercount and population",
};

fn main() -> ExitCode {
    harness::run_ingest(FUNCTION, PresenceHandler::new)
}
