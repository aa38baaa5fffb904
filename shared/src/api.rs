//! The query API (03-api.md): the command table, where each command is reachable, the
//! answer envelope, typed request parameters with the limits, and the rows the store hands
//! to the commands. Shared by both query functions and the tests.
//!
//! ## Subjects
//!
//! * Seed subjects `cytube.query.userstats.{domain}.{command}` ([`SEED_PREFIX`]).
//! * The Kryten command subject [`COMMAND_SUBJECT`] with `{"command": ..., params}`.
//! * Micro endpoints: endpoint name = command, subject `userstats.query.{command}`
//!   ([`micro_subject`]), e.g. `userstats.query.user.stats`,
//!   `userstats.query.kudos.phrases.add`. The body is the JSON parameters (`domain`
//!   optional, default the first configured domain).
//!
//! Each query function queue-subscribes the seed and command subjects in a queue group of
//! its own ([`queue`]), so one replica of each function sees a request and the owner of
//! the command answers it in one hop (see `harness::query`).

use serde_json::{json, Map, Value};

pub const SERVICE: &str = "userstats";
pub const SEED_PREFIX: &str = "cytube.query.userstats";
pub const COMMAND_SUBJECT: &str = "kryten.userstats.command";
pub const SEED_QUEUE: &str = "userstats-seed";
pub const COMMAND_QUEUE: &str = "userstats-command";

/// A query function's queue group on a shared subject: `{base}-user`, `{base}-leaderboard`.
pub fn queue(base: &str, owner: Owner) -> String {
    match owner {
        Owner::User => format!("{base}-user"),
        Owner::Leaderboard => format!("{base}-leaderboard"),
    }
}
/// Longest accepted string parameter (characters).
pub const MAX_STRING: usize = 256;

/// Which query function answers a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// `query-user`: user.*, alias.*, kudos.phrases.*
    User,
    /// `query-leaderboard`: channel.*, leaderboard.*, stats.*, timeseries.*, system.*
    Leaderboard,
}

// The command table (name, owner, admin, handler) is `query::COMMANDS`: one registry.
pub use crate::query::{lookup, Command, COMMANDS};

/// The micro endpoint subject of a command.
pub fn micro_subject(command: &str) -> String {
    format!("userstats.query.{command}")
}

/// Splits the rest of a seed subject (after `cytube.query.userstats.`) into (domain,
/// command): the command is the last two tokens (three for `kudos.phrases.*`).
pub fn split_seed(rest: &str) -> Option<(String, String)> {
    let tokens: Vec<&str> = rest.split('.').collect();
    let n = tokens.len();
    let take = if n >= 4 && tokens[n - 3] == "kudos" && tokens[n - 2] == "phrases" { 3 } else { 2 };
    if n < take + 1 || tokens.iter().any(|t| t.is_empty()) {
        return None;
    }
    Some((tokens[..n - take].join("."), tokens[n - take..].join(".")))
}

/// A failed request: the message goes into `error`, the code into `Nats-Service-Error-Code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError { code: 400, message: message.into() }
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError { code: 403, message: message.into() }
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError { code: 404, message: message.into() }
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError { code: 500, message: message.into() }
    }
    pub fn unknown_command(command: &str) -> ApiError {
        ApiError::not_found(format!("Unknown command: {command}"))
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        ApiError::internal(format!("internal error: {e:#}"))
    }
}

/// `{"service":"userstats","command":..,"success":true,"data":..}`
pub fn success(command: &str, data: Value) -> Value {
    json!({"service": SERVICE, "command": command, "success": true, "data": data})
}

/// `{"service":"userstats","command":..,"success":false,"error":..}` (`command` null when
/// the request named none).
pub fn failure(command: Option<&str>, error: &str) -> Value {
    json!({"service": SERVICE, "command": command, "success": false, "error": error})
}

/// A request's parameters (the JSON object), read with the limits of 03-api.md §1.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Map<String, Value>);

impl Params {
    /// Parses a request body: empty = no parameters; not JSON → `Invalid JSON`; JSON that
    /// is not an object → bad request.
    pub fn parse(body: &[u8]) -> Result<Params, ApiError> {
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Params::default());
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Ok(Params(m)),
            Ok(Value::Null) => Ok(Params::default()),
            Ok(_) => Err(ApiError::bad_request("Invalid request: expected a JSON object")),
            Err(_) => Err(ApiError::bad_request("Invalid JSON")),
        }
    }

    /// An optional string (null or "" = absent); wrong type or too long → bad request.
    pub fn string(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.chars().count() > MAX_STRING => {
                Err(ApiError::bad_request(format!("'{name}' is longer than {MAX_STRING} characters")))
            }
            Some(Value::String(s)) if s.contains('\0') => Err(ApiError::bad_request(format!("'{name}' contains NUL"))),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(ApiError::bad_request(format!("'{name}' must be a string"))),
        }
    }

    /// A required string; absent → `{name} required`.
    pub fn required(&self, name: &str) -> Result<String, ApiError> {
        self.string(name)?.ok_or_else(|| ApiError::bad_request(format!("{name} required")))
    }

    /// An optional integer (numbers or numeric strings; fractions cut).
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let bad = || ApiError::bad_request(format!("'{name}' must be an integer"));
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => {
                n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)).map(Some).ok_or_else(bad)
            }
            Some(Value::String(s)) if s.len() <= 32 => s.trim().parse::<i64>().map(Some).map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }

    /// An integer clamped into `min..=max`, `default` when absent.
    pub fn clamped(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
        Ok(self.int(name)?.unwrap_or(default).clamp(min, max))
    }

    /// `limit`: default as given, clamped to 1..1000.
    pub fn limit(&self, default: i64) -> Result<i64, ApiError> {
        self.clamped("limit", default, 1, 1000)
    }

    /// `hours`: default as given, clamped to 1..8760.
    pub fn hours(&self, default: i64) -> Result<i64, ApiError> {
        self.clamped("hours", default, 1, 8760)
    }

    /// An optional nested object (e.g. `limits` of `channel.all_stats`).
    pub fn object(&self, name: &str) -> Result<Params, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(Params::default()),
            Some(Value::Object(m)) => Ok(Params(m.clone())),
            Some(_) => Err(ApiError::bad_request(format!("'{name}' must be an object"))),
        }
    }

    /// An optional time: ISO-8601 text or seconds since the epoch.
    pub fn time_ms(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let bad = || ApiError::bad_request(format!("'{name}' must be an ISO-8601 time or epoch seconds"));
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => {
                n.as_f64().filter(|f| f.is_finite()).map(|f| Some((f * 1000.0) as i64)).ok_or_else(bad)
            }
            Some(Value::String(s)) if s.len() <= MAX_STRING => {
                crate::wire::parse_timestamp_ms(s).map(Some).ok_or_else(bad)
            }
            Some(_) => Err(bad()),
        }
    }
}

pub use crate::store::{ActivityRow, AliasChange, HourRow, SnapshotRow, TitledVoteRow, WatermarkRow};
