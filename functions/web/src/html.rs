//! Pure HTML helpers: escaping, our own links, number and time formatting, the page frame
//! and the stylesheet. Every string that came from chat (names, titles, emotes, channels,
//! aliases) goes through [`esc`] before it reaches a page, in text and in attributes alike
//! (attributes are always double-quoted).

/// Escapes text for HTML text and double- or single-quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters have no business on a page (NUL breaks parsers).
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes one path segment: everything but RFC 3986 unreserved characters, so a
/// name can never leave its segment (`/`, `?`, `#`, `..` tricks) or become a scheme.
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    // "." and ".." are path navigation, not names.
    if out == "." || out == ".." {
        return out.replace('.', "%2E");
    }
    out
}

/// Decodes one percent-encoded path segment; `None` for bad escapes, invalid UTF-8 or
/// control characters.
pub fn unseg(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    let text = String::from_utf8(out).ok()?;
    (!text.chars().any(char::is_control)).then_some(text)
}

/// An emote image URL fit for `<img src>`: `https:` only, short, and without whitespace,
/// quotes, angle brackets or backslashes (escaping would cover those; refusing is simpler
/// to trust).
pub fn safe_image(url: &str) -> Option<&str> {
    let ok = url.starts_with("https://")
        && url.len() > "https://".len()
        && url.len() <= 2048
        && !url.chars().any(|c| c.is_whitespace() || c.is_control() || "\"'<>\\`".contains(c));
    ok.then_some(url)
}

/// Link to a channel page (our own path only).
pub fn channel_href(channel: &str) -> String {
    format!("/c/{}", seg(channel))
}

/// Link to a user's card in a channel (our own path only).
pub fn user_href(channel: &str, user: &str) -> String {
    format!("/c/{}/u/{}", seg(channel), seg(user))
}

/// `<a href="/c/..">name</a>`, escaped.
pub fn user_link(channel: &str, user: &str) -> String {
    format!("<a href=\"{}\">{}</a>", esc(&user_href(channel, user)), esc(user))
}

/// 1234567 → "1,234,567".
pub fn num(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// Seconds → "3 d 4 h", "2 h 5 min", "12 min", "40 s".
pub fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// An API timestamp (`2025-11-23T08:17:00+00:00`) → "2025-11-23 08:17 UTC"; "–" if absent.
pub fn when(ts: Option<&str>) -> String {
    match ts {
        Some(t) if t.len() >= 16 => {
            format!("{} {} UTC", esc(t.get(..10).unwrap_or(t)), esc(t.get(11..16).unwrap_or("")))
        }
        Some(t) => esc(t),
        None => "–".into(),
    }
}

/// The frame of every page: head (CSP-friendly: one stylesheet, no script), header, main.
pub fn page(title: &str, crumbs: &[(String, String)], body: &str, generated: &str) -> String {
    let mut nav = String::from("<a href=\"/\">Channels</a>");
    for (href, label) in crumbs {
        nav.push_str(&format!(" <span aria-hidden=\"true\">›</span> <a href=\"{}\">{}</a>", esc(href), esc(label)));
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"color-scheme\" content=\"light dark\">\
<title>{title} · userstats</title>\
<link rel=\"stylesheet\" href=\"/style.css\"><link rel=\"icon\" href=\"/favicon.svg\" type=\"image/svg+xml\">\
</head><body><header><nav aria-label=\"breadcrumb\">{nav}</nav></header><main>\n{body}\n</main>\
<footer>Generated {generated} · all times UTC · <a href=\"?format=json\">JSON</a></footer></body></html>\n",
        title = esc(title),
        generated = when(Some(generated)),
    )
}

/// A section with a heading.
pub fn section(id: &str, heading: &str, inner: &str) -> String {
    format!("<section id=\"{id}\" aria-labelledby=\"{id}-h\"><h2 id=\"{id}-h\">{heading}</h2>\n{inner}</section>\n")
}

/// A table: header cells and rows of already-escaped cells; `class` on numeric columns.
pub fn table(id: &str, caption: &str, head: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\" id=\"{id}\">{caption}: nothing yet.</p>\n");
    }
    let mut out = format!("<div class=\"scroll\"><table id=\"{id}\"><caption>{caption}</caption><thead><tr>");
    for h in head {
        out.push_str(&format!("<th scope=\"col\">{h}</th>"));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            out.push_str(&format!("<td>{cell}</td>"));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>\n");
    out
}

