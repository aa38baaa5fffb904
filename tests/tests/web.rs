//! The web function end to end: the fixture stream through the whole stack, then every
//! number on `/`, the channel page and user cards — parsed from the HTML and from
//! `?format=json` — equals the query API's answer; the HTTP rules (GET/HEAD only, 404,
//! 400/414/431 for bad requests, ETag/Last-Modified revalidation, gzip) and the web series
//! in `/metrics`; and hostile names, titles, emotes and aliases never reach a page unescaped.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::Duration;
use userstats_tests::checks::micro_data;
use userstats_tests::*;

const CH: &str = "420Grindhouse";
const ALL: [&str; 6] = ["ingest-presence", "ingest-media", "ingest-chat", "query-user", "query-leaderboard", "web"];

/// An HTTP answer.
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Sends raw bytes and reads the answer until the server closes the connection.
fn raw(port: u16, request: &[u8]) -> Answer {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the web port");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(request);
    let mut bytes = Vec::new();
    let _ = s.read_to_end(&mut bytes);
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(bytes.len());
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let body = bytes.get(split + 4..).unwrap_or_default().to_vec();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Answer { status, head, body }
}

fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    raw(port, r.as_bytes())
}

fn get(port: u16, path: &str) -> Answer {
    let a = request(port, "GET", path, &[]);
    assert!(a.status == 200 || a.status == 404, "GET {path}: {}\n{}", a.head, a.text());
    a
}

/// A path segment, percent-encoded.
fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

/// Text content of an HTML fragment.
fn text(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    unescape(out.trim())
}

/// The cells (text) of each body row of `<table id="{id}">`.
fn table(html: &str, id: &str) -> Vec<Vec<String>> {
    let Some(start) = html.find(&format!("<table id=\"{id}\"")) else { return Vec::new() };
    let rest = &html[start..];
    let body = &rest[rest.find("<tbody>").unwrap_or(0)..rest.find("</tbody>").unwrap_or(rest.len())];
    body.split("<tr>")
        .skip(1)
        .map(|row| row.split("<td>").skip(1).map(|c| text(c.split("</td>").next().unwrap_or(""))).collect())
        .collect()
}

/// The text of `<dd id="{id}">`.
fn dd(html: &str, id: &str) -> String {
    let start = html.find(&format!("<dd id=\"{id}\">")).unwrap_or_else(|| panic!("no dd#{id}"));
    text(html[start..].split("</dd>").next().unwrap_or(""))
}

fn int(s: &str) -> i64 {
    s.replace(',', "").parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

/// (name, count) pairs of a `[{key, count}]` answer.
fn pairs(v: &Value, key: &str) -> Vec<(String, i64)> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|r| (r[key].as_str().unwrap_or("").to_string(), r["count"].as_i64().unwrap_or(0)))
        .collect()
}

/// (name, count) of a table's cells `name_at` and `count_at`.
fn cells(rows: &[Vec<String>], name_at: usize, count_at: usize) -> Vec<(String, i64)> {
    rows.iter().map(|r| (r[name_at].clone(), int(&r[count_at]))).collect()
}

async fn stack(tag: &str, extra: &str, functions: &[&str]) -> (Rig, Vec<FunctionProcess>, u16) {
    let port = free_port();
    let rig = Rig::new(tag, &format!("{extra}\n[web]\nport = {port}\ncache_seconds = 30\nshow_emote_images = true\n"));
    let mut procs = Vec::new();
    for f in functions {
        procs.push(rig.start(f).await);
    }
    (rig, procs, port)
}

