//! The site's own figures: HTTP requests by status and their latency (a cumulative
//! histogram), cache hits. They are the `data` of the micro service's `$SRV.STATS` reply
//! (and the `status` endpoint's answer), which the metrics function turns into
//! `userstats_web_requests_total{status}` and `userstats_web_request_duration_seconds`.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency buckets; the last bucket is +Inf.
pub const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Default)]
pub struct HttpStats {
    by_status: Mutex<BTreeMap<u16, u64>>,
    /// Requests at or below each bound (not cumulative here; summed in `to_json`).
    buckets: [AtomicU64; BUCKETS.len()],
    sum_us: AtomicU64,
    count: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub builds_failed: AtomicU64,
}

impl HttpStats {
    pub fn record(&self, status: u16, took: Duration) {
        if let Ok(mut m) = self.by_status.lock() {
            *m.entry(status).or_default() += 1;
        }
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.sum_us.fetch_add(took.as_micros() as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    pub fn to_json(&self) -> Value {
        let by_status: BTreeMap<String, u64> =
            self.by_status.lock().map(|m| m.iter().map(|(k, v)| (k.to_string(), *v)).collect()).unwrap_or_default();
        let mut running = 0;
        let buckets: Vec<Value> = BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(le, n)| {
                running += n.load(Relaxed);
                json!([le, running])
            })
            .collect();
        json!({
            "http": {
                "requests": self.count.load(Relaxed),
                "by_status": by_status,
                "duration_seconds": {
                    "buckets": buckets,
                    "sum": self.sum_us.load(Relaxed) as f64 / 1e6,
                    "count": self.count.load(Relaxed),
                },
            },
            "cache": {"hits": self.cache_hits.load(Relaxed), "misses": self.cache_misses.load(Relaxed)},
            "builds_failed": self.builds_failed.load(Relaxed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative() {
        let s = HttpStats::default();
        s.record(200, Duration::from_micros(500));
        s.record(304, Duration::from_millis(3));
        s.record(200, Duration::from_secs(9));
        let j = s.to_json();
        assert_eq!(j["http"]["requests"], json!(3));
        assert_eq!(j["http"]["by_status"]["200"], json!(2));
        assert_eq!(j["http"]["duration_seconds"]["buckets"][0], json!([0.001, 1]));
        assert_eq!(j["http"]["duration_seconds"]["buckets"][2], json!([0.005, 2]));
        assert_eq!(j["http"]["duration_seconds"]["buckets"][11], json!([5.0, 2]), "9 s is only in +Inf");
        assert_eq!(j["http"]["duration_seconds"]["count"], json!(3));
    }
}
