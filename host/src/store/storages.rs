//! Storages, their import and export links, and sync runs.

use std::collections::HashSet;

use rusqlite::{OptionalExtension, params, params_from_iter};

use super::tasks::{insert_task, next_inner_id};
use super::{Result, Store, json};
use crate::domain::{Direction, NewTask, Storage, now};

const STORAGE_COLS: &str = "id, direction, type, project_id, title, description, fields, secrets, synchronizable,
    status, traceback, meta, last_sync, last_sync_count, last_sync_job, created_at";

fn storage(r: &rusqlite::Row) -> rusqlite::Result<Storage> {
    let direction: String = r.get(1)?;
    let map = |text: String| match json(text) {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    Ok(Storage {
        id: r.get(0)?,
        direction: if direction == "export" { Direction::Export } else { Direction::Import },
        type_name: r.get(2)?,
        project_id: r.get(3)?,
        title: r.get(4)?,
        description: r.get(5)?,
        fields: map(r.get(6)?),
        secrets: map(r.get(7)?),
        synchronizable: r.get(8)?,
        status: r.get(9)?,
        traceback: r.get(10)?,
        meta: json(r.get(11)?),
        last_sync: r.get(12)?,
        last_sync_count: r.get(13)?,
        last_sync_job: r.get(14)?,
        created_at: r.get(15)?,
    })
}

/// The sync-related columns of a storage (Label Studio's status fields).
#[derive(Debug, Clone)]
pub struct SyncProgress {
    pub status: String,
    pub traceback: Option<String>,
    pub meta: serde_json::Value,
    pub last_sync: Option<String>,
    pub last_sync_count: Option<i64>,
    pub last_sync_job: Option<String>,
}

/// One storage object and the tasks parsed from it. `row` is `None` when the object is a single
/// task, else its position in the file (array element or JSONL line).
pub struct ImportedObject {
    pub key: String,
    pub etag: Option<String>,
    pub size: u64,
    pub last_modified: Option<u64>,
    pub rows: Vec<(Option<i64>, NewTask)>,
}

/// Where an annotation was exported.
#[derive(Debug, Clone)]
pub struct ExportLink {
    pub storage_id: i64,
    pub key: String,
}

impl Store {
    /// Saves a new storage from the editable fields of `s` (its id and sync state are ignored).
    pub fn create_storage(&self, s: &Storage) -> Result<Storage> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO storages (direction, type, project_id, title, description, fields, secrets, synchronizable, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                s.direction.as_str(),
                s.type_name,
                s.project_id,
                s.title,
                s.description,
                serde_json::Value::Object(s.fields.clone()).to_string(),
                serde_json::Value::Object(s.secrets.clone()).to_string(),
                s.synchronizable,
                now()
            ],
        )?;
        let id = conn.last_insert_rowid();
        Ok(conn.query_row(&format!("SELECT {STORAGE_COLS} FROM storages WHERE id = ?1"), [id], storage)?)
    }

    /// One storage of any type and direction, or `None`.
    pub fn storage(&self, id: i64) -> Result<Option<Storage>> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {STORAGE_COLS} FROM storages WHERE id = ?1"), [id], storage)
            .optional()?)
    }

    /// Storages of a project in one direction, of one type or all types, in id order.
    pub fn storages(&self, direction: Direction, type_name: Option<&str>, project_id: i64) -> Result<Vec<Storage>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {STORAGE_COLS} FROM storages WHERE direction = ?1 AND project_id = ?2 AND (?3 IS NULL OR type = ?3) ORDER BY id"
        ))?;
        Ok(stmt
            .query_map(params![direction.as_str(), project_id, type_name], storage)?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Saves the editable columns of `s` (project, title, description, fields, secrets, synchronizable).
    pub fn update_storage(&self, s: &Storage) -> Result<()> {
        self.conn().execute(
            "UPDATE storages SET project_id = ?2, title = ?3, description = ?4, fields = ?5, secrets = ?6, synchronizable = ?7 WHERE id = ?1",
            params![
                s.id,
                s.project_id,
                s.title,
                s.description,
                serde_json::Value::Object(s.fields.clone()).to_string(),
                serde_json::Value::Object(s.secrets.clone()).to_string(),
                s.synchronizable
            ],
        )?;
        Ok(())
    }

    /// Deletes a storage and its links; the tasks it imported stay (as in Label Studio).
    pub fn delete_storage(&self, id: i64) -> Result<bool> {
        Ok(self.conn().execute("DELETE FROM storages WHERE id = ?1", [id])? > 0)
    }

    /// Saves a storage's sync status columns.
    pub fn save_sync_progress(&self, id: i64, p: &SyncProgress) -> Result<()> {
        self.conn().execute(
            "UPDATE storages SET status = ?2, traceback = ?3, meta = ?4, last_sync = ?5, last_sync_count = ?6, last_sync_job = ?7 WHERE id = ?1",
            params![id, p.status, p.traceback, p.meta.to_string(), p.last_sync, p.last_sync_count, p.last_sync_job],
        )?;
        Ok(())
    }

    /// Marks syncs left `queued`/`in_progress` by a previous process as `failed`; returns how many.
    pub fn fail_interrupted_syncs(&self) -> Result<usize> {
        let conn = self.conn();
        conn.execute("UPDATE sync_runs SET status = 'failed', finished_at = ?1 WHERE finished_at IS NULL", [now()])?;
        Ok(conn.execute(
            "UPDATE storages SET status = 'failed', traceback = 'The sync was interrupted by a restart of the service; sync again to resume.'
             WHERE status IN ('queued', 'in_progress')",
            [],
        )?)
    }

    /// Which of `keys` already have an import link in this storage.
    pub fn linked_keys(&self, storage_id: i64, keys: &[&str]) -> Result<HashSet<String>> {
        let conn = self.conn();
        let mut found = HashSet::new();
        // Stay under SQLite's default limit of 32766 bound parameters.
        for chunk in keys.chunks(1000) {
            let marks = vec!["?"; chunk.len()].join(",");
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT DISTINCT key FROM import_links WHERE storage_id = ? AND key IN ({marks})"
            ))?;
            let args = std::iter::once(rusqlite::types::Value::Integer(storage_id))
                .chain(chunk.iter().map(|k| rusqlite::types::Value::Text(k.to_string())));
            for key in stmt.query_map(params_from_iter(args), |r| r.get::<_, String>(0))? {
                found.insert(key?);
            }
        }
        Ok(found)
    }

    /// Number of tasks linked to this storage (Label Studio's `tasks_existed`).
    pub fn import_link_count(&self, storage_id: i64) -> Result<i64> {
        Ok(self
            .conn()
            .query_row("SELECT COUNT(*) FROM import_links WHERE storage_id = ?1", [storage_id], |r| r.get(0))?)
    }

    /// Creates the tasks of `objects` and their links in one transaction; returns the number of
    /// tasks created. All or nothing: a failure leaves no task without its link.
    pub fn insert_imported(&self, storage_id: i64, project_id: i64, objects: &[ImportedObject]) -> Result<i64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut inner = next_inner_id(&tx, project_id)?;
        let at = now();
        let mut created = 0;
        for o in objects {
            for (row, t) in &o.rows {
                let task_id = insert_task(&tx, project_id, inner, t, None)?;
                inner += 1;
                tx.prepare_cached(
                    "INSERT INTO import_links (storage_id, task_id, key, row_index, etag, size, last_modified, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![storage_id, task_id, o.key, row.unwrap_or(-1), o.etag, o.size as i64, o.last_modified.map(|m| m as i64), at])?;
                created += 1;
            }
        }
        tx.commit()?;
        Ok(created)
    }

    /// Records that an annotation was written to `key` of an export storage.
    pub fn upsert_export_link(&self, storage_id: i64, annotation_id: i64, key: &str) -> Result<()> {
        let at = now();
        self.conn().execute(
            "INSERT INTO export_links (storage_id, annotation_id, key, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (storage_id, annotation_id) DO UPDATE SET key = excluded.key, object_exists = 1, updated_at = excluded.updated_at",
            params![storage_id, annotation_id, key, at],
        )?;
        Ok(())
    }

    /// Where an annotation was exported, by storage.
    pub fn export_links(&self, annotation_id: i64) -> Result<Vec<ExportLink>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT storage_id, key FROM export_links WHERE annotation_id = ?1 ORDER BY storage_id")?;
        Ok(stmt
            .query_map([annotation_id], |r| Ok(ExportLink { storage_id: r.get(0)?, key: r.get(1)? }))?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Starts a sync run of a storage; returns its id.
    pub fn start_sync_run(&self, storage_id: i64) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO sync_runs (storage_id, status, started_at) VALUES (?1, 'in_progress', ?2)",
            params![storage_id, now()],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Records the listing position after a committed page.
    pub fn save_sync_cursor(&self, run_id: i64, cursor: Option<&str>, created: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE sync_runs SET cursor = ?2, created = ?3 WHERE id = ?1",
            params![run_id, cursor, created],
        )?;
        Ok(())
    }

    /// Marks a sync run finished with its final status.
    pub fn finish_sync_run(&self, run_id: i64, status: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE sync_runs SET status = ?2, finished_at = ?3 WHERE id = ?1",
            params![run_id, status, now()],
        )?;
        Ok(())
    }
}
