//! Inline SVG charts drawn on the server: pure functions from numbers to markup.
//!
//! A chart has a fixed viewBox and scales with its container (`width:100%`), so it fits a
//! 390 px phone and a 1440 px screen; the stylesheet enlarges the text on narrow screens
//! and colours everything through classes (light and dark schemes; no inline style, which
//! the Content-Security-Policy forbids). Each bar or point carries a `<title>` (hover), the
//! chart a title and description for screen readers; the page puts the same numbers in a
//! table next to it. Labels and titles are escaped here: callers pass plain text.

use crate::html::esc;
use std::fmt::Write;

const W: f64 = 640.0;
const H: f64 = 260.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 26.0;
const BOTTOM: f64 = 52.0;

/// One bar: its tick label, value, hover text and colour class (`b0`..`b3`).
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: i64,
    pub title: String,
    pub class: &'static str,
}

/// What names a chart, for every kind of chart: its element id (also of its title and
/// description), its title and its axis titles.
#[derive(Debug, Clone, Copy)]
pub struct Titles<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub x_title: &'a str,
    pub y_title: &'a str,
}

/// A bar chart: `tick_every` labels every n-th bar; the highest bar is marked as the peak.
pub struct BarChart<'a> {
    pub titles: Titles<'a>,
    pub bars: &'a [Bar],
    pub tick_every: usize,
}

/// One line of a line chart: a value per point (`None`: no data there, the line breaks).
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    /// `s1` or `s2`.
    pub class: &'static str,
    pub values: Vec<Option<f64>>,
}

pub struct LineChart<'a> {
    pub titles: Titles<'a>,
    /// One label per point (its hover text).
    pub labels: &'a [String],
    /// One axis label per point; empty: no tick there.
    pub ticks: &'a [String],
    pub series: &'a [Series],
}

/// The top of the value axis: four grid steps of a "nice" size (1, 1.5, 2, 2.5, 3, 4, 5,
/// 6 or 8 × 10ⁿ) reaching at least `v`; 1 for nothing. Those steps keep every axis label
/// at four characters or fewer (`7.5k`, `240`, `0.25`), which a phone can show.
pub fn nice_max(v: f64) -> f64 {
    if !v.is_finite() || v <= 0.0 {
        return 1.0;
    }
    let step = v / 4.0;
    let mag = 10f64.powf(step.log10().floor());
    let nice = [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0].iter().map(|m| m * mag).find(|n| *n >= step - 1e-9);
    4.0 * nice.unwrap_or(10.0 * mag)
}

/// 1500 → "1.5k", 2000000 → "2M": short axis labels.
pub fn compact(v: f64) -> String {
    let (n, suffix) = match v.abs() {
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let text = format!("{n:.2}");
    format!("{}{suffix}", text.trim_end_matches('0').trim_end_matches('.'))
}

/// The start of a chart for values up to `top`: the `<svg>` with its title and `desc`, the
/// frame; `capacity` is the markup's expected size. Also the value at the top of the axis.
fn begin(t: &Titles, desc: &str, top: f64, capacity: usize) -> (String, f64) {
    let mut out = String::with_capacity(capacity);
    open(&mut out, t.id, t.title, desc);
    let max = nice_max(top);
    frame(&mut out, max, t.x_title, t.y_title);
    (out, max)
}

/// The end of a chart: "no data yet" over an `empty` one, the closing tag.
fn end(mut out: String, empty: bool) -> String {
    if empty {
        no_data(&mut out);
    }
    out.push_str("</svg>");
    out
}

fn open(out: &mut String, id: &str, title: &str, desc: &str) {
    let _ = write!(
        out,
        "<svg class=\"chart\" id=\"{id}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc>",
        esc(title),
        esc(desc)
    );
}

/// Axes, horizontal grid lines with value labels, axis titles.
fn frame(out: &mut String, max: f64, x_title: &str, y_title: &str) {
    let bottom = H - BOTTOM;
    for i in 1..=4 {
        let v = max * i as f64 / 4.0;
        let y = bottom - (H - TOP - BOTTOM) * i as f64 / 4.0;
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            compact(v)
        );
    }
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{:.1}\" y2=\"{bottom}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{bottom}\"/>\
         <text x=\"{LEFT}\" y=\"14\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        W - RIGHT,
        esc(y_title),
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 6.0,
        esc(x_title)
    );
}

