//! The site: routes, the page cache, conditional requests, gzip and the security headers.
//!
//! Routes: `/`, `/c/{channel}`, `/c/{channel}/u/{user}` (HTML, or JSON with
//! `?format=json`), `/style.css`, `/favicon.svg`. Only GET and HEAD (`405` otherwise).
//!
//! A rendered page is kept for `web.cache_seconds`; after that the first request starts one
//! rebuild in the background and is served the previous page meanwhile (for at most
//! [`STALE_FOR`] more), so a busy page costs one build per period and requests never
//! queue behind a build. The ETag is a hash of the page's numbers (not of its "generated"
//! time), so a client revalidating an unchanged page gets `304`; `Last-Modified` is when
//! those numbers were first served.

use crate::http::{http_date, parse_http_date, Request, Response};
use crate::source::{Fail, Source};
use crate::stats::HttpStats;
use crate::{html, model, pages};
use flate2::{write::GzEncoder, Compression};
use serde_json::Value;
use shared::config::Config;
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long past its period a page may still be served while its rebuild runs.
pub const STALE_FOR: Duration = Duration::from_secs(30);
/// Pages kept at most (unknown names are cached as 404s too, so this bounds memory).
const CACHE_ENTRIES: usize = 4096;
/// Longest channel or user name looked up (the query API's own limit).
const MAX_NAME: usize = shared::api::MAX_STRING;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Page {
    Home,
    Channel(String),
    User(String, String),
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Page(Page, bool),
    Static(&'static str, &'static str),
    NotFound,
    BadPath,
}

/// Maps a request target to a route (pure).
pub fn route(target: &str) -> Route {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let json = query.split('&').any(|kv| kv == "format=json");
    if !path.starts_with('/') {
        return Route::BadPath;
    }
    let parts: Vec<&str> = path[1..].split('/').collect();
    let decoded: Option<Vec<String>> = parts.iter().map(|p| html::unseg(p)).collect();
    let Some(d) = decoded else { return Route::BadPath };
    let name_ok = |s: &String| !s.trim().is_empty() && s.chars().count() <= MAX_NAME;
    match (parts.as_slice(), d.as_slice()) {
        ([""], _) => Route::Page(Page::Home, json),
        (["style.css"], _) => Route::Static(html::CSS, "text/css; charset=utf-8"),
        (["favicon.svg"], _) => Route::Static(html::FAVICON, "image/svg+xml"),
        (["c", _], [_, ch]) if name_ok(ch) => Route::Page(Page::Channel(ch.clone()), json),
        (["c", _, "u", _], [_, ch, _, u]) if name_ok(ch) && name_ok(u) => {
            Route::Page(Page::User(ch.clone(), u.clone()), json)
        }
        _ => Route::NotFound,
    }
}

/// A built page (one format), with its validators and gzipped body.
pub struct Rendered {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Arc<[u8]>,
    pub gzip: Option<Arc<[u8]>>,
    pub etag: String,
    pub last_modified_ms: i64,
}

struct Entry {
    page: Arc<Rendered>,
    built: Instant,
    refreshing: AtomicBool,
}

pub struct Site {
    pub source: Source,
    pub config: Config,
    pub stats: HttpStats,
    cache: Mutex<HashMap<(Page, bool), Arc<Entry>>>,
    csp: String,
}

/// FNV-1a, 64 bit: a stable content hash for ETags.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3))
}

fn gzip(body: &[u8]) -> Option<Arc<[u8]>> {
    if body.len() < 512 {
        return None;
    }
    let mut e = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
    e.write_all(body).ok()?;
    e.finish().ok().map(Arc::from)
}

/// True when `Accept-Encoding` accepts gzip (not with `q=0`).
pub fn accepts_gzip(header: Option<&str>) -> bool {
    header.unwrap_or("").split(',').any(|part| {
        let mut it = part.split(';');
        let coding = it.next().unwrap_or("").trim();
        let q0 = it.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q0
    })
}