/// "Big numbers": a definition list with a stable id per figure.
pub fn figures(items: &[(&str, &str, String)]) -> String {
    let mut out = String::from("<dl class=\"figures\">");
    for (id, label, value) in items {
        out.push_str(&format!("<div><dt>{label}</dt><dd id=\"{id}\">{value}</dd></div>"));
    }
    out.push_str("</dl>\n");
    out
}

/// The one stylesheet: system fonts, light and dark by `prefers-color-scheme`, charts that
/// scale with the page from a 390 px phone to a wide screen.
pub const CSS: &str = r#":root{--bg:#fbfbfd;--fg:#1d1f24;--muted:#5d6470;--card:#fff;--line:#d9dce3;--accent:#2f6fdb;
--b0:#6b7fd7;--b1:#2f9e8f;--b2:#e0a526;--b3:#d9534f;--peak:#1d1f24;--s1:#2f6fdb;--s2:#e0761f}
@media (prefers-color-scheme:dark){:root{--bg:#14161b;--fg:#e6e8ee;--muted:#a0a7b4;--card:#1c1f26;--line:#353a45;
--accent:#7aa7ff;--b0:#8d9cf0;--b1:#46c2b0;--b2:#f0bf4c;--b3:#f07b77;--peak:#fff;--s1:#7aa7ff;--s2:#ffa45c}}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header,main,footer{max-width:1200px;margin:0 auto;padding:0 16px}header{padding-top:12px}footer{color:var(--muted);font-size:.85rem;padding-bottom:24px}
a{color:var(--accent)}h1{font-size:1.6rem;margin:.4em 0 .2em;overflow-wrap:anywhere}h2{font-size:1.15rem;margin:0 0 .5em}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;margin:14px 0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:0 14px}
.grid2{display:grid;grid-template-columns:1fr;gap:0 14px}@media (min-width:900px){.grid2{grid-template-columns:1fr 1fr}.grid2 .chart text{font-size:19px}}
.grid2>*{min-width:0}h3{font-size:1rem;margin:.2em 0}
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(130px,1fr));gap:10px;margin:0}
.figures div{border:1px solid var(--line);border-radius:8px;padding:8px 10px}.figures dt{color:var(--muted);font-size:.8rem}
.figures dd{margin:0;font-size:1.35rem;font-weight:600}.muted,.empty{color:var(--muted)}.sub{color:var(--muted);margin:0 0 .6em}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.92rem}caption{text-align:left;color:var(--muted);font-size:.8rem;padding-bottom:4px}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top;overflow-wrap:break-word}
td:not(:nth-child(2)){white-space:nowrap}th{font-size:.8rem;color:var(--muted);font-weight:600}
.sharebar{margin-left:6px;vertical-align:middle}.sharebar rect{fill:var(--accent)}
ul.people{list-style:none;padding:0;margin:0;display:flex;flex-wrap:wrap;gap:6px}ul.people li{border:1px solid var(--line);border-radius:14px;padding:1px 10px;font-size:.9rem}
ul.people li.afk{color:var(--muted);border-style:dashed}
.chart{width:100%;height:auto;display:block}.chart text{fill:var(--muted);font-size:16px}.chart .axis{stroke:var(--line)}
.chart .grid{stroke:var(--line);stroke-dasharray:2 4}.chart .b0{fill:var(--b0)}.chart .b1{fill:var(--b1)}.chart .b2{fill:var(--b2)}.chart .b3{fill:var(--b3)}
.chart .peak{stroke:var(--peak);stroke-width:1.5}.chart .s1{stroke:var(--s1);fill:none;stroke-width:2}.chart .s2{stroke:var(--s2);fill:none;stroke-width:2}
.chart circle.s1{fill:var(--s1);stroke:none}.chart circle.s2{fill:var(--s2);stroke:none}.chart .nodata{font-size:16px}
.legend{font-size:.85rem;color:var(--muted)}.legend .k1,.legend .k2{display:inline-block;width:12px;height:3px;vertical-align:middle;margin:0 4px 0 10px}
.legend .k1{background:var(--s1)}.legend .k2{background:var(--s2)}details{margin-top:6px}summary{cursor:pointer;color:var(--muted);font-size:.85rem}
img.emote{height:22px;vertical-align:middle;margin-right:4px}
@media (max-width:600px){table{font-size:.85rem}th,td{padding:4px 5px}
#chatters-table th:nth-child(6),#chatters-table td:nth-child(6),#chatters-table th:nth-child(8),#chatters-table td:nth-child(8),
#media-table th:nth-child(3),#media-table td:nth-child(3){display:none}.sharebar{display:none}
#channels-table thead{display:none}#channels-table tr{display:block;padding:6px 0;border-bottom:1px solid var(--line)}
#channels-table td{display:block;border:0;padding:1px 4px;white-space:normal}#channels-table td:first-child{font-weight:600}
#channels-table td:nth-child(2)::before{content:"Present now: "}#channels-table td:nth-child(3)::before{content:"Messages today: "}
#channels-table td:nth-child(4)::before{content:"Last 7 days: "}#channels-table td:nth-child(5)::before{content:"Now playing: "}
#channels-table td:nth-child(6)::before{content:"Top talker: "}#channels-table td::before{color:var(--muted)}.chart text{font-size:22px}.chart .nodata{font-size:26px}h1{font-size:1.3rem}section{padding:10px}header,main,footer{padding:0 10px}}
"#;

/// The site's icon (a tiny bar chart), served as `/favicon.svg`.
pub const FAVICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\"><rect x=\"1\" y=\"8\" width=\"4\" height=\"7\" fill=\"#2f6fdb\"/><rect x=\"6\" y=\"3\" width=\"4\" height=\"12\" fill=\"#2f9e8f\"/><rect x=\"11\" y=\"6\" width=\"4\" height=\"9\" fill=\"#e0a526\"/></svg>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esc_neutralises_markup_and_quotes() {
        assert_eq!(esc("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
        assert_eq!(esc("\"><img src=x onerror=alert(1)>"), "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;");
        assert_eq!(esc("a'b&c"), "a&#39;b&amp;c");
        assert_eq!(esc("nul\0"), "nul\u{FFFD}");
        assert_eq!(esc("Zoë 🎬"), "Zoë 🎬");
    }

    #[test]
    fn segments_stay_segments() {
        assert_eq!(seg("a/b?c#d"), "a%2Fb%3Fc%23d");
        assert_eq!(seg(".."), "%2E%2E");
        assert_eq!(seg("javascript:alert(1)"), "javascript%3Aalert%281%29");
        assert_eq!(user_href("420Grindhouse", "Zoë"), "/c/420Grindhouse/u/Zo%C3%AB");
        for s in ["Zoë", "a b", "<x>", "%41", "..", "/"] {
            assert_eq!(unseg(&seg(s)).as_deref(), Some(s));
        }
        assert_eq!(unseg("%ZZ"), None);
        assert_eq!(unseg("%C3"), None);
        assert_eq!(unseg("%0A"), None);
        assert_eq!(unseg("%"), None);
    }

    #[test]
    fn a_hostile_name_is_text_in_a_link() {
        let a = user_link("c", "\"><img src=x onerror=alert(1)>");
        assert!(!a.contains("<img"), "{a}");
        assert!(a.starts_with("<a href=\"/c/c/u/%22%3E%3Cimg"), "{a}");
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(num(0), "0");
        assert_eq!(num(1234), "1,234");
        assert_eq!(num(-1234567), "-1,234,567");
        assert_eq!(duration(42), "42 s");
        assert_eq!(duration(3 * 3600 + 5 * 60), "3 h 5 min");
        assert_eq!(duration(2 * 86_400 + 3600), "2 d 1 h");
        assert_eq!(when(Some("2025-11-23T08:17:00+00:00")), "2025-11-23 08:17 UTC");
        assert_eq!(when(None), "–");
        assert!(when(Some("aëëëëëëëëëëëëëëë")).ends_with("UTC"), "no panic inside a character");
    }
}