fn tick(out: &mut String, x: f64, label: &str) {
    if label.is_empty() {
        return;
    }
    let _ =
        write!(out, "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>", H - BOTTOM + 20.0, esc(label));
}

fn no_data(out: &mut String) {
    let _ = write!(
        out,
        "<text class=\"nodata\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no data yet</text>",
        LEFT + (W - LEFT - RIGHT) / 2.0,
        TOP + (H - TOP - BOTTOM) / 2.0
    );
}

/// A bar chart as inline SVG.
pub fn bar_chart(c: &BarChart) -> String {
    let top = c.bars.iter().map(|b| b.value).max().unwrap_or(0);
    let peak = c.bars.iter().position(|b| b.value == top && top > 0);
    let desc = match peak {
        Some(i) => format!("{} bars; highest: {} ({})", c.bars.len(), c.bars[i].label, c.bars[i].value),
        None => format!("{} bars, all zero", c.bars.len()),
    };
    let (mut out, max) = begin(&c.titles, &desc, top as f64, 4096 + c.bars.len() * 160);
    let band = (W - LEFT - RIGHT) / c.bars.len().max(1) as f64;
    let plot = H - TOP - BOTTOM;
    for (i, b) in c.bars.iter().enumerate() {
        let h = (b.value.max(0) as f64 / max * plot).max(0.0);
        let x = LEFT + band * i as f64 + band * 0.11;
        let class = if Some(i) == peak { format!("bar {} peak", b.class) } else { format!("bar {}", b.class) };
        let _ = write!(
            out,
            "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{}</title></rect>",
            H - BOTTOM - h,
            band * 0.78,
            esc(&b.title)
        );
        if c.tick_every > 0 && i.is_multiple_of(c.tick_every) {
            tick(&mut out, LEFT + band * (i as f64 + 0.5), &b.label);
        }
    }
    end(out, peak.is_none())
}

