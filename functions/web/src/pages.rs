//! Pure rendering: a page model (see `model`) → HTML. Every chat-derived string is escaped
//! here ([`esc`], [`user_link`]); links point only to our own paths.

use crate::html::{channel_href, duration, esc, figures, num, page, section, table, user_link, when};
use crate::svg::{bar_chart, line_chart, Bar, BarChart, LineChart, Series, Titles};
use serde_json::Value;

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn n(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn rows(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn channel_link(ch: &str) -> String {
    format!("<a href=\"{}\">{}</a>", esc(&channel_href(ch)), esc(ch))
}

fn playing(v: &Value) -> String {
    if v.is_null() {
        return "<span class=\"muted\">–</span>".into();
    }
    esc(s(&v["media_title"]))
}

/// `/`.
pub fn home(m: &Value) -> String {
    let table_rows: Vec<Vec<String>> = rows(&m["channels"])
        .iter()
        .map(|c| {
            let ch = s(&c["channel"]);
            let top = &c["top_talker"];
            let top = if top.is_null() {
                "–".to_string()
            } else {
                format!("{} ({})", user_link(ch, s(&top["username"])), num(n(&top["count"])))
            };
            vec![
                channel_link(ch),
                num(n(&c["present"])),
                num(n(&c["messages_today"])),
                num(n(&c["messages_7d"])),
                playing(&c["now_playing"]),
                top,
            ]
        })
        .collect();
    let head = ["Channel", "Present now", "Messages today", "Last 7 days", "Now playing", "Top talker"];
    let body = format!(
        "<h1>Channel statistics</h1><p class=\"sub\">{} · live figures, days are UTC</p>\n{}",
        esc(s(&m["domain"])),
        section("channels", "Channels", &table("channels-table", "Followed channels", &head, &table_rows))
    );
    page("Channels", &[], &body, s(&m["generated_at"]))
}

fn hour_class(h: usize) -> &'static str {
    ["b0", "b1", "b2", "b3"][(h / 6).min(3)]
}

/// Hour-of-day bars (UTC) with their table.
fn hours_block(id: &str, hours: &Value, what: &str) -> String {
    let bars: Vec<Bar> = rows(hours)
        .iter()
        .enumerate()
        .map(|(h, v)| Bar {
            label: format!("{h}"),
            value: n(&v["messages"]),
            title: format!("{h:02}:00–{:02}:00 UTC: {} messages", (h + 1) % 24, n(&v["messages"])),
            class: hour_class(h),
        })
        .collect();
    let chart = bar_chart(&BarChart {
        titles: Titles {
            id,
            title: &format!("Messages by hour of day{what} (UTC)"),
            x_title: "hour of day (UTC)",
            y_title: "messages",
        },
        bars: &bars,
        tick_every: 3,
    });
    let table_rows: Vec<Vec<String>> =
        bars.iter().enumerate().map(|(h, b)| vec![format!("{h:02}:00"), num(b.value)]).collect();
    format!(
        "{chart}<details><summary>Numbers</summary>{}</details>",
        table(&format!("{id}-table"), "Messages by hour of day (UTC)", &["Hour (UTC)", "Messages"], &table_rows)
    )
}

fn daily_block(daily: &Value) -> String {
    let days = rows(daily);
    let bars: Vec<Bar> = days
        .iter()
        .map(|d| Bar {
            label: s(&d["day"]).get(5..).unwrap_or("").to_string(),
            value: n(&d["messages"]),
            title: format!("{}: {} messages", s(&d["day"]), n(&d["messages"])),
            class: "b0",
        })
        .collect();
    let chart = bar_chart(&BarChart {
        titles: Titles {
            id: "daily",
            title: "Messages per day, last 30 days (UTC)",
            x_title: "day (UTC)",
            y_title: "messages",
        },
        bars: &bars,
        tick_every: 5,
    });
    let table_rows: Vec<Vec<String>> =
        days.iter().map(|d| vec![esc(s(&d["day"])), num(n(&d["messages"])), num(n(&d["kudos"]))]).collect();
    format!(
        "{chart}<details><summary>Numbers</summary>{}</details>",
        table("daily-table", "Messages per day (UTC)", &["Day", "Messages", "Kudos"], &table_rows)
    )
}

/// Present vs chatting over the slots of `population.day` or `.week`; the axis is labelled
/// at every `tick_ms` boundary with the slot's text `label` (byte range of its timestamp).
fn population_block(id: &str, slots: &Value, title: &str, label: (usize, usize), tick_ms: i64) -> String {
    let slots = rows(slots);
    let labels: Vec<String> = slots.iter().map(|p| format!("{} UTC", s(&p["slot"]).get(5..16).unwrap_or(""))).collect();
    let ticks: Vec<String> = slots
        .iter()
        .map(|p| {
            let stamp = s(&p["slot"]);
            let aligned = shared::wire::parse_timestamp_ms(stamp).is_some_and(|ms| ms.rem_euclid(tick_ms) == 0);
            if aligned {
                stamp.get(label.0..label.1).unwrap_or("").to_string()
            } else {
                String::new()
            }
        })
        .collect();
    let series = |name: &str, key: &str, class| Series {
        name: name.into(),
        class,
        values: slots.iter().map(|p| p[key].as_f64()).collect(),
    };
    let all = [series("present", "present", "s1"), series("chatting", "chatting", "s2")];
    let chart = line_chart(&LineChart {
        titles: Titles { id, title, x_title: "time (UTC)", y_title: "users" },
        labels: &labels,
        ticks: &ticks,
        series: &all,
    });
    let fmt = |v: &Value| v.as_f64().map(|f| format!("{f}")).unwrap_or_else(|| "–".into());
    let table_rows: Vec<Vec<String>> = slots
        .iter()
        .zip(&labels)
        .filter(|(p, _)| !p["present"].is_null())
        .map(|(p, l)| vec![esc(l), fmt(&p["present"]), fmt(&p["chatting"])])
        .collect();
    format!(
        "<h3>{}</h3>{chart}<p class=\"legend\"><span class=\"k1\"></span>present<span class=\"k2\"></span>chatting (not AFK)</p>\
         <details><summary>Numbers</summary>{}</details>",
        esc(title),
        table(&format!("{id}-table"), title, &["Time", "Present", "Chatting"], &table_rows)
    )
}

/// The share as text and a bar scaled to the top chatter's share (`top`), so the bars
/// compare the chatters with each other.
fn share_bar(percent: f64, top: f64) -> String {
    let width = if top > 0.0 { (percent / top * 100.0).clamp(0.0, 100.0) } else { 0.0 };
    format!(
        "{percent:.1}%<svg class=\"sharebar\" viewBox=\"0 0 100 8\" width=\"60\" height=\"8\" aria-hidden=\"true\">\
         <rect width=\"{width:.1}\" height=\"8\" rx=\"3\"/></svg>"
    )
}

fn chatters_table(ch: &str, chatters: &Value) -> String {
    let top = rows(chatters).iter().filter_map(|c| c["share_percent"].as_f64()).fold(0.0, f64::max);
    let table_rows: Vec<Vec<String>> = rows(chatters)
        .iter()
        .map(|c| {
            vec![
                num(n(&c["rank"])),
                user_link(ch, s(&c["username"])),
                num(n(&c["messages"])),
                share_bar(c["share_percent"].as_f64().unwrap_or(0.0), top),
                duration(n(&c["total_time_seconds"])),
                duration(n(&c["not_afk_time_seconds"])),
                num(n(&c["kudos"])),
                when(c["last_seen"].as_str()),
            ]
        })
        .collect();
    let head = ["#", "Name", "Messages", "Share", "Time present", "Not AFK", "Kudos", "Last seen"];
    table("chatters-table", "Most active chatters", &head, &table_rows)
}

/// An emote's name, after its image when the model carries a safe one
/// (`emote_images`, present only with `web.show_emote_images`).
fn emote_cell(name: &str, images: &Value) -> String {
    match images[name].as_str().and_then(crate::html::safe_image) {
        Some(url) => format!(
            "<img class=\"emote\" src=\"{}\" alt=\"\" loading=\"lazy\" referrerpolicy=\"no-referrer\">{}",
            esc(url),
            esc(name)
        ),
        None => esc(name),
    }
}

/// A ranked board of users (linked in `link`'s channel) or of emotes (with `images`).
fn board(id: &str, caption: &str, what: &str, rows_: &Value, link: Option<&str>, images: &Value) -> String {
    let key = if link.is_some() { "username" } else { "emote" };
    let table_rows: Vec<Vec<String>> = rows(rows_)
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let name = match link {
                Some(ch) => user_link(ch, s(&r[key])),
                None => emote_cell(s(&r[key]), images),
            };
            vec![num(i as i64 + 1), name, num(n(&r["count"]))]
        })
        .collect();
    table(id, caption, &["#", if link.is_some() { "Name" } else { "Emote" }, what], &table_rows)
}

