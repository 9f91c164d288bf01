//! Tasks, their predictions and annotations.

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use std::collections::HashMap;

use super::accounts::{USER_COLS, user};
use super::{Result, Store, json};
use crate::domain::{Annotation, NewAnnotation, NewTask, Prediction, Task, User, now};

/// What an export document is made of: an annotation, its task and its author (`completed_by`).
#[derive(Debug, Clone)]
pub struct ExportSource {
    pub annotation: Annotation,
    pub task: Task,
    pub author: Option<User>,
}

const TASK_SELECT: &str = "SELECT t.id, t.project_id, t.inner_id, t.data, t.meta, t.created_at, t.updated_at,
    (SELECT COUNT(*) FROM annotations a WHERE a.task_id = t.id AND a.was_cancelled = 0),
    (SELECT COUNT(*) FROM annotations a WHERE a.task_id = t.id AND a.was_cancelled = 1),
    (SELECT COUNT(*) FROM predictions p WHERE p.task_id = t.id),
    (SELECT l.key FROM import_links l WHERE l.task_id = t.id),
    (SELECT l.storage_id FROM import_links l WHERE l.task_id = t.id)
    FROM tasks t";

const ANNOTATION_COLS: &str =
    "id, task_id, project_id, result, completed_by, was_cancelled, ground_truth, lead_time, created_at, updated_at";

fn task(r: &rusqlite::Row) -> rusqlite::Result<Task> {
    Ok(Task {
        id: r.get(0)?,
        project_id: r.get(1)?,
        inner_id: r.get(2)?,
        data: json(r.get(3)?),
        meta: json(r.get(4)?),
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
        total_annotations: r.get(7)?,
        cancelled_annotations: r.get(8)?,
        total_predictions: r.get(9)?,
        storage_filename: r.get(10)?,
        storage_id: r.get(11)?,
    })
}

fn annotation(r: &rusqlite::Row) -> rusqlite::Result<Annotation> {
    Ok(Annotation {
        id: r.get(0)?,
        task_id: r.get(1)?,
        project_id: r.get(2)?,
        result: json(r.get(3)?),
        completed_by: r.get(4)?,
        was_cancelled: r.get(5)?,
        ground_truth: r.get(6)?,
        lead_time: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    })
}

/// Next `inner_id` of a project (Label Studio numbers tasks 1, 2, ... per project).
pub(super) fn next_inner_id(tx: &Transaction, project_id: i64) -> Result<i64> {
    Ok(tx.query_row("SELECT COALESCE(MAX(inner_id), 0) + 1 FROM tasks WHERE project_id = ?1", [project_id], |r| {
        r.get(0)
    })?)
}