/// A line chart (one polyline per series, a titled point per value) as inline SVG.
pub fn line_chart(c: &LineChart) -> String {
    let n = c.labels.len();
    let top = c.series.iter().flat_map(|s| s.values.iter().flatten()).fold(0.0f64, |a, b| a.max(*b));
    let points = c.series.iter().flat_map(|s| s.values.iter().flatten()).count();
    let desc = format!("{n} points; highest value {}", compact(top));
    let (mut out, max) = begin(&c.titles, &desc, top, 4096 + points * 140);
    let step = (W - LEFT - RIGHT) / (n.max(2) - 1) as f64;
    let plot = H - TOP - BOTTOM;
    let xy = |i: usize, v: f64| (LEFT + step * i as f64, H - BOTTOM - v.max(0.0) / max * plot);
    for (i, label) in c.ticks.iter().enumerate() {
        tick(&mut out, xy(i, 0.0).0, label);
    }
    for s in c.series {
        // Consecutive points with data form one polyline.
        let mut run: Vec<String> = Vec::new();
        let flush = |run: &mut Vec<String>, out: &mut String| {
            if run.len() > 1 {
                let _ = write!(out, "<polyline class=\"line {}\" points=\"{}\"/>", s.class, run.join(" "));
            }
            run.clear();
        };
        for (i, v) in s.values.iter().enumerate() {
            match v {
                Some(v) => {
                    let (x, y) = xy(i, *v);
                    run.push(format!("{x:.1},{y:.1}"));
                }
                None => flush(&mut run, &mut out),
            }
        }
        flush(&mut run, &mut out);
        for (i, v) in s.values.iter().enumerate() {
            if let Some(v) = v {
                let (x, y) = xy(i, *v);
                let label = c.labels.get(i).map(String::as_str).unwrap_or("");
                let _ = write!(
                    out,
                    "<circle class=\"point {}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\"><title>{}: {} {}</title></circle>",
                    s.class,
                    esc(label),
                    esc(&s.name),
                    (v * 10.0).round() / 10.0
                );
            }
        }
    }
    end(out, points == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars(values: &[i64]) -> Vec<Bar> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Bar { label: format!("{i}"), value: *v, title: format!("{i}: {v}"), class: "b0" })
            .collect()
    }

    #[test]
    fn nice_maxima_and_compact_labels() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 8.0);
        assert_eq!(nice_max(11.0), 12.0);
        assert_eq!(nice_max(240.0), 240.0);
        assert_eq!(nice_max(1000.0), 1000.0);
        // Every grid label short: 35,662 → 40k in steps of 10k, not 12.5k, 37.5k.
        assert_eq!(nice_max(35_662.0), 40_000.0);
        for v in [0.3, 1.0, 7.0, 11.0, 99.0, 240.0, 999.0, 1234.0, 35_662.0, 123_456.0, 9_999_999.0] {
            let max = nice_max(v);
            assert!(max >= v && max <= v * 1.6 + 1.0, "{v} → {max}");
            for i in 1..=4 {
                let label = compact(max * i as f64 / 4.0);
                assert!(label.chars().count() <= 4, "{v}: label {label}");
            }
        }
        assert_eq!(compact(2.5), "2.5");
        assert_eq!(compact(0.25), "0.25");
        assert_eq!(compact(10.0), "10");
        assert_eq!(compact(1500.0), "1.5k");
        assert_eq!(compact(2_000_000.0), "2M");
    }

    #[test]
    fn a_bar_per_value_with_a_title_and_the_peak_marked() {
        let b = bars(&[1, 5, 3]);
        let svg = bar_chart(&BarChart {
            titles: Titles { id: "h", title: "T", x_title: "hour", y_title: "msgs" },
            bars: &b,
            tick_every: 1,
        });
        assert_eq!(svg.matches("<rect class=\"bar").count(), 3);
        assert_eq!(svg.matches("<title").count(), 4, "one per bar and the chart's");
        assert_eq!(svg.matches("peak").count(), 1);
        assert!(svg.contains("<title>1: 5</title></rect>"));
        // The peak (5) is drawn up to its share of the axis (0..6).
        assert!(svg.contains(&format!("height=\"{:.1}\"", (H - TOP - BOTTOM) * 5.0 / 6.0)), "{svg}");
        assert!(!svg.contains("no data yet"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn all_zero_says_so() {
        let b = bars(&[0, 0]);
        let svg = bar_chart(&BarChart {
            titles: Titles { id: "z", title: "T", x_title: "x", y_title: "y" },
            bars: &b,
            tick_every: 1,
        });
        assert!(svg.contains("no data yet"));
        assert!(!svg.contains("peak"));
    }

    #[test]
    fn labels_and_titles_are_escaped() {
        let b = vec![Bar { label: "<b>".into(), value: 1, title: "<script>x</script>".into(), class: "b1" }];
        let svg = bar_chart(&BarChart {
            titles: Titles { id: "e", title: "\"t\"", x_title: "<x>", y_title: "y" },
            bars: &b,
            tick_every: 1,
        });
        assert!(!svg.contains("<script>") && !svg.contains("<b>") && !svg.contains("<x>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
    }

    #[test]
    fn lines_break_where_data_is_missing() {
        let labels: Vec<String> = (0..5).map(|i| format!("t{i}")).collect();
        let series = vec![
            Series {
                name: "present".into(),
                class: "s1",
                values: vec![Some(1.0), Some(2.0), None, Some(4.0), Some(3.0)],
            },
            Series { name: "chatting".into(), class: "s2", values: vec![None; 5] },
        ];
        let svg = line_chart(&LineChart {
            titles: Titles { id: "p", title: "T", x_title: "time", y_title: "users" },
            labels: &labels,
            ticks: &labels,
            series: &series,
        });
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains("<title>t3: present 4</title>"));
        assert!(!svg.contains("no data yet"));
        let empty = line_chart(&LineChart {
            titles: Titles { id: "q", title: "T", x_title: "x", y_title: "y" },
            labels: &labels,
            ticks: &[],
            series: &series[1..],
        });
        assert!(empty.contains("no data yet"));
    }
}
