//! Sync runs and import links: claiming a run, the worker queue, and committing one listing
//! page (its tasks, link stamps, cursor and counters) in one transaction.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params, params_from_iter};

use super::tasks::{insert_task, next_inner_id};
use super::{Result, Store};
use crate::domain::{NewTask, SyncCounters, SyncState, SyncStatus, now};

/// One sync run as stored.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: i64,
    pub storage_id: i64,
    /// `queued` or `in_progress` while unfinished, else the final status.
    pub status: SyncStatus,
    /// The listing position after the last committed page; `None` before the first.
    pub cursor: Option<String>,
    pub counters: SyncCounters,
    /// The listing reached its end (only the removal phase may be left).
    pub listing_done: bool,
    /// The task file committed in part, whose remaining rows are still to import.
    pub open_object: Option<String>,
}

/// What the link rows of one key say about the object when it was last imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub etag: Option<String>,
    pub size: Option<u64>,
    /// Milliseconds since the Unix epoch.
    pub last_modified: Option<u64>,
    /// `false` once a sync marked the object missing.
    pub exists: bool,
    /// The highest row linked (-1 for a file that is one task).
    pub last_row: i64,
}

/// One storage object and the tasks parsed from it. `row` is `None` when the object is a single
/// task, else its position in the file (array element or JSONL line).
pub struct ImportedObject {
    pub key: String,
    /// Where the object comes from and how it is read, whichever storage lists it
    /// (`sync::import::source`).
    pub source: [u8; 32],
    pub etag: Option<String>,
    pub size: u64,
    pub last_modified: Option<u64>,
    pub rows: Vec<(Option<i64>, NewTask)>,
    /// The last part of the object's rows (every part, for files read whole).
    pub complete: bool,
}

/// Everything one listing page changes, committed at once by [`Store::commit_page`].
pub struct PageCommit<'a> {
    pub run_id: i64,
    pub storage_id: i64,
    pub project_id: i64,
    /// New objects: tasks and links to create.
    pub created: &'a [ImportedObject],
    /// Objects whose content changed (`sync_on_change: update`): rows are rewritten where the task
    /// has no annotations, marked `storage_object_changed` where it has; new rows are created.
    /// Empty `rows` (blob mode) only refreshes the link's etag, size and time.
    pub changed: &'a [ImportedObject],
    /// Keys listed that were marked missing: unmarked.
    pub reappeared: &'a [String],
    /// Keys listed, stamped with this run (only when deletions are tracked).
    pub seen: &'a [String],
    /// Listing position after this page; `None` at the end.
    pub cursor: Option<&'a str>,
    /// `Some` for a part of the page (task files too large for one commit): the cursor stays,
    /// and the key is the file left open (`Some(None)`: none), to go on with after a kill.
    pub part: Option<Option<&'a str>>,
    /// Tasks of this page's objects that another storage of the project already linked, found
    /// before reading them ([`Store::linked_elsewhere`]); added to `tasks_already_imported`.
    pub already_imported: u64,
}

const RUN_COLS: &str = "id, storage_id, status, cursor, counters, listing_done, open_object";

fn run(r: &rusqlite::Row) -> rusqlite::Result<Run> {
    let status: String = r.get(2)?;
    let counters: String = r.get(4)?;
    Ok(Run {
        id: r.get(0)?,
        storage_id: r.get(1)?,
        status: SyncStatus::parse(&status).unwrap_or(SyncStatus::Failed),
        cursor: r.get(3)?,
        counters: serde_json::from_str(&counters).unwrap_or_default(),
        listing_done: r.get(5)?,
        open_object: r.get(6)?,
    })
}

fn unfinished_run(tx: &Transaction, storage_id: i64) -> Result<Option<Run>> {
    Ok(tx
        .query_row(
            &format!("SELECT {RUN_COLS} FROM sync_runs WHERE storage_id = ?1 AND finished_at IS NULL"),
            [storage_id],
            run,
        )
        .optional()?)
}

/// Link rows of `storage_id` whose object was not seen by run `run_id` and still exists.
const UNSEEN: &str = "storage_id = ?1 AND (seen_run IS NULL OR seen_run <> ?2) AND object_exists = 1";

