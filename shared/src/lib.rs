//! # kryten-userstats shared library
//!
//! Everything the function binaries (`functions/*`) share; nothing runs here.
//!
//! ## Layout
//!
//! * [`config`] — the one configuration file (TOML/JSON) + `USERSTATS_*` overrides.
//! * [`wire`] — what the Kryten bridge publishes: the envelope, typed CyTube payloads,
//!   subject tokens, timestamps, HTML entities.
//! * [`detect`] — the detectors: pure functions from chat text to kudos, emotes, votes,
//!   and media title cleaning.
//! * [`store`] — the libSQL database: schema migrations, batched writes, read queries.
//!   The only place SQL lives.
//! * [`web_metrics`] — the web function's HTTP figures as rendered in `/metrics`.
//! * [`health`] — the function set's health, one computation for `system.health` and `/health`.
//! * [`harness`] — what every function does the same way: start-up, NATS, micro service
//!   registration, the durable ingest loop, graceful shutdown.
//! * [`api`] — the query API: command table, subjects, answer envelope, request parameters
//!   with their limits.
//! * [`query`] — the query commands (one family per file): what each reads and answers.
//! * [`chat`] — the semantics of `ingest-chat` (what a batch of chat events changes).
//! * [`presence`] — the semantics of `ingest-presence`: sessions, time in channel, usercount,
//!   population snapshots and retention.
//! * [`media`] — the semantics of `ingest-media`: media log, emote lists with their history,
//!   playlist.
//! * [`bootstrap`] — the semantics of `bootstrap-kv`: the bridge's KV buckets (userlist,
//!   emotes, playlist) applied as the events the ingest handlers take, watched and resynced.

pub mod api;
pub mod bootstrap;
pub mod chat;
pub mod config;
pub mod detect;
pub mod harness;
pub mod health;
pub mod media;
pub mod metrics;
pub mod presence;
pub mod query;
pub mod store;
pub mod web_metrics;
pub mod wire;