async fn check_channel(c: &async_nats::Client, port: u16) {
    let summary = micro_data(c, "channel.summary", json!({"channel": CH})).await;
    let page = get(port, &format!("/c/{CH}?format=json")).json();
    for k in ["messages", "users_seen", "kudos", "emote_uses", "media_played", "present", "chatting", "messages_7d"] {
        assert_eq!(page["summary"][k], summary[k], "summary.{k}");
    }
    assert_eq!(summary["messages"], json!(15), "the fixture's 15 messages");
    let chatters = micro_data(c, "channel.chatters", json!({"channel": CH, "limit": 25})).await;
    let strip = |v: &Value| -> Vec<Value> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|r| json!([r["rank"], r["username"], r["messages"], r["kudos"], r["share_percent"]]))
            .collect()
    };
    assert_eq!(strip(&page["chatters"]), strip(&chatters["chatters"]));
    assert_eq!(page["chatters"][0]["username"], json!("bob"));
    assert_eq!(page["chatters"][0]["messages"], json!(8));
    let kudos = micro_data(c, "leaderboard.kudos", json!({"channel": CH, "limit": 10})).await["leaderboard"].clone();
    let emotes = micro_data(c, "leaderboard.emotes", json!({"channel": CH, "limit": 10})).await["leaderboard"].clone();
    let hours = micro_data(c, "channel.hours", json!({"channel": CH})).await["hours"].clone();
    let daily = micro_data(c, "timeseries.daily", json!({"channel": CH, "days": 30})).await["data"].clone();
    assert_eq!((&page["kudos"], &page["emotes"], &page["hours"], &page["daily"]), (&kudos, &emotes, &hours, &daily));
    assert_eq!(pairs(&kudos, "username")[0], ("Alice".to_string(), 3));
    assert_eq!(hours[8]["messages"], json!(15), "every fixture message is from 08:xx UTC");
    let media = micro_data(c, "channel.media_history", json!({"channel": CH, "limit": 15})).await["history"].clone();
    let titles = |v: &Value| v.as_array().into_iter().flatten().map(|m| m["media_title"].clone()).collect::<Vec<_>>();
    assert_eq!(titles(&page["recent_media"]), titles(&media));

    // The same numbers in the HTML.
    let html = get(port, &format!("/c/{CH}")).text();
    for (id, k) in [
        ("messages", "messages"),
        ("users-seen", "users_seen"),
        ("kudos", "kudos"),
        ("emote-uses", "emote_uses"),
        ("media-played", "media_played"),
        ("present-now", "present"),
    ] {
        assert_eq!(int(&dd(&html, id)), summary[k].as_i64().unwrap(), "dd#{id}");
    }
    let rows = table(&html, "chatters-table");
    let want: Vec<(String, i64)> = chatters["chatters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["username"].as_str().unwrap().to_string(), r["messages"].as_i64().unwrap()))
        .collect();
    assert_eq!(cells(&rows, 1, 2), want);
    let kudos_cells: Vec<i64> = rows.iter().map(|r| int(&r[6])).collect();
    assert_eq!(
        kudos_cells,
        chatters["chatters"].as_array().unwrap().iter().map(|r| r["kudos"].as_i64().unwrap()).collect::<Vec<_>>()
    );
    assert_eq!(cells(&table(&html, "kudos-table"), 1, 2), pairs(&kudos, "username"));
    assert_eq!(cells(&table(&html, "emotes-table"), 1, 2), pairs(&emotes, "emote"));
    let by_hour = hour_rows(&hours);
    assert_eq!(cells(&table(&html, "hours-chart-table"), 0, 1), by_hour);
    let per_day: Vec<(String, i64)> = daily
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["day"].as_str().unwrap().to_string(), d["messages"].as_i64().unwrap()))
        .collect();
    assert_eq!(cells(&table(&html, "daily-table"), 0, 1), per_day);
    assert_eq!(html.matches("<rect class=\"bar").count(), 24 + 30, "24 hour bars and 30 day bars");
    // Emote images (web.show_emote_images): the bridge's https URLs, beside the names.
    let images = micro_data(c, "channel.emotes", json!({"channel": CH})).await;
    let kappa = images["emotes"].as_array().unwrap().iter().find(|e| e["emote"] == json!("#kappa")).cloned();
    assert_eq!(kappa, Some(json!({"emote": "#kappa", "image": "https://i.example/kappa.png"})));
    assert_eq!(page["emote_images"]["#kappa"], json!("https://i.example/kappa.png"));
    assert!(html.contains("<img class=\"emote\" src=\"https://i.example/kappa.png\""), "emote image shown");
}

