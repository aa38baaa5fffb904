//! A small HTTP/1.1 server for GET and HEAD, on tokio: what the site needs and no more.
//!
//! Limits for the open internet: a request head of at most [`MAX_HEAD`] bytes (request line
//! at most [`MAX_LINE`]: longer is `414`, a longer head `431`), at most [`MAX_HEADERS`]
//! header lines, a deadline to send the head (slow clients are dropped), request bodies
//! never read (a request announcing one gets its answer and the connection closed), keep-
//! alive with an idle timeout, and a bound on connections. Malformed input is a `400`,
//! never a panic.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const MAX_LINE: usize = 2048;
pub const MAX_HEAD: usize = 8192;
pub const MAX_HEADERS: usize = 64;
/// Time to send a whole request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a kept-alive connection may sit idle between requests.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
const WRITE_TIMEOUT: Duration = Duration::from_secs(20);

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub http10: bool,
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first value of a header (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether the connection may serve another request after this one.
    pub fn keep_alive(&self) -> bool {
        let connection = self.header("connection").unwrap_or("").to_ascii_lowercase();
        let has_body = self.header("transfer-encoding").is_some()
            || self.header("content-length").is_some_and(|v| v.trim() != "0");
        !has_body && if self.http10 { connection.contains("keep-alive") } else { !connection.contains("close") }
    }
}

/// Why a request head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    BadRequest,
    UriTooLong,
    HeadersTooLarge,
}

