//! `userstats-bootstrap-kv`: the channel's state as the bridge keeps it in NATS KV
//! (01-wire.md §4, 02-semantics.md §Presence, §Media).
//!
//! For each configured channel it binds (never creates) the buckets
//! `kryten_{channel}_userlist` (`users`), `kryten_{channel}_emotes` (`list`) and
//! `kryten_{channel}_playlist` (`items`, `current`) — older names and keys accepted — and
//! applies them as the events the ingest functions take: the user list opens sessions for
//! listed users and closes those of users no longer listed, the emote list replaces the
//! channel's list, `current` sets what is playing. Each value is timed at its put and
//! applied once per revision; a snapshot older than a user's last presence event does not
//! override it.
//!
//! It watches the buckets and re-applies on change, resyncs every
//! `bootstrap.resync_seconds` reporting drift (`drift_users_missing`, `drift_users_extra`,
//! `drift_emotes` in its stats), and answers `bootstrap.resync` (`{channel?}`) with what it
//! changed. A missing bucket or key, JetStream off or a malformed value is one warning per
//! channel and bucket; live events carry on and the next resync tries again.

use shared::bootstrap;
use shared::harness::{self, Function};
use std::process::ExitCode;

const FUNCTION: Function = Function {
    name: "bootstrap-kv",
    version: env!("CARGO_PKG_VERSION"),
    description: "kryten-userstats: loads and follows the bridge's KV state (users, emotes, now playing)",
};

fn main() -> ExitCode {
    harness::run(FUNCTION, harness::start, bootstrap::run)
}