fn media_tables(m: &Value) -> String {
    let recent: Vec<Vec<String>> = rows(&m["recent_media"])
        .iter()
        .map(|r| {
            vec![
                when(r["timestamp"].as_str()),
                esc(s(&r["media_title"])),
                format!("+{} / −{}", n(&r["upvotes"]), n(&r["downvotes"])),
                num(n(&r["score"])),
            ]
        })
        .collect();
    let best: Vec<Vec<String>> = rows(&m["best_rated"])
        .iter()
        .enumerate()
        .map(|(i, r)| {
            vec![
                num(i as i64 + 1),
                esc(s(&r["media_title"])),
                num(n(&r["score"])),
                num(n(&r["upvotes"])),
                num(n(&r["downvotes"])),
            ]
        })
        .collect();
    format!(
        "<div class=\"grid\">{}{}</div>",
        section(
            "recent-media",
            "Recent media",
            &table("media-table", "Latest media and their votes", &["When", "Title", "Votes", "Score"], &recent)
        ),
        section(
            "best-rated",
            "Best rated",
            &table("best-table", "Media by score", &["#", "Title", "Score", "Up", "Down"], &best)
        ),
    )
}

fn present_list(ch: &str, present: &Value) -> String {
    let users = rows(&present["users"]);
    if users.is_empty() {
        return "<p class=\"empty\">Nobody is here right now.</p>".into();
    }
    let mut out = String::from("<ul class=\"people\" id=\"present-list\">");
    for u in users {
        let afk = u["afk"] == Value::Bool(true);
        let class = if afk { " class=\"afk\"" } else { "" };
        let note = if afk { " <span class=\"muted\">(AFK)</span>" } else { "" };
        out.push_str(&format!("<li{class}>{}{note}</li>", user_link(ch, s(&u["username"]))));
    }
    out.push_str("</ul>");
    let shown = users.len() as i64;
    if n(&present["present"]) > shown {
        out.push_str(&format!("<p class=\"muted\">and {} more</p>", num(n(&present["present"]) - shown)));
    }
    out
}

