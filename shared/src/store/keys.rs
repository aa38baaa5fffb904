//! Names of the rows in the `totals` and `versions` tables that more than one module
//! builds: one place for each spelling.

/// The `totals` name of a channel's message count.
pub fn channel_messages_total(channel: &str) -> String {
    format!("channel_messages:{channel}")
}

/// The `versions` key that moves when a channel's emote list changes.
pub fn emote_version_key(domain: &str, channel: &str) -> String {
    format!("emotes:{domain}:{channel}")
}
