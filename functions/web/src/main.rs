//! `userstats-web`: the stats site. Server-rendered pages for every followed channel (`/`),
//! each channel (`/c/{channel}`: big numbers, who is here, most active times, messages per
//! day, population, top chatters, kudos and emote boards, media and votes) and each user
//! (`/c/{channel}/u/{user}`), each also as JSON (`?format=json`), on `web.port` (28283).
//!
//! Stateless: it reads only through the query API over NATS (no database), caches pages for
//! `web.cache_seconds`, answers GET and HEAD only, and escapes every string from chat.

mod html;
mod http;
mod model;
mod pages;
mod serve;
mod site;
mod source;
mod stats;
mod svg;

use shared::harness::{self, Function};
use std::process::ExitCode;

const FUNCTION: Function = Function {
    name: "web",
    version: env!("CARGO_PKG_VERSION"),
    description: "kryten-userstats: the stats site (HTML and JSON pages from the query API)",
};

fn main() -> ExitCode {
    harness::run(FUNCTION, harness::start_without_database, serve::run)
}