impl Store {
    /// Claims a sync run of a storage: a new `queued` run, with the storage set to `queued`,
    /// traceback cleared, `meta` replaced by `queued_meta` and `last_sync_job` the run's id; or, when one is already queued or
    /// running, that run (and nothing changes). A storage whose last run failed part-way (a
    /// cursor saved, `fields` unchanged since) gets that run back, queued: it continues from its
    /// cursor with its counters. Returns the run and whether it was queued by this call. The
    /// partial unique index on unfinished runs makes this safe against any concurrent caller.
    pub fn claim_run(
        &self,
        storage_id: i64,
        fields: &serde_json::Map<String, serde_json::Value>,
        queued_meta: &serde_json::Value,
    ) -> Result<(Run, bool)> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(existing) = unfinished_run(&tx, storage_id)? {
            return Ok((existing, false));
        }
        let fields = serde_json::Value::Object(fields.clone()).to_string();
        let resumable: Option<i64> = tx
            .query_row(
                "SELECT id FROM sync_runs WHERE id = (SELECT MAX(id) FROM sync_runs WHERE storage_id = ?1)
                 AND status = 'failed' AND (cursor IS NOT NULL OR listing_done = 1) AND fields = ?2",
                params![storage_id, fields],
                |r| r.get(0),
            )
            .optional()?;
        match resumable {
            Some(id) => tx.execute("UPDATE sync_runs SET status = 'queued', finished_at = NULL WHERE id = ?1", [id])?,
            None => tx.execute(
                "INSERT INTO sync_runs (storage_id, status, started_at, fields) VALUES (?1, 'queued', ?2, ?3)",
                params![storage_id, now(), fields],
            )?,
        };
        let claimed = unfinished_run(&tx, storage_id)?.expect("run just queued");
        // Label Studio sets `last_sync_job` when it enqueues the job (`info_set_job`).
        tx.execute(
            "UPDATE storages SET status = 'queued', traceback = NULL, meta = ?2, last_sync_job = ?3 WHERE id = ?1",
            params![storage_id, queued_meta.to_string(), claimed.id.to_string()],
        )?;
        tx.commit()?;
        Ok((claimed, true))
    }

    /// Takes the oldest queued run for a worker: it and its storage become `in_progress`.
    pub fn take_queued_run(&self) -> Result<Option<Run>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(mut next) = tx
            .query_row(
                &format!(
                    "SELECT {RUN_COLS} FROM sync_runs WHERE status = 'queued' AND finished_at IS NULL ORDER BY id LIMIT 1"
                ),
                [],
                run,
            )
            .optional()?
        else {
            return Ok(None);
        };
        tx.execute("UPDATE sync_runs SET status = 'in_progress' WHERE id = ?1", [next.id])?;
        tx.execute("UPDATE storages SET status = 'in_progress' WHERE id = ?1", [next.storage_id])?;
        tx.commit()?;
        next.status = SyncStatus::InProgress;
        Ok(Some(next))
    }

    /// Puts runs left `in_progress` by a stopped process back in the queue (they resume from
    /// their cursor); returns how many. Called once at start, before any worker runs.
    pub fn requeue_interrupted_runs(&self) -> Result<usize> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute("UPDATE sync_runs SET status = 'queued' WHERE finished_at IS NULL", [])?;
        tx.execute(
            "UPDATE storages SET status = 'queued' WHERE id IN (SELECT storage_id FROM sync_runs WHERE finished_at IS NULL)",
            [],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// Saves a run's counters and the storage's `meta` outside a page (e.g. at the start of a
    /// phase).
    pub fn save_run_progress(
        &self,
        run_id: i64,
        storage_id: i64,
        counters: &SyncCounters,
        meta: &serde_json::Value,
    ) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE sync_runs SET counters = ?2 WHERE id = ?1",
            params![run_id, serde_json::to_string(counters)?],
        )?;
        tx.execute("UPDATE storages SET meta = ?2 WHERE id = ?1", params![storage_id, meta.to_string()])?;
        tx.commit()?;
        Ok(())
    }

    /// Ends a run and writes the storage's final status columns, in one transaction.
    pub fn finish_run(&self, run_id: i64, storage_id: i64, p: &SyncState) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE sync_runs SET status = ?2, finished_at = ?3 WHERE id = ?1",
            params![run_id, p.status.as_str(), now()],
        )?;
        tx.execute(
            "UPDATE storages SET status = ?2, traceback = ?3, meta = ?4, last_sync = ?5, last_sync_count = ?6, last_sync_job = ?7 WHERE id = ?1",
            params![
                storage_id,
                p.status.as_str(),
                p.traceback,
                p.meta.to_string(),
                p.last_sync,
                p.last_sync_count,
                p.last_sync_job
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// What the links of `keys` in this storage say (keys without a link are absent).
    pub fn link_states(&self, storage_id: i64, keys: &[&str]) -> Result<HashMap<String, LinkState>> {
        let conn = self.conn()?;
        let mut found = HashMap::with_capacity(keys.len());
        // Stay under SQLite's default limit of 32766 bound parameters.
        for chunk in keys.chunks(1000) {
            let marks = vec!["?"; chunk.len()].join(",");
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT key, etag, size, last_modified, MIN(object_exists), MAX(row_index) FROM import_links
                 WHERE storage_id = ? AND key IN ({marks}) GROUP BY key"
            ))?;
            let args = std::iter::once(rusqlite::types::Value::Integer(storage_id))
                .chain(chunk.iter().map(|k| rusqlite::types::Value::Text(k.to_string())));
            let rows = stmt.query_map(params_from_iter(args), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    LinkState {
                        etag: r.get(1)?,
                        size: r.get::<_, Option<i64>>(2)?.map(|s| s as u64),
                        last_modified: r.get::<_, Option<i64>>(3)?.map(|m| m as u64),
                        exists: r.get(4)?,
                        last_row: r.get(5)?,
                    },
                ))
            })?;
            for row in rows {
                let (key, state) = row?;
                found.insert(key, state);
            }
        }
        Ok(found)
    }

    /// Of `sources`, those whose objects another storage of this storage's project linked, with
    /// the number of rows it linked: they are not imported again (nor read).
    pub fn linked_elsewhere(&self, storage_id: i64, sources: &[[u8; 32]]) -> Result<HashMap<[u8; 32], u64>> {
        let conn = self.conn()?;
        let mut found = HashMap::new();
        if !other_sources(&conn, storage_id)? {
            return Ok(found);
        }
        let mut stmt = conn.prepare_cached(&format!("SELECT COUNT(*) {LINKED_ELSEWHERE}"))?;
        for source in sources {
            let rows: i64 = stmt.query_row(params![source.as_slice(), storage_id], |r| r.get(0))?;
            if rows > 0 {
                found.insert(*source, rows as u64);
            }
        }
        Ok(found)
    }

    /// Number of tasks linked to this storage (Label Studio's `tasks_existed`).
    pub fn import_link_count(&self, storage_id: i64) -> Result<i64> {
        Ok(self
            .conn()?
            .query_row("SELECT COUNT(*) FROM import_links WHERE storage_id = ?1", [storage_id], |r| r.get(0))?)
    }

    /// Commits one listing page, or a part of it ([`PageCommit::part`]): new tasks and links,
    /// changed objects, link stamps, the run's cursor and counters and the storage's progress
    /// `meta`, all or nothing. A crash before the
    /// commit leaves the previous page's cursor, so the page is listed again and nothing is
    /// imported twice. `counters` are the run's, without this page's tasks: the tasks created and
    /// updated are added to them, and they are saved with the storage's `meta` as `meta` builds it.
    pub fn commit_page(
        &self,
        page: &PageCommit,
        counters: &mut SyncCounters,
        meta: &dyn Fn(&SyncCounters) -> serde_json::Value,
    ) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut inner = next_inner_id(&tx, page.project_id)?;
        let at = now();
        let (mut created, mut elsewhere) = (0, page.already_imported);
        let others = other_sources(&tx, page.storage_id)?;
        for o in page.created {
            for (row, t) in &o.rows {
                if insert_link_task(&tx, page, o, *row, t, inner, &at, others)? {
                    inner += 1;
                    created += 1;
                } else {
                    elsewhere += 1;
                }
            }
        }
        let mut updated = 0;
        for o in page.changed {
            for (row, t) in &o.rows {
                let row_index = row.unwrap_or(-1);
                let existing: Option<(i64, bool)> = tx
                    .prepare_cached(
                        "SELECT l.task_id, EXISTS (SELECT 1 FROM annotations a WHERE a.task_id = l.task_id)
                         FROM import_links l WHERE l.storage_id = ?1 AND l.key = ?2 AND l.row_index = ?3",
                    )?
                    .query_row(params![page.storage_id, o.key, row_index], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                match existing {
                    None => {
                        if insert_link_task(&tx, page, o, *row, t, inner, &at, others)? {
                            inner += 1;
                            created += 1;
                        } else {
                            elsewhere += 1;
                        }
                    }
                    // Annotated work is never overwritten: the task says its source changed.
                    Some((task_id, true)) => {
                        tx.prepare_cached(
                            "UPDATE tasks SET meta = json_set(meta, '$.storage_object_changed', json('true')), updated_at = ?2 WHERE id = ?1",
                        )?
                        .execute(params![task_id, at])?;
                        updated += 1;
                    }
                    Some((task_id, false)) => {
                        tx.prepare_cached(
                            "UPDATE tasks SET data = ?2, meta = json_remove(meta, '$.storage_object_changed'), updated_at = ?3 WHERE id = ?1",
                        )?
                        .execute(params![task_id, t.data.to_string(), at])?;
                        updated += 1;
                    }
                }
            }
            // A changed file is known read only with its last part: until then its links keep the
            // old etag, so a run resumed after a kill sees it changed and reads it again.
            if !o.complete {
                continue;
            }
            tx.prepare_cached(
                "UPDATE import_links SET etag = ?3, size = ?4, last_modified = ?5 WHERE storage_id = ?1 AND key = ?2",
            )?
            .execute(params![
                page.storage_id,
                o.key,
                o.etag,
                o.size as i64,
                o.last_modified.map(|m| m as i64)
            ])?;
        }
        for key in page.reappeared {
            tx.prepare_cached(
                "UPDATE tasks SET meta = json_remove(meta, '$.storage_object_missing'), updated_at = ?3
                 WHERE id IN (SELECT task_id FROM import_links WHERE storage_id = ?1 AND key = ?2)",
            )?
            .execute(params![page.storage_id, key, at])?;
            tx.prepare_cached("UPDATE import_links SET object_exists = 1 WHERE storage_id = ?1 AND key = ?2")?
                .execute(params![page.storage_id, key])?;
        }
        for key in page.seen {
            tx.prepare_cached("UPDATE import_links SET seen_run = ?3 WHERE storage_id = ?1 AND key = ?2")?
                .execute(params![page.storage_id, key, page.run_id])?;
        }
        counters.tasks_created += created;
        counters.tasks_updated += updated;
        counters.tasks_already_imported += elsewhere;
        match page.part {
            Some(open) => tx.execute(
                "UPDATE sync_runs SET counters = ?2, created = ?3, open_object = ?4 WHERE id = ?1",
                params![page.run_id, serde_json::to_string(counters)?, counters.tasks_created as i64, open],
            )?,
            None => tx.execute(
                "UPDATE sync_runs SET cursor = ?2, counters = ?3, created = ?4, listing_done = ?5, open_object = NULL
                 WHERE id = ?1",
                params![
                    page.run_id,
                    page.cursor,
                    serde_json::to_string(counters)?,
                    counters.tasks_created as i64,
                    page.cursor.is_none()
                ],
            )?,
        };
        tx.execute(
            "UPDATE storages SET meta = ?2 WHERE id = ?1",
            params![page.storage_id, meta(counters).to_string()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// `(objects missing, objects linked)`: distinct keys of this storage's existing links that
    /// run `run_id` did not see, and all distinct keys whose object is thought to exist.
    pub fn missing_objects(&self, storage_id: i64, run_id: i64) -> Result<(u64, u64)> {
        let conn = self.conn()?;
        let missing: i64 = conn.query_row(
            &format!("SELECT COUNT(DISTINCT key) FROM import_links WHERE {UNSEEN}"),
            params![storage_id, run_id],
            |r| r.get(0),
        )?;
        let linked: i64 = conn.query_row(
            "SELECT COUNT(DISTINCT key) FROM import_links WHERE storage_id = ?1 AND object_exists = 1",
            [storage_id],
            |r| r.get(0),
        )?;
        Ok((missing as u64, linked as u64))
    }

    /// The removal phase: the tasks of objects run `run_id` did not see are removed when `delete`
    /// and they have no annotations; the others are marked `meta.storage_object_missing` and
    /// their links `object_exists = 0`. Returns `(tasks removed, tasks marked)`.
    pub fn remove_missing(&self, storage_id: i64, run_id: i64, delete: bool) -> Result<(u64, u64)> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let removed = if delete {
            tx.execute(
                &format!(
                    "DELETE FROM tasks WHERE id IN (SELECT l.task_id FROM import_links l WHERE {UNSEEN}
                     AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.task_id = l.task_id))"
                ),
                params![storage_id, run_id],
            )?
        } else {
            0
        };
        let marked = tx.execute(
            &format!(
                "UPDATE tasks SET meta = json_set(meta, '$.storage_object_missing', json('true')), updated_at = ?3
                 WHERE id IN (SELECT task_id FROM import_links WHERE {UNSEEN})"
            ),
            params![storage_id, run_id, now()],
        )?;
        tx.execute(&format!("UPDATE import_links SET object_exists = 0 WHERE {UNSEEN}"), params![storage_id, run_id])?;
        tx.commit()?;
        Ok((removed as u64, marked as u64))
    }
}