/// Inserts a task with its annotations and predictions; returns its id.
pub(super) fn insert_task(
    tx: &Transaction,
    project_id: i64,
    inner_id: i64,
    t: &NewTask,
    created_by: Option<i64>,
) -> Result<i64> {
    let at = now();
    let meta = if t.meta.is_null() { "{}".to_string() } else { t.meta.to_string() };
    tx.prepare_cached(
        "INSERT INTO tasks (project_id, inner_id, data, meta, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![project_id, inner_id, t.data.to_string(), meta, at])?;
    let id = tx.last_insert_rowid();
    for a in &t.annotations {
        insert_annotation(tx, id, project_id, a, a.completed_by.or(created_by))?;
    }
    for p in &t.predictions {
        tx.prepare_cached(
            "INSERT INTO predictions (task_id, project_id, result, score, model_version, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![id, project_id, p.result.to_string(), p.score, p.model_version, p.created_at.as_deref().unwrap_or(&at)])?;
    }
    Ok(id)
}

fn insert_annotation(
    tx: &Transaction,
    task_id: i64,
    project_id: i64,
    a: &NewAnnotation,
    by: Option<i64>,
) -> Result<i64> {
    let at = now();
    tx.prepare_cached(
        "INSERT INTO annotations (task_id, project_id, result, completed_by, was_cancelled, ground_truth, lead_time, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        task_id,
        project_id,
        a.result.to_string(),
        by,
        a.was_cancelled,
        a.ground_truth,
        a.lead_time,
        a.created_at.as_deref().unwrap_or(&at),
        a.updated_at.as_deref().unwrap_or(&at)
    ])?;
    Ok(tx.last_insert_rowid())
}

impl Store {
    /// Creates tasks in one transaction (`POST /api/projects/{id}/import`); returns their ids.
    pub fn create_tasks(&self, project_id: i64, tasks: &[NewTask], created_by: i64) -> Result<Vec<i64>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let first = next_inner_id(&tx, project_id)?;
        let mut ids = Vec::with_capacity(tasks.len());
        for (inner, t) in (first..).zip(tasks) {
            ids.push(insert_task(&tx, project_id, inner, t, Some(created_by))?);
        }
        tx.commit()?;
        Ok(ids)
    }

    /// `(tasks, annotations, predictions)` of a project (counters kept by triggers: migration
    /// 0004); zeros for a project that does not exist.
    pub fn project_counts(&self, project_id: i64) -> Result<(i64, i64, i64)> {
        let counts = self
            .conn()?
            .prepare_cached("SELECT task_count, annotation_count, prediction_count FROM projects WHERE id = ?1")?
            .query_row([project_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        Ok(counts.unwrap_or((0, 0, 0)))
    }

    /// A page of a project's tasks in id order.
    pub fn tasks_page(&self, project_id: i64, offset: i64, limit: i64) -> Result<Vec<Task>> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached(&format!("{TASK_SELECT} WHERE t.project_id = ?1 ORDER BY t.id LIMIT ?2 OFFSET ?3"))?;
        Ok(stmt.query_map(params![project_id, limit, offset], task)?.collect::<rusqlite::Result<_>>()?)
    }

    /// One task with its counts, or `None`.
    pub fn task(&self, id: i64) -> Result<Option<Task>> {
        Ok(self.conn()?.query_row(&format!("{TASK_SELECT} WHERE t.id = ?1"), [id], task).optional()?)
    }

    /// Deletes a task with its annotations, predictions and link; `false` when there was none.
    pub fn delete_task(&self, id: i64) -> Result<bool> {
        Ok(self.conn()?.execute("DELETE FROM tasks WHERE id = ?1", [id])? > 0)
    }

    /// Predictions of a task, in id order.
    pub fn predictions(&self, task_id: i64) -> Result<Vec<Prediction>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, task_id, project_id, result, score, model_version, created_at FROM predictions WHERE task_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([task_id], |r| {
            Ok(Prediction {
                id: r.get(0)?,
                task_id: r.get(1)?,
                project_id: r.get(2)?,
                result: json(r.get(3)?),
                score: r.get(4)?,
                model_version: r.get(5)?,
                created_at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Annotations of a task, in id order.
    pub fn annotations(&self, task_id: i64) -> Result<Vec<Annotation>> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {ANNOTATION_COLS} FROM annotations WHERE task_id = ?1 ORDER BY id"))?;
        Ok(stmt.query_map([task_id], annotation)?.collect::<rusqlite::Result<_>>()?)
    }

    /// The annotations `ids` with their tasks and authors, in the order of `ids`, read on one
    /// connection (an export sync renders a batch of documents from them). Annotations deleted
    /// meanwhile are left out.
    pub fn annotations_for_export(&self, ids: &[i64]) -> Result<Vec<ExportSource>> {
        let conn = self.conn()?;
        let mut annotations =
            conn.prepare_cached(&format!("SELECT {ANNOTATION_COLS} FROM annotations WHERE id = ?1"))?;
        let mut tasks = conn.prepare_cached(&format!("{TASK_SELECT} WHERE t.id = ?1"))?;
        let mut users = conn.prepare_cached(&format!("SELECT {USER_COLS} FROM users WHERE id = ?1"))?;
        let mut authors: HashMap<i64, Option<User>> = HashMap::new();
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let Some(annotation) = annotations.query_row([id], self::annotation).optional()? else { continue };
            let Some(task) = tasks.query_row([annotation.task_id], self::task).optional()? else { continue };
            let author = match annotation.completed_by {
                Some(u) => match authors.get(&u) {
                    Some(known) => known.clone(),
                    None => {
                        let found = users.query_row([u], user).optional()?;
                        authors.insert(u, found.clone());
                        found
                    }
                },
                None => None,
            };
            out.push(ExportSource { annotation, task, author });
        }
        Ok(out)
    }

    /// Creates an annotation and returns it as stored.
    pub fn create_annotation(&self, task_id: i64, project_id: i64, a: &NewAnnotation) -> Result<Annotation> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = insert_annotation(&tx, task_id, project_id, a, a.completed_by)?;
        tx.commit()?;
        drop(conn);
        Ok(self.annotation(id)?.expect("annotation just inserted"))
    }

    /// One annotation, or `None`.
    pub fn annotation(&self, id: i64) -> Result<Option<Annotation>> {
        let sql = format!("SELECT {ANNOTATION_COLS} FROM annotations WHERE id = ?1");
        Ok(self.conn()?.query_row(&sql, [id], annotation).optional()?)
    }

    /// Replaces the given fields of an annotation; `None` keeps the stored value.
    pub fn update_annotation(
        &self,
        id: i64,
        result: Option<&serde_json::Value>,
        was_cancelled: Option<bool>,
        ground_truth: Option<bool>,
        lead_time: Option<f64>,
    ) -> Result<()> {
        self.conn()?.execute(
            "UPDATE annotations SET result = COALESCE(?2, result), was_cancelled = COALESCE(?3, was_cancelled),
             ground_truth = COALESCE(?4, ground_truth), lead_time = COALESCE(?5, lead_time), updated_at = ?6 WHERE id = ?1",
            params![id, result.map(|r| r.to_string()), was_cancelled, ground_truth, lead_time, now()],
        )?;
        Ok(())
    }

    /// Deletes an annotation (its export links go with it); `false` when there was none.
    pub fn delete_annotation(&self, id: i64) -> Result<bool> {
        Ok(self.conn()?.execute("DELETE FROM annotations WHERE id = ?1", [id])? > 0)
    }
}
