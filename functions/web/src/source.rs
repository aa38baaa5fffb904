//! Where the pages' numbers come from: the query API over NATS request/reply
//! (`userstats.query.<command>`), nothing else — so the site runs on any host, scales by
//! replicas, and shows exactly what every other client of the API sees.

use serde_json::Value;
use std::time::Duration;

/// Why a page could not be built.
#[derive(Debug, Clone, PartialEq)]
pub enum Fail {
    /// The query API refused the request as bad (a name it cannot take): a 404 page.
    Refused(String),
    /// The query API did not answer or failed: a 503 page.
    Unavailable(String),
}

#[derive(Clone)]
pub struct Source {
    client: async_nats::Client,
    timeout: Duration,
}

impl Source {
    pub fn new(client: async_nats::Client, timeout: Duration) -> Source {
        Source { client, timeout }
    }

    /// The `data` of a command's successful answer.
    pub async fn ask(&self, command: &str, params: Value) -> Result<Value, Fail> {
        let subject = shared::api::micro_subject(command);
        let asked = tokio::time::timeout(self.timeout, self.client.request(subject, params.to_string().into())).await;
        let message = match asked {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => return Err(Fail::Unavailable(format!("{command}: {e}"))),
            Err(_) => return Err(Fail::Unavailable(format!("{command}: no answer within {:?}", self.timeout))),
        };
        let answer: Value = serde_json::from_slice(&message.payload)
            .map_err(|e| Fail::Unavailable(format!("{command}: answer is not JSON ({e})")))?;
        if answer["success"] == Value::Bool(true) {
            return Ok(answer["data"].clone());
        }
        let error = answer["error"].as_str().unwrap_or("failed").to_string();
        let code = message
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::service::NATS_SERVICE_ERROR_CODE))
            .and_then(|v| v.as_str().parse::<u16>().ok())
            .unwrap_or(500);
        if (400..500).contains(&code) {
            Err(Fail::Refused(format!("{command}: {error}")))
        } else {
            Err(Fail::Unavailable(format!("{command}: {error}")))
        }
    }
}
