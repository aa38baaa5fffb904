//! What the import tells the operator: rows read and skipped per old table, merged names,
//! rows planned and written per table of ours, and the JSON summary kept with the import
//! record.

use shared::store::{ImportPlan, ImportWritten};
use std::collections::BTreeMap;

/// What the import saw: rows read, skipped (by table and reason), merged names.
#[derive(Default)]
pub(super) struct Report {
    pub read: BTreeMap<&'static str, u64>,
    pub skipped: BTreeMap<(&'static str, String), u64>,
    /// key → every spelling seen, for keys with more than one.
    pub merges: Vec<(String, Vec<String>)>,
    /// Users to write (distinct lower-cased names), and those without a `users` row.
    pub users: usize,
    pub users_without_row: usize,
    /// Population rows that fell into a slot another old row already had.
    pub slot_duplicates: u64,
    pub votes_by_title: u64,
    pub votes_unresolved: u64,
}

impl Report {
    pub fn skip(&mut self, table: &'static str, reason: &str) {
        *self.skipped.entry((table, reason.to_string())).or_default() += 1;
    }
}

/// Rows the plan writes per table of ours (counter tables twice: channel and rollup).
pub(super) fn plan_rows(plan: &ImportPlan) -> BTreeMap<&'static str, u64> {
    let mut m = BTreeMap::new();
    m.insert("channels", plan.channels.len() as u64);
    m.insert("users", plan.users.len() as u64);
    m.insert("user_counts", 2 * plan.counts.len() as u64);
    m.insert("phrase_counts", 2 * plan.phrase_kudos.len() as u64);
    m.insert("emote_counts", 2 * plan.emote_uses.len() as u64);
    m.insert("activity", plan.activity.len() as u64);
    m.insert("population", plan.population.len() as u64);
    m.insert("watermarks", plan.watermarks.len() as u64);
    m.insert("media_log", plan.media.len() as u64);
    m.insert("movie_votes", plan.votes.len() as u64);
    m.insert("aliases", plan.aliases.len() as u64);
    m.insert("kudos_phrases", plan.phrases.len() as u64);
    m.insert("totals", plan.totals.len() as u64);
    m
}

/// The report on stdout: what was read (`written` is `None` for a dry run), then what was
/// or would be written.
pub(super) fn print_report(r: &Report, plan: &ImportPlan, written: Option<&ImportWritten>, hash: &str) {
    println!("kryten-userstats 0.7.1 database, content hash {}", &hash[..16]);
    print_read(r, plan);
    let planned = plan_rows(plan);
    match written {
        None => {
            println!("rows that would be written per table of ours:");
            for (t, n) in &planned {
                println!("  {t:<16} {n:>9}");
            }
        }
        Some(w) => print_written(&planned, w),
    }
    for (d, name, n) in &plan.totals {
        println!("  total {d} {name} += {n}");
    }
}

/// The old file's side: rows read and skipped, users and merges, what needed resolving.
fn print_read(r: &Report, plan: &ImportPlan) {
    println!("rows read per old table:");
    for (t, n) in &r.read {
        let skipped: u64 = r.skipped.iter().filter(|((st, _), _)| st == t).map(|(_, n)| n).sum();
        println!("  {t:<24} {n:>9} read {skipped:>7} skipped");
    }
    if r.skipped.is_empty() {
        println!("skipped: none");
    } else {
        println!("skipped rows (table: reason):");
        for ((t, reason), n) in &r.skipped {
            println!("  {t}: {reason}: {n}");
        }
    }
    println!(
        "users: {} (by lower-cased name; {} without a users row); user rows over domains: {}",
        r.users,
        r.users_without_row,
        plan.users.len()
    );
    if r.merges.is_empty() {
        println!("case variants merged: none");
    } else {
        println!("case variants merged into one user: {}", r.merges.len());
        for (key, names) in &r.merges {
            println!("  {key} <- {}", names.join(", "));
        }
    }
    if r.slot_duplicates > 0 {
        println!("population snapshots in an interval slot already taken by an earlier old row: {}", r.slot_duplicates);
    }
    if r.votes_by_title > 0 {
        println!(
            "votes without media type/id: {} (resolved by title through the media log: {}, kept under their title: {})",
            r.votes_by_title,
            r.votes_by_title - r.votes_unresolved,
            r.votes_unresolved
        );
    }
}

/// Our side after the commit: planned against written rows, and what was left as it was.
fn print_written(planned: &BTreeMap<&'static str, u64>, w: &ImportWritten) {
    println!("rows written per table of ours (planned / written):");
    for (t, n) in planned {
        println!("  {t:<16} {n:>9} {:>9}", w.rows.get(t).copied().unwrap_or(0));
    }
    for (d, n) in &w.new_users {
        println!("new users in {d}: {n} (total_users += {n})");
    }
    if w.slots_taken > 0 {
        println!("population slots that already had a snapshot of ours (kept): {}", w.slots_taken);
    }
    for (alias, owner) in &w.aliases_taken {
        println!("alias {alias:?} already belongs to {owner} here: kept theirs");
    }
}

/// The report kept with the import record.
pub(super) fn summary_json(r: &Report, plan: &ImportPlan, file: &str) -> String {
    let skipped: BTreeMap<String, u64> = r.skipped.iter().map(|((t, why), n)| (format!("{t}: {why}"), *n)).collect();
    serde_json::json!({
        "file": file,
        "read": r.read,
        "skipped": skipped,
        "users": r.users,
        "merges": r.merges.iter().map(|(k, v)| serde_json::json!({"user": k, "names": v})).collect::<Vec<_>>(),
        "planned": plan_rows(plan),
    })
    .to_string()
}
