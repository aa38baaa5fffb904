//! What `bootstrap-kv` does: reads the bridge's KV buckets of each configured channel
//! (userlist, emotes, playlist), turns their values into the same parsed events the ingest
//! handlers take — a `userlist`, an `emoteList`, a `playlist`, a `changeMedia` (+
//! `setCurrent`) — timed at the KV entry's `created` time (server time of the put) and
//! applies them with the presence and media logic in one transaction per channel,
//! idempotent by `kv:{bucket}:{key}:{revision}`.
//!
//! * [`snapshot`]: bucket names, KV values → events (pure);
//! * [`apply`]: drift, and the snapshot applied in one transaction;
//! * [`run`]: the function — binds (never creates) the buckets, watches them, resyncs every
//!   `bootstrap.resync_seconds` reporting drift once, answers `bootstrap.resync`.
//!
//! Ordering: a snapshot older than what the database knows does not override it — per user
//! (a session whose last event is newer is neither changed nor closed; a listed user seen
//! after the snapshot is not reopened), for the emote list (a list change after the put
//! wins), and for now playing (the media log is time-indexed, and one media change seen
//! both in KV and as an event is one entry).

pub mod apply;
pub mod run;
pub mod snapshot;

pub use apply::{apply_snapshot, Applied, Applier, Drift};
pub use run::run;
pub use snapshot::{bucket_names, snapshot_events, ChannelSnapshot, Kind, KvValue, Problem, SnapshotEvents, KINDS};

/// The function's name in counters.
const FUNCTION: &str = "bootstrap-kv";
