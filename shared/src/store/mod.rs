//! The store: the only place SQL lives.
//!
//! One libSQL database shared by every function process on a host: a local file in WAL
//! mode with a busy timeout, every write transaction started with `BEGIN IMMEDIATE` (a
//! deferred transaction that reads then writes fails at once with "database is locked"
//! when another process writes), result rows consumed at once so that no statement stays
//! open.
//!
//! * [`Store`] opens the database and runs the migrations of [`schema`]. The same code
//!   runs against a libSQL server (sqld, Turso) by URL, where every statement is a round
//!   trip and one write transaction per batch keeps that affordable, or an embedded
//!   replica of one (reads local, writes forwarded to the server).
//! * [`Tx`] is one write transaction with typed operations; the function logic in
//!   `crate::chat` (and friends) decides *what* to write, `Tx` knows *how*.
//! * `reads` holds the read queries the query functions answer from.

mod admin;
mod bench;
mod import;
pub mod keys;
mod media;
mod metrics;
mod presence;
mod reads;
mod rows;
mod schema;
mod seen;
mod site;
mod write;

use anyhow::{bail, Context, Result};
use libsql::{params::IntoParams, Connection, Database, Statement, TransactionBehavior, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use crate::config::Location;
pub use import::{ImportOutcome, ImportPlan, ImportUser, ImportWritten, V0Reader, V0_KIND, V0_TABLES};
pub use metrics::{ChannelFigures, Figures};
pub use reads::{UserRow, VoteRow};
pub use rows::{ActivityRow, AliasChange, HourRow, Session, SnapshotRow, TitledVoteRow, WatermarkRow};
pub use seen::{SeenChannels, SeenUser, SeenUsers};
pub use site::{ChannelSummaryRow, ChatterRow, HourCount};
pub use write::{playing_at, Counts, EmoteInterval, HourDelta, NamedCount, Played, UserSeen, Vote};

/// A handle on the database: one connection, used by one task at a time. [`Store::another`]
/// opens more connections to the same database (a pool of readers).
pub struct Store {
    db: Arc<Database>,
    conn: Connection,
    local: bool,
    busy_timeout: Duration,
    /// Held for an embedded replica's life: two processes must never share its file.
    _replica_lock: Option<Arc<std::fs::File>>,
}

impl Store {
    /// Opens (creating if needed) a local database file and brings its schema up to date.
    pub async fn open(path: &str, busy_timeout: Duration) -> Result<Store> {
        Store::connect(&Location::File { path: path.to_string() }, busy_timeout).await
    }

    /// Opens the database wherever it is — a local file, a libSQL server, or an embedded
    /// replica of one — and brings its schema up to date (on the server, for a replica).
    pub async fn connect(location: &Location, busy_timeout: Duration) -> Result<Store> {
        let name = location_name(location);
        let (db, replica_lock) = match location {
            Location::File { path } => {
                create_parent(path)?;
                (libsql::Builder::new_local(path).build().await, None)
            }
            Location::Remote { url, token } => {
                (libsql::Builder::new_remote(url.clone(), token.clone()).build().await, None)
            }
            Location::Replica { path, url, token, sync_interval } => {
                create_parent(path)?;
                let lock = lock_replica(path)?;
                let db = libsql::Builder::new_remote_replica(path, url.clone(), token.clone())
                    .sync_interval(*sync_interval)
                    .read_your_writes(true)
                    .build()
                    .await;
                (db, Some(lock))
            }
        };
        let db = db.with_context(|| format!("cannot open database {name}"))?;
        if matches!(location, Location::Replica { .. }) {
            db.sync().await.with_context(|| format!("cannot sync the embedded replica from {name}"))?;
        }
        let local = matches!(location, Location::File { .. });
        let conn = db.connect().with_context(|| format!("cannot connect to database {name}"))?;
        if local {
            // Before anything else: two processes opening a fresh file at once both switch
            // it to WAL, and the second must wait, not fail.
            conn.busy_timeout(busy_timeout)?;
            // journal_mode returns a row: query, not execute. It stays set in the file.
            let mut rows = conn.query("PRAGMA journal_mode=WAL", ()).await?;
            while rows.next().await?.is_some() {}
        }
        let store = Store { db: Arc::new(db), conn, local, busy_timeout, _replica_lock: replica_lock.map(Arc::new) };
        store.set_up_connection().await?;
        if !local {
            let hint = match location {
                Location::Replica { .. } => "check database.url, database.auth_token and database.replica_path",
                _ => "check database.url and database.auth_token",
            };
            store
                .conn
                .query("SELECT 1", ())
                .await
                .with_context(|| format!("cannot use the database {name}: {hint}"))?;
        }
        store.migrate().await.with_context(|| format!("cannot migrate database {name}"))?;
        Ok(store)
    }

    /// Another connection to the same database (same file, server or embedded replica).
    pub async fn another(&self) -> Result<Store> {
        let conn = self.db.connect().context("cannot open another database connection")?;
        let store = Store {
            db: self.db.clone(),
            conn,
            local: self.local,
            busy_timeout: self.busy_timeout,
            _replica_lock: self._replica_lock.clone(),
        };
        store.set_up_connection().await?;
        Ok(store)
    }

    /// Per-connection settings of a local file (a server keeps its own).
    async fn set_up_connection(&self) -> Result<()> {
        if self.local {
            self.conn.busy_timeout(self.busy_timeout)?;
            self.conn.execute("PRAGMA synchronous=NORMAL", ()).await?;
            self.conn.execute("PRAGMA foreign_keys=OFF", ()).await?;
        }
        Ok(())
    }

    /// Gives this connection a page cache of `mib` MiB (a local file; a server keeps its
    /// own). A writer applying large batches wants one that holds the pages a batch dirties.
    pub async fn set_cache_mib(&self, mib: u32) -> Result<()> {
        if self.local {
            let kib = i64::from(mib) * 1024;
            self.conn.execute(&format!("PRAGMA cache_size = -{kib}"), ()).await?;
        }
        Ok(())
    }

    /// Brings the schema up to date. Reads the version first, so opening an up-to-date
    /// database never waits for the write lock; pending migrations take it (retrying for up
    /// to 30 s while another process writes).
    async fn migrate(&self) -> Result<()> {
        if self.schema_version().await.unwrap_or(0) >= schema::MIGRATIONS.len() as i64 {
            return Ok(());
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            match self.migrate_once().await {
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return other,
            }
        }
    }

    async fn schema_version(&self) -> Result<i64> {
        let mut rows = self.conn.query("SELECT COALESCE(MAX(version), 0) FROM schema_version", ()).await?;
        let v = match rows.next().await? {
            Some(row) => row.get(0)?,
            None => 0,
        };
        Ok(v)
    }

    async fn migrate_once(&self) -> Result<()> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).await?;
        tx.execute("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)", ()).await?;
        let mut rows = tx.query("SELECT COALESCE(MAX(version), 0) FROM schema_version", ()).await?;
        let current: i64 = match rows.next().await? {
            Some(row) => row.get(0)?,
            None => 0,
        };
        drop(rows);
        for (i, sql) in schema::MIGRATIONS.iter().enumerate() {
            let version = i as i64 + 1;
            if version > current {
                tx.execute_batch(sql).await.with_context(|| format!("migration {version} failed"))?;
                tx.execute("INSERT INTO schema_version(version) VALUES (?1)", [version]).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE`): waits up to the busy timeout for
    /// other writers, then fails with an error for which [`is_busy`] is true.
    pub async fn write(&self) -> Result<Tx> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).await?;
        Ok(Tx::new(tx))
    }

    /// The raw connection, for the read queries in this module.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// How a location is named in logs and errors (never with its token).
pub fn location_name(location: &Location) -> String {
    match location {
        Location::File { path } => path.clone(),
        Location::Remote { url, .. } => url.clone(),
        Location::Replica { path, url, .. } => format!("{url} (embedded replica {path})"),
    }
}

fn create_parent(path: &str) -> Result<()> {
    if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the database directory {}", dir.display()))?;
    }
    Ok(())
}

/// An exclusive lock on `{path}.lock`, so that a second process configured with the same
/// replica file fails at start instead of corrupting it.
fn lock_replica(path: &str) -> Result<std::fs::File> {
    let lock_path = format!("{path}.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot create {lock_path}"))?;
    if file.try_lock().is_err() {
        bail!(
            "the embedded replica {path} is in use by another process: give each process its own database.replica_path"
        );
    }
    Ok(file)
}

/// True when an error is "another process holds the database": worth waiting and retrying.
pub fn is_busy(err: &anyhow::Error) -> bool {
    err.chain().any(|e| match e.downcast_ref::<libsql::Error>() {
        Some(libsql::Error::SqliteFailure(code, _)) => matches!(code & 0xff, 5 | 6),
        Some(other) => {
            let s = other.to_string();
            s.contains("database is locked") || s.contains("database is busy")
        }
        None => false,
    })
}

/// One write transaction with a cache of prepared statements (one compile per batch). It
/// adds up the time spent inside the database, so the ingest loop can tell SQL time from the
/// rest ([`Tx::sql_time`]).
pub struct Tx {
    tx: libsql::Transaction,
    stmts: HashMap<&'static str, Statement>,
    sql_nanos: std::sync::atomic::AtomicU64,
}

impl Tx {
    fn new(tx: libsql::Transaction) -> Tx {
        Tx { tx, stmts: HashMap::new(), sql_nanos: Default::default() }
    }

    pub async fn commit(self) -> Result<()> {
        drop(self.stmts);
        self.tx.commit().await?;
        Ok(())
    }

    /// Time spent so far in SQL statements of this transaction (preparing, executing,
    /// reading rows).
    pub fn sql_time(&self) -> Duration {
        Duration::from_nanos(self.sql_nanos.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn spent(&self, since: std::time::Instant) {
        self.sql_nanos.fetch_add(since.elapsed().as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
    }

    async fn stmt(&mut self, sql: &'static str) -> Result<&Statement> {
        if !self.stmts.contains_key(sql) {
            let started = std::time::Instant::now();
            let s = self.tx.prepare(sql).await.with_context(|| format!("prepare {sql}"))?;
            self.spent(started);
            self.stmts.insert(sql, s);
        }
        let s = &self.stmts[sql];
        s.reset();
        Ok(s)
    }

    /// Runs a cached statement that returns no rows; gives the number of changed rows.
    async fn exec(&mut self, sql: &'static str, params: impl IntoParams) -> Result<usize> {
        let started = std::time::Instant::now();
        let s = self.stmt(sql).await?;
        let n = s.execute(params).await?;
        s.reset();
        self.spent(started);
        Ok(n)
    }

    /// Runs a cached query and maps every row at once (no Rows left open).
    async fn rows<T>(
        &mut self,
        sql: &'static str,
        params: impl IntoParams,
        mut f: impl FnMut(&libsql::Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let started = std::time::Instant::now();
        let s = self.stmt(sql).await?;
        let mut rows = s.query(params).await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push(f(&row)?);
        }
        drop(rows);
        s.reset();
        self.spent(started);
        Ok(out)
    }

    /// Runs uncached SQL with a variable number of parameters (bulk statements).
    async fn rows_dyn<T>(
        &self,
        sql: &str,
        params: Vec<Value>,
        mut f: impl FnMut(&libsql::Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let started = std::time::Instant::now();
        let mut rows = self.tx.query(sql, params).await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push(f(&row)?);
        }
        drop(rows);
        self.spent(started);
        Ok(out)
    }

    /// Runs uncached SQL that returns no rows (bulk statements).
    async fn exec_dyn(&self, sql: &str, params: Vec<Value>) -> Result<u64> {
        let started = std::time::Instant::now();
        let n = self.tx.execute(sql, params).await?;
        self.spent(started);
        Ok(n)
    }
}

/// What unit tests across the crate share: a fresh database file of their own.
#[cfg(test)]
pub(crate) mod test_support {
    use super::Store;
    use std::time::Duration;

    /// A new, migrated database in a temp directory named after the test.
    pub(crate) async fn temp_store(name: &str) -> Store {
        let dir = std::env::temp_dir().join(format!("us-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("t.db");
        Store::open(path.to_str().unwrap(), Duration::from_secs(5)).await.unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_migrates_and_reopens() {
        let dir = std::env::temp_dir().join(format!("us-store-{}", std::process::id()));
        let path = dir.join("a.db");
        let path = path.to_str().unwrap();
        let s = Store::open(path, Duration::from_secs(1)).await.unwrap();
        drop(s);
        let s = Store::open(path, Duration::from_secs(1)).await.unwrap();
        let mut tx = s.write().await.unwrap();
        let fresh = tx.claim_new_ids(&["a".into(), "b".into(), "a".into()], 1).await.unwrap();
        assert_eq!(fresh, vec![true, true, false]);
        tx.commit().await.unwrap();
        let mut tx = s.write().await.unwrap();
        let fresh = tx.claim_new_ids(&["b".into(), "c".into()], 2).await.unwrap();
        assert_eq!(fresh, vec![false, true]);
        tx.commit().await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn multi_row_upserts_add_up_rows_that_meet_in_one_statement() {
        let dir = std::env::temp_dir().join(format!("us-store-many-{}", std::process::id()));
        let s = Store::open(dir.join("a.db").to_str().unwrap(), Duration::from_secs(1)).await.unwrap();
        let one = Counts { messages: 2, kudos_plusplus: 1, kudos_phrases: 0, emotes: 3 };
        for round in 0..2 {
            let mut tx = s.write().await.unwrap();
            // Two channels of one user meet in the rollup row (channel '') within one statement.
            tx.add_counts(&[(("d", "a", "u"), one), (("d", "b", "u"), one)]).await.unwrap();
            let seen =
                |key, display, first_ms, last_ms| UserSeen { domain: "d", key, display, first_ms, last_ms, pms: 0 };
            let users = [seen("u", "U", 5, 9), seen("v", "V", 1, 1)];
            let new = tx.upsert_users(&users).await.unwrap();
            tx.commit().await.unwrap();
            assert_eq!(new.get("d").copied().unwrap_or(0), if round == 0 { 2 } else { 0 }, "new users");
        }
        assert_eq!(s.user_counts("d", "a", "u").await.unwrap().messages, 4);
        assert_eq!(s.user_counts("d", "", "u").await.unwrap().messages, 8);
        assert_eq!(s.user_counts("d", "", "u").await.unwrap().kudos_plusplus, 4);
        let u = s.user("d", "u").await.unwrap().unwrap();
        assert_eq!((u.display.as_str(), u.first_seen_ms, u.last_seen_ms), ("U", 5, 9));
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }
}