impl HeadError {
    pub fn status(self) -> u16 {
        match self {
            HeadError::BadRequest => 400,
            HeadError::UriTooLong => 414,
            HeadError::HeadersTooLarge => 431,
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parses a request head from the start of `buf`: `Ok(None)` while incomplete, else the
/// request and the bytes it used.
pub fn parse_head(buf: &[u8]) -> Result<Option<(Request, usize)>, HeadError> {
    let line_end = buf.iter().position(|b| *b == b'\n');
    if line_end.unwrap_or(buf.len()) > MAX_LINE {
        return Err(HeadError::UriTooLong);
    }
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4) else {
        return if buf.len() > MAX_HEAD { Err(HeadError::HeadersTooLarge) } else { Ok(None) };
    };
    if end > MAX_HEAD {
        return Err(HeadError::HeadersTooLarge);
    }
    let text = std::str::from_utf8(&buf[..end - 4]).map_err(|_| HeadError::BadRequest)?;
    let mut lines = text.split("\r\n");
    let mut parts = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::BadRequest);
    };
    if !is_token(method) || method.len() > 16 || target.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(HeadError::BadRequest);
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(HeadError::BadRequest),
    };
    let mut headers = Vec::new();
    for line in lines {
        if headers.len() >= MAX_HEADERS {
            return Err(HeadError::HeadersTooLarge);
        }
        let Some((name, value)) = line.split_once(':') else { return Err(HeadError::BadRequest) };
        if !is_token(name) || value.bytes().any(|b| b < b' ' && b != b'\t') {
            return Err(HeadError::BadRequest);
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Ok(Some((Request { method: method.to_string(), target: target.to_string(), http10, headers }, end)))
}

/// A response ready to write.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: std::sync::Arc<[u8]>,
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Serialises a response; the body only when `with_body` (not for HEAD, 304).
pub fn encode(r: &Response, keep_alive: bool, with_body: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    for (k, v) in &r.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if r.status != 304 {
        out.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
    }
    out.push_str(if keep_alive { "Connection: keep-alive\r\n\r\n" } else { "Connection: close\r\n\r\n" });
    let mut bytes = out.into_bytes();
    if with_body && r.status != 304 {
        bytes.extend_from_slice(&r.body);
    }
    bytes
}

/// What reading a request head gave.
pub enum Read {
    Head(Request),
    Refused(HeadError),
    /// Closed, idle too long, or too slow: drop the connection silently.
    Gone,
}

/// Reads the next request head into `buf` (which may already hold pipelined bytes).
pub async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>, idle: Duration) -> Read {
    let deadline = tokio::time::Instant::now() + idle.max(HEAD_TIMEOUT);
    let mut chunk = [0u8; 2048];
    loop {
        match parse_head(buf) {
            Ok(Some((req, used))) => {
                buf.drain(..used);
                return Read::Head(req);
            }
            Ok(None) => {}
            Err(e) => return Read::Refused(e),
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Read::Gone,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

pub async fn write(stream: &mut TcpStream, bytes: &[u8]) -> bool {
    matches!(tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(bytes)).await, Ok(Ok(())))
}

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Days since 1970-01-01 → (year, month 1..12, day 1..31) (proleptic Gregorian).
fn civil(days: i64) -> (i64, usize, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m as usize, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Milliseconds since the epoch → IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[m - 1],
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// IMF-fixdate → milliseconds since the epoch (other formats: `None`).
pub fn parse_http_date(s: &str) -> Option<i64> {
    let p: Vec<&str> = s.split_whitespace().collect();
    let [_, d, mon, y, t, "GMT"] = p.as_slice() else { return None };
    let m = MONTHS.iter().position(|x| x == mon)? as i64 + 1;
    let (d, y): (i64, i64) = (d.parse().ok()?, y.parse().ok()?);
    let hms: Vec<i64> = t.split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let [h, mi, sec] = hms.as_slice() else { return None };
    Some((days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + sec) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_request_head() {
        let raw = b"GET /c/x?format=json HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\nrest";
        let (r, used) = parse_head(raw).unwrap().unwrap();
        assert_eq!(used, raw.len() - 4);
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, "/c/x?format=json");
        assert_eq!(r.header("accept-encoding"), Some("gzip"));
        assert!(r.keep_alive());
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost"), Ok(None));
    }

    #[test]
    fn refuses_bad_and_oversized_heads() {
        assert_eq!(parse_head(b"GET /\r\n\r\n"), Err(HeadError::BadRequest));
        assert_eq!(parse_head(b"GET / HTTP/2.0\r\n\r\n"), Err(HeadError::BadRequest));
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nno colon\r\n\r\n"), Err(HeadError::BadRequest));
        assert_eq!(parse_head(b"G(T / HTTP/1.1\r\n\r\n"), Err(HeadError::BadRequest));
        assert_eq!(parse_head(b"\xff / HTTP/1.1\r\n\r\n"), Err(HeadError::BadRequest));
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_LINE));
        assert_eq!(parse_head(long.as_bytes()), Err(HeadError::UriTooLong));
        let unfinished = "a".repeat(MAX_LINE + 1);
        assert_eq!(parse_head(unfinished.as_bytes()), Err(HeadError::UriTooLong));
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "b".repeat(MAX_HEAD));
        assert_eq!(parse_head(big.as_bytes()), Err(HeadError::HeadersTooLarge));
        assert_eq!(
            parse_head(&big.as_bytes()[..MAX_HEAD + 1]),
            Err(HeadError::HeadersTooLarge),
            "before the end arrives"
        );
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X{i}: v\r\n")).collect();
        assert_eq!(parse_head(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()), Err(HeadError::HeadersTooLarge));
    }

    #[test]
    fn bodies_and_close_end_the_connection() {
        let r = |h: &str| parse_head(format!("GET / HTTP/1.1\r\n{h}\r\n\r\n").as_bytes()).unwrap().unwrap().0;
        assert!(!r("Connection: close").keep_alive());
        assert!(!r("Content-Length: 5").keep_alive());
        assert!(!r("Transfer-Encoding: chunked").keep_alive());
        assert!(r("Content-Length: 0").keep_alive());
    }

    #[test]
    fn http_dates_round_trip() {
        assert_eq!(http_date(784_111_777_000), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        for ms in [0, 784_111_777_000, 1_763_888_400_000, 951_782_400_000] {
            assert_eq!(parse_http_date(&http_date(ms)), Some(ms));
        }
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
