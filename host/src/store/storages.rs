//! Storages and their export links (import links and sync runs: `sync_runs.rs`).

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{Result, Store, json};
use crate::domain::{Direction, Storage, SyncState, SyncStatus, now};

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
        sync: SyncState {
            status: SyncStatus::parse(&r.get::<_, String>(9)?).unwrap_or(SyncStatus::Initialized),
            traceback: r.get(10)?,
            meta: json(r.get(11)?),
            last_sync: r.get(12)?,
            last_sync_count: r.get(13)?,
            last_sync_job: r.get(14)?,
        },
        created_at: r.get(15)?,
    })
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
        let conn = self.conn()?;
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
            .conn()?
            .query_row(&format!("SELECT {STORAGE_COLS} FROM storages WHERE id = ?1"), [id], storage)
            .optional()?)
    }

    /// Storages of a project in one direction, of one type or all types, in id order.
    pub fn storages(&self, direction: Direction, type_name: Option<&str>, project_id: i64) -> Result<Vec<Storage>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {STORAGE_COLS} FROM storages WHERE direction = ?1 AND project_id = ?2 AND (?3 IS NULL OR type = ?3) ORDER BY id"
        ))?;
        Ok(stmt
            .query_map(params![direction.as_str(), project_id, type_name], storage)?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Saves the editable columns of `s` (project, title, description, fields, secrets, synchronizable).
    pub fn update_storage(&self, s: &Storage) -> Result<()> {
        self.conn()?.execute(
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
        Ok(self.conn()?.execute("DELETE FROM storages WHERE id = ?1", [id])? > 0)
    }

    /// Records that annotations were written to export storage `storage_id`, as
    /// `(annotation id, key)` pairs, in one transaction.
    pub fn upsert_export_links(&self, storage_id: i64, links: &[(i64, String)]) -> Result<()> {
        let at = now();
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO export_links (storage_id, annotation_id, key, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (storage_id, annotation_id) DO UPDATE SET key = excluded.key, object_exists = 1, updated_at = excluded.updated_at",
            )?;
            for (annotation_id, key) in links {
                stmt.execute(params![storage_id, annotation_id, key, at])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Where an annotation was exported, by storage.
    pub fn export_links(&self, annotation_id: i64) -> Result<Vec<ExportLink>> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached("SELECT storage_id, key FROM export_links WHERE annotation_id = ?1 ORDER BY storage_id")?;
        Ok(stmt
            .query_map([annotation_id], |r| Ok(ExportLink { storage_id: r.get(0)?, key: r.get(1)? }))?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Number of annotations this export storage holds an object of.
    pub fn export_link_count(&self, storage_id: i64) -> Result<i64> {
        let sql = "SELECT COUNT(*) FROM export_links WHERE storage_id = ?1 AND object_exists";
        Ok(self.conn()?.query_row(sql, [storage_id], |r| r.get(0))?)
    }

    /// Ids of the project's annotations this export storage has not written since they last
    /// changed (no link, or updated after the link): what an incremental export sync writes.
    pub fn annotations_to_export(&self, storage_id: i64, project_id: i64) -> Result<Vec<i64>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT a.id FROM annotations a
             LEFT JOIN export_links l ON l.annotation_id = a.id AND l.storage_id = ?1
             WHERE a.project_id = ?2 AND (l.id IS NULL OR a.updated_at > l.updated_at) ORDER BY a.id",
        )?;
        Ok(stmt.query_map(params![storage_id, project_id], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?)
    }

    /// Remembers an exported object whose delete failed, for the next export sync.
    pub fn queue_export_deletion(&self, storage_id: i64, key: &str) -> Result<()> {
        self.conn()?.execute(
            "INSERT OR IGNORE INTO export_deletions (storage_id, key, created_at) VALUES (?1, ?2, ?3)",
            params![storage_id, key, now()],
        )?;
        Ok(())
    }

    /// Keys waiting to be deleted from an export storage, oldest first.
    pub fn export_deletions(&self, storage_id: i64) -> Result<Vec<String>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached("SELECT key FROM export_deletions WHERE storage_id = ?1 ORDER BY id")?;
        Ok(stmt.query_map([storage_id], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?)
    }

    /// Forgets pending deletions once done.
    pub fn drop_export_deletions(&self, storage_id: i64, keys: &[String]) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for key in keys {
            tx.prepare_cached("DELETE FROM export_deletions WHERE storage_id = ?1 AND key = ?2")?
                .execute(params![storage_id, key])?;
        }
        tx.commit()?;
        Ok(())
    }
}
