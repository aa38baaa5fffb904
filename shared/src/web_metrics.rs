//! The web function's HTTP figures in `/metrics`: its replicas put them in their `$SRV.STATS`
//! data (`{"http": {"by_status": {"200": n}, "duration_seconds": {"buckets": [[le, n]..],
//! "sum", "count"}}}`, cumulative buckets); the metrics function adds them up over the
//! running replicas and renders
//!
//! * `userstats_web_requests_total{status}` — requests answered, by HTTP status;
//! * `userstats_web_request_duration_seconds` — a histogram of the time to answer.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct WebFigures {
    /// Replies of web replicas seen (0: no web function running, nothing is rendered).
    pub replicas: usize,
    pub by_status: BTreeMap<String, u64>,
    /// Upper bound (as written by the replica) → cumulative count, summed over replicas.
    pub buckets: Vec<(String, u64)>,
    pub sum_seconds: f64,
    pub count: u64,
}

impl WebFigures {
    /// Adds up the HTTP figures of every `userstats-web` reply.
    pub fn from_stats(replies: &[Value]) -> WebFigures {
        let mut w = WebFigures::default();
        for r in replies.iter().filter(|r| r["name"] == "userstats-web") {
            // Every endpoint of a replica carries the same data: read one.
            let Some(http) = r["endpoints"].as_array().and_then(|e| e.first()).map(|e| &e["data"]["http"]) else {
                continue;
            };
            w.replicas += 1;
            for (status, n) in http["by_status"].as_object().into_iter().flatten() {
                *w.by_status.entry(status.clone()).or_default() += n.as_u64().unwrap_or(0);
            }
            let d = &http["duration_seconds"];
            for (i, b) in d["buckets"].as_array().into_iter().flatten().enumerate() {
                let le = b[0].as_f64().map(|f| f.to_string()).unwrap_or_default();
                let n = b[1].as_u64().unwrap_or(0);
                match w.buckets.get_mut(i) {
                    Some(slot) if slot.0 == le => slot.1 += n,
                    Some(_) => {}
                    None => w.buckets.push((le, n)),
                }
            }
            w.sum_seconds += d["sum"].as_f64().unwrap_or(0.0);
            w.count += d["count"].as_u64().unwrap_or(0);
        }
        w
    }

    /// Prometheus text of the two series (empty when no web replica answered).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.replicas == 0 {
            return out;
        }
        out.push_str(
            "# HELP userstats_web_requests_total HTTP requests answered by the web function (running replicas)\n",
        );
        out.push_str("# TYPE userstats_web_requests_total counter\n");
        for (status, n) in &self.by_status {
            let status: String = status.chars().filter(char::is_ascii_digit).collect();
            let _ = writeln!(out, "userstats_web_requests_total{{status=\"{status}\"}} {n}");
        }
        let name = "userstats_web_request_duration_seconds";
        let _ = writeln!(out, "# HELP {name} Time the web function took to answer an HTTP request (running replicas)");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (le, n) in &self.buckets {
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum_seconds);
        let _ = writeln!(out, "{name}_count {}", self.count);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reply(ok: u64, fast: u64, total: u64) -> Value {
        json!({"name": "userstats-web", "endpoints": [{"name": "status", "data": {"http": {
            "by_status": {"200": ok, "404": 1},
            "duration_seconds": {"buckets": [[0.001, fast], [0.01, total]], "sum": 0.5, "count": total}}}}]})
    }

    #[test]
    fn replicas_add_up_into_one_histogram() {
        let w = WebFigures::from_stats(&[reply(5, 2, 6), reply(1, 1, 2), json!({"name": "userstats-query-user"})]);
        assert_eq!(w.replicas, 2);
        assert_eq!(w.by_status["200"], 6);
        assert_eq!(w.buckets, vec![("0.001".to_string(), 3), ("0.01".to_string(), 8)]);
        let text = w.render();
        assert!(text.contains("userstats_web_requests_total{status=\"404\"} 2\n"), "{text}");
        assert!(text.contains("userstats_web_request_duration_seconds_bucket{le=\"+Inf\"} 8\n"), "{text}");
        assert!(text.contains("userstats_web_request_duration_seconds_sum 1\n"), "{text}");
        assert_eq!(WebFigures::from_stats(&[]).render(), "");
    }
}