impl Site {
    pub fn new(source: Source, config: Config) -> Site {
        let img = if config.web.show_emote_images { "'self' https:" } else { "'self'" };
        let csp = format!(
            "default-src 'none'; style-src 'self'; img-src {img}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        );
        Site { source, config, stats: HttpStats::default(), cache: Mutex::default(), csp }
    }

    fn ttl(&self) -> Duration {
        Duration::from_secs(self.config.web.cache_seconds)
    }

    /// Builds a page: its model from the query API, then HTML or JSON.
    async fn build(&self, page: &Page, json: bool) -> Result<Rendered, Fail> {
        let model = match page {
            Page::Home => Some(model::home(&self.source, &self.config).await?),
            Page::Channel(c) => model::channel(&self.source, c, self.config.web.show_emote_images).await?,
            Page::User(c, u) => model::user(&self.source, c, u, self.config.web.show_emote_images).await?,
        };
        let now = shared::harness::now_ms();
        let (status, body, hash) = match (&model, json) {
            (None, _) => {
                let what =
                    if matches!(page, Page::User(..)) { "No such user in this channel." } else { "No such channel." };
                let body = if json {
                    serde_json::json!({"error": "not found", "message": what}).to_string()
                } else {
                    pages::error(404, what, &shared::wire::format_timestamp(now))
                };
                (404, body, fnv(what.as_bytes()))
            }
            (Some(m), _) => {
                let mut stable = m.clone();
                if let Value::Object(o) = &mut stable {
                    o.remove("generated_at");
                }
                let hash = fnv(stable.to_string().as_bytes());
                let body = match (json, page) {
                    (true, _) => format!("{m}\n"),
                    (false, Page::Home) => pages::home(m),
                    (false, Page::Channel(_)) => pages::channel(m),
                    (false, Page::User(..)) => pages::user(m),
                };
                (200, body, hash)
            }
        };
        let content_type = if json { "application/json" } else { "text/html; charset=utf-8" };
        let body: Arc<[u8]> = Arc::from(body.into_bytes());
        let etag = format!("W/\"{hash:016x}{}\"", if json { "j" } else { "h" });
        Ok(Rendered { status, content_type, gzip: gzip(&body), body, etag, last_modified_ms: now })
    }

    /// Builds and caches a page, keeping `Last-Modified` when the numbers did not change.
    async fn rebuild(&self, key: &(Page, bool)) -> Result<Arc<Rendered>, Fail> {
        let mut page = self.build(&key.0, key.1).await.inspect_err(|e| {
            self.stats.builds_failed.fetch_add(1, Relaxed);
            tracing::warn!(error = ?e, page = ?key.0, "cannot build page: is query-leaderboard/query-user running?");
        })?;
        let Ok(mut cache) = self.cache.lock() else { return Ok(Arc::new(page)) };
        if let Some(old) = cache.get(key).filter(|e| e.page.etag == page.etag) {
            page.last_modified_ms = old.page.last_modified_ms;
        }
        let page = Arc::new(page);
        if cache.len() >= CACHE_ENTRIES {
            let ttl = self.ttl() + STALE_FOR;
            cache.retain(|_, e| e.built.elapsed() < ttl);
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(
            key.clone(),
            Arc::new(Entry { page: page.clone(), built: Instant::now(), refreshing: false.into() }),
        );
        Ok(page)
    }

    /// The page from the cache (fresh, or stale while one rebuild runs), else built now.
    async fn page(self: &Arc<Self>, key: (Page, bool)) -> Result<Arc<Rendered>, Fail> {
        let ttl = self.ttl();
        let cached = self.cache.lock().ok().and_then(|c| c.get(&key).cloned());
        if let Some(e) = cached.filter(|_| !ttl.is_zero()) {
            let age = e.built.elapsed();
            if age < ttl {
                self.stats.cache_hits.fetch_add(1, Relaxed);
                return Ok(e.page.clone());
            }
            if age < ttl + STALE_FOR {
                if !e.refreshing.swap(true, Relaxed) {
                    let (site, k, entry) = (self.clone(), key.clone(), e.clone());
                    tokio::spawn(async move {
                        if site.rebuild(&k).await.is_err() {
                            entry.refreshing.store(false, Relaxed);
                        }
                    });
                }
                self.stats.cache_hits.fetch_add(1, Relaxed);
                return Ok(e.page.clone());
            }
        }
        self.stats.cache_misses.fetch_add(1, Relaxed);
        self.rebuild(&key).await
    }

    /// Headers every answer carries.
    fn base_headers(&self, content_type: &str) -> Vec<(&'static str, String)> {
        vec![
            ("Content-Type", content_type.to_string()),
            ("Content-Security-Policy", self.csp.clone()),
            ("X-Content-Type-Options", "nosniff".into()),
            ("Referrer-Policy", "no-referrer".into()),
            ("X-Frame-Options", "DENY".into()),
        ]
    }

    /// A plain error answer (HTML, or JSON for `?format=json`), never cached by clients.
    pub fn error(&self, status: u16, message: &str, json: bool) -> Response {
        let (body, ct) = if json {
            (serde_json::json!({"error": message}).to_string(), "application/json")
        } else {
            (
                pages::error(status, message, &shared::wire::format_timestamp(shared::harness::now_ms())),
                "text/html; charset=utf-8",
            )
        };
        let mut headers = self.base_headers(ct);
        headers.push(("Cache-Control", "no-store".into()));
        if status == 405 {
            headers.push(("Allow", "GET, HEAD".into()));
        }
        if status == 503 {
            headers.push(("Retry-After", "5".into()));
        }
        Response { status, headers, body: Arc::from(body.into_bytes()) }
    }

    /// Answers one request (GET and HEAD only).
    pub async fn handle(self: &Arc<Self>, req: &Request) -> Response {
        let json = req.target.contains("format=json");
        if req.method != "GET" && req.method != "HEAD" {
            return self.error(405, "Only GET and HEAD are supported.", json);
        }
        let (key, rendered) = match route(&req.target) {
            Route::BadPath => return self.error(400, "Bad path.", json),
            Route::NotFound => return self.error(404, "No such page.", json),
            Route::Static(text, ct) => {
                let mut headers = self.base_headers(ct);
                headers.push(("Cache-Control", "public, max-age=3600".into()));
                return Response { status: 200, headers, body: Arc::from(text.as_bytes()) };
            }
            Route::Page(page, json) => {
                let key = (page, json);
                let r = self.page(key.clone()).await;
                (key, r)
            }
        };
        match rendered {
            Ok(r) => self.respond(req, &r),
            Err(Fail::Unavailable(_)) => {
                self.error(503, "Statistics are unavailable right now; try again shortly.", key.1)
            }
            Err(Fail::Refused(_)) => self.error(404, "No such page.", key.1),
        }
    }

    /// A built page as an answer: `304` when the client's copy is current, gzip if asked.
    fn respond(&self, req: &Request, r: &Rendered) -> Response {
        let mut headers = self.base_headers(r.content_type);
        headers.push(("Cache-Control", format!("public, max-age={}", self.config.web.cache_seconds)));
        headers.push(("ETag", r.etag.clone()));
        headers.push(("Last-Modified", http_date(r.last_modified_ms)));
        headers.push(("Vary", "Accept-Encoding".into()));
        let not_modified = match (req.header("if-none-match"), req.header("if-modified-since")) {
            (Some(tags), _) => tags.split(',').any(|t| t.trim() == r.etag || t.trim() == "*"),
            (None, Some(since)) => parse_http_date(since).is_some_and(|s| s >= r.last_modified_ms / 1000 * 1000),
            (None, None) => false,
        };
        if not_modified && r.status == 200 {
            return Response { status: 304, headers, body: Arc::from(&b""[..]) };
        }
        let body = match (&r.gzip, accepts_gzip(req.header("accept-encoding"))) {
            (Some(gz), true) => {
                headers.push(("Content-Encoding", "gzip".into()));
                gz.clone()
            }
            _ => r.body.clone(),
        };
        Response { status: r.status, headers, body }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/"), Route::Page(Page::Home, false));
        assert_eq!(route("/?format=json"), Route::Page(Page::Home, true));
        assert_eq!(route("/c/420Grindhouse"), Route::Page(Page::Channel("420Grindhouse".into()), false));
        assert_eq!(route("/c/a%20b/u/Zo%C3%AB?format=json"), Route::Page(Page::User("a b".into(), "Zoë".into()), true));
        assert_eq!(route("/c/x/u/a%2Fb"), Route::Page(Page::User("x".into(), "a/b".into()), false));
        assert!(matches!(route("/style.css"), Route::Static(_, "text/css; charset=utf-8")));
        assert_eq!(route("/c/%ZZ"), Route::BadPath);
        assert_eq!(route("/c/%00"), Route::BadPath);
        assert_eq!(route("http://evil/"), Route::BadPath);
        assert_eq!(route("/c/"), Route::NotFound);
        assert_eq!(route("/c/x/"), Route::NotFound);
        assert_eq!(route("/c/x/u"), Route::NotFound);
        assert_eq!(route("/nope"), Route::NotFound);
        assert_eq!(route(&format!("/c/{}", "a".repeat(300))), Route::NotFound);
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(Some("gzip, deflate, br")));
        assert!(accepts_gzip(Some("br;q=1.0, gzip;q=0.8")));
        assert!(accepts_gzip(Some("*")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn etag_hash_is_stable() {
        assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv(b"a"), fnv(b"a"));
        assert_ne!(fnv(b"a"), fnv(b"b"));
    }
}