/// `/c/{channel}`.
pub fn channel(m: &Value) -> String {
    let ch = s(&m["channel"]);
    let sm = &m["summary"];
    let big = figures(&[
        ("messages", "Messages", num(n(&sm["messages"]))),
        ("users-seen", "People seen", num(n(&sm["users_seen"]))),
        ("kudos", "Kudos", num(n(&sm["kudos"]))),
        ("emote-uses", "Emote uses", num(n(&sm["emote_uses"]))),
        ("media-played", "Media played", num(n(&sm["media_played"]))),
        ("present-now", "Present now", num(n(&sm["present"]))),
        ("chatting-now", "Chatting now", num(n(&sm["chatting"]))),
    ]);
    let mut body = format!(
        "<h1>{}</h1><p class=\"sub\">First seen {} · now playing: {}</p>\n{big}",
        esc(ch),
        when(sm["first_seen"].as_str()),
        playing(&sm["now_playing"])
    );
    body.push_str(&section("here", "Who is here now", &present_list(ch, &m["present"])));
    body.push_str(&format!(
        "<div class=\"grid2\">{}{}</div>",
        section("hours", "Most active times", &hours_block("hours-chart", &m["hours"], "")),
        section("days", "Messages per day", &daily_block(&m["daily"])),
    ));
    let pop = &m["population"];
    let pop_html = format!(
        "<div class=\"grid2\"><div>{}</div><div>{}</div></div>",
        population_block("population-day", &pop["day"], "Last 24 hours", (11, 16), 4 * 3_600_000),
        population_block("population-week", &pop["week"], "Last 7 days", (5, 10), 86_400_000),
    );
    body.push_str(&section("population", "Population: present vs chatting", &pop_html));
    body.push_str(&section("chatters", "Most active chatters", &chatters_table(ch, &m["chatters"])));
    body.push_str(&format!(
        "<div class=\"grid\">{}{}</div>",
        section(
            "kudos-board",
            "Kudos",
            &board("kudos-table", "Kudos received", "Kudos", &m["kudos"], Some(ch), &Value::Null)
        ),
        section(
            "emote-board",
            "Emotes",
            &board("emotes-table", "Emote uses", "Uses", &m["emotes"], None, &m["emote_images"])
        ),
    ));
    body.push_str(&media_tables(m));
    page(ch, &[(channel_href(ch), ch.to_string())], &body, s(&m["generated_at"]))
}

