//! `userstats-admin`: commands an operator runs by hand against the database the functions
//! share. It is a tool, not a NATS service: it starts, does one thing, prints what it did
//! and exits (0 when done, 1 with one `error:` line when not, 2 on a usage error).
//!
//! ```text
//! userstats-admin import-v0 OLD.db [--domain cytu.be] [--dry-run] [--also] [--config FILE]
//! ```
//!
//! `import-v0` brings the history of the previous Python service (kryten-userstats 0.7.1)
//! along: see `import_v0/mod.rs` for every conversion and deploy/OPERATIONS.md for the switch.

mod import_v0;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: userstats-admin import-v0 OLD.db [--domain DOMAIN] [--dry-run] [--also] [--config FILE]

  import-v0   imports a kryten-userstats 0.7.1 (Python) SQLite database, once, in one
              transaction; --dry-run only reads it and prints what would be imported.
  --domain    domain for users and PMs that 0.7.1 recorded without one (default: the
              first configured channel's domain, else cytu.be)
  --also      import although another 0.7.1 file was imported before (a different
              service's file; a newer copy of the same file would count twice)
  --config    the configuration the functions read (else $USERSTATS_CONFIG, else
              ./userstats.toml if present); its [database] says where to import to";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match parse(&args) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("userstats-admin: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("userstats-admin: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(import_v0::run(parsed)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("userstats-admin: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `None` for `--help`.
fn parse(args: &[String]) -> Result<Option<import_v0::Args>, String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => return Ok(None),
        Some("import-v0") => {}
        Some(other) => return Err(format!("unknown command {other:?}")),
    }
    let mut out = import_v0::Args { file: PathBuf::new(), domain: None, dry_run: false, config: None, also: false };
    let mut file = None;
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--dry-run" | "-n" => out.dry_run = true,
            "--also" => out.also = true,
            "--domain" => out.domain = Some(value("--domain")?),
            "--config" | "-c" => out.config = Some(PathBuf::from(value("--config")?)),
            "-h" | "--help" => return Ok(None),
            s if s.starts_with("--domain=") => out.domain = Some(s["--domain=".len()..].to_string()),
            s if s.starts_with("--config=") => out.config = Some(PathBuf::from(&s["--config=".len()..])),
            s if s.starts_with('-') => return Err(format!("unknown option {s:?}")),
            s if file.is_none() => file = Some(PathBuf::from(s)),
            s => return Err(format!("one file at a time ({s:?} is a second one)")),
        }
    }
    out.file = file.ok_or("import-v0 needs the old database file: import-v0 OLD.db")?;
    if out.domain.as_deref().is_some_and(|d| d.trim().is_empty()) {
        return Err("--domain is empty".into());
    }
    Ok(Some(out))
}