/// Links of objects of `source` in other storages of the project of `storage_id`: the
/// `import_links_source` index, then the storage's project.
const LINKED_ELSEWHERE: &str = "FROM import_links l JOIN storages s ON s.id = l.storage_id
    WHERE l.source = ?1 AND l.storage_id <> ?2 AND s.project_id = (SELECT project_id FROM storages WHERE id = ?2)";

/// Whether the project of `storage_id` has another import storage, whose links could name the
/// same objects (else nothing needs looking up).
fn other_sources(conn: &rusqlite::Connection, storage_id: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM storages WHERE direction = 'import' AND id <> ?1
         AND project_id = (SELECT project_id FROM storages WHERE id = ?1))",
        )?
        .query_row([storage_id], |r| r.get(0))?)
}

/// Creates the task of one row with its link, unless another storage of the project (if it has
/// `others`) already linked that row of the same object (`Ok(false)`). Writers are serialised
/// (`IMMEDIATE` transactions), so two storages syncing the same bucket at once cannot both
/// create it.
#[allow(clippy::too_many_arguments)]
fn insert_link_task(
    tx: &Transaction,
    page: &PageCommit,
    o: &ImportedObject,
    row: Option<i64>,
    t: &NewTask,
    inner: i64,
    at: &str,
    others: bool,
) -> Result<bool> {
    let row_index = row.unwrap_or(-1);
    if others
        && tx.prepare_cached(&format!("SELECT 1 {LINKED_ELSEWHERE} AND l.row_index = ?3 LIMIT 1"))?.exists(params![
            o.source.as_slice(),
            page.storage_id,
            row_index
        ])?
    {
        return Ok(false);
    }
    let task_id = insert_task(tx, page.project_id, inner, t, None)?;
    tx.prepare_cached(
        "INSERT INTO import_links (storage_id, task_id, key, row_index, etag, size, last_modified, seen_run, created_at, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        page.storage_id,
        task_id,
        o.key,
        row_index,
        o.etag,
        o.size as i64,
        o.last_modified.map(|m| m as i64),
        page.run_id,
        at,
        o.source.as_slice()
    ])?;
    Ok(true)
}