/// The user card's tables: per channel (messages, time), kudos, emotes, aliases.
fn user_sections(m: &Value) -> [String; 5] {
    let per_channel: Vec<Vec<String>> =
        rows(&m["all_messages"]).iter().map(|r| vec![channel_link(s(&r["channel"])), num(n(&r["count"]))]).collect();
    let time: Vec<Vec<String>> = rows(&m["all_activity"])
        .iter()
        .map(|r| {
            let (t, a) = (n(&r["total_time_seconds"]), n(&r["not_afk_time_seconds"]));
            vec![channel_link(s(&r["channel"])), duration(t), duration(a)]
        })
        .collect();
    let mut kudos: Vec<Vec<String>> = vec![vec!["<code>++</code>".into(), num(n(&m["kudos_plusplus"]))]];
    kudos.extend(rows(&m["kudos_phrases"]).iter().map(|r| vec![esc(s(&r["phrase"])), num(n(&r["count"]))]));
    let emotes: Vec<Vec<String>> = rows(&m["emotes"])
        .iter()
        .map(|r| vec![emote_cell(s(&r["emote"]), &m["emote_images"]), num(n(&r["count"]))])
        .collect();
    let aliases: Vec<String> = rows(&m["aliases"]).iter().map(|a| format!("<li>{}</li>", esc(s(a)))).collect();
    let aliases = if aliases.is_empty() {
        "<p class=\"empty\">No aliases.</p>".to_string()
    } else {
        format!("<ul class=\"people\" id=\"aliases-list\">{}</ul>", aliases.concat())
    };
    [
        section(
            "channels",
            "Messages per channel",
            &table("messages-table", "Messages per channel", &["Channel", "Messages"], &per_channel),
        ),
        section(
            "time",
            "Time present",
            &table("time-table", "Time present per channel", &["Channel", "Present", "Not AFK"], &time),
        ),
        section(
            "kudos",
            "Kudos received",
            &table("kudos-table", "Kudos received, ++ and each phrase", &["How", "Count"], &kudos),
        ),
        section("emotes", "Favourite emotes", &table("emotes-table", "Emotes used here", &["Emote", "Uses"], &emotes)),
        section("aliases", "Aliases", &aliases),
    ]
}

/// `/c/{channel}/u/{user}`.
pub fn user(m: &Value) -> String {
    let (ch, name) = (s(&m["channel"]), s(&m["username"]));
    let act = &m["activity"];
    let big = figures(&[
        ("messages", "Messages here", num(n(&m["messages"]))),
        ("time-present", "Time present here", duration(n(&act["total_time_seconds"]))),
        ("not-afk", "Not AFK", duration(n(&act["not_afk_time_seconds"]))),
        ("kudos-total", "Kudos received", num(n(&m["kudos_total"]))),
        ("kudos-plusplus", "Kudos by ++", num(n(&m["kudos_plusplus"]))),
    ]);
    let mut body = format!(
        "<h1>{}</h1><p class=\"sub\">in {} · first seen {} · last seen {}</p>\n{big}",
        esc(name),
        channel_link(ch),
        when(m["first_seen"].as_str()),
        when(m["last_seen"].as_str())
    );
    let hours = hours_block("user-hours-chart", &m["hours"], &format!(" of {name}"));
    let [channels, time, kudos, emotes, aliases] = user_sections(m);
    body.push_str(&format!(
        "<div class=\"grid2\">{}<div>{channels}{time}</div></div><div class=\"grid\">{kudos}{emotes}{aliases}</div>",
        section("hours", "Their hours of day", &hours)
    ));
    let crumbs = [(channel_href(ch), ch.to_string()), (crate::html::user_href(ch, name), name.to_string())];
    page(name, &crumbs, &body, s(&m["generated_at"]))
}