async fn check_user(c: &async_nats::Client, port: u16, name: &str) {
    let stats = micro_data(c, "user.stats", json!({"username": name, "channel": CH})).await;
    let hours = micro_data(c, "user.hours", json!({"username": name, "channel": CH})).await["hours"].clone();
    let page = get(port, &format!("/c/{CH}/u/{}?format=json", seg(name))).json();
    for k in [
        "username",
        "messages",
        "all_messages",
        "kudos_plusplus",
        "kudos_phrases",
        "emotes",
        "aliases",
        "first_seen",
        "last_seen",
    ] {
        assert_eq!(page[k], stats[k], "{name}: {k}");
    }
    assert_eq!(page["hours"], hours);
    let total: i64 = hours.as_array().unwrap().iter().map(|h| h["messages"].as_i64().unwrap()).sum();
    assert_eq!(total, stats["messages"].as_i64().unwrap(), "{name}: hours of day add up to the messages");
    let html = get(port, &format!("/c/{CH}/u/{}", seg(name))).text();
    assert_eq!(int(&dd(&html, "messages")), stats["messages"].as_i64().unwrap());
    let mut kudos = vec![("++".to_string(), stats["kudos_plusplus"].as_i64().unwrap())];
    kudos.extend(pairs(&stats["kudos_phrases"], "phrase"));
    assert_eq!(cells(&table(&html, "kudos-table"), 0, 1), kudos);
    assert_eq!(cells(&table(&html, "emotes-table"), 0, 1), pairs(&stats["emotes"], "emote"));
    assert_eq!(cells(&table(&html, "messages-table"), 0, 1), pairs(&stats["all_messages"], "channel"));
    let by_hour = hour_rows(&hours);
    assert_eq!(cells(&table(&html, "user-hours-chart-table"), 0, 1), by_hour);
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_carry_the_query_api_numbers() {
    let metrics_port = free_port();
    let (rig, _procs, port) = stack("web", &format!("[metrics]\nport = {metrics_port}"), &ALL).await;
    let _metrics = rig.start("metrics").await;
    let client = rig.nats.client().await;
    let events: Vec<(String, String)> = fixtures("events.jsonl").into_iter().map(|f| (f.subject, f.data)).collect();
    publish_all(&client, &events).await.unwrap();
    rig.drained(&events).await;

    // `/`: the channel's live figures.
    let summary = micro_data(&client, "channel.summary", json!({"channel": CH})).await;
    let home = get(port, "/?format=json").json();
    assert_eq!(home["channels"][0]["channel"], json!(CH));
    for k in ["present", "messages_today", "messages_7d", "top_talker", "now_playing"] {
        assert_eq!(home["channels"][0][k], summary[k], "home: {k}");
    }
    let rows = table(&get(port, "/").text(), "channels-table");
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0][0].as_str(), int(&rows[0][1])), (CH, summary["present"].as_i64().unwrap()));
    assert_eq!(int(&rows[0][3]), summary["messages_7d"].as_i64().unwrap());
    assert_eq!(rows[0][5], "bob (8)");

    check_channel(&client, port).await;
    for name in ["Alice", "bob", "Zoë"] {
        check_user(&client, port, name).await;
    }
    assert_eq!(get(port, "/c/420grindhouse?format=json").json()["channel"], json!(CH), "any case finds the channel");

    // Unknown pages.
    for path in ["/c/NoSuchChannel", "/c/420Grindhouse/u/nobody-at-all", "/nope", "/c/420Grindhouse/x"] {
        assert_eq!(get(port, path).status, 404, "{path}");
    }
    assert_eq!(get(port, "/c/NoSuchChannel?format=json").json()["error"], json!("not found"));
    http_rules(port);
    web_series_in_metrics(metrics_port).await;
}

