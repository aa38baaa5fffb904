//! `userstats-ingest-chat`: counts chat messages and private messages, and finds in them
//! kudos (`alice++`, `lol alice`), emote uses and movie votes (02-semantics.md §Chat).
//!
//! It consumes `chatMsg` and `pm` events from the durable events stream, a batch per
//! transaction, acked after commit, each event counted once. Before a batch it waits
//! (boundedly) for ingest-presence and ingest-media to have applied the earlier events, so
//! that kudos targets, emote lists and "now playing" are those of the message's time.

use shared::chat::ChatHandler;
use shared::harness::{self, Function};
use std::process::ExitCode;

const FUNCTION: Function = Function {
    name: "ingest-chat",
    version: env!("CARGO_PKG_VERSION"),
    description: "kryten-userstats: chat messages, PMs, kudos, emotes and movie votes",
};

fn main() -> ExitCode {
    harness::run_ingest(FUNCTION, ChatHandler::new)
}
