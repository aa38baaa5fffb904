//! `userstats-metrics`: Prometheus `GET /metrics` and `GET /health` on `metrics.port`
//! (default 28282) for the whole function set (03-api.md §3).
//!
//! It only reads: the database's maintained totals (users, messages, PMs, kudos, emotes,
//! media changes, open sessions, per-channel figures, each function's durable counters) and
//! the micro stats every running function answers on `$SRV.STATS` (replicas, requests,
//! errors, processing time, ingest lag). A snapshot is collected once a second; a scrape
//! hands out the latest one, so it stays cheap however big the database grows.

use shared::harness::{self, Function};
use std::process::ExitCode;

const FUNCTION: Function = Function {
    name: "metrics",
    version: env!("CARGO_PKG_VERSION"),
    description: "kryten-userstats: Prometheus metrics and health of the function set",
};

fn main() -> ExitCode {
    harness::run(FUNCTION, harness::start_reader, shared::metrics::run)
}