/// Methods, bad requests, revalidation, gzip, headers.
fn http_rules(port: u16) {
    let path = format!("/c/{CH}");
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let a = request(port, method, &path, &[("Content-Length", "0")]);
        assert_eq!((a.status, a.header("allow")), (405, Some("GET, HEAD".to_string())), "{method}");
    }
    assert_eq!(request(port, "GET", "/c/%ZZ", &[]).status, 400);
    assert_eq!(raw(port, format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(5000)).as_bytes()).status, 414);
    assert_eq!(raw(port, format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "b".repeat(10_000)).as_bytes()).status, 431);
    assert_eq!(raw(port, b"HELLO\r\n\r\n").status, 400);
    assert_eq!(raw(port, b"GET / HTTP/1.1\r\nbroken header\r\n\r\n").status, 400);

    let page = get(port, &path);
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").expect("CSP");
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe"), "{csp}");
    assert_eq!(page.header("x-content-type-options").as_deref(), Some("nosniff"));
    assert!(page.header("cache-control").is_some_and(|c| c.contains("max-age=30")));
    let head = request(port, "HEAD", &path, &[]);
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(head.header("content-length"), Some(page.body.len().to_string()));

    let etag = page.header("etag").expect("ETag");
    let again = request(port, "GET", &path, &[("If-None-Match", &etag)]);
    assert_eq!((again.status, again.body.len()), (304, 0));
    let since = page.header("last-modified").expect("Last-Modified");
    assert_eq!(request(port, "GET", &path, &[("If-Modified-Since", &since)]).status, 304);
    assert_eq!(request(port, "GET", &path, &[("If-None-Match", "W/\"other\"")]).status, 200);

    let gz = request(port, "GET", &path, &[("Accept-Encoding", "gzip, br")]);
    assert_eq!(gz.header("content-encoding").as_deref(), Some("gzip"));
    assert!(gz.body.len() < page.body.len() / 2, "gzip shrinks the page");
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz.body[..]).read_to_end(&mut plain).expect("valid gzip");
    assert_eq!(plain, page.body);
    assert_eq!(get(port, "/style.css").header("content-type").as_deref(), Some("text/css; charset=utf-8"));
    assert_eq!(get(port, "/").status, 200, "still serving after the bad requests");
}

