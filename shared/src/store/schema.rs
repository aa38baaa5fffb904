//! Versioned schema migrations. Each entry runs once, in order, inside one transaction;
//! `schema_version` records how far a database has come. Never edit a released step:
//! append a new one.

pub const MIGRATIONS: &[&str] = &[
    // 1: everything the first functions need.
    r#"
CREATE TABLE applied_events(id TEXT NOT NULL UNIQUE, applied_ms INTEGER NOT NULL);
CREATE TABLE counters(function TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(function, name)) WITHOUT ROWID;
CREATE TABLE totals(domain TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(domain, name)) WITHOUT ROWID;
CREATE TABLE versions(name TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE channels(domain TEXT NOT NULL, channel TEXT NOT NULL, token TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL, PRIMARY KEY(domain, channel)) WITHOUT ROWID;
CREATE TABLE users(domain TEXT NOT NULL, name_key TEXT NOT NULL, display TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL, pms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(domain, name_key)) WITHOUT ROWID;
-- Per user and channel; channel '' holds the whole domain's rollup.
CREATE TABLE user_counts(domain TEXT NOT NULL, channel TEXT NOT NULL, name_key TEXT NOT NULL,
    messages INTEGER NOT NULL DEFAULT 0, kudos_plusplus INTEGER NOT NULL DEFAULT 0,
    kudos_phrases INTEGER NOT NULL DEFAULT 0, kudos_total INTEGER NOT NULL DEFAULT 0,
    emotes INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(domain, channel, name_key)) WITHOUT ROWID;
CREATE INDEX user_counts_by_messages ON user_counts(domain, channel, messages DESC);
CREATE INDEX user_counts_by_kudos ON user_counts(domain, channel, kudos_total DESC);
CREATE TABLE phrase_counts(domain TEXT NOT NULL, channel TEXT NOT NULL, name_key TEXT NOT NULL,
    phrase TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(domain, channel, name_key, phrase)) WITHOUT ROWID;
CREATE TABLE emote_counts(domain TEXT NOT NULL, channel TEXT NOT NULL, name_key TEXT NOT NULL,
    emote TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(domain, channel, name_key, emote)) WITHOUT ROWID;
CREATE TABLE emote_totals(domain TEXT NOT NULL, channel TEXT NOT NULL, emote TEXT NOT NULL,
    count INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(domain, channel, emote)) WITHOUT ROWID;
CREATE INDEX emote_totals_by_count ON emote_totals(domain, channel, count DESC);
CREATE TABLE hourly(domain TEXT NOT NULL, channel TEXT NOT NULL, hour_ms INTEGER NOT NULL,
    messages INTEGER NOT NULL DEFAULT 0, kudos INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(domain, channel, hour_ms)) WITHOUT ROWID;
-- Emote lists with their history: a name is in the list from added_ms until removed_ms.
CREATE TABLE emotes(domain TEXT NOT NULL, channel TEXT NOT NULL, name TEXT NOT NULL,
    added_ms INTEGER NOT NULL, removed_ms INTEGER,
    PRIMARY KEY(domain, channel, name, added_ms)) WITHOUT ROWID;
CREATE TABLE media_log(id INTEGER PRIMARY KEY, domain TEXT NOT NULL, channel TEXT NOT NULL,
    at_ms INTEGER NOT NULL, media_type TEXT NOT NULL, media_id TEXT NOT NULL, title TEXT NOT NULL);
CREATE INDEX media_log_by_time ON media_log(domain, channel, at_ms);
CREATE TABLE movie_votes(domain TEXT NOT NULL, channel TEXT NOT NULL, media_type TEXT NOT NULL,
    media_id TEXT NOT NULL, name_key TEXT NOT NULL, vote INTEGER NOT NULL, at_ms INTEGER NOT NULL,
    PRIMARY KEY(domain, channel, media_type, media_id, name_key)) WITHOUT ROWID;
CREATE TABLE aliases(alias TEXT PRIMARY KEY, name_key TEXT NOT NULL, display TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX aliases_by_user ON aliases(name_key);
CREATE TABLE kudos_phrases(phrase TEXT PRIMARY KEY) WITHOUT ROWID;
-- Presence: one row per open session (present user); closed time goes to activity.
CREATE TABLE sessions(domain TEXT NOT NULL, channel TEXT NOT NULL, name_key TEXT NOT NULL,
    joined_ms INTEGER NOT NULL, afk INTEGER NOT NULL, afk_since_ms INTEGER,
    afk_ms INTEGER NOT NULL DEFAULT 0, last_event_ms INTEGER NOT NULL,
    PRIMARY KEY(domain, channel, name_key)) WITHOUT ROWID;
CREATE TABLE activity(domain TEXT NOT NULL, channel TEXT NOT NULL, name_key TEXT NOT NULL,
    total_ms INTEGER NOT NULL DEFAULT 0, not_afk_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(domain, channel, name_key)) WITHOUT ROWID;
CREATE TABLE population(domain TEXT NOT NULL, channel TEXT NOT NULL, slot_ms INTEGER NOT NULL,
    connected_count INTEGER NOT NULL, chat_count INTEGER NOT NULL, usercount INTEGER,
    PRIMARY KEY(domain, channel, slot_ms)) WITHOUT ROWID;
CREATE TABLE watermarks(domain TEXT NOT NULL, channel TEXT NOT NULL, day TEXT NOT NULL,
    kind TEXT NOT NULL, at_ms INTEGER NOT NULL, total_users INTEGER NOT NULL, chat_users INTEGER NOT NULL,
    PRIMARY KEY(domain, channel, day, kind)) WITHOUT ROWID;
CREATE TABLE channel_state(domain TEXT NOT NULL, channel TEXT NOT NULL,
    usercount INTEGER, usercount_ms INTEGER, current_uid INTEGER,
    PRIMARY KEY(domain, channel)) WITHOUT ROWID;
CREATE TABLE playlist(domain TEXT NOT NULL, channel TEXT NOT NULL, uid INTEGER NOT NULL,
    position INTEGER NOT NULL, media_type TEXT NOT NULL, media_id TEXT NOT NULL, title TEXT NOT NULL,
    PRIMARY KEY(domain, channel, uid)) WITHOUT ROWID;
"#,
    // 2: who consumes: one replica of each ingest function holds the lease at a time.
    r#"
CREATE TABLE leases(name TEXT PRIMARY KEY, holder TEXT NOT NULL, until_ms INTEGER NOT NULL) WITHOUT ROWID;
"#,
    // 3: per-user lookups across channels (the query functions' user.* answers).
    r#"
CREATE INDEX IF NOT EXISTS user_counts_by_user ON user_counts(domain, name_key);
CREATE INDEX IF NOT EXISTS activity_by_user ON activity(domain, name_key);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions(domain, name_key);
"#,
    // 4: messages per user and hour of day (UTC), for the stats site's user card; channel ''
    // is the domain rollup, as in user_counts.
    r#"
CREATE TABLE IF NOT EXISTS user_hours(domain TEXT NOT NULL, channel TEXT NOT NULL, name_key TEXT NOT NULL,
    hour INTEGER NOT NULL, messages INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(domain, channel, name_key, hour)) WITHOUT ROWID;
"#,
    // 5: databases imported into this one (`userstats-admin import-v0`), keyed by a hash of
    // their content and never pruned, so that the same content is imported at most once.
    r#"
CREATE TABLE IF NOT EXISTS imports(hash TEXT PRIMARY KEY, kind TEXT NOT NULL, source TEXT NOT NULL,
    imported_ms INTEGER NOT NULL, summary TEXT NOT NULL) WITHOUT ROWID;
"#,
    // 6: the image URL of each emote name as the bridge last listed it (the stats site shows
    // them with `web.show_emote_images`).
    r#"
CREATE TABLE IF NOT EXISTS emote_images(domain TEXT NOT NULL, channel TEXT NOT NULL, name TEXT NOT NULL,
    image TEXT NOT NULL, at_ms INTEGER NOT NULL, PRIMARY KEY(domain, channel, name)) WITHOUT ROWID;
"#,
    // 7: emote renames (old name → new name, the latest rename of a name), because the
    // bridge's emotes bucket never applies them: bootstrap-kv reads a KV list through them.
    r#"
CREATE TABLE IF NOT EXISTS emote_renames(domain TEXT NOT NULL, channel TEXT NOT NULL, old TEXT NOT NULL,
    new TEXT NOT NULL, at_ms INTEGER NOT NULL, PRIMARY KEY(domain, channel, old)) WITHOUT ROWID;
"#,
];
