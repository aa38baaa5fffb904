//! The queries the bench asks: three commands on the three surfaces, and their figures.

use super::*;

/// The commands the bench asks: a user's card, a leaderboard, and what the kryten CLI asks.
pub(crate) const COMMANDS: [&str; 3] = ["user.stats", "leaderboard.kudos", "channel.all_stats"];

/// The three ways to ask a query.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Surface {
    /// `userstats.query.{command}`
    Micro,
    /// `cytube.query.userstats.{domain}.{command}`
    Seed,
    /// `kryten.userstats.command` with the command in the body
    Command,
}

pub(crate) const SURFACES: [Surface; 3] = [Surface::Micro, Surface::Seed, Surface::Command];

impl Surface {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Surface::Micro => "micro",
            Surface::Seed => "seed",
            Surface::Command => "command",
        }
    }

    /// The subject and body of the `i`-th request for `command` on this surface.
    pub(crate) fn request(self, command: &str, i: u64, users: u64) -> (String, String) {
        let mut body = match command {
            "user.stats" => json!({"username": format!("user{}", i.wrapping_mul(2_654_435_761) % users.max(1))}),
            _ => json!({"channel": CHANNEL}),
        };
        let subject = match self {
            Surface::Micro => format!("userstats.query.{command}"),
            Surface::Seed => format!("cytube.query.userstats.{DOMAIN}.{command}"),
            Surface::Command => {
                body["command"] = json!(command);
                "kryten.userstats.command".to_string()
            }
        };
        (subject, body.to_string())
    }
}

/// True for a successful answer.
pub(crate) fn answered(
    answer: &Result<Result<async_nats::Message, async_nats::RequestError>, tokio::time::error::Elapsed>,
) -> bool {
    matches!(answer, Ok(Ok(m)) if std::str::from_utf8(&m.payload).is_ok_and(|t| t.contains("\"success\":true")))
}

/// p50 and p99 of every (surface, command) pair, against the targets (≤ 1 ms and ≤ 5 ms
/// on every surface).
pub(crate) fn latency_figures(s: &mut Summary, samples: &[Sample]) {
    if let Ok(path) = std::env::var("KRYTEN_BENCH_SAMPLES") {
        let lines: Vec<String> = samples.iter().map(|x| format!("{} {:.3} {} {:.4}", x.0, x.1, x.2, x.3)).collect();
        let _ = std::fs::write(path, lines.join("\n"));
    }
    for (probe, (surface, command)) in SURFACES.iter().flat_map(|s| COMMANDS.iter().map(move |c| (*s, *c))).enumerate()
    {
        let mine: Vec<_> = samples.iter().filter(|x| x.3 >= 1.0 && x.0 == probe).collect();
        let failed = mine.iter().filter(|x| !x.2).count();
        let mut ms: Vec<f64> = mine.iter().map(|x| x.1).collect();
        ms.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&ms, 0.50), percentile(&ms, 0.99));
        s.figure(
            &format!("{command} on the {} surface, p50 / p99", surface.name()),
            format!(
                "{p50:.2} / {p99:.2} ms ({} requests, {failed} failed; max {:.1} ms)",
                ms.len(),
                ms.last().copied().unwrap_or(f64::NAN)
            ),
            "≤ 1 ms / ≤ 5 ms",
            Some(p50 <= 1.0 && p99 <= 5.0 && failed == 0),
        );
    }
}
