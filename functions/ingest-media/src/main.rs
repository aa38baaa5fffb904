//! `userstats-ingest-media`: what plays in each channel and which emotes it has
//! (02-semantics.md §Media, §Ordering).
//!
//! It consumes `changeMedia`, `setCurrent`, the emote events (`emoteList`, `updateEmote`,
//! `removeEmote`, `renameEmote`) and the playlist events (`playlist`, `queue`, `delete`,
//! `moveVideo`) from the durable events stream, a batch per transaction, acked after
//! commit, each event applied once. The media log and the emote history keep their event
//! times, so ingest-chat can judge a vote or an emote by what applied at the message's time.

use shared::harness::{self, Function};
use shared::media::MediaHandler;
use std::process::ExitCode;

const FUNCTION: Function = Function {
    name: "ingest-media",
    version: env!("CARGO_PKG_VERSION"),
    description: "kryten-userstats: media log, emote lists and playlist",
};

fn main() -> ExitCode {
    harness::run_ingest(FUNCTION, MediaHandler::new)
}