/// A short error page (404, 405, 503...): no chat text, only our message.
pub fn error(status: u16, message: &str, generated: &str) -> String {
    let body = format!("<h1>{status}</h1><p>{}</p><p><a href=\"/\">All channels</a></p>", esc(message));
    page(&format!("{status}"), &[], &body, generated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HOSTILE: [&str; 3] = ["<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "javascript:alert(1)"];

    fn hostile_channel_model() -> Value {
        let [a, b, c] = HOSTILE;
        json!({
            "channel": a, "generated_at": "2025-11-23T09:00:00+00:00",
            "summary": {"messages": 3, "first_seen": b, "now_playing": {"media_title": a}},
            "present": {"present": 1, "users": [{"username": b, "afk": true}]},
            "hours": (0..24).map(|h| json!({"hour": h, "messages": h})).collect::<Vec<_>>(),
            "daily": [{"day": b, "messages": 2, "kudos": 0}],
            "population": {"day": [{"slot": a, "present": 1.0, "chatting": 1.0}], "week": []},
            "chatters": [{"rank": 1, "username": c, "messages": 3, "share_percent": 100.0, "last_seen": a}],
            "kudos": [{"username": a, "count": 1}], "emotes": [{"emote": b, "count": 2}],
            "recent_media": [{"timestamp": a, "media_title": b, "upvotes": 1}],
            "best_rated": [{"media_title": c, "score": 1}],
        })
    }

    fn assert_clean(html: &str) {
        // The hostile strings may appear as escaped text; never as markup or as a link target.
        for bad in ["<script", "<img", "href=\"javascript:", "src=\"javascript:"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
    }

    #[test]
    fn hostile_strings_never_reach_the_markup() {
        assert_clean(&channel(&hostile_channel_model()));
        let [a, b, c] = HOSTILE;
        let u = json!({"channel": a, "username": b, "generated_at": c, "aliases": [a, b], "kudos_phrases": [{"phrase": a, "count": 1}],
            "emotes": [{"emote": b, "count": 1}], "all_messages": [{"channel": c, "count": 1}], "all_activity": [{"channel": a}],
            "hours": [], "first_seen": a, "last_seen": b});
        assert_clean(&user(&u));
        let h = json!({"domain": a, "generated_at": b, "channels": [{"channel": c, "top_talker": {"username": a, "count": 1}, "now_playing": {"media_title": b}}]});
        assert_clean(&home(&h));
        assert_clean(&error(404, a, b));
    }

    #[test]
    fn emote_images_only_from_https() {
        let images = json!({"a": "https://i.example/a.png", "b": "javascript:alert(1)", "c": "http://x/c.png",
            "d": "https://x/\"onerror=alert(1)", "e": "https://x/ e.png"});
        assert_eq!(
            emote_cell("a", &images),
            "<img class=\"emote\" src=\"https://i.example/a.png\" alt=\"\" loading=\"lazy\" referrerpolicy=\"no-referrer\">a"
        );
        for name in ["b", "c", "d", "e", "missing"] {
            assert_eq!(emote_cell(name, &images), name, "{name}: no image");
        }
        assert_eq!(emote_cell("a", &Value::Null), "a", "no images unless the model has them");
    }

    #[test]
    fn the_channel_page_has_every_section_and_chart() {
        let html = channel(&hostile_channel_model());
        for id in [
            "hours-chart",
            "daily",
            "population-day",
            "population-week",
            "chatters-table",
            "kudos-table",
            "emotes-table",
            "media-table",
        ] {
            assert!(html.contains(&format!("id=\"{id}")), "{id} missing");
        }
        assert_eq!(html.matches("<rect class=\"bar").count(), 24 + 1);
        assert!(html.contains("<td>23:00</td><td>23</td>"), "the hours table carries the numbers");
    }
}
