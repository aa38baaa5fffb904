//! Asking the query API from a test and comparing its lists: the helpers several test
//! files use to check figures through the micro endpoints.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// The `data` of a successful query on its micro endpoint (`userstats.query.<command>`);
/// panics, saying which command, on no answer within 10 s, a non-JSON answer or
/// `success: false`.
pub async fn micro_data(client: &async_nats::Client, command: &str, params: Value) -> Value {
    let subject = format!("userstats.query.{command}");
    let reply = tokio::time::timeout(Duration::from_secs(10), client.request(subject, params.to_string().into()))
        .await
        .unwrap_or_else(|_| panic!("no answer to {command} within 10 s"))
        .unwrap_or_else(|e| panic!("{command} failed: {e}"));
    let v: Value = serde_json::from_slice(&reply.payload).unwrap_or_else(|e| panic!("{command}: not JSON: {e}"));
    assert_eq!(v["success"], json!(true), "{command} {params}: {v}");
    v["data"].clone()
}

/// A `[{key: name, count: n}]` list as a map, so that ties in any order compare equal.
pub fn counts(rows: &Value, key: &str) -> BTreeMap<String, i64> {
    let rows = rows.as_array().unwrap_or_else(|| panic!("not a list: {rows}"));
    rows.iter().map(|r| (r[key].as_str().unwrap_or_default().to_string(), r["count"].as_i64().unwrap_or(-1))).collect()
}

/// `(name, count)` pairs as the map [`counts`] gives.
pub fn map(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}
