//! SQLite persistence. All SQL of stowage lives in this module: `accounts` (users, tokens,
//! web sessions, projects), `tasks` (tasks, predictions, annotations), `storages` (storages, export links), `sync_runs` (sync runs, import links).
//!
//! A pool of connections to one database in WAL mode: readers never wait for a writer (a sync
//! committing a page), and writers take the write lock at `BEGIN IMMEDIATE`, waiting for one
//! another up to the busy timeout instead of failing on a lock upgrade. Statements are short
//! (transactions of at most one listing page), so callers run them inline.

mod accounts;
mod storages;
mod sync_runs;
mod tasks;

use std::path::Path;
use std::time::Duration;

use r2d2::PooledConnection;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite_migration::{M, Migrations};

pub use storages::ExportLink;
pub use sync_runs::{ImportedObject, LinkState, PageCommit, Run};
pub use tasks::ExportSource;

/// A failed database operation. Shown to users only as "internal error"; logged in full.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("database connection pool: {0}")]
    Pool(#[from] r2d2::Error),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Connections open at most: the requests and sync workers that can query at once.
pub const POOL_SIZE: u32 = 16;
/// How long a writer waits for another one's transaction before failing with "database is
/// locked" (a page commit takes well under a second).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The embedded database.
pub struct Store {
    pool: r2d2::Pool<SqliteConnectionManager>,
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("migrations/0001_init.sql")),
        M::up(include_str!("migrations/0002_superuser.sql")),
        M::up(include_str!("migrations/0003_background_sync.sql")),
        M::up(include_str!("migrations/0004_project_counts.sql")),
        M::up(include_str!("migrations/0005_open_object.sql")),
        M::up(include_str!("migrations/0006_import_source.sql")),
        M::up(include_str!("migrations/0007_web_sign_in.sql")),
    ])
}

impl Store {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let manager = SqliteConnectionManager::file(path).with_init(|c| {
            c.pragma_update(None, "synchronous", "NORMAL")?;
            c.pragma_update(None, "foreign_keys", true)?;
            c.busy_timeout(BUSY_TIMEOUT)
        });
        // No liveness query per checkout: a local file connection does not go stale.
        let pool =
            r2d2::Pool::builder().max_size(POOL_SIZE).min_idle(Some(1)).test_on_check_out(false).build(manager)?;
        let mut conn = pool.get()?;
        // Kept by the database file itself, for every connection.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        migrations().to_latest(&mut conn)?;
        drop(conn);
        Ok(Store { pool })
    }

    fn conn(&self) -> Result<PooledConnection<SqliteConnectionManager>> {
        Ok(self.pool.get()?)
    }
}

/// Runs `f`, a store call that may hold its thread for a while (a page commit, a page of link
/// lookups), without holding an async worker: on a multi-thread runtime the worker's other tasks
/// move to another thread meanwhile (`tokio::task::block_in_place`), so requests keep being
/// answered during a sync. Elsewhere (a current-thread runtime, no runtime) `f` just runs.
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn json(text: String) -> serde_json::Value {
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().unwrap();
    }

    /// The counters of migration 0004 follow inserts, deletes and cascades exactly.
    #[test]
    fn project_counts_follow_every_change() {
        use crate::domain::{NewAnnotation, NewPrediction, NewTask};
        let dir = tempfile::tempdir().unwrap();
        let store = super::Store::open(&dir.path().join("db.sqlite3")).unwrap();
        store.bootstrap_user("t").unwrap();
        let user = store.user_by_token("t").unwrap().unwrap().id;
        let p = store.create_project("p", "", "<View/>", user).unwrap().id;
        let other = store.create_project("q", "", "<View/>", user).unwrap().id;
        let task = |n: usize| NewTask {
            data: serde_json::json!({"n": n}),
            meta: serde_json::json!({}),
            annotations: vec![NewAnnotation::default(); n],
            predictions: vec![NewPrediction::default(); 1],
        };
        let ids = store.create_tasks(p, &[task(0), task(1), task(2)], user).unwrap();
        store.create_tasks(other, &[task(1)], user).unwrap();
        assert_eq!(store.project_counts(p).unwrap(), (3, 3, 3));
        let a = store.create_annotation(ids[0], p, &NewAnnotation::default()).unwrap();
        assert_eq!(store.project_counts(p).unwrap(), (3, 4, 3));
        assert!(store.delete_annotation(a.id).unwrap());
        // A task's annotations and predictions go with it (a cascade).
        assert!(store.delete_task(ids[2]).unwrap());
        assert_eq!(store.project_counts(p).unwrap(), (2, 1, 2));
        assert_eq!(store.project_counts(other).unwrap(), (1, 1, 1));
        assert!(store.delete_project(p).unwrap());
        assert_eq!((store.project_counts(p).unwrap(), store.project_counts(other).unwrap()), ((0, 0, 0), (1, 1, 1)));
    }
}