async fn web_series_in_metrics(port: u16) {
    let mut text = String::new();
    eventually(Duration::from_secs(15), "web series in /metrics", || {
        text = request(port, "GET", "/metrics", &[]).text();
        let ok = text.contains("userstats_web_requests_total{status=\"200\"}")
            && text.contains("userstats_web_requests_total{status=\"405\"} 4")
            && text.contains("userstats_web_request_duration_seconds_bucket{le=\"+Inf\"}");
        async move { ok }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{text}"));
    // The whole exposition, histogram included, parses with the reference Python parser.
    let python = workspace().join(".tools/venv/bin/python");
    let script = "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\nprint(sum(len(f.samples) for f in p(sys.stdin.read())))";
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tools venv python (scripts/tools installs it)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "not valid Prometheus text: {}", String::from_utf8_lossy(&out.stderr));
}

const HOSTILE: [&str; 3] = ["<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "javascript:alert(1)"];

/// Chat, presence and media of channel `ch` with every hostile string as a name, title,
/// emote and message.
fn hostile_events(ch: &str, t0: i64) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut t = t0;
    let mut ev = |event: &str, mut payload: Value| {
        t += 1000;
        if payload.get("time").is_some() {
            payload["time"] = json!(t);
        }
        out.push((subject(ch, event), envelope(event, payload, ch, t, &format!("{ch}-{event}-{t}"))));
    };
    let mut emotes: Vec<Value> = HOSTILE.iter().map(|h| json!({"name": h, "image": h, "source": h})).collect();
    emotes.push(json!({"name": "evil", "image": "https://i.example/e.png\" onerror=\"alert(1)", "source": "evil"}));
    ev("emoteList", json!(emotes));
    ev("changeMedia", json!({"id": HOSTILE[1], "title": HOSTILE[0], "seconds": 60, "type": "yt", "meta": {}}));
    for h in HOSTILE {
        ev("addUser", json!({"name": h, "rank": 1, "profile": {"image": h, "text": h}, "meta": {"afk": false}}));
    }
    for (i, h) in HOSTILE.iter().enumerate() {
        ev(
            "chatMsg",
            json!({"username": h, "msg": format!("{} {}++ {} movie++", HOSTILE[(i + 1) % 3], HOSTILE[(i + 2) % 3], h), "meta": {}, "time": 0}),
        );
    }
    ev("changeMedia", json!({"id": "x", "title": HOSTILE[2], "seconds": 60, "type": "yt", "meta": {}}));
    out
}

fn assert_safe(what: &str, html: &str) {
    for bad in [
        "<script>alert",
        "<img src=x",
        "onerror=alert(1)>",
        "href=\"javascript",
        "src=\"javascript",
        "href='javascript",
    ] {
        assert!(!html.contains(bad), "{what}: {bad:?} unescaped in\n{html}");
    }
    for href in html.split("href=\"").skip(1).map(|h| h.split('"').next().unwrap_or("")) {
        assert!(href.starts_with('/') || href.starts_with('?'), "{what}: link off site: {href}");
    }
    assert!(!html.contains("<img"), "{what}: no emote image has a safe (https:) URL here");
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_input_never_reaches_a_page_unescaped() {
    let (rig, _procs, port) = stack("web-hostile", "", &ALL).await;
    let client = rig.nats.client().await;
    let evil = HOSTILE[1];
    let t0 = shared::harness::now_ms() - 600_000;
    let mut events = hostile_events(CH, t0);
    events.extend(hostile_events(evil, t0));
    publish_all(&client, &events).await.unwrap();
    rig.drained(&events).await;
    micro_data(&client, "alias.add", json!({"username": HOSTILE[0], "alias": HOSTILE[1]})).await;
    micro_data(&client, "alias.add", json!({"username": HOSTILE[0], "alias": HOSTILE[2]})).await;

    // The hostile data is really there (the test can fail).
    let chatters = micro_data(&client, "channel.chatters", json!({"channel": CH})).await;
    assert_eq!(chatters["chatters"].as_array().map(Vec::len), Some(3), "{chatters}");
    let list = micro_data(&client, "channel.list", json!({})).await;
    assert!(list["channels"].as_array().unwrap().iter().any(|c| c["channel"] == json!(evil)), "{list}");

    let mut paths = vec!["/".to_string()];
    for ch in [CH, evil] {
        paths.push(format!("/c/{}", seg(ch)));
        for u in HOSTILE {
            paths.push(format!("/c/{}/u/{}", seg(ch), seg(u)));
        }
    }
    for path in &paths {
        let a = get(port, path);
        assert_eq!(a.status, 200, "{path}: {}", a.text());
        let html = a.text();
        assert_safe(path, &html);
        let j = get(port, &format!("{path}?format=json"));
        assert_eq!(j.header("content-type").as_deref(), Some("application/json"));
        assert_eq!(j.header("x-content-type-options").as_deref(), Some("nosniff"));
        j.json();
    }
    // Escaped, the strings are on the pages: names, titles, emotes, aliases, channel.
    let page = get(port, &format!("/c/{CH}")).text();
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "hostile name shown escaped");
    assert!(page.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    let card = get(port, &format!("/c/{CH}/u/{}", seg(HOSTILE[0]))).text();
    assert!(card.contains("<li>&quot;&gt;&lt;img src=x onerror=alert(1)&gt;</li>"), "alias shown escaped");
    let home = get(port, "/").text();
    assert!(home.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;</a>"), "hostile channel listed escaped");
}

/// Without the query functions the site says so (503, Retry-After) instead of hanging or
/// crashing, and it answers at most `web.max_concurrent_requests` at once: while a slow
/// query holds the one allowed request, the next is turned away with 503.
#[tokio::test(flavor = "multi_thread")]
async fn unavailable_queries_and_the_request_bound_give_503() {
    let port = free_port();
    let rig = Rig::new("web-bound", &format!("[web]\nport = {port}\ncache_seconds = 0\nmax_concurrent_requests = 1\n"));
    let _web = rig.start("web").await;
    assert_eq!(get(port, "/style.css").status, 200);
    let a = request(port, "GET", "/", &[]);
    assert_eq!((a.status, a.header("retry-after").as_deref()), (503, Some("5")), "{}", a.text());

    // A query function that takes its time: it receives the request and never answers.
    let client = rig.nats.client().await;
    let mut slow = client.subscribe("userstats.query.channel.list").await.unwrap();
    client.flush().await.unwrap();
    let first = std::thread::spawn(move || request(port, "GET", "/", &[]));
    use futures::StreamExt;
    tokio::time::timeout(Duration::from_secs(10), slow.next()).await.expect("the site asked channel.list");
    let second = request(port, "GET", "/style.css", &[]);
    assert_eq!(second.status, 503, "the one request slot is taken: {}", second.text());
    let first = tokio::task::spawn_blocking(move || first.join().unwrap()).await.unwrap();
    assert_eq!(first.status, 503, "no answer from the query API within its timeout");
    assert_eq!(get(port, "/style.css").status, 200, "the slot is free again");
}

/// An hours-of-day answer as the (label, messages) rows its chart's table shows.
fn hour_rows(hours: &Value) -> Vec<(String, i64)> {
    hours
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (format!("{:02}:00", h["hour"].as_u64().unwrap()), h["messages"].as_i64().unwrap()))
        .collect()
}
